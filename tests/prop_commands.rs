//! Property tests of the executeCommand argument decoding of the provider and session commands
//! (`admin::decode`, issue 10 item 3): for any argument object — valid values, wrong types,
//! nulls, unknown fields, nested `options` — decoding never panics; a refusal is
//! `InvalidParams` naming a field (one of the command's, one the object holds, or an `options.`
//! member); and no value the client sent — an API key, manuscript text pasted in the wrong field —
//! ever reaches the error's text, its JSON-RPC form or its Debug form.
//!
//! Every string value carries the marker `SENTINEL`, valid keys and names included, so "never
//! echoed" is checked for every value. `storyteller.generate`'s arguments have the same property
//! next to their decoder (`src/lsp/assist_commands.rs`).
//!
//! 10,000 cases per command (see `tests/prop_support`).

mod prop_support;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use storyteller_lsp::admin::{AdminError, decode};
use storyteller_lsp::lsp::commands::CommandError;
use tower_lsp::jsonrpc;

const MARK: &str = "SENTINEL";

/// The value a field gets in one case.
#[derive(Debug, Clone)]
enum Pick {
    Valid(u8),
    Text(String),
    Number(i64),
    Bool(bool),
    Null,
    Array,
    Object,
    Options(Vec<(String, Pick)>),
}

fn text() -> impl Strategy<Value = String> {
    // Marked text of every shape: a plausible key, spaces, control characters, URL-ish pieces.
    "[A-Za-z0-9 _./:?#@\\-\t\n]{0,20}".prop_map(|s| format!("{MARK}{s}"))
}

fn simple_pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        5 => any::<u8>().prop_map(Pick::Valid),
        3 => text().prop_map(Pick::Text),
        1 => any::<i64>().prop_map(Pick::Number),
        1 => any::<bool>().prop_map(Pick::Bool),
        1 => Just(Pick::Null),
        1 => Just(Pick::Array),
        1 => Just(Pick::Object),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    let member = prop_oneof![
        Just("folderId".to_string()),
        Just("euResident".to_string()),
        Just("organization".to_string()),
        Just("project".to_string()),
        "[a-z]{1,6}",
    ];
    prop_oneof![
        8 => simple_pick(),
        2 => proptest::collection::vec((member, simple_pick()), 0..4).prop_map(Pick::Options),
    ]
}

/// A value the field accepts (chosen by `n`), marked where the field is text.
fn valid(field: &str, n: u8) -> Value {
    const KINDS: [&str; 8] = [
        "openai",
        "claude",
        "gemini",
        "deepseek",
        "yandex",
        "scaleway",
        "openrouter",
        "custom",
    ];
    match field {
        "provider" => json!(KINDS[n as usize % KINDS.len()]),
        "apiKey" => json!(format!("sk-{MARK}-key-{n:04}")),
        "model" => json!(format!("model-{MARK}-{n}")),
        "endpoint" => json!(format!("https://{}.example/v1", MARK.to_lowercase())),
        "displayName" => json!(format!("Draft {MARK} {n}")),
        "name" | "session" => json!(format!("{MARK}_{n}")),
        "authType" => json!(if n.is_multiple_of(2) {
            "api_key"
        } else {
            "oauth"
        }),
        "id" => json!(i64::from(n) + 1),
        "primary" | "isActive" | "confirmed" | "euResident" => json!(n.is_multiple_of(2)),
        "options" => json!({}),
        _ => json!(format!("{MARK}{n}")),
    }
}

fn value(field: &str, pick: &Pick) -> Value {
    match pick {
        Pick::Valid(n) => valid(field, *n),
        Pick::Text(s) => json!(s),
        Pick::Number(n) => json!(n),
        Pick::Bool(b) => json!(b),
        Pick::Null => Value::Null,
        Pick::Array => json!([format!("{MARK} in an array")]),
        Pick::Object => json!({ "member": format!("{MARK} in an object") }),
        Pick::Options(members) => Value::Object(
            members
                .iter()
                .map(|(name, p)| (name.clone(), value(name, p)))
                .collect(),
        ),
    }
}

