//! Policy checks on `template.yaml` that cfn-lint and checkov do not know about, judged where it
//! matters on the template as SAM expands it (what `sam deploy` creates, roles and policies SAM
//! adds included): no role reaches `*` but X-Ray's two write actions, each function reaches only
//! its own log group, queue and idempotency records, each producer publishes only its own source
//! and detail types and nobody else may; the rules speak the event contract, every consumer queue
//! has a dead-letter queue, and the stack deploys on a fresh account.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod template_support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use template_support::{Deployed, DeployedFunction, fails, get_att, mutated_yaml, strings};
use testkit::{Stack, template};

// ---------------------------------------------------------------------------------------------
// Least privilege, on the expanded template.
// ---------------------------------------------------------------------------------------------

/// The one statement allowed on `*`: X-Ray's write actions, which Lambda's active tracing needs
/// and which support no resource-level permissions (AWS's Service Authorization Reference lists
/// no resource type for `xray:PutTraceSegments` or `xray:PutTelemetryRecords`).
const XRAY_WRITE: [&str; 2] = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"];

/// Why a statement would be refused: a wildcard resource (other than X-Ray's exception), or a
/// `NotResource` / `NotAction`, which grant everything but a list.
fn statement_problem(statement: &Value) -> Option<String> {
    if statement.get("NotResource").is_some() || statement.get("NotAction").is_some() {
        return Some("NotResource/NotAction grant everything but a list".into());
    }
    let mut resources = strings(&statement["Resource"]);
    if let Some(sub) = statement["Resource"].get("Fn::Sub").and_then(Value::as_str) {
        resources.push(sub.to_owned());
    }
    if !resources.iter().any(|r| r.contains('*')) {
        return None;
    }
    let mut actions = strings(&statement["Action"]);
    actions.sort();
    let xray_exception = statement["Effect"] == "Allow"
        && actions == XRAY_WRITE
        && statement["Resource"] == "*"
        && statement.get("Condition").is_none();
    (!xray_exception).then(|| format!("resource {resources:?} for {actions:?}"))
}

/// Every role and policy of an expanded template reaches named resources only.
fn check_no_wildcards(t: &testkit::Template) {
    let mut found = Vec::new();
    for role in t.resources_of("AWS::IAM::Role") {
        let id = &role.logical_id;
        // A managed policy's statements are not in the template, so they cannot be judged: SAM's
        // AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess and SQS poller all grant `*`.
        if !strings(&role.properties["ManagedPolicyArns"]).is_empty()
            || role.properties["ManagedPolicyArns"].is_array()
                && role.properties["ManagedPolicyArns"] != json!([])
        {
            found.push(format!(
                "{id}: managed policies {}",
                role.properties["ManagedPolicyArns"]
            ));
        }
        for statement in t.role_statements(id) {
            if let Some(problem) = statement_problem(&statement) {
                found.push(format!("{id}: {problem}"));
            }
        }
    }
    for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        for policy in t.resources_of(kind) {
            for statement in policy.properties["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(problem) = statement_problem(statement) {
                    found.push(format!("{}: {problem}", policy.logical_id));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "roles reaching beyond named resources: {found:#?}"
    );
}

#[test]
fn no_role_reaches_a_wildcard_resource_as_sam_deploys_it() {
    let deployed = Deployed::product();
    check_no_wildcards(&deployed.expanded);
    // Every function runs under a role of its own, written in the template.
    let functions = deployed.functions();
    let roles: BTreeSet<_> = functions.iter().map(|f| f.role.clone()).collect();
    assert_eq!(
        roles.len(),
        functions.len(),
        "roles are shared: {functions:#?}"
    );
    for f in &functions {
        assert!(
            deployed.source.resource(&f.role).is_some(),
            "{}: role {} is SAM's, not the template's",
            f.logical_id,
            f.role
        );
    }
}

#[test]
fn the_wildcard_check_sees_what_sam_adds_and_allows_nothing_but_xray_writes() {
    // Without its own role, SAM gives the consumer a role with AWSLambdaBasicExecutionRole,
    // AWSXrayWriteOnlyAccess and the SQS poller policy.
    let sam_role = Deployed::from_yaml(&mutated_yaml(
        "      Role: !GetAtt OrdersEventsRole.Arn\n",
        "",
    ));
    assert!(
        sam_role
            .expanded
            .resource("OrdersEventsFunctionRole")
            .is_some(),
        "SAM generated no role"
    );
    assert!(fails(check_no_wildcards, &sam_role.expanded), "SAM's role");

    let wildcard = Deployed::from_yaml(&mutated_yaml(
        "Resource: !GetAtt IdempotencyTable.Arn",
        "Resource: \"*\"",
    ));
    assert!(
        fails(check_no_wildcards, &wildcard.expanded),
        "a wildcard resource"
    );

    let wider_xray = Deployed::from_yaml(&mutated_yaml(
        "Action: [xray:PutTraceSegments, xray:PutTelemetryRecords]",
        "Action: [xray:PutTraceSegments, xray:PutTelemetryRecords, xray:GetTraceSummaries]",
    ));
    assert!(
        fails(check_no_wildcards, &wider_xray.expanded),
        "X-Ray's exception widened"
    );
}

/// Statements of `f` that allow an action of `service` (e.g. `sqs:`).
fn allowing<'a>(f: &'a DeployedFunction, service: &str) -> Vec<&'a Value> {
    f.statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with(service)))
        .collect()
}

