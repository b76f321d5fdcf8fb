//! The scenario suite shared by every store: each scenario takes a fresh, empty store and must
//! hold for the in-memory store and the DynamoDB store alike (ported from Powertools' functional
//! and end-to-end idempotency suites, plus fencing, concurrency and call counts).

// Each test binary runs the scenarios that apply to its store; the rest are unused there.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idempotency::{
    Begin, Idempotency, IdempotencyConfig, IdempotencyError, IdempotencyStore, ManualClock,
    Outcome, RecordState, Request, RunError, Status, UnreadableReason,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The operation's own error.
#[derive(Debug, thiserror::Error)]
#[error("boom")]
pub struct Boom;

/// A typical result of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub order_id: String,
    pub amount: String,
    pub attempt: usize,
}

pub struct Fixture {
    pub store: Arc<dyn IdempotencyStore>,
    pub clock: ManualClock,
    pub idem: Idempotency,
    /// Times the operation actually ran (its side effect).
    pub runs: Arc<AtomicUsize>,
}

impl Fixture {
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self::with(store, |c| c)
    }

    pub fn with(
        store: Arc<dyn IdempotencyStore>,
        configure: impl FnOnce(IdempotencyConfig) -> IdempotencyConfig,
    ) -> Self {
        let clock = ManualClock::starting_now();
        let config = configure(
            IdempotencyConfig::new("charge")
                .key_prefix("test#charge")
                .clock(clock.clone()),
        );
        Self {
            idem: Idempotency::from_arc(Arc::clone(&store), config),
            store,
            clock,
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// Runs the charge operation: counts its side effect and returns a result naming the attempt.
    pub async fn charge(&self, request: &Request) -> Result<Outcome<Charge>, RunError<Boom>> {
        let runs = Arc::clone(&self.runs);
        self.idem
            .run(request, || async move {
                let attempt = runs.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Charge {
                    order_id: "1073459984".into(),
                    amount: "237.51".into(),
                    attempt,
                })
            })
            .await
    }

    pub async fn failing(&self, request: &Request) -> Result<Outcome<Charge>, RunError<Boom>> {
        let runs = Arc::clone(&self.runs);
        self.idem
            .run(request, || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Err(Boom)
            })
            .await
    }

    pub async fn record(&self, request: &Request) -> Option<idempotency::Record> {
        let id = self.idem.record_id(request).expect("keyed request");
        self.store
            .get(self.idem.config().layout(), &id)
            .await
            .expect("get")
    }

    pub fn now_millis(&self) -> u64 {
        use idempotency::Clock;
        self.clock.now_millis()
    }
}

pub fn order_request(order_id: &str) -> Request {
    Request::new(&json!({"order-id": order_id, "customer-id": "456"})).expect("keyed")
}

fn charge(attempt: usize) -> Charge {
    Charge {
        order_id: "1073459984".into(),
        amount: "237.51".into(),
        attempt,
    }
}

pub async fn first_execution_runs_the_operation_and_stores_its_result(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::new(store);
    let request = order_request("1");
    let outcome = f.charge(&request).await.unwrap();
    assert_eq!(outcome, Outcome::Fresh(charge(1)));
    assert_eq!(f.runs(), 1);

    let record = f.record(&request).await.expect("record stored");
    assert_eq!(
        record.id,
        format!("test#charge#{}", request.key_hash().unwrap())
    );
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.state_at(f.now_millis()), RecordState::Completed);
    let stored: Charge = serde_json::from_str(record.data.as_deref().unwrap()).unwrap();
    assert_eq!(stored, charge(1));
    assert_eq!(record.expiration, f.now_millis() / 1000 + 3600);

    let m = f.idem.metrics();
    assert_eq!((m.fresh, m.replayed, m.in_progress), (1, 0, 0));
}

