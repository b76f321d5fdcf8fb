//! The local AWS stand-in, provisioned from `template.yaml`, behaves like the deployed stack:
//! the idempotency table takes conditional writes, and an event put on the bus lands in the queue
//! the template's rule targets, and only there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use testkit::{LocalStack, moto, template};

#[tokio::test(flavor = "multi_thread")]
async fn stand_in_is_provisioned_from_the_template_and_routes_by_its_rules() {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    // The idempotency table exists with the template's key schema and TTL attribute.
    let table = stack.table("IdempotencyTable");
    let described = ddb.describe_table().table_name(table).send().await.unwrap();
    let key = &described.table.unwrap().key_schema.unwrap()[0];
    assert_eq!(key.attribute_name, "id");
    let ttl = ddb
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description
            .unwrap()
            .attribute_name
            .as_deref(),
        Some("expiration")
    );

    // A conditional put claims once; the second identical claim fails its condition.
    let put = || {
        ddb.put_item()
            .table_name(table)
            .item("id", AttributeValue::S("fn#abc".into()))
            .item("status", AttributeValue::S("INPROGRESS".into()))
            .condition_expression("attribute_not_exists(id)")
    };
    put().send().await.unwrap();
    let second = put().send().await.unwrap_err();
    assert!(
        second
            .into_service_error()
            .is_conditional_check_failed_exception(),
        "the second claim must fail its condition"
    );
    let got = ddb
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S("fn#abc".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.item.unwrap()["status"],
        AttributeValue::S("INPROGRESS".into())
    );

    // OrderCreated from com.orders goes to fulfillment's queue only.
    let out = events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name(stack.bus("EventBus"))
                .source(contracts::source::ORDERS)
                .detail_type(contracts::detail_type::ORDER_CREATED)
                .detail(r#"{"metadata":{},"data":{"order-id":"1"}}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count, 0);

    let fulfillment = stack.drain(&sqs, "FulfillmentEventsQueue").await.unwrap();
    assert_eq!(
        fulfillment.len(),
        1,
        "OrderCreated must reach fulfillment's queue"
    );
    let envelope: serde_json::Value = serde_json::from_str(&fulfillment[0]).unwrap();
    assert_eq!(envelope["detail-type"], "OrderCreated");
    assert_eq!(envelope["detail"]["data"]["order-id"], "1");
    for other in ["OrdersEventsQueue", "SupportEventsQueue"] {
        assert!(
            stack.drain(&sqs, other).await.unwrap().is_empty(),
            "OrderCreated must not reach {other}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_from_the_wrong_source_matches_no_rule() {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    // OrderCreated is only routed from com.orders: a spoofed source reaches nobody.
    events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name(stack.bus("EventBus"))
                .source(contracts::source::SUPPORT)
                .detail_type(contracts::detail_type::ORDER_CREATED)
                .detail("{}")
                .build(),
        )
        .send()
        .await
        .unwrap();
    for queue in [
        "OrdersEventsQueue",
        "FulfillmentEventsQueue",
        "SupportEventsQueue",
    ] {
        assert!(
            stack.drain(&sqs, queue).await.unwrap().is_empty(),
            "{queue} got a spoofed event"
        );
    }
}
