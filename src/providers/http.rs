//! The one HTTP client every provider shares, and the request plumbing around it: deadlines,
//! cancellation, error bodies, and turning a streamed body into [`StreamEvent`]s.
//!
//! Owns: connection pooling (one `reqwest::Client`, cloned — never a client per request), the
//! connect / overall / first-byte / idle timeouts, and `CancellationToken` handling. Dropping any
//! future or stream returned here drops the connection. It must never log a request or response
//! body (they hold manuscript text) nor a header (they hold keys).

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::classify::{FailureContext, classify_failure};
use super::error::{Detail, ProviderError};
use super::{CONNECT_TIMEOUT, EventStream, StreamEvent};

/// Error bodies longer than this are cut: a vendor error is a few hundred bytes, anything larger
/// is a proxy page we only need the start of.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A non-streamed response larger than this is refused rather than buffered.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The process-wide HTTP client: rustls, pooled connections, HTTP/2 where the server offers it.
/// Cheap to clone (an `Arc` inside).
///
/// Built on first use, not at start-up: building it reads and parses the system's TLS root
/// certificates, memory and code an idle server (or one that never calls a provider) does not
/// need.
#[derive(Debug, Clone, Default)]
pub struct HttpClient {
    inner: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientBuildError(String);

impl HttpClient {
    /// A client built on first use (see [`HttpClient::reqwest`]); never fails today, kept
    /// fallible for its callers.
    pub fn new() -> Result<Self, ClientBuildError> {
        Ok(HttpClient::default())
    }

    /// The client, built now if this is its first use. When the system's TLS roots cannot be
    /// loaded (a machine without CA certificates), the client still serves plain HTTP (loopback
    /// providers) and every HTTPS request fails certificate verification; the reason is logged.
    pub fn reqwest(&self) -> &reqwest::Client {
        self.inner.get_or_init(|| match build(builder()) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!("{e}; HTTPS requests will fail");
                build(builder().tls_certs_only(std::iter::empty()))
                    .unwrap_or_else(|_| reqwest::Client::new())
            }
        })
    }
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("storyteller-lsp/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, ClientBuildError> {
    builder.build().map_err(|e| ClientBuildError(e.to_string()))
}

/// The time limits and cancellation of one HTTP attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub cancel: CancellationToken,
    /// When the whole attempt (headers and full body, or the whole stream) must be done.
    pub deadline: Instant,
    /// For streams: how long to wait for the response headers and the first body bytes.
    pub first_byte: Option<Duration>,
    /// For streams: the longest silence allowed between two chunks.
    pub idle: Option<Duration>,
}

impl Attempt {
    /// An attempt bounded by `timeout` and nothing else (model listings, connection tests).
    pub fn bounded(timeout: Duration) -> Self {
        Attempt {
            cancel: CancellationToken::new(),
            deadline: Instant::now() + timeout,
            first_byte: None,
            idle: None,
        }
    }

    fn headers_deadline(&self, started: Instant) -> (Instant, &'static str) {
        match self.first_byte {
            Some(d) if started + d < self.deadline => (started + d, "waiting for the first byte"),
            _ => (self.deadline, "waiting for the response"),
        }
    }
}

fn timeout_error(stage: &str, after: Duration) -> ProviderError {
    ProviderError::Timeout(Detail::new(format!(
        "no answer {stage} within {} ms",
        after.as_millis()
    )))
}

/// What reqwest reports, in our taxonomy. Its Display can hold the URL, which never holds a key
/// (Gemini's key travels in a header, not `?key=`).
pub fn transport_error(err: &reqwest::Error) -> ProviderError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let detail = Detail {
        connection_refused: is_connection_refused(err),
        ..Detail::new(crate::providers::classify::scrub(&message, None))
    };
    if err.is_timeout() {
        ProviderError::Timeout(detail)
    } else {
        ProviderError::Network(detail)
    }
}

/// Whether the operating system refused the connection (nothing listens at the address), found
/// in the error's chain of causes.
fn is_connection_refused(err: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `builder` with `body` as its JSON, serialised into a buffer sized up front for `text_len`
/// bytes of text and the fields around it (growing from empty, a prompt of a few KB would be
/// copied a dozen times on the way).
pub fn with_json<T: serde::Serialize>(
    builder: reqwest::RequestBuilder,
    body: &T,
    text_len: usize,
) -> reqwest::RequestBuilder {
    // Escapes (newlines, quotes) and the other fields rarely add more than this.
    let mut bytes = Vec::with_capacity(text_len + text_len / 16 + 512);
    match serde_json::to_writer(&mut bytes, body) {
        Ok(()) => builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes),
        // Never expected for the providers' bodies; reqwest keeps the error for `send`.
        Err(_) => builder.json(body),
    }
}

