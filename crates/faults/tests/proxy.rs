//! The fault proxy in front of the moto stand-in, driven by the real SDK with the product's
//! retry and timeout policy (`platform::init`): every fault reaches the SDK as AWS would send it,
//! and the SDK reacts as it would to AWS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use faults::{Fault, FaultPlan, FaultProxy, Rule, Service, codes};
use testkit::{LocalStack, moto, template};

/// The SDK configuration a function gets (`platform::init::aws_config`), pointed at `endpoint`.
async fn product_sdk(endpoint: &str) -> SdkConfig {
    platform::init::loader()
        .region(aws_config::Region::new(testkit::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "faults",
        ))
        .load()
        .await
}

struct Setup {
    proxy: FaultProxy,
    stack: LocalStack,
    ddb: aws_sdk_dynamodb::Client,
    events: aws_sdk_eventbridge::Client,
}

async fn setup(plan: FaultPlan) -> Setup {
    let direct = moto().sdk_config().await;
    let stack = LocalStack::provision(&direct, &template()).await.unwrap();
    let proxy = FaultProxy::start(moto().endpoint(), plan).await.unwrap();
    let sdk = product_sdk(proxy.endpoint()).await;
    Setup {
        ddb: aws_sdk_dynamodb::Client::new(&sdk),
        events: aws_sdk_eventbridge::Client::new(&sdk),
        proxy,
        stack,
    }
}

fn put(
    s: &Setup,
    id: &str,
) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
    s.ddb
        .put_item()
        .table_name(s.stack.table("IdempotencyTable"))
        .item("id", AttributeValue::S(id.to_owned()))
        .condition_expression("attribute_not_exists(id)")
}

