//! Failover through the router: every provider fault with one to three providers, the recoveries
//! that rebuild a provider (system key, default model), the routing order and its filters, sticky
//! failover, and streams.

mod routing_support;

use std::time::Duration;

use futures::StreamExt;
use routing_support::{
    Fault, Harness, Step, always, detail, event_names, request, sequence, system_key, user_key,
};
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::{ErrorKind, ProviderError, ProviderKind, StreamEvent};
use storyteller_lsp::routing::{
    AttemptOutcome, Budget, KeyUsed, RouteError, RouterEvent, RouterOptions,
};

const ACTION: Budget = Budget::Action(Duration::from_secs(60));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Served(i64),
    AllFailed,
    Offline,
    Fatal,
}

fn outcome<T>(result: &Result<storyteller_lsp::routing::Routed<T>, RouteError>) -> Expect {
    match result {
        Ok(routed) => Expect::Served(routed.provider.id),
        Err(RouteError::AllFailed { .. }) => Expect::AllFailed,
        Err(RouteError::Offline) => Expect::Offline,
        Err(RouteError::Fatal { .. }) => Expect::Fatal,
        Err(other) => panic!("unexpected route error {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn every_fault_on_the_primary_is_handled_as_designed() {
    use Expect::*;
    use Fault::*;
    // Fault on the primary → (outcome, requests the primary got) alone, then with a healthy
    // backup. With three providers the second one has an exhausted quota and the third answers.
    let table = [
        (Healthy, Served(1), 1, Served(1), 1),
        (Network, Offline, 4, Served(2), 2),
        (Hang, AllFailed, 4, Served(2), 2),
        (Timeout, AllFailed, 4, Served(2), 2),
        (Status408, AllFailed, 4, Served(2), 2),
        (Unavailable503, AllFailed, 4, Served(2), 2),
        (Overloaded529, AllFailed, 4, Served(2), 2),
        (RateLimited, AllFailed, 4, Served(2), 4),
        (RateLimitedFor(2), AllFailed, 4, Served(2), 4),
        (RateLimitedFor(120), AllFailed, 1, Served(2), 1),
        (Quota, AllFailed, 1, Served(2), 1),
        (InvalidKey, AllFailed, 1, Served(2), 1),
        (ModelNotFound, AllFailed, 1, Served(2), 1),
        (BadRequest, Fatal, 1, Fatal, 1),
        (Protocol, AllFailed, 1, Served(2), 1),
    ];
    for (fault, alone, alone_calls, backed, backed_calls) in table {
        for providers in 1..=3 {
            let faults = match providers {
                1 => vec![fault],
                2 => vec![fault, Healthy],
                _ => vec![fault, Quota, Healthy],
            };
            let h = Harness::with_faults(&faults);
            let mut req = request("scene");
            // A hanging provider is cut off by the attempt timeout, not the whole budget.
            req.timeout = Duration::from_secs(5);
            let result = h.router.generate(&req, ACTION).await;
            let (expected, calls) = match (providers, backed) {
                (1, _) => (alone, alone_calls),
                (3, Served(2)) => (Served(3), backed_calls),
                _ => (backed, backed_calls),
            };
            assert_eq!(
                outcome(&result),
                expected,
                "{fault:?} with {providers} provider(s)"
            );
            assert_eq!(
                h.backend(1).request_count(),
                calls,
                "requests to the primary, {fault:?} with {providers} provider(s)"
            );
            if expected == Fatal {
                assert_eq!(h.request_counts()[1..].iter().sum::<usize>(), 0);
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn quota_exhausted_fails_over_without_retry() {
    let mut h = Harness::with_faults(&[Fault::Quota, Fault::Healthy]);
    let started = tokio::time::Instant::now();
    let routed = h.router.generate(&request("q"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert!(routed.failed_over);
    assert_eq!(h.request_counts(), vec![1, 1]);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no backoff before failing over"
    );
    assert_eq!(
        event_names(&h.events()),
        vec!["QuotaExhausted", "FailedOver"]
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_user_key_falls_back_to_the_system_key() {
    let accepts_only_the_system_key: routing_support::Script = std::sync::Arc::new(|call, _| {
        if call.key.as_deref() == Some(system_key(1).as_str()) {
            Step::Answer("with the system key".into())
        } else {
            Fault::InvalidKey.step()
        }
    });
    let mut h = Harness::with_options(
        vec![accepts_only_the_system_key, Fault::Healthy.script()],
        RouterOptions::default(),
        |entries| entries[0].system_key = Some(ApiKey::new(system_key(1))),
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 1);
    let keys: Vec<_> = routed.attempts.iter().map(|a| a.key).collect();
    assert_eq!(keys, vec![KeyUsed::User, KeyUsed::System]);
    assert_eq!(event_names(&h.events()), vec!["KeyInvalid"]);

    // The rest of the session uses the system key directly.
    h.router.generate(&request("b"), ACTION).await.unwrap();
    let used: Vec<_> = h.backend(1).requests().into_iter().map(|c| c.key).collect();
    assert_eq!(
        used,
        vec![Some(user_key(1)), Some(system_key(1)), Some(system_key(1))]
    );
    assert_eq!(h.backend(2).request_count(), 0);
    assert!(h.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalid_key_without_system_key_tells_the_user_then_fails_over() {
    let mut h = Harness::with_faults(&[Fault::InvalidKey, Fault::Healthy]);
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    let events = h.events();
    assert_eq!(event_names(&events), vec!["KeyInvalid", "FailedOver"]);
    assert!(matches!(&events[0], RouterEvent::KeyInvalid { provider } if provider.id == 1));
}

#[tokio::test(start_paused = true)]
async fn a_rejected_system_key_fails_over_and_is_told_once() {
    let mut h = Harness::with_options(
        vec![Fault::InvalidKey.script(), Fault::Healthy.script()],
        RouterOptions::default(),
        |entries| entries[0].system_key = Some(ApiKey::new(system_key(1))),
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(h.backend(1).request_count(), 2, "user key, then system key");
    assert_eq!(event_names(&h.events()), vec!["KeyInvalid", "FailedOver"]);
}

#[tokio::test(start_paused = true)]
async fn a_key_rejected_after_it_worked_is_reported_as_revoked() {
    let mut h = Harness::with_faults(&[Fault::Healthy, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    h.backend(1).set_fault(Fault::InvalidKey);
    let routed = h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(event_names(&h.events()), vec!["KeyRevoked", "FailedOver"]);
}

#[tokio::test(start_paused = true)]
async fn a_missing_model_falls_back_to_the_default_model_once() {
    let knows_only_the_default: routing_support::Script = std::sync::Arc::new(|call, _| {
        if call.model == ProviderKind::OpenAi.default_model() {
            Step::Answer("from the default model".into())
        } else {
            Fault::ModelNotFound.step()
        }
    });
    let mut h = Harness::with_options(
        vec![knows_only_the_default],
        RouterOptions::default(),
        |entries| entries[0].config.model = "gpt-retired".into(),
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.value.text, "from the default model");
    let events = h.events();
    assert_eq!(
        events,
        vec![RouterEvent::ModelFallback {
            provider: routed.provider.clone(),
            missing: "gpt-retired".into(),
            default_model: "gpt-4o".into(),
        }]
    );
    h.router.generate(&request("b"), ACTION).await.unwrap();
    let models: Vec<_> = h
        .backend(1)
        .requests()
        .into_iter()
        .map(|c| c.model)
        .collect();
    assert_eq!(models, vec!["gpt-retired", "gpt-4o", "gpt-4o"]);
    assert!(h.events().is_empty(), "the fallback is announced once");
    assert_eq!(h.router.status().providers[0].model, "gpt-4o");
}

#[tokio::test(start_paused = true)]
async fn a_default_model_that_is_missing_too_fails_over_instead_of_looping() {
    let mut h = Harness::with_options(
        vec![Fault::ModelNotFound.script(), Fault::Healthy.script()],
        RouterOptions::default(),
        |entries| entries[0].config.model = "gpt-retired".into(),
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(h.backend(1).request_count(), 2);
    assert_eq!(
        event_names(&h.events()),
        vec!["ModelFallback", "TryingBackup", "FailedOver"]
    );
}

#[tokio::test(start_paused = true)]
async fn all_providers_failing_ends_in_all_failed_within_bounded_time() {
    let mut h = Harness::with_faults(&[
        Fault::Unavailable503,
        Fault::Unavailable503,
        Fault::Unavailable503,
    ]);
    let started = tokio::time::Instant::now();
    let result = h.router.generate(&request("a"), ACTION).await;
    let elapsed = started.elapsed();
    let Err(RouteError::AllFailed { attempts }) = result else {
        panic!("expected AllFailed, got {result:?}");
    };
    // One retry on each provider with a backup, the full three on the last one: at most
    // 1 + 1 + (1 + 2 + 4) seconds of backoff.
    assert_eq!(h.request_counts(), vec![2, 2, 4]);
    assert_eq!(attempts.len(), 8);
    assert!(elapsed <= Duration::from_secs(9), "took {elapsed:?}");
    // "Trying backup provider..." once per failing provider with a backup after it (issue 15).
    assert_eq!(
        event_names(&h.events()),
        vec!["TryingBackup", "TryingBackup", "AllFailed"]
    );

    // A second failing request is the same state: no second message.
    let _ = h.router.generate(&request("b"), ACTION).await;
    assert!(h.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn bad_request_is_fatal_and_tries_no_other_provider() {
    let mut h = Harness::with_faults(&[Fault::BadRequest, Fault::Healthy]);
    let result = h.router.generate(&request("a"), ACTION).await;
    assert!(
        matches!(&result, Err(RouteError::Fatal { error: e, .. }) if e.kind() == ErrorKind::BadRequest),
        "{result:?}"
    );
    assert_eq!(h.request_counts(), vec![1, 0]);
    assert!(h.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failover_is_sticky_for_the_session() {
    let mut h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    let events = h.events();
    assert_eq!(event_names(&events), vec!["TryingBackup", "FailedOver"]);
    assert!(matches!(
        &events[0],
        RouterEvent::TryingBackup { provider } if provider.id == 1
    ));
    assert!(matches!(
        &events[1],
        RouterEvent::FailedOver { from, to } if from.id == 1 && to.id == 2
    ));
    // The primary is healthy again, but the session stays on the backup until a probe says so.
    h.backend(1).set_fault(Fault::Healthy);
    for label in ["b", "c", "d"] {
        let routed = h.router.generate(&request(label), ACTION).await.unwrap();
        assert_eq!(routed.provider.id, 2);
        assert!(routed.failed_over);
        assert_eq!(routed.attempts.len(), 1);
    }
    assert_eq!(h.request_counts(), vec![2, 4, 0]);
    assert!(
        h.events().is_empty(),
        "one FailedOver per change, not per request"
    );
    let status = h.router.status();
    assert!(status.failover);
    assert_eq!(status.active.map(|p| p.id), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_failing_backup_moves_the_session_to_the_next_provider() {
    let mut h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    h.backend(2).set_fault(Fault::Quota);
    let routed = h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 3);
    // The primary, known to be down, is not tried again before the untried third provider.
    assert_eq!(h.request_counts(), vec![2, 2, 1]);
    let events = h.events();
    assert_eq!(
        event_names(&events),
        vec!["TryingBackup", "FailedOver", "QuotaExhausted", "FailedOver"]
    );
    assert!(matches!(
        &events[3],
        RouterEvent::FailedOver { from, to } if from.id == 2 && to.id == 3
    ));
}

#[tokio::test(start_paused = true)]
async fn setting_a_new_primary_clears_sticky_failover() {
    let mut h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    assert!(h.router.status().failover);

    // Re-sending the same rows (an unrelated edit elsewhere) keeps the session where it is.
    let mut entries: Vec<_> = (1..=3)
        .map(|id| routing_support::entry(id, routing_support::KINDS[(id - 1) as usize]))
        .collect();
    h.router.set_providers(entries.clone());
    assert!(h.router.status().failover);

    // setPrimary on provider 3: the next request goes there, and nothing is announced.
    entries[0].is_primary = false;
    entries[2].is_primary = true;
    h.router.set_providers(entries);
    let status = h.router.status();
    assert!(!status.failover);
    assert_eq!(status.primary.map(|p| p.id), Some(3));
    let routed = h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 3);
    assert!(!routed.failed_over);
    assert_eq!(event_names(&h.events()), vec!["TryingBackup", "FailedOver"]);
}

#[tokio::test(start_paused = true)]
async fn eu_only_routes_only_to_eu_resident_providers() {
    let scaleway_at_3 = |entries: &mut Vec<storyteller_lsp::routing::RouteEntry>| {
        entries[2] = routing_support::entry(3, ProviderKind::Scaleway);
    };
    let options = RouterOptions {
        eu_only: true,
        ..RouterOptions::default()
    };
    let h = Harness::with_options(
        vec![
            Fault::Healthy.script(),
            Fault::Healthy.script(),
            Fault::Healthy.script(),
        ],
        options,
        scaleway_at_3,
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 3);
    assert!(
        !routed.failed_over,
        "under euOnly the first EU-resident provider is the preferred one"
    );
    assert_eq!(h.request_counts(), vec![0, 0, 1]);

    // An EU-resident provider that fails has no non-EU backup.
    h.backend(3).set_fault(Fault::Quota);
    let result = h.router.generate(&request("b"), ACTION).await;
    assert!(matches!(result, Err(RouteError::AllFailed { .. })));
    assert_eq!(h.request_counts(), vec![0, 0, 2]);
}

#[tokio::test(start_paused = true)]
async fn eu_only_without_an_eu_provider_is_a_clear_error() {
    let mut settings = storyteller_lsp::config::Settings::default();
    let h = Harness::with_faults(&[Fault::Healthy, Fault::Healthy]);
    settings.eu_only = true;
    h.router.apply_settings(&settings);
    let result = h.router.generate(&request("a"), ACTION).await;
    assert_eq!(result.unwrap_err(), RouteError::NoEuProvider);
    assert_eq!(h.request_counts(), vec![0, 0]);
    settings.eu_only = false;
    h.router.apply_settings(&settings);
    assert!(h.router.generate(&request("b"), ACTION).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn inactive_providers_are_never_called() {
    let h = Harness::with_options(
        vec![Fault::Healthy.script(), Fault::Healthy.script()],
        RouterOptions::default(),
        |entries| entries[0].is_active = false,
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(h.request_counts(), vec![0, 1]);

    let none_active = Harness::with_options(
        vec![Fault::Healthy.script()],
        RouterOptions::default(),
        |entries| entries[0].is_active = false,
    );
    let result = none_active.router.generate(&request("a"), ACTION).await;
    assert_eq!(result.unwrap_err(), RouteError::NotConfigured);
}

#[tokio::test(start_paused = true)]
async fn no_providers_is_not_configured() {
    let h = Harness::new(vec![]);
    let result = h.router.generate(&request("a"), ACTION).await;
    assert_eq!(result.unwrap_err(), RouteError::NotConfigured);
    assert_eq!(
        h.router.status().state,
        storyteller_lsp::routing::RouterState::NotConfigured
    );
}

#[tokio::test(start_paused = true)]
async fn backups_follow_their_position_not_their_id() {
    let h = Harness::with_options(
        vec![
            Fault::Unavailable503.script(),
            Fault::Healthy.script(),
            Fault::Healthy.script(),
        ],
        RouterOptions::default(),
        |entries| {
            entries[1].position = 9;
            entries[2].position = 2;
        },
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 3);
    assert_eq!(h.request_counts(), vec![2, 0, 1]);
}

#[tokio::test(start_paused = true)]
async fn with_failover_disabled_only_the_primary_is_tried() {
    let options = RouterOptions {
        failover_enabled: false,
        ..RouterOptions::default()
    };
    let h = Harness::with_options(
        vec![Fault::Quota.script(), Fault::Healthy.script()],
        options,
        |_| {},
    );
    let result = h.router.generate(&request("a"), ACTION).await;
    assert!(matches!(result, Err(RouteError::AllFailed { .. })));
    assert_eq!(h.request_counts(), vec![1, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_factory_that_cannot_build_a_provider_fails_over_to_the_next() {
    let h = Harness::with_options(
        vec![Fault::Healthy.script(), Fault::Healthy.script()],
        RouterOptions::default(),
        |entries| entries[0].config.endpoint = "scripted://nowhere".into(),
    );
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert!(matches!(
        &routed.attempts[0].outcome,
        AttemptOutcome::Failed(e) if e.kind() == ErrorKind::BadRequest
    ));
}

#[tokio::test(start_paused = true)]
async fn streams_fail_over_before_the_first_delta() {
    for first in [
        Step::Fail(ProviderError::Unavailable(detail(503))),
        Step::FailFirstEvent(ProviderError::Unavailable(detail(529))),
    ] {
        let h = Harness::new(vec![always(first.clone()), Fault::Healthy.script()]);
        let routed = h.router.stream(&request("a"), ACTION).await.unwrap();
        assert_eq!(routed.provider.id, 2, "{first:?}");
        let events: Vec<_> = routed.value.events.collect().await;
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                Ok(StreamEvent::Delta(d)) => Some(d.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "text from a Healthy provider");
        assert!(matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))));
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_breaks_after_text_is_not_failed_over() {
    let breaks = always(Step::BreakAfterDelta(
        "The door ".into(),
        ProviderError::Unavailable(detail(500)),
    ));
    let h = Harness::new(vec![breaks, Fault::Healthy.script()]);
    let routed = h.router.stream(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 1);
    let events: Vec<_> = routed.value.events.collect().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], Ok(StreamEvent::Delta("The door ".into())));
    assert!(events[1].is_err(), "the failure reaches the caller");
    assert_eq!(h.request_counts(), vec![1, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_recovering_primary_answers_after_one_retry() {
    let flaky = sequence(
        vec![Fault::Unavailable503.step()],
        Step::Answer("second time lucky".into()),
    );
    let mut h = Harness::new(vec![flaky, Fault::Healthy.script()]);
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 1);
    assert!(!routed.failed_over);
    assert_eq!(h.request_counts(), vec![2, 0]);
    assert!(h.events().is_empty());
}