/// Sends the request and waits for the response headers, within the attempt's limits. A
/// non-success status is read and classified.
pub async fn send(
    request: reqwest::RequestBuilder,
    attempt: &Attempt,
    ctx: FailureContext<'_>,
) -> Result<reqwest::Response, ProviderError> {
    let started = Instant::now();
    let (until, stage) = attempt.headers_deadline(started);
    let response = tokio::select! {
        biased;
        _ = attempt.cancel.cancelled() => return Err(ProviderError::Cancelled),
        _ = tokio::time::sleep_until(until) => return Err(timeout_error(stage, until - started)),
        r = request.send() => r.map_err(|e| transport_error(&e))?,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = read_limited(response, attempt, MAX_ERROR_BODY, true).await?;
    Err(classify_failure(
        ctx,
        status.as_u16(),
        Some(&headers),
        &body,
    ))
}

/// Reads a whole (non-streamed) body within the attempt's deadline.
pub async fn read_body(
    response: reqwest::Response,
    attempt: &Attempt,
) -> Result<Bytes, ProviderError> {
    read_limited(response, attempt, MAX_BODY, false).await
}

async fn read_limited(
    response: reqwest::Response,
    attempt: &Attempt,
    limit: usize,
    truncate: bool,
) -> Result<Bytes, ProviderError> {
    let started = Instant::now();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    loop {
        let next = tokio::select! {
            biased;
            _ = attempt.cancel.cancelled() => return Err(ProviderError::Cancelled),
            _ = tokio::time::sleep_until(attempt.deadline) => {
                return Err(timeout_error("reading the response", attempt.deadline - started));
            }
            next = stream.next() => next,
        };
        match next {
            None => return Ok(Bytes::from(body)),
            Some(Ok(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > limit {
                    if truncate {
                        body.truncate(limit);
                        return Ok(Bytes::from(body));
                    }
                    return Err(ProviderError::Protocol {
                        detail: Detail::new(format!("response larger than {limit} bytes")),
                        partial: None,
                    });
                }
            }
            Some(Err(e)) => {
                let mut err = transport_error(&e);
                if let ProviderError::Network(d) = &mut err {
                    d.message =
                        format!("connection lost while reading the response ({})", d.message);
                }
                return Err(err);
            }
        }
    }
}

/// Reads a whole JSON body: vendors may send blank lines first (DeepSeek keeps a queued request
/// alive that way), so leading whitespace is skipped.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    attempt: &Attempt,
) -> Result<T, ProviderError> {
    let body = read_body(response, attempt).await?;
    parse_json(&body)
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    serde_json::from_slice(&body[start..]).map_err(|e| ProviderError::Protocol {
        detail: Detail::new(format!(
            "malformed response: {}",
            crate::providers::classify::describe_json_error(&e)
        )),
        partial: None,
    })
}

/// A vendor's stream format: bytes in, events out. One implementation per wire format; framing
/// (SSE, JSON sequence) is shared in `sse.rs` / `ndjson.rs`.
pub trait StreamDecoder: Send + 'static {
    /// Feeds one chunk of the body. Events go to `out`; a vendor error event or unparseable data
    /// is an `Err`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
    /// The body ended. Emits the final `Done` if the vendor's stream may end without a marker
    /// (Gemini), or fails with `Protocol` when the stream was cut short.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
}

/// How long, and how much, the rest of a body is read after `Done` so that its connection can
/// go back to the pool (a body dropped unread closes the connection, and the next request pays
/// for a new one). The caller waits at most `DRAIN_INLINE` for it (the end of the body follows
/// the final event at once from a well-behaved server); the rest happens in the background.
const DRAIN_INLINE: Duration = Duration::from_millis(50);
const DRAIN_AFTER_DONE: Duration = Duration::from_secs(2);
const DRAIN_MAX_BYTES: usize = 64 * 1024;

type BodyStream = futures::stream::BoxStream<'static, reqwest::Result<Bytes>>;

