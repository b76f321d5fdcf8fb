//! Rules, queues, binaries and fixtures.

use serde_json::Value;
use testkit::{Stack, template};

use crate::support::strings;

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

#[test]
fn every_function_has_a_workspace_binary_and_every_binary_a_function() {
    let root = testkit::workspace_root();
    let t = template();
    let mut declared = Vec::new();
    for f in t.functions() {
        assert_eq!(
            f.properties["Metadata"],
            Value::Null,
            "Metadata belongs on the resource"
        );
        let meta = &t.resource(&f.logical_id).unwrap().metadata;
        assert_eq!(meta["BuildMethod"], "rust-cargolambda", "{}", f.logical_id);
        let code = f.code_uri.clone().unwrap();
        let bin = root
            .join(&code)
            .join("src/bin")
            .join(format!("{}.rs", f.binary));
        assert!(
            bin.exists(),
            "{}: no binary {}",
            f.logical_id,
            bin.display()
        );
        declared.push(format!("{code}/{}", f.binary));
    }
    let mut found = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let krate = krate.unwrap().path();
        // Deployable packages declare `[package.metadata.lambda]`; tools (the stand-in
        // provisioner, the bench driver) have binaries that are not functions.
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        if !manifest.contains("[package.metadata.lambda") {
            continue;
        }
        let Ok(bins) = std::fs::read_dir(krate.join("src/bin")) else {
            continue;
        };
        for bin in bins {
            let bin = bin.unwrap().path();
            let name = bin.file_stem().unwrap().to_string_lossy().into_owned();
            found.push(format!(
                "crates/{}/{name}",
                krate.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    declared.sort();
    found.sort();
    assert_eq!(
        declared, found,
        "template functions and workspace Lambda binaries differ"
    );
}

fn kebab(detail_type: &str) -> String {
    let mut out = String::new();
    for (i, c) in detail_type.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn every_function_has_events_fixtures_for_what_it_receives() {
    let root = testkit::workspace_root().join("events");
    let t = template();
    let stack = Stack::new("s");
    let rules = t.rules(&stack).unwrap();
    for f in t.functions() {
        for queue in &f.sqs_sources {
            let mut types = Vec::new();
            for rule in rules.iter().filter(|r| {
                r.targets
                    .iter()
                    .any(|x| x.logical_id.as_deref() == Some(queue))
            }) {
                types.extend(strings(&rule.pattern["detail-type"]));
            }
            assert!(
                !types.is_empty(),
                "{}: queue {queue} is fed by no rule",
                f.logical_id
            );
            for dt in types {
                for dir in ["sqs", "eventbridge"] {
                    let path = root.join(dir).join(format!("{}.json", kebab(&dt)));
                    assert!(
                        path.exists(),
                        "{}: missing fixture {}",
                        f.logical_id,
                        path.display()
                    );
                }
            }
        }
        for route in &f.http_routes {
            let wanted = route.path.replace("{id}", "*");
            let has = std::fs::read_dir(root.join("http")).unwrap().any(|e| {
                let v: Value =
                    serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap())
                        .unwrap();
                let route_key = v["routeKey"]
                    .as_str()
                    .unwrap_or_default()
                    .replace("{id}", "*");
                route_key == format!("{} {wanted}", route.method)
            });
            assert!(
                has,
                "{}: no events/http fixture for {} {}",
                f.logical_id, route.method, route.path
            );
        }
        for table in &f.stream_sources {
            // events/dynamodb/<table>-<what>.json: the stream records as Lambda delivers them.
            let prefix = format!("{}-", kebab(table));
            let has = std::fs::read_dir(root.join("dynamodb")).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&prefix)
            });
            assert!(
                has,
                "{}: no events/dynamodb/{prefix}*.json fixture for its stream",
                f.logical_id
            );
        }
        assert!(
            !f.sqs_sources.is_empty() || !f.http_routes.is_empty() || !f.stream_sources.is_empty(),
            "{} has no event source",
            f.logical_id
        );
    }
}

#[test]
fn consumer_queues_outlast_their_function_and_report_batch_item_failures() {
    let t = template();
    let stack = Stack::new("s");
    let queues = t.queues(&stack).unwrap();
    let global_timeout = t
        .root()
        .pointer("/Globals/Function/Timeout")
        .and_then(Value::as_u64)
        .unwrap();
    for f in t.functions() {
        let timeout = f.properties["Timeout"].as_u64().unwrap_or(global_timeout);
        for (name, event) in f.properties["Events"].as_object().unwrap() {
            if event["Type"] != "SQS" {
                continue;
            }
            let p = &event["Properties"];
            assert_eq!(
                strings(&p["FunctionResponseTypes"]),
                ["ReportBatchItemFailures"],
                "{}.{name}",
                f.logical_id
            );
            assert!(
                p["BatchSize"].is_u64() && p["MaximumBatchingWindowInSeconds"].is_u64(),
                "{}.{name}",
                f.logical_id
            );
            assert!(
                p["ScalingConfig"]["MaximumConcurrency"].is_u64(),
                "{}.{name}",
                f.logical_id
            );
        }
        for queue in &f.sqs_sources {
            let q = queues.iter().find(|q| &q.logical_id == queue).unwrap();
            let visibility = u64::from(q.visibility_timeout.unwrap_or(30));
            assert!(
                visibility >= 6 * timeout,
                "{queue}: visibility {visibility}s < 6 x {timeout}s"
            );
            let redrive = q
                .redrive
                .as_ref()
                .unwrap_or_else(|| panic!("{queue} has no DLQ"));
            assert!(redrive.max_receive_count >= 5);
        }
    }
}

#[test]
fn each_target_queue_admits_only_the_rules_that_target_it() {
    let t = template();
    let rules = t.rules(&Stack::new("s")).unwrap();
    for policy in t.resources_of("AWS::SQS::QueuePolicy") {
        let queue = policy.properties["Queues"][0]["Ref"]
            .as_str()
            .unwrap()
            .to_owned();
        let statement = &policy.properties["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
        let allowed: Vec<String> = match &statement["Condition"]["ArnEquals"]["aws:SourceArn"] {
            Value::Array(a) => a
                .iter()
                .map(|v| v["Fn::GetAtt"][0].as_str().unwrap().to_owned())
                .collect(),
            v => vec![v["Fn::GetAtt"][0].as_str().unwrap().to_owned()],
        };
        let mut targeting: Vec<String> = rules
            .iter()
            .filter(|r| {
                r.targets
                    .iter()
                    .any(|x| x.logical_id.as_deref() == Some(&queue))
                    || r.pattern.is_object() && queue == "RuleTargetDLQ"
            })
            .map(|r| r.logical_id.clone())
            .collect();
        let mut allowed_sorted = allowed.clone();
        allowed_sorted.sort();
        targeting.sort();
        assert_eq!(
            allowed_sorted, targeting,
            "{queue}: queue policy and rules disagree"
        );
    }
}
