//! Least privilege, on the template as SAM expands it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::support::{
    Deployed, DeployedFunction, fails, get_att, logical_of, mutated_yaml, reference, strings,
};

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
        let (sends, reads): (Vec<_>, Vec<_>) = sqs
            .into_iter()
            .partition(|s| strings(&s["Action"]) == ["sqs:SendMessage"]);
        assert_eq!(
            reads.is_empty(),
            f.queues.is_empty(),
            "{id}: reads queues {:?}",
            f.queues
        );
        for s in reads {
            let queue = logical_of(&s["Resource"]).unwrap();
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
        // The only queue a function writes to is its event sources' on-failure destination.
        for s in &sends {
            let queue = logical_of(&s["Resource"]).unwrap();
            assert!(
                f.on_failure.contains(&queue),
                "{id} sends to {queue}, which is not its on-failure destination"
            );
        }
        assert_eq!(
            sends.len(),
            f.on_failure.len(),
            "{id}: on-failure destinations"
        );
        // A relay reads its own table's stream, nothing else of DynamoDB Streams.
        let stream_actions = f
            .statements
            .iter()
            .filter(|s| {
                strings(&s["Action"])
                    .iter()
                    .any(|a| a == "dynamodb:GetRecords")
            })
            .collect::<Vec<_>>();
        assert_eq!(stream_actions.len(), f.streams.len(), "{id}: stream reads");
        for s in stream_actions {
            let table = logical_of(&s["Resource"]).unwrap();
            assert!(f.streams.contains(&table), "{id} reads {table}'s stream");
            assert_eq!(s["Resource"], get_att(&table, "StreamArn"), "{id}");
        }
    }
}

/// Every function reaches only its own idempotency records: the partition keys it may touch start
/// with its `IDEMPOTENCY_KEY_PREFIX`, which is its binary's name.
fn check_idempotency_records(deployed: &Deployed) {
    for f in deployed.functions() {
        let id = &f.logical_id;
        let on_records: Vec<_> = f
            .statements
            .iter()
            .filter(|s| s["Resource"] == get_att("IdempotencyTable", "Arn"))
            .collect();
        if !f.uses_idempotency() {
            assert!(on_records.is_empty(), "{id} needs no idempotency records");
            continue;
        }
        assert_eq!(
            f.environment.get("IDEMPOTENCY_KEY_PREFIX"),
            Some(&json!(f.binary)),
            "{id}: IDEMPOTENCY_KEY_PREFIX is its binary's name"
        );
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
    // The HTTP APIs never publish: their facts go out through the outbox relays.
    assert_eq!(
        producers,
        [
            "fulfillment-events",
            "orders-outbox-relay",
            "support-outbox-relay"
        ]
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
            .filter(|p| p["EventBusName"] == reference("EventBus"))
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
            .map(|arn| logical_of(arn).unwrap())
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
        "aws:PrincipalArn: [!GetAtt OrdersOutboxRelayRole.Arn]",
        "aws:PrincipalArn: [!GetAtt OrdersOutboxRelayRole.Arn, !GetAtt OrdersEventsRole.Arn]",
    ));
    assert!(
        fails(check_bus_policy, &open),
        "a role that may not publish orders is let through"
    );
}
