//! The in-process EventBridge bus and SQS queues: routing by the template's rules, batches,
//! partial batch failures, redelivery up to `maxReceiveCount`, the dead-letter listing, and the
//! duplicate deliveries `--duplicates` injects.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{SecondsFormat, Utc};
use eventing::{
    BatchReport, EventPublisher, FailedEntry, OutgoingEvent, PublishError, RecordOutcome,
};
use serde_json::Value;
use tokio::sync::Notify;

use crate::flow::{
    DeadLetter, Delivery, Denied, Flow, FlowObserver, Next, Summary, TargetStats, Unrouted,
};
use crate::router::Router;
use crate::topology::{PublishGrant, Topology};

/// Which deliveries and requests get delivered twice: a share (`rate`, 0 to 1) chosen by a
/// seeded hash of what is delivered, so a run is reproducible whatever the scheduling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duplicates {
    rate: f64,
    seed: u64,
}

impl Duplicates {
    /// No duplicates.
    pub const NONE: Self = Self { rate: 0.0, seed: 0 };

    /// Duplicates `rate` of deliveries (clamped to 0..=1; not a number means none).
    pub fn new(rate: f64, seed: u64) -> Self {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        Self { rate, seed }
    }

    /// The share duplicated.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether the delivery identified by `parts` gets a duplicate.
    pub fn pick(&self, parts: &[&str]) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        // FNV-1a over the parts, then splitmix64 with the seed: cheap, stable, well spread.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for byte in part.bytes().chain(std::iter::once(0x1f)) {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let mut z = h ^ self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits as a uniform number in [0, 1): exact in an f64.
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        unit < self.rate
    }
}

/// An entry for the bus, as `PutEvents` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `source`.
    pub source: String,
    /// `detail-type`.
    pub detail_type: String,
    /// `detail`, as JSON text.
    pub detail: String,
    /// `metadata.idempotency-key` of the detail, for the flow.
    pub key: Option<String>,
}

impl Entry {
    /// An entry from an envelope's parts; the key is read from `detail.metadata`.
    pub fn from_parts(source: &str, detail_type: &str, detail: &Value) -> Self {
        Self {
            source: source.to_owned(),
            detail_type: detail_type.to_owned(),
            detail: detail.to_string(),
            key: detail
                .pointer("/metadata/idempotency-key")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// What the bus reads of an entry: `PutEvents`' fields plus the key the flow shows.
#[derive(Debug, Clone, Copy)]
pub struct EntryParts<'a> {
    /// `source`.
    pub source: &'a str,
    /// `detail-type`.
    pub detail_type: &'a str,
    /// `detail`, as JSON text.
    pub detail: &'a str,
    /// `metadata.idempotency-key` of the detail, when known.
    pub key: Option<&'a str>,
}

/// Something the bus can put: [`Entry`], and a function's [`OutgoingEvent`], which is put as
/// it is rather than copied into an [`Entry`] first (every caused event passes here).
pub trait BusEntry {
    /// The entry's fields, borrowed.
    fn parts(&self) -> EntryParts<'_>;
}

impl BusEntry for Entry {
    fn parts(&self) -> EntryParts<'_> {
        let Self {
            source,
            detail_type,
            detail,
            key,
        } = self;
        EntryParts {
            source,
            detail_type,
            detail,
            key: key.as_deref(),
        }
    }
}

impl BusEntry for OutgoingEvent {
    fn parts(&self) -> EntryParts<'_> {
        EntryParts {
            source: &self.source,
            detail_type: &self.detail_type,
            detail: &self.detail,
            key: Some(&self.idempotency_key),
        }
    }
}

impl<T: BusEntry + ?Sized> BusEntry for &T {
    fn parts(&self) -> EntryParts<'_> {
        (**self).parts()
    }
}

/// How long a failed message stays invisible before its next receive. SQS uses the queue's
/// `VisibilityTimeout` (90 s in the template); locally a short pause keeps the same effect (a
/// retry comes after the concurrent work that made it fail, e.g. a claim held by a twin
/// delivery, has finished) without the wait.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// What the flow shows of a message's event.
#[derive(Debug)]
struct EventInfo {
    source: String,
    detail_type: String,
    key: Option<String>,
    rule: String,
}

/// A message in a queue.
#[derive(Debug, Clone)]
pub struct Message {
    id: String,
    body: String,
    receive_count: u32,
    duplicate: bool,
    info: Arc<EventInfo>,
}

