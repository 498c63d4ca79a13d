//! "Sign in with OpenRouter" (issue 15): the PKCE flow of [`crate::oauth`], then the key is tested,
//! stored as a named session with `auth_type = oauth` (key first, then the row, under the intent
//! journal like every session), and the project's OpenRouter provider is added or pointed at it.
//!
//! The edges differ only in how the browser is opened ([`Opener`]): the LSP asks the editor with
//! `window/showDocument`, the CLI prints the address. A code pasted by the author (remote
//! sessions) completes the pending flow through [`complete_with_code`].

use std::future::Future;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::AdminError;
use super::providers::{connect, store_error};
use super::requests::invalid;
use super::sessions::store_session;
use crate::app::App;
use crate::credentials::Account;
use crate::oauth::{self, CallbackListener, OAuthError, OpenRouterUrls, Pkce};
use crate::providers::{AuthType, ProviderConfig, ProviderKind};
use crate::store::{
    NewProvider, ProjectId, ProviderRow, ProviderUpdate, SessionName, SessionRow,
    providers as provider_rows, sessions as session_rows,
};

/// `storyteller.providers.signIn` / `storyteller-lsp provider sign-in`.
#[derive(Debug, Clone)]
pub struct SignInRequest {
    pub kind: ProviderKind,
    /// The session's name; `openrouter-YYYYMMDD-HHMMSS` when absent.
    pub session: Option<SessionName>,
}

/// What a sign-in did. Never the key.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: SessionRow,
    pub provider: ProviderRow,
    /// True when the provider was added, false when an existing one now uses the session.
    pub provider_added: bool,
}

/// Opens the authorization URL for the author (in the editor's browser, or printed).
pub trait Opener {
    fn open(&self, url: String) -> impl Future<Output = ()> + Send;
}

/// Runs the flow for `project`. `cancel` ends the wait for the browser (the editor's
/// `$/cancelRequest` or progress cancel, Ctrl+C in the CLI).
pub async fn sign_in(
    app: &App,
    project: ProjectId,
    request: SignInRequest,
    opener: &impl Opener,
    cancel: &CancellationToken,
) -> Result<SignedIn, AdminError> {
    let kind = request.kind;
    match kind {
        ProviderKind::OpenRouter => {}
        ProviderKind::OpenAi
        | ProviderKind::Claude
        | ProviderKind::Gemini
        | ProviderKind::DeepSeek
        | ProviderKind::Yandex
        | ProviderKind::Scaleway
        | ProviderKind::Custom => {
            return Err(invalid(
                "provider",
                crate::messages::oauth::unsupported(kind.as_str()),
            ));
        }
    }
    let name = match request.session {
        Some(name) => name,
        None => SessionName::new(format!("openrouter-{}", Utc::now().format("%Y%m%d-%H%M%S")))
            .map_err(|e| invalid("sessionName", e.to_string()))?,
    };
    let lookup = name.clone();
    if app
        .store()
        .call(move |c| session_rows::lookup(c, kind, AuthType::Oauth, &lookup))
        .await?
        .is_some()
    {
        return Err(AdminError::DuplicateSession { kind, name });
    }
    let existing = app
        .store()
        .call(move |c| {
            Ok(provider_rows::list(c, project)?
                .into_iter()
                .find(|r| r.kind == kind))
        })
        .await?;

    let urls = OpenRouterUrls::from_env(app.env().as_ref());
    let (_pending, pasted) = oauth::register_pending()?;
    let listener = CallbackListener::bind().await?;
    let pkce = Pkce::generate();
    let url = oauth::authorize_url(&urls.auth, &listener.callback_url()?, pkce.challenge());
    opener.open(url).await;
    let code = oauth::wait_for_code(listener, pasted, cancel, oauth::SIGN_IN_TIMEOUT).await?;
    let key = tokio::select! {
        _ = cancel.cancelled() => return Err(OAuthError::Cancelled.into()),
        key = oauth::exchange(app.http().reqwest(), &urls.api, &code, &pkce) => key?,
    };
    drop(code);

    // Test before storing: the provider it will serve, with the new key.
    let (endpoint, model, options, display_name) = match &existing {
        Some(row) => (
            row.endpoint(),
            row.model.clone(),
            row.options.clone(),
            row.display_name.clone(),
        ),
        None => (
            urls.api.clone(),
            kind.default_model().to_string(),
            Default::default(),
            kind.display_name().to_string(),
        ),
    };
    let config = ProviderConfig {
        kind,
        endpoint,
        model,
        api_key: Some(key.clone()),
        options,
    };
    connect(app, &config, &display_name).await?;

    let session = store_session(app, kind, AuthType::Oauth, name, key, None).await?;
    let session_id = session.id;
    let (provider, provider_added) = match existing {
        Some(row) => {
            let id = row.id;
            let updated = app
                .store()
                .call(move |c| {
                    provider_rows::update(
                        c,
                        id,
                        &ProviderUpdate {
                            session_id: Some(Some(session_id)),
                            ..Default::default()
                        },
                    )
                })
                .await
                .map_err(store_error)?;
            // Its own project key would win over the session: the sign-in replaces it.
            let (credentials, _) = app.credentials().await?;
            match credentials.delete(&Account::project(project.0, kind)).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            (updated, false)
        }
        None => {
            let endpoint = (!urls.is_default_api()).then(|| urls.api.clone());
            let new = NewProvider {
                endpoint,
                session_id: Some(session_id),
                ..NewProvider::new(project, kind)
            };
            let row = app
                .store()
                .call(move |c| provider_rows::insert(c, &new))
                .await
                .map_err(store_error)?;
            (row, true)
        }
    };
    if let Err(e) = app.reload_routes(project).await {
        tracing::warn!(project = project.0, "routes not reloaded: {e}");
    }
    tracing::info!(provider = %kind, id = provider.id.0, added = provider_added, "signed in");
    Ok(SignedIn {
        session,
        provider,
        provider_added,
    })
}

/// Completes the sign-in waiting in this process with a code the author pasted.
pub fn complete_with_code(code: &str) -> Result<(), AdminError> {
    if code.trim().is_empty() {
        return Err(invalid("code", "must not be empty"));
    }
    Ok(oauth::complete_pending(code)?)
}

/// `{provider, sessionName?}` of `storyteller.providers.signIn`.
pub fn decode_sign_in(
    args: serde_json::Map<String, serde_json::Value>,
) -> Result<SignInRequest, AdminError> {
    let mut f = crate::args::Fields::new(args, &["provider", "sessionName"])?;
    let kind = super::requests::parse_kind("provider", &f.required_str("provider")?)?;
    let session = f
        .optional_str("sessionName")?
        .map(|n| super::requests::parse_session_name("sessionName", &n))
        .transpose()?;
    Ok(SignInRequest { kind, session })
}

/// `{code}` of `storyteller.providers.signInCode`.
pub fn decode_sign_in_code(
    args: serde_json::Map<String, serde_json::Value>,
) -> Result<zeroize::Zeroizing<String>, AdminError> {
    let mut f = crate::args::Fields::new(args, &["code"])?;
    Ok(zeroize::Zeroizing::new(f.required_str("code")?))
}
