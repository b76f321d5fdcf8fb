//! Against the moto stand-in provisioned from `template.yaml`: published events arrive in the
//! queues the template's rules target and nowhere else, requests are batched, and the consumer,
//! fed moto's own SQS deliveries, handles them once with the DynamoDB idempotency table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eventbridge::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_eventbridge::config::{ConfigBag, Intercept};
use aws_sdk_eventbridge::operation::put_events::PutEventsInput;
use common::{FulfillmentLike, batch, created, envelope};
use contracts::{DomainEvent, OrderCreated, OrderPicked};
use eventing::{Consumer, EventBridgePublisher, EventPublisher, OutgoingEvent};
use idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use serde_json::Value;
use testkit::{LocalStack, moto, template};

const QUEUES: [&str; 3] = [
    "OrdersEventsQueue",
    "FulfillmentEventsQueue",
    "SupportEventsQueue",
];

/// Records the entry count of every PutEvents call the client makes.
#[derive(Debug, Clone, Default)]
struct PutEventsCalls(Arc<Mutex<Vec<usize>>>);

impl Intercept for PutEventsCalls {
    fn name(&self) -> &'static str {
        "PutEventsCalls"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(input) = context.input().downcast_ref::<PutEventsInput>() {
            self.0.lock().unwrap().push(input.entries().len());
        }
        Ok(())
    }
}

async fn setup() -> (aws_config::SdkConfig, LocalStack) {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();
    (config, stack)
}

