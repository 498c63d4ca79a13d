//! `storyteller-lsp provider add|list|test|update|remove|set-primary|models|stats`: the
//! operations of the `storyteller.providers.*` commands for terminal users, through the same
//! [`crate::admin`] functions and validators, and the request log's statistics (`stats`).

use std::io::IsTerminal;

use serde_json::{Map, Value};

use super::{Failure, KeyInput, Place, default_key_input, print_json, read_key, table};
use crate::admin::requests::{
    self, AddRequest, DisplayName, Endpoint, ModelName, ModelsRequest, Overrides, ProviderSpec,
    TestRequest, UpdateRequest,
};
use crate::admin::{self, AdminError};
use crate::messages;
use crate::providers::{ProviderKind, ProviderOptions};
use crate::secret::ApiKey;
use crate::store::ProviderId;

/// The CLI names a key `key` in its errors (`--key-stdin` or the prompt).
const KEY_FIELD: &str = "key";

pub struct AddOptions {
    pub provider: String,
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub display_name: Option<String>,
    pub primary: bool,
    pub session: Option<String>,
    /// `NAME=VALUE` pairs of the provider's options (`folderId=…`).
    pub options: Vec<String>,
    pub key_stdin: bool,
    /// Custom endpoints that need no key.
    pub no_key: bool,
}

pub struct TestOptions {
    pub provider: Option<String>,
    pub id: Option<i64>,
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub options: Vec<String>,
    pub key_stdin: bool,
    pub ask_key: bool,
    pub json: bool,
}

pub struct UpdateOptions {
    pub id: i64,
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub default_endpoint: bool,
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub options: Vec<String>,
    /// Read a new key from stdin.
    pub key_stdin: bool,
    /// Ask for a new key on the terminal.
    pub new_key: bool,
}

pub struct ModelsOptions {
    pub id: Option<i64>,
    pub provider: Option<String>,
    pub endpoint: Option<String>,
    pub options: Vec<String>,
    pub key_stdin: bool,
    pub json: bool,
}

fn key_from(input: Option<KeyInput>, prompt: &str) -> Result<Option<ApiKey>, Failure> {
    match read_key(input, prompt)? {
        Some(text) => Ok(Some(requests::parse_key(KEY_FIELD, &text)?)),
        None => Ok(None),
    }
}

/// `NAME=VALUE` pairs as the JSON object the options validator takes (`true`/`false` become
/// booleans, for `euResident`).
fn options_object(pairs: &[String]) -> Result<Option<Map<String, Value>>, Failure> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut object = Map::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--option {pair}: expected NAME=VALUE")))?;
        let value = match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_string()),
        };
        object.insert(name.to_string(), value);
    }
    Ok(Some(object))
}

fn options_for(kind: ProviderKind, pairs: &[String]) -> Result<ProviderOptions, Failure> {
    match options_object(pairs)? {
        Some(object) => Ok(requests::parse_options("option", kind, object)?),
        None => Ok(ProviderOptions::default()),
    }
}

fn model(text: Option<String>) -> Result<Option<ModelName>, AdminError> {
    text.map(|m| ModelName::parse("model", &m)).transpose()
}

fn endpoint(text: Option<String>) -> Result<Option<Endpoint>, AdminError> {
    text.map(|e| Endpoint::parse("endpoint", &e)).transpose()
}

pub async fn add(place: &Place, o: AddOptions) -> Result<(), Failure> {
    let kind = requests::parse_kind("provider", &o.provider)?;
    let spec = ProviderSpec::new(
        kind,
        model(o.model)?,
        endpoint(o.endpoint)?,
        options_for(kind, &o.options)?,
    )?;
    let display_name = o
        .display_name
        .map(|d| DisplayName::parse("display-name", &d))
        .transpose()?;
    let session = o
        .session
        .map(|s| requests::parse_session_name("session", &s))
        .transpose()?;
    let system_key = o.no_key && session.is_none() && kind.entry().key_env.is_some();
    let key = if session.is_some() || o.no_key {
        None
    } else {
        let input = default_key_input(o.key_stdin).ok_or_else(|| {
            Failure::usage(
                "no key given: pipe it with --key-stdin, or run in a terminal to be asked",
            )
        })?;
        key_from(
            Some(input),
            &format!("API key for {}: ", kind.display_name()),
        )?
    };
    let named_model = spec.model.is_some();
    // `--no-key` for a kind with a system key variable (OPENAI_API_KEY, …): use that key.
    let request = if system_key {
        AddRequest::with_system_key(spec, display_name, o.primary)?
    } else {
        AddRequest::new(spec, key, session, display_name, o.primary).map_err(rename_key_field)?
    };
    let stores_key = matches!(request.key, admin::KeyChoice::Own(_));
    let (app, project) = place.open().await?;
    eprintln!("{}", messages::TESTING_CONNECTION);
    let row = admin::add(&app, project, request).await?;
    println!(
        "{}: {} (id {})",
        messages::PROVIDER_ADDED,
        row.display_name,
        row.id
    );
    if system_key && let Some(variable) = kind.entry().key_env {
        eprintln!("(it uses the system key from {variable}; nothing was stored)");
    }
    if !named_model && kind.default_model().is_empty() {
        eprintln!("(model: {}, the first its endpoint lists)", row.model);
    }
    if place.project.is_none() {
        // Editors use the project of their workspace folder: say where this one went.
        eprintln!(
            "(added to the default project: it serves every workspace without providers of its \
             own; use --project DIR to give one workspace folder its own providers)"
        );
    }
    if stores_key {
        warn_if_file(&app).await;
    }
    Ok(())
}

