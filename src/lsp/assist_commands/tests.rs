//! The decoding of `storyteller.generate`'s arguments.

use super::*;
use tower_lsp::jsonrpc;

fn decode_generate(value: Value) -> Result<GenerateRequest, CommandError> {
    match value {
        Value::Object(map) => GenerateRequest::decode(map),
        _ => unreachable!(),
    }
}

fn field_of(result: Result<GenerateRequest, CommandError>) -> String {
    match result {
        Err(CommandError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn generate_arguments_are_decoded_strictly() {
    let range = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 4}});
    let ok = decode_generate(json!({
        "action": "rewriteSelection", "tone": "tense", "uri": "file:///n/a.md",
        "range": range, "version": 3
    }))
    .unwrap();
    assert_eq!(ok.version, Some(3));
    assert_eq!(ok.action.title(), "Rewrite selection: tense");
    assert_eq!(ok.instruction, None);

    // A style brief is a tone; an instruction is trimmed, and empty is none.
    let brief = decode_generate(json!({
        "action": "rewriteSelection", "tone": " like Hemingway, terse ",
        "uri": "file:///n/a.md", "range": range
    }))
    .unwrap();
    assert_eq!(
        brief.action.tone().map(|t| t.as_str()),
        Some("like Hemingway, terse")
    );
    let steered = decode_generate(json!({
        "action": "continueScene", "instruction": "  Tomas admits he lied.\n",
        "uri": "file:///n/a.md", "range": range
    }))
    .unwrap();
    assert_eq!(
        steered.instruction.as_deref(),
        Some("Tomas admits he lied.")
    );
    for empty in [json!(""), json!("  \n "), Value::Null] {
        let plain = decode_generate(json!({
            "action": "continueScene", "instruction": empty,
            "uri": "file:///n/a.md", "range": range
        }))
        .unwrap();
        assert_eq!(plain.instruction, None);
    }
    let at_limit = decode_generate(json!({
        "action": "continueScene", "instruction": "й".repeat(1000),
        "uri": "file:///n/a.md", "range": range
    }))
    .unwrap();
    assert_eq!(at_limit.instruction.map(|i| i.chars().count()), Some(1000));

    let cases = [
        (
            json!({"action": "continueScene", "uri": "file:///a", "range": range, "colour": 1}),
            "colour",
        ),
        (json!({"uri": "file:///a", "range": range}), "action"),
        (
            json!({"action": "flyAway", "uri": "file:///a", "range": range}),
            "action",
        ),
        (
            json!({"action": "rewriteSelection", "uri": "file:///a", "range": range}),
            "tone",
        ),
        (
            json!({"action": "rewriteSelection", "tone": "  ", "uri": "file:///a", "range": range}),
            "tone",
        ),
        (
            json!({"action": "rewriteSelection", "tone": "x".repeat(201), "uri": "file:///a", "range": range}),
            "tone",
        ),
        (
            json!({"action": "rewriteSelection", "tone": "terse\nnow", "uri": "file:///a", "range": range}),
            "tone",
        ),
        (
            json!({"action": "rewriteSelection", "tone": 3, "uri": "file:///a", "range": range}),
            "tone",
        ),
        (
            json!({"action": "continueScene", "instruction": "й".repeat(1001), "uri": "file:///a", "range": range}),
            "instruction",
        ),
        (
            json!({"action": "continueScene", "instruction": ["a"], "uri": "file:///a", "range": range}),
            "instruction",
        ),
        (
            json!({"action": "continueScene", "instruction": "a\u{7}b", "uri": "file:///a", "range": range}),
            "instruction",
        ),
        (
            json!({"action": "rewriteSelection", "tone": "vivid", "instruction": "shorter", "uri": "file:///a", "range": range}),
            "instruction",
        ),
        (
            json!({"action": "continueScene", "tone": "vivid", "uri": "file:///a", "range": range}),
            "tone",
        ),
        (
            json!({"action": "continueScene", "uri": 7, "range": range}),
            "uri",
        ),
        (
            json!({"action": "continueScene", "uri": "file:///a", "range": {"start": 1}}),
            "range",
        ),
        (
            json!({"action": "continueScene", "uri": "file:///a", "range": range, "version": "3"}),
            "version",
        ),
    ];
    for (args, field) in cases {
        let label = args.to_string();
        assert_eq!(field_of(decode_generate(args)), field, "{label}");
    }
}

/// What a field of a random argument object holds.
#[derive(Debug, Clone)]
enum FieldValue {
    Absent,
    /// A value the field accepts.
    Valid,
    /// A string no field accepts (but `tone` and `instruction`, which take free text): a
    /// stand-in for manuscript text or a key.
    Sentinel(String),
    /// A free text field's value past its limit, or holding a control character.
    Oversized(String),
    Number(i64),
    Array,
    Object,
    Null,
}

