//! "Sign in with OpenRouter": OAuth PKCE (RFC 7636, S256) with a one-shot loopback listener.
//!
//! The flow, driven by `admin::oauth` (which stores the key), step by step:
//! 1. [`Pkce::generate`] makes a random verifier (64 unreserved characters) and its S256 challenge;
//! 2. [`CallbackListener::bind`] listens on `127.0.0.1`, a random port, a random path;
//! 3. [`authorize_url`] builds `{auth}?callback_url=…&code_challenge=…&code_challenge_method=S256`,
//!    which the editor (or the author) opens in a browser;
//! 4. [`wait_for_code`] waits: the browser comes back to the listener with `?code=` (answered with a
//!    small "you can close this tab" page), or the author pastes the code (remote sessions), or
//!    the wait times out or is cancelled;
//! 5. [`exchange`] sends `POST {api}/auth/keys` `{code, code_verifier, code_challenge_method}` →
//!    `{key}`, returned as an [`ApiKey`].
//!
//! The verifier and the key never appear in `Debug` output, logs or errors. Only the loopback
//! address is listened on. This module knows nothing of LSP, the store or the keychain.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::credentials::env::{Environment, non_empty};
use crate::messages;
use crate::secret::ApiKey;

/// OpenRouter's authorization page.
pub const OPENROUTER_AUTH_URL: &str = "https://openrouter.ai/auth";
/// Overrides [`OPENROUTER_AUTH_URL`] (tests point it at the simulator's stand-in).
pub const AUTH_URL_VAR: &str = "STORYTELLER_OPENROUTER_AUTH_URL";
/// Overrides the API base the code is exchanged at (and the new provider's endpoint).
pub const API_URL_VAR: &str = "STORYTELLER_OPENROUTER_API_URL";
/// How long the flow waits for the browser (or a pasted code).
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);
/// The exchange request's time budget.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection to the listener must send its request head within this.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Why a sign-in did not produce a key. Never holds the code, the verifier or a key.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{}", messages::oauth::TIMED_OUT)]
    TimedOut,
    #[error("{}", messages::oauth::CANCELLED)]
    Cancelled,
    /// The authorization page sent the browser back with `?error=` (the author declined).
    #[error("{}", messages::oauth::denied(.0))]
    Denied(String),
    #[error("{}", messages::oauth::listener(.0))]
    Listener(std::io::Error),
    /// The exchange was refused (a wrong or used code, a verifier that does not match).
    #[error("{}", messages::oauth::exchange_refused(*.0))]
    ExchangeRefused(u16),
    #[error("{}", messages::oauth::EXCHANGE_UNREACHABLE)]
    ExchangeUnreachable,
    #[error("{}", messages::oauth::EXCHANGE_INVALID)]
    ExchangeInvalid,
    #[error("{}", messages::oauth::NO_PENDING)]
    NoPendingSignIn,
    #[error("{}", messages::oauth::ALREADY_PENDING)]
    AlreadyPending,
}

impl OAuthError {
    /// A stable name for the editor's logic (`data.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            OAuthError::TimedOut => "signInTimedOut",
            OAuthError::Cancelled => "cancelled",
            OAuthError::Denied(_) => "signInDenied",
            OAuthError::Listener(_) => "signInListener",
            OAuthError::ExchangeRefused(_) => "signInRefused",
            OAuthError::ExchangeUnreachable => "offline",
            OAuthError::ExchangeInvalid => "signInInvalidResponse",
            OAuthError::NoPendingSignIn => "noPendingSignIn",
            OAuthError::AlreadyPending => "signInPending",
        }
    }
}

/// A PKCE verifier and its S256 challenge. `Debug` shows the challenge only.
pub struct Pkce {
    verifier: Zeroizing<String>,
    challenge: String,
}

