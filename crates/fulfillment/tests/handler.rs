//! fulfillment-events scenarios with in-memory adapters.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;

use contracts::AnyEvent;
use eventing::{EventHandler, HandlerError};
use fulfillment::handler::FulfillmentHandler;
use fulfillment::store::InMemoryFulfillmentStore;

fn fixture_event(name: &str) -> AnyEvent {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/eventbridge")
        .join(name);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    AnyEvent::parse(
        v["source"].as_str().unwrap(),
        v["detail-type"].as_str().unwrap(),
        v["detail"].clone(),
    )
    .unwrap()
}

fn detail(event: &eventing::OutgoingEvent) -> serde_json::Value {
    serde_json::from_str(&event.detail).unwrap()
}

#[tokio::test]
async fn a_created_order_is_picked_and_order_picked_carries_the_derived_key() {
    let store = InMemoryFulfillmentStore::default();
    let handler = FulfillmentHandler::new(Arc::new(store.clone()));
    let created = fixture_event("order-created.json");
    let emitted = handler.handle(&created).await.unwrap();
    assert_eq!(emitted.len(), 1);
    assert_eq!(
        (emitted[0].source.as_str(), emitted[0].detail_type.as_str()),
        ("com.fulfillment", "OrderPicked")
    );
    let expected = created.metadata().idempotency_key.derive("OrderPicked");
    assert_eq!(emitted[0].idempotency_key, expected.as_str());
    let d = detail(&emitted[0]);
    assert_eq!(
        d["metadata"]["causation-id"],
        created.metadata().event_id.as_str()
    );
    assert_eq!(
        d["metadata"]["correlation-id"],
        created.metadata().correlation_id.as_str()
    );
    assert_eq!(d["data"]["warehouse-id"], "WH-US-1");
    assert_eq!(store.counts(), (1, 0));
}

#[tokio::test]
async fn a_reprocessed_cause_re_emits_the_same_fact_and_records_one_pick() {
    let store = InMemoryFulfillmentStore::default();
    let handler = FulfillmentHandler::new(Arc::new(store.clone()));
    let created = fixture_event("order-created.json");
    let first = handler.handle(&created).await.unwrap();
    let second = handler.handle(&created).await.unwrap();
    assert_eq!(first[0].idempotency_key, second[0].idempotency_key);
    assert_eq!(
        detail(&first[0])["data"],
        detail(&second[0])["data"],
        "the stored pick is re-emitted"
    );
    assert_eq!(store.counts(), (1, 0));
}

#[tokio::test]
async fn a_picked_order_is_shipped_once() {
    let store = InMemoryFulfillmentStore::default();
    let handler = FulfillmentHandler::new(Arc::new(store.clone()));
    let picked = fixture_event("order-picked.json");
    let a = handler.handle(&picked).await.unwrap();
    let b = handler.handle(&picked).await.unwrap();
    assert_eq!(a[0].detail_type, "OrderShipped");
    assert_eq!(
        a[0].idempotency_key,
        picked
            .metadata()
            .idempotency_key
            .derive("OrderShipped")
            .as_str()
    );
    assert_eq!(detail(&a[0])["data"], detail(&b[0])["data"]);
    let shipment = detail(&a[0]);
    assert_eq!(shipment["data"]["shipment-id"], "SHP-1073459984");
    assert_eq!(store.counts(), (0, 1));
}

#[tokio::test]
async fn events_fulfillment_does_not_take_are_unhandled_failures() {
    let handler = FulfillmentHandler::new(Arc::new(InMemoryFulfillmentStore::default()));
    for name in [
        "order-shipped.json",
        "return-requested.json",
        "return-received.json",
    ] {
        let err = handler.handle(&fixture_event(name)).await.unwrap_err();
        assert!(
            matches!(err, HandlerError::Unhandled { .. }),
            "{name}: {err}"
        );
    }
}
