//! Criterion benchmarks of the runner: matching one envelope against the template's rules, and
//! routing plus handling a batch of orders end to end with in-memory stores. The headline
//! throughput figure comes from `cargo run --profile runner -p local -- bench`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use local::router::Router;
use local::topology::Topology;
use sam_template::{Stack, Template};

fn template() -> Template {
    Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap()
}

fn matching(c: &mut Criterion) {
    let topology = Topology::from_template(&template(), &Stack::new("dev")).unwrap();
    let router = Router::new(&topology).unwrap();
    let envelope = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/eventbridge/order-picked.json"
    ))
    .unwrap();
    c.bench_function("match one envelope against the template's rules", |b| {
        b.iter(|| router.matching(black_box("dev-commerce"), black_box(&envelope)))
    });
}

fn pipeline(c: &mut Criterion) {
    let template = template();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.bench_function("1000 orders: 3000 events, 5000 deliveries", |b| {
        b.iter_batched(
            || {
                runtime
                    .block_on(local::bench::prepare(&template, 1000))
                    .unwrap()
            },
            |runner| runtime.block_on(async { runner.settle().await.unwrap() }),
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, matching, pipeline);
criterion_main!(benches);
