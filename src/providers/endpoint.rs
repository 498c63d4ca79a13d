//! What every concrete provider holds: the shared client, its base URL, model and key, and the
//! small helpers that turn them into URLs, failure contexts and attempts.
//!
//! The key is exposed here only to build an auth header; nothing else in this module reads it.

use std::time::Duration;

use super::classify::{FailureContext, Operation};
use super::http::HttpClient;
use super::{Capabilities, ModelInfo, ProviderConfig, ProviderKind};
use crate::secret::ApiKey;

/// How long a model listing or a connection test may take.
pub const LISTING_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub kind: ProviderKind,
    /// The base URL without a trailing slash.
    pub base: String,
    pub model: String,
    pub key: Option<ApiKey>,
    pub http: HttpClient,
    pub eu_resident: bool,
}

impl Endpoint {
    pub fn new(config: &ProviderConfig, http: &HttpClient) -> Self {
        let base = config.endpoint.trim().trim_end_matches('/').to_string();
        Endpoint {
            kind: config.kind,
            base,
            model: config.model.trim().to_string(),
            key: config.api_key.clone().filter(|k| !k.is_empty()),
            http: http.clone(),
            eu_resident: super::catalog::eu_resident(
                config.kind,
                &config.endpoint,
                config.options.eu_resident,
            ),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `path` under the base URL, parsed now (when the provider is built) rather than per
    /// request.
    pub fn fixed(&self, path: &str) -> FixedUrl {
        let text = self.url(path);
        FixedUrl {
            parsed: reqwest::Url::parse(&text).ok(),
            text,
        }
    }

    /// `path` under the base URL with query pairs, percent-encoded.
    pub fn url_with_query(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
    ) -> Result<reqwest::Url, super::ProviderError> {
        let mut url = reqwest::Url::parse(&self.url(path))
            .map_err(|e| self.misconfigured(&format!("the endpoint is not a valid URL ({e})")))?;
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        Ok(url)
    }

    pub fn ctx(&self, operation: Operation) -> FailureContext<'_> {
        FailureContext {
            kind: self.kind,
            operation,
            model: &self.model,
            key: self.key.as_ref(),
        }
    }

    pub fn owned_ctx(&self, operation: Operation) -> OwnedContext {
        OwnedContext {
            kind: self.kind,
            operation,
            model: self.model.clone(),
            key: self.key.clone(),
        }
    }

    /// The key, or `InvalidKey` when the kind requires one and none was given.
    pub fn required_key(&self) -> Result<&ApiKey, super::ProviderError> {
        self.key.as_ref().ok_or_else(|| {
            super::ProviderError::InvalidKey(super::Detail::new(format!(
                "no API key configured for {}",
                self.kind.display_name()
            )))
        })
    }

    pub fn capabilities(&self) -> Capabilities {
        let mut caps = self.kind.entry().capabilities;
        caps.eu_resident = self.eu_resident;
        caps
    }

    pub fn model_info(&self) -> ModelInfo {
        ModelInfo {
            id: self.model.clone(),
            display_name: None,
        }
    }

    /// A configuration problem found before any request (no endpoint, no folder id).
    pub fn misconfigured(&self, what: &str) -> super::ProviderError {
        super::ProviderError::BadRequest(super::Detail::new(format!(
            "{} is not configured: {what}",
            self.kind.display_name()
        )))
    }
}

/// A request URL parsed once. One that does not parse is handed to reqwest as text, so the
/// request fails exactly as it did when every request parsed its URL.
#[derive(Debug, Clone)]
pub struct FixedUrl {
    parsed: Option<reqwest::Url>,
    text: String,
}

impl FixedUrl {
    /// A POST to this URL on `client`.
    pub fn post(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        match &self.parsed {
            Some(url) => client.post(url.clone()),
            None => client.post(self.text.as_str()),
        }
    }
}

/// How a provider's endpoint may be reached. A key (and the manuscript) travels in clear over
/// plain HTTP, so `http://` is for this computer only unless the author accepts the risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `https://`, or something no plain request is made with (a URL the provider itself
    /// refuses as invalid).
    NotPlainHttp,
    /// `http://` to 127.0.0.0/8, `::1` or `localhost`: never leaves the machine.
    Loopback,
    /// `http://` to another host, allowed by the `allowInsecureHttp` option: warn.
    InsecureAllowed,
    /// `http://` to another host without that option: refuse before connecting.
    Refused,
}

