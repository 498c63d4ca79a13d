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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tower_lsp::lsp_types::request::ApplyWorkspaceEdit;
use tower_lsp::lsp_types::{
    self, ApplyWorkspaceEditParams, DocumentChanges, MessageType, OneOf,
    OptionalVersionedTextDocumentIdentifier, TextDocumentEdit, TextEdit, Url, WorkspaceEdit,
};

use super::commands::{CommandContext, CommandError, StorytellerCommand};
use super::notify::{self, Audience, Button, Progress};
use super::positions::{to_document_range, to_lsp_position};
use crate::app::{App, AppEvent};
use crate::assist::actions::{self, Action, ActionError, ActionId};
use crate::assist::failure::{self, Advice, Offer, Severity};
use crate::assist::{ActionRequest, AssistError, PlacedEdit, PreparedAction};
use crate::documents::{CharOffset, DocumentSnapshot};
use crate::messages;
use crate::prompts::PromptError;
use crate::routing::{Budget, RouterEvent};
use crate::store::projects::ProjectId;

/// How long the editor may take to apply an edit (it may ask the author to confirm).
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Progress reports while text streams in: one per this many new words.
const WORDS_PER_REPORT: usize = 5;

pub(crate) async fn run(
    cx: CommandContext,
    command: StorytellerCommand,
    arguments: Map<String, Value>,
) -> Result<Value, CommandError> {
    match command {
        StorytellerCommand::Status => {
            Args::new(arguments, &[])?;
            status(&cx).await
        }
        StorytellerCommand::Generate => {
            let request = GenerateRequest::decode(arguments)?;
            generate(cx, request).await
        }
        StorytellerCommand::PromptsList => {
            Args::new(arguments, &[])?;
            prompts_list(&cx).await
        }
        StorytellerCommand::PromptsSetActive => {
            let mut args = Args::new(arguments, &["name", "version", "weight"])?;
            let name: String = args.required("name")?;
            let version: u32 = args.required("version")?;
            let weight: Option<f64> = args.optional("weight")?;
            prompts_set_active(&cx, name, version, weight).await
        }
        StorytellerCommand::Feedback => {
            let mut args = Args::new(arguments, &["suggestionId", "accepted"])?;
            let id: String = args.required("suggestionId")?;
            let accepted: bool = args.required("accepted")?;
            feedback(&cx, &id, accepted).await
        }
        StorytellerCommand::NotesList => {
            let mut args = Args::new(arguments, &["uri", "position"])?;
            let uri: Option<Url> = args.optional("uri")?;
            let position: Option<lsp_types::Position> = args.optional("position")?;
            notes_list(&cx, uri, position)
        }
        other => Err(CommandError::NotAvailable(other)),
    }
}

/// The one argument object, checked field by field.
struct Args {
    map: Map<String, Value>,
}

impl Args {
    /// Refuses any field not in `allowed`.
    fn new(map: Map<String, Value>, allowed: &[&str]) -> Result<Args, CommandError> {
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let reason = if allowed.is_empty() {
                "unknown field; this command takes no arguments".to_string()
            } else {
                format!("unknown field; expected {}", allowed.join(", "))
            };
            return Err(invalid(unknown, reason));
        }
        Ok(Args { map })
    }

    fn required<T: DeserializeOwned>(&mut self, field: &str) -> Result<T, CommandError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Err(invalid(field, "required")),
            Some(value) => decode(field, value),
        }
    }

    fn optional<T: DeserializeOwned>(&mut self, field: &str) -> Result<Option<T>, CommandError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => decode(field, value).map(Some),
        }
    }
}

