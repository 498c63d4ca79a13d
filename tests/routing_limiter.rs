//! The per-provider token bucket through the router: the bound under concurrency, FIFO fairness,
//! pacing above 90 %, vendor hints, cancellation while waiting, and runtime settings.

mod routing_support;

use std::sync::Arc;
use std::time::Duration;

use routing_support::{Fault, Harness, Script, Step, request, sequence};
use storyteller_lsp::config::Settings;
use storyteller_lsp::providers::{ProviderKind, RateLimitHint};
use storyteller_lsp::routing::{Budget, RouteError, RouterEvent, RouterOptions};
use tokio::time::Instant;

const LONG_ACTION: Budget = Budget::Action(Duration::from_secs(3600));

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn options_with_rate(kind: ProviderKind, per_minute: u32) -> RouterOptions {
    let mut options = RouterOptions::default();
    options.rate_limits.insert(kind, per_minute);
    options
}

/// A harness with one OpenAI provider limited to `per_minute`.
fn one_provider(per_minute: u32, script: Script) -> Harness {
    Harness::with_options(
        vec![script],
        options_with_rate(ProviderKind::OpenAi, per_minute),
        |_| {},
    )
}

/// Offsets of a backend's requests from `start`.
fn offsets(h: &Harness, id: i64, start: Instant) -> Vec<Duration> {
    h.backend(id)
        .requests()
        .iter()
        .map(|c| c.at - start)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_requests_never_exceed_a_bucket_of_fifty_per_minute() {
    let h = one_provider(50, Fault::Healthy.script());
    let start = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let router = h.router.clone();
            tokio::spawn(async move {
                router
                    .generate(&request(&format!("r{i}")), LONG_ACTION)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    let at = offsets(&h, 1, start);
    assert_eq!(at.len(), 200, "every request was sent exactly once");
    // A bucket of 50 refilling one every 1.2 s: any k consecutive requests span at least
    // (k − 50) refill intervals.
    let interval = secs(1.2);
    for i in 0..at.len() {
        for j in i..at.len() {
            let count = (j - i + 1) as u128;
            let allowed = 50 + (at[j] - at[i]).as_nanos() / interval.as_nanos();
            assert!(
                count <= allowed,
                "{count} requests between {:?} and {:?}",
                at[i],
                at[j]
            );
        }
    }
    // And no more than 50 in the first instant.
    assert!(at.iter().filter(|t| t.is_zero()).count() <= 50);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let h = one_provider(2, Fault::Healthy.script());
    // Two requests take the bucket; the next ones must wait, and go in the order they came.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let router = h.router.clone();
        tasks.push(tokio::spawn(async move {
            router
                .generate(&request(&format!("r{i}")), LONG_ACTION)
                .await
        }));
        // Arrivals spread irregularly: a design that polls for free tokens would serve them
        // in the order of their polling phase, not of their arrival.
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let order: Vec<String> = h
        .backend(1)
        .requests()
        .into_iter()
        .map(|c| c.label)
        .collect();
    let expected: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    assert_eq!(order, expected);
}

#[tokio::test(start_paused = true)]
async fn requests_above_ninety_percent_of_the_budget_are_paced() {
    let h = one_provider(10, Fault::Healthy.script());
    let start = Instant::now();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let router = h.router.clone();
            tokio::spawn(async move {
                router
                    .generate(&request(&format!("r{i}")), LONG_ACTION)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let at = offsets(&h, 1, start);
    // Nine at once (90 % of 10), then one every 6 s instead of a burst of the last tenth.
    assert_eq!(&at[..9], &[Duration::ZERO; 9]);
    assert_eq!(&at[9..], &[secs(6.0), secs(12.0), secs(18.0)]);
}

#[tokio::test(start_paused = true)]
async fn a_vendor_saying_nothing_is_left_holds_the_next_request_until_its_reset() {
    let exhausted = RateLimitHint {
        remaining: Some(0),
        limit: Some(500),
        reset_after: Some(secs(30.0)),
    };
    let script = sequence(
        vec![Step::AnswerWithHint("first".into(), exhausted)],
        Step::Answer("later".into()),
    );
    let h = one_provider(50, script);
    let start = Instant::now();
    h.router.generate(&request("a"), LONG_ACTION).await.unwrap();
    assert_eq!(h.router.status().providers[0].rate_limit.remaining, 0);
    h.router.generate(&request("b"), LONG_ACTION).await.unwrap();
    let at = offsets(&h, 1, start);
    assert_eq!(at[0], Duration::ZERO);
    assert!(at[1] >= secs(30.0), "second request at {:?}", at[1]);
}

#[tokio::test(start_paused = true)]
async fn a_vendor_with_more_left_does_not_loosen_the_local_budget() {
    let generous = RateLimitHint {
        remaining: Some(10_000),
        limit: Some(10_000),
        reset_after: None,
    };
    let h = one_provider(
        5,
        routing_support::always(Step::AnswerWithHint("x".into(), generous)),
    );
    for i in 0..3 {
        h.router
            .generate(&request(&format!("r{i}")), LONG_ACTION)
            .await
            .unwrap();
    }
    let status = h.router.status();
    assert_eq!(status.providers[0].rate_limit.per_minute, 5);
    assert_eq!(status.providers[0].rate_limit.remaining, 2);
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_a_limiter_wait_returns_at_once_and_sends_nothing() {
    let h = one_provider(1, Fault::Healthy.script());
    h.router
        .generate(&request("takes the only slot"), LONG_ACTION)
        .await
        .unwrap();

    let req = request("waits");
    let cancel = req.cancel.clone();
    let router = h.router.clone();
    let task = tokio::spawn(async move { router.generate(&req, LONG_ACTION).await });
    tokio::time::sleep(secs(10.0)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap_err(), RouteError::Cancelled);
    assert_eq!(Instant::now(), cancelled_at, "returned at once");
    tokio::time::sleep(secs(300.0)).await;
    assert_eq!(
        h.backend(1).request_count(),
        1,
        "the cancelled request was never sent"
    );

    // Its slot was given back: the next request goes without waiting (the bucket refilled).
    let before = Instant::now();
    h.router
        .generate(&request("next"), LONG_ACTION)
        .await
        .unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_long_local_wait_is_announced_once() {
    let mut h = one_provider(1, Fault::Healthy.script());
    h.router.generate(&request("a"), LONG_ACTION).await.unwrap();
    let started = Instant::now();
    h.router.generate(&request("b"), LONG_ACTION).await.unwrap();
    h.router.generate(&request("c"), LONG_ACTION).await.unwrap();
    assert_eq!(started.elapsed(), secs(120.0));
    let events = h.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(
        &events[0],
        RouterEvent::RateLimitWait { wait, .. } if *wait == secs(60.0)
    ));
}

#[tokio::test(start_paused = true)]
async fn an_interactive_request_does_not_wait_for_a_busy_bucket() {
    let mut options = options_with_rate(ProviderKind::OpenAi, 1);
    options.rate_limits.insert(ProviderKind::Claude, 1);
    let h = Harness::with_options(
        vec![Fault::Healthy.script(), Fault::Healthy.script()],
        options,
        |_| {},
    );
    let inline = Budget::Interactive(secs(5.0));
    // The primary's only slot goes, then the backup's; a third keystroke finds both busy.
    assert_eq!(
        h.router
            .generate(&request("a"), inline)
            .await
            .unwrap()
            .provider
            .id,
        1
    );
    let second = h.router.generate(&request("b"), inline).await.unwrap();
    assert_eq!(second.provider.id, 2);
    assert!(second.failed_over);
    assert!(
        !h.router.status().failover,
        "a busy primary is not a failed one"
    );
    let started = Instant::now();
    let third = h.router.generate(&request("c"), inline).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(
        matches!(third, Err(RouteError::RateLimited { retry_in }) if retry_in > secs(50.0)),
        "{third:?}"
    );
    assert_eq!(h.request_counts(), vec![1, 1]);
}

#[tokio::test(start_paused = true)]
async fn status_reports_the_budget_and_what_remains() {
    let h = one_provider(50, Fault::Healthy.script());
    for i in 0..5 {
        h.router
            .generate(&request(&format!("r{i}")), LONG_ACTION)
            .await
            .unwrap();
    }
    let provider = &h.router.status().providers[0];
    assert_eq!(provider.rate_limit.per_minute, 50);
    assert_eq!(provider.rate_limit.remaining, 45);
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(h.router.status().providers[0].rate_limit.remaining, 50);
}

#[tokio::test(start_paused = true)]
async fn catalogue_defaults_apply_per_provider_kind() {
    let h = Harness::with_faults(&[Fault::Healthy, Fault::Healthy, Fault::Healthy]);
    let budgets: Vec<u32> = h
        .router
        .status()
        .providers
        .iter()
        .map(|p| p.rate_limit.per_minute)
        .collect();
    // openai 50, claude 40, gemini 60 (DESIGN.md §5).
    assert_eq!(budgets, vec![50, 40, 60]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_setting_applies_at_runtime() {
    let h = Harness::with_faults(&[Fault::Healthy]);
    let mut settings = Settings::default();
    settings.rate_limits.insert(ProviderKind::OpenAi, 2);
    h.router.apply_settings(&settings);
    let start = Instant::now();
    for i in 0..3 {
        h.router
            .generate(&request(&format!("r{i}")), LONG_ACTION)
            .await
            .unwrap();
    }
    assert_eq!(h.router.status().providers[0].rate_limit.per_minute, 2);
    let at = offsets(&h, 1, start);
    assert_eq!(at, vec![Duration::ZERO, secs(30.0), secs(60.0)]);
}

#[tokio::test(start_paused = true)]
async fn a_vendor_429_makes_concurrent_requests_wait_too() {
    // The first answer is a 429 with Retry-After 5 s; a second request arriving meanwhile must
    // not hit the vendor before the 5 s are up either.
    let script = sequence(
        vec![Fault::RateLimitedFor(5).step()],
        Step::Answer("ok".into()),
    );
    let h = one_provider(60, script);
    let start = Instant::now();
    let first = {
        let router = h.router.clone();
        tokio::spawn(async move { router.generate(&request("a"), LONG_ACTION).await })
    };
    tokio::time::sleep(secs(1.0)).await;
    h.router.generate(&request("b"), LONG_ACTION).await.unwrap();
    first.await.unwrap().unwrap();
    let at = offsets(&h, 1, start);
    assert_eq!(at.len(), 3);
    assert_eq!(at[0], Duration::ZERO);
    assert!(at[1] >= secs(5.0) && at[2] >= secs(5.0), "{at:?}");
    let _ = Arc::strong_count(&h.factory);
}