impl Transport {
    /// Judges `endpoint` (a base URL); `allow_insecure_http` is the provider's option.
    pub fn of(endpoint: &str, allow_insecure_http: bool) -> Transport {
        let Ok(url) = reqwest::Url::parse(endpoint.trim()) else {
            return Transport::NotPlainHttp;
        };
        match url.scheme() {
            "http" if url.host_str().is_some_and(is_loopback) => Transport::Loopback,
            "http" if allow_insecure_http => Transport::InsecureAllowed,
            "http" => Transport::Refused,
            _ => Transport::NotPlainHttp,
        }
    }

    /// The transport of a provider configuration.
    pub fn of_config(config: &ProviderConfig) -> Transport {
        Transport::of(
            &config.endpoint,
            config.options.allow_insecure_http == Some(true),
        )
    }

    pub fn is_refused(self) -> bool {
        self == Transport::Refused
    }
}

/// The host of an endpoint, for messages (no path: a path may hold a project id).
pub fn host_of(endpoint: &str) -> String {
    reqwest::Url::parse(endpoint.trim())
        .ok()
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// 127.0.0.0/8, `::1` (or its IPv4-mapped form of a 127 address) and `localhost`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod transport_tests {
    use super::Transport::{self, *};

    #[test]
    fn plain_http_is_for_loopback_unless_allowed() {
        let cases: &[(&str, bool, Transport)] = &[
            ("https://api.openai.com/v1", false, NotPlainHttp),
            ("https://example.invalid/v1", true, NotPlainHttp),
            ("HTTP://example.invalid/v1", false, Refused),
            ("http://127.0.0.1:8080/v1", false, Loopback),
            ("http://127.9.8.7/v1", false, Loopback),
            ("http://[::1]:11434/v1", false, Loopback),
            ("http://[::ffff:127.0.0.1]/v1", false, Loopback),
            ("http://localhost:11434/v1", false, Loopback),
            ("http://LOCALHOST./v1", false, Loopback),
            ("http://example.invalid/v1", false, Refused),
            ("http://example.invalid/v1", true, InsecureAllowed),
            ("http://localhost.example.com/v1", false, Refused),
            ("http://128.0.0.1/v1", false, Refused),
            ("http://10.0.0.5:8000/v1", false, Refused),
            ("http://[::2]/v1", false, Refused),
            ("not a url", false, NotPlainHttp),
            ("scripted://provider-1", false, NotPlainHttp),
        ];
        for (endpoint, allowed, want) in cases {
            assert_eq!(
                Transport::of(endpoint, *allowed),
                *want,
                "{endpoint} {allowed}"
            );
        }
    }
}

/// A [`FailureContext`] a `'static` stream decoder can keep.
#[derive(Debug, Clone)]
pub struct OwnedContext {
    pub kind: ProviderKind,
    pub operation: Operation,
    pub model: String,
    pub key: Option<ApiKey>,
}

impl OwnedContext {
    pub fn ctx(&self) -> FailureContext<'_> {
        FailureContext {
            kind: self.kind,
            operation: self.operation,
            model: &self.model,
            key: self.key.as_ref(),
        }
    }

    /// The `error` field that Gemini and Yandex put beside the result of a 200 response: an error
    /// when it holds one, classified like an error response.
    pub fn check_error_field(
        &self,
        error: Option<&serde_json::Value>,
    ) -> Result<(), super::ProviderError> {
        match error.and_then(|error| self.error_in_body(&serde_json::json!({ "error": error }))) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// An error object that arrived inside a 200 response (mid-stream, or a non-streamed body).
    pub fn error_in_body(&self, body: &serde_json::Value) -> Option<super::ProviderError> {
        let vendor = super::classify::parse_vendor_error(body)?;
        let status = super::classify::status_of_stream_error(&vendor);
        Some(super::classify::classify_vendor_error(
            self.ctx(),
            status,
            None,
            vendor,
        ))
    }
}
