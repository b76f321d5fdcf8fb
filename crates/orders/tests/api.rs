//! orders-api scenarios with in-memory adapters: the HTTP contract of `POST /orders` and
//! `GET /orders/{id}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;

use eventing::{InMemoryPublisher, OutgoingEvent};
use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
use orders::api::{OrdersApi, REPLAYED_HEADER};
use orders::store::InMemoryOrderStore;
use platform::http::{ApiRequest, ApiResponse};

struct Harness {
    api: OrdersApi,
    publisher: InMemoryPublisher,
    store: InMemoryOrderStore,
    idempotency: InMemoryStore,
}

fn harness() -> Harness {
    let publisher = InMemoryPublisher::new();
    let store = InMemoryOrderStore::default();
    let idempotency = InMemoryStore::new();
    let api = OrdersApi::new(
        Idempotency::new(idempotency.clone(), IdempotencyConfig::new("create-order")),
        Arc::new(store.clone()),
    );
    Harness {
        api,
        publisher,
        store,
        idempotency,
    }
}

impl Harness {
    /// Runs the orders table's stream through `orders-outbox-relay` (as Lambda would) and
    /// returns everything published so far.
    async fn published(&self) -> Vec<OutgoingEvent> {
        let records = self.store.changes().take(usize::MAX);
        let relay = orders::outbox_relay(Arc::new(self.publisher.clone()));
        let answer = relay
            .handle_payload(serde_json::json!({ "Records": records }), None)
            .await
            .unwrap();
        assert_eq!(
            answer["batchItemFailures"],
            serde_json::json!([]),
            "{answer}"
        );
        self.publisher.published()
    }
}

fn fixture(name: &str) -> ApiRequest {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    let event = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    ApiRequest::from_apigw(event).unwrap()
}

fn body(response: &ApiResponse) -> serde_json::Value {
    serde_json::from_str(&response.body).unwrap()
}

