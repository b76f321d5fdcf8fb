//! Issue #8, a bug found while breaking things (fixed in f4f2bb1; these are its regression
//! tests): `POST /returns/{id}/received` published `ReturnReceived` before it stored the
//! transition and took `received-at` from the clock on every attempt, so a retry after a failed
//! store (or a concurrent second request) published the fact again under the same idempotency
//! key with another `received-at`. The orders projection refused that copy as a key reused with
//! other data, on every delivery, until it was dead-lettered.
//!
//! Since the outbox, a receipt is one conditional write of the return and its fact, published by
//! the relay. Every copy of one fact must still carry the same data, and every copy must be
//! consumed without a failure, whatever the receipt's retries and races.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod support;

use std::collections::BTreeMap;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use faults::{Fault, FaultPlan, FaultProxy, Rule, Service};
use serde_json::Value;
use support::{
    BusRecord, ClientFigures, REMAINING, audit_queue, drain_url, fixture, json, product_sdk, send,
    settle_all, wire,
};
use testkit::{LocalStack, moto, template};

struct Shipped {
    stack: LocalStack,
    proxy: FaultProxy,
    functions: support::Functions,
    sqs: aws_sdk_sqs::Client,
    audit: String,
    return_id: String,
}

/// A shipped order with a requested return, through the real wiring on the stand-in.
async fn shipped_with_a_return() -> Shipped {
    let direct = moto().sdk_config().await;
    let stack = LocalStack::provision(&direct, &template()).await.unwrap();
    let audit = audit_queue(&direct, &stack).await;
    let proxy = FaultProxy::start(moto().endpoint(), FaultPlan::none())
        .await
        .unwrap();
    let functions = wire(&stack, &direct, &product_sdk(proxy.endpoint()).await);
    let sqs = aws_sdk_sqs::Client::new(&direct);
    let mut client = ClientFigures::default();

    let post = fixture("http/post-order.json");
    let api = &functions.orders_api;
    let created = send(&mut client, || api.handle(&post, Some(REMAINING))).await;
    let order_id = json(&created)["order-id"].as_str().unwrap().to_owned();
    settle_all(&stack, &sqs, &functions, &mut BTreeMap::new()).await;

    let mut post = fixture("http/post-return.json");
    let mut body: Value = serde_json::from_slice(&post.body).unwrap();
    body["order-id"] = order_id.into();
    post.body = serde_json::to_vec(&body).unwrap();
    let api = &functions.support_api;
    let requested = send(&mut client, || api.handle(&post, Some(REMAINING))).await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    let return_id = json(&requested)["return-id"].as_str().unwrap().to_owned();
    Shipped {
        stack,
        proxy,
        functions,
        sqs,
        audit,
        return_id,
    }
}

/// Returns how many copies of the fact the bus carried.
async fn check_one_fact_consumed_cleanly(s: &Shipped) -> usize {
    // The relay publishes the stored fact; the orders projection takes every copy, one
    // invocation each, as SQS would hand them out.
    s.functions.relay().await;
    let consumer = &s.functions.consumers[1].1;
    let mut outcomes = Vec::new();
    for body in s.stack.drain(&s.sqs, "OrdersEventsQueue").await.unwrap() {
        let mut message = SqsMessage::default();
        message.message_id = Some(uuid::Uuid::new_v4().to_string());
        message.body = Some(body);
        let mut batch = SqsEvent::default();
        batch.records.push(message);
        let report = consumer.process_sqs(batch, Some(REMAINING)).await;
        let record = &report.records[0];
        outcomes.push((record.label(), record.error.clone()));
    }
    let mut bus = BusRecord::default();
    bus.add(&drain_url(&s.sqs, &s.audit).await);
    let received: Vec<_> = bus
        .data
        .iter()
        .filter(|((kind, _), _)| kind == "ReturnReceived")
        .collect();
    println!("ReturnReceived on the bus: {received:?}");
    println!("orders-events outcomes: {outcomes:?}");
    assert_eq!(received.len(), 1, "one fact");
    assert!(
        outcomes
            .iter()
            .all(|(label, _)| label == "fresh" || label == "replayed"),
        "a copy that fails on every delivery ends in the DLQ: {outcomes:?}"
    );
    assert_eq!(
        received[0].1.len(),
        1,
        "copies of one fact under one key must carry the same data"
    );
    bus.copies_of("ReturnReceived")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_retried_after_its_store_failed_republishes_the_same_fact() {
    let s = shipped_with_a_return().await;
    // Every SDK attempt of the receipt's write fails, once: the client retries.
    s.proxy.set_plan(
        FaultPlan::seeded(1).rule(
            Rule::new("receipt", Fault::server_error(503))
                .service(Service::DynamoDb)
                .operations(&["UpdateItem"])
                .body_contains("#state IN")
                .limit(u64::from(platform::init::SDK_MAX_ATTEMPTS)),
        ),
    );
    let mut received = fixture("http/post-return-received.json");
    received.path = format!("/returns/{}/received", s.return_id);
    let api = &s.functions.support_api;
    let mut client = ClientFigures::default();
    let answer = send(&mut client, || api.handle(&received, Some(REMAINING))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        client.retries_after_5xx, 1,
        "the first attempt failed: {client:?}"
    );
    check_one_fact_consumed_cleanly(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_receipts_publish_the_same_fact() {
    let s = shipped_with_a_return().await;
    let mut received = fixture("http/post-return-received.json");
    received.path = format!("/returns/{}/received", s.return_id);
    let api = &s.functions.support_api;
    let (a, b) = tokio::join!(
        api.handle(&received, Some(REMAINING)),
        api.handle(&received, Some(REMAINING))
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    let copies = check_one_fact_consumed_cleanly(&s).await;
    assert!((1..=2).contains(&copies), "{copies}");
}
