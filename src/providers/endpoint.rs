//! What every concrete provider holds: the shared client, its base URL, model and key, and the
//! small helpers that turn them into URLs, failure contexts and attempts.
//!
//! The key is exposed here only to build an auth header; nothing else in this module reads it.

use std::time::Duration;

use super::classify::{FailureContext, Operation};
use super::http::HttpClient;
use super::{Capabilities, ModelInfo, ProviderConfig, ProviderKind};
use crate::credentials::ApiKey;

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
            eu_resident: config.kind.entry().capabilities.eu_resident
                || (config.kind == ProviderKind::Custom
                    && config.options.eu_resident == Some(true)),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
