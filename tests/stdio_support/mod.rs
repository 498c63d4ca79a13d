//! The real `storyteller-lsp` binary as a child process, driven over its stdin/stdout pipes with
//! LSP framing — what an editor does. Shared by the load and crash tests and by the benches that
//! must measure the process itself (stdio cost, start-up, resident memory).
//!
//! Requests may be in flight concurrently (`request` takes `&self`): one task reads every frame,
//! hands each response to the request waiting for it, answers the server's own requests like a
//! cooperative editor (settings, `workspace/applyEdit` applied, message buttons unanswered,
//! progress tokens accepted) and records notifications. Every wait is bounded by the caller.

#![allow(dead_code)] // Each crate that includes it uses a different part.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, oneshot};

/// The binary Cargo built for this test or bench (debug for `cargo test`, release for
/// `cargo bench`), or the one `STORYTELLER_BENCH_BIN` names: `scripts/bench-report` measures the
/// `cargo build --release` binary that users install, whose link layout (`build.rs`) matches
/// its own symbol names; `cargo bench`'s build of the binary has other ones.
pub fn binary() -> &'static Path {
    static CHOSEN: OnceLock<PathBuf> = OnceLock::new();
    CHOSEN.get_or_init(|| match std::env::var_os("STORYTELLER_BENCH_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_storyteller-lsp")),
    })
}

type Waiters = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;

/// What the editor answers to `workspace/configuration` and `workspace/applyEdit`.
#[derive(Debug, Clone)]
pub struct EditorAnswers {
    /// The `storyteller` section returned for every configuration item.
    pub configuration: Value,
    /// Whether `workspace/applyEdit` reports the edit applied.
    pub apply_edits: bool,
}

impl Default for EditorAnswers {
    fn default() -> Self {
        EditorAnswers {
            configuration: Value::Null,
            apply_edits: true,
        }
    }
}

/// Everything the server sent besides responses, in arrival order.
#[derive(Debug, Default)]
pub struct Received {
    pub notifications: Vec<Value>,
    pub server_requests: Vec<Value>,
    /// Responses whose id no request was waiting for (a second answer to one id lands here).
    pub unexpected_responses: Vec<Value>,
    /// Every message, as parsed, for scans.
    pub all: Vec<Value>,
}

pub struct StdioServer {
    child: Child,
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    waiters: Waiters,
    next_id: AtomicI64,
    pub received: Arc<Mutex<Received>>,
    /// Notified whenever a message arrives (for waits on notifications).
    arrived: Arc<Notify>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Raw bytes of stdout, when asked for at spawn (leak scans).
    pub raw_stdout: Option<Arc<Mutex<Vec<u8>>>>,
    pid: u32,
}

/// How to start the server.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    pub env: Vec<(String, String)>,
    /// Keep every byte of stdout (memory grows with the session: for short sessions only).
    pub keep_raw_stdout: bool,
    pub answers: EditorAnswers,
}

