//! The LSP base protocol on a byte stream: `Content-Length` framing, JSON-RPC decoding, handler
//! concurrency and the single writer of the output.
//!
//! Why not `tower_lsp::Server`: its reader is a tokio-util `FramedRead`, which (since tokio-util
//! 0.7.4, tokio#3976) ends the stream after the first decoding error — one malformed message
//! from an editor extension or proxy would end the author's session. Here a bad frame or body is
//! answered with a JSON-RPC error (`-32700` / `-32600`) and skipped, and the session goes on.
//! Handler scheduling is the same as tower-lsp's: futures run in a `buffer_unordered` of
//! `concurrency` slots; `Service::call` itself runs on the reader, in arrival order.
//!
//! Must never: let a message size from outside decide an allocation without a bound, or write
//! anything but whole framed messages to the output.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::{self, BoxFuture};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use tower::Service;
use tower_lsp::jsonrpc::{Error, Id, Request, Response};
use tower_lsp::{ClientSocket, ExitedError};

/// The largest message accepted: a 10 MB manuscript sent whole, JSON-escaped, fits several times.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// The longest header line accepted; real headers are under 100 bytes.
const MAX_HEADER_LINE: u64 = 4096;
/// Handler futures waiting for a free slot before the reader pauses (as in tower-lsp).
const QUEUED_HANDLERS: usize = 100;
/// How long answers may still be written once the input has ended.
const DRAIN_AFTER_INPUT_ENDS: Duration = Duration::from_secs(2);

/// One message read from the input, or why none could be.
#[derive(Debug)]
enum Incoming {
    Request(Request),
    Response(Response),
    /// Undecodable: answer with this error (to `id` when it could be read, else `null`).
    Invalid(Id, Error),
    /// A malformed response to one of our requests: nothing to answer.
    Ignored,
}

