//! Provider management as the domain does it (`storyteller_lsp::admin`): real SQLite and the
//! encrypted credentials file in a temporary data directory, the simulator over loopback. What
//! each operation stores — and, when it fails, that it stores nothing — is checked from outside
//! (the database and the credentials file), not through the code under test.

mod admin_support;

use admin_support::{Fixture, key, stored_values};
use storyteller_lsp::admin::{
    self, AddRequest, AdminError, Endpoint, ModelName, ModelsRequest, Overrides, ProviderSpec,
    TestRequest, UpdateRequest,
};
use storyteller_lsp::credentials::{Account, KeySource, VarMap};
use storyteller_lsp::providers::{ProviderKind, ProviderOptions};
use storyteller_lsp::simulator::{Fault, unreachable_endpoint};
use storyteller_lsp::store::ProviderId;

fn spec(fx: &Fixture, kind: ProviderKind) -> ProviderSpec {
    ProviderSpec::new(
        kind,
        None,
        Endpoint::parse("endpoint", &fx.endpoint(kind)).ok(),
        ProviderOptions::default(),
    )
    .unwrap()
}

fn add_request(fx: &Fixture, kind: ProviderKind, api_key: &str, primary: bool) -> AddRequest {
    AddRequest::new(spec(fx, kind), Some(key(api_key)), None, None, primary).unwrap()
}

async fn add(fx: &Fixture, kind: ProviderKind, api_key: &str) -> ProviderId {
    admin::add(&fx.app, fx.project, add_request(fx, kind, api_key, false))
        .await
        .unwrap()
        .id
}

fn kind_of(e: &AdminError) -> &'static str {
    e.kind()
}

#[tokio::test]
async fn add_tests_the_key_then_stores_key_and_row() {
    let fx = Fixture::new().await;
    let row = admin::add(
        &fx.app,
        fx.project,
        add_request(&fx, ProviderKind::OpenAi, "sk-admin-add-good-0001", false),
    )
    .await
    .unwrap();

    // The simulator saw exactly the connection test (a model listing), with this key.
    let seen = fx.sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].path.ends_with("/models"), "{}", seen[0].path);
    assert_eq!(seen[0].header("authorization"), Some("Bearer ••••0001"));

    assert_eq!(
        fx.key_of(ProviderKind::OpenAi).await.as_deref(),
        Some("sk-admin-add-good-0001")
    );
    assert!(
        row.is_primary,
        "the first provider of a project is its primary"
    );
    let listed = admin::list(&fx.app, fx.project).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, row.id.0);
    assert_eq!(listed[0].key_source, KeySource::File);
    assert_eq!(listed[0].key_hint.as_deref(), Some("••••0001"));
    assert_eq!(listed[0].endpoint, fx.endpoint(ProviderKind::OpenAi));
    // The router of the project routes to it now.
    let status = fx.app.router(fx.project).await.unwrap().status();
    assert_eq!(status.providers.len(), 1);
    assert_eq!(admin_support::journal_records(fx.path()), 0);
}

#[tokio::test]
async fn a_failing_add_stores_nothing() {
    let fx = Fixture::new().await;
    let unreachable = unreachable_endpoint().unwrap();
    let cases: Vec<(&str, ProviderSpec, &str, &str)> = vec![
        (
            "rejected key",
            spec(&fx, ProviderKind::OpenAi),
            "sk-admin-invalid-key-0002",
            "invalidKey",
        ),
        (
            "unreachable endpoint",
            ProviderSpec::new(
                ProviderKind::OpenAi,
                None,
                Endpoint::parse("endpoint", &unreachable).ok(),
                ProviderOptions::default(),
            )
            .unwrap(),
            "sk-admin-unreachable-0003",
            "network",
        ),
    ];
    for (label, spec, api_key, kind) in cases {
        let request = AddRequest::new(spec, Some(key(api_key)), None, None, false).unwrap();
        let err = admin::add(&fx.app, fx.project, request).await.unwrap_err();
        assert_eq!(kind_of(&err), kind, "{label}: {err}");
        assert!(!err.to_string().contains(api_key), "{label}: {err}");
        let (providers, _) = admin_support::rows(fx.path());
        assert!(providers.is_empty(), "{label}: a row was stored");
        assert!(fx.accounts().await.is_empty(), "{label}: a key was stored");
        assert!(
            !stored_values(fx.path()).await.iter().any(|v| v == api_key),
            "{label}"
        );
        assert_eq!(admin_support::journal_records(fx.path()), 0, "{label}");
    }
}