impl StdioServer {
    /// Starts `binary` (no arguments: the stdio server) with a clean environment: no provider
    /// keys from the developer's shell, `STORYTELLER_DATA_DIR` set to `data_dir`.
    pub fn spawn(binary: &Path, data_dir: &Path, spawn: Spawn) -> std::io::Result<StdioServer> {
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars() {
            if name.ends_with("_API_KEY")
                || name.starts_with("STORYTELLER_")
                || matches!(name.as_str(), "SCW_SECRET_KEY" | "YANDEX_FOLDER_ID")
            {
                command.env_remove(&name);
            }
        }
        command
            .env("STORYTELLER_DATA_DIR", data_dir)
            .envs(spawn.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let stderr_pipe = child.stderr.take().ok_or(std::io::ErrorKind::BrokenPipe)?;

        let stdin = Arc::new(tokio::sync::Mutex::new(stdin));
        let waiters: Waiters = Arc::default();
        let received: Arc<Mutex<Received>> = Arc::default();
        let arrived = Arc::new(Notify::new());
        let raw_stdout = spawn.keep_raw_stdout.then(Arc::default);
        tokio::spawn(read_frames(
            stdout,
            Reader {
                stdin: stdin.clone(),
                waiters: waiters.clone(),
                received: received.clone(),
                arrived: arrived.clone(),
                raw: raw_stdout.clone(),
                answers: spawn.answers,
            },
        ));
        let stderr: Arc<Mutex<Vec<u8>>> = Arc::default();
        tokio::spawn(collect(stderr_pipe, stderr.clone()));
        Ok(StdioServer {
            child,
            stdin,
            waiters,
            next_id: AtomicI64::new(1),
            received,
            arrived,
            stderr,
            raw_stdout,
            pid,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub async fn send(&self, message: &Value) -> std::io::Result<()> {
        write_frame(&self.stdin, message).await
    }

    pub async fn notify(&self, method: &str, params: Value) {
        let _ = self
            .send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Sends a request and waits (at most `patience`) for its response: `Ok(result)` or
    /// `Err(error)`. A server that never answers gives `Err` with `"timeout"`.
    pub async fn request(&self, method: &str, params: Value, patience: Duration) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(id, tx);
        let sent = self
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        if sent.is_err() {
            lock(&self.waiters).remove(&id);
            return Reply::Closed;
        }
        match tokio::time::timeout(patience, rx).await {
            Ok(Ok(response)) => match response.get("error") {
                Some(error) => Reply::Error(error.clone()),
                None => Reply::Result(response.get("result").cloned().unwrap_or(Value::Null)),
            },
            Ok(Err(_)) => Reply::Closed,
            Err(_) => {
                lock(&self.waiters).remove(&id);
                Reply::TimedOut
            }
        }
    }

    /// `$/cancelRequest` for the request with `id`.
    pub async fn cancel(&self, id: i64) {
        self.notify("$/cancelRequest", json!({"id": id})).await;
    }

    /// The id the next request will get (to cancel a request sent concurrently).
    pub fn peek_next_id(&self) -> i64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// `initialize` + `initialized`, then waits until start-up (database, prompts) is done: the
    /// first `storyteller.prompts.list` is answered only then. Returns the initialize result.
    pub async fn initialize(&self, capabilities: Value, options: Value) -> Value {
        let patience = Duration::from_secs(30);
        let result = self
            .request(
                "initialize",
                json!({"processId": null, "capabilities": capabilities,
                       "initializationOptions": options}),
                patience,
            )
            .await
            .expect_result("initialize");
        self.notify("initialized", json!({})).await;
        self.execute("storyteller.prompts.list", json!({}), patience)
            .await
            .expect_result("start-up");
        result
    }

    pub async fn execute(&self, command: &str, arguments: Value, patience: Duration) -> Reply {
        self.request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [arguments]}),
            patience,
        )
        .await
    }

    pub async fn open(&self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": text}}),
        )
        .await;
    }