struct Driver<D> {
    body: Option<BodyStream>,
    decoder: D,
    attempt: Attempt,
    /// One timer for the whole stream, moved only when it fires early: re-arming a timer per
    /// chunk costs a wake-up of the runtime's timer thread each time.
    timer: Pin<Box<tokio::time::Sleep>>,
    cancelled: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    last_bytes_at: Instant,
    got_bytes: bool,
    body_ended: bool,
    /// Text delivered so far, for the `partial` of a protocol error.
    text: String,
    queue: std::collections::VecDeque<Result<StreamEvent, ProviderError>>,
    ended: bool,
}

/// Turns a successful streaming response into events, applying the first-byte, idle and overall
/// limits and the cancellation token. The stream ends after `Done` or the first error; dropping
/// it drops the connection.
pub fn drive_stream<D: StreamDecoder>(
    response: reqwest::Response,
    decoder: D,
    attempt: Attempt,
) -> EventStream {
    drive_bytes(response.bytes_stream(), decoder, attempt)
}

/// [`drive_stream`] over any byte stream (tests and benches feed recorded bodies).
pub fn drive_bytes<S, D>(body: S, decoder: D, attempt: Attempt) -> EventStream
where
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    D: StreamDecoder,
{
    let now = Instant::now();
    let driver = Driver {
        body: Some(body.boxed()),
        decoder,
        timer: Box::pin(tokio::time::sleep_until(attempt.deadline)),
        cancelled: Box::pin(attempt.cancel.clone().cancelled_owned()),
        attempt,
        last_bytes_at: now,
        got_bytes: false,
        body_ended: false,
        text: String::new(),
        queue: Default::default(),
        ended: false,
    };
    futures::stream::unfold(driver, |mut d| async move {
        let item = d.next_item().await?;
        Some((item, d))
    })
    .boxed()
}

impl<D: StreamDecoder> Driver<D> {
    async fn next_item(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(self.deliver(item));
            }
            if self.ended {
                self.drain_inline().await;
                return None;
            }
            let mut out = Vec::new();
            let result = match self.read_chunk().await {
                Ok(Some(chunk)) => self.decoder.feed(&chunk, &mut out),
                Ok(None) => {
                    self.body_ended = true;
                    self.decoder.finish(&mut out)
                }
                Err(e) => Err(e),
            };
            self.queue.extend(out.into_iter().map(Ok));
            match result {
                Err(e) => self.queue.push_back(Err(e)),
                Ok(()) if self.body_ended && !self.queue.iter().any(is_terminal) => {
                    self.queue.push_back(Err(ProviderError::Protocol {
                        detail: Detail::new("the stream ended without its final event"),
                        partial: None,
                    }));
                }
                Ok(()) => {}
            }
        }
    }

    fn deliver(
        &mut self,
        item: Result<StreamEvent, ProviderError>,
    ) -> Result<StreamEvent, ProviderError> {
        if is_terminal(&item) {
            self.ended = true;
            self.queue.clear();
            // An error leaves the connection in an unknown state: it is dropped with the body.
            if !matches!(item, Ok(StreamEvent::Done { .. })) {
                self.body = None;
            }
        }
        match item {
            Ok(StreamEvent::Delta(t)) => {
                self.text.push_str(&t);
                Ok(StreamEvent::Delta(t))
            }
            // Deltas already delivered are the caller's partial text; a protocol error also
            // carries it, as the taxonomy promises.
            Err(ProviderError::Protocol {
                detail,
                partial: None,
            }) if !self.text.is_empty() => Err(ProviderError::Protocol {
                detail,
                partial: Some(std::mem::take(&mut self.text)),
            }),
            other => other,
        }
    }

    /// After `Done`, when the caller polls for the end: reads what follows the final event
    /// (usually just the end of the chunked body), briefly, then hands the rest to the background.
    async fn drain_inline(&mut self) {
        if self.body_ended {
            self.body = None;
            return;
        }
        let Some(body) = self.body.as_mut() else {
            return;
        };
        let finished = tokio::time::timeout(DRAIN_INLINE, async {
            let mut read = 0;
            while let Some(Ok(chunk)) = body.next().await {
                read += chunk.len();
                if read > DRAIN_MAX_BYTES {
                    return false;
                }
            }
            true
        })
        .await;
        match finished {
            Ok(_) => self.body = None,
            Err(_) => self.drain_in_background(),
        }
    }

    fn drain_in_background(&mut self) {
        if let Some(body) = self.body.take() {
            spawn_drain(body);
        }
    }

    /// When the stream times out if nothing more arrives, and what that timeout is called.
    fn due(&self) -> (Instant, String) {
        let silence = match (self.got_bytes, self.attempt.first_byte, self.attempt.idle) {
            (false, Some(d), _) => Some((d, "no first byte of the stream within")),
            (true, _, Some(d)) => Some((d, "the stream stalled mid-way: no data for")),
            _ => None,
        };
        match silence.and_then(|(d, what)| Some((self.last_bytes_at.checked_add(d)?, d, what))) {
            Some((at, d, what)) if at < self.attempt.deadline => {
                (at, format!("{what} {} ms", d.as_millis()))
            }
            _ => (
                self.attempt.deadline,
                "the stream did not finish within its deadline".to_string(),
            ),
        }
    }

    async fn read_chunk(&mut self) -> Result<Option<Bytes>, ProviderError> {
        // The timer may run early (it is moved later lazily, when it fires) but never late.
        let (due, _) = self.due();
        if self.timer.deadline() > due {
            self.timer.as_mut().reset(due);
        }
        let next = loop {
            tokio::select! {
                biased;
                _ = self.cancelled.as_mut() => return Err(ProviderError::Cancelled),
                _ = self.timer.as_mut() => {
                    let (due, mut message) = self.due();
                    if Instant::now() < due {
                        // Data arrived since the timer was set: move it and keep waiting.
                        self.timer.as_mut().reset(due);
                        continue;
                    }
                    if !self.text.is_empty() {
                        message.push_str(&format!(" ({} characters received)", self.text.chars().count()));
                    }
                    return Err(ProviderError::Timeout(Detail::new(message)));
                }
                next = next_chunk(&mut self.body) => break next,
            }
        };
        match next {
            None => Ok(None),
            Some(Ok(chunk)) => {
                if !chunk.is_empty() {
                    self.got_bytes = true;
                    self.last_bytes_at = Instant::now();
                }
                Ok(Some(chunk))
            }
            Some(Err(e)) => {
                let mut err = transport_error(&e);
                if let ProviderError::Network(d) = &mut err {
                    d.message = format!("connection lost mid-stream ({})", d.message);
                }
                Err(err)
            }
        }
    }
}

