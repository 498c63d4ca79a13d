//! The ordered edge of the server: a `tower::Service` in front of tower-lsp that applies
//! `didOpen`/`didChange`/`didClose` the moment each message is read, tracks the lifecycle those
//! notifications depend on, and answers every request outside it with the LSP error (-32002
//! before `initialize`, InvalidRequest after `shutdown`) — tower-lsp does so only for the
//! methods it knows.
//!
//! Why not in `LanguageServer::did_change`: tower-lsp queues every message's handler future and
//! runs at most `concurrency_level` of them at once; a notification's handler only starts when a
//! slot is free. With every slot taken by requests waiting on a provider, an author's keystrokes
//! would wait on the network (DESIGN.md §3 forbids it). Here an edit is applied synchronously
//! inside `Service::call`, which the transport invokes in arrival order, before any queueing — so
//! edits apply in order and at once whatever the handlers are doing.
//!
//! Must never: await before an edit is applied, log manuscript text (decoding errors are reported
//! by category, because serde's messages quote the offending value).

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{self, BoxFuture};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::Service;
use tower_lsp::jsonrpc::{Error, ErrorCode, Request, Response};
use tower_lsp::lsp_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, MessageType,
};
use tower_lsp::{Client, ExitedError};

use super::positions::to_content_change;
use super::session::{Lifecycle, ServerState};
use crate::messages;

const DID_OPEN: &str = "textDocument/didOpen";
const DID_CHANGE: &str = "textDocument/didChange";
const DID_CLOSE: &str = "textDocument/didClose";

/// A text-sync notification that could not be applied.
struct SyncProblem {
    uri: String,
    description: String,
    /// The server's copy may now differ from the editor's: the author is told once.
    lost_sync: bool,
}

pub struct OrderedTextSync<S> {
    inner: S,
    state: Arc<ServerState>,
    client: Client,
}

impl<S> OrderedTextSync<S> {
    pub fn new(inner: S, state: Arc<ServerState>, client: Client) -> Self {
        OrderedTextSync {
            inner,
            state,
            client,
        }
    }

