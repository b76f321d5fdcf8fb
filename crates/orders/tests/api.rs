//! orders-api scenarios with in-memory adapters: the HTTP contract of `POST /orders` and
//! `GET /orders/{id}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;

use eventing::InMemoryPublisher;
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
        Arc::new(publisher.clone()),
    );
    Harness {
        api,
        publisher,
        store,
        idempotency,
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
async fn a_new_order_is_stored_published_and_answered_201() {
    let h = harness();
    let response = h.api.handle(&fixture("http/post-order.json"), None).await;
    assert_eq!(response.status, 201, "{}", response.body);
    let order = body(&response);
    assert_eq!(order["total"], "237.51");
    assert_eq!(order["status"], "Open");
    assert_eq!(h.store.all().len(), 1);
    let published = h.publisher.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].detail_type, "OrderCreated");
    let detail: serde_json::Value = serde_json::from_str(&published[0].detail).unwrap();
    assert_eq!(detail["data"]["order-id"], order["order-id"]);
    assert_eq!(
        detail["metadata"]["idempotency-key"], "c1b95b88-4b1e-4c1f-9a55-4b9d3f0c2a11",
        "the first event of a flow carries the client's key"
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
    assert_eq!(h.publisher.published().len(), 1);
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
    assert_eq!(h.publisher.published().len(), 1);
}

#[tokio::test]
async fn a_request_still_in_progress_is_409() {
    let h = harness();
    // Another invocation holds the claim: simulate by failing the publish while a concurrent
    // request arrives is racy, so claim directly through the same store and config.
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
    assert!(h.publisher.published().is_empty());
}

#[tokio::test]
async fn a_failed_publish_releases_the_claim_so_the_retry_succeeds() {
    let h = harness();
    h.publisher.fail_all(true);
    let failed = h.api.handle(&fixture("http/post-order.json"), None).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    h.publisher.fail_all(false);
    let retried = h.api.handle(&fixture("http/post-order.json"), None).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(
        retried.header(REPLAYED_HEADER),
        None,
        "the retry runs, not replays"
    );
    assert_eq!(h.publisher.published().len(), 1);
    assert_eq!(h.store.all().len(), 1, "the retry reuses the stored order");
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