fn field_value() -> impl proptest::strategy::Strategy<Value = FieldValue> {
    use proptest::prelude::*;
    prop_oneof![
        3 => Just(FieldValue::Absent),
        4 => Just(FieldValue::Valid),
        3 => "[A-Za-z0-9 ]{0,24}".prop_map(|s| FieldValue::Sentinel(format!("SENTINEL {s}"))),
        1 => (0usize..1200, proptest::bool::ANY).prop_map(|(n, control)| {
            let tail = if control { "\u{1b}" } else { "" };
            FieldValue::Oversized(format!("SENTINEL {}{tail}", "w".repeat(n)))
        }),
        1 => any::<i64>().prop_map(FieldValue::Number),
        1 => Just(FieldValue::Array),
        1 => Just(FieldValue::Object),
        1 => Just(FieldValue::Null),
    ]
}

fn valid(field: &str, rewrite: bool) -> Value {
    match field {
        "action" if rewrite => json!("rewriteSelection"),
        "action" => json!("continueScene"),
        "uri" => json!("file:///novel/chapter-1.md"),
        "range" => {
            json!({"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 5}})
        }
        "tone" => json!("lyrical"),
        "instruction" if rewrite => json!(""),
        "instruction" => json!("Tomas finds the ledger"),
        _ => json!(3),
    }
}

proptest::proptest! {
    // 10,000 cases unless `PROPTEST_CASES` says otherwise (see README, "Property tests").
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any argument object: decoding never panics; a refusal names a field of the contract
    /// or one the object holds, and never repeats a value the client sent.
    #[test]
    fn generate_arguments_never_panic_name_a_field_and_never_echo_a_value(
        values in proptest::collection::vec(field_value(), 6),
        rewrite in proptest::prelude::any::<bool>(),
        extra in proptest::option::weighted(0.2, ("[a-z]{1,8}", "[A-Za-z ]{0,16}")),
    ) {
        const FIELDS: [&str; 6] = ["action", "uri", "range", "tone", "version", "instruction"];
        let mut args = Map::new();
        for (field, value) in FIELDS.iter().zip(&values) {
            let value = match value {
                FieldValue::Absent => continue,
                FieldValue::Valid => valid(field, rewrite),
                FieldValue::Sentinel(text) | FieldValue::Oversized(text) => json!(text),
                FieldValue::Number(n) => json!(n),
                FieldValue::Array => json!(["SENTINEL in an array"]),
                FieldValue::Object => json!({"SENTINEL": "SENTINEL in an object"}),
                FieldValue::Null => Value::Null,
            };
            args.insert(field.to_string(), value);
        }
        if let Some((name, text)) = &extra
            && !FIELDS.contains(&name.as_str())
        {
            args.insert(name.clone(), json!(format!("SENTINEL {text}")));
        }
        let keys: Vec<String> = args.keys().cloned().collect();
        match GenerateRequest::decode(args) {
            Ok(request) => {
                proptest::prop_assert!(matches!(values[0], FieldValue::Valid));
                proptest::prop_assert_eq!(request.action.id().as_str() == "rewriteSelection", rewrite);
                // What was accepted is within its limits.
                if let Some(tone) = request.action.tone() {
                    proptest::prop_assert!(tone.as_str().chars().count() <= 200);
                    proptest::prop_assert!(!tone.as_str().chars().any(char::is_control));
                }
                if let Some(instruction) = &request.instruction {
                    proptest::prop_assert!(instruction.chars().count() <= 1000);
                    proptest::prop_assert!(!rewrite);
                }
            }
            Err(CommandError::InvalidArgument { field, reason }) => {
                proptest::prop_assert!(
                    FIELDS.contains(&field.as_str()) || keys.contains(&field),
                    "{field}: {reason}"
                );
                let wire = jsonrpc::Error::from(CommandError::InvalidArgument {
                    field: field.clone(),
                    reason: reason.clone(),
                });
                let text = format!("{reason} {} {:?}", wire.message, wire.data);
                proptest::prop_assert!(!text.contains("SENTINEL"), "{field}: {text}");
            }
            Err(other) => proptest::prop_assert!(false, "not InvalidArgument: {other:?}"),
        }
    }
}

#[test]
fn type_errors_never_quote_the_value() {
    let err = decode_generate(json!({
        "action": "continueScene", "uri": "file:///a",
        "range": "She whispered the secret of the lighthouse"
    }))
    .unwrap_err();
    assert!(!err.to_string().contains("lighthouse"), "{err}");
}
