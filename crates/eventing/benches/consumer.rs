//! Consumer dispatch + publish overhead per record with in-memory adapters (idempotency store
//! and publisher), for a batch of 10 fresh records (each emitting one event) and for the same
//! batch redelivered (all replayed); and the PutEvents calls a batch costs.
//!
//! `cargo bench -p eventing --bench consumer -- --warm-up-time 1 --measurement-time 3`
//! Throughput is per record: criterion's time per element is the per-record overhead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // benchmark harness

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use chrono::Utc;
use contracts::{
    AnyEvent, Currency, Detail, DomainEvent, IdempotencyKey, Metadata, OrderCreated, OrderItem,
    OrderPicked, OrderStatus,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use eventing::{Consumer, EventHandler, HandlerError, InMemoryPublisher, OutgoingEvent};
use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
use serde_json::json;

/// Fulfillment-shaped: every `OrderCreated` causes one `OrderPicked`.
struct Picker;

#[async_trait::async_trait]
impl EventHandler for Picker {
    async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError> {
        let AnyEvent::OrderCreated(created) = event else {
            return Err(HandlerError::unhandled(event));
        };
        let picked = Detail::new(
            created.metadata.caused::<OrderPicked>(Utc::now()),
            OrderPicked {
                order_id: created.data.order_id.clone(),
                customer_id: created.data.customer_id.clone(),
                items: created.data.items.clone(),
                warehouse_id: "WH-EU-1".into(),
                picked_at: Utc::now(),
            },
        );
        Ok(vec![
            OutgoingEvent::new(&picked).map_err(HandlerError::transient)?,
        ])
    }
}

fn sqs_batch(first_key: u64, n: u64) -> SqsEvent {
    let records: Vec<_> = (first_key..first_key + n)
        .map(|k| {
            let detail = Detail::new(
                Metadata::first(
                    IdempotencyKey::new(format!("bench-{k}")).unwrap(),
                    format!("order-{k}"),
                    Utc::now(),
                ),
                OrderCreated {
                    order_id: format!("order-{k}"),
                    status: OrderStatus::Open,
                    total: "237.51".parse().unwrap(),
                    currency: Currency::new("USD").unwrap(),
                    customer_id: "456".into(),
                    items: vec![OrderItem {
                        sku: "SKU-TEAPOT".into(),
                        quantity: 1,
                        unit_price: "237.51".parse().unwrap(),
                    }],
                    created_at: Utc::now(),
                },
            );
            let body = json!({
                "version": "0", "id": format!("evt-{k}"), "detail-type": OrderCreated::DETAIL_TYPE,
                "source": OrderCreated::SOURCE, "time": "2026-11-23T10:47:00Z",
                "region": "us-east-1", "resources": [], "detail": detail,
            });
            json!({"messageId": format!("m-{k}"), "body": body.to_string(), "eventSource": "aws:sqs"})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn consumer() -> (Consumer, InMemoryPublisher) {
    let publisher = InMemoryPublisher::new();
    let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("bench"));
    (
        Consumer::new(Picker, idempotency, publisher.clone()),
        publisher,
    )
}

const REMAINING: Option<Duration> = Some(Duration::from_secs(30));

fn per_record(c: &mut Criterion) {
    // The timer is on, as in Lambda: the consumer bounds every batch by its time budget.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("consumer_in_memory");
    group.throughput(Throughput::Elements(10));

    let (fresh, fresh_publisher) = consumer();
    let next = AtomicU64::new(0);
    group.bench_function("batch_of_10_fresh", |b| {
        b.iter_batched(
            || {
                fresh_publisher.take_published();
                sqs_batch(next.fetch_add(10, Ordering::Relaxed), 10)
            },
            |batch| {
                let response = rt.block_on(fresh.handle_sqs(batch, REMAINING));
                assert!(response.batch_item_failures.is_empty());
                black_box(response)
            },
            BatchSize::SmallInput,
        );
    });

    // The same on a current-thread runtime: no cross-thread wake-ups, so the difference is the
    // cost of handing records to worker threads (what a Lambda's multi-thread runtime pays).
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (local, local_publisher) = consumer();
    let local_next = AtomicU64::new(0);
    group.bench_function("batch_of_10_fresh_current_thread", |b| {
        b.iter_batched(
            || {
                local_publisher.take_published();
                sqs_batch(local_next.fetch_add(10, Ordering::Relaxed), 10)
            },
            |batch| {
                let response = single.block_on(local.handle_sqs(batch, REMAINING));
                assert!(response.batch_item_failures.is_empty());
                black_box(response)
            },
            BatchSize::SmallInput,
        );
    });

    let (replay, _) = consumer();
    let same = sqs_batch(0, 10);
    rt.block_on(replay.handle_sqs(same.clone(), REMAINING));
    group.bench_function("batch_of_10_replayed", |b| {
        b.iter_batched(
            || same.clone(),
            |batch| {
                let response = rt.block_on(replay.handle_sqs(batch, REMAINING));
                assert!(response.batch_item_failures.is_empty());
                black_box(response)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();

    // PutEvents calls per batch: one publish per batch, split in requests of 10 entries.
    for size in [1, 10, 25, 100] {
        let (consumer, publisher) = consumer();
        let report = rt.block_on(consumer.process_sqs(sqs_batch(1_000_000, size), REMAINING));
        assert_eq!(report.stats.fresh as u64, size);
        println!(
            "put_events_calls_per_batch: batch of {size} fresh records (1 event each) -> {} publish call(s), {} PutEvents request(s)",
            report.stats.publish_calls,
            publisher.put_events_calls()
        );
    }
}

criterion_group!(benches, per_record);
criterion_main!(benches);