    fn apply(&self, method: &str, params: Option<Value>) -> Result<(), SyncProblem> {
        match method {
            DID_OPEN => {
                let params: DidOpenTextDocumentParams = decode(method, params)?;
                let doc = params.text_document;
                let uri = doc.uri.as_str();
                if self
                    .state
                    .documents
                    .open(uri, &doc.language_id, doc.version, &doc.text)
                {
                    tracing::debug!(uri, "opened again; the new text replaces the old");
                }
                self.state.back_in_sync(uri);
                super::story_notes::on_opened(&self.state, &doc.uri);
                Ok(())
            }
            DID_CHANGE => {
                let params: DidChangeTextDocumentParams = decode(method, params)?;
                let uri = params.text_document.uri.as_str();
                let restores_sync = params.content_changes.iter().any(|c| c.range.is_none());
                let changes = params
                    .content_changes
                    .into_iter()
                    .map(to_content_change)
                    .collect();
                self.state
                    .documents
                    .apply_changes(
                        uri,
                        params.text_document.version,
                        changes,
                        self.state.encoding(),
                    )
                    .map_err(|e| SyncProblem {
                        uri: uri.to_string(),
                        description: e.to_string(),
                        lost_sync: true,
                    })?;
                if restores_sync {
                    self.state.back_in_sync(uri);
                }
                follow_acceptance(&self.state, uri, false);
                Ok(())
            }
            DID_CLOSE => {
                let params: DidCloseTextDocumentParams = decode(method, params)?;
                let uri = params.text_document.uri.as_str();
                self.state.back_in_sync(uri);
                follow_acceptance(&self.state, uri, true);
                self.state.assistant.inline.forget(uri);
                self.state.documents.close(uri).map_err(|e| SyncProblem {
                    uri: uri.to_string(),
                    description: e.to_string(),
                    lost_sync: false,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Acceptance tracking after an edit (`settle`: saved or about to close — everything pending is
/// judged). A map lookup when nothing is pending; the judging itself runs on a task.
pub(crate) fn follow_acceptance(state: &ServerState, uri: &str, settle: bool) {
    let tracker = &state.assistant.acceptance;
    if !tracker.is_pending(uri) {
        return;
    }
    let Ok(document) = state.documents.snapshot(uri) else {
        return;
    };
    let text = document.text();
    let due = if settle {
        tracker.settle(uri)
    } else {
        tracker.edited(uri, text)
    };
    if due.is_empty() {
        return;
    }
    if let Some(app) = state.app_now() {
        state.assistant.judge_due(&app, due, text.clone());
    }
}

fn decode<P: DeserializeOwned>(method: &str, params: Option<Value>) -> Result<P, SyncProblem> {
    serde_json::from_value(params.unwrap_or(Value::Null)).map_err(|e| SyncProblem {
        uri: String::new(),
        description: format!(
            "{method}: the parameters do not match the LSP schema ({:?} error); ignored",
            e.classify()
        ),
        lost_sync: false,
    })
}

/// LSP's `ServerNotInitialized` (-32002).
fn not_initialized() -> Error {
    Error {
        code: ErrorCode::ServerError(-32002),
        message: Cow::Borrowed("Server not initialized"),
        data: None,
    }
}

fn refuse(
    request: Request,
    error: Error,
) -> BoxFuture<'static, Result<Option<Response>, ExitedError>> {
    let (_, id, _) = request.into_parts();
    Box::pin(future::ok(id.map(|id| Response::from_error(id, error))))
}

impl<S> Service<Request> for OrderedTextSync<S>
where
    S: Service<Request, Response = Option<Response>, Error = ExitedError>,
    S::Future: Send + 'static,
{
    type Response = Option<Response>;
    type Error = ExitedError;
    type Future = BoxFuture<'static, Result<Option<Response>, ExitedError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let lifecycle = self.state.lifecycle();
        match (request.method(), lifecycle) {
            ("initialize", Lifecycle::Uninitialized) => {
                let state = self.state.clone();
                let answer = self.inner.call(request);
                Box::pin(async move {
                    let response = answer.await?;
                    if response.as_ref().is_some_and(Response::is_ok) {
                        state.set_lifecycle(Lifecycle::Running);
                    }
                    Ok(response)
                })
            }
            ("shutdown", Lifecycle::Running) => {
                self.state.set_lifecycle(Lifecycle::ShuttingDown);
                Box::pin(self.inner.call(request))
            }
            ("exit", _) => {
                let clean = lifecycle == Lifecycle::ShuttingDown;
                self.state.set_lifecycle(Lifecycle::Exited { clean });
                Box::pin(self.inner.call(request))
            }
            (DID_OPEN | DID_CHANGE | DID_CLOSE, Lifecycle::Running) => {
                let (method, id, params): (Cow<'static, str>, _, _) = request.into_parts();
                if let Some(id) = id {
                    // A notification sent as a request: refuse it rather than guess.
                    return Box::pin(future::ok(Some(Response::from_error(
                        id,
                        Error::invalid_request(),
                    ))));
                }
                match self.apply(&method, params) {
                    Ok(()) => Box::pin(future::ok(None)),
                    Err(problem) => {
                        let tell_author =
                            problem.lost_sync && self.state.first_out_of_sync_report(&problem.uri);
                        let client = self.client.clone();
                        Box::pin(async move {
                            report_sync_problem(
                                &client,
                                &problem.uri,
                                &problem.description,
                                tell_author,
                            )
                            .await;
                            Ok(None)
                        })
                    }
                }
            }
            // tower-lsp answers these for the methods it knows but reports an unknown method as
            // MethodNotFound whatever the state; LSP wants the lifecycle error for every request.
            (method, Lifecycle::Uninitialized)
                if method != "initialize" && request.id().is_some() =>
            {
                refuse(request, not_initialized())
            }
            (_, Lifecycle::ShuttingDown | Lifecycle::Exited { .. }) if request.id().is_some() => {
                refuse(request, Error::invalid_request())
            }
            // Before `initialize` and after `shutdown`, tower-lsp drops text-sync notifications.
            _ => Box::pin(self.inner.call(request)),
        }
    }
}

/// Logs a refused text-sync notification and, when `tell_author`, shows that the document lost
/// sync. The caller decides `tell_author` synchronously (see `ServerState::first_out_of_sync_report`)
/// so that the once-per-document rule follows message order, not handler timing.
pub(crate) async fn report_sync_problem(
    client: &Client,
    uri: &str,
    problem: &str,
    tell_author: bool,
) {
    tracing::warn!(uri, "{problem}");
    client.log_message(MessageType::ERROR, problem).await;
    if tell_author {
        let name = uri.rsplit('/').next().unwrap_or(uri);
        client
            .show_message(MessageType::WARNING, messages::document_out_of_sync(name))
            .await;
    }
}