/// Serves `service` over `input`/`output` until the input ends or `until` resolves (the server
/// handled `exit`).
///
/// Ending is orderly: after `until`, reading stops and the writer stops between two messages —
/// never inside one. After the end of the input, answers still being computed get
/// [`DRAIN_AFTER_INPUT_ENDS`] to go out (a script may pipe requests and close stdin), but a
/// handler stuck on the network does not keep the process alive.
pub async fn serve<I, O, S, U>(
    input: I,
    output: O,
    socket: ClientSocket,
    mut service: S,
    concurrency: usize,
    until: U,
) where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    S: Service<Request, Response = Option<Response>, Error = ExitedError>,
    S::Future: Send + 'static,
    U: Future<Output = ()>,
{
    let stop = CancellationToken::new();
    let (server_requests, mut client_responses) = socket.split();
    let (server_requests, stop_server_requests) = futures::stream::abortable(server_requests);
    let (outgoing_tx, outgoing_rx) = mpsc::unbounded::<Option<Frame>>();
    let (handlers_tx, handlers_rx) =
        mpsc::channel::<BoxFuture<'static, Option<Response>>>(QUEUED_HANDLERS);

    let write_output = {
        let stop = stop.clone();
        async move {
            let messages = futures::stream::select(
                outgoing_rx,
                server_requests.map(|request| Frame::of(&request)),
            );
            let mut writer = Writer(output);
            futures::pin_mut!(messages);
            loop {
                let message = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    message = messages.next() => message,
                };
                let Some(message) = message else { break };
                let Some(frame) = message else {
                    continue; // could not be serialised (never expected): send nothing
                };
                // Not raced against `stop`: a message is written whole or not at all.
                if let Err(e) = writer.write(&frame).await {
                    tracing::error!("cannot write to the client: {e}");
                    break;
                }
            }
        }
    };

    let run_handlers = {
        let outgoing = outgoing_tx.clone();
        handlers_rx
            .buffer_unordered(concurrency.max(1))
            .filter_map(future::ready)
            .for_each(move |response| {
                let _ = outgoing.unbounded_send(Frame::of(&response));
                future::ready(())
            })
    };

    let read_input = {
        let stop = stop.clone();
        async move {
            let mut reader = Reader::new(input);
            let mut handlers = handlers_tx;
            loop {
                let next = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    next = reader.next_message() => next,
                };
                let incoming = match next {
                    Ok(Some(incoming)) => incoming,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!("cannot read from the client: {e}");
                        break;
                    }
                };
                match incoming {
                    Incoming::Request(request) => {
                        if future::poll_fn(|cx| service.poll_ready(cx)).await.is_err() {
                            break; // `exit` was handled: the session is over.
                        }
                        let answer = service.call(request);
                        let answer: BoxFuture<'static, Option<Response>> =
                            Box::pin(async move { answer.await.unwrap_or(None) });
                        if handlers.send(answer).await.is_err() {
                            break;
                        }
                    }
                    Incoming::Response(response) => {
                        // tower-lsp 0.20 panics ("receiver already dropped") when the answer is
                        // for a request whose waiter was dropped (a timeout, a cancelled
                        // handler). The pending entry is already removed when it panics, so the
                        // late answer is simply discarded and the session goes on.
                        let delivered =
                            std::panic::AssertUnwindSafe(client_responses.send(response))
                                .catch_unwind()
                                .await;
                        match delivered {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break,
                            Err(_) => tracing::warn!(
                                "discarded the editor's late answer to a request nobody waits for"
                            ),
                        }
                    }
                    Incoming::Invalid(id, error) => {
                        tracing::warn!("refused a message from the client: {}", error.message);
                        let answer = Frame::of(&Response::from_error(id, error));
                        let _ = outgoing_tx.unbounded_send(answer);
                    }
                    Incoming::Ignored => {}
                }
            }
            // Closing every sender lets the writer end once queued answers are out.
            drop(handlers);
            drop(outgoing_tx);
            stop_server_requests.abort();
        }
    };

    futures::pin_mut!(write_output, run_handlers, read_input, until);
    let mut reading = true;
    let mut stopping = false;
    let mut handlers_running = true;
    // Armed when the input ends.
    let drain = tokio::time::sleep(Duration::MAX);
    futures::pin_mut!(drain);
    loop {
        tokio::select! {
            () = &mut until, if !stopping => {
                stopping = true;
                stop.cancel();
            }
            () = &mut read_input, if reading => {
                reading = false;
                drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_AFTER_INPUT_ENDS);
            }
            () = &mut run_handlers, if handlers_running => handlers_running = false,
            // The writer ends when every sender is gone, on `stop`, or when the client is gone.
            () = &mut write_output => return,
            () = &mut drain, if !reading => return,
        }
    }
}

/// One whole message as it goes out: the `Content-Length` header and the JSON body in one
/// buffer, so the editor wakes once per message, not once for the header and again for the body.
struct Frame {
    buffer: Vec<u8>,
    /// Where the header starts: the body is written first, after room for the longest header.
    start: usize,
}

impl Frame {
    /// Room for `Content-Length: <20 digits>\r\n\r\n`.
    const HEADER_ROOM: usize = 40;

    /// The framed message; `None` (logged) if it cannot be serialised, which is never expected.
    /// Serialised straight from the message: no `Value` copy of it first.
    fn of<T: serde::Serialize>(message: &T) -> Option<Frame> {
        let mut buffer = Vec::with_capacity(Self::HEADER_ROOM + 256);
        buffer.resize(Self::HEADER_ROOM, 0);
        if let Err(e) = serde_json::to_writer(&mut buffer, message) {
            tracing::error!("cannot serialise a message to the client: {e}");
            return None;
        }
        let header = format!(
            "Content-Length: {}\r\n\r\n",
            buffer.len() - Self::HEADER_ROOM
        );
        let start = Self::HEADER_ROOM - header.len();
        buffer[start..Self::HEADER_ROOM].copy_from_slice(header.as_bytes());
        Some(Frame { buffer, start })
    }

    fn bytes(&self) -> &[u8] {
        &self.buffer[self.start..]
    }
}

struct Writer<O>(O);

impl<O: AsyncWrite + Unpin> Writer<O> {
    async fn write(&mut self, frame: &Frame) -> io::Result<()> {
        self.0.write_all(frame.bytes()).await?;
        self.0.flush().await
    }
}

