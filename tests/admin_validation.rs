//! The argument contract of the provider and session commands (DESIGN.md §3), decoded the way the
//! LSP handler decodes it: every problem is an argument error whose text starts with the field
//! name, and no error text repeats a value (a key sent in the wrong field stays out of errors).

use serde_json::{Map, Value, json};
use storyteller_lsp::admin::{AdminError, KeyChoice, TestRequest, decode};

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

type Decoder = fn(Map<String, Value>) -> Result<(), AdminError>;

fn field_of(result: Result<(), AdminError>) -> Result<String, String> {
    match result {
        Ok(()) => Err("accepted".into()),
        Err(AdminError::Invalid { field, reason }) => {
            let text = format!("{field}: {reason}");
            assert!(
                !text.contains("SECRET"),
                "the error repeats a value: {text}"
            );
            Ok(field)
        }
        Err(other) => Err(format!("not an argument error: {other:?}")),
    }
}

#[test]
fn every_invalid_argument_names_its_field() {
    let test: Decoder = |a| decode::test(a).map(|_| ());
    let add: Decoder = |a| decode::add(a).map(|_| ());
    let update: Decoder = |a| decode::update(a).map(|_| ());
    let remove: Decoder = |a| decode::remove(a).map(|_| ());
    let models: Decoder = |a| decode::models(a).map(|_| ());
    let id: Decoder = |a| decode::id(a).map(|_| ());
    let none: Decoder = decode::nothing;
    let sessions_add: Decoder = |a| decode::sessions_add(a).map(|_| ());
    let sessions_list: Decoder = |a| decode::sessions_list(a).map(|_| ());
    let key = "sk-SECRET-value-0001";
    let cases: Vec<(&str, Decoder, Value, &str)> = vec![
        (
            "list takes nothing",
            none,
            json!({"verbose": true}),
            "verbose",
        ),
        (
            "unknown field",
            add,
            json!({"provider": "openai", "apiKey": key, "colour": 1}),
            "colour",
        ),
        ("missing provider", add, json!({"apiKey": key}), "provider"),
        (
            "unknown kind",
            add,
            json!({"provider": "anthropic", "apiKey": key}),
            "provider",
        ),
        (
            "kind of wrong type",
            add,
            json!({"provider": 7, "apiKey": key}),
            "provider",
        ),
        (
            "empty key",
            add,
            json!({"provider": "openai", "apiKey": "  "}),
            "apiKey",
        ),
        ("missing key", add, json!({"provider": "openai"}), "apiKey"),
        (
            "key of wrong type",
            add,
            json!({"provider": "openai", "apiKey": 12345}),
            "apiKey",
        ),
        (
            "key and session",
            add,
            json!({"provider": "openai", "apiKey": key, "session": "work"}),
            "session",
        ),
        (
            "bad session name",
            add,
            json!({"provider": "openai", "session": "a b"}),
            "session",
        ),
        (
            "ftp endpoint",
            add,
            json!({"provider": "openai", "apiKey": key, "endpoint": "ftp://x/v1"}),
            "endpoint",
        ),
        (
            "key in the endpoint",
            add,
            json!({"provider": "openai", "apiKey": key, "endpoint": "https://u:sk-SECRET-in-url@x/v1"}),
            "endpoint",
        ),
        (
            "empty model",
            add,
            json!({"provider": "openai", "apiKey": key, "model": ""}),
            "model",
        ),
        (
            "custom without endpoint",
            add,
            json!({"provider": "custom", "model": "m"}),
            "endpoint",
        ),
        // A custom provider without a model takes the first its endpoint lists (issue 15).
        (
            "keySource other than env",
            add,
            json!({"provider": "openai", "keySource": "keychain"}),
            "keySource",
        ),
        (
            "keySource env with a key",
            add,
            json!({"provider": "openai", "keySource": "env", "apiKey": key}),
            "keySource",
        ),
        (
            "keySource env for a kind without a variable",
            add,
            json!({"provider": "custom", "keySource": "env", "endpoint": "http://localhost:1/v1"}),
            "keySource",
        ),
        (
            "folderId for openai",
            add,
            json!({"provider": "openai", "apiKey": key, "options": {"folderId": "b1g"}}),
            "options.folderId",
        ),
        (
            "unknown option",
            add,
            json!({"provider": "openai", "apiKey": key, "options": {"temperature": 1}}),
            "options.temperature",
        ),
        (
            "options not an object",
            add,
            json!({"provider": "openai", "apiKey": key, "options": "x"}),
            "options",
        ),
        (
            "primary not a boolean",
            add,
            json!({"provider": "openai", "apiKey": key, "primary": "SECRET-yes"}),
            "primary",
        ),
        (
            "empty display name",
            add,
            json!({"provider": "openai", "apiKey": key, "displayName": ""}),
            "displayName",
        ),
        (
            "test without provider or id",
            test,
            json!({"apiKey": key}),
            "provider",
        ),
        ("test id of wrong type", test, json!({"id": "3"}), "id"),
        ("test negative id", test, json!({"id": -3}), "id"),
        (
            "update without id",
            update,
            json!({"model": "gpt-4o"}),
            "id",
        ),
        (
            "update isActive of wrong type",
            update,
            json!({"id": 1, "isActive": "SECRET"}),
            "isActive",
        ),
        (
            "update empty key",
            update,
            json!({"id": 1, "apiKey": ""}),
            "apiKey",
        ),
        (
            "update unknown field",
            update,
            json!({"id": 1, "primary": true}),
            "primary",
        ),
        (
            "update endpoint not http",
            update,
            json!({"id": 1, "endpoint": "mailto:a@b"}),
            "endpoint",
        ),
        (
            "remove without id",
            remove,
            json!({"confirmed": true}),
            "id",
        ),
        (
            "remove confirmed of wrong type",
            remove,
            json!({"id": 1, "confirmed": "yes"}),
            "confirmed",
        ),
        ("setPrimary float id", id, json!({"id": 1.5}), "id"),
        (
            "models id and provider",
            models,
            json!({"id": 1, "provider": "openai"}),
            "provider",
        ),
        (
            "models custom without endpoint",
            models,
            json!({"provider": "custom"}),
            "endpoint",
        ),
        (
            "sessions.add oauth",
            sessions_add,
            json!({"provider": "openai", "authType": "oauth", "name": "work", "apiKey": key}),
            "authType",
        ),
        (
            "sessions.add short name",
            sessions_add,
            json!({"provider": "openai", "name": "ab", "apiKey": key}),
            "name",
        ),
        (
            "sessions.add without key",
            sessions_add,
            json!({"provider": "openai", "name": "work"}),
            "apiKey",
        ),
        (
            "sessions.list unknown kind",
            sessions_list,
            json!({"provider": "mistral"}),
            "provider",
        ),
    ];
    for (label, decoder, args, field) in cases {
        assert_eq!(
            field_of(decoder(object(args))),
            Ok(field.to_string()),
            "{label}"
        );
    }
}

