//! The one decoder for the argument objects of the executeCommand contract (DESIGN.md §3), used by
//! every command — provider and session management (`admin::decode`) and the writing features
//! (`lsp::assist_commands`): typed fields taken one by one, an error naming the field for each
//! problem (unknown field, wrong type, missing), and reasons (`messages::args`) that say what was
//! expected and what JSON type arrived — never the value, so a key or manuscript text sent in the
//! wrong field cannot reach an error message or a log.
//!
//! A leaf: plain JSON, no LSP, no domain. Callers turn [`ArgsError`] into their own error
//! (`AdminError::Invalid`, `CommandError::InvalidArgument`) with `?`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::messages;

/// An argument that could not be decoded: the field (`options.folderId` for nested members) and
/// why. Neither ever holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ArgsError {
    pub field: String,
    pub reason: String,
}

impl ArgsError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> ArgsError {
        ArgsError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The fields of one argument object, consumed as they are decoded.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    prefix: String,
}

impl Fields {
    /// Takes `map`, refusing any member not in `allowed`.
    pub fn new(map: Map<String, Value>, allowed: &[&str]) -> Result<Fields, ArgsError> {
        Fields::with_prefix(map, allowed, "")
    }

    /// [`Fields::new`] for a nested object: error fields read `{prefix}{name}`.
    pub fn with_prefix(
        map: Map<String, Value>,
        allowed: &[&str],
        prefix: &str,
    ) -> Result<Fields, ArgsError> {
        // Sorted, so that the reported field does not depend on the client's member order.
        let mut unknown: Vec<&String> = map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        unknown.sort();
        if let Some(name) = unknown.first() {
            return Err(ArgsError::new(
                format!("{prefix}{name}"),
                messages::args::unknown_field(allowed),
            ));
        }
        Ok(Fields {
            map,
            prefix: prefix.to_string(),
        })
    }

    fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether `name` is present and not `null`.
    pub fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> ArgsError {
        ArgsError::new(
            self.name(name),
            messages::args::wrong_type(expected, describe(got)),
        )
    }

    fn missing(&self, name: &str) -> ArgsError {
        ArgsError::new(self.name(name), messages::args::REQUIRED)
    }

    /// A present, non-null value (`null` counts as absent).
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    pub fn optional_str(&mut self, name: &str) -> Result<Option<String>, ArgsError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    pub fn required_str(&mut self, name: &str) -> Result<String, ArgsError> {
        self.optional_str(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn optional_bool(&mut self, name: &str) -> Result<Option<bool>, ArgsError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(name, "true or false", &other)),
        }
    }

    pub fn required_bool(&mut self, name: &str) -> Result<bool, ArgsError> {
        self.optional_bool(name)?.ok_or_else(|| self.missing(name))
    }

    /// An integer (ids): `3`, not `3.0` or `"3"`.
    pub fn optional_int(&mut self, name: &str) -> Result<Option<i64>, ArgsError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(ArgsError::new(
                    self.name(name),
                    messages::args::NOT_AN_INTEGER_ID,
                )),
            },
            Some(other) => Err(self.wrong_type(name, "an integer id", &other)),
        }
    }

    pub fn required_int(&mut self, name: &str) -> Result<i64, ArgsError> {
        self.optional_int(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn optional_object(&mut self, name: &str) -> Result<Option<Map<String, Value>>, ArgsError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.wrong_type(name, "an object", &other)),
        }
    }

    /// Absent → `None`; `null` → `Some(None)`; a string → `Some(Some(s))` (update's "reset to the
    /// default" for the endpoint).
    pub fn nullable_str(&mut self, name: &str) -> Result<Option<Option<String>>, ArgsError> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(other) => Err(self.wrong_type(name, "a string or null", &other)),
        }
    }

    /// A structured value (a URI, an LSP range, a bounded number) decoded with serde.
    pub fn optional<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, ArgsError> {
        match self.take(name) {
            None => Ok(None),
            Some(value) => self.deserialize(name, value).map(Some),
        }
    }

    /// [`Fields::optional`], refusing an absent or `null` value.
    pub fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ArgsError> {
        self.optional(name)?.ok_or_else(|| self.missing(name))
    }

    fn deserialize<T: DeserializeOwned>(&self, name: &str, value: Value) -> Result<T, ArgsError> {
        let kind = describe(&value);
        serde_json::from_value(value).map_err(|e| {
            // serde's text may quote the value (a key, manuscript text); say only what was wrong.
            let reason = match e.classify() {
                serde_json::error::Category::Data => messages::args::wrong_shape(kind),
                _ => messages::args::unreadable(kind),
            };
            ArgsError::new(self.name(name), reason)
        })
    }
}

