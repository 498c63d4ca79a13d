//! A provider added through the language server (`workspace/executeCommand`) with
//! `credentialStore: "keychain"` really lands in the OS keychain — checked from outside with
//! `secret-tool lookup service storyteller.ai_provider account project_<id>_openai` — and is gone
//! after `storyteller.providers.remove`.
//!
//! Needs a Secret Service: skipped without one unless `STORYTELLER_REQUIRE_KEYCHAIN=1`. Run:
//! `scripts/with-keychain env STORYTELLER_REQUIRE_KEYCHAIN=1 cargo test --test admin_keychain`.

mod lsp_support;

use std::process::Command;

use lsp_support::TestClient;
use serde_json::{Value, json};
use storyteller_lsp::credentials::KeychainStore;
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::SimulatorHandle;
use storyteller_lsp::store::Store;

fn keychain_required() -> bool {
    std::env::var("STORYTELLER_REQUIRE_KEYCHAIN").as_deref() == Ok("1")
}

async fn keychain_usable(test: &str) -> bool {
    if let Err(e) = KeychainStore::new().probe().await {
        assert!(
            !keychain_required(),
            "STORYTELLER_REQUIRE_KEYCHAIN=1 but no keychain is usable: {e}"
        );
        eprintln!("SKIPPED {test}: no usable keychain ({e}); run under scripts/with-keychain");
        return false;
    }
    if Command::new("secret-tool")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            !keychain_required(),
            "secret-tool (libsecret-tools) is needed"
        );
        eprintln!("SKIPPED {test}: secret-tool is not installed");
        return false;
    }
    true
}

/// `secret-tool lookup service storyteller.ai_provider account {account}`.
fn secret_tool_lookup(account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "storyteller.ai_provider",
            "account",
            account,
        ])
        .output()
        .expect("secret-tool runs");
    (out.status.success() && !out.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn execute(client: &mut TestClient, command: &str, args: Value) -> Result<Value, Value> {
    client
        .request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [args]}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_added_through_the_server_lives_in_the_keychain_until_removed() {
    if !keychain_usable("a_provider_added_through_the_server_lives_in_the_keychain_until_removed")
        .await
    {
        return;
    }
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = TestClient::start();
    let data_dir = client.data_dir.path().to_path_buf();
    let workspace = tempfile::tempdir().unwrap();
    let root = url_of(workspace.path());
    client
        .request(
            "initialize",
            json!({
                "capabilities": {},
                "workspaceFolders": [{"uri": root, "name": "novel"}],
                "initializationOptions": {"dataDir": data_dir, "credentialStore": "keychain"},
            }),
        )
        .await
        .unwrap();
    client.notify("initialized", json!({})).await;
    client.until_ready().await;
    // A workspace without providers of its own is served by the default project's, so the
    // first provider added from the editor goes there (see `App::providers_project`).
    let default_project: i64 = Store::open(data_dir.join("storyteller.db"))
        .unwrap()
        .blocking(|conn| {
            Ok(
                conn.query_row("SELECT id FROM projects WHERE root_path IS NULL", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    let account = format!("project_{default_project}_openai");
    assert_eq!(secret_tool_lookup(&account), None);

    let key = "sk-keychain-through-the-server-0501";
    let added = execute(
        &mut client,
        "storyteller.providers.add",
        json!({"provider": "openai", "apiKey": key, "endpoint": sim.endpoint(ProviderKind::OpenAi)}),
    )
    .await
    .unwrap();
    let id = added["id"].as_i64().unwrap();
    assert_eq!(
        secret_tool_lookup(&account).as_deref(),
        Some(key),
        "secret-tool finds the key under {account}"
    );
    let listed = execute(&mut client, "storyteller.providers.list", json!({}))
        .await
        .unwrap();
    assert_eq!(listed[0]["keySource"], "keychain");
    assert_eq!(listed[0]["keyHint"], "••••0501");
    assert!(!listed.to_string().contains(key));

    let removed = execute(
        &mut client,
        "storyteller.providers.remove",
        json!({"id": id, "confirmed": true}),
    )
    .await
    .unwrap();
    assert_eq!(removed["removed"], true);
    assert_eq!(secret_tool_lookup(&account), None, "gone after remove");
    client.shutdown_and_exit().await;
}

fn url_of(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}
