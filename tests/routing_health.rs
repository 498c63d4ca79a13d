//! Health probes and offline detection on tokio's paused clock: probing while failed over, routing
//! back with `Recovered`, probes that stop, and `Offline`/`Online` once per change.

mod routing_support;

use std::time::Duration;

use routing_support::{Fault, Harness, event_names, request};
use storyteller_lsp::routing::{
    Budget, Health, RouteError, RouterEvent, RouterOptions, RouterState,
};

const ACTION: Budget = Budget::Action(Duration::from_secs(60));
const HEALTH_CHECK: Duration = Duration::from_secs(300);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Lets spawned probe tasks run up to `d` of virtual time.
async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn a_recovered_primary_is_probed_back_and_announced() {
    let mut h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(event_names(&h.events()), vec!["TryingBackup", "FailedOver"]);

    // Still down at the first probe: the session stays on the backup.
    pass(HEALTH_CHECK + secs(1.0)).await;
    assert_eq!(h.backend(1).probe_count(), 1);
    assert!(h.events().is_empty());
    assert!(h.router.status().failover);

    // Up again: the next probe routes back and says so.
    h.backend(1).set_fault(Fault::Healthy);
    pass(HEALTH_CHECK).await;
    assert_eq!(h.backend(1).probe_count(), 2);
    let events = h.events();
    assert_eq!(
        events,
        vec![RouterEvent::Recovered {
            provider: h.router.status().primary.unwrap(),
        }]
    );
    let status = h.router.status();
    assert!(!status.failover);
    assert_eq!(status.state, RouterState::Ready);
    let routed = h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 1);
    assert!(!routed.failed_over);
}

#[tokio::test(start_paused = true)]
async fn probes_run_every_health_check_interval_only_while_failed_over() {
    let h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy]);
    pass(HEALTH_CHECK * 3).await;
    assert_eq!(
        h.backend(1).probe_count(),
        0,
        "nothing failed over, nothing probed"
    );

    h.router.generate(&request("a"), ACTION).await.unwrap();
    pass(HEALTH_CHECK - secs(1.0)).await;
    assert_eq!(h.backend(1).probe_count(), 0, "not before the interval");
    // (A margin past each probe: a probe due at the very instant a test wakes may run after it.)
    pass(HEALTH_CHECK * 2 + secs(2.0)).await;
    assert_eq!(h.backend(1).probe_count(), 3);
    assert_eq!(h.backend(2).probe_count(), 0, "only the primary is probed");

    h.backend(1).set_fault(Fault::Healthy);
    pass(HEALTH_CHECK).await;
    assert_eq!(h.backend(1).probe_count(), 4);
    pass(HEALTH_CHECK * 5).await;
    assert_eq!(
        h.backend(1).probe_count(),
        4,
        "probes stop once routed back"
    );
}

