//! The counting proxy in front of the moto stand-in: an SDK client pointed at it works as
//! against the stand-in itself, every call is counted by operation and table, with a failed
//! conditional write told apart (it is billed like any write), and the client keeps its
//! connection open between calls, as against AWS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_bench::proxy::CountingProxy;
use testkit::{LocalStack, moto, template};

#[tokio::test(flavor = "multi_thread")]
async fn calls_through_the_proxy_are_counted_by_table_and_outcome() {
    let standin = moto();
    let stack = LocalStack::provision(&standin.sdk_config().await, &template())
        .await
        .unwrap();
    let table = stack.table("IdempotencyTable").to_owned();
    let proxy = CountingProxy::start(standin.endpoint()).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&testkit::sdk_config_for(&proxy.endpoint()).await);

    let claim = || {
        ddb.put_item()
            .table_name(&table)
            .item("id", AttributeValue::S("bench#proxy".into()))
            .condition_expression("attribute_not_exists(id)")
    };
    claim().send().await.unwrap();
    let second = claim().send().await.unwrap_err();
    assert!(
        second
            .into_service_error()
            .is_conditional_check_failed_exception()
    );
    let before_read = proxy.snapshot();
    let got = ddb
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S("bench#proxy".into()))
        .send()
        .await
        .unwrap();
    assert!(got.item.is_some(), "the proxy passes answers back intact");

    let counts = proxy.snapshot();
    let writes = counts.dynamodb_writes(Some(&table));
    assert_eq!((writes.calls, writes.failed_conditions), (2, 1));
    assert_eq!(counts.dynamodb_reads(Some(&table)).calls, 1);
    let read_only = counts.since(&before_read);
    assert_eq!(read_only.total().calls, 1);
    assert_eq!(read_only.dynamodb_writes(None).calls, 0);
    // moto answers `Connection: close`; the proxy does not pass it on, so the client kept its
    // one connection for all three calls, as against an AWS endpoint.
    assert_eq!(proxy.connections_accepted(), 1);
}
