//! The editor integrations describe the server's settings (DESIGN.md §3) in three places: the
//! VS Code extension's `contributes.configuration` (editors/vscode/package.json), its
//! `settings-defaults.json`, and the Helix snippet (editors/helix/languages.toml). These tests hold
//! all three to `config::Settings`: the same keys, the same defaults, the ranges and choices the
//! decoder accepts — so a setting added, renamed or re-defaulted on one side fails CI until the
//! other follows.

use std::path::PathBuf;

use serde_json::{Map, Value, json};
use storyteller_lsp::config::Settings;

/// Keys of the `storyteller` section that only the VS Code extension reads.
const EXTENSION_ONLY: &[&str] = &["storyteller.serverPath"];

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn defaults() -> Value {
    serde_json::to_value(Settings::default()).expect("Settings serialize")
}

/// package.json's `contributes.configuration.properties`, without the extension-only keys.
fn contributed() -> Vec<(String, Value)> {
    let package: Value = serde_json::from_str(&repo_file("editors/vscode/package.json")).unwrap();
    let properties = package["contributes"]["configuration"]["properties"]
        .as_object()
        .expect("contributes.configuration.properties");
    properties
        .iter()
        .filter(|(key, _)| !EXTENSION_ONLY.contains(&key.as_str()))
        .map(|(key, schema)| (key.clone(), schema.clone()))
        .collect()
}

/// `{"a.b": v}` → `{"a": {"b": v}}`, as VS Code hands a section to the server.
fn nest(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    let mut root = Map::new();
    for (path, value) in entries {
        let parts: Vec<&str> = path.split('.').collect();
        let mut node = &mut root;
        for part in &parts[..parts.len() - 1] {
            node = node
                .entry(part.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("a settings group is an object");
        }
        node.insert(parts[parts.len() - 1].to_string(), value);
    }
    Value::Object(root)
}

/// The section as decoded by the server, with every warning it raised.
fn decode(section: &Value) -> (Settings, Vec<String>) {
    Settings::default().merged(&json!({ "storyteller": section }))
}

#[test]
fn settings_defaults_json_is_the_servers_default() {
    let file: Value =
        serde_json::from_str(&repo_file("editors/vscode/settings-defaults.json")).unwrap();
    assert_eq!(file, defaults());
}

#[test]
fn package_json_contributes_every_server_setting_with_its_default() {
    let section = nest(contributed().into_iter().map(|(key, schema)| {
        let key = key
            .strip_prefix("storyteller.")
            .expect("storyteller.*")
            .to_string();
        (key, schema["default"].clone())
    }));
    assert_eq!(
        section,
        defaults(),
        "package.json defaults vs Settings::default()"
    );
    let (decoded, warnings) = decode(&section);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(decoded, Settings::default());
}

#[test]
fn package_json_ranges_and_choices_are_what_the_server_accepts() {
    for (key, schema) in contributed() {
        let path = key.strip_prefix("storyteller.").unwrap();
        let with = |value: Value| decode(&nest([(path.to_string(), value)]));
        let rejects = |value: Value| {
            let (decoded, warnings) = with(value.clone());
            decoded == Settings::default() && warnings.iter().any(|w| w.contains(&key))
        };
        if let (Some(min), Some(max)) = (schema["minimum"].as_u64(), schema["maximum"].as_u64()) {
            for ok in [min, max] {
                let (_, warnings) = with(json!(ok));
                assert!(warnings.is_empty(), "{key} = {ok} (in range): {warnings:?}");
            }
            assert!(
                rejects(json!(max + 1)),
                "{key}: the server takes {} above the maximum",
                max + 1
            );
            if min > 0 {
                assert!(
                    rejects(json!(min - 1)),
                    "{key}: the server takes {} below the minimum",
                    min - 1
                );
            }
        }
        if let Some(choices) = schema["enum"].as_array() {
            for choice in choices {
                let (_, warnings) = with(choice.clone());
                assert!(warnings.is_empty(), "{key} = {choice}: {warnings:?}");
            }
            assert!(
                rejects(json!("no-such-choice")),
                "{key} accepts a value outside its enum"
            );
        }
    }
}

#[test]
fn package_json_rate_limits_name_every_provider_kind_with_the_servers_range() {
    let (_, schema) = contributed()
        .into_iter()
        .find(|(key, _)| key == "storyteller.rateLimits")
        .expect("storyteller.rateLimits is contributed");
    let kinds = schema["properties"]
        .as_object()
        .expect("rateLimits.properties");
    let mut named: Vec<&str> = kinds.keys().map(String::as_str).collect();
    named.sort_unstable();
    let mut known: Vec<&str> = storyteller_lsp::providers::ProviderKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    known.sort_unstable();
    assert_eq!(named, known);
    for (kind, range) in kinds {
        let limits = |n: u64| decode(&json!({ "rateLimits": { kind.as_str(): n } })).1;
        let (min, max) = (
            range["minimum"].as_u64().unwrap(),
            range["maximum"].as_u64().unwrap(),
        );
        assert!(
            limits(min).is_empty() && limits(max).is_empty(),
            "rateLimits.{kind}"
        );
        assert!(
            !limits(min - 1).is_empty() && !limits(max + 1).is_empty(),
            "rateLimits.{kind}"
        );
    }
}

#[test]
fn the_helix_snippet_sets_server_settings_to_their_defaults() {
    let snippet: toml::Table = repo_file("editors/helix/languages.toml")
        .parse()
        .expect("languages.toml is TOML");
    let config =
        serde_json::to_value(&snippet["language-server"]["storyteller"]["config"]).unwrap();
    // Helix answers workspace/configuration("storyteller") by looking this key up in `config`.
    let keys: Vec<&String> = config.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["storyteller"]);
    let section = &config["storyteller"];
    let (decoded, warnings) = decode(section);
    assert!(
        warnings.is_empty(),
        "the server warns about the snippet: {warnings:?}"
    );
    assert_eq!(
        decoded,
        Settings::default(),
        "the snippet's values are the defaults"
    );
    // Every leaf it sets is a default, spelled as the server spells it.
    fn leaves(value: &Value, path: String, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(map) if !path.ends_with("rateLimits") => {
                for (k, v) in map {
                    let next = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    leaves(v, next, out);
                }
            }
            other => out.push((path, other.clone())),
        }
    }
    let mut set = Vec::new();
    leaves(section, String::new(), &mut set);
    assert!(
        set.len() >= 12,
        "the snippet documents the settings: {set:?}"
    );
    let all = defaults();
    for (path, value) in set {
        let default = path.split('.').fold(&all, |node, part| &node[part]);
        assert_eq!(&value, default, "storyteller.{path}");
    }
}
