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

// ---------------------------------------------------------------------------------------------
// Who may call (DESIGN.md section 4b): every route behind the JWT authorizer, the receipt behind
// the staff scope, the identity provider created by default.
// ---------------------------------------------------------------------------------------------

/// Every `HttpApi` event of every function: (function, method, path, event properties).
fn http_routes(t: &testkit::Template) -> Vec<(String, String, String, Value)> {
    let mut routes = Vec::new();
    for function in t.functions() {
        for (_, event) in function.properties["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if event["Type"] == "HttpApi" {
                let p = event["Properties"].clone();
                routes.push((
                    function.logical_id.clone(),
                    p["Method"].as_str().unwrap_or("ANY").to_uppercase(),
                    p["Path"].as_str().unwrap_or("/").to_owned(),
                    p,
                ));
            }
        }
    }
    routes
}

/// The authorizer a route ends up with (its own, else its API's default) and that API's `Auth`.
fn effective_authorizer(t: &testkit::Template, route: &Value) -> (Option<String>, Value) {
    let api_id = route["ApiId"]["Ref"].as_str().expect(
        "every route names its HttpApi with ApiId: !Ref (the implicit API has no authorizer)",
    );
    let api = t
        .resource(api_id)
        .unwrap_or_else(|| panic!("ApiId {api_id} is not a resource"));
    assert_eq!(api.kind, "AWS::Serverless::HttpApi", "{api_id}");
    let auth = api.properties["Auth"].clone();
    let name = route["Auth"]["Authorizer"]
        .as_str()
        .or_else(|| auth["DefaultAuthorizer"].as_str())
        .map(str::to_owned);
    (name, auth)
}

fn check_every_route_has_a_jwt_authorizer(t: &testkit::Template) {
    let routes = http_routes(t);
    assert!(routes.len() >= 5, "the five routes of the API: {routes:?}");
    for (function, method, path, route) in &routes {
        let (name, auth) = effective_authorizer(t, route);
        let name = name.unwrap_or_else(|| panic!("{function}: {method} {path} has no authorizer"));
        assert_ne!(name, "NONE", "{function}: {method} {path} is open");
        let authorizer = &auth["Authorizers"][&name];
        assert!(
            authorizer["JwtConfiguration"].is_object(),
            "{method} {path}: {name} is not a JWT authorizer"
        );
        assert_eq!(
            authorizer["IdentitySource"], "$request.header.Authorization",
            "{method} {path}: {name} reads the bearer token"
        );
        for field in ["issuer", "audience"] {
            assert!(
                !authorizer["JwtConfiguration"][field].is_null(),
                "{name}: no {field}"
            );
        }
    }
}