#[tokio::test]
async fn the_author_facing_message_names_the_provider() {
    let fx = Fixture::new().await;
    let err = admin::add(
        &fx.app,
        fx.project,
        add_request(&fx, ProviderKind::Claude, "sk-ant-invalid-0004", false),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The API key for Anthropic Claude is invalid. Please check your key in Settings."
    );
    fx.sim.inject(ProviderKind::Claude, Fault::Quota, Some(1));
    let err = admin::add(
        &fx.app,
        fx.project,
        add_request(&fx, ProviderKind::Claude, "sk-ant-quota-0005", false),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "quotaExhausted");
    assert!(
        err.to_string()
            .starts_with("Your Anthropic Claude API quota")
    );
}

#[tokio::test]
async fn a_second_provider_of_the_same_kind_is_refused_before_its_key_is_touched() {
    let fx = Fixture::new().await;
    add(&fx, ProviderKind::OpenAi, "sk-admin-first-0006").await;
    fx.sim.clear_requests();
    let err = admin::add(
        &fx.app,
        fx.project,
        add_request(&fx, ProviderKind::OpenAi, "sk-admin-second-0007", false),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, AdminError::DuplicateProvider { .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), "duplicateProvider");
    assert!(
        fx.sim.requests(None).is_empty(),
        "no connection test for a duplicate"
    );
    assert_eq!(
        fx.key_of(ProviderKind::OpenAi).await.as_deref(),
        Some("sk-admin-first-0006"),
        "the existing provider's key is untouched"
    );
}

#[tokio::test]
async fn test_stores_nothing_and_falls_back_to_the_system_key() {
    let mut env = VarMap::default();
    env.set("GEMINI_API_KEY", "AIza-system-key-for-test-0008");
    let fx = Fixture::with_env(env).await;

    let report = admin::test(
        &fx.app,
        fx.project,
        TestRequest::New {
            spec: spec(&fx, ProviderKind::Gemini),
            key: None,
        },
        None,
    )
    .await
    .unwrap();
    assert!(report.ok);
    assert_eq!(report.model, "gemini-2.5-flash");
    let seen = fx.sim.requests(Some(ProviderKind::Gemini));
    assert_eq!(seen.len(), 1);
    assert!(
        format!("{:?}", seen[0]).contains("0008"),
        "the system key was used: {:?}",
        seen[0]
    );
    // Without a key anywhere: a clear error, no request.
    let err = admin::test(
        &fx.app,
        fx.project,
        TestRequest::New {
            spec: spec(&fx, ProviderKind::OpenAi),
            key: None,
        },
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AdminError::NoKey { .. }), "{err:?}");
    assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
    assert!(fx.sim.requests(Some(ProviderKind::OpenAi)).is_empty());
    let (providers, _) = admin_support::rows(fx.path());
    assert!(providers.is_empty());
    assert!(fx.accounts().await.is_empty());
}

