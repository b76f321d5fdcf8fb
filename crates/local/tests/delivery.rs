//! Delivery through the real consumers: a partial batch failure redelivers only the failed
//! record, up to the queue's `maxReceiveCount`, then lists it as dead-lettered; the functions'
//! IAM `events:source` grant is enforced on what they publish.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use local::bus::Entry;
use local::flow::{Flow, Next, Recorder};
use local::{Runner, RunnerOptions};
use platform::http::ApiRequest;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `request` with customer C-7's bearer token, minted by the runner's authorizer.
fn as_customer(runner: &Runner, mut request: ApiRequest) -> ApiRequest {
    let token = runner.customer_token("C-7").unwrap();
    request
        .headers
        .insert("authorization".to_owned(), format!("Bearer {token}"));
    request
}

fn post_order(key: &str) -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        path: "/orders".into(),
        headers: BTreeMap::from([("idempotency-key".to_owned(), key.to_owned())]),
        body: br#"{"customer-id":"C-7","currency":"EUR","items":[{"sku":"MUG","quantity":2,"unit-price":"4.50"}]}"#.to_vec(),
        request_id: None,
        identity: None,
    }
}

/// The `ReturnReceived` fixture, for `order_id`, keyed `key`.
fn return_received(order_id: &str, key: &str) -> Entry {
    let path = root().join("events/eventbridge/return-received.json");
    let envelope: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut detail = envelope["detail"].clone();
    detail["data"]["order-id"] = order_id.into();
    detail["metadata"]["idempotency-key"] = key.into();
    Entry::from_parts("com.support", "ReturnReceived", &detail)
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_partially_failed_batch_only_the_failed_record_is_redelivered_then_dead_lettered() {
    let recorder = Arc::new(Recorder::new());
    let runner = Runner::load(
        root().join("template.yaml"),
        RunnerOptions::in_memory().observer(recorder.clone()),
    )
    .unwrap();
    let created = runner
        .request(&as_customer(&runner, post_order("partial-1")))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let order_id = serde_json::from_str::<Value>(&created.body).unwrap()["order-id"]
        .as_str()
        .unwrap()
        .to_owned();
    runner.settle().await.unwrap();

    // One batch for orders-events: a return for the known order, one for an order it never saw.
    runner.inject(&[
        return_received(&order_id, "ret-known"),
        return_received("no-such-order", "ret-unknown"),
    ]);
    runner.settle().await.unwrap();

    let of = |key: &str| -> Vec<_> {
        recorder
            .deliveries()
            .into_iter()
            .filter(|d| d.key.as_deref() == Some(key))
            .collect()
    };
    let known = of("ret-known");
    assert_eq!(
        known.len(),
        1,
        "acknowledged once, never redelivered: {known:?}"
    );
    assert_eq!(
        (known[0].outcome.as_str(), &known[0].next),
        ("fresh", &Next::Done)
    );

    let unknown = of("ret-unknown");
    let receives: Vec<u32> = unknown.iter().map(|d| d.receive_count).collect();
    assert_eq!(
        receives,
        [1, 2, 3, 4, 5],
        "redelivered up to OrdersEventsQueue's maxReceiveCount"
    );
    assert!(
        unknown.iter().all(|d| d.outcome == "failed:Rejected"),
        "{unknown:?}"
    );
    assert_eq!(
        unknown[4].next,
        Next::DeadLettered {
            dlq: Some("OrdersEventsDLQ".into())
        }
    );

    let summary = runner.summary();
    assert_eq!(summary.dead_letters.len(), 1);
    let dead = &summary.dead_letters[0];
    assert_eq!(
        (
            dead.queue.as_str(),
            dead.dlq.as_deref(),
            dead.key.as_deref()
        ),
        (
            "OrdersEventsQueue",
            Some("OrdersEventsDLQ"),
            Some("ret-unknown")
        )
    );
    assert!(
        dead.last_error.contains("no-such-order is unknown"),
        "{}",
        dead.last_error
    );
    let body: Value = serde_json::from_str(&dead.body).unwrap();
    assert_eq!(
        body["detail"]["data"]["order-id"], "no-such-order",
        "the listing keeps the message for redrive"
    );

    let mut get = post_order("unused");
    get.method = "GET".into();
    get.path = format!("/orders/{order_id}");
    let order: Value =
        serde_json::from_str(&runner.request(&as_customer(&runner, get)).await.body).unwrap();
    assert_eq!(order["status"], "Returned");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_publishing_a_source_its_policy_does_not_grant_is_denied() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    // The grant in fulfillment-events' role (the bus policy's flow mapping ends in ` }`).
    let grant = "events:source: [com.fulfillment]\n";
    assert_eq!(text.matches(grant).count(), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(
        &path,
        text.replacen(grant, "events:source: [com.orders]\n", 1),
    )
    .unwrap();

    let recorder = Arc::new(Recorder::new());
    let runner =
        Runner::load(&path, RunnerOptions::in_memory().observer(recorder.clone())).unwrap();
    assert_eq!(
        runner
            .request(&as_customer(&runner, post_order("denied-1")))
            .await
            .status,
        201
    );
    runner.settle().await.unwrap();

    // fulfillment-events handles OrderCreated, but PutEvents of its OrderPicked is refused: the
    // record fails (its claim released) on every receive and ends dead-lettered.
    let summary = runner.summary();
    assert_eq!(summary.events_denied, 5);
    assert_eq!(summary.dead_letters.len(), 1);
    assert_eq!(summary.dead_letters[0].detail_type, "OrderCreated");
    assert!(
        summary.dead_letters[0]
            .last_error
            .contains("AccessDeniedException"),
        "{}",
        summary.dead_letters[0].last_error
    );
    let denied = recorder.lines().into_iter().filter(|f| matches!(f, Flow::Denied(d) if d.publisher == "fulfillment-events" && d.source == "com.fulfillment")).count();
    assert_eq!(denied, 5);
    assert_eq!(runner.store_counts().unwrap().shipments, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_function_missing_a_variable_fails_like_it_would_on_lambda() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    assert_eq!(
        text.matches("FULFILLMENT_TABLE: !Ref FulfillmentTable")
            .count(),
        1
    );
    std::fs::write(
        &path,
        text.replacen(
            "FULFILLMENT_TABLE: !Ref FulfillmentTable",
            "FULFILMENT_TABLE: !Ref FulfillmentTable",
            1,
        ),
    )
    .unwrap();
    let err = Runner::load(&path, RunnerOptions::in_memory()).unwrap_err();
    assert_eq!(err.error_type(), "FunctionConfig");
    let text = err.to_string();
    assert!(
        text.contains("FulfillmentEventsFunction.Properties.Environment.Variables")
            && text.contains("FULFILLMENT_TABLE"),
        "{text}"
    );
}