fn check_no_route_is_open(t: &testkit::Template) {
    fn walk(v: &Value, path: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if (k == "Authorizer" || k == "DefaultAuthorizer") && child == "NONE" {
                        found.push(format!("{path}.{k}"));
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
    assert!(
        found.is_empty(),
        "open routes (Authorizer: NONE) at {found:?}"
    );
    assert!(
        t.root().pointer("/Globals/HttpApi/Auth").is_none()
            || t.root()["Globals"]["HttpApi"]["Auth"]["DefaultAuthorizer"] != "NONE"
    );
}

fn check_the_receipt_requires_the_staff_scope(t: &testkit::Template) {
    let staff_scope = serde_json::json!({ "Ref": "StaffScope" });
    assert_eq!(
        t.root()["Parameters"]["StaffScope"]["Default"],
        platform::auth::DEFAULT_STAFF_SCOPE,
        "the template's staff scope is the one the handlers check by default"
    );
    let routes = http_routes(t);
    let (function, _, _, receipt) = routes
        .iter()
        .find(|(_, m, p, _)| m == "POST" && p == "/returns/{id}/received")
        .expect("POST /returns/{id}/received");
    assert_eq!(
        receipt["Auth"]["AuthorizationScopes"],
        serde_json::json!([staff_scope]),
        "the receipt requires exactly the staff scope"
    );
    // Defence in depth: the handler is told the same scope.
    let handler = t
        .functions()
        .into_iter()
        .find(|f| &f.logical_id == function)
        .unwrap();
    assert_eq!(
        handler.environment[platform::auth::STAFF_SCOPE_ENV],
        staff_scope,
        "{function} checks the route's scope"
    );
    // Every other route is for customers: it must not demand the staff scope.
    for (_, method, path, route) in &routes {
        if path != "/returns/{id}/received" {
            assert!(
                route["Auth"]["AuthorizationScopes"].is_null(),
                "{method} {path} must not require a scope customers cannot get"
            );
        }
    }
}

#[test]
fn every_route_has_a_jwt_authorizer_reading_the_bearer_token() {
    check_every_route_has_a_jwt_authorizer(&template());
}

#[test]
fn no_route_is_open() {
    check_no_route_is_open(&template());
}

#[test]
fn the_receipt_route_requires_the_staff_scope_and_its_handler_knows_it() {
    check_the_receipt_requires_the_staff_scope(&template());
}

#[test]
fn the_stack_creates_its_identity_provider_and_only_the_warehouse_client_gets_the_staff_scope() {
    let t = template();
    let root = t.root();
    assert_eq!(root["Parameters"]["JwtIssuer"]["Default"], "");
    assert!(
        root["Rules"]["ExistingProviderNamesItsAudiences"]["Assertions"].is_array(),
        "an existing provider must come with its audiences"
    );
    assert_eq!(
        root["Conditions"]["CreateUserPool"],
        serde_json::json!({ "Fn::Equals": [{ "Ref": "JwtIssuer" }, ""] })
    );
    let cognito: Vec<_> = t
        .resources()
        .filter(|r| r.kind.starts_with("AWS::Cognito::"))
        .collect();
    assert!(!cognito.is_empty());
    for r in &cognito {
        assert_eq!(
            r.raw["Condition"], "CreateUserPool",
            "{}: an existing provider means no Cognito resources",
            r.logical_id
        );
    }
    let clients: Vec<_> = t.resources_of("AWS::Cognito::UserPoolClient").collect();
    assert_eq!(clients.len(), 2, "a customer client and a warehouse client");
    let staff_scope = serde_json::json!([{ "Ref": "StaffScope" }]);
    let (warehouse, customer): (Vec<_>, Vec<_>) = clients
        .into_iter()
        .partition(|c| c.properties["AllowedOAuthScopes"] == staff_scope);
    let (warehouse, customer) = (&warehouse[0].properties, &customer[0].properties);
    assert_eq!(warehouse["GenerateSecret"], true, "confidential");
    assert_eq!(
        warehouse["AllowedOAuthFlows"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(customer["GenerateSecret"], false, "public");
    assert!(
        customer["AllowedOAuthScopes"].is_null() && customer["AllowedOAuthFlows"].is_null(),
        "the customers' client can never obtain a custom scope"
    );
    let flows = strings(&customer["ExplicitAuthFlows"]);
    assert!(
        flows.contains(&"ALLOW_USER_SRP_AUTH".to_owned()),
        "{flows:?}"
    );
    assert!(
        !flows.iter().any(|f| f.contains("PASSWORD")),
        "no plain-password flows: {flows:?}"
    );
    let group = t
        .resources_of("AWS::Cognito::UserPoolGroup")
        .next()
        .expect("the staff group");
    assert_eq!(
        group.properties["GroupName"],
        platform::auth::WAREHOUSE_GROUP
    );
    for output in [
        "JwtIssuerUrl",
        "UserPoolId",
        "CustomerClientId",
        "WarehouseClientId",
        "TokenEndpoint",
    ] {
        assert!(root["Outputs"][output].is_object(), "output {output}");
    }
}

#[test]
fn the_authorization_checks_catch_an_open_route_and_a_receipt_without_the_scope() {
    let open = mutated(
        "            Path: /orders\n            Auth:\n              Authorizer: CommerceJwt\n",
        "            Path: /orders\n            Auth:\n              Authorizer: NONE\n",
    );
    assert!(
        std::panic::catch_unwind(|| check_no_route_is_open(&open)).is_err(),
        "Authorizer: NONE"
    );
    assert!(
        std::panic::catch_unwind(|| check_every_route_has_a_jwt_authorizer(&open)).is_err(),
        "a route without a JWT authorizer"
    );
    // No default authorizer, and one route without its own: that route would be open.
    let yaml = std::fs::read_to_string(testkit::workspace_root().join("template.yaml"))
        .unwrap()
        .replacen("        DefaultAuthorizer: CommerceJwt\n", "", 1)
        .replacen(
            "            Path: /orders/{id}\n            Auth:\n              Authorizer: CommerceJwt\n",
            "            Path: /orders/{id}\n",
            1,
        );
    let no_default = testkit::Template::from_yaml(&yaml, "mutated.yaml").unwrap();
    assert!(
        std::panic::catch_unwind(|| check_every_route_has_a_jwt_authorizer(&no_default)).is_err(),
        "a route without an authorizer of its own and no default"
    );
    let unscoped = mutated("              AuthorizationScopes: [!Ref StaffScope]\n", "");
    assert!(
        std::panic::catch_unwind(|| check_the_receipt_requires_the_staff_scope(&unscoped)).is_err(),
        "receipt without the staff scope"
    );
}
