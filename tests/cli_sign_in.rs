//! "Sign in with OpenRouter" from the terminal (`storyteller-lsp provider sign-in openrouter
//! --no-browser`) against the simulator's stand-in for OpenRouter's auth page and code exchange:
//! the browser's return at the loopback listener, the pasted code (remote sessions), a wrong code
//! and a declined sign-in. Checks what was stored (a session with auth_type oauth, its key in the
//! credential store, the provider using it) and that the key and verifier never appear in output.

mod admin_support;

use std::process::Stdio;
use std::time::Duration;

use admin_support::{Binary, accounts, rows, stored_key, text};
use storyteller_lsp::credentials::Account;
use storyteller_lsp::providers::{AuthType, ProviderKind};
use storyteller_lsp::simulator::SimulatorHandle;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct SignIn {
    dir: tempfile::TempDir,
    sim: SimulatorHandle,
}

impl SignIn {
    async fn new() -> SignIn {
        SignIn {
            dir: tempfile::tempdir().unwrap(),
            sim: SimulatorHandle::start().await.unwrap(),
        }
    }

    /// Starts `provider sign-in openrouter --no-browser …` and returns it with the authorization
    /// address it printed.
    async fn start(&self, extra: &[&str]) -> (Running, String) {
        let mut args = vec!["provider", "sign-in", "openrouter", "--no-browser"];
        args.extend_from_slice(extra);
        let mut command = Binary::new(self.dir.path()).command(&args);
        command
            .env(
                "STORYTELLER_OPENROUTER_AUTH_URL",
                format!("{}/openrouter/auth", self.sim.base_url()),
            )
            .env(
                "STORYTELLER_OPENROUTER_API_URL",
                self.sim.endpoint(ProviderKind::OpenRouter),
            )
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = stderr.next_line().await.unwrap() {
                if line.starts_with("http://") {
                    return line;
                }
            }
            panic!("no address printed");
        })
        .await
        .expect("the address is printed");
        // Keep draining stderr so the child never blocks on a full pipe; collect it for checks.
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut rest = String::new();
            while let Ok(Some(line)) = stderr.next_line().await {
                rest.push_str(&line);
                rest.push('\n');
            }
            let _ = tx.send(rest);
        });
        (Running { child, stderr: rx }, url)
    }
}

/// A running sign-in and the rest of its stderr.
struct Running {
    child: tokio::process::Child,
    stderr: tokio::sync::oneshot::Receiver<String>,
}

impl Running {
    /// Waits for the end: (exit code, stdout, stderr after the address).
    async fn finish(self) -> (i32, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.child.wait_with_output())
            .await
            .expect("sign-in ended in time")
            .unwrap();
        let err = self.stderr.await.unwrap_or_default();
        (out.status.code().unwrap_or(-1), text(&out.stdout), err)
    }
}

