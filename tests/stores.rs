//! The domains' DynamoDB adapters against the moto stand-in: every conditional write is one round
//! trip and behaves as the in-memory adapter does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use contracts::{Currency, Detail, IdempotencyKey, Metadata, OrderItem, OrderStatus};
use eventing::OutgoingEvent;
use orders::domain::{CreateOrder, Order};
use orders::store::{Advance, DynamoDbOrderStore, OrderStore};
use platform::doc_table::DocTable;
use support::domain::Units;
use support::store::Requested;
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

/// The `OrderCreated` fact of `order`.
fn created(order: &Order) -> OutgoingEvent {
    let key = IdempotencyKey::for_order(&order.customer_id, &IdempotencyKey::new("key-1").unwrap());
    let metadata = Metadata::first(key, order.order_id.clone(), order.created_at);
    OutgoingEvent::new(&Detail::new(metadata, order.created_event())).unwrap()
}

async fn outbox_of(ddb: &aws_sdk_dynamodb::Client, table: &str, pk: &str) -> Option<String> {
    ddb.get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .send()
        .await
        .unwrap()
        .item
        .and_then(|item| item.get("outbox")?.as_s().ok().cloned())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_inserted_once_with_its_fact_and_a_repeat_returns_the_stored_one() {
    let (config, stack) = stack().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let store = DynamoDbOrderStore::new(ddb.clone(), stack.table("OrdersTable"));
    let first = order();
    let fact = created(&first);
    assert_eq!(store.insert(&first, &fact).await.unwrap(), first);
    let mut retry = first.clone();
    retry.created_at = Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        store.insert(&retry, &created(&retry)).await.unwrap(),
        first,
        "the first write wins"
    );
    assert_eq!(
        store.get(&first.order_id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get("nope").await.unwrap(), None);
    // The fact stored with the order is the first one, as it will be published.
    let stored = outbox_of(
        &ddb,
        stack.table("OrdersTable"),
        &format!("ORDER#{}", first.order_id),
    )
    .await
    .unwrap();
    assert_eq!(OutgoingEvent::from_outbox(&stored).unwrap(), fact);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_moves_forward_only_and_an_unknown_order_is_told_apart() {
    let (config, stack) = stack().await;
    let store = DynamoDbOrderStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        stack.table("OrdersTable"),
    );
    let o = order();
    store.insert(&o, &created(&o)).await.unwrap();
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
async fn doc_table_keeps_the_first_document_and_rewrites_only_the_document() {
    let (config, stack) = stack().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = DocTable::new(ddb.clone(), stack.table("SupportTable"));
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
    table
        .put_doc("X#1", &serde_json::json!({"n": 3}))
        .await
        .unwrap();
    let item = table.get_item("X#1").await.unwrap().unwrap();
    assert_eq!(
        item.get("state")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("Requested"),
        "put_doc keeps the item's other attributes"
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

    let s = DynamoDbSupportStore::new(ddb.clone(), stack.table("SupportTable"));
    let shipped = support::domain::ShippedOrder::from(&shipment.event());
    s.put_shipped_order(&shipped).await.unwrap();
    assert_eq!(
        s.shipped_order(&created.order_id).await.unwrap(),
        Some((shipped.clone(), Units::new()))
    );
    let request = |key: &str, units: u32| {
        let body = support::domain::RequestReturn {
            order_id: created.order_id.clone(),
            reason: "dented".into(),
            items: vec![contracts::ReturnItem {
                sku: "A".into(),
                quantity: units,
            }],
        };
        support::domain::Return::request(
            body,
            &shipped,
            &Units::new(),
            IdempotencyKey::new(key).unwrap(),
            Utc::now(),
        )
        .unwrap()
    };
    let fact = |ret: &support::domain::Return| {
        let metadata = Metadata::first(ret.requested_key(), ret.order_id.clone(), ret.requested_at);
        OutgoingEvent::new(&Detail::new(metadata, ret.requested_event())).unwrap()
    };
    let ret = request("k", 1);
    assert_eq!(
        s.request_return(&ret, &fact(&ret), &shipped).await.unwrap(),
        Requested::Stored(ret.clone())
    );
    assert_eq!(
        s.request_return(&ret, &fact(&ret), &shipped).await.unwrap(),
        Requested::Exists(ret.clone()),
        "a re-run finds the return and counts nothing twice"
    );
    assert_eq!(
        s.shipped_order(&created.order_id).await.unwrap(),
        Some((shipped.clone(), Units::from([("A".to_owned(), 1)])))
    );
    // A repeated OrderShipped rewrites the order and keeps what returns took.
    s.put_shipped_order(&shipped).await.unwrap();
    let second = request("k2", 1);
    assert_eq!(
        s.request_return(&second, &fact(&second), &shipped)
            .await
            .unwrap(),
        Requested::Stored(second.clone())
    );
    let third = request("k3", 1);
    assert_eq!(
        s.request_return(&third, &fact(&third), &shipped)
            .await
            .unwrap(),
        Requested::Exceeds {
            sku: "A".into(),
            asked: 1,
            returnable: 0
        },
        "two of two shipped are back"
    );
    assert_eq!(s.get_return(&third.return_id).await.unwrap(), None);

    use support::store::Receipt;
    let received = ret.received(Utc::now());
    let received_fact = |r: &support::domain::Return| {
        let metadata = Metadata::first(r.requested_key(), r.order_id.clone(), Utc::now());
        OutgoingEvent::new(&Detail::new(metadata, r.received_event().unwrap())).unwrap()
    };
    assert_eq!(
        s.receive_return(&received, &received_fact(&received))
            .await
            .unwrap(),
        Some(Receipt::Received(received.clone()))
    );
    let later = ret.received(Utc::now() + chrono::Duration::seconds(9));
    assert_eq!(
        s.receive_return(&later, &received_fact(&later))
            .await
            .unwrap(),
        Some(Receipt::AlreadyReceived(received.clone())),
        "a retry gets the receipt as first stored, not its own date"
    );
    assert_eq!(s.get_return(&ret.return_id).await.unwrap(), Some(received));
    let mut ghost = later.clone();
    ghost.return_id = "RET-ghost".into();
    assert_eq!(
        s.receive_return(&ghost, &received_fact(&ghost))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_begun_by_the_previous_version_is_finished_with_its_stored_time() {
    // Last month's version stored a receipt as `state: Receiving` (with its `received-at`)
    // before publishing, and marked it Received after. A return left in between is received
    // again, its fact stored with the time first recorded.
    let (config, stack) = stack().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = stack.table("SupportTable");
    let first_received = "2026-11-20T10:00:00Z";
    let doc = serde_json::json!({
        "return-id": "RET-legacy", "order-id": "o-legacy", "customer-id": "456",
        "status": "Received", "reason": "dented", "items": [{ "sku": "A", "quantity": 1 }],
        "requested-at": "2026-11-19T10:00:00Z", "received-at": first_received,
        "request-key": "legacy-key"
    });
    ddb.put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("RETURN#RET-legacy".into()))
        .item("doc", AttributeValue::S(doc.to_string()))
        .item("state", AttributeValue::S("Receiving".into()))
        .send()
        .await
        .unwrap();
    let s = support::store::DynamoDbSupportStore::new(ddb.clone(), table);
    use support::store::SupportStore;
    let current = s.get_return("RET-legacy").await.unwrap().unwrap();
    let received = current.received(Utc::now());
    assert_eq!(
        received.received_at,
        Some(first_received.parse().unwrap()),
        "the stored time is kept"
    );
    let metadata = Metadata::first(received.requested_key(), "o-legacy", Utc::now());
    let fact =
        OutgoingEvent::new(&Detail::new(metadata, received.received_event().unwrap())).unwrap();
    assert_eq!(
        s.receive_return(&received, &fact).await.unwrap(),
        Some(support::store::Receipt::Received(received.clone()))
    );
    let stored = outbox_of(&ddb, table, "RETURN#RET-legacy").await.unwrap();
    assert_eq!(OutgoingEvent::from_outbox(&stored).unwrap(), fact);
}
