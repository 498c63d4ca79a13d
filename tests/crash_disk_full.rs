//! A full disk met while writing the encrypted credentials file (issue 10 item 4): the real binary
//! (`provider update` rotating a key, `provider add`) runs with a file-size limit
//! (`RLIMIT_FSIZE`, set by `prlimit` with SIGXFSZ ignored, so a write past it fails with EFBIG
//! as on a full disk) that lets SQLite's small writes through but not the credentials file,
//! which the data makes larger. Each command fails with a clear message and leaves a consistent
//! state: the credentials file byte for byte as it was, no temporary file, the old key still the
//! row's, nothing for the next start to repair (a failed rotation used to try to write the old
//! key back — which fails the same way — and leave a journal record, so the next start told the
//! author the change was "interrupted").
//!
//! Skipped (with a note) where `prlimit` is missing; Debian has it in util-linux.

mod admin_support;

use std::path::Path;

use admin_support::{
    Binary, Fixture, assert_consistent, journal_records, key, rows, stored_key, text,
};
use storyteller_lsp::admin::{self, ProviderSpec, SessionRequest};
use storyteller_lsp::credentials::Account;
use storyteller_lsp::providers::{AuthType, ProviderKind};
use storyteller_lsp::store::SessionName;

/// Keys near the longest accepted (4096 bytes) make the credentials file large cheaply.
fn long_key(n: u32) -> String {
    format!("sk-disk-full-{n:03}-{}", "k".repeat(4000))
}

/// The file-size limit: above what SQLite writes during one command (WAL frames, the shared
/// memory index), below the credentials file, which holds 24 keys of 4 KB.
const FILE_SIZE_LIMIT: u64 = 64 * 1024;

fn credentials_file(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("credentials.enc")).expect("the credentials file")
}

fn stray_temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("the data directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".credentials.enc.") && name.ends_with(".tmp"))
        .collect()
}

/// `args` of the binary under the file-size limit, with `stdin`.
async fn run_limited(bin: &Binary, args: &[&str], stdin: &str) -> std::process::Output {
    let mut command = bin.command(&["--"]);
    // `sh` ignores SIGXFSZ (inherited through exec) so the write fails instead of killing the
    // process, then hands over to prlimit, which sets the limit and runs the binary.
    let mut limited = tokio::process::Command::new("sh");
    limited
        .arg("-c")
        .arg(r#"trap "" XFSZ; exec prlimit --fsize="$0" -- "$@""#)
        .arg(FILE_SIZE_LIMIT.to_string())
        .arg(env!("CARGO_BIN_EXE_storyteller-lsp"))
        .args(args);
    // The same environment as `Binary::command` (data directory, file store, credentials key).
    let std_command = command.as_std_mut();
    for (name, value) in std_command.get_envs() {
        match value {
            Some(value) => limited.env(name, value),
            None => limited.env_remove(name),
        };
    }
    limited
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    bin.run_command(limited, stdin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_the_credentials_write_fails_clearly_and_changes_nothing() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("prlimit not found (util-linux): the disk-full test is skipped");
        return;
    }
    // A provider, and enough named sessions with long keys to make the file larger than the
    // limit.
    let fx = Fixture::new().await;
    let spec = ProviderSpec::new(
        ProviderKind::OpenAi,
        None,
        Some(admin::Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::OpenAi)).unwrap()),
        Default::default(),
    )
    .unwrap();
    let request = admin::AddRequest::new(spec, Some(key(&long_key(0))), None, None, true).unwrap();
    admin::add(&fx.app, fx.project, request)
        .await
        .expect("a provider");
    for n in 1..24 {
        admin::add_session(
            &fx.app,
            SessionRequest {
                kind: ProviderKind::Claude,
                auth_type: AuthType::ApiKey,
                name: SessionName::new(format!("draft_{n:02}")).unwrap(),
                key: key(&long_key(n)),
                expires_at: None,
                endpoint: admin::Endpoint::parse("endpoint", &fx.endpoint(ProviderKind::Claude))
                    .ok(),
            },
        )
        .await
        .expect("a session");
    }
    // The application closes its database (its connection would keep the WAL alive between the
    // commands below); the simulator stays.
    let Fixture { dir, app, sim, .. } = fx;
    app.close().await;
    drop(app);
    let dir = dir.path().to_path_buf();
    let account = Account::project(1, ProviderKind::OpenAi);
    let bin = Binary::new(&dir);
    let before = credentials_file(&dir);
    assert!(
        before.len() as u64 > FILE_SIZE_LIMIT,
        "{} bytes",
        before.len()
    );

    // Rotating the key: the new file cannot be written.
    let new_key = long_key(99);
    let out = run_limited(
        &bin,
        &["provider", "update", "1", "--key-stdin"],
        &format!("{new_key}\n"),
    )
    .await;
    let stderr = text(&out.stderr);
    println!(
        "rotation on a full disk: exit {:?}\n{stderr}",
        out.status.code()
    );
    assert!(!out.status.success(), "the rotation cannot have succeeded");
    assert!(
        stderr.contains("not enough space") && stderr.contains("credentials.enc"),
        "a clear message naming the file: {stderr}"
    );
    assert!(
        !stderr.contains(&new_key) && !stderr.contains("sk-disk-full"),
        "{stderr}"
    );
    assert_eq!(
        credentials_file(&dir),
        before,
        "the credentials file changed"
    );
    assert!(
        stray_temporary_files(&dir).is_empty(),
        "{:?}",
        stray_temporary_files(&dir)
    );
    assert_eq!(
        stored_key(&dir, &account).await.as_deref(),
        Some(long_key(0).as_str()),
        "the old key is still the provider's"
    );
    // A clean failure leaves nothing to repair: the next start must not tell the author of an
    // "interrupted" change they were just told had failed.
    assert_eq!(journal_records(&dir), 0, "a journal record was left");

    // Adding a provider: the same, and no row without its key.
    let out = run_limited(
        &bin,
        &[
            "provider",
            "add",
            "deepseek",
            "--endpoint",
            &sim.endpoint(ProviderKind::DeepSeek),
            "--key-stdin",
        ],
        &format!("{}\n", long_key(98)),
    )
    .await;
    let stderr = text(&out.stderr);
    println!("add on a full disk: exit {:?}\n{stderr}", out.status.code());
    assert!(!out.status.success());
    assert!(stderr.contains("not enough space"), "{stderr}");
    assert!(!stderr.contains("interrupted"), "{stderr}");
    assert_eq!(journal_records(&dir), 0, "a journal record was left");
    assert_eq!(credentials_file(&dir), before);
    assert!(stray_temporary_files(&dir).is_empty());

    // The next start (no limit) has nothing to repair and everything is consistent.
    let out = bin.run(&["provider", "list", "--json"], "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("interrupted"),
        "{}",
        text(&out.stderr)
    );
    assert_consistent(&dir).await;
    assert_eq!(rows(&dir).0.len(), 1, "no row for the failed add");
}