struct Reader<I> {
    input: BufReader<I>,
    /// After a bad header, skip input until the next `Content-Length` header.
    resync: bool,
    max_message: usize,
}

impl<I: AsyncRead + Unpin> Reader<I> {
    fn new(input: I) -> Self {
        Reader {
            input: BufReader::new(input),
            resync: false,
            max_message: MAX_MESSAGE_BYTES,
        }
    }

    /// The next message; `None` at the end of the input.
    async fn next_message(&mut self) -> io::Result<Option<Incoming>> {
        let length = match self.read_header().await? {
            Header::End => return Ok(None),
            Header::Invalid(reason) => {
                self.resync = true;
                return Ok(Some(Incoming::Invalid(Id::Null, parse_error(reason))));
            }
            Header::Length(length) => length,
        };
        if length > self.max_message {
            // Skip the body so the next frame is read from its start.
            let skipped = tokio::io::copy(
                &mut (&mut self.input).take(length as u64),
                &mut tokio::io::sink(),
            )
            .await?;
            if skipped < length as u64 {
                return Ok(None);
            }
            return Ok(Some(Incoming::Invalid(
                Id::Null,
                parse_error(format!(
                    "message of {length} bytes exceeds the limit of {}",
                    self.max_message
                )),
            )));
        }
        let mut body = vec![0; length];
        match self.input.read_exact(&mut body).await {
            Ok(_) => Ok(Some(decode(&body))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_header(&mut self) -> io::Result<Header> {
        let mut length: Option<Result<usize, String>> = None;
        let mut seen_header = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut self.input)
                .take(MAX_HEADER_LINE)
                .read_until(b'\n', &mut line)
                .await?;
            if read == 0 {
                return Ok(Header::End);
            }
            if self.resync {
                // Resume at a `Content-Length` header, even one glued to the previous body.
                match find_ignore_case(&line, b"content-length") {
                    Some(at) => {
                        line.drain(..at);
                        self.resync = false;
                    }
                    None => continue,
                }
            }
            if !line.ends_with(b"\n") && read as u64 == MAX_HEADER_LINE {
                return Ok(Header::Invalid("header line too long".into()));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                match length {
                    Some(Ok(length)) => return Ok(Header::Length(length)),
                    Some(Err(reason)) => return Ok(Header::Invalid(reason)),
                    None if seen_header => {
                        return Ok(Header::Invalid("no Content-Length header".into()));
                    }
                    // Blank lines between messages are tolerated.
                    None => continue,
                }
            }
            seen_header = true;
            match text.split_once(':') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                    length = Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| "the Content-Length header is not a number".to_string()),
                    );
                }
                // Content-Type and other well-formed headers: nothing to do.
                Some((name, _)) if is_header_name(name) => {}
                _ => return Ok(Header::Invalid("expected a header line".into())),
            }
        }
    }
}