#[test]
fn each_function_writes_only_its_own_log_group_and_reads_only_its_own_queue() {
    for f in Deployed::product().functions() {
        let id = &f.logical_id;
        let group = f
            .log_group
            .as_deref()
            .unwrap_or_else(|| panic!("{id}: no log group"));
        let logs = allowing(&f, "logs:");
        assert!(!logs.is_empty(), "{id} cannot write its logs");
        for s in logs {
            assert_eq!(s["Resource"], get_att(group, "Arn"), "{id}");
            let mut actions = strings(&s["Action"]);
            actions.sort();
            assert_eq!(
                actions,
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                "{id}"
            );
        }
        let sqs = allowing(&f, "sqs:");
        assert_eq!(
            sqs.is_empty(),
            f.queues.is_empty(),
            "{id}: reads queues {:?}",
            f.queues
        );
        for s in sqs {
            let queue = template_support::logical_of(&s["Resource"]).unwrap();
            assert!(
                f.queues.contains(&queue),
                "{id} reads {queue}, which does not feed it"
            );
            let mut actions = strings(&s["Action"]);
            actions.sort();
            assert_eq!(
                actions,
                [
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage"
                ],
                "{id}"
            );
        }
    }
}

/// Every function reaches only its own idempotency records: the partition keys it may touch start
/// with its `IDEMPOTENCY_KEY_PREFIX`, which is its binary's name.
fn check_idempotency_records(deployed: &Deployed) {
    for f in deployed.functions() {
        let id = &f.logical_id;
        assert_eq!(
            f.environment.get("IDEMPOTENCY_KEY_PREFIX"),
            Some(&json!(f.binary)),
            "{id}: IDEMPOTENCY_KEY_PREFIX is its binary's name"
        );
        let on_records: Vec<_> = f
            .statements
            .iter()
            .filter(|s| s["Resource"] == get_att("IdempotencyTable", "Arn"))
            .collect();
        assert!(
            !on_records.is_empty(),
            "{id} cannot reach its idempotency records"
        );
        for s in on_records {
            for action in strings(&s["Action"]) {
                assert!(
                    [
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:GetItem"
                    ]
                    .contains(&action.as_str()),
                    "{id}: {action} on the idempotency table (claim, complete, release, read back)"
                );
            }
            let condition = &s["Condition"];
            assert_eq!(
                condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                json!([format!("{}#*", f.binary)]),
                "{id}: records outside its own prefix"
            );
            assert_eq!(condition["Null"]["dynamodb:LeadingKeys"], "false", "{id}");
        }
    }
}

