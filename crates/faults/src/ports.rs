//! Fault-injecting wrappers of the product's ports, for in-process runs without an AWS-API
//! stand-in (the local runner's in-memory stores and bus).
//!
//! Faults are injected per *attempt* and each call gets the SDK's attempts
//! ([`PortFaults::new`]'s `attempts`, the product's `SDK_MAX_ATTEMPTS`), because that is how a
//! throttled or failing AWS call reaches the code: only a call whose every attempt failed is an
//! error, and an attempt whose response was lost has still been applied.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use eventing::{EventPublisher, FailedEntry, OutgoingEvent, PublishError};
use idempotency::{
    ClaimResult, FencedWrite, IdempotencyStore, Record, StoreError, StoreOperation, TableLayout,
};

use crate::plan::{Call, Fault, FaultPlan, Injector, Rule, Service, codes};

/// The error a call gets when every attempt was failed on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: every attempt failed with an injected {code}")]
pub struct InjectedFault {
    /// The operation, e.g. `claim` or `PutEvents`.
    pub operation: String,
    /// The code of the last injected failure.
    pub code: String,
}

/// Counters of one [`PortFaults`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Calls made through the wrappers.
    pub calls: u64,
    /// Attempts (calls plus retries).
    pub attempts: u64,
    /// Attempts failed on purpose (lost responses included).
    pub injected: u64,
    /// Of those, attempts that were applied and then reported as failed.
    pub lost_responses: u64,
    /// Attempts retried after an injected failure.
    pub retries: u64,
    /// Calls that failed after their last attempt.
    pub exhausted: u64,
    /// PutEvents entries failed on purpose (each one re-sent while attempts remain).
    pub entries_failed: u64,
}

impl PortStats {
    /// Share of attempts failed on purpose.
    pub fn injected_share(&self) -> f64 {
        self.injected as f64 / (self.attempts.max(1)) as f64
    }
}

struct State {
    injector: Injector,
    entry_share: f64,
    stats: PortStats,
}

/// A seeded source of per-attempt faults shared by any number of wrapped ports. Clones share
/// the die and the counters.
#[derive(Clone)]
pub struct PortFaults {
    state: Arc<Mutex<State>>,
    attempts: u32,
}

impl std::fmt::Debug for PortFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortFaults")
            .field("attempts", &self.attempts)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What one attempt gets.
enum Attempt {
    Pass,
    Fail(String),
    Lose(String),
}

impl PortFaults {
    /// Fails `share` of attempts; `lost_share` of those failures (0 to 1) are lost
    /// acknowledgements (applied, then failed) when the call is a write. Every call gets
    /// `attempts` attempts (at least 1).
    pub fn new(seed: u64, share: f64, lost_share: f64, attempts: u32) -> Self {
        let share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        let lost = if lost_share.is_nan() {
            0.0
        } else {
            lost_share.clamp(0.0, 1.0)
        };
        let plan = FaultPlan::seeded(seed)
            .rule(Rule::new("lost", Fault::lose_response(500)).share(share * lost))
            .rule(Rule::new("fail", Fault::throttle()).share(share * (1.0 - lost)));
        Self {
            state: Arc::new(Mutex::new(State {
                injector: Injector::new(plan),
                entry_share: 0.0,
                stats: PortStats::default(),
            })),
            attempts: attempts.max(1),
        }
    }

    /// Also fails this share of PutEvents entries in attempts that are not failed as a whole.
    pub fn with_entry_share(self, share: f64) -> Self {
        self.state().entry_share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    /// No faults at all (attempts still counted).
    pub fn none() -> Self {
        Self::new(0, 0.0, 0.0, 1)
    }

    // Updates under the lock are counter bumps and die rolls: a poisoned lock is consistent.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The counters so far.
    pub fn stats(&self) -> PortStats {
        self.state().stats
    }

    fn attempt(&self, service: &Service, operation: &str) -> Attempt {
        let mut state = self.state();
        state.stats.attempts += 1;
        let decision = state.injector.decide(&Call {
            service,
            operation,
            body: b"",
        });
        match decision.map(|d| d.fault) {
            None => Attempt::Pass,
            Some(Fault::LoseResponse { status, code }) => {
                state.stats.injected += 1;
                Attempt::Lose(Fault::code_for(status, &code, service))
            }
            Some(Fault::Reject { status, code }) => {
                state.stats.injected += 1;
                Attempt::Fail(Fault::code_for(status, &code, service))
            }
            Some(other) => {
                state.stats.injected += 1;
                Attempt::Fail(other.kind().to_owned())
            }
        }
    }

    /// Runs `call` with the SDK's attempts: an attempt is passed through, failed before
    /// `call` runs, or (for a `write`) run and then failed. `Err(InjectedFault)` when every
    /// attempt failed; the call's own result otherwise (its own errors are not retried here:
    /// the adapter below already had its SDK attempts).
    pub async fn run<T, E, F, Fut>(
        &self,
        service: &Service,
        operation: &str,
        write: bool,
        mut call: F,
    ) -> Result<Result<T, E>, InjectedFault>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.state().stats.calls += 1;
        let mut last_code = String::new();
        for attempt in 1..=self.attempts {
            match self.attempt(service, operation) {
                Attempt::Pass => return Ok(call().await),
                Attempt::Lose(code) if write => {
                    // Applied; its answer never arrives.
                    let _ = call().await;
                    self.state().stats.lost_responses += 1;
                    last_code = code;
                }
                Attempt::Lose(code) | Attempt::Fail(code) => last_code = code,
            }
            if attempt < self.attempts {
                self.state().stats.retries += 1;
            }
        }
        self.state().stats.exhausted += 1;
        Err(InjectedFault {
            operation: operation.to_owned(),
            code: last_code,
        })
    }

