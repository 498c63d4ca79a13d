//! Crash safety of start-up (issue 10 item 4): the real binary is killed with SIGKILL inside the
//! schema migration and inside the prompt-template load — held there by a debug-build failpoint
//! (`STORYTELLER_FAILPOINT`, see `src/failpoint.rs`) — and what it leaves on disk is compared,
//! table by table, with what was there before: the old state exactly, never a half-applied one.
//! The next start then completes the work.
//!
//! Killed provider changes (add, update/rotate, remove, sessions) are proven in
//! `tests/admin_crash.rs`.

mod admin_support;

use std::path::Path;

use admin_support::{Binary, kill_command_at, rows, text};
use rusqlite::Connection;
use storyteller_lsp::store::{Store, StoreOptions, latest_schema_version};

/// Everything SQLite holds about the schema, the applied migrations, and the rows of the tables
/// that matter here — as text, for whole-state comparisons.
fn snapshot(db: &Path, tables: &[&str]) -> Vec<String> {
    // A plain connection: no migration, no journal-mode change (it reads a WAL left by the kill
    // like any SQLite client would, rolling back what was not committed).
    let conn = Connection::open(db).expect("the database opens");
    let mut out = Vec::new();
    let mut schema = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
        .expect("schema query");
    let objects = schema
        .query_map([], |r| {
            Ok(format!(
                "{} {}: {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?
            ))
        })
        .expect("schema")
        .collect::<Result<Vec<_>, _>>()
        .expect("schema rows");
    out.extend(objects);
    let names: Vec<String> = out
        .iter()
        .filter_map(|l| l.strip_prefix("table "))
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect();
    for table in tables
        .iter()
        .map(|t| t.to_string())
        .chain(["refinery_schema_history".to_string()])
    {
        if !names.contains(&table) {
            continue;
        }
        // Every column of every row, in a stable order.
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .expect("rows query");
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut cells = Vec::with_capacity(columns);
                for i in 0..columns {
                    let cell: rusqlite::types::Value = r.get(i)?;
                    cells.push(match table.as_str() {
                        // When it was applied is not state.
                        "refinery_schema_history" if i == 2 => "(time)".to_string(),
                        _ => format!("{cell:?}"),
                    });
                }
                Ok(format!("{table}: {}", cells.join(" | ")))
            })
            .expect("rows")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows read");
        out.extend(rows);
    }
    out
}

fn applied_versions(db: &Path) -> Vec<i64> {
    let conn = Connection::open(db).expect("the database opens");
    let mut stmt = conn
        .prepare("SELECT version FROM refinery_schema_history ORDER BY version")
        .expect("history query");
    stmt.query_map([], |r| r.get(0))
        .expect("history")
        .collect::<Result<_, _>>()
        .expect("versions")
}

const MIGRATION_POINTS: [&str; 2] = ["migrate:after_first_migration", "migrate:before_commit"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_inside_the_first_migration_leaves_an_empty_schema_and_the_next_start_migrates() {
    for failpoint in MIGRATION_POINTS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("storyteller.db");
        let bin = Binary::new(dir.path());
        kill_command_at(bin.command(&["provider", "list", "--json"]), failpoint, "").await;

        // Only refinery's bookkeeping table, created in its own transaction before the
        // migrations, and no migration recorded in it.
        let left = snapshot(&db, &[]);
        let tables: Vec<&String> = left.iter().filter(|l| l.starts_with("table ")).collect();
        assert_eq!(tables.len(), 1, "{failpoint}: {left:#?}");
        assert!(
            tables[0].starts_with("table refinery_schema_history"),
            "{failpoint}: {left:#?}"
        );
        assert!(applied_versions(&db).is_empty(), "{failpoint}");

        let out = bin.run(&["provider", "list", "--json"], "").await;
        assert!(out.status.success(), "{failpoint}: {}", text(&out.stderr));
        let versions = applied_versions(&db);
        assert_eq!(
            versions.last().copied(),
            Some(i64::from(latest_schema_version())),
            "{failpoint}"
        );
        // One per migration file (version numbers may have gaps between branches).
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
            })
            .count();
        assert_eq!(versions.len(), files, "{failpoint}");
    }
}

