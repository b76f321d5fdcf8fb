//! Every fixture in `events/` parses as the shape Lambda delivers, and every bad fixture fails
//! exactly where it is meant to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::path::{Path, PathBuf};

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use contracts::{AnyEvent, ParseError};
use serde_json::Value;

fn events_dir() -> PathBuf {
    testkit::workspace_root().join("events")
}

fn files(sub: &str) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(events_dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in events/{sub}");
    out
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_envelope(envelope: EventBridgeEvent<Value>) -> Result<AnyEvent, ParseError> {
    AnyEvent::parse(&envelope.source, &envelope.detail_type, envelope.detail)
}

#[test]
fn every_fixture_folder_is_known() {
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ["eventbridge", "sqs", "http", "dynamodb", "bad"].contains(&name.as_str()),
            "events/{name} is not parsed by any test"
        );
    }
}

#[test]
fn bare_eventbridge_fixtures_parse_into_their_contract_type() {
    let paths = files("eventbridge");
    assert_eq!(
        paths.len(),
        contracts::detail_type::ALL.len(),
        "one per detail type"
    );
    for path in paths {
        let envelope: EventBridgeEvent<Value> = read(&path);
        let detail_type = envelope.detail_type.clone();
        let event = parse_envelope(envelope).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(event.route().1, detail_type);
    }
}

