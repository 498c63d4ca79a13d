//! The SQLite store against real database files: schema rules (triggers, UNIQUE, CHECK, foreign
//! keys), migrations (backfill, idempotence, newer versions refused), and the failures an author
//! can meet (a database locked by another process, a damaged or foreign file).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use rusqlite::{Connection, params};
use storyteller_lsp::providers::{AuthType, ProviderKind, ProviderOptions};
use storyteller_lsp::store::projects::{self, ProjectId};
use storyteller_lsp::store::providers::{self, NewProvider, ProviderId, ProviderUpdate};
use storyteller_lsp::store::sessions::{self, SessionName};
use storyteller_lsp::store::{Store, StoreError, StoreOptions, latest_schema_version};

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data").join("storyteller.db")
}

fn quick() -> StoreOptions {
    StoreOptions {
        busy_timeout: Duration::from_millis(200),
        migrate_up_to: None,
    }
}

fn project(store: &Store, root: &str) -> ProjectId {
    store
        .blocking(|c| projects::get_or_create(c, Path::new(root)))
        .unwrap()
        .id
}

fn add(store: &Store, project: ProjectId, kind: ProviderKind, primary: bool) -> ProviderId {
    store
        .blocking(|c| {
            providers::insert(
                c,
                &NewProvider {
                    primary,
                    ..NewProvider::new(project, kind)
                },
            )
        })
        .unwrap()
        .id
}

fn primaries(store: &Store, project: ProjectId) -> Vec<ProviderKind> {
    store
        .blocking(|c| providers::list(c, project))
        .unwrap()
        .into_iter()
        .filter(|p| p.is_primary)
        .map(|p| p.kind)
        .collect()
}

/// Every file in `dir`, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------
// Schema rules

