//! Inline completion end to end in-process: the real server, the real router and providers, the
//! simulator on loopback. Continuation and acceptance statistics, the prefix cache, debounce and
//! supersede, cancellation reaching the upstream connection, the not-configured prompt, and
//! failures that stay silent until the author asks for AI explicitly.

mod assist_support;
mod lsp_support;

use std::time::Duration;

use assist_support::{
    MANUSCRIPT, URI, answer_edits_and_press, end_of, execute, inline_params, messages_seen,
    rich_client, start,
};
use serde_json::{Value, json};
use storyteller_lsp::messages;
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::{Fault, Outcome, SimulatorHandle};

const NO_DEBOUNCE: fn() -> Value = || json!({"inline": {"debounceMs": 0}});

fn chats(sim: &SimulatorHandle, kind: ProviderKind) -> usize {
    sim.requests(Some(kind))
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

async fn usage_of(client: &mut lsp_support::TestClient, name: &str) -> (u64, u64) {
    let list = execute(client, "storyteller.prompts.list", json!({}))
        .await
        .unwrap();
    list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == name)
        .fold((0, 0), |(u, s), t| {
            (
                u + t["usageCount"].as_u64().unwrap(),
                s + t["successCount"].as_u64().unwrap(),
            )
        })
}

#[tokio::test]
async fn a_continuation_comes_from_the_provider_and_acceptance_counts_for_its_prompt() {
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), NO_DEBOUNCE()).await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);

    // Automatic, as while typing: one suggestion, one provider call (an invoked request offers
    // alternatives: see `an_invoked_request_offers_distinct_alternatives_each_counted_alone`).
    let result = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 2),
        )
        .await
        .unwrap();
    assert_eq!(result["items"].as_array().unwrap().len(), 1, "{result}");
    let item = &result["items"][0];
    let text = item["insertText"].as_str().unwrap();
    assert!(text.starts_with(' ') && text.trim().len() > 3, "{text:?}");
    assert!(!text.contains("\n\n"), "one paragraph at most: {text:?}");
    assert_eq!(
        item["range"]["start"],
        json!({"line": line, "character": character})
    );

    let requests = sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(requests.len(), 1);
    let prompt = requests[0].body["messages"][0]["content"].as_str().unwrap();
    assert!(prompt.contains("She waited by the window</text_before_cursor>"));
    assert!(
        prompt.contains("Chapter 1: Salt"),
        "the heading is in the prompt"
    );
    assert_eq!(
        requests[0].body["max_completion_tokens"], 80,
        "inline.maxTokens"
    );

    // Usage is counted off the answer's path; wait for it before accepting.
    let (mut used, _) = usage_of(&mut client, "inline_continuation").await;
    for _ in 0..100 {
        if used == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        used = usage_of(&mut client, "inline_continuation").await.0;
    }
    assert_eq!(used, 1);
    let feedback = &item["command"];
    assert_eq!(feedback["command"], "storyteller.feedback");
    let counted = execute(
        &mut client,
        "storyteller.feedback",
        feedback["arguments"][0].clone(),
    )
    .await
    .unwrap();
    assert_eq!(counted, json!({"counted": true}));
    assert_eq!(usage_of(&mut client, "inline_continuation").await, (1, 1));
    // The same suggestion cannot be counted twice.
    let again = execute(
        &mut client,
        "storyteller.feedback",
        feedback["arguments"][0].clone(),
    )
    .await
    .unwrap_err();
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .starts_with("suggestionId:")
    );
}

#[tokio::test]
async fn typing_the_suggestion_is_served_from_memory_without_a_provider_call() {
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), NO_DEBOUNCE()).await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    let first = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 2),
        )
        .await
        .unwrap();
    let suggestion = first["items"][0]["insertText"]
        .as_str()
        .unwrap()
        .to_string();
    let typed: String = suggestion.chars().take(4).collect();
    client
        .change(
            URI,
            2,
            json!([{
                "range": {"start": {"line": line, "character": character},
                          "end": {"line": line, "character": character}},
                "text": typed
            }]),
        )
        .await;
    let typed_units = typed.encode_utf16().count() as u32;
    let second = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character + typed_units, 2),
        )
        .await
        .unwrap();
    let rest: String = suggestion.chars().skip(4).collect();
    assert_eq!(second["items"][0]["insertText"], rest.as_str());
    assert_eq!(
        second["items"][0]["command"]["arguments"][0]["suggestionId"],
        first["items"][0]["command"]["arguments"][0]["suggestionId"]
    );
    assert_eq!(
        chats(&sim, ProviderKind::OpenAi),
        1,
        "no second provider call"
    );

    // Typing something else: a new suggestion from the provider.
    client
        .change(
            URI,
            3,
            json!([{
                "range": {"start": {"line": line, "character": character + typed_units},
                          "end": {"line": line, "character": character + typed_units}},
                "text": "#"
            }]),
        )
        .await;
    client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character + typed_units + 1, 2),
        )
        .await
        .unwrap();
    assert_eq!(chats(&sim, ProviderKind::OpenAi), 2);
}