/// After a key was stored: the §7 "fallback store" warning when it went to the encrypted file,
/// or a note when `--credential-store file` chose it.
async fn warn_if_file(app: &crate::app::App) {
    if let Ok((_, Some(notice))) = app.credentials().await {
        let label = if notice.chosen { "note" } else { "warning" };
        eprintln!("{label}: {}", notice.message());
    }
}

/// `apiKey` is the editor's name for it; the terminal's is `key`.
fn rename_key_field(e: AdminError) -> AdminError {
    match e {
        AdminError::Invalid { field, reason } if field == "apiKey" => AdminError::Invalid {
            field: KEY_FIELD.into(),
            reason: format!(
                "{reason} (pipe it with --key-stdin, or use --no-key for the system key from the environment or a custom endpoint without one)"
            ),
        },
        other => other,
    }
}

pub async fn list(place: &Place, json: bool) -> Result<(), Failure> {
    let (app, project) = place.open().await?;
    let providers = admin::list(&app, project).await?;
    if json {
        return print_json(&providers);
    }
    if providers.is_empty() {
        println!("{}", messages::EMPTY_PROVIDER_LIST);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = providers
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.provider.to_string(),
                p.display_name.clone(),
                p.model.clone(),
                yes_no(p.is_primary),
                yes_no(p.is_active),
                p.key_source.as_str().to_string(),
                p.key_hint.clone().unwrap_or_else(|| "-".into()),
                p.endpoint.clone(),
                p.last_used_at.clone().unwrap_or_else(|| "-".into()),
                p.median_latency_ms
                    .map_or_else(|| "-".to_string(), |ms| format!("{ms} ms")),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ID",
                "PROVIDER",
                "NAME",
                "MODEL",
                "PRIMARY",
                "ACTIVE",
                "KEY SOURCE",
                "KEY HINT",
                "ENDPOINT",
                "LAST USED",
                "MEDIAN"
            ],
            &rows
        )
    );
    Ok(())
}

