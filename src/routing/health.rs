//! Health probes: while routing is failed over (or offline), test the preferred provider every
//! `healthCheckSecs` with its cheap connection test, so that routing returns as soon as it is
//! back (DESIGN.md §5).
//!
//! Owns: the probe loop — when to sleep, when to probe, when to stop. What a probe result means
//! (route back, `Recovered`, `Online`) belongs to the router, which implements [`ProbeSubject`].
//!
//! Must never: probe when nothing is failed over or offline, keep a router alive on its own
//! (it holds only a weak reference), or hold a lock across a probe.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::providers::{AiProvider, ConnectionReport, ErrorKind, ProviderError};

/// One provider to probe.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub id: i64,
    pub provider: Arc<dyn AiProvider>,
    /// The longest a probe may take before it counts as a timeout.
    pub timeout: Duration,
}

/// What a probe loop asks of the thing it keeps healthy (the router).
pub trait ProbeSubject: Send + Sync + 'static {
    /// How long to wait before the next probe.
    fn probe_interval(&self) -> Duration;
    /// The provider to probe now, or `None` when nothing needs probing any more: the loop then
    /// ends (and the subject forgets `stop`, so that a later failover starts a new loop).
    fn probe_target(&self, stop: &CancellationToken) -> Option<ProbeTarget>;
    /// The outcome of probing `target`.
    fn record_probe(&self, target: &ProbeTarget, outcome: Result<ConnectionReport, ProviderError>);
}

/// Starts a probe loop on the current tokio runtime. Returns `false` (and starts nothing) outside
/// a runtime. The loop ends when `stop` fires, when the subject is dropped, or when the subject
/// has nothing left to probe.
pub fn spawn_probes<S: ProbeSubject>(subject: Weak<S>, stop: CancellationToken) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no async runtime: health probes not started");
        return false;
    };
    runtime.spawn(probe_loop(subject, stop));
    true
}

async fn probe_loop<S: ProbeSubject>(subject: Weak<S>, stop: CancellationToken) {
    loop {
        let Some(interval) = subject.upgrade().map(|s| s.probe_interval()) else {
            return;
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(subject) = subject.upgrade() else {
            return;
        };
        let Some(target) = subject.probe_target(&stop) else {
            return;
        };
        let outcome = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            outcome = tokio::time::timeout(target.timeout, target.provider.test_connection()) => {
                outcome.unwrap_or_else(|_| Err(ProviderError::Timeout(
                    crate::providers::Detail::new("health probe timed out"),
                )))
            }
        };
        match &outcome {
            Ok(_) => tracing::info!(provider_id = target.id, "health probe succeeded"),
            Err(e) if e.kind() != ErrorKind::Cancelled => tracing::info!(
                provider_id = target.id,
                kind = %e.kind(),
                status = ?e.status(),
                "health probe failed; probing again later"
            ),
            Err(_) => {}
        }
        subject.record_probe(&target, outcome);
    }
}