impl Pkce {
    /// A fresh verifier: 48 random bytes in base64url, 64 characters of the unreserved set
    /// (RFC 7636 §4.1 asks for 43 to 128).
    pub fn generate() -> Pkce {
        let mut bytes = Zeroizing::new([0u8; 48]);
        rand::rng().fill_bytes(bytes.as_mut());
        Pkce::from_verifier(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
    }

    fn from_verifier(verifier: String) -> Pkce {
        let challenge = s256(&verifier);
        Pkce {
            verifier: Zeroizing::new(verifier),
            challenge,
        }
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"<redacted>")
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))` without padding (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Where the author signs in and where the code is exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRouterUrls {
    /// The authorization page.
    pub auth: String,
    /// The API base (`…/api/v1`): the exchange is `POST {api}/auth/keys`.
    pub api: String,
}

impl OpenRouterUrls {
    /// OpenRouter's, unless [`AUTH_URL_VAR`] / [`API_URL_VAR`] say otherwise.
    pub fn from_env(env: &dyn Environment) -> OpenRouterUrls {
        let default_api = crate::providers::ProviderKind::OpenRouter
            .entry()
            .default_endpoint;
        OpenRouterUrls {
            auth: non_empty(env, AUTH_URL_VAR)
                .map_or_else(|| OPENROUTER_AUTH_URL.to_string(), |v| v.to_string()),
            api: non_empty(env, API_URL_VAR)
                .map_or_else(|| default_api.to_string(), |v| v.to_string())
                .trim_end_matches('/')
                .to_string(),
        }
    }

    /// Whether the API base is OpenRouter's own (a provider row then keeps the catalogue default).
    pub fn is_default_api(&self) -> bool {
        self.api
            == crate::providers::ProviderKind::OpenRouter
                .entry()
                .default_endpoint
    }
}

/// The authorization URL the browser opens.
pub fn authorize_url(auth: &str, callback: &str, challenge: &str) -> String {
    let separator = if auth.contains('?') { '&' } else { '?' };
    format!(
        "{auth}{separator}callback_url={}&code_challenge={}&code_challenge_method=S256",
        percent_encode(callback),
        percent_encode(challenge)
    )
}

/// Percent-encodes everything but the unreserved characters (RFC 3986 §2.3).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+` (form encoding); `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `name` in a query string.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v)).flatten()
    })
}

/// A listener on `127.0.0.1`, a random port and a random path, for one callback.
#[derive(Debug)]
pub struct CallbackListener {
    listener: TcpListener,
    path: String,
}

impl CallbackListener {
    pub async fn bind() -> Result<CallbackListener, OAuthError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(OAuthError::Listener)?;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Ok(CallbackListener {
            listener,
            path: format!("/callback/{}", URL_SAFE_NO_PAD.encode(bytes)),
        })
    }

    /// `http://127.0.0.1:{port}/callback/{random}`.
    pub fn callback_url(&self) -> Result<String, OAuthError> {
        let addr = self.listener.local_addr().map_err(OAuthError::Listener)?;
        Ok(format!("http://{addr}{}", self.path))
    }
}

/// Waits for the code: from the browser at the listener's path, or pasted (`pasted`), whichever
/// comes first; at most `timeout`; `cancel` ends the wait. The listener is closed on return.
pub async fn wait_for_code(
    listener: CallbackListener,
    pasted: oneshot::Receiver<String>,
    cancel: &CancellationToken,
    timeout: Duration,
) -> Result<Zeroizing<String>, OAuthError> {
    let (tx, mut rx) = mpsc::channel::<Result<Zeroizing<String>, OAuthError>>(4);
    let CallbackListener { listener, path } = listener;
    let connections = CancellationToken::new();
    let _stop_connections = connections.clone().drop_guard();
    let accept = async {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let tx = tx.clone();
            let path = path.clone();
            let stop = connections.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = answer_callback(stream, &path, &tx) => {}
                }
            });
        }
    };
    let pasted = async {
        match pasted.await {
            Ok(code) => Zeroizing::new(code),
            // The sender is gone: nobody can paste any more; wait for the browser.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => Err(OAuthError::Cancelled),
        _ = tokio::time::sleep(timeout) => Err(OAuthError::TimedOut),
        () = accept => Err(OAuthError::TimedOut),
        code = pasted => Ok(code),
        Some(result) = rx.recv() => result,
    }
}

