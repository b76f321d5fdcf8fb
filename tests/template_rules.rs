//! Policy checks on `template.yaml` that cfn-lint and checkov do not know about: the rules speak
//! the event contract, every consumer queue has a dead-letter queue, and no IAM statement grants
//! `*`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use serde_json::Value;
use testkit::{Stack, template};

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_rule_routes_contract_sources_and_detail_types_only() {
    let t = template();
    let rules = t.rules(&Stack::new("s")).unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        let sources = strings(&rule.pattern["source"]);
        let types = strings(&rule.pattern["detail-type"]);
        assert!(
            !sources.is_empty() && !types.is_empty(),
            "{}: needs source and detail-type",
            rule.logical_id
        );
        for s in &sources {
            for dt in &types {
                assert!(
                    contracts::ROUTES.contains(&(s.as_str(), dt.as_str())),
                    "{}: {s}/{dt} is not a route of the contract",
                    rule.logical_id
                );
            }
        }
        assert!(
            rule.bus.is_some(),
            "{}: must listen on the custom bus",
            rule.logical_id
        );
    }
}

#[test]
fn every_rule_target_queue_has_a_dead_letter_queue_with_enough_receives() {
    let t = template();
    let stack = Stack::new("s");
    let queues = t.queues(&stack).unwrap();
    for rule in t.rules(&stack).unwrap() {
        for target in &rule.targets {
            let logical = target.logical_id.as_deref().unwrap();
            let queue = queues.iter().find(|q| q.logical_id == logical).unwrap();
            let redrive = queue
                .redrive
                .as_ref()
                .unwrap_or_else(|| panic!("{logical} (target of {}) has no DLQ", rule.logical_id));
            assert!(
                redrive.max_receive_count >= 5,
                "{logical}: maxReceiveCount < 5"
            );
        }
    }
}

#[test]
fn no_iam_statement_grants_a_wildcard_resource() {
    fn walk(v: &Value, path: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "Resource" && strings(child).iter().any(|r| r == "*") {
                        found.push(path.to_owned());
                    }
                    walk(child, &format!("{path}.{k}"), found);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(template().root(), "$", &mut found);
    assert!(found.is_empty(), "wildcard resources at {found:?}");
}

#[test]
fn a_rule_naming_a_detail_type_outside_the_contract_is_caught() {
    // The check above must be able to fail: feed it a rule that routes an invented type.
    let yaml = std::fs::read_to_string(testkit::workspace_root().join("template.yaml"))
        .unwrap()
        .replacen(
            "detail-type: [OrderCreated]",
            "detail-type: [OrderTeleported]",
            1,
        );
    let t = testkit::Template::from_yaml(&yaml, "mutated.yaml").unwrap();
    let bad = t
        .rules(&Stack::new("s"))
        .unwrap()
        .into_iter()
        .flat_map(|r| strings(&r.pattern["detail-type"]))
        .filter(|dt| !contracts::detail_type::ALL.contains(&dt.as_str()))
        .count();
    assert_eq!(bad, 1);
}
