//! Inline completion, end to end as an editor sees it: the server's own cost per request, and how
//! many provider calls a typing burst makes. Run with `cargo bench --bench inline` (release).
//!
//! How it is driven: the release binary `storyteller-lsp` as a child process, spoken to over its
//! stdin/stdout pipes with LSP framing (`tests/stdio_support`), against the provider simulator in
//! this process on loopback, with zero latency. The client's framing, JSON work and the hop
//! through its reader task are counted as server time (the figures are pessimistic).
//!
//! 1. Overhead per inline completion on a 1 MB manuscript (target: p50 < 1 ms, p99 < 5 ms).
//!    The simulator stamps when each request had arrived (body read) and when the last byte of
//!    its answer was handed to the connection. Overhead = (request sent by the editor → request
//!    read by the simulator) + (answer handed over by the simulator → response read by the
//!    editor): everything but the provider's own time. Debounce 0; the cursor does not move, but
//!    the text before it changes by one word per request, so no answer comes from the prefix
//!    cache. DeepSeek's wire format (OpenAI's, without rate-limit headers, so no vendor hint
//!    paces the thousands of requests).
//!    With `STORYTELLER_BENCH_FLOOR_BIN` naming `examples/stdio_floor` (built with
//!    `cargo build --release --example stdio_floor`), the same loop measures that program too: a
//!    forwarder with no work in it, the floor no server goes under on this machine.
//!    `STORYTELLER_BENCH_WINDOWS=<file>` records when each measured loop ran and in which process,
//!    for `scripts/profile-inline` (where the CPU time of a completion goes, sampled by `perf`).
//! 2. Typing burst (target: ≤ 3 provider requests): 50 keystrokes 30 ms apart, each a
//!    `didChange` plus an automatic inline completion request, with the default debounce
//!    (120 ms); provider requests counted at the simulator.
//!
//! 3. Story-notes matching (target: well under 100 µs): choosing the notes of a prompt (names
//!    stemmed and found as phrases, ranked, formatted within the inline budget) in a 1.6 KB window
//!    over the salt-ledger fixture (24 notes), in process, at cursors across its chapters.
//!
//! Figures are recorded for `scripts/bench-report` (see `benches/support`).

#[path = "../tests/stdio_support/mod.rs"]
mod stdio_support;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde_json::{Value, json};
use std::hint::black_box;
use stdio_support::{Spawn, StdioServer, binary};
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::SimulatorHandle;
use storyteller_lsp::store::providers::{self, NewProvider};
use storyteller_lsp::store::{Store, projects};

const URI: &str = "file:///bench/novel.md";
const MANUSCRIPT_BYTES: usize = 1 << 20;
const PATIENCE: Duration = Duration::from_secs(30);
const KIND: ProviderKind = ProviderKind::DeepSeek;

fn manuscript() -> String {
    let paragraph = "Mara climbed the ninety-one steps of the tower with the lantern in her left hand. \
        The storm leaned on the glass, and Tomas had not come back from the harbour. She counted \
        the seconds between the flashes and did not let herself think about the boat.\n\n";
    let mut text = String::from("# Chapter 1: The Lamp\n\n");
    while text.len() < MANUSCRIPT_BYTES {
        text.push_str(paragraph);
    }
    text.push_str("She waited by the window");
    text
}

/// The server on a fresh data directory whose default project routes to the simulator.
async fn session(sim: &SimulatorHandle, options: Value) -> (StdioServer, tempfile::TempDir) {
    session_of(binary(), sim, options).await
}

