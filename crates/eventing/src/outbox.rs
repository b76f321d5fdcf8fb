//! The transactional outbox: a fact is stored in the same DynamoDB write as the state change that
//! makes it true, and a relay publishes it from the table's stream.
//!
//! An HTTP API never calls PutEvents. The item it writes carries, in its [`OUTBOX_ATTRIBUTE`],
//! the fact that write made true, exactly as it will be published ([`OutgoingEvent::to_outbox`]).
//! The table's stream (`NEW_AND_OLD_IMAGES`) hands every change to the domain's relay
//! ([`OutboxRelay`]), which publishes the entry of every change whose new image carries an entry
//! its old image did not, and reports the records it could not publish, so Lambda retries them
//! (and after its bounded retries sends them to the on-failure destination). Every copy a retry
//! publishes is the stored text, byte for byte: same idempotency key, same data, so downstream
//! deduplicates it.
//!
//! [`ChangeFeed`] is the in-memory tables' stream: the in-memory stores record every write in it
//! as the stream record Lambda would deliver, so the local runner feeds the relays exactly what
//! they get on AWS.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use platform::budget::Budget;

use crate::{EventPublisher, EventingError, OutgoingEvent};

/// The item attribute (a string) holding the fact the item's latest write made true.
pub const OUTBOX_ATTRIBUTE: &str = "outbox";

/// How a fact is kept in the outbox attribute: the envelope fields and the detail as a JSON
/// object (readable in the console), plus the trace header of the request that wrote it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct StoredEntry<'a> {
    source: &'a str,
    detail_type: &'a str,
    #[serde(borrow)]
    detail: &'a RawValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_header: Option<&'a str>,
}

impl OutgoingEvent {
    /// The text to store in the item's [`OUTBOX_ATTRIBUTE`], in the same write as the state
    /// change this event records.
    pub fn to_outbox(&self) -> Result<String, EventingError> {
        let detail: &RawValue =
            serde_json::from_str(&self.detail).map_err(EventingError::Serialization)?;
        serde_json::to_string(&StoredEntry {
            source: &self.source,
            detail_type: &self.detail_type,
            detail,
            trace_header: self.trace_header.as_deref(),
        })
        .map_err(EventingError::Serialization)
    }

    /// The event stored as `text` by [`OutgoingEvent::to_outbox`], checked against the contract
    /// (a known `(source, detail-type)` pair whose detail has its type's shape) before it can be
    /// published.
    pub fn from_outbox(text: &str) -> Result<Self, EventingError> {
        let stored: StoredEntry<'_> =
            serde_json::from_str(text).map_err(|e| EventingError::MalformedRecord {
                reason: format!("the outbox entry is not one ({e})"),
            })?;
        let event =
            contracts::AnyEvent::parse_str(stored.source, stored.detail_type, stored.detail.get())?;
        let mut outgoing = Self {
            source: stored.source.to_owned(),
            detail_type: stored.detail_type.to_owned(),
            detail: stored.detail.get().to_owned(),
            idempotency_key: event.metadata().idempotency_key.to_string(),
            trace_header: stored.trace_header.map(str::to_owned),
        };
        outgoing.check_size()?;
        outgoing.trace_header = outgoing.trace_header.filter(|h| !h.is_empty());
        Ok(outgoing)
    }
}

/// What became of one stream record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RelayOutcome {
    /// Its new fact was published.
    Published {
        /// The fact's detail type.
        detail_type: String,
        /// The fact's idempotency key.
        idempotency_key: String,
    },
    /// The change records no new fact (a status update, a removal, a rewrite of the same entry).
    Skipped,
    /// Not published; Lambda retries it. The string is the error's `error_type`.
    Failed {
        /// The stable error type.
        error_type: &'static str,
        /// What went wrong (never the entry's content).
        error: String,
    },
}

/// One stream record's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayedRecord {
    /// The record's `SequenceNumber` (what a batch-item failure names).
    pub sequence_number: String,
    /// The item's partition key, when the record carried it.
    pub key: Option<String>,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: RelayOutcome,
}

/// Everything that happened to one batch of stream records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    /// One report per record, in stream order.
    pub records: Vec<RelayedRecord>,
}

impl RelayReport {
    /// Records published.
    pub fn published(&self) -> usize {
        self.count(|o| matches!(o, RelayOutcome::Published { .. }))
    }

