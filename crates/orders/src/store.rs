//! Where orders are kept: the [`OrderStore`] port with a DynamoDB and an in-memory adapter.
//!
//! An order is stored with the fact of its creation in one write (the transactional outbox:
//! the item's `outbox` attribute, published from the table's stream by `orders-outbox-relay`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use contracts::OrderStatus;
use eventing::{ChangeFeed, OUTBOX_ATTRIBUTE, OutgoingEvent};

use crate::domain::Order;

/// A store failure (the caller retries: the request answers 503, the record is redelivered).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The DynamoDB call failed.
    #[error("orders table {operation} failed")]
    DynamoDb {
        /// Which call.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The fact to store could not be written as an outbox entry.
    #[error("the fact of order {order_id} cannot be stored: {source}")]
    Outbox {
        /// The order.
        order_id: String,
        /// Why.
        #[source]
        source: eventing::EventingError,
    },
    /// A stored item could not be read back.
    #[error("stored order {order_id} is corrupt: {problem}")]
    Corrupt {
        /// The order.
        order_id: String,
        /// What is wrong.
        problem: String,
    },
}

/// What advancing an order's status did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The status moved forward.
    Moved,
    /// The order already had this or a later status (a late or repeated event).
    Unchanged(OrderStatus),
    /// No such order.
    NotFound,
}

/// Keeps orders.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Stores a new order with `created`, the fact of its creation, in one write (the outbox the
    /// relay publishes from). If one with its id exists (a create re-run after a crash or a lost
    /// answer), writes nothing and returns the stored one, as it is now.
    async fn insert(&self, order: &Order, created: &OutgoingEvent) -> Result<Order, StoreError>;
    /// The order with this id.
    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError>;
    /// Moves the status forward to `status` (never back) as of `at`.
    async fn advance(
        &self,
        order_id: &str,
        status: OrderStatus,
        at: DateTime<Utc>,
    ) -> Result<Advance, StoreError>;
}

/// An order as the in-memory adapter keeps it: with its outbox entry.
type Stored = (Order, String);

/// In-memory adapter: unit tests and the local runner. Every write is recorded in its
/// [`ChangeFeed`], as the table's stream records it.
#[derive(Debug, Clone, Default)]
pub struct InMemoryOrderStore {
    orders: Arc<Mutex<HashMap<String, Stored, foldhash::fast::RandomState>>>,
    changes: ChangeFeed,
}

impl InMemoryOrderStore {
    /// Every stored order.
    pub fn all(&self) -> Vec<Order> {
        let mut all: Vec<_> = self
            .lock()
            .values()
            .map(|(order, _)| order.clone())
            .collect();
        all.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        all
    }

