//! Where an action's text goes once generated (`assist::place`): Describe character lands after
//! the sentence (or quoted speech) that names the character, follows the text when the author
//! typed above it, and is refused when the author changed the text it skips — even beyond the
//! anchor's own context.

use std::sync::Arc;

use storyteller_lsp::assist::actions::{Action, ActionId};
use storyteller_lsp::assist::{ActionRequest, Assistant, place};
use storyteller_lsp::config::Settings;
use storyteller_lsp::documents::{CharOffset, ContentChange, DocumentSnapshot, DocumentStore};
use storyteller_lsp::prompts::Registry;
use storyteller_lsp::store::Store;
use tokio_util::sync::CancellationToken;

const URI: &str = "file:///novel/chapter-2.md";

fn chars(text: &str, needle: &str) -> usize {
    text[..text.find(needle).expect("the needle is in the text")]
        .chars()
        .count()
}

fn snapshot(docs: &DocumentStore) -> DocumentSnapshot {
    docs.snapshot(URI).expect("the document is open")
}

#[tokio::test]
async fn describe_character_goes_after_the_sentence_and_follows_the_text() {
    let store = Store::open_in_memory().expect("a database");
    let (registry, _) = Registry::load_blocking(store, &[]).expect("the bundled prompts");
    let text = "The bell rang twice.\n\n\"My name is Sabine Orlov. I rent the room upstairs, the one with the green shutters over the chandler's shop.\" She smiled.";
    let docs = DocumentStore::new();
    docs.open(URI, "markdown", 1, text);
    let start = chars(text, "Sabine Orlov");
    let request = ActionRequest {
        action: Action::new(ActionId::DescribeCharacter, None).expect("a valid action"),
        document: snapshot(&docs),
        span: CharOffset(start)..CharOffset(start + "Sabine Orlov".len()),
        settings: Arc::new(Settings::default()),
        project_root: None,
        document_path: None,
        instruction: None,
    };
    let prepared = Assistant::new()
        .prepare_action(&registry, &request, CancellationToken::new())
        .await
        .expect("the prompt renders");

    // Unchanged: after the closing quote of her speech.
    let end_of_speech = chars(text, " She smiled.");
    let placed = place(&prepared, &snapshot(&docs), " Up close she was older.").expect("placed");
    assert_eq!(placed.replace, end_of_speech..end_of_speech);
    assert_eq!(placed.text, " Up close she was older.");

    // The author typed a heading above: the place moves with the text.
    let heading = "# Chapter 2\n\n";
    docs.apply_changes(
        URI,
        2,
        vec![ContentChange::full(format!("{heading}{text}"))],
        Default::default(),
    )
    .expect("the edit applies");
    let moved = end_of_speech + heading.chars().count();
    let placed = place(&prepared, &snapshot(&docs), " Up close.").expect("placed");
    assert_eq!(placed.replace, moved..moved);

    // The author changed a word between the selection and the end of the speech, further from
    // the selection than the anchor's own context reaches: refused.
    let edited = format!("{heading}{text}").replace("chandler's", "baker's");
    docs.apply_changes(
        URI,
        3,
        vec![ContentChange::full(edited)],
        Default::default(),
    )
    .expect("the edit applies");
    assert!(place(&prepared, &snapshot(&docs), " Up close.").is_err());
}
