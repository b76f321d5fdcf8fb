//! The consumer: SQS batches (or one bare EventBridge event) in, idempotent typed handling, the
//! caused events published together, a partial batch response out.
//!
//! Per batch:
//! 1. every record is parsed (SQS body -> EventBridge envelope -> [`AnyEvent`]) and its
//!    idempotency [`Request`] built; what fails is a batch-item failure, logged with its id;
//! 2. records sharing an idempotency key within the batch are handled once: the first one
//!    leads, identical copies follow its outcome (a copy with a different payload waits, as
//!    "in progress", for a redelivery that the idempotency layer can judge);
//! 3. leaders are handled concurrently (bounded), each behind its own `catch_unwind`:
//!    `begin` -> handler; a panic is caught and becomes that record's failure, releasing its
//!    claim;
//! 4. the events of every claimed record are published in one [`EventPublisher::publish`] call;
//! 5. each claimed record whose events were all accepted completes its claim (storing the keys
//!    it emitted); the others release it and fail, so the source retries them.
//!
//! Given the invocation's remaining time, the batch runs under one time budget
//! (`platform::budget`, ending a reporting margin before Lambda's deadline) shared by the
//! phases (`crate::deadlines`): each phase ends early enough to leave the later ones their
//! reserve, and the records that have not finished a phase when it ends fail alone with
//! `DeadlineExceeded`, their claims neither completed nor released (they expire at the
//! invocation's deadline, as `in_progress_expiration` says). The partial batch response is
//! always returned before the deadline.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::ready;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use contracts::AnyEvent;
use futures::{FutureExt, StreamExt};
use idempotency::{Begin, Claim, Idempotency, IdempotencyError, Request};
use platform::budget::{Budget, DeadlineExceeded};
use serde::Serialize;
use serde_json::Value;

use crate::deadlines::{COMPLETING, HANDLING, PUBLISHING, PhaseBudgets, within};
use crate::{
    ConsumerError, EventHandler, EventPublisher, EventingError, FailedEntry, OutgoingEvent,
    PublishError,
};

/// Records handled at once unless [`Consumer::with_concurrency`] says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 10;

/// The per-consumer entry point shared by every SQS-fed Lambda.
///
/// Cheap to clone: everything is behind `Arc`s (the idempotency layer included). The records of
/// a batch run concurrently as futures of the caller's task; the adapters (the SDK, the
/// publisher's back-off timer) and the time budget (when a remaining time is given) need a
/// Tokio runtime with its timer, as `lambda_runtime` provides.
///
/// ```
/// use contracts::AnyEvent;
/// use eventing::{Consumer, EventHandler, HandlerError, InMemoryPublisher, OutgoingEvent};
/// use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
///
/// struct Projection;
///
/// #[async_trait::async_trait]
/// impl EventHandler for Projection {
///     async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError> {
///         match event {
///             AnyEvent::OrderPicked(_) => Ok(vec![]), // update a projection; cause nothing
///             other => Err(HandlerError::unhandled(other)),
///         }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("orders-events"));
/// let consumer = Consumer::new(Projection, idempotency, InMemoryPublisher::new());
///
/// let envelope = serde_json::json!({
///     "source": "com.fulfillment", "detail-type": "OrderPicked",
///     "detail": {
///         "metadata": { "idempotency-key": "k-1", "event-id": "e-1", "schema-version": "1",
///                       "correlation-id": "1073459984", "occurred-at": "2026-11-23T10:52:10Z" },
///         "data": { "order-id": "1073459984", "customer-id": "456", "items": [],
///                   "warehouse-id": "WH-EU-1", "picked-at": "2026-11-23T10:52:10Z" }
///     }
/// });
/// let batch = serde_json::json!({ "Records": [
///     { "messageId": "m-1", "body": envelope.to_string(), "eventSource": "aws:sqs" },
///     { "messageId": "m-2", "body": "not an event", "eventSource": "aws:sqs" },
/// ]});
/// let answer = consumer.handle_payload(batch, None).await.unwrap();
/// // Only the malformed record is retried.
/// assert_eq!(answer, serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": "m-2" }] }));
/// # });
/// ```
#[derive(Clone)]
pub struct Consumer {
    handler: Arc<dyn EventHandler>,
    idempotency: Idempotency,
    publisher: Arc<dyn EventPublisher>,
    concurrency: usize,
    last_stats: Arc<Mutex<Option<BatchStats>>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("idempotency", &self.idempotency)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Handled now; its events were published and its claim completed.
    Fresh,
    /// A duplicate of an event already handled (or of an identical record of the same batch):
    /// nothing ran, nothing was published.
    Replayed,
    /// Another invocation, or another record of this batch, holds the key: retried later.
    InProgress,
    /// Failed; the string is the error's `error_type`.
    Failed(&'static str),
}

impl RecordOutcome {
    /// `"fresh"`, `"replayed"`, `"in_progress"` or `"failed:<error_type>"`.
    pub fn label(&self) -> String {
        match self {
            Self::Fresh => "fresh".to_owned(),
            Self::Replayed => "replayed".to_owned(),
            Self::InProgress => "in_progress".to_owned(),
            Self::Failed(error_type) => format!("failed:{error_type}"),
        }
    }

    /// Whether the record must be retried (a batch-item failure).
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::InProgress | Self::Failed(_))
    }
}

impl Serialize for RecordOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.label())
    }
}

/// An event a record caused, as reported (never its detail: it may hold personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmittedEvent {
    /// Its source.
    pub source: String,
    /// Its detail type.
    pub detail_type: String,
    /// Its idempotency key.
    pub idempotency_key: String,
}