fn entry(s: &Setup, n: usize) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .event_bus_name(s.stack.bus("EventBus"))
        .source("com.orders")
        .detail_type("OrderCreated")
        .detail(format!("{{\"n\":{n}}}"))
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_and_5xx_attempts_are_retried_by_the_sdk_until_one_passes() {
    let s = setup(
        FaultPlan::seeded(1)
            .rule(
                Rule::new("throttle", Fault::throttle())
                    .operations(&["PutItem"])
                    .limit(1),
            )
            .rule(
                Rule::new("5xx", Fault::server_error(503))
                    .operations(&["PutItem"])
                    .limit(1),
            ),
    )
    .await;
    put(&s, "a").send().await.unwrap();
    let stats = s.proxy.stats();
    assert_eq!(stats.calls_to("dynamodb.PutItem"), 3, "{}", stats.text());
    assert_eq!(stats.by_kind.get("throttle"), Some(&1));
    assert_eq!(stats.by_kind.get("5xx"), Some(&1));
    assert_eq!(
        stats.forwarded, 1,
        "only the passing attempt reached the stand-in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_throttled_on_every_attempt_fails_with_the_service_throttling_code() {
    let s = setup(
        FaultPlan::seeded(1)
            .rule(Rule::new("ddb", Fault::throttle()).service(Service::DynamoDb))
            .rule(Rule::new("events", Fault::throttle()).service(Service::EventBridge)),
    )
    .await;
    let err = put(&s, "a").send().await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(codes::PROVISIONED_THROUGHPUT_EXCEEDED),
        "{err:?}"
    );
    let err = s
        .events
        .put_events()
        .entries(entry(&s, 0))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::THROTTLING), "{err:?}");
    let stats = s.proxy.stats();
    let attempts = u64::from(platform::init::SDK_MAX_ATTEMPTS);
    assert_eq!(stats.calls_to("dynamodb.PutItem"), attempts);
    assert_eq!(stats.calls_to("events.PutEvents"), attempts);
    assert_eq!(stats.forwarded, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_response_was_applied_so_the_retry_meets_its_own_write() {
    let s = setup(
        FaultPlan::seeded(1).rule(
            Rule::new("lost", Fault::lose_response(500))
                .operations(&["PutItem"])
                .limit(1),
        ),
    )
    .await;
    let err = put(&s, "a").send().await.unwrap_err();
    assert!(
        err.into_service_error()
            .is_conditional_check_failed_exception(),
        "the SDK's retry found the item the lost attempt wrote"
    );
    assert_eq!(s.proxy.stats().forwarded, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_and_delays_are_survived_by_the_sdk() {
    let s = setup(
        FaultPlan::seeded(1)
            .rule(
                Rule::new(
                    "drop",
                    Fault::Drop {
                        after_forward: false,
                    },
                )
                .operations(&["PutItem"])
                .limit(1),
            )
            .rule(
                Rule::new(
                    "drop-late",
                    Fault::Drop {
                        after_forward: true,
                    },
                )
                .operations(&["GetItem"])
                .limit(1),
            )
            .rule(
                Rule::new("delay", Fault::Delay(std::time::Duration::from_millis(200)))
                    .operations(&["PutItem"])
                    .limit(1),
            ),
    )
    .await;
    put(&s, "a").send().await.unwrap();
    let got = s
        .ddb
        .get_item()
        .table_name(s.stack.table("IdempotencyTable"))
        .key("id", AttributeValue::S("a".into()))
        .send()
        .await
        .unwrap();
    assert!(got.item.is_some());
    let stats = s.proxy.stats();
    assert_eq!(
        (
            stats.by_kind.get("drop"),
            stats.by_kind.get("drop-after-forward"),
            stats.by_kind.get("delay")
        ),
        (Some(&1), Some(&1), Some(&1)),
        "{}",
        stats.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chosen_put_events_entries_fail_in_place_and_the_others_reach_the_bus() {
    let s = setup(
        FaultPlan::seeded(5).rule(
            Rule::new(
                "entries",
                Fault::FailEntries {
                    share: 0.5,
                    code: codes::THROTTLING.into(),
                },
            )
            .operations(&["PutEvents"])
            .limit(1),
        ),
    )
    .await;
    let out = s
        .events
        .put_events()
        .set_entries(Some((0..10).map(|n| entry(&s, n)).collect()))
        .send()
        .await
        .unwrap();
    let failed: Vec<bool> = out
        .entries()
        .iter()
        .map(|e| e.error_code().is_some())
        .collect();
    let failed_count = failed.iter().filter(|f| **f).count();
    assert_eq!(failed.len(), 10, "one result per entry, in order");
    assert_eq!(out.failed_entry_count() as usize, failed_count);
    assert!(failed_count > 0 && failed_count < 10, "{failed:?}");
    for e in out.entries() {
        match e.error_code() {
            Some(code) => assert_eq!(code, codes::THROTTLING),
            None => assert!(
                e.event_id().is_some(),
                "an accepted entry carries its event id"
            ),
        }
    }
    assert_eq!(s.proxy.stats().entries_failed, failed_count as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_call_times_out_at_the_attempt_timeout_and_is_retried() {
    let s = setup(
        FaultPlan::seeded(1).rule(
            Rule::new("hang", Fault::Hang)
                .operations(&["PutItem"])
                .limit(1),
        ),
    )
    .await;
    put(&s, "a").send().await.unwrap();
    let stats = s.proxy.stats();
    assert_eq!(stats.calls_to("dynamodb.PutItem"), 2, "{}", stats.text());
    assert_eq!(stats.by_kind.get("hang"), Some(&1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_call_can_be_awaited_and_released() {
    let s = setup(
        FaultPlan::seeded(1).rule(
            Rule::new("hang", Fault::Hang)
                .operations(&["PutItem"])
                .limit(1),
        ),
    )
    .await;
    let direct = aws_sdk_dynamodb::Client::new(
        &aws_config::defaults(BehaviorVersion::latest())
            .http_client(platform::init::http_client(true))
            .region(aws_config::Region::new(testkit::REGION))
            .endpoint_url(s.proxy.endpoint())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "faults",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await,
    );
    let table = s.stack.table("IdempotencyTable").to_owned();
    let call = tokio::spawn(async move {
        direct
            .put_item()
            .table_name(table)
            .item("id", AttributeValue::S("held".into()))
            .send()
            .await
    });
    s.proxy.injected_at_least("hang", 1).await;
    s.proxy.release_hung();
    let result = call.await.unwrap();
    assert!(
        result.is_err(),
        "a released hang closes the connection unanswered"
    );
    assert_eq!(s.proxy.stats().forwarded, 0);
}