#[tokio::test]
async fn test_of_a_stored_provider_uses_its_key_or_the_one_given() {
    let fx = Fixture::new().await;
    let id = add(&fx, ProviderKind::DeepSeek, "sk-deepseek-stored-0009").await;
    fx.sim.clear_requests();
    let stored = |overrides| TestRequest::Stored { id, overrides };
    admin::test(&fx.app, fx.project, stored(Overrides::default()), None)
        .await
        .unwrap();
    let err = admin::test(
        &fx.app,
        fx.project,
        stored(Overrides {
            key: Some(key("sk-deepseek-invalid-0010")),
            ..Overrides::default()
        }),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "invalidKey");
    let headers: Vec<_> = fx
        .sim
        .requests(Some(ProviderKind::DeepSeek))
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect();
    assert_eq!(headers, ["Bearer ••••0009", "Bearer ••••0010"]);
    // The stored key was not replaced by the tested one.
    assert_eq!(
        fx.key_of(ProviderKind::DeepSeek).await.as_deref(),
        Some("sk-deepseek-stored-0009")
    );
    let err = admin::test(
        &fx.app,
        fx.project,
        stored(Overrides::default()),
        Some(ProviderKind::OpenAi),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("provider: "), "{err}");
}

#[tokio::test]
async fn rotation_replaces_the_key_and_the_old_one_is_gone() {
    let fx = Fixture::new().await;
    let id = add(&fx, ProviderKind::OpenAi, "sk-rotate-old-key-0011").await;
    let router = fx.app.router(fx.project).await.unwrap();
    fx.sim.clear_requests();

    let updated = admin::update(
        &fx.app,
        fx.project,
        UpdateRequest {
            id,
            changes: Overrides {
                key: Some(key("sk-rotate-new-key-0012")),
                ..Overrides::default()
            },
            display_name: None,
            is_active: None,
        },
    )
    .await
    .unwrap();
    assert!(updated.key_rotated && updated.tested);
    let tested = fx.sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(tested.len(), 1, "the new key was tested first");
    assert_eq!(tested[0].header("authorization"), Some("Bearer ••••0012"));
    assert_eq!(
        fx.key_of(ProviderKind::OpenAi).await.as_deref(),
        Some("sk-rotate-new-key-0012")
    );
    let values = stored_values(fx.path()).await;
    assert!(
        !values.iter().any(|v| v == "sk-rotate-old-key-0011"),
        "the old key is gone"
    );
    assert_eq!(values.len(), 1);
    // The router was reloaded with the new key.
    let status = router.status();
    assert_eq!(status.providers.len(), 1);
    let listed = admin::list(&fx.app, fx.project).await.unwrap();
    assert_eq!(listed[0].key_hint.as_deref(), Some("••••0012"));
}

