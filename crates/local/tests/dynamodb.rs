//! `--dynamodb`: the same functions over DynamoDB tables on the moto stand-in, provisioned from
//! the template; the demo ends in the same state as in memory, and the records land where the
//! deployed functions would write them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use aws_sdk_dynamodb::types::AttributeValue;
use local::bus::Duplicates;
use local::demo;
use local::hosting::Stores;
use local::{Runner, RunnerOptions};
use testkit::{LocalStack, moto, template};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_on_dynamodb_ends_like_the_in_memory_run_with_duplicates() {
    let config = moto().sdk_config().await;
    let template = template();
    let stack = LocalStack::provision(&config, &template).await.unwrap();
    let runner = Runner::new(
        &template,
        RunnerOptions {
            stack_name: stack.stack.name.clone(),
            stores: Stores::DynamoDb(Box::new(config.clone())),
            ..RunnerOptions::in_memory()
        }
        .duplicates(Duplicates::new(0.5, 4)),
    )
    .unwrap();
    assert!(
        runner.banner().contains("DynamoDB stores"),
        "{}",
        runner.banner()
    );

    let report = demo::run(&template, &runner, 0.5, 4, "moto").await.unwrap();
    assert!(report.same_final_state, "{report:#?}");
    let state = &report.run.final_state;
    assert_eq!(
        state.store_counts, None,
        "DynamoDB runs do not count entities"
    );
    assert_eq!(state.order["status"], "Returned");
    assert!(report.run.summary.duplicates_injected > 0);
    assert_eq!(
        report.run.summary.deliveries.failed, 0,
        "{:?}",
        report.run.summary
    );

    // The order is in the stack's orders table, not in memory.
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let order_id = state.order["order-id"].as_str().unwrap();
    let item = ddb
        .get_item()
        .table_name(stack.table("OrdersTable"))
        .key("pk", AttributeValue::S(format!("ORDER#{order_id}")))
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("order {order_id} not in {}", stack.table("OrdersTable")));
    assert_eq!(item["status"], AttributeValue::S("Returned".into()));

    // Idempotency records carry the prefix the deployed function would use:
    // `<function name>#<operation>`, the function name being `<stack>-<LogicalId>`.
    let records = ddb
        .scan()
        .table_name(stack.table("IdempotencyTable"))
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = records
        .items()
        .iter()
        .filter_map(|i| i.get("id").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    // Each function's records under its own IDEMPOTENCY_KEY_PREFIX, as deployed.
    for prefix in [
        "orders-api#create-order#",
        "fulfillment-events#fulfil#",
        "orders-events#apply-status#",
        "support-events#record-shipped#",
        "support-api#request-return#",
    ] {
        assert!(
            ids.iter().any(|id| id.starts_with(prefix)),
            "no record starting {prefix} in {ids:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_does_not_exist_fails_the_request_not_the_runner() {
    let config = moto().sdk_config().await;
    // Nothing provisioned under this stack name: every table is missing.
    let runner = Runner::new(
        &template(),
        RunnerOptions {
            stack_name: "never-provisioned".into(),
            stores: Stores::DynamoDb(Box::new(config)),
            ..RunnerOptions::in_memory()
        },
    )
    .unwrap();
    let mut request = platform::http::ApiRequest {
        method: "GET".into(),
        path: "/orders/o-1".into(),
        ..Default::default()
    };
    let token = runner.customer_token("C-1").unwrap();
    request
        .headers
        .insert("authorization".into(), format!("Bearer {token}"));
    let response = runner.request(&request).await;
    assert_eq!(response.status, 503, "{}", response.body);
}
