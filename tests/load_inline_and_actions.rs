//! Load (issue 10 item 2): 200 concurrent inline completions and 20 code actions at a time,
//! against the provider simulator with 50 ms latency and seeded random faults on both providers.
//! Every request gets exactly one answer (a result, an empty result, or an error); nothing
//! panics; nothing deadlocks (every wait is bounded and the whole test has a deadline); the
//! server's resident memory does not grow from one round of load to the next.
//!
//! Driven against the real binary over its stdio pipes (`tests/stdio_support`), not the
//! in-process server: the memory figure must be the server's alone (in process, the test client's
//! own allocations would be in it), and the pipes, the process's runtime and its start-up are
//! part of what must hold under load. Loopback only: the simulator runs in this test process.
//!
//! Memory: glibc keeps freed memory in its arenas, so "back to baseline" is measured as "no
//! growth across rounds": the baseline is taken after a warm-up round, then six more rounds
//! run, and the resident set after them must stay within a tolerance of the baseline. A leak of
//! per-request state (documents, suggestions, progress tokens, HTTP bodies) grows with every
//! round and fails it.

mod stdio_support;

use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};
use stdio_support::{Reply, Spawn, StdioServer, binary};
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::{Chaos, Fault, SimulatorHandle};
use storyteller_lsp::store::providers::{self, NewProvider};
use storyteller_lsp::store::{Store, projects};

/// Two vendors whose simulated responses carry no rate-limit headers: a vendor's own per-minute
/// hint would pace the load down to a trickle after the first round, and pacing is not what this
/// test is about (the limiter has its own tests).
const PRIMARY: ProviderKind = ProviderKind::DeepSeek;
const BACKUP: ProviderKind = ProviderKind::Gemini;
const DOCUMENTS: usize = 20;
const INLINE_PER_ROUND: usize = 200;
const ACTIONS_PER_ROUND: usize = 20;
/// One warm-up round (not measured), then the measured ones.
const MEASURED_ROUNDS: usize = 6;
/// Longest any single request may take before it counts as unanswered. Actions are bounded by
/// `actions.timeoutMs` (8 s here) plus the editor's answer to `applyEdit`.
const PATIENCE: Duration = Duration::from_secs(30);
/// The whole test, start-up to exit.
const DEADLINE: Duration = Duration::from_secs(240);
/// Allowed growth of the resident set over the measured rounds.
const GROWTH_FACTOR: f64 = 1.03;
const GROWTH_SLACK_KIB: u64 = 2 * 1024;

fn chaos(seed: u64) -> Chaos {
    Chaos {
        seed,
        probability: 0.3,
        faults: vec![
            Fault::ServerError,
            Fault::Unavailable,
            Fault::Overloaded,
            Fault::RateLimit {
                retry_after_secs: 1,
            },
            Fault::Quota,
            Fault::InvalidKey,
            Fault::ConnectionRefused,
            Fault::ResetMidStream,
            Fault::MalformedJson,
            Fault::TruncatedStream,
            Fault::ErrorMidStream,
            Fault::EchoPrompt,
            Fault::SlowFirstByte { delay_ms: 300 },
        ],
    }
}

fn chapter(n: usize) -> String {
    let mut text = format!("# Chapter {n}\n\n");
    while text.len() < 16 * 1024 {
        text.push_str(
            "Mara climbed the ninety-one steps of the tower with the lantern in her left hand. \
             The storm leaned on the glass, and Tomas had not come back from the harbour.\n\n",
        );
    }
    text.push_str("She waited by the window");
    text
}

fn end_of(text: &str) -> Value {
    let line = text.matches('\n').count();
    let last = text.rsplit('\n').next().unwrap_or_default();
    json!({"line": line, "character": last.len()})
}

