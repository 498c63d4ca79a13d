//! Issue 15 over the terminal commands, with the built binary against the simulator: a custom
//! provider without a model, providers on the system key (`--no-key` with `OPENAI_API_KEY`),
//! `provider stats`, and the database checkpointed and closed when a command ends.

mod admin_support;

use std::time::Duration;

use admin_support::{Binary, accounts, rows, text};
use serde_json::Value;
use storyteller_lsp::providers::{ErrorKind, ProviderKind};
use storyteller_lsp::simulator::{Fault, SimulatorHandle};
use storyteller_lsp::store::ProviderId;
use storyteller_lsp::store::usage::{self, ActionName, Outcome, RequestRecord};

const SYSTEM_KEY: &str = "sk-system-key-from-env-7d21";

struct Cli {
    dir: tempfile::TempDir,
    bin: Binary,
    sim: SimulatorHandle,
}

impl Cli {
    async fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let bin = Binary::new(dir.path());
        let sim = SimulatorHandle::start().await.unwrap();
        Cli { dir, bin, sim }
    }

    async fn run_with(
        &self,
        args: &[&str],
        stdin: &str,
        vars: &[(&str, &str)],
    ) -> (i32, String, String) {
        let mut command = self.bin.command(args);
        for (name, value) in vars {
            command.env(name, value);
        }
        let out = self.bin.run_command(command, stdin).await;
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    async fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        self.run_with(args, stdin, &[]).await
    }

    async fn list_json(&self, vars: &[(&str, &str)]) -> Vec<Value> {
        let (code, out, err) = self
            .run_with(&["provider", "list", "--json"], "", vars)
            .await;
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_provider_without_a_model_takes_the_first_listed() {
    let cli = Cli::new().await;
    let endpoint = cli.sim.endpoint(ProviderKind::Custom);

    let (code, out, err) = cli
        .run(
            &[
                "provider",
                "test",
                "custom",
                "--endpoint",
                &endpoint,
                "--json",
            ],
            "",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["model"], "llama3.2", "{out}");

    // An endpoint whose listing fails: nothing chosen, nothing stored.
    cli.sim
        .inject(ProviderKind::Custom, Fault::NoModelListing, Some(1));
    let (code, _, err) = cli
        .run(
            &[
                "provider",
                "add",
                "custom",
                "--endpoint",
                &endpoint,
                "--no-key",
            ],
            "",
        )
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(rows(cli.dir.path()).0.is_empty());

    let (code, out, err) = cli
        .run(
            &[
                "provider",
                "add",
                "custom",
                "--endpoint",
                &endpoint,
                "--no-key",
            ],
            "",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Provider added successfully"), "{out}");
    assert!(err.contains("model: llama3.2"), "{err}");
    let listed = cli.list_json(&[]).await;
    assert_eq!(listed[0]["model"], "llama3.2");
    assert_eq!(rows(cli.dir.path()).0[0].model, "llama3.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_on_the_system_key_is_tested_and_stores_no_key() {
    let cli = Cli::new().await;
    let endpoint = cli.sim.endpoint(ProviderKind::OpenAi);
    let add = [
        "provider",
        "add",
        "openai",
        "--endpoint",
        endpoint.as_str(),
        "--no-key",
    ];

    // Without the variable: a clear refusal naming it.
    let (code, _, err) = cli.run(&add, "").await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("OPENAI_API_KEY is not set"), "{err}");

    // A system key the vendor rejects: tested first, nothing stored.
    let (code, _, err) = cli
        .run_with(
            &add,
            "",
            &[("OPENAI_API_KEY", "sk-invalid-system-key-0000")],
        )
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(rows(cli.dir.path()).0.is_empty());

    let env = [("OPENAI_API_KEY", SYSTEM_KEY)];
    let (code, out, err) = cli.run_with(&add, "", &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Provider added successfully: OpenAI (id 1)"),
        "{out}"
    );
    assert!(err.contains("OPENAI_API_KEY"), "{err}");
    let tested = cli.sim.requests(Some(ProviderKind::OpenAi));
    assert_eq!(
        tested.last().and_then(|r| r.header("authorization")),
        Some("Bearer ••••7d21"),
        "the add tested the system key"
    );
    assert!(
        accounts(cli.dir.path()).await.is_empty(),
        "no key was stored"
    );

    let listed = cli.list_json(&env).await;
    assert_eq!(listed[0]["keySource"], "env");
    assert_eq!(listed[0]["keyHint"], "••••7d21");
    let (code, out, _) = cli.run_with(&["provider", "list"], "", &env).await;
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().contains("env"), "{out}");

    // A new key would silently shadow the variable: the author is told what to do.
    let (code, _, err) = cli
        .run_with(
            &["provider", "update", "1", "--key-stdin"],
            "sk-new-own-key-1111\n",
            &env,
        )
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("uses the system key from OPENAI_API_KEY"),
        "{err}"
    );
    assert!(accounts(cli.dir.path()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_report_requests_errors_latency_and_tokens_per_provider() {
    let cli = Cli::new().await;
    let (code, out, _) = cli.run(&["provider", "stats"], "").await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "No requests in the last 30 days.");

    let endpoint = cli.sim.endpoint(ProviderKind::Claude);
    let (code, _, err) = cli
        .run(
            &[
                "provider",
                "add",
                "claude",
                "--endpoint",
                &endpoint,
                "--key-stdin",
            ],
            "sk-ant-stats-key-0001\n",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let store = admin_support::database(cli.dir.path());
    store
        .blocking(|conn| {
            let record = |latency: u64, outcome| RequestRecord {
                provider_id: Some(ProviderId(1)),
                kind: ProviderKind::Claude,
                model: Some("claude-sonnet-4-5".into()),
                action: ActionName::new("inline").unwrap(),
                outcome,
                input_tokens: Some(100),
                output_tokens: Some(20),
                latency: Duration::from_millis(latency),
            };
            let mut batch: Vec<RequestRecord> =
                (1..=19).map(|i| record(i * 10, Outcome::Ok)).collect();
            batch.push(record(1000, Outcome::Ok));
            batch.push(record(5, Outcome::Failed(ErrorKind::Timeout)));
            batch.push(record(5, Outcome::Failed(ErrorKind::RateLimited)));
            batch.push(record(5, Outcome::Failed(ErrorKind::Timeout)));
            usage::record_batch(conn, &batch)
        })
        .unwrap();
    store.close().unwrap();

    let (code, out, err) = cli
        .run(&["provider", "stats", "--json", "--days", "7"], "")
        .await;
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    let claude = &stats[0];
    assert_eq!(claude["displayName"], "Anthropic Claude");
    assert_eq!(claude["requests"], 23);
    assert_eq!(claude["ok"], 20);
    assert_eq!(
        claude["errors"],
        serde_json::json!({"timeout": 2, "rateLimited": 1})
    );
    assert_eq!(claude["medianLatencyMs"], 100);
    assert_eq!(claude["p95LatencyMs"], 190);
    assert_eq!(claude["inputTokens"], 2300);
    assert_eq!(claude["outputTokens"], 460);
    assert!(claude["lastUsedAt"].is_string(), "{claude}");

    let (code, out, _) = cli.run(&["provider", "stats"], "").await;
    assert_eq!(code, 0);
    let line = out
        .lines()
        .find(|l| l.starts_with("1 "))
        .expect("a row for provider 1");
    for cell in [
        "claude",
        "23",
        "20",
        "rateLimited 1, timeout 2",
        "100 ms",
        "190 ms",
        "2300/460",
    ] {
        assert!(line.contains(cell), "{cell} in {out}");
    }
    let (code, _, err) = cli.run(&["provider", "stats", "--days", "0"], "").await;
    assert_eq!(code, 2, "{err}");

    // providers.list's median comes from the same log.
    let listed = cli.list_json(&[]).await;
    assert_eq!(listed[0]["medianLatencyMs"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_leaves_its_rows_in_the_db_file_alone() {
    let cli = Cli::new().await;
    let endpoint = cli.sim.endpoint(ProviderKind::OpenAi);
    let (code, _, err) = cli
        .run(
            &[
                "provider",
                "add",
                "openai",
                "--endpoint",
                &endpoint,
                "--key-stdin",
            ],
            "sk-checkpoint-key-0042\n",
        )
        .await;
    assert_eq!(code, 0, "{err}");

    let wal = cli.dir.path().join("storyteller.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "-wal left with {} bytes",
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
    );
    let backup = tempfile::tempdir().unwrap();
    let copy = backup.path().join("storyteller.db");
    std::fs::copy(cli.dir.path().join("storyteller.db"), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let (kind, model): (String, Option<String>) = conn
        .query_row(
            "SELECT provider_name, model_name FROM ai_providers",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kind, "openai");
    assert_eq!(model.as_deref(), Some("gpt-4o"));
}