#[test]
fn valid_arguments_decode_to_requests() {
    let add = decode::add(object(json!({
        "provider": "yandex",
        "apiKey": " AQVN-key-0002\n",
        "model": "yandexgpt/latest",
        "displayName": "Yandex (work)",
        "primary": true,
        "options": {"folderId": "b1gfolder"},
    })))
    .unwrap();
    assert!(matches!(&add.key, KeyChoice::Own(k) if k.expose() == "AQVN-key-0002"));
    assert!(add.primary);
    assert_eq!(add.spec.options.folder_id.as_deref(), Some("b1gfolder"));
    assert_eq!(add.spec.model(), "yandexgpt/latest");

    let (test, kind) = decode::test(object(
        json!({"id": 3, "provider": "openai", "model": "gpt-4o-mini"}),
    ))
    .unwrap();
    assert!(matches!(test, TestRequest::Stored { .. }));
    assert_eq!(kind.map(|k| k.as_str()), Some("openai"));

    let update = decode::update(object(
        json!({"id": 2, "endpoint": null, "isActive": false}),
    ))
    .unwrap();
    assert_eq!(
        update.changes.endpoint,
        Some(None),
        "null returns to the default endpoint"
    );
    assert_eq!(update.is_active, Some(false));
    assert!(
        update.changes.touches_connection(),
        "a new endpoint is tested"
    );

    assert!(!decode::remove(object(json!({"id": 5}))).unwrap().1);
    assert!(decode::nothing(Map::new()).is_ok());
}