/// Where a queue's messages wait: in arrival order, or (injected duplicates) for a separate,
/// concurrent receive, as when SQS hands a message to a second poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Messages in arrival order; failed ones go back to the end.
    Normal = 0,
    /// Injected duplicates.
    Duplicates = 1,
}

impl Lane {
    /// Both lanes.
    pub const ALL: [Lane; 2] = [Lane::Normal, Lane::Duplicates];
}

/// Messages received together by one invocation of a queue's consumer.
#[derive(Debug)]
pub struct Batch {
    /// Index of the queue in [`Topology::queues`].
    pub queue: usize,
    /// The lane it was received from.
    pub lane: Lane,
    messages: Vec<Message>,
}

impl Batch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the batch has no record.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// Static facts of a queue the bus needs.
#[derive(Debug)]
struct QueueMeta {
    logical_id: String,
    arn: String,
    dlq: Option<String>,
    max_receive_count: u32,
    batch_size: usize,
    max_concurrency: usize,
    target: Option<String>,
}

#[derive(Debug, Default)]
struct Lanes {
    /// See [`Lane::Normal`].
    normal: VecDeque<Message>,
    /// See [`Lane::Duplicates`].
    duplicates: VecDeque<Message>,
    /// Failed messages, invisible until their time comes (the visibility timeout), in order.
    delayed: VecDeque<(Instant, Message)>,
}

impl Lanes {
    fn lane(&mut self, lane: Lane) -> &mut VecDeque<Message> {
        match lane {
            Lane::Normal => &mut self.normal,
            Lane::Duplicates => &mut self.duplicates,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    lanes: Vec<Lanes>,
    /// Messages received and not yet completed (still there after an interrupted round).
    in_flight: usize,
    summary: Summary,
}

/// The bus and its queues. Shared (behind `Arc`) by every function's publisher and the runner.
pub struct Bus {
    /// How long a failed message stays invisible before its next receive.
    retry_delay: Duration,
    /// Random high half of every id this bus makes; the low half counts.
    id_base: u64,
    ids: AtomicU64,
    router: Router,
    rules: Vec<(String, Vec<usize>)>,
    queues: Vec<QueueMeta>,
    region: String,
    account: String,
    duplicates: Duplicates,
    observer: Option<Arc<dyn FlowObserver>>,
    state: Mutex<State>,
    notify: Notify,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("router", &self.router)
            .field("queues", &self.queues)
            .field("duplicates", &self.duplicates)
            .finish_non_exhaustive()
    }
}

/// Appends `s` as a JSON string literal. Names such as sources and detail types need no
/// escaping and are copied as they are; anything else goes through serde_json.
fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Serializing a string cannot fail; an empty string literal is a safe fallback regardless.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
    }
}

impl Bus {
    /// A bus routing by `router` into the queues of `topology`.
    pub fn new(
        topology: &Topology,
        router: Router,
        duplicates: Duplicates,
        observer: Option<Arc<dyn FlowObserver>>,
    ) -> Self {
        let queues: Vec<QueueMeta> = topology
            .queues
            .iter()
            .map(|q| QueueMeta {
                logical_id: q.logical_id.clone(),
                arn: q.arn.clone(),
                dlq: q.dead_letter_queue.clone(),
                max_receive_count: q.max_receive_count,
                batch_size: q.batch_size.max(1),
                max_concurrency: q.max_concurrency.max(1),
                target: q
                    .consumer
                    .and_then(|f| topology.functions.get(f))
                    .map(|f| f.binary.clone()),
            })
            .collect();
        let state = State {
            lanes: queues.iter().map(|_| Lanes::default()).collect(),
            in_flight: 0,
            summary: Summary::default(),
        };
        Self {
            retry_delay: DEFAULT_RETRY_DELAY,
            id_base: uuid::Uuid::new_v4().as_u64_pair().0,
            ids: AtomicU64::new(1),
            router,
            rules: topology
                .rules
                .iter()
                .map(|r| {
                    (
                        r.logical_id.clone(),
                        r.targets.iter().map(|(_, q)| *q).collect(),
                    )
                })
                .collect(),
            queues,
            region: topology.stack.region.clone(),
            account: topology.stack.account_id.clone(),
            duplicates,
            observer,
            state: Mutex::new(state),
            notify: Notify::new(),
        }
    }

