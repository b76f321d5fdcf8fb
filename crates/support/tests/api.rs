//! support-api and support-events scenarios with in-memory adapters.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;

use contracts::AnyEvent;
use eventing::{EventHandler, InMemoryPublisher, OutgoingEvent};
use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
use platform::http::{ApiRequest, ApiResponse};
use support::api::{REPLAYED_HEADER, SupportApi};
use support::projection::ShippedOrdersProjection;
use support::store::InMemorySupportStore;

struct Harness {
    api: SupportApi,
    projection: ShippedOrdersProjection,
    store: InMemorySupportStore,
    publisher: InMemoryPublisher,
}

fn harness() -> Harness {
    let store = InMemorySupportStore::default();
    let publisher = InMemoryPublisher::new();
    Harness {
        api: SupportApi::new(
            Idempotency::new(
                InMemoryStore::new(),
                IdempotencyConfig::new("request-return"),
            ),
            Arc::new(store.clone()),
            platform::auth::DEFAULT_STAFF_SCOPE,
        ),
        projection: ShippedOrdersProjection::new(Arc::new(store.clone())),
        store,
        publisher,
    }
}

impl Harness {
    /// Runs the support table's stream through `support-outbox-relay` (as Lambda would) and
    /// returns everything published so far.
    async fn published(&self) -> Vec<OutgoingEvent> {
        let records = self.store.changes().take(usize::MAX);
        let relay = support::outbox_relay(Arc::new(self.publisher.clone()));
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

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn request(name: &str) -> ApiRequest {
    let text = std::fs::read_to_string(root().join(name)).unwrap();
    ApiRequest::from_apigw(serde_json::from_str(&text).unwrap()).unwrap()
}

fn shipped() -> AnyEvent {
    let text = std::fs::read_to_string(root().join("eventbridge/order-shipped.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    AnyEvent::parse("com.fulfillment", "OrderShipped", v["detail"].clone()).unwrap()
}

fn json(r: &ApiResponse) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap()
}

#[tokio::test]
async fn a_return_before_support_saw_the_order_ship_is_409() {
    let h = harness();
    let r = h.api.handle(&request("http/post-return.json"), None).await;
    assert_eq!(r.status, 409);
    assert_eq!(json(&r)["error"]["type"], "OrderNotShipped");
    assert!(h.published().await.is_empty());
}

#[tokio::test]
async fn a_return_for_a_shipped_order_is_201_published_once_and_replayed() {
    let h = harness();
    h.projection.handle(&shipped()).await.unwrap();
    let first = h.api.handle(&request("http/post-return.json"), None).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(json(&first)["status"], "Requested");
    assert_eq!(
        json(&first)["customer-id"],
        "456",
        "taken from support's own projection"
    );
    let second = h.api.handle(&request("http/post-return.json"), None).await;
    assert_eq!(second.header(REPLAYED_HEADER), Some("true"));
    assert_eq!(json(&first), json(&second));
    let published = h.published().await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].detail_type, "ReturnRequested");
}

#[tokio::test]
async fn returning_more_than_shipped_is_409_a_sku_not_shipped_400_and_a_reused_key_422() {
    let h = harness();
    h.projection.handle(&shipped()).await.unwrap();
    let mut too_many = request("http/post-return.json");
    too_many.body = serde_json::to_vec(&serde_json::json!({
        "order-id": "1073459984", "reason": "x", "items": [{"sku": "SKU-RED-MUG", "quantity": 3}]
    }))
    .unwrap();
    let r = h.api.handle(&too_many, None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        json(&r)["error"],
        serde_json::json!({
            "type": "ReturnExceedsShipped",
            "message": "3 x SKU-RED-MUG asked, but only 2 may still be returned",
            "sku": "SKU-RED-MUG", "asked": 3, "returnable": 2
        })
    );
    let mut unknown = request("http/post-return.json");
    unknown.body = serde_json::to_vec(&serde_json::json!({
        "order-id": "1073459984", "reason": "x", "items": [{"sku": "SKU-KETTLE", "quantity": 1}]
    }))
    .unwrap();
    let r = h.api.handle(&unknown, None).await;
    assert_eq!(
        (r.status, json(&r)["error"]["type"].as_str()),
        (400, Some("InvalidReturn")),
        "{}",
        r.body
    );

    h.api.handle(&request("http/post-return.json"), None).await;
    let mut other = request("http/post-return.json");
    other.body = serde_json::to_vec(&serde_json::json!({
        "order-id": "1073459984", "reason": "changed my mind", "items": [{"sku": "SKU-RED-MUG", "quantity": 1}]
    }))
    .unwrap();
    let r = h.api.handle(&other, None).await;
    assert_eq!(r.status, 422, "{}", r.body);
}

#[tokio::test]
async fn returns_add_up_across_requests() {
    let h = harness();
    h.projection.handle(&shipped()).await.unwrap();
    let ask = |key: &str| {
        let mut r = request("http/post-return.json");
        r.headers.insert("idempotency-key".into(), key.into());
        r
    };
    // The shipment has 2 mugs; the fixture returns 1 per request.
    assert_eq!(h.api.handle(&ask("r-1"), None).await.status, 201);
    assert_eq!(h.api.handle(&ask("r-2"), None).await.status, 201);
    let third = h.api.handle(&ask("r-3"), None).await;
    assert_eq!(third.status, 409, "{}", third.body);
    assert_eq!(json(&third)["error"]["returnable"], 0);
    // A refused request stored nothing and published nothing; a retry is refused again.
    assert_eq!(h.api.handle(&ask("r-3"), None).await.status, 409);
    assert_eq!(h.published().await.len(), 2);
}

#[tokio::test]
async fn receiving_a_return_publishes_return_received_once() {
    let h = harness();
    h.projection.handle(&shipped()).await.unwrap();
    let created = json(&h.api.handle(&request("http/post-return.json"), None).await);
    let id = created["return-id"].as_str().unwrap();
    let mut received = request("http/post-return-received.json");
    received.path = format!("/returns/{id}/received");
    let first = h.api.handle(&received, None).await;
    let second = h.api.handle(&received, None).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(json(&first)["status"], "Received");
    assert_eq!(second.header(REPLAYED_HEADER), Some("true"));
    let published = h.published().await;
    let kinds: Vec<_> = published.iter().map(|e| e.detail_type.as_str()).collect();
    assert_eq!(kinds, ["ReturnRequested", "ReturnReceived"]);
    let client = contracts::IdempotencyKey::new("7f3a2c10-55d2-4e0b-8f7e-1a2b3c4d5e6f").unwrap();
    let requested_key = contracts::IdempotencyKey::for_return("1073459984", &client);
    assert_eq!(published[0].idempotency_key, requested_key.as_str());
    assert_eq!(
        published[1].idempotency_key,
        requested_key.derive("ReturnReceived").as_str()
    );

    let mut get = request("http/get-return.json");
    get.path = format!("/returns/{id}");
    assert_eq!(json(&h.api.handle(&get, None).await)["status"], "Received");
}

#[tokio::test]
async fn unknown_returns_and_routes_are_404() {
    let h = harness();
    assert_eq!(
        h.api
            .handle(&request("http/get-return.json"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.api
            .handle(&request("http/post-return-received.json"), None)
            .await
            .status,
        404
    );
    let mut nowhere = request("http/get-return.json");
    nowhere.path = "/nowhere".into();
    let r = h.api.handle(&nowhere, None).await;
    assert_eq!(json(&r)["error"]["type"], "RouteNotFound");
}
