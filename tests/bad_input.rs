//! Issue #8, bad input: property-based tests of the event and HTTP entry points with the real
//! consumers and APIs over the in-memory adapters.
//!
//! - Every bad SQS record (not JSON, not an envelope, unknown event, a detail that breaks the
//!   contract: negative or huge quantities, malformed or huge amounts, unknown currencies,
//!   10,000-item orders, deep nesting, oversized bodies) is a batch-item failure of that record
//!   only, with a `record failed` log line naming its message id and error type; nothing panics
//!   (a caught panic would show as `failed:Panicked`).
//! - Every bad HTTP request is a 4xx with a JSON `{"error": {"type", "message"}}` body, never a
//!   5xx: arbitrary bytes, invalid UTF-8, oversized bodies, deep nesting, huge numbers, negative
//!   quantities, unknown currencies, 10,000-item orders, arbitrary routes and API Gateway events.
//!
//! Cases per property: `PROPTEST_CASES` (default 256 here); the longer run is documented in
//! `fuzz/README.md` together with the `cargo fuzz` targets of the same parsers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use eventing::{Consumer, InMemoryPublisher, RecordOutcome};
use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
use platform::http::{ApiRequest, ApiResponse, MAX_BODY_BYTES};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The functions, over in-memory adapters, and a log capture.

struct Functions {
    consumers: Vec<(&'static str, Consumer)>,
    orders_api: orders::api::OrdersApi,
    support_api: support::api::SupportApi,
}

fn idempotency(operation: &str) -> Idempotency {
    Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new(operation))
}

fn functions() -> &'static Functions {
    static FUNCTIONS: OnceLock<Functions> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let order_store = Arc::new(orders::store::InMemoryOrderStore::default());
        let support_store = Arc::new(support::store::InMemorySupportStore::default());
        Functions {
            consumers: vec![
                (
                    "fulfillment-events",
                    Consumer::new(
                        fulfillment::handler::FulfillmentHandler::new(Arc::new(
                            fulfillment::store::InMemoryFulfillmentStore::default(),
                        )),
                        idempotency("fulfil"),
                        InMemoryPublisher::new(),
                    ),
                ),
                (
                    "orders-events",
                    Consumer::new(
                        orders::projection::OrderStatusProjection::new(order_store.clone()),
                        idempotency("apply-status"),
                        InMemoryPublisher::new(),
                    ),
                ),
                (
                    "support-events",
                    Consumer::new(
                        support::projection::ShippedOrdersProjection::new(support_store.clone()),
                        idempotency("record-shipped"),
                        InMemoryPublisher::new(),
                    ),
                ),
            ],
            orders_api: orders::api::OrdersApi::new(idempotency("create-order"), order_store),
            support_api: support::api::SupportApi::new(
                idempotency("request-return"),
                support_store,
                platform::auth::DEFAULT_STAFF_SCOPE,
            ),
        }
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Every WARN-or-worse JSON log line of this test binary that names a message id, by that id.
fn logs() -> &'static Mutex<HashMap<String, Vec<Value>>> {
    static LOGS: OnceLock<Mutex<HashMap<String, Vec<Value>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Lines;
        impl Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let text = String::from_utf8_lossy(buf);
                let mut logs = LOGS.get().unwrap().lock().unwrap();
                for line in text.lines() {
                    let Ok(line) = serde_json::from_str::<Value>(line) else {
                        continue;
                    };
                    if let Some(id) = line["fields"]["message_id"].as_str() {
                        logs.entry(id.to_owned()).or_default().push(line.clone());
                    }
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::WARN)
            .with_writer(|| Lines)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        Mutex::new(HashMap::new())
    })
}

/// The consumer's `record failed` line for `message_id`.
fn failure_line(message_id: &str) -> Option<Value> {
    logs()
        .lock()
        .unwrap()
        .get(message_id)?
        .iter()
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("record failed"))
        })
        .cloned()
}

// ---------------------------------------------------------------------------------------------
// Events.

