//! Issue #8, lost acknowledgements: work that succeeded but whose success was not heard is done
//! again by its sender, and must have no second effect.
//!
//! - An SQS batch handled successfully but never deleted (the invocation's answer was lost, or
//!   the visibility timeout expired first) is received again from the real queue on the
//!   stand-in: every record is a replay, nothing is published and nothing written; a warm
//!   consumer answers from its cache without a single call, a cold one with one failed
//!   conditional write per record.
//! - The answer of the idempotency record's completion is lost on every SDK attempt (the
//!   write was applied): the record is retried and replayed, not redone.
//! - The answers of PutEvents are lost (the events were accepted): the event is on the bus
//!   several times under one key, and downstream applies it once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use eventing::RecordOutcome;
use faults::{Fault, FaultPlan, FaultProxy, Rule, Service};
use support::{
    BusRecord, ClientFigures, REMAINING, audit_queue, drain_url, fixture, json, product_sdk, send,
    settle, table_state, wire,
};
use testkit::{LocalStack, moto, template};

struct World {
    stack: LocalStack,
    proxy: FaultProxy,
    functions: support::Functions,
    direct: aws_config::SdkConfig,
    sdk: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
    ddb: aws_sdk_dynamodb::Client,
    audit: String,
}

async fn world() -> World {
    let direct = moto().sdk_config().await;
    let stack = LocalStack::provision(&direct, &template()).await.unwrap();
    let audit = audit_queue(&direct, &stack).await;
    let proxy = FaultProxy::start(moto().endpoint(), FaultPlan::none())
        .await
        .unwrap();
    let sdk = product_sdk(proxy.endpoint()).await;
    World {
        functions: wire(&stack, &direct, &sdk),
        sqs: aws_sdk_sqs::Client::new(&direct),
        ddb: aws_sdk_dynamodb::Client::new(&direct),
        direct,
        sdk,
        stack,
        proxy,
        audit,
    }
}

