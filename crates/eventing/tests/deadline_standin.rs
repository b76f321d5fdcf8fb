//! Issue #5 against the stand-in: a PutEvents that hangs past the deadline. A consumer with the
//! template's DynamoDB idempotency table and the EventBridge publisher, whose PutEvents reach
//! the moto stand-in through the fault proxy, gets a batch of eleven `OrderCreated`: ten fit one
//! PutEvents request, the eleventh's event goes in a second request, which hangs until released.
//! The batch is still answered, with its partial response: the record whose event hung fails
//! with `DeadlineExceeded` and keeps its claim (it expires at the invocation's deadline), the
//! ten others are published and completed.
//!
//! Real time passes here (the proxy and moto are real sockets): the test waits out most of a
//! six-second budget, and asserts what the answer says and that it came back at all, never how
//! fast.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{FulfillmentLike, batch, created, envelope};
use contracts::{DomainEvent, OrderPicked};
use eventing::{Consumer, EventBridgePublisher, RecordOutcome};
use faults::{Fault, FaultPlan, FaultProxy, Rule};
use idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use serde_json::Value;
use testkit::{LocalStack, moto, template};

/// The invocation's remaining time when the batch arrives.
const REMAINING: Duration = Duration::from_secs(6);

/// The order whose `OrderPicked` goes in the request that hangs.
const HUNG_ORDER: &str = "order-stuck-on-the-bus";

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_events_that_hangs_past_the_deadline_fails_only_its_records() {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = stack.table("IdempotencyTable").to_owned();
    let proxy = FaultProxy::start(
        moto().endpoint(),
        FaultPlan::seeded(5).rule(
            Rule::new("stuck", Fault::Hang)
                .operations(&["PutEvents"])
                .body_contains(HUNG_ORDER),
        ),
    )
    .await
    .unwrap();
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&config)
            .endpoint_url(proxy.endpoint())
            .build(),
    );
    let handler = FulfillmentLike::default();
    let idempotency = Idempotency::new(
        DynamoDbStore::new(dynamodb.clone(), &table),
        IdempotencyConfig::new("fulfillment-events"),
    );
    let consumer = Consumer::new(
        handler.clone(),
        idempotency.clone(),
        EventBridgePublisher::new(eventbridge, stack.bus("EventBus")),
    );

    // Ten orders, then the one whose event is published in the second request.
    let orders: Vec<_> = (0..10)
        .map(|i| created(&format!("budget-{i}"), &format!("order-budget-{i}")))
        .chain([created("budget-stuck", HUNG_ORDER)])
        .collect();
    let bodies: Vec<(String, String)> = orders
        .iter()
        .enumerate()
        .map(|(i, order)| (format!("m-{i}"), envelope(order).to_string()))
        .collect();
    let borrowed: Vec<(&str, String)> = bodies
        .iter()
        .map(|(id, body)| (id.as_str(), body.clone()))
        .collect();

    let deadline_ms = now_ms() + u64::try_from(REMAINING.as_millis()).unwrap();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        consumer.process_sqs(batch(&borrowed), Some(REMAINING)),
    )
    .await
    .expect("the batch is answered although its PutEvents hangs");
    println!("proxy: {}", proxy.stats().text());
    proxy.release_hung();

    assert_eq!(report.failed_message_ids(), ["m-10"], "{report:#?}");
    assert_eq!(
        report.records[10].outcome,
        RecordOutcome::Failed("DeadlineExceeded")
    );
    assert!(
        report.records[..10]
            .iter()
            .all(|r| r.outcome == RecordOutcome::Fresh)
    );
    assert_eq!(report.stats.fresh, 10);
    assert!(proxy.stats().injected["stuck"] >= 1, "the request did hang");

    // The ten caused events reached the bus (and orders' queue through its rule); the hung
    // one did not.
    let mut picked: Vec<String> = stack
        .drain(&sqs, "OrdersEventsQueue")
        .await
        .unwrap()
        .iter()
        .map(|body| {
            let envelope: Value = serde_json::from_str(body).unwrap();
            assert_eq!(envelope["detail-type"], OrderPicked::DETAIL_TYPE);
            envelope["detail"]["data"]["order-id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    picked.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("order-budget-{i}")).collect();
    expected.sort();
    assert_eq!(picked, expected);

    // The ten claims completed; the hung record's claim was neither completed nor released:
    // it is held until the invocation's deadline.
    let items = dynamodb
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let status_of = |key: &str| {
        let request = idempotency::Request::new(key).unwrap();
        let id = idempotency.record_id(&request).unwrap();
        items
            .iter()
            .find(|item| item["id"] == AttributeValue::S(id.clone()))
            .unwrap_or_else(|| panic!("{key}: no record"))
            .clone()
    };
    for i in 0..10 {
        assert_eq!(
            status_of(&format!("budget-{i}"))["status"],
            AttributeValue::S("COMPLETED".into())
        );
    }
    let hung = status_of("budget-stuck");
    assert_eq!(hung["status"], AttributeValue::S("INPROGRESS".into()));
    let expires: u64 = hung["in_progress_expiration"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    // Claimed after the batch arrived, for the remaining time: held at least until the
    // deadline (a generous upper bound: this is not a timing test).
    assert!(
        (deadline_ms..deadline_ms + 60_000).contains(&expires),
        "the claim expires at the invocation's deadline ({expires} for {deadline_ms})"
    );
}
