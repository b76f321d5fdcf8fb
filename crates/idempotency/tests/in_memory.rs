//! The scenario suite against the in-memory store, plus what only a store under the test's
//! control can show: injected store failures, a store that keeps answering with expired records,
//! and a store that cannot return the conflicting record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Boom, Fixture, order_request};
use idempotency::{
    Begin, ClaimResult, FencedWrite, IdempotencyConfig, IdempotencyError, IdempotencyStore,
    InMemoryStore, Outcome, Record, RunError, StoreError, StoreOperation, TableLayout,
};
use serde::Deserialize;

async fn store() -> Arc<dyn IdempotencyStore> {
    Arc::new(InMemoryStore::new())
}

scenario_suite!(store().await);

#[tokio::test(flavor = "multi_thread")]
async fn composite_key_keeps_static_partitions_apart() {
    common::composite_key_keeps_static_partitions_apart(store().await, "pk").await;
}

fn store_error(err: &RunError<Boom>) -> &StoreError {
    match err.idempotency_error() {
        Some(IdempotencyError::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claim_failure_surfaces_as_a_store_error_and_the_operation_does_not_run() {
    let memory = InMemoryStore::new();
    let f = Fixture::new(Arc::new(memory.clone()));
    memory.fail_next(StoreOperation::Claim, 1);
    let err = f.charge(&order_request("1")).await.unwrap_err();
    assert_eq!(store_error(&err).operation(), StoreOperation::Claim);
    assert_eq!(err.error_type(), "IdempotencyStoreFailed");
    assert_eq!(f.runs(), 0);
    assert_eq!(f.idem.metrics().store_errors, 1);
    // The failure was transient: the retry runs.
    assert!(f.charge(&order_request("1")).await.unwrap().is_fresh());
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_failure_surfaces_as_a_store_error_and_the_claim_stays_until_it_expires() {
    let memory = InMemoryStore::new();
    let f = Fixture::new(Arc::new(memory.clone()));
    let request = order_request("1").remaining_time(Duration::from_secs(10));
    memory.fail_next(StoreOperation::Complete, 1);
    let err = f.charge(&request).await.unwrap_err();
    assert_eq!(store_error(&err).operation(), StoreOperation::Complete);
    assert_eq!(
        f.runs(),
        1,
        "the operation ran; only storing its result failed"
    );
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::InProgress);
    f.clock.advance(Duration::from_secs(11));
    assert!(f.charge(&request).await.unwrap().is_fresh());
}

#[tokio::test(flavor = "multi_thread")]
async fn release_failure_surfaces_from_the_two_step_api_and_is_logged_by_run() {
    let memory = InMemoryStore::new();
    let f = Fixture::new(Arc::new(memory.clone()));
    let request = order_request("1");
    let Begin::Claimed(claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("must claim");
    };
    memory.fail_next(StoreOperation::Release, 1);
    let err = claim.release().await.unwrap_err();
    let IdempotencyError::Store(e) = &err else {
        panic!("expected a store error, got {err:?}");
    };
    assert_eq!(e.operation(), StoreOperation::Release);
    assert!(err.is_transient());

    // Through run(), the operation's own error wins and the failed release is counted.
    let other = order_request("2");
    memory.fail_next(StoreOperation::Release, 1);
    assert!(matches!(
        f.failing(&other).await.unwrap_err(),
        RunError::Operation(Boom)
    ));
    assert_eq!(f.idem.metrics().store_errors, 2);
    assert_eq!(
        f.charge(&other).await.unwrap(),
        Outcome::InProgress,
        "the unreleased claim blocks until it expires"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn store_error_keeps_the_backend_error_as_its_source() {
    let memory = InMemoryStore::new();
    let f = Fixture::new(Arc::new(memory.clone()));
    memory.fail_next(StoreOperation::Claim, 1);
    let err = f.idem.begin(&order_request("1")).await.unwrap_err();
    let store = std::error::Error::source(&err).expect("store error");
    let backend = store.source().expect("backend error");
    assert!(backend.is::<idempotency::InjectedFailure>());
}

/// A store whose conflicting record is always already expired: the race the claim loop retries.
struct AlwaysExpiredConflict;

#[async_trait::async_trait]
impl IdempotencyStore for AlwaysExpiredConflict {
    async fn claim(
        &self,
        _: &TableLayout,
        record: &Record,
        _: u64,
    ) -> Result<ClaimResult, StoreError> {
        Ok(ClaimResult::Conflict(Some(Record {
            expiration: 0,
            owner: "another-invocation".into(),
            ..record.clone()
        })))
    }
    async fn complete(
        &self,
        _: &TableLayout,
        _: &str,
        _: &str,
        _: &str,
        _: u64,
    ) -> Result<FencedWrite, StoreError> {
        Ok(FencedWrite::NotOwner)
    }
    async fn release(&self, _: &TableLayout, _: &str, _: &str) -> Result<FencedWrite, StoreError> {
        Ok(FencedWrite::NotOwner)
    }
    async fn get(&self, _: &TableLayout, _: &str) -> Result<Option<Record>, StoreError> {
        Ok(None)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claim_conflicting_with_an_expired_record_is_retried_then_inconsistent() {
    let f = Fixture::new(Arc::new(AlwaysExpiredConflict));
    let err = f.charge(&order_request("1")).await.unwrap_err();
    assert!(matches!(
        err.idempotency_error(),
        Some(IdempotencyError::InconsistentState { attempts: 3 })
    ));
    assert_eq!(err.error_type(), "IdempotencyInconsistentState");
    let m = f.idem.metrics();
    assert_eq!((m.claim_calls, m.claim_retries), (3, 3));
    assert_eq!(f.runs(), 0);
}

/// A store that cannot return the record a claim conflicted with (no `ALL_OLD`).
struct NoAllOld(InMemoryStore);

#[async_trait::async_trait]
impl IdempotencyStore for NoAllOld {
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now: u64,
    ) -> Result<ClaimResult, StoreError> {
        match self.0.claim(layout, record, now).await? {
            ClaimResult::Conflict(_) => Ok(ClaimResult::Conflict(None)),
            claimed => Ok(claimed),
        }
    }
    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError> {
        self.0.complete(layout, id, owner, data, expiration).await
    }
    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError> {
        self.0.release(layout, id, owner).await
    }
    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        self.0.get(layout, id).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_without_all_old_falls_back_to_one_consistent_read() {
    let f = Fixture::new(Arc::new(NoAllOld(InMemoryStore::new())));
    let request = order_request("1");
    f.charge(&request).await.unwrap();
    assert!(f.charge(&request).await.unwrap().is_replayed());
    let m = f.idem.metrics();
    assert_eq!((m.store_calls, m.get_calls), (4, 1));
}

#[derive(Debug, Deserialize)]
struct OrderCreated {
    #[serde(rename = "idempotency-key")]
    idempotency_key: Option<String>,
    total: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_handler_runs_once_per_key_extracted_from_the_typed_event() {
    let f = Fixture::new(store().await);
    let handler = f.idem.handler(
        |e: &OrderCreated| e.idempotency_key.clone(),
        |e: OrderCreated| async move { Ok::<_, Boom>(format!("charged {}", e.total)) },
    );
    let event = |key: Option<&str>, total: &str| OrderCreated {
        idempotency_key: key.map(str::to_owned),
        total: total.to_owned(),
    };
    let remaining = Some(Duration::from_secs(30));
    let first = handler.call(event(Some("k1"), "1.00"), remaining).await;
    assert_eq!(first.unwrap(), Outcome::Fresh("charged 1.00".to_owned()));
    let again = handler.call(event(Some("k1"), "2.00"), remaining).await;
    assert_eq!(again.unwrap(), Outcome::Replayed("charged 1.00".to_owned()));
    let missing = handler.call(event(None, "3.00"), remaining).await;
    assert!(matches!(
        missing.unwrap_err().idempotency_error(),
        Some(IdempotencyError::KeyMissing)
    ));
    assert_eq!(handler.idempotency().metrics().fresh, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn result_that_cannot_be_serialized_releases_the_claim() {
    use std::collections::BTreeMap;
    let f = Fixture::new(store().await);
    let request = order_request("1");
    let Begin::Claimed(claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("must claim");
    };
    // JSON object keys must be strings: a map keyed by tuples does not serialize.
    let unserializable: BTreeMap<(u8, u8), u8> = BTreeMap::from([((1, 2), 3)]);
    let err = claim.complete(&unserializable).await.unwrap_err();
    assert_eq!(err.error_type(), "IdempotencySerialization");
    assert!(f.record(&request).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn default_key_prefix_is_function_and_operation() {
    let memory = InMemoryStore::new();
    let idem =
        idempotency::Idempotency::new(memory.clone(), IdempotencyConfig::new("create-order"));
    let request = order_request("1");
    idem.run(&request, || async { Ok::<_, Boom>(1) })
        .await
        .unwrap();
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
    let ids: Vec<String> = memory.records().into_iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [format!(
            "{function}#create-order#{}",
            request.key_hash().unwrap()
        )]
    );
}

/// A store whose first claim lands but reports a conflict with what it just wrote, as an SDK
/// retry of a put whose response was lost does against DynamoDB.
struct LostClaimResponse(InMemoryStore);

#[async_trait::async_trait]
impl IdempotencyStore for LostClaimResponse {
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now: u64,
    ) -> Result<ClaimResult, StoreError> {
        match self.0.claim(layout, record, now).await? {
            ClaimResult::Claimed => Ok(ClaimResult::Conflict(Some(record.clone()))),
            conflict => Ok(conflict),
        }
    }
    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError> {
        self.0.complete(layout, id, owner, data, expiration).await
    }
    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError> {
        self.0.release(layout, id, owner).await
    }
    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        self.0.get(layout, id).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claim_conflicting_with_its_own_write_is_still_ours() {
    let f = Fixture::new(Arc::new(LostClaimResponse(InMemoryStore::new())));
    let request = order_request("1");
    assert!(f.charge(&request).await.unwrap().is_fresh());
    assert_eq!(f.runs(), 1);
    // Another invocation's claim still conflicts for real.
    assert!(f.charge(&request).await.unwrap().is_replayed());
    assert_eq!(f.runs(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_written_by_last_months_version_never_wedges_its_key() {
    for seeded in common::LastMonths::ALL {
        let memory = InMemoryStore::new();
        let f = Fixture::new(Arc::new(memory.clone()));
        let request = order_request("1");
        let now = f.now_millis();
        memory.put(
            f.idem.config().layout(),
            Record {
                id: f.idem.record_id(&request).unwrap(),
                status: idempotency::Status::Completed,
                expiration: now / 1000 + common::LAST_MONTHS_RECORD_LIVES.as_secs(),
                in_progress_expiration: Some(now - 1),
                data: seeded.data().map(str::to_owned),
                validation: None,
                owner: "last-months-version".into(),
            },
        );
        common::a_result_written_by_last_months_version_never_wedges_its_key(&f, &request, seeded)
            .await;
    }
}