pub async fn completed_duplicate_replays_the_stored_result_without_running(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::new(store);
    let request = order_request("1");
    f.charge(&request).await.unwrap();
    let before = f.idem.metrics().store_calls;

    let again = f.charge(&request).await.unwrap();
    assert_eq!(again, Outcome::Replayed(charge(1)));
    assert_eq!(f.runs(), 1, "the operation must not run for a duplicate");
    assert_eq!(f.idem.metrics().store_calls - before, 1);
    assert_eq!(f.idem.metrics().replayed, 1);
}

pub async fn duplicate_while_in_progress_is_rejected(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let request = order_request("1");
    let Begin::Claimed(claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    assert!(matches!(
        f.idem.begin(&request).await.unwrap(),
        Begin::InProgress
    ));
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::InProgress);
    assert_eq!(f.runs(), 0);
    assert_eq!(f.idem.metrics().in_progress, 2);

    claim.complete(&charge(7)).await.unwrap();
    assert_eq!(
        f.charge(&request).await.unwrap(),
        Outcome::Replayed(charge(7))
    );
}

pub async fn expired_in_progress_claim_is_taken_over(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let request = order_request("1").remaining_time(Duration::from_secs(5));
    let Begin::Claimed(_crashed) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    f.clock.advance(Duration::from_secs(4));
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::InProgress);

    f.clock.advance(Duration::from_secs(2));
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::Fresh(charge(1)));
    assert_eq!(f.record(&request).await.unwrap().status, Status::Completed);
}

pub async fn expired_record_runs_the_operation_again(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::with(store, |c| c.expires_after(Duration::from_secs(10)));
    let request = order_request("1");
    assert!(f.charge(&request).await.unwrap().is_fresh());
    f.clock.advance(Duration::from_secs(10));
    assert!(f.charge(&request).await.unwrap().is_replayed());
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::Fresh(charge(2)));
    assert_eq!(f.runs(), 2);
}

pub async fn operation_error_releases_the_claim_and_a_retry_runs(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let request = order_request("1");
    let err = f.failing(&request).await.unwrap_err();
    assert!(matches!(err, RunError::Operation(Boom)));
    assert_eq!(err.error_type(), "OperationFailed");
    assert!(
        f.record(&request).await.is_none(),
        "the claim must be deleted"
    );

    assert_eq!(f.charge(&request).await.unwrap(), Outcome::Fresh(charge(2)));
    let m = f.idem.metrics();
    assert_eq!((m.fresh, m.release_calls), (2, 1));
}

pub async fn tampered_payload_with_validation_is_rejected(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let key = json!({"order-id": "1"});
    let original = Request::new(&key)
        .unwrap()
        .validate(&json!({"amount": "237.51"}))
        .unwrap();
    let tampered = Request::new(&key)
        .unwrap()
        .validate(&json!({"amount": "0.01"}))
        .unwrap();
    f.charge(&original).await.unwrap();

    let err = f.charge(&tampered).await.unwrap_err();
    let Some(IdempotencyError::Validation { key_hash }) = err.idempotency_error() else {
        panic!("expected a validation error, got {err:?}");
    };
    assert_eq!(Some(key_hash.as_str()), original.key_hash());
    assert_eq!(err.error_type(), "IdempotencyValidation");
    assert_eq!(f.runs(), 1);
    assert_eq!(f.idem.metrics().validation_failures, 1);
    // The genuine duplicate still replays.
    assert!(f.charge(&original).await.unwrap().is_replayed());
}

pub async fn tampered_payload_while_in_progress_is_rejected(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let key = json!({"order-id": "1"});
    let original = Request::new(&key).unwrap().validate(&1).unwrap();
    let tampered = Request::new(&key).unwrap().validate(&2).unwrap();
    let Begin::Claimed(_held) = f.idem.begin(&original).await.unwrap() else {
        panic!("first begin must claim");
    };
    assert!(matches!(
        f.idem.begin(&tampered).await,
        Err(IdempotencyError::Validation { .. })
    ));
    assert!(matches!(
        f.idem.begin(&original).await.unwrap(),
        Begin::InProgress
    ));
}

