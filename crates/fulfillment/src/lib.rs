//! The fulfillment domain (`com.fulfillment`): picks created orders and ships picked ones.
//!
//! - [`domain`]: picks and shipments, derived deterministically from the order (no AWS types).
//! - [`store`]: the [`store::FulfillmentStore`] port with DynamoDB and in-memory adapters.
//! - [`handler`]: `fulfillment-events`, the [`eventing::EventHandler`] for `OrderCreated` and
//!   `OrderPicked` that emits `OrderPicked` and `OrderShipped` with keys derived from the cause.
//!
//! ```
//! use fulfillment::domain::Shipment;
//! # let picked: contracts::OrderPicked = serde_json::from_value(serde_json::json!({
//! #   "order-id": "o-1", "customer-id": "c", "items": [], "warehouse-id": "WH-US-1",
//! #   "picked-at": "2026-11-23T10:52:10Z" })).unwrap();
//! let shipment = Shipment::of(&picked, chrono::Utc::now());
//! assert_eq!(shipment.shipment_id, "SHP-o-1");
//! ```

pub mod domain;
pub mod handler;
pub mod store;

use std::sync::Arc;

use eventing::{Consumer, EventBridgePublisher};
use idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use platform::config::{ConfigError, Env};

/// `fulfillment-events` configuration, from environment variables only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `IDEMPOTENCY_TABLE`.
    pub idempotency_table: String,
    /// `IDEMPOTENCY_KEY_PREFIX`: the function's own part of the idempotency table (its records
    /// are `<prefix>#<operation>#<hash>`, and IAM lets it reach no other). Configuration, not the
    /// function's physical name, so replacing a function does not orphan its live records.
    pub idempotency_prefix: String,
    /// `FULFILLMENT_TABLE`.
    pub fulfillment_table: String,
}

impl Config {
    /// The idempotency record prefix of `operation`: `<IDEMPOTENCY_KEY_PREFIX>#<operation>`.
    pub fn key_prefix(&self, operation: &str) -> String {
        format!("{}#{operation}", self.idempotency_prefix)
    }

    /// Reads the configuration; names the missing variable on failure.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            event_bus: env.required("EVENT_BUS_NAME")?,
            idempotency_table: env.required("IDEMPOTENCY_TABLE")?,
            idempotency_prefix: env.required("IDEMPOTENCY_KEY_PREFIX")?,
            fulfillment_table: env.required("FULFILLMENT_TABLE")?,
        })
    }
}

/// `fulfillment-events` over DynamoDB and EventBridge.
pub fn wire_events(config: &Config, sdk: &aws_config::SdkConfig) -> Consumer {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    Consumer::new(
        handler::FulfillmentHandler::new(Arc::new(store::DynamoDbFulfillmentStore::new(
            ddb.clone(),
            &config.fulfillment_table,
        ))),
        Idempotency::new(
            DynamoDbStore::new(ddb, &config.idempotency_table),
            IdempotencyConfig::new("fulfil")
                .key_prefix(config.key_prefix("fulfil"))
                .local_cache(1024),
        ),
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(sdk), &config.event_bus),
    )
}
