//! Scripted replies of the provider simulator (`POST /_sim/replies`): each vendor's real client
//! receives the queued texts verbatim, streamed and not, in order, and then the prose generator
//! again; `DELETE /_sim/replies` drops what is still queued.

use std::time::Duration;

use futures::StreamExt;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::http::HttpClient;
use storyteller_lsp::providers::{
    self, CompletionRequest, FinishReason, Message, ProviderConfig, ProviderKind, StreamEvent,
};
use storyteller_lsp::simulator::SimulatorHandle;

const PREAMBLE: &str =
    "Here is the continuation:\n\n“Who told you we were here?”\n\nLet me know if you'd like more.";
const SECOND: &str = "  and laid it open.";

fn config(sim: &SimulatorHandle, kind: ProviderKind) -> ProviderConfig {
    let mut config = ProviderConfig::with_defaults(kind, Some(ApiKey::new("sk-sim-replies-0001")));
    config.endpoint = sim.endpoint(kind);
    if kind == ProviderKind::Custom {
        config.model = "llama3.2".into();
    }
    if kind == ProviderKind::Yandex {
        config.options.folder_id = Some("b1gsimfolder".into());
    }
    config
}

fn request() -> CompletionRequest {
    let mut request = CompletionRequest::new(vec![Message::user(
        "Mara turned to the stranger at the door of the lighthouse.",
    )]);
    request.max_tokens = 80;
    request.timeout = Duration::from_secs(5);
    request
}

async fn streamed(provider: &dyn providers::AiProvider) -> String {
    let response = provider
        .stream(&request())
        .await
        .expect("the stream starts");
    let mut events = response.events;
    let mut text = String::new();
    while let Some(event) = events.next().await {
        match event.expect("no stream error") {
            StreamEvent::Delta(delta) => text.push_str(&delta),
            StreamEvent::Done { .. } => break,
        }
    }
    text
}

#[tokio::test]
async fn every_vendor_returns_scripted_replies_verbatim_then_prose() {
    let sim = SimulatorHandle::start().await.expect("simulator starts");
    let http = HttpClient::new().expect("HTTP client");
    for kind in ProviderKind::ALL {
        let provider = providers::build(&config(&sim, kind), &http);
        sim.script_replies(kind, [PREAMBLE.to_string(), SECOND.to_string()]);
        let first = provider.generate(&request()).await.expect("a completion");
        assert_eq!(first.text, PREAMBLE, "{kind:?} not streamed");
        assert_eq!(first.finish, FinishReason::Stop, "{kind:?}");
        assert_eq!(
            streamed(provider.as_ref()).await,
            SECOND,
            "{kind:?} streamed"
        );
        // The queue is empty: the prose generator answers again.
        let prose = provider.generate(&request()).await.expect("a completion");
        assert!(
            !prose.text.is_empty() && prose.text != PREAMBLE && prose.text != SECOND,
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn the_control_api_queues_per_provider_and_clears() {
    let sim = SimulatorHandle::start().await.expect("simulator starts");
    let http = HttpClient::new().expect("HTTP client");
    let control = reqwest::Client::new();
    let url = format!("{}/_sim/replies", sim.base_url());
    let queued = control
        .post(&url)
        .json(&serde_json::json!({"provider": "openai", "texts": ["One.", "Two."]}))
        .send()
        .await
        .expect("the control API answers");
    assert_eq!(queued.status(), 200);
    let bad = control
        .post(&url)
        .json(&serde_json::json!({"provider": "openai", "text": "One."}))
        .send()
        .await
        .expect("the control API answers");
    assert_eq!(bad.status(), 400, "an unknown field is refused");

    // Another vendor's requests do not take OpenAI's replies.
    let claude = providers::build(&config(&sim, ProviderKind::Claude), &http);
    let other = claude.generate(&request()).await.expect("a completion");
    assert_ne!(other.text, "One.");

    let openai = providers::build(&config(&sim, ProviderKind::OpenAi), &http);
    assert_eq!(
        openai
            .generate(&request())
            .await
            .expect("a completion")
            .text,
        "One."
    );
    let cleared = control
        .delete(format!("{url}?provider=openai"))
        .send()
        .await
        .expect("the control API answers");
    assert_eq!(cleared.status(), 200);
    let after = openai.generate(&request()).await.expect("a completion");
    assert_ne!(after.text, "Two.", "DELETE dropped the queued reply");
}
