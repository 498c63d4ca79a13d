//! What the provider and session operations accept: validated values (parse, don't validate) and
//! the requests built from them. The executeCommand decoder ([`super::decode`]) and the CLI both
//! construct requests through these functions only, so an argument is judged the same way
//! whichever edge it came from.
//!
//! Every refusal is an [`AdminError::Invalid`] naming the argument (`"endpoint: …"`), and its text
//! never repeats the value: a key pasted into the wrong field must not travel into an error.

use std::fmt;

use serde_json::{Map, Value};

use super::AdminError;
use crate::args::Fields;
use crate::providers::{AuthType, ProviderKind, ProviderOptions};
use crate::secret::ApiKey;
use crate::store::{ProviderId, SessionId, SessionName};

/// Longest display name we keep (it is shown in status bars and menus).
pub const DISPLAY_NAME_MAX: usize = 100;
/// Longest model id we accept (vendor ids are far shorter; this only stops garbage).
pub const MODEL_MAX: usize = 200;
/// Longest API key we accept.
pub const KEY_MAX: usize = 4096;

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// A provider kind named by the author (`openai`, `claude`, …).
pub fn parse_kind(field: &str, text: &str) -> Result<ProviderKind, AdminError> {
    text.parse().map_err(|_| {
        let names: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        invalid(
            field,
            format!(
                "unknown provider kind; expected one of {}",
                names.join(", ")
            ),
        )
    })
}

/// A positive row id.
pub fn parse_id(field: &str, id: i64) -> Result<ProviderId, AdminError> {
    if id > 0 {
        Ok(ProviderId(id))
    } else {
        Err(invalid(field, "must be a positive provider id"))
    }
}

pub fn parse_session_id(field: &str, id: i64) -> Result<SessionId, AdminError> {
    if id > 0 {
        Ok(SessionId(id))
    } else {
        Err(invalid(field, "must be a positive session id"))
    }
}

/// An API key as typed or pasted: surrounding whitespace (a pasted newline) is dropped; an empty
/// key, one with inner whitespace or control characters, or an absurdly long one is refused.
pub fn parse_key(field: &str, text: &str) -> Result<ApiKey, AdminError> {
    let key = text.trim();
    if key.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if key.len() > KEY_MAX {
        return Err(invalid(
            field,
            format!("is longer than {KEY_MAX} bytes; is it really an API key?"),
        ));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            "must not contain spaces, line breaks or control characters",
        ));
    }
    Ok(ApiKey::new(key))
}