    /// Sets how long a failed message stays invisible before it is received again.
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is a push, a pop or a counter bump, so a panic elsewhere
        // cannot leave the state half-written: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn observe(&self, flow: Flow) {
        if let Some(observer) = &self.observer {
            observer.observe(&flow);
        }
    }

    /// Whether lines are being observed (building them is skipped otherwise).
    fn observed(&self) -> bool {
        self.observer.is_some()
    }

    /// A fresh id in UUID form (event and message ids): unique per bus, without a system call
    /// per id.
    fn next_id(&self) -> String {
        let low = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut text = uuid::Uuid::encode_buffer();
        uuid::Uuid::from_u64_pair(self.id_base, low)
            .hyphenated()
            .encode_lower(&mut text)
            .to_owned()
    }

    /// The EventBridge envelope a rule target receives, as SQS carries it in a message body.
    /// Written piece by piece rather than with `format!` (every published event pays for it).
    fn envelope(&self, entry: EntryParts<'_>, time: &str) -> String {
        let mut body = String::with_capacity(entry.detail.len() + 256);
        body.push_str("{\"version\":\"0\",\"id\":\"");
        body.push_str(&self.next_id());
        body.push_str("\",\"detail-type\":");
        push_json_string(&mut body, entry.detail_type);
        body.push_str(",\"source\":");
        push_json_string(&mut body, entry.source);
        body.push_str(",\"account\":");
        push_json_string(&mut body, &self.account);
        body.push_str(",\"time\":");
        push_json_string(&mut body, time);
        body.push_str(",\"region\":");
        push_json_string(&mut body, &self.region);
        body.push_str(",\"resources\":[],\"detail\":");
        body.push_str(entry.detail);
        body.push('}');
        body
    }

    /// Where an entry put on `bus` would go, without sending it: `(rule, queue)` logical ids.
    pub fn targets(&self, bus: &str, entry: &Entry) -> Vec<(String, String)> {
        let body = self.envelope(entry.parts(), "1970-01-01T00:00:00Z");
        self.router
            .matching(bus, body.as_bytes())
            .into_iter()
            .filter_map(|rule| self.rules.get(rule))
            .flat_map(|(rule, queues)| {
                queues.iter().filter_map(move |&q| {
                    self.queues
                        .get(q)
                        .map(|queue| (rule.clone(), queue.logical_id.clone()))
                })
            })
            .collect()
    }

    /// Puts entries on `bus` (a physical bus name): each is matched against the bus's rules and
    /// a message is sent to every target queue (plus a duplicate, when picked). `publisher`
    /// names the function that published, for the flow.
    pub fn put<E: BusEntry>(&self, bus: &str, entries: &[E], publisher: Option<&str>) {
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut routed = Vec::new();
        let mut unrouted = Vec::new();
        for entry in entries.iter().map(BusEntry::parts) {
            let body = self.envelope(entry, &time);
            let rules = self.router.matching(bus, body.as_bytes());
            if rules.is_empty() {
                unrouted.push(entry);
                continue;
            }
            for rule in rules {
                let Some((rule_id, queues)) = self.rules.get(rule) else {
                    continue;
                };
                let info = Arc::new(EventInfo {
                    source: entry.source.to_owned(),
                    detail_type: entry.detail_type.to_owned(),
                    key: entry.key.map(str::to_owned),
                    rule: rule_id.clone(),
                });
                for &queue in queues {
                    let message = Message {
                        id: self.next_id(),
                        body: body.clone(),
                        receive_count: 0,
                        duplicate: false,
                        info: Arc::clone(&info),
                    };
                    let identity = entry.key.unwrap_or(&message.id);
                    let copy = self
                        .queues
                        .get(queue)
                        .is_some_and(|q| self.duplicates.pick(&[&q.logical_id, rule_id, identity]))
                        .then(|| Message {
                            id: self.next_id(),
                            duplicate: true,
                            ..message.clone()
                        });
                    routed.push((queue, message, copy));
                }
            }
        }
        {
            let mut state = self.state();
            state.summary.events_published += entries.len();
            state.summary.events_unrouted += unrouted.len();
            for (queue, message, copy) in routed {
                let Some(lanes) = state.lanes.get_mut(queue) else {
                    continue;
                };
                lanes.normal.push_back(message);
                if let Some(copy) = copy {
                    lanes.duplicates.push_back(copy);
                    state.summary.duplicates_injected += 1;
                }
            }
        }
        if self.observed() {
            for entry in unrouted {
                self.observe(Flow::Unrouted(Unrouted {
                    time: Utc::now(),
                    source: entry.source.to_owned(),
                    detail_type: entry.detail_type.to_owned(),
                    key: entry.key.map(str::to_owned),
                    publisher: publisher.map(str::to_owned),
                }));
            }
        }
        self.notify.notify_one();
    }

    /// Records an entry refused by its publisher's IAM policy.
    fn deny(&self, event: &OutgoingEvent, publisher: &str) {
        self.state().summary.events_denied += 1;
        self.observe(Flow::Denied(Denied {
            time: Utc::now(),
            source: event.source.clone(),
            detail_type: event.detail_type.clone(),
            publisher: publisher.to_owned(),
        }));
    }

    /// Counts an injected duplicate HTTP request.
    pub(crate) fn count_duplicate(&self) {
        self.state().summary.duplicates_injected += 1;
    }

    /// Counts an HTTP request; the outcome only for writes (a read has none to tell).
    pub(crate) fn count_request(&self, method: &str, label: &str) {
        let mut state = self.state();
        state.summary.requests_served += 1;
        if !method.eq_ignore_ascii_case("GET") {
            state.summary.requests.count(label);
        }
    }

    /// Counts facts an outbox relay published (the events themselves went through
    /// [`Bus::put`]).
    pub(crate) fn count_relayed(&self, facts: usize) {
        self.state().summary.facts_relayed += facts;
    }

    /// Lists records an outbox relay failed on every allowed attempt (the on-failure
    /// destination of their event source).
    pub(crate) fn dead_letter(&self, dead: crate::flow::DeadLetter) {
        self.state().summary.dead_letters.push(dead);
    }

    /// Wakes whoever waits in [`Bus::notified`]: something other than a publish (a write to a
    /// table with a stream) may have work for the runner.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Emits a line through the observer.
    pub(crate) fn emit(&self, flow: Flow) {
        self.observe(flow);
    }

    /// Whether an observer wants lines.
    pub(crate) fn has_observer(&self) -> bool {
        self.observed()
    }

    /// Waits until something is put on the bus (a permit is kept if nobody is waiting, so no
    /// wake-up is lost).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Number of queues.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Batches a queue's consumer takes at once per lane (its `MaximumConcurrency`); 0 for a
    /// queue no function consumes.
    pub fn concurrency(&self, queue: usize) -> usize {
        self.queues
            .get(queue)
            .filter(|q| q.target.is_some())
            .map_or(0, |q| q.max_concurrency)
    }

    /// Receives up to `free(queue, lane)` batches of up to `BatchSize` records from every
    /// consumed queue's lanes, under one lock. Each received message's receive count goes up
    /// by one.
    pub fn receive(&self, mut free: impl FnMut(usize, Lane) -> usize) -> Vec<Batch> {
        let mut state = self.state();
        let mut batches = Vec::new();
        for (index, queue) in self.queues.iter().enumerate() {
            if queue.target.is_none() {
                continue;
            }
            let Some(lanes) = state.lanes.get_mut(index) else {
                continue;
            };
            let now = Instant::now();
            while lanes.delayed.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, message)) = lanes.delayed.pop_front() {
                    lanes.normal.push_back(message);
                }
            }
            for lane in Lane::ALL {
                let messages = lanes.lane(lane);
                for _ in 0..free(index, lane) {
                    if messages.is_empty() {
                        break;
                    }
                    let take = messages.len().min(queue.batch_size);
                    let received: Vec<Message> = messages
                        .drain(..take)
                        .map(|mut m| {
                            m.receive_count += 1;
                            m
                        })
                        .collect();
                    batches.push(Batch {
                        queue: index,
                        lane,
                        messages: received,
                    });
                }
            }
        }
        state.in_flight += batches.iter().map(Batch::len).sum::<usize>();
        batches
    }

    /// Receives as many batches as every consumed queue takes at once, from both lanes.
    pub fn receive_round(&self) -> Vec<Batch> {
        self.receive(|queue, _| self.concurrency(queue))
    }

    /// The batch as the consumer's Lambda event.
    pub fn sqs_event(&self, batch: &Batch) -> SqsEvent {
        let (arn, region) = match self.queues.get(batch.queue) {
            Some(q) => (q.arn.clone(), self.region.clone()),
            None => (String::new(), self.region.clone()),
        };
        let mut event = SqsEvent::default();
        event.records = batch
            .messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = Some(m.id.clone());
                let count = m.receive_count.to_string();
                let mut receipt = String::with_capacity(m.id.len() + count.len() + 7);
                receipt.push_str("local-");
                receipt.push_str(&m.id);
                receipt.push('-');
                receipt.push_str(&count);
                record.receipt_handle = Some(receipt);
                record.body = Some(m.body.clone());
                record
                    .attributes
                    .insert("ApproximateReceiveCount".to_owned(), count);
                record.event_source = Some("aws:sqs".to_owned());
                record.event_source_arn = Some(arn.clone());
                record.aws_region = Some(region.clone());
                record
            })
            .collect();
        event
    }

    /// Applies a consumer's report to its batch: acknowledged records are deleted, failed ones
    /// go back to the queue, or to the dead-letter listing on their last allowed receive. A
    /// record missing from the report counts as failed (retried, never lost).
    pub fn complete(&self, batch: Batch, report: &BatchReport) {
        let Some(queue) = self.queues.get(batch.queue) else {
            return;
        };
        let target = queue.target.as_deref().unwrap_or_default();
        let observed = self.observed();
        let mut lines = Vec::new();
        {
            let mut state = self.state();
            state.in_flight = state.in_flight.saturating_sub(batch.messages.len());
            // One lookup per batch, not per record: every record of a batch has the same target.
            if !state.summary.targets.contains_key(target) {
                state
                    .summary
                    .targets
                    .insert(target.to_owned(), TargetStats::default());
            }
            for (position, message) in batch.messages.into_iter().enumerate() {
                let record = report
                    .records
                    .get(position)
                    .filter(|r| r.message_id == message.id)
                    .or_else(|| report.records.iter().find(|r| r.message_id == message.id));
                let (outcome, error) = match record {
                    Some(r) => (r.outcome, r.error.as_deref()),
                    None => (
                        RecordOutcome::Failed("NoReport"),
                        Some("the consumer returned no report for this record"),
                    ),
                };
                let failed = outcome.is_failure();
                let next = if !failed {
                    Next::Done
                } else if message.receive_count >= queue.max_receive_count {
                    Next::DeadLettered {
                        dlq: queue.dlq.clone(),
                    }
                } else {
                    Next::Retry
                };
                if let Some(stats) = state.summary.targets.get_mut(target) {
                    stats.delivered += 1;
                    stats.outcomes.count_outcome(outcome);
                    if matches!(next, Next::DeadLettered { .. }) {
                        stats.dead_lettered += 1;
                    }
                }
                state.summary.deliveries.count_outcome(outcome);
                if observed {
                    let emitted = record.map_or_else(Vec::new, |r| {
                        r.emitted.iter().map(|e| e.detail_type.clone()).collect()
                    });
                    lines.push(Flow::Delivery(Delivery {
                        time: Utc::now(),
                        source: message.info.source.clone(),
                        detail_type: message.info.detail_type.clone(),
                        key: message.info.key.clone(),
                        rule: message.info.rule.clone(),
                        queue: queue.logical_id.clone(),
                        target: target.to_owned(),
                        message_id: message.id.clone(),
                        receive_count: message.receive_count,
                        duplicate: message.duplicate,
                        outcome: outcome.label(),
                        next: next.clone(),
                        emitted,
                        error: error.map(str::to_owned),
                    }));
                }
                match next {
                    Next::Done => {}
                    Next::Retry => {
                        let due = Instant::now() + self.retry_delay;
                        if let Some(lanes) = state.lanes.get_mut(batch.queue) {
                            lanes.delayed.push_back((due, message));
                        }
                    }
                    Next::DeadLettered { dlq } => state.summary.dead_letters.push(DeadLetter {
                        queue: queue.logical_id.clone(),
                        dlq,
                        message_id: message.id,
                        source: message.info.source.clone(),
                        detail_type: message.info.detail_type.clone(),
                        key: message.info.key.clone(),
                        receive_count: message.receive_count,
                        last_error: error.map_or_else(|| outcome.label(), str::to_owned),
                        body: message.body,
                    }),
                }
            }
        }
        for line in lines {
            self.observe(line);
        }
    }

    /// When the next failed message becomes visible again, if one waits.
    pub fn next_visible(&self) -> Option<Instant> {
        let state = self.state();
        self.queues
            .iter()
            .zip(&state.lanes)
            .filter(|(q, _)| q.target.is_some())
            .filter_map(|(_, l)| l.delayed.front().map(|(due, _)| *due))
            .min()
    }

    /// Counters, the dead-letter listing and what still waits.
    pub fn summary(&self) -> Summary {
        let state = self.state();
        let mut summary = state.summary.clone();
        summary.waiting = state
            .lanes
            .iter()
            .map(|l| l.normal.len() + l.duplicates.len() + l.delayed.len())
            .sum::<usize>()
            + state.in_flight;
        summary
    }
}