#[test]
fn first_provider_becomes_primary_and_a_new_primary_unprimaries_the_old_one() {
    let store = Store::open_in_memory().unwrap();
    let p = project(&store, "/books/one");
    let other = project(&store, "/books/two");

    let openai = add(&store, p, ProviderKind::OpenAi, false);
    assert_eq!(primaries(&store, p), vec![ProviderKind::OpenAi]);

    add(&store, p, ProviderKind::Claude, false);
    assert_eq!(primaries(&store, p), vec![ProviderKind::OpenAi]);

    add(&store, p, ProviderKind::Gemini, true);
    assert_eq!(primaries(&store, p), vec![ProviderKind::Gemini]);

    store
        .blocking(|c| providers::set_primary(c, openai))
        .unwrap();
    assert_eq!(primaries(&store, p), vec![ProviderKind::OpenAi]);

    // Raw SQL obeys the trigger too: the rule lives in the schema, not in our Rust.
    store
        .blocking(|c| {
            c.execute(
                "UPDATE ai_providers SET is_primary = 1 WHERE provider_name = 'claude'",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    assert_eq!(primaries(&store, p), vec![ProviderKind::Claude]);

    // Other projects are untouched.
    add(&store, other, ProviderKind::Scaleway, true);
    assert_eq!(primaries(&store, p), vec![ProviderKind::Claude]);
    assert_eq!(primaries(&store, other), vec![ProviderKind::Scaleway]);
}

#[test]
fn a_kind_is_configured_once_per_project() {
    let store = Store::open_in_memory().unwrap();
    let a = project(&store, "/books/a");
    let b = project(&store, "/books/b");
    add(&store, a, ProviderKind::DeepSeek, false);
    let err = store
        .blocking(|c| providers::insert(c, &NewProvider::new(a, ProviderKind::DeepSeek)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::DuplicateProvider {
                kind: ProviderKind::DeepSeek
            }
        ),
        "{err:?}"
    );
    // Same kind in another project is fine.
    add(&store, b, ProviderKind::DeepSeek, false);
}

#[test]
fn provider_name_is_checked_by_the_schema() {
    let store = Store::open_in_memory().unwrap();
    let p = project(&store, "/books/a");
    let cases: &[(&str, bool)] = &[
        ("openai", true),
        ("claude", true),
        ("gemini", true),
        ("deepseek", true),
        ("yandex", true),
        ("scaleway", true),
        ("openrouter", true),
        ("anthropic", false),
        ("OpenAI", false),
        ("", false),
    ];
    for (name, accepted) in cases {
        let result = store.blocking(|c| {
            c.execute(
                "INSERT INTO ai_providers (project_id, provider_name, display_name, model_name)
                 VALUES (?1, ?2, 'x', 'm')",
                params![p.0, name],
            )?;
            Ok(())
        });
        assert_eq!(result.is_ok(), *accepted, "{name:?}: {result:?}");
    }
    // custom is a valid name but needs an endpoint.
    let custom = store.blocking(|c| {
        c.execute(
            "INSERT INTO ai_providers (project_id, provider_name, display_name, model_name)
             VALUES (?1, 'custom', 'x', 'm')",
            [p.0],
        )?;
        Ok(())
    });
    assert!(
        matches!(custom, Err(StoreError::Constraint(_))),
        "{custom:?}"
    );
    let custom =
        store.blocking(|c| providers::insert(c, &NewProvider::new(p, ProviderKind::Custom)));
    assert!(
        matches!(custom, Err(StoreError::MissingEndpoint)),
        "{custom:?}"
    );
}

#[test]
fn foreign_keys_are_enforced_and_projects_with_providers_cannot_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(db_path(&dir), quick()).unwrap();
    let on: bool = store
        .blocking(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
        .unwrap();
    assert!(on);

    let ghost = ProjectId(999);
    let err = store
        .blocking(|c| providers::insert(c, &NewProvider::new(ghost, ProviderKind::OpenAi)))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownProject(ProjectId(999))),
        "{err:?}"
    );

    let p = project(&store, "/books/a");
    let id = add(&store, p, ProviderKind::OpenAi, true);
    let err = store.blocking(|c| projects::delete(c, p)).unwrap_err();
    assert!(matches!(err, StoreError::ProjectInUse(_)), "{err:?}");
    assert_eq!(store.blocking(|c| providers::list(c, p)).unwrap().len(), 1);

    store.blocking(|c| providers::delete(c, id)).unwrap();
    store.blocking(|c| projects::delete(c, p)).unwrap();
    let err = store.blocking(|c| projects::get(c, p)).unwrap_err();
    assert!(matches!(err, StoreError::UnknownProject(_)));
}

#[test]
fn session_names_are_checked_by_the_schema() {
    let store = Store::open_in_memory().unwrap();
    let long_ok = "n".repeat(50);
    let too_long = "n".repeat(51);
    let cases: &[(&str, bool)] = &[
        ("abc", true),
        ("work_laptop-2", true),
        (&long_ok, true),
        ("ab", false),
        (&too_long, false),
        ("with space", false),
        ("semi;colon", false),
        ("émile", false),
        ("tab\tname", false),
        ("new\nline", false),
    ];
    for (name, accepted) in cases {
        let result = store.blocking(|c| {
            c.execute(
                "INSERT INTO saved_authentications (provider_name, auth_type, name)
                 VALUES ('openai', 'api_key', ?1)",
                [name],
            )?;
            Ok(())
        });
        assert_eq!(result.is_ok(), *accepted, "{name:?}: {result:?}");
        // The Rust newtype agrees with the schema.
        assert_eq!(SessionName::new(*name).is_ok(), *accepted, "{name:?}");
    }
    let bad_auth = store.blocking(|c| {
        c.execute(
            "INSERT INTO saved_authentications (provider_name, auth_type, name)
             VALUES ('openai', 'password', 'valid_name')",
            [],
        )?;
        Ok(())
    });
    assert!(bad_auth.is_err());
}

#[test]
fn session_names_are_unique_per_provider_and_auth_type() {
    let store = Store::open_in_memory().unwrap();
    let name = SessionName::new("work").unwrap();
    store
        .blocking(|c| sessions::add(c, ProviderKind::OpenAi, AuthType::ApiKey, &name))
        .unwrap();
    let err = store
        .blocking(|c| sessions::add(c, ProviderKind::OpenAi, AuthType::ApiKey, &name))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateSession { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("work"));
    // Same name, other auth type or provider: allowed.
    store
        .blocking(|c| sessions::add(c, ProviderKind::OpenAi, AuthType::Oauth, &name))
        .unwrap();
    store
        .blocking(|c| sessions::add(c, ProviderKind::Claude, AuthType::ApiKey, &name))
        .unwrap();
    let listed = store.blocking(|c| sessions::list(c, None)).unwrap();
    assert_eq!(listed.len(), 3);
    let openai = store
        .blocking(|c| sessions::list(c, Some(ProviderKind::OpenAi)))
        .unwrap();
    assert_eq!(openai.len(), 2);
}

#[test]
fn removing_a_session_detaches_the_providers_that_used_it() {
    let store = Store::open_in_memory().unwrap();
    let p = project(&store, "/books/a");
    let name = SessionName::new("personal").unwrap();
    let session = store
        .blocking(|c| sessions::add(c, ProviderKind::Gemini, AuthType::ApiKey, &name))
        .unwrap();
    let id = store
        .blocking(|c| {
            providers::insert(
                c,
                &NewProvider {
                    session_id: Some(session.id),
                    ..NewProvider::new(p, ProviderKind::Gemini)
                },
            )
        })
        .unwrap()
        .id;
    let found = store
        .blocking(|c| sessions::lookup(c, ProviderKind::Gemini, AuthType::ApiKey, &name))
        .unwrap();
    assert_eq!(found.map(|s| s.id), Some(session.id));

    let removed = store.blocking(|c| sessions::remove(c, session.id)).unwrap();
    assert_eq!(removed.name, name);
    let row = store.blocking(|c| providers::get(c, id)).unwrap();
    assert_eq!(row.session_id, None);
    let gone = store
        .blocking(|c| sessions::lookup(c, ProviderKind::Gemini, AuthType::ApiKey, &name))
        .unwrap();
    assert!(gone.is_none());
    let err = store
        .blocking(|c| sessions::remove(c, session.id))
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownSession(_)));
}

