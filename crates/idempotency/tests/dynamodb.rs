//! The scenario suite against the DynamoDB store on the local stand-in (moto), provisioned from
//! `template.yaml`, plus what only DynamoDB shows: the stored item format, the HTTP round trips
//! actually sent, a composite-key table, items another version wrote, and SDK failures on each
//! primitive.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, InternalServerError, ProvisionedThroughputExceededException,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_smithy_mocks::{MockResponse, MockResponseInterceptor, RuleMode, mock};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use common::{Boom, Fixture, order_request};
use idempotency::{
    Begin, DynamoDbStore, IdempotencyError, IdempotencyStore, Outcome, Request, RunError,
    StoreOperation,
};
use serde_json::json;
use testkit::{LocalStack, moto, template};

/// Counts the HTTP requests a client really sends (retries included).
#[derive(Debug, Clone, Default)]
struct RoundTrips(Arc<AtomicUsize>);

impl RoundTrips {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for RoundTrips {
    fn name(&self) -> &'static str {
        "RoundTrips"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Table {
    client: Client,
    name: String,
    round_trips: RoundTrips,
}

impl Table {
    /// The template's idempotency table on a freshly provisioned stack.
    async fn provision() -> Self {
        let config = moto().sdk_config().await;
        let stack = LocalStack::provision(&config, &template()).await.unwrap();
        let round_trips = RoundTrips::default();
        let client = Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .interceptor(round_trips.clone())
                .build(),
        );
        Self {
            client,
            name: stack.table("IdempotencyTable").to_owned(),
            round_trips,
        }
    }

    fn store(&self) -> Arc<dyn IdempotencyStore> {
        Arc::new(DynamoDbStore::new(self.client.clone(), &self.name))
    }