/// `provider stats [--days N] [--json]`: the request log per provider.
pub async fn stats(place: &Place, days: u32, json: bool) -> Result<(), Failure> {
    if days == 0 {
        return Err(Failure::usage("--days: give at least 1"));
    }
    let (app, _) = place.open().await?;
    let stats = admin::stats(&app, days).await?;
    if json {
        return print_json(&stats);
    }
    if stats.is_empty() {
        println!("No requests in the last {days} days.");
        return Ok(());
    }
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} ms"));
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|p| {
            let errors = if p.stats.errors.is_empty() {
                "-".to_string()
            } else {
                p.stats
                    .errors
                    .iter()
                    .map(|(kind, n)| format!("{kind} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                p.stats
                    .provider_id
                    .map_or_else(|| "-".to_string(), |id| id.to_string()),
                p.stats.provider.to_string(),
                p.display_name.clone(),
                p.stats.requests.to_string(),
                p.stats.ok.to_string(),
                errors,
                ms(p.stats.median_latency_ms),
                ms(p.stats.p95_latency_ms),
                format!("{}/{}", p.stats.input_tokens, p.stats.output_tokens),
                p.last_used_at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    println!("Requests in the last {days} days:");
    print!(
        "{}",
        table(
            &[
                "ID",
                "PROVIDER",
                "NAME",
                "REQUESTS",
                "OK",
                "ERRORS",
                "MEDIAN",
                "P95",
                "TOKENS IN/OUT",
                "LAST USED"
            ],
            &rows
        )
    );
    Ok(())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

pub async fn test(place: &Place, o: TestOptions) -> Result<(), Failure> {
    let input = if o.key_stdin {
        Some(KeyInput::Stdin)
    } else if o.ask_key {
        Some(KeyInput::Prompt)
    } else {
        None
    };
    let expected = o
        .provider
        .as_deref()
        .map(|p| requests::parse_kind("provider", p))
        .transpose()?;
    let key = key_from(input, "API key: ")?;
    let request = match (o.id, expected) {
        (Some(id), _) => TestRequest::Stored {
            id: requests::parse_id("id", id)?,
            overrides: Overrides {
                key,
                model: model(o.model)?,
                endpoint: endpoint(o.endpoint)?.map(Some),
                options: options_object(&o.options)?,
            },
        },
        (None, Some(kind)) => TestRequest::New {
            spec: ProviderSpec::new(
                kind,
                model(o.model)?,
                endpoint(o.endpoint)?,
                options_for(kind, &o.options)?,
            )?,
            key,
        },
        (None, None) => {
            return Err(Failure::usage(
                "name a provider kind (e.g. `provider test openai`) or a stored provider (--id N)",
            ));
        }
    };
    let (app, project) = place.open().await?;
    let report = admin::test(&app, project, request, expected).await?;
    if o.json {
        return print_json(&report);
    }
    println!(
        "{} ({} ms)",
        messages::test_ok(&report.model),
        report.latency_ms
    );
    Ok(())
}

pub async fn update(place: &Place, o: UpdateOptions) -> Result<(), Failure> {
    if o.endpoint.is_some() && o.default_endpoint {
        return Err(Failure::usage(
            "give either --endpoint or --default-endpoint, not both",
        ));
    }
    if o.key_stdin && o.new_key {
        return Err(Failure::usage(
            "give either --key-stdin or --new-key, not both",
        ));
    }
    let input = if o.key_stdin {
        Some(KeyInput::Stdin)
    } else if o.new_key {
        Some(KeyInput::Prompt)
    } else {
        None
    };
    let key = key_from(input, "New API key: ")?;
    let endpoint = if o.default_endpoint {
        Some(None)
    } else {
        endpoint(o.endpoint)?.map(Some)
    };
    let request = UpdateRequest {
        id: requests::parse_id("id", o.id)?,
        changes: Overrides {
            key,
            model: model(o.model)?,
            endpoint,
            options: options_object(&o.options)?,
        },
        display_name: o
            .display_name
            .map(|d| DisplayName::parse("display-name", &d))
            .transpose()?,
        is_active: o.active,
    };
    let (app, project) = place.open().await?;
    let updated = admin::update(&app, project, request).await?;
    let mut what = Vec::new();
    if updated.tested {
        what.push("connection tested");
    }
    if updated.key_rotated {
        what.push("key replaced");
    }
    let detail = if what.is_empty() {
        String::new()
    } else {
        format!(" ({})", what.join(", "))
    };
    println!(
        "Updated {} (id {}){detail}",
        updated.row.display_name, updated.row.id
    );
    if updated.key_rotated {
        warn_if_file(&app).await;
    }
    Ok(())
}

pub async fn remove(place: &Place, id: i64, yes: bool) -> Result<(), Failure> {
    let id = requests::parse_id("id", id)?;
    let (app, project) = place.open().await?;
    let row = admin::provider(&app, project, id).await?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(
                "refusing to remove without confirmation: stdin is not a terminal; add --yes",
            ));
        }
        if !super::confirm(&messages::confirm_remove(&row.display_name))? {
            println!("Not removed.");
            return Ok(());
        }
    }
    let removed = admin::remove(&app, project, id).await?;
    println!("Removed {} (id {}).", removed.removed.display_name, id);
    if removed.needs_new_primary()
        && let Some(next) = removed.remaining.first()
    {
        admin::set_primary(&app, project, next.id).await?;
        println!("{}", messages::admin::primary_chosen(&next.display_name));
    }
    Ok(())
}

pub async fn set_primary(place: &Place, id: i64) -> Result<(), Failure> {
    let id: ProviderId = requests::parse_id("id", id)?;
    let (app, project) = place.open().await?;
    let row = admin::set_primary(&app, project, id).await?;
    println!("{} is now the primary provider.", row.display_name);
    Ok(())
}

pub async fn models(place: &Place, o: ModelsOptions) -> Result<(), Failure> {
    let request = match (o.id, o.provider) {
        (Some(_), Some(_)) => {
            return Err(Failure::usage("give either an id or --provider, not both"));
        }
        (Some(id), None) => {
            if o.key_stdin || o.endpoint.is_some() || !o.options.is_empty() {
                return Err(Failure::usage(
                    "--key-stdin, --endpoint and --option go with --provider, not with an id",
                ));
            }
            ModelsRequest::Stored(requests::parse_id("id", id)?)
        }
        (None, Some(provider)) => {
            let kind = requests::parse_kind("provider", &provider)?;
            let endpoint = endpoint(o.endpoint)?;
            if kind == ProviderKind::Custom && endpoint.is_none() {
                return Err(AdminError::Invalid {
                    field: "endpoint".into(),
                    reason: "is required for a custom provider".into(),
                }
                .into());
            }
            let input = o.key_stdin.then_some(KeyInput::Stdin);
            ModelsRequest::New {
                kind,
                key: key_from(input, "API key: ")?,
                endpoint,
                options: options_for(kind, &o.options)?,
            }
        }
        (None, None) => {
            return Err(Failure::usage(
                "name a stored provider (its id) or a kind (--provider openai)",
            ));
        }
    };
    let (app, project) = place.open().await?;
    let models = admin::models(&app, project, request).await?;
    if o.json {
        return print_json(&models);
    }
    for model in models {
        match model.display_name {
            Some(name) if name != model.id => println!("{}\t{name}", model.id),
            _ => println!("{}", model.id),
        }
    }
    Ok(())
}