#[tokio::test]
async fn a_rejected_new_key_leaves_the_provider_as_it_was() {
    let fx = Fixture::new().await;
    let id = add(&fx, ProviderKind::OpenAi, "sk-keep-this-key-0013").await;
    let err = admin::update(
        &fx.app,
        fx.project,
        UpdateRequest {
            id,
            changes: Overrides {
                key: Some(key("sk-invalid-replacement-0014")),
                model: ModelName::parse("model", "gpt-4o-mini").ok(),
                ..Overrides::default()
            },
            display_name: None,
            is_active: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "invalidKey");
    assert_eq!(
        fx.key_of(ProviderKind::OpenAi).await.as_deref(),
        Some("sk-keep-this-key-0013")
    );
    let (providers, _) = admin_support::rows(fx.path());
    assert_eq!(
        providers[0].model, "gpt-4o",
        "the model change was not saved either"
    );
}

#[tokio::test]
async fn name_and_activity_change_without_a_connection_test() {
    let fx = Fixture::new().await;
    let id = add(&fx, ProviderKind::Scaleway, "scw-secret-key-0015").await;
    fx.sim.clear_requests();
    let updated = admin::update(
        &fx.app,
        fx.project,
        UpdateRequest {
            id,
            changes: Overrides::default(),
            display_name: admin::DisplayName::parse("displayName", "EU fallback").ok(),
            is_active: Some(false),
        },
    )
    .await
    .unwrap();
    assert!(!updated.tested && !updated.key_rotated);
    assert!(fx.sim.requests(None).is_empty());
    assert_eq!(updated.row.display_name, "EU fallback");
    assert!(!updated.row.is_active);
    let status = fx.app.router(fx.project).await.unwrap().status();
    assert!(!status.providers[0].is_active, "routes reloaded");
}

#[tokio::test]
async fn a_changed_endpoint_or_model_is_tested_before_it_is_saved() {
    let fx = Fixture::new().await;
    let id = add(&fx, ProviderKind::OpenAi, "sk-endpoint-change-0016").await;
    let unreachable = unreachable_endpoint().unwrap();
    let err = admin::update(
        &fx.app,
        fx.project,
        UpdateRequest {
            id,
            changes: Overrides {
                endpoint: Some(Endpoint::parse("endpoint", &unreachable).ok()),
                ..Overrides::default()
            },
            display_name: None,
            is_active: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "network");
    let (providers, _) = admin_support::rows(fx.path());
    assert_eq!(
        providers[0].endpoint(),
        fx.endpoint(ProviderKind::OpenAi),
        "not saved"
    );
    let updated = admin::update(
        &fx.app,
        fx.project,
        UpdateRequest {
            id,
            changes: Overrides {
                model: ModelName::parse("model", "gpt-4o-mini").ok(),
                ..Overrides::default()
            },
            display_name: None,
            is_active: None,
        },
    )
    .await
    .unwrap();
    assert!(updated.tested);
    assert_eq!(updated.row.model, "gpt-4o-mini");
}

#[tokio::test]
async fn removing_deletes_row_and_key_and_reports_what_remains() {
    let fx = Fixture::new().await;
    let openai = add(&fx, ProviderKind::OpenAi, "sk-remove-me-0017").await;
    let claude = add(&fx, ProviderKind::Claude, "sk-ant-stays-0018").await;
    let gemini = add(&fx, ProviderKind::Gemini, "AIza-stays-too-0019").await;

    let removed = admin::remove(&fx.app, fx.project, openai).await.unwrap();
    assert!(removed.removed.is_primary);
    assert!(removed.needs_new_primary());
    let order: Vec<_> = removed.remaining.iter().map(|r| r.id).collect();
    assert_eq!(order, [claude, gemini], "the next by position comes first");
    assert_eq!(fx.key_of(ProviderKind::OpenAi).await, None);
    assert_eq!(fx.accounts().await.len(), 2);
    let (providers, _) = admin_support::rows(fx.path());
    assert_eq!(providers.len(), 2);
    assert!(
        providers.iter().all(|p| !p.is_primary),
        "no primary until one is chosen"
    );

    admin::set_primary(&fx.app, fx.project, gemini)
        .await
        .unwrap();
    let removed = admin::remove(&fx.app, fx.project, claude).await.unwrap();
    assert!(!removed.needs_new_primary());
    admin_support::assert_consistent(fx.path()).await;
}

#[tokio::test]
async fn set_primary_keeps_exactly_one_and_the_router_follows() {
    let fx = Fixture::new().await;
    let openai = add(&fx, ProviderKind::OpenAi, "sk-primary-a-0020").await;
    let claude = add(&fx, ProviderKind::Claude, "sk-ant-primary-b-0021").await;
    let router = fx.app.router(fx.project).await.unwrap();
    assert_eq!(router.status().primary.map(|p| p.id), Some(openai.0));

    admin::set_primary(&fx.app, fx.project, claude)
        .await
        .unwrap();
    let (providers, _) = admin_support::rows(fx.path());
    let primaries: Vec<_> = providers
        .iter()
        .filter(|p| p.is_primary)
        .map(|p| p.id)
        .collect();
    assert_eq!(primaries, [claude]);
    assert_eq!(router.status().primary.map(|p| p.id), Some(claude.0));
    assert_eq!(router.status().active.map(|p| p.id), Some(claude.0));
}

#[tokio::test]
async fn unknown_ids_are_not_found_naming_the_field() {
    let fx = Fixture::new().await;
    let missing = ProviderId(4242);
    let errors = vec![
        admin::remove(&fx.app, fx.project, missing)
            .await
            .unwrap_err(),
        admin::set_primary(&fx.app, fx.project, missing)
            .await
            .unwrap_err(),
        admin::models(&fx.app, fx.project, ModelsRequest::Stored(missing))
            .await
            .unwrap_err(),
        admin::test(
            &fx.app,
            fx.project,
            TestRequest::Stored {
                id: missing,
                overrides: Overrides::default(),
            },
            None,
        )
        .await
        .unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(&err, AdminError::NotFound { field, .. } if field == "id"),
            "{err:?}"
        );
    }
    // Another project's provider is not found from this one.
    let other_root = fx.path().join("other-novel");
    let other = fx
        .app
        .store()
        .call(move |c| Ok(storyteller_lsp::store::projects::get_or_create(c, &other_root)?.id))
        .await
        .unwrap();
    let theirs = admin::add(
        &fx.app,
        other,
        add_request(&fx, ProviderKind::OpenAi, "sk-other-project-0022", false),
    )
    .await
    .unwrap()
    .id;
    let err = admin::remove(&fx.app, fx.project, theirs)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::NotFound { .. }), "{err:?}");
    assert!(
        admin_support::stored_key(fx.path(), &Account::project(other.0, ProviderKind::OpenAi))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn models_come_from_the_vendor_listing() {
    let fx = Fixture::new().await;
    let id = add(&fx, ProviderKind::Claude, "sk-ant-models-0023").await;
    let stored = admin::models(&fx.app, fx.project, ModelsRequest::Stored(id))
        .await
        .unwrap();
    assert!(
        stored.iter().any(|m| m.id == "claude-sonnet-4-5"),
        "{stored:?}"
    );
    let new = admin::models(
        &fx.app,
        fx.project,
        ModelsRequest::New {
            kind: ProviderKind::OpenAi,
            key: Some(key("sk-models-new-0024")),
            endpoint: Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::OpenAi)).ok(),
            options: ProviderOptions::default(),
        },
    )
    .await
    .unwrap();
    assert!(!new.is_empty());
    fx.sim
        .inject(ProviderKind::OpenAi, Fault::InvalidKey, Some(1));
    let err = admin::models(
        &fx.app,
        fx.project,
        ModelsRequest::New {
            kind: ProviderKind::OpenAi,
            key: Some(key("sk-models-new-0024")),
            endpoint: Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::OpenAi)).ok(),
            options: ProviderOptions::default(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "invalidKey");
}