    async fn raw_item(&self, id: &str) -> HashMap<String, AttributeValue> {
        self.client
            .get_item()
            .table_name(&self.name)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("item stored")
    }
}

async fn store() -> Arc<dyn IdempotencyStore> {
    Table::provision().await.store()
}

scenario_suite!(store().await);

#[tokio::test(flavor = "multi_thread")]
async fn composite_key_keeps_static_partitions_apart() {
    let config = moto().sdk_config().await;
    let client = Client::new(&config);
    let name = format!("composite-{}", uuid::Uuid::new_v4().simple());
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("id"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("id", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let store = Arc::new(DynamoDbStore::new(client.clone(), &name));
    common::composite_key_keeps_static_partitions_apart(store, "pk").await;

    let items = client.scan().table_name(&name).send().await.unwrap();
    let mut partitions: Vec<String> = items
        .items()
        .iter()
        .map(|item| item["pk"].as_s().unwrap().clone())
        .collect();
    partitions.sort();
    assert_eq!(partitions, ["idempotency#fn-a", "idempotency#fn-b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_item_has_the_documented_attributes_and_types() {
    let table = Table::provision().await;
    let f = Fixture::new(table.store());
    let request = order_request("1")
        .validate(&json!({"total": "237.51"}))
        .unwrap()
        .remaining_time(Duration::from_secs(30));
    let Begin::Claimed(claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("must claim");
    };
    let id = f.idem.record_id(&request).unwrap();
    let claimed = table.raw_item(&id).await;
    let now = f.now_millis();
    assert_eq!(claimed["status"], AttributeValue::S("INPROGRESS".into()));
    assert_eq!(
        claimed["in_progress_expiration"],
        AttributeValue::N((now + 30_000).to_string())
    );
    assert_eq!(
        claimed["expiration"],
        AttributeValue::N((now / 1000 + 3600).to_string())
    );
    assert_eq!(
        claimed["validation"],
        AttributeValue::S(request.validation_hash().unwrap().to_owned())
    );
    let owner = claimed["owner"].as_s().unwrap().clone();
    assert_eq!(owner.len(), 32);
    assert!(!claimed.contains_key("data"));

    claim.complete(&json!({"charged": true})).await.unwrap();
    let completed = table.raw_item(&id).await;
    assert_eq!(completed["id"], AttributeValue::S(id.clone()));
    assert_eq!(completed["status"], AttributeValue::S("COMPLETED".into()));
    assert_eq!(
        completed["data"],
        AttributeValue::S(r#"{"charged":true}"#.into())
    );
    assert_eq!(completed["owner"], AttributeValue::S(owner));
    assert!(id.starts_with("test#charge#"));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_round_trips_are_two_for_fresh_and_one_for_a_duplicate() {
    let table = Table::provision().await;
    let f = Fixture::new(table.store());
    let request = order_request("1");
    let start = table.round_trips.count();
    f.charge(&request).await.unwrap();
    assert_eq!(table.round_trips.count() - start, 2);
    assert_eq!(f.idem.metrics().store_calls, 2);

    let again = f.charge(&request).await.unwrap();
    assert!(again.is_replayed());
    assert_eq!(
        table.round_trips.count() - start,
        3,
        "a duplicate is one failed conditional put (ALL_OLD), no read"
    );
    let m = f.idem.metrics();
    assert_eq!((m.store_calls, m.get_calls), (3, 0));

    let in_progress = order_request("2");
    let Begin::Claimed(_held) = f.idem.begin(&in_progress).await.unwrap() else {
        panic!("must claim");
    };
    let before = table.round_trips.count();
    assert_eq!(f.charge(&in_progress).await.unwrap(), Outcome::InProgress);
    assert_eq!(table.round_trips.count() - before, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_duplicate_sends_no_request() {
    let table = Table::provision().await;
    let f = Fixture::with(table.store(), |c| c.local_cache(8));
    let request = order_request("1");
    f.charge(&request).await.unwrap();
    let before = table.round_trips.count();
    assert!(f.charge(&request).await.unwrap().is_replayed());
    assert_eq!(table.round_trips.count(), before);
}

impl Table {
    /// Writes `attributes` (plus `id`) as the item of `id`, as another version or a hand would.
    async fn put_raw(&self, id: &str, attributes: &[(&str, AttributeValue)]) {
        let mut item: HashMap<String, AttributeValue> = attributes
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        item.insert("id".to_owned(), AttributeValue::S(id.to_owned()));
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_written_by_last_months_version_never_wedges_its_key() {
    use common::LastMonths;
    let table = Table::provision().await;
    // The result attribute renamed (holding what today's `Charge` would read), stored as a map
    // instead of text, cut short, of another shape.
    let renamed = r#"{"order_id":"1073459984","amount":"237.51","attempt":1}"#;
    let as_map = AttributeValue::M(HashMap::from([(
        "charged".to_owned(),
        AttributeValue::Bool(true),
    )]));
    let seeds = [
        (LastMonths::DataRenamed, ("result", s(renamed))),
        (LastMonths::DataRenamed, ("data", as_map)),
        (
            LastMonths::NotJson,
            ("data", s(LastMonths::NotJson.data().unwrap())),
        ),
        (
            LastMonths::OtherShape,
            ("data", s(LastMonths::OtherShape.data().unwrap())),
        ),
    ];
    for (i, (seeded, data)) in seeds.into_iter().enumerate() {
        let f = Fixture::new(table.store());
        let request = order_request(&format!("last-month-{i}"));
        let id = f.idem.record_id(&request).unwrap();
        let now = f.now_millis();
        table
            .put_raw(
                &id,
                &[
                    ("status", s("COMPLETED")),
                    (
                        "expiration",
                        n(now / 1000 + common::LAST_MONTHS_RECORD_LIVES.as_secs()),
                    ),
                    ("in_progress_expiration", n(now - 1)),
                    ("owner", s("last-months-version")),
                    data,
                ],
            )
            .await;
        common::a_result_written_by_last_months_version_never_wedges_its_key(&f, &request, seeded)
            .await;
    }
}

/// Items whose status or expiry this version cannot read: none of them blocks its key for
/// ever, none is a store error. Without a readable expiry an item is expired; with an unknown
/// status it is a claim of unknown outcome, held until its in-progress expiry (at once without
/// one), never a replay.
#[tokio::test(flavor = "multi_thread")]
async fn items_with_an_unreadable_status_or_expiry_never_wedge_their_key() {
    let table = Table::provision().await;
    let f = Fixture::new(table.store());
    let now = f.now_millis();
    let live = n(now / 1000 + 3600);
    let forever = n(u64::MAX);
    let claimable_now: Vec<(&str, Vec<(&str, AttributeValue)>)> = vec![
        (
            "unknown status, no in-progress expiry",
            vec![("status", s("SOMETHING")), ("expiration", forever.clone())],
        ),
        (
            "no status",
            vec![("expiration", forever.clone()), ("data", s("{}"))],
        ),
        (
            "status not a string",
            vec![("status", n(2)), ("expiration", live.clone())],
        ),
        (
            "unknown status, in-progress expiry not a number",
            vec![
                ("status", s("DONE")),
                ("expiration", live.clone()),
                ("in_progress_expiration", s("soon")),
            ],
        ),
        (
            "no expiration",
            vec![("status", s("COMPLETED")), ("data", s("{}"))],
        ),
        (
            "expiration not a number",
            vec![
                ("status", s("COMPLETED")),
                ("expiration", s("tomorrow")),
                ("data", s("{}")),
            ],
        ),
        ("nothing but its id", vec![]),
    ];
    for (i, (what, attributes)) in claimable_now.iter().enumerate() {
        let request = order_request(&format!("claimable-{i}"));
        table
            .put_raw(&f.idem.record_id(&request).unwrap(), attributes)
            .await;
        let outcome = f.charge(&request).await;
        assert!(
            matches!(&outcome, Ok(o) if o.is_fresh()),
            "{what}: {outcome:?}"
        );
    }

    // An unknown status with a live in-progress expiry is somebody's claim until then.
    let request = order_request("held");
    let id = f.idem.record_id(&request).unwrap();
    table
        .put_raw(
            &id,
            &[
                ("status", s("DONE")),
                ("expiration", forever.clone()),
                ("in_progress_expiration", n(now + 10_000)),
            ],
        )
        .await;
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::InProgress);
    let held = f.record(&request).await.unwrap();
    assert_eq!(
        (held.status, held.in_progress_expiration),
        (idempotency::Status::InProgress, Some(now + 10_000)),
        "read as an in-progress claim"
    );
    f.clock.advance(Duration::from_millis(10_001));
    assert!(f.charge(&request).await.unwrap().is_fresh());

    // An INPROGRESS record whose in-progress expiry is unreadable lives until its expiration.
    let request = order_request("in-progress-without-deadline");
    table
        .put_raw(
            &f.idem.record_id(&request).unwrap(),
            &[
                ("status", s("INPROGRESS")),
                ("expiration", n(f.now_millis() / 1000 + 60)),
                ("in_progress_expiration", AttributeValue::Bool(true)),
            ],
        )
        .await;
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::InProgress);
    f.clock.advance(Duration::from_secs(61));
    assert!(f.charge(&request).await.unwrap().is_fresh());
    assert_eq!(f.idem.metrics().store_errors, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_endpoint_is_a_store_error_on_claim() {
    // A loopback port nobody listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(RetryConfig::disabled())
        .build();
    let f = Fixture::new(Arc::new(DynamoDbStore::new(
        Client::from_conf(config),
        "table",
    )));
    let err = f.charge(&order_request("1")).await.unwrap_err();
    let Some(IdempotencyError::Store(store)) = err.idempotency_error() else {
        panic!("expected a store error, got {err:?}");
    };
    assert_eq!(store.operation(), StoreOperation::Claim);
    assert!(!store.is_malformed_record());
    assert_eq!(f.runs(), 0);
}

/// A client answering from `rules` (aws-smithy-mocks), with SDK retries off so each primitive
/// is exactly one attempt.
fn mocked(rules: &[&aws_smithy_mocks::Rule]) -> Arc<dyn IdempotencyStore> {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(RetryConfig::disabled())
        .build();
    Arc::new(DynamoDbStore::new(Client::from_conf(config), "table"))
}

fn store_operation(err: &RunError<Boom>) -> StoreOperation {
    match err.idempotency_error() {
        Some(IdempotencyError::Store(e)) => e.operation(),
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_put_surfaces_as_a_store_error_with_the_sdk_error_as_source() {
    let put = mock!(Client::put_item).then_error(|| {
        PutItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let f = Fixture::new(mocked(&[&put]));
    let err = f.charge(&order_request("1")).await.unwrap_err();
    assert_eq!(store_operation(&err), StoreOperation::Claim);
    assert_eq!(f.runs(), 0);
    let IdempotencyError::Store(store) = err.idempotency_error().unwrap() else {
        unreachable!()
    };
    let sdk = std::error::Error::source(store).expect("SDK error kept as source");
    let sdk = sdk
        .downcast_ref::<aws_sdk_dynamodb::error::SdkError<PutItemError>>()
        .expect("the SDK's PutItem error");
    assert!(matches!(
        sdk.as_service_error(),
        Some(PutItemError::ProvisionedThroughputExceededException(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_update_surfaces_as_a_store_error_after_the_operation_ran() {
    let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let update = mock!(Client::update_item).then_error(|| {
        UpdateItemError::InternalServerError(InternalServerError::builder().message("5xx").build())
    });
    let f = Fixture::new(mocked(&[&put, &update]));
    let err = f.charge(&order_request("1")).await.unwrap_err();
    assert_eq!(store_operation(&err), StoreOperation::Complete);
    assert_eq!(f.runs(), 1);
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_delete_surfaces_as_a_store_error() {
    let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let delete = mock!(Client::delete_item).then_error(|| {
        DeleteItemError::InternalServerError(InternalServerError::builder().message("5xx").build())
    });
    let f = Fixture::new(mocked(&[&put, &delete]));
    let Begin::Claimed(claim) = f.idem.begin(&order_request("1")).await.unwrap() else {
        panic!("must claim");
    };
    let err = claim.release().await.unwrap_err();
    assert!(matches!(&err, IdempotencyError::Store(e) if e.operation() == StoreOperation::Release));
    // Through run(): the operation's error is what the caller sees; the failed delete is counted.
    assert!(matches!(
        f.failing(&order_request("2")).await.unwrap_err(),
        RunError::Operation(Boom)
    ));
    assert_eq!(delete.num_calls(), 2);
    assert_eq!(f.idem.metrics().store_errors, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn put_retried_after_a_lost_response_recognises_its_own_claim() {
    // The SDK retried a put whose first response was lost: DynamoDB reports the condition failed
    // and returns (ALL_OLD) the item the first attempt wrote, owner token included.
    let put = mock!(Client::put_item).then_compute_response(|input| {
        MockResponse::Error(PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .set_item(input.item().cloned())
                .build(),
        ))
    });
    let update = mock!(Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let f = Fixture::new(mocked(&[&put, &update]));
    assert!(f.charge(&order_request("1")).await.unwrap().is_fresh());
    assert_eq!(f.runs(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_of_an_item_already_gone_is_a_release_and_of_anothers_item_is_a_lost_claim() {
    let gone = mock!(Client::delete_item).then_error(|| {
        DeleteItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let f = Fixture::new(mocked(&[&put, &gone]));
    let Begin::Claimed(claim) = f.idem.begin(&order_request("1")).await.unwrap() else {
        panic!("must claim");
    };
    claim.release().await.unwrap();

    let taken = mock!(Client::delete_item).then_error(|| {
        let other = HashMap::from([
            ("id".to_owned(), AttributeValue::S("test#charge#x".into())),
            ("status".to_owned(), AttributeValue::S("INPROGRESS".into())),
            ("expiration".to_owned(), AttributeValue::N("1".into())),
            ("owner".to_owned(), AttributeValue::S("someone-else".into())),
        ]);
        DeleteItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .set_item(Some(other))
                .build(),
        )
    });
    let f = Fixture::new(mocked(&[&put, &taken]));
    let Begin::Claimed(claim) = f.idem.begin(&order_request("1")).await.unwrap() else {
        panic!("must claim");
    };
    assert!(matches!(
        claim.release().await,
        Err(IdempotencyError::ClaimLost { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_from_requests_are_stable_across_processes() {
    // Same key material in another process (here: another Idempotency on the same table) maps
    // to the same record.
    let table = Table::provision().await;
    let first = Fixture::new(table.store());
    let second = Fixture::new(table.store());
    let request = Request::new(&json!({"order-id": "1"})).unwrap();
    first.charge(&request).await.unwrap();
    assert!(second.charge(&request).await.unwrap().is_replayed());
    assert_eq!(second.runs(), 0);
}
