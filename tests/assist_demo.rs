//! `storyteller-lsp demo` in-process: it finishes, and its transcript shows what the author
//! would see at each step (ghost text, both actions, the failover message with its button, the
//! backup's text, the recovery).

use storyteller_lsp::demo;
use storyteller_lsp::messages;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_offline_and_narrates_every_step() {
    let mut transcript = Vec::new();
    demo::run(&mut transcript).await.expect("the demo finishes");
    let transcript = String::from_utf8(transcript).unwrap();
    for expected in [
        messages::demo::INTRO.to_string(),
        "⟦".to_string(),
        messages::demo::ACCEPTED.to_string(),
        "inserted by OpenAI:".to_string(),
        "before: “Mara did not turn round.”".to_string(),
        messages::failed_over("Anthropic Claude"),
        "[Make Anthropic Claude primary]".to_string(),
        "inserted by Anthropic Claude:".to_string(),
        messages::recovered("OpenAI"),
        messages::demo::FINISHED.to_string(),
    ] {
        assert!(
            transcript.contains(&expected),
            "the transcript lacks {expected:?}:\n{transcript}"
        );
    }
    assert!(!transcript.contains("not applied"), "{transcript}");
    assert!(!transcript.contains("sk-demo"), "no key in the transcript");
}