/// [`session`] with `program` as the server (the floor is another program).
async fn session_of(
    program: &Path,
    sim: &SimulatorHandle,
    options: Value,
) -> (StdioServer, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("a data directory");
    let store = Store::open(data.path().join("storyteller.db")).expect("the database");
    let endpoint = sim.endpoint(KIND);
    store
        .blocking(move |conn| {
            let project = projects::default_project(conn)?.id;
            let mut new = NewProvider::new(project, KIND);
            new.endpoint = Some(endpoint);
            providers::insert(conn, &new)?;
            Ok(())
        })
        .expect("a provider");
    drop(store);
    let spawn = Spawn {
        env: vec![
            ("DEEPSEEK_API_KEY".into(), "sk-bench-0000000001".into()),
            ("STORYTELLER_CREDENTIALS_KEY".into(), "bench-key".into()),
            // For `examples/stdio_floor` (the floor under this bench), which keeps no database.
            ("STORYTELLER_BENCH_ENDPOINT".into(), sim.endpoint(KIND)),
        ],
        ..Spawn::default()
    };
    let server = StdioServer::spawn(program, data.path(), spawn).expect("the server starts");
    server
        .initialize(
            json!({"general": {"positionEncodings": ["utf-8"]}, "textDocument": {"inlineCompletion": {}}}),
            options,
        )
        .await;
    (server, data)
}

fn end_position(text: &str) -> (u32, u32) {
    let line = text.split('\n').count() - 1;
    let last = text.rsplit('\n').next().unwrap_or_default();
    (line as u32, last.len() as u32)
}

/// Who answers the completions [`overhead`] measures, and the name of its figures.
struct Measured {
    program: PathBuf,
    /// The prefix of the recorded metrics: `inline` for the server, `floor` for the floor.
    prefix: &'static str,
    title: &'static str,
}

/// The server under test, and — when `STORYTELLER_BENCH_FLOOR_BIN` names it — the floor
/// (`examples/stdio_floor`: one thread that forwards the request and writes the model's text back,
/// no document, context or cleaning): what is left of the overhead when a server does nothing.
fn measured() -> Vec<Measured> {
    let floor = std::env::var_os("STORYTELLER_BENCH_FLOOR_BIN").filter(|path| !path.is_empty());
    let mut all = vec![Measured {
        program: binary().to_path_buf(),
        prefix: "inline",
        title: "inline completion over stdio",
    }];
    if let Some(floor) = floor {
        all.push(Measured {
            program: PathBuf::from(floor),
            prefix: "floor",
            title: "the floor (examples/stdio_floor) over stdio",
        });
    }
    all
}

