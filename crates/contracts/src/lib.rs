//! The event contract between the orders, fulfillment and support domains.
//!
//! Every event on the bus is an EventBridge envelope whose `detail` is a [`Detail<T>`]: a
//! [`Metadata`] block plus the full state of one business fact `T`. There is one Rust type per
//! detail type ([`OrderCreated`], [`OrderPicked`], [`OrderShipped`], [`ReturnRequested`],
//! [`ReturnReceived`]); each implements [`DomainEvent`], which ties it to its `source` and
//! `detail-type` constants so no string is typed twice anywhere in the workspace.
//!
//! Rules of the contract (see `DESIGN.md` section 2):
//! - field names are kebab-case; money is a decimal *string* ([`Money`]); times are RFC 3339 UTC;
//! - evolution is additive: new optional fields only, unknown fields are ignored by consumers;
//! - `idempotency-key` is stable across retries of one business fact; a caused event derives its
//!   key from its cause with [`IdempotencyKey::derive`], so a re-processed cause re-emits the same key.
//!
//! ```
//! use contracts::{Detail, DomainEvent, IdempotencyKey, Metadata, OrderPicked};
//!
//! let cause = IdempotencyKey::new("c1b95b88-client-key").unwrap();
//! let key = cause.derive(OrderPicked::DETAIL_TYPE);
//! assert_eq!(key, cause.derive("OrderPicked")); // deterministic
//! assert_ne!(key, cause.derive("OrderShipped")); // distinct per caused fact
//! assert_eq!(OrderPicked::SOURCE, contracts::source::FULFILLMENT);
//! ```

mod any;
mod events;
mod key;
mod money;
pub mod schema;
mod time;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use any::{AnyEvent, ParseError};
pub use events::{
    Carrier, OrderCreated, OrderItem, OrderPicked, OrderShipped, OrderStatus, ReturnItem,
    ReturnReceived, ReturnRequested, ReturnStatus,
};
pub use key::IdempotencyKey;
pub use money::{Currency, Money};

/// EventBridge `source` values, one per producing domain.
pub mod source {
    /// Retail: orders taken over HTTP.
    pub const ORDERS: &str = "com.orders";
    /// Fulfillment: picking and shipping.
    pub const FULFILLMENT: &str = "com.fulfillment";
    /// Support: returns.
    pub const SUPPORT: &str = "com.support";
    /// Every source of the contract.
    pub const ALL: [&str; 3] = [ORDERS, FULFILLMENT, SUPPORT];
}

/// EventBridge `detail-type` values, one per business fact.
pub mod detail_type {
    /// An order was accepted.
    pub const ORDER_CREATED: &str = "OrderCreated";
    /// An order's items were picked in the warehouse.
    pub const ORDER_PICKED: &str = "OrderPicked";
    /// An order left the warehouse with a carrier.
    pub const ORDER_SHIPPED: &str = "OrderShipped";
    /// A customer asked to return items of a shipped order.
    pub const RETURN_REQUESTED: &str = "ReturnRequested";
    /// Returned items arrived back.
    pub const RETURN_RECEIVED: &str = "ReturnReceived";
    /// Every detail type of the contract.
    pub const ALL: [&str; 5] = [
        ORDER_CREATED,
        ORDER_PICKED,
        ORDER_SHIPPED,
        RETURN_REQUESTED,
        RETURN_RECEIVED,
    ];
}

/// The `(source, detail-type)` pairs the contract allows, i.e. who may publish what.
pub const ROUTES: [(&str, &str); 5] = [
    (source::ORDERS, detail_type::ORDER_CREATED),
    (source::FULFILLMENT, detail_type::ORDER_PICKED),
    (source::FULFILLMENT, detail_type::ORDER_SHIPPED),
    (source::SUPPORT, detail_type::RETURN_REQUESTED),
    (source::SUPPORT, detail_type::RETURN_RECEIVED),
];

/// Current schema version written into [`Metadata::schema_version`]. Bumped only by a breaking
/// change, which per the contract means a new detail type instead.
pub const SCHEMA_VERSION: &str = "1";

/// A business fact carried as an event's `data`.
pub trait DomainEvent: Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync {
    /// The EventBridge `source` of the domain that publishes it.
    const SOURCE: &'static str;
    /// The EventBridge `detail-type`.
    const DETAIL_TYPE: &'static str;
}

/// The metadata block of every event's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Metadata {
    /// Deduplication key, stable across retries of the same business fact.
    pub idempotency_key: IdempotencyKey,
    /// Unique id of this emission (a retry gets a new one; never used to deduplicate).
    pub event_id: String,
    /// Contract version of `data`.
    pub schema_version: String,
    /// Id shared by every event of one business flow (the order's flow).
    pub correlation_id: String,
    /// Event id of the event that caused this one; absent for the first event of a flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// When the fact happened (RFC 3339, UTC).
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub occurred_at: DateTime<Utc>,
}