impl<D> Drop for Driver<D> {
    fn drop(&mut self) {
        // Dropped after `Done` without polling to the end: finish the body in the background.
        // Dropped before `Done` (cancelled, superseded): the body goes with it, and so does the
        // connection, which is what aborts the vendor's work.
        if self.ended
            && !self.body_ended
            && let Some(body) = self.body.take()
        {
            spawn_drain(body);
        }
    }
}

/// Reads the tail of a finished stream off the caller's path, bounded in time and size; an
/// error or the bound drops the connection.
fn spawn_drain(mut body: BodyStream) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let drain = async {
            let mut read = 0;
            while let Some(Ok(chunk)) = body.next().await {
                read += chunk.len();
                if read > DRAIN_MAX_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_AFTER_DONE, drain).await;
    });
}

async fn next_chunk(body: &mut Option<BodyStream>) -> Option<reqwest::Result<Bytes>> {
    match body {
        Some(body) => body.next().await,
        None => None,
    }
}

fn is_terminal(item: &Result<StreamEvent, ProviderError>) -> bool {
    matches!(item, Ok(StreamEvent::Done { .. }) | Err(_))
}

impl Attempt {
    /// The limits of one attempt at `request`: its overall timeout, and for streams its first-byte
    /// and idle timeouts.
    pub fn for_request(request: &super::CompletionRequest, streaming: bool) -> Self {
        Attempt {
            cancel: request.cancel.clone(),
            deadline: Instant::now() + request.timeout,
            first_byte: streaming.then_some(request.first_byte_timeout),
            idle: streaming.then_some(request.idle_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn transport_failure(url: &str) -> ProviderError {
        let client = HttpClient::new().expect("client");
        let err = client
            .reqwest()
            .get(url)
            .send()
            .await
            .expect_err("the request fails");
        transport_error(&err)
    }

    #[tokio::test]
    async fn a_refused_connection_is_marked_as_refused() {
        // Bound but never listening: the port is ours and every connection to it is refused.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let addr = socket.local_addr().expect("addr");
        let err = transport_failure(&format!("http://{addr}/v1/models")).await;
        drop(socket);
        assert!(
            matches!(&err, ProviderError::Network(d) if d.connection_refused),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_not_a_refusal() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Accepts, reads the request, and hangs up without a word.
        let server = tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
            }
        });
        let err = transport_failure(&format!("http://{addr}/v1/models")).await;
        server.abort();
        assert!(
            matches!(&err, ProviderError::Network(d) if !d.connection_refused),
            "{err:?}"
        );
    }
}