/// Per-record outcome for logs and the local runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordReport {
    /// The SQS message id, or the EventBridge event id for a bare event.
    pub message_id: String,
    /// The envelope's source, when it could be read.
    pub source: Option<String>,
    /// The envelope's detail type, when it could be read.
    pub detail_type: Option<String>,
    /// `metadata.idempotency-key`, when the event parsed.
    pub idempotency_key: Option<String>,
    /// The hashed key the idempotency layer uses (what the logs show).
    pub key_hash: Option<String>,
    /// `metadata.correlation-id`, when the event parsed: ties the record to its business flow.
    pub correlation_id: Option<String>,
    /// `metadata.event-id`, when the event parsed.
    pub event_id: Option<String>,
    /// What became of the record.
    pub outcome: RecordOutcome,
    /// The error's message, for failures.
    pub error: Option<String>,
    /// The events it caused that the publisher accepted (empty for replays; for a record whose
    /// publishing partly failed, the part that went out).
    pub emitted: Vec<EmittedEvent>,
}

impl RecordReport {
    fn new(message_id: String) -> Self {
        Self {
            message_id,
            source: None,
            detail_type: None,
            idempotency_key: None,
            key_hash: None,
            correlation_id: None,
            event_id: None,
            outcome: RecordOutcome::Replayed,
            error: None,
            emitted: Vec::new(),
        }
    }

    /// The outcome label (see [`RecordOutcome::label`]).
    pub fn label(&self) -> String {
        self.outcome.label()
    }

    /// Whether the record is a batch-item failure.
    pub fn is_failure(&self) -> bool {
        self.outcome.is_failure()
    }
}

/// Counters of one batch's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// Records in the batch.
    pub records: usize,
    /// Handled now.
    pub fresh: usize,
    /// Duplicates, nothing ran.
    pub replayed: usize,
    /// Held by someone else: retried later.
    pub in_progress: usize,
    /// Failed for any other reason.
    pub failed: usize,
    /// Events accepted by the publisher.
    pub events_published: usize,
    /// Calls to [`EventPublisher::publish`] (0 or 1 per batch; the publisher splits them into
    /// PutEvents requests).
    pub publish_calls: usize,
}

/// Everything that happened to one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// One report per record, in batch order.
    pub records: Vec<RecordReport>,
    /// Counters.
    pub stats: BatchStats,
}

impl BatchReport {
    /// Message ids of the records to retry, in batch order.
    pub fn failed_message_ids(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter(|r| r.is_failure())
            .map(|r| r.message_id.as_str())
            .collect()
    }

    /// The partial batch response: only the failed records' ids.
    ///
    /// A failed record without a message id is reported with an empty one, which Lambda treats
    /// as a failure of the whole batch: better retried in full than acknowledged unprocessed.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for id in self.failed_message_ids() {
            response.add_failure(id);
        }
        response
    }
}

/// A record as it arrived.
enum Body {
    /// An SQS message body (absent when SQS sent none).
    Text(Option<String>),
    /// A bare EventBridge event.
    Json(Value),
}

/// A record that parsed, ready for the idempotency layer.
struct Parsed {
    event: AnyEvent,
    /// Its validation hash (of the event's `data`) tells identical in-batch copies from
    /// conflicting ones.
    request: Request,
}

/// A record's progress through the pipeline.
enum Stage {
    /// Settled (for now or for good).
    Done(Result<RecordOutcome, EventingError>),
    /// Parsed; waiting for its turn (boxed: the typed event is large and most stages are not).
    Parsed(Box<Parsed>),
    /// Being claimed and handled.
    Running,
    /// An identical copy of the record at this index of the batch.
    Follower(usize),
    /// Handled under a claim (`None` for an unkeyed request): its events await publishing.
    Handled {
        claim: Option<Claim>,
        events: Vec<OutgoingEvent>,
    },
}

/// What the concurrent part of handling a record yields.
enum Handled {
    Replayed,
    Claimed {
        claim: Option<Claim>,
        events: Vec<OutgoingEvent>,
    },
}

/// What a completed claim stores: the keys of the events the record caused, so an operator
/// can trace a replayed record to what it emitted.
#[derive(Serialize)]
struct StoredResult<'a> {
    emitted: Vec<&'a str>,
}

/// The idempotency request for a contract event: keyed by its `metadata.idempotency-key`,
/// validated on its `data` (so a reused key with different facts is refused, while a
/// re-emission with new metadata such as `event-id` is still a duplicate), and bounded by the
/// invocation's remaining time when known.
pub fn idempotency_request(
    event: &AnyEvent,
    remaining: Option<Duration>,
) -> Result<Request, IdempotencyError> {
    let request = Request::new(event.metadata().idempotency_key.as_str())?;
    // Hashed from the typed data: unknown fields a producer added are not part of it.
    let request = match event {
        AnyEvent::OrderCreated(d) => request.validate(&d.data),
        AnyEvent::OrderPicked(d) => request.validate(&d.data),
        AnyEvent::OrderShipped(d) => request.validate(&d.data),
        AnyEvent::ReturnRequested(d) => request.validate(&d.data),
        AnyEvent::ReturnReceived(d) => request.validate(&d.data),
    }?;
    Ok(match remaining {
        Some(remaining) => request.remaining_time(remaining),
        None => request,
    })
}

