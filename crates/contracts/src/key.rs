//! Idempotency keys and their deterministic derivation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ContractError;

/// The producer-set deduplication key of an event (`metadata.idempotency-key`).
///
/// For the first event of a flow it is the client's `Idempotency-Key` header; for an event caused
/// by another it is [`IdempotencyKey::derive`]d from the cause's key.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "KeySchema")]
pub struct IdempotencyKey(String);

/// Schema stand-in: a non-empty string of at most [`IdempotencyKey::MAX_LEN`] characters.
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)] // only read by schemars
struct KeySchema(#[schemars(length(min = 1, max = 255))] String);

impl IdempotencyKey {
    /// Longest accepted key, in bytes (a DynamoDB key stays far below its 2 KB limit).
    pub const MAX_LEN: usize = 255;

    /// Validates a client- or producer-supplied key: 1 to 255 visible ASCII characters.
    pub fn new(key: impl Into<String>) -> Result<Self, ContractError> {
        let key = key.into();
        let visible = key.bytes().all(|b| b.is_ascii_graphic());
        if key.is_empty() || key.len() > Self::MAX_LEN || !visible {
            return Err(ContractError::InvalidIdempotencyKey {
                len: key.chars().count(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(key))
    }

    /// The key of the event of type `detail_type` caused by the fact keyed `self`.
    ///
    /// Format (stable, version 1): lower-case hex of
    /// `SHA-256("idem-v1" 0x1F cause-key 0x1F detail-type)`. The unit separator cannot occur in a
    /// valid key, so distinct `(cause, type)` pairs never collide by concatenation.
    pub fn derive(&self, detail_type: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"idem-v1\x1f");
        hasher.update(self.0.as_bytes());
        hasher.update(b"\x1f");
        hasher.update(detail_type.as_bytes());
        Self(hex::encode(hasher.finalize()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<IdempotencyKey> for String {
    fn from(value: IdempotencyKey) -> Self {
        value.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_format_is_stable() {
        // Pinned: changing this value breaks deduplication across deployments.
        let key = IdempotencyKey::new("order-key-1")
            .unwrap()
            .derive("OrderPicked");
        assert_eq!(
            key.as_str(),
            "076f1edacff8598bb95e83c4d432418d288cfba21e3b2c824edf3b2b97b06baa"
        );
        assert_eq!(key.as_str().len(), 64);
        assert_eq!(
            key,
            IdempotencyKey::new("order-key-1")
                .unwrap()
                .derive("OrderPicked")
        );
    }

    #[test]
    fn empty_long_and_invisible_keys_are_rejected() {
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new("a".repeat(256)).is_err());
        assert!(IdempotencyKey::new("has space").is_err());
        assert!(IdempotencyKey::new("tab\t").is_err());
        assert!(IdempotencyKey::new("a".repeat(255)).is_ok());
    }

    #[test]
    fn deserializing_validates_the_key() {
        assert!(serde_json::from_str::<IdempotencyKey>("\"\"").is_err());
        assert!(serde_json::from_str::<IdempotencyKey>("\"ok-1\"").is_ok());
    }
}