/// A function's publisher: what it publishes goes on the bus, as `PutEvents` would send it,
/// subject to the function's IAM `events:source` grant and the entry size limit.
#[derive(Debug, Clone)]
pub struct BusPublisher {
    bus: Arc<Bus>,
    bus_name: String,
    function: String,
    grant: PublishGrant,
}

impl BusPublisher {
    /// A publisher for `function` (its binary) onto `bus_name`.
    pub fn new(
        bus: Arc<Bus>,
        bus_name: impl Into<String>,
        function: impl Into<String>,
        grant: PublishGrant,
    ) -> Self {
        Self {
            bus,
            bus_name: bus_name.into(),
            function: function.into(),
            grant,
        }
    }
}

#[async_trait::async_trait]
impl EventPublisher for BusPublisher {
    async fn publish(&self, events: &[OutgoingEvent]) -> Result<(), PublishError> {
        let mut failed = Vec::new();
        let mut entries = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            if let Err(e) = event.check_size() {
                failed.push(FailedEntry {
                    index,
                    idempotency_key: event.idempotency_key.clone(),
                    error_code: FailedEntry::ENTRY_TOO_LARGE.to_owned(),
                    message: e.to_string(),
                });
            } else if !self.grant.allows(&event.source) {
                self.bus.deny(event, &self.function);
                failed.push(FailedEntry {
                    index,
                    idempotency_key: event.idempotency_key.clone(),
                    error_code: "AccessDeniedException".to_owned(),
                    message: format!(
                        "{} is not authorized to perform events:PutEvents with events:source {}",
                        self.function, event.source
                    ),
                });
            } else {
                entries.push(event);
            }
        }
        if !entries.is_empty() {
            self.bus.put(&self.bus_name, &entries, Some(&self.function));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PublishError { failed })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Recorder;
    use eventing::{BatchStats, RecordOutcome, RecordReport};
    use sam_template::{Stack, Template};