// ---------------------------------------------------------------------------------------------
// Providers repository

#[test]
fn providers_list_primary_first_then_by_position_and_filter_inactive() {
    let store = Store::open_in_memory().unwrap();
    let p = project(&store, "/books/a");
    let openai = add(&store, p, ProviderKind::OpenAi, false); // position 0, primary (first)
    let claude = add(&store, p, ProviderKind::Claude, false); // position 1
    let scaleway = add(&store, p, ProviderKind::Scaleway, false); // position 2
    store
        .blocking(|c| providers::set_primary(c, scaleway))
        .unwrap();
    // Move claude behind openai.
    store
        .blocking(|c| {
            providers::update(
                c,
                claude,
                &ProviderUpdate {
                    position: Some(10),
                    ..ProviderUpdate::default()
                },
            )
        })
        .unwrap();
    let order: Vec<_> = store
        .blocking(|c| providers::list(c, p))
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(order, vec![scaleway, openai, claude]);

    store
        .blocking(|c| providers::set_active(c, openai, false))
        .unwrap();
    let active: Vec<_> = store
        .blocking(|c| providers::list_active(c, p))
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active, vec![scaleway, claude]);
    assert_eq!(
        store.blocking(|c| providers::next_position(c, p)).unwrap(),
        11
    );
}

