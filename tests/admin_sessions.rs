//! Named auth sessions through the domain: the key lives under
//! `session_{provider}_{auth_type}_{name}`, a provider can use it instead of its own, removing
//! the session deletes its key and detaches its providers; the sessions the V4 migration
//! backfilled without a key fall through to the next key source.

mod admin_support;

use admin_support::{Fixture, key};
use storyteller_lsp::admin::{
    self, AddRequest, AdminError, Endpoint, ProviderSpec, SessionRequest,
};
use storyteller_lsp::credentials::{Account, KeySource, VarMap};
use storyteller_lsp::providers::{AuthType, ProviderKind, ProviderOptions};
use storyteller_lsp::store::{self, NewProvider, SessionName};

/// A session request whose key is tested against the simulator.
fn session(fx: &Fixture, kind: ProviderKind, name: &str, api_key: &str) -> SessionRequest {
    SessionRequest {
        kind,
        auth_type: AuthType::ApiKey,
        name: SessionName::new(name).unwrap(),
        key: key(api_key),
        expires_at: None,
        endpoint: Endpoint::parse("endpoint", &fx.endpoint(kind)).ok(),
    }
}

#[tokio::test]
async fn a_session_key_is_stored_under_its_account_and_listed_masked() {
    let fx = Fixture::new().await;
    let row = admin::add_session(
        &fx.app,
        session(&fx, ProviderKind::OpenAi, "work", "sk-session-work-0101"),
    )
    .await
    .unwrap();
    let account = Account::session(ProviderKind::OpenAi, AuthType::ApiKey, "work").unwrap();
    assert_eq!(account.as_str(), "session_openai_api_key_work");
    assert_eq!(
        admin_support::stored_key(fx.path(), &account)
            .await
            .as_deref(),
        Some("sk-session-work-0101")
    );
    let listed = admin::list_sessions(&fx.app, None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, row.id.0);
    assert_eq!(listed[0].key_hint.as_deref(), Some("••••0101"));
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains("sk-session-work-0101"));
    assert!(
        admin::list_sessions(&fx.app, Some(ProviderKind::Claude))
            .await
            .unwrap()
            .is_empty()
    );

    let err = admin::add_session(
        &fx.app,
        session(&fx, ProviderKind::OpenAi, "work", "sk-session-dup-0102"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, AdminError::DuplicateSession { .. }),
        "{err:?}"
    );
    assert_eq!(
        admin_support::stored_key(fx.path(), &account)
            .await
            .as_deref(),
        Some("sk-session-work-0101"),
        "a duplicate never overwrites the session's key"
    );
}

#[tokio::test]
async fn a_provider_can_use_a_session_key_until_the_session_is_removed() {
    let fx = Fixture::new().await;
    let work = admin::add_session(
        &fx.app,
        session(&fx, ProviderKind::OpenAi, "work", "sk-session-shared-0103"),
    )
    .await
    .unwrap();
    let spec = ProviderSpec::new(
        ProviderKind::OpenAi,
        None,
        Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::OpenAi)).ok(),
        ProviderOptions::default(),
    )
    .unwrap();
    let request = AddRequest::new(spec, None, SessionName::new("work").ok(), None, false).unwrap();
    let provider = admin::add(&fx.app, fx.project, request).await.unwrap();
    assert_eq!(provider.session_id, Some(work.id));
    let tested = fx.sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(tested[0].header("authorization"), Some("Bearer ••••0103"));
    assert_eq!(
        fx.key_of(ProviderKind::OpenAi).await,
        None,
        "no own key stored"
    );
    let listed = admin::list(&fx.app, fx.project).await.unwrap();
    assert_eq!(listed[0].session.as_deref(), Some("work"));
    assert_eq!(listed[0].key_hint.as_deref(), Some("••••0103"));
    let sessions = admin::list_sessions(&fx.app, None).await.unwrap();
    assert_eq!(sessions[0].used_by, [provider.id.0]);

    let removed = admin::remove_session(&fx.app, work.id).await.unwrap();
    assert_eq!(removed.detached, [provider.id]);
    assert!(
        fx.accounts().await.is_empty(),
        "the session's key is deleted"
    );
    let (providers, sessions) = admin_support::rows(fx.path());
    assert!(sessions.is_empty());
    assert_eq!(providers[0].session_id, None, "the provider detached");
    let listed = admin::list(&fx.app, fx.project).await.unwrap();
    assert_eq!(listed[0].key_source, KeySource::None);
}

