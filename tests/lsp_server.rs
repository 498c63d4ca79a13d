//! The LSP server driven in-process over a duplex pipe by a tiny JSON-RPC client: lifecycle and
//! wire errors, position encoding negotiation, document sync, settings, and the inline seam.

mod lsp_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use lsp_support::{TestClient, offering, sha256};
use serde_json::{Value, json};
use storyteller_lsp::assist::InlineRequest;
use storyteller_lsp::documents::CharOffset;
use storyteller_lsp::lsp::{
    ExitStatus, Features, InlineSource, MAX_CONCURRENT_HANDLERS, NoCommands, ServerState,
    Suggestion,
};
use storyteller_lsp::messages;
use tokio::sync::Notify;

const URI: &str = "file:///novel/chapter-1.md";

fn edit(start: (u32, u32), end: (u32, u32), text: &str) -> Value {
    json!({
        "range": {
            "start": {"line": start.0, "character": start.1},
            "end": {"line": end.0, "character": end.1}
        },
        "text": text
    })
}

async fn assert_text(client: &mut TestClient, uri: &str, version: i64, text: &str) {
    let state = client.document_state(uri).await.expect("document is open");
    assert_eq!(state["version"], version, "{state}");
    assert_eq!(
        state["sha256"],
        sha256(text),
        "server text differs from {text:?}"
    );
    assert_eq!(state["byteLength"], text.len());
    assert_eq!(state["charLength"], text.chars().count());
    assert_eq!(state["utf16Length"], text.encode_utf16().count());
    assert_eq!(state["inSync"], true);
}

#[tokio::test]
async fn initialize_negotiates_the_position_encoding() {
    let cases: &[(Value, &str)] = &[
        (json!({}), "utf-16"),
        (offering(&["utf-16"]), "utf-16"),
        (offering(&["utf-16", "utf-8"]), "utf-8"),
        (offering(&["utf-32"]), "utf-32"),
    ];
    for (capabilities, expected) in cases {
        let mut client = TestClient::start();
        let result = client.initialize(capabilities.clone(), Value::Null).await;
        let caps = &result["capabilities"];
        assert_eq!(caps["positionEncoding"], *expected, "{capabilities}");
        assert_eq!(caps["inlineCompletionProvider"], true);
        assert_eq!(caps["textDocumentSync"]["change"], 2);
        assert_eq!(result["serverInfo"]["name"], "storyteller-lsp");
        assert_eq!(client.shutdown_and_exit().await, ExitStatus::Clean);
    }
}

#[tokio::test]
async fn utf16_edits_count_emoji_as_two_units_and_respect_crlf() {
    let mut client = TestClient::start();
    client.initialize(offering(&["utf-16"]), Value::Null).await;
    client.open(URI, "Rain 😀 fell.\r\nShe ran.").await;
    client
        .change(
            URI,
            2,
            json!([
                // After the emoji (2 UTF-16 units): "Rain 😀 " is 8 units.
                edit((0, 8), (0, 12), "poured"),
                // Past the end of line 0: clamps before the \r\n.
                edit((0, 40), (0, 40), "!"),
                edit((1, 0), (1, 3), "He"),
            ]),
        )
        .await;
    assert_text(&mut client, URI, 2, "Rain 😀 poured.!\r\nHe ran.").await;
}

#[tokio::test]
async fn utf8_edits_count_bytes() {
    let mut client = TestClient::start();
    let result = client
        .initialize(offering(&["utf-16", "utf-8"]), Value::Null)
        .await;
    assert_eq!(result["capabilities"]["positionEncoding"], "utf-8");
    client.open(URI, "雨が😀降る\r\n").await;
    // 雨が = 6 bytes, 😀 = 4 bytes.
    client
        .change(
            URI,
            2,
            json!([edit((0, 6), (0, 10), "、"), edit((1, 0), (1, 0), "end")]),
        )
        .await;
    assert_text(&mut client, URI, 2, "雨が、降る\r\nend").await;
}

#[tokio::test]
async fn a_burst_of_changes_applies_in_order() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "[]").await;
    // Each change inserts before the closing bracket, at a position that is right only if every
    // earlier change was applied first (a late one would clamp past the bracket).
    let mut inner = String::new();
    for i in 0..500 {
        let piece = if i % 3 == 0 {
            format!("😀{i}")
        } else {
            format!("{i},")
        };
        let at = 1 + inner.encode_utf16().count() as u32;
        client
            .change(URI, i + 2, json!([edit((0, at), (0, at), &piece)]))
            .await;
        inner.push_str(&piece);
    }
    assert_text(&mut client, URI, 501, &format!("[{inner}]")).await;
}

