//! The in-memory adapter: records what was published, for unit tests and the local runner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{EventPublisher, FailedEntry, PublishError, plan_requests, split_oversized};
use crate::OutgoingEvent;

/// Records published events in memory. Clones share the same record.
///
/// It batches exactly like the EventBridge adapter (10 entries / 256 KB per request) and counts
/// the requests it would have sent, so tests and benchmarks can assert PutEvents calls. It can
/// be told to fail entries by idempotency key, always or a number of times; it does not retry.
#[derive(Debug, Clone, Default)]
pub struct InMemoryPublisher {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    published: Vec<OutgoingEvent>,
    calls: usize,
    /// Remaining injected failures per key; `None` fails forever.
    failing: HashMap<String, Option<usize>>,
    fail_all: bool,
}

impl InMemoryPublisher {
    /// An empty publisher.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the record half-written (every update is
        // a single push or counter bump), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event accepted so far, in publishing order.
    pub fn published(&self) -> Vec<OutgoingEvent> {
        self.state().published.clone()
    }

    /// Removes and returns the events accepted so far (the local runner routes them on).
    pub fn take_published(&self) -> Vec<OutgoingEvent> {
        std::mem::take(&mut self.state().published)
    }

    /// PutEvents requests that publishing has cost so far.
    pub fn put_events_calls(&self) -> usize {
        self.state().calls
    }

    /// Fails every entry whose idempotency key is `key`, until [`Self::clear_failures`].
    pub fn fail_key(&self, key: impl Into<String>) {
        self.state().failing.insert(key.into(), None);
    }

    /// Fails the next `times` entries whose idempotency key is `key`.
    pub fn fail_key_times(&self, key: impl Into<String>, times: usize) {
        self.state().failing.insert(key.into(), Some(times));
    }

    /// Fails every entry (a bus outage) while `on`.
    pub fn fail_all(&self, on: bool) {
        self.state().fail_all = on;
    }

    /// Stops injecting failures.
    pub fn clear_failures(&self) {
        let mut state = self.state();
        state.failing.clear();
        state.fail_all = false;
    }
}

impl State {
    fn should_fail(&mut self, key: &str) -> bool {
        if self.fail_all {
            return true;
        }
        match self.failing.get_mut(key) {
            None => false,
            Some(None) => true,
            Some(Some(0)) => false,
            Some(Some(remaining)) => {
                *remaining -= 1;
                true
            }
        }
    }
}

#[async_trait::async_trait]
impl EventPublisher for InMemoryPublisher {
    async fn publish(&self, events: &[OutgoingEvent]) -> Result<(), PublishError> {
        let (sendable, mut failed) = split_oversized(events);
        let mut state = self.state();
        for request in plan_requests(events, &sendable) {
            state.calls += 1;
            for index in request {
                let Some(event) = events.get(index) else {
                    continue;
                };
                if state.should_fail(&event.idempotency_key) {
                    failed.push(FailedEntry {
                        index,
                        idempotency_key: event.idempotency_key.clone(),
                        error_code: FailedEntry::INJECTED.to_owned(),
                        message: "failure injected into the in-memory publisher".to_owned(),
                    });
                } else {
                    state.published.push(event.clone());
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            failed.sort_by_key(|f| f.index);
            Err(PublishError { failed })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::MAX_REQUEST_BYTES;
    use crate::test_support::events;

    #[tokio::test]
    async fn records_what_was_published_and_counts_requests() {
        let publisher = InMemoryPublisher::new();
        let batch = events("k", 25);
        publisher.publish(&batch).await.unwrap();
        assert_eq!(publisher.published(), batch);
        assert_eq!(publisher.put_events_calls(), 3);
        publisher.publish(&[]).await.unwrap();
        assert_eq!(
            publisher.put_events_calls(),
            3,
            "nothing to send, no request"
        );
    }

    #[tokio::test]
    async fn clones_share_the_record() {
        let publisher = InMemoryPublisher::new();
        let clone = publisher.clone();
        clone.publish(&events("k", 2)).await.unwrap();
        assert_eq!(publisher.published().len(), 2);
        assert_eq!(publisher.take_published().len(), 2);
        assert!(clone.published().is_empty());
    }

    #[tokio::test]
    async fn injected_failures_are_reported_by_index_and_not_recorded() {
        let publisher = InMemoryPublisher::new();
        publisher.fail_key("k-1");
        publisher.fail_key_times("k-3", 1);
        let batch = events("k", 5);
        let err = publisher.publish(&batch).await.unwrap_err();
        let indexes: Vec<usize> = err.failed.iter().map(|f| f.index).collect();
        assert_eq!(indexes, [1, 3]);
        assert!(
            err.failed
                .iter()
                .all(|f| f.error_code == FailedEntry::INJECTED)
        );
        let keys: Vec<String> = publisher
            .published()
            .into_iter()
            .map(|e| e.idempotency_key)
            .collect();
        assert_eq!(keys, ["k-0", "k-2", "k-4"]);

        // k-3 failed once only; k-1 keeps failing.
        let err = publisher.publish(&batch[1..4]).await.unwrap_err();
        assert_eq!(err.failed.len(), 1);
        assert_eq!(err.failed[0].idempotency_key, "k-1");
        assert_eq!(err.failed[0].index, 0);

        publisher.clear_failures();
        publisher.publish(&batch[1..2]).await.unwrap();
    }

    #[tokio::test]
    async fn an_outage_fails_everything() {
        let publisher = InMemoryPublisher::new();
        publisher.fail_all(true);
        let err = publisher.publish(&events("k", 3)).await.unwrap_err();
        assert_eq!(err.failed.len(), 3);
        assert!(publisher.published().is_empty());
    }

    #[tokio::test]
    async fn an_oversized_entry_fails_typed_while_the_rest_are_published() {
        let publisher = InMemoryPublisher::new();
        let mut batch = events("k", 2);
        batch[1].detail = "x".repeat(MAX_REQUEST_BYTES);
        let err = publisher.publish(&batch).await.unwrap_err();
        assert_eq!(err.failed.len(), 1);
        assert_eq!(err.failed[0].index, 1);
        assert_eq!(err.failed[0].error_code, FailedEntry::ENTRY_TOO_LARGE);
        assert_eq!(publisher.published(), batch[..1]);
    }
}
