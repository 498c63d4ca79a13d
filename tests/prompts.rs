//! Prompt templates end to end: the bundled set, workspace overrides and variants, malformed
//! files reported with file and line, rendering errors, A/B selection by weight with a seeded
//! RNG, and statistics that survive a restart (a real SQLite file, reopened).

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use storyteller_lsp::prompts::{LoadWarning, PromptError, Registry, RenderError, Vars};
use storyteller_lsp::store::Store;

struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("novel");
        std::fs::create_dir_all(root.join(".storyteller/prompts")).unwrap();
        let db = dir.path().join("data/storyteller.db");
        Workspace {
            _dir: dir,
            root,
            db,
        }
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.root.join(".storyteller/prompts").join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn load(&self) -> (Registry, Vec<LoadWarning>) {
        let store = Store::open_async(self.db.clone(), Default::default())
            .await
            .unwrap();
        Registry::load(store, vec![self.root.clone()])
            .await
            .unwrap()
    }
}

fn all_vars() -> Vars<'static> {
    Vars::new()
        .with("before", "The lamp guttered. Mara reached for")
        .with("after", " the door.")
        .with("selection", "He was angry.")
        .with("heading", "Chapter 3: Salt")
        .with("notes", "Mara Quill: lighthouse keeper, left-handed.")
        .with("tone", "tense")
        .with("character", "Mara Quill")
        .with("story", "Point of view: close third person, Mara")
        .with("language", "English")
        .with("previous", "She left the lamp burning.")
        .with("instruction", "Tomas comes back with the ledger.")
}

