//! The writing features' commands: `storyteller.status`, `storyteller.generate`,
//! `storyteller.prompts.list`, `storyteller.prompts.setActive`, `storyteller.feedback`,
//! `storyteller.notes.list`.
//!
//! Each decodes its one argument object strictly (an unknown field, a wrong type or an unknown
//! id is `InvalidParams` naming the field), calls the assist layer, and encodes a JSON object.
//!
//! `storyteller.generate {action, uri, range, tone?, instruction?, version?, template?}` runs one
//! code action: `action` is an id of `assist::actions::ActionId` (`continueScene`,
//! `expandWorldbuilding`, `rewriteSelection`, `suggestDialogue`, `describeCharacter`, or `custom`
//! with `template`, the name of a workspace prompt with `action:` front matter); `tone` is
//! required for `rewriteSelection` — a named tone (`vivid`, `concise`, `tense`, `lyrical`,
//! `plain`) or the author's style brief (free text, at most 200 chars, one line) — and refused
//! for the others; `instruction` is what should happen next (trimmed, empty = none, at most
//! 1,000 chars), for `continueScene`, `expandWorldbuilding`, `describeCharacter` and custom
//! actions; neither is ever repeated in an error. `version` is the document version the range
//! belongs to (code actions send it): if the document moved on since, the range no longer means
//! the same text and the action is refused.
//! It reports cancellable `$/progress`, streams the text, and applies it with
//! `workspace/applyEdit` — re-anchored if the author typed elsewhere meanwhile, refused with
//! `messages::EDIT_CONFLICT` if the text it belongs to changed. Result:
//! `{applied, action, provider?, failedOver?, text?, range?, reason?}`; `reason` names why
//! nothing was applied (`conflict`, `cancelled`, `notConfigured`, `offline`, `allFailed`,
//! `providerError`, `empty`, `noApplyEdit`) after the author was told. An applied action counts
//! as used; whether it counts as accepted is judged later (`assist::acceptance`).

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tower_lsp::lsp_types::{self, MessageType, Url};

use super::commands::{CommandContext, CommandError, StorytellerCommand};
use super::notify;
use super::positions::{file_path, to_document_range};
use crate::app::{App, ProjectContext};
use crate::args::Fields;
use crate::assist::actions::{self, Action, ActionError, ActionId};
use crate::assist::run::{ActionOutcome, NotApplied};
use crate::assist::{ActionRequest, templates};
use crate::messages;

