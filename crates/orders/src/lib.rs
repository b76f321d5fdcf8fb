//! The orders domain (`com.orders`): takes orders over HTTP and keeps their status current.
//!
//! - [`domain`]: the business rules (validation, exact totals, forward-only status), no AWS types.
//! - [`store`]: the [`store::OrderStore`] port with DynamoDB and in-memory adapters.
//! - [`api`]: `orders-api` — `POST /orders` with a required `Idempotency-Key` (201 fresh, 201 +
//!   `idempotent-replayed: true` replayed, 409 in progress, 422 key reused with another body) and
//!   `GET /orders/{id}`. It stores each order with its `OrderCreated` fact in one write.
//! - [`outbox_relay`]: `orders-outbox-relay` — publishes the facts the orders table's stream
//!   carries (the transactional outbox).
//! - [`projection`]: `orders-events` — applies `OrderPicked`, `OrderShipped` and `ReturnReceived`.
//! - [`Config`] and the `wire_*` functions: what the Lambda binaries (and the local runner with
//!   DynamoDB) build at init.
//!
//! ```
//! use orders::domain::{CreateOrder, Order};
//!
//! let body: CreateOrder = serde_json::from_str(
//!     r#"{"customer-id":"456","currency":"USD","items":[{"sku":"MUG","quantity":2,"unit-price":"12.50"}]}"#,
//! ).unwrap();
//! let order = Order::create(body, "client-key-1", chrono::Utc::now()).unwrap();
//! assert_eq!(order.total.to_string(), "25.00");
//! ```

pub mod api;
pub mod domain;
pub mod projection;
pub mod store;

use std::sync::Arc;

use eventing::{Consumer, EventBridgePublisher, EventPublisher, OutboxRelay};
use idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use platform::config::{BusConfig, ConfigError, Env};

/// The orders functions' configuration, from environment variables only.
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
    /// `ORDERS_TABLE`.
    pub orders_table: String,
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
            orders_table: env.required("ORDERS_TABLE")?,
        })
    }
}

/// `orders-api` over DynamoDB.
pub fn wire_api(config: &Config, sdk: &aws_config::SdkConfig) -> api::OrdersApi {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    api::OrdersApi::new(
        Idempotency::new(
            DynamoDbStore::new(ddb.clone(), &config.idempotency_table),
            IdempotencyConfig::new("create-order").key_prefix(config.key_prefix("create-order")),
        ),
        Arc::new(store::DynamoDbOrderStore::new(ddb, &config.orders_table)),
    )
}

/// `orders-outbox-relay`: publishes, with `publisher`, the `com.orders` facts the orders table's
/// stream carries. The Lambda binary and the local runner both build it here.
pub fn outbox_relay(publisher: Arc<dyn EventPublisher>) -> OutboxRelay {
    OutboxRelay::new(publisher, contracts::source::ORDERS)
}

/// `orders-outbox-relay` over EventBridge.
pub fn wire_outbox_relay(config: &BusConfig, sdk: &aws_config::SdkConfig) -> OutboxRelay {
    outbox_relay(Arc::new(EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(sdk),
        &config.event_bus,
    )))
}

/// `orders-events` over DynamoDB and EventBridge.
pub fn wire_events(config: &Config, sdk: &aws_config::SdkConfig) -> Consumer {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    Consumer::new(
        projection::OrderStatusProjection::new(Arc::new(store::DynamoDbOrderStore::new(
            ddb.clone(),
            &config.orders_table,
        ))),
        Idempotency::new(
            DynamoDbStore::new(ddb, &config.idempotency_table),
            IdempotencyConfig::new("apply-status")
                .key_prefix(config.key_prefix("apply-status"))
                .local_cache(1024),
        ),
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(sdk), &config.event_bus),
    )
}