impl Metadata {
    /// Metadata for the first event of a flow, keyed by the client's idempotency key.
    pub fn first(
        idempotency_key: IdempotencyKey,
        correlation_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            idempotency_key,
            event_id: uuid::Uuid::new_v4().to_string(),
            schema_version: SCHEMA_VERSION.to_owned(),
            correlation_id: correlation_id.into(),
            causation_id: None,
            occurred_at,
        }
    }

    /// Metadata for an event of type `E` caused by the event carrying `self`: same correlation,
    /// causation set to the cause's event id, key derived from the cause's key.
    pub fn caused<E: DomainEvent>(&self, occurred_at: DateTime<Utc>) -> Self {
        Self {
            idempotency_key: self.idempotency_key.derive(E::DETAIL_TYPE),
            event_id: uuid::Uuid::new_v4().to_string(),
            schema_version: SCHEMA_VERSION.to_owned(),
            correlation_id: self.correlation_id.clone(),
            causation_id: Some(self.event_id.clone()),
            occurred_at,
        }
    }
}

/// The `detail` of an EventBridge event: metadata plus the full state of one fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct Detail<T> {
    /// Delivery and tracing metadata.
    pub metadata: Metadata,
    /// The business fact.
    pub data: T,
}

impl<T: DomainEvent> Detail<T> {
    /// Pairs a fact with its metadata.
    pub fn new(metadata: Metadata, data: T) -> Self {
        Self { metadata, data }
    }
}

/// Errors of the contract's constructors and parsers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    /// An idempotency key was empty or too long.
    #[error("idempotency key must be 1 to {max} visible ASCII characters, got {len} characters")]
    InvalidIdempotencyKey {
        /// Length of the rejected key.
        len: usize,
        /// Longest accepted key.
        max: usize,
    },
    /// A money amount was not a decimal string.
    #[error("money must be a decimal string such as \"12.50\": {0}")]
    InvalidMoney(String),
    /// A currency code was not three upper-case letters of a supported currency.
    #[error("unsupported currency {0:?}: expected one of {supported}", supported = Currency::SUPPORTED.join(", "))]
    UnsupportedCurrency(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> OrderCreated {
        OrderCreated {
            order_id: "1073459984".into(),
            status: OrderStatus::Open,
            total: "237.51".parse().unwrap(),
            currency: Currency::new("USD").unwrap(),
            customer_id: "456".into(),
            items: vec![OrderItem {
                sku: "SKU-1".into(),
                quantity: 3,
                unit_price: "79.17".parse().unwrap(),
            }],
            created_at: "2026-11-23T10:47:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn detail_serializes_kebab_case_as_the_design_shows() {
        let meta = Metadata::first(
            IdempotencyKey::new("c1b95b88").unwrap(),
            "1073459984",
            "2026-11-23T10:47:00Z".parse().unwrap(),
        );
        let json = serde_json::to_value(Detail::new(meta, created())).unwrap();
        let m = &json["metadata"];
        assert_eq!(m["idempotency-key"], "c1b95b88");
        assert_eq!(m["schema-version"], "1");
        assert_eq!(m["occurred-at"], "2026-11-23T10:47:00Z");
        assert!(m.get("causation-id").is_none());
        let d = &json["data"];
        assert_eq!(d["order-id"], "1073459984");
        assert_eq!(d["total"], "237.51");
        assert_eq!(d["status"], "Open");
        assert_eq!(d["items"][0]["unit-price"], "79.17");
    }

    #[test]
    fn caused_metadata_keeps_correlation_and_derives_the_key() {
        let first = Metadata::first(
            IdempotencyKey::new("k").unwrap(),
            "corr",
            "2026-11-23T10:47:00Z".parse().unwrap(),
        );
        let next = first.caused::<OrderPicked>(Utc::now());
        assert_eq!(next.correlation_id, "corr");
        assert_eq!(next.causation_id.as_deref(), Some(first.event_id.as_str()));
        assert_eq!(
            next.idempotency_key,
            first.idempotency_key.derive("OrderPicked")
        );
        assert_ne!(next.event_id, first.event_id);
    }

    #[test]
    fn consumers_ignore_unknown_fields() {
        let mut json = serde_json::to_value(created()).unwrap();
        json["gift-wrap"] = serde_json::json!(true);
        let back: OrderCreated = serde_json::from_value(json).unwrap();
        assert_eq!(back, created());
    }

    #[test]
    fn every_route_names_contract_constants() {
        for (src, dt) in ROUTES {
            assert!(source::ALL.contains(&src));
            assert!(detail_type::ALL.contains(&dt));
        }
        assert_eq!(
            [
                (OrderCreated::SOURCE, OrderCreated::DETAIL_TYPE),
                (OrderPicked::SOURCE, OrderPicked::DETAIL_TYPE),
                (OrderShipped::SOURCE, OrderShipped::DETAIL_TYPE),
                (ReturnRequested::SOURCE, ReturnRequested::DETAIL_TYPE),
                (ReturnReceived::SOURCE, ReturnReceived::DETAIL_TYPE),
            ],
            ROUTES
        );
    }
}