#[test]
fn sqs_fixtures_carry_eventbridge_events_in_their_bodies() {
    let paths = files("sqs");
    assert_eq!(
        paths.len(),
        contracts::detail_type::ALL.len(),
        "one per detail type"
    );
    for path in paths {
        let batch: SqsEvent = read(&path);
        assert!(!batch.records.is_empty(), "{}", path.display());
        for record in batch.records {
            assert!(record.message_id.is_some());
            let body = record.body.unwrap();
            let envelope: EventBridgeEvent<Value> = serde_json::from_str(&body).unwrap();
            parse_envelope(envelope).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[tokio::test]
async fn dynamodb_fixtures_are_stream_records_whose_facts_the_relays_publish() {
    // events/dynamodb/<table>-<fact>.json: one fact each, published by its table's relay.
    let mut seen = Vec::new();
    for path in files("dynamodb") {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let payload: Value = read(&path);
        let _: aws_lambda_events::dynamodb::Event = serde_json::from_value(payload.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let publisher = eventing::InMemoryPublisher::new();
        let relay = if name.starts_with("orders-table-") {
            orders::outbox_relay(std::sync::Arc::new(publisher.clone()))
        } else {
            assert!(name.starts_with("support-table-"), "{name}: which table?");
            support::outbox_relay(std::sync::Arc::new(publisher.clone()))
        };
        let answer = relay.handle_payload(payload, None).await.unwrap();
        assert_eq!(
            answer["batchItemFailures"],
            serde_json::json!([]),
            "{name}: {answer}"
        );
        let published = publisher.published();
        assert_eq!(published.len(), 1, "{name}");
        let fact = published[0].detail_type.clone();
        let kebab: String = fact
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let dash = (i > 0 && c.is_ascii_uppercase()).then_some('-');
                dash.into_iter()
                    .chain(std::iter::once(c.to_ascii_lowercase()))
            })
            .collect();
        assert!(name.ends_with(&kebab), "{name} carries {fact}");
        seen.push(fact);
    }
    seen.sort();
    assert_eq!(seen, ["OrderCreated", "ReturnReceived", "ReturnRequested"]);
}

/// The claims API Gateway's JWT authorizer passed with a fixture (`None`: no authorizer ran).
fn jwt(request: &ApiGatewayV2httpRequest) -> Option<&ApiGatewayRequestAuthorizerJwtDescription> {
    request.request_context.authorizer.as_ref()?.jwt.as_ref()
}

#[test]
fn http_fixtures_carry_claims_as_api_gateway_sends_them() {
    for path in files("http") {
        let request: ApiGatewayV2httpRequest = read(&path);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let jwt = jwt(&request).unwrap_or_else(|| panic!("{name}: no authorizer claims"));
        // Every claim is a string; the token's issuer and expiry are there, as Cognito sets them.
        for claim in ["sub", "iss", "exp", "client_id", "token_use"] {
            assert!(jwt.claims.contains_key(claim), "{name}: no {claim} claim");
        }
        let caller = platform::auth::Caller::from_jwt(jwt).unwrap();
        if name == "post-return-received.json" {
            assert_eq!(
                jwt.scopes.as_deref(),
                Some(&[platform::auth::DEFAULT_STAFF_SCOPE.to_owned()][..]),
                "{name}"
            );
            assert!(caller.has_scope(platform::auth::DEFAULT_STAFF_SCOPE));
        } else {
            assert_eq!(caller.subject(), "456", "{name}: customer 456");
            assert!(
                !caller.has_scope(platform::auth::DEFAULT_STAFF_SCOPE),
                "{name}"
            );
        }
    }
}

#[test]
fn http_fixtures_are_api_gateway_v2_requests() {
    for path in files("http") {
        let request: ApiGatewayV2httpRequest = read(&path);
        assert_eq!(
            request.version.as_deref(),
            Some("2.0"),
            "{}",
            path.display()
        );
        let method = request.request_context.http.method.as_str();
        if method == "POST" && request.raw_path.as_deref() != Some("/returns/RET-5f1c/received") {
            assert!(
                request.headers.contains_key("idempotency-key"),
                "{}",
                path.display()
            );
            let body = request.body.unwrap();
            serde_json::from_str::<Value>(&body).unwrap();
        }
        if method == "GET" {
            assert!(
                request.path_parameters.contains_key("id"),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn bad_fixtures_fail_where_they_are_meant_to() {
    let bad = |name: &str| events_dir().join("bad").join(name);
    let mut covered = 0;

    let unknown: EventBridgeEvent<Value> = read(&bad("eventbridge-unknown-detail-type.json"));
    assert!(matches!(
        parse_envelope(unknown),
        Err(ParseError::UnknownType { .. })
    ));
    covered += 1;

    let wrong: EventBridgeEvent<Value> = read(&bad("eventbridge-wrong-field-types.json"));
    let err = parse_envelope(wrong).unwrap_err();
    assert_eq!(err.error_type(), "InvalidEventDetail");
    covered += 1;

    let no_key: EventBridgeEvent<Value> = read(&bad("eventbridge-missing-idempotency-key.json"));
    let err = parse_envelope(no_key).unwrap_err().to_string();
    assert!(err.contains("idempotency-key"), "{err}");
    covered += 1;

    let malformed: ApiGatewayV2httpRequest = read(&bad("http-post-order-malformed-json.json"));
    assert!(serde_json::from_str::<Value>(&malformed.body.unwrap()).is_err());
    covered += 1;

    let keyless: ApiGatewayV2httpRequest =
        read(&bad("http-post-order-missing-idempotency-key.json"));
    assert!(!keyless.headers.contains_key("idempotency-key"));
    covered += 1;

    let types: ApiGatewayV2httpRequest = read(&bad("http-post-order-wrong-field-types.json"));
    let body: Value = serde_json::from_str(&types.body.unwrap()).unwrap();
    assert!(body["items"][0]["quantity"].is_string() && body["items"][0]["unit-price"].is_number());
    covered += 1;

    let anonymous: ApiGatewayV2httpRequest = read(&bad("http-post-order-no-claims.json"));
    assert!(anonymous.request_context.authorizer.is_none());
    let err = platform::http::ApiRequest::from_apigw(anonymous)
        .unwrap()
        .caller()
        .unwrap_err();
    assert_eq!(err.status, 401);
    covered += 1;

    let customer: ApiGatewayV2httpRequest =
        read(&bad("http-post-return-received-customer-token.json"));
    assert_eq!(
        customer.raw_path.as_deref(),
        Some("/returns/RET-5f1c/received")
    );
    let err = platform::http::ApiRequest::from_apigw(customer)
        .unwrap()
        .require_scope(platform::auth::DEFAULT_STAFF_SCOPE)
        .unwrap_err();
    assert_eq!(err.status, 403);
    covered += 1;

    let batch: SqsEvent = read(&bad("sqs-mixed-batch.json"));
    let outcomes: Vec<_> = batch
        .records
        .iter()
        .map(|r| {
            serde_json::from_str::<EventBridgeEvent<Value>>(r.body.as_deref().unwrap())
                .map_err(|_| "malformed")
                .and_then(|e| parse_envelope(e).map_err(|e| e.error_type()))
                .map(|_| "ok")
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            Ok("ok"),
            Err("malformed"),
            Err("UnknownEventType"),
            Ok("ok")
        ]
    );
    covered += 1;

    assert_eq!(
        covered,
        files("bad").len(),
        "every bad fixture has an expectation"
    );
}
