//! The demo ends in the same final state with and without duplicates, and really does meet
//! duplicates on the way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;
use std::path::Path;

use local::bus::Duplicates;
use local::demo::{self, DemoReport};
use local::hosting::StoreCounts;
use local::{Runner, RunnerOptions};
use sam_template::Template;

fn template() -> Template {
    Template::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")).unwrap()
}

async fn demo(rate: f64, seed: u64) -> DemoReport {
    let template = template();
    let runner = Runner::new(
        &template,
        RunnerOptions::in_memory().duplicates(Duplicates::new(rate, seed)),
    )
    .unwrap();
    demo::run(&template, &runner, rate, seed, &format!("s{seed}"))
        .await
        .unwrap()
}

fn effects(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_with_half_duplicates_ends_in_the_same_final_state_as_without() {
    for seed in 1..=6 {
        let report = demo(0.5, seed).await;
        let (run, baseline) = (&report.run, &report.baseline);
        assert!(report.same_final_state, "seed {seed}: {report:#?}");
        // In memory both runs have store counts, so the comparison is plain equality.
        assert_eq!(run.final_state, baseline.final_state, "seed {seed}");

        let state = &run.final_state;
        assert_eq!(state.order["status"], "Returned");
        assert_eq!(state.return_["status"], "Received");
        assert_eq!(
            state.shipment.as_ref().unwrap()["order-id"],
            state.order["order-id"]
        );
        assert_eq!(
            state.store_counts,
            Some(StoreCounts {
                orders: 1,
                picks: 1,
                shipments: 1,
                returns: 1
            })
        );
        assert_eq!(state.dead_letters, 0);
        assert_eq!(
            state.effects,
            effects(&[
                ("fulfillment-events", 2),
                ("orders-events", 3),
                ("support-events", 1),
                ("http writes", 3)
            ]),
            "each fact handled once per consumer"
        );

        // Duplicates were really delivered, and answered without running twice.
        let s = &run.summary;
        assert!(s.duplicates_injected > 0, "seed {seed}: nothing duplicated");
        assert!(
            s.deliveries.replayed + s.requests.replayed > 0,
            "seed {seed}: {s:?}"
        );
        assert_eq!(s.deliveries.failed, 0, "seed {seed}: {s:?}");
        assert_eq!(baseline.summary.duplicates_injected, 0);
        assert_eq!(
            baseline.summary.deliveries.replayed + baseline.summary.requests.replayed,
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_every_delivery_and_request_duplicated_each_duplicate_is_replayed() {
    let report = demo(1.0, 1).await;
    assert!(report.same_final_state, "{report:#?}");
    let s = &report.run.summary;
    // 6 deliveries and 3 creating requests without duplicates: each gets exactly one copy.
    assert_eq!(s.duplicates_injected, 9, "{s:?}");
    assert_eq!((s.deliveries.fresh, s.deliveries.replayed), (6, 6), "{s:?}");
    assert_eq!((s.requests.fresh, s.requests.replayed), (3, 3), "{s:?}");
    assert_eq!(s.deliveries.failed + s.dead_letters.len(), 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_every_request_retried_concurrently_the_final_state_is_still_the_same() {
    // A client retrying before the first answer: both requests race in the API functions.
    // (This is how the runner first caught two different ReturnReceived facts published under
    // one key by concurrent receipts.)
    let template = template();
    for seed in 1..=8 {
        let options = RunnerOptions {
            concurrent_retries: true,
            ..RunnerOptions::in_memory().duplicates(Duplicates::new(1.0, seed))
        };
        let runner = Runner::new(&template, options).unwrap();
        let report = demo::run(&template, &runner, 1.0, seed, &format!("c{seed}"))
            .await
            .unwrap();
        assert!(report.same_final_state, "seed {seed}: {report:#?}");
        assert_eq!(report.run.summary.dead_letters.len(), 0, "seed {seed}");
        assert_eq!(
            report.run.summary.requests.fresh, 3,
            "seed {seed}: {:?}",
            report.run.summary.requests
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_final_state_that_differs_is_reported_as_different() {
    let report = demo(0.0, 1).await;
    let mut changed = report.run.final_state.clone();
    changed.order["status"] = "Shipped".into();
    let verdict = demo::report(
        0.0,
        1,
        (changed, report.run.summary.clone()),
        (
            report.baseline.final_state.clone(),
            report.baseline.summary.clone(),
        ),
    );
    assert!(!verdict.same_final_state);
    assert!(verdict.text().contains("DIFFERS"));
    let mut extra = report.run.final_state.clone();
    extra.effects.insert("orders-events".into(), 4);
    assert!(
        !extra.same_as(&report.baseline.final_state),
        "an effect run twice is a different state"
    );
}
