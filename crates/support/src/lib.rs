//! The support domain (`com.support`): returns for shipped orders.
//!
//! - [`domain`]: returns and their rules (only shipped units come back), no AWS types.
//! - [`store`]: the [`store::SupportStore`] port with DynamoDB and in-memory adapters.
//! - [`projection`]: `support-events`, support's own record of shipped orders from `OrderShipped`.
//! - [`api`]: `support-api` — `POST /returns` (Idempotency-Key; 409 unless support has seen the
//!   order ship, or when a SKU asks more than may still be returned), `POST
//!   /returns/{id}/received`, `GET /returns/{id}`. Each return is stored with its fact in one
//!   write.
//! - [`outbox_relay`]: `support-outbox-relay` — publishes the facts the support table's stream
//!   carries (the transactional outbox).
//!
//! ```
//! use support::domain::Return;
//! let key = contracts::IdempotencyKey::new("client-key").unwrap();
//! assert_eq!(Return::id_for("o-1", &key), Return::id_for("o-1", &key));
//! ```

pub mod api;
pub mod domain;
pub mod projection;
pub mod store;

use std::sync::Arc;

use eventing::{Consumer, EventBridgePublisher, EventPublisher, OutboxRelay};
use idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use platform::config::{BusConfig, ConfigError, Env};

/// The support functions' configuration, from environment variables only.
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
    /// `SUPPORT_TABLE`.
    pub support_table: String,
    /// `STAFF_SCOPE` (default `commerce/warehouse`): the scope of warehouse staff.
    pub staff_scope: String,
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
            support_table: env.required("SUPPORT_TABLE")?,
            staff_scope: platform::auth::staff_scope(env),
        })
    }
}

fn store(config: &Config, ddb: &aws_sdk_dynamodb::Client) -> Arc<store::DynamoDbSupportStore> {
    Arc::new(store::DynamoDbSupportStore::new(
        ddb.clone(),
        &config.support_table,
    ))
}

/// `support-api` over DynamoDB.
pub fn wire_api(config: &Config, sdk: &aws_config::SdkConfig) -> api::SupportApi {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    api::SupportApi::new(
        Idempotency::new(
            DynamoDbStore::new(ddb.clone(), &config.idempotency_table),
            IdempotencyConfig::new("request-return")
                .key_prefix(config.key_prefix("request-return")),
        ),
        store(config, &ddb),
        &config.staff_scope,
    )
}

/// `support-outbox-relay`: publishes, with `publisher`, the `com.support` facts the support
/// table's stream carries. The Lambda binary and the local runner both build it here.
pub fn outbox_relay(publisher: Arc<dyn EventPublisher>) -> OutboxRelay {
    OutboxRelay::new(publisher, contracts::source::SUPPORT)
}

/// `support-outbox-relay` over EventBridge.
pub fn wire_outbox_relay(config: &BusConfig, sdk: &aws_config::SdkConfig) -> OutboxRelay {
    outbox_relay(Arc::new(EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(sdk),
        &config.event_bus,
    )))
}

/// `support-events` over DynamoDB and EventBridge.
pub fn wire_events(config: &Config, sdk: &aws_config::SdkConfig) -> Consumer {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    Consumer::new(
        projection::ShippedOrdersProjection::new(store(config, &ddb)),
        Idempotency::new(
            DynamoDbStore::new(ddb, &config.idempotency_table),
            IdempotencyConfig::new("record-shipped")
                .key_prefix(config.key_prefix("record-shipped"))
                .local_cache(1024),
        ),
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(sdk), &config.event_bus),
    )
}
