//! Logging: `tracing` to stderr (stdout carries LSP) and to a daily-rotated file in
//! `{dataDir}/logs/`, both behind a redaction layer that scrubs every registered secret
//! (DESIGN.md §8).
//!
//! Redaction is the second line of defence: code never logs keys or manuscript text in the first
//! place. Every [`crate::secret::ApiKey`] registers itself here when it is created.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{OnceLock, RwLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};
use zeroize::Zeroizing;

/// What replaces a secret in logs and error texts.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not registered: replacing every "abc" in a log would destroy the
/// log without protecting anything (no real key is that short).
const MIN_SECRET_LEN: usize = 6;

fn secrets() -> &'static RwLock<Vec<Zeroizing<String>>> {
    static SECRETS: OnceLock<RwLock<Vec<Zeroizing<String>>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Registers a value that must never appear in a log line or an error text.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut list = secrets()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !list.iter().any(|s| s.as_str() == secret) {
        list.push(Zeroizing::new(secret.to_string()));
        // Longest first, so a secret that contains another is replaced whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let list = secrets()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    for secret in list.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// A writer that redacts each formatted record before passing it on. The fmt layer writes one
/// whole record per `write_all`, so a secret is never split across two calls.
pub struct RedactingWriter<W: Write>(W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            // Formatted records are UTF-8; anything else is written lossily, still redacted.
            Err(_) => {
                let text = String::from_utf8_lossy(buf);
                self.0.write_all(redact(&text).as_bytes())?
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Wraps a `MakeWriter` so every writer it makes redacts.
#[derive(Clone)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

/// Keeps the file writer flushing; drop it at exit.
pub struct LogGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
    filter: reload::Handle<EnvFilter, Registry>,
}

impl LogGuard {
    /// Applies the `logLevel` setting, unless `STORYTELLER_LOG` overrides it.
    pub fn set_level(&self, level: &str) {
        if std::env::var_os("STORYTELLER_LOG").is_some() {
            return;
        }
        if let Ok(filter) = EnvFilter::try_new(filter_for(level)) {
            let _ = self.filter.reload(filter);
        }
    }
}

fn filter_for(level: &str) -> String {
    // Our crate at the chosen level; dependencies stay at warn so their chatter (hyper, rustls)
    // never floods an author's log.
    format!("warn,storyteller_lsp={level}")
}

/// Log lines that may wait for the log file's writer thread.
const LOG_QUEUE_LINES: usize = 4_096;

/// Sets up logging once per process. `log_dir` is `{dataDir}/logs`; when it cannot be created the
/// server still runs with stderr logging and says so.
pub fn init(log_dir: Option<&Path>, level: &str) -> LogGuard {
    let filter = std::env::var("STORYTELLER_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(filter_for(level)));
    let (filter, handle) = reload::Layer::new(filter);

    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(Redacting(io::stderr))
        .with_ansi(false)
        .with_target(false);

    let mut file_error = None;
    let (file_layer, guard) = match log_dir.map(open_log_dir) {
        Some(Ok(appender)) => {
            // Tracing-appender's default queue of 128,000 lines is allocated (and touched) up
            // front: 4 MB of an idle server's 21 MB. A few thousand lines is ample for a server
            // that logs per request, not per keystroke; when the disk is slower than that, lines
            // are dropped rather than the author's session waiting on it.
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .lossy(true)
                .finish(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(Redacting(writer))
                .with_ansi(false);
            (Some(layer.boxed()), Some(guard))
        }
        Some(Err(e)) => {
            file_error = Some(e);
            (None, None)
        }
        None => (None, None),
    };

    // A second init (tests, `demo` running the server in-process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    if let Some(e) = file_error {
        tracing::warn!("file logging disabled: {e}");
    }
    LogGuard {
        _file: guard,
        filter: handle,
    }
}

fn open_log_dir(dir: &Path) -> Result<tracing_appender::rolling::RollingFileAppender, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("storyteller")
        .filename_suffix("log")
        .max_log_files(7)
        .build(dir)
        .map_err(|e| format!("cannot open a log file in {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_redacted_longest_first() {
        register_secret("tele-secret-ABCDEF");
        register_secret("tele-secret-ABCDEF-longer");
        let text = "key tele-secret-ABCDEF-longer and tele-secret-ABCDEF end";
        assert_eq!(redact(text), "key [REDACTED] and [REDACTED] end");
    }

    #[test]
    fn short_values_are_not_registered() {
        register_secret("abc");
        assert_eq!(redact("abcabc"), "abcabc");
    }

    #[test]
    fn the_writer_redacts_whole_records() {
        register_secret("writer-secret-123456");
        let mut out = Vec::new();
        RedactingWriter(&mut out)
            .write_all(b"line with writer-secret-123456\n")
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "line with [REDACTED]\n");
    }
}
