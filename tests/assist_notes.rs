//! The story bible the author controls, over a realistic workspace (`tests/fixtures/salt-ledger`:
//! three chapters, STORY.md, 23 notes with aliases, a `never` note, an `always` note, places/)
//! and temp-dir cases for what the fixture does not hold (Russian names, `Aliases:` lines,
//! malformed front matter).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use storyteller_lsp::assist::notes::{Include, Inclusion, NotesIndex, RootListing};
use storyteller_lsp::config::Settings;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/salt-ledger")
}

fn indexed(root: &Path) -> NotesIndex {
    let index = NotesIndex::new();
    index
        .index_root_blocking(root, &Settings::default().context_files)
        .expect("the default globs compile");
    index
}

fn titles(notes: &str) -> Vec<&str> {
    notes
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect()
}

/// The notes chosen with the cursor after `before`, with an action's budget.
fn chosen(index: &NotesIndex, root: &Path, before: &str) -> String {
    index.relevant(root, before, "", 4_000)
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    }
}

#[test]
fn the_default_globs_index_every_note_of_the_fixture_with_places() {
    let root = fixture();
    let index = indexed(&root);
    // 23 notes and STORY.md; the chapters are manuscript, not notes.
    assert_eq!(index.count(&root), 24);
    let listing = index.listing(&root, None).expect("indexed");
    let paths: Vec<&str> = listing.notes.iter().map(|n| n.path.as_str()).collect();
    assert!(paths.contains(&"places/marrow-end.md"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("chapters/")),
        "{paths:?}"
    );
}

#[test]
fn the_never_note_is_in_no_prompt_even_when_its_names_are_at_the_cursor() {
    let root = fixture();
    let index = indexed(&root);
    let chapters = ["chapter-01.md", "chapter-02.md", "chapter-03.md"];
    for chapter in chapters {
        let text = std::fs::read_to_string(root.join("chapters").join(chapter)).expect("chapter");
        // Every cursor position a paragraph apart.
        for (at, _) in text.match_indices("\n\n") {
            let notes = index.relevant(&root, &text[..at], &text[at..], 100_000);
            assert!(!notes.contains("SPOILERS"), "{chapter}@{at}");
            assert!(!notes.contains("scuttled"), "{chapter}@{at}");
        }
    }
    let notes = chosen(&index, &root, "Ideas for book two, she thought");
    assert!(!notes.contains("scuttled"), "{notes}");
}

#[test]
fn the_always_note_comes_first_and_unmatched_notes_stay_out() {
    let root = fixture();
    let index = indexed(&root);
    let notes = chosen(&index, &root, "She waited by the window.");
    assert_eq!(titles(&notes), ["Style sheet"], "{notes}");

    let notes = chosen(&index, &root, "Toby came down the slipway.");
    assert_eq!(titles(&notes), ["Style sheet", "Tobias Hale"], "{notes}");
    assert!(!notes.contains("Gull Rock"), "{notes}");
    assert!(!notes.contains("## The Widow Marsh"), "{notes}");
}

#[test]
fn aliases_and_lowercase_references_bring_their_notes() {
    let root = fixture();
    let index = indexed(&root);
    let cases = [
        ("Toby's boots were untied.", "Tobias Hale"),
        ("Toby’s boots were untied.", "Tobias Hale"),
        ("She went to find the harbourmaster.", "Ezra Pike"),
        ("Two harbourmasters had kept that lamp.", "Ezra Pike"),
        (
            "the figures were in tide-script, not numbers",
            "Tide-script",
        ),
        ("written in tide script", "Tide-script"),
        ("She climbed the tower.", "The Harbour Tower"),
        ("The widow marsh listened at the floor.", "The Widow Marsh"),
        ("Nobody in Marrow End would say.", "Marrow End"),
        ("She opened the ledger.", "The Ledger"),
    ];
    for (before, title) in cases {
        let notes = chosen(&index, &root, before);
        assert!(titles(&notes).contains(&title), "{before:?} → {notes}");
    }
}

#[test]
fn a_multi_word_place_matches_as_a_phrase_only() {
    let root = fixture();
    let index = indexed(&root);
    let notes = chosen(&index, &root, "They walked out across Marrow Fen.");
    assert!(titles(&notes).contains(&"Marrow Fen"), "{notes}");
    assert!(!titles(&notes).contains(&"Marrow End"), "{notes}");

    let notes = chosen(&index, &root, "The end of the marrow bone.");
    assert!(!titles(&notes).contains(&"Marrow End"), "{notes}");
}

#[test]
fn closer_names_rank_first() {
    let root = fixture();
    let index = indexed(&root);
    let notes = chosen(
        &index,
        &root,
        "Sabine Orlov had lent the money. Hours later, on Gull Rock, Mara Quill",
    );
    let order = titles(&notes);
    let position = |t: &str| order.iter().position(|o| *o == t).expect(t);
    assert!(position("Mara Quill") < position("Gull Rock"), "{order:?}");
    assert!(
        position("Gull Rock") < position("Sabine Orlov"),
        "{order:?}"
    );
}

#[test]
fn a_name_far_from_the_cursor_does_not_count() {
    let root = fixture();
    let index = indexed(&root);
    let far = format!("Sabine Orlov smiled. {}", "The rain went on. ".repeat(100));
    let notes = chosen(&index, &root, &far);
    assert!(!titles(&notes).contains(&"Sabine Orlov"), "{notes}");
}

