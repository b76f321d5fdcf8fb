//! Routing: for every fixture event, the targets the runner picks are the targets the template's
//! rules select, both as the router answers and as the deliveries actually happen; and a rule
//! changed in a copy of the template changes the routing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use local::bus::Entry;
use local::fixtures::{self, Injection};
use local::flow::Recorder;
use local::{Runner, RunnerOptions};
use sam_template::{Stack, Template};
use serde_json::Value;

type Targets = BTreeSet<(String, String)>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template_text() -> String {
    std::fs::read_to_string(root().join("template.yaml")).unwrap()
}

/// Every event of `events/eventbridge` and `events/sqs`, with its file name.
fn fixture_events() -> Vec<(String, Entry)> {
    let mut out = Vec::new();
    for dir in ["eventbridge", "sqs"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("events").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            for injection in fixtures::load(&path).unwrap() {
                match injection {
                    Injection::Event(entry) => out.push((
                        format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()),
                        entry,
                    )),
                    Injection::Request(_) => panic!("{} is not an event fixture", path.display()),
                }
            }
        }
    }
    assert_eq!(out.len(), 10, "5 bare events and 5 SQS batches of one");
    out
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The oracle: what the template's rules select, read directly from their patterns. It only
/// understands the shape our template uses (exact-string lists on `source` and `detail-type`)
/// and fails on anything else, so it cannot silently agree with a wrong router.
fn selected_by_template(template: &Template, entry: &Entry) -> Targets {
    let mut out = Targets::new();
    for rule in template.rules(&Stack::new("dev")).unwrap() {
        let pattern = rule.pattern.as_object().unwrap();
        let keys: BTreeSet<&str> = pattern.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["detail-type", "source"]),
            "{}: oracle cannot read it",
            rule.logical_id
        );
        let selects = strings(&pattern["source"]).contains(&entry.source.as_str())
            && strings(&pattern["detail-type"]).contains(&entry.detail_type.as_str());
        if selects {
            for target in &rule.targets {
                out.insert((rule.logical_id.clone(), target.logical_id.clone().unwrap()));
            }
        }
    }
    out
}

fn set(pairs: &[(&str, &str)]) -> Targets {
    pairs
        .iter()
        .map(|(r, q)| ((*r).to_owned(), (*q).to_owned()))
        .collect()
}

/// The targets that actually received the entry when the runner delivered it.
async fn delivered(runner: &Runner, recorder: &Recorder, entry: &Entry) -> Targets {
    runner.inject(std::slice::from_ref(entry));
    runner.settle().await.unwrap();
    recorder
        .deliveries()
        .into_iter()
        .filter(|d| d.key == entry.key && d.detail_type == entry.detail_type)
        .map(|d| (d.rule, d.queue))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_goes_to_exactly_the_targets_the_template_rules_select() {
    let template = Template::load(root().join("template.yaml")).unwrap();
    // The product's routing, written out: who consumes what.
    let expected = |detail_type: &str| match detail_type {
        "OrderCreated" => set(&[("FulfillmentFromOrdersRule", "FulfillmentEventsQueue")]),
        "OrderPicked" => set(&[
            ("OrdersFromFulfillmentRule", "OrdersEventsQueue"),
            ("FulfillmentFromFulfillmentRule", "FulfillmentEventsQueue"),
        ]),
        "OrderShipped" => set(&[
            ("OrdersFromFulfillmentRule", "OrdersEventsQueue"),
            ("SupportFromFulfillmentRule", "SupportEventsQueue"),
        ]),
        "ReturnRequested" => set(&[]),
        "ReturnReceived" => set(&[("OrdersFromSupportRule", "OrdersEventsQueue")]),
        other => panic!("no expectation for {other}"),
    };
    for (file, entry) in fixture_events() {
        // A fresh runner per fixture: deliveries of one fixture never mix with another's.
        let recorder = Arc::new(Recorder::new());
        let runner = Runner::new(
            &template,
            RunnerOptions::in_memory().observer(recorder.clone()),
        )
        .unwrap();
        let picked: Targets = runner.targets(&entry).into_iter().collect();
        assert_eq!(
            picked,
            selected_by_template(&template, &entry),
            "{file}: router vs template rules"
        );
        assert_eq!(
            picked,
            expected(&entry.detail_type),
            "{file}: router vs the product's routing"
        );
        assert_eq!(
            delivered(&runner, &recorder, &entry).await,
            picked,
            "{file}: deliveries vs router"
        );
        if picked.is_empty() {
            assert_eq!(
                runner.summary().events_unrouted,
                1,
                "{file}: an event no rule matches is reported unrouted"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_changed_in_a_copy_of_the_template_changes_the_routing() {
    let original = template_text();
    assert_eq!(original.matches("detail-type: [ReturnReceived]").count(), 1);
    let changed = original.replacen(
        "detail-type: [ReturnReceived]",
        "detail-type: [ReturnRequested]",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, changed).unwrap();

    let before = Runner::load(root().join("template.yaml"), RunnerOptions::in_memory()).unwrap();
    let recorder = Arc::new(Recorder::new());
    let after = Runner::load(&path, RunnerOptions::in_memory().observer(recorder.clone())).unwrap();
    let mutated = Template::load(&path).unwrap();

    let events = fixture_events();
    let event = |detail_type: &str| {
        events
            .iter()
            .find(|(_, e)| e.detail_type == detail_type)
            .map(|(_, e)| e.clone())
            .unwrap()
    };
    let requested = event("ReturnRequested");
    let received = event("ReturnReceived");

    assert!(before.targets(&requested).is_empty());
    assert_eq!(before.targets(&received).len(), 1);
    let now_requested: Targets = after.targets(&requested).into_iter().collect();
    assert_eq!(
        now_requested,
        set(&[("OrdersFromSupportRule", "OrdersEventsQueue")])
    );
    assert_eq!(now_requested, selected_by_template(&mutated, &requested));
    assert!(
        after.targets(&received).is_empty(),
        "ReturnReceived is no longer routed"
    );

    // And the runner delivers by the changed rule: ReturnRequested now reaches orders-events
    // (which does not take it: a failure on every receive, then the DLQ listing).
    assert_eq!(
        delivered(&after, &recorder, &requested).await,
        now_requested
    );
    let dead = after.summary().dead_letters;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (dead[0].queue.as_str(), dead[0].receive_count),
        ("OrdersEventsQueue", 5)
    );
    assert_eq!(dead[0].dlq.as_deref(), Some("OrdersEventsDLQ"));
    assert!(
        dead[0]
            .last_error
            .contains("ReturnRequested is not handled"),
        "{}",
        dead[0].last_error
    );
}