fn decode<T: DeserializeOwned>(field: &str, value: Value) -> Result<T, CommandError> {
    let kind = describe(&value);
    serde_json::from_value(value).map_err(|e| {
        // serde's text may quote the value (manuscript text); say only what was wrong.
        let problem = match e.classify() {
            serde_json::error::Category::Data => format!("wrong type or shape (got {kind})"),
            _ => format!("could not be read (got {kind})"),
        };
        invalid(field, problem)
    })
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
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
    let root = cx.state.root_paths().into_iter().next();
    let project = cx
        .state
        .assistant
        .project(&app, root.as_deref())
        .await
        .map_err(|e| failed(e.to_string()))?;
    let router = app
        .router(project)
        .await
        .map_err(|e| failed(e.to_string()))?;
    serde_json::to_value(router.status()).map_err(|e| failed(e.to_string()))
}

/// `storyteller.prompts.list {}` → `{templates: [{name, version, usageCount, successRate, …}]}`.
async fn prompts_list(cx: &CommandContext) -> Result<Value, CommandError> {
    let app = services(cx).await?;
    let templates = app
        .registry()
        .list()
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
    app.registry()
        .set_active(&name, version, weight)
        .await
        .map_err(|e| match e {
            PromptError::UnknownTemplate(_) => invalid("name", e.to_string()),
            PromptError::UnknownVersion { .. } => invalid("version", e.to_string()),
            PromptError::InvalidWeight(_) => invalid("weight", e.to_string()),
            other => failed(other.to_string()),
        })?;
    let templates: Vec<_> = app
        .registry()
        .list()
        .await
        .map_err(|e| failed(e.to_string()))?
        .into_iter()
        .filter(|t| t.name == name)
        .collect();
    Ok(json!({ "templates": templates }))
}