    fn bus(recorder: Option<Arc<Recorder>>) -> (Topology, Bus) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let topology =
            Topology::from_template(&Template::load(path).unwrap(), &Stack::new("dev")).unwrap();
        let router = Router::new(&topology).unwrap();
        let observer = recorder.map(|r| r as Arc<dyn FlowObserver>);
        // Failed messages are visible again at once: these tests drive receives by hand.
        let bus = Bus::new(&topology, router, Duplicates::NONE, observer)
            .with_retry_delay(Duration::ZERO);
        (topology, bus)
    }

    fn created(i: usize) -> Entry {
        let detail =
            serde_json::json!({"metadata": {"idempotency-key": format!("k-{i}")}, "data": {}});
        Entry::from_parts("com.orders", "OrderCreated", &detail)
    }

    /// The consumer's answer: the listed message ids failed, the others were handled.
    fn report(event: &SqsEvent, failing: &[&str]) -> BatchReport {
        let records = event
            .records
            .iter()
            .map(|m| {
                let id = m.message_id.clone().unwrap();
                let failed = failing.contains(&id.as_str());
                RecordReport {
                    message_id: id,
                    source: None,
                    detail_type: None,
                    idempotency_key: None,
                    key_hash: None,
                    correlation_id: None,
                    event_id: None,
                    outcome: if failed {
                        RecordOutcome::Failed("Rejected")
                    } else {
                        RecordOutcome::Fresh
                    },
                    error: failed.then(|| "event rejected: no".to_owned()),
                    emitted: Vec::new(),
                }
            })
            .collect();
        BatchReport {
            records,
            stats: BatchStats::default(),
        }
    }

    #[test]
    fn a_round_cuts_batches_of_batch_size_up_to_the_maximum_concurrency() {
        let (topology, bus) = bus(None);
        let entries: Vec<Entry> = (0..57).map(created).collect();
        bus.put("dev-commerce", &entries, None);
        let queue = topology
            .queues
            .iter()
            .position(|q| q.logical_id == "FulfillmentEventsQueue")
            .unwrap();
        let sizes = |batches: &[Batch]| batches.iter().map(Batch::len).collect::<Vec<_>>();
        let first = bus.receive_round();
        assert!(first.iter().all(|b| b.queue == queue));
        assert_eq!(
            sizes(&first),
            [10, 10, 10, 10, 10],
            "BatchSize 10, MaximumConcurrency 5"
        );
        for batch in first {
            let event = bus.sqs_event(&batch);
            bus.complete(batch, &report(&event, &[]));
        }
        assert_eq!(sizes(&bus.receive_round()), [7]);
    }

    #[test]
    fn records_look_like_sqs_records_of_the_queue() {
        let (_, bus) = bus(None);
        bus.put("dev-commerce", &[created(1)], None);
        let batch = bus.receive_round().pop().unwrap();
        let event = bus.sqs_event(&batch);
        let record = &event.records[0];
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            record.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:dev-FulfillmentEventsQueue")
        );
        assert_eq!(record.attributes["ApproximateReceiveCount"], "1");
        let envelope: Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
        assert_eq!(envelope["source"], "com.orders");
        assert_eq!(envelope["detail-type"], "OrderCreated");
        assert_eq!(envelope["detail"]["metadata"]["idempotency-key"], "k-1");
        assert_eq!(envelope["account"], "123456789012");
    }

    #[test]
    fn only_failed_records_are_redelivered_then_dead_lettered_at_max_receive_count() {
        let recorder = Arc::new(Recorder::new());
        let (_, bus) = bus(Some(recorder.clone()));
        bus.put("dev-commerce", &[created(1), created(2), created(3)], None);
        let mut failing_id = None;
        let mut receives = 0;
        loop {
            let batches = bus.receive_round();
            let Some(batch) = batches.into_iter().next() else {
                break;
            };
            receives += 1;
            let event = bus.sqs_event(&batch);
            // The second record of the first batch fails on every receive.
            let id = failing_id
                .get_or_insert_with(|| event.records[1].message_id.clone().unwrap())
                .clone();
            assert!(
                event
                    .records
                    .iter()
                    .any(|r| r.message_id.as_deref() == Some(id.as_str()))
            );
            if receives > 1 {
                assert_eq!(
                    event.records.len(),
                    1,
                    "acknowledged records are not redelivered"
                );
                assert_eq!(
                    event.records[0].attributes["ApproximateReceiveCount"],
                    receives.to_string()
                );
            }
            bus.complete(batch, &report(&event, &[&id]));
        }
        assert_eq!(
            receives, 5,
            "FulfillmentEventsQueue's maxReceiveCount in the template"
        );
        let summary = bus.summary();
        assert_eq!(summary.dead_letters.len(), 1);
        let dead = &summary.dead_letters[0];
        assert_eq!(
            (dead.queue.as_str(), dead.dlq.as_deref()),
            ("FulfillmentEventsQueue", Some("FulfillmentEventsDLQ"))
        );
        assert_eq!((dead.key.as_deref(), dead.receive_count), (Some("k-2"), 5));
        assert_eq!(dead.last_error, "event rejected: no");
        let stats = summary.targets["fulfillment-events"];
        assert_eq!(
            (
                stats.delivered,
                stats.outcomes.fresh,
                stats.outcomes.failed,
                stats.dead_lettered
            ),
            (7, 2, 5, 1)
        );
        let nexts: Vec<Next> = recorder
            .deliveries()
            .into_iter()
            .filter(|d| d.key.as_deref() == Some("k-2"))
            .map(|d| d.next)
            .collect();
        assert_eq!(
            nexts[..4],
            [Next::Retry, Next::Retry, Next::Retry, Next::Retry]
        );
        assert_eq!(
            nexts[4],
            Next::DeadLettered {
                dlq: Some("FulfillmentEventsDLQ".into())
            }
        );
    }

    #[test]
    fn a_record_missing_from_the_report_is_retried_not_lost() {
        let (_, bus) = bus(None);
        bus.put("dev-commerce", &[created(1)], None);
        let batch = bus.receive_round().pop().unwrap();
        bus.complete(
            batch,
            &BatchReport {
                records: Vec::new(),
                stats: BatchStats::default(),
            },
        );
        let again = bus.receive_round();
        assert_eq!(again.len(), 1);
        assert_eq!(
            bus.sqs_event(&again[0]).records[0].attributes["ApproximateReceiveCount"],
            "2"
        );
    }

    #[test]
    fn a_failed_message_stays_invisible_until_its_retry_delay_has_passed() {
        let (_, bus) = bus(None);
        let bus = bus.with_retry_delay(Duration::from_secs(3600));
        bus.put("dev-commerce", &[created(1)], None);
        let batch = bus.receive_round().pop().unwrap();
        let event = bus.sqs_event(&batch);
        let id = event.records[0].message_id.clone().unwrap();
        bus.complete(batch, &report(&event, &[&id]));
        assert!(bus.receive_round().is_empty(), "not visible yet");
        assert!(bus.next_visible().is_some_and(|due| due > Instant::now()));
        assert_eq!(bus.summary().waiting, 1, "waiting, not lost");
    }

    #[test]
    fn picked_duplicates_arrive_as_a_separate_batch_with_their_own_message_id() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let topology =
            Topology::from_template(&Template::load(path).unwrap(), &Stack::new("dev")).unwrap();
        let bus = Bus::new(
            &topology,
            Router::new(&topology).unwrap(),
            Duplicates::new(1.0, 1),
            None,
        );
        bus.put("dev-commerce", &[created(1)], None);
        let batches = bus.receive_round();
        assert_eq!(batches.len(), 2);
        let ids: Vec<String> = batches
            .iter()
            .map(|b| bus.sqs_event(b).records[0].message_id.clone().unwrap())
            .collect();
        assert_ne!(ids[0], ids[1]);
        let bodies: Vec<String> = batches
            .iter()
            .map(|b| bus.sqs_event(b).records[0].body.clone().unwrap())
            .collect();
        assert_eq!(bodies[0], bodies[1], "the same message, delivered twice");
        assert_eq!(bus.summary().duplicates_injected, 1);
    }

    #[test]
    fn an_event_no_rule_matches_is_counted_and_shown_unrouted() {
        let recorder = Arc::new(Recorder::new());
        let (_, bus) = bus(Some(recorder.clone()));
        let detail = serde_json::json!({"metadata": {"idempotency-key": "k"}, "data": {}});
        bus.put(
            "dev-commerce",
            &[Entry::from_parts("com.support", "ReturnRequested", &detail)],
            Some("support-api"),
        );
        assert!(bus.receive_round().is_empty());
        assert_eq!(bus.summary().events_unrouted, 1);
        assert!(
            matches!(recorder.lines().as_slice(), [Flow::Unrouted(u)] if u.publisher.as_deref() == Some("support-api"))
        );
    }

    #[test]
    fn duplicates_pick_about_their_rate_and_the_same_items_every_time() {
        let d = Duplicates::new(0.5, 7);
        let keys: Vec<String> = (0..4000).map(|i| format!("key-{i}")).collect();
        let picked: Vec<bool> = keys.iter().map(|k| d.pick(&["q", k])).collect();
        let share = picked.iter().filter(|p| **p).count() as f64 / keys.len() as f64;
        assert!((0.45..0.55).contains(&share), "{share}");
        let again: Vec<bool> = keys.iter().map(|k| d.pick(&["q", k])).collect();
        assert_eq!(picked, again);
        let other_seed: Vec<bool> = keys
            .iter()
            .map(|k| Duplicates::new(0.5, 8).pick(&["q", k]))
            .collect();
        assert_ne!(picked, other_seed);
    }

    #[test]
    fn rate_bounds_mean_never_and_always() {
        assert!(!Duplicates::new(0.0, 1).pick(&["x"]));
        assert!(Duplicates::new(1.0, 1).pick(&["x"]));
        assert!(!Duplicates::new(f64::NAN, 1).pick(&["x"]));
        assert_eq!(Duplicates::new(3.0, 1).rate(), 1.0);
    }

    #[test]
    fn envelope_strings_are_the_json_literals_serde_json_writes() {
        for s in [
            "OrderCreated",
            "com.orders",
            "",
            "quote \" slash \\ tab \t",
            "ünï",
            "\u{1}",
        ] {
            let mut out = String::new();
            push_json_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn an_entry_reads_its_key_from_the_metadata() {
        let detail = serde_json::json!({"metadata": {"idempotency-key": "k-1"}, "data": {}});
        let entry = Entry::from_parts("com.orders", "OrderCreated", &detail);
        assert_eq!(entry.key.as_deref(), Some("k-1"));
        assert_eq!(
            serde_json::from_str::<Value>(&entry.detail).unwrap(),
            detail
        );
    }
}
