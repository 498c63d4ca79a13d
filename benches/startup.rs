//! Process start → `initialize` result, for the real binary (target: under 50 ms). Uses
//! `target/release/storyteller-lsp` when it exists, else the debug build, and says which.
//! Each sample starts a fresh process with a fresh data directory; the process is killed after
//! the answer (outside the timed part).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{"general":{"positionEncodings":["utf-8","utf-16"]}}}}"#;

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let release = root.join("target/release/storyteller-lsp");
    if release.is_file() {
        release
    } else {
        root.join("target/debug/storyteller-lsp")
    }
}

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

fn startup(c: &mut Criterion) {
    let binary = binary();
    if !binary.is_file() {
        eprintln!(
            "no server binary at {}: run `cargo build` first",
            binary.display()
        );
        return;
    }
    println!("startup bench runs {}", binary.display());
    let data = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("no temporary directory: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("startup");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("process start → initialize result", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                match time_to_initialize(&binary, data.path()) {
                    Ok(elapsed) => total += elapsed,
                    Err(e) => panic!("the server did not answer initialize: {e}"),
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
