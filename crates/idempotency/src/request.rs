//! Requests, key extraction and the stable key format.

use std::io::Write as _;
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
        // The common key, one string, is written and hashed directly; anything else goes through
        // a `Value`, where emptiness of containers is judged. Both hash the same canonical text.
        let mut text = Vec::with_capacity(64);
        if crate::canonical::write(key_material, &mut text).is_ok() && text.first() == Some(&b'"') {
            if text == b"\"\"" {
                return Err(IdempotencyError::KeyMissing);
            }
            return Ok(Self {
                key_hash: Some(sha256_hex(&text)),
                validation: None,
                remaining: None,
            });
        }
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
    let mut text = Vec::with_capacity(256);
    write_canonical_of(value, &mut text)?;
    Ok(sha256_hex(&text))
}

/// The canonical JSON text [`hash_json`] hashes.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, IdempotencyError> {
    let mut out = Vec::new();
    write_canonical_of(value, &mut out)?;
    // Every byte written is JSON text produced from Rust strings: always UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Writes `value`'s canonical JSON: straight from its `Serialize` impl when the direct writer
/// supports everything in it (typed events always), else through a [`Value`]. Both give the
/// same bytes.
fn write_canonical_of<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), IdempotencyError> {
    if crate::canonical::write(value, out).is_ok() {
        return Ok(());
    }
    out.clear();
    let value = serde_json::to_value(value).map_err(IdempotencyError::Serialization)?;
    write_canonical(&value, out);
    Ok(())
}

/// The canonical text of a [`Value`] by the general path (the direct writer's tests compare
/// against it).
#[cfg(test)]
pub(crate) fn canonical_via_value(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn hash_value(value: &Value) -> String {
    let mut text = Vec::with_capacity(256);
    write_canonical(value, &mut text);
    sha256_hex(&text)
}

/// Lower-case hex of the SHA-256 of `bytes`, through a stack buffer (`hex::encode` collects
/// characters one by one).
fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`. Two table lookups per byte into one exactly sized buffer: the
/// `hex` crate's iterator-based encoder plus a UTF-8 check cost ~1,600 instructions per 32-byte
/// hash, and two hashes are encoded per record.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = Vec::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.extend_from_slice(&[
            DIGITS[usize::from(byte >> 4)],
            DIGITS[usize::from(byte & 0x0f)],
        ]);
    }
    // Every byte pushed is an ASCII hex digit, so this is valid UTF-8; the check is kept (no
    // unsafe) and the fallback is unreachable.
    String::from_utf8(text).unwrap_or_else(|_| hex::encode(bytes))
}

// Sorting explicitly rather than relying on serde_json's BTreeMap: another crate in the build
// enabling `preserve_order` would otherwise silently change every key. Written into one buffer
// with no allocation per string or number (this runs for every record a consumer sees).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // `Number`'s Display is serde_json's own rendering of it.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // Writing a &str as JSON into a Vec cannot fail (no I/O, no non-string keys); write an empty
    // string literal regardless rather than panic.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
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
    fn a_string_key_hashes_its_json_text_directly_and_an_empty_one_is_missing() {
        // Pinned: SHA-256 of `"k-1"` (with the quotes), computed independently (Python hashlib).
        let direct = Request::new("k-1").unwrap();
        assert_eq!(
            direct.key_hash(),
            Some("f613e2ddb1ed1aefc2d87a1bc773c3a3e671f40809ffe8875486d58482e5259a")
        );
        for key in ["k-1", "with \"quotes\" and \\", "ünïcödé", "tab\tnewline\n"] {
            let via_value = hash_value(&json!(key));
            assert_eq!(
                Request::new(key).unwrap().key_hash(),
                Some(via_value.as_str()),
                "{key}"
            );
        }
        assert!(matches!(
            Request::new(""),
            Err(IdempotencyError::KeyMissing)
        ));
        assert!(matches!(
            Request::new(&String::new()),
            Err(IdempotencyError::KeyMissing)
        ));
    }

    #[test]
    fn stack_hex_is_the_hex_crate_s_text_at_every_length() {
        for len in [0, 1, 16, 32, 33, 40] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(hex_lower(&bytes), hex::encode(&bytes), "{len} bytes");
        }
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