async fn overhead(who: &Measured) {
    let (program, prefix, title) = (who.program.as_path(), who.prefix, who.title);
    let sim = SimulatorHandle::start().await.expect("the simulator");
    // The per-minute budget must not be what is measured.
    let options = json!({"inline": {"debounceMs": 0}, "rateLimits": {"deepseek": 100000}});
    let (server, _data) = session_of(program, &sim, options).await;
    let mut text = manuscript();
    server.open(URI, &text).await;
    // The end position is kept as words are appended: scanning the whole manuscript before each
    // request would sweep the caches the server shares with this process.
    let (line, mut character) = end_position(&text);

    let warm_up = 100;
    let measured = support::iterations(2_000, 1_000);
    let mut overheads = Vec::with_capacity(measured);
    // The two legs of the overhead: the editor's request to the provider request, and the
    // provider's answer to the editor's (the floor's legs say which one the server lengthens).
    let mut outward = Vec::with_capacity(measured);
    let mut back = Vec::with_capacity(measured);
    let mut totals = Vec::with_capacity(measured);
    // The same stub called directly: one keep-alive connection, the request body the server
    // sent last, timed alternately with the server's requests so both see the same load.
    let direct_client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("a direct HTTP client");
    let mut directs = Vec::with_capacity(measured);
    let mut cpu_at_start = None;
    let mut window_start = 0.0;
    let began = Instant::now();
    let mut sent_at = Vec::with_capacity(measured);
    for i in 0..warm_up + measured {
        if i == warm_up {
            cpu_at_start = server.cpu_time();
            window_start = support::monotonic_seconds();
        }
        // One word more before the cursor: a new request, never a cache hit.
        let word = if i % 2 == 0 { " now" } else { " then" };
        let at = json!({"line": line, "character": character});
        server
            .notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": URI, "version": i + 2},
                       "contentChanges": [{"range": {"start": at, "end": at}, "text": word}]}),
            )
            .await;
        text.push_str(word);
        character += word.len() as u32;
        let params = json!({
            "textDocument": {"uri": URI},
            "position": {"line": line, "character": character},
            // Automatic (while typing, debounce 0): one provider request per completion; an
            // invoked request asks for three alternatives.
            "context": {"triggerKind": 2}
        });
        let sent = Instant::now();
        let answer = server
            .request("textDocument/inlineCompletion", params, PATIENCE)
            .await
            .expect_result("inline completion");
        let received = Instant::now();
        assert_eq!(
            answer["items"].as_array().map(Vec::len),
            Some(1),
            "request {i}: no suggestion: {answer}; simulator saw {:?}; server said:\n{}",
            sim.requests(Some(KIND)).last().map(|r| (
                r.status,
                r.fault.clone(),
                r.body
                    .to_string()
                    .chars()
                    .rev()
                    .take(300)
                    .collect::<String>()
            )),
            server.stderr()
        );
        let record = sim
            .requests(Some(KIND))
            .pop()
            .expect("the provider was called");
        let (Some(arrived), Some(handed_over)) = (record.received_at, record.completed_at) else {
            panic!("the simulator did not stamp the request: {record:?}");
        };
        assert!(
            arrived >= sent,
            "the provider request came from an earlier inline request"
        );
        let direct = direct_call(&direct_client, &sim, &record).await;
        if i >= warm_up {
            overheads.push((arrived - sent) + (received - handed_over));
            outward.push(arrived - sent);
            back.push(received - handed_over);
            sent_at.push(sent - began);
            totals.push(received - sent);
            directs.push(direct);
        }
        // The simulator's list is copied by each look at it: kept to one request.
        sim.clear_requests();
    }
    // The server's CPU per completion (its didChange included): what the machine pays for each,
    // whatever the scheduler does with the wake-ups.
    let cpu_per_completion = cpu_at_start
        .zip(server.cpu_time())
        .map(|(start, end)| end.saturating_sub(start) / measured as u32);
    support::record_window(
        prefix,
        server.pid(),
        window_start,
        support::monotonic_seconds(),
        measured,
    );
    if let Some(cpu) = cpu_per_completion {
        support::record(&format!("{prefix}_server_cpu"), support::micros(cpu), "µs");
    }
    // The floor under all of it: the cheapest request there is (a method the server does not
    // know, answered with an error at once) over the same pipes, with the same client.
    let mut pings = Vec::with_capacity(measured);
    for _ in 0..measured {
        let sent = Instant::now();
        let _ = server
            .request("storyteller/benchPing", json!({}), PATIENCE)
            .await;
        pings.push(sent.elapsed());
    }
    // (`stdio_ping` for the server, as the report has always named it.)
    let ping_metric = if prefix == "inline" {
        "stdio_ping".to_owned()
    } else {
        format!("{prefix}_stdio_ping")
    };
    let (ping50, _) = support::record_percentiles(&ping_metric, &mut pings);
    // Each completion's overhead in order, with when it was sent, for a look at the slow ones
    // (`STORYTELLER_BENCH_SERIES=<file>`: "ms since the first request, µs" per line; the
    // floor's in `<file>.floor`).
    if let Some(mut path) = std::env::var_os("STORYTELLER_BENCH_SERIES") {
        if prefix != "inline" {
            path.push(format!(".{prefix}"));
        }
        let lines: String = sent_at
            .iter()
            .zip(&overheads)
            .map(|(at, overhead)| {
                format!(
                    "{:.3} {:.1}\n",
                    at.as_secs_f64() * 1e3,
                    support::micros(*overhead)
                )
            })
            .collect();
        if let Err(e) = std::fs::write(&path, lines) {
            eprintln!("cannot write the series to {}: {e}", path.to_string_lossy());
        }
    }
    // The worst of each run of 50 completions (in the order they were made), then the median
    // and the worst of those maxima.
    let mut maxima: Vec<Duration> = overheads
        .chunks_exact(50)
        .filter_map(|run| run.iter().max().copied())
        .collect();
    maxima.sort();
    let max50_median = support::percentile(&maxima, 0.5);
    let max50_worst = maxima.last().copied().unwrap_or_default();
    support::record(
        &format!("{prefix}_stdio_overhead_max50"),
        support::micros(max50_median),
        "µs",
    );
    support::record(
        &format!("{prefix}_stdio_overhead_max50_worst"),
        support::micros(max50_worst),
        "µs",
    );
    let (p50, p99) =
        support::record_percentiles(&format!("{prefix}_stdio_overhead"), &mut overheads);
    let (out50, _) = support::record_percentiles(&format!("{prefix}_stdio_outward"), &mut outward);
    let (back50, _) = support::record_percentiles(&format!("{prefix}_stdio_back"), &mut back);
    let (d50, _) = support::record_percentiles(&format!("{prefix}_direct"), &mut directs);
    let (t50, t99) = support::record_percentiles(&format!("{prefix}_stdio_total"), &mut totals);
    println!(
        "{title} on a {:.2} MB manuscript, {measured} requests ({}, loopback simulator):",
        text.len() as f64 / (1 << 20) as f64,
        program.display()
    );
    println!(
        "  server overhead (request written → HTTP request read + HTTP answer written → response read): p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>8.1} µs",
        support::micros(p50),
        support::micros(p99),
        support::micros(*overheads.last().unwrap_or(&Duration::ZERO)),
    );
    println!(
        "  of which: request → provider request p50 {:>7.1} µs; provider answer → response p50 {:>7.1} µs",
        support::micros(out50),
        support::micros(back50),
    );
    println!(
        "  whole round trip including the simulator:                                                    p50 {:>7.1} µs  p99 {:>7.1} µs",
        support::micros(t50),
        support::micros(t99),
    );
    let ratio = t50.as_secs_f64() / d50.as_secs_f64().max(1e-9);
    support::record(&format!("{prefix}_stdio_ratio"), ratio, "×");
    println!(
        "  the same request straight to the stub (keep-alive):                                          p50 {:>7.1} µs  → round trip ÷ direct = {ratio:.2}",
        support::micros(d50),
    );
    if let Some(cpu) = cpu_per_completion {
        println!(
            "  server CPU per completion (its didChange included, all threads):                          {:>7.1} µs",
            support::micros(cpu)
        );
    }
    println!(
        "  floor: a request the server answers at once (unknown method), same pipes and client:       p50 {:>7.1} µs",
        support::micros(ping50),
    );
    println!(
        "  max of 50 completions: median over the runs {:>7.1} µs, worst {:>7.1} µs",
        support::micros(max50_median),
        support::micros(max50_worst),
    );
    println!(
        "  target p50 < 1000 µs, p99 < 5000 µs: {}",
        if p50 < Duration::from_millis(1) && p99 < Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// A manuscript of about `bytes`, different for each `n` (no sharing between documents).
fn book(n: usize, bytes: usize) -> String {
    let mut text = format!("# Book {n}\n\n");
    let mut paragraph = 0;
    while text.len() < bytes {
        text.push_str(&format!(
            "Paragraph {paragraph} of book {n}. Mara climbed the ninety-one steps of the tower with \
             the lantern in her left hand; the storm leaned on the glass, and Tomas had not come \
             back from the harbour.\n\n"
        ));
        paragraph += 1;
    }
    text.push_str("She waited by the window");
    text
}

/// `n` inline completions at the end of `uri` (whose text is `text`), each after a one-word edit:
/// the server's overhead as in [`overhead`], and the time of each edit (a `didChange` and a
/// request answered after it).
async fn completions_and_edits(
    server: &StdioServer,
    sim: &SimulatorHandle,
    uri: &str,
    text: &mut String,
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    // Kept as words are appended (see `overhead`): no scan of the manuscript per request.
    let (line, mut character) = end_position(text);
    let (mut overheads, mut edits) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 20 {
        let word = if i % 2 == 0 { " now" } else { " then" };
        let at = json!({"line": line, "character": character});
        let edit_started = Instant::now();
        server
            .notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": uri, "version": i + 2},
                       "contentChanges": [{"range": {"start": at, "end": at}, "text": word}]}),
            )
            .await;
        // Any request is answered after the change was applied (text sync applies changes in
        // arrival order, before handlers are queued): an unknown method is the cheapest answer.
        let _ = server
            .request("storyteller/benchPing", json!({}), PATIENCE)
            .await;
        let edited = edit_started.elapsed();
        text.push_str(word);
        character += word.len() as u32;
        let params = json!({
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 2}
        });
        let sent = Instant::now();
        let answer = server
            .request("textDocument/inlineCompletion", params, PATIENCE)
            .await
            .expect_result("inline completion");
        let received = Instant::now();
        assert_eq!(
            answer["items"].as_array().map(Vec::len),
            Some(1),
            "{answer}"
        );
        let record = sim
            .requests(Some(KIND))
            .pop()
            .expect("the provider was called");
        let (Some(arrived), Some(handed_over)) = (record.received_at, record.completed_at) else {
            panic!("the simulator did not stamp the request");
        };
        if i >= 20 {
            overheads.push((arrived - sent) + (received - handed_over));
            edits.push(edited);
        }
        sim.clear_requests();
    }
    (overheads, edits)
}