/// The outcome each consumer gives `body` as a one-record SQS batch, with the record's error.
fn deliver(body: &str) -> Vec<(&'static str, String, RecordOutcome, Option<String>)> {
    logs();
    runtime().block_on(async {
        let mut out = Vec::new();
        for (name, consumer) in &functions().consumers {
            let message_id = uuid::Uuid::new_v4().to_string();
            let mut message = SqsMessage::default();
            message.message_id = Some(message_id.clone());
            message.body = Some(body.to_owned());
            let mut batch = SqsEvent::default();
            batch.records.push(message);
            let report = consumer.process_sqs(batch, None).await;
            assert_eq!(report.records.len(), 1);
            let record = &report.records[0];
            assert_eq!(
                report.failed_message_ids().len(),
                usize::from(record.is_failure())
            );
            out.push((*name, message_id, record.outcome, record.error.clone()));
        }
        out
    })
}

/// `body` must be a logged batch-item failure of every consumer, of a type in `expected` (any
/// failure type when empty), and never a caught panic.
fn assert_refused(body: &str, expected: &[&str]) -> Result<(), TestCaseError> {
    for (consumer, message_id, outcome, error) in deliver(body) {
        let RecordOutcome::Failed(kind) = outcome else {
            return Err(TestCaseError::fail(format!(
                "{consumer} accepted a bad record ({outcome:?}): {}",
                clip(body)
            )));
        };
        prop_assert_ne!(kind, "Panicked", "{}: {:?}", consumer, error);
        prop_assert!(
            expected.is_empty() || expected.contains(&kind),
            "{consumer}: {kind} not in {expected:?}: {error:?}"
        );
        let line = failure_line(&message_id);
        prop_assert!(line.is_some(), "{consumer}: no log line for {message_id}");
        let line = line.unwrap();
        prop_assert_eq!(&line["level"], "WARN");
        prop_assert_eq!(line["fields"]["error_type"].as_str(), Some(kind));
    }
    Ok(())
}

/// `body` may be good or bad, but nothing panics and every failure is logged.
fn assert_no_panic(body: &str) -> Result<(), TestCaseError> {
    for (consumer, message_id, outcome, error) in deliver(body) {
        prop_assert_ne!(
            outcome,
            RecordOutcome::Failed("Panicked"),
            "{}: {:?}",
            consumer,
            error
        );
        if outcome.is_failure() && outcome != RecordOutcome::InProgress {
            prop_assert!(
                failure_line(&message_id).is_some(),
                "{consumer}: not logged"
            );
        }
    }
    Ok(())
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

fn fixture_envelope(name: &str) -> Value {
    let path = testkit::workspace_root()
        .join("events/sqs")
        .join(format!("{name}.json"));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap()
}

fn fresh_key(mut envelope: Value) -> Value {
    envelope["detail"]["metadata"]["idempotency-key"] = uuid::Uuid::new_v4().to_string().into();
    envelope
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z-]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values that break a contract field: out-of-range and mistyped numbers, malformed amounts,
/// unknown currencies.
fn poison() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(-1)),
        Just(json!(4_294_967_296u64)),
        Just(json!(1e30)),
        Just(json!(-0.5)),
        Just(json!("2")),
        Just(json!(null)),
        Just(json!([])),
        Just(json!({})),
    ]
}

fn bad_money() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("-1.00")),
        Just(json!("1e3")),
        Just(json!("12.345678")),
        Just(json!("9999999999999999999999999999999")),
        Just(json!(" 1.00")),
        Just(json!("1.")),
        Just(json!(12.5)),
        "[a-z]{1,8}".prop_map(Value::String),
    ]
}

fn bad_currency() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("XYZ")),
        Just(json!("usd")),
        Just(json!("")),
        Just(json!(840)),
        "[A-Z]{4,6}".prop_map(Value::String),
    ]
}