pub async fn tampered_payload_is_rejected_from_the_local_cache(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::with(store, |c| c.local_cache(16));
    let key = json!({"order-id": "1"});
    let original = Request::new(&key).unwrap().validate(&"a").unwrap();
    let tampered = Request::new(&key).unwrap().validate(&"b").unwrap();
    f.charge(&original).await.unwrap();
    let calls = f.idem.metrics().store_calls;

    assert!(matches!(
        f.charge(&tampered).await.unwrap_err().idempotency_error(),
        Some(IdempotencyError::Validation { .. })
    ));
    let m = f.idem.metrics();
    assert_eq!(
        m.store_calls, calls,
        "the cache must decide without the store"
    );
    assert_eq!((m.cache_hits, m.validation_failures), (1, 1));
    assert!(f.charge(&original).await.unwrap().is_replayed());
    assert_eq!(f.idem.metrics().store_calls, calls);
}

pub async fn same_key_data_in_another_order_replays(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let a: serde_json::Value =
        serde_json::from_str(r#"{"order-id":"1","customer":{"id":"456","tier":"gold"}}"#).unwrap();
    let b: serde_json::Value =
        serde_json::from_str(r#"{"customer":{"tier":"gold","id":"456"},"order-id":"1"}"#).unwrap();
    f.charge(&Request::new(&a).unwrap()).await.unwrap();
    assert_eq!(
        f.charge(&Request::new(&b).unwrap()).await.unwrap(),
        Outcome::Replayed(charge(1))
    );
}

pub async fn missing_key_is_a_typed_error_and_opting_out_runs_without_persistence(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::new(store);
    let missing = Request::from_optional::<str>(None).unwrap_err();
    assert!(matches!(missing, IdempotencyError::KeyMissing));
    assert_eq!(missing.error_type(), "IdempotencyKeyMissing");
    assert!(matches!(
        Request::new(&json!({"order-id": null})),
        Err(IdempotencyError::KeyMissing)
    ));

    let unkeyed = Request::unkeyed();
    assert_eq!(unkeyed.key_hash(), None);
    assert!(matches!(
        f.idem.begin(&unkeyed).await.unwrap(),
        Begin::Unkeyed
    ));
    assert_eq!(f.charge(&unkeyed).await.unwrap(), Outcome::Fresh(charge(1)));
    assert_eq!(f.charge(&unkeyed).await.unwrap(), Outcome::Fresh(charge(2)));
    let m = f.idem.metrics();
    assert_eq!((m.unkeyed, m.store_calls, m.fresh), (3, 0, 0));
}

/// `store` must live on a table keyed by `pk_attribute` (hash) and `id` (range).
pub async fn composite_key_keeps_static_partitions_apart(
    store: Arc<dyn IdempotencyStore>,
    pk_attribute: &str,
) {
    let clock = ManualClock::starting_now();
    let config = |partition: &str| {
        IdempotencyConfig::new("charge")
            .key_prefix("shared")
            .static_partition_key(pk_attribute, partition)
            .clock(clock.clone())
    };
    let a = Idempotency::from_arc(Arc::clone(&store), config("idempotency#fn-a"));
    let b = Idempotency::from_arc(Arc::clone(&store), config("idempotency#fn-b"));
    let request = order_request("1");
    let ran = |v: u32| move || async move { Ok::<_, Boom>(v) };

    assert_eq!(a.run(&request, ran(1)).await.unwrap(), Outcome::Fresh(1));
    assert_eq!(a.run(&request, ran(2)).await.unwrap(), Outcome::Replayed(1));
    // Same id, other partition value: another record.
    assert_eq!(b.run(&request, ran(3)).await.unwrap(), Outcome::Fresh(3));

    let id = a.record_id(&request).unwrap();
    let in_a = store.get(a.config().layout(), &id).await.unwrap().unwrap();
    let in_b = store.get(b.config().layout(), &id).await.unwrap().unwrap();
    assert_eq!(
        (in_a.data.as_deref(), in_b.data.as_deref()),
        (Some("1"), Some("3"))
    );
}

pub async fn local_cache_never_holds_in_progress_records(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::with(store, |c| c.local_cache(16));
    let request = order_request("1");
    let Begin::Claimed(claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    let calls = f.idem.metrics().store_calls;
    assert!(matches!(
        f.idem.begin(&request).await.unwrap(),
        Begin::InProgress
    ));
    assert_eq!(
        f.idem.metrics().store_calls,
        calls + 1,
        "in progress must ask the store"
    );
    assert_eq!(f.idem.metrics().cache_hits, 0);

    // Released while the cache is on: the retry must claim, not replay anything.
    claim.release().await.unwrap();
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::Fresh(charge(1)));
    assert_eq!(f.idem.metrics().cache_hits, 0);
    assert!(f.charge(&request).await.unwrap().is_replayed());
    assert_eq!(f.idem.metrics().cache_hits, 1);
}

pub async fn expired_record_is_not_served_from_the_local_cache(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::with(store, |c| {
        c.local_cache(16).expires_after(Duration::from_secs(10))
    });
    let request = order_request("1");
    f.charge(&request).await.unwrap();
    f.clock.advance(Duration::from_secs(11));
    assert_eq!(f.charge(&request).await.unwrap(), Outcome::Fresh(charge(2)));
    assert_eq!(f.idem.metrics().cache_hits, 0);
}

pub async fn remaining_time_zero_is_a_real_deadline(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let request = order_request("1").remaining_time(Duration::ZERO);
    let Begin::Claimed(stale) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    let record = f.record(&request).await.unwrap();
    assert_eq!(record.in_progress_expiration, Some(f.now_millis()));
    // Live up to and including the deadline (the condition is strict), takeable right after.
    assert!(matches!(
        f.idem.begin(&request).await.unwrap(),
        Begin::InProgress
    ));
    f.clock.advance(Duration::from_millis(1));
    let Begin::Claimed(taker) = f.idem.begin(&request).await.unwrap() else {
        panic!("a claim with zero remaining time must be takeable");
    };
    assert!(matches!(
        stale.complete(&charge(1)).await,
        Err(IdempotencyError::ClaimLost { .. })
    ));
    taker.complete(&charge(2)).await.unwrap();
}

pub async fn explicit_in_progress_timeout_overrides_remaining_time(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::with(store, |c| c.in_progress_timeout(Duration::from_secs(30)));
    let request = order_request("1").remaining_time(Duration::ZERO);
    let Begin::Claimed(_claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    let record = f.record(&request).await.unwrap();
    assert_eq!(record.in_progress_expiration, Some(f.now_millis() + 30_000));
}

pub async fn without_remaining_time_the_default_timeout_applies(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let request = order_request("1");
    let Begin::Claimed(_claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    let record = f.record(&request).await.unwrap();
    let default = u64::try_from(idempotency::DEFAULT_IN_PROGRESS_TIMEOUT.as_millis()).unwrap();
    assert_eq!(
        record.in_progress_expiration,
        Some(f.now_millis() + default)
    );
}

pub async fn stale_owner_cannot_complete_a_record_another_invocation_holds(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::new(store);
    let request = order_request("1").remaining_time(Duration::from_secs(1));
    let Begin::Claimed(stale) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    f.clock.advance(Duration::from_secs(2));
    let Begin::Claimed(current) = f.idem.begin(&request).await.unwrap() else {
        panic!("the expired claim must be taken over");
    };

    let err = stale.complete(&charge(1)).await.unwrap_err();
    assert!(
        matches!(err, IdempotencyError::ClaimLost { ref key_hash } if Some(key_hash.as_str()) == request.key_hash())
    );
    assert_eq!(err.error_type(), "IdempotencyClaimLost");
    let record = f.record(&request).await.unwrap();
    assert_eq!(
        record.status,
        Status::InProgress,
        "the stale result must not land"
    );

    current.complete(&charge(2)).await.unwrap();
    assert_eq!(
        f.charge(&request).await.unwrap(),
        Outcome::Replayed(charge(2))
    );
    assert_eq!(f.idem.metrics().claims_lost, 1);
}

pub async fn stale_owner_cannot_release_a_record_another_invocation_holds(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::new(store);
    let request = order_request("1").remaining_time(Duration::from_secs(1));
    let Begin::Claimed(stale) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    f.clock.advance(Duration::from_secs(2));
    let Begin::Claimed(current) = f.idem.begin(&request).await.unwrap() else {
        panic!("the expired claim must be taken over");
    };
    assert!(matches!(
        stale.release().await,
        Err(IdempotencyError::ClaimLost { .. })
    ));
    assert!(
        matches!(f.idem.begin(&request).await.unwrap(), Begin::InProgress),
        "the current holder's claim must survive the stale release"
    );
    current.complete(&charge(2)).await.unwrap();
}

pub async fn released_claim_cannot_be_completed_later(store: Arc<dyn IdempotencyStore>) {
    // The record is gone (taken over, then released by its new owner): a stale complete must
    // not resurrect it, as an unconditional update would.
    let f = Fixture::new(store);
    let request = order_request("1").remaining_time(Duration::from_secs(1));
    let Begin::Claimed(stale) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    f.clock.advance(Duration::from_secs(2));
    let Begin::Claimed(current) = f.idem.begin(&request).await.unwrap() else {
        panic!("the expired claim must be taken over");
    };
    current.release().await.unwrap();
    assert!(matches!(
        stale.complete(&charge(1)).await,
        Err(IdempotencyError::ClaimLost { .. })
    ));
    assert!(f.record(&request).await.is_none());
}

pub async fn releasing_a_record_that_is_already_gone_succeeds(store: Arc<dyn IdempotencyStore>) {
    // A delete retried after its first response was lost finds nothing: that is a release, not
    // a lost claim. The record stays gone.
    let f = Fixture::new(store);
    let request = order_request("1").remaining_time(Duration::from_secs(1));
    let Begin::Claimed(stale) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    f.clock.advance(Duration::from_secs(2));
    let Begin::Claimed(current) = f.idem.begin(&request).await.unwrap() else {
        panic!("the expired claim must be taken over");
    };
    current.release().await.unwrap();
    stale.release().await.unwrap();
    assert!(f.record(&request).await.is_none());
    assert_eq!(f.idem.metrics().claims_lost, 0);
}

pub async fn call_counts_are_two_for_fresh_one_for_duplicate_zero_for_cached(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::with(store, |c| c.local_cache(16));
    let uncached = Fixture::with(Arc::clone(&f.store), |c| c.key_prefix("test#uncached"));
    let request = order_request("1");

    uncached.charge(&request).await.unwrap();
    let m = uncached.idem.metrics();
    assert_eq!((m.store_calls, m.claim_calls, m.complete_calls), (2, 1, 1));
    uncached.charge(&request).await.unwrap();
    let m = uncached.idem.metrics();
    assert_eq!((m.store_calls, m.claim_calls, m.get_calls), (3, 2, 0));

    f.charge(&request).await.unwrap();
    assert_eq!(f.idem.metrics().store_calls, 2);
    assert!(f.charge(&request).await.unwrap().is_replayed());
    assert_eq!(
        f.idem.metrics().store_calls,
        2,
        "a cached duplicate costs no round trip"
    );
    assert_eq!(f.idem.metrics().cache_hits, 1);
}

pub async fn concurrent_invocations_with_one_key_run_the_operation_once(
    store: Arc<dyn IdempotencyStore>,
) {
    let f = Fixture::new(store);
    let request = order_request("1");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let idem = f.idem.clone();
        let runs = Arc::clone(&f.runs);
        let request = request.clone();
        tasks.spawn(async move {
            idem.run(&request, || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                // Hold the claim across a real suspension so the others overlap with it.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, Boom>("charged".to_owned())
            })
            .await
        });
    }
    let mut labels = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        labels.push(joined.unwrap().unwrap().label());
    }
    assert_eq!(f.runs(), 1, "exactly one invocation may run the operation");
    assert_eq!(labels.iter().filter(|l| **l == "fresh").count(), 1);
    assert_eq!(
        labels
            .iter()
            .filter(|l| **l == "replayed" || **l == "in_progress")
            .count(),
        63
    );
    let m = f.idem.metrics();
    assert_eq!((m.fresh, m.replayed + m.in_progress), (1, 63));
}

pub async fn replay_deserializes_into_the_callers_type(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let request = order_request("1");
    let unit = f
        .idem
        .run(&request, || async { Ok::<_, Boom>(()) })
        .await
        .unwrap();
    assert_eq!(unit, Outcome::Fresh(()));
    let again = f
        .idem
        .run(&request, || async { Ok::<_, Boom>(()) })
        .await
        .unwrap();
    assert_eq!(again, Outcome::Replayed(()));
    // A caller expecting another shape gets a typed error, not a panic, and not a transient
    // one: the operation did run.
    let wrong = f
        .idem
        .run(&request, || async { Ok::<_, Boom>(charge(1)) })
        .await
        .unwrap_err();
    assert_eq!(wrong.error_type(), "IdempotencyUnreadableResult");
    assert!(!wrong.idempotency_error().unwrap().is_transient());
}

pub async fn two_step_api_replays_exactly_what_was_completed(store: Arc<dyn IdempotencyStore>) {
    let f = Fixture::new(store);
    let request = order_request("1");
    let Begin::Claimed(claim) = f.idem.begin(&request).await.unwrap() else {
        panic!("first begin must claim");
    };
    assert_eq!(Some(claim.key_hash()), request.key_hash());
    let events = json!([{"detail-type": "OrderPicked"}, {"detail-type": "OrderShipped"}]);
    // The claim crosses a task boundary, as eventing holds it across a batched publish.
    let handle = tokio::spawn({
        let events = events.clone();
        async move { claim.complete(&events).await }
    });
    handle.await.unwrap().unwrap();
    let Begin::Replayed(replay) = f.idem.begin(&request).await.unwrap() else {
        panic!("must replay");
    };
    assert_eq!(replay.record_id(), f.idem.record_id(&request).unwrap());
    assert_eq!(replay.into_value().unwrap(), events);
}

/// What a version of last month left in a COMPLETED record that this version cannot read as a
/// [`Charge`]; the tests seed it in their store's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastMonths {
    /// The result attribute had another name (or another type): no result.
    DataRenamed,
    /// The result is not JSON (cut short).
    NotJson,
    /// The result is JSON of another type than today's `Charge`.
    OtherShape,
}

