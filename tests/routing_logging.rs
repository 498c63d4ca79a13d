//! What the router writes to the log about failures: enough to support an author (kind,
//! provider, what the router did, the caller's action), never the prompt and never a key.

mod routing_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use routing_support::{Fault, Harness, user_key};
use storyteller_lsp::providers::{CompletionRequest, Message};
use storyteller_lsp::routing::Budget;
use tracing::Instrument;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn failures_are_logged_with_kind_provider_and_decision_but_no_prompt_or_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();

    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let h = Harness::with_faults(&[Fault::Quota, Fault::Unavailable503, Fault::Healthy]);
            let prompt = "Marguerite buried the ledger under the third olive tree";
            let request = CompletionRequest::new(vec![Message::user(prompt)]);
            let routed = h
                .router
                .generate(&request, Budget::Action(Duration::from_secs(30)))
                .instrument(tracing::info_span!("assist", action = "continue-scene"))
                .await
                .unwrap();
            assert_eq!(routed.provider.id, 3);
        });
    });

    let log = captured.text();
    for expected in [
        "quotaExhausted",
        "unavailable",
        "OpenAI #1",
        "Anthropic Claude #2",
        "fail over",
        "retry",
        "continue-scene",
    ] {
        assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
    }
    for secret in [
        "Marguerite",
        "olive tree",
        &user_key(1),
        &user_key(2),
        &user_key(3),
    ] {
        assert!(!log.contains(secret), "log contains {secret:?}:\n{log}");
    }
}
