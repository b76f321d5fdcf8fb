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
    check_no_wildcards(&template());
}

fn check_no_wildcards(t: &testkit::Template) {
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
    walk(t.root(), "$", &mut found);
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

/// The domain source a function publishes as, by its crate (its `CodeUri`).
fn own_source(code_uri: &str) -> &'static str {
    match code_uri.trim_end_matches('/') {
        "crates/orders" => contracts::source::ORDERS,
        "crates/fulfillment" => contracts::source::FULFILLMENT,
        "crates/support" => contracts::source::SUPPORT,
        other => panic!("function code at {other} belongs to no domain"),
    }
}

fn statements(function: &sam_template::FunctionSpec) -> Vec<Value> {
    function.properties["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn every_producer_may_put_events_only_on_the_bus_and_only_as_its_own_source() {
    check_producers(&template());
}

fn check_producers(t: &testkit::Template) {
    let producers: Vec<_> = t
        .functions()
        .into_iter()
        .filter(|f| {
            statements(f).iter().any(|s| {
                strings(&s["Action"])
                    .iter()
                    .any(|a| a == "events:PutEvents")
            })
        })
        .collect();
    let names: Vec<_> = producers.iter().map(|f| f.binary.as_str()).collect();
    assert_eq!(
        names.len(),
        3,
        "orders-api, fulfillment-events and support-api publish: {names:?}"
    );
    for f in producers {
        let source = own_source(f.code_uri.as_deref().unwrap());
        for s in statements(&f) {
            if !strings(&s["Action"])
                .iter()
                .any(|a| a.starts_with("events:"))
            {
                continue;
            }
            assert_eq!(
                s["Resource"],
                serde_json::json!({"Fn::GetAtt": ["EventBus", "Arn"]}),
                "{}",
                f.binary
            );
            assert_eq!(
                s["Condition"]["StringEquals"]["events:source"], source,
                "{}: PutEvents must be conditioned on its own source",
                f.binary
            );
        }
    }
}

#[test]
fn the_idempotency_table_grants_only_get_put_update_delete() {
    for f in template().functions() {
        for s in statements(&f) {
            if s["Resource"] == serde_json::json!({"Fn::GetAtt": ["IdempotencyTable", "Arn"]}) {
                let mut actions = strings(&s["Action"]);
                actions.sort();
                assert_eq!(
                    actions,
                    [
                        "dynamodb:DeleteItem",
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem"
                    ],
                    "{}",
                    f.binary
                );
            }
        }
    }
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
        assert!(
            !f.sqs_sources.is_empty() || !f.http_routes.is_empty(),
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
fn tables_are_on_demand_encrypted_recoverable_and_retained() {
    let t = template();
    for table in t.resources_of("AWS::DynamoDB::Table") {
        let id = &table.logical_id;
        let p = &table.properties;
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{id}");
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{id}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{id}"
        );
        assert_eq!(table.raw["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(table.raw["UpdateReplacePolicy"], "Retain", "{id}");
    }
    let idem = t
        .tables(&Stack::new("s"))
        .unwrap()
        .into_iter()
        .find(|x| x.logical_id == "IdempotencyTable")
        .unwrap();
    assert_eq!(idem.hash_key, ("id".to_owned(), "S".to_owned()));
    assert_eq!(idem.ttl_attribute.as_deref(), Some("expiration"));
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

fn mutated(from: &str, to: &str) -> testkit::Template {
    let yaml = std::fs::read_to_string(testkit::workspace_root().join("template.yaml")).unwrap();
    assert!(
        yaml.contains(from),
        "mutation target {from:?} not in template.yaml"
    );
    testkit::Template::from_yaml(&yaml.replacen(from, to, 1), "mutated.yaml").unwrap()
}

#[test]
fn the_policy_checks_catch_a_spoofable_producer_and_a_wildcard_resource() {
    let no_condition = mutated(
        "                  events:source: com.orders\n",
        "                  events:detail-type: OrderCreated\n",
    );
    assert!(
        std::panic::catch_unwind(|| check_producers(&no_condition)).is_err(),
        "missing events:source"
    );
    let spoof = mutated("events:source: com.support", "events:source: com.orders");
    assert!(
        std::panic::catch_unwind(|| check_producers(&spoof)).is_err(),
        "support publishing as orders"
    );
    let wildcard = mutated("Resource: !GetAtt IdempotencyTable.Arn", "Resource: \"*\"");
    assert!(
        std::panic::catch_unwind(|| check_no_wildcards(&wildcard)).is_err(),
        "wildcard resource"
    );
}

#[test]
fn log_groups_never_block_a_redeploy() {
    // A named log group kept by a failed first deploy makes every later create fail with
    // "already exists": CloudFormation names them, and deletes them when their create fails.
    let t = template();
    let groups: Vec<_> = t.resources_of("AWS::Logs::LogGroup").collect();
    assert!(!groups.is_empty());
    for group in groups {
        let id = &group.logical_id;
        assert_eq!(
            group.properties["LogGroupName"],
            Value::Null,
            "{id} is named"
        );
        assert_eq!(
            group.raw["DeletionPolicy"], "RetainExceptOnCreate",
            "{id}: kept on stack deletion, removed when the create that made it fails"
        );
        assert!(
            group.properties["RetentionInDays"].is_object()
                || group.properties["RetentionInDays"].is_u64(),
            "{id} keeps logs forever"
        );
    }
}

#[test]
fn no_function_reserves_concurrency_unless_asked() {
    // A fresh account's concurrency quota can be as low as 10, and Lambda keeps 100 unreserved:
    // any literal reservation fails the first deploy.
    let t = template();
    let root = t.root();
    for f in t.functions() {
        let reserved = &f.properties["ReservedConcurrentExecutions"];
        if reserved.is_null() {
            continue;
        }
        let branches = reserved["Fn::If"].as_array().unwrap_or_else(|| {
            panic!(
                "{}: ReservedConcurrentExecutions must be conditional",
                f.logical_id
            )
        });
        let condition = branches[0].as_str().unwrap();
        let parameter = branches[1]["Ref"].as_str().unwrap();
        assert_eq!(
            branches[2],
            serde_json::json!({"Ref": "AWS::NoValue"}),
            "{}",
            f.logical_id
        );
        assert_eq!(
            root["Parameters"][parameter]["Default"], 0,
            "{parameter} reserves nothing by default"
        );
        assert_eq!(
            root["Conditions"][condition],
            serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, "0"]}]}),
            "{condition} holds only when {parameter} is not 0"
        );
    }
}
