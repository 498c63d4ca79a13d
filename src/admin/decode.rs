//! The argument objects of the `storyteller.providers.*` and `storyteller.sessions.*` commands
//! (DESIGN.md §3), decoded into requests. Plain JSON, no LSP: the protocol edge hands over the
//! one argument object and gets a request or an [`AdminError::Invalid`] naming the field.
//!
//! Additions to the contract's field lists, all optional: `options` on `update` and `models`
//! (a Yandex folder or an OpenAI organization can change without removing the provider).

use serde_json::{Map, Value};

use super::AdminError;
use super::requests::{
    AddRequest, DisplayName, Endpoint, ModelName, ModelsRequest, Overrides, ProviderSpec,
    SessionRequest, TestRequest, UpdateRequest, invalid, parse_auth_type, parse_id, parse_key,
    parse_kind, parse_options, parse_session_id, parse_session_name,
};
use crate::args::Fields;
use crate::providers::{AuthType, ProviderKind, ProviderOptions};
use crate::store::{ProviderId, SessionId};

type Args = Map<String, Value>;

/// `{}`: commands without arguments.
pub fn nothing(args: Args) -> Result<(), AdminError> {
    Fields::new(args, &[])?;
    Ok(())
}

/// `{id}`.
pub fn id(args: Args) -> Result<ProviderId, AdminError> {
    let mut f = Fields::new(args, &["id"])?;
    parse_id("id", f.required_int("id")?)
}

fn options(f: &mut Fields, kind: ProviderKind) -> Result<Option<ProviderOptions>, AdminError> {
    f.optional_object("options")?
        .map(|object| parse_options("options", kind, object))
        .transpose()
}

fn model(f: &mut Fields) -> Result<Option<ModelName>, AdminError> {
    f.optional_str("model")?
        .map(|m| ModelName::parse("model", &m))
        .transpose()
}

fn endpoint(f: &mut Fields) -> Result<Option<Endpoint>, AdminError> {
    f.optional_str("endpoint")?
        .map(|e| Endpoint::parse("endpoint", &e))
        .transpose()
}

fn key(f: &mut Fields) -> Result<Option<crate::credentials::ApiKey>, AdminError> {
    f.optional_str("apiKey")?
        .map(|k| parse_key("apiKey", &k))
        .transpose()
}

/// `{provider, apiKey?, model?, endpoint?, options?, id?}`: with `id`, the stored provider with
/// the given values replacing its own; `provider`, if given too, must be its kind (the operation
/// checks it against the row, returned here as the second value).
pub fn test(args: Args) -> Result<(TestRequest, Option<ProviderKind>), AdminError> {
    let mut f = Fields::new(
        args,
        &["provider", "apiKey", "model", "endpoint", "options", "id"],
    )?;
    let id = f
        .optional_int("id")?
        .map(|i| parse_id("id", i))
        .transpose()?;
    let kind = f
        .optional_str("provider")?
        .map(|p| parse_kind("provider", &p))
        .transpose()?;
    let key = key(&mut f)?;
    let model = model(&mut f)?;
    let endpoint = endpoint(&mut f)?;
    match (id, kind) {
        (Some(id), kind) => {
            let overrides = Overrides {
                key,
                model,
                endpoint: endpoint.map(Some),
                options: f.optional_object("options")?,
            };
            Ok((TestRequest::Stored { id, overrides }, kind))
        }
        (None, Some(kind)) => {
            let options = options(&mut f, kind)?.unwrap_or_default();
            Ok((
                TestRequest::New {
                    spec: ProviderSpec::new(kind, model, endpoint, options)?,
                    key,
                },
                Some(kind),
            ))
        }
        (None, None) => Err(invalid(
            "provider",
            "is required (or give the id of a stored provider)",
        )),
    }
}

/// `{provider, apiKey, model?, endpoint?, displayName?, primary?, session?, options?,
/// keySource?}`; `keySource: "env"` instead of `apiKey`/`session` uses the system key.
pub fn add(args: Args) -> Result<AddRequest, AdminError> {
    let mut f = Fields::new(
        args,
        &[
            "provider",
            "apiKey",
            "model",
            "endpoint",
            "displayName",
            "primary",
            "session",
            "options",
            "keySource",
        ],
    )?;
    let kind = parse_kind("provider", &f.required_str("provider")?)?;
    let key_source = f.optional_str("keySource")?;
    let key = key(&mut f)?;
    let model = model(&mut f)?;
    let endpoint = endpoint(&mut f)?;
    let display_name = f
        .optional_str("displayName")?
        .map(|d| DisplayName::parse("displayName", &d))
        .transpose()?;
    let primary = f.optional_bool("primary")?.unwrap_or(false);
    let session = f
        .optional_str("session")?
        .map(|s| parse_session_name("session", &s))
        .transpose()?;
    let options = options(&mut f, kind)?.unwrap_or_default();
    let spec = ProviderSpec::new(kind, model, endpoint, options)?;
    match key_source.as_deref() {
        None => AddRequest::new(spec, key, session, display_name, primary),
        Some("env") if key.is_some() || session.is_some() => Err(invalid(
            "keySource",
            "env takes the key from the environment: give no apiKey or session with it",
        )),
        Some("env") => AddRequest::with_system_key(spec, display_name, primary),
        Some(_) => Err(invalid(
            "keySource",
            "expected env (or leave it out and give apiKey or session)",
        )),
    }
}