    /// Waits until `done` holds for what was received, at most `patience`.
    pub async fn wait_for(&self, patience: Duration, done: impl Fn(&Received) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let notified = self.arrived.notified();
            if done(&lock(&self.received)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// `(VmRSS, VmHWM)` of the server process in KiB, from `/proc/<pid>/status`.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        memory_kib(self.pid)
    }

    /// The anonymous part of the resident memory (`RssAnon`, KiB): what the server allocated,
    /// without the pages of its executable and libraries.
    pub fn anonymous_kib(&self) -> Option<u64> {
        status_field(self.pid, "RssAnon:")
    }

    /// CPU time the server has used so far, all its threads (`/proc/<pid>/task/*/schedstat`,
    /// nanoseconds on the CPU); `None` where that is not readable (not Linux, exited).
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()?;
        let mut nanos = 0u64;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            nanos += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(std::time::Duration::from_nanos(nanos))
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    pub fn stderr_bytes(&self) -> Vec<u8> {
        lock(&self.stderr).clone()
    }

    /// `shutdown` then `exit`; waits for the process. Kills it if it does not end in `patience`.
    pub async fn shutdown(&mut self, patience: Duration) -> Option<ExitStatus> {
        let _ = self.request("shutdown", Value::Null, patience).await;
        self.notify("exit", Value::Null).await;
        match tokio::time::timeout(patience, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }

    /// Ends the process at once (SIGKILL).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the process to end by itself (at most `patience`).
    pub async fn wait(&mut self, patience: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(patience, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// A response, or why there was none.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Result(Value),
    Error(Value),
    TimedOut,
    Closed,
}

impl Reply {
    pub fn expect_result(self, what: &str) -> Value {
        match self {
            Reply::Result(v) => v,
            other => panic!("{what}: expected a result, got {other:?}"),
        }
    }

    pub fn expect_error(self, what: &str) -> Value {
        match self {
            Reply::Error(e) => e,
            other => panic!("{what}: expected an error, got {other:?}"),
        }
    }
}

/// `(VmRSS, VmHWM)` of process `pid` in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    Some((status_field(pid, "VmRSS:")?, status_field(pid, "VmHWM:")?))
}

/// A KiB field of `/proc/{pid}/status`.
fn status_field(pid: u32, name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn write_frame(
    stdin: &tokio::sync::Mutex<ChildStdin>,
    message: &Value,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(message)?;
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(&body);
    let mut stdin = stdin.lock().await;
    stdin.write_all(&frame).await?;
    stdin.flush().await
}

struct Reader {
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    waiters: Waiters,
    received: Arc<Mutex<Received>>,
    arrived: Arc<Notify>,
    raw: Option<Arc<Mutex<Vec<u8>>>>,
    answers: EditorAnswers,
}

async fn read_frames(stdout: tokio::process::ChildStdout, r: Reader) {
    let mut out = BufReader::new(stdout);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match out.read_line(&mut line).await {
                Ok(0) | Err(_) => return close(&r),
                Ok(_) => {}
            }
            if let Some(raw) = &r.raw {
                lock(raw).extend_from_slice(line.as_bytes());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let Some(length) = length else {
            return close(&r);
        };
        let mut body = vec![0; length];
        if out.read_exact(&mut body).await.is_err() {
            return close(&r);
        }
        if let Some(raw) = &r.raw {
            lock(raw).extend_from_slice(&body);
        }
        let Ok(message) = serde_json::from_slice::<Value>(&body) else {
            lock(&r.received)
                .unexpected_responses
                .push(json!({"invalid JSON": String::from_utf8_lossy(&body)}));
            continue;
        };
        dispatch(&r, message).await;
        r.arrived.notify_waiters();
    }
}

fn close(r: &Reader) {
    // Waiters see their sender dropped: `Reply::Closed`.
    lock(&r.waiters).clear();
    r.arrived.notify_waiters();
}

async fn dispatch(r: &Reader, message: Value) {
    lock(&r.received).all.push(message.clone());
    match (
        message.get("method").and_then(Value::as_str),
        message.get("id"),
    ) {
        (Some(method), Some(id)) => {
            let result = match method {
                "workspace/configuration" => {
                    let items = message["params"]["items"].as_array().map_or(0, Vec::len);
                    Value::Array(vec![r.answers.configuration.clone(); items])
                }
                "workspace/applyEdit" => json!({"applied": r.answers.apply_edits}),
                _ => Value::Null,
            };
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
            lock(&r.received).server_requests.push(message);
            let _ = write_frame(&r.stdin, &answer).await;
        }
        (Some(_), None) => lock(&r.received).notifications.push(message),
        (None, Some(id)) => {
            let waiter = id.as_i64().and_then(|id| lock(&r.waiters).remove(&id));
            match waiter {
                Some(tx) => {
                    let _ = tx.send(message);
                }
                None => lock(&r.received).unexpected_responses.push(message),
            }
        }
        (None, None) => lock(&r.received).unexpected_responses.push(message),
    }
}

async fn collect(mut pipe: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => lock(&into).extend_from_slice(&buf[..n]),
        }
    }
}