/// Builds the argument object: each allowed field absent or given a value, plus maybe an unknown
/// field.
fn arguments(
    allowed: &[&str],
    picks: &[Option<Pick>],
    extra: &Option<(String, Pick)>,
) -> Map<String, Value> {
    let mut args = Map::new();
    for (field, pick) in allowed.iter().zip(picks) {
        if let Some(pick) = pick {
            args.insert(field.to_string(), value(field, pick));
        }
    }
    if let Some((name, pick)) = extra
        && !allowed.contains(&name.as_str())
    {
        args.insert(name.clone(), value(name, pick));
    }
    args
}

/// The property, for one decoder's outcome.
fn check<T>(
    allowed: &[&str],
    args: &Map<String, Value>,
    outcome: Result<T, AdminError>,
) -> Result<(), TestCaseError> {
    let error = match outcome {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let shown = format!("{error} {error:?}");
    prop_assert!(!shown.contains(MARK), "a value was echoed: {shown}");
    let field = match &error {
        AdminError::Invalid { field, .. } | AdminError::NotFound { field, .. } => field.clone(),
        other => {
            return Err(TestCaseError::fail(format!(
                "decoding failed with something other than an invalid argument: {other:?}"
            )));
        }
    };
    let named = allowed.contains(&field.as_str())
        || args.contains_key(&field)
        || field
            .strip_prefix("options.")
            .is_some_and(|member| args.get("options").is_some_and(|o| o.get(member).is_some()));
    prop_assert!(
        named,
        "the error names `{field}`, which is not a field: {shown}"
    );
    let wire = jsonrpc::Error::from(CommandError::from(error));
    prop_assert_eq!(wire.code, jsonrpc::ErrorCode::InvalidParams);
    let wire_text = format!("{} {:?}", wire.message, wire.data);
    prop_assert!(wire_text.starts_with(&format!("{field}: ")), "{wire_text}");
    prop_assert!(!wire_text.contains(MARK), "a value was echoed: {wire_text}");
    Ok(())
}

fn picks(n: usize) -> impl Strategy<Value = Vec<Option<Pick>>> {
    proptest::collection::vec(proptest::option::weighted(0.7, pick()), n)
}

fn extra() -> impl Strategy<Value = Option<(String, Pick)>> {
    proptest::option::weighted(0.15, ("[a-zA-Z]{1,10}", simple_pick()))
}

macro_rules! decoding_property {
    ($name:ident, $decode:expr, [$($field:literal),*]) => {
        proptest! {
            #![proptest_config(prop_support::config())]
            #[test]
            fn $name(picks in picks(<[&str]>::len(&[$($field),*])), extra in extra()) {
                let allowed: &[&str] = &[$($field),*];
                let args = arguments(allowed, &picks, &extra);
                let outcome = $decode(args.clone());
                check(allowed, &args, outcome)?;
            }
        }
    };
}

decoding_property!(list_and_catalog_arguments, decode::nothing, []);
decoding_property!(set_primary_arguments, decode::id, ["id"]);
decoding_property!(
    test_arguments,
    decode::test,
    ["provider", "apiKey", "model", "endpoint", "options", "id"]
);
decoding_property!(
    add_arguments,
    decode::add,
    [
        "provider",
        "apiKey",
        "model",
        "endpoint",
        "displayName",
        "primary",
        "session",
        "options"
    ]
);
decoding_property!(
    update_arguments,
    decode::update,
    [
        "id",
        "apiKey",
        "model",
        "endpoint",
        "displayName",
        "isActive",
        "options"
    ]
);
decoding_property!(remove_arguments, decode::remove, ["id", "confirmed"]);
decoding_property!(
    models_arguments,
    decode::models,
    ["id", "provider", "apiKey", "endpoint", "options"]
);
decoding_property!(sessions_list_arguments, decode::sessions_list, ["provider"]);
decoding_property!(
    sessions_add_arguments,
    decode::sessions_add,
    ["provider", "authType", "name", "apiKey"]
);
decoding_property!(sessions_remove_arguments, decode::session_id, ["id"]);
