//! `storyteller-lsp provider …`, `doctor` and `prompts list` as a terminal user runs them: the
//! built binary, keys on stdin (`--key-stdin`), the file credential store in a temporary data
//! directory, the simulator over loopback. Checks output, exit codes and what was stored.

mod admin_support;

use admin_support::{Binary, accounts, rows, stored_values, text};
use serde_json::Value;
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::SimulatorHandle;

struct Cli {
    _dir: tempfile::TempDir,
    bin: Binary,
    sim: SimulatorHandle,
}

impl Cli {
    async fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let bin = Binary::new(dir.path());
        let sim = SimulatorHandle::start().await.unwrap();
        Cli {
            _dir: dir,
            bin,
            sim,
        }
    }

    fn endpoint(&self, kind: ProviderKind) -> String {
        self.sim.endpoint(kind)
    }

    /// Runs and returns (exit code, stdout, stderr).
    async fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let out = self.bin.run(args, stdin).await;
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    async fn add(&self, kind: &str, key: &str, extra: &[&str]) -> (i32, String, String) {
        let endpoint = self.endpoint(kind.parse().unwrap());
        let mut args = vec![
            "provider",
            "add",
            kind,
            "--endpoint",
            &endpoint,
            "--key-stdin",
        ];
        args.extend_from_slice(extra);
        self.run(&args, &format!("{key}\n")).await
    }

    async fn list_json(&self) -> Vec<Value> {
        let (code, out, err) = self.run(&["provider", "list", "--json"], "").await;
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_test_update_set_primary_remove() {
    let cli = Cli::new().await;

    let (code, out, err) = cli.add("openai", "sk-cli-openai-key-0401", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Provider added successfully: OpenAI (id 1)");
    assert!(err.contains("Testing connection..."), "{err}");
    assert!(
        err.contains("credentials.enc"),
        "the file-store warning: {err}"
    );
    let (code, _, err) = cli
        .add(
            "claude",
            "sk-ant-cli-key-0402",
            &["--display-name", "Claude (work)"],
        )
        .await;
    assert_eq!(code, 0, "{err}");

    // The table: one line per provider, masked keys, never the key.
    let (code, out, _) = cli.run(&["provider", "list"], "").await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID  PROVIDER"), "{out}");
    assert!(lines[1].starts_with("1   openai    OpenAI"), "{out}");
    assert!(
        lines[1].contains("yes      yes     file        ••••0401"),
        "{out}"
    );
    assert!(
        lines[2].contains("Claude (work)") && lines[2].contains("••••0402"),
        "{out}"
    );
    assert!(!out.contains("sk-cli-openai-key-0401"));

    let listed = cli.list_json().await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["provider"], "openai");
    assert_eq!(listed[0]["isPrimary"], true);
    assert_eq!(listed[0]["keySource"], "file");
    assert_eq!(listed[0]["keyHint"], "••••0401");
    assert_eq!(listed[1]["displayName"], "Claude (work)");

    let (code, out, err) = cli.run(&["provider", "test", "--id", "2"], "").await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Connection successful! Model: claude-sonnet-4-5"),
        "{out}"
    );
    let endpoint = cli.endpoint(ProviderKind::Gemini);
    let (code, out, _) = cli
        .run(
            &[
                "provider",
                "test",
                "gemini",
                "--endpoint",
                &endpoint,
                "--key-stdin",
                "--json",
            ],
            "AIza-cli-test-only-0403\n",
        )
        .await;
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["model"], "gemini-2.5-flash");
    assert!(
        !stored_values(&cli.bin.data)
            .await
            .iter()
            .any(|v| v.contains("0403")),
        "test stores nothing"
    );

    let (code, out, err) = cli
        .run(
            &[
                "provider",
                "update",
                "1",
                "--key-stdin",
                "--model",
                "gpt-4o-mini",
            ],
            "sk-cli-rotated-key-0404\n",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "Updated OpenAI (id 1) (connection tested, key replaced)"
    );
    let values = stored_values(&cli.bin.data).await;
    assert!(values.contains(&"sk-cli-rotated-key-0404".to_string()));
    assert!(
        !values.contains(&"sk-cli-openai-key-0401".to_string()),
        "the old key is gone"
    );

    let (code, out, _) = cli.run(&["provider", "set-primary", "2"], "").await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "Claude (work) is now the primary provider.");
    assert_eq!(cli.list_json().await[0]["id"], 2);

    let (code, out, _) = cli.run(&["provider", "remove", "2", "--yes"], "").await;
    assert_eq!(code, 0);
    assert!(out.starts_with("Removed Claude (work) (id 2)."), "{out}");
    assert!(out.contains("OpenAI is now the primary provider."), "{out}");
    let listed = cli.list_json().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["isPrimary"], true);
    assert_eq!(accounts(&cli.bin.data).await, ["project_1_openai"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_of_a_stored_provider_and_of_a_kind() {
    let cli = Cli::new().await;
    cli.add("openai", "sk-cli-models-0405", &[]).await;
    let (code, out, err) = cli.run(&["provider", "models", "1"], "").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.starts_with("gpt-4o")), "{out}");
    let endpoint = cli.endpoint(ProviderKind::Claude);
    let (code, out, err) = cli
        .run(
            &[
                "provider",
                "models",
                "--provider",
                "claude",
                "--endpoint",
                &endpoint,
                "--key-stdin",
                "--json",
            ],
            "sk-ant-models-0406\n",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let models: Value = serde_json::from_str(&out).unwrap();
    assert!(
        models
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "claude-sonnet-4-5")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_scripts_what_happened() {
    let cli = Cli::new().await;
    cli.add("openai", "sk-cli-exit-codes-0407", &[]).await;
    let endpoint = cli.endpoint(ProviderKind::OpenAi);
    let cases: Vec<(&str, Vec<&str>, &str, i32, &str)> = vec![
        (
            "rejected key",
            vec![
                "provider",
                "add",
                "claude",
                "--endpoint",
                &endpoint,
                "--key-stdin",
            ],
            "sk-ant-invalid-0408\n",
            1,
            "",
        ),
        (
            "duplicate kind",
            vec![
                "provider",
                "add",
                "openai",
                "--endpoint",
                &endpoint,
                "--key-stdin",
            ],
            "sk-again-0409\n",
            1,
            "already configured",
        ),
        (
            "empty key",
            vec!["provider", "add", "gemini", "--key-stdin"],
            "\n",
            2,
            "key: must not be empty",
        ),
        (
            "unknown kind",
            vec!["provider", "add", "mistral", "--key-stdin"],
            "k-0410-xxxx\n",
            2,
            "provider: unknown provider kind",
        ),
        (
            "not an http endpoint",
            vec![
                "provider",
                "add",
                "openai",
                "--endpoint",
                "ftp://x/v1",
                "--key-stdin",
            ],
            "k-0411-xxxx\n",
            2,
            "endpoint: must be an http",
        ),
        (
            "option of another kind",
            vec![
                "provider",
                "add",
                "openai",
                "--option",
                "folderId=b1g",
                "--key-stdin",
            ],
            "k-0412-xxxx\n",
            2,
            "option.folderId",
        ),
        (
            "no key and no terminal",
            vec!["provider", "add", "gemini"],
            "",
            2,
            "--key-stdin",
        ),
        ("clap usage", vec!["provider", "remove"], "", 2, ""),
        (
            "remove unknown id",
            vec!["provider", "remove", "42", "--yes"],
            "",
            3,
            "id: no provider with id 42",
        ),
        (
            "update unknown id",
            vec!["provider", "update", "42", "--model", "x"],
            "",
            3,
            "id:",
        ),
        (
            "remove without --yes off a terminal",
            vec!["provider", "remove", "1"],
            "",
            2,
            "--yes",
        ),
    ];
    for (label, args, stdin, code, needle) in cases {
        let (got, _, err) = cli.run(&args, stdin).await;
        assert_eq!(got, code, "{label}: {err}");
        assert!(err.contains(needle), "{label}: {err}");
        assert!(
            !err.contains("sk-ant-invalid-0408"),
            "{label}: the key leaked: {err}"
        );
    }
    assert_eq!(rows(&cli.bin.data).0.len(), 1, "nothing else was stored");
    assert_eq!(accounts(&cli.bin.data).await, ["project_1_openai"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_credentials_file_exits_with_4() {
    let cli = Cli::new().await;
    cli.add("openai", "sk-cli-corrupt-0413", &[]).await;
    let file = cli.bin.data.join("credentials.enc");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let (code, _, err) = cli.run(&["provider", "list"], "").await;
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("credentials.enc") && err.contains("cannot be read"),
        "{err}"
    );
    let (code, _, err) = cli.add("claude", "sk-ant-corrupt-0414", &[]).await;
    assert_eq!(code, 4, "{err}");
    assert_eq!(rows(&cli.bin.data).0.len(), 1, "no row without its key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_in_plain_words_and_fails_on_problems() {
    let cli = Cli::new().await;
    let (code, out, err) = cli.run(&["doctor"], "").await;
    assert_eq!(code, 0, "{out}{err}");
    for needle in [
        "Data directory:",
        "Database:",
        "(schema V",
        "Prompts: 7 template versions loaded, 0 warnings",
        "Credential store: the encrypted file",
        "Keychain:",
        "System keys in the environment: none",
        "none configured",
        "Everything looks healthy.",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }

    cli.add("openai", "sk-cli-doctor-0415", &[]).await;
    let (code, out, _) = cli.run(&["doctor", "--check-connections"], "").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("#1 OpenAI — gpt-4o, primary, key: file ••••0415"),
        "{out}"
    );
    assert!(out.contains("connection: ok (gpt-4o"), "{out}");
    assert!(!out.contains("sk-cli-doctor-0415"));

    cli.sim.inject(
        ProviderKind::OpenAi,
        storyteller_lsp::simulator::Fault::InvalidKey,
        None,
    );
    let (code, out, _) = cli.run(&["doctor", "--check-connections"], "").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("PROBLEM: OpenAI: The API key for OpenAI is invalid"),
        "{out}"
    );
    assert!(out.contains("1 problem(s) found."), "{out}");
}

#[tokio::test]
async fn doctor_names_a_database_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("storyteller.db"),
        b"not a database at all, just text",
    )
    .unwrap();
    let out = Binary::new(dir.path()).run(&["doctor"], "").await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Database: cannot be opened"), "{stdout}");
    assert!(stdout.contains("not a StoryTeller database"), "{stdout}");
    assert_eq!(
        std::fs::read(dir.path().join("storyteller.db")).unwrap(),
        b"not a database at all, just text",
        "left untouched"
    );
}

#[tokio::test]
async fn prompts_list_shows_versions_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Binary::new(dir.path());
    let out = bin.run(&["prompts", "list"], "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        ["USES", "ACCEPTED", "PARTIAL", "RATE", "MEANINGFUL"]
            .iter()
            .all(|c| table.contains(c)),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("continue_scene") && l.contains("bundled")),
        "{table}"
    );
    let out = bin.run(&["prompts", "list", "--json"], "").await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &json.as_array().unwrap()[0];
    for field in [
        "name",
        "version",
        "active",
        "weight",
        "usageCount",
        "successCount",
        "partialCount",
        "successRate",
        "meaningful",
        "note",
    ] {
        assert!(first.get(field).is_some(), "{field} missing: {first}");
    }

    // A workspace override of --project is listed too.
    let novel = dir.path().join("novel");
    let prompts = novel.join(".storyteller/prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(
        prompts.join("continue_scene.md"),
        "---\nname: continue_scene\nversion: 9\nvariables: [before]\n---\nGo on: {{before}}\n",
    )
    .unwrap();
    let out = bin
        .run(
            &["prompts", "list", "--project", novel.to_str().unwrap()],
            "",
        )
        .await;
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("continue_scene") && l.contains(" 9 ")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_is_chosen_with_project_and_defaults_to_the_default_project() {
    let cli = Cli::new().await;
    let novel = tempfile::tempdir().unwrap();
    let project = novel.path().to_str().unwrap();
    let (code, _, err) = cli
        .add("openai", "sk-cli-project-0416", &["--project", project])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        cli.list_json().await.is_empty(),
        "not in the default project"
    );
    let (code, out, _) = cli
        .run(&["provider", "list", "--json", "--project", project], "")
        .await;
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (code, _, err) = cli
        .run(
            &["provider", "list", "--project", "/no/such/dir/anywhere"],
            "",
        )
        .await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn prompts_set_active_chooses_a_version_alone_or_with_a_weight() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Binary::new(dir.path());
    let novel = dir.path().join("novel");
    let prompts = novel.join(".storyteller/prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(
        prompts.join("continue_scene.md"),
        "---\nname: continue_scene\nversion: 9\nvariables: [before]\n---\nGo on: {{before}}\n",
    )
    .unwrap();
    let project = novel.to_str().unwrap();
    let versions = |json: &str| -> Vec<(u64, bool, f64)> {
        let listed: Value = serde_json::from_str(json).unwrap();
        let mut rows: Vec<_> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] == "continue_scene")
            .map(|t| {
                (
                    t["version"].as_u64().unwrap(),
                    t["active"].as_bool().unwrap(),
                    t["weight"].as_f64().unwrap(),
                )
            })
            .collect();
        rows.sort_by_key(|r| r.0);
        rows
    };

    // Alone: version 9 becomes the only active one; the plain output names each version.
    let out = bin
        .run(
            &[
                "prompts",
                "set-active",
                "continue_scene",
                "9",
                "--project",
                project,
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("continue_scene v9: active"), "{stdout}");
    assert!(stdout.contains("continue_scene v1: inactive"), "{stdout}");
    let listed = bin
        .run(&["prompts", "list", "--json", "--project", project], "")
        .await;
    let rows = versions(&text(&listed.stdout));
    assert!(
        rows.iter().all(|&(v, active, _)| active == (v == 9)),
        "{rows:?}"
    );

    // With a weight: version 1 joins the A/B pool, version 9 keeps its place.
    let out = bin
        .run(
            &[
                "prompts",
                "set-active",
                "continue_scene",
                "1",
                "--weight",
                "0.25",
                "--json",
                "--project",
                project,
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = versions(&text(&out.stdout));
    assert!(rows.contains(&(1, true, 0.25)), "{rows:?}");
    assert!(
        rows.iter().any(|&(v, active, _)| v == 9 && active),
        "{rows:?}"
    );
    // …and the choice outlives the process.
    let listed = bin
        .run(&["prompts", "list", "--json", "--project", project], "")
        .await;
    assert_eq!(versions(&text(&listed.stdout)), rows);

    // Exit codes as the other commands: 3 not found, 2 invalid argument.
    for (args, code) in [
        (vec!["prompts", "set-active", "no_such_prompt", "1"], 3),
        (vec!["prompts", "set-active", "continue_scene", "77"], 3),
        (
            vec![
                "prompts",
                "set-active",
                "continue_scene",
                "1",
                "--weight=-1",
            ],
            2,
        ),
        (vec!["prompts", "set-active", "continue_scene"], 2),
    ] {
        let out = bin.run(&args, "").await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_file_store_is_a_note_not_the_fallback_warning() {
    let cli = Cli::new().await;
    let (code, _, err) = cli.add("claude", "sk-ant-cli-note-0417", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: Your credentialStore setting is \"file\", so API keys are stored in the encrypted file"),
        "{err}"
    );
    assert!(!err.contains("No usable OS keychain"), "{err}");
    assert!(!err.contains("warning:"), "{err}");
}