#[tokio::test]
async fn a_burst_of_keystrokes_calls_the_provider_once() {
    let sim = SimulatorHandle::start().await.unwrap();
    // The default debounce (120 ms).
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), json!({})).await;
    client.open(URI, MANUSCRIPT).await;
    let (line, mut character) = end_of(MANUSCRIPT);
    let mut ids = Vec::new();
    for version in 2..22 {
        client
            .change(
                URI,
                version,
                json!([{
                    "range": {"start": {"line": line, "character": character},
                              "end": {"line": line, "character": character}},
                    "text": "s"
                }]),
            )
            .await;
        character += 1;
        ids.push(
            client
                .send_request(
                    "textDocument/inlineCompletion",
                    inline_params(line, character, 2),
                )
                .await,
        );
    }
    let mut answers = Vec::new();
    for id in ids {
        answers.push(client.response_to(&json!(id)).await.unwrap());
    }
    let served: Vec<usize> = answers
        .iter()
        .map(|a| a["items"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(
        served.last(),
        Some(&1),
        "the last request is answered: {served:?}"
    );
    assert!(
        served[..served.len() - 1].iter().all(|&n| n == 0),
        "superseded requests return nothing: {served:?}"
    );
    assert!(chats(&sim, ProviderKind::OpenAi) <= 2);
    assert_eq!(chats(&sim, ProviderKind::OpenAi), 1);
}

#[tokio::test]
async fn cancelling_a_request_closes_its_upstream_connection() {
    let sim = SimulatorHandle::start().await.unwrap();
    sim.set_latency(ProviderKind::OpenAi, Duration::from_secs(30));
    let mut client = start(
        &sim,
        &[ProviderKind::OpenAi],
        rich_client(),
        json!({"inline": {"debounceMs": 0, "timeoutMs": 60000}}),
    )
    .await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    let id = client
        .send_request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 1),
        )
        .await;
    let pending = sim
        .wait_for_request(ProviderKind::OpenAi, Duration::from_secs(20), |r| {
            r.method == "POST"
        })
        .await;
    assert!(pending.is_some(), "the provider was called");
    client.notify("$/cancelRequest", json!({"id": id})).await;
    let answer = client.response_to(&json!(id)).await;
    assert_eq!(answer.unwrap_err()["code"], -32800, "RequestCancelled");
    let closed = sim
        .wait_for_request(ProviderKind::OpenAi, Duration::from_secs(20), |r| {
            r.outcome == Outcome::Disconnected
        })
        .await;
    assert!(closed.is_some(), "the upstream connection was dropped");
}

#[tokio::test]
async fn a_newer_request_aborts_the_older_ones_provider_call() {
    let sim = SimulatorHandle::start().await.unwrap();
    sim.set_latency(ProviderKind::OpenAi, Duration::from_secs(30));
    let mut client = start(
        &sim,
        &[ProviderKind::OpenAi],
        rich_client(),
        json!({"inline": {"debounceMs": 0, "timeoutMs": 60000}}),
    )
    .await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    let older = client
        .send_request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 2),
        )
        .await;
    sim.wait_for_request(ProviderKind::OpenAi, Duration::from_secs(20), |r| {
        r.method == "POST"
    })
    .await
    .expect("the provider was called");
    sim.set_latency(ProviderKind::OpenAi, Duration::ZERO);
    let newer = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 2),
        )
        .await
        .unwrap();
    assert_eq!(newer["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        client.response_to(&json!(older)).await.unwrap()["items"],
        json!([]),
        "the superseded request returns nothing"
    );
    let closed = sim
        .wait_for_request(ProviderKind::OpenAi, Duration::from_secs(20), |r| {
            r.outcome == Outcome::Disconnected
        })
        .await;
    assert!(
        closed.is_some(),
        "the superseded request's connection was dropped"
    );
}