/// Answers one connection: the callback with `code` (or `error`) at `path`, 404 elsewhere.
async fn answer_callback(
    mut stream: TcpStream,
    path: &str,
    tx: &mpsc::Sender<Result<Zeroizing<String>, OAuthError>>,
) {
    let target = match tokio::time::timeout(REQUEST_HEAD_TIMEOUT, read_target(&mut stream)).await {
        Ok(Ok(Some(target))) => target,
        _ => return,
    };
    let (request_path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, title, body, outcome) = if request_path != path {
        (404, messages::oauth::PAGE_NOT_FOUND, "", None)
    } else if let Some(code) = query_value(query, "code").filter(|c| !c.is_empty()) {
        (
            200,
            messages::oauth::PAGE_SIGNED_IN_TITLE,
            messages::oauth::PAGE_SIGNED_IN,
            Some(Ok(Zeroizing::new(code))),
        )
    } else if let Some(error) = query_value(query, "error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        (
            200,
            messages::oauth::PAGE_DENIED_TITLE,
            messages::oauth::PAGE_DENIED,
            Some(Err(OAuthError::Denied(error))),
        )
    } else {
        (400, messages::oauth::PAGE_NO_CODE, "", None)
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:4em auto;max-width:32em\"><h1>{title}</h1>\
         <p>{body}</p></body></html>"
    );
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{html}",
        html.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    if let Some(outcome) = outcome {
        let _ = tx.send(outcome).await;
    }
}