/// `storyteller.feedback {suggestionId, accepted}` → `{counted}`.
async fn feedback(cx: &CommandContext, id: &str, accepted: bool) -> Result<Value, CommandError> {
    let app = services(cx).await?;
    match cx
        .state
        .assistant
        .accept(app.registry(), id, accepted)
        .await
    {
        Ok(Some(_)) => Ok(json!({ "counted": accepted })),
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
        let mut args = Args::new(
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
        let action: String = args.required("action")?;
        let uri: Url = args.required("uri")?;
        let range: lsp_types::Range = args.required("range")?;
        let tone: Option<String> = args.optional("tone")?;
        let instruction: Option<String> = args.optional("instruction")?;
        let version: Option<i32> = args.optional("version")?;
        let template: Option<String> = args.optional("template")?;
        let custom_id = ActionId::Custom.as_str();
        let (action, custom) = match (action.as_str(), template) {
            (id, Some(name)) if id == custom_id => {
                if tone.is_some() {
                    return Err(invalid("tone", ActionError::ToneNotApplicable.to_string()));
                }
                // Resolved (title, placement) once the workspace's prompts are at hand.
                let provisional = crate::prompts::CustomAction {
                    title: name.clone(),
                    placement: crate::prompts::CustomPlacement::Cursor,
                };
                (Action::custom(&name, &provisional), Some(name))
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
    root: Option<&std::path::Path>,
    request: &mut GenerateRequest,
) -> Result<(), CommandError> {
    let Some(name) = &request.custom else {
        return Ok(());
    };
    let spec = root
        .and_then(|root| app.registry().custom_action(root, name))
        .ok_or_else(|| {
            invalid(
                "template",
                "no custom action of that name in this document's workspace",
            )
        })?;
    request.action = Action::custom(name, &spec);
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

/// Boxed so that a Retry button can start the same work again from inside it.
fn generate_boxed(
    cx: CommandContext,
    request: GenerateRequest,
) -> BoxFuture<'static, Result<Value, CommandError>> {
    Box::pin(generate(cx, request))
}

async fn generate(cx: CommandContext, mut request: GenerateRequest) -> Result<Value, CommandError> {
    let state = cx.state.clone();
    if request.custom.is_some() {
        let app = services(&cx).await?;
        let root = state
            .project_root_for(request.uri.as_str())
            .and_then(|r| r.path());
        resolve_custom(&app, root.as_deref(), &mut request)?;
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
    let id = request.action.id();
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
    let app = services(&cx).await?;
    let root = state.project_root_for(uri).and_then(|r| r.path());
    let project = state
        .assistant
        .project(&app, root.as_deref())
        .await
        .map_err(|e| failed(e.to_string()))?;
    let router = app
        .router(project)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let _foreground = state.notifier.foreground(project);

    let cancel = CancellationToken::new();
    // `$/cancelRequest` drops this handler; the guard turns that into cancellation of the work.
    let _cancel_on_drop = cancel.clone().drop_guard();
    let settings = state.settings.current();
    let action_request = ActionRequest {
        action: request.action.clone(),
        document: document.clone(),
        span,
        settings: settings.clone(),
        project_root: root,
        document_path: request.uri.to_file_path().ok(),
        instruction: request.instruction.clone(),
    };
    let prepared = state
        .assistant
        .prepare_action(app.registry(), &action_request, cancel.clone())
        .await
        .map_err(|e| failed(e.to_string()))?;

    let progress =
        Progress::begin(&cx.client, &state, &request.action.title(), cancel.clone()).await;
    let asking = router.status().active.map_or_else(
        || messages::progress::WAITING.to_string(),
        |p| messages::progress::asking(&p.display_name),
    );
    progress.report(asking).await;

    let generated = stream_with_progress(
        &app, project, &router, &state, &prepared, &settings, &progress,
    )
    .await;
    let generated = match generated {
        Ok(generated) => generated,
        Err(error) => {
            let reason = tell_failure(&cx, &app, project, &request, &error).await;
            let end = if error.is_cancelled() {
                messages::progress::CANCELLED
            } else {
                messages::progress::FAILED
            };
            progress.end(end).await;
            return Ok(not_applied(&request, reason));
        }
    };
    let template = prepared.template.clone();
    if let Err(e) = app
        .registry()
        .record_usage(&template.name, template.version)
        .await
    {
        tracing::warn!("prompt usage not counted: {e}");
    }

    if !state.client().apply_edit {
        notify::tell(
            &cx.client,
            MessageType::WARNING,
            messages::CANNOT_APPLY_EDIT,
        )
        .await;
        progress.end(messages::progress::FAILED).await;
        let mut result = not_applied(&request, "noApplyEdit");
        result["text"] = json!(generated.text);
        return Ok(result);
    }
    progress.report(messages::progress::APPLYING).await;
    let applied = apply_anchored(&cx, &request, &prepared, &generated.text).await;
    match applied {
        Ok(Some((range, placed))) => {
            // Applied is not accepted: the text is judged on the next save, after further edits,
            // or at close (`assist::acceptance`).
            if let Ok(now) = state.documents.snapshot(uri) {
                let replaced = if placed.replace.is_empty() {
                    ""
                } else {
                    prepared.anchor.selected()
                };
                state.assistant.acceptance.action_applied(
                    uri,
                    template,
                    &generated.text,
                    replaced,
                    placed.replace.start,
                    now.text(),
                );
            }
            progress.end(messages::progress::DONE).await;
            Ok(json!({
                "applied": true,
                "action": id.as_str(),
                "provider": generated.provider.display_name,
                "failedOver": generated.failed_over,
                "text": generated.text,
                "range": range,
            }))
        }
        Ok(None) => {
            notify::tell(&cx.client, MessageType::WARNING, messages::EDIT_CONFLICT).await;
            progress.end(messages::progress::FAILED).await;
            Ok(not_applied(&request, "conflict"))
        }
        Err(e) => {
            progress.end(messages::progress::FAILED).await;
            Err(e)
        }
    }
}

/// Streams the action's text, reporting progress: words so far, and the rate-limit text while
/// the router waits on a limit for this project.
async fn stream_with_progress(
    app: &App,
    project: ProjectId,
    router: &crate::routing::Router,
    state: &Arc<super::ServerState>,
    prepared: &PreparedAction,
    settings: &crate::config::Settings,
    progress: &Progress,
) -> Result<crate::assist::GeneratedText, AssistError> {
    let mut events = app.subscribe();
    let (words_tx, mut words_rx) = tokio::sync::mpsc::unbounded_channel();
    let generation = state.assistant.generate_action(
        router,
        prepared,
        Budget::action(settings),
        move |text: &str| {
            let _ = words_tx.send(text.split_whitespace().count());
        },
    );
    tokio::pin!(generation);
    let mut reported = 0;
    let mut events_open = true;
    loop {
        tokio::select! {
            biased;
            result = &mut generation => return result,
            Some(words) = words_rx.recv() => {
                if words >= reported + WORDS_PER_REPORT || (reported == 0 && words > 0) {
                    reported = words;
                    progress.report(messages::progress::words_written(words)).await;
                }
            }
            event = events.recv(), if events_open => match event {
                Ok(AppEvent::Router { project: p, event: RouterEvent::RateLimitWait { .. } })
                    if p == project =>
                {
                    progress.report(messages::RATE_LIMIT_PROGRESS).await;
                }
                Ok(AppEvent::Router { project: p, event: RouterEvent::TryingBackup { provider } })
                    if p == project =>
                {
                    progress.report(messages::unavailable(&provider.display_name)).await;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => events_open = false,
            },
        }
    }
}

/// Tells the author why an action produced nothing (with Retry where it helps). Returns the
/// `reason` of the result.
async fn tell_failure(
    cx: &CommandContext,
    app: &App,
    project: ProjectId,
    request: &GenerateRequest,
    error: &AssistError,
) -> &'static str {
    let audience = Audience {
        client: cx.client.clone(),
        state: cx.state.clone(),
        app: app.clone(),
        project: Some(project),
    };
    let retry = || -> notify::RetryAction {
        let cx = cx.clone();
        let request = request.clone();
        Box::new(move || {
            tokio::spawn(async move {
                if let Err(e) = generate_boxed(cx, request).await {
                    tracing::warn!("retried action failed: {e}");
                }
            });
        })
    };
    let active = match app.router(project).await {
        Ok(router) => router.status(),
        Err(_) => return "providerError",
    };
    let active_name = active
        .active
        .as_ref()
        .map(|p| p.display_name.clone())
        .unwrap_or_default();
    let now = failure::RoutingNow {
        active_name: &active_name,
        active_count: active.providers.iter().filter(|p| p.is_active).count(),
    };
    if let AssistError::Prompt(_) | AssistError::Store(_) | AssistError::Services(_) = error {
        tracing::warn!("action failed: {error}");
    }
    let failure::FailureAdvice { reason, advice } = failure::advise(error, now);
    match advice {
        Advice::Silent => {}
        Advice::NotConfigured => {
            if !notify::offer_not_configured(&cx.state) {
                notify::tell(
                    &cx.client,
                    MessageType::WARNING,
                    messages::EMPTY_PROVIDER_LIST,
                )
                .await;
            }
        }
        Advice::Tell { severity, text } => {
            notify::tell(&cx.client, message_type(severity), text).await;
        }
        Advice::Ask {
            severity,
            text,
            offers,
        } => {
            let buttons = offers
                .into_iter()
                .map(|offer| match offer {
                    Offer::Retry => Button::Retry,
                    Offer::ConfigureProviders => Button::ConfigureProviders,
                })
                .collect();
            notify::ask(
                audience,
                message_type(severity),
                text,
                buttons,
                Some(retry()),
            );
        }
        Advice::AskEuConsent { provider } => {
            notify::ask_eu_consent(audience, provider, Some(retry()));
        }
    }
    reason
}

fn message_type(severity: Severity) -> MessageType {
    match severity {
        Severity::Warning => MessageType::WARNING,
        Severity::Error => MessageType::ERROR,
    }
}

/// Applies `text` where the action's anchor is now: `Ok(Some((range, placed)))` when the editor
/// applied it, `Ok(None)` when the anchored text changed (nothing applied).
async fn apply_anchored(
    cx: &CommandContext,
    request: &GenerateRequest,
    prepared: &PreparedAction,
    text: &str,
) -> Result<Option<(lsp_types::Range, PlacedEdit)>, CommandError> {
    // A second try covers the author typing between our snapshot and the editor's check of the
    // versioned edit.
    for _ in 0..2 {
        let Ok(document) = cx.state.documents.snapshot(request.uri.as_str()) else {
            // Closed meanwhile: nothing to edit.
            return Ok(None);
        };
        let Ok(placed) = crate::assist::place(prepared, &document, text) else {
            return Ok(None);
        };
        match apply_edit(
            cx,
            &request.uri,
            &document,
            &placed,
            &request.action.title(),
        )
        .await?
        {
            Some(range) => return Ok(Some((range, placed))),
            None => continue,
        }
    }
    Ok(None)
}

/// One `workspace/applyEdit`; `Ok(None)` when the editor refused it.
async fn apply_edit(
    cx: &CommandContext,
    uri: &Url,
    document: &DocumentSnapshot,
    placed: &PlacedEdit,
    label: &str,
) -> Result<Option<lsp_types::Range>, CommandError> {
    let encoding = cx.state.encoding();
    let position = |offset: usize| {
        document
            .position_of(CharOffset(offset), encoding)
            .map(to_lsp_position)
            .map_err(|e| failed(e.to_string()))
    };
    let range = lsp_types::Range::new(
        position(placed.replace.start)?,
        position(placed.replace.end)?,
    );
    let edit = TextEdit::new(range, placed.text.clone());
    let workspace_edit = if cx.state.client().document_changes {
        WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: Some(document.version()),
                },
                edits: vec![OneOf::Left(edit)],
            }])),
            ..WorkspaceEdit::default()
        }
    } else {
        WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
            ..WorkspaceEdit::default()
        }
    };
    let params = ApplyWorkspaceEditParams {
        label: Some(label.to_string()),
        edit: workspace_edit,
    };
    let answer =
        notify::request_editor::<ApplyWorkspaceEdit>(&cx.client, params, APPLY_TIMEOUT).await;
    match answer {
        Some(Ok(response)) if response.applied => Ok(Some(range)),
        Some(Ok(response)) => {
            tracing::info!(
                reason = response.failure_reason.as_deref().unwrap_or("none given"),
                "the editor refused the edit"
            );
            Ok(None)
        }
        Some(Err(e)) => Err(failed(format!("workspace/applyEdit failed: {e}"))),
        None => Err(failed("the editor did not answer workspace/applyEdit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_lsp::jsonrpc;

    fn decode_generate(value: Value) -> Result<GenerateRequest, CommandError> {
        match value {
            Value::Object(map) => GenerateRequest::decode(map),
            _ => unreachable!(),
        }
    }

    fn field_of(result: Result<GenerateRequest, CommandError>) -> String {
        match result {
            Err(CommandError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn generate_arguments_are_decoded_strictly() {
        let range =
            json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 4}});
        let ok = decode_generate(json!({
            "action": "rewriteSelection", "tone": "tense", "uri": "file:///n/a.md",
            "range": range, "version": 3
        }))
        .unwrap();
        assert_eq!(ok.version, Some(3));
        assert_eq!(ok.action.title(), "Rewrite selection: tense");
        assert_eq!(ok.instruction, None);

        // A style brief is a tone; an instruction is trimmed, and empty is none.
        let brief = decode_generate(json!({
            "action": "rewriteSelection", "tone": " like Hemingway, terse ",
            "uri": "file:///n/a.md", "range": range
        }))
        .unwrap();
        assert_eq!(
            brief.action.tone().map(|t| t.as_str()),
            Some("like Hemingway, terse")
        );
        let steered = decode_generate(json!({
            "action": "continueScene", "instruction": "  Tomas admits he lied.\n",
            "uri": "file:///n/a.md", "range": range
        }))
        .unwrap();
        assert_eq!(
            steered.instruction.as_deref(),
            Some("Tomas admits he lied.")
        );
        for empty in [json!(""), json!("  \n "), Value::Null] {
            let plain = decode_generate(json!({
                "action": "continueScene", "instruction": empty,
                "uri": "file:///n/a.md", "range": range
            }))
            .unwrap();
            assert_eq!(plain.instruction, None);
        }
        let at_limit = decode_generate(json!({
            "action": "continueScene", "instruction": "й".repeat(1000),
            "uri": "file:///n/a.md", "range": range
        }))
        .unwrap();
        assert_eq!(at_limit.instruction.map(|i| i.chars().count()), Some(1000));

        let cases = [
            (
                json!({"action": "continueScene", "uri": "file:///a", "range": range, "colour": 1}),
                "colour",
            ),
            (json!({"uri": "file:///a", "range": range}), "action"),
            (
                json!({"action": "flyAway", "uri": "file:///a", "range": range}),
                "action",
            ),
            (
                json!({"action": "rewriteSelection", "uri": "file:///a", "range": range}),
                "tone",
            ),
            (
                json!({"action": "rewriteSelection", "tone": "  ", "uri": "file:///a", "range": range}),
                "tone",
            ),
            (
                json!({"action": "rewriteSelection", "tone": "x".repeat(201), "uri": "file:///a", "range": range}),
                "tone",
            ),
            (
                json!({"action": "rewriteSelection", "tone": "terse\nnow", "uri": "file:///a", "range": range}),
                "tone",
            ),
            (
                json!({"action": "rewriteSelection", "tone": 3, "uri": "file:///a", "range": range}),
                "tone",
            ),
            (
                json!({"action": "continueScene", "instruction": "й".repeat(1001), "uri": "file:///a", "range": range}),
                "instruction",
            ),
            (
                json!({"action": "continueScene", "instruction": ["a"], "uri": "file:///a", "range": range}),
                "instruction",
            ),
            (
                json!({"action": "continueScene", "instruction": "a\u{7}b", "uri": "file:///a", "range": range}),
                "instruction",
            ),
            (
                json!({"action": "rewriteSelection", "tone": "vivid", "instruction": "shorter", "uri": "file:///a", "range": range}),
                "instruction",
            ),
            (
                json!({"action": "continueScene", "tone": "vivid", "uri": "file:///a", "range": range}),
                "tone",
            ),
            (
                json!({"action": "continueScene", "uri": 7, "range": range}),
                "uri",
            ),
            (
                json!({"action": "continueScene", "uri": "file:///a", "range": {"start": 1}}),
                "range",
            ),
            (
                json!({"action": "continueScene", "uri": "file:///a", "range": range, "version": "3"}),
                "version",
            ),
        ];
        for (args, field) in cases {
            let label = args.to_string();
            assert_eq!(field_of(decode_generate(args)), field, "{label}");
        }
    }

    /// What a field of a random argument object holds.
    #[derive(Debug, Clone)]
    enum FieldValue {
        Absent,
        /// A value the field accepts.
        Valid,
        /// A string no field accepts (but `tone` and `instruction`, which take free text): a
        /// stand-in for manuscript text or a key.
        Sentinel(String),
        /// A free text field's value past its limit, or holding a control character.
        Oversized(String),
        Number(i64),
        Array,
        Object,
        Null,
    }

    fn field_value() -> impl proptest::strategy::Strategy<Value = FieldValue> {
        use proptest::prelude::*;
        prop_oneof![
            3 => Just(FieldValue::Absent),
            4 => Just(FieldValue::Valid),
            3 => "[A-Za-z0-9 ]{0,24}".prop_map(|s| FieldValue::Sentinel(format!("SENTINEL {s}"))),
            1 => (0usize..1200, proptest::bool::ANY).prop_map(|(n, control)| {
                let tail = if control { "\u{1b}" } else { "" };
                FieldValue::Oversized(format!("SENTINEL {}{tail}", "w".repeat(n)))
            }),
            1 => any::<i64>().prop_map(FieldValue::Number),
            1 => Just(FieldValue::Array),
            1 => Just(FieldValue::Object),
            1 => Just(FieldValue::Null),
        ]
    }

    fn valid(field: &str, rewrite: bool) -> Value {
        match field {
            "action" if rewrite => json!("rewriteSelection"),
            "action" => json!("continueScene"),
            "uri" => json!("file:///novel/chapter-1.md"),
            "range" => {
                json!({"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 5}})
            }
            "tone" => json!("lyrical"),
            "instruction" if rewrite => json!(""),
            "instruction" => json!("Tomas finds the ledger"),
            _ => json!(3),
        }
    }

    proptest::proptest! {
        // 10,000 cases unless `PROPTEST_CASES` says otherwise (see README, "Property tests").
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000),
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any argument object: decoding never panics; a refusal names a field of the contract
        /// or one the object holds, and never repeats a value the client sent.
        #[test]
        fn generate_arguments_never_panic_name_a_field_and_never_echo_a_value(
            values in proptest::collection::vec(field_value(), 6),
            rewrite in proptest::prelude::any::<bool>(),
            extra in proptest::option::weighted(0.2, ("[a-z]{1,8}", "[A-Za-z ]{0,16}")),
        ) {
            const FIELDS: [&str; 6] = ["action", "uri", "range", "tone", "version", "instruction"];
            let mut args = Map::new();
            for (field, value) in FIELDS.iter().zip(&values) {
                let value = match value {
                    FieldValue::Absent => continue,
                    FieldValue::Valid => valid(field, rewrite),
                    FieldValue::Sentinel(text) | FieldValue::Oversized(text) => json!(text),
                    FieldValue::Number(n) => json!(n),
                    FieldValue::Array => json!(["SENTINEL in an array"]),
                    FieldValue::Object => json!({"SENTINEL": "SENTINEL in an object"}),
                    FieldValue::Null => Value::Null,
                };
                args.insert(field.to_string(), value);
            }
            if let Some((name, text)) = &extra
                && !FIELDS.contains(&name.as_str())
            {
                args.insert(name.clone(), json!(format!("SENTINEL {text}")));
            }
            let keys: Vec<String> = args.keys().cloned().collect();
            match GenerateRequest::decode(args) {
                Ok(request) => {
                    proptest::prop_assert!(matches!(values[0], FieldValue::Valid));
                    proptest::prop_assert_eq!(request.action.id().as_str() == "rewriteSelection", rewrite);
                    // What was accepted is within its limits.
                    if let Some(tone) = request.action.tone() {
                        proptest::prop_assert!(tone.as_str().chars().count() <= 200);
                        proptest::prop_assert!(!tone.as_str().chars().any(char::is_control));
                    }
                    if let Some(instruction) = &request.instruction {
                        proptest::prop_assert!(instruction.chars().count() <= 1000);
                        proptest::prop_assert!(!rewrite);
                    }
                }
                Err(CommandError::InvalidArgument { field, reason }) => {
                    proptest::prop_assert!(
                        FIELDS.contains(&field.as_str()) || keys.contains(&field),
                        "{field}: {reason}"
                    );
                    let wire = jsonrpc::Error::from(CommandError::InvalidArgument {
                        field: field.clone(),
                        reason: reason.clone(),
                    });
                    let text = format!("{reason} {} {:?}", wire.message, wire.data);
                    proptest::prop_assert!(!text.contains("SENTINEL"), "{field}: {text}");
                }
                Err(other) => proptest::prop_assert!(false, "not InvalidArgument: {other:?}"),
            }
        }
    }

    #[test]
    fn type_errors_never_quote_the_value() {
        let err = decode_generate(json!({
            "action": "continueScene", "uri": "file:///a",
            "range": "She whispered the secret of the lighthouse"
        }))
        .unwrap_err();
        assert!(!err.to_string().contains("lighthouse"), "{err}");
    }
}
