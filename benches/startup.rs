//! The real binary as a process: start → `initialize` result (target: under 50 ms), with the
//! database already migrated (a second start, as every start after the first), and its resident
//! memory — idle after start-up, and with 20 open 1 MB manuscripts (target: under 120 MB) — read
//! from `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
//!
//! Runs the binary Cargo built for the bench profile (release under `cargo bench`). Each start
//! is a fresh process; it is killed after the answer, outside the timed part. Figures are
//! recorded for `scripts/bench-report` (see `benches/support`).

#[path = "../tests/stdio_support/mod.rs"]
mod stdio_support;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use serde_json::json;
use stdio_support::{Spawn, StdioServer, binary};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{"general":{"positionEncodings":["utf-8","utf-16"]}}}}"#;
const DOCUMENTS: usize = 20;
const DOCUMENT_BYTES: usize = 1 << 20;
const PATIENCE: Duration = Duration::from_secs(60);

/// Reads one framed message; returns its body.
fn read_message(out: &mut BufReader<impl Read>) -> std::io::Result<String> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if out.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    out.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn time_to_initialize(binary: &Path, data_dir: &Path) -> std::io::Result<Duration> {
    let start = Instant::now();
    let mut child: Child = Command::new(binary)
        .env("STORYTELLER_DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        let stdin = child.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        write!(
            stdin,
            "Content-Length: {}\r\n\r\n{INITIALIZE}",
            INITIALIZE.len()
        )?;
        stdin.flush()?;
        let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let answer = read_message(&mut BufReader::new(stdout))?;
        let elapsed = start.elapsed();
        if !answer.contains("\"capabilities\"") {
            return Err(std::io::Error::other(format!(
                "unexpected answer: {answer}"
            )));
        }
        Ok(elapsed)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// A data directory whose database is migrated: one full start (initialize, initialized,
/// start-up done, exit) against it.
fn migrated_data_dir(runtime: &tokio::runtime::Runtime) -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("a data directory");
    runtime.block_on(async {
        let mut server =
            StdioServer::spawn(binary(), data.path(), Spawn::default()).expect("the server starts");
        server.initialize(json!({}), json!({})).await;
        server.shutdown(PATIENCE).await;
    });
    data
}

fn report_startup(data: &Path) {
    let n = support::iterations(60, 25);
    // One start not counted: the binary's pages into the page cache.
    let _ = time_to_initialize(binary(), data);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        match time_to_initialize(binary(), data) {
            Ok(elapsed) => times.push(elapsed),
            Err(e) => panic!("the server did not answer initialize: {e}"),
        }
    }
    times.sort();
    let (p50, p99) = (
        support::percentile(&times, 0.5),
        support::percentile(&times, 0.99),
    );
    support::record("startup_initialize_p50", p50.as_secs_f64() * 1e3, "ms");
    support::record("startup_initialize_p99", p99.as_secs_f64() * 1e3, "ms");
    println!(
        "process start → initialize result, migrated database, {n} starts: median {p50:?}, p99 {p99:?}"
    );
}

/// A manuscript of about 1 MB, different for each `n` (no sharing between documents).
fn manuscript(n: usize) -> String {
    let mut text = format!("# Book {n}\n\n");
    let mut paragraph = 0;
    while text.len() < DOCUMENT_BYTES {
        text.push_str(&format!(
            "Paragraph {paragraph} of book {n}. Mara climbed the ninety-one steps of the tower with \
             the lantern in her left hand; the storm leaned on the glass — and Tomas had not come \
             back from the harbour. 灯台の光。\n\n"
        ));
        paragraph += 1;
    }
    text
}

fn report_memory(runtime: &tokio::runtime::Runtime, data: &Path) {
    runtime.block_on(async {
        let mut server =
            StdioServer::spawn(binary(), data, Spawn::default()).expect("the server starts");
        server
            .initialize(json!({"general": {"positionEncodings": ["utf-16"]}}), json!({}))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (idle, _) = server.memory_kib().expect("/proc status");
        let idle_anonymous = server.anonymous_kib().expect("/proc status");
        for n in 0..DOCUMENTS {
            server
                .open(&format!("file:///bench/book-{n:02}.md"), &manuscript(n))
                .await;
        }
        // A request answered after every didOpen was applied (notifications are in order).
        let state = server
            .request(
                "storyteller/documentState",
                json!({"uri": format!("file:///bench/book-{:02}.md", DOCUMENTS - 1)}),
                PATIENCE,
            )
            .await
            .expect_result("document state");
        assert!(state["byteLength"].as_u64().unwrap_or(0) >= DOCUMENT_BYTES as u64, "{state}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (open, peak) = server.memory_kib().expect("/proc status");
        let open_anonymous = server.anonymous_kib().expect("/proc status");
        server.shutdown(PATIENCE).await;
        let mb = |kib: u64| kib as f64 / 1024.0;
        support::record("rss_idle", mb(idle), "MB");
        support::record("rss_20_documents", mb(open), "MB");
        support::record("hwm_20_documents", mb(peak), "MB");
        support::record("anon_idle", mb(idle_anonymous), "MB");
        support::record("anon_20_documents", mb(open_anonymous), "MB");
        println!(
            "resident memory: idle {:.1} MB ({:.1} MB anonymous); with {DOCUMENTS} open 1 MB documents {:.1} MB ({:.1} MB anonymous, peak {:.1} MB); target < 120 MB: {}",
            mb(idle),
            mb(idle_anonymous),
            mb(open),
            mb(open_anonymous),
            mb(peak),
            if mb(peak) < 120.0 { "met" } else { "NOT met" }
        );
    });
}

fn startup(c: &mut Criterion, data: &Path) {
    let mut group = c.benchmark_group("startup");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("process start → initialize result", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                match time_to_initialize(binary(), data) {
                    Ok(elapsed) => total += elapsed,
                    Err(e) => panic!("the server did not answer initialize: {e}"),
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, startup_group);

fn startup_group(c: &mut Criterion) {
    let runtime = runtime();
    let data = migrated_data_dir(&runtime);
    startup(c, data.path());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn main() {
    println!("startup bench runs {}", binary().display());
    let runtime = runtime();
    let data = migrated_data_dir(&runtime);
    report_startup(data.path());
    report_memory(&runtime, data.path());
    if support::with_criterion() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}
