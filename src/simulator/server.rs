//! The simulator's HTTP plumbing: an accept loop whose connections can be cut from inside a
//! request (for "connection refused" and "reset mid-stream"), request recording with disconnect
//! detection, the control API, and the pipeline latency → auth → fault → response.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::vendors::{self, Op, Reply};
use super::{Chaos, Fault, Outcome, RecordedRequest, SimState, path_prefix};
use crate::providers::ProviderKind;

/// Request bodies beyond this are refused (a prompt is a few kilobytes).
const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<SimState>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        state
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            // Cancelling `cut` drops the connection mid-request: the client sees the socket
            // close without (the rest of) a response.
            let cut = CancellationToken::new();
            let service_cut = cut.clone();
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let cut = service_cut.clone();
                async move { Ok::<_, Infallible>(handle(state, cut, req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = cut.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

fn respond(status: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    respond(status, "application/json", Body::from(body.to_string()))
}

async fn handle(
    state: Arc<SimState>,
    cut: CancellationToken,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err(_) => return json_response(413, &json!({"error": "request body too large"})),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    if let Some(control) = path.strip_prefix("/_sim/") {
        return control_api(&state, &parts.method, control, query.as_deref(), &body);
    }
    match (parts.method.as_str(), path.as_str()) {
        ("GET", super::oauth::AUTH_PATH) => {
            return oauth_response(state.oauth.authorize(query.as_deref()));
        }
        ("POST", super::oauth::KEYS_PATH) => return oauth_response(state.oauth.exchange(&body)),
        _ => {}
    }
    let Some((kind, rest)) = route(&path) else {
        return json_response(
            404,
            &json!({"error": format!("no simulated provider at {path}")}),
        );
    };
    provider_request(
        state,
        cut,
        kind,
        &rest,
        &parts.method,
        &parts.headers,
        query,
        &path,
        &body,
    )
    .await
}

fn oauth_response(reply: super::oauth::OAuthReply) -> Response<Body> {
    let mut response = json_response(reply.status, &reply.body);
    if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The provider a path belongs to, and the path below its base URL.
fn route(path: &str) -> Option<(ProviderKind, String)> {
    if path == "/yandex/v1/models" {
        return Some((ProviderKind::Yandex, "/models".to_string()));
    }
    ProviderKind::ALL.into_iter().find_map(|kind| {
        let rest = path.strip_prefix(path_prefix(kind))?;
        (rest.is_empty() || rest.starts_with('/')).then(|| (kind, rest.to_string()))
    })
}

/// Marks the request `Disconnected` if it is dropped before being marked complete: hyper drops
/// the handler (or the body stream) when the client goes away.
struct Tracker {
    state: Arc<SimState>,
    id: u64,
    done: bool,
}

impl Tracker {
    fn complete(&mut self) {
        self.done = true;
        let now = std::time::Instant::now();
        self.state.update(self.id, |r| {
            r.outcome = Outcome::Completed;
            r.completed_at = Some(now);
        });
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.done {
            self.state
                .update(self.id, |r| r.outcome = Outcome::Disconnected);
        }
    }
}

fn masked_headers(headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let value = match name.as_str() {
                "authorization" | "x-api-key" | "x-goog-api-key" | "api-key" => {
                    vendors::mask_credential(&value)
                }
                _ => value,
            };
            (name, value)
        })
        .collect()
}

fn masked_query(query: Option<&str>) -> Option<String> {
    query.map(|q| {
        q.split('&')
            .map(|pair| match pair.strip_prefix("key=") {
                Some(key) => format!("key={}", crate::secret::mask(key)),
                None => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[allow(clippy::too_many_arguments)]
async fn provider_request(
    state: Arc<SimState>,
    cut: CancellationToken,
    kind: ProviderKind,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    path: &str,
    body: &Bytes,
) -> Response<Body> {
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    let id = state.record(RecordedRequest {
        id: 0,
        provider: kind,
        method: method.as_str().to_string(),
        path: path.to_string(),
        query: masked_query(query.as_deref()),
        headers: masked_headers(headers),
        body: json_body.clone(),
        status: None,
        fault: None,
        outcome: Outcome::Pending,
        received_at: Some(std::time::Instant::now()),
        completed_at: None,
    });
    let mut tracker = Tracker {
        state: state.clone(),
        id,
        done: false,
    };
    let request_no = state.count(kind);

    let latency = state.latency(kind);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let op = vendors::operation(kind, method.as_str(), rest);
    let listing = matches!(op, Op::Models | Op::KeyInfo);
    let key = vendors::credential(kind, headers, query.as_deref());
    let mut fault = state.take_fault(kind, listing);
    if let Some(f) = &fault {
        state.update(id, |r| r.fault = Some(f.name()));
    }
    // Planted keys act like faults, so a test needs no setup to see a bad key. OpenRouter lists
    // its models for anyone, key or not.
    let public = kind == ProviderKind::OpenRouter && op == Op::Models;
    if fault.is_none() && !public {
        fault = match key.as_deref() {
            None if kind != ProviderKind::Custom => Some(Fault::InvalidKey),
            Some(k) if k.contains("revoked") => Some(Fault::KeyRevoked),
            Some(k) if k.contains("invalid") => Some(Fault::InvalidKey),
            _ => None,
        };
    }
    let key = key.unwrap_or_default();

    match &fault {
        Some(Fault::SlowFirstByte { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
        }
        Some(Fault::ConnectionRefused) => {
            cut.cancel();
            std::future::pending::<()>().await;
        }
        _ => {}
    }

    let reply = match &op {
        Op::Unknown => Some(vendors::error_reply(
            kind,
            &vendors::Spec::bad_request(&format!("unknown path {rest}")),
            request_no,
        ))
        .map(|mut r| {
            r.status = 404;
            r
        }),
        _ => None,
    };
    let model_for_errors = json_body
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| match &op {
            Op::Generate { path_model, .. } => path_model.clone(),
            _ => None,
        })
        .unwrap_or_default();
    let reply = reply.or_else(|| {
        fault
            .as_ref()
            .and_then(|f| vendors::fault_reply(kind, f, &model_for_errors, &key, request_no))
    });
    let (reply, stream) = match reply {
        Some(reply) => (reply, false),
        None => match answer(
            &state,
            kind,
            &op,
            &json_body,
            headers,
            request_no,
            fault.as_ref(),
        ) {
            Ok((reply, stream)) => (reply, stream),
            Err(reply) => (reply, false),
        },
    };
    state.update(id, |r| r.status = Some(reply.status));
    build_response(reply, stream, fault, kind, cut, tracker_into(&mut tracker))
}

/// Moves the tracker's duty into the response body.
fn tracker_into(tracker: &mut Tracker) -> Tracker {
    tracker.done = true;
    Tracker {
        state: tracker.state.clone(),
        id: tracker.id,
        done: false,
    }
}

/// The success answer of a well-formed request (or the vendor's validation error).
fn answer(
    state: &SimState,
    kind: ProviderKind,
    op: &Op,
    body: &Value,
    headers: &HeaderMap,
    request_no: u32,
    fault: Option<&Fault>,
) -> Result<(Reply, bool), Reply> {
    let served_headers = vendors::rate_limit_headers(kind, request_no);
    let with_headers = |mut reply: Reply| {
        reply.headers.extend(served_headers.iter().cloned());
        reply
    };
    match op {
        Op::Models => {
            let folder = headers.get("openai-project").and_then(|v| v.to_str().ok());
            if kind == ProviderKind::Yandex && folder.is_none_or(str::is_empty) {
                return Err(vendors::error_reply(
                    kind,
                    &vendors::Spec::bad_request("OpenAI-Project header (folder id) is required"),
                    request_no,
                ));
            }
            Ok((with_headers(vendors::models(kind, folder)), false))
        }
        Op::KeyInfo => Ok((with_headers(vendors::key_info()), false)),
        Op::Generate { .. } => {
            if kind == ProviderKind::Claude && headers.get("anthropic-version").is_none() {
                return Err(vendors::error_reply(
                    kind,
                    &vendors::Spec::bad_request("anthropic-version: header is required"),
                    request_no,
                ));
            }
            let call = vendors::parse_call(kind, op, body)?;
            if matches!(fault, Some(Fault::EchoPrompt)) {
                return Err(vendors::echo_prompt_reply(kind, &call, request_no));
            }
            if vendors::model_missing(kind, &call.model) {
                return Err(vendors::fault_reply(
                    kind,
                    &Fault::ModelNotFound,
                    &call.model,
                    "",
                    request_no,
                )
                .unwrap_or_else(|| {
                    vendors::error_reply(kind, &vendors::Spec::bad_request("model"), request_no)
                }));
            }
            let filtered = matches!(fault, Some(Fault::ContentFilter));
            let scripted = state.take_reply(kind);
            let reply = vendors::success(kind, &call, request_no, filtered, scripted);
            Ok((with_headers(reply), call.stream))
        }
        Op::Unknown => Err(vendors::error_reply(
            kind,
            &vendors::Spec::bad_request("unknown path"),
            request_no,
        )),
    }
}

enum Step {
    Send(Bytes),
    Sleep(Duration),
    Cut,
}

/// Applies the body faults and turns the reply into an HTTP response whose body completes the
/// tracker when the last byte is handed to hyper.
fn build_response(
    reply: Reply,
    stream: bool,
    fault: Option<Fault>,
    kind: ProviderKind,
    cut: CancellationToken,
    mut tracker: Tracker,
) -> Response<Body> {
    let mut pieces = reply.pieces;
    let body_fault = reply.status == 200
        && matches!(
            fault,
            Some(
                Fault::ResetMidStream
                    | Fault::TruncatedStream
                    | Fault::StallMidStream { .. }
                    | Fault::MalformedJson
                    | Fault::ErrorMidStream
            )
        );
    if body_fault && pieces.len() == 1 {
        // A plain body is cut in the middle of its bytes.
        let whole = pieces.remove(0);
        let mid = whole.len() / 2;
        pieces = vec![whole.slice(..mid), whole.slice(mid..)];
    }
    let half = pieces.len() / 2;
    let mut steps: Vec<Step> = Vec::new();
    match fault.as_ref().filter(|_| body_fault) {
        Some(Fault::ResetMidStream) => {
            steps.extend(pieces.drain(..half.max(1)).map(Step::Send));
            // Let the bytes reach the client before the connection goes.
            steps.push(Step::Sleep(Duration::from_millis(30)));
            steps.push(Step::Cut);
        }
        Some(Fault::TruncatedStream) => {
            steps.extend(pieces.drain(..half.max(1)).map(Step::Send));
        }
        Some(Fault::StallMidStream { stall_ms }) => {
            steps.extend(pieces.drain(..half.max(1)).map(Step::Send));
            steps.push(Step::Sleep(Duration::from_millis(*stall_ms)));
            steps.extend(pieces.drain(..).map(Step::Send));
        }
        Some(Fault::MalformedJson) => {
            if stream {
                steps.extend(pieces.drain(..half.max(1)).map(Step::Send));
            }
            steps.push(Step::Send(vendors::malformed_piece(kind, stream)));
        }
        Some(Fault::ErrorMidStream) => {
            steps.extend(pieces.drain(..half.max(1)).map(Step::Send));
            steps.push(Step::Send(vendors::error_event(kind)));
        }
        _ => steps.extend(pieces.drain(..).map(Step::Send)),
    }
    let content_type = reply.content_type;
    let steps = std::collections::VecDeque::from(steps);
    let body_stream = futures::stream::unfold(
        (steps, tracker_into(&mut tracker), cut),
        |(mut steps, mut tracker, cut)| async move {
            loop {
                match steps.pop_front() {
                    None => {
                        tracker.complete();
                        return None;
                    }
                    Some(Step::Send(bytes)) => {
                        return Some((Ok::<Bytes, std::io::Error>(bytes), (steps, tracker, cut)));
                    }
                    Some(Step::Sleep(d)) => tokio::time::sleep(d).await,
                    Some(Step::Cut) => {
                        cut.cancel();
                        std::future::pending::<()>().await;
                    }
                }
            }
        },
    );
    tracker.done = true;
    let mut response = respond(reply.status, content_type, Body::from_stream(body_stream));
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultCommand {
    provider: ProviderKind,
    #[serde(flatten)]
    fault: Fault,
    #[serde(default)]
    times: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChaosCommand {
    provider: ProviderKind,
    #[serde(flatten)]
    chaos: Chaos,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LatencyCommand {
    provider: ProviderKind,
    ms: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RepliesCommand {
    provider: ProviderKind,
    texts: Vec<String>,
}

fn provider_param(query: Option<&str>) -> Result<Option<ProviderKind>, String> {
    let Some(value) = query
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("provider="))
    else {
        return Ok(None);
    };
    value
        .parse()
        .map(Some)
        .map_err(|e: crate::providers::catalog::UnknownKind| e.to_string())
}

fn control_api(
    state: &SimState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Bytes,
) -> Response<Body> {
    let result = match (method.as_str(), path) {
        ("GET", "health") => {
            let base = state.base_url();
            let endpoints: serde_json::Map<String, Value> = ProviderKind::ALL
                .into_iter()
                .map(|k| {
                    (
                        k.as_str().to_string(),
                        json!(format!("{base}{}", path_prefix(k))),
                    )
                })
                .collect();
            Ok(json_response(
                200,
                &json!({"ok": true, "endpoints": endpoints}),
            ))
        }
        ("POST", "faults") => serde_json::from_slice::<FaultCommand>(body)
            .map(|cmd| {
                state.inject(cmd.provider, cmd.fault, cmd.times);
                json_response(200, &json!({"ok": true}))
            })
            .map_err(|e| json_response(400, &json!({"error": e.to_string()}))),
        ("DELETE", "faults") => provider_param(query)
            .map(|kind| {
                state.clear(kind);
                json_response(200, &json!({"ok": true}))
            })
            .map_err(|e| json_response(400, &json!({"error": e}))),
        ("POST", "chaos") => serde_json::from_slice::<ChaosCommand>(body)
            .map(|cmd| {
                state.set_chaos(cmd.provider, cmd.chaos);
                json_response(200, &json!({"ok": true}))
            })
            .map_err(|e| json_response(400, &json!({"error": e.to_string()}))),
        ("POST", "latency") => serde_json::from_slice::<LatencyCommand>(body)
            .map(|cmd| {
                state.set_latency(cmd.provider, Duration::from_millis(cmd.ms));
                json_response(200, &json!({"ok": true}))
            })
            .map_err(|e| json_response(400, &json!({"error": e.to_string()}))),
        ("POST", "replies") => serde_json::from_slice::<RepliesCommand>(body)
            .map(|cmd| {
                state.script_replies(cmd.provider, cmd.texts);
                json_response(200, &json!({"ok": true}))
            })
            .map_err(|e| json_response(400, &json!({"error": e.to_string()}))),
        ("DELETE", "replies") => provider_param(query)
            .map(|kind| {
                state.clear_replies(kind);
                json_response(200, &json!({"ok": true}))
            })
            .map_err(|e| json_response(400, &json!({"error": e}))),
        ("GET", "requests") => provider_param(query)
            .map(|kind| {
                let records = state.requests(kind);
                json_response(200, &serde_json::to_value(records).unwrap_or(Value::Null))
            })
            .map_err(|e| json_response(400, &json!({"error": e}))),
        ("DELETE", "requests") => {
            state.clear_requests();
            Ok(json_response(200, &json!({"ok": true})))
        }
        _ => Ok(json_response(
            404,
            &json!({"error": format!("no control endpoint {method} /_sim/{path}")}),
        )),
    };
    result.unwrap_or_else(|response| response)
}
