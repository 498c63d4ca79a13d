//! A tiny JSON-RPC client that drives the real server in-process over a `tokio::io::duplex` pipe,
//! framing messages exactly as on stdio. Shared by the `tests/lsp_*.rs` suites.
//!
//! Every wait is bounded (a hung server fails the test instead of hanging CI); bounds are generous
//! and never assert on speed.

#![allow(dead_code)] // Each test crate uses a different part of it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use storyteller_lsp::lsp::{self, ExitStatus, Features, ServerState};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long any single wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Computes the answer to one request of the server (`None`: the default answer).
pub type Responder = Box<dyn FnMut(&Value) -> Option<Value> + Send>;

pub struct TestClient {
    writer: WriteHalf<DuplexStream>,
    inbox: mpsc::UnboundedReceiver<Value>,
    next_id: i64,
    /// Notifications the server sent, in order.
    pub notifications: Vec<Value>,
    /// Requests the server sent (answered automatically), in order.
    pub server_requests: Vec<Value>,
    /// Responses that arrived while waiting for another one (e.g. to pipelined requests).
    pub stray_responses: Vec<Value>,
    /// The value returned for each `workspace/configuration` item.
    pub configuration: Value,
    /// Answers the server's requests (e.g. `workspace/applyEdit`, a button of
    /// `window/showMessageRequest`); `None` from it, or no responder, answers `null`.
    pub responder: Option<Responder>,
    pub state: Arc<ServerState>,
    server: Option<JoinHandle<ExitStatus>>,
    /// The session's data directory (database, logs), removed with the client.
    pub data_dir: tempfile::TempDir,
}

impl TestClient {
    pub fn start() -> TestClient {
        TestClient::start_with(Features::default())
    }

    pub fn start_with(features: Features) -> TestClient {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server_io);
        let (service, socket, state) = lsp::build(features);
        let server = tokio::spawn(lsp::serve(
            server_read,
            server_write,
            service,
            socket,
            state.clone(),
        ));
        let (client_read, writer) = tokio::io::split(client_io);
        let (tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(read_messages(BufReader::new(client_read), tx));
        TestClient {
            writer,
            inbox,
            next_id: 1,
            notifications: Vec::new(),
            server_requests: Vec::new(),
            stray_responses: Vec::new(),
            configuration: Value::Null,
            responder: None,
            state,
            server: Some(server),
            data_dir: tempfile::tempdir().expect("a temporary data directory"),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .await
            .expect("server pipe open");
        self.writer.flush().await.expect("server pipe open");
    }

    pub async fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("JSON");
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        self.send_raw(&frame).await;
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Sends a request without waiting; returns its id.
    pub async fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// Sends a request and returns its `result` (Ok) or `error` (Err).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params).await;
        self.response_to(&json!(id)).await
    }

    /// Waits for the response with `id` (which may have arrived already).
    pub async fn response_to(&mut self, id: &Value) -> Result<Value, Value> {
        if let Some(i) = self.stray_responses.iter().position(|r| &r["id"] == id) {
            return into_result(self.stray_responses.remove(i));
        }
        loop {
            let message = self.next_message().await;
            if message.get("method").is_none() && &message["id"] == id {
                return into_result(message);
            }
            self.file(message).await;
        }
    }

    /// Waits for a notification with `method` (which may have arrived already).
    pub async fn notification(&mut self, method: &str) -> Value {
        let seen = self.notifications.len();
        if let Some(n) = self.notifications.iter().find(|n| n["method"] == method) {
            return n.clone();
        }
        loop {
            let message = self.next_message().await;
            self.file(message).await;
            if let Some(n) = self.notifications[seen..]
                .iter()
                .find(|n| n["method"] == method)
            {
                return n.clone();
            }
        }
    }

    /// Waits until `count` notifications with `method` have arrived; returns them in order.
    pub async fn notifications_named(&mut self, method: &str, count: usize) -> Vec<Value> {
        loop {
            let named: Vec<Value> = self
                .notifications
                .iter()
                .filter(|n| n["method"] == method)
                .cloned()
                .collect();
            if named.len() >= count {
                return named;
            }
            let message = self.next_message().await;
            self.file(message).await;
        }
    }

    /// Waits until a `window/showMessage` contains `needle`.
    pub async fn shown_containing(&mut self, needle: &str) -> Value {
        loop {
            if let Some(n) = self.notifications.iter().find(|n| {
                n["method"] == "window/showMessage"
                    && n["params"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(needle))
            }) {
                return n.clone();
            }
            let message = self.next_message().await;
            self.file(message).await;
        }
    }

    /// Reads the server's messages until `done` holds (checked before each read).
    pub async fn pump_until(&mut self, mut done: impl FnMut(&TestClient) -> bool) {
        while !done(self) {
            let message = self.next_message().await;
            self.file(message).await;
        }
    }

    /// Waits for a request of the server with `method` (which may have arrived already); returns
    /// the first one not seen before index `after` of `server_requests`.
    pub async fn server_request(&mut self, method: &str, after: usize) -> Value {
        self.pump_until(|c| {
            c.server_requests
                .iter()
                .skip(after)
                .any(|r| r["method"] == method)
        })
        .await;
        self.server_requests
            .iter()
            .skip(after)
            .find(|r| r["method"] == method)
            .cloned()
            .expect("just seen")
    }

