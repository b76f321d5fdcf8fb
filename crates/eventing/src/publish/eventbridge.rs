//! The EventBridge adapter: PutEvents in bounded requests, re-sending only failed entries.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::put_events::PutEventsError;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use futures::{StreamExt, stream};
use platform::budget::Budget;

use super::{
    EventPublisher, FailedEntry, PublishError, RetryPolicy, plan_requests, split_oversized,
};
use crate::OutgoingEvent;
use crate::event::TRACE_ENV;

/// PutEvents requests in flight at once: enough to publish a large batch quickly, few enough
/// not to trip the account's PutEvents throttle on their own.
const MAX_CONCURRENT_REQUESTS: usize = 4;

/// The least time left in which a PutEvents attempt is started (or a back-off waited out before
/// one) under a time budget. EventBridge answers PutEvents in tens of milliseconds in region; an
/// attempt started with less left would most likely be cut off in flight, leaving its entries'
/// fate unknown rather than failed, and a back-off ending there would be followed by nothing.
pub const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);

/// Error codes that no re-send can fix: retrying them only burns the attempts of the others.
const PERMANENT_CODES: [&str; 9] = [
    "AccessDeniedException",
    "NotAuthorizedForSourceException",
    "InvalidArgument",
    "MalformedDetail",
    "ValidationException",
    "ResourceNotFoundException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ConstructionFailure",
];

/// Publishes to an EventBridge bus.
///
/// Requests hold at most 10 entries and 256 KB; `FailedEntryCount` and every entry's
/// `ErrorCode` are checked, and only failed entries are re-sent (re-batched together) with
/// exponential backoff and jitter, up to [`RetryPolicy::max_attempts`]. What still fails is
/// returned as a [`PublishError`], so the caller can release its idempotency claim and let
/// the source retry.
///
/// Under a time budget ([`EventPublisher::publish_within`]) it starts no attempt with less than
/// [`MIN_ATTEMPT_TIME`] left and no back-off that would not leave that much after it, and drops
/// the requests still unanswered when the budget ends (dropping an SDK call cancels it): the
/// entries left are [`FailedEntry::DEADLINE_EXCEEDED`], the others keep their own result.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
    retry: RetryPolicy,
}

/// What became of one entry of one request.
type EntryResult = Result<(), (String, String)>;

impl EventBridgePublisher {
    /// A publisher to the bus `bus_name` (a name or an ARN) with the default [`RetryPolicy`].
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The bus events go to.
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Sends one request; returns one result per entry, in order.
    async fn send(
        &self,
        events: &[OutgoingEvent],
        request: &[usize],
        ambient_trace: Option<&str>,
    ) -> Vec<EntryResult> {
        let entries: Vec<PutEventsRequestEntry> = request
            .iter()
            .filter_map(|&i| events.get(i))
            .map(|e| entry(e, &self.bus_name, ambient_trace))
            .collect();
        match self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                let results = output.entries();
                if output.failed_entry_count() > 0 {
                    tracing::debug!(
                        failed = output.failed_entry_count(),
                        sent = request.len(),
                        "PutEvents reported failed entries"
                    );
                }
                (0..request.len())
                    .map(|position| match results.get(position) {
                        Some(r) if r.error_code().is_some() => Err((
                            r.error_code().unwrap_or_default().to_owned(),
                            r.error_message().unwrap_or_default().to_owned(),
                        )),
                        Some(r) if r.event_id().is_some() => Ok(()),
                        // Accepted entries always carry an event id: without one (or without a
                        // result at all) acceptance is unproven, so the entry counts as failed.
                        _ => Err((
                            "MissingResult".to_owned(),
                            "PutEvents returned no event id for the entry".to_owned(),
                        )),
                    })
                    .collect()
            }
            Err(err) => {
                let code = request_error_code(&err);
                let message = DisplayErrorContext(&err).to_string();
                vec![Err((code, message)); request.len()]
            }
        }
    }
}