#[tokio::test]
async fn a_session_without_a_key_cannot_back_a_new_provider() {
    let fx = Fixture::new().await;
    let missing = AddRequest::new(
        ProviderSpec::new(ProviderKind::Claude, None, None, ProviderOptions::default()).unwrap(),
        None,
        SessionName::new("nosuch").ok(),
        None,
        false,
    )
    .unwrap();
    let err = admin::add(&fx.app, fx.project, missing).await.unwrap_err();
    assert!(
        matches!(&err, AdminError::NotFound { field, .. } if field == "session"),
        "{err:?}"
    );
    assert!(fx.sim.requests(None).is_empty());
}

#[tokio::test]
async fn backfilled_sessions_without_keys_fall_through_to_the_system_key() {
    let mut env = VarMap::default();
    env.set("OPENAI_API_KEY", "sk-system-key-for-backfill-0104");
    let fx = Fixture::with_env(env).await;
    // What the V4 backfill left: a `default_openai_api_key` session without a key, and a
    // provider pointing at it, without a project key either.
    let project = fx.project;
    fx.app
        .store()
        .call(move |conn| {
            let name = SessionName::default_for(ProviderKind::OpenAi, AuthType::ApiKey);
            let session =
                store::sessions::add(conn, ProviderKind::OpenAi, AuthType::ApiKey, &name)?;
            let mut new = NewProvider::new(project, ProviderKind::OpenAi);
            new.session_id = Some(session.id);
            store::providers::insert(conn, &new)
        })
        .await
        .unwrap();
    let listed = admin::list(&fx.app, fx.project).await.unwrap();
    assert_eq!(listed[0].session.as_deref(), Some("default_openai_api_key"));
    assert_eq!(listed[0].key_source, KeySource::Env);
    assert_eq!(listed[0].key_hint.as_deref(), Some("••••0104"));
    let sessions = admin::list_sessions(&fx.app, None).await.unwrap();
    assert_eq!(sessions[0].key_hint, None, "listed as having no key");
}

#[tokio::test]
async fn removing_an_unknown_session_names_the_id() {
    let fx = Fixture::new().await;
    let err = admin::remove_session(&fx.app, store::SessionId(77))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AdminError::NotFound { field, .. } if field == "id"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_session_key_is_tested_before_it_is_stored() {
    let fx = Fixture::new().await;
    let err = admin::add_session(
        &fx.app,
        session(&fx, ProviderKind::OpenAi, "work", "sk-invalid-session-0201"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AdminError::Connection { .. }), "{err:?}");
    assert_eq!(err.kind(), "invalidKey");
    let tested = fx.sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(tested.len(), 1, "one connection test");
    assert_eq!(tested[0].path, "/openai/v1/models");
    assert!(fx.accounts().await.is_empty(), "no key stored");
    let (_, sessions) = admin_support::rows(fx.path());
    assert!(sessions.is_empty(), "no row stored");

    // Without an endpoint, a configured provider of the kind is where the key is tested.
    let spec = ProviderSpec::new(
        ProviderKind::OpenAi,
        None,
        Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::OpenAi)).ok(),
        ProviderOptions::default(),
    )
    .unwrap();
    let own = AddRequest::new(spec, Some(key("sk-own-key-0202")), None, None, false).unwrap();
    admin::add(&fx.app, fx.project, own).await.unwrap();
    fx.sim.clear_requests();
    let request = SessionRequest {
        endpoint: None,
        ..session(&fx, ProviderKind::OpenAi, "home", "sk-session-home-0203")
    };
    admin::add_session(&fx.app, request).await.unwrap();
    let tested = fx.sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(tested[0].header("authorization"), Some("Bearer ••••0203"));
}