#[tokio::test(start_paused = true)]
async fn the_health_check_interval_follows_the_setting() {
    let options = RouterOptions {
        health_interval: secs(60.0),
        ..RouterOptions::default()
    };
    let h = Harness::with_options(
        vec![Fault::Unavailable503.script(), Fault::Healthy.script()],
        options,
        |_| {},
    );
    h.router.generate(&request("a"), ACTION).await.unwrap();
    pass(secs(61.0)).await;
    assert_eq!(h.backend(1).probe_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn setting_a_new_primary_stops_the_probes() {
    let h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    let mut entries: Vec<_> = (1..=2)
        .map(|id| routing_support::entry(id, routing_support::KINDS[(id - 1) as usize]))
        .collect();
    entries[0].is_primary = false;
    entries[1].is_primary = true;
    h.router.set_providers(entries);
    pass(HEALTH_CHECK * 3).await;
    assert_eq!(h.backend(1).probe_count(), 0);
    assert_eq!(
        h.router.status().state,
        RouterState::Degraded,
        "provider 1 is still down"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_that_reaches_the_primary_again_ends_the_failover() {
    // The backup fails later; the primary, tried next, answers: routing is back without a probe.
    let mut h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    h.backend(1).set_fault(Fault::Healthy);
    h.backend(2).set_fault(Fault::Quota);
    let routed = h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 1);
    assert_eq!(
        event_names(&h.events()),
        vec!["TryingBackup", "FailedOver", "QuotaExhausted", "Recovered"]
    );
    pass(HEALTH_CHECK * 2).await;
    assert_eq!(h.backend(1).probe_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn offline_and_online_are_announced_once_per_change() {
    let mut h = Harness::with_faults(&[Fault::Network, Fault::Network]);
    for label in ["a", "b", "c"] {
        let result = h
            .router
            .generate(&request(label), Budget::Interactive(secs(5.0)))
            .await;
        assert_eq!(result.unwrap_err(), RouteError::Offline);
    }
    assert_eq!(event_names(&h.events()), vec!["TryingBackup", "Offline"]);
    assert_eq!(h.router.status().state, RouterState::Offline);

    h.backend(1).set_fault(Fault::Healthy);
    h.backend(2).set_fault(Fault::Healthy);
    for label in ["d", "e"] {
        h.router
            .generate(&request(label), Budget::Interactive(secs(5.0)))
            .await
            .unwrap();
    }
    assert_eq!(event_names(&h.events()), vec!["Online"]);
    assert_eq!(h.router.status().state, RouterState::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_mix_of_network_and_other_failures_is_not_offline() {
    let mut h = Harness::with_faults(&[Fault::Network, Fault::Unavailable503]);
    let result = h.router.generate(&request("a"), ACTION).await;
    assert!(matches!(result, Err(RouteError::AllFailed { .. })));
    assert_eq!(event_names(&h.events()), vec!["TryingBackup", "AllFailed"]);
}

#[tokio::test(start_paused = true)]
async fn a_probe_brings_the_router_back_online_without_a_request() {
    let mut h = Harness::with_faults(&[Fault::Network]);
    let _ = h.router.generate(&request("a"), ACTION).await;
    assert_eq!(event_names(&h.events()), vec!["Offline"]);

    // Offline probes run sooner than the 5-minute health check: code actions are disabled
    // while offline, so the author has no other way back.
    pass(secs(31.0)).await;
    assert_eq!(h.backend(1).probe_count(), 1);
    h.backend(1).set_fault(Fault::Healthy);
    pass(secs(30.0)).await;
    assert_eq!(event_names(&h.events()), vec!["Online"]);
    assert_eq!(h.router.status().state, RouterState::Ready);
    pass(HEALTH_CHECK * 2).await;
    assert_eq!(h.backend(1).probe_count(), 2, "probes stop once online");
}

#[tokio::test(start_paused = true)]
async fn status_reports_failover_and_provider_health() {
    let h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy, Fault::Healthy]);
    let before = h.router.status();
    assert_eq!(before.state, RouterState::Ready);
    assert!(before.providers.iter().all(|p| p.health == Health::Unknown));
    assert_eq!(before.active.as_ref().map(|p| p.id), Some(1));

    h.router.generate(&request("a"), ACTION).await.unwrap();
    let status = h.router.status();
    assert_eq!(status.state, RouterState::Degraded);
    assert!(status.failover);
    assert_eq!(status.primary.as_ref().map(|p| p.id), Some(1));
    assert_eq!(status.active.as_ref().map(|p| p.id), Some(2));
    let health: Vec<Health> = status.providers.iter().map(|p| p.health).collect();
    assert_eq!(health, vec![Health::Down, Health::Ok, Health::Unknown]);
    assert!(status.providers[1].last_used_at.is_some());

    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["state"], "degraded");
    assert_eq!(json["providers"][0]["health"], "down");
    assert_eq!(json["providers"][0]["provider"], "openai");
    assert_eq!(json["providers"][1]["rateLimit"]["perMinute"], 40);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_provider_reports_cooling() {
    let h = Harness::with_faults(&[Fault::RateLimitedFor(45), Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(h.router.status().providers[0].health, Health::Cooling);
}