/// Reads an EventBridge envelope. `account`, `id`, `time`... are not required (moto's envelope
/// lacks `account`); `source`, `detail-type` and `detail` are.
fn parse_envelope(envelope: Value, report: &mut RecordReport) -> Result<AnyEvent, EventingError> {
    let Value::Object(mut fields) = envelope else {
        return Err(EventingError::MalformedRecord {
            reason: "the body is not a JSON object".to_owned(),
        });
    };
    let text = |name: &str| match fields.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(EventingError::MalformedRecord {
            reason: format!("`{name}` is not a string"),
        }),
        None => Err(EventingError::MalformedRecord {
            reason: format!("`{name}` is missing"),
        }),
    };
    let source = text("source");
    let detail_type = text("detail-type");
    report.source = source.as_deref().ok().map(clip);
    report.detail_type = detail_type.as_deref().ok().map(clip);
    let (source, detail_type) = (source?, detail_type?);
    let detail = fields
        .remove("detail")
        .ok_or_else(|| EventingError::MalformedRecord {
            reason: "`detail` is missing".to_owned(),
        })?;
    Ok(AnyEvent::parse(&source, &detail_type, detail)?)
}

/// Envelope strings are untrusted and end up in logs: keep them short.
fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 128;
    // No more bytes than the limit means no more characters either: one copy, no decoding.
    if text.len() <= MAX_CHARS {
        return text.to_owned();
    }
    text.chars().take(MAX_CHARS).collect()
}

fn parse_body(body: Body, report: &mut RecordReport) -> Result<AnyEvent, EventingError> {
    let envelope = match body {
        Body::Json(value) => value,
        Body::Text(None) => {
            return Err(EventingError::MalformedRecord {
                reason: "the SQS message has no body".to_owned(),
            });
        }
        Body::Text(Some(text)) => {
            if let Some(event) = parse_text_directly(&text, report) {
                return Ok(event);
            }
            serde_json::from_str(&text).map_err(|e| EventingError::MalformedRecord {
                reason: format!("the body is not JSON ({e})"),
            })?
        }
    };
    parse_envelope(envelope, report)
}

/// Nesting the fast path takes. serde_json refuses to build a `Value` nested deeper than 128 but
/// skips fields nobody reads at any depth: deeper bodies take the general path, so a body nested
/// past serde_json's limit is refused whichever field holds the nesting.
const FAST_PATH_MAX_DEPTH: usize = 100;

/// Whether `text` nests arrays and objects deeper than `limit` (brackets inside strings do not
/// count). Counting every bracket first is one vectorised pass (memchr's, which stays vectorised
/// in the size-optimised Lambda build, where a plain loop is not) that settles almost every
/// body; the exact depth is only worked out when there are more brackets than the limit.
fn nests_deeper_than(text: &str, limit: usize) -> bool {
    let brackets = memchr::memchr2_iter(b'[', b'{', text.as_bytes()).count();
    if brackets <= limit {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// What the fast path reads from an envelope: `source` and `detail-type` borrowed from the
/// body's text, and the detail typed as it is met.
struct EnvelopeRead<'a> {
    source: &'a str,
    detail_type: &'a str,
    event: AnyEvent,
}

/// Reads an envelope object in one pass. EventBridge writes `detail` last, so by the time it
/// comes the type is known and the detail is deserialized straight into it; a `detail` that
/// comes before `source` or `detail-type` is kept as raw text and typed at the end. A repeated
/// field is refused here, which hands the body to the general path.
struct EnvelopeVisitor;

impl<'de> serde::de::Visitor<'de> for EnvelopeVisitor {
    type Value = EnvelopeRead<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an EventBridge envelope")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut source: Option<&'de str> = None;
        let mut detail_type: Option<&'de str> = None;
        let mut event: Option<AnyEvent> = None;
        let mut raw: Option<&'de serde_json::value::RawValue> = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "source" if source.is_none() => source = Some(map.next_value()?),
                "detail-type" if detail_type.is_none() => detail_type = Some(map.next_value()?),
                "detail" if event.is_none() && raw.is_none() => match (source, detail_type) {
                    (Some(source), Some(detail_type)) => {
                        event = Some(map.next_value_seed(DetailSeed {
                            source,
                            detail_type,
                        })?);
                    }
                    _ => raw = Some(map.next_value()?),
                },
                "source" | "detail-type" | "detail" => {
                    return Err(A::Error::custom(format_args!("duplicate field `{key}`")));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let source = source.ok_or_else(|| A::Error::missing_field("source"))?;
        let detail_type = detail_type.ok_or_else(|| A::Error::missing_field("detail-type"))?;
        let event = match (event, raw) {
            (Some(event), _) => event,
            (None, Some(raw)) => {
                AnyEvent::parse_str(source, detail_type, raw.get()).map_err(A::Error::custom)?
            }
            (None, None) => return Err(A::Error::missing_field("detail")),
        };
        Ok(EnvelopeRead {
            source,
            detail_type,
            event,
        })
    }
}

/// The `detail` value, typed by the envelope's `source` and `detail-type`.
struct DetailSeed<'a> {
    source: &'a str,
    detail_type: &'a str,
}

impl<'de> serde::de::DeserializeSeed<'de> for DetailSeed<'_> {
    type Value = AnyEvent;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<AnyEvent, D::Error> {
        AnyEvent::deserialize_detail(self.source, self.detail_type, deserializer)
    }
}