#[test]
fn the_story_bible_is_listed_with_its_reason_and_given_whole() {
    let root = fixture();
    let index = indexed(&root);
    let source = index.story_source(&root).expect("STORY.md");
    assert!(
        source.starts_with("---\ntitle: The Salt Ledger"),
        "{source}"
    );
    assert!(source.contains("## Style sample"));
    let notes = chosen(&index, &root, "The Salt Ledger, she wrote");
    assert!(!notes.contains("harbour-town mystery"), "{notes}");

    let listing = index.listing(&root, Some(("Wren", ""))).expect("indexed");
    let story = listing
        .notes
        .iter()
        .find(|n| n.path == "STORY.md")
        .expect("listed");
    assert!(story.story_bible);
    assert_eq!(
        story.at_position.as_ref().map(|a| a.inclusion.clone()),
        Some(Inclusion::StoryBible)
    );
}

fn by_path(listing: &RootListing) -> HashMap<&str, &storyteller_lsp::assist::notes::NoteListing> {
    listing.notes.iter().map(|n| (n.path.as_str(), n)).collect()
}

#[test]
fn the_listing_explains_every_note_at_a_position() {
    let root = fixture();
    let index = indexed(&root);
    let listing = index
        .listing(
            &root,
            Some(("\"Pike's been asking after the book.\" Toby", "")),
        )
        .expect("indexed");
    let notes = by_path(&listing);
    let at = |p: &str| notes[p].at_position.clone().expect("asked at a position");
    assert_eq!(at("notes/style-sheet.md").inclusion, Inclusion::Always);
    assert_eq!(at("notes/ideas-book-two.md").inclusion, Inclusion::Never);
    assert!(!at("notes/ideas-book-two.md").included);
    assert_eq!(at("places/gull-rock.md").inclusion, Inclusion::NotMentioned);
    match at("characters/tobias-hale.md").inclusion {
        Inclusion::Mentioned {
            name,
            matched,
            distance,
            ..
        } => {
            assert_eq!(
                (name.as_str(), matched.as_str(), distance),
                ("Toby", "Toby", 0)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(at("characters/tobias-hale.md").why.contains("\"Toby\""));
    assert!(matches!(
        at("characters/ezra-pike.md").inclusion,
        Inclusion::Mentioned { .. }
    ));
    assert!(matches!(
        at("notes/the-ledger.md").inclusion,
        Inclusion::Mentioned { .. }
    ));

    let tobias = notes["characters/tobias-hale.md"];
    assert_eq!(tobias.names, ["Tobias Hale", "Toby"]);
    assert_eq!(tobias.include, Include::Mentioned);
    assert!(notes["notes/tide-script.md"].has_summary);
    assert!(listing.notes.iter().all(|n| n.problem.is_none()));
}

#[test]
fn russian_name_forms_find_their_notes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("characters/mara.md", "# Мара\nСмотрительница маяка."),
            (
                "characters/kueil.md",
                "---\ntitle: Куэйл\n---\nКапитан «Чайки».",
            ),
            ("places/bay.md", "# Серая бухта\nМелкая, с илом."),
        ],
    );
    let index = indexed(dir.path());
    let cases = [
        ("Дом Мары стоял у воды.", "Мара"),
        ("Она сказала Маре правду.", "Мара"),
        ("Письмо Куэйлу пришло утром.", "Куэйл"),
        ("Они вошли в серую бухту.", "Серая бухта"),
    ];
    for (before, title) in cases {
        let notes = chosen(&index, dir.path(), before);
        assert_eq!(titles(&notes), [title], "{before:?}");
    }
    assert_eq!(chosen(&index, dir.path(), "Марк ушёл."), "");
}

#[test]
fn an_aliases_line_in_the_body_is_an_alias_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "characters/tobias.md",
            "# Tobias Hale\nAliases: Toby, the mussel boy\n\nDigs mussels at low water.",
        )],
    );
    let index = indexed(dir.path());
    let notes = chosen(&index, dir.path(), "Toby laughed.");
    assert_eq!(notes, "## Tobias Hale\nDigs mussels at low water.");
    assert!(!chosen(&index, dir.path(), "the mussel boy").is_empty());
}

#[test]
fn malformed_front_matter_is_reported_and_the_note_still_indexed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "notes/broken.md",
                "---\naliases: [Gannet\n---\n# Gannet\nCole's boat.",
            ),
            (
                "notes/unclosed.md",
                "---\ninclude: never\n# Kestrel\nLost at sea.",
            ),
            (
                "notes/odd.md",
                "---\ninclude: sometimes\n---\n# Mercy\nThe Little Mercy.",
            ),
        ],
    );
    let index = indexed(dir.path());
    assert_eq!(index.count(dir.path()), 3);
    let listing = index.listing(dir.path(), None).expect("indexed");
    for note in &listing.notes {
        assert!(note.problem.is_some(), "{}", note.path);
        assert!(note.chars > 0, "{}", note.path);
    }
    assert!(chosen(&index, dir.path(), "the Gannet").contains("Cole's boat."));
    assert!(chosen(&index, dir.path(), "the Mercy").contains("Little Mercy"));
}

#[test]
fn a_body_too_long_for_the_budget_gives_way_to_its_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = "The tower has ninety-one steps. ".repeat(40);
    write(
        dir.path(),
        &[(
            "places/tower.md",
            &format!(
                "---\ntitle: Tower\nsummary: Ninety-one steps and a sticking door.\n---\n{body}"
            ),
        )],
    );
    let index = indexed(dir.path());
    assert!(chosen(&index, dir.path(), "the tower").contains("ninety-one steps. The tower"));
    let short = index.relevant(dir.path(), "the tower", "", 200);
    assert_eq!(short, "## Tower\nNinety-one steps and a sticking door.");
}
