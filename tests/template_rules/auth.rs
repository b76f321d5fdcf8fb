//! Who may call (DESIGN.md section 4b): every route behind the JWT authorizer, the receipt behind
//! the staff scope, the identity provider created by default.

use serde_json::Value;
use testkit::template;

use crate::support::{mutated_yaml, strings};

fn mutated(from: &str, to: &str) -> testkit::Template {
    testkit::Template::from_yaml(&mutated_yaml(from, to), "mutated.yaml").unwrap()
}

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