/// A provider's base URL (DESIGN.md §5): http or https, with a host, without user name,
/// password, query or fragment (a key in a URL would end up in SQLite). Stored without a
/// trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    pub fn parse(field: &str, text: &str) -> Result<Endpoint, AdminError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        let url = reqwest::Url::parse(text)
            .map_err(|e| invalid(field, format!("is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(field, "must be an http:// or https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(field, "must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                field,
                "must not contain a user name or password; give the key as the API key",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                field,
                "must not have a query (?…) or fragment (#…); give the URL up to the API version, e.g. https://api.openai.com/v1",
            ));
        }
        Ok(Endpoint(text.trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A model id: not empty, no whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(field: &str, text: &str) -> Result<ModelName, AdminError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        if text.len() > MODEL_MAX {
            return Err(invalid(
                field,
                format!("is longer than {MODEL_MAX} characters"),
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                field,
                "must not contain spaces or control characters",
            ));
        }
        Ok(ModelName(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the author calls a provider: not empty, at most [`DISPLAY_NAME_MAX`] characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, text: &str) -> Result<DisplayName, AdminError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        if text.chars().count() > DISPLAY_NAME_MAX {
            return Err(invalid(
                field,
                format!("is longer than {DISPLAY_NAME_MAX} characters"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid(field, "must not contain control characters"));
        }
        Ok(DisplayName(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn parse_session_name(field: &str, text: &str) -> Result<SessionName, AdminError> {
    SessionName::new(text).map_err(|e| invalid(field, e.to_string()))
}

/// `api_key` (the default) or `oauth`. OAuth sessions cannot be created here yet (no PKCE flow).
pub fn parse_auth_type(field: &str, text: &str) -> Result<AuthType, AdminError> {
    match text.parse::<AuthType>() {
        Ok(AuthType::ApiKey) => Ok(AuthType::ApiKey),
        Ok(AuthType::Oauth) => Err(invalid(
            field,
            "oauth sessions cannot be added with a key; only api_key is supported here",
        )),
        Err(_) => Err(invalid(field, "expected api_key")),
    }
}

/// The `options` object of a provider, checked against its kind: `folderId` (yandex),
/// `euResident` (custom), `organization` and `project` (openai); `allowInsecureHttp` (any kind:
/// plain http:// to a host other than this computer). `field` is the name of the object itself
/// (`options`); errors name the member (`options.folderId`).
pub fn parse_options(
    field: &str,
    kind: ProviderKind,
    object: Map<String, Value>,
) -> Result<ProviderOptions, AdminError> {
    const MEMBERS: &[(&str, ProviderKind)] = &[
        ("folderId", ProviderKind::Yandex),
        ("euResident", ProviderKind::Custom),
        ("organization", ProviderKind::OpenAi),
        ("project", ProviderKind::OpenAi),
    ];
    const ANY_KIND: &[&str] = &["allowInsecureHttp"];
    let names: Vec<&str> = MEMBERS
        .iter()
        .map(|(n, _)| *n)
        .chain(ANY_KIND.iter().copied())
        .collect();
    let mut fields = Fields::with_prefix(object, &names, &format!("{field}."))?;
    for (name, owner) in MEMBERS {
        if fields.has(name) && *owner != kind {
            return Err(invalid(
                &format!("{field}.{name}"),
                format!("applies to {owner} providers only, not {kind}"),
            ));
        }
    }
    let text = |fields: &mut Fields, name: &str| -> Result<Option<String>, AdminError> {
        match fields.optional_str(name)? {
            None => Ok(None),
            Some(value) if value.trim().is_empty() => {
                Err(invalid(&format!("{field}.{name}"), "must not be empty"))
            }
            Some(value) => Ok(Some(value.trim().to_string())),
        }
    };
    let options = ProviderOptions {
        folder_id: text(&mut fields, "folderId")?,
        eu_resident: fields.optional_bool("euResident")?,
        organization: text(&mut fields, "organization")?,
        project: text(&mut fields, "project")?,
        allow_insecure_http: fields.optional_bool("allowInsecureHttp")?,
    };
    Ok(options)
}

/// A provider as the author describes it for a test or an add: kind, and what differs from the
/// catalogue.
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    pub kind: ProviderKind,
    pub model: Option<ModelName>,
    pub endpoint: Option<Endpoint>,
    pub options: ProviderOptions,
}

impl ProviderSpec {
    /// Checks what a kind needs: a custom provider has no default endpoint or model.
    pub fn new(
        kind: ProviderKind,
        model: Option<ModelName>,
        endpoint: Option<Endpoint>,
        options: ProviderOptions,
    ) -> Result<ProviderSpec, AdminError> {
        // Without a model, a custom provider takes the first its endpoint lists (see
        // `admin::providers::choose_model`).
        if kind == ProviderKind::Custom && endpoint.is_none() {
            return Err(invalid("endpoint", "is required for a custom provider"));
        }
        Ok(ProviderSpec {
            kind,
            model,
            endpoint,
            options,
        })
    }

    /// The model named, else the catalogue's default (empty for custom: chosen from the
    /// endpoint's listing when the provider is tested or added).
    pub fn model(&self) -> String {
        self.model
            .as_ref()
            .map_or_else(|| self.kind.default_model().to_string(), |m| m.0.clone())
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.as_ref().map_or_else(
            || self.kind.entry().default_endpoint.to_string(),
            |e| e.0.clone(),
        )
    }
}

/// Where the key of a new provider comes from.
#[derive(Debug, Clone)]
pub enum KeyChoice {
    /// The author's key, stored as the project key.
    Own(ApiKey),
    /// A named `api_key` session of the same provider kind.
    Session(SessionName),
    /// No key at all: only for kinds that need none (custom).
    None,
    /// The system key from the environment (`keySource: env`, `provider add KIND --no-key`):
    /// nothing is stored; the key is read from the variable at every start.
    Env,
}

/// `storyteller.providers.add`.
#[derive(Debug, Clone)]
pub struct AddRequest {
    pub spec: ProviderSpec,
    pub key: KeyChoice,
    pub display_name: Option<DisplayName>,
    pub primary: bool,
}

impl AddRequest {
    /// `api_key` and `session` exclude each other; one of them is required unless the kind needs
    /// no key.
    pub fn new(
        spec: ProviderSpec,
        api_key: Option<ApiKey>,
        session: Option<SessionName>,
        display_name: Option<DisplayName>,
        primary: bool,
    ) -> Result<AddRequest, AdminError> {
        let key = match (api_key, session) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "session",
                    "give either apiKey or session, not both",
                ));
            }
            (Some(key), None) => KeyChoice::Own(key),
            (None, Some(name)) => KeyChoice::Session(name),
            (None, None) if spec.kind.entry().capabilities.key_required => {
                return Err(invalid("apiKey", "is required"));
            }
            (None, None) => KeyChoice::None,
        };
        Ok(AddRequest {
            spec,
            key,
            display_name,
            primary,
        })
    }
}

impl AddRequest {
    /// An add that uses the kind's system key (`keySource: env`). Kinds without a system key
    /// variable (custom) are refused.
    pub fn with_system_key(
        spec: ProviderSpec,
        display_name: Option<DisplayName>,
        primary: bool,
    ) -> Result<AddRequest, AdminError> {
        if spec.kind.entry().key_env.is_none() {
            return Err(invalid(
                "keySource",
                crate::messages::keys::no_system_key(spec.kind.display_name()),
            ));
        }
        Ok(AddRequest {
            spec,
            key: KeyChoice::Env,
            display_name,
            primary,
        })
    }
}

/// `storyteller.providers.test`: a provider not stored yet, or a stored one with overrides.
#[derive(Debug, Clone)]
pub enum TestRequest {
    /// Key absent: the system key from the environment, if any.
    New {
        spec: ProviderSpec,
        key: Option<ApiKey>,
    },
    Stored {
        id: ProviderId,
        overrides: Overrides,
    },
}

/// Values that replace a stored provider's for a test (or an update).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub key: Option<ApiKey>,
    pub model: Option<ModelName>,
    /// `Some(None)`: back to the catalogue's endpoint.
    pub endpoint: Option<Option<Endpoint>>,
    /// The whole `options` object, checked with [`parse_options`] against the stored provider's
    /// kind once the row is read (the arguments do not carry the kind).
    pub options: Option<Map<String, Value>>,
}

impl Overrides {
    /// Whether anything that decides how requests reach the vendor changes.
    pub fn touches_connection(&self) -> bool {
        self.key.is_some()
            || self.model.is_some()
            || self.endpoint.is_some()
            || self.options.is_some()
    }
}

/// `storyteller.providers.update`.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    pub id: ProviderId,
    pub changes: Overrides,
    pub display_name: Option<DisplayName>,
    pub is_active: Option<bool>,
}