/// The error code a whole failed request gives each of its entries.
fn request_error_code<R>(err: &SdkError<PutEventsError, R>) -> String {
    match err {
        SdkError::ServiceError(service) => match (service.err().code(), service.err()) {
            (Some(code), _) => code.to_owned(),
            // The modeled error without metadata (as built by hand, not parsed off the wire).
            (None, PutEventsError::InternalException(_)) => "InternalException".to_owned(),
            (None, _) => "ServiceError".to_owned(),
        },
        SdkError::ConstructionFailure(_) => "ConstructionFailure".to_owned(),
        SdkError::TimeoutError(_) => "Timeout".to_owned(),
        SdkError::DispatchFailure(_) => "DispatchFailure".to_owned(),
        SdkError::ResponseError(_) => "ResponseError".to_owned(),
        _ => "RequestFailed".to_owned(),
    }
}

fn is_retryable(code: &str) -> bool {
    !PERMANENT_CODES.contains(&code) && code != FailedEntry::ENTRY_TOO_LARGE
}

/// The PutEvents entry for `event`: its own trace header wins over the invocation's.
fn entry(event: &OutgoingEvent, bus: &str, ambient_trace: Option<&str>) -> PutEventsRequestEntry {
    let trace = event.trace_header.as_deref().or(ambient_trace);
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(&event.source)
        .detail_type(&event.detail_type)
        .detail(&event.detail)
        .set_trace_header(trace.map(str::to_owned))
        .build()
}

#[async_trait::async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[OutgoingEvent]) -> Result<(), PublishError> {
        self.publish_until(events, None).await
    }

    async fn publish_within(
        &self,
        events: &[OutgoingEvent],
        budget: Budget,
    ) -> Result<(), PublishError> {
        self.publish_until(events, Some(budget)).await
    }
}

impl EventBridgePublisher {
    /// The publishing loop, bounded by `budget` when there is one.
    async fn publish_until(
        &self,
        events: &[OutgoingEvent],
        budget: Option<Budget>,
    ) -> Result<(), PublishError> {
        if events.is_empty() {
            return Ok(());
        }
        // Read per call: Lambda sets a new trace id for every invocation of a warm sandbox.
        let ambient_trace = std::env::var(TRACE_ENV).ok().filter(|h| !h.is_empty());
        let (mut pending, oversized) = split_oversized(events);
        let mut failed: BTreeMap<usize, FailedEntry> =
            oversized.into_iter().map(|f| (f.index, f)).collect();
        let cut_off = |failed: &mut BTreeMap<usize, FailedEntry>, index: usize, why: &str| {
            if let Some(event) = events.get(index) {
                failed.insert(index, FailedEntry::deadline_exceeded(index, event, why));
            }
        };

        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        while !pending.is_empty() {
            if budget.is_some_and(|b| b.remaining() < MIN_ATTEMPT_TIME) {
                for &index in &pending {
                    cut_off(
                        &mut failed,
                        index,
                        "not sent: the invocation's time budget is spent",
                    );
                }
                break;
            }
            let requests = plan_requests(events, &pending);
            let answers = self
                .send_all(events, &requests, ambient_trace.as_deref(), budget)
                .await;

            let mut retry = Vec::new();
            for (request, answer) in requests.iter().zip(answers) {
                let Some(results) = answer else {
                    for &index in request {
                        cut_off(
                            &mut failed,
                            index,
                            "PutEvents had not answered when the invocation's time budget ended: \
                             the entry may or may not have been accepted",
                        );
                    }
                    continue;
                };
                for (&index, result) in request.iter().zip(results) {
                    let Err((error_code, message)) = result else {
                        continue;
                    };
                    if is_retryable(&error_code) && attempt < max_attempts {
                        retry.push((index, error_code));
                        continue;
                    }
                    let idempotency_key = events
                        .get(index)
                        .map(|e| e.idempotency_key.clone())
                        .unwrap_or_default();
                    failed.insert(
                        index,
                        FailedEntry {
                            index,
                            idempotency_key,
                            error_code,
                            message,
                        },
                    );
                }
            }
            if retry.is_empty() {
                break;
            }
            let delay = self.retry.backoff(attempt);
            if budget.is_some_and(|b| b.remaining() < delay.saturating_add(MIN_ATTEMPT_TIME)) {
                for (index, error_code) in &retry {
                    cut_off(
                        &mut failed,
                        *index,
                        &format!(
                            "{error_code}, not re-sent: the invocation's time budget ends before \
                             a back-off and another attempt"
                        ),
                    );
                }
                break;
            }
            tracing::warn!(
                retrying = retry.len(),
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "re-sending failed PutEvents entries"
            );
            tokio::time::sleep(delay).await;
            pending = retry.into_iter().map(|(index, _)| index).collect();
            attempt += 1;
        }

        if failed.is_empty() {
            Ok(())
        } else {
            let failed: Vec<FailedEntry> = failed.into_values().collect();
            tracing::error!(
                failed = failed.len(),
                total = events.len(),
                keys = ?failed.iter().map(|f| f.idempotency_key.as_str()).collect::<Vec<_>>(),
                codes = ?failed.iter().map(|f| f.error_code.as_str()).collect::<Vec<_>>(),
                "events not accepted by EventBridge"
            );
            Err(PublishError { failed })
        }
    }

