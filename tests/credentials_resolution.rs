//! Key resolution order (DESIGN.md §5) over a real encrypted-file store and an injected
//! environment: project key → named session → system key, and which failures fall through.

use std::fs;
use std::path::Path;

use storyteller_lsp::credentials::{
    Account, ApiKey, CredentialError, CredentialStore, EncryptedFileStore, KeyMaterial, KeySource,
    VarMap, encrypted_file::FILE_NAME, resolve,
};
use storyteller_lsp::providers::{AuthType, ProviderKind};

const PROJECT: i64 = 7;

fn file_store(dir: &Path) -> EncryptedFileStore {
    EncryptedFileStore::new(dir, KeyMaterial::machine_id("resolution-test-machine-id"))
}

fn session() -> Account {
    Account::session(ProviderKind::OpenAi, AuthType::ApiKey, "work").unwrap()
}

fn system_env() -> VarMap {
    [("OPENAI_API_KEY", "sk-system-key-0000")]
        .into_iter()
        .collect()
}

/// Which keys exist in the store and the environment, and what resolution must return.
struct Case {
    name: &'static str,
    project_key: bool,
    session_key: bool,
    row_points_at_session: bool,
    system_key: bool,
    expected: Option<(&'static str, KeySource)>,
}

#[tokio::test]
async fn resolution_takes_the_project_key_then_the_session_then_the_system_key() {
    let cases = [
        Case {
            name: "the project's own key wins",
            project_key: true,
            session_key: true,
            row_points_at_session: true,
            system_key: true,
            expected: Some(("sk-project-key-1111", KeySource::File)),
        },
        Case {
            name: "the session when the project has no key",
            project_key: false,
            session_key: true,
            row_points_at_session: true,
            system_key: true,
            expected: Some(("sk-session-key-2222", KeySource::File)),
        },
        Case {
            name: "a session the row does not point at is not used",
            project_key: false,
            session_key: true,
            row_points_at_session: false,
            system_key: true,
            expected: Some(("sk-system-key-0000", KeySource::Env)),
        },
        Case {
            name: "a session without a key falls through to the system key",
            project_key: false,
            session_key: false,
            row_points_at_session: true,
            system_key: true,
            expected: Some(("sk-system-key-0000", KeySource::Env)),
        },
        Case {
            name: "no key anywhere",
            project_key: false,
            session_key: false,
            row_points_at_session: true,
            system_key: false,
            expected: None,
        },
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path());
        if case.project_key {
            let account = Account::project(PROJECT, ProviderKind::OpenAi);
            store
                .store(&account, &ApiKey::new("sk-project-key-1111"))
                .await
                .unwrap();
        }
        if case.session_key {
            store
                .store(&session(), &ApiKey::new("sk-session-key-2222"))
                .await
                .unwrap();
        }
        let env = if case.system_key {
            system_env()
        } else {
            VarMap::default()
        };
        let session = session();
        let resolved = resolve(
            &store,
            PROJECT,
            ProviderKind::OpenAi,
            case.row_points_at_session.then_some(&session),
            &env,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got = resolved.map(|r| (r.key.expose().to_string(), r.source));
        let expected = case.expected.map(|(k, s)| (k.to_string(), s));
        assert_eq!(got, expected, "{}", case.name);
    }
}

#[tokio::test]
async fn a_key_of_another_project_or_provider_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    for account in [
        Account::project(PROJECT + 1, ProviderKind::OpenAi),
        Account::project(PROJECT, ProviderKind::Claude),
    ] {
        store
            .store(&account, &ApiKey::new("sk-not-this-one-99"))
            .await
            .unwrap();
    }
    let resolved = resolve(
        &store,
        PROJECT,
        ProviderKind::OpenAi,
        None,
        &VarMap::default(),
    )
    .await
    .unwrap();
    assert!(resolved.is_none(), "{resolved:?}");
}

#[tokio::test]
async fn a_corrupt_store_is_reported_rather_than_replaced_by_the_system_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    store
        .store(
            &Account::project(PROJECT, ProviderKind::OpenAi),
            &ApiKey::new("sk-project-key-1111"),
        )
        .await
        .unwrap();
    let file = dir.path().join(FILE_NAME);
    let mut bytes = fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&file, &bytes).unwrap();

    let err = resolve(&store, PROJECT, ProviderKind::OpenAi, None, &system_env())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CredentialError::Corrupt { path, .. } if *path == file),
        "{err:?}"
    );
}

#[tokio::test]
async fn providers_without_a_system_key_variable_resolve_to_none() {
    let dir = tempfile::tempdir().unwrap();
    let env: VarMap = ProviderKind::ALL
        .into_iter()
        .filter_map(|k| k.entry().key_env)
        .map(|name| (name, "sk-every-variable-set"))
        .collect();
    let resolved = resolve(
        &file_store(dir.path()),
        PROJECT,
        ProviderKind::Custom,
        None,
        &env,
    )
    .await
    .unwrap();
    assert!(resolved.is_none());
    let yandex = resolve(
        &file_store(dir.path()),
        PROJECT,
        ProviderKind::Yandex,
        None,
        &env,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(yandex.source, KeySource::Env);
    assert_eq!(yandex.source.as_str(), "env");
}
