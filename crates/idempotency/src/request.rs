//! Requests, key extraction and the stable key format.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::IdempotencyError;

/// A request to make one operation idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    key_hash: Option<String>,
    validation: Option<String>,
    remaining: Option<Duration>,
}

impl Request {
    /// A request keyed by `key_material`: its canonical JSON (object keys sorted) hashed with
    /// SHA-256 (see [`hash_json`]).
    ///
    /// Key material that carries no value (`null`, `""`, `[]`, `{}`, or containers of only such
    /// values) is [`IdempotencyError::KeyMissing`], so keyless requests never share one hash.
    pub fn new<K: Serialize + ?Sized>(key_material: &K) -> Result<Self, IdempotencyError> {
        let value = serde_json::to_value(key_material).map_err(IdempotencyError::Serialization)?;
        if is_empty_material(&value) {
            return Err(IdempotencyError::KeyMissing);
        }
        Ok(Self {
            key_hash: Some(hash_value(&value)),
            validation: None,
            remaining: None,
        })
    }

    /// Like [`Request::new`]; `None` is [`IdempotencyError::KeyMissing`] (never a shared hash).
    pub fn from_optional<K: Serialize + ?Sized>(
        key_material: Option<&K>,
    ) -> Result<Self, IdempotencyError> {
        match key_material {
            Some(k) => Self::new(k),
            None => Err(IdempotencyError::KeyMissing),
        }
    }

    /// A request keyed by whatever `extractor` finds in `event`; nothing found is
    /// [`IdempotencyError::KeyMissing`].
    pub fn from_event<Ev: ?Sized, X: KeyExtractor<Ev> + ?Sized>(
        extractor: &X,
        event: &Ev,
    ) -> Result<Self, IdempotencyError> {
        match extractor.extract(event) {
            Some(k) => Self::new(&k),
            None => Err(IdempotencyError::KeyMissing),
        }
    }

    /// Explicit opt-out: the operation runs without persistence, and a warning is logged each
    /// time, so a missing key is visible rather than silently deduplicated against others.
    pub fn unkeyed() -> Self {
        Self {
            key_hash: None,
            validation: None,
            remaining: None,
        }
    }

    /// Turns on payload validation: the same key with a different `payload` is
    /// [`IdempotencyError::Validation`], never a replay.
    pub fn validate<P: Serialize + ?Sized>(
        mut self,
        payload: &P,
    ) -> Result<Self, IdempotencyError> {
        self.validation = Some(hash_json(payload)?);
        Ok(self)
    }

    /// Remaining time of the Lambda invocation (from the context deadline): the claim may be
    /// taken over once it has passed. [`Duration::ZERO`] is a real value (the claim is takeable
    /// at once), not "unknown". An explicit
    /// [`crate::IdempotencyConfig::in_progress_timeout`] overrides it.
    pub fn remaining_time(mut self, remaining: Duration) -> Self {
        self.remaining = Some(remaining);
        self
    }

    /// The hashed key (lower-case hex), for logs; `None` when unkeyed.
    pub fn key_hash(&self) -> Option<&str> {
        self.key_hash.as_deref()
    }

    /// The payload hash, when validation is on.
    pub fn validation_hash(&self) -> Option<&str> {
        self.validation.as_deref()
    }

    /// The remaining time given with [`Request::remaining_time`].
    pub fn remaining(&self) -> Option<Duration> {
        self.remaining
    }
}

/// Extracts key material from a typed event. Implemented for every
/// `Fn(&Ev) -> Option<K>` closure; implement it on a type to name an extraction once.
pub trait KeyExtractor<Ev: ?Sized> {
    /// The key material (hashed as canonical JSON).
    type Key: Serialize;
    /// The key material of `event`, or `None` when it has none.
    fn extract(&self, event: &Ev) -> Option<Self::Key>;
}

impl<Ev: ?Sized, K: Serialize, F: Fn(&Ev) -> Option<K>> KeyExtractor<Ev> for F {
    type Key = K;
    fn extract(&self, event: &Ev) -> Option<K> {
        self(event)
    }
}

/// The stable hash of `value` (format version 1): lower-case hex of SHA-256 over its canonical
/// JSON, which is serde_json's compact text with every object's keys sorted by their UTF-8 bytes,
/// at every depth. Numbers keep serde_json's rendering, so `1` and `1.0` hash differently.
pub fn hash_json<T: Serialize + ?Sized>(value: &T) -> Result<String, IdempotencyError> {
    let value = serde_json::to_value(value).map_err(IdempotencyError::Serialization)?;
    Ok(hash_value(&value))
}

/// The canonical JSON text [`hash_json`] hashes.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, IdempotencyError> {
    let value = serde_json::to_value(value).map_err(IdempotencyError::Serialization)?;
    let mut out = String::new();
    write_canonical(&value, &mut out);
    Ok(out)
}

fn hash_value(value: &Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

// Sorting explicitly rather than relying on serde_json's BTreeMap: another crate in the build
// enabling `preserve_order` would otherwise silently change every key.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serializing a &str to JSON cannot fail; fall back to an empty string literal regardless
    // rather than panic.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

fn is_empty_material(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.iter().all(is_empty_material),
        Value::Object(map) => map.values().all(is_empty_material),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_format_is_stable() {
        // Pinned: changing this value re-runs every operation after a deployment.
        let request = Request::new(&json!({"order-id": "1073459984", "customer": 456})).unwrap();
        assert_eq!(
            canonical_json(&json!({"order-id": "1073459984", "customer": 456})).unwrap(),
            r#"{"customer":456,"order-id":"1073459984"}"#
        );
        // SHA-256 of the canonical text above, computed independently (Python hashlib).
        assert_eq!(
            request.key_hash(),
            Some("ef804e9e6d771ca33e1409b94c9fb10d5ce990e0bf1c11fba6f5ff207448ff86")
        );
    }

    #[test]
    fn same_data_in_different_key_order_gives_the_same_key() {
        let a: Value =
            serde_json::from_str(r#"{"b":{"y":1,"x":[{"q":1,"p":2}]},"a":"s"}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":"s","b":{"x":[{"p":2,"q":1}],"y":1}}"#).unwrap();
        assert_eq!(
            Request::new(&a).unwrap().key_hash(),
            Request::new(&b).unwrap().key_hash()
        );
    }

    #[test]
    fn keyless_material_is_a_missing_key_not_a_shared_hash() {
        for empty in [
            json!(null),
            json!(""),
            json!([]),
            json!({}),
            json!({"a": null, "b": ""}),
        ] {
            assert!(
                matches!(Request::new(&empty), Err(IdempotencyError::KeyMissing)),
                "{empty} must be a missing key"
            );
        }
        assert!(matches!(
            Request::from_optional::<str>(None),
            Err(IdempotencyError::KeyMissing)
        ));
        assert!(Request::new(&0).is_ok());
        assert!(Request::new(&false).is_ok());
    }

    #[test]
    fn closures_extract_keys_from_typed_events() {
        struct Event {
            key: Option<String>,
        }
        let by_key = |e: &Event| e.key.clone();
        let keyed = Request::from_event(
            &by_key,
            &Event {
                key: Some("k".into()),
            },
        )
        .unwrap();
        assert_eq!(keyed.key_hash(), Request::new("k").unwrap().key_hash());
        assert!(matches!(
            Request::from_event(&by_key, &Event { key: None }),
            Err(IdempotencyError::KeyMissing)
        ));
    }
}