fn configure_providers(data_dir: &Path, sim: &SimulatorHandle) {
    let store = Store::open(data_dir.join("storyteller.db")).expect("the database");
    let (primary_endpoint, backup_endpoint) = (sim.endpoint(PRIMARY), sim.endpoint(BACKUP));
    store
        .blocking(move |conn| {
            let project = projects::default_project(conn)?.id;
            let mut primary = NewProvider::new(project, PRIMARY);
            primary.endpoint = Some(primary_endpoint);
            primary.primary = true;
            providers::insert(conn, &primary)?;
            let mut backup = NewProvider::new(project, BACKUP);
            backup.endpoint = Some(backup_endpoint);
            providers::insert(conn, &backup)?;
            Ok(())
        })
        .expect("providers stored");
}

/// The author types a word at the end of every document (so that no suggestion of the previous
/// round is still a cache hit).
async fn type_a_word(server: &StdioServer, texts: &mut [String], version: i32) {
    for (doc, text) in texts.iter_mut().enumerate() {
        let end = end_of(text);
        let word = format!(" and{version}");
        server
            .notify(
                "textDocument/didChange",
                json!({
                    "textDocument": {"uri": uri(doc), "version": version},
                    "contentChanges": [{"range": {"start": end, "end": end}, "text": word}],
                }),
            )
            .await;
        text.push_str(&word);
    }
}

/// One round: every inline request and every action in flight at once, a tenth of the inline
/// requests cancelled by the editor. Returns the replies.
async fn round(server: &StdioServer, texts: &[String]) -> Vec<(String, Reply)> {
    let mut calls = Vec::new();
    for i in 0..INLINE_PER_ROUND {
        let doc = i % DOCUMENTS;
        let params = json!({
            "textDocument": {"uri": uri(doc)},
            "position": end_of(&texts[doc]),
            "context": {"triggerKind": if i % 3 == 0 { 1 } else { 2 }},
        });
        let cancel = i % 10 == 7;
        calls.push(Box::pin(async move {
            let id = server.peek_next_id();
            let reply = if cancel {
                let request = server.request("textDocument/inlineCompletion", params, PATIENCE);
                let canceller = async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    server.cancel(id).await;
                };
                let (reply, ()) = tokio::join!(request, canceller);
                reply
            } else {
                server
                    .request("textDocument/inlineCompletion", params, PATIENCE)
                    .await
            };
            (format!("inline #{i} (doc {doc})"), reply)
        })
            as std::pin::Pin<
                Box<dyn std::future::Future<Output = (String, Reply)> + Send + '_>,
            >);
    }
    for i in 0..ACTIONS_PER_ROUND {
        let doc = i % DOCUMENTS;
        let end = end_of(&texts[doc]);
        let arguments = json!({
            "action": "continueScene",
            "uri": uri(doc),
            "range": {"start": end, "end": end},
        });
        calls.push(Box::pin(async move {
            let reply = server
                .execute("storyteller.generate", arguments, PATIENCE)
                .await;
            (format!("action #{i} (doc {doc})"), reply)
        }));
    }
    join_all(calls).await
}

