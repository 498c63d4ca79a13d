//! LSP 3.18 `textDocument/inlineCompletion` on tower-lsp 0.20, whose lsp-types (0.94) predate it
//! (DESIGN.md §10). Everything protocol-specific about inline completion is in this file: the
//! wire types, the custom method, the client-capability probe and the `initialize` patch that
//! advertises `inlineCompletionProvider`. Moving to a tower-lsp release with native support
//! deletes this file (and its two call sites in `lsp::build`); the handler logic in `inline`
//! stays.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::Service;
use tower_lsp::ExitedError;
use tower_lsp::jsonrpc::{self, Request, Response};
use tower_lsp::lsp_types::{Command, Position, Range, TextDocumentIdentifier};

use super::inline::{self, PlacedSuggestion, feedback_command};
use super::session::{Lifecycle, ServerState};
use crate::assist::inline::{MAX_ALTERNATIVES, Trigger};

pub const METHOD: &str = "textDocument/inlineCompletion";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineCompletionParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
    pub context: InlineCompletionContext,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_done_token: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineCompletionContext {
    pub trigger_kind: InlineCompletionTriggerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_completion_info: Option<SelectedCompletionInfo>,
}

/// `1` = Invoked, `2` = Automatic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum InlineCompletionTriggerKind {
    Invoked,
    Automatic,
}

impl TryFrom<u8> for InlineCompletionTriggerKind {
    type Error = String;
    fn try_from(kind: u8) -> Result<Self, Self::Error> {
        match kind {
            1 => Ok(InlineCompletionTriggerKind::Invoked),
            2 => Ok(InlineCompletionTriggerKind::Automatic),
            other => Err(format!("unknown inline completion trigger kind {other}")),
        }
    }
}

impl From<InlineCompletionTriggerKind> for u8 {
    fn from(kind: InlineCompletionTriggerKind) -> u8 {
        match kind {
            InlineCompletionTriggerKind::Invoked => 1,
            InlineCompletionTriggerKind::Automatic => 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SelectedCompletionInfo {
    pub range: Range,
    pub text: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct InlineCompletionList {
    pub items: Vec<InlineCompletionItem>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InlineCompletionItem {
    /// Plain text (a `StringValue` snippet is also allowed by the spec; we never send one).
    pub insert_text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
}

/// `textDocument/inlineCompletion` (registered as a custom method, see `lsp::build`).
pub(crate) async fn inline_completion(
    state: &Arc<ServerState>,
    params: InlineCompletionParams,
) -> jsonrpc::Result<InlineCompletionList> {
    // The author asked: offer alternatives to cycle through (VS Code: Alt+] / Alt+[). While
    // typing, one suggestion — three provider calls per pause would spend the rate limit.
    let (trigger, alternatives) = match params.context.trigger_kind {
        InlineCompletionTriggerKind::Invoked => (Trigger::Invoked, MAX_ALTERNATIVES),
        InlineCompletionTriggerKind::Automatic => (Trigger::Automatic, 1),
    };
    let placed = inline::suggestions_at(
        state,
        &params.text_document.uri,
        params.position,
        trigger,
        alternatives,
    )
    .await?;
    let items = placed
        .into_iter()
        .map(
            |PlacedSuggestion { suggestion, range }| InlineCompletionItem {
                command: Some(feedback_command(&suggestion.id)),
                insert_text: suggestion.text,
                filter_text: None,
                range: Some(range),
            },
        )
        .collect();
    Ok(InlineCompletionList { items })
}

/// Wraps the service to read the client's `textDocument.inlineCompletion` capability from the
/// raw `initialize` params and to add `inlineCompletionProvider` to the result — neither exists
/// in lsp-types 0.94, so serde drops them on the typed path.
pub struct InlineAdvertising<S> {
    inner: S,
    state: Arc<ServerState>,
}

impl<S> InlineAdvertising<S> {
    pub fn new(inner: S, state: Arc<ServerState>) -> Self {
        InlineAdvertising { inner, state }
    }
}

impl<S> Service<Request> for InlineAdvertising<S>
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
        if request.method() != "initialize" {
            return Box::pin(self.inner.call(request));
        }
        // A second `initialize` is refused by tower-lsp; it must not change what we know.
        if self.state.lifecycle() == Lifecycle::Uninitialized {
            let client_has_it = request
                .params()
                .and_then(|p| p.pointer("/capabilities/textDocument/inlineCompletion"))
                .is_some_and(|c| !c.is_null());
            self.state.set_client_has_inline_completion(client_has_it);
        }
        let answer = self.inner.call(request);
        Box::pin(async move { Ok(answer.await?.map(advertise)) })
    }
}

fn advertise(response: Response) -> Response {
    let (id, result) = response.into_parts();
    let result = result.map(|mut result| {
        if let Some(capabilities) = result
            .get_mut("capabilities")
            .and_then(Value::as_object_mut)
        {
            capabilities.insert("inlineCompletionProvider".to_string(), Value::Bool(true));
        }
        result
    });
    Response::from_parts(id, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_decode_from_the_3_18_wire_shape() {
        let params: InlineCompletionParams = serde_json::from_value(json!({
            "textDocument": {"uri": "file:///n/ch1.md"},
            "position": {"line": 3, "character": 7},
            "context": {
                "triggerKind": 2,
                "selectedCompletionInfo": {
                    "range": {"start": {"line": 3, "character": 5}, "end": {"line": 3, "character": 7}},
                    "text": "dark"
                }
            }
        }))
        .unwrap();
        assert_eq!(
            params.context.trigger_kind,
            InlineCompletionTriggerKind::Automatic
        );
        assert_eq!(params.position, Position::new(3, 7));
        let bad = json!({
            "textDocument": {"uri": "file:///n/ch1.md"},
            "position": {"line": 0, "character": 0},
            "context": {"triggerKind": 9}
        });
        assert!(serde_json::from_value::<InlineCompletionParams>(bad).is_err());
    }

    #[test]
    fn items_encode_with_camel_case_and_without_empty_fields() {
        let item = InlineCompletionItem {
            insert_text: " and the rain began.".into(),
            filter_text: None,
            range: Some(Range::new(Position::new(1, 2), Position::new(1, 2))),
            command: Some(feedback_command("s-1")),
        };
        let value = serde_json::to_value(InlineCompletionList { items: vec![item] }).unwrap();
        let encoded = &value["items"][0];
        assert_eq!(encoded["insertText"], " and the rain began.");
        assert!(encoded.get("filterText").is_none());
        assert_eq!(encoded["command"]["command"], "storyteller.feedback");
        assert_eq!(encoded["command"]["arguments"][0]["suggestionId"], "s-1");
    }

    #[test]
    fn the_initialize_result_gains_the_provider_and_errors_pass_unchanged() {
        let ok = Response::from_ok(1.into(), json!({"capabilities": {"hoverProvider": true}}));
        let patched = advertise(ok);
        assert_eq!(
            patched.result().unwrap()["capabilities"]["inlineCompletionProvider"],
            true
        );
        assert_eq!(
            patched.result().unwrap()["capabilities"]["hoverProvider"],
            true
        );
        let err = Response::from_error(2.into(), jsonrpc::Error::invalid_request());
        assert_eq!(advertise(err.clone()), err);
    }
}
