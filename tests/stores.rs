//! The domains' DynamoDB adapters against the moto stand-in: every conditional write is one round
//! trip and behaves as the in-memory adapter does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use chrono::Utc;
use contracts::{Currency, OrderItem, OrderStatus};
use orders::domain::{CreateOrder, Order};
use orders::store::{Advance, DynamoDbOrderStore, OrderStore};
use platform::doc_table::DocTable;
use testkit::{LocalStack, moto, template};

async fn stack() -> (aws_config::SdkConfig, LocalStack) {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();
    (config, stack)
}

fn order() -> Order {
    Order::create(
        CreateOrder {
            customer_id: "456".into(),
            currency: Currency::new("EUR").unwrap(),
            items: vec![OrderItem {
                sku: "A".into(),
                quantity: 2,
                unit_price: "1.25".parse().unwrap(),
            }],
        },
        "key-1",
        Utc::now(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_inserted_once_and_a_repeat_returns_the_stored_one() {
    let (config, stack) = stack().await;
    let store = DynamoDbOrderStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        stack.table("OrdersTable"),
    );
    let first = order();
    assert_eq!(store.insert(&first).await.unwrap(), first);
    let mut retry = first.clone();
    retry.created_at = Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        store.insert(&retry).await.unwrap(),
        first,
        "the first write wins"
    );
    assert_eq!(store.get(&first.order_id).await.unwrap(), Some(first));
    assert_eq!(store.get("nope").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_moves_forward_only_and_an_unknown_order_is_told_apart() {
    let (config, stack) = stack().await;
    let store = DynamoDbOrderStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        stack.table("OrdersTable"),
    );
    let o = order();
    store.insert(&o).await.unwrap();
    let at = Utc::now();
    assert_eq!(
        store
            .advance(&o.order_id, OrderStatus::Shipped, at)
            .await
            .unwrap(),
        Advance::Moved
    );
    assert_eq!(
        store
            .advance(&o.order_id, OrderStatus::Picked, at)
            .await
            .unwrap(),
        Advance::Unchanged(OrderStatus::Shipped),
        "a late OrderPicked changes nothing"
    );
    assert_eq!(
        store
            .advance(&o.order_id, OrderStatus::Shipped, at)
            .await
            .unwrap(),
        Advance::Unchanged(OrderStatus::Shipped),
        "a repeated OrderShipped changes nothing"
    );
    assert_eq!(
        store
            .advance("ghost", OrderStatus::Picked, at)
            .await
            .unwrap(),
        Advance::NotFound
    );
    let stored = store.get(&o.order_id).await.unwrap().unwrap();
    assert_eq!(stored.status, OrderStatus::Shipped);
    assert_eq!(stored.updated_at, at);
}

#[tokio::test(flavor = "multi_thread")]
async fn doc_table_keeps_the_first_document_and_guards_transitions() {
    let (config, stack) = stack().await;
    let table = DocTable::new(
        aws_sdk_dynamodb::Client::new(&config),
        stack.table("SupportTable"),
    );
    let first = serde_json::json!({"n": 1});
    assert_eq!(
        table
            .put_new("X#1", &first, Some("Requested"))
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        table
            .put_new("X#1", &serde_json::json!({"n": 2}), Some("Requested"))
            .await
            .unwrap(),
        first
    );
    assert!(
        table
            .transition("X#1", &serde_json::json!({"n": 3}), "Requested", "Received")
            .await
            .unwrap()
    );
    assert!(
        !table
            .transition("X#1", &serde_json::json!({"n": 4}), "Requested", "Received")
            .await
            .unwrap(),
        "the second transition finds the state moved on"
    );
    assert!(
        !table
            .transition("X#2", &first, "Requested", "Received")
            .await
            .unwrap(),
        "absent document"
    );
    assert_eq!(
        table.get::<serde_json::Value>("X#1").await.unwrap(),
        Some(serde_json::json!({"n": 3}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fulfillment_and_support_stores_round_trip_on_dynamodb() {
    use fulfillment::store::{DynamoDbFulfillmentStore, FulfillmentStore};
    use support::store::{DynamoDbSupportStore, SupportStore};
    let (config, stack) = stack().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let f = DynamoDbFulfillmentStore::new(ddb.clone(), stack.table("FulfillmentTable"));
    let created = order().created_event();
    let pick = fulfillment::domain::Pick::of(&created, Utc::now());
    assert_eq!(f.record_pick(&pick).await.unwrap(), pick);
    let shipment = fulfillment::domain::Shipment::of(&pick.event(), Utc::now());
    f.record_shipment(&shipment).await.unwrap();
    assert_eq!(
        f.shipment(&created.order_id).await.unwrap(),
        Some(shipment.clone())
    );

    let s = DynamoDbSupportStore::new(ddb, stack.table("SupportTable"));
    let shipped = support::domain::ShippedOrder::from(&shipment.event());
    s.put_shipped_order(&shipped).await.unwrap();
    assert_eq!(
        s.shipped_order(&created.order_id).await.unwrap(),
        Some(shipped.clone())
    );
    let body = support::domain::RequestReturn {
        order_id: created.order_id.clone(),
        reason: "dented".into(),
        items: vec![contracts::ReturnItem {
            sku: "A".into(),
            quantity: 1,
        }],
    };
    let ret = support::domain::Return::request(
        body,
        &shipped,
        contracts::IdempotencyKey::new("k").unwrap(),
        Utc::now(),
    )
    .unwrap();
    assert_eq!(s.insert_return(&ret).await.unwrap(), ret);
    use support::store::Receipt;
    let received = ret.received(Utc::now());
    assert_eq!(
        s.begin_receipt(&received).await.unwrap(),
        Some(Receipt::Started(received.clone()))
    );
    let later = ret.received(Utc::now() + chrono::Duration::seconds(9));
    assert_eq!(
        s.begin_receipt(&later).await.unwrap(),
        Some(Receipt::Pending(received.clone())),
        "a retry gets the receipt as first stored, not its own date"
    );
    s.finish_receipt(&received).await.unwrap();
    s.finish_receipt(&received).await.unwrap();
    assert_eq!(
        s.begin_receipt(&later).await.unwrap(),
        Some(Receipt::Done(received.clone()))
    );
    assert_eq!(s.get_return(&ret.return_id).await.unwrap(), Some(received));
    let mut ghost = ret.clone();
    ghost.return_id = "RET-ghost".into();
    assert_eq!(s.begin_receipt(&ghost).await.unwrap(), None);
}