/// Creates orders `0..n` through the orders API.
async fn create_orders(w: &World, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut post = fixture("http/post-order.json");
        post.headers
            .insert("idempotency-key".into(), format!("lost-ack-{i}"));
        let api = &w.functions.orders_api;
        let created = send(&mut ClientFigures::default(), || {
            api.handle(&post, Some(REMAINING))
        })
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
        ids.push(json(&created)["order-id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        w.functions.relay().await.published,
        n,
        "OrderCreated relayed"
    );
    ids
}

/// Receives `n` messages from a queue without deleting them, as the Lambda poller does; when
/// `only` is given, only those message ids (others received meanwhile are left to time out).
async fn receive(w: &World, queue: &str, n: usize, only: Option<&[String]>) -> Vec<SqsMessage> {
    let mut out: Vec<SqsMessage> = Vec::new();
    for _ in 0..200 {
        let received = w
            .sqs
            .receive_message()
            .queue_url(w.stack.queue_url(queue))
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in received.messages.unwrap_or_default() {
            if only.is_some_and(|ids| !ids.iter().any(|id| Some(id) == m.message_id.as_ref())) {
                continue;
            }
            let mut message = SqsMessage::default();
            message.message_id = m.message_id;
            message.receipt_handle = m.receipt_handle;
            message.body = m.body;
            for (name, value) in m.attributes.unwrap_or_default() {
                message.attributes.insert(name.as_str().to_owned(), value);
            }
            out.push(message);
        }
        if out.len() >= n {
            return out;
        }
    }
    panic!("{queue}: expected {n} messages, got {}", out.len());
}

fn batch(messages: &[SqsMessage]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages.to_vec();
    event
}

fn receive_counts(messages: &[SqsMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            m.attributes
                .get("ApproximateReceiveCount")
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn ids(messages: &[SqsMessage]) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .iter()
        .map(|m| m.message_id.clone().unwrap())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_redelivered_after_success_has_no_second_effect() {
    const ORDERS: usize = 3;
    let w = world().await;
    let queue = "FulfillmentEventsQueue";
    // A short visibility timeout stands for an acknowledgement that never came.
    w.sqs
        .set_queue_attributes()
        .queue_url(w.stack.queue_url(queue))
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap();
    create_orders(&w, ORDERS).await;
    let consumer = &w.functions.consumers[0].1;

    let first = receive(&w, queue, ORDERS, None).await;
    w.proxy.reset_stats();
    let report = consumer.process_sqs(batch(&first), Some(REMAINING)).await;
    assert_eq!(report.stats.fresh, ORDERS, "{:?}", report.records);
    let handled = w.proxy.stats();
    println!("first delivery: {}", handled.text());
    assert_eq!(
        handled.calls_to("events.PutEvents"),
        1,
        "one publish per batch"
    );
    // Not deleted: the same messages come back once the visibility timeout expires.

    let again = receive(&w, queue, ORDERS, Some(&ids(&first))).await;
    assert_eq!(ids(&again), ids(&first), "the very same messages");
    assert!(receive_counts(&again).iter().all(|c| c == "2"));
    w.proxy.reset_stats();
    let warm = consumer.process_sqs(batch(&again), Some(REMAINING)).await;
    assert_eq!(warm.stats.replayed, ORDERS, "{:?}", warm.records);
    assert_eq!(
        (warm.stats.events_published, warm.stats.publish_calls),
        (0, 0)
    );
    let warm_calls = w.proxy.stats();
    println!("warm redelivery: {}", warm_calls.text());
    assert_eq!(
        warm_calls.total_calls(),
        0,
        "a warm container answers from its cache"
    );

    // A new container (cold start) receives it a third time.
    let cold = support::wire(&w.stack, &w.direct, &w.sdk)
        .consumers
        .remove(0)
        .1;
    let third = receive(&w, queue, ORDERS, Some(&ids(&first))).await;
    assert!(receive_counts(&third).iter().all(|c| c == "3"));
    w.proxy.reset_stats();
    let report = cold.process_sqs(batch(&third), Some(REMAINING)).await;
    assert_eq!(report.stats.replayed, ORDERS, "{:?}", report.records);
    let cold_calls = w.proxy.stats();
    println!("cold redelivery: {}", cold_calls.text());
    assert_eq!(
        cold_calls.calls,
        BTreeMap::from([("dynamodb.PutItem".to_owned(), ORDERS as u64)]),
        "one failed conditional claim per record, nothing else"
    );
    for m in &third {
        w.sqs
            .delete_message()
            .queue_url(w.stack.queue_url(queue))
            .receipt_handle(m.receipt_handle.clone().unwrap())
            .send()
            .await
            .unwrap();
    }

    // One pick per order, one OrderPicked per order on the bus.
    let picks = table_state(&w.ddb, w.stack.table("FulfillmentTable"), "pk").await;
    assert_eq!(
        picks.keys().filter(|k| k.starts_with("PICK#")).count(),
        ORDERS
    );
    let mut bus = BusRecord::default();
    bus.add(&drain_url(&w.sqs, &w.audit).await);
    let picked: Vec<_> = bus
        .facts
        .iter()
        .filter(|((kind, _), _)| kind == "OrderPicked")
        .collect();
    assert_eq!(picked.len(), ORDERS);
    assert!(picked.iter().all(|(_, copies)| **copies == 1), "{picked:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completion_whose_answer_is_lost_is_replayed_not_redone() {
    let w = world().await;
    create_orders(&w, 1).await;
    // Every SDK attempt of the first completion is applied and its answer lost.
    let attempts = u64::from(platform::init::SDK_MAX_ATTEMPTS);
    w.proxy.set_plan(
        FaultPlan::seeded(1).rule(
            Rule::new("lost-complete", Fault::lose_response(500))
                .service(Service::DynamoDb)
                .operations(&["UpdateItem"])
                .body_contains(w.stack.table("IdempotencyTable"))
                .limit(attempts),
        ),
    );
    let consumer = &w.functions.consumers[0].1;
    let bodies = w
        .stack
        .drain(&w.sqs, "FulfillmentEventsQueue")
        .await
        .unwrap();
    let messages: Vec<SqsMessage> = bodies
        .into_iter()
        .map(|body| {
            let mut m = SqsMessage::default();
            m.message_id = Some(uuid::Uuid::new_v4().to_string());
            m.body = Some(body);
            m
        })
        .collect();
    // The function's whole timeout (the template's 15 s): every SDK attempt of the completion,
    // with the SDK's back-off between them, fits in its time budget. In `REMAINING`'s 2 s the
    // budget would end them first (`DeadlineExceeded`), which is not this scenario.
    let first = consumer
        .process_sqs(batch(&messages), Some(Duration::from_secs(15)))
        .await;
    assert_eq!(
        first.records[0].outcome,
        RecordOutcome::Failed("IdempotencyStoreFailed"),
        "the completion's answer never came: {:?}",
        first.records
    );
    assert_eq!(first.stats.events_published, 1);
    let after_first = w.proxy.stats();
    println!("first delivery: {}", after_first.text());
    assert_eq!(after_first.injected.get("lost-complete"), Some(&attempts));

    // SQS redelivers the failed record: the completion did happen, so it is a replay.
    let again = consumer
        .process_sqs(batch(&messages), Some(REMAINING))
        .await;
    assert_eq!(again.stats.replayed, 1, "{:?}", again.records);
    assert_eq!(again.stats.publish_calls, 0);
    assert_eq!(
        w.proxy.stats().calls_to("events.PutEvents"),
        after_first.calls_to("events.PutEvents"),
        "nothing published again"
    );
    let mut bus = BusRecord::default();
    bus.add(&drain_url(&w.sqs, &w.audit).await);
    let picked = bus
        .facts
        .iter()
        .filter(|((kind, _), _)| kind == "OrderPicked")
        .map(|(_, n)| *n)
        .collect::<Vec<_>>();
    assert_eq!(picked, [1], "one OrderPicked, once");
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_put_events_answers_duplicate_the_event_and_downstream_applies_it_once() {
    let w = world().await;
    let order_ids = create_orders(&w, 1).await;
    let attempts = u64::from(platform::init::SDK_MAX_ATTEMPTS);
    // The first PutEvents call of the fulfillment consumer: every SDK attempt accepted, every
    // answer lost; the publisher's re-send then gets through.
    w.proxy.set_plan(
        FaultPlan::seeded(1).rule(
            Rule::new("lost-put", Fault::lose_response(503))
                .operations(&["PutEvents"])
                .body_contains("OrderPicked")
                .limit(attempts),
        ),
    );
    let mut tally = BTreeMap::new();
    let fulfillment = &w.functions.consumers[0..1];
    settle(&w.stack, &w.sqs, fulfillment, &mut tally).await;
    w.proxy.set_plan(FaultPlan::none());
    let mut bus = BusRecord::default();
    bus.add(&drain_url(&w.sqs, &w.audit).await);
    let picked: Vec<usize> = bus
        .facts
        .iter()
        .filter(|((kind, _), _)| kind == "OrderPicked")
        .map(|(_, n)| *n)
        .collect();
    println!("OrderPicked copies on the bus: {picked:?}; fulfillment: {tally:?}");
    assert_eq!(picked.len(), 1, "one fact");
    assert!(picked[0] > 1, "its lost answers made copies: {picked:?}");
    // OrderShipped is usually on the bus once; on a loaded machine the lost answers can outlast
    // the invocation's time budget, and the redelivered OrderPicked publishes it again (same
    // key): downstream must apply it once all the same.
    let shipped = bus.copies_of("OrderShipped");
    assert_eq!(
        bus.facts
            .keys()
            .filter(|(kind, _)| kind == "OrderShipped")
            .count(),
        1,
        "one OrderShipped fact"
    );

    // Downstream: the orders projection sees every copy (each twice) and applies each fact
    // (OrderPicked, then the OrderShipped it caused) once: every other delivery is a replay.
    let mut tally = BTreeMap::new();
    let orders = &w.functions.consumers[1..2];
    w.proxy.reset_stats();
    settle(&w.stack, &w.sqs, orders, &mut tally).await;
    let deliveries = &tally["OrdersEventsQueue"];
    println!("orders-events: {deliveries:?}; {}", w.proxy.stats().text());
    assert_eq!(deliveries.fresh, 2, "{deliveries:?}");
    assert_eq!(
        deliveries.replayed,
        (picked[0] + shipped) * 2 - 2,
        "{deliveries:?}"
    );
    assert_eq!(
        w.proxy.stats().calls_to("dynamodb.UpdateItem"),
        4,
        "one status update and one completion per fact"
    );

    let mut get = fixture("http/get-order.json");
    get.path = format!("/orders/{}", order_ids[0]);
    let api = &w.functions.orders_api;
    let order = json(&send(&mut ClientFigures::default(), || api.handle(&get, None)).await);
    assert_eq!(order["status"], "Shipped");
}