    fn roll_entry(&self) -> bool {
        let mut state = self.state();
        let share = state.entry_share;
        let failed = share > 0.0 && state.injector.roll() < share;
        if failed {
            state.stats.entries_failed += 1;
        }
        failed
    }
}

/// An [`IdempotencyStore`] whose calls fail as a throttled DynamoDB table's would.
#[derive(Debug, Clone)]
pub struct FaultyStore<S> {
    inner: S,
    faults: PortFaults,
}

impl<S> FaultyStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, faults: PortFaults) -> Self {
        Self { inner, faults }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

fn store_error(operation: StoreOperation) -> impl FnOnce(InjectedFault) -> StoreError {
    move |fault| StoreError::new(operation, fault)
}

#[async_trait::async_trait]
impl<S: IdempotencyStore> IdempotencyStore for FaultyStore<S> {
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now_millis: u64,
    ) -> Result<ClaimResult, StoreError> {
        self.faults
            .run(&Service::DynamoDb, "claim", true, || {
                self.inner.claim(layout, record, now_millis)
            })
            .await
            .map_err(store_error(StoreOperation::Claim))?
    }

    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError> {
        self.faults
            .run(&Service::DynamoDb, "complete", true, || {
                self.inner.complete(layout, id, owner, data, expiration)
            })
            .await
            .map_err(store_error(StoreOperation::Complete))?
    }

    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError> {
        self.faults
            .run(&Service::DynamoDb, "release", true, || {
                self.inner.release(layout, id, owner)
            })
            .await
            .map_err(store_error(StoreOperation::Release))?
    }

    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        self.faults
            .run(&Service::DynamoDb, "get", false, || {
                self.inner.get(layout, id)
            })
            .await
            .map_err(store_error(StoreOperation::Get))?
    }
}

/// An [`EventPublisher`] whose requests are throttled, answered 5xx or lose their answer, and
/// whose entries fail one by one, as EventBridge's do; failed entries are re-sent while
/// attempts remain, as the EventBridge publisher does.
#[derive(Debug, Clone)]
pub struct FaultyPublisher<P> {
    inner: P,
    faults: PortFaults,
}

impl<P> FaultyPublisher<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, faults: PortFaults) -> Self {
        Self { inner, faults }
    }
}

fn failed_entry(index: usize, event: &OutgoingEvent, code: &str) -> FailedEntry {
    FailedEntry {
        index,
        idempotency_key: event.idempotency_key.clone(),
        error_code: code.to_owned(),
        message: "failure injected by the fault layer".to_owned(),
    }
}