pub(crate) async fn run(
    cx: CommandContext,
    command: StorytellerCommand,
    arguments: Map<String, Value>,
) -> Result<Value, CommandError> {
    match command {
        StorytellerCommand::Status => {
            Fields::new(arguments, &[])?;
            status(&cx).await
        }
        StorytellerCommand::Generate => {
            let request = GenerateRequest::decode(arguments)?;
            generate(cx, request).await
        }
        StorytellerCommand::PromptsList => {
            Fields::new(arguments, &[])?;
            prompts_list(&cx).await
        }
        StorytellerCommand::PromptsSetActive => {
            let mut args = Fields::new(arguments, &["name", "version", "weight"])?;
            let name = args.required_str("name")?;
            let version: u32 = args.required("version")?;
            let weight: Option<f64> = args.optional("weight")?;
            prompts_set_active(&cx, name, version, weight).await
        }
        StorytellerCommand::Feedback => {
            let mut args = Fields::new(arguments, &["suggestionId", "accepted"])?;
            let id = args.required_str("suggestionId")?;
            let accepted = args.required_bool("accepted")?;
            feedback(&cx, &id, accepted).await
        }
        StorytellerCommand::NotesList => {
            let mut args = Fields::new(arguments, &["uri", "position"])?;
            let uri: Option<Url> = args.optional("uri")?;
            let position: Option<lsp_types::Position> = args.optional("position")?;
            notes_list(&cx, uri, position)
        }
        other => Err(CommandError::NotAvailable(other)),
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> CommandError {
    CommandError::InvalidArgument {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn failed(message: impl Into<String>) -> CommandError {
    CommandError::Failed {
        message: message.into(),
        kind: None,
    }
}

async fn services(cx: &CommandContext) -> Result<App, CommandError> {
    cx.state.app().await.map_err(failed)
}

/// `storyteller.status {}`: the router status of the first workspace folder's project.
async fn status(cx: &CommandContext) -> Result<Value, CommandError> {
    let app = services(cx).await?;
    let context = app
        .context_for(None)
        .await
        .map_err(|e| failed(e.to_string()))?;
    serde_json::to_value(context.router.status()).map_err(|e| failed(e.to_string()))
}

/// `storyteller.prompts.list {}` → `{templates: [{name, version, usageCount, successRate, …}]}`.
async fn prompts_list(cx: &CommandContext) -> Result<Value, CommandError> {
    let app = services(cx).await?;
    let templates = templates::list(&app)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(json!({ "templates": templates }))
}

/// `storyteller.notes.list {uri?, position?}` → `{roots: [{root, patterns, notes: [{path, title,
/// names, include, storyBible, hasSummary, chars, problem, atPosition?}]}]}`: the notes of the
/// document's workspace folder (every folder without `uri`); with `position` (in an open
/// document), whether each note would be in a prompt there and why.
fn notes_list(
    cx: &CommandContext,
    uri: Option<Url>,
    position: Option<lsp_types::Position>,
) -> Result<Value, CommandError> {
    let state = &cx.state;
    let notes = &state.assistant.notes;
    let roots: Vec<std::path::PathBuf> = match &uri {
        Some(uri) => state
            .project_root_for(uri.as_str())
            .and_then(|r| r.path())
            .into_iter()
            .collect(),
        None if position.is_some() => return Err(invalid("position", "needs a uri")),
        None => state.root_paths(),
    };
    let at = match (&uri, position) {
        (Some(uri), Some(position)) => {
            let document = state
                .documents
                .snapshot(uri.as_str())
                .map_err(|e| invalid("uri", e.to_string()))?;
            let at = crate::documents::Range::new(
                super::positions::to_document_position(position),
                super::positions::to_document_position(position),
            );
            let span = document
                .span_of(at, state.encoding())
                .map_err(|e| invalid("position", e.to_string()))?;
            Some((document, span.start.0))
        }
        _ => None,
    };
    let listings: Vec<_> = roots
        .iter()
        .filter_map(|root| match &at {
            Some((document, cursor)) => notes.listing_at(root, document.text(), *cursor),
            None => notes.listing(root, None),
        })
        .collect();
    Ok(json!({ "roots": listings }))
}

/// `storyteller.prompts.setActive {name, version, weight?}` → the versions of `name` afterwards.
async fn prompts_set_active(
    cx: &CommandContext,
    name: String,
    version: u32,
    weight: Option<f64>,
) -> Result<Value, CommandError> {
    let app = services(cx).await?;
    let templates = templates::set_active(&app, &name, version, weight)
        .await
        .map_err(|e| match templates::refused_field(&e) {
            Some(field) => invalid(field, e.to_string()),
            None => failed(e.to_string()),
        })?;
    Ok(json!({ "templates": templates }))
}

/// `storyteller.feedback {suggestionId, accepted}` → `{counted}`.
async fn feedback(cx: &CommandContext, id: &str, accepted: bool) -> Result<Value, CommandError> {
    let app = services(cx).await?;
    match cx.state.assistant.feedback(&app, id, accepted).await {
        Ok(Some(())) => Ok(json!({ "counted": accepted })),
        Ok(None) => Err(invalid(
            "suggestionId",
            "unknown suggestion (already counted, or too old)",
        )),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// The decoded arguments of `storyteller.generate`.
#[derive(Debug, Clone)]
struct GenerateRequest {
    action: Action,
    /// `{"action": "custom", "template": name}`: `action` is resolved against the workspace's
    /// custom actions before it runs ([`resolve_custom`]).
    custom: Option<String>,
    uri: Url,
    range: lsp_types::Range,
    version: Option<i32>,
    /// What the author wants to happen next; `None` when not given or empty.
    instruction: Option<String>,
}

impl GenerateRequest {
    fn decode(arguments: Map<String, Value>) -> Result<GenerateRequest, CommandError> {
        let mut args = Fields::new(
            arguments,
            &[
                "action",
                "uri",
                "range",
                "tone",
                "instruction",
                "version",
                "template",
            ],
        )?;
        let action = args.required_str("action")?;
        let uri: Url = args.required("uri")?;
        let range: lsp_types::Range = args.required("range")?;
        let tone = args.optional_str("tone")?;
        let instruction = args.optional_str("instruction")?;
        let version: Option<i32> = args.optional("version")?;
        let template = args.optional_str("template")?;
        let custom_id = ActionId::Custom.as_str();
        let (action, custom) = match (action.as_str(), template) {
            (id, Some(name)) if id == custom_id => {
                if tone.is_some() {
                    return Err(invalid("tone", ActionError::ToneNotApplicable.to_string()));
                }
                // Resolved (title, placement) once the workspace's prompts are at hand.
                (templates::provisional_custom(&name), Some(name))
            }
            (id, None) if id == custom_id => {
                return Err(invalid(
                    "template",
                    ActionError::TemplateRequired.to_string(),
                ));
            }
            (_, Some(_)) => {
                return Err(invalid("template", "only a custom action takes a template"));
            }
            (id, None) => {
                let action = Action::parse(id, tone.as_deref()).map_err(|e| match e {
                    ActionError::UnknownAction => invalid("action", e.to_string()),
                    other => invalid("tone", other.to_string()),
                })?;
                (action, None)
            }
        };
        let instruction = instruction
            .map(|text| actions::parse_instruction(action.id(), &text))
            .transpose()
            .map_err(|e| invalid("instruction", e.to_string()))?
            .flatten();
        Ok(GenerateRequest {
            action,
            custom,
            uri,
            range,
            version,
            instruction,
        })
    }
}

/// The custom action `request` names, from the prompts of the document's workspace.
fn resolve_custom(
    app: &App,
    context: &ProjectContext,
    request: &mut GenerateRequest,
) -> Result<(), CommandError> {
    let Some(name) = &request.custom else {
        return Ok(());
    };
    request.action = context
        .root
        .as_deref()
        .and_then(|root| templates::custom_action(app, root, name))
        .ok_or_else(|| {
            invalid(
                "template",
                "no custom action of that name in this document's workspace",
            )
        })?;
    Ok(())
}

/// What the author was told when an action did not apply.
fn not_applied(request: &GenerateRequest, reason: &str) -> Value {
    json!({
        "applied": false,
        "action": request.action.id().as_str(),
        "reason": reason,
    })
}

/// The services and the document's project context.
async fn project_of(cx: &CommandContext, uri: &Url) -> Result<(App, ProjectContext), CommandError> {
    let app = services(cx).await?;
    let file = file_path(uri.as_str());
    let context = app
        .document_context(file.as_deref())
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok((app, context))
}

/// Boxed so that a Retry button can start the same work again from inside it.
fn generate_boxed(
    cx: CommandContext,
    request: GenerateRequest,
) -> BoxFuture<'static, Result<Value, CommandError>> {
    Box::pin(generate(cx, request))
}

async fn generate(cx: CommandContext, mut request: GenerateRequest) -> Result<Value, CommandError> {
    let state = cx.state.clone();
    let mut resolved = None;
    if request.custom.is_some() {
        let (app, context) = project_of(&cx, &request.uri).await?;
        resolve_custom(&app, &context, &mut request)?;
        resolved = Some((app, context));
    }
    let request = request;
    let uri = request.uri.as_str();
    let document = state
        .documents
        .snapshot(uri)
        .map_err(|e| invalid("uri", e.to_string()))?;
    let span = document
        .span_of(to_document_range(request.range), state.encoding())
        .map_err(|e| invalid("range", e.to_string()))?;
    if request.action.needs_selection() && span.start == span.end {
        return Err(invalid(
            "range",
            format!("{} needs a selection", request.action.title()),
        ));
    }
    if !document.is_in_sync() {
        let name = uri.rsplit('/').next().unwrap_or(uri);
        return Err(failed(messages::document_out_of_sync(name)));
    }
    if request.version.is_some_and(|v| v != document.version()) {
        notify::tell(&cx.client, MessageType::WARNING, messages::EDIT_CONFLICT).await;
        return Ok(not_applied(&request, "conflict"));
    }
    let (app, context) = match resolved {
        Some(resolved) => resolved,
        None => project_of(&cx, &request.uri).await?,
    };
    let _foreground = state.notifier.foreground(context.project);

    let cancel = CancellationToken::new();
    // `$/cancelRequest` drops this handler; the guard turns that into cancellation of the work.
    let _cancel_on_drop = cancel.clone().drop_guard();
    let action_request = ActionRequest {
        action: request.action.clone(),
        document,
        span,
        settings: state.settings.current(),
        project_root: context.root.clone(),
        document_path: request.uri.to_file_path().ok(),
        instruction: request.instruction.clone(),
    };
    let mut host = host::LspHost {
        cx: &cx,
        app: &app,
        context: &context,
        request: &request,
        cancel,
        progress: None,
    };
    let outcome = state
        .assistant
        .run_action(&context, action_request, &mut host)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(match outcome {
        ActionOutcome::Applied {
            provider,
            failed_over,
            text,
            range,
        } => json!({
            "applied": true,
            "action": request.action.id().as_str(),
            "provider": provider.display_name,
            "failedOver": failed_over,
            "text": text,
            "range": range,
        }),
        ActionOutcome::NotApplied(why) => {
            let mut result = not_applied(&request, why.reason());
            if let NotApplied::NoApplyEdit { text } = why {
                result["text"] = json!(text);
            }
            result
        }
    })
}

mod host;

#[cfg(test)]
mod tests;
