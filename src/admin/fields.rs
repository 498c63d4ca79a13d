//! A small decoder for the argument objects of the executeCommand contract: typed fields taken
//! one by one, an error naming the field for each problem (unknown field, wrong type, missing),
//! and error texts that say what was expected and what JSON type arrived — never the value, so
//! a key sent in the wrong field cannot reach an error message or a log.

use serde_json::{Map, Value};

use super::AdminError;
use super::requests::invalid;

/// The fields of one argument object, consumed as they are decoded.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    prefix: String,
}

impl Fields {
    /// Takes `map`, refusing any member not in `allowed`.
    pub fn new(map: Map<String, Value>, allowed: &[&str]) -> Result<Fields, AdminError> {
        Fields::with_prefix(map, allowed, "")
    }

    /// [`Fields::new`] for a nested object: error fields read `{prefix}{name}`.
    pub fn with_prefix(
        map: Map<String, Value>,
        allowed: &[&str],
        prefix: &str,
    ) -> Result<Fields, AdminError> {
        // Sorted, so that the reported field does not depend on the client's member order.
        let mut unknown: Vec<&String> = map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        unknown.sort();
        if let Some(name) = unknown.first() {
            let reason = if allowed.is_empty() {
                "unknown field; this command takes no arguments".to_string()
            } else {
                format!("unknown field; expected one of {}", allowed.join(", "))
            };
            return Err(invalid(&format!("{prefix}{name}"), reason));
        }
        Ok(Fields {
            map,
            prefix: prefix.to_string(),
        })
    }

    fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> AdminError {
        invalid(
            &self.name(name),
            format!("expected {expected}, got {}", describe(got)),
        )
    }

    fn missing(&self, name: &str) -> AdminError {
        invalid(&self.name(name), "is required")
    }

    /// A present, non-null value (`null` counts as absent).
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    pub fn optional_str(&mut self, name: &str) -> Result<Option<String>, AdminError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    pub fn required_str(&mut self, name: &str) -> Result<String, AdminError> {
        self.optional_str(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn optional_bool(&mut self, name: &str) -> Result<Option<bool>, AdminError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(name, "true or false", &other)),
        }
    }

    /// An integer (ids): `3`, not `3.0` or `"3"`.
    pub fn optional_int(&mut self, name: &str) -> Result<Option<i64>, AdminError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(invalid(&self.name(name), "expected an integer id")),
            },
            Some(other) => Err(self.wrong_type(name, "an integer id", &other)),
        }
    }

    pub fn required_int(&mut self, name: &str) -> Result<i64, AdminError> {
        self.optional_int(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn optional_object(
        &mut self,
        name: &str,
    ) -> Result<Option<Map<String, Value>>, AdminError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.wrong_type(name, "an object", &other)),
        }
    }

    /// Absent → `None`; `null` → `Some(None)`; a string → `Some(Some(s))` (update's "reset to the
    /// default" for the endpoint).
    pub fn nullable_str(&mut self, name: &str) -> Result<Option<Option<String>>, AdminError> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(other) => Err(self.wrong_type(name, "a string or null", &other)),
        }
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

    fn fields(value: Value, allowed: &[&str]) -> Result<Fields, AdminError> {
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
}
