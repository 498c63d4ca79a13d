//! Between the writing features and the providers: per-provider rate limiting, retries that honour
//! `Retry-After`, failover to the next active provider, and health probes that bring the primary
//! back (DESIGN.md §5).
//!
//! This layer knows providers and time; it knows nothing of LSP, SQLite or the keychain. It reports
//! what happened as typed [`RouterEvent`]s; the LSP layer turns them into the texts of DESIGN.md §7.
//!
//! - [`limiter`]: a fair token bucket per provider (pacing above 90 %, vendor hints only tighten).
//! - [`retry`]: the retry policy as a pure function of one failure.
//! - [`router`]: the [`Router`] — order, failover, recoveries, offline detection, events, status.
//! - [`health`]: the probe loop that brings a failed primary back.
//!
//! Time is tokio's (`tokio::time`), so tests run on the paused clock; the time scales that tests
//! over real sockets must shrink instead (rate window, probe intervals, backoff base) are fields of
//! [`RouterOptions`] and [`RetryPolicy`].
//!
//! Invariants: no lock is held across `.await`; nothing is sent after a request is cancelled; no
//! key and no prompt text is logged.

pub mod health;
pub mod limiter;
pub mod retry;
pub mod router;

use std::time::Duration;

use serde::Serialize;

use crate::config::Settings;
use crate::providers::ProviderKind;

pub use limiter::{AcquireError, BucketSnapshot, Limiter, Rate, TokenBucket};
pub use retry::{Decision, Failure, RetryPolicy};
pub use router::{
    Attempt, AttemptOutcome, Health, KeyUsed, ProviderFactory, ProviderStatus, RateLimitStatus,
    RouteEntry, RouteError, Routed, Router, RouterOptions, RouterState, RouterStatus,
};

/// A configured provider as the router names it in events: the row id and what to call it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRef {
    pub id: i64,
    #[serde(rename = "provider")]
    pub kind: ProviderKind,
    pub display_name: String,
}

/// What the router observed, once per state change (never once per request).
#[derive(Debug, Clone, PartialEq)]
pub enum RouterEvent {
    /// A request waits on a rate limit (local bucket or the vendor's `Retry-After`).
    RateLimitWait {
        provider: ProviderRef,
        wait: Duration,
    },
    /// Routing moved from `from` to `to` for the rest of the session (sticky).
    FailedOver { from: ProviderRef, to: ProviderRef },
    /// The primary answered a health probe; routing returned to it.
    Recovered { provider: ProviderRef },
    /// Every active provider failed for one request.
    AllFailed,
    /// Every provider failed with network errors: the machine looks offline.
    Offline,
    /// A request or probe succeeded after `Offline`.
    Online,
    /// A provider rejected its key (the user key; a system key may have been tried next).
    KeyInvalid { provider: ProviderRef },
    /// A key that answered earlier in this session was rejected: revoked mid-use (DESIGN.md §7,
    /// "key revoked mid-use").
    KeyRevoked { provider: ProviderRef },
    /// The provider's quota is exhausted.
    QuotaExhausted { provider: ProviderRef },
    /// `provider` failed and the router tries the next provider now (once per failover episode).
    TryingBackup { provider: ProviderRef },
    /// `provider` uses plain HTTP to `host`, allowed by its `allowInsecureHttp` option.
    InsecureHttpAllowed { provider: ProviderRef, host: String },
    /// `provider` uses plain HTTP to `host` without that option: skipped, nothing sent to it.
    InsecureHttpRefused { provider: ProviderRef, host: String },
    /// The configured model was not found; the provider's default model was used instead.
    ModelFallback {
        provider: ProviderRef,
        missing: String,
        default_model: String,
    },
}

/// A project's answer to "Send to {provider} (outside the EU)?", asked once before a failover
/// from an EU-resident provider would send manuscript text outside the EU (`euOnly` off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EuConsent {
    /// Not asked (or not answered) yet: text stays in the EU meanwhile.
    #[default]
    Unanswered,
    /// "Allow": failover may go outside the EU.
    Allowed,
    /// "Keep EU only": the project routes as with `euOnly`.
    KeepEuOnly,
}

impl EuConsent {
    pub fn as_str(self) -> &'static str {
        match self {
            EuConsent::Unanswered => "unanswered",
            EuConsent::Allowed => "allowed",
            EuConsent::KeepEuOnly => "keepEuOnly",
        }
    }

    pub fn parse(text: &str) -> Option<EuConsent> {
        [
            EuConsent::Allowed,
            EuConsent::KeepEuOnly,
            EuConsent::Unanswered,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }

    /// How the status text says it.
    pub fn text(self) -> &'static str {
        use crate::messages::residency;
        match self {
            EuConsent::Unanswered => residency::CONSENT_UNANSWERED,
            EuConsent::Allowed => residency::CONSENT_ALLOWED,
            EuConsent::KeepEuOnly => residency::CONSENT_EU_ONLY,
        }
    }
}

/// How much waiting a request can afford.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Inline completion: the whole request, retries included, fits in this time; no long waits,
    /// fail over fast.
    Interactive(Duration),
    /// A user-triggered action: full retries within this total time.
    Action(Duration),
}

impl Budget {
    /// The budget of an inline completion: `inline.timeoutMs`.
    pub fn inline(settings: &Settings) -> Self {
        Budget::Interactive(settings.inline_timeout())
    }

    /// The budget of a code action: `actions.timeoutMs`.
    pub fn action(settings: &Settings) -> Self {
        Budget::Action(settings.action_timeout())
    }

    pub fn total(self) -> Duration {
        match self {
            Budget::Interactive(d) | Budget::Action(d) => d,
        }
    }

    pub fn is_interactive(self) -> bool {
        matches!(self, Budget::Interactive(_))
    }
}