/// Scale: 100 open 1 MB manuscripts, then one of 50 MB (each in a fresh server): resident
/// memory, and the completion overhead and edit time on them (no superlinear growth).
async fn scale() {
    let sim = SimulatorHandle::start().await.expect("the simulator");
    let options = json!({"inline": {"debounceMs": 0}, "rateLimits": {"deepseek": 100000}});
    let n = support::iterations(300, 100);
    let mb = |kib: u64| kib as f64 / 1024.0;
    for (label, documents, bytes) in [("100x1mb", 100, 1 << 20), ("1x50mb", 1, 50 << 20)] {
        let (mut server, _data) = session(&sim, options.clone()).await;
        let mut last = String::new();
        for d in 0..documents {
            let text = book(d, bytes);
            server
                .open(&format!("file:///bench/scale-{d:03}.md"), &text)
                .await;
            last = text;
        }
        let uri = format!("file:///bench/scale-{:03}.md", documents - 1);
        let (mut overheads, mut edits) =
            completions_and_edits(&server, &sim, &uri, &mut last, n).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (rss, hwm) = server.memory_kib().expect("/proc status");
        let anon = server.anonymous_kib().expect("/proc status");
        server.shutdown(PATIENCE).await;
        support::record(&format!("rss_{label}"), mb(rss), "MB");
        support::record(&format!("hwm_{label}"), mb(hwm), "MB");
        support::record(&format!("anon_{label}"), mb(anon), "MB");
        let (o50, o99) =
            support::record_percentiles(&format!("inline_overhead_{label}"), &mut overheads);
        let (e50, e99) = support::record_percentiles(&format!("edit_stdio_{label}"), &mut edits);
        println!(
            "{label}: resident {:.1} MB (peak {:.1} MB, anonymous {:.1} MB); inline overhead p50 {:.1} µs p99 {:.1} µs; edit + answered request p50 {:.1} µs p99 {:.1} µs",
            mb(rss),
            mb(hwm),
            mb(anon),
            support::micros(o50),
            support::micros(o99),
            support::micros(e50),
            support::micros(e99),
        );
    }
}