#[tokio::test]
async fn the_not_configured_prompt_appears_once_and_only_when_asked_for() {
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[], rich_client(), NO_DEBOUNCE()).await;
    answer_edits_and_press(
        &mut client,
        true,
        vec![(
            messages::NOT_CONFIGURED.to_string(),
            messages::actions::CONFIGURE_AI_PROVIDER.to_string(),
        )],
    );
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    // Typing (automatic requests) never pops it up.
    for _ in 0..3 {
        let answer = client
            .request(
                "textDocument/inlineCompletion",
                inline_params(line, character, 2),
            )
            .await
            .unwrap();
        assert_eq!(answer["items"], json!([]));
    }
    client.document_state(URI).await.unwrap();
    assert!(
        !messages_seen(&client)
            .iter()
            .any(|m| m == messages::NOT_CONFIGURED)
    );

    // Asking for a suggestion does, once.
    for _ in 0..3 {
        client
            .request(
                "textDocument/inlineCompletion",
                inline_params(line, character, 1),
            )
            .await
            .unwrap();
    }
    let prompt = client.server_request("window/showMessageRequest", 0).await;
    assert_eq!(prompt["params"]["message"], messages::NOT_CONFIGURED);
    let buttons: Vec<&str> = prompt["params"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(buttons, ["Configure AI Provider", "Maybe Later"]);
    // The button opens the editor's provider settings.
    let open = client.notification("storyteller/openSettings").await;
    assert_eq!(open["params"]["reason"], "notConfigured");
    client.document_state(URI).await.unwrap();
    let prompts = messages_seen(&client)
        .into_iter()
        .filter(|m| m == messages::NOT_CONFIGURED)
        .count();
    assert_eq!(prompts, 1);
    assert_eq!(sim.requests(None).len(), 0);
}

#[tokio::test]
async fn inline_failures_stay_silent_until_the_author_runs_an_action() {
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), NO_DEBOUNCE()).await;
    answer_edits_and_press(&mut client, true, vec![]);
    sim.inject(ProviderKind::OpenAi, Fault::InvalidKey, None);
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    let answer = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 2),
        )
        .await
        .unwrap();
    assert_eq!(answer["items"], json!([]));
    // The status says something is wrong…
    client
        .pump_until(|c| {
            c.notifications
                .iter()
                .any(|n| n["method"] == "storyteller/status" && n["params"]["state"] != "ready")
        })
        .await;
    // …but no dialog while typing.
    let invalid = messages::invalid_key("OpenAI");
    assert!(
        !messages_seen(&client).contains(&invalid),
        "{:?}",
        messages_seen(&client)
    );

    // An explicit action tells what was held back, with its button.
    let seen = client.server_requests.len();
    let range = json!({"start": {"line": line, "character": character}, "end": {"line": line, "character": character}});
    let result = execute(
        &mut client,
        "storyteller.generate",
        json!({"action": "continueScene", "uri": URI, "range": range}),
    )
    .await
    .unwrap();
    assert_eq!(result["applied"], false);
    client
        .pump_until(|c| {
            c.server_requests.iter().skip(seen).any(|r| {
                r["method"] == "window/showMessageRequest" && r["params"]["message"] == invalid
            })
        })
        .await;
    let request = client
        .server_requests
        .iter()
        .find(|r| r["params"]["message"] == invalid)
        .unwrap();
    assert_eq!(request["params"]["actions"][0]["title"], "Open Settings");
}