#[test]
fn provider_fields_update_and_read_back() {
    let store = Store::open_in_memory().unwrap();
    let p = project(&store, "/books/a");
    let id = add(&store, p, ProviderKind::Yandex, false);
    let row = store.blocking(|c| providers::get(c, id)).unwrap();
    assert_eq!(row.model, "yandexgpt-lite/latest");
    assert_eq!(row.display_name, "Yandex AI Studio");
    assert_eq!(row.api_endpoint, None);
    assert_eq!(
        row.endpoint(),
        "https://llm.api.cloud.yandex.net/foundationModels/v1"
    );
    assert!(row.last_used_at.is_none());

    let options = ProviderOptions {
        folder_id: Some("b1gexample".into()),
        ..ProviderOptions::default()
    };
    let updated = store
        .blocking(|c| {
            providers::update(
                c,
                id,
                &ProviderUpdate {
                    display_name: Some("Yandex (work)".into()),
                    endpoint: Some(Some("http://127.0.0.1:9/foundationModels/v1".into())),
                    model: Some("yandexgpt/latest".into()),
                    options: Some(options.clone()),
                    ..ProviderUpdate::default()
                },
            )
        })
        .unwrap();
    assert_eq!(updated.display_name, "Yandex (work)");
    assert_eq!(updated.model, "yandexgpt/latest");
    assert_eq!(updated.options, options);
    assert_eq!(updated.endpoint(), "http://127.0.0.1:9/foundationModels/v1");
    let config = updated.to_config(None);
    assert_eq!(config.options.folder_id.as_deref(), Some("b1gexample"));

    // Back to the catalogue endpoint; touch last use.
    let reset = store
        .blocking(|c| {
            providers::update(
                c,
                id,
                &ProviderUpdate {
                    endpoint: Some(None),
                    ..ProviderUpdate::default()
                },
            )
        })
        .unwrap();
    assert_eq!(reset.api_endpoint, None);
    store
        .blocking(|c| providers::touch_last_used(c, id))
        .unwrap();
    assert!(
        store
            .blocking(|c| providers::get(c, id))
            .unwrap()
            .last_used_at
            .is_some()
    );

    let ghost = ProviderId(4242);
    for result in [
        store.blocking(|c| providers::get(c, ghost)).map(|_| ()),
        store
            .blocking(|c| providers::set_primary(c, ghost))
            .map(|_| ()),
        store.blocking(|c| providers::touch_last_used(c, ghost)),
        store.blocking(|c| providers::delete(c, ghost)).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(StoreError::UnknownProvider(ProviderId(4242)))),
            "{result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Migrations

#[test]
fn v4_backfills_a_default_session_for_every_configured_provider() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let v3 = Store::open_with(
            &path,
            StoreOptions {
                migrate_up_to: Some(3),
                ..quick()
            },
        )
        .unwrap();
        assert_eq!(v3.schema_version().unwrap(), 3);
        v3.blocking(|c| {
            c.execute_batch(
                "INSERT INTO projects (name, root_path) VALUES ('a', '/a'), ('b', '/b');
                 INSERT INTO ai_providers (project_id, provider_name, display_name, model_name, is_primary)
                 VALUES (2, 'openai', 'OpenAI', 'gpt-4o', 1),
                        (2, 'claude', 'Claude', 'claude-sonnet-4-5', 0),
                        (3, 'openai', 'OpenAI', 'gpt-4o', 1);",
            )?;
            Ok(())
        })
        .unwrap();
    }
    let store = Store::open_with(&path, quick()).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_schema_version());

    let all = store.blocking(|c| sessions::list(c, None)).unwrap();
    let names: Vec<_> = all
        .iter()
        .map(|s| (s.kind, s.auth_type, s.name.as_str().to_string()))
        .collect();
    assert_eq!(
        names,
        vec![
            (
                ProviderKind::Claude,
                AuthType::ApiKey,
                "default_claude_api_key".to_string()
            ),
            (
                ProviderKind::OpenAi,
                AuthType::ApiKey,
                "default_openai_api_key".to_string()
            ),
        ]
    );
    for p in [ProjectId(2), ProjectId(3)] {
        for row in store.blocking(|c| providers::list(c, p)).unwrap() {
            let session = row
                .session_id
                .expect("backfilled provider points at a session");
            let s = store.blocking(|c| sessions::get(c, session)).unwrap();
            assert_eq!(s.kind, row.kind);
            assert_eq!(s.name, SessionName::default_for(row.kind, AuthType::ApiKey));
        }
    }
    // V5 kept the order the providers were added in.
    let positions: Vec<_> = store
        .blocking(|c| providers::list(c, ProjectId(2)))
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.position))
        .collect();
    assert_eq!(
        positions,
        vec![(ProviderKind::OpenAi, 0), (ProviderKind::Claude, 1)]
    );
}

