//! `storyteller-lsp demo`: the whole pipeline offline, as an author would see it.
//!
//! Starts the provider simulator on loopback, writes the sample novel of `examples/lighthouse`
//! (compiled in) to a temporary workspace, configures two providers in a temporary database
//! (OpenAI primary, Anthropic Claude backup; keys from an injected environment, the credential
//! store set to the file in the temporary data directory), starts the language server in-process
//! and drives a real LSP session over a pipe, like an editor: an inline completion, Continue
//! scene, Rewrite selection, then the primary failing (failover message, the backup's text) and
//! recovering. It prints what the author would see.
//!
//! Must never: touch the user's data directory, keychain or keys, or reach beyond 127.0.0.1.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, WriteHalf};
use tokio::sync::mpsc;

use crate::credentials::env::VarMap;
use crate::documents::{
    CharOffset, ContentChange, DocumentStore, Position, PositionEncoding, Range,
};
use crate::lsp::{self, Features};
use crate::messages::{self, demo as text};
use crate::providers::ProviderKind;
use crate::simulator::{Fault, SimulatorHandle};
use crate::store::providers::{self as provider_rows, NewProvider};
use crate::store::{Store, projects};

/// The sample workspace, relative path → text.
const WORKSPACE: &[(&str, &str)] = &[
    (
        "chapter-1.md",
        include_str!("../examples/lighthouse/chapter-1.md"),
    ),
    ("STORY.md", include_str!("../examples/lighthouse/STORY.md")),
    (
        "characters/mara-quill.md",
        include_str!("../examples/lighthouse/characters/mara-quill.md"),
    ),
    (
        "characters/tomas-vey.md",
        include_str!("../examples/lighthouse/characters/tomas-vey.md"),
    ),
    (
        "characters/agnes.md",
        include_str!("../examples/lighthouse/characters/agnes.md"),
    ),
    (
        "notes/gull-rock.md",
        include_str!("../examples/lighthouse/notes/gull-rock.md"),
    ),
];

const MANUSCRIPT: &str = "chapter-1.md";
/// The sentence the demo rewrites.
const REWRITTEN: &str = "Mara did not turn round.";
/// The shortest health-check period the settings allow.
const HEALTH_CHECK_SECS: u64 = 5;
/// The longest any step may take before the demo gives up.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo: the database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("demo: the language server {0}")]
    Protocol(String),
    #[error("demo: no answer in time while {0}")]
    Timeout(&'static str),
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("storyteller-demo-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo, writing the transcript to `out`.
pub async fn run(out: &mut (dyn Write + Send)) -> Result<(), DemoError> {
    let ghost = GhostStyle::for_terminal(std::io::stdout().is_terminal());
    let temp = TempDir::new()?;
    let root = temp.0.join("novel");
    for (path, contents) in WORKSPACE {
        let file = root.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, contents)?;
    }
    let data_dir = temp.0.join("data");
    let simulator = SimulatorHandle::start().await?;
    configure_providers(&data_dir, &root, &simulator).await?;

    writeln!(out, "{}\n", text::INTRO)?;
    writeln!(out, "{}", text::workspace(WORKSPACE.len() - 1))?;
    writeln!(
        out,
        "{}",
        text::providers(
            ProviderKind::OpenAi.display_name(),
            ProviderKind::Claude.display_name()
        )
    )?;

    let mut env = VarMap::default();
    env.set("OPENAI_API_KEY", "sk-demo-simulated-key-0001");
    env.set("ANTHROPIC_API_KEY", "sk-ant-demo-simulated-key-0002");
    env.set(
        "STORYTELLER_CREDENTIALS_KEY",
        "storyteller-demo-throwaway-key",
    );
    let features = Features {
        environment: Arc::new(env),
        ..Features::default()
    };
    let (service, socket, state) = lsp::build(features);
    let (editor_io, server_io) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_io);
    let server = tokio::spawn(lsp::serve(
        server_read,
        server_write,
        service,
        socket,
        state,
    ));
    let mut editor = Editor::connect(editor_io);

    let result = session(&mut editor, out, &root, &data_dir, &simulator, ghost).await;
    // End the session whatever happened, so the server task and its files are released.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        editor.request("shutdown", Value::Null),
    )
    .await;
    let _ = editor.notify("exit", Value::Null).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    result?;
    writeln!(out, "\n{}", text::FINISHED)?;
    Ok(())
}