#[tokio::test]
async fn a_new_order_is_stored_with_its_fact_answered_201_and_relayed() {
    let h = harness();
    let response = h.api.handle(&fixture("http/post-order.json"), None).await;
    assert_eq!(response.status, 201, "{}", response.body);
    let order = body(&response);
    assert_eq!(order["total"], "237.51");
    assert_eq!(order["status"], "Open");
    assert_eq!(h.store.all().len(), 1);
    assert!(
        h.publisher.published().is_empty(),
        "the API never publishes"
    );
    let published = h.published().await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].detail_type, "OrderCreated");
    let detail: serde_json::Value = serde_json::from_str(&published[0].detail).unwrap();
    assert_eq!(detail["data"]["order-id"], order["order-id"]);
    let client = contracts::IdempotencyKey::new("c1b95b88-4b1e-4c1f-9a55-4b9d3f0c2a11").unwrap();
    assert_eq!(
        detail["metadata"]["idempotency-key"],
        contracts::IdempotencyKey::for_order("456", &client).as_str(),
        "the first event of a flow carries the key scoped like the claim, never the client's"
    );
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_same_order_without_a_second_event() {
    let h = harness();
    let first = h.api.handle(&fixture("http/post-order.json"), None).await;
    let second = h.api.handle(&fixture("http/post-order.json"), None).await;
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.header(REPLAYED_HEADER), None);
    assert_eq!(second.header(REPLAYED_HEADER), Some("true"));
    assert_eq!(body(&first), body(&second));
    assert_eq!(h.published().await.len(), 1);
    assert_eq!(h.store.all().len(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let h = harness();
    h.api.handle(&fixture("http/post-order.json"), None).await;
    let mut changed = fixture("http/post-order.json");
    let mut b: serde_json::Value = serde_json::from_slice(&changed.body).unwrap();
    b["items"][0]["quantity"] = 3.into();
    changed.body = serde_json::to_vec(&b).unwrap();
    let response = h.api.handle(&changed, None).await;
    assert_eq!(response.status, 422);
    assert_eq!(body(&response)["error"]["type"], "IdempotencyKeyReused");
    assert_eq!(h.published().await.len(), 1);
}

#[tokio::test]
async fn a_request_still_in_progress_is_409() {
    let h = harness();
    // Another invocation holds the claim: claim directly through the same store and config.
    let idem = Idempotency::new(
        h.idempotency.clone(),
        IdempotencyConfig::new("create-order"),
    );
    let request = fixture("http/post-order.json");
    let order: orders::domain::CreateOrder = request.json().unwrap();
    let material = serde_json::json!({ "customer-id": order.customer_id,
        "idempotency-key": request.header("idempotency-key").unwrap() });
    let claim_request = idempotency::Request::new(&material)
        .unwrap()
        .validate(&order)
        .unwrap();
    let idempotency::Begin::Claimed(_claim) = idem.begin(&claim_request).await.unwrap() else {
        panic!("first claim must succeed");
    };
    let response = h.api.handle(&request, None).await;
    assert_eq!(response.status, 409, "{}", response.body);
    assert_eq!(body(&response)["error"]["type"], "RequestInProgress");
}

#[tokio::test]
async fn bad_requests_get_a_400_with_a_typed_json_error() {
    let h = harness();
    for (fixture_name, error_type) in [
        (
            "bad/http-post-order-missing-idempotency-key.json",
            "MissingIdempotencyKey",
        ),
        ("bad/http-post-order-malformed-json.json", "MalformedJson"),
        ("bad/http-post-order-wrong-field-types.json", "InvalidField"),
    ] {
        let response = h.api.handle(&fixture(fixture_name), None).await;
        assert_eq!(response.status, 400, "{fixture_name}: {}", response.body);
        assert_eq!(
            body(&response)["error"]["type"],
            error_type,
            "{fixture_name}"
        );
    }
    let mut request = fixture("http/post-order.json");
    for (patch, error_type) in [
        (
            serde_json::json!({"customer-id": "456", "currency": "XYZ", "items": []}),
            "InvalidField",
        ),
        (
            serde_json::json!({"customer-id": "456", "currency": "USD", "items": []}),
            "InvalidOrder",
        ),
        (
            serde_json::json!({"customer-id": "456", "currency": "USD",
                "items": [{"sku": "A", "quantity": -1, "unit-price": "1.00"}]}),
            "InvalidField",
        ),
        (
            serde_json::json!({"customer-id": "456", "currency": "USD",
                "items": [{"sku": "A", "quantity": 0, "unit-price": "1.00"}]}),
            "InvalidOrder",
        ),
    ] {
        request.body = serde_json::to_vec(&patch).unwrap();
        let response = h.api.handle(&request, None).await;
        assert_eq!(response.status, 400, "{patch}: {}", response.body);
        assert_eq!(body(&response)["error"]["type"], error_type, "{patch}");
    }
    assert!(h.published().await.is_empty());
}

#[tokio::test]
async fn a_bus_outage_does_not_fail_the_create_and_the_relay_catches_up() {
    let h = harness();
    h.publisher.fail_all(true);
    let created = h.api.handle(&fixture("http/post-order.json"), None).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let records = h.store.changes().take(usize::MAX);
    let relay = orders::outbox_relay(Arc::new(h.publisher.clone()));
    let answer = relay
        .handle_payload(serde_json::json!({ "Records": records.clone() }), None)
        .await
        .unwrap();
    assert_eq!(
        answer["batchItemFailures"][0]["itemIdentifier"], records[0]["dynamodb"]["SequenceNumber"],
        "the record is reported, so Lambda retries it"
    );
    h.publisher.fail_all(false);
    relay
        .handle_payload(serde_json::json!({ "Records": records }), None)
        .await
        .unwrap();
    assert_eq!(h.publisher.published().len(), 1);
}

#[tokio::test]
async fn a_failed_store_releases_the_claim_so_the_retry_succeeds() {
    let h = harness();
    h.idempotency
        .fail_next(idempotency::StoreOperation::Complete, 1);
    let failed = h.api.handle(&fixture("http/post-order.json"), None).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    // The order and its fact are stored; the completion was lost, so the claim stays until it
    // expires (no remaining time here: the configured in-progress timeout).
    assert_eq!(h.store.all().len(), 1);
    assert_eq!(h.published().await.len(), 1);
}

#[tokio::test]
async fn get_answers_the_order_or_404() {
    let h = harness();
    let created = body(&h.api.handle(&fixture("http/post-order.json"), None).await);
    let mut get = fixture("http/get-order.json");
    get.path = format!("/orders/{}", created["order-id"].as_str().unwrap());
    let found = h.api.handle(&get, None).await;
    assert_eq!(found.status, 200);
    assert_eq!(body(&found), created);
    let missing = h.api.handle(&fixture("http/get-order.json"), None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(body(&missing)["error"]["type"], "NotFound");
}

#[tokio::test]
async fn a_create_whose_stored_answer_is_unreadable_is_answered_from_the_order() {
    let h = harness();
    let request = fixture("http/post-order.json");
    let created = h.api.handle(&request, None).await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Last month's version stored its answer in another shape.
    let idem = Idempotency::new(
        h.idempotency.clone(),
        IdempotencyConfig::new("create-order"),
    );
    let order: orders::domain::CreateOrder = request.json().unwrap();
    let material = serde_json::json!({ "customer-id": order.customer_id,
        "idempotency-key": request.header("idempotency-key").unwrap() });
    let claim = idempotency::Request::new(&material)
        .unwrap()
        .validate(&order)
        .unwrap();
    let id = idem.record_id(&claim).unwrap();
    let mut record = h
        .idempotency
        .records()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    record.data = Some(r#"{"orderRef":"v0"}"#.into());
    h.idempotency.put(idem.config().layout(), record);

    let again = h.api.handle(&request, None).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header(REPLAYED_HEADER), Some("true"));
    assert_eq!(body(&again), body(&created), "the order it made");
    assert_eq!(h.published().await.len(), 1, "nothing ran again");
}