fn bodies_to_envelopes(bodies: &[String]) -> Vec<Value> {
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn published_events_arrive_only_in_the_queues_the_rules_target() {
    let (config, stack) = setup().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let publisher = EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&config),
        stack.bus("EventBus"),
    );
    let order = created("standin-route-1", "order-route-1");
    let picked = common::picked_for(&order);
    // A fulfillment-sourced OrderCreated matches no rule (OrderCreated is routed from orders).
    let spoofed = OutgoingEvent {
        source: OrderPicked::SOURCE.into(),
        ..OutgoingEvent::new(&created("standin-spoof", "order-spoof")).unwrap()
    };

    publisher
        .publish(&[
            OutgoingEvent::new(&order).unwrap(),
            OutgoingEvent::new(&picked).unwrap(),
            spoofed,
        ])
        .await
        .unwrap();

    let mut got = std::collections::BTreeMap::new();
    for queue in QUEUES {
        let envelopes = bodies_to_envelopes(&stack.drain(&sqs, queue).await.unwrap());
        let keys: Vec<(String, String)> = envelopes
            .iter()
            .map(|e| {
                (
                    e["detail-type"].as_str().unwrap().to_owned(),
                    e["detail"]["metadata"]["idempotency-key"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        got.insert(queue, keys);
    }
    let picked_key = picked.metadata.idempotency_key.to_string();
    assert_eq!(
        got["FulfillmentEventsQueue"].len(),
        2,
        "{got:?}: OrderCreated and OrderPicked"
    );
    assert!(
        got["FulfillmentEventsQueue"].contains(&("OrderCreated".into(), "standin-route-1".into()))
    );
    assert!(got["FulfillmentEventsQueue"].contains(&("OrderPicked".into(), picked_key.clone())));
    assert_eq!(
        got["OrdersEventsQueue"],
        [("OrderPicked".into(), picked_key)]
    );
    assert!(got["SupportEventsQueue"].is_empty(), "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_five_events_are_sent_in_three_requests_and_all_arrive() {
    let (config, stack) = setup().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let calls = PutEventsCalls::default();
    let client = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build(),
    );
    let publisher = EventBridgePublisher::new(client, stack.bus("EventBus"));
    let events: Vec<OutgoingEvent> = (0..25)
        .map(|i| {
            OutgoingEvent::new(&created(&format!("standin-25-{i}"), &format!("o-{i}"))).unwrap()
        })
        .collect();

    publisher.publish(&events).await.unwrap();

    let mut sizes = calls.0.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 10, 10]);
    let mut keys: Vec<String> =
        bodies_to_envelopes(&stack.drain(&sqs, "FulfillmentEventsQueue").await.unwrap())
            .iter()
            .map(|e| {
                e["detail"]["metadata"]["idempotency-key"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
    keys.sort();
    let mut expected: Vec<String> = events.iter().map(|e| e.idempotency_key.clone()).collect();
    expected.sort();
    assert_eq!(keys, expected, "each event arrives exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consumer_handles_motos_deliveries_once_with_the_dynamodb_table() {
    let (config, stack) = setup().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = stack.bus("EventBus");
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), bus);

    // Orders publishes three OrderCreated; they reach fulfillment's queue through the rule.
    let orders: Vec<_> = (0..3)
        .map(|i| created(&format!("standin-flow-{i}"), &format!("order-flow-{i}")))
        .collect();
    let outgoing: Vec<_> = orders
        .iter()
        .map(|o| OutgoingEvent::new(o).unwrap())
        .collect();
    publisher.publish(&outgoing).await.unwrap();
    let delivered = stack.drain(&sqs, "FulfillmentEventsQueue").await.unwrap();
    assert_eq!(delivered.len(), 3);
    assert!(
        bodies_to_envelopes(&delivered)
            .iter()
            .all(|e| e["detail-type"] == OrderCreated::DETAIL_TYPE)
    );

    // Fulfillment's consumer: DynamoDB idempotency, EventBridge publishing.
    let handler = FulfillmentLike::default();
    let idempotency = Idempotency::new(
        DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            stack.table("IdempotencyTable"),
        ),
        IdempotencyConfig::new("fulfillment-events"),
    );
    let consumer = Consumer::new(handler.clone(), idempotency.clone(), publisher);
    let records: Vec<(String, String)> = delivered
        .iter()
        .enumerate()
        .map(|(i, body)| (format!("msg-{i}"), body.clone()))
        .collect();
    let borrowed: Vec<(&str, String)> = records
        .iter()
        .map(|(id, body)| (id.as_str(), body.clone()))
        .collect();

    let report = consumer
        .process_sqs(batch(&borrowed), Some(Duration::from_secs(30)))
        .await;
    assert!(report.failed_message_ids().is_empty(), "{report:?}");
    assert_eq!(report.stats.fresh, 3);
    assert_eq!(report.stats.publish_calls, 1);
    assert_eq!(
        idempotency.metrics().store_calls,
        6,
        "claim + complete each"
    );

    // The caused OrderPicked events reach orders' queue (and fulfillment's own), keys derived.
    let mut picked: Vec<String> =
        bodies_to_envelopes(&stack.drain(&sqs, "OrdersEventsQueue").await.unwrap())
            .iter()
            .map(|e| {
                assert_eq!(e["source"], OrderPicked::SOURCE);
                e["detail"]["metadata"]["idempotency-key"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
    picked.sort();
    let mut expected: Vec<String> = orders
        .iter()
        .map(|o| {
            o.metadata
                .idempotency_key
                .derive(OrderPicked::DETAIL_TYPE)
                .to_string()
        })
        .collect();
    expected.sort();
    assert_eq!(picked, expected);
    assert_eq!(
        stack
            .drain(&sqs, "FulfillmentEventsQueue")
            .await
            .unwrap()
            .len(),
        3
    );

    // SQS redelivers the batch: replayed, one failed conditional write each, nothing published.
    let again = consumer
        .process_sqs(batch(&borrowed), Some(Duration::from_secs(30)))
        .await;
    assert!(again.failed_message_ids().is_empty());
    assert_eq!(again.stats.replayed, 3);
    assert_eq!(again.stats.publish_calls, 0);
    assert_eq!(idempotency.metrics().store_calls, 9);
    assert_eq!(handler.total_calls(), 3);
    assert!(
        stack
            .drain(&sqs, "OrdersEventsQueue")
            .await
            .unwrap()
            .is_empty()
    );

    // The same event as a bare EventBridge event (a direct invoke) is a replay too.
    let direct = consumer
        .handle_eventbridge(envelope(&orders[0]), None)
        .await
        .unwrap();
    assert_eq!(direct.label(), "replayed");
}
