//! Shared builders and a scriptable domain handler for the integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not every test binary uses every helper

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lambda_events::sqs::SqsEvent;
use chrono::Utc;
use contracts::{
    AnyEvent, Currency, Detail, DomainEvent, IdempotencyKey, Metadata, OrderCreated, OrderItem,
    OrderPicked, OrderStatus,
};
use eventing::{EventHandler, HandlerError, OutgoingEvent};
use serde_json::{Value, json};

/// `events/<sub>/<name>` of the workspace.
pub fn fixture(path: &str) -> Value {
    let file: PathBuf = testkit::workspace_root().join("events").join(path);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// An `OrderCreated` for `order_id`, keyed `key`.
pub fn created(key: &str, order_id: &str) -> Detail<OrderCreated> {
    Detail::new(
        Metadata::first(IdempotencyKey::new(key).unwrap(), order_id, Utc::now()),
        OrderCreated {
            order_id: order_id.into(),
            status: OrderStatus::Open,
            total: "25.00".parse().unwrap(),
            currency: Currency::new("USD").unwrap(),
            customer_id: "456".into(),
            items: vec![OrderItem {
                sku: "SKU-RED-MUG".into(),
                quantity: 2,
                unit_price: "12.50".parse().unwrap(),
            }],
            created_at: "2026-11-23T10:47:00Z".parse().unwrap(),
        },
    )
}

/// The EventBridge envelope of `detail`, as EventBridge delivers it to SQS.
pub fn envelope<E: DomainEvent>(detail: &Detail<E>) -> Value {
    json!({
        "version": "0",
        "id": uuid_like(),
        "detail-type": E::DETAIL_TYPE,
        "source": E::SOURCE,
        "time": "2026-11-23T10:47:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

fn uuid_like() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// An SQS record with `message_id` and `body`.
pub fn record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("handle-{message_id}"),
        "body": body,
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:dev-FulfillmentEventsQueue",
        "awsRegion": "us-east-1",
    })
}

/// An SQS batch of `(message id, body)` records.
pub fn batch(records: &[(&str, String)]) -> SqsEvent {
    let records: Vec<Value> = records.iter().map(|(id, body)| record(id, body)).collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// A batch of `n` fresh `OrderCreated` records, message ids `m-0`..; keys `<prefix>-0`..
pub fn created_batch(prefix: &str, n: usize) -> SqsEvent {
    let records: Vec<(String, String)> = (0..n)
        .map(|i| {
            let detail = created(&format!("{prefix}-{i}"), &format!("order-{prefix}-{i}"));
            (format!("m-{i}"), envelope(&detail).to_string())
        })
        .collect();
    let borrowed: Vec<(&str, String)> = records
        .iter()
        .map(|(id, body)| (id.as_str(), body.clone()))
        .collect();
    batch(&borrowed)
}

/// What [`FulfillmentLike`] does for an order id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Emit `OrderPicked` (the default).
    Pick,
    /// Business rejection.
    Reject,
    /// A store outage.
    Transient,
    /// A bug.
    Panic,
    /// A dependency that never answers.
    Hang,
}

/// A domain handler shaped like fulfillment's: `OrderCreated` -> one `OrderPicked` caused by it
/// (key derived), `OrderPicked` -> nothing, anything else unhandled. Order ids can be scripted
/// to fail; it counts its calls per idempotency key and its concurrency.
#[derive(Clone, Default)]
pub struct FulfillmentLike {
    scripts: Arc<Mutex<HashMap<String, Script>>>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    barrier: Arc<Mutex<Option<Arc<tokio::sync::Barrier>>>>,
}

impl FulfillmentLike {
    pub fn script(&self, order_id: &str, script: Script) {
        self.scripts
            .lock()
            .unwrap()
            .insert(order_id.to_owned(), script);
    }

    /// Makes every call wait until `n` calls are in flight together.
    pub fn rendezvous(&self, n: usize) {
        *self.barrier.lock().unwrap() = Some(Arc::new(tokio::sync::Barrier::new(n)));
    }

    pub fn calls(&self, key: &str) -> usize {
        self.calls.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

/// The `OrderPicked` that [`FulfillmentLike`] emits for `cause`.
pub fn picked_for(cause: &Detail<OrderCreated>) -> Detail<OrderPicked> {
    Detail::new(
        cause.metadata.caused::<OrderPicked>(Utc::now()),
        OrderPicked {
            order_id: cause.data.order_id.clone(),
            customer_id: cause.data.customer_id.clone(),
            items: cause.data.items.clone(),
            warehouse_id: "WH-EU-1".into(),
            picked_at: Utc::now(),
        },
    )
}

#[async_trait::async_trait]
impl EventHandler for FulfillmentLike {
    async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError> {
        let key = event.metadata().idempotency_key.to_string();
        *self.calls.lock().unwrap().entry(key).or_default() += 1;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let barrier = self.barrier.lock().unwrap().clone();
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
        tokio::task::yield_now().await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);

        let script = self
            .scripts
            .lock()
            .unwrap()
            .get(event.order_id())
            .copied()
            .unwrap_or(Script::Pick);
        match script {
            Script::Reject => return Err(HandlerError::rejected("order cannot be picked")),
            Script::Transient => {
                return Err(HandlerError::transient(std::io::Error::other(
                    "warehouse table unavailable",
                )));
            }
            Script::Panic => panic!("bug in the handler"),
            Script::Hang => std::future::pending::<()>().await,
            Script::Pick => {}
        }
        match event {
            AnyEvent::OrderCreated(detail) => {
                Ok(vec![OutgoingEvent::new(&picked_for(detail)).unwrap()])
            }
            AnyEvent::OrderPicked(_) => Ok(vec![]),
            other => Err(HandlerError::unhandled(other)),
        }
    }
}