#[tokio::test]
async fn an_expired_session_is_refused_and_listed_as_expired() {
    let fx = Fixture::new().await;
    let in_a_day = chrono::Utc::now() + chrono::Duration::days(1);
    let request = SessionRequest {
        expires_at: Some(in_a_day),
        ..session(&fx, ProviderKind::OpenAi, "trial", "sk-session-trial-0301")
    };
    let row = admin::add_session(&fx.app, request).await.unwrap();
    let listed = admin::list_sessions(&fx.app, None).await.unwrap();
    assert!(listed[0].expires_at.is_some());
    assert!(!listed[0].expired);
    let spec = || {
        ProviderSpec::new(
            ProviderKind::OpenAi,
            None,
            Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::OpenAi)).ok(),
            ProviderOptions::default(),
        )
        .unwrap()
    };
    let uses = AddRequest::new(spec(), None, SessionName::new("trial").ok(), None, false).unwrap();
    let provider = admin::add(&fx.app, fx.project, uses).await.unwrap();

    // The day passes.
    let id = row.id;
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    fx.app
        .store()
        .call(move |c| store::sessions::set_expiry(c, id, Some(yesterday)))
        .await
        .unwrap();
    let listed = admin::list_sessions(&fx.app, None).await.unwrap();
    assert!(listed[0].expired, "listed as expired");
    fx.sim.clear_requests();
    let err = admin::test(
        &fx.app,
        fx.project,
        admin::TestRequest::Stored {
            id: provider.id,
            overrides: Default::default(),
        },
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, AdminError::SessionExpired { name, .. } if name.as_str() == "trial"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("session trial has expired"),
        "{err}"
    );
    assert!(
        fx.sim.requests(None).is_empty(),
        "the expired key was not sent"
    );
    let resolved = fx
        .app
        .resolve_key(
            &admin::provider(&fx.app, fx.project, provider.id)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(resolved.is_none(), "an expired session's key is not used");
    admin::remove(&fx.app, fx.project, provider.id)
        .await
        .unwrap();
    let again = AddRequest::new(spec(), None, SessionName::new("trial").ok(), None, false).unwrap();
    let err = admin::add(&fx.app, fx.project, again).await.unwrap_err();
    assert_eq!(err.kind(), "sessionExpired");
}

#[tokio::test]
async fn a_request_with_a_session_key_touches_the_session() {
    use storyteller_lsp::providers::{CompletionRequest, Message};
    use storyteller_lsp::routing::Budget;

    let fx = Fixture::new().await;
    let work = admin::add_session(
        &fx.app,
        session(&fx, ProviderKind::OpenAi, "work", "sk-session-touch-0401"),
    )
    .await
    .unwrap();
    assert_eq!(work.last_used_at, None);
    let spec = ProviderSpec::new(
        ProviderKind::OpenAi,
        None,
        Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::OpenAi)).ok(),
        ProviderOptions::default(),
    )
    .unwrap();
    let uses = AddRequest::new(spec, None, SessionName::new("work").ok(), None, false).unwrap();
    admin::add(&fx.app, fx.project, uses).await.unwrap();
    let (_, sessions) = admin_support::rows(fx.path());
    assert_eq!(sessions[0].last_used_at, None, "testing is not using");

    let router = fx.app.router(fx.project).await.unwrap();
    let request = CompletionRequest::new(vec![Message::user("Continue the scene.")]);
    router
        .generate(&request, Budget::Action(std::time::Duration::from_secs(20)))
        .await
        .unwrap();
    let touched = async {
        loop {
            let id = work.id;
            let row = fx
                .app
                .store()
                .call(move |c| store::sessions::get(c, id))
                .await
                .unwrap();
            if row.last_used_at.is_some() {
                return row;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), touched)
        .await
        .expect("the session's lastUsedAt is recorded");
}
