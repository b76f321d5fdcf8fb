//! The publishing port, its error, and the batching and retry rules its adapters share.

mod eventbridge;
mod memory;

use std::sync::Arc;
use std::time::Duration;

use platform::budget::{Budget, DeadlineExceeded};
use serde::{Deserialize, Serialize};

use crate::event::{MAX_ENTRIES_PER_REQUEST, MAX_REQUEST_BYTES, OutgoingEvent};

pub use eventbridge::{EventBridgePublisher, MIN_ATTEMPT_TIME};
pub use memory::InMemoryPublisher;

/// Port: publishes events. Never drops one silently.
#[async_trait::async_trait]
pub trait EventPublisher: Send + Sync {
    /// `Ok(())` only when every event was accepted. `Err` lists the events that still failed,
    /// by their index in `events`; every other event was accepted.
    async fn publish(&self, events: &[OutgoingEvent]) -> Result<(), PublishError>;

    /// Like [`EventPublisher::publish`], finished before `budget` ends: the entries not
    /// accepted by then are [`FailedEntry`]s with the code [`FailedEntry::DEADLINE_EXCEEDED`]
    /// (whether a cut-off request reached the bus is unknown; a retry under the same
    /// idempotency keys is deduplicated downstream).
    ///
    /// The default bounds `publish` as a whole, so when the budget ends every entry is reported
    /// cut off, accepted or not. [`EventBridgePublisher`] does better: it never starts an
    /// attempt or a back-off that cannot finish in time, and cuts off only the requests still
    /// unanswered.
    async fn publish_within(
        &self,
        events: &[OutgoingEvent],
        budget: Budget,
    ) -> Result<(), PublishError> {
        match budget.run(self.publish(events)).await {
            Ok(published) => published,
            Err(DeadlineExceeded) => Err(PublishError::cut_off(
                events,
                0..events.len(),
                "the publish did not finish before the invocation's time budget ended",
            )),
        }
    }
}

#[async_trait::async_trait]
impl<P: EventPublisher + ?Sized> EventPublisher for Arc<P> {
    async fn publish(&self, events: &[OutgoingEvent]) -> Result<(), PublishError> {
        (**self).publish(events).await
    }

    // Forwarded, or the shared publisher's own deadline path would be bypassed.
    async fn publish_within(
        &self,
        events: &[OutgoingEvent],
        budget: Budget,
    ) -> Result<(), PublishError> {
        (**self).publish_within(events, budget).await
    }
}

/// Some events were not accepted after every attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} event(s) failed to publish: {}", failed.len(), summary(failed))]
pub struct PublishError {
    /// The events that still failed, in input order.
    pub failed: Vec<FailedEntry>,
}

fn summary(failed: &[FailedEntry]) -> String {
    const SHOWN: usize = 3;
    let mut text = failed
        .iter()
        .take(SHOWN)
        .map(|f| format!("#{} ({}): {}", f.index, f.idempotency_key, f.error_code))
        .collect::<Vec<_>>()
        .join(", ");
    if failed.len() > SHOWN {
        text.push_str(&format!(", and {} more", failed.len() - SHOWN));
    }
    text
}

impl PublishError {
    /// A stable string naming the kind of error.
    pub fn error_type(&self) -> &'static str {
        "PublishFailed"
    }

    /// Whether the event at `index` of the published slice is among the failed ones.
    pub fn failed_index(&self, index: usize) -> bool {
        self.failed.iter().any(|f| f.index == index)
    }

    /// Whether some entries were cut off by the time budget
    /// ([`FailedEntry::DEADLINE_EXCEEDED`]) rather than refused.
    pub fn is_deadline_exceeded(&self) -> bool {
        self.failed.iter().any(FailedEntry::is_deadline_exceeded)
    }

    /// Every event at `indexes` cut off by the time budget, with `message`.
    pub(crate) fn cut_off(
        events: &[OutgoingEvent],
        indexes: impl IntoIterator<Item = usize>,
        message: &str,
    ) -> Self {
        Self {
            failed: indexes
                .into_iter()
                .filter_map(|index| {
                    let event = events.get(index)?;
                    Some(FailedEntry::deadline_exceeded(index, event, message))
                })
                .collect(),
        }
    }
}