async fn configure_providers(
    data_dir: &Path,
    root: &Path,
    simulator: &SimulatorHandle,
) -> Result<(), DemoError> {
    let store =
        Store::open_async(data_dir.join(crate::app::DATABASE_FILE), Default::default()).await?;
    let root = root.to_path_buf();
    let endpoints = [
        (
            ProviderKind::OpenAi,
            simulator.endpoint(ProviderKind::OpenAi),
        ),
        (
            ProviderKind::Claude,
            simulator.endpoint(ProviderKind::Claude),
        ),
    ];
    store
        .call(move |conn| {
            let project = projects::get_or_create(conn, &root)?.id;
            for (i, (kind, endpoint)) in endpoints.into_iter().enumerate() {
                let mut new = NewProvider::new(project, kind);
                new.endpoint = Some(endpoint);
                new.primary = i == 0;
                provider_rows::insert(conn, &new)?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

async fn session(
    editor: &mut Editor,
    out: &mut (dyn Write + Send),
    root: &Path,
    data_dir: &Path,
    simulator: &SimulatorHandle,
    ghost: GhostStyle,
) -> Result<(), DemoError> {
    let root_uri = crate::lsp::folder_uri(root)
        .ok_or_else(|| DemoError::Protocol("could not name the workspace folder".into()))?;
    editor.uri = crate::lsp::file_uri(&root.join(MANUSCRIPT))
        .ok_or_else(|| DemoError::Protocol("could not name the manuscript".into()))?;
    let settings = json!({
        "dataDir": data_dir,
        "credentialStore": "file",
        "failover": {"healthCheckSecs": HEALTH_CHECK_SECS},
        "logLevel": "error",
    });
    editor
        .request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "capabilities": capabilities(),
                "initializationOptions": {"storyteller": settings},
                "workspaceFolders": [{"uri": root_uri, "name": "novel"}],
                "clientInfo": {"name": "storyteller-demo"},
            }),
        )
        .await?;
    editor.notify("initialized", json!({})).await?;
    editor
        .wait_for("starting up", |seen| seen.status.is_some())
        .await?;
    writeln!(out, "{}", editor.status_line())?;

    let manuscript = WORKSPACE[0].1;
    editor.open(manuscript).await?;
    let words = manuscript.split_whitespace().count();
    writeln!(out, "{}\n", text::opening(MANUSCRIPT, words))?;

    // 1. Inline completion at the end of the text.
    writeln!(out, "{}", text::STEP_INLINE)?;
    let end = editor.end_position();
    let answer = editor
        .request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": {"uri": editor.uri},
                "position": end,
                "context": {"triggerKind": 1},
            }),
        )
        .await?;
    let tail = tail_of(editor.text().trim_end(), 70);
    let item = &answer["items"][0];
    match item["insertText"].as_str() {
        Some(suggestion) => {
            writeln!(out, "   …{tail}{}", ghost.paint(suggestion))?;
            // The author presses Tab: the text goes in and the item's command counts it.
            editor.type_at(&end, suggestion).await?;
            let command = &item["command"];
            editor
                .request(
                    "workspace/executeCommand",
                    json!({"command": command["command"], "arguments": command["arguments"]}),
                )
                .await?;
            writeln!(out, "{}\n", text::ACCEPTED)?;
        }
        None => writeln!(out, "   …{tail}  {}\n", text::NO_SUGGESTION)?,
    }
    let end = editor.end_position();

    // 2. Continue scene at the end of the text.
    writeln!(out, "{}", text::STEP_CONTINUE)?;
    let cursor = json!({"start": end, "end": end});
    let result = editor
        .run_action(cursor, messages::action_titles::CONTINUE_SCENE)
        .await?;
    editor.report(out, &result)?;

    // 3. Rewrite a sentence.
    let title = messages::action_titles::rewrite("tense");
    writeln!(out, "{}", text::step_rewrite(&title))?;
    let selection = editor
        .range_of(REWRITTEN)
        .ok_or_else(|| DemoError::Protocol("lost the sentence to rewrite".into()))?;
    let result = editor.run_action(selection, &title).await?;
    if result["applied"] == true {
        writeln!(
            out,
            "{}",
            text::before_after(
                REWRITTEN,
                result["text"].as_str().unwrap_or_default().trim()
            )
        )?;
        editor.print_new_messages(out)?;
        writeln!(out)?;
    } else {
        editor.report(out, &result)?;
    }

    // 4. The primary fails: failover to the backup.
    let primary = ProviderKind::OpenAi.display_name();
    writeln!(out, "{}", text::step_failure(primary))?;
    simulator.inject(ProviderKind::OpenAi, Fault::Unavailable, None);
    let end = editor.end_position();
    let result = editor
        .run_action(
            json!({"start": end, "end": end}),
            messages::action_titles::CONTINUE_SCENE,
        )
        .await?;
    let backup = ProviderKind::Claude.display_name();
    let failed_over = messages::failed_over(backup);
    editor
        .wait_for("waiting for the failover message", |seen| {
            seen.messages.iter().any(|m| m.text == failed_over)
        })
        .await?;
    editor.report(out, &result)?;

    // 5. The primary comes back; the health check routes back to it.
    simulator.clear(ProviderKind::OpenAi);
    writeln!(out, "{}", text::step_recovery(primary, HEALTH_CHECK_SECS))?;
    let recovered = messages::recovered(primary);
    editor
        .wait_for("waiting for the primary to recover", |seen| {
            seen.messages.iter().any(|m| m.text == recovered)
        })
        .await?;
    editor.print_new_messages(out)?;
    writeln!(out, "   {}\n", editor.status_line())?;

    writeln!(out, "{}", text::STEP_RESULT)?;
    for line in tail_of(&editor.text(), 900).lines() {
        writeln!(out, "   {line}")?;
    }
    Ok(())
}