/// A source that holds every request until released, like providers that do not answer.
struct StalledSource {
    started: AtomicUsize,
    release: Notify,
}

#[async_trait]
impl InlineSource for StalledSource {
    async fn suggest(&self, _: &Arc<ServerState>, _: InlineRequest) -> Vec<Suggestion> {
        let released = self.release.notified();
        self.started.fetch_add(1, Ordering::SeqCst);
        released.await;
        Vec::new()
    }
}

fn inline_params(line: u32, character: u32) -> Value {
    json!({
        "textDocument": {"uri": URI},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 2}
    })
}

#[tokio::test]
async fn edits_apply_while_every_handler_waits_on_the_network() {
    let source = Arc::new(StalledSource {
        started: AtomicUsize::new(0),
        release: Notify::new(),
    });
    let mut client = TestClient::start_with(Features {
        inline: source.clone(),
        ..Features::default()
    });
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "The door").await;
    let mut pending = Vec::new();
    for _ in 0..MAX_CONCURRENT_HANDLERS {
        pending.push(
            client
                .send_request("textDocument/inlineCompletion", inline_params(0, 8))
                .await,
        );
    }
    let stalled = source.clone();
    client
        .until(async move {
            while stalled.started.load(Ordering::SeqCst) < MAX_CONCURRENT_HANDLERS {
                tokio::task::yield_now().await;
            }
        })
        .await;

    // Every handler slot is taken: the edit must still land.
    client
        .change(URI, 2, json!([edit((0, 8), (0, 8), " opened")]))
        .await;
    let state = client.state.clone();
    client
        .until(async move {
            while state.documents.snapshot(URI).map(|d| d.version()) != Ok(2) {
                tokio::task::yield_now().await;
            }
        })
        .await;
    let text = client
        .state
        .documents
        .snapshot(URI)
        .unwrap()
        .text()
        .to_string();
    assert_eq!(text, "The door opened");

    source.release.notify_waiters();
    for id in pending {
        assert_eq!(
            client.response_to(&json!(id)).await,
            Ok(json!({"items": []}))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_session_ends_when_the_input_closes_even_with_a_handler_stuck() {
    let source = Arc::new(StalledSource {
        started: AtomicUsize::new(0),
        release: Notify::new(),
    });
    let mut client = TestClient::start_with(Features {
        inline: source.clone(),
        ..Features::default()
    });
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "The door").await;
    client
        .send_request("textDocument/inlineCompletion", inline_params(0, 8))
        .await;
    client
        .until(async {
            while source.started.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
    client.close_input().await;
    assert_eq!(client.finished().await, ExitStatus::WithoutShutdown);
}

/// A source that suggests one continuation, placed after the cursor.
struct FixedSource;

#[async_trait]
impl InlineSource for FixedSource {
    async fn suggest(&self, _: &Arc<ServerState>, query: InlineRequest) -> Vec<Suggestion> {
        assert_eq!(query.document.uri(), URI);
        vec![Suggestion {
            id: format!("s-{}", query.cursor.0),
            text: " and the sea 🌊 rose.".into(),
            replaces: None,
        }]
    }
}

#[tokio::test]
async fn inline_completion_asks_the_source_at_the_cursor_and_counts_acceptance() {
    let mut client = TestClient::start_with(Features {
        inline: Arc::new(FixedSource),
        ..Features::default()
    });
    client
        .initialize(
            json!({"textDocument": {"inlineCompletion": {}}}),
            Value::Null,
        )
        .await;
    client.open(URI, "🌧 It rained").await;
    // UTF-16: the rain emoji is 2 units, so character 11 is the end (char offset 10).
    let list = client
        .request("textDocument/inlineCompletion", inline_params(0, 11))
        .await
        .unwrap();
    let item = &list["items"][0];
    assert_eq!(item["insertText"], " and the sea 🌊 rose.");
    assert_eq!(item["range"]["start"], json!({"line": 0, "character": 11}));
    assert_eq!(item["range"]["end"], json!({"line": 0, "character": 11}));
    assert_eq!(item["command"]["command"], "storyteller.feedback");
    assert_eq!(
        item["command"]["arguments"],
        json!([{"suggestionId": "s-10", "accepted": true}])
    );
    // This client has inline completion: the completion fallback stays silent.
    let completion = client
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 11}}),
        )
        .await;
    assert_eq!(completion, Ok(Value::Null));
}