/// `{id, apiKey?, model?, endpoint?, displayName?, isActive?, options?}`. `endpoint: null`
/// returns to the catalogue's endpoint.
pub fn update(args: Args) -> Result<UpdateRequest, AdminError> {
    let mut f = Fields::new(
        args,
        &[
            "id",
            "apiKey",
            "model",
            "endpoint",
            "displayName",
            "isActive",
            "options",
        ],
    )?;
    let id = parse_id("id", f.required_int("id")?)?;
    let key = key(&mut f)?;
    let model = model(&mut f)?;
    let endpoint = f
        .nullable_str("endpoint")?
        .map(|e| e.map(|e| Endpoint::parse("endpoint", &e)).transpose())
        .transpose()?;
    let display_name = f
        .optional_str("displayName")?
        .map(|d| DisplayName::parse("displayName", &d))
        .transpose()?;
    let is_active = f.optional_bool("isActive")?;
    let options = f.optional_object("options")?;
    Ok(UpdateRequest {
        id,
        changes: Overrides {
            key,
            model,
            endpoint,
            options,
        },
        display_name,
        is_active,
    })
}

/// `{id, confirmed?}`.
pub fn remove(args: Args) -> Result<(ProviderId, bool), AdminError> {
    let mut f = Fields::new(args, &["id", "confirmed"])?;
    let id = parse_id("id", f.required_int("id")?)?;
    let confirmed = f.optional_bool("confirmed")?.unwrap_or(false);
    Ok((id, confirmed))
}

/// `{id}` or `{provider, apiKey?, endpoint?, options?}`.
pub fn models(args: Args) -> Result<ModelsRequest, AdminError> {
    let mut f = Fields::new(args, &["id", "provider", "apiKey", "endpoint", "options"])?;
    if let Some(id) = f.optional_int("id")? {
        for other in ["provider", "apiKey", "endpoint", "options"] {
            if f.has(other) {
                return Err(invalid(other, "give either id or provider, not both"));
            }
        }
        return Ok(ModelsRequest::Stored(parse_id("id", id)?));
    }
    let kind = match f.optional_str("provider")? {
        Some(p) => parse_kind("provider", &p)?,
        None => {
            return Err(invalid(
                "provider",
                "is required (or give the id of a stored provider)",
            ));
        }
    };
    let key = key(&mut f)?;
    let endpoint = endpoint(&mut f)?;
    if kind == ProviderKind::Custom && endpoint.is_none() {
        return Err(invalid("endpoint", "is required for a custom provider"));
    }
    let options = options(&mut f, kind)?.unwrap_or_default();
    Ok(ModelsRequest::New {
        kind,
        key,
        endpoint,
        options,
    })
}

/// `{provider?}`.
pub fn sessions_list(args: Args) -> Result<Option<ProviderKind>, AdminError> {
    let mut f = Fields::new(args, &["provider"])?;
    f.optional_str("provider")?
        .map(|p| parse_kind("provider", &p))
        .transpose()
}

/// `{provider, authType?, name, apiKey}`.
pub fn sessions_add(args: Args) -> Result<SessionRequest, AdminError> {
    let mut f = Fields::new(
        args,
        &[
            "provider",
            "authType",
            "name",
            "apiKey",
            "expiresAt",
            "endpoint",
        ],
    )?;
    let kind = parse_kind("provider", &f.required_str("provider")?)?;
    let auth_type = match f.optional_str("authType")? {
        Some(t) => parse_auth_type("authType", &t)?,
        None => AuthType::ApiKey,
    };
    let name = parse_session_name("name", &f.required_str("name")?)?;
    let key = parse_key("apiKey", &f.required_str("apiKey")?)?;
    let expires_at = f
        .optional_str("expiresAt")?
        .map(|t| super::requests::parse_expiry("expiresAt", &t))
        .transpose()?;
    let endpoint = endpoint(&mut f)?;
    Ok(SessionRequest {
        kind,
        auth_type,
        name,
        key,
        expires_at,
        endpoint,
    })
}

/// `{id}` of a session.
pub fn session_id(args: Args) -> Result<SessionId, AdminError> {
    let mut f = Fields::new(args, &["id"])?;
    parse_session_id("id", f.required_int("id")?)
}