/// One event that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedEntry {
    /// Index into the slice given to [`EventPublisher::publish`].
    pub index: usize,
    /// The event's idempotency key.
    pub idempotency_key: String,
    /// EventBridge's `ErrorCode` for the entry, the SDK error's code for a failed request, or
    /// [`FailedEntry::ENTRY_TOO_LARGE`] / [`FailedEntry::DEADLINE_EXCEEDED`] /
    /// [`FailedEntry::INJECTED`] from this crate.
    pub error_code: String,
    /// The accompanying message.
    pub message: String,
}

impl FailedEntry {
    /// Error code of an entry larger than a whole PutEvents request: never sent.
    pub const ENTRY_TOO_LARGE: &'static str = "EntryTooLarge";
    /// Error code of a failure injected into an [`InMemoryPublisher`].
    pub const INJECTED: &'static str = "InjectedFailure";
    /// Error code of an entry cut off by the invocation's time budget: not sent, not retried, or
    /// sent in a request that had not answered when the budget ended (its fate is unknown).
    pub const DEADLINE_EXCEEDED: &'static str = DeadlineExceeded::ERROR_TYPE;

    /// Whether the entry was cut off by the time budget rather than refused.
    pub fn is_deadline_exceeded(&self) -> bool {
        self.error_code == Self::DEADLINE_EXCEEDED
    }

    pub(crate) fn deadline_exceeded(index: usize, event: &OutgoingEvent, message: &str) -> Self {
        Self {
            index,
            idempotency_key: event.idempotency_key.clone(),
            error_code: Self::DEADLINE_EXCEEDED.to_owned(),
            message: message.to_owned(),
        }
    }

    pub(crate) fn too_large(index: usize, event: &OutgoingEvent) -> Self {
        Self {
            index,
            idempotency_key: event.idempotency_key.clone(),
            error_code: Self::ENTRY_TOO_LARGE.to_owned(),
            message: format!(
                "entry is {} bytes, over the {MAX_REQUEST_BYTES}-byte PutEvents limit",
                event.entry_size()
            ),
        }
    }
}

/// How failed entries are re-sent: exponential backoff with jitter, bounded attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per entry, the first included (at least 1 is always made).
    pub max_attempts: u32,
    /// Backoff before the first re-send; doubles on every further one.
    pub base_delay: Duration,
    /// Cap on the backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 50 ms doubling up to 1 s: well under a second of back-off in all, small
    /// against a consumer's timeout. (Each attempt is one SDK call, which may take up to the
    /// SDK's own operation timeout: only a time budget, [`EventPublisher::publish_within`],
    /// bounds the whole.)
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The backoff before re-send number `retry` (1-based): "equal jitter", half the exponential
    /// delay plus a random part of the other half, so concurrent publishers spread out yet
    /// always back off.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = ceiling / 2;
        let jitter_nanos = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=jitter_nanos))
    }
}

