//! An incremental Server-Sent Events parser (the WHATWG `text/event-stream` rules), shared by every
//! SSE vendor. Bytes go in as they arrive, in chunks of any size; complete events come out.
//!
//! Written here rather than taken from `eventsource-stream`: vendors need a push parser usable
//! outside a `Stream` (the stream driver, the simulator's tests and the bench all feed it), and
//! we must know whether the body ended in the middle of an event (a truncation signal) where the
//! spec says to drop it silently. It owns framing only; it never looks inside `data`.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the server sent none (the spec's "message").
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("event stream is not valid UTF-8")]
    InvalidUtf8,
    #[error("event stream line longer than {0} bytes")]
    LineTooLong(usize),
}

/// A line longer than this is not a plausible vendor event; refusing it bounds memory when a
/// server sends garbage without newlines.
const MAX_LINE: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseParser {
    /// The unfinished line carried over from the previous chunk.
    partial: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    /// Some field line was seen since the last dispatch (for [`SseParser::mid_event`]).
    pending_fields: bool,
    started: bool,
    /// A line that starts with `{` is a whole JSON event of its own (see
    /// [`SseParser::with_bare_json_lines`]).
    bare_json_lines: bool,
}

impl SseParser {
    pub fn new() -> Self {
        SseParser::default()
    }

    /// A parser that also takes a line starting with `{` as one whole event whose data is that
    /// line. Gemini's SDK (python-genai) reads its streams so: an error object can come as a bare
    /// JSON line among the `data:` lines. Plain SSE would ignore it as an unknown field.
    pub fn with_bare_json_lines() -> Self {
        SseParser {
            bare_json_lines: true,
            ..SseParser::default()
        }
    }

    /// The body ended: an unfinished last line counts as a whole line, and fields not yet
    /// dispatched form a last event, which is appended to `out`. Vendors' own fixtures end their
    /// last event at the end of the body without the blank line; whether that event is whole is
    /// for the caller to judge from its data (a cut JSON line does not parse).
    pub fn end(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.after_cr = false;
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out)?;
        }
        self.line(b"", out)
    }

    /// Feeds one chunk; appends every event it completes to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if chunk.is_empty() {
            // Nothing arrived: a `\r` that ended the previous chunk still waits for its `\n`.
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let line_end = pos;
            let mut next = pos + 1;
            if chunk[pos] == b'\r' {
                match chunk.get(pos + 1) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.partial.is_empty() {
                self.line(&chunk[..line_end], out)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[..line_end]);
                self.line(&line, out)?;
            }
            chunk = &chunk[next..];
        }
        if self.partial.len() + chunk.len() > MAX_LINE {
            return Err(SseError::LineTooLong(MAX_LINE));
        }
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    /// True when the bytes seen so far end inside an event (an unfinished line or fields not yet
    /// dispatched by a blank line): a body ending now was cut short.
    pub fn mid_event(&self) -> bool {
        !self.partial.is_empty() || self.pending_fields
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the `\n` after the last data line
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data,
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            self.pending_fields = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment or keep-alive
        }
        if self.bare_json_lines && line.starts_with('{') {
            out.push(SseEvent {
                event: String::new(),
                data: line.to_string(),
            });
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        self.pending_fields = true;
        match field {
            "event" => {
                self.event.clear();
                self.event.push_str(value);
            }
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            // `id` and `retry` matter to browsers reconnecting, not to one completion.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).unwrap();
        }
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn fields_comments_and_multi_line_data() {
        let got = parse_all(&[b": keep-alive\n\nevent: ping\ndata: {}\n\ndata: a\ndata:b\n\n"]);
        assert_eq!(got, vec![ev("ping", "{}"), ev("", "a\nb")]);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let got = parse_all(&[b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"]);
        assert_eq!(got, vec![ev("", "x"), ev("", "y")]);
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_keeps_them_one_line_end() {
        // Found by `tests/prop_streaming.rs`: the empty chunk used to forget the pending `\r`,
        // so the `\n` became a blank line that split one event in two.
        let got = parse_all(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(got, vec![ev("", "a\nb")]);
    }

    #[test]
    fn lone_cr_ends_lines_too() {
        let got = parse_all(&[b"data: x\r\rdata: y\r\r"]);
        assert_eq!(got, vec![ev("", "x"), ev("", "y")]);
    }

    #[test]
    fn an_event_without_its_blank_line_is_reported_as_mid_event() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(b"data: complete\n\ndata: cut", &mut out).unwrap();
        assert_eq!(out, vec![ev("", "complete")]);
        assert!(p.mid_event());
        p.push(b"\n", &mut out).unwrap();
        assert!(
            p.mid_event(),
            "a data line without the blank line is still open"
        );
        p.push(b"\n", &mut out).unwrap();
        assert!(!p.mid_event());
    }

    #[test]
    fn the_end_of_the_body_ends_the_last_line_and_event() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(b"data: a\n\nevent: stop\ndata: {}", &mut out)
            .unwrap();
        assert_eq!(out, vec![ev("", "a")]);
        p.end(&mut out).unwrap();
        assert_eq!(out, vec![ev("", "a"), ev("stop", "{}")]);
        assert!(!p.mid_event());
        p.end(&mut out).unwrap();
        assert_eq!(out.len(), 2, "nothing more to dispatch");
    }

    #[test]
    fn bare_json_lines_are_events_only_when_asked_for() {
        let body: &[u8] = b"{\"a\":1}\ndata: {\"b\":2}\n\n{\"c\":3}\n";
        assert_eq!(parse_all(&[body]), vec![ev("", "{\"b\":2}")]);
        let mut p = SseParser::with_bare_json_lines();
        let mut out = Vec::new();
        p.push(body, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                ev("", "{\"a\":1}"),
                ev("", "{\"b\":2}"),
                ev("", "{\"c\":3}")
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut p = SseParser::new();
        assert_eq!(
            p.push(b"data: \xff\n\n", &mut Vec::new()),
            Err(SseError::InvalidUtf8)
        );
    }

    #[test]
    fn a_leading_bom_is_ignored() {
        let got = parse_all(&["\u{feff}data: x\n\n".as_bytes()]);
        assert_eq!(got, vec![ev("", "x")]);
    }
}