/// What a browser does: follow the auth page's redirect to the loopback callback.
async fn browse(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The code the auth page would hand back, read from its redirect without following it (what
/// the author copies from the address bar on a remote machine).
async fn code_from_redirect(url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    location.split("code=").nth(1).unwrap().to_string()
}

fn assert_no_secret(texts: &[&str]) {
    for t in texts {
        assert!(!t.contains("sk-or-v1-sim"), "a key leaked: {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_returns_to_the_loopback_listener_and_the_key_becomes_an_oauth_session() {
    let s = SignIn::new().await;
    let (run, url) = s.start(&["--session", "laptop"]).await;
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("callback_url=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let (status, page) = browse(&url).await;
    assert_eq!(status, 200);
    assert!(page.contains("You can close this tab"), "{page}");
    let (code, out, err) = run.finish().await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Signed in with OpenRouter: the key is saved as session laptop"),
        "{out}"
    );
    assert_no_secret(&[&out, &err]);

    let (providers, sessions) = rows(s.dir.path());
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].kind, ProviderKind::OpenRouter);
    assert_eq!(sessions[0].auth_type, AuthType::Oauth);
    assert_eq!(sessions[0].name.as_str(), "laptop");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].kind, ProviderKind::OpenRouter);
    assert_eq!(providers[0].session_id, Some(sessions[0].id));
    let account = Account::session(ProviderKind::OpenRouter, AuthType::Oauth, "laptop").unwrap();
    let key = stored_key(s.dir.path(), &account)
        .await
        .expect("key stored");
    assert!(
        key.starts_with("sk-or-v1-sim-"),
        "the exchanged key is stored"
    );
    assert_eq!(
        accounts(s.dir.path()).await,
        vec![account.as_str().to_string()]
    );
    // The key was tested before it was stored: OpenRouter lists models without a key, so the
    // test also asks what the key is (GET /key), with the key.
    let tested = s.sim.requests(Some(ProviderKind::OpenRouter));
    let paths: Vec<_> = tested.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/openrouter/api/v1/models", "/openrouter/api/v1/key"]
    );
    assert!(
        tested[1]
            .header("authorization")
            .is_some_and(|h| h.starts_with("Bearer ••••")),
        "{:?}",
        tested[1].header("authorization")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_code_completes_the_sign_in() {
    let s = SignIn::new().await;
    let (mut run, url) = s.start(&[]).await;
    let code = code_from_redirect(&url).await;
    let mut stdin = run.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{code}\n").as_bytes())
        .await
        .unwrap();
    let (status, out, err) = run.finish().await;
    assert_eq!(status, 0, "{out}{err}");
    assert!(
        out.contains("the key is saved as session openrouter-"),
        "{out}"
    );
    let (providers, sessions) = rows(s.dir.path());
    assert_eq!(sessions.len(), 1);
    assert_eq!(providers[0].session_id, Some(sessions[0].id));
    drop(stdin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_stores_nothing() {
    let s = SignIn::new().await;
    let (mut run, url) = s.start(&[]).await;
    // A real code exists, but the author pastes another.
    let _real = code_from_redirect(&url).await;
    let mut stdin = run.child.stdin.take().unwrap();
    stdin.write_all(b"sim-code-999\n").await.unwrap();
    let (status, out, err) = run.finish().await;
    assert_eq!(status, 1, "{out}{err}");
    assert!(
        err.contains("OpenRouter refused the sign-in code (HTTP 403)"),
        "{err}"
    );
    let (providers, sessions) = rows(s.dir.path());
    assert!(providers.is_empty() && sessions.is_empty());
    assert!(accounts(s.dir.path()).await.is_empty());
    drop(stdin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_sign_in_stores_nothing() {
    let s = SignIn::new().await;
    let (run, url) = s.start(&[]).await;
    let (status, page) = browse(&format!("{url}&deny=1")).await;
    assert_eq!(status, 200);
    assert!(page.contains("did not grant access"), "{page}");
    let (code, out, err) = run.finish().await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("OpenRouter did not grant access (access_denied)"),
        "{err}"
    );
    let (providers, sessions) = rows(s.dir.path());
    assert!(providers.is_empty() && sessions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openrouter_key_is_proved_by_get_key_since_its_model_list_is_public() {
    let s = SignIn::new().await;
    let bin = Binary::new(s.dir.path());
    let endpoint = s.sim.endpoint(ProviderKind::OpenRouter);
    let args = [
        "provider",
        "test",
        "openrouter",
        "--endpoint",
        &endpoint,
        "--key-stdin",
    ];
    let out = bin.run(&args, "sk-or-invalid-0001\n").await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("The API key for OpenRouter is invalid"),
        "{err}"
    );
    let paths: Vec<_> = s
        .sim
        .requests(Some(ProviderKind::OpenRouter))
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    assert_eq!(
        paths,
        [
            ("/openrouter/api/v1/models".to_string(), Some(200)),
            ("/openrouter/api/v1/key".to_string(), Some(401)),
        ]
    );
    let good = bin.run(&args, "sk-or-good-0002\n").await;
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_points_an_existing_openrouter_provider_at_the_session() {
    let s = SignIn::new().await;
    let bin = Binary::new(s.dir.path());
    let endpoint = s.sim.endpoint(ProviderKind::OpenRouter);
    let added = bin
        .run(
            &[
                "provider",
                "add",
                "openrouter",
                "--endpoint",
                &endpoint,
                "--model",
                "anthropic/claude-sonnet-4.5",
                "--key-stdin",
            ],
            "sk-or-pasted-key-0003\n",
        )
        .await;
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    let own = Account::project(1, ProviderKind::OpenRouter);
    assert!(stored_key(s.dir.path(), &own).await.is_some());

    let (run, url) = s.start(&["--session", "signed"]).await;
    browse(&url).await;
    let (code, out, err) = run.finish().await;
    assert_eq!(code, 0, "{out}{err}");
    let (providers, sessions) = rows(s.dir.path());
    assert_eq!(providers.len(), 1, "no second provider");
    assert_eq!(providers[0].session_id, Some(sessions[0].id));
    assert_eq!(providers[0].model, "anthropic/claude-sonnet-4.5", "kept");
    assert_eq!(
        stored_key(s.dir.path(), &own).await,
        None,
        "its own key, which would win over the session, is gone"
    );
    let session = Account::session(ProviderKind::OpenRouter, AuthType::Oauth, "signed").unwrap();
    assert_eq!(
        accounts(s.dir.path()).await,
        vec![session.as_str().to_string()]
    );
    // The key was tested with the provider's model and endpoint.
    let last = s.sim.requests(Some(ProviderKind::OpenRouter));
    assert!(
        last.iter()
            .all(|r| r.path.starts_with("/openrouter/api/v1/"))
    );
}