/// The JSON type of a value, for error texts (never the value itself).
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value, allowed: &[&str]) -> Result<Fields, ArgsError> {
        Fields::new(value.as_object().cloned().unwrap_or_default(), allowed)
    }

    #[test]
    fn unknown_fields_are_named_in_a_stable_order() {
        let err = fields(json!({"zeta": 1, "alpha": 2, "id": 3}), &["id"]).unwrap_err();
        assert!(err.to_string().starts_with("alpha: unknown field"), "{err}");
        let err = fields(json!({"x": 1}), &[]).unwrap_err();
        assert!(err.to_string().contains("takes no arguments"), "{err}");
    }

    #[test]
    fn type_errors_name_the_field_and_never_the_value() {
        let mut f = fields(
            json!({"isActive": "sk-pasted-in-the-wrong-field", "id": "7", "n": 2.5}),
            &["isActive", "id", "n"],
        )
        .unwrap();
        let e = f.optional_bool("isActive").unwrap_err().to_string();
        assert_eq!(e, "isActive: expected true or false, got a string");
        let e = f.required_int("id").unwrap_err().to_string();
        assert_eq!(e, "id: expected an integer id, got a string");
        let e = f.required_int("n").unwrap_err().to_string();
        assert_eq!(e, "n: expected an integer id");
        let e = f.required_str("missing").unwrap_err().to_string();
        assert_eq!(e, "missing: is required");
    }

    #[test]
    fn null_means_absent_except_where_it_resets() {
        let mut f = fields(
            json!({"model": null, "endpoint": null}),
            &["model", "endpoint"],
        )
        .unwrap();
        assert_eq!(f.optional_str("model").unwrap(), None);
        assert_eq!(f.nullable_str("endpoint").unwrap(), Some(None));
        assert_eq!(f.nullable_str("endpoint").unwrap(), None);
    }

    #[test]
    fn structured_values_never_quote_the_value() {
        let mut f = fields(
            json!({"uri": "the lighthouse keeper", "version": "lighthouse", "nested": {"a": 1}}),
            &["uri", "version", "nested"],
        )
        .unwrap();
        let e = f.required::<Vec<u32>>("uri").unwrap_err();
        assert_eq!(e.field, "uri");
        assert!(!e.to_string().contains("lighthouse"), "{e}");
        let e = f.optional::<u32>("version").unwrap_err();
        assert_eq!(e.to_string(), "version: wrong type or shape (got a string)");
        let nested = Fields::with_prefix(
            f.optional_object("nested").unwrap().unwrap(),
            &["b"],
            "nested.",
        )
        .unwrap_err();
        assert_eq!(
            nested.to_string(),
            "nested.a: unknown field; expected one of b"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const MARK: &str = "SENTINEL";
        const NAMES: [&str; 5] = ["alpha", "beta", "gamma", "delta", "options"];

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>().prop_map(|n| json!(n)),
                "[ -~\t\n]{0,12}".prop_map(|s| Value::String(format!("{MARK}{s}"))),
            ];
            leaf.prop_recursive(2, 8, 3, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                    proptest::collection::btree_map(
                        "[a-z]{1,5}".prop_map(|k| format!("{MARK}{k}")),
                        inner,
                        0..3
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// One way of reading a field, chosen per case.
        fn read(f: &mut Fields, how: u8, name: &str) -> Result<(), ArgsError> {
            match how % 9 {
                0 => f.optional_str(name).map(drop),
                1 => f.required_str(name).map(drop),
                2 => f.optional_bool(name).map(drop),
                3 => f.required_int(name).map(drop),
                4 => f.optional_object(name).map(drop),
                5 => f.nullable_str(name).map(drop),
                6 => f.required::<Vec<u32>>(name).map(drop),
                7 => f.optional::<u32>(name).map(drop),
                _ => f.required_bool(name).map(drop),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn never_panics_names_a_field_and_never_echoes_a_value(
                members in proptest::collection::vec(
                    (prop_oneof![
                        proptest::sample::select(NAMES.to_vec()).prop_map(str::to_string),
                        "[a-z]{1,5}".prop_map(|k| format!("x{k}")),
                    ], value()),
                    0..6,
                ),
                allowed in proptest::collection::vec(proptest::sample::select(NAMES.to_vec()), 0..5),
                reads in proptest::collection::vec(any::<u8>(), 5),
            ) {
                let map: Map<String, Value> = members.into_iter().collect();
                let given: Vec<String> = map.keys().cloned().collect();
                let outcome = Fields::new(map, &allowed).and_then(|mut f| {
                    for (how, name) in reads.iter().zip(NAMES) {
                        read(&mut f, *how, name)?;
                    }
                    Ok(())
                });
                if let Err(e) = outcome {
                    prop_assert!(
                        NAMES.contains(&e.field.as_str()) || given.contains(&e.field),
                        "unexpected field {}", e.field
                    );
                    for text in [e.to_string(), format!("{e:?}")] {
                        // Member names are the client's too, but never carry the marker.
                        prop_assert!(!text.contains(MARK), "{text}");
                    }
                }
            }
        }
    }
}
