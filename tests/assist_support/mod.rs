//! Shared set-up of the writing-feature suites (`tests/lsp_assist_*.rs`): the in-process server
//! with providers configured against the in-process simulator, system keys from an injected
//! environment (never the developer's), and helpers to answer and inspect the server's requests.

#![allow(dead_code)] // Each test crate uses a different part of it.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use storyteller_lsp::credentials::env::VarMap;
use storyteller_lsp::lsp::Features;
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::SimulatorHandle;
use storyteller_lsp::store::Store;
use storyteller_lsp::store::projects;
use storyteller_lsp::store::providers::{self, NewProvider};

use crate::lsp_support::TestClient;

pub const URI: &str = "file:///novel/chapter-1.md";

pub const MANUSCRIPT: &str = "# Chapter 1: Salt\n\nMara climbed the stairs of the lighthouse. The lamp was out, and Tomas had not come back from the harbour.\n\nShe waited by the window";

/// Keys for every vendor; the simulator accepts any non-empty key.
pub fn environment() -> VarMap {
    let mut env = VarMap::default();
    for (name, value) in [
        ("OPENAI_API_KEY", "sk-test-openai-0001"),
        ("ANTHROPIC_API_KEY", "sk-ant-test-0002"),
        ("GEMINI_API_KEY", "gemini-test-0003"),
        ("DEEPSEEK_API_KEY", "sk-deepseek-test-0004"),
        ("SCW_SECRET_KEY", "scw-test-0005"),
        (
            "STORYTELLER_CREDENTIALS_KEY",
            "assist-tests-credentials-key",
        ),
    ] {
        env.set(name, value);
    }
    env
}

pub fn features() -> Features {
    Features {
        environment: Arc::new(environment()),
        ..Features::default()
    }
}

/// Adds `kinds` (the first is primary) to the default project of the database in `data_dir`,
/// pointed at the simulator.
pub fn configure(data_dir: &Path, simulator: &SimulatorHandle, kinds: &[ProviderKind]) {
    configure_project(data_dir, simulator, kinds, None);
}

/// Like [`configure`], for the project of workspace folder `root` (`None`: the default project).
pub fn configure_project(
    data_dir: &Path,
    simulator: &SimulatorHandle,
    kinds: &[ProviderKind],
    root: Option<&Path>,
) {
    let store = Store::open(data_dir.join("storyteller.db")).expect("database");
    store
        .blocking(|conn| {
            let project = match root {
                Some(root) => projects::get_or_create(conn, root)?.id,
                None => projects::default_project(conn)?.id,
            };
            for (i, kind) in kinds.iter().enumerate() {
                let mut new = NewProvider::new(project, *kind);
                new.endpoint = Some(simulator.endpoint(*kind));
                new.primary = i == 0;
                providers::insert(conn, &new)?;
            }
            Ok(())
        })
        .expect("providers inserted");
}

/// Client capabilities of a full-featured editor: buttons, progress, versioned edits, disabled
/// code actions, inline completion, the StoryTeller extras.
pub fn rich_client() -> Value {
    json!({
        "general": {"positionEncodings": ["utf-16"]},
        "window": {"workDoneProgress": true, "showMessage": {"messageActionItem": {"additionalPropertiesSupport": false}}},
        "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}, "configuration": false},
        "textDocument": {"codeAction": {"disabledSupport": true}, "inlineCompletion": {}},
        "experimental": {"storyteller": {"openSettings": true, "statusNotification": true}}
    })
}

/// A client that has none of the extras (plain messages, no progress, no disabled actions).
pub fn plain_client() -> Value {
    json!({"workspace": {"applyEdit": true}})
}

/// Starts a session with `kinds` configured; `options` are the `storyteller` settings.
pub async fn start(
    simulator: &SimulatorHandle,
    kinds: &[ProviderKind],
    capabilities: Value,
    options: Value,
) -> TestClient {
    let mut client = TestClient::start_with(features());
    configure(client.data_dir.path(), simulator, kinds);
    let mut options = options;
    if let Value::Object(map) = &mut options {
        map.entry("credentialStore").or_insert(json!("file"));
    }
    client.initialize(capabilities, options).await;
    client
}

/// Answers `workspace/applyEdit` with `applied` and presses `button` on any message request
/// whose text contains `needle` (no button otherwise).
pub fn answer_edits_and_press(
    client: &mut TestClient,
    applied: bool,
    presses: Vec<(String, String)>,
) {
    client.responder = Some(Box::new(move |request| match request["method"].as_str() {
        Some("workspace/applyEdit") => Some(json!({"applied": applied})),
        Some("window/showMessageRequest") => {
            let text = request["params"]["message"].as_str().unwrap_or_default();
            let press = presses
                .iter()
                .find(|(needle, _)| text.contains(needle.as_str()))
                .map(|(_, button)| json!({"title": button}));
            Some(press.unwrap_or(Value::Null))
        }
        _ => None,
    }));
}

pub fn inline_params(line: u32, character: u32, trigger: u8) -> Value {
    json!({
        "textDocument": {"uri": URI},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": trigger}
    })
}

/// The (line, character) just after the last char of `text`, in UTF-16 units.
pub fn end_of(text: &str) -> (u32, u32) {
    let line = text.split('\n').count() - 1;
    let last = text.rsplit('\n').next().unwrap_or_default();
    (line as u32, last.encode_utf16().count() as u32)
}

/// `window/showMessage` and `window/showMessageRequest` texts seen so far.
pub fn messages_seen(client: &TestClient) -> Vec<String> {
    client
        .notifications
        .iter()
        .filter(|n| n["method"] == "window/showMessage")
        .chain(
            client
                .server_requests
                .iter()
                .filter(|r| r["method"] == "window/showMessageRequest"),
        )
        .filter_map(|m| m["params"]["message"].as_str().map(str::to_string))
        .collect()
}

pub async fn execute(
    client: &mut TestClient,
    command: &str,
    arguments: Value,
) -> Result<Value, Value> {
    client
        .request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [arguments]}),
        )
        .await
}

/// Starts a session whose workspace folder is `root`, with `kinds` configured for its project.
pub async fn start_in_folder(
    simulator: &SimulatorHandle,
    kinds: &[ProviderKind],
    root: &Path,
    capabilities: Value,
    options: Value,
) -> TestClient {
    let mut client = TestClient::start_with(features());
    configure_project(client.data_dir.path(), simulator, kinds, Some(root));
    let mut options = options;
    if let Value::Object(map) = &mut options {
        map.entry("credentialStore").or_insert(json!("file"));
        map.entry("dataDir")
            .or_insert(json!(client.data_dir.path()));
    }
    let folder = tower_lsp::lsp_types::Url::from_directory_path(root).expect("an absolute folder");
    client
        .request(
            "initialize",
            json!({
                "capabilities": capabilities,
                "initializationOptions": options,
                "workspaceFolders": [{"uri": folder, "name": "novel"}],
            }),
        )
        .await
        .expect("initialize succeeds");
    client.notify("initialized", json!({})).await;
    client.until_ready().await;
    client
}