    /// Records to retry.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, RelayOutcome::Failed { .. }))
    }

    fn count(&self, f: impl Fn(&RelayOutcome) -> bool) -> usize {
        self.records.iter().filter(|r| f(&r.outcome)).count()
    }

    /// The partial batch response: the sequence number of every record that failed. Lambda
    /// checkpoints before the lowest and retries from there (what followed it is published
    /// again: same stored text, deduplicated downstream).
    pub fn response(&self) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in &self.records {
            if matches!(record.outcome, RelayOutcome::Failed { .. }) {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(record.sequence_number.clone());
                response.batch_item_failures.push(failure);
            }
        }
        response
    }
}

/// The entry point of an outbox relay Lambda: a batch of a domain table's stream records in,
/// their new facts published, a partial batch response out.
#[derive(Clone)]
pub struct OutboxRelay {
    publisher: Arc<dyn EventPublisher>,
    source: &'static str,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The string attribute `name` of a stream image.
fn string_attribute<'a>(image: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(serde_dynamo::AttributeValue::S(text)) => Some(text),
        _ => None,
    }
}

impl OutboxRelay {
    /// A relay publishing with `publisher` the facts of the domain whose EventBridge source is
    /// `source`; an entry of another source is refused (a table holds its own domain's facts).
    pub fn new(publisher: Arc<dyn EventPublisher>, source: &'static str) -> Self {
        Self { publisher, source }
    }

    /// The new fact a stream record carries, if any.
    fn fact(&self, record: &EventRecord) -> Result<Option<OutgoingEvent>, EventingError> {
        if record.event_name == "REMOVE" {
            return Ok(None);
        }
        let change = &record.change;
        let Some(entry) = string_attribute(&change.new_image, OUTBOX_ATTRIBUTE) else {
            return Ok(None);
        };
        if string_attribute(&change.old_image, OUTBOX_ATTRIBUTE) == Some(entry) {
            return Ok(None);
        }
        let event = OutgoingEvent::from_outbox(entry)?;
        if event.source != self.source {
            return Err(EventingError::MalformedRecord {
                reason: format!(
                    "the outbox entry's source {} is not this relay's ({})",
                    event.source, self.source
                ),
            });
        }
        Ok(Some(event))
    }

    /// Publishes the new facts of a batch of stream records, in one publish call, within the
    /// invocation's time budget when `remaining` is known (what is cut off fails, to be retried;
    /// the partial batch response always gets out).
    pub async fn process(&self, batch: Event, remaining: Option<Duration>) -> RelayReport {
        let mut records = Vec::with_capacity(batch.records.len());
        let mut events = Vec::new();
        // Index into `events` of each record that carries a fact.
        let mut carried = Vec::with_capacity(batch.records.len());
        for record in &batch.records {
            let key = string_attribute(&record.change.keys, "pk").map(str::to_owned);
            let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
            let outcome = match self.fact(record) {
                Ok(Some(event)) => {
                    carried.push(Some(events.len()));
                    let outcome = RelayOutcome::Published {
                        detail_type: event.detail_type.clone(),
                        idempotency_key: event.idempotency_key.clone(),
                    };
                    events.push(event);
                    outcome
                }
                Ok(None) => {
                    carried.push(None);
                    RelayOutcome::Skipped
                }
                Err(e) => {
                    carried.push(None);
                    tracing::error!(
                        sequence_number,
                        key,
                        error_type = e.error_type(),
                        error = %e,
                        "outbox entry cannot be published"
                    );
                    RelayOutcome::Failed {
                        error_type: e.error_type(),
                        error: e.to_string(),
                    }
                }
            };
            records.push(RelayedRecord {
                sequence_number,
                key,
                outcome,
            });
        }
        let published = match remaining {
            _ if events.is_empty() => Ok(()),
            Some(remaining) => {
                self.publisher
                    .publish_within(&events, Budget::from_remaining(remaining))
                    .await
            }
            None => self.publisher.publish(&events).await,
        };
        if let Err(failure) = published {
            for (record, slot) in records.iter_mut().zip(&carried) {
                let Some(entry) =
                    slot.and_then(|index| failure.failed.iter().find(|f| f.index == index))
                else {
                    continue;
                };
                record.outcome = RelayOutcome::Failed {
                    error_type: if entry.is_deadline_exceeded() {
                        platform::budget::DeadlineExceeded::ERROR_TYPE
                    } else {
                        failure.error_type()
                    },
                    error: format!("{}: {}", entry.error_code, entry.message),
                };
            }
        }
        let report = RelayReport { records };
        tracing::info!(
            records = report.records.len(),
            published = report.published(),
            failed = report.failed(),
            "outbox batch relayed"
        );
        report
    }