#[tokio::test]
async fn clients_without_inline_completion_get_the_suggestion_as_a_completion_item() {
    let mut client = TestClient::start_with(Features {
        inline: Arc::new(FixedSource),
        ..Features::default()
    });
    client.initialize(offering(&["utf-8"]), Value::Null).await;
    client.open(URI, "🌧 It rained").await;
    let items = client
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 14}}),
        )
        .await
        .unwrap();
    let item = &items[0];
    assert_eq!(item["label"], "and the sea 🌊 rose.");
    assert_eq!(item["textEdit"]["newText"], " and the sea 🌊 rose.");
    assert_eq!(item["textEdit"]["range"]["start"]["character"], 14);
    assert_eq!(item["command"]["command"], "storyteller.feedback");
}

#[tokio::test]
async fn suggestions_respect_the_inline_and_language_settings() {
    let mut client = TestClient::start_with(Features {
        inline: Arc::new(FixedSource),
        ..Features::default()
    });
    client
        .initialize(json!({}), json!({"inline": {"enabled": false}}))
        .await;
    client.open(URI, "text").await;
    let list = client
        .request("textDocument/inlineCompletion", inline_params(0, 4))
        .await;
    assert_eq!(list, Ok(json!({"items": []})));

    client
        .notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"storyteller": {"inline": {"enabled": true}, "languages": ["plaintext"]}}}),
        )
        .await;
    // Notification handlers run concurrently with later requests: wait for the change to land.
    let state = client.state.clone();
    client
        .until(async move {
            while state.settings.current().languages != ["plaintext"] {
                tokio::task::yield_now().await;
            }
        })
        .await;
    let list = client
        .request("textDocument/inlineCompletion", inline_params(0, 4))
        .await;
    assert_eq!(list, Ok(json!({"items": []})), "markdown is not served now");

    client
        .notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"storyteller": {"inline": {"enabled": true}, "languages": ["markdown"]}}}),
        )
        .await;
    let state = client.state.clone();
    client
        .until(async move {
            while state.settings.current().languages != ["markdown"] {
                tokio::task::yield_now().await;
            }
        })
        .await;
    let list = client
        .request("textDocument/inlineCompletion", inline_params(0, 4))
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

/// A source whose work runs in a task of its own (as an HTTP call would) and never finishes
/// unless cancelled; the task records the cancellation.
struct CancellableSource {
    cancelled: Arc<Notify>,
    started: Arc<Notify>,
}

#[async_trait]
impl InlineSource for CancellableSource {
    async fn suggest(&self, _: &Arc<ServerState>, query: InlineRequest) -> Vec<Suggestion> {
        let cancelled = self.cancelled.clone();
        tokio::spawn(async move {
            query.cancel.cancelled().await;
            cancelled.notify_one();
        });
        self.started.notify_one();
        std::future::pending().await
    }
}

#[tokio::test]
async fn cancel_request_cancels_the_sources_work() {
    let cancelled = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let mut client = TestClient::start_with(Features {
        inline: Arc::new(CancellableSource {
            cancelled: cancelled.clone(),
            started: started.clone(),
        }),
        ..Features::default()
    });
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "Night").await;
    let id = client
        .send_request("textDocument/inlineCompletion", inline_params(0, 5))
        .await;
    client.until(started.notified()).await;
    client.notify("$/cancelRequest", json!({"id": id})).await;
    let error = client.response_to(&json!(id)).await.unwrap_err();
    assert_eq!(error["code"], -32800);
    client.until(cancelled.notified()).await;
}

#[tokio::test]
async fn positions_that_do_not_exist_are_invalid_params() {
    let mut client = TestClient::start_with(Features {
        inline: Arc::new(FixedSource),
        ..Features::default()
    });
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "a😀b").await;
    for (params, field) in [
        (inline_params(3, 0), "position"),
        (inline_params(0, 2), "position"), // inside the emoji's surrogate pair
    ] {
        let error = client
            .request("textDocument/inlineCompletion", params)
            .await
            .unwrap_err();
        assert_eq!(error["code"], -32602);
        assert!(
            error["message"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }
    let error = client
        .document_state("file:///novel/never-opened.md")
        .await
        .unwrap_err();
    assert_eq!(error["code"], -32602);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("never-opened.md is not open")
    );
}