enum Header {
    Length(usize),
    Invalid(String),
    End,
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn parse_error(reason: impl Into<String>) -> Error {
    Error {
        message: format!("Parse error: {}", reason.into()).into(),
        ..Error::parse_error()
    }
}

fn decode(body: &[u8]) -> Incoming {
    // Most messages are well-formed requests: read straight into one (no tree of the whole
    // message, no second pass over it). Anything else takes the path below, which tells why. (A
    // `Request` reads a missing method as "": a response, or no message at all, reads as one.)
    if let Ok(request) = serde_json::from_slice::<Request>(body)
        && !request.method().is_empty()
    {
        return Incoming::Request(normalize(request));
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        // serde's message may quote the body (manuscript text): report the position only.
        Err(e) => {
            return Incoming::Invalid(
                Id::Null,
                parse_error(format!(
                    "invalid JSON at line {} column {}",
                    e.line(),
                    e.column()
                )),
            );
        }
    };
    let id = value
        .get("id")
        .and_then(|id| serde_json::from_value::<Id>(id.clone()).ok())
        .unwrap_or(Id::Null);
    let is_request = value.get("method").is_some();
    let is_response = value.get("result").is_some() || value.get("error").is_some();
    if is_request {
        match serde_json::from_value::<Request>(value) {
            Ok(request) => Incoming::Request(normalize(request)),
            Err(_) => Incoming::Invalid(id, invalid_request("not a valid JSON-RPC 2.0 request")),
        }
    } else if is_response && value.get("id").is_some() {
        match serde_json::from_value::<Response>(value) {
            Ok(response) => Incoming::Response(response),
            Err(_) => {
                tracing::warn!("ignored a malformed response from the client");
                Incoming::Ignored
            }
        }
    } else {
        Incoming::Invalid(id, invalid_request("neither a request nor a response"))
    }
}

fn invalid_request(reason: &str) -> Error {
    Error {
        message: format!("Invalid request: {reason}").into(),
        ..Error::invalid_request()
    }
}

/// `"params": null` is what several clients send for `shutdown` and `exit`; tower-lsp accepts
/// only an absent `params` for methods without parameters.
fn normalize(request: Request) -> Request {
    if request.params() != Some(&Value::Null) {
        return request;
    }
    let (method, id, _) = request.into_parts();
    let builder = Request::build(method);
    match id {
        Some(id) => builder.id(id).finish(),
        None => builder.finish(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    use super::*;

    async fn read_all(input: &[u8]) -> Vec<Incoming> {
        let mut reader = Reader::new(input);
        let mut out = Vec::new();
        while let Some(message) = reader.next_message().await.unwrap() {
            out.push(message);
        }
        out
    }

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    #[test]
    fn a_frame_is_the_header_then_the_body_it_counts() {
        for body in ["", "a", &"é\n\"".repeat(5_000)] {
            let response = Response::from_ok(Id::Number(7), Value::from(body));
            let framed = Frame::of(&response).expect("serialisable");
            let json = serde_json::to_string(&response).unwrap();
            assert_eq!(framed.bytes(), frame(&json).as_bytes());
        }
    }

    fn error_code(incoming: &Incoming) -> Option<i64> {
        match incoming {
            Incoming::Invalid(_, e) => Some(e.code.code()),
            _ => None,
        }
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let request = decode(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":[1]}}"#);
        assert!(
            matches!(&request, Incoming::Request(r) if r.method() == "x" && r.id().is_some()),
            "{request:?}"
        );
        let notification = decode(br#"{"jsonrpc":"2.0","method":"y"}"#);
        assert!(
            matches!(&notification, Incoming::Request(r) if r.method() == "y" && r.id().is_none()),
            "{notification:?}"
        );
        for response in [
            r#"{"jsonrpc":"2.0","id":3,"result":{"applied":true}}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"no"}}"#,
        ] {
            let decoded = decode(response.as_bytes());
            assert!(
                matches!(decoded, Incoming::Response(_)),
                "{response}: {decoded:?}"
            );
        }
    }

    #[tokio::test]
    async fn every_malformed_message_is_answered_and_reading_goes_on() {
        // (input before a valid request, expected error code)
        let cases: &[(String, i64)] = &[
            (frame("{oops"), -32700),
            (frame("[1, 2]"), -32600),
            (frame(r#"{"jsonrpc":"2.0","id":7}"#), -32600),
            (frame(r#"{"jsonrpc":"1.0","id":7,"method":"x"}"#), -32600),
            ("Content-Length: many\r\n\r\n".to_string(), -32700),
            ("garbage without headers\r\n\r\n".to_string(), -32700),
            (
                "Content-Lenght: 5\r\n\r\n{\"a\"}".to_string() + "\r\n",
                -32700,
            ),
            (
                "Content-Type: text\r\n\r\n{\"a\":1}\r\n".to_string(),
                -32700,
            ),
        ];
        for (bad, code) in cases {
            let input = format!("{bad}{}", frame(PING));
            let messages = read_all(input.as_bytes()).await;
            assert_eq!(error_code(&messages[0]), Some(*code), "{bad:?}");
            assert!(
                matches!(messages.last(), Some(Incoming::Request(r)) if r.method() == "ping"),
                "{bad:?}: {messages:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_glued_to_the_next_header_resynchronises() {
        let input = format!("Content-Type: x\r\n\r\n{{\"oops\"}}{}", frame(PING));
        let messages = read_all(input.as_bytes()).await;
        assert_eq!(error_code(&messages[0]), Some(-32700));
        assert!(matches!(messages.last(), Some(Incoming::Request(_))));
    }

    #[tokio::test]
    async fn the_id_of_an_invalid_request_is_kept() {
        let input = frame(r#"{"jsonrpc":"1.0","id":"abc","method":"x"}"#);
        let messages = read_all(input.as_bytes()).await;
        assert!(
            matches!(&messages[0], Incoming::Invalid(Id::String(id), _) if id == "abc"),
            "{messages:?}"
        );
    }

    #[tokio::test]
    async fn null_params_become_absent_params() {
        let input = frame(r#"{"jsonrpc":"2.0","id":3,"method":"shutdown","params":null}"#);
        let messages = read_all(input.as_bytes()).await;
        match &messages[0] {
            Incoming::Request(r) => assert_eq!(r.params(), None),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_oversized_message_is_skipped_without_reading_it_into_memory() {
        let length = 1000;
        let mut input = format!("Content-Length: {length}\r\n\r\n").into_bytes();
        input.resize(input.len() + length, b' ');
        input.extend_from_slice(frame(PING).as_bytes());
        let mut reader = Reader::new(&input[..]);
        reader.max_message = 999;
        let mut messages = Vec::new();
        while let Some(message) = reader.next_message().await.unwrap() {
            messages.push(message);
        }
        assert_eq!(error_code(&messages[0]), Some(-32700));
        assert!(matches!(messages.last(), Some(Incoming::Request(_))));
    }

    #[tokio::test]
    async fn parse_errors_never_quote_the_body() {
        let input = frame(r#"{"text": "a secret chapter"#);
        let messages = read_all(input.as_bytes()).await;
        match &messages[0] {
            Incoming::Invalid(_, e) => assert!(!e.message.contains("secret"), "{}", e.message),
            other => panic!("{other:?}"),
        }
    }

    /// Output that takes a few bytes per write and yields in between, like a full pipe, and
    /// says when the first write begins.
    struct SlowPipe {
        written: Arc<Mutex<Vec<u8>>>,
        began: Arc<Notify>,
        ready: bool,
    }

    impl AsyncWrite for SlowPipe {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.began.notify_one();
            if !self.ready {
                self.ready = true;
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            self.ready = false;
            let n = buf.len().min(5);
            self.written.lock().unwrap().extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Answers every request with "pong".
    struct Pong;

    impl Service<Request> for Pong {
        type Response = Option<Response>;
        type Error = ExitedError;
        type Future = future::Ready<Result<Option<Response>, ExitedError>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ExitedError>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request) -> Self::Future {
            let id = request.id().cloned().unwrap_or(Id::Null);
            future::ready(Ok(Some(Response::from_ok(id, Value::from("pong")))))
        }
    }

    #[tokio::test]
    async fn stopping_never_cuts_a_message_in_half() {
        let (mut client, server_input) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, frame(PING).as_bytes())
            .await
            .unwrap();
        let written = Arc::new(Mutex::new(Vec::new()));
        let began = Arc::new(Notify::new());
        let pipe = SlowPipe {
            written: written.clone(),
            began: began.clone(),
            ready: false,
        };
        let (_, socket, _) = crate::lsp::build(crate::lsp::Features::default());
        // Stop as soon as the answer starts going out; the input stays open.
        let stop = async move { began.notified().await };
        serve(server_input, pipe, socket, Pong, 4, stop).await;

        let out = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        let (header, body) = out.split_once("\r\n\r\n").expect("a whole header");
        assert_eq!(header, format!("Content-Length: {}", body.len()), "{out:?}");
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap()["result"],
            "pong"
        );
    }

    #[tokio::test]
    async fn a_truncated_body_ends_the_input() {
        let input = "Content-Length: 50\r\n\r\n{\"jsonrpc\"";
        assert!(read_all(input.as_bytes()).await.is_empty());
    }
}