/// Every row of `table`, each column as text, in id order.
fn dump(conn: &Connection, table: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |row| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = row.get(i)?;
                Ok(match v {
                    rusqlite::types::Value::Null => None,
                    rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                    rusqlite::types::Value::Real(f) => Some(f.to_string()),
                    rusqlite::types::Value::Text(t) => Some(t),
                    rusqlite::types::Value::Blob(_) => Some("<blob>".into()),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The names of the schema's indexes and triggers on `table`.
fn schema_objects(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(
            "SELECT type || ' ' || name FROM sqlite_master
             WHERE tbl_name = ?1 AND type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%'
             ORDER BY 1",
        )
        .unwrap();
    stmt.query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn v10_rebuilds_the_kind_lists_as_a_provider_kinds_table_and_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let tables = [
        "ai_providers",
        "saved_authentications",
        "request_log",
        "credential_journal",
    ];
    let before = {
        let v9 = Store::open_with(
            &path,
            StoreOptions {
                migrate_up_to: Some(9),
                ..quick()
            },
        )
        .unwrap();
        assert_eq!(v9.schema_version().unwrap(), 9);
        v9.blocking(|c| {
            c.execute_batch(
                "INSERT INTO projects (name, root_path) VALUES ('a', '/a'), ('b', '/b');
                 INSERT INTO saved_authentications (provider_name, auth_type, name, last_used_at)
                 VALUES ('openai', 'api_key', 'work', '2026-01-01T00:00:00.000Z'),
                        ('scaleway', 'oauth', 'eu-laptop', NULL);
                 INSERT INTO ai_providers (project_id, provider_name, display_name, model_name,
                                           is_primary, session_id, position, options, api_endpoint)
                 VALUES (2, 'openai', 'OpenAI', 'gpt-4o', 1, 1, 0, '{\"organization\":\"o\"}', NULL),
                        (2, 'custom', 'Ollama', 'llama3.2', 0, NULL, 1, '{}', 'http://127.0.0.1:11434/v1'),
                        (3, 'scaleway', 'Scaleway', 'mistral', 1, 2, 0, '{}', NULL);
                 INSERT INTO request_log (provider_id, provider_name, action, outcome, latency_ms)
                 VALUES (1, 'openai', 'inline', 'ok', 120), (NULL, 'claude', 'describe', 'timeout', 30000);
                 INSERT INTO credential_journal (operation, account, provider_name, project_id, display_name)
                 VALUES ('add_provider', 'project_2_openai', 'openai', 2, 'OpenAI');
                 INSERT INTO credential_journal (operation, account, provider_name, auth_type, session_name, display_name)
                 VALUES ('add_session', 'session_scaleway_oauth_eu-laptop', 'scaleway', 'oauth', 'eu-laptop', 'eu-laptop');",
            )?;
            Ok(())
        })
        .unwrap();
        v9.blocking(|c| {
            Ok(tables
                .iter()
                .map(|t| (dump(c, t), schema_objects(c, t)))
                .collect::<Vec<_>>())
        })
        .unwrap()
    };
    let store = Store::open_with(&path, quick()).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_schema_version());
    store
        .blocking(|c| {
            for (table, (rows, objects)) in tables.iter().zip(&before) {
                let mut after = dump(c, table);
                if *table == "saved_authentications" {
                    // V11 appended expires_at (NULL for every existing session).
                    for row in &mut after {
                        assert_eq!(row.pop(), Some(None));
                    }
                }
                if *table == "request_log" {
                    // V12 inserted model after provider_name (NULL for every earlier request).
                    for row in &mut after {
                        assert_eq!(row.remove(3), None);
                    }
                }
                assert_eq!(&after, rows, "{table} rows");
                assert_eq!(
                    &schema_objects(c, table),
                    objects,
                    "{table} indexes and triggers"
                );
            }
            // The references survived the rebuild (no ON DELETE action ran).
            let session: Option<i64> = c.query_row(
                "SELECT session_id FROM ai_providers WHERE id = 1",
                [],
                |r| r.get(0),
            )?;
            assert_eq!(session, Some(1));
            let kinds: Vec<String> = c
                .prepare("SELECT name FROM provider_kinds ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut ours: Vec<String> = ProviderKind::ALL
                .iter()
                .map(|k| k.as_str().to_string())
                .collect();
            ours.sort();
            assert_eq!(kinds, ours, "provider_kinds has one row per ProviderKind");
            // Foreign keys are on again, and each kind column now references provider_kinds.
            for (table, extra) in [
                (
                    "ai_providers",
                    "project_id, display_name, model_name) VALUES (2, 'x', 'm'",
                ),
                (
                    "saved_authentications",
                    "auth_type, name) VALUES ('api_key', 'abc'",
                ),
                (
                    "request_log",
                    "action, outcome, latency_ms) VALUES ('a', 'ok', 1",
                ),
            ] {
                let col_sql = |kind: &str| {
                    format!(
                        "INSERT INTO {table} (provider_name, {})",
                        extra.replacen(") VALUES (", &format!(") VALUES ('{kind}', "), 1)
                    )
                };
                let refused = c.execute(&col_sql("anthropic"), []);
                assert!(refused.is_err(), "{table} took an unknown kind");
                c.execute(&col_sql("openrouter"), [])
                    .unwrap_or_else(|e| panic!("{table} refused openrouter: {e}"));
            }
            Ok(())
        })
        .unwrap();
    // The store's own repositories accept the new kind.
    let p = project(&store, "/c");
    add(&store, p, ProviderKind::OpenRouter, true);
    assert_eq!(primaries(&store, p), vec![ProviderKind::OpenRouter]);
}

#[test]
fn opening_twice_applies_nothing_new_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let count_history = |store: &Store| -> i64 {
        store
            .blocking(|c| {
                Ok(
                    c.query_row("SELECT count(*) FROM refinery_schema_history", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap()
    };
    // One history row per migration file (version numbers may have gaps between branches).
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count() as i64;
    let first = Store::open_with(&path, quick()).unwrap();
    let p = project(&first, "/books/a");
    add(&first, p, ProviderKind::Claude, true);
    assert_eq!(count_history(&first), migrations);
    drop(first);

    for _ in 0..2 {
        let again = Store::open_with(&path, quick()).unwrap();
        assert_eq!(count_history(&again), migrations);
        assert_eq!(again.schema_version().unwrap(), latest_schema_version());
        assert_eq!(primaries(&again, p), vec![ProviderKind::Claude]);
    }
}

#[test]
fn a_database_from_a_newer_version_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let newer = latest_schema_version() + 5;
    {
        let store = Store::open_with(&path, quick()).unwrap();
        let p = project(&store, "/books/a");
        add(&store, p, ProviderKind::OpenAi, true);
        store
            .blocking(|c| {
                c.execute(
                    "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
                     VALUES (?1, 'from_the_future', '2030-01-01T00:00:00Z', '1')",
                    [newer],
                )?;
                Ok(())
            })
            .unwrap();
    }
    let before = snapshot(path.parent().unwrap());

    let err = Store::open_with(&path, quick()).unwrap_err();
    match &err {
        StoreError::NewerSchema {
            path: p,
            found,
            supported,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*found, newer);
            assert_eq!(*supported, latest_schema_version());
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("schema V{newer}")), "{text}");
    assert!(
        text.contains(&format!("up to V{}", latest_schema_version())),
        "{text}"
    );
    assert!(text.contains("Upgrade storyteller-lsp"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");

    assert_eq!(snapshot(path.parent().unwrap()), before);
}

// ---------------------------------------------------------------------------------------------
// Damaged, foreign and locked databases

fn assert_corrupt_and_untouched(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let before = snapshot(path.parent().unwrap());
    let err = Store::open_with(path, quick()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("not a StoryTeller database or is damaged"),
        "{text}"
    );
    assert!(text.contains("left untouched"), "{text}");
    assert_eq!(
        snapshot(path.parent().unwrap()),
        before,
        "the file (and its directory) changed"
    );
}

/// Deterministic pseudo-random bytes (xorshift), so a failure reproduces.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn random_bytes_are_reported_as_not_a_database_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    assert_corrupt_and_untouched(&db_path(&dir), &noise(8192, 0x5eed));
    let dir = tempfile::tempdir().unwrap();
    // A text file someone saved under the database's name.
    assert_corrupt_and_untouched(
        &db_path(&dir),
        b"Chapter 1\n\nThe rain had not stopped for days.\n",
    );
}

#[test]
fn a_damaged_sqlite_file_is_reported_and_left_untouched() {
    // A valid header followed by garbage.
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(noise(4096 * 3 - 16, 42));
    assert_corrupt_and_untouched(&path, &bytes);
}

#[test]
fn a_truncated_database_is_reported_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = Store::open_with(&path, quick()).unwrap();
        // Enough rows to spread the database over many pages.
        store
            .blocking(|c| {
                let tx = c.transaction()?;
                for i in 0..400 {
                    projects::get_or_create(&tx, Path::new(&format!("/books/volume-{i:04}")))?;
                }
                tx.commit()?;
                Ok(())
            })
            .unwrap();
    }
    let full = std::fs::read(&path).unwrap();
    assert!(
        full.len() > 8 * 4096,
        "database too small to truncate: {}",
        full.len()
    );
    std::fs::remove_file(&path).unwrap();
    assert_corrupt_and_untouched(&path, &full[..full.len() / 2]);
}

#[test]
fn a_database_with_a_damaged_page_is_reported_before_anything_is_written() {
    // Size and header intact, the schema readable, one data page overwritten: only an integrity
    // check at open time notices, before WAL or migrations could write.
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = Store::open_with(&path, quick()).unwrap();
        store
            .blocking(|c| {
                let tx = c.transaction()?;
                for i in 0..400 {
                    projects::get_or_create(&tx, Path::new(&format!("/books/volume-{i:04}")))?;
                }
                tx.commit()?;
                Ok(())
            })
            .unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    let last_page = bytes.len() - page;
    bytes[last_page..].copy_from_slice(&noise(page, 7));
    std::fs::remove_file(&path).unwrap();
    assert_corrupt_and_untouched(&path, &bytes);
}

#[test]
fn another_applications_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE recipes (id INTEGER PRIMARY KEY, title TEXT);
             INSERT INTO recipes (title) VALUES ('bread');",
        )
        .unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_corrupt_and_untouched(&path, &bytes);
}

/// A child process (Python's sqlite3, not our code) that holds `BEGIN EXCLUSIVE` on a database
/// until dropped.
struct LockHolder {
    child: Child,
    stdin: Option<ChildStdin>,
}

const HOLD_LOCK: &str = r#"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
if sys.argv[2] != "keep":
    con.execute("PRAGMA journal_mode=" + sys.argv[2]).fetchall()
con.execute("BEGIN EXCLUSIVE")
con.execute("UPDATE projects SET name = name")
print("locked", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
"#;

impl LockHolder {
    /// `journal_mode`: "keep" (WAL, as the store left it: readers still read) or "delete"
    /// (rollback journal: the exclusive lock blocks readers too).
    fn hold(path: &Path, journal_mode: &str) -> LockHolder {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(HOLD_LOCK)
            .arg(path)
            .arg(journal_mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is installed");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "locked", "the lock holder did not start");
        let stdin = child.stdin.take();
        LockHolder { child, stdin }
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

fn create_database(path: &Path) -> ProjectId {
    let store = Store::open_with(path, quick()).unwrap();
    project(&store, "/books/a")
}

#[test]
fn a_write_while_another_process_holds_the_lock_reports_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let p = create_database(&path);
    let holder = LockHolder::hold(&path, "keep");

    // WAL: the store still opens and reads…
    let store = Store::open_with(&path, quick()).unwrap();
    assert_eq!(store.blocking(|c| providers::list(c, p)).unwrap().len(), 0);
    // …but a write waits at most the busy timeout, then says what happened.
    let err = store
        .blocking(|c| providers::insert(c, &NewProvider::new(p, ProviderKind::OpenAi)))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { path: at } if at == &path),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("is locked by another process"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");

    drop(holder);
    store
        .blocking(|c| providers::insert(c, &NewProvider::new(p, ProviderKind::OpenAi)))
        .unwrap();
}

#[test]
fn opening_a_database_locked_exclusively_reports_locked_within_the_default_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    create_database(&path);
    let holder = LockHolder::hold(&path, "delete");

    // The default options, on a thread: the watchdog turns a hang into a failure instead of a
    // stuck test run. It is far above the 3 s busy timeout; it measures nothing.
    let (tx, rx) = std::sync::mpsc::channel();
    let open_path = path.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Store::open(&open_path).map(|_| ()));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("opening a locked database hung");
    let err = result.unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { path: at } if at == &path),
        "{err:?}"
    );

    drop(holder);
    Store::open_with(&path, quick()).unwrap();
}

