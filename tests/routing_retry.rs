//! Retries through the router on tokio's paused clock: Retry-After, the 1/2/4 s backoff, budgets,
//! and cancellation during a backoff.

mod routing_support;

use std::time::Duration;

use routing_support::{Fault, Harness, Step, detail, request, sequence};
use storyteller_lsp::providers::{Detail, ProviderError};
use storyteller_lsp::routing::{Budget, RouteError, RouterEvent};
use tokio::time::Instant;

const ACTION: Budget = Budget::Action(Duration::from_secs(30));

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Gaps between consecutive requests a backend received.
fn gaps(h: &Harness, id: i64) -> Vec<Duration> {
    let calls = h.backend(id).requests();
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[tokio::test(start_paused = true)]
async fn rate_limited_with_retry_after_two_seconds_is_retried_after_two_seconds() {
    let once_limited = sequence(
        vec![Fault::RateLimitedFor(2).step()],
        Step::Answer("after the wait".into()),
    );
    let mut h = Harness::new(vec![once_limited]);
    let started = Instant::now();
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.value.text, "after the wait");
    assert!(started.elapsed() >= secs(2.0));
    assert_eq!(gaps(&h, 1), vec![secs(2.0)]);
    assert_eq!(routed.attempts[1].waited, secs(2.0));
    assert_eq!(
        h.events(),
        vec![RouterEvent::RateLimitWait {
            provider: routed.provider.clone(),
            wait: secs(2.0),
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_one_then_two_then_four_seconds_with_jitter() {
    let recovers_on_the_fourth_call = sequence(
        vec![
            Fault::Unavailable503.step(),
            Fault::Unavailable503.step(),
            Fault::Unavailable503.step(),
        ],
        Step::Answer("finally".into()),
    );
    let h = Harness::new(vec![recovers_on_the_fourth_call]);
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.attempts.len(), 4);
    let gaps = gaps(&h, 1);
    assert_eq!(gaps.len(), 3);
    for (gap, full) in gaps.iter().zip([1.0, 2.0, 4.0]) {
        assert!(
            *gap >= secs(full * 0.75) && *gap <= secs(full),
            "gap {gap:?} outside the jitter range of {full} s"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_a_backoff_returns_at_once_and_sends_no_further_request() {
    let h = Harness::with_faults(&[Fault::Unavailable503]);
    let req = request("a");
    let cancel = req.cancel.clone();
    let router = h.router.clone();
    let task = tokio::spawn(async move { router.generate(&req, ACTION).await });
    // The first attempt fails at once; the backoff (0.75–1 s) is under way at 0.5 s.
    tokio::time::sleep(secs(0.5)).await;
    assert_eq!(h.backend(1).request_count(), 1);
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = task.await.unwrap();
    assert_eq!(result.unwrap_err(), RouteError::Cancelled);
    assert_eq!(Instant::now(), cancelled_at, "returned at once");
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(
        h.backend(1).request_count(),
        1,
        "no request after cancellation"
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_a_call_drops_it_at_once() {
    let h = Harness::with_faults(&[Fault::Hang, Fault::Healthy]);
    let req = request("a");
    let cancel = req.cancel.clone();
    let router = h.router.clone();
    let task = tokio::spawn(async move { router.generate(&req, ACTION).await });
    tokio::time::sleep(secs(3.0)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap_err(), RouteError::Cancelled);
    assert_eq!(Instant::now(), cancelled_at);
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(h.request_counts(), vec![1, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_budget_fails_over_now() {
    let h = Harness::with_faults(&[Fault::RateLimitedFor(45), Fault::Healthy]);
    let started = Instant::now();
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(h.request_counts(), vec![1, 1]);
}

#[tokio::test(start_paused = true)]
async fn an_outage_with_a_healthy_backup_is_retried_once_then_failed_over() {
    for fault in [Fault::Unavailable503, Fault::Network, Fault::Timeout] {
        let h = Harness::with_faults(&[fault, Fault::Healthy]);
        let started = Instant::now();
        let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
        assert_eq!(routed.provider.id, 2, "{fault:?}");
        assert_eq!(h.request_counts(), vec![2, 1], "{fault:?}");
        assert!(
            started.elapsed() <= secs(1.0),
            "{fault:?}: one short backoff only"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn interactive_requests_fail_over_without_waiting() {
    let h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy]);
    let started = Instant::now();
    let routed = h
        .router
        .generate(&request("a"), Budget::Interactive(secs(5.0)))
        .await
        .unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(h.request_counts(), vec![1, 1]);
}

#[tokio::test(start_paused = true)]
async fn an_interactive_request_stays_within_its_budget() {
    // Alone, a failing provider gets at most short retries that fit the budget.
    let h = Harness::with_faults(&[Fault::Unavailable503]);
    let started = Instant::now();
    let result = h
        .router
        .generate(&request("a"), Budget::Interactive(secs(5.0)))
        .await;
    assert!(matches!(result, Err(RouteError::AllFailed { .. })));
    assert!(
        started.elapsed() <= secs(1.0),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(h.backend(1).request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_primary_leaves_the_backup_time_within_an_interactive_budget() {
    let h = Harness::with_faults(&[Fault::Hang, Fault::Healthy]);
    let started = Instant::now();
    let routed = h
        .router
        .generate(&request("a"), Budget::Interactive(secs(4.0)))
        .await
        .unwrap();
    assert_eq!(routed.provider.id, 2);
    // The primary got half of the budget, the backup answered at once.
    assert_eq!(started.elapsed(), secs(2.0));
}

#[tokio::test(start_paused = true)]
async fn should_retry_false_fails_over_without_retrying() {
    let no_retry = ProviderError::Unavailable(Detail {
        should_retry: Some(false),
        ..detail(503)
    });
    let h = Harness::new(vec![
        routing_support::always(Step::Fail(no_retry)),
        Fault::Healthy.script(),
    ]);
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(h.request_counts(), vec![1, 1]);
}

#[tokio::test(start_paused = true)]
async fn every_request_finishes_within_its_action_budget() {
    // A slow answer after each failure: the router must not start attempts it cannot finish.
    let slow_failures = routing_support::always(Step::After(
        secs(7.0),
        Box::new(Fault::Unavailable503.step()),
    ));
    let h = Harness::new(vec![slow_failures]);
    let started = Instant::now();
    let result = h.router.generate(&request("a"), ACTION).await;
    assert!(matches!(result, Err(RouteError::AllFailed { .. })));
    assert!(
        started.elapsed() <= secs(30.0),
        "took {:?}",
        started.elapsed()
    );
}