#[tokio::test]
async fn story_notes_about_the_scene_reach_the_prompt_and_follow_the_files() {
    let sim = SimulatorHandle::start().await.unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path().join("novel");
    for (path, text) in [
        (
            "characters/tomas-vey.md",
            "# Tomas Vey\nAliases: Tomas\nSkipper of the Gannet. Owes Mara money.",
        ),
        ("notes/weather.md", "# Weather\nEasterly gales in winter."),
        ("drafts/old.md", "# Old draft\nNot a note."),
    ] {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let mut client = assist_support::start_in_folder(
        &sim,
        &[ProviderKind::OpenAi],
        &root,
        rich_client(),
        NO_DEBOUNCE(),
    )
    .await;
    let chapter = tower_lsp::lsp_types::Url::from_file_path(root.join("chapter-1.md")).unwrap();
    client
        .notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": chapter, "languageId": "markdown", "version": 1, "text": MANUSCRIPT}}),
        )
        .await;
    let (line, character) = end_of(MANUSCRIPT);
    let ask = |character: u32| {
        json!({"textDocument": {"uri": chapter}, "position": {"line": line, "character": character},
               "context": {"triggerKind": 1}})
    };
    // Indexing runs in the background at start-up: ask until the note shows in a prompt.
    let mut prompt = String::new();
    for attempt in 0..50 {
        client
            .request(
                "textDocument/inlineCompletion",
                ask(character - (attempt % 2)),
            )
            .await
            .unwrap();
        let requests = sim.requests(Some(ProviderKind::OpenAi));
        prompt = requests.last().unwrap().body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string();
        if prompt.contains("Skipper of the Gannet") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        prompt.contains("## Tomas Vey\nSkipper of the Gannet"),
        "{prompt}"
    );
    // Only the notes the scene names are sent: the weather note is not mentioned.
    assert!(!prompt.contains("## Weather"), "{prompt}");
    assert!(!prompt.contains("Not a note."));

    // The author edits the note; the editor reports the change; the next prompt has it.
    std::fs::write(
        root.join("characters/tomas-vey.md"),
        "# Tomas Vey\nAliases: Tomas\nHarbour master since the spring.",
    )
    .unwrap();
    let note =
        tower_lsp::lsp_types::Url::from_file_path(root.join("characters/tomas-vey.md")).unwrap();
    client
        .notify(
            "workspace/didChangeWatchedFiles",
            json!({"changes": [{"uri": note, "type": 2}]}),
        )
        .await;
    for attempt in 0..50 {
        client
            .request(
                "textDocument/inlineCompletion",
                ask(character - (attempt % 2)),
            )
            .await
            .unwrap();
        let requests = sim.requests(Some(ProviderKind::OpenAi));
        prompt = requests.last().unwrap().body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string();
        if prompt.contains("Harbour master since the spring") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        prompt.contains("Harbour master since the spring"),
        "{prompt}"
    );
    assert!(!prompt.contains("Skipper of the Gannet"));
}

/// The words of a suggestion, for comparing alternatives as the author reads them.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[tokio::test]
async fn an_invoked_request_offers_distinct_alternatives_each_counted_alone() {
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), NO_DEBOUNCE()).await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);

    let result = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 1),
        )
        .await
        .unwrap();
    let items = result["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "three alternatives: {result}");
    let mut ids = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let text = item["insertText"].as_str().unwrap();
        assert!(text.trim().len() > 3, "alternative {i}: {text:?}");
        assert_eq!(
            item["range"]["start"],
            json!({"line": line, "character": character})
        );
        assert_eq!(item["command"]["command"], "storyteller.feedback");
        ids.push(item["command"]["arguments"][0]["suggestionId"].clone());
        for other in &items[..i] {
            assert_ne!(
                words_of(text),
                words_of(other["insertText"].as_str().unwrap()),
                "alternatives are distinct"
            );
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "each alternative has its own suggestion id");

    // Three provider calls through the router: the limiter counted each, and the second and
    // third asked for another direction.
    let requests = sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(requests.len(), 3);
    let prompts: Vec<&str> = requests
        .iter()
        .map(|r| r.body["messages"][0]["content"].as_str().unwrap())
        .collect();
    for prompt in &prompts {
        assert!(prompt.contains("She waited by the window</text_before_cursor>"));
    }
    assert_eq!(
        prompts
            .iter()
            .filter(|p| p.contains("alternative 2 of 3"))
            .count(),
        1
    );
    assert_eq!(
        prompts
            .iter()
            .filter(|p| p.contains("alternative 3 of 3"))
            .count(),
        1
    );
    let status = execute(&mut client, "storyteller.status", json!({}))
        .await
        .unwrap();
    let remaining = status["providers"][0]["rateLimit"]["remaining"].clone();
    assert_eq!(remaining, json!(47), "3 of 50 requests used: {status}");

    // Accepting the second counts once, for its prompt; the others stay unaccepted.
    let mut used = usage_of(&mut client, "inline_continuation").await.0;
    for _ in 0..100 {
        if used == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        used = usage_of(&mut client, "inline_continuation").await.0;
    }
    assert_eq!(used, 3, "each shown alternative counts as used");
    let counted = execute(
        &mut client,
        "storyteller.feedback",
        items[1]["command"]["arguments"][0].clone(),
    )
    .await
    .unwrap();
    assert_eq!(counted, json!({"counted": true}));
    assert_eq!(usage_of(&mut client, "inline_continuation").await, (3, 1));
}

