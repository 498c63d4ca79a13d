//! When to try a provider again, when to move on, and when to stop (DESIGN.md §5).
//!
//! Owns: the retry policy as a pure function of one failure and the request's situation. It does
//! no I/O, reads no clock and draws no random numbers itself — the caller passes the elapsed time
//! and a jitter sample — so every rule is testable by a table.
//!
//! Must never: retry an error that a retry cannot fix (a bad key, an exhausted quota, a bad
//! request, a missing model, a cancellation), wait longer than the request's budget allows, or
//! keep an interactive request waiting when a healthy backup could answer.

use std::time::Duration;

use crate::providers::{ErrorKind, ProviderError};

use super::Budget;

/// What to do after a provider failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the same provider again after this wait.
    RetryAfter(Duration),
    /// This provider cannot serve the request now; try the next one.
    FailOver,
    /// Stop: no provider can fix this (a malformed request, a cancellation).
    GiveUp,
}

/// The retry rules; [`RetryPolicy::default`] is DESIGN.md §5's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries per provider when no healthy backup exists (3).
    pub max_retries: u32,
    /// Retries per provider for an outage (unavailable, network, timeout) when a healthy backup
    /// exists (1): the author does not wait through the full backoff. A refused connection gets
    /// none when a backup exists.
    pub max_retries_with_backup: u32,
    /// The first backoff (1 s); each further retry doubles it (2 s, 4 s).
    pub base_delay: Duration,
    /// The lowest share of the backoff that jitter can leave, in percent (75, as the OpenAI and
    /// Anthropic SDKs do): concurrent requests spread out instead of retrying in lockstep.
    pub jitter_floor_percent: u32,
    /// The longest single wait an interactive request accepts (1 s); a longer one fails over.
    pub interactive_max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            max_retries_with_backup: 1,
            base_delay: Duration::from_secs(1),
            jitter_floor_percent: 75,
            interactive_max_wait: Duration::from_secs(1),
        }
    }
}

/// One failure, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub error: &'a ProviderError,
    /// Failed attempts on this provider for this request so far, this one included (1 = first).
    pub attempt: u32,
    pub budget: Budget,
    /// Time spent on the request so far.
    pub elapsed: Duration,
    /// Whether a provider not known to be down is left to fail over to.
    pub has_backup: bool,
    /// A uniform sample in [0, 1) that places the backoff within its jitter range.
    pub jitter: f64,
}

impl RetryPolicy {
    /// Decides what follows one failure.
    pub fn decide(&self, failure: Failure<'_>) -> Decision {
        let error = failure.error;
        let kind = error.kind();
        if !self.is_retryable(error) {
            return match kind {
                // Another provider would get the same request (or the author stopped it).
                ErrorKind::BadRequest | ErrorKind::Cancelled => Decision::GiveUp,
                _ => Decision::FailOver,
            };
        }

        // A refused connection is a definitive answer (nothing listens there): a retry a second
        // later rarely finds the provider back, the backup answers now, and the health probe
        // notices the return. "After at most one retry" (DESIGN.md §5) allows none.
        let refused = error.detail().is_some_and(|d| d.connection_refused);
        let limit = match failure.budget {
            Budget::Interactive(_) if failure.has_backup => 0,
            _ if failure.has_backup && refused => 0,
            _ if failure.has_backup && is_outage(kind) => self.max_retries_with_backup,
            _ => self.max_retries,
        };
        if failure.attempt > limit {
            return Decision::FailOver;
        }

        let wait = match error.retry_after() {
            // The vendor said when; waiting less would only earn another 429.
            Some(after) => after,
            None => self.backoff(failure.attempt, failure.jitter),
        };
        let remaining = failure.budget.total().saturating_sub(failure.elapsed);
        if wait >= remaining {
            return Decision::FailOver;
        }
        if matches!(failure.budget, Budget::Interactive(_)) && wait > self.interactive_max_wait {
            return Decision::FailOver;
        }
        Decision::RetryAfter(wait)
    }

    /// Whether trying the same provider again can help at all.
    fn is_retryable(&self, error: &ProviderError) -> bool {
        let kind = error.kind();
        match kind {
            // About the account or the author, not this request: no header changes that.
            ErrorKind::Cancelled
            | ErrorKind::InvalidKey
            | ErrorKind::QuotaExhausted
            | ErrorKind::ModelNotFound => return false,
            _ => {}
        }
        // `x-should-retry` overrides the status, as the vendors' own SDKs do.
        if let Some(should) = error.detail().and_then(|d| d.should_retry) {
            return should;
        }
        match kind {
            ErrorKind::Network
            | ErrorKind::Timeout
            | ErrorKind::Unavailable
            | ErrorKind::RateLimited => true,
            // Mapped as a bad request or a garbled answer, but the status says "try again".
            ErrorKind::BadRequest | ErrorKind::Protocol => {
                error.status().is_some_and(|s| s == 408 || s >= 500)
            }
            _ => false,
        }
    }

