//! Issue 15's routing promises, through the router alone: an explicit choice of the primary is
//! tried on the next request, "Trying backup" once per failover episode, a failover never leaves
//! the EU without the project's consent, and plain HTTP goes only to this computer.

mod routing_support;

use std::time::Duration;

use routing_support::{Fault, Harness, event_names, request};
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::routing::{
    Budget, EuConsent, RouteEntry, RouteError, RouterEvent, RouterOptions,
};

const ACTION: Budget = Budget::Action(Duration::from_secs(60));

/// Provider 1 is EU-resident (Scaleway at an EU host), provider 2 is not (OpenAI).
fn eu_primary(faults: [Fault; 2]) -> Harness {
    Harness::with_options(
        faults.iter().map(|f| f.script()).collect(),
        RouterOptions::default(),
        |entries: &mut Vec<RouteEntry>| {
            entries[0].provider.kind = ProviderKind::Scaleway;
            entries[0].config.kind = ProviderKind::Scaleway;
            entries[0].eu_resident = true;
        },
    )
}

#[tokio::test(start_paused = true)]
async fn choosing_the_primary_again_tries_it_on_the_next_request() {
    let mut h = Harness::with_faults(&[Fault::Quota, Fault::Healthy]);
    let first = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(first.provider.id, 2);
    assert!(h.router.status().failover);
    assert_eq!(
        event_names(&h.events()),
        vec!["QuotaExhausted", "FailedOver"]
    );

    // Without a choice the session stays on the backup (sticky).
    h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(h.request_counts(), vec![1, 2]);

    h.router.primary_chosen();
    assert!(!h.router.status().failover);
    let again = h.router.generate(&request("c"), ACTION).await.unwrap();
    assert_eq!(again.provider.id, 2);
    assert_eq!(
        h.request_counts(),
        vec![2, 3],
        "the chosen primary was tried first"
    );
    // Its quota problem is told again: the author chose it explicitly.
    assert_eq!(
        event_names(&h.events()),
        vec!["QuotaExhausted", "FailedOver"]
    );
}

#[tokio::test(start_paused = true)]
async fn trying_backup_is_sent_once_per_failover_episode() {
    let mut h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy]);
    h.router.generate(&request("a"), ACTION).await.unwrap();
    let events = h.events();
    assert!(matches!(
        &events[0],
        RouterEvent::TryingBackup { provider } if provider.id == 1
    ));
    // The episode goes on (sticky on the backup): not told again.
    h.router.generate(&request("b"), ACTION).await.unwrap();
    h.router.generate(&request("c"), ACTION).await.unwrap();
    assert!(h.events().is_empty());
    // The author chooses the primary again and it still fails: a new episode, told again.
    h.router.primary_chosen();
    h.router.generate(&request("d"), ACTION).await.unwrap();
    assert_eq!(event_names(&h.events()), vec!["TryingBackup", "FailedOver"]);
}

#[tokio::test(start_paused = true)]
async fn a_failover_out_of_the_eu_waits_for_the_projects_consent() {
    let h = eu_primary([Fault::Unavailable503, Fault::Healthy]);
    assert_eq!(h.router.status().eu_consent, EuConsent::Unanswered);
    match h.router.generate(&request("a"), ACTION).await {
        Err(RouteError::ConsentNeeded { provider, .. }) => assert_eq!(provider.id, 2),
        other => panic!("expected ConsentNeeded, got {other:?}"),
    }
    assert_eq!(h.backend(2).request_count(), 0, "no text left the EU");

    h.router.set_eu_consent(EuConsent::Allowed);
    let routed = h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    assert_eq!(h.router.status().eu_consent, EuConsent::Allowed);
}

#[tokio::test(start_paused = true)]
async fn keep_eu_only_routes_the_project_as_eu_only() {
    let h = eu_primary([Fault::Unavailable503, Fault::Healthy]);
    h.router.set_eu_consent(EuConsent::KeepEuOnly);
    assert!(matches!(
        h.router.generate(&request("a"), ACTION).await,
        Err(RouteError::AllFailed { .. })
    ));
    assert_eq!(h.backend(2).request_count(), 0);
    let status = h.router.status();
    assert_eq!(status.eu_consent, EuConsent::KeepEuOnly);
    assert!(!status.eu_consent_text.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_primary_outside_the_eu_needs_no_consent() {
    // The author chose a non-EU primary: its failover is not a question of residency.
    let h = Harness::with_faults(&[Fault::Unavailable503, Fault::Healthy]);
    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
}

#[tokio::test(start_paused = true)]
async fn a_plain_http_row_to_another_host_is_never_called() {
    let mut h = Harness::with_faults(&[Fault::Healthy, Fault::Healthy]);
    let remote = "http://example.invalid/v1";
    let trap = h.factory.add(remote, Fault::Healthy.script());
    let mut entries: Vec<RouteEntry> = (1..=2)
        .map(|id| routing_support::entry(id, routing_support::KINDS[(id - 1) as usize]))
        .collect();
    entries[0].config.endpoint = remote.into();
    h.router.set_providers(entries.clone());

    let routed = h.router.generate(&request("a"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2);
    h.router.generate(&request("b"), ACTION).await.unwrap();
    assert_eq!(trap.request_count(), 0);
    assert_eq!(event_names(&h.events()), vec!["InsecureHttpRefused"]);

    // Alone, it is a clear error and still nothing is sent.
    h.router.set_providers(entries[..1].to_vec());
    match h.router.generate(&request("c"), ACTION).await {
        Err(RouteError::InsecureHttp { host, .. }) => assert_eq!(host, "example.invalid"),
        other => panic!("expected InsecureHttp, got {other:?}"),
    }
    assert_eq!(trap.request_count(), 0);

    // allowInsecureHttp: called, with one warning.
    entries[0].config.options.allow_insecure_http = Some(true);
    h.router.set_providers(entries[..1].to_vec());
    h.router.generate(&request("d"), ACTION).await.unwrap();
    h.router.generate(&request("e"), ACTION).await.unwrap();
    assert_eq!(trap.request_count(), 2);
    assert_eq!(event_names(&h.events()), vec!["InsecureHttpAllowed"]);
}

#[tokio::test(start_paused = true)]
async fn offline_asks_no_residency_question() {
    let h = eu_primary([Fault::Network, Fault::Healthy]);
    assert!(matches!(
        h.router.generate(&request("a"), ACTION).await,
        Err(RouteError::Offline)
    ));
    assert_eq!(h.backend(2).request_count(), 0);
}