/// A database at schema 4 (before provider order/options, prompt statistics, the request log and
/// the credential journal) holding a provider, as an older release left it.
fn old_database(db: &Path) {
    let store = Store::open_with(
        db,
        StoreOptions {
            migrate_up_to: Some(4),
            ..StoreOptions::default()
        },
    )
    .expect("a schema-4 database");
    store
        .blocking(|conn| {
            conn.execute_batch(
                "INSERT INTO ai_providers (project_id, provider_name, display_name, api_endpoint, \
                 model_name, is_primary, is_active) \
                 VALUES (1, 'claude', 'Claude for drafts', 'https://api.anthropic.com/v1', \
                 'claude-sonnet-4-5', 1, 1);",
            )?;
            Ok(())
        })
        .expect("a provider row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_inside_an_upgrade_leaves_the_old_schema_and_data_and_the_next_start_upgrades() {
    const TABLES: &[&str] = &["projects", "ai_providers", "prompt_templates"];
    for failpoint in MIGRATION_POINTS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("storyteller.db");
        old_database(&db);
        let before = snapshot(&db, TABLES);
        assert_eq!(applied_versions(&db), vec![1, 2, 3, 4]);

        let bin = Binary::new(dir.path());
        kill_command_at(bin.command(&["provider", "list", "--json"]), failpoint, "").await;
        let after_kill = snapshot(&db, TABLES);
        assert_eq!(
            after_kill, before,
            "{failpoint}: the kill left a schema or data other than the old one"
        );

        let out = bin.run(&["provider", "list", "--json"], "").await;
        assert!(out.status.success(), "{failpoint}: {}", text(&out.stderr));
        assert_eq!(
            applied_versions(&db).last().copied(),
            Some(i64::from(latest_schema_version()))
        );
        let (providers, _) = rows(dir.path());
        assert_eq!(
            providers.len(),
            1,
            "{failpoint}: the provider survived the upgrade"
        );
        assert_eq!(providers[0].display_name, "Claude for drafts");
        assert!(
            text(&out.stdout).contains("Claude for drafts"),
            "{failpoint}"
        );
    }
}

fn write_template(root: &Path, file: &str, version: u32, body: &str) {
    let dir = root.join(".storyteller/prompts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(file),
        format!(
            "---\nname: continue_scene\nversion: {version}\nvariables: [before]\nweight: 1.0\n---\n{body} {{{{before}}}}\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_inside_the_prompt_load_leaves_the_templates_and_statistics_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let db = dir.path().join("storyteller.db");
    let project = workspace.path().to_string_lossy().into_owned();
    let bin = Binary::new(dir.path());
    let list = ["prompts", "list", "--json", "--project", project.as_str()];

    // A first start records the bundled templates and the workspace's version 7; the author's
    // use is counted.
    write_template(workspace.path(), "scene-v7.md", 7, "Write the next beat.");
    let out = bin.run(&list, "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE prompt_templates SET usage_count = 5, success_count = 2;")
        .unwrap();
    let before = snapshot(&db, &["prompt_templates"]);
    assert!(before.iter().any(|r| r.contains("Write the next beat.")));

    // The author edits version 7 and adds version 8; the next start is killed after writing
    // every template and before committing.
    write_template(
        workspace.path(),
        "scene-v7.md",
        7,
        "Write the next beat, slowly.",
    );
    write_template(
        workspace.path(),
        "scene-v8.md",
        8,
        "Write what happens next.",
    );
    kill_command_at(bin.command(&list), "prompts:before_commit", "").await;
    assert_eq!(
        snapshot(&db, &["prompt_templates"]),
        before,
        "the kill left some of the new templates"
    );

    // The next start loads them all and keeps the statistics.
    let out = bin.run(&list, "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = snapshot(&db, &["prompt_templates"]);
    assert!(
        after
            .iter()
            .any(|r| r.contains("Write the next beat, slowly."))
    );
    assert!(after.iter().any(|r| r.contains("Write what happens next.")));
    let v7 = after
        .iter()
        .find(|r| r.contains("Write the next beat, slowly."))
        .expect("version 7");
    assert!(v7.contains("Integer(5)"), "usage kept: {v7}");
}
