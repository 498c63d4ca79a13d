//! The simulator's stand-in for OpenRouter's PKCE sign-in (issue 15): the authorization page
//! and the code exchange, so "Sign in with OpenRouter" runs end to end on loopback.
//!
//! - `GET /openrouter/auth?callback_url=…&code_challenge=…&code_challenge_method=S256`: "the
//!   author signs in" at once — a `302` to `callback_url?code=sim-code-N`. The code remembers its
//!   challenge. `&deny=1` sends `?error=access_denied` instead.
//! - `POST /openrouter/api/v1/auth/keys` `{code, code_verifier, code_challenge_method}`: a code is
//!   good once, and only with the verifier whose S256 is its challenge; the answer is
//!   `{"key": "sk-or-v1-sim-…", "user_id": "user_sim"}`, else `403` in OpenRouter's error shape.
//!
//! Exchange bodies (verifier) are not recorded.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// Path of the authorization page.
pub const AUTH_PATH: &str = "/openrouter/auth";
/// Path of the exchange.
pub const KEYS_PATH: &str = "/openrouter/api/v1/auth/keys";

#[derive(Debug, Default)]
pub(crate) struct OAuthState {
    inner: Mutex<Codes>,
}

#[derive(Debug, Default)]
struct Codes {
    /// code → S256 challenge.
    pending: HashMap<String, String>,
    issued: u64,
}

/// A response: status, headers, body.
pub(crate) struct OAuthReply {
    pub status: u16,
    pub location: Option<String>,
    pub body: Value,
}

impl OAuthState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Codes> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn authorize(&self, query: Option<&str>) -> OAuthReply {
        let q = |name: &str| query.and_then(|q| query_value(q, name));
        let (Some(callback), Some(challenge)) = (q("callback_url"), q("code_challenge")) else {
            return bad(400, "callback_url and code_challenge are required");
        };
        if q("code_challenge_method").as_deref() != Some("S256") {
            return bad(400, "code_challenge_method must be S256");
        }
        if !(callback.starts_with("http://127.0.0.1:") || callback.starts_with("http://localhost:"))
        {
            return bad(400, "callback_url must be a loopback address");
        }
        let separator = if callback.contains('?') { '&' } else { '?' };
        let location = if q("deny").is_some() {
            format!("{callback}{separator}error=access_denied")
        } else {
            let mut codes = self.lock();
            codes.issued += 1;
            let code = format!("sim-code-{}", codes.issued);
            codes.pending.insert(code.clone(), challenge);
            format!("{callback}{separator}code={code}")
        };
        OAuthReply {
            status: 302,
            location: Some(location),
            body: json!({}),
        }
    }

    pub(crate) fn exchange(&self, body: &[u8]) -> OAuthReply {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return bad(400, "invalid JSON");
        };
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
        if field("code_challenge_method") != "S256" {
            return bad(400, "code_challenge_method must be S256");
        }
        let mut codes = self.lock();
        // A code is good once, whatever the outcome.
        let Some(challenge) = codes.pending.remove(field("code")) else {
            return bad(403, "Invalid code or code_verifier");
        };
        if crate::oauth::s256(field("code_verifier")) != challenge {
            return bad(403, "Invalid code or code_verifier");
        }
        let n = codes.issued;
        OAuthReply {
            status: 200,
            location: None,
            body: json!({"key": format!("sk-or-v1-sim-{n:04}-{:016x}", rand::random::<u64>()),
                         "user_id": "user_sim"}),
        }
    }
}

fn bad(status: u16, message: &str) -> OAuthReply {
    OAuthReply {
        status,
        location: None,
        body: json!({"error": {"code": status, "message": message}}),
    }
}

fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| decode(v)).flatten()
    })
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}