#[tokio::test]
async fn the_bundled_templates_load_with_the_variables_the_assist_layer_fills() {
    let ws = Workspace::new();
    let (registry, warnings) = ws.load().await;
    assert!(warnings.is_empty(), "{warnings:?}");
    // The contract with the assist layer: which variables each action's template needs.
    let expected: &[(&str, u32, &[&str])] = &[
        (
            "continue_scene",
            1,
            &[
                "before",
                "after",
                "heading",
                "notes",
                "story",
                "language",
                "previous",
                "instruction",
            ],
        ),
        (
            "describe_character",
            1,
            &[
                "character",
                "selection",
                "before",
                "after",
                "notes",
                "story",
                "language",
                "previous",
                "instruction",
            ],
        ),
        (
            "expand_worldbuilding",
            1,
            &[
                "before",
                "after",
                "heading",
                "notes",
                "story",
                "language",
                "previous",
                "instruction",
            ],
        ),
        (
            "inline_continuation",
            1,
            &[
                "before", "after", "heading", "notes", "story", "language", "previous",
            ],
        ),
        (
            "inline_continuation",
            2,
            &[
                "before", "after", "heading", "notes", "story", "language", "previous",
            ],
        ),
        (
            "rewrite_selection",
            1,
            &[
                "selection",
                "tone",
                "before",
                "after",
                "notes",
                "story",
                "language",
                "previous",
            ],
        ),
        (
            "suggest_dialogue",
            1,
            &[
                "selection",
                "before",
                "after",
                "notes",
                "story",
                "language",
                "previous",
            ],
        ),
    ];
    let listed = registry.list().await.unwrap();
    let got: Vec<(String, u32, Vec<String>)> = listed
        .iter()
        .map(|s| (s.name.clone(), s.version, s.variables.clone()))
        .collect();
    let want: Vec<(String, u32, Vec<String>)> = expected
        .iter()
        .map(|(n, v, vars)| {
            (
                n.to_string(),
                *v,
                vars.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(got, want);

    for summary in &listed {
        assert!(summary.active && summary.weight == 1.0, "{summary:?}");
        assert_eq!(summary.usage_count, 0);
        assert!(summary.source.ends_with("(bundled)"), "{}", summary.source);
        let t = registry.template(&summary.name, summary.version).unwrap();
        let text = registry.render(&t, &all_vars()).unwrap();
        assert!(!text.contains("{{"), "{} left a placeholder", summary.name);
        assert!(
            text.contains("Mara Quill"),
            "{} dropped the notes",
            summary.name
        );
        for carried in [
            "Write in English",
            "close third person, Mara",
            "She left the lamp burning.",
        ] {
            assert!(
                text.contains(carried),
                "{} dropped {carried:?}",
                summary.name
            );
        }
    }
}

#[tokio::test]
async fn a_workspace_file_replaces_the_bundled_version_and_a_new_version_adds_a_variant() {
    let ws = Workspace::new();
    let replaced = ws.write(
        "scene.md",
        "---\nname: continue_scene\nversion: 1\ndescription: house style\nvariables: [before]\n---\nHOUSE STYLE {{before}}\n",
    );
    ws.write(
        "scene-v7.md",
        "---\nname: continue_scene\nversion: 7\nvariables: [before, notes]\nweight: 2\n---\nV7 {{notes}} {{before}}\n",
    );
    ws.write("README.txt", "not a template, ignored");
    let (registry, warnings) = ws.load().await;
    assert!(warnings.is_empty(), "{warnings:?}");

    let v1 = registry.template("continue_scene", 1).unwrap();
    assert_eq!(v1.description, "house style");
    assert_eq!(
        registry
            .render(&v1, &Vars::new().with("before", "x"))
            .unwrap(),
        "HOUSE STYLE x"
    );
    let listed = registry.list().await.unwrap();
    let scene: Vec<_> = listed
        .iter()
        .filter(|s| s.name == "continue_scene")
        .collect();
    assert_eq!(scene.len(), 2);
    assert_eq!(scene[0].source, replaced.display().to_string());
    assert_eq!((scene[1].version, scene[1].weight), (7, 2.0));

    // Both variants are really chosen.
    registry.set_rng(StdRng::seed_from_u64(1));
    let mut seen = [false, false];
    for _ in 0..200 {
        match registry.select("continue_scene").unwrap().version {
            1 => seen[0] = true,
            7 => seen[1] = true,
            other => panic!("unexpected version {other}"),
        }
    }
    assert_eq!(seen, [true, true]);
}

#[tokio::test]
async fn malformed_files_are_reported_with_file_and_line_and_the_others_still_load() {
    let ws = Workspace::new();
    let bad_yaml = ws.write(
        "a-bad-yaml.md",
        "---\nname: broken\nversion: 1\nvariables: [before\n---\n{{before}}\n",
    );
    let no_name = ws.write("b-no-name.md", "---\nversion: 1\n---\nHello\n");
    let float_version = ws.write("c-float.md", "---\nname: f\nversion: 1.5\n---\nHello\n");
    let unterminated = ws.write(
        "d-open.md",
        "---\nname: open\nversion: 1\n\nNo closing fence.\n",
    );
    let undeclared = ws.write(
        "e-undeclared.md",
        "---\nname: inline_continuation\nversion: 1\nvariables: [before]\n---\nContinue:\n\n{{before}} {{mood}}\n",
    );
    ws.write(
        "f-good.md",
        "---\nname: epigraph\nversion: 1\nvariables: [heading]\n---\nAn epigraph for {{heading}}.\n",
    );

    let (registry, warnings) = ws.load().await;
    let got: Vec<(String, Option<usize>)> =
        warnings.iter().map(|w| (w.file.clone(), w.line)).collect();
    let name = |p: &Path| p.display().to_string();
    assert_eq!(
        got,
        vec![
            (name(&bad_yaml), Some(5)),
            (name(&no_name), Some(2)),
            (name(&float_version), Some(3)),
            (name(&unterminated), Some(1)),
            (name(&undeclared), Some(8)),
        ],
        "{warnings:#?}"
    );
    let undeclared_text = warnings[4].to_string();
    assert!(undeclared_text.contains("`mood`"), "{undeclared_text}");
    assert!(undeclared_text.starts_with(&format!("{}:8: ", name(&undeclared))));

    // The good file loaded, and the skipped override left the bundled template in place.
    assert!(registry.template("epigraph", 1).is_some());
    let inline = registry.template("inline_continuation", 1).unwrap();
    assert!(inline.source.to_string().ends_with("(bundled)"));
    assert!(registry.template("broken", 1).is_none());
}

#[tokio::test]
async fn rendering_names_the_missing_variables_and_inserts_values_verbatim() {
    let ws = Workspace::new();
    let (registry, _) = ws.load().await;
    let t = registry.template("rewrite_selection", 1).unwrap();
    let err = registry
        .render(&t, &Vars::new().with("selection", "x").with("before", ""))
        .unwrap_err();
    match err {
        PromptError::Render(RenderError::MissingVariables {
            name,
            version,
            missing,
        }) => {
            assert_eq!((name.as_str(), version), ("rewrite_selection", 1));
            assert_eq!(
                missing,
                vec!["tone", "after", "notes", "story", "language", "previous"]
            );
        }
        other => panic!("expected a render error, got {other:?}"),
    }

    // A manuscript that itself contains template syntax stays as written.
    let tricky = "The spell read {{tone}} and {{ notes }}.";
    let vars = Vars::new()
        .with("selection", tricky)
        .with("tone", "plain")
        .with("before", "")
        .with("after", "")
        .with("notes", "")
        .with("story", "")
        .with("language", "English")
        .with("previous", "");
    let text = registry.render(&t, &vars).unwrap();
    assert!(text.contains(tricky));
    assert!(text.contains("Requested tone: plain"));
}

#[tokio::test]
async fn ab_selection_follows_the_weights_and_never_picks_weight_zero() {
    let ws = Workspace::new();
    let (registry, _) = ws.load().await;
    registry
        .set_active("inline_continuation", 1, Some(3.0))
        .await
        .unwrap();
    registry
        .set_active("inline_continuation", 2, Some(1.0))
        .await
        .unwrap();

    let draws = |registry: &Registry, seed: u64| -> Vec<u32> {
        registry.set_rng(StdRng::seed_from_u64(seed));
        (0..4000)
            .map(|_| registry.select("inline_continuation").unwrap().version)
            .collect()
    };
    let first = draws(&registry, 7);
    let share_v1 = first.iter().filter(|v| **v == 1).count() as f64 / first.len() as f64;
    // 3:1 → 0.75; with 4000 seeded draws the share is fixed, and well inside this band.
    assert!((0.72..0.78).contains(&share_v1), "v1 share {share_v1}");
    // Same seed, same sequence: tests and reproductions are deterministic.
    assert_eq!(draws(&registry, 7), first);

    // Without a weight, setActive makes that version the only one in use: v1 keeps its weight
    // of 3 but is inactive, so it is never chosen.
    registry
        .set_active("inline_continuation", 2, None)
        .await
        .unwrap();
    assert!(draws(&registry, 9).iter().all(|v| *v == 2));
    let listed = registry.list().await.unwrap();
    let inline: Vec<_> = listed
        .iter()
        .filter(|s| s.name == "inline_continuation")
        .map(|s| (s.version, s.active, s.weight))
        .collect();
    assert_eq!(inline, vec![(1, false, 3.0), (2, true, 1.0)]);

    // Active but weight 0: never chosen.
    registry
        .set_active("inline_continuation", 1, Some(5.0))
        .await
        .unwrap();
    registry
        .set_active("inline_continuation", 2, Some(0.0))
        .await
        .unwrap();
    assert!(draws(&registry, 8).iter().all(|v| *v == 1));

    registry
        .set_active("inline_continuation", 1, Some(0.0))
        .await
        .unwrap();
    let err = registry.select("inline_continuation").unwrap_err();
    assert!(matches!(err, PromptError::NoActiveVersion(_)), "{err:?}");
}

#[tokio::test]
async fn unknown_names_versions_and_bad_weights_are_errors() {
    let ws = Workspace::new();
    let (registry, _) = ws.load().await;
    assert!(matches!(
        registry.select("write_my_novel"),
        Err(PromptError::UnknownTemplate(_))
    ));
    assert!(matches!(
        registry.set_active("continue_scene", 9, None).await,
        Err(PromptError::UnknownVersion { version: 9, .. })
    ));
    assert!(matches!(
        registry.set_active("continue_scene", 1, Some(-1.0)).await,
        Err(PromptError::InvalidWeight(_))
    ));
    assert!(registry.record_usage("continue_scene", 9).await.is_err());
}

#[tokio::test]
async fn statistics_and_the_authors_choices_survive_a_restart() {
    let ws = Workspace::new();
    {
        let (registry, _) = ws.load().await;
        for _ in 0..3 {
            registry.record_usage("continue_scene", 1).await.unwrap();
        }
        assert!(registry.record_success("continue_scene", 1).await.unwrap());
        assert!(registry.record_success("continue_scene", 1).await.unwrap());
        registry
            .set_active("inline_continuation", 2, Some(0.5))
            .await
            .unwrap();
    }
    // The workspace edits the template text between runs: statistics stay with (name, version).
    ws.write(
        "scene.md",
        "---\nname: continue_scene\nversion: 1\nvariables: [before]\n---\nEdited {{before}}\n",
    );
    let (registry, warnings) = ws.load().await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let listed = registry.list().await.unwrap();
    let scene = listed
        .iter()
        .find(|s| s.name == "continue_scene" && s.version == 1)
        .unwrap();
    assert_eq!((scene.usage_count, scene.success_count), (3, 2));
    assert!((scene.success_rate - 2.0 / 3.0).abs() < 1e-9);
    let v2 = listed
        .iter()
        .find(|s| s.name == "inline_continuation" && s.version == 2)
        .unwrap();
    assert_eq!((v2.active, v2.weight), (true, 0.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_met_by_another_process_lock_are_kept_and_written_with_the_next_count() {
    // Found by `tests/crash_database_lock.rs`: every count used to wait the full busy timeout
    // (3 s) on the one shared connection, so a few suggestions shown under a lock queued up
    // ahead of the author's next command for longer than any editor waits.
    let ws = Workspace::new();
    let (registry, _) = ws.load().await;
    let other = rusqlite::Connection::open(&ws.db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let counting = async {
        for _ in 0..20 {
            registry.record_usage("continue_scene", 1).await.unwrap();
        }
        assert!(registry.record_success("continue_scene", 1).await.unwrap());
    };
    // Twenty counts under a lock finish in well under one busy timeout each.
    tokio::time::timeout(std::time::Duration::from_secs(20), counting)
        .await
        .expect("counts under a lock never wait for it");
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);

    registry.record_usage("continue_scene", 1).await.unwrap();
    let listed = registry.list().await.unwrap();
    let scene = listed
        .iter()
        .find(|s| s.name == "continue_scene" && s.version == 1)
        .unwrap();
    assert_eq!((scene.usage_count, scene.success_count), (21, 1));
}

#[tokio::test]
async fn a_workspace_file_with_a_bundled_name_and_version_is_the_only_text_ever_rendered() {
    // The bundle has inline_continuation versions 1 and 2 (an A/B pair). Replacing version 1 must
    // not leave the bundled version 2 in the pool.
    let ws = Workspace::new();
    let mine = ws.write(
        "ghost.md",
        "---\nname: inline_continuation\nversion: 1\nvariables: [before]\n---\nMY GHOST {{before}}\n",
    );
    let (registry, warnings) = ws.load().await;
    assert!(warnings.is_empty(), "{warnings:?}");
    registry.set_rng(StdRng::seed_from_u64(7));
    for _ in 0..200 {
        let chosen = registry.select("inline_continuation").unwrap();
        let text = registry
            .render(&chosen, &Vars::new().with("before", "x"))
            .unwrap();
        assert_eq!(text, "MY GHOST x");
    }
    let listed = registry.list().await.unwrap();
    let ghost: Vec<_> = listed
        .iter()
        .filter(|s| s.name == "inline_continuation")
        .collect();
    assert_eq!(ghost.len(), 1, "{ghost:?}");
    assert_eq!(ghost[0].source, mine.display().to_string());
}

#[tokio::test]
async fn a_template_declaring_a_variable_nobody_supplies_is_not_used_and_named_in_a_warning() {
    let ws = Workspace::new();
    let odd = ws.write(
        "odd.md",
        "---\nname: weather\nversion: 1\naction: Describe the weather\nvariables: [before, mood]\n---\n{{mood}} {{before}}\n",
    );
    // `selection` is an action's, not ghost text's.
    let ghost = ws.write(
        "ghost.md",
        "---\nname: inline_continuation\nversion: 5\nvariables: [before, selection]\n---\n{{selection}} {{before}}\n",
    );
    // Everything an action supplies is fine for an action.
    ws.write(
        "full.md",
        "---\nname: full\nversion: 1\naction: Everything\nvariables: [before, after, heading, notes, story, language, previous, selection, tone, character, instruction]\n---\n{{before}}{{after}}{{heading}}{{notes}}{{story}}{{language}}{{previous}}{{selection}}{{tone}}{{character}}{{instruction}}\n",
    );
    let (registry, warnings) = ws.load().await;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let about = |path: &Path| {
        warnings
            .iter()
            .find(|w| w.file == path.display().to_string())
            .unwrap_or_else(|| panic!("no warning for {}: {warnings:?}", path.display()))
            .to_string()
    };
    assert!(about(&odd).contains("`mood`"), "{}", about(&odd));
    assert!(about(&ghost).contains("`selection`"), "{}", about(&ghost));
    assert!(about(&ghost).contains("ghost text"), "{}", about(&ghost));
    assert!(registry.template("weather", 1).is_none());
    assert!(registry.template("inline_continuation", 5).is_none());
    assert!(registry.template("full", 1).is_some());
    let supplied = storyteller_lsp::prompts::ACTION_VARIABLES;
    assert!(
        storyteller_lsp::prompts::INLINE_VARIABLES
            .iter()
            .all(|v| supplied.contains(v))
    );
}

#[tokio::test]
async fn workspace_prompts_with_an_action_title_become_custom_actions_of_that_workspace() {
    use storyteller_lsp::prompts::CustomPlacement;
    let ws = Workspace::new();
    ws.write(
        "tighten.md",
        "---\nname: tighten\nversion: 1\naction: Tighten prose\nplacement: replace\nvariables: [selection]\n---\nTighten: {{selection}}\n",
    );
    ws.write(
        "weather.md",
        "---\nname: weather\nversion: 1\naction: Describe the weather\nvariables: [before]\n---\nWeather after {{before}}\n",
    );
    let bad = ws.write(
        "bad.md",
        "---\nname: bad\nversion: 1\naction: Bad\nplacement: sideways\n---\nx\n",
    );
    let stray = ws.write(
        "stray.md",
        "---\nname: stray\nversion: 1\nplacement: after\n---\nx\n",
    );
    let (registry, warnings) = ws.load().await;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(
        |w| w.file == bad.display().to_string() && w.message.contains("cursor, replace, after")
    ));
    assert!(
        warnings
            .iter()
            .any(|w| w.file == stray.display().to_string() && w.message.contains("add `action:"))
    );

    let customs = registry.custom_actions(&ws.root);
    let listed: Vec<(&str, &str, CustomPlacement)> = customs
        .iter()
        .map(|(name, a)| (name.as_str(), a.title.as_str(), a.placement))
        .collect();
    assert_eq!(
        listed,
        [
            ("weather", "Describe the weather", CustomPlacement::Cursor),
            ("tighten", "Tighten prose", CustomPlacement::Replace),
        ]
    );
    // Another workspace does not see them.
    assert!(registry.custom_actions(Path::new("/elsewhere")).is_empty());
    assert!(registry.custom_action(&ws.root, "tighten").is_some());
    assert!(registry.custom_action(&ws.root, "continue_scene").is_none());
    // prompts.list shows which templates are actions, and where their text goes.
    let summaries = registry.list().await.unwrap();
    let tighten = summaries.iter().find(|s| s.name == "tighten").unwrap();
    assert_eq!(tighten.action.as_deref(), Some("Tighten prose"));
    assert_eq!(tighten.placement, Some("replace"));
    let scene = summaries
        .iter()
        .find(|s| s.name == "continue_scene")
        .unwrap();
    assert_eq!(scene.action, None);
}

#[tokio::test]
async fn partial_accepts_count_with_their_share_and_small_samples_are_not_meaningful() {
    let ws = Workspace::new();
    let (registry, _) = ws.load().await;
    for _ in 0..4 {
        registry
            .record_usage("inline_continuation", 1)
            .await
            .unwrap();
    }
    assert!(
        registry
            .record_success("inline_continuation", 1)
            .await
            .unwrap()
    );
    registry
        .record_partial("inline_continuation", 1, 0.5)
        .await
        .unwrap();
    let listed = registry.list().await.unwrap();
    let v1 = listed
        .iter()
        .find(|s| s.name == "inline_continuation" && s.version == 1)
        .unwrap();
    assert_eq!(
        (v1.usage_count, v1.success_count, v1.partial_count),
        (4, 1, 1)
    );
    assert!(
        (v1.success_rate - 1.5 / 4.0).abs() < 1e-9,
        "{}",
        v1.success_rate
    );
    assert!(!v1.meaningful);
    assert!(v1.note.contains("30"), "{}", v1.note);
}
