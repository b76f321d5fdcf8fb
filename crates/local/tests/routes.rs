//! `local routes`: the event catalog's routing table as a user runs it, and the proof that it is
//! the runner's own routing: every fixture event, matched by the runner's router, reaches
//! exactly the rules, queues and functions the table (and so asyncapi.yaml) lists for it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use local::router::Router;
use local::topology::Topology;
use sam_template::{Stack, Template};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn local(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_local"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn routes_prints_one_row_per_subscription_and_the_unsubscribed_events() {
    let output = local(&["routes"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["DETAIL", "TYPE", "PRODUCER", "RULE", "QUEUE", "CONSUMER"]
    );
    assert!(
        rows.contains(&vec![
            "OrderCreated",
            "com.orders",
            "FulfillmentFromOrdersRule",
            "FulfillmentEventsQueue",
            "fulfillment-events"
        ]),
        "{text}"
    );
    // Published, but no rule of this stack takes it: still listed.
    assert!(
        rows.contains(&vec!["ReturnRequested", "com.support", "-", "-", "-"]),
        "{text}"
    );
    assert_eq!(rows.len(), 1 + 7, "{text}");
}

#[test]
fn routes_as_json_lines() {
    let output = local(&["--json", "routes"]);
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(lines.iter().all(|l| l["type"] == "route"));
    let shipped_to_support = lines
        .iter()
        .find(|l| l["detail_type"] == "OrderShipped" && l["consumer"] == "support-events")
        .unwrap();
    assert_eq!(shipped_to_support["producer"], "com.fulfillment");
    assert_eq!(shipped_to_support["rule"], "SupportFromFulfillmentRule");
    assert_eq!(shipped_to_support["queue"], "SupportEventsQueue");
    let unrouted = lines
        .iter()
        .find(|l| l["detail_type"] == "ReturnRequested")
        .unwrap();
    assert!(unrouted["rule"].is_null() && unrouted["consumer"].is_null());
}

#[test]
fn a_bad_template_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yaml");
    std::fs::write(&path, "Resources:\n  Q: { Type: AWS::SQS::Queue }\n").unwrap();
    let output = local(&["--template", path.to_str().unwrap(), "routes"]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.contains("error [CatalogInvalid]") && err.contains("exactly one AWS::Events::EventBus"),
        "{err}"
    );
}

#[test]
fn the_table_is_what_the_runner_routes() {
    let template = Template::load(root().join("template.yaml")).unwrap();
    let topology = Topology::from_template(&template, &Stack::new("dev")).unwrap();
    let router = Router::new(&topology).unwrap();
    let table: BTreeSet<(String, String, String, String)> =
        catalog::Catalog::from_template(&template)
            .unwrap()
            .routes()
            .into_iter()
            .filter_map(|r| Some((r.detail_type, r.rule?, r.queue?, r.consumer?)))
            .collect();

    let mut routed = BTreeSet::new();
    let mut fixtures = 0;
    for entry in std::fs::read_dir(root().join("events/eventbridge")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        let detail_type = event["detail-type"].as_str().unwrap().to_owned();
        fixtures += 1;
        for rule in router.matching(topology.main_bus(), &bytes) {
            let rule = &topology.rules[rule];
            for (_, queue) in &rule.targets {
                let queue = &topology.queues[*queue];
                let consumer = &topology.functions[queue.consumer.unwrap()];
                routed.insert((
                    detail_type.clone(),
                    rule.logical_id.clone(),
                    queue.logical_id.clone(),
                    consumer.binary.clone(),
                ));
            }
        }
    }
    assert_eq!(fixtures, contracts::detail_type::ALL.len());
    assert_eq!(routed, table);
}