    /// The table's stream (what the outbox relay reads).
    pub fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Stored, foldhash::fast::RandomState>> {
        // A poisoned lock only means another test thread panicked; the map itself is consistent
        // because every mutation below is a single insert or field assignment.
        self.orders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl OrderStore for InMemoryOrderStore {
    async fn insert(&self, order: &Order, created: &OutgoingEvent) -> Result<Order, StoreError> {
        let entry = outbox_entry(order, created)?;
        let mut orders = self.lock();
        if let Some((existing, _)) = orders.get(&order.order_id) {
            return Ok(existing.clone());
        }
        // Recorded under the lock, so the stream keeps the order of the writes.
        self.changes
            .record(&format!("ORDER#{}", order.order_id), None, Some(&entry));
        orders.insert(order.order_id.clone(), (order.clone(), entry));
        Ok(order.clone())
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        Ok(self.lock().get(order_id).map(|(order, _)| order.clone()))
    }

    async fn advance(
        &self,
        order_id: &str,
        status: OrderStatus,
        at: DateTime<Utc>,
    ) -> Result<Advance, StoreError> {
        let mut orders = self.lock();
        let Some((order, entry)) = orders.get_mut(order_id) else {
            return Ok(Advance::NotFound);
        };
        if status > order.status {
            order.status = status;
            order.updated_at = at;
            // A status change keeps the item's outbox entry: no new fact for the relay.
            self.changes
                .record(&format!("ORDER#{order_id}"), Some(Some(entry)), Some(entry));
            Ok(Advance::Moved)
        } else {
            Ok(Advance::Unchanged(order.status))
        }
    }
}

/// The outbox entry of an order's creation.
fn outbox_entry(order: &Order, created: &OutgoingEvent) -> Result<String, StoreError> {
    created.to_outbox().map_err(|source| StoreError::Outbox {
        order_id: order.order_id.clone(),
        source,
    })
}

/// DynamoDB adapter. Item: `pk = ORDER#<id>`, `doc` (the order as created, JSON), the mutable
/// `status`, `status_rank` and `updated_at` that the projection moves forward, and `outbox`
/// (the `OrderCreated` fact, written once with the order).
#[derive(Debug, Clone)]
pub struct DynamoDbOrderStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbOrderStore {
    /// An adapter for `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn pk(order_id: &str) -> AttributeValue {
    AttributeValue::S(format!("ORDER#{order_id}"))
}

fn rank(status: OrderStatus) -> AttributeValue {
    // Declaration order is lifecycle order: Open < Picked < Shipped < Returned.
    AttributeValue::N((status as u8).to_string())
}

fn status_name(status: OrderStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn sdk_error(
    operation: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    move |source| StoreError::DynamoDb { operation, source }
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<Order, StoreError> {
    let id = || {
        item.get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let corrupt = |problem: String| StoreError::Corrupt {
        order_id: id(),
        problem,
    };
    let doc = item
        .get("doc")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| corrupt("no doc".into()))?;
    let mut order: Order = serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))?;
    if let Some(status) = item.get("status").and_then(|v| v.as_s().ok()) {
        order.status = serde_json::from_value(serde_json::Value::String(status.clone()))
            .map_err(|e| corrupt(e.to_string()))?;
    }
    if let Some(at) = item.get("updated_at").and_then(|v| v.as_s().ok()) {
        order.updated_at = at
            .parse()
            .map_err(|e: chrono::ParseError| corrupt(e.to_string()))?;
    }
    Ok(order)
}

#[async_trait]
impl OrderStore for DynamoDbOrderStore {
    async fn insert(&self, order: &Order, created: &OutgoingEvent) -> Result<Order, StoreError> {
        let doc = serde_json::to_string(order).map_err(|e| StoreError::Corrupt {
            order_id: order.order_id.clone(),
            problem: e.to_string(),
        })?;
        let entry = outbox_entry(order, created)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(&order.order_id))
            .item("doc", AttributeValue::S(doc))
            .item(OUTBOX_ATTRIBUTE, AttributeValue::S(entry))
            .item("status", AttributeValue::S(status_name(order.status)))
            .item("status_rank", rank(order.status))
            .item(
                "updated_at",
                AttributeValue::S(order.updated_at.to_rfc3339()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(order.clone()),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                    match e.item() {
                        Some(existing) => decode(existing),
                        None => Err(StoreError::Corrupt {
                            order_id: order.order_id.clone(),
                            problem: "condition failed without the existing item".into(),
                        }),
                    }
                }
                other => Err(sdk_error("PutItem")(Box::new(other))),
            },
        }
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(order_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem")(Box::new(e)))?;
        out.item.as_ref().map(decode).transpose()
    }

    async fn advance(
        &self,
        order_id: &str,
        status: OrderStatus,
        at: DateTime<Utc>,
    ) -> Result<Advance, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(order_id))
            .update_expression("SET #status = :status, status_rank = :rank, updated_at = :at")
            .condition_expression("attribute_exists(pk) AND status_rank < :rank")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::S(status_name(status)))
            .expression_attribute_values(":rank", rank(status))
            .expression_attribute_values(":at", AttributeValue::S(at.to_rfc3339()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Advance::Moved),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                    // One round trip either way: ALL_OLD tells a late event from an unknown order.
                    match e.item() {
                        Some(existing) => Ok(Advance::Unchanged(decode(existing)?.status)),
                        None => Ok(Advance::NotFound),
                    }
                }
                other => Err(sdk_error("UpdateItem")(Box::new(other))),
            },
        }
    }
}