/// The error types of a record refused by the parser or the handlers.
const REFUSED: [&str; 6] = [
    "MalformedRecord",
    "UnknownEventType",
    "InvalidEventDetail",
    "Unhandled",
    "Rejected",
    "IdempotencyValidation",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_text_that_is_not_an_event_is_a_logged_batch_item_failure(body in "\\PC{0,300}") {
        assert_refused(&body, &["MalformedRecord", "UnknownEventType", "InvalidEventDetail"])?;
    }

    #[test]
    fn any_json_that_is_not_an_event_is_a_logged_batch_item_failure(value in any_json()) {
        assert_refused(&value.to_string(), &["MalformedRecord", "UnknownEventType", "InvalidEventDetail"])?;
    }

    #[test]
    fn an_order_with_a_bad_quantity_amount_or_currency_is_refused(
        which in 0..4usize,
        line in 0..2usize,
        quantity in poison(),
        money in bad_money(),
        currency in bad_currency(),
    ) {
        let mut envelope = fresh_key(fixture_envelope("order-created"));
        let data = &mut envelope["detail"]["data"];
        match which {
            0 => data["items"][line]["quantity"] = quantity,
            1 => data["items"][line]["unit-price"] = money,
            2 => data["total"] = money,
            _ => data["currency"] = currency,
        }
        assert_refused(&envelope.to_string(), &REFUSED)?;
    }

    #[test]
    fn any_one_mutation_of_a_valid_event_never_panics(
        fixture in prop::sample::select(vec![
            "order-created", "order-picked", "order-shipped", "return-requested", "return-received",
        ]),
        path_pick in any::<prop::sample::Index>(),
        replacement in prop::option::of(any_json()),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut envelope = fresh_key(fixture_envelope(fixture));
        let paths = pointers(&envelope);
        let path = path_pick.get(&paths).clone();
        set_or_remove(&mut envelope, &path, replacement);
        let mut body = envelope.to_string();
        if let Some(cut) = cut {
            // A truncated body (cut on a character boundary).
            let at = cut.index(body.len());
            let at = (0..=at).rev().find(|i| body.is_char_boundary(*i)).unwrap_or(0);
            body.truncate(at);
        }
        assert_no_panic(&body)?;
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

/// Every JSON pointer into `value`, the root excluded.
fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    walk(v, p, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    out.push(p.clone());
                    walk(v, p, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn set_or_remove(root: &mut Value, pointer: &str, replacement: Option<Value>) {
    match replacement {
        Some(value) => {
            if let Some(slot) = root.pointer_mut(pointer) {
                *slot = value;
            }
        }
        None => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match root.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = key.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                _ => {}
            }
        }
    }
}

#[test]
fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    for depth in [200, 100_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_refused(&nested, &["MalformedRecord"]).unwrap();
        let envelope = fixture_envelope("order-created").to_string();
        let inside = envelope.replacen("\"resources\":[]", &format!("\"resources\":{nested}"), 1);
        assert_refused(&inside, &["MalformedRecord"]).unwrap();
    }
}

#[test]
fn a_ten_thousand_item_order_event_is_refused_by_every_consumer() {
    let mut envelope = fresh_key(fixture_envelope("order-created"));
    envelope["detail"]["data"]["items"] = (0..10_000)
        .map(|i| json!({ "sku": format!("SKU-{i}"), "quantity": 1, "unit-price": "1.00" }))
        .collect();
    // Fulfillment: the OrderPicked it would cause is over the 256 KB PutEvents limit; the others
    // do not take OrderCreated.
    assert_refused(&envelope.to_string(), &["Rejected", "Unhandled"]).unwrap();
}

#[test]
fn an_oversized_record_body_never_panics_and_a_huge_field_is_refused() {
    let mut envelope = fresh_key(fixture_envelope("order-picked"));
    envelope["detail"]["data"]["warehouse-id"] = "W".repeat(300 * 1024).into();
    // A 300 KB warehouse id cannot be re-emitted by fulfillment (OrderShipped over 256 KB).
    for (consumer, _, outcome, error) in deliver(&envelope.to_string()) {
        assert_ne!(
            outcome,
            RecordOutcome::Failed("Panicked"),
            "{consumer}: {error:?}"
        );
    }
    let mut huge_number = fixture_envelope("order-created").to_string();
    huge_number = huge_number.replacen(
        "\"quantity\":2",
        &format!("\"quantity\":{}", "9".repeat(5_000)),
        1,
    );
    assert_refused(&huge_number, &["MalformedRecord", "InvalidEventDetail"]).unwrap();
}

// ---------------------------------------------------------------------------------------------
// HTTP.

/// A POST by customer 456, as API Gateway's authorizer hands it over.
fn post(path: &str, key: Option<&str>, body: Vec<u8>) -> ApiRequest {
    let mut request = ApiRequest {
        method: "POST".into(),
        path: path.into(),
        body,
        identity: Some(platform::auth::Caller::new("456", vec![], vec![], None)),
        ..ApiRequest::default()
    };
    if let Some(key) = key {
        request.headers.insert("idempotency-key".into(), key.into());
    }
    request
}

fn handle(request: &ApiRequest) -> ApiResponse {
    let f = functions();
    runtime().block_on(async {
        if request.path.starts_with("/returns") {
            f.support_api.handle(request, None).await
        } else {
            f.orders_api.handle(request, None).await
        }
    })
}

/// A 4xx with a JSON error body carrying a type and a message.
fn assert_client_error(response: &ApiResponse) -> Result<String, TestCaseError> {
    prop_assert!(
        (400..500).contains(&response.status),
        "status {}: {}",
        response.status,
        clip(&response.body)
    );
    let body: Value = serde_json::from_str(&response.body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {}", response.body)))?;
    let kind = body["error"]["type"].as_str();
    prop_assert!(kind.is_some_and(|t| !t.is_empty()), "{body}");
    prop_assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    Ok(kind.unwrap_or_default().to_owned())
}

fn valid_order() -> Value {
    json!({
        "customer-id": "456",
        "currency": "USD",
        "items": [
            { "sku": "SKU-RED-MUG", "quantity": 2, "unit-price": "12.50" },
            { "sku": "SKU-TEAPOT", "quantity": 1, "unit-price": "212.51" }
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_bytes_posted_as_an_order_or_a_return_are_a_4xx_json_error(
        body in prop::collection::vec(any::<u8>(), 0..512),
        returns in any::<bool>(),
    ) {
        let path = if returns { "/returns" } else { "/orders" };
        let response = handle(&post(path, Some(&uuid::Uuid::new_v4().to_string()), body));
        assert_client_error(&response)?;
    }

    #[test]
    fn an_order_with_a_bad_field_is_a_400_naming_the_problem(
        which in 0..6usize,
        line in 0..2usize,
        quantity in poison(),
        money in bad_money(),
        currency in bad_currency(),
    ) {
        let mut order = valid_order();
        match which {
            0 => order["items"][line]["quantity"] = quantity,
            1 => order["items"][line]["unit-price"] = money,
            2 => order["currency"] = currency,
            3 => order["items"][line]["quantity"] = json!(0),
            4 => order["items"] = json!([]),
            _ => order["customer-id"] = json!("not an id!"),
        }
        let response = handle(&post("/orders", Some(&uuid::Uuid::new_v4().to_string()), order.to_string().into_bytes()));
        let kind = assert_client_error(&response)?;
        prop_assert_eq!(response.status, 400);
        prop_assert!(["InvalidField", "InvalidOrder", "MalformedJson", "CustomerMismatch"].contains(&kind.as_str()), "{}", kind);
    }

    #[test]
    fn any_mutation_of_a_valid_order_is_created_or_a_4xx_never_a_5xx(
        path_pick in any::<prop::sample::Index>(),
        replacement in prop::option::of(any_json()),
    ) {
        let mut order = valid_order();
        let paths = pointers(&order);
        let path = path_pick.get(&paths).clone();
        set_or_remove(&mut order, &path, replacement);
        let response = handle(&post("/orders", Some(&uuid::Uuid::new_v4().to_string()), order.to_string().into_bytes()));
        if response.status != 201 {
            assert_client_error(&response)?;
        }
    }

    #[test]
    fn any_route_method_and_header_set_is_answered_in_json_never_a_5xx(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "get", ""]),
        segments in prop::collection::vec("\\PC{0,12}", 0..5),
        key in prop::option::of("\\PC{0,300}"),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut request = post("/", key.as_deref(), body);
        request.method = method.to_owned();
        request.path = format!("/{}", segments.join("/"));
        let response = handle(&request);
        prop_assert!(response.status < 500, "{} {}: {}", request.method, request.path, response.body);
        prop_assert!(serde_json::from_str::<Value>(&response.body).is_ok(), "{}", response.body);
    }

    #[test]
    fn any_api_gateway_event_converts_or_is_a_400_json_error(
        body in prop::option::of("\\PC{0,100}"),
        base64 in any::<bool>(),
    ) {
        let mut event: aws_lambda_events::apigw::ApiGatewayV2httpRequest = serde_json::from_str(
            &std::fs::read_to_string(testkit::workspace_root().join("events/http/post-order.json")).unwrap(),
        ).unwrap();
        event.body = body;
        event.is_base64_encoded = base64;
        match ApiRequest::from_apigw(event) {
            Ok(request) => {
                let response = handle(&request);
                prop_assert!(response.status < 500, "{}", response.body);
            }
            Err(e) => {
                let response: ApiResponse = e.into();
                prop_assert_eq!(assert_client_error(&response)?, "InvalidBody");
            }
        }
    }
}

#[test]
fn the_named_bad_orders_each_get_their_4xx() {
    let key = || Some(uuid::Uuid::new_v4().to_string());
    let send = |body: Vec<u8>| handle(&post("/orders", key().as_deref(), body));
    let kind = |r: &ApiResponse| {
        serde_json::from_str::<Value>(&r.body).unwrap()["error"]["type"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let oversized = send(vec![b' '; MAX_BODY_BYTES + 1]);
    assert_eq!(
        (oversized.status, kind(&oversized).as_str()),
        (413, "PayloadTooLarge")
    );

    let invalid_utf8 = send(vec![b'{', 0xff, 0xfe, b'}']);
    assert_eq!(
        (invalid_utf8.status, kind(&invalid_utf8).as_str()),
        (400, "InvalidBody")
    );

    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let response = send(nested.into_bytes());
    assert_eq!(response.status, 400, "{}", response.body);
    let deep_in_field = format!(
        "{{\"customer-id\":\"456\",\"currency\":\"USD\",\"items\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(send(deep_in_field.into_bytes()).status, 400);

    let mut huge = valid_order();
    huge["items"][0]["quantity"] = json!(1e300);
    assert_eq!(kind(&send(huge.to_string().into_bytes())), "InvalidField");
    let huge_digits = valid_order().to_string().replacen(
        "\"quantity\":2",
        &format!("\"quantity\":{}", "9".repeat(10_000)),
        1,
    );
    assert_eq!(send(huge_digits.into_bytes()).status, 400);

    let mut negative = valid_order();
    negative["items"][0]["quantity"] = json!(-3);
    assert_eq!(
        kind(&send(negative.to_string().into_bytes())),
        "InvalidField"
    );

    let mut unknown_currency = valid_order();
    unknown_currency["currency"] = json!("XYZ");
    assert_eq!(
        kind(&send(unknown_currency.to_string().into_bytes())),
        "InvalidField"
    );

    // 10,000 items do not fit the body limit at all; 101 fit and break the item limit.
    let many = |n: usize| {
        let mut order = valid_order();
        order["items"] = (0..n)
            .map(|i| json!({ "sku": format!("S{i}"), "quantity": 1, "unit-price": "1.00" }))
            .collect();
        order.to_string().into_bytes()
    };
    let response = send(many(10_000));
    assert_eq!(
        (response.status, kind(&response).as_str()),
        (413, "PayloadTooLarge")
    );
    let response = send(many(101));
    assert_eq!(
        (response.status, kind(&response).as_str()),
        (400, "InvalidOrder"),
        "{}",
        response.body
    );

    let missing_key = handle(&post(
        "/orders",
        None,
        valid_order().to_string().into_bytes(),
    ));
    assert_eq!(kind(&missing_key), "MissingIdempotencyKey");
    let long_key = handle(&post(
        "/orders",
        Some(&"k".repeat(1_000)),
        valid_order().to_string().into_bytes(),
    ));
    assert_eq!(kind(&long_key), "InvalidIdempotencyKey");

    // And the good one still goes through.
    assert_eq!(send(valid_order().to_string().into_bytes()).status, 201);
}