#[test]
fn each_function_reaches_only_its_own_idempotency_records() {
    let deployed = Deployed::product();
    check_idempotency_records(&deployed);
    let other_prefix = Deployed::from_yaml(&mutated_yaml(
        "dynamodb:LeadingKeys: [\"support-events#*\"]",
        "dynamodb:LeadingKeys: [\"orders-events#*\"]",
    ));
    assert!(
        fails(check_idempotency_records, &other_prefix),
        "another function's prefix"
    );
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

/// The detail types a source publishes, by the contract.
fn detail_types_of(source: &str) -> Vec<String> {
    let mut types: Vec<String> = contracts::ROUTES
        .iter()
        .filter(|(s, _)| *s == source)
        .map(|(_, dt)| (*dt).to_owned())
        .collect();
    types.sort();
    types
}

fn sorted(v: &Value) -> Vec<String> {
    let mut s = strings(v);
    s.sort();
    s
}

/// Producers may put events only on the bus, only with their own source and its detail types.
fn check_producers(deployed: &Deployed) {
    let mut producers = Vec::new();
    for f in deployed.functions() {
        let publishing = allowing(&f, "events:");
        if publishing.is_empty() {
            continue;
        }
        producers.push(f.binary.clone());
        let source = own_source(&f.code_uri);
        for s in publishing {
            let id = &f.logical_id;
            assert_eq!(strings(&s["Action"]), ["events:PutEvents"], "{id}");
            assert_eq!(s["Resource"], get_att("EventBus", "Arn"), "{id}");
            let all = &s["Condition"]["ForAllValues:StringEquals"];
            assert_eq!(
                sorted(&all["events:source"]),
                [source],
                "{id}: its own source only"
            );
            assert_eq!(
                sorted(&all["events:detail-type"]),
                detail_types_of(source),
                "{id}: the detail types {source} publishes"
            );
            // ForAllValues holds for a request without the key: the Null guard refuses it.
            for key in ["events:source", "events:detail-type"] {
                assert_eq!(
                    s["Condition"]["Null"][key], "false",
                    "{id}: Null guard on {key}"
                );
            }
        }
    }
    producers.sort();
    assert_eq!(
        producers,
        ["fulfillment-events", "orders-api", "support-api"]
    );
}

#[test]
fn every_producer_may_put_events_only_on_the_bus_only_as_its_own_source_and_types() {
    check_producers(&Deployed::product());
}

#[test]
fn the_producer_check_catches_a_spoofed_source_a_foreign_type_and_a_missing_guard() {
    let spoof = Deployed::from_yaml(&mutated_yaml(
        "events:source: [com.support]\n",
        "events:source: [com.orders]\n",
    ));
    assert!(
        fails(check_producers, &spoof),
        "support publishing as orders"
    );
    let foreign_type = Deployed::from_yaml(&mutated_yaml(
        "events:detail-type: [OrderCreated]",
        "events:detail-type: [OrderCreated, OrderShipped]",
    ));
    assert!(
        fails(check_producers, &foreign_type),
        "orders publishing OrderShipped"
    );
    let unguarded = Deployed::from_yaml(&mutated_yaml(
        "                    events:source: \"false\"\n",
        "",
    ));
    assert!(
        fails(check_producers, &unguarded),
        "no Null guard on events:source"
    );
}

/// The bus's own policy denies publishing as a source to every principal but the roles granted
/// that source.
fn check_bus_policy(deployed: &Deployed) {
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in deployed.functions() {
        if !allowing(&f, "events:").is_empty() {
            granted
                .entry(own_source(&f.code_uri).to_owned())
                .or_default()
                .insert(f.role.clone());
        }
    }
    for source in contracts::source::ALL {
        let denies: Vec<_> = deployed
            .expanded
            .resources_of("AWS::Events::EventBusPolicy")
            .map(|p| &p.properties)
            .filter(|p| p["EventBusName"] == template_support::reference("EventBus"))
            .map(|p| &p["Statement"])
            .filter(|s| {
                s["Effect"] == "Deny"
                    && s["Principal"] == "*"
                    && strings(&s["Action"]) == ["events:PutEvents"]
                    && sorted(&s["Condition"]["ForAnyValue:StringEquals"]["events:source"])
                        == [source]
            })
            .collect();
        assert_eq!(denies.len(), 1, "{source}: one Deny for other publishers");
        let allowed: BTreeSet<String> = denies[0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arn| template_support::logical_of(arn).unwrap())
            .collect();
        assert_eq!(
            Some(&allowed),
            granted.get(source),
            "{source}: the bus lets exactly the roles granted it publish it"
        );
    }
}

#[test]
fn no_other_principal_may_publish_as_a_domain() {
    check_bus_policy(&Deployed::product());
    let open = Deployed::from_yaml(&mutated_yaml(
        "aws:PrincipalArn: [!GetAtt OrdersApiRole.Arn]",
        "aws:PrincipalArn: [!GetAtt OrdersApiRole.Arn, !GetAtt OrdersEventsRole.Arn]",
    ));
    assert!(
        fails(check_bus_policy, &open),
        "a role that may not publish orders is let through"
    );
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
fn tables_are_on_demand_encrypted_recoverable_retained_and_protected() {
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
        // Retain, not RetainExceptOnCreate: a failed create could not delete a table under
        // deletion protection, and the rollback would fail. Tables are CloudFormation-named, so
        // one kept by a failed create blocks nothing.
        assert_eq!(table.raw["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(table.raw["UpdateReplacePolicy"], "Retain", "{id}");
        assert_eq!(p["DeletionProtectionEnabled"], true, "{id}");
        assert_eq!(p["TableName"], Value::Null, "{id}");
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

#[test]
fn log_groups_never_block_a_redeploy() {
    // A named log group kept by a failed first deploy makes every later create fail with
    // "already exists": CloudFormation names them, and deletes them when their create fails.
    let t = testkit::expanded_template();
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
    let t = testkit::expanded_template();
    let root = t.root();
    for f in t.resources_of("AWS::Lambda::Function") {
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

#[test]
fn dead_letter_queues_are_kept_and_take_only_their_own_queues_redrive() {
    let t = template();
    let stack = Stack::new("s");
    let queues = t.queues(&stack).unwrap();
    let mut dead_letter_queues: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for q in &queues {
        if let Some(redrive) = &q.redrive {
            dead_letter_queues
                .entry(redrive.dead_letter_queue.clone())
                .or_default()
                .push(q.arn.clone());
            // A consumer's queue keeps a message as long as SQS allows: an outage of days
            // loses nothing.
            let retention =
                &t.resource(&q.logical_id).unwrap().properties["MessageRetentionPeriod"];
            assert_eq!(retention, 1_209_600, "{}", q.logical_id);
        }
    }
    for rule in t.rules(&stack).unwrap() {
        for target in t.resource(&rule.logical_id).unwrap().properties["Targets"]
            .as_array()
            .unwrap()
        {
            if let Some(dlq) = template_support::logical_of(&target["DeadLetterConfig"]["Arn"]) {
                dead_letter_queues.entry(dlq).or_default();
            }
        }
    }
    assert_eq!(dead_letter_queues.len(), 4, "{dead_letter_queues:?}");
    for (dlq, mut sources) in dead_letter_queues {
        let r = t.resource(&dlq).unwrap();
        assert_eq!(
            r.raw["DeletionPolicy"], "RetainExceptOnCreate",
            "{dlq}: kept on stack deletion"
        );
        assert_eq!(r.raw["UpdateReplacePolicy"], "Retain", "{dlq}");
        assert_eq!(r.properties["MessageRetentionPeriod"], 1_209_600, "{dlq}");
        let allow = &r.properties["RedriveAllowPolicy"];
        if sources.is_empty() {
            // An EventBridge target's DLQ: no queue redrives into it.
            assert_eq!(allow["redrivePermission"], "denyAll", "{dlq}");
            continue;
        }
        assert_eq!(allow["redrivePermission"], "byQueue", "{dlq}");
        let mut allowed: Vec<String> = allow["sourceQueueArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arn| t.resolve_string(arn, &stack, &dlq).unwrap())
            .collect();
        allowed.sort();
        sources.sort();
        assert_eq!(
            allowed, sources,
            "{dlq} takes redrive from exactly its queues"
        );
    }
}
