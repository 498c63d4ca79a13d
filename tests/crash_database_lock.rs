//! The running server meets a database locked by another process mid-session (issue 10 item 4):
//! a change that must write (adding a provider) fails within the busy timeout with the
//! "locked by another process" text and stores nothing — no row, no key, no journal record —
//! while writing goes on untouched (ghost text, code actions, the provider list — also after a
//! run of suggestions whose usage counts meet the lock: those used to queue up, 3 s each, in
//! front of every later command); once the lock is gone, the same change succeeds. A lock met while opening the database is proven in
//! `tests/store.rs`.
//!
//! The real binary over stdio; this test process is the "other process" holding SQLite's write
//! lock (`BEGIN IMMEDIATE` on its own connection).

mod admin_support;
mod stdio_support;

use std::time::{Duration, Instant};

use admin_support::{CREDENTIALS_KEY, accounts, journal_records, rows};
use serde_json::json;
use stdio_support::{Reply, Spawn, StdioServer, binary};
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::SimulatorHandle;
use storyteller_lsp::store::providers::{self, NewProvider};
use storyteller_lsp::store::{Store, projects};

const PATIENCE: Duration = Duration::from_secs(20);
const URI: &str = "file:///lock/chapter-1.md";
const TEXT: &str = "# Chapter 1\n\nThe harbour lights went out one by one, and Mara";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_met_mid_session_fails_the_write_clearly_stores_nothing_and_passes() {
    let sim = SimulatorHandle::start().await.expect("the simulator");
    let data = tempfile::tempdir().expect("a data directory");
    let db = data.path().join("storyteller.db");
    {
        let store = Store::open(&db).expect("the database");
        let endpoint = sim.endpoint(ProviderKind::DeepSeek);
        store
            .blocking(move |conn| {
                let project = projects::default_project(conn)?.id;
                let mut new = NewProvider::new(project, ProviderKind::DeepSeek);
                new.endpoint = Some(endpoint);
                providers::insert(conn, &new)?;
                Ok(())
            })
            .expect("a provider");
    }
    let spawn = Spawn {
        env: vec![
            ("DEEPSEEK_API_KEY".into(), "sk-lock-deepseek-0001".into()),
            ("STORYTELLER_CREDENTIALS_KEY".into(), CREDENTIALS_KEY.into()),
        ],
        ..Spawn::default()
    };
    let mut server = StdioServer::spawn(binary(), data.path(), spawn).expect("the server starts");
    server
        .initialize(
            json!({
                "general": {"positionEncodings": ["utf-16"]},
                "window": {"workDoneProgress": true},
                "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}},
                "textDocument": {"inlineCompletion": {}},
            }),
            json!({"credentialStore": "file", "inline": {"debounceMs": 0}}),
        )
        .await;
    server.open(URI, TEXT).await;
    let end =
        json!({"line": 2, "character": TEXT.lines().last().unwrap_or("").encode_utf16().count()});
    let add_claude = json!({
        "provider": "claude",
        "apiKey": "sk-ant-lock-test-0001",
        "endpoint": sim.endpoint(ProviderKind::Claude),
    });

    // Another process takes SQLite's write lock and keeps it.
    let other = rusqlite::Connection::open(&db).expect("a second connection");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("the write lock");

    let started = Instant::now();
    let refused = server
        .execute("storyteller.providers.add", add_claude.clone(), PATIENCE)
        .await;
    let waited = started.elapsed();
    let error = match refused {
        Reply::Error(e) => e,
        other => panic!("adding a provider under a lock: expected an error, got {other:?}"),
    };
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is locked by another process"),
        "not the locked text: {error}"
    );
    assert!(
        message.contains("storyteller.db"),
        "names the file: {error}"
    );
    println!("providers.add under a lock answered after {waited:?}: {message}");

    // Writing goes on: ghost text, a code action, the provider list.
    let inline = server
        .request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": URI}, "position": end, "context": {"triggerKind": 1}}),
            PATIENCE,
        )
        .await
        .expect_result("inline completion under a lock");
    assert!(
        inline["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{inline}"
    );
    // The author keeps typing: every suggestion's use is counted (a write, off the answer's
    // path). Those counts must not queue up in front of everything else that needs the database.
    let mut typed = TEXT.to_string();
    for (i, word) in [
        " walked", " to", " the", " end", " of", " the", " pier", " and",
    ]
    .iter()
    .enumerate()
    {
        let at = json!({"line": 2, "character": typed.lines().last().unwrap_or("").encode_utf16().count()});
        server
            .notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": URI, "version": i + 2},
                       "contentChanges": [{"range": {"start": at, "end": at}, "text": word}]}),
            )
            .await;
        typed.push_str(word);
        let position = json!({"line": 2, "character": typed.lines().last().unwrap_or("").encode_utf16().count()});
        server
            .request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": URI}, "position": position, "context": {"triggerKind": 1}}),
                PATIENCE,
            )
            .await
            .expect_result("inline completion while typing under a lock");
    }
    let started = Instant::now();
    let listed = server
        .execute("storyteller.providers.list", json!({}), PATIENCE)
        .await
        .expect_result("the provider list under a lock, after typing");
    println!(
        "providers.list after typing under a lock answered after {:?}",
        started.elapsed()
    );
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let end =
        json!({"line": 2, "character": typed.lines().last().unwrap_or("").encode_utf16().count()});

    let action = server
        .execute(
            "storyteller.generate",
            json!({"action": "continueScene", "uri": URI, "range": {"start": end, "end": end}}),
            PATIENCE,
        )
        .await
        .expect_result("a code action under a lock");
    assert_eq!(action["applied"], json!(true), "{action}");
    let listed = server
        .execute("storyteller.providers.list", json!({}), PATIENCE)
        .await
        .expect_result("the provider list under a lock");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // The lock goes; nothing of the refused change was stored.
    other.execute_batch("ROLLBACK").expect("lock released");
    drop(other);
    assert_eq!(rows(data.path()).0.len(), 1, "no row for the refused add");
    assert!(
        accounts(data.path()).await.is_empty(),
        "no key for the refused add"
    );
    assert_eq!(journal_records(data.path()), 0);

    // And the same change now succeeds.
    let added = server
        .execute("storyteller.providers.add", add_claude, PATIENCE)
        .await
        .expect_result("adding after the lock went");
    assert!(added["id"].as_i64().is_some(), "{added}");
    assert_eq!(rows(data.path()).0.len(), 2);

    let status = server.shutdown(PATIENCE).await;
    let stderr = server.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stderr}");
}