fn capabilities() -> Value {
    json!({
        "general": {"positionEncodings": ["utf-8", "utf-16"]},
        "window": {
            "workDoneProgress": true,
            "showMessage": {"messageActionItem": {"additionalPropertiesSupport": false}}
        },
        "workspace": {
            "applyEdit": true,
            "workspaceEdit": {"documentChanges": true},
            "workspaceFolders": true
        },
        "textDocument": {
            "codeAction": {"disabledSupport": true},
            "inlineCompletion": {}
        },
        "experimental": {"storyteller": {"openSettings": true, "statusNotification": true}}
    })
}

/// The last `max_chars` chars of `text`, from a word start.
fn tail_of(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_string();
    }
    let tail: String = text.chars().skip(count - max_chars).collect();
    match tail.find(char::is_whitespace) {
        Some(i) => tail[i..].trim_start().to_string(),
        None => tail,
    }
}

/// The progress steps, with the running word count shown once (its last value).
fn condensed(steps: &[String]) -> String {
    let counts = |s: &String| s.ends_with("written");
    let last_count = steps.iter().rposition(counts);
    steps
        .iter()
        .enumerate()
        .filter(|(i, s)| !counts(s) || Some(*i) == last_count)
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// How ghost text is shown: dimmed on a terminal, bracketed in a file.
#[derive(Clone, Copy)]
enum GhostStyle {
    Dim,
    Brackets,
}

impl GhostStyle {
    fn for_terminal(terminal: bool) -> Self {
        if terminal {
            GhostStyle::Dim
        } else {
            GhostStyle::Brackets
        }
    }

    fn paint(self, text: &str) -> String {
        match self {
            GhostStyle::Dim => format!("\u{1b}[2m{text}\u{1b}[0m"),
            GhostStyle::Brackets => format!("⟦{text}⟧"),
        }
    }
}

/// A message the author saw.
struct Shown {
    kind: &'static str,
    text: String,
    buttons: Vec<String>,
}

/// What the editor has seen so far.
#[derive(Default)]
struct Seen {
    messages: Vec<Shown>,
    /// How many of `messages` the transcript has shown.
    printed: usize,
    progress: Vec<String>,
    /// The running action's progress has ended.
    progress_ended: bool,
    status: Option<Value>,
}

/// A minimal editor: frames JSON-RPC over the pipe, keeps its copy of the manuscript, applies
/// the server's edits, shows messages and progress.
struct Editor {
    writer: WriteHalf<DuplexStream>,
    inbox: mpsc::UnboundedReceiver<Value>,
    next_id: i64,
    uri: String,
    version: i32,
    document: DocumentStore,
    seen: Seen,
}

impl Editor {
    fn connect(io: DuplexStream) -> Editor {
        let (read, writer) = tokio::io::split(io);
        let (tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(read_frames(BufReader::new(read), tx));
        Editor {
            writer,
            inbox,
            next_id: 1,
            uri: String::new(),
            version: 1,
            document: DocumentStore::new(),
            seen: Seen::default(),
        }
    }

    async fn send(&mut self, message: &Value) -> Result<(), DemoError> {
        let body = serde_json::to_vec(message).map_err(|e| DemoError::Protocol(e.to_string()))?;
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        self.writer.write_all(&frame).await?;
        self.writer.flush().await?;
        Ok(())
    }

    async fn notify(&mut self, method: &str, params: Value) -> Result<(), DemoError> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value, DemoError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let message = self.next_message("waiting for an answer").await?;
            if message.get("method").is_none() && message["id"] == id {
                if let Some(error) = message.get("error") {
                    return Err(DemoError::Protocol(format!(
                        "refused {method}: {}",
                        error["message"].as_str().unwrap_or_default()
                    )));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            self.handle(message).await?;
        }
    }

    async fn next_message(&mut self, doing: &'static str) -> Result<Value, DemoError> {
        match tokio::time::timeout(PATIENCE, self.inbox.recv()).await {
            Ok(Some(message)) => Ok(message),
            Ok(None) => Err(DemoError::Protocol("closed the connection".into())),
            Err(_) => Err(DemoError::Timeout(doing)),
        }
    }

    /// Reads messages until `done` holds.
    async fn wait_for(
        &mut self,
        doing: &'static str,
        done: impl Fn(&Seen) -> bool,
    ) -> Result<(), DemoError> {
        while !done(&self.seen) {
            let message = self.next_message(doing).await?;
            self.handle(message).await?;
        }
        Ok(())
    }

    /// What an editor does with a message from the server.
    async fn handle(&mut self, message: Value) -> Result<(), DemoError> {
        let method = message["method"].as_str().unwrap_or_default().to_string();
        match message.get("id").cloned() {
            Some(id) if !method.is_empty() => {
                let result = match method.as_str() {
                    "workspace/applyEdit" => {
                        let applied = self.apply_edit(&message["params"]["edit"]).await?;
                        json!({"applied": applied})
                    }
                    "window/showMessageRequest" => {
                        let params = &message["params"];
                        self.seen.messages.push(Shown {
                            kind: kind_of(&params["type"]),
                            text: params["message"].as_str().unwrap_or_default().to_string(),
                            buttons: params["actions"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|b| b["title"].as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        });
                        // The author reads it and carries on without pressing a button.
                        Value::Null
                    }
                    _ => Value::Null,
                };
                self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
                    .await?;
            }
            _ => match method.as_str() {
                "window/showMessage" => {
                    let params = &message["params"];
                    self.seen.messages.push(Shown {
                        kind: kind_of(&params["type"]),
                        text: params["message"].as_str().unwrap_or_default().to_string(),
                        buttons: Vec::new(),
                    });
                }
                "$/progress" => {
                    let value = &message["params"]["value"];
                    if value["kind"] == "end" {
                        self.seen.progress_ended = true;
                    }
                    let line = value["message"]
                        .as_str()
                        .or_else(|| value["title"].as_str())
                        .unwrap_or_default();
                    if !line.is_empty() {
                        self.seen.progress.push(line.to_string());
                    }
                }
                "storyteller/status" => self.seen.status = Some(message["params"].clone()),
                _ => {}
            },
        }
        Ok(())
    }

    async fn open(&mut self, text: &str) -> Result<(), DemoError> {
        self.document
            .open(&self.uri, "markdown", self.version, text);
        let uri = self.uri.clone();
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "markdown", "version": self.version, "text": text}}),
        )
        .await
    }

    fn text(&self) -> String {
        self.document
            .snapshot(&self.uri)
            .map(|s| s.text().to_string())
            .unwrap_or_default()
    }

    /// The end of the text (before a final line break), in the session's encoding (UTF-8: the
    /// demo offers it first).
    fn end_position(&self) -> Value {
        let position = self
            .document
            .snapshot(&self.uri)
            .ok()
            .and_then(|s| {
                let text = s.text().to_string();
                let end = text.trim_end().chars().count();
                s.position_of(CharOffset(end), PositionEncoding::Utf8).ok()
            })
            .unwrap_or_default();
        json!({"line": position.line, "character": position.character})
    }

    /// Types `text` at `position`, as the author accepting a suggestion does.
    async fn type_at(&mut self, position: &Value, text: &str) -> Result<(), DemoError> {
        let version = self.version + 1;
        let at = Position::new(
            position["line"].as_u64().unwrap_or(0) as u32,
            position["character"].as_u64().unwrap_or(0) as u32,
        );
        self.document
            .apply_changes(
                &self.uri,
                version,
                vec![ContentChange::replace(Range::new(at, at), text)],
                PositionEncoding::Utf8,
            )
            .map_err(|e| DemoError::Protocol(e.to_string()))?;
        self.version = version;
        let uri = self.uri.clone();
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version},
                   "contentChanges": [{"range": {"start": position, "end": position}, "text": text}]}),
        )
        .await
    }

    /// The range of the first occurrence of `needle`.
    fn range_of(&self, needle: &str) -> Option<Value> {
        let snapshot = self.document.snapshot(&self.uri).ok()?;
        let text = snapshot.text().to_string();
        let byte = text.find(needle)?;
        let start = text[..byte].chars().count();
        let end = start + needle.chars().count();
        let at = |offset| {
            snapshot
                .position_of(CharOffset(offset), PositionEncoding::Utf8)
                .ok()
        };
        let (start, end) = (at(start)?, at(end)?);
        Some(json!({
            "start": {"line": start.line, "character": start.character},
            "end": {"line": end.line, "character": end.character},
        }))
    }

    /// Applies a workspace edit to the editor's copy and tells the server (`didChange`).
    async fn apply_edit(&mut self, edit: &Value) -> Result<bool, DemoError> {
        let Some(change) = edit["documentChanges"].get(0) else {
            return Ok(false);
        };
        if change["textDocument"]["version"] != self.version {
            return Ok(false);
        }
        let mut changes = Vec::new();
        for edit in change["edits"].as_array().into_iter().flatten() {
            let range = &edit["range"];
            let position = |p: &Value| {
                Position::new(
                    p["line"].as_u64().unwrap_or(0) as u32,
                    p["character"].as_u64().unwrap_or(0) as u32,
                )
            };
            changes.push(ContentChange::replace(
                Range::new(position(&range["start"]), position(&range["end"])),
                edit["newText"].as_str().unwrap_or_default(),
            ));
        }
        let content_changes: Vec<Value> = change["edits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| json!({"range": e["range"], "text": e["newText"]}))
            .collect();
        let version = self.version + 1;
        if self
            .document
            .apply_changes(&self.uri, version, changes, PositionEncoding::Utf8)
            .is_err()
        {
            return Ok(false);
        }
        self.version = version;
        let uri = self.uri.clone();
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": content_changes}),
        )
        .await?;
        Ok(true)
    }

    /// Lists the code actions at `range` and runs the one titled `title`.
    async fn run_action(&mut self, range: Value, title: &str) -> Result<Value, DemoError> {
        let uri = self.uri.clone();
        let actions = self
            .request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": uri}, "range": range, "context": {"diagnostics": []}}),
            )
            .await?;
        let action = actions
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["title"] == title)
            .cloned()
            .ok_or_else(|| DemoError::Protocol(format!("did not offer \u{201c}{title}\u{201d}")))?;
        self.seen.progress.clear();
        self.seen.progress_ended = false;
        let command = &action["command"];
        let result = self
            .request(
                "workspace/executeCommand",
                json!({"command": command["command"], "arguments": command["arguments"]}),
            )
            .await?;
        // The progress end travels separately from the answer.
        self.wait_for("waiting for the progress to end", |seen| {
            seen.progress_ended
        })
        .await?;
        Ok(result)
    }

    /// Prints an action's progress, messages and result.
    fn report(&mut self, out: &mut (dyn Write + Send), result: &Value) -> Result<(), DemoError> {
        if !self.seen.progress.is_empty() {
            writeln!(out, "{}", text::progress(&condensed(&self.seen.progress)))?;
        }
        self.print_new_messages(out)?;
        if result["applied"] == true {
            writeln!(
                out,
                "{}\n",
                text::inserted(
                    result["provider"].as_str().unwrap_or_default(),
                    result["text"].as_str().unwrap_or_default().trim()
                )
            )?;
        } else {
            writeln!(
                out,
                "{}\n",
                text::not_applied(result["reason"].as_str().unwrap_or("unknown"))
            )?;
        }
        Ok(())
    }

    fn print_new_messages(&mut self, out: &mut (dyn Write + Send)) -> Result<(), DemoError> {
        for shown in &self.seen.messages[self.seen.printed..] {
            writeln!(
                out,
                "{}",
                text::message(shown.kind, &shown.text, &shown.buttons)
            )?;
        }
        self.seen.printed = self.seen.messages.len();
        Ok(())
    }

    fn status_line(&self) -> String {
        let status = self.seen.status.clone().unwrap_or(Value::Null);
        text::status(
            status["state"].as_str().unwrap_or("starting"),
            status["active"]["displayName"].as_str().unwrap_or_default(),
        )
    }
}

fn kind_of(kind: &Value) -> &'static str {
    match kind.as_u64() {
        Some(1) => "✖",
        Some(2) => "⚠",
        _ => "ℹ",
    }
}

async fn read_frames(
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
        let Ok(message) = serde_json::from_slice::<Value>(&body) else {
            return;
        };
        if tx.send(message).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_the_last_word_count_only() {
        let steps: Vec<String> = [
            "Continue scene",
            "Asking OpenAI…",
            "1 word written",
            "9 words written",
            "Done",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            condensed(&steps),
            "Continue scene · Asking OpenAI… · 9 words written · Done"
        );
    }

    #[test]
    fn the_tail_starts_at_a_word() {
        assert_eq!(tail_of("one two three", 100), "one two three");
        assert_eq!(tail_of("one two three", 7), "three");
        assert_eq!(tail_of("abcdef", 3), "def");
    }
}
