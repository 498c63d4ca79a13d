//! An incremental splitter for a stream of JSON objects (Yandex's streamed completion), fed in
//! chunks of any size.
//!
//! It finds top-level objects by tracking braces outside strings, so it accepts newline-delimited
//! JSON, blank lines, a JSON array wrapper (`[{…},\n{…}]`) and objects pretty-printed over several
//! lines alike (PROVIDERS.md marks Yandex's framing unconfirmed). It owns framing only: each
//! object comes out as its UTF-8 text, unparsed.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonSeqError {
    #[error("unexpected byte {0:#04x} between JSON objects")]
    Unexpected(u8),
    #[error("JSON object is not valid UTF-8")]
    InvalidUtf8,
    #[error("JSON object longer than {0} bytes")]
    TooLong(usize),
}

const MAX_OBJECT: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct JsonSeqParser {
    /// Bytes of the object in progress (empty between objects).
    buf: Vec<u8>,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl JsonSeqParser {
    pub fn new() -> Self {
        JsonSeqParser::default()
    }

    /// Feeds one chunk; appends every object it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<String>) -> Result<(), JsonSeqError> {
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if self.depth == 0 {
                match b {
                    b'{' => {
                        self.depth = 1;
                        start = i;
                    }
                    b' ' | b'\t' | b'\r' | b'\n' | b'[' | b']' | b',' => {}
                    other => return Err(JsonSeqError::Unexpected(other)),
                }
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let object = if self.buf.is_empty() {
                            chunk[start..=i].to_vec()
                        } else {
                            let mut object = std::mem::take(&mut self.buf);
                            object.extend_from_slice(&chunk[..=i]);
                            object
                        };
                        out.push(String::from_utf8(object).map_err(|_| JsonSeqError::InvalidUtf8)?);
                    }
                }
                _ => {}
            }
        }
        if self.depth > 0 {
            let from = if self.buf.is_empty() { start } else { 0 };
            if self.buf.len() + chunk.len() - from > MAX_OBJECT {
                return Err(JsonSeqError::TooLong(MAX_OBJECT));
            }
            self.buf.extend_from_slice(&chunk[from..]);
        }
        Ok(())
    }

    /// True when the bytes seen so far end inside an object: a body ending now was cut short.
    pub fn mid_object(&self) -> bool {
        self.depth > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Result<Vec<String>, JsonSeqError> {
        let mut p = JsonSeqParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn newline_delimited_objects_with_blank_lines() {
        let got = split(&[b"{\"a\":1}\n\n{\"b\":\"}\\\"{\"}\r\n"]).unwrap();
        assert_eq!(got, vec![r#"{"a":1}"#, r#"{"b":"}\"{"}"#]);
    }

    #[test]
    fn an_array_wrapper_and_pretty_printing_are_accepted() {
        let got = split(&[b"[{\"a\":\n  [1,{}]\n},\n", b"{\"b\":2}]"]).unwrap();
        assert_eq!(got, vec!["{\"a\":\n  [1,{}]\n}", r#"{"b":2}"#]);
    }

    #[test]
    fn an_object_split_across_chunks_is_joined() {
        let got = split(&[b"{\"a\":\"x", b"y\\", b"\"z\"}", b"\n"]).unwrap();
        assert_eq!(got, vec![r#"{"a":"xy\"z"}"#]);
    }

    #[test]
    fn garbage_between_objects_is_an_error() {
        assert_eq!(
            split(&[b"{}\ndata: {}"]),
            Err(JsonSeqError::Unexpected(b'd'))
        );
    }

    #[test]
    fn a_cut_object_is_reported() {
        let mut p = JsonSeqParser::new();
        p.push(b"{\"a\":", &mut Vec::new()).unwrap();
        assert!(p.mid_object());
    }
}