#[tokio::test]
async fn a_refused_change_keeps_the_text_and_tells_the_author_once() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "one\ntwo").await;
    // The first change is valid, the second is not: neither applies.
    client
        .change(
            URI,
            2,
            json!([edit((0, 0), (0, 3), "ONE"), edit((7, 0), (7, 0), "x")]),
        )
        .await;
    let state = client.document_state(URI).await.unwrap();
    assert_eq!(state["version"], 1);
    assert_eq!(state["sha256"], sha256("one\ntwo"));
    assert_eq!(state["inSync"], false);
    let log = client.notification("window/logMessage").await;
    assert!(
        log["params"]["message"]
            .as_str()
            .unwrap()
            .contains("line 7"),
        "{log}"
    );
    // Further incremental edits are refused, and the author is not told again.
    client
        .change(URI, 3, json!([edit((0, 0), (0, 0), "x")]))
        .await;
    client
        .change(URI, 4, json!([{"text": "fresh start"}]))
        .await;
    assert_text(&mut client, URI, 4, "fresh start").await;
    client.drain().await;
    assert_eq!(
        client.shown(2),
        [messages::document_out_of_sync("chapter-1.md")]
    );
}

#[tokio::test]
async fn stale_versions_and_unknown_documents_are_refused() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "abc").await;
    client
        .change(URI, 5, json!([edit((0, 3), (0, 3), "d")]))
        .await;
    client
        .change(URI, 5, json!([edit((0, 4), (0, 4), "e")]))
        .await;
    client
        .change("file:///novel/other.md", 2, json!([{"text": "x"}]))
        .await;
    let state = client.document_state(URI).await.unwrap();
    assert_eq!(state["version"], 5);
    assert_eq!(state["sha256"], sha256("abcd"));
    let logs: Vec<String> = client
        .notifications_named("window/logMessage", 2)
        .await
        .iter()
        .map(|n| n["params"]["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        logs[0].contains("does not follow its current version 5"),
        "{logs:?}"
    );
    assert!(logs[1].contains("other.md is not open"), "{logs:?}");
}

#[tokio::test]
async fn invalid_settings_warn_once_naming_the_key_and_keep_defaults() {
    let mut client = TestClient::start();
    client
        .initialize(
            json!({}),
            json!({"storyteller": {"inline": {"debounceMs": "fast"}, "euOnly": true}}),
        )
        .await;
    let warning = client
        .shown_containing("storyteller.inline.debounceMs")
        .await;
    assert_eq!(warning["params"]["type"], 2);
    let settings = client.state.settings.current();
    assert_eq!(settings.inline.debounce_ms, 120);
    assert!(settings.eu_only);

    // The same mistake pushed again is not shown again; a new one is.
    client
        .notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"storyteller": {"inline": {"debounceMs": "fast"}, "colour": 1}}}),
        )
        .await;
    client.shown_containing("storyteller.colour").await;
    client.drain().await;
    let debounce_warnings = client
        .shown(2)
        .iter()
        .filter(|m| m.contains("debounceMs"))
        .count();
    assert_eq!(debounce_warnings, 1);
    assert_eq!(client.state.settings.current().inline.debounce_ms, 120);
}

#[tokio::test]
async fn settings_are_pulled_when_the_client_supports_configuration() {
    let mut client = TestClient::start();
    client.configuration = json!({"inline": {"debounceMs": 250}});
    client
        .initialize(json!({"workspace": {"configuration": true}}), Value::Null)
        .await;
    client.drain().await;
    assert_eq!(client.state.settings.current().inline.debounce_ms, 250);
    let pull = &client.server_requests[0];
    assert_eq!(pull["method"], "workspace/configuration");
    assert_eq!(pull["params"]["items"][0]["section"], "storyteller");

    // A change notification (payload null, as VS Code sends it) triggers a new pull.
    client.configuration = json!({"inline": {"debounceMs": 400}});
    client
        .notify(
            "workspace/didChangeConfiguration",
            json!({"settings": null}),
        )
        .await;
    let state = client.state.clone();
    let pulls = loop {
        client.drain().await;
        if client.server_requests.len() >= 2 && state.settings.current().inline.debounce_ms == 400 {
            break client.server_requests.len();
        }
        client.until(tokio::task::yield_now()).await;
    };
    assert_eq!(pulls, 2);
}