fn uri(doc: usize) -> String {
    format!("file:///load/chapter-{doc:02}.md")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_under_load_and_faults_gets_one_answer_and_memory_does_not_grow() {
    tokio::time::timeout(DEADLINE, load())
        .await
        .expect("the load test ran past its deadline: a request or the server hung");
}

async fn load() {
    let sim = SimulatorHandle::start().await.expect("the simulator");
    for (kind, seed) in [(PRIMARY, 7), (BACKUP, 11)] {
        sim.set_latency(kind, Duration::from_millis(50));
        sim.set_chaos(kind, chaos(seed));
    }
    let data = tempfile::tempdir().expect("a data directory");
    configure_providers(data.path(), &sim);
    let spawn = Spawn {
        env: vec![
            ("DEEPSEEK_API_KEY".into(), "sk-load-deepseek-000001".into()),
            ("GEMINI_API_KEY".into(), "load-gemini-key-000001".into()),
            ("STORYTELLER_CREDENTIALS_KEY".into(), "load-test-key".into()),
        ],
        ..Spawn::default()
    };
    let mut server = StdioServer::spawn(binary(), data.path(), spawn).expect("the server starts");
    let capabilities = json!({
        "general": {"positionEncodings": ["utf-8"]},
        "window": {"workDoneProgress": true},
        "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}},
        "textDocument": {"inlineCompletion": {}, "codeAction": {"disabledSupport": true}},
    });
    let options = json!({
        "inline": {"debounceMs": 20},
        "actions": {"timeoutMs": 8000},
        // The local per-minute budget is not what this test is about.
        "rateLimits": {"deepseek": 100000, "gemini": 100000},
    });
    server.initialize(capabilities, options).await;
    let mut texts: Vec<String> = (0..DOCUMENTS).map(chapter).collect();
    for (doc, text) in texts.iter().enumerate() {
        server.open(&uri(doc), text).await;
    }

    let mut baseline = None;
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for round_no in 0..=MEASURED_ROUNDS {
        type_a_word(&server, &mut texts, round_no as i32 + 2).await;
        let replies = round(&server, &texts).await;
        assert_eq!(replies.len(), INLINE_PER_ROUND + ACTIONS_PER_ROUND);
        for (what, reply) in &replies {
            let kind = match reply {
                Reply::Result(Value::Null) => "empty",
                Reply::Result(v) if v["items"].as_array().is_some_and(Vec::is_empty) => "empty",
                Reply::Result(v) if v["applied"] == json!(false) => "not applied",
                Reply::Result(_) => "result",
                Reply::Error(e) => {
                    println!("{what}: {e}");
                    "error"
                }
                Reply::TimedOut | Reply::Closed => {
                    panic!(
                        "round {round_no}: {what} got no answer ({reply:?}); stderr:\n{}",
                        server.stderr()
                    )
                }
            };
            *kinds.entry(kind).or_default() += 1;
        }
        // A sync point: the server answers a plain request once the round's work is done.
        server
            .execute("storyteller.status", json!({}), PATIENCE)
            .await
            .expect_result("status after a round");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (rss, hwm) = server.memory_kib().expect("the server's /proc status");
        println!(
            "round {round_no}: VmRSS {rss} KiB, VmHWM {hwm} KiB, answers so far {kinds:?}, provider requests so far {}",
            sim.requests(None).len()
        );
        if round_no == 0 {
            baseline = Some(rss);
        }
    }
    {
        let received = server.received.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            received.unexpected_responses.is_empty(),
            "answers nobody asked for (a request answered twice?): {:?}",
            received.unexpected_responses
        );
    }
    // The faults really happened and the requests really reached the providers.
    let recorded = sim.requests(None);
    let faulted = recorded.iter().filter(|r| r.fault.is_some()).count();
    assert!(
        faulted > 20,
        "only {faulted} of {} provider requests were faulted",
        recorded.len()
    );
    // Both outcomes occur: suggestions and actions that worked, and ones the faults (or the
    // supersedes and cancellations) left empty.
    assert!(kinds.get("result").copied().unwrap_or(0) > 0, "{kinds:?}");
    assert!(kinds.get("empty").copied().unwrap_or(0) > 0, "{kinds:?}");

    let (after, peak) = server.memory_kib().expect("the server's /proc status");
    let baseline = baseline.expect("a baseline");
    let allowed = (baseline as f64 * GROWTH_FACTOR) as u64 + GROWTH_SLACK_KIB;
    assert!(
        after <= allowed,
        "resident memory grew under repeated load: {baseline} KiB after the warm-up round, \
         {after} KiB after {MEASURED_ROUNDS} more (allowed {allowed} KiB, peak {peak} KiB)"
    );

    // Still responsive, and it ends cleanly.
    server
        .execute("storyteller.providers.list", json!({}), PATIENCE)
        .await
        .expect_result("providers.list after the load");
    let status = server.shutdown(PATIENCE).await;
    let stderr = server.stderr();
    if std::env::var_os("LOAD_SHOW_STDERR").is_some() {
        println!("{stderr}");
    }
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after shutdown; stderr:\n{stderr}"
    );
}