#[async_trait::async_trait]
impl<P: EventPublisher> EventPublisher for FaultyPublisher<P> {
    async fn publish(&self, events: &[OutgoingEvent]) -> Result<(), PublishError> {
        if events.is_empty() {
            return self.inner.publish(events).await;
        }
        let service = Service::EventBridge;
        let mut pending: Vec<usize> = (0..events.len()).collect();
        self.faults.state().stats.calls += 1;
        let mut last_code = codes::THROTTLING.to_owned();
        for attempt in 1..=self.faults.attempts {
            let batch: Vec<OutgoingEvent> = pending
                .iter()
                .filter_map(|&i| events.get(i).cloned())
                .collect();
            match self.faults.attempt(&service, "PutEvents") {
                Attempt::Fail(code) => last_code = code,
                Attempt::Lose(code) => {
                    // Published; the answer is lost, so every entry is re-sent.
                    let _ = self.inner.publish(&batch).await;
                    self.faults.state().stats.lost_responses += 1;
                    last_code = code;
                }
                Attempt::Pass => {
                    let (failing, sending): (Vec<usize>, Vec<usize>) =
                        pending.iter().partition(|_| self.faults.roll_entry());
                    let subset: Vec<OutgoingEvent> = sending
                        .iter()
                        .filter_map(|&i| events.get(i).cloned())
                        .collect();
                    let mut still = failing;
                    if let Err(e) = self.inner.publish(&subset).await {
                        // The wrapped publisher's own failures are final (it retried already).
                        let own: Vec<FailedEntry> = e
                            .failed
                            .iter()
                            .filter_map(|f| {
                                sending
                                    .get(f.index)
                                    .map(|&index| FailedEntry { index, ..f.clone() })
                            })
                            .collect();
                        if still.is_empty() {
                            return Err(PublishError { failed: own });
                        }
                        let mut failed = own;
                        failed.extend(still.iter().filter_map(|&i| {
                            events
                                .get(i)
                                .map(|e| failed_entry(i, e, codes::INTERNAL_FAILURE))
                        }));
                        failed.sort_by_key(|f| f.index);
                        return Err(PublishError { failed });
                    }
                    if still.is_empty() {
                        return Ok(());
                    }
                    still.sort_unstable();
                    pending = still;
                    last_code = codes::INTERNAL_FAILURE.to_owned();
                }
            }
            if attempt < self.faults.attempts {
                self.faults.state().stats.retries += 1;
            }
        }
        self.faults.state().stats.exhausted += 1;
        Err(PublishError {
            failed: pending
                .iter()
                .filter_map(|&i| events.get(i).map(|e| failed_entry(i, e, &last_code)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventing::InMemoryPublisher;
    use idempotency::{InMemoryStore, Status};

    fn record(id: &str, owner: &str) -> Record {
        Record {
            id: id.to_owned(),
            status: Status::InProgress,
            expiration: u64::MAX / 2,
            in_progress_expiration: Some(u64::MAX / 2),
            data: None,
            validation: None,
            owner: owner.to_owned(),
        }
    }

    fn event(key: &str) -> OutgoingEvent {
        OutgoingEvent {
            source: "com.orders".into(),
            detail_type: "OrderCreated".into(),
            detail: "{}".into(),
            idempotency_key: key.into(),
            trace_header: None,
        }
    }

    #[tokio::test]
    async fn every_attempt_failing_is_an_error_and_a_lost_answer_was_still_applied() {
        let layout = TableLayout::default();
        let store = InMemoryStore::new();
        let always_lost = FaultyStore::new(store.clone(), PortFaults::new(1, 1.0, 1.0, 3));
        let err = always_lost
            .claim(&layout, &record("a", "me"), 0)
            .await
            .unwrap_err();
        assert_eq!(err.operation(), StoreOperation::Claim);
        assert_eq!(
            store.records().len(),
            1,
            "the first lost attempt was applied"
        );
        let stats = always_lost.faults.stats();
        assert_eq!(
            (
                stats.calls,
                stats.attempts,
                stats.injected,
                stats.lost_responses,
                stats.retries,
                stats.exhausted
            ),
            (1, 3, 3, 3, 2, 1)
        );

        let always_failed = FaultyStore::new(InMemoryStore::new(), PortFaults::new(1, 1.0, 0.0, 3));
        assert!(
            always_failed
                .claim(&layout, &record("b", "me"), 0)
                .await
                .is_err()
        );
        assert!(
            always_failed.inner().records().is_empty(),
            "rejected attempts apply nothing"
        );
    }

    #[tokio::test]
    async fn a_share_of_attempts_fail_and_most_calls_succeed_on_a_retry() {
        let layout = TableLayout::default();
        let faults = PortFaults::new(42, 0.1, 0.0, 3);
        let store = FaultyStore::new(InMemoryStore::new(), faults.clone());
        let mut errors = 0;
        for i in 0..2_000 {
            if store.get(&layout, &format!("id-{i}")).await.is_err() {
                errors += 1;
            }
        }
        let stats = faults.stats();
        assert!((0.07..0.13).contains(&stats.injected_share()), "{stats:?}");
        assert_eq!(stats.exhausted, errors);
        assert!(
            errors < 10,
            "a call fails only when all three attempts do: {stats:?}"
        );
    }

    #[tokio::test]
    async fn failed_entries_are_resent_and_reported_by_their_original_index() {
        let inner = InMemoryPublisher::new();
        let faults = PortFaults::new(3, 0.0, 0.0, 1).with_entry_share(1.0);
        let publisher = FaultyPublisher::new(inner.clone(), faults);
        let events: Vec<OutgoingEvent> = ["k0", "k1", "k2"].into_iter().map(event).collect();
        let err = publisher.publish(&events).await.unwrap_err();
        let indexes: Vec<usize> = err.failed.iter().map(|f| f.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
        assert!(inner.published().is_empty());

        let faults = PortFaults::new(3, 0.0, 0.0, 50).with_entry_share(0.5);
        let publisher = FaultyPublisher::new(inner.clone(), faults.clone());
        publisher.publish(&events).await.unwrap();
        let mut keys: Vec<String> = inner
            .published()
            .into_iter()
            .map(|e| e.idempotency_key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["k0", "k1", "k2"], "each entry accepted exactly once");
        assert!(faults.stats().entries_failed > 0);
    }

    #[tokio::test]
    async fn a_lost_publish_answer_duplicates_the_events_downstream() {
        let inner = InMemoryPublisher::new();
        let publisher = FaultyPublisher::new(inner.clone(), PortFaults::new(9, 1.0, 1.0, 2));
        let err = publisher.publish(&[event("k")]).await.unwrap_err();
        assert_eq!(err.failed.len(), 1);
        assert_eq!(
            inner.published().len(),
            2,
            "both attempts went out; both answers were lost"
        );
    }
}