/// The request target of a `GET` request head; `None` for anything else.
async fn read_target(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Ok(Some(target.to_string())),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
struct KeyResponse {
    key: Option<String>,
}

/// Exchanges the code for a key: `POST {api}/auth/keys`. Dropping the future aborts it.
pub async fn exchange(
    http: &reqwest::Client,
    api: &str,
    code: &str,
    pkce: &Pkce,
) -> Result<ApiKey, OAuthError> {
    let url = format!("{}/auth/keys", api.trim_end_matches('/'));
    let body = serde_json::json!({
        "code": code,
        "code_verifier": pkce.verifier.as_str(),
        "code_challenge_method": "S256",
    });
    let response = http
        .post(url)
        .json(&body)
        .timeout(EXCHANGE_TIMEOUT)
        .send()
        .await
        .map_err(|_| OAuthError::ExchangeUnreachable)?;
    let status = response.status();
    if !status.is_success() {
        return Err(OAuthError::ExchangeRefused(status.as_u16()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|_| OAuthError::ExchangeUnreachable)?;
    let parsed: KeyResponse =
        serde_json::from_slice(&bytes).map_err(|_| OAuthError::ExchangeInvalid)?;
    match parsed.key {
        Some(key) if !key.trim().is_empty() => Ok(ApiKey::new(key.trim())),
        _ => Err(OAuthError::ExchangeInvalid),
    }
}

/// The sign-in waiting for a code in this process, so a pasted code can complete it.
static PENDING: Mutex<Option<oneshot::Sender<String>>> = Mutex::new(None);

/// Registers the one pending sign-in of this process; [`OAuthError::AlreadyPending`] while
/// another waits. Dropping the guard unregisters it.
pub fn register_pending() -> Result<(PendingGuard, oneshot::Receiver<String>), OAuthError> {
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    if pending.as_ref().is_some_and(|tx| !tx.is_closed()) {
        return Err(OAuthError::AlreadyPending);
    }
    let (tx, rx) = oneshot::channel();
    *pending = Some(tx);
    Ok((PendingGuard(()), rx))
}

/// Completes the pending sign-in with a code the author pasted.
pub fn complete_pending(code: &str) -> Result<(), OAuthError> {
    let code = code.trim();
    let sender = PENDING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or(OAuthError::NoPendingSignIn)?;
    sender
        .send(code.to_string())
        .map_err(|_| OAuthError::NoPendingSignIn)
}

/// Unregisters the pending sign-in when the flow ends.
pub struct PendingGuard(());

impl Drop for PendingGuard {
    fn drop(&mut self) {
        PENDING.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // RFC 7636 Appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mJ0kR9Kwm6xUpWStovQyx9hiWaWvJ7ZbNrgmqU"),
            "xpr2tI49C8Wfs00UoaPHUdE9bNQdgo-LHkwgjYX5vtU"
        );
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_ne!(a.verifier.as_str(), b.verifier.as_str());
        assert_eq!(a.verifier.len(), 64);
        assert!(
            a.verifier
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
        );
        assert_eq!(a.challenge(), s256(&a.verifier));
        assert!(!format!("{a:?}").contains(a.verifier.as_str()));
    }

    #[test]
    fn the_authorize_url_carries_the_callback_and_the_challenge() {
        let url = authorize_url(
            "https://openrouter.ai/auth",
            "http://127.0.0.1:4242/callback/x",
            "abc-_",
        );
        assert_eq!(
            url,
            "https://openrouter.ai/auth?callback_url=http%3A%2F%2F127.0.0.1%3A4242%2Fcallback%2Fx\
             &code_challenge=abc-_&code_challenge_method=S256"
        );
        assert_eq!(
            query_value("a=1&code=x%2By+z", "code").as_deref(),
            Some("x+y z")
        );
        assert_eq!(query_value("code=%zz", "code"), None);
    }

    async fn get(url: &str) -> (u16, String) {
        let response = reqwest::get(url).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    #[tokio::test]
    async fn the_listener_answers_its_path_only_and_gives_the_code() {
        let listener = CallbackListener::bind().await.unwrap();
        let callback = listener.callback_url().unwrap();
        assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
        let (_tx, rx) = oneshot::channel();
        let cancel = CancellationToken::new();
        let wait = tokio::spawn(async move {
            wait_for_code(listener, rx, &cancel, Duration::from_secs(10)).await
        });
        let base = callback.rsplit_once("/callback/").unwrap().0.to_string();
        assert_eq!(get(&format!("{base}/callback/guess?code=x")).await.0, 404);
        assert_eq!(get(&format!("{callback}?state=1")).await.0, 400);
        let (status, page) = get(&format!("{callback}?code=abc%2D1")).await;
        assert_eq!(status, 200);
        assert!(page.contains("You can close this tab"));
        assert_eq!(wait.await.unwrap().unwrap().as_str(), "abc-1");
    }

    #[tokio::test]
    async fn the_wait_times_out_is_cancelled_or_takes_a_pasted_code() {
        let (_tx, rx) = oneshot::channel();
        let listener = CallbackListener::bind().await.unwrap();
        let never = CancellationToken::new();
        let timed_out = wait_for_code(listener, rx, &never, Duration::from_millis(50)).await;
        assert!(
            matches!(timed_out, Err(OAuthError::TimedOut)),
            "{timed_out:?}"
        );

        let (_tx, rx) = oneshot::channel();
        let listener = CallbackListener::bind().await.unwrap();
        let callback = listener.callback_url().unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let cancelled = wait_for_code(listener, rx, &cancel, Duration::from_secs(10)).await;
        assert!(
            matches!(cancelled, Err(OAuthError::Cancelled)),
            "{cancelled:?}"
        );
        assert!(
            reqwest::get(format!("{callback}?code=late")).await.is_err(),
            "the listener is closed"
        );

        let (tx, rx) = oneshot::channel();
        let listener = CallbackListener::bind().await.unwrap();
        tx.send("pasted-code".to_string()).unwrap();
        let pasted = wait_for_code(listener, rx, &never, Duration::from_secs(10)).await;
        assert_eq!(pasted.unwrap().as_str(), "pasted-code");
    }
}