    /// Sends `requests` (at most [`MAX_CONCURRENT_REQUESTS`] at once) and returns each one's
    /// entry results, in order; `None` for a request still unanswered when `budget` ended (it
    /// was dropped, which cancels the SDK call).
    async fn send_all(
        &self,
        events: &[OutgoingEvent],
        requests: &[Vec<usize>],
        ambient_trace: Option<&str>,
        budget: Option<Budget>,
    ) -> Vec<Option<Vec<EntryResult>>> {
        let mut answers: Vec<Option<Vec<EntryResult>>> = vec![None; requests.len()];
        // Futures are lazy: collecting them first only names them, `buffer_unordered` bounds how
        // many run at once (and keeps the stream free of a closure over borrowed requests).
        let sends: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(position, request)| {
                let send = self.send(events, request, ambient_trace);
                async move { (position, send.await) }
            })
            .collect();
        let sending = stream::iter(sends)
            .buffer_unordered(MAX_CONCURRENT_REQUESTS)
            .for_each(|(position, results)| {
                if let Some(answer) = answers.get_mut(position) {
                    *answer = Some(results);
                }
                futures::future::ready(())
            });
        match budget {
            // Cut off or not, the answers received so far are kept.
            Some(budget) => {
                let _ = budget.run(sending).await;
            }
            None => sending.await,
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(trace: Option<&str>) -> OutgoingEvent {
        OutgoingEvent {
            source: "com.orders".into(),
            detail_type: "OrderCreated".into(),
            detail: "{}".into(),
            idempotency_key: "k".into(),
            trace_header: trace.map(str::to_owned),
        }
    }

    #[test]
    fn entry_carries_bus_source_detail_type_and_detail() {
        let e = entry(&event(None), "bus-1", None);
        assert_eq!(e.event_bus_name(), Some("bus-1"));
        assert_eq!(e.source(), Some("com.orders"));
        assert_eq!(e.detail_type(), Some("OrderCreated"));
        assert_eq!(e.detail(), Some("{}"));
        assert_eq!(e.trace_header(), None);
        assert!(e.resources().is_empty(), "entry size assumes no resources");
    }

    #[test]
    fn invocation_trace_header_is_set_when_present() {
        let e = entry(&event(None), "bus", Some("Root=1-invocation"));
        assert_eq!(e.trace_header(), Some("Root=1-invocation"));
    }

    #[test]
    fn an_events_own_trace_header_wins_over_the_invocations() {
        let e = entry(&event(Some("Root=1-own")), "bus", Some("Root=1-invocation"));
        assert_eq!(e.trace_header(), Some("Root=1-own"));
    }

    #[test]
    fn throttling_and_internal_failures_are_retried_but_not_permission_errors() {
        assert!(is_retryable("ThrottlingException"));
        assert!(is_retryable("InternalFailure"));
        assert!(is_retryable("MissingResult"));
        assert!(!is_retryable("NotAuthorizedForSourceException"));
        assert!(!is_retryable("MalformedDetail"));
        assert!(!is_retryable(FailedEntry::ENTRY_TOO_LARGE));
    }
}