/// The request the server last sent (`record`), sent again straight to the stub on the bench's
/// keep-alive connection; the time of the whole round trip.
async fn direct_call(
    client: &reqwest::Client,
    sim: &SimulatorHandle,
    record: &storyteller_lsp::simulator::RecordedRequest,
) -> Duration {
    let endpoint = sim.endpoint(KIND);
    let origin = endpoint
        .find("://")
        .and_then(|scheme| endpoint[scheme + 3..].find('/').map(|p| scheme + 3 + p))
        .map_or(endpoint.as_str(), |p| &endpoint[..p]);
    let url = format!("{origin}{}", record.path);
    let body = serde_json::to_vec(&record.body).expect("a JSON body");
    let start = Instant::now();
    let answer = client
        .post(&url)
        .header("authorization", "Bearer sk-bench-0000000001")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the stub answers");
    let status = answer.status();
    let bytes = answer.bytes().await.expect("the stub's answer");
    let elapsed = start.elapsed();
    assert!(status.is_success(), "direct call: {status}");
    black_box(bytes);
    elapsed
}

async fn typing_burst() {
    let sim = SimulatorHandle::start().await.expect("the simulator");
    let (server, _data) = session(&sim, json!({})).await;
    let server = Arc::new(server);
    let text = manuscript();
    server.open(URI, &text).await;
    let (line, mut character) = end_position(&text);
    let mut answers = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(30));
    for version in 2..52 {
        tick.tick().await;
        server
            .notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": URI, "version": version},
                       "contentChanges": [{"range": {"start": {"line": line, "character": character},
                                                     "end": {"line": line, "character": character}},
                                           "text": "x"}]}),
            )
            .await;
        character += 1;
        let server = server.clone();
        answers.push(tokio::spawn(async move {
            server
                .request(
                    "textDocument/inlineCompletion",
                    json!({"textDocument": {"uri": URI},
                           "position": {"line": line, "character": character},
                           "context": {"triggerKind": 2}}),
                    PATIENCE,
                )
                .await
        }));
    }
    for answer in answers {
        let _ = answer.await;
    }
    let calls = sim
        .requests(Some(KIND))
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    support::record("typing_burst_provider_requests", calls as f64, "requests");
    println!(
        "typing burst: 50 keystrokes 30 ms apart, debounce 120 ms → {calls} provider request(s) (target ≤ 3: {})",
        if calls <= 3 { "met" } else { "NOT met" }
    );
}