#[tokio::test]
async fn automatic_requests_and_the_completion_fallback_offer_one_suggestion() {
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), NO_DEBOUNCE()).await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    let result = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 2),
        )
        .await
        .unwrap();
    assert_eq!(result["items"].as_array().unwrap().len(), 1, "{result}");
    assert_eq!(chats(&sim, ProviderKind::OpenAi), 1);

    // A client without inline completion (Helix): one completion item, one call.
    let sim = SimulatorHandle::start().await.unwrap();
    let mut helix = start(
        &sim,
        &[ProviderKind::OpenAi],
        json!({"general": {"positionEncodings": ["utf-8"]}}),
        NO_DEBOUNCE(),
    )
    .await;
    helix.open(URI, MANUSCRIPT).await;
    let completion = helix
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character},
                   "context": {"triggerKind": 1}}),
        )
        .await
        .unwrap();
    assert_eq!(completion.as_array().unwrap().len(), 1, "{completion}");
    assert_eq!(chats(&sim, ProviderKind::OpenAi), 1);
}

#[tokio::test]
async fn a_failing_alternative_does_not_lose_the_others() {
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), NO_DEBOUNCE()).await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    // The first of the three calls to arrive gets a reply no provider can read.
    sim.inject(ProviderKind::OpenAi, Fault::MalformedJson, Some(1));
    let result = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 1),
        )
        .await
        .unwrap();
    let items = result["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "the two good alternatives: {result}");
    let faulted = sim
        .requests(Some(ProviderKind::OpenAi))
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert_eq!(faulted, 1);
    // Nothing was said to the author: two suggestions arrived.
    assert!(
        messages_seen(&client).is_empty(),
        "{:?}",
        messages_seen(&client)
    );
}

#[tokio::test]
async fn cancelling_an_invoked_request_closes_every_alternatives_connection() {
    let sim = SimulatorHandle::start().await.unwrap();
    sim.set_latency(ProviderKind::OpenAi, Duration::from_secs(30));
    let mut client = start(
        &sim,
        &[ProviderKind::OpenAi],
        rich_client(),
        json!({"inline": {"debounceMs": 0, "timeoutMs": 60000}}),
    )
    .await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    let id = client
        .send_request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 1),
        )
        .await;
    for _ in 0..500 {
        if sim.requests(Some(ProviderKind::OpenAi)).len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.requests(Some(ProviderKind::OpenAi)).len(), 3);
    client.notify("$/cancelRequest", json!({"id": id})).await;
    let answer = client.response_to(&json!(id)).await;
    assert_eq!(answer.unwrap_err()["code"], -32800, "RequestCancelled");
    let mut outcomes = Vec::new();
    for _ in 0..500 {
        outcomes = sim
            .requests(Some(ProviderKind::OpenAi))
            .iter()
            .map(|r| r.outcome)
            .collect();
        if outcomes.iter().all(|o| *o == Outcome::Disconnected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(outcomes, vec![Outcome::Disconnected; 3]);
}

#[tokio::test]
async fn the_alternatives_provider_calls_run_at_the_same_time() {
    const LATENCY: Duration = Duration::from_millis(400);
    let sim = SimulatorHandle::start().await.unwrap();
    let mut client = start(&sim, &[ProviderKind::OpenAi], rich_client(), NO_DEBOUNCE()).await;
    client.open(URI, MANUSCRIPT).await;
    let (line, character) = end_of(MANUSCRIPT);
    // Warm the connection and the prompt registry first.
    client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character - 1, 2),
        )
        .await
        .unwrap();
    sim.set_latency(ProviderKind::OpenAi, LATENCY);
    let started = std::time::Instant::now();
    let result = client
        .request(
            "textDocument/inlineCompletion",
            inline_params(line, character, 1),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    println!("three alternatives at {LATENCY:?} provider latency: {took:?}");
    assert!(result["items"].as_array().unwrap().len() >= 2, "{result}");
    // One after the other they would take three latencies.
    assert!(took < LATENCY * 5 / 2, "took {took:?}");
}