    /// Handles whatever the server sent so far without waiting for more.
    pub async fn drain(&mut self) {
        while let Ok(message) = self.inbox.try_recv() {
            self.file(message).await;
        }
    }

    /// `window/showMessage` texts with the given type (1 error, 2 warning, 3 info).
    pub fn shown(&self, kind: u64) -> Vec<String> {
        self.notifications
            .iter()
            .filter(|n| n["method"] == "window/showMessage" && n["params"]["type"] == kind)
            .filter_map(|n| n["params"]["message"].as_str().map(str::to_string))
            .collect()
    }

    /// `initialize` with `capabilities` and `initializationOptions`, then `initialized`; waits
    /// until background start-up has opened the ready gate. Returns the initialize result.
    pub async fn initialize(&mut self, capabilities: Value, mut options: Value) -> Value {
        // Every session keeps its database in its own temporary directory, never the user's.
        let data_dir = json!(self.data_dir.path());
        match &mut options {
            Value::Object(map) => match map.get_mut("storyteller") {
                Some(Value::Object(inner)) => {
                    inner.entry("dataDir").or_insert(data_dir);
                }
                _ => {
                    map.entry("dataDir").or_insert(data_dir);
                }
            },
            Value::Null => options = json!({ "dataDir": data_dir }),
            _ => {}
        }
        let result = self
            .request(
                "initialize",
                json!({"capabilities": capabilities, "initializationOptions": options}),
            )
            .await
            .expect("initialize succeeds");
        self.notify("initialized", json!({})).await;
        self.until_ready().await;
        result
    }

    /// Answers the server's requests (e.g. `workspace/configuration`) until start-up is done.
    pub async fn until_ready(&mut self) {
        let state = self.state.clone();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let message = tokio::select! {
                () = state.ready.wait() => return,
                message = self.inbox.recv() => message.expect("the server closed its output"),
                () = tokio::time::sleep_until(deadline) => panic!("the server never became ready"),
            };
            self.file(message).await;
        }
    }

    pub async fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": text}}),
        )
        .await;
    }

    pub async fn change(&mut self, uri: &str, version: i32, changes: Value) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        )
        .await;
    }

    pub async fn document_state(&mut self, uri: &str) -> Result<Value, Value> {
        self.request("storyteller/documentState", json!({"uri": uri}))
            .await
    }

    /// Sends `shutdown` and `exit` and returns how the server ended.
    pub async fn shutdown_and_exit(&mut self) -> ExitStatus {
        self.request("shutdown", Value::Null)
            .await
            .expect("shutdown succeeds");
        self.notify("exit", Value::Null).await;
        self.finished().await
    }

    /// Closes the server's input, as an editor that dies does.
    pub async fn close_input(&mut self) {
        self.writer.shutdown().await.expect("server pipe open");
    }

    /// Waits for the server task to end.
    pub async fn finished(&mut self) -> ExitStatus {
        let server = self.server.take().expect("server still running");
        self.until(server).await.expect("server task did not panic")
    }

    /// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
    pub async fn until<F: std::future::Future>(&self, future: F) -> F::Output {
        tokio::time::timeout(PATIENCE, future)
            .await
            .expect("the server did not answer in time")
    }

    async fn next_message(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.inbox.recv())
            .await
            .expect("the server did not answer in time")
            .expect("the server closed its output")
    }

    /// Records a message; answers the server's own requests like an editor would.
    async fn file(&mut self, message: Value) {
        match (message.get("method"), message.get("id")) {
            (Some(method), Some(id)) => {
                let custom = self.responder.as_mut().and_then(|answer| answer(&message));
                let result = if let Some(result) = custom {
                    result
                } else if method == "workspace/configuration" {
                    let items = message["params"]["items"].as_array().map_or(0, Vec::len);
                    Value::Array(vec![self.configuration.clone(); items])
                } else {
                    Value::Null
                };
                let id = id.clone();
                self.server_requests.push(message);
                self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
                    .await;
            }
            (Some(_), None) => self.notifications.push(message),
            (None, _) => self.stray_responses.push(message),
        }
    }
}

fn into_result(mut response: Value) -> Result<Value, Value> {
    match response.get_mut("error") {
        Some(error) => Err(error.take()),
        None => Ok(response
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null)),
    }
}

async fn read_messages(
    mut reader: BufReader<tokio::io::ReadHalf<DuplexStream>>,
    tx: mpsc::UnboundedSender<Value>,
) {
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
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
        let Some(length) = length else { return };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        match serde_json::from_slice(&body) {
            Ok(message) => {
                if tx.send(message).is_err() {
                    return;
                }
            }
            Err(e) => panic!("the server sent invalid JSON: {e}"),
        }
    }
}

/// Client capabilities offering `encodings` (LSP 3.17 `general.positionEncodings`).
pub fn offering(encodings: &[&str]) -> Value {
    json!({"general": {"positionEncodings": encodings}})
}

/// Lower-case hex SHA-256 of `text`, as `storyteller/documentState` reports it.
pub fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