#[tokio::test]
async fn workspace_folders_are_tracked() {
    let mut client = TestClient::start();
    client
        .request(
            "initialize",
            json!({
                "capabilities": {},
                "initializationOptions": {"dataDir": client.data_dir.path()},
                "workspaceFolders": [{"uri": "file:///books/novel", "name": "novel"}]
            }),
        )
        .await
        .unwrap();
    client.notify("initialized", json!({})).await;
    client
        .notify(
            "workspace/didChangeWorkspaceFolders",
            json!({"event": {
                "added": [{"uri": "file:///books/sequel", "name": "sequel"}],
                "removed": [{"uri": "file:///books/novel", "name": "novel"}]
            }}),
        )
        .await;
    let state = client.state.clone();
    client
        .until(async move {
            loop {
                let roots: Vec<_> = state
                    .workspace_roots()
                    .into_iter()
                    .map(|r| r.name)
                    .collect();
                if roots == ["sequel"] {
                    break;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
    let root = client
        .state
        .project_root_for("file:///books/sequel/ch1.md")
        .unwrap();
    assert_eq!(root.path().unwrap().to_str(), Some("/books/sequel"));
}

#[tokio::test]
async fn requests_before_initialize_get_server_not_initialized() {
    let mut client = TestClient::start();
    for method in [
        "textDocument/completion",
        "storyteller/documentState",
        "textDocument/inlineCompletion",
        "no/suchMethod",
    ] {
        let error = client.request(method, json!({})).await.unwrap_err();
        assert_eq!(error["code"], -32002, "{method}");
    }
    // A notification before initialize is dropped, not applied later.
    client.open(URI, "too early").await;
    client.initialize(json!({}), Value::Null).await;
    assert!(client.document_state(URI).await.is_err());
}

#[tokio::test]
async fn requests_after_shutdown_are_invalid_requests() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "x").await;
    client.request("shutdown", Value::Null).await.unwrap();
    for method in ["storyteller/documentState", "shutdown", "no/suchMethod"] {
        let error = client
            .request(method, json!({"uri": URI}))
            .await
            .unwrap_err();
        assert_eq!(error["code"], -32600, "{method}");
    }
    client.notify("exit", Value::Null).await;
    assert_eq!(client.finished().await, ExitStatus::Clean);
}

#[tokio::test]
async fn exit_without_shutdown_is_not_clean() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client.notify("exit", Value::Null).await;
    assert_eq!(client.finished().await, ExitStatus::WithoutShutdown);
}

#[tokio::test]
async fn malformed_json_gets_a_parse_error_and_the_session_goes_on() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client
        .send_raw(b"Content-Length: 13\r\n\r\n{\"jsonrpc\": 2")
        .await;
    let error = client.response_to(&Value::Null).await.unwrap_err();
    assert_eq!(error["code"], -32700);
    client.open(URI, "still here").await;
    assert_text(&mut client, URI, 1, "still here").await;
}

#[tokio::test]
async fn commands_are_validated_before_they_run() {
    // A runner that runs nothing: what a known command that is not available answers.
    let mut client = TestClient::start_with(Features {
        commands: Arc::new(NoCommands),
        ..Features::default()
    });
    let result = client.initialize(json!({}), Value::Null).await;
    let advertised = &result["capabilities"]["executeCommandProvider"]["commands"];
    assert!(
        advertised
            .as_array()
            .unwrap()
            .contains(&json!("storyteller.status"))
    );
    let unknown = client
        .request(
            "workspace/executeCommand",
            json!({"command": "storyteller.launchRockets", "arguments": []}),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown["code"], -32602);
    assert!(unknown["message"].as_str().unwrap().starts_with("command:"));
    let bad_args = client
        .request(
            "workspace/executeCommand",
            json!({"command": "storyteller.status", "arguments": ["not an object"]}),
        )
        .await
        .unwrap_err();
    assert!(
        bad_args["message"]
            .as_str()
            .unwrap()
            .starts_with("arguments:")
    );
    let not_yet = client
        .request(
            "workspace/executeCommand",
            json!({"command": "storyteller.status", "arguments": [{}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(not_yet["code"], -32803);
    assert_eq!(
        not_yet["message"],
        messages::command_unavailable("storyteller.status")
    );
}

#[tokio::test]
async fn code_actions_are_listed_without_error_for_open_documents() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "A scene.").await;
    let params = |uri: &str| {
        json!({
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 8}},
            "context": {"diagnostics": []}
        })
    };
    assert_eq!(
        client.request("textDocument/codeAction", params(URI)).await,
        Ok(json!([]))
    );
    assert!(
        client
            .request("textDocument/codeAction", params("file:///x.md"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn snapshots_taken_by_handlers_are_isolated_from_later_edits() {
    let mut client = TestClient::start();
    client.initialize(json!({}), Value::Null).await;
    client.open(URI, "first").await;
    assert_text(&mut client, URI, 1, "first").await;
    let before = client.state.documents.snapshot(URI).unwrap();
    client.change(URI, 2, json!([{"text": "second"}])).await;
    assert_text(&mut client, URI, 2, "second").await;
    assert_eq!(before.text().to_string(), "first");
    assert_eq!(
        before
            .position_of(CharOffset(5), Default::default())
            .unwrap()
            .character,
        5
    );
}
