//! orders-events: status only moves forward, whatever order the events arrive in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;

use contracts::{AnyEvent, OrderStatus};
use eventing::{EventHandler, HandlerError};
use orders::domain::{CreateOrder, Order};
use orders::projection::OrderStatusProjection;
use orders::store::{InMemoryOrderStore, OrderStore};

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

fn lifecycle() -> Vec<AnyEvent> {
    [
        "order-created.json",
        "order-picked.json",
        "order-shipped.json",
        "return-requested.json",
        "return-received.json",
    ]
    .into_iter()
    .map(fixture_event)
    .collect()
}

fn order() -> Order {
    let AnyEvent::OrderCreated(created) = fixture_event("order-created.json") else {
        unreachable!()
    };
    let d = created.data;
    let mut order = Order::create(
        CreateOrder {
            customer_id: d.customer_id,
            currency: d.currency,
            items: d.items,
        },
        "k",
        d.created_at,
    )
    .unwrap();
    order.order_id = d.order_id;
    order
}

/// Stores `order` with its `OrderCreated` fact, as `orders-api` does.
async fn insert(store: &InMemoryOrderStore, order: &Order) {
    let metadata = contracts::Metadata::first(
        contracts::IdempotencyKey::new("k").unwrap(),
        order.order_id.clone(),
        order.created_at,
    );
    let created =
        eventing::OutgoingEvent::new(&contracts::Detail::new(metadata, order.created_event()))
            .unwrap();
    store.insert(order, &created).await.unwrap();
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn all_120_orderings_of_the_lifecycle_give_the_same_final_status() {
    let events = lifecycle();
    let orders = permutations(events.len());
    assert_eq!(orders.len(), 120);
    for ordering in orders {
        let mut o = order();
        for &i in &ordering {
            o.apply(&events[i]);
        }
        assert_eq!(o.status, OrderStatus::Returned, "ordering {ordering:?}");
    }
}

#[tokio::test]
async fn all_120_orderings_through_the_projection_and_store_end_returned_without_failures() {
    let events = lifecycle();
    for ordering in permutations(events.len()) {
        let store = InMemoryOrderStore::default();
        insert(&store, &order()).await;
        let projection = OrderStatusProjection::new(Arc::new(store.clone()));
        for &i in &ordering {
            match projection.handle(&events[i]).await {
                Ok(emitted) => assert!(emitted.is_empty()),
                // OrderCreated and ReturnRequested are not routed to orders-events.
                Err(HandlerError::Unhandled { .. }) => assert!(matches!(
                    events[i],
                    AnyEvent::OrderCreated(_) | AnyEvent::ReturnRequested(_)
                )),
                Err(e) => panic!("ordering {ordering:?}: {e}"),
            }
        }
        let stored = store.get("1073459984").await.unwrap().unwrap();
        assert_eq!(
            stored.status,
            OrderStatus::Returned,
            "ordering {ordering:?}"
        );
    }
}

#[tokio::test]
async fn a_late_event_changes_nothing_and_does_not_fail() {
    let store = InMemoryOrderStore::default();
    insert(&store, &order()).await;
    let projection = OrderStatusProjection::new(Arc::new(store.clone()));
    projection
        .handle(&fixture_event("order-shipped.json"))
        .await
        .unwrap();
    let shipped_at = store.get("1073459984").await.unwrap().unwrap().updated_at;
    projection
        .handle(&fixture_event("order-picked.json"))
        .await
        .unwrap();
    let after = store.get("1073459984").await.unwrap().unwrap();
    assert_eq!(after.status, OrderStatus::Shipped);
    assert_eq!(after.updated_at, shipped_at);
}

#[tokio::test]
async fn an_event_for_an_unknown_order_is_rejected_not_acked() {
    let projection = OrderStatusProjection::new(Arc::new(InMemoryOrderStore::default()));
    let err = projection
        .handle(&fixture_event("order-picked.json"))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Rejected { .. }), "{err}");
}