/// The fast path for a well-formed body: one pass over the text, the envelope's fields borrowed
/// from it and the detail parsed straight into its type, with no intermediate [`Value`] (the
/// consumer's hottest cost). `None` for anything else (not an object, nested deeper than
/// [`FAST_PATH_MAX_DEPTH`], a missing or escaped field, a duplicate field, a detail its type
/// refuses): the general path then parses it again and says exactly what is wrong, so errors
/// read the same whichever path ran. The one difference: values in fields the consumer never
/// reads (envelope fields other than `source`, `detail-type` and `detail`, unknown fields of
/// the detail) are skipped unread, so one that a `Value` cannot hold, such as `1e400`, does not
/// fail the record, as the contract's "consumers ignore unknown fields" asks.
fn parse_text_directly(text: &str, report: &mut RecordReport) -> Option<AnyEvent> {
    // A visitor's map path never takes a JSON array; an envelope is an object.
    if !text.trim_start().starts_with('{') || nests_deeper_than(text, FAST_PATH_MAX_DEPTH) {
        return None;
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let envelope = serde::Deserializer::deserialize_map(&mut deserializer, EnvelopeVisitor).ok()?;
    deserializer.end().ok()?;
    report.source = Some(clip(envelope.source));
    report.detail_type = Some(clip(envelope.detail_type));
    Some(envelope.event)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Releases a claim whose record failed; a failed release only delays the retry until the
/// claim expires, so it is logged, not escalated.
async fn release(claim: Claim) {
    let key_hash = claim.key_hash().to_owned();
    if let Err(e) = claim.release().await {
        tracing::warn!(
            key_hash,
            error_type = e.error_type(),
            error = %e,
            "releasing the claim of a failed record failed; it stays claimed until it expires"
        );
    }
}

/// Claims the record and runs the handler (the part that runs concurrently with the batch's
/// other records).
///
/// `parsed` stays boxed: the future is moved into the batch's `FuturesUnordered`, and an event
/// held inline would make every record's future a few hundred bytes larger to copy.
async fn begin_and_handle(
    handler: &dyn EventHandler,
    idempotency: &Idempotency,
    parsed: Box<Parsed>,
) -> Result<Handled, EventingError> {
    let claim = match idempotency.begin(&parsed.request).await? {
        Begin::Claimed(claim) => Some(claim),
        Begin::Unkeyed => None,
        Begin::Replayed(_) => return Ok(Handled::Replayed),
        Begin::InProgress => {
            return Err(EventingError::InProgress {
                key_hash: parsed.request.key_hash().unwrap_or_default().to_owned(),
            });
        }
    };
    // Caught here rather than only around the whole record so the claim is released at once and
    // a retry need not wait for it to expire.
    let error = match AssertUnwindSafe(handler.handle(&parsed.event))
        .catch_unwind()
        .await
    {
        Ok(Ok(events)) => return Ok(Handled::Claimed { claim, events }),
        Ok(Err(e)) => EventingError::Handler(e),
        Err(panic) => EventingError::Panicked {
            message: panic_message(&*panic),
        },
    };
    if let Some(claim) = claim {
        release(claim).await;
    }
    Err(error)
}

impl Consumer {
    /// A consumer that hands every event to `handler`, deduplicated by `idempotency`, and
    /// publishes what it causes with `publisher`.
    pub fn new(
        handler: impl EventHandler + 'static,
        idempotency: Idempotency,
        publisher: impl EventPublisher + 'static,
    ) -> Self {
        Self::from_arcs(Arc::new(handler), idempotency, Arc::new(publisher))
    }

    /// Like [`Consumer::new`], sharing a handler and a publisher already behind `Arc`s.
    pub fn from_arcs(
        handler: Arc<dyn EventHandler>,
        idempotency: Idempotency,
        publisher: Arc<dyn EventPublisher>,
    ) -> Self {
        Self {
            handler,
            idempotency,
            publisher,
            concurrency: DEFAULT_CONCURRENCY,
            last_stats: Arc::new(Mutex::new(None)),
        }
    }

    /// Handles at most `limit` records at once (at least 1; default [`DEFAULT_CONCURRENCY`]).
    pub fn with_concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// The idempotency layer (for its metrics).
    pub fn idempotency(&self) -> &Idempotency {
        &self.idempotency
    }

    /// SQS batch whose bodies are EventBridge events -> partial batch response (only failed ids).
    pub async fn handle_sqs(
        &self,
        batch: SqsEvent,
        remaining: Option<Duration>,
    ) -> SqsBatchResponse {
        self.process_sqs(batch, remaining).await.response()
    }

    /// Like [`Consumer::handle_sqs`], returning every record's report.
    pub async fn process_sqs(&self, batch: SqsEvent, remaining: Option<Duration>) -> BatchReport {
        let records = batch
            .records
            .into_iter()
            .map(|m| (m.message_id.unwrap_or_default(), Body::Text(m.body)))
            .collect();
        self.process(records, remaining).await.0
    }

    /// A bare EventBridge event (what `sam local invoke -e events/eventbridge/x.json` sends).
    ///
    /// `Ok` when the event was handled now or is a duplicate; any failure, including another
    /// invocation holding the key, is `Err`, so the invoker retries.
    pub async fn handle_eventbridge(
        &self,
        event: Value,
        remaining: Option<Duration>,
    ) -> Result<RecordReport, ConsumerError> {
        let id = match event.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ => String::new(),
        };
        let (mut batch, mut errors) = self.process(vec![(id, Body::Json(event))], remaining).await;
        let error = errors.pop().flatten();
        let report = batch.records.pop();
        match (error, report) {
            (Some(error), _) => Err(error),
            (None, Some(report)) => Ok(report),
            // One record in, one report out: an empty result cannot happen, but must not panic.
            (None, None) => Err(EventingError::MalformedRecord {
                reason: "the event produced no report".to_owned(),
            }),
        }
    }

    /// Lambda entry: detects an SQS batch (`Records`) or a bare EventBridge event (`source`,
    /// `detail-type`, `detail`) and returns the JSON to answer: the [`SqsBatchResponse`] for a
    /// batch, the [`RecordReport`] for an event. Anything else is
    /// [`EventingError::UnrecognisedPayload`].
    pub async fn handle_payload(
        &self,
        payload: Value,
        remaining: Option<Duration>,
    ) -> Result<Value, ConsumerError> {
        let unrecognised = |reason: &str| EventingError::UnrecognisedPayload {
            reason: reason.to_owned(),
        };
        let Some(object) = payload.as_object() else {
            return Err(unrecognised("the payload is not a JSON object"));
        };
        if let Some(records) = object.get("Records") {
            let from_sqs = records.as_array().is_some_and(|records| {
                records.iter().all(|r| {
                    r.get("eventSource")
                        .is_none_or(|s| s.as_str() == Some("aws:sqs"))
                })
            });
            if !from_sqs {
                return Err(unrecognised(
                    "`Records` is not a list of SQS messages (eventSource aws:sqs)",
                ));
            }
            let batch: SqsEvent = serde_json::from_value(payload)
                .map_err(|_| unrecognised("`Records` do not have the shape of SQS messages"))?;
            let response = self.handle_sqs(batch, remaining).await;
            return serde_json::to_value(response).map_err(EventingError::Serialization);
        }
        if ["source", "detail-type", "detail"]
            .iter()
            .any(|f| object.contains_key(*f))
        {
            let report = self.handle_eventbridge(payload, remaining).await?;
            return serde_json::to_value(report).map_err(EventingError::Serialization);
        }
        Err(unrecognised(
            "expected an SQS batch (`Records`) or an EventBridge event (`source`, `detail-type`, `detail`)",
        ))
    }

    /// Counters of the last batch (or event) this consumer (or a clone of it) processed.
    pub fn last_batch_stats(&self) -> Option<BatchStats> {
        *self
            .last_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the pipeline over `(message id, body)` records; returns the batch report and each
    /// record's error, in batch order.
    async fn process(
        &self,
        incoming: Vec<(String, Body)>,
        remaining: Option<Duration>,
    ) -> (BatchReport, Vec<Option<EventingError>>) {
        let budgets =
            remaining.map(|remaining| PhaseBudgets::of(Budget::from_remaining(remaining)));
        let (mut reports, mut stages) = self.prepare_all(incoming, remaining);
        self.handle_leaders(&mut stages, budgets.map(|b| b.handle))
            .await;
        let publish_calls = self
            .publish_and_settle(&mut stages, &mut reports, budgets)
            .await;
        let results = follow_leaders(stages, &reports);
        let (batch, errors) = finish(reports, results, publish_calls);
        *self
            .last_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(batch.stats);
        (batch, errors)
    }

    /// Phase 1: parses every record and builds its request; picks one leader per key.
    fn prepare_all(
        &self,
        incoming: Vec<(String, Body)>,
        remaining: Option<Duration>,
    ) -> (Vec<RecordReport>, Vec<Stage>) {
        let mut reports = Vec::with_capacity(incoming.len());
        let mut stages: Vec<Stage> = Vec::with_capacity(incoming.len());
        let mut leaders: HashMap<String, usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(incoming.len(), Default::default());
        for (index, (message_id, body)) in incoming.into_iter().enumerate() {
            let mut report = RecordReport::new(message_id);
            let stage = match prepare(body, remaining, &mut report) {
                Err(e) => Stage::Done(Err(e)),
                Ok(parsed) => {
                    let key = parsed.event.metadata().idempotency_key.to_string();
                    match leaders.entry(key) {
                        Entry::Vacant(slot) => {
                            slot.insert(index);
                            Stage::Parsed(Box::new(parsed))
                        }
                        Entry::Occupied(leader) => {
                            let leader = *leader.get();
                            let identical = matches!(
                                stages.get(leader),
                                Some(Stage::Parsed(first)) if first.request.validation_hash() == parsed.request.validation_hash()
                            );
                            if identical {
                                Stage::Follower(leader)
                            } else {
                                // Same key, other facts: the leader's outcome decides; the
                                // idempotency layer judges it on redelivery.
                                Stage::Done(Err(EventingError::InProgress {
                                    key_hash: report.key_hash.clone().unwrap_or_default(),
                                }))
                            }
                        }
                    }
                }
            };
            reports.push(report);
            stages.push(stage);
        }
        (reports, stages)
    }

    /// Phase 2: claims and handles the leaders concurrently (bounded), each behind its own
    /// `catch_unwind`, so a panic anywhere in it stays with its record. They run as futures of
    /// this task rather than spawned tasks: Lambda's runtime has one thread anyway, and a task
    /// per record cost a heap-allocated task, a copy of its large future and a wake-up each.
    /// The leaders still running when `budget` ends are dropped (their claims with them).
    async fn handle_leaders(&self, stages: &mut [Stage], budget: Option<Budget>) {
        let mut leaders = Vec::new();
        for (index, stage) in stages.iter_mut().enumerate() {
            if !matches!(stage, Stage::Parsed(_)) {
                continue;
            }
            if let Stage::Parsed(parsed) = std::mem::replace(stage, Stage::Running) {
                leaders.push((index, parsed));
            }
        }
        let mut results: Vec<(usize, Result<Handled, EventingError>)> =
            Vec::with_capacity(leaders.len());
        let handling = futures::stream::iter(leaders)
            .map(|(index, parsed)| {
                let handled = begin_and_handle(&*self.handler, &self.idempotency, parsed);
                async move {
                    let result = AssertUnwindSafe(handled)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|panic| {
                            Err(EventingError::Panicked {
                                message: panic_message(&*panic),
                            })
                        });
                    (index, result)
                }
            })
            .buffer_unordered(self.concurrency)
            .for_each(|result| {
                results.push(result);
                ready(())
            });
        // One timer for the phase, not one per record: what finished in time is kept.
        let timed_out = within(budget, handling).await.is_err();
        for (index, result) in results {
            if let Some(stage) = stages.get_mut(index) {
                *stage = match result {
                    Ok(Handled::Replayed) => Stage::Done(Ok(RecordOutcome::Replayed)),
                    Ok(Handled::Claimed { claim, events }) => Stage::Handled { claim, events },
                    Err(e) => Stage::Done(Err(e)),
                };
            }
        }
        if timed_out {
            cut_off(stages, HANDLING, |stage| matches!(stage, Stage::Running));
        }
    }

    /// Phase 3: publishes the events of every handled record in one call, then completes the
    /// claims of records whose events were all accepted and releases the others. Returns the
    /// number of publish calls made (0 or 1). The publish ends at the publish budget, the
    /// completions at the invocation's budget; a record unsettled by then fails alone.
    async fn publish_and_settle(
        &self,
        stages: &mut [Stage],
        reports: &mut [RecordReport],
        budgets: Option<PhaseBudgets>,
    ) -> usize {
        let mut all = Vec::new();
        let mut settling = Vec::new();
        for (index, stage) in stages.iter_mut().enumerate() {
            if let Stage::Handled { claim, events } = stage {
                let start = all.len();
                all.append(events);
                settling.push((index, claim.take(), start..all.len()));
            }
        }
        if settling.is_empty() {
            return 0;
        }
        let failed = if all.is_empty() {
            Vec::new()
        } else {
            self.publish_all(&all, budgets.map(|b| b.publish)).await
        };
        let publish_calls = usize::from(!all.is_empty());

        // The spans are consecutive and in order: each record takes its events' names out of
        // `all` (moved, not copied), keeping those that were accepted (a redelivery re-emits
        // them under the same keys), and its own failures, indexed within its span.
        let mut published = all.into_iter();
        let mut claims = Vec::with_capacity(settling.len());
        let records: Vec<(usize, Vec<EmittedEvent>, Vec<FailedEntry>)> = settling
            .into_iter()
            .map(|(index, claim, span)| {
                let own_failures: Vec<FailedEntry> = failed
                    .iter()
                    .filter(|f| span.contains(&f.index))
                    .map(|f| FailedEntry {
                        index: f.index - span.start,
                        ..f.clone()
                    })
                    .collect();
                let emitted: Vec<EmittedEvent> = published
                    .by_ref()
                    .take(span.len())
                    .enumerate()
                    .filter(|(i, _)| !own_failures.iter().any(|f| f.index == *i))
                    .map(|(_, e)| EmittedEvent {
                        source: e.source,
                        detail_type: e.detail_type,
                        idempotency_key: e.idempotency_key,
                    })
                    .collect();
                claims.push(claim);
                (index, emitted, own_failures)
            })
            .collect();

        let mut settled = Vec::with_capacity(records.len());
        // Built up front (futures are lazy), so the stream holds no closure over borrowed
        // records, which would keep the batch's future from being `Send`.
        let settles: Vec<_> = records
            .iter()
            .zip(claims)
            .map(|((index, emitted, failed), claim)| {
                settle(claim, emitted, failed).map(|result| (*index, result))
            })
            .collect();
        let settling = futures::stream::iter(settles)
            .buffer_unordered(self.concurrency)
            .for_each(|result| {
                settled.push(result);
                ready(())
            });
        let timed_out = within(budgets.map(|b| b.complete), settling).await.is_err();
        for (index, result) in settled {
            if let Some(stage) = stages.get_mut(index) {
                *stage = Stage::Done(result);
            }
        }
        for (index, emitted, _) in records {
            if let Some(report) = reports.get_mut(index) {
                report.emitted = emitted;
            }
        }
        if timed_out {
            cut_off(stages, COMPLETING, |stage| {
                matches!(stage, Stage::Handled { .. })
            });
        }
        publish_calls
    }

    /// Publishes `all` (within `budget`, when there is one), returning the entries that failed.
    /// A panicking publisher fails them all rather than the batch; one that overruns its budget
    /// has them all cut off.
    async fn publish_all(&self, all: &[OutgoingEvent], budget: Option<Budget>) -> Vec<FailedEntry> {
        let publishing = match budget {
            Some(budget) => self.publisher.publish_within(all, budget),
            None => self.publisher.publish(all),
        };
        match within(budget, AssertUnwindSafe(publishing).catch_unwind()).await {
            Ok(Ok(Ok(()))) => Vec::new(),
            Ok(Ok(Err(e))) => e.failed,
            Err(DeadlineExceeded) => {
                PublishError::cut_off(
                    all,
                    0..all.len(),
                    "the publisher overran the invocation's time budget",
                )
                .failed
            }
            Ok(Err(panic)) => {
                let message = panic_message(&*panic);
                all.iter()
                    .enumerate()
                    .map(|(index, e)| FailedEntry {
                        index,
                        idempotency_key: e.idempotency_key.clone(),
                        error_code: "PublisherPanicked".to_owned(),
                        message: message.clone(),
                    })
                    .collect()
            }
        }
    }
}

/// Parses a record and builds its request, filling the report's identifying fields.
fn prepare(
    body: Body,
    remaining: Option<Duration>,
    report: &mut RecordReport,
) -> Result<Parsed, EventingError> {
    let event = parse_body(body, report)?;
    let metadata = event.metadata();
    report.idempotency_key = Some(metadata.idempotency_key.to_string());
    report.correlation_id = Some(metadata.correlation_id.clone());
    report.event_id = Some(metadata.event_id.clone());
    let request = idempotency_request(&event, remaining)?;
    report.key_hash = request.key_hash().map(str::to_owned);
    Ok(Parsed { event, request })
}

/// Completes a handled record's claim when all its events were accepted, else releases it;
/// entries cut off by the time budget leave the claim to expire instead (there is no time left
/// to release it, and whether they reached the bus is unknown).
async fn settle(
    claim: Option<Claim>,
    emitted: &[EmittedEvent],
    failed: &[FailedEntry],
) -> Result<RecordOutcome, EventingError> {
    if failed.iter().any(FailedEntry::is_deadline_exceeded) {
        return Err(EventingError::DeadlineExceeded { phase: PUBLISHING });
    }
    if !failed.is_empty() {
        if let Some(claim) = claim {
            release(claim).await;
        }
        return Err(EventingError::Publish(PublishError {
            failed: failed.to_vec(),
        }));
    }
    if let Some(claim) = claim {
        let stored = StoredResult {
            emitted: emitted.iter().map(|e| e.idempotency_key.as_str()).collect(),
        };
        // On failure the events are out; the redelivery re-emits the same derived keys, which
        // downstream consumers deduplicate.
        claim
            .complete(&stored)
            .await
            .map_err(EventingError::Idempotency)?;
    }
    Ok(RecordOutcome::Fresh)
}

/// Fails every record `cut` says was still in `phase` when its budget ended, and says so once.
fn cut_off(stages: &mut [Stage], phase: &'static str, cut: impl Fn(&Stage) -> bool) {
    let mut records = 0;
    for stage in stages.iter_mut().filter(|stage| cut(stage)) {
        *stage = Stage::Done(Err(EventingError::DeadlineExceeded { phase }));
        records += 1;
    }
    if records > 0 {
        tracing::warn!(
            phase,
            records,
            error_type = DeadlineExceeded::ERROR_TYPE,
            "the invocation's time budget ended: these records fail and keep their claims until the invocation's deadline"
        );
    }
}

/// Phase 4: copies take their leader's outcome: replayed if it succeeded, retried if not.
fn follow_leaders(
    stages: Vec<Stage>,
    reports: &[RecordReport],
) -> Vec<Result<RecordOutcome, EventingError>> {
    let mut results: Vec<Result<RecordOutcome, EventingError>> = Vec::with_capacity(stages.len());
    for (index, stage) in stages.into_iter().enumerate() {
        let key_hash = || {
            reports
                .get(index)
                .and_then(|r| r.key_hash.clone())
                .unwrap_or_default()
        };
        let result = match stage {
            Stage::Done(result) => result,
            Stage::Follower(leader) => match results.get(leader) {
                Some(Ok(_)) => Ok(RecordOutcome::Replayed),
                _ => Err(EventingError::InProgress {
                    key_hash: key_hash(),
                }),
            },
            // Every other stage was settled by the phases above; if one were not, retrying the
            // record is the safe answer, never acknowledging it.
            Stage::Parsed(_) | Stage::Running | Stage::Handled { .. } => {
                Err(EventingError::InProgress {
                    key_hash: key_hash(),
                })
            }
        };
        results.push(result);
    }
    results
}

/// Phase 5: writes the outcomes, logs one line per record and counts.
fn finish(
    mut reports: Vec<RecordReport>,
    results: Vec<Result<RecordOutcome, EventingError>>,
    publish_calls: usize,
) -> (BatchReport, Vec<Option<EventingError>>) {
    let mut stats = BatchStats {
        records: reports.len(),
        publish_calls,
        ..BatchStats::default()
    };
    let mut errors = Vec::with_capacity(results.len());
    for (report, result) in reports.iter_mut().zip(results) {
        let error = match result {
            Ok(outcome) => {
                report.outcome = outcome;
                None
            }
            Err(e) => {
                report.outcome = match e {
                    EventingError::InProgress { .. } => RecordOutcome::InProgress,
                    _ => RecordOutcome::Failed(e.error_type()),
                };
                report.error = Some(e.to_string());
                tracing::warn!(
                    message_id = %report.message_id,
                    detail_type = report.detail_type.as_deref().unwrap_or("-"),
                    key_hash = report.key_hash.as_deref().unwrap_or("-"),
                    correlation_id = report.correlation_id.as_deref().unwrap_or("-"),
                    event_id = report.event_id.as_deref().unwrap_or("-"),
                    error_type = e.error_type(),
                    error = %e,
                    "record failed: it will be retried, then dead-lettered"
                );
                Some(e)
            }
        };
        match report.outcome {
            RecordOutcome::Fresh => stats.fresh += 1,
            RecordOutcome::Replayed => stats.replayed += 1,
            RecordOutcome::InProgress => stats.in_progress += 1,
            RecordOutcome::Failed(_) => stats.failed += 1,
        }
        stats.events_published += report.emitted.len();
        tracing::info!(
            message_id = %report.message_id,
            detail_type = report.detail_type.as_deref().unwrap_or("-"),
            key_hash = report.key_hash.as_deref().unwrap_or("-"),
            correlation_id = report.correlation_id.as_deref().unwrap_or("-"),
            event_id = report.event_id.as_deref().unwrap_or("-"),
            outcome = %report.outcome.label(),
            emitted = report.emitted.len(),
            "record processed"
        );
        errors.push(error);
    }
    (
        BatchReport {
            records: reports,
            stats,
        },
        errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn a_batch_future_can_be_sent_across_threads() {
        // Hosts (the local runner's async traits, a multi-thread runtime) require it.
        struct Nothing;
        #[async_trait::async_trait]
        impl EventHandler for Nothing {
            async fn handle(
                &self,
                event: &AnyEvent,
            ) -> Result<Vec<OutgoingEvent>, crate::HandlerError> {
                Err(crate::HandlerError::unhandled(event))
            }
        }
        let consumer = Consumer::new(
            Nothing,
            Idempotency::new(
                idempotency::InMemoryStore::new(),
                idempotency::IdempotencyConfig::new("op"),
            ),
            crate::InMemoryPublisher::new(),
        );
        let batch = SqsEvent::default();
        assert_send(&consumer.process_sqs(batch, Some(Duration::from_secs(1))));
    }

    fn envelope_with(resources: &str, id: &str) -> String {
        format!(
            r#"{{"version":"0","id":{id},"source":"com.fulfillment","detail-type":"OrderPicked","resources":{resources},"detail":{{"metadata":{{"idempotency-key":"k-1","event-id":"e-1","schema-version":"1","correlation-id":"c","occurred-at":"2026-11-23T10:52:10Z"}},"data":{{"order-id":"1","customer-id":"2","items":[],"warehouse-id":"W","picked-at":"2026-11-23T10:52:10Z"}}}}}}"#
        )
    }

    fn general_event(text: &str) -> Option<AnyEvent> {
        let mut report = RecordReport::new(String::new());
        let value = serde_json::from_str::<Value>(text).ok()?;
        parse_envelope(value, &mut report).ok()
    }

    fn fast_event(text: &str) -> Option<AnyEvent> {
        parse_text_directly(text, &mut RecordReport::new(String::new()))
    }

    #[test]
    fn both_paths_read_the_same_event_and_refuse_the_same_envelopes() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let bodies = [
            envelope_with("[]", r#""id-1""#),
            envelope_with(&deep(50), r#""id-1""#),
            envelope_with(r#"["arn:aws:events:us-east-1:1:rule/r","[{"]"#, r#""id-1""#),
            envelope_with("[]", r#""\x""#),
            envelope_with("[]", "123456789012345678901234567890"),
            envelope_with("[]", r#""id-1","source":"com.orders""#),
            envelope_with("[]", r#""id-1"}"#),
            envelope_with(&deep(101), r#""id-1""#),
            envelope_with(&deep(129), r#""id-1""#),
            envelope_with(&deep(100_000), r#""id-1""#),
        ];
        for body in &bodies {
            let (fast, general) = (fast_event(body), general_event(body));
            if let Some(fast) = &fast {
                assert_eq!(
                    Some(fast),
                    general.as_ref(),
                    "{}",
                    &body[..body.len().min(200)]
                );
            }
        }
        assert!(
            fast_event(&bodies[0]).is_some(),
            "a plain envelope takes the fast path"
        );
        for deep_body in &bodies[8..] {
            assert!(fast_event(deep_body).is_none() && general_event(deep_body).is_none());
        }
    }

    #[test]
    fn the_detail_is_read_wherever_it_comes_and_repeated_or_missing_fields_take_the_general_path() {
        let detail = r#"{"metadata":{"idempotency-key":"k-1","event-id":"e-1","schema-version":"1","correlation-id":"c","occurred-at":"2026-11-23T10:52:10Z"},"data":{"order-id":"1","customer-id":"2","items":[],"warehouse-id":"W","picked-at":"2026-11-23T10:52:10Z"}}"#;
        let (source, kind) = (
            r#""source":"com.fulfillment""#,
            r#""detail-type":"OrderPicked""#,
        );
        let detail_field = format!(r#""detail":{detail}"#);
        let body = |fields: &[&str]| format!("{{{}}}", fields.join(","));
        let expected = general_event(&body(&[source, kind, &detail_field]));
        assert!(expected.is_some());
        // Last (as EventBridge writes it), first, or between the two names: the same event.
        for order in [
            [source, kind, detail_field.as_str()],
            [detail_field.as_str(), source, kind],
            [source, detail_field.as_str(), kind],
        ] {
            assert_eq!(fast_event(&body(&order)), expected);
        }
        // A repeated name is left to the general path (which keeps the last, like a map)...
        for text in [
            body(&[source, source, kind, &detail_field]),
            body(&[source, kind, &detail_field, &detail_field]),
        ] {
            assert_eq!(fast_event(&text), None, "{text}");
            assert_eq!(general_event(&text), expected, "{text}");
        }
        // ...and a missing name or an unknown type is refused by both.
        for text in [
            body(&[source, &detail_field]),
            body(&[source, kind]),
            body(&[r#""source":"com.nobody""#, kind, &detail_field]),
        ] {
            assert_eq!(fast_event(&text), None, "{text}");
            assert_eq!(general_event(&text), None, "{text}");
        }
    }

    #[test]
    fn a_value_no_one_reads_is_skipped_even_when_a_value_tree_cannot_hold_it() {
        for body in [
            envelope_with("[1e400]", r#""id-1""#),
            envelope_with("[]", r#""\ud800""#),
        ] {
            assert!(
                general_event(&body).is_none(),
                "a Value refuses 1e400 and lone surrogates"
            );
            assert!(
                fast_event(&body).is_some(),
                "the consumer never reads `resources` or `id`"
            );
        }
    }

    #[test]
    fn bracket_depth_is_counted_outside_strings_only() {
        assert!(!nests_deeper_than(&format!("\"{}\"", "[".repeat(500)), 100));
        assert!(nests_deeper_than(&"[".repeat(101), 100));
        assert!(!nests_deeper_than(
            &format!("{}{}", "[]".repeat(500), "{}"),
            100
        ));
        assert!(!nests_deeper_than(r#"{"a":"\"[[["}"#, 1));
    }
}
