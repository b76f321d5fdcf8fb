//! Idempotency keys and their deterministic derivation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ContractError;

/// The producer-set deduplication key of an event (`metadata.idempotency-key`).
///
/// For the first event of a flow it is derived from the client's `Idempotency-Key` header and
/// what the API's claim is scoped by ([`IdempotencyKey::for_order`],
/// [`IdempotencyKey::for_return`]), never the raw client key: clients choose keys, and two
/// customers may choose the same one. For an event caused by another it is
/// [`IdempotencyKey::derive`]d from the cause's key.
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

    /// The key of `OrderCreated` for the order a customer created with the client key `client`
    /// (the order API's claim is scoped by the customer). See [`IdempotencyKey::scoped`].
    pub fn for_order(customer_id: &str, client: &IdempotencyKey) -> Self {
        Self::scoped("order", customer_id, client)
    }

    /// The key of `ReturnRequested` for the return requested on an order with the client key
    /// `client` (the return API's claim is scoped by the order). See [`IdempotencyKey::scoped`].
    pub fn for_return(order_id: &str, client: &IdempotencyKey) -> Self {
        Self::scoped("return", order_id, client)
    }

    /// The key of the first fact of a flow started by a client request: `client` is the request's
    /// `Idempotency-Key`, `scope` names what the API's claim is scoped by and `owner` is that
    /// scope's id (the customer of an order, the order of a return).
    ///
    /// Format (stable, version 1): lower-case hex of
    /// `SHA-256("client-v1" 0x1F scope 0x1F owner 0x1F client-key)`. The unit separator cannot
    /// occur in a valid key, and scopes and owner ids never contain it, so distinct triples never
    /// collide by concatenation; the same client key under two owners gives two keys.
    fn scoped(scope: &str, owner: &str, client: &IdempotencyKey) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"client-v1\x1f");
        hasher.update(scope.as_bytes());
        hasher.update(b"\x1f");
        hasher.update(owner.as_bytes());
        hasher.update(b"\x1f");
        hasher.update(client.0.as_bytes());
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
    fn scoped_format_is_stable_and_separates_owners() {
        // Pinned (DESIGN.md section 2): changing it re-keys every first fact in flight.
        let client = IdempotencyKey::new("5d1f7c1e-demo-1").unwrap();
        // Computed independently: sha256(b"client-v1\x1forder\x1f456\x1f5d1f7c1e-demo-1").
        let key = IdempotencyKey::for_order("456", &client);
        assert_eq!(
            key.as_str(),
            "0d1aa6232cca0cc2611031d7b60992efc44a339f24c7ad8de1786ff99e4f4594"
        );
        assert_ne!(key, IdempotencyKey::for_order("457", &client));
        // sha256(b"client-v1\x1freturn\x1f456\x1f5d1f7c1e-demo-1"): the order's id as owner.
        assert_eq!(
            IdempotencyKey::for_return("456", &client).as_str(),
            "eabb50e78e377a34d9048dc769228a283273a0f46af81da532f13a024f2cc848"
        );
        assert_ne!(key, client, "never the raw client key");
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