/// Choosing the story notes of one inline prompt: the part of every ghost-text request that
/// grows with the notes.
fn notes_matching(c: &mut Criterion) {
    use storyteller_lsp::assist::context::ContextBudget;
    use storyteller_lsp::assist::notes::NotesIndex;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/salt-ledger");
    let index = NotesIndex::new();
    let patterns = storyteller_lsp::config::Settings::default().context_files;
    if index.index_root_blocking(&root, &patterns).is_err() {
        return;
    }
    // 1.2 KB before and 400 bytes after each cursor: the window the matching reads.
    let chapters: String = ["chapter-01.md", "chapter-02.md", "chapter-03.md"]
        .iter()
        .filter_map(|c| std::fs::read_to_string(root.join("chapters").join(c)).ok())
        .collect::<Vec<_>>()
        .join("\n\n");
    let text = chapters.repeat(2);
    let windows: Vec<(&str, &str)> = (1_200..text.len().saturating_sub(400))
        .step_by(97)
        .filter(|at| {
            [at - 1_200, *at, at + 400]
                .iter()
                .all(|i| text.is_char_boundary(*i))
        })
        .map(|at| (&text[at - 1_200..at], &text[at..at + 400]))
        .collect();
    if windows.is_empty() {
        return;
    }
    let budget = ContextBudget::INLINE.notes_chars();
    let n = support::iterations(20_000, 2_000);
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let (before, after) = windows[i % windows.len()];
        let start = Instant::now();
        black_box(index.relevant(&root, before, after, budget));
        times.push(start.elapsed());
    }
    let (p50, p99) = support::record_percentiles("notes_matching", &mut times);
    println!(
        "story notes chosen for one inline prompt (24 notes, 1.6 KB window): median {:.1} µs, p99 {:.1} µs (target well under 100 µs)",
        support::micros(p50),
        support::micros(p99)
    );
    if support::with_criterion() {
        let mut i = 0;
        c.bench_function("story notes for one inline prompt, 24 notes, 1.6 KB", |b| {
            b.iter(|| {
                i = (i + 1) % windows.len();
                let (before, after) = windows[i];
                black_box(index.relevant(&root, before, after, budget))
            })
        });
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    let benching = std::env::args().any(|a| a == "--bench");
    if benching {
        let mut criterion = Criterion::default().configure_from_args();
        notes_matching(&mut criterion);
        if support::with_criterion() {
            criterion.final_summary();
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if benching {
            for who in measured() {
                overhead(&who).await;
            }
            scale().await;
        }
        typing_burst().await;
    });
}
