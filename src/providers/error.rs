//! The one error taxonomy every provider maps its failures into (DESIGN.md §5, PROVIDERS.md).
//!
//! Invariant: nothing in a `ProviderError` — its Display, its Debug, its detail message — ever
//! contains an API key or text of the request or response (manuscript): vendor messages are not
//! kept, only their codes; our own descriptions pass through [`crate::telemetry::redact`].

use std::fmt;
use std::time::Duration;

/// What a vendor told us about a failure, kept for logs and support (never shown raw to authors;
/// `messages.rs` holds what authors read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// HTTP status, when the failure came with one.
    pub status: Option<u16>,
    /// Our description of the failure: for a vendor's error body, its code and type only — never
    /// the vendor's free text, which can quote the manuscript (`classify::describe_vendor_error`).
    pub message: String,
    /// The vendor's request id (`request_id`, `x-request-id`), which helps their support.
    pub request_id: Option<String>,
    /// The vendor's `x-should-retry` header, which overrides the status code when present.
    pub should_retry: Option<bool>,
    /// The connection was refused: nothing listens at the endpoint, so the request never reached
    /// the vendor. A definitive answer, unlike a timeout, a reset or an unreachable network.
    pub connection_refused: bool,
}

impl Detail {
    pub fn new(message: impl Into<String>) -> Self {
        Detail {
            message: message.into(),
            ..Detail::default()
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "HTTP {status}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("invalid API key ({0})")]
    InvalidKey(Detail),
    #[error("quota exhausted ({0})")]
    QuotaExhausted(Detail),
    #[error("rate limited{} ({detail})", fmt_retry_after(*.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        detail: Detail,
    },
    #[error("provider unavailable ({0})")]
    Unavailable(Detail),
    #[error("network error ({0})")]
    Network(Detail),
    #[error("timed out ({0})")]
    Timeout(Detail),
    #[error("model `{model}` not found ({detail})")]
    ModelNotFound { model: String, detail: Detail },
    #[error("bad request ({0})")]
    BadRequest(Detail),
    #[error("cancelled")]
    Cancelled,
    /// The response did not follow the wire format (malformed JSON, a stream that ended without its
    /// terminal marker). `partial` keeps text already received so the caller can still use it.
    #[error("protocol error ({detail})")]
    Protocol {
        detail: Detail,
        partial: Option<String>,
    },
}

fn fmt_retry_after(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {:.3}s", d.as_secs_f64()),
        None => String::new(),
    }
}

/// The fieldless kind of a [`ProviderError`], for tables, matching and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidKey,
    QuotaExhausted,
    RateLimited,
    Unavailable,
    Network,
    Timeout,
    ModelNotFound,
    BadRequest,
    Cancelled,
    Protocol,
}

impl ErrorKind {
    /// The stable name used in logs and in the `kind` field of command errors.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalidKey",
            ErrorKind::QuotaExhausted => "quotaExhausted",
            ErrorKind::RateLimited => "rateLimited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ModelNotFound => "modelNotFound",
            ErrorKind::BadRequest => "badRequest",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Protocol => "protocol",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::InvalidKey(_) => ErrorKind::InvalidKey,
            ProviderError::QuotaExhausted(_) => ErrorKind::QuotaExhausted,
            ProviderError::RateLimited { .. } => ErrorKind::RateLimited,
            ProviderError::Unavailable(_) => ErrorKind::Unavailable,
            ProviderError::Network(_) => ErrorKind::Network,
            ProviderError::Timeout(_) => ErrorKind::Timeout,
            ProviderError::ModelNotFound { .. } => ErrorKind::ModelNotFound,
            ProviderError::BadRequest(_) => ErrorKind::BadRequest,
            ProviderError::Cancelled => ErrorKind::Cancelled,
            ProviderError::Protocol { .. } => ErrorKind::Protocol,
        }
    }

    pub fn detail(&self) -> Option<&Detail> {
        match self {
            ProviderError::InvalidKey(d)
            | ProviderError::QuotaExhausted(d)
            | ProviderError::Unavailable(d)
            | ProviderError::Network(d)
            | ProviderError::Timeout(d)
            | ProviderError::BadRequest(d) => Some(d),
            ProviderError::RateLimited { detail, .. }
            | ProviderError::ModelNotFound { detail, .. }
            | ProviderError::Protocol { detail, .. } => Some(detail),
            ProviderError::Cancelled => None,
        }
    }

    /// The vendor's retry hint, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.detail().and_then(|d| d.status)
    }
}