/// Splits the events at `indexes` into PutEvents requests of at most
/// [`MAX_ENTRIES_PER_REQUEST`] entries and [`MAX_REQUEST_BYTES`] bytes, keeping their order.
///
/// Every index must name an entry that fits a request on its own (callers filter the others
/// out first); such an entry still gets a request of its own rather than being dropped.
pub(crate) fn plan_requests(events: &[OutgoingEvent], indexes: &[usize]) -> Vec<Vec<usize>> {
    let mut requests: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for &index in indexes {
        let Some(event) = events.get(index) else {
            continue;
        };
        let size = event.entry_size();
        if !current.is_empty()
            && (current.len() == MAX_ENTRIES_PER_REQUEST || bytes + size > MAX_REQUEST_BYTES)
        {
            requests.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(index);
        bytes += size;
    }
    if !current.is_empty() {
        requests.push(current);
    }
    requests
}

/// Separates the entries that can be sent from those that no request can carry.
pub(crate) fn split_oversized(events: &[OutgoingEvent]) -> (Vec<usize>, Vec<FailedEntry>) {
    let mut sendable = Vec::with_capacity(events.len());
    let mut oversized = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if event.entry_size() > MAX_REQUEST_BYTES {
            oversized.push(FailedEntry::too_large(index, event));
        } else {
            sendable.push(index);
        }
    }
    (sendable, oversized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{events, picked};

    fn sized(key: &str, detail_bytes: usize) -> OutgoingEvent {
        OutgoingEvent {
            source: "com.fulfillment".into(),
            detail_type: "OrderPicked".into(),
            detail: "x".repeat(detail_bytes),
            idempotency_key: key.into(),
            trace_header: None,
        }
    }

    #[test]
    fn twenty_five_small_events_make_three_requests_of_at_most_ten() {
        let events = events("k", 25);
        let all: Vec<usize> = (0..25).collect();
        let plan = plan_requests(&events, &all);
        let sizes: Vec<usize> = plan.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        assert_eq!(plan.concat(), all, "order kept, nothing lost or repeated");
    }

    #[test]
    fn requests_are_cut_at_256_kb_by_the_entry_size_formula() {
        // Each entry is 100 KB + 14 + 15 + 11 bytes: two fit in 256 KB, three do not.
        let events: Vec<_> = (0..5)
            .map(|i| sized(&format!("k{i}"), 100 * 1024))
            .collect();
        let plan = plan_requests(&events, &[0, 1, 2, 3, 4]);
        assert_eq!(plan, vec![vec![0, 1], vec![2, 3], vec![4]]);
        for request in &plan {
            let bytes: usize = request.iter().map(|&i| events[i].entry_size()).sum();
            assert!(bytes <= MAX_REQUEST_BYTES);
        }
    }

    #[test]
    fn an_entry_of_exactly_the_limit_fits_alone() {
        let exact = sized("exact", MAX_REQUEST_BYTES - 14 - 15 - 11);
        assert_eq!(exact.entry_size(), MAX_REQUEST_BYTES);
        let events = vec![sized("small", 10), exact.clone(), sized("small2", 10)];
        let (sendable, oversized) = split_oversized(&events);
        assert!(oversized.is_empty());
        assert_eq!(
            plan_requests(&events, &sendable),
            vec![vec![0], vec![1], vec![2]]
        );
    }

    #[test]
    fn an_oversized_entry_is_a_typed_failure_not_a_drop() {
        let events = vec![
            sized("ok", 10),
            sized("huge", MAX_REQUEST_BYTES),
            sized("ok2", 10),
        ];
        let (sendable, oversized) = split_oversized(&events);
        assert_eq!(sendable, [0, 2]);
        assert_eq!(oversized.len(), 1);
        assert_eq!(oversized[0].index, 1);
        assert_eq!(oversized[0].idempotency_key, "huge");
        assert_eq!(oversized[0].error_code, FailedEntry::ENTRY_TOO_LARGE);
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = policy.backoff(30);
            assert!(capped >= Duration::from_millis(350) && capped <= Duration::from_millis(700));
        }
        assert!(policy.backoff(u32::MAX) <= Duration::from_millis(700));
    }

    #[test]
    fn publish_error_names_the_failed_entries() {
        let event = OutgoingEvent::new(&picked("key-7", "WH")).unwrap();
        let err = PublishError {
            failed: vec![FailedEntry::too_large(7, &event)],
        };
        assert_eq!(err.error_type(), "PublishFailed");
        assert!(err.failed_index(7));
        assert!(!err.failed_index(0));
        assert!(err.to_string().contains("#7 (key-7): EntryTooLarge"));
    }
}