impl LastMonths {
    pub const ALL: [Self; 3] = [Self::DataRenamed, Self::NotJson, Self::OtherShape];

    /// The result text it stored under the result attribute, if any.
    pub fn data(self) -> Option<&'static str> {
        match self {
            Self::DataRenamed => None,
            Self::NotJson => Some(r#"{"order_id":"1073459984","amo"#),
            Self::OtherShape => Some(r#"{"charged":true,"total":"237.51"}"#),
        }
    }

    pub fn reason(self) -> UnreadableReason {
        match self {
            Self::DataRenamed => UnreadableReason::Missing,
            Self::NotJson => UnreadableReason::NotJson,
            Self::OtherShape => UnreadableReason::OtherShape,
        }
    }
}

/// How long the seeded record of last month's version still lives.
pub const LAST_MONTHS_RECORD_LIVES: Duration = Duration::from_secs(60);

/// Issue #6, an unreadable stored result wedges a key: `f`'s store holds, under `request`'s
/// key, a live COMPLETED record written by last month's version (`seeded`). Every duplicate is
/// answered without running the operation and without a transient error: the two-step API
/// gives a replay the caller can acknowledge (an SQS consumer does), `run::<T>` gives the typed,
/// non-transient `UnreadableResult` naming the record; each is counted and the store is not
/// blamed. Once the record expires, the key runs fresh.
pub async fn a_result_written_by_last_months_version_never_wedges_its_key(
    f: &Fixture,
    request: &Request,
    seeded: LastMonths,
) {
    let id = f.idem.record_id(request).unwrap();
    let before = f.idem.metrics();

    // The consumer's way: the effect happened, acknowledge.
    let Begin::Replayed(replay) = f.idem.begin(request).await.unwrap() else {
        panic!("{seeded:?}: a COMPLETED record is a replay");
    };
    assert_eq!(replay.record_id(), id);
    assert_eq!(
        replay.is_readable(),
        seeded == LastMonths::OtherShape,
        "{seeded:?}"
    );
    let err = replay.deserialize::<Charge>().unwrap_err();
    assert!(
        matches!(&err, IdempotencyError::UnreadableResult { record_id, reason }
            if *record_id == id && *reason == seeded.reason()),
        "{seeded:?}: {err:?}"
    );

    // The API's way: a typed, non-transient error naming the record, twice (not wedged in a
    // retry loop: the same answer every time), the operation never run.
    for _ in 0..2 {
        let err = f.charge(request).await.unwrap_err();
        assert_eq!(
            err.error_type(),
            "IdempotencyUnreadableResult",
            "{seeded:?}"
        );
        let Some(IdempotencyError::UnreadableResult { record_id, reason }) =
            err.idempotency_error()
        else {
            panic!("{seeded:?}: {err:?}");
        };
        assert_eq!(
            (record_id.as_str(), *reason),
            (id.as_str(), seeded.reason())
        );
        assert!(!err.idempotency_error().unwrap().is_transient());
    }
    assert_eq!(f.runs(), 0, "{seeded:?}: the operation ran last month");

    let m = f.idem.metrics();
    assert_eq!(m.unreadable - before.unreadable, 3, "{seeded:?}: {m:?}");
    assert_eq!(m.replayed - before.replayed, 3, "{seeded:?}: {m:?}");
    assert_eq!(
        m.store_errors, before.store_errors,
        "{seeded:?}: not a store failure"
    );

    // Its expiry frees the key as any record's does.
    f.clock
        .advance(LAST_MONTHS_RECORD_LIVES + Duration::from_secs(1));
    assert_eq!(
        f.charge(request).await.unwrap(),
        Outcome::Fresh(charge(1)),
        "{seeded:?}"
    );
    assert!(f.charge(request).await.unwrap().is_replayed());
}

/// Runs every scenario that needs nothing but a fresh store. `$store` is an async expression
/// giving an `Arc<dyn IdempotencyStore>`.
#[macro_export]
macro_rules! scenario_suite {
    ($store:expr) => {
        $crate::scenario_suite!(@tests $store;
            first_execution_runs_the_operation_and_stores_its_result,
            completed_duplicate_replays_the_stored_result_without_running,
            duplicate_while_in_progress_is_rejected,
            expired_in_progress_claim_is_taken_over,
            expired_record_runs_the_operation_again,
            operation_error_releases_the_claim_and_a_retry_runs,
            tampered_payload_with_validation_is_rejected,
            tampered_payload_while_in_progress_is_rejected,
            tampered_payload_is_rejected_from_the_local_cache,
            same_key_data_in_another_order_replays,
            missing_key_is_a_typed_error_and_opting_out_runs_without_persistence,
            local_cache_never_holds_in_progress_records,
            expired_record_is_not_served_from_the_local_cache,
            remaining_time_zero_is_a_real_deadline,
            explicit_in_progress_timeout_overrides_remaining_time,
            without_remaining_time_the_default_timeout_applies,
            stale_owner_cannot_complete_a_record_another_invocation_holds,
            stale_owner_cannot_release_a_record_another_invocation_holds,
            released_claim_cannot_be_completed_later,
            releasing_a_record_that_is_already_gone_succeeds,
            call_counts_are_two_for_fresh_one_for_duplicate_zero_for_cached,
            concurrent_invocations_with_one_key_run_the_operation_once,
            replay_deserializes_into_the_callers_type,
            two_step_api_replays_exactly_what_was_completed,
        );
    };
    (@tests $store:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                common::$name($store).await;
            }
        )*
    };
}