/// `storyteller.providers.models`.
#[derive(Debug, Clone)]
pub enum ModelsRequest {
    Stored(ProviderId),
    New {
        kind: ProviderKind,
        key: Option<ApiKey>,
        endpoint: Option<Endpoint>,
        options: ProviderOptions,
    },
}

/// `storyteller.sessions.add`.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    pub kind: ProviderKind,
    pub auth_type: AuthType,
    pub name: SessionName,
    pub key: ApiKey,
    /// When the session stops being used; `None`: never. Must lie in the future.
    pub expires_at: Option<crate::store::Timestamp>,
    /// Where the key is tested before it is stored; `None`: the endpoint of a provider of this
    /// kind that is already configured, else the catalogue's.
    pub endpoint: Option<Endpoint>,
}

/// An RFC 3339 time (e.g. `2027-01-31T00:00:00Z`) that lies in the future.
pub fn parse_expiry(field: &str, text: &str) -> Result<crate::store::Timestamp, AdminError> {
    let at = chrono::DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| {
            invalid(
                field,
                "expected an RFC 3339 time such as 2027-01-31T00:00:00Z",
            )
        })?
        .with_timezone(&chrono::Utc);
    if at <= chrono::Utc::now() {
        return Err(invalid(field, "lies in the past"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: AdminError) -> String {
        match e {
            AdminError::Invalid { field, .. } => field,
            other => panic!("not an argument error: {other:?}"),
        }
    }

    #[test]
    fn endpoints_must_be_plain_http_urls() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "https://api.openai.com/v1",
                Some("https://api.openai.com/v1"),
            ),
            (
                "http://127.0.0.1:8080/v1/",
                Some("http://127.0.0.1:8080/v1"),
            ),
            ("  https://example.org/v1  ", Some("https://example.org/v1")),
            ("ftp://example.org/v1", None),
            ("file:///etc/passwd", None),
            ("api.openai.com/v1", None),
            ("", None),
            ("https://user:sk-secret-value@example.org/v1", None),
            ("https://example.org/v1?key=sk-secret-value", None),
            ("https://example.org/v1#x", None),
        ];
        for (input, expected) in cases {
            match (Endpoint::parse("endpoint", input), expected) {
                (Ok(e), Some(want)) => assert_eq!(e.as_str(), *want, "{input}"),
                (Err(e), None) => {
                    let text = e.to_string();
                    assert!(text.starts_with("endpoint: "), "{text}");
                    assert!(!text.contains("sk-secret-value"), "{text}");
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn keys_are_trimmed_and_never_echoed() {
        assert_eq!(
            parse_key("apiKey", " sk-abc-123456\n").unwrap().expose(),
            "sk-abc-123456"
        );
        for bad in ["", "   ", "sk-with space-123", "sk-tab\there"] {
            let err = parse_key("apiKey", bad).unwrap_err();
            assert!(!err.to_string().contains("sk-"), "{err}");
            assert_eq!(field_of(err), "apiKey");
        }
    }

    #[test]
    fn options_are_checked_against_the_kind() {
        let object = |v: Value| v.as_object().cloned().unwrap();
        let ok = parse_options(
            "options",
            ProviderKind::Yandex,
            object(serde_json::json!({"folderId": " b1g "})),
        )
        .unwrap();
        assert_eq!(ok.folder_id.as_deref(), Some("b1g"));
        let cases = [
            (
                ProviderKind::OpenAi,
                serde_json::json!({"folderId": "b1g"}),
                "options.folderId",
            ),
            (
                ProviderKind::Yandex,
                serde_json::json!({"euResident": true}),
                "options.euResident",
            ),
            (
                ProviderKind::Custom,
                serde_json::json!({"euResident": "yes"}),
                "options.euResident",
            ),
            (
                ProviderKind::OpenAi,
                serde_json::json!({"organization": ""}),
                "options.organization",
            ),
            (
                ProviderKind::OpenAi,
                serde_json::json!({"colour": "red"}),
                "options.colour",
            ),
        ];
        for (kind, value, field) in cases {
            let err = parse_options("options", kind, object(value.clone())).unwrap_err();
            assert_eq!(field_of(err), field, "{value}");
        }
    }

    #[test]
    fn a_custom_provider_needs_an_endpoint_but_not_a_model() {
        let endpoint = Endpoint::parse("endpoint", "http://localhost:11434/v1").ok();
        let model = ModelName::parse("model", "llama3").ok();
        let none = ProviderOptions::default();
        let err =
            ProviderSpec::new(ProviderKind::Custom, model.clone(), None, none.clone()).unwrap_err();
        assert_eq!(field_of(err), "endpoint");
        assert!(
            ProviderSpec::new(ProviderKind::Custom, None, endpoint.clone(), none.clone()).is_ok()
        );
        assert!(ProviderSpec::new(ProviderKind::Custom, model, endpoint, none).is_ok());
    }

    #[test]
    fn the_system_key_is_for_kinds_that_have_a_variable() {
        let spec = |kind, endpoint: Option<&str>| {
            ProviderSpec::new(
                kind,
                None,
                endpoint.and_then(|e| Endpoint::parse("endpoint", e).ok()),
                ProviderOptions::default(),
            )
            .unwrap()
        };
        let openai = AddRequest::with_system_key(spec(ProviderKind::OpenAi, None), None, false);
        assert!(matches!(openai.unwrap().key, KeyChoice::Env));
        let custom = AddRequest::with_system_key(
            spec(ProviderKind::Custom, Some("http://localhost:1/v1")),
            None,
            false,
        );
        assert_eq!(field_of(custom.unwrap_err()), "keySource");
    }

    #[test]
    fn add_needs_exactly_one_key_source_unless_the_kind_needs_none() {
        let spec = |kind| ProviderSpec::new(kind, None, None, ProviderOptions::default()).unwrap();
        let key = || Some(ApiKey::new("sk-add-request-0001"));
        let session = || SessionName::new("work").ok();
        let err = AddRequest::new(spec(ProviderKind::OpenAi), None, None, None, false).unwrap_err();
        assert_eq!(field_of(err), "apiKey");
        let err =
            AddRequest::new(spec(ProviderKind::OpenAi), key(), session(), None, false).unwrap_err();
        assert_eq!(field_of(err), "session");
        assert!(matches!(
            AddRequest::new(spec(ProviderKind::OpenAi), None, session(), None, false)
                .unwrap()
                .key,
            KeyChoice::Session(_)
        ));
        let custom = ProviderSpec::new(
            ProviderKind::Custom,
            ModelName::parse("model", "m").ok(),
            Endpoint::parse("endpoint", "http://localhost:1/v1").ok(),
            ProviderOptions::default(),
        )
        .unwrap();
        assert!(matches!(
            AddRequest::new(custom, None, None, None, false)
                .unwrap()
                .key,
            KeyChoice::None
        ));
    }
}