    /// The backoff before retry number `attempt` (1-based): base · 2^(attempt − 1), scaled into
    /// [floor %, 100 %] by `jitter`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        let full = self.base_delay.saturating_mul(1 << doublings);
        let floor = f64::from(self.jitter_floor_percent.min(100)) / 100.0;
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        full.mul_f64(floor + (1.0 - floor) * jitter)
    }
}

/// A provider-side outage, as opposed to a rate limit: a backup serves the author sooner.
fn is_outage(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Unavailable | ErrorKind::Network | ErrorKind::Timeout
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Detail;

    const ACTION: Budget = Budget::Action(Duration::from_secs(30));
    const INLINE: Budget = Budget::Interactive(Duration::from_secs(5));

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn detail() -> Detail {
        Detail::new("scripted")
    }

    fn error(kind: ErrorKind) -> ProviderError {
        match kind {
            ErrorKind::InvalidKey => ProviderError::InvalidKey(detail()),
            ErrorKind::QuotaExhausted => ProviderError::QuotaExhausted(detail()),
            ErrorKind::RateLimited => ProviderError::RateLimited {
                retry_after: None,
                detail: detail().with_status(429),
            },
            ErrorKind::Unavailable => ProviderError::Unavailable(detail().with_status(503)),
            ErrorKind::Network => ProviderError::Network(detail()),
            ErrorKind::Timeout => ProviderError::Timeout(detail()),
            ErrorKind::ModelNotFound => ProviderError::ModelNotFound {
                model: "m".into(),
                detail: detail(),
            },
            ErrorKind::BadRequest => ProviderError::BadRequest(detail().with_status(400)),
            ErrorKind::Cancelled => ProviderError::Cancelled,
            ErrorKind::Protocol => ProviderError::Protocol {
                detail: detail(),
                partial: None,
            },
        }
    }

    fn decide(error: &ProviderError, attempt: u32, budget: Budget, backup: bool) -> Decision {
        RetryPolicy::default().decide(Failure {
            error,
            attempt,
            budget,
            elapsed: Duration::ZERO,
            has_backup: backup,
            jitter: 1.0,
        })
    }

    #[test]
    fn each_error_kind_gets_its_first_decision() {
        use Decision::*;
        use ErrorKind::*;
        // (kind, decision without backup, decision with a healthy backup) — action budget.
        let table = [
            (Network, RetryAfter(secs(1.0)), RetryAfter(secs(1.0))),
            (Timeout, RetryAfter(secs(1.0)), RetryAfter(secs(1.0))),
            (Unavailable, RetryAfter(secs(1.0)), RetryAfter(secs(1.0))),
            (RateLimited, RetryAfter(secs(1.0)), RetryAfter(secs(1.0))),
            (InvalidKey, FailOver, FailOver),
            (QuotaExhausted, FailOver, FailOver),
            (ModelNotFound, FailOver, FailOver),
            (Protocol, FailOver, FailOver),
            (BadRequest, GiveUp, GiveUp),
            (Cancelled, GiveUp, GiveUp),
        ];
        for (kind, alone, with_backup) in table {
            let e = error(kind);
            assert_eq!(decide(&e, 1, ACTION, false), alone, "{kind} without backup");
            assert_eq!(
                decide(&e, 1, ACTION, true),
                with_backup,
                "{kind} with backup"
            );
        }
    }

    #[test]
    fn three_retries_back_off_one_two_four_seconds_then_fail_over() {
        let e = error(ErrorKind::Unavailable);
        let waits: Vec<_> = (1..=4).map(|a| decide(&e, a, ACTION, false)).collect();
        assert_eq!(
            waits,
            vec![
                Decision::RetryAfter(secs(1.0)),
                Decision::RetryAfter(secs(2.0)),
                Decision::RetryAfter(secs(4.0)),
                Decision::FailOver,
            ]
        );
    }

    #[test]
    fn an_outage_with_a_healthy_backup_fails_over_after_one_retry() {
        for kind in [
            ErrorKind::Unavailable,
            ErrorKind::Network,
            ErrorKind::Timeout,
        ] {
            let e = error(kind);
            assert!(matches!(
                decide(&e, 1, ACTION, true),
                Decision::RetryAfter(_)
            ));
            assert_eq!(decide(&e, 2, ACTION, true), Decision::FailOver, "{kind}");
        }
        // A rate limit is not an outage: the full retries still apply.
        let limited = error(ErrorKind::RateLimited);
        assert!(matches!(
            decide(&limited, 3, ACTION, true),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn a_refused_connection_fails_over_at_once_only_when_a_backup_exists() {
        let refused = ProviderError::Network(Detail {
            connection_refused: true,
            ..detail()
        });
        assert_eq!(decide(&refused, 1, ACTION, true), Decision::FailOver);
        // Alone, the full retries still apply: the local server may be starting.
        let alone: Vec<_> = (1..=4)
            .map(|a| decide(&refused, a, ACTION, false))
            .collect();
        assert_eq!(
            alone,
            vec![
                Decision::RetryAfter(secs(1.0)),
                Decision::RetryAfter(secs(2.0)),
                Decision::RetryAfter(secs(4.0)),
                Decision::FailOver,
            ]
        );
        // Any other network failure keeps its one retry before the failover.
        assert!(matches!(
            decide(&error(ErrorKind::Network), 1, ACTION, true),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn jitter_keeps_the_backoff_between_three_quarters_and_all_of_it() {
        let policy = RetryPolicy::default();
        for attempt in 1..=3 {
            let full = secs(f64::from(1u32 << (attempt - 1)));
            assert_eq!(policy.backoff(attempt, 1.0), full);
            assert_eq!(policy.backoff(attempt, 0.0), full.mul_f64(0.75));
            let mid = policy.backoff(attempt, 0.5);
            assert!(mid > full.mul_f64(0.75) && mid < full);
        }
        assert_eq!(policy.backoff(1, f64::NAN), secs(1.0));
    }

    #[test]
    fn retry_after_is_honoured_instead_of_the_backoff() {
        let e = ProviderError::RateLimited {
            retry_after: Some(secs(2.0)),
            detail: detail().with_status(429),
        };
        assert_eq!(
            decide(&e, 1, ACTION, false),
            Decision::RetryAfter(secs(2.0))
        );
    }

    #[test]
    fn a_retry_after_beyond_the_remaining_budget_fails_over_now() {
        let e = ProviderError::RateLimited {
            retry_after: Some(secs(20.0)),
            detail: detail().with_status(429),
        };
        let policy = RetryPolicy::default();
        let at = |elapsed: f64| {
            policy.decide(Failure {
                error: &e,
                attempt: 1,
                budget: ACTION,
                elapsed: secs(elapsed),
                has_backup: false,
                jitter: 1.0,
            })
        };
        assert_eq!(at(5.0), Decision::RetryAfter(secs(20.0)));
        assert_eq!(at(10.0), Decision::FailOver);
        assert_eq!(at(29.0), Decision::FailOver);
    }

    #[test]
    fn should_retry_header_overrides_the_status() {
        let mut no = error(ErrorKind::Unavailable);
        if let ProviderError::Unavailable(d) = &mut no {
            d.should_retry = Some(false);
        }
        assert_eq!(decide(&no, 1, ACTION, false), Decision::FailOver);

        let yes = ProviderError::BadRequest(Detail {
            should_retry: Some(true),
            ..detail().with_status(409)
        });
        assert_eq!(
            decide(&yes, 1, ACTION, false),
            Decision::RetryAfter(secs(1.0))
        );

        // A retry cannot fix a bad key, whatever the header says.
        let key = ProviderError::InvalidKey(Detail {
            should_retry: Some(true),
            ..detail().with_status(401)
        });
        assert_eq!(decide(&key, 1, ACTION, false), Decision::FailOver);
    }

    #[test]
    fn status_408_and_5xx_retry_even_when_mapped_to_other_kinds() {
        let timeout = ProviderError::BadRequest(detail().with_status(408));
        let gateway = ProviderError::Protocol {
            detail: detail().with_status(502),
            partial: None,
        };
        for e in [timeout, gateway] {
            assert!(matches!(
                decide(&e, 1, ACTION, false),
                Decision::RetryAfter(_)
            ));
        }
    }

    #[test]
    fn interactive_requests_fail_over_at_once_when_a_backup_exists() {
        for kind in [
            ErrorKind::Network,
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::RateLimited,
        ] {
            assert_eq!(
                decide(&error(kind), 1, INLINE, true),
                Decision::FailOver,
                "{kind}"
            );
        }
    }

    #[test]
    fn interactive_requests_without_backup_only_take_short_waits() {
        let e = error(ErrorKind::Unavailable);
        assert_eq!(
            decide(&e, 1, INLINE, false),
            Decision::RetryAfter(secs(1.0))
        );
        // The 2 s backoff is a long wait for ghost text.
        assert_eq!(decide(&e, 2, INLINE, false), Decision::FailOver);
        let slow = ProviderError::RateLimited {
            retry_after: Some(secs(3.0)),
            detail: detail(),
        };
        assert_eq!(decide(&slow, 1, INLINE, false), Decision::FailOver);
    }
}
