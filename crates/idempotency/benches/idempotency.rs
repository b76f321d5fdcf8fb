//! Per-call overhead of the library with the in-memory store (fresh, replayed, cached replay) and
//! key hashing of a typical event (the `OrderCreated` fixture).
//!
//! `cargo bench -p idempotency -- --quick` (or `--warm-up-time 1 --measurement-time 3`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // benchmark harness

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore, Request};
use serde_json::Value;

const ORDER_CREATED: &str = include_str!("../../../events/eventbridge/order-created.json");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn result() -> Value {
    serde_json::json!({"order-id": "1073459984", "status": "Picked", "emitted": 1})
}

fn overhead(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("run_in_memory");

    let idem = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("bench"));
    let counter = AtomicU64::new(0);
    group.bench_function("fresh", |b| {
        b.iter_batched(
            || Request::new(&counter.fetch_add(1, Ordering::Relaxed)).unwrap(),
            |request| {
                rt.block_on(idem.run(&request, || async { Ok::<_, std::io::Error>(result()) }))
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });

    let request = Request::new("replayed-key").unwrap();
    rt.block_on(idem.run(&request, || async { Ok::<_, std::io::Error>(result()) }))
        .unwrap();
    group.bench_function("replayed", |b| {
        b.iter(|| {
            let outcome = rt
                .block_on(idem.run(black_box(&request), || async {
                    Ok::<_, std::io::Error>(result())
                }))
                .unwrap();
            assert!(outcome.is_replayed());
            outcome
        });
    });

    let cached = Idempotency::new(
        InMemoryStore::new(),
        IdempotencyConfig::new("bench").local_cache(1024),
    );
    rt.block_on(cached.run(&request, || async { Ok::<_, std::io::Error>(result()) }))
        .unwrap();
    group.bench_function("replayed_from_cache", |b| {
        b.iter(|| {
            rt.block_on(cached.run(black_box(&request), || async {
                Ok::<_, std::io::Error>(result())
            }))
            .unwrap()
        });
    });
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let event: Value = serde_json::from_str(ORDER_CREATED).unwrap();
    let key = event["detail"]["metadata"]["idempotency-key"].clone();
    let detail = event["detail"].clone();
    let mut group = c.benchmark_group("hash");
    group.bench_function("key_of_order_created", |b| {
        b.iter(|| Request::new(black_box(&key)).unwrap());
    });
    group.bench_function("whole_order_created_detail", |b| {
        b.iter(|| Request::new(black_box(&detail)).unwrap());
    });
    group.bench_function("key_plus_validation_of_detail", |b| {
        b.iter(|| {
            Request::new(black_box(&key))
                .unwrap()
                .validate(black_box(&detail))
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, overhead, hashing);
criterion_main!(benches);
