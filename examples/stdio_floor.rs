//! The floor under `benches/inline.rs`: the least a language server can do to turn an inline
//! completion request into one provider call and back, measured by the same bench, on the same
//! pipes, against the same simulator. Not a product: a measuring instrument.
//!
//! One thread, blocking reads and writes, no async runtime, no document, no context, no prompt
//! template, no cleaning: it reads a frame from stdin, sends a fixed chat request on one
//! keep-alive TCP connection to `STORYTELLER_BENCH_ENDPOINT` (set by the bench), reads the
//! answer, and writes the model's text back as the one suggestion. What it takes over stdio is
//! the cost of the hops themselves (two pipe hops and two loopback hops, each a wake-up of another
//! process), which no server doing the work can go under.
//!
//! `cargo build --release --example stdio_floor`, then
//! `STORYTELLER_BENCH_BIN=target/release/examples/stdio_floor cargo bench --bench inline`
//! (`scripts/bench-report` does both and prints its row beside the server's).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use serde_json::{Value, json};

/// The size of the prompt sent: about what the server sends for ghost text on the bench's
/// manuscript (its system prompt, the text before the cursor and the instructions).
const PROMPT_BYTES: usize = 4_000;

fn main() {
    if let Err(e) = serve() {
        eprintln!("stdio_floor: {e}");
        std::process::exit(1);
    }
}

fn serve() -> std::io::Result<()> {
    let endpoint = std::env::var("STORYTELLER_BENCH_ENDPOINT").map_err(|_| {
        std::io::Error::other(
            "STORYTELLER_BENCH_ENDPOINT names no endpoint (http://host:port/path)",
        )
    })?;
    let key = std::env::var("DEEPSEEK_API_KEY").unwrap_or_default();
    let mut provider = Provider::new(&endpoint, &key)?;
    let stdin = std::io::stdin();
    let mut input = BufReader::with_capacity(1 << 16, stdin.lock());
    let stdout = std::io::stdout();
    let mut output = stdout.lock();
    while let Some(frame) = read_frame(&mut input)? {
        let message: Value = serde_json::from_slice(&frame).map_err(std::io::Error::other)?;
        let Some(id) = message.get("id").cloned() else {
            if message["method"] == "exit" {
                return Ok(());
            }
            continue; // A notification: didOpen, didChange… the floor keeps no document.
        };
        let reply = match message["method"].as_str().unwrap_or_default() {
            "initialize" => json!({"jsonrpc": "2.0", "id": id, "result": {"capabilities": {
                "textDocumentSync": 2, "inlineCompletionProvider": {}}}}),
            "textDocument/inlineCompletion" => {
                let text = provider.complete()?;
                json!({"jsonrpc": "2.0", "id": id, "result": {"items": [{"insertText": text}]}})
            }
            "shutdown" | "workspace/executeCommand" => {
                json!({"jsonrpc": "2.0", "id": id, "result": null})
            }
            _ => json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": -32601, "message": "method not found"}}),
        };
        let body = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        output.write_all(&frame)?;
        output.flush()?;
    }
    Ok(())
}

/// One LSP frame's body, or `None` at the end of the input.
fn read_frame(input: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let Some(length) = read_headers(input)?.content_length else {
        return Ok(None);
    };
    let mut body = vec![0; length];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

#[derive(Default)]
struct Headers {
    content_length: Option<usize>,
    chunked: bool,
}

/// Reads header lines up to the blank one (HTTP's status line is read and ignored like any other
/// line without a colon).
fn read_headers(input: &mut impl BufRead) -> std::io::Result<Headers> {
    let mut headers = Headers::default();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(headers);
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                headers.content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                headers.chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection to the simulator's chat endpoint.
struct Provider {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Vec<u8>,
}

impl Provider {
    fn new(endpoint: &str, key: &str) -> std::io::Result<Provider> {
        let rest = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| std::io::Error::other("the floor speaks plain HTTP to loopback"))?;
        let (host, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        let body = serde_json::to_vec(&json!({
            "model": "deepseek-flash",
            "messages": [
                {"role": "system", "content": "Continue the author's scene."},
                {"role": "user", "content": "w".repeat(PROMPT_BYTES)},
            ],
            "max_tokens": 60,
            "temperature": 0.7,
            "stream": false,
        }))
        .map_err(std::io::Error::other)?;
        let mut request = format!(
            "POST {prefix}/chat/completions HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        Ok(Provider {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            request,
        })
    }

    /// Sends the chat request and returns the model's text.
    fn complete(&mut self) -> std::io::Result<String> {
        self.writer.write_all(&self.request)?;
        let headers = read_headers(&mut self.reader)?;
        let body = if headers.chunked {
            self.read_chunks()?
        } else {
            let mut body = vec![0; headers.content_length.unwrap_or(0)];
            self.reader.read_exact(&mut body)?;
            body
        };
        let answer: Value = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
        Ok(answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    fn read_chunks(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(std::io::Error::other)?;
            let start = body.len();
            body.resize(start + size + 2, 0); // The chunk and its CRLF.
            self.reader.read_exact(&mut body[start..])?;
            body.truncate(start + size);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}