#[tokio::test]
async fn the_catalog_says_which_system_keys_are_set_by_name_only() {
    let mut env = VarMap::default();
    env.set("SCW_SECRET_KEY", "scw-system-secret-0025");
    let fx = Fixture::with_env(env).await;
    let catalog = admin::catalog(&fx.app);
    assert_eq!(catalog.len(), 8);
    let json = serde_json::to_string(&catalog).unwrap();
    assert!(!json.contains("scw-system-secret-0025"));
    let scaleway = catalog
        .iter()
        .find(|c| c.entry.kind == ProviderKind::Scaleway)
        .unwrap();
    assert!(scaleway.system_key_present && scaleway.eu_resident);
    assert!(
        catalog
            .iter()
            .filter(|c| c.entry.kind != ProviderKind::Scaleway)
            .all(|c| !c.system_key_present)
    );
}

#[tokio::test]
async fn a_custom_endpoint_without_a_key_can_be_added() {
    let fx = Fixture::new().await;
    let spec = ProviderSpec::new(
        ProviderKind::Custom,
        ModelName::parse("model", "llama3").ok(),
        Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::Custom)).ok(),
        ProviderOptions::default(),
    )
    .unwrap();
    let request = AddRequest::new(spec, None, None, None, false).unwrap();
    let row = admin::add(&fx.app, fx.project, request).await.unwrap();
    assert_eq!(row.model, "llama3");
    assert!(fx.accounts().await.is_empty());
    let listed = admin::list(&fx.app, fx.project).await.unwrap();
    assert_eq!(listed[0].key_source, KeySource::None);
    assert_eq!(listed[0].key_hint, None);
}