    /// Lambda entry: a DynamoDB stream event in, the partial batch response (as JSON) out.
    /// Anything that is not a stream event is [`EventingError::UnrecognisedPayload`].
    pub async fn handle_payload(
        &self,
        payload: Value,
        remaining: Option<Duration>,
    ) -> Result<Value, EventingError> {
        let batch: Event =
            serde_json::from_value(payload).map_err(|e| EventingError::UnrecognisedPayload {
                reason: format!("not a DynamoDB stream event ({e})"),
            })?;
        let report = self.process(batch, remaining).await;
        serde_json::to_value(report.response()).map_err(EventingError::Serialization)
    }
}

/// The stream of an in-memory table: every write recorded, in order, as the DynamoDB stream
/// record (`NEW_AND_OLD_IMAGES`) Lambda would deliver, its images holding the item's key and
/// outbox attribute (all a relay reads). Clones share the stream.
#[derive(Debug, Clone, Default)]
pub struct ChangeFeed {
    state: Arc<Mutex<FeedState>>,
}

#[derive(Debug, Default)]
struct FeedState {
    next_sequence: u64,
    pending: VecDeque<Value>,
}

impl ChangeFeed {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FeedState> {
        // Every update is one push or pop: a poisoned lock leaves a consistent queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a write of the item `pk`: `old` is the outbox entry before it (`None` when the
    /// item did not exist, `Some(None)` when it existed without one), `new` the entry after.
    pub fn record(&self, pk: &str, old: Option<Option<&str>>, new: Option<&str>) {
        let image = |entry: Option<&str>| {
            let mut image = serde_json::json!({ "pk": { "S": pk } });
            if let Some(entry) = entry {
                image[OUTBOX_ATTRIBUTE] = serde_json::json!({ "S": entry });
            }
            image
        };
        let mut state = self.state();
        state.next_sequence += 1;
        let sequence = format!("{:021}", state.next_sequence);
        let mut change = serde_json::json!({
            "Keys": { "pk": { "S": pk } },
            "NewImage": image(new),
            "SequenceNumber": sequence,
            "SizeBytes": pk.len() + new.map_or(0, str::len),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        if let Some(old) = old {
            change["OldImage"] = image(old);
        }
        state.pending.push_back(serde_json::json!({
            "eventID": sequence,
            "eventName": if old.is_some() { "MODIFY" } else { "INSERT" },
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "local",
            "dynamodb": change,
        }));
    }

    /// Takes up to `max` records from the head of the stream, oldest first.
    pub fn take(&self, max: usize) -> Vec<Value> {
        let mut state = self.state();
        let n = max.min(state.pending.len());
        state.pending.drain(..n).collect()
    }

    /// Records not taken yet.
    pub fn pending(&self) -> usize {
        self.state().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryPublisher;
    use crate::test_support::picked;

    fn created(key: &str) -> OutgoingEvent {
        let order = contracts::OrderCreated {
            order_id: "o-1".into(),
            status: contracts::OrderStatus::Open,
            total: "25.00".parse().unwrap(),
            currency: contracts::Currency::new("USD").unwrap(),
            customer_id: "456".into(),
            items: vec![],
            created_at: "2026-11-23T10:47:00Z".parse().unwrap(),
        };
        let metadata = contracts::Metadata::first(
            contracts::IdempotencyKey::new(key).unwrap(),
            "o-1",
            order.created_at,
        );
        OutgoingEvent::new(&contracts::Detail::new(metadata, order)).unwrap()
    }

    fn batch(feed: &ChangeFeed) -> Event {
        serde_json::from_value(serde_json::json!({ "Records": feed.take(100) })).unwrap()
    }

    #[test]
    fn an_entry_reads_back_as_the_event_it_stored() {
        let event = created("k-1").with_trace_header(Some("Root=1-abc".into()));
        let stored = event.to_outbox().unwrap();
        let text: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(text["detail"]["metadata"]["idempotency-key"], "k-1");
        assert_eq!(OutgoingEvent::from_outbox(&stored).unwrap(), event);
    }

    #[test]
    fn an_entry_outside_the_contract_is_refused() {
        let mut event = created("k-1");
        event.detail_type = "OrderCancelled".into();
        let err = OutgoingEvent::from_outbox(&event.to_outbox().unwrap()).unwrap_err();
        assert_eq!(err.error_type(), "UnknownEventType");
        assert_eq!(
            OutgoingEvent::from_outbox("{}").unwrap_err().error_type(),
            "MalformedRecord"
        );
    }

    #[tokio::test]
    async fn only_changes_that_store_a_new_fact_are_published() {
        let feed = ChangeFeed::new();
        let event = created("k-1");
        let first = event.to_outbox().unwrap();
        feed.record("ORDER#o-1", None, Some(&first)); // insert with a fact
        feed.record("ORDER#o-1", Some(Some(&first)), Some(&first)); // status update
        feed.record("SHIPPED#o-9", None, None); // an item without facts
        let publisher = InMemoryPublisher::new();
        let relay = OutboxRelay::new(Arc::new(publisher.clone()), contracts::source::ORDERS);
        let report = relay.process(batch(&feed), None).await;
        let outcomes: Vec<_> = report.records.iter().map(|r| &r.outcome).collect();
        assert!(matches!(outcomes[0], RelayOutcome::Published { .. }));
        assert_eq!(
            outcomes[1..],
            [&RelayOutcome::Skipped, &RelayOutcome::Skipped]
        );
        assert_eq!(
            publisher.published(),
            vec![event],
            "the stored text, byte for byte"
        );
        assert!(report.response().batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn a_failed_publish_and_a_foreign_fact_are_reported_by_sequence_number() {
        let feed = ChangeFeed::new();
        let ok_event = created("k-ok");
        let ok = ok_event.to_outbox().unwrap();
        let failing = created("k-down").to_outbox().unwrap();
        let foreign = OutgoingEvent::new(&picked("k-picked", "WH"))
            .unwrap()
            .to_outbox()
            .unwrap();
        feed.record("ORDER#a", None, Some(&ok));
        feed.record("ORDER#b", None, Some(&failing));
        feed.record("ORDER#c", None, Some(&foreign));
        let publisher = InMemoryPublisher::new();
        publisher.fail_key("k-down");
        let relay = OutboxRelay::new(Arc::new(publisher.clone()), contracts::source::ORDERS);
        let report = relay.process(batch(&feed), None).await;
        let failed: Vec<_> = report
            .response()
            .batch_item_failures
            .into_iter()
            .filter_map(|f| f.item_identifier)
            .collect();
        assert_eq!(
            failed,
            [
                report.records[1].sequence_number.clone(),
                report.records[2].sequence_number.clone()
            ]
        );
        assert_eq!(publisher.published(), vec![ok_event]);
        assert_eq!(report.records[1].key.as_deref(), Some("ORDER#b"));
    }

    /// A publisher whose every call hangs.
    struct Hanging;

    #[async_trait::async_trait]
    impl EventPublisher for Hanging {
        async fn publish(&self, _: &[OutgoingEvent]) -> Result<(), crate::PublishError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_that_hangs_past_the_budget_fails_its_records_in_time() {
        let feed = ChangeFeed::new();
        feed.record("ORDER#a", None, Some(&created("k-1").to_outbox().unwrap()));
        let relay = OutboxRelay::new(Arc::new(Hanging), contracts::source::ORDERS);
        let started = tokio::time::Instant::now();
        let report = relay
            .process(batch(&feed), Some(Duration::from_secs(15)))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "answered before the deadline"
        );
        assert!(
            matches!(
                &report.records[0].outcome,
                RelayOutcome::Failed { error_type, .. } if *error_type == "DeadlineExceeded"
            ),
            "{report:?}"
        );
        assert_eq!(report.response().batch_item_failures.len(), 1);
    }

    #[tokio::test]
    async fn a_payload_that_is_not_a_stream_event_is_a_typed_error() {
        let relay = OutboxRelay::new(Arc::new(InMemoryPublisher::new()), "com.orders");
        let err = relay
            .handle_payload(serde_json::json!({ "detail-type": "x" }), None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "UnrecognisedPayload");
    }
}
