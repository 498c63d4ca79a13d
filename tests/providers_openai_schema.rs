//! The request bodies of the OpenAI-compatible presets validate against the official OpenAI
//! OpenAPI schema of `POST /chat/completions` (a vendored fragment, see
//! `tests/fixtures/openai/extract.py` for its source and licence), checked offline by a small
//! validator of the JSON-Schema keywords that fragment uses.

use std::time::Duration;

use serde_json::{Map, Value};
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::http::HttpClient;
use storyteller_lsp::providers::{self, CompletionRequest, Message, ProviderConfig, ProviderKind};
use storyteller_lsp::simulator::SimulatorHandle;

const SCHEMA: &str = include_str!("fixtures/openai/chat_completion_request.schema.json");

struct Validator {
    schemas: Map<String, Value>,
}

impl Validator {
    fn load() -> (Validator, Value) {
        let doc: Value = serde_json::from_str(SCHEMA).unwrap();
        let root = doc["root"].as_str().unwrap().to_string();
        let schemas = doc["schemas"].as_object().unwrap().clone();
        let root_schema = serde_json::json!({ "$ref": format!("#/components/schemas/{root}") });
        (Validator { schemas }, root_schema)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => self.resolve(&self.schemas[r.rsplit('/').next().unwrap()]),
            None => schema,
        }
    }

    /// Every property an object schema declares, through `allOf` and `$ref`.
    fn declared(&self, schema: &Value, out: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            out.extend(props.keys().cloned());
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.declared(part, out);
        }
    }

    fn validate(&self, value: &Value, schema: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.validate(value, part, at)?;
        }
        if let Some(options) = schema.get("anyOf").and_then(Value::as_array)
            && !options.iter().any(|o| self.validate(value, o, at).is_ok())
        {
            return Err(format!("{at}: matches none of anyOf"));
        }
        if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = options
                .iter()
                .filter(|o| self.validate(value, o, at).is_ok())
                .count();
            if matching != 1 {
                return Err(format!("{at}: matches {matching} of oneOf, not exactly 1"));
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let ok = types.iter().any(|t| match *t {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                "null" => value.is_null(),
                _ => false,
            });
            if !ok {
                return Err(format!("{at}: {value} is not of type {types:?}"));
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            return Err(format!("{at}: {value} not in {options:?}"));
        }
        if let Some(n) = value.as_f64() {
            if schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n < m)
            {
                return Err(format!("{at}: {n} below minimum"));
            }
            if schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
            {
                return Err(format!("{at}: {n} above maximum"));
            }
        }
        if let Some(items) = value.as_array() {
            let len = items.len() as u64;
            if schema
                .get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
            {
                return Err(format!("{at}: fewer than minItems"));
            }
            if schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
            {
                return Err(format!("{at}: more than maxItems"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.validate(item, item_schema, &format!("{at}[{i}]"))?;
                }
            }
        }
        if let Some(obj) = value.as_object() {
            let props = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap_or("");
                if !obj.contains_key(name) {
                    return Err(format!("{at}: missing required `{name}`"));
                }
            }
            for (key, v) in obj {
                match props.and_then(|p| p.get(key)) {
                    Some(prop) => self.validate(v, prop, &format!("{at}.{key}"))?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!("{at}: unexpected property `{key}`"));
                        }
                        Some(extra @ Value::Object(_)) => {
                            self.validate(v, extra, &format!("{at}.{key}"))?
                        }
                        _ => {}
                    },
                }
            }
        }
        Ok(())
    }

    /// Validates a request body: the schema, plus no top-level property the schema does not
    /// declare (the spec leaves `additionalProperties` open; we hold ourselves to its fields).
    fn check_request(&self, root: &Value, body: &Value) -> Result<(), String> {
        self.validate(body, root, "body")?;
        let mut declared = Vec::new();
        self.declared(root, &mut declared);
        for key in body.as_object().map(|o| o.keys()).into_iter().flatten() {
            if !declared.contains(key) {
                return Err(format!("body: `{key}` is not a field of the schema"));
            }
        }
        Ok(())
    }
}

fn request() -> CompletionRequest {
    let mut r = CompletionRequest::new(vec![
        Message::user("Chapter three. Elena waited by the door."),
        Message::assistant("Marcus did not come."),
        Message::user("Continue."),
    ]);
    r.system = Some("You continue fiction.".into());
    r.max_tokens = 64;
    r.temperature = Some(0.8);
    r.stop = vec![
        "\n\n".into(),
        "###".into(),
        "a".into(),
        "b".into(),
        "c".into(),
    ];
    r.timeout = Duration::from_secs(5);
    r
}

#[tokio::test]
async fn openai_compatible_requests_match_the_official_schema() {
    let (validator, root) = Validator::load();
    let sim = SimulatorHandle::start().await.unwrap();
    let http = HttpClient::new().unwrap();
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::DeepSeek,
        ProviderKind::Scaleway,
        ProviderKind::Custom,
    ] {
        let mut config =
            ProviderConfig::with_defaults(kind, Some(ApiKey::new("sk-schema-0123456789")));
        config.endpoint = sim.endpoint(kind);
        if kind == ProviderKind::Custom {
            config.model = "llama3.2".into();
        }
        let p = providers::build(&config, &http);
        p.generate(&request()).await.unwrap();
        p.stream(&request()).await.unwrap();
        for recorded in sim.requests(Some(kind)) {
            validator
                .check_request(&root, &recorded.body)
                .unwrap_or_else(|e| panic!("{kind}: {e}\n{}", recorded.body));
        }
    }
}

#[test]
fn the_validator_rejects_bodies_the_schema_forbids() {
    let (validator, root) = Validator::load();
    let good = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "max_completion_tokens": 10,
        "stop": ["a"],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    validator.check_request(&root, &good).unwrap();
    let broken = [
        ("max_completion_tokens", serde_json::json!("10")),
        (
            "messages",
            serde_json::json!([{"role": "narrator", "content": "x"}]),
        ),
        ("messages", serde_json::json!([])),
        ("stop", serde_json::json!(["a", "b", "c", "d", "e"])),
        ("temperature", serde_json::json!(3)),
        ("maxTokens", serde_json::json!(10)),
    ];
    for (field, value) in broken {
        let mut body = good.clone();
        body[field] = value.clone();
        assert!(
            validator.check_request(&root, &body).is_err(),
            "{field} = {value} should be rejected"
        );
    }
}