#[test]
fn migrating_a_locked_older_database_reports_locked_and_migrates_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    drop(
        Store::open_with(
            &path,
            StoreOptions {
                migrate_up_to: Some(4),
                ..quick()
            },
        )
        .unwrap(),
    );
    let holder = LockHolder::hold(&path, "keep");
    let err = Store::open_with(&path, quick()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    drop(holder);
    let store = Store::open_with(&path, quick()).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_schema_version());
}

// ---------------------------------------------------------------------------------------------
// Async API

#[tokio::test(flavor = "current_thread")]
async fn async_calls_run_off_the_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_async(db_path(&dir), quick()).await.unwrap();
    let runtime_thread = std::thread::current().id();

    // The closure blocks until the runtime thread sends. Were it run on the (single) runtime
    // thread, the send would never happen and the closure would give up after 10 s.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let handle = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .call(move |_conn| {
                    let here = std::thread::current().id();
                    rx.recv_timeout(Duration::from_secs(10))
                        .map_err(|e| StoreError::TaskFailed(format!("never unblocked: {e}")))?;
                    Ok(here)
                })
                .await
        }
    });
    tokio::task::yield_now().await;
    tx.send(()).unwrap();
    let ran_on = handle.await.unwrap().unwrap();
    assert_ne!(ran_on, runtime_thread);

    // And ordinary async use works end to end.
    let p = store
        .call(|c| projects::get_or_create(c, Path::new("/books/async")))
        .await
        .unwrap()
        .id;
    let row = store
        .call(move |c| providers::insert(c, &NewProvider::new(p, ProviderKind::Claude)))
        .await
        .unwrap();
    assert!(row.is_primary);
}
