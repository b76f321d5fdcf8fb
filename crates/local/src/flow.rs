//! What the runner shows: one line per event delivered (or not routed), one per HTTP request,
//! and a summary, readable or as JSON lines.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What happens to a message after a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum Next {
    /// Acknowledged: deleted from the queue.
    Done,
    /// A batch-item failure: the message is delivered again.
    Retry,
    /// Failed on its last allowed receive: moved to the dead-letter listing.
    DeadLettered {
        /// The dead-letter queue's logical id (`None` when the queue has no redrive policy).
        dlq: Option<String>,
    },
}

/// One delivery of one event to one consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// When the consumer answered.
    pub time: DateTime<Utc>,
    /// The envelope's source.
    pub source: String,
    /// The envelope's detail type.
    pub detail_type: String,
    /// `metadata.idempotency-key`, when the detail has one.
    pub key: Option<String>,
    /// The rule that routed it.
    pub rule: String,
    /// The queue it went through.
    pub queue: String,
    /// The consuming function's binary.
    pub target: String,
    /// The SQS message id.
    pub message_id: String,
    /// Which receive of the message this was (1 for the first).
    pub receive_count: u32,
    /// Whether this message is a duplicate the runner injected (`--duplicates`).
    pub duplicate: bool,
    /// The consumer's outcome: `fresh`, `replayed`, `in_progress` or `failed:<error type>`.
    pub outcome: String,
    /// What happens next.
    #[serde(flatten)]
    pub next: Next,
    /// Detail types of the events the record caused.
    pub emitted: Vec<String>,
    /// The error, for failures.
    pub error: Option<String>,
}

/// An event no rule matched (EventBridge accepts and drops it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unrouted {
    /// When it was published.
    pub time: DateTime<Utc>,
    /// The envelope's source.
    pub source: String,
    /// The envelope's detail type.
    pub detail_type: String,
    /// `metadata.idempotency-key`, when the detail has one.
    pub key: Option<String>,
    /// The function that published it (`None` for injected fixtures).
    pub publisher: Option<String>,
}

/// An entry the publisher's IAM policy does not allow (`events:source` condition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denied {
    /// When it was refused.
    pub time: DateTime<Utc>,
    /// The entry's source.
    pub source: String,
    /// The entry's detail type.
    pub detail_type: String,
    /// The function that tried to publish it.
    pub publisher: String,
}

/// One HTTP request served by a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// When the function answered.
    pub time: DateTime<Utc>,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The function's binary (`None`: no route matched, API Gateway's 404, or the authorizer
    /// refused it, its 401 or 403).
    pub target: Option<String>,
    /// Response status.
    pub status: u16,
    /// `fresh`, `replayed`, `in_progress`, `ok` (a read), `error:<type>`, or
    /// `refused:<error>` when the authorizer answered (`missing_token`, `invalid_token`,
    /// `insufficient_scope`).
    pub outcome: String,
    /// Whether this request is a duplicate the runner injected (`--duplicates`).
    pub duplicate: bool,
    /// What the authorizer made of it: `sub <subject>`, `refused`, `open route`, or
    /// `NO AUTH` when the runner runs with `--no-auth`.
    pub auth: String,
}

/// One stream record handed to an outbox relay that published its fact or failed on it
/// (records that carry no new fact, such as a status update, make no line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relay {
    /// When the relay answered.
    pub time: DateTime<Utc>,
    /// The table whose stream it is (logical id).
    pub table: String,
    /// The item's key.
    pub key: Option<String>,
    /// The relay's binary.
    pub target: String,
    /// `published` or `failed:<error type>`.
    pub outcome: String,
    /// The fact's detail type, when published.
    pub detail_type: Option<String>,
    /// The fact's idempotency key, when published.
    pub idempotency_key: Option<String>,
    /// Which attempt of its batch this was (1 for the first).
    pub attempt: u32,
    /// The error, for failures.
    pub error: Option<String>,
}

/// One line of the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Flow {
    /// An event delivered to a consumer.
    Delivery(Delivery),
    /// An event no rule matched.
    Unrouted(Unrouted),
    /// An event its publisher may not publish.
    Denied(Denied),
    /// An HTTP request.
    Request(Request),
    /// A stream record relayed from an outbox.
    Relay(Relay),
}

fn short(key: Option<&str>) -> String {
    match key {
        None => "-".to_owned(),
        Some(k) if k.chars().count() > 12 => format!("{}…", k.chars().take(12).collect::<String>()),
        Some(k) => k.to_owned(),
    }
}

impl Flow {
    /// The readable one-line form.
    pub fn text(&self) -> String {
        let time = |t: &DateTime<Utc>| t.format("%H:%M:%S%.3f").to_string();
        match self {
            Self::Delivery(d) => {
                let mut next = match &d.next {
                    Next::Done => String::new(),
                    Next::Retry => format!(" -> retry (receive {})", d.receive_count),
                    Next::DeadLettered { dlq } => format!(
                        " -> dead-lettered to {} after {} receives",
                        dlq.as_deref().unwrap_or("the local DLQ listing"),
                        d.receive_count
                    ),
                };
                if !d.emitted.is_empty() {
                    next.push_str(&format!(" (emitted {})", d.emitted.join(", ")));
                }
                format!(
                    "{}  {:<16} {:<15} key {:<13}  {} -> {:<18}  {}{}{}",
                    time(&d.time),
                    d.source,
                    d.detail_type,
                    short(d.key.as_deref()),
                    d.rule,
                    d.target,
                    d.outcome,
                    if d.duplicate { " [duplicate]" } else { "" },
                    next
                )
            }
            Self::Unrouted(u) => format!(
                "{}  {:<16} {:<15} key {:<13}  (no rule matched)  unrouted",
                time(&u.time),
                u.source,
                u.detail_type,
                short(u.key.as_deref()),
            ),
            Self::Denied(d) => format!(
                "{}  {:<16} {:<15} denied: {} may not publish source {} (IAM events:source)",
                time(&d.time),
                d.source,
                d.detail_type,
                d.publisher,
                d.source
            ),
            Self::Relay(r) => format!(
                "{}  stream {:<18} {:<15} key {:<13}  {} -> {:<18}  {}{}{}",
                time(&r.time),
                r.table,
                r.detail_type.as_deref().unwrap_or("-"),
                short(r.idempotency_key.as_deref()),
                r.key.as_deref().unwrap_or("-"),
                r.target,
                r.outcome,
                if r.attempt > 1 {
                    format!(" (attempt {})", r.attempt)
                } else {
                    String::new()
                },
                r.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default(),
            ),
            Self::Request(r) => format!(
                "{}  HTTP {} {} [{}] -> {}  {} {}{}",
                time(&r.time),
                r.method,
                r.path,
                r.auth,
                r.target.as_deref().unwrap_or(if r.auth == "refused" {
                    "(authorizer)"
                } else {
                    "(no route)"
                }),
                r.status,
                r.outcome,
                if r.duplicate { " [duplicate]" } else { "" },
            ),
        }
    }
}

/// What the banner and the summary say when the runner runs with `--no-auth`.
pub const NO_AUTH_WARNING: &str = "WARNING: AUTHORIZATION IS OFF (--no-auth): every route is open; \
tokens are read without checking signature, issuer, audience, expiry or scopes.";

/// Receives the flow as it happens.
pub trait FlowObserver: Send + Sync {
    /// Called once per line, from whichever task produced it.
    fn observe(&self, flow: &Flow);
}

/// Prints every line to standard output: readable, or one JSON object per line.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
}

impl Printer {
    /// A printer; `json` selects JSON lines.
    pub fn new(json: bool) -> Self {
        Self { json }
    }
}

impl FlowObserver for Printer {
    fn observe(&self, flow: &Flow) {
        let line = if self.json {
            serde_json::to_string(flow)
                .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"error\":\"{e}\"}}"))
        } else {
            flow.text()
        };
        // A closed stdout (`| head`) must not turn into a panic: the line is just dropped.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// Keeps every line in memory (tests, and callers that render later).
#[derive(Debug, Default)]
pub struct Recorder {
    lines: Mutex<Vec<Flow>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every line so far, in arrival order.
    pub fn lines(&self) -> Vec<Flow> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The deliveries so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lines()
            .into_iter()
            .filter_map(|f| match f {
                Flow::Delivery(d) => Some(d),
                _ => None,
            })
            .collect()
    }
}

impl FlowObserver for Recorder {
    fn observe(&self, flow: &Flow) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(flow.clone());
    }
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Handled now (events) or created now (requests).
    pub fresh: usize,
    /// Duplicates answered from the idempotency record: nothing ran again.
    pub replayed: usize,
    /// Held by a concurrent delivery or request: retried.
    pub in_progress: usize,
    /// Failures (events) or error answers (requests).
    pub failed: usize,
}

impl Outcomes {
    /// Counts one record's outcome (what [`Outcomes::count`] does with its label, without
    /// making the label).
    pub fn count_outcome(&mut self, outcome: eventing::RecordOutcome) {
        use eventing::RecordOutcome;
        match outcome {
            RecordOutcome::Fresh => self.fresh += 1,
            RecordOutcome::Replayed => self.replayed += 1,
            RecordOutcome::InProgress => self.in_progress += 1,
            RecordOutcome::Failed(_) => self.failed += 1,
        }
    }

    /// Counts one outcome label.
    pub fn count(&mut self, label: &str) {
        match label {
            "fresh" => self.fresh += 1,
            "replayed" => self.replayed += 1,
            "in_progress" => self.in_progress += 1,
            l if l.starts_with("failed") || l.starts_with("error") || l.starts_with("refused") => {
                self.failed += 1
            }
            _ => {}
        }
    }
}

/// Per consuming function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TargetStats {
    /// Deliveries (receives) of messages to it.
    pub delivered: usize,
    /// Their outcomes.
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// Messages it failed on every allowed receive.
    pub dead_lettered: usize,
}

/// A message set aside after its last allowed receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The queue it failed in.
    pub queue: String,
    /// Its dead-letter queue (`None` without a redrive policy).
    pub dlq: Option<String>,
    /// The SQS message id.
    pub message_id: String,
    /// The envelope's source.
    pub source: String,
    /// The envelope's detail type.
    pub detail_type: String,
    /// `metadata.idempotency-key`, when the detail has one.
    pub key: Option<String>,
    /// Receives it got.
    pub receive_count: u32,
    /// The last failure.
    pub last_error: String,
    /// The SQS body (the EventBridge envelope), for inspection and redrive.
    pub body: String,
}

/// Everything that happened, for the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Events put on the bus (by functions and by injection).
    pub events_published: usize,
    /// Facts the outbox relays published from table streams.
    pub facts_relayed: usize,
    /// Events no rule matched.
    pub events_unrouted: usize,
    /// Entries refused by their publisher's IAM policy.
    pub events_denied: usize,
    /// Duplicate deliveries and requests injected by `--duplicates`.
    pub duplicates_injected: usize,
    /// Outcomes of every delivery.
    pub deliveries: Outcomes,
    /// Outcomes of every HTTP request that writes (any method but GET).
    pub requests: Outcomes,
    /// HTTP requests served (reads included).
    pub requests_served: usize,
    /// Per consuming function (binary).
    pub targets: BTreeMap<String, TargetStats>,
    /// Messages still waiting in queues or received and never completed (a queue no function
    /// consumes, or an interrupted run).
    pub waiting: usize,
    /// The dead-letter listing.
    pub dead_letters: Vec<DeadLetter>,
    /// Whether the runner served HTTP without its authorizer (`--no-auth`).
    pub authorization_off: bool,
}

impl Summary {
    /// The readable form, several lines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.authorization_off {
            out.push_str(NO_AUTH_WARNING);
            out.push('\n');
        }
        let o = &self.deliveries;
        out.push_str(&format!(
            "Summary: {} events published, {} deliveries (fresh {}, replayed {}, in progress {}, failed {}), \
             {} unrouted, {} denied, {} duplicates injected\n",
            self.events_published,
            o.fresh + o.replayed + o.in_progress + o.failed,
            o.fresh,
            o.replayed,
            o.in_progress,
            o.failed,
            self.events_unrouted,
            self.events_denied,
            self.duplicates_injected,
        ));
        let r = &self.requests;
        out.push_str(&format!(
            "         {} HTTP requests (writes: fresh {}, replayed {}, in progress {}, errors {}), \
             {} facts relayed from table streams\n",
            self.requests_served, r.fresh, r.replayed, r.in_progress, r.failed, self.facts_relayed
        ));
        if !self.targets.is_empty() {
            out.push_str(&format!(
                "  {:<20} {:>9} {:>6} {:>9} {:>12} {:>7} {:>6}\n",
                "target", "delivered", "fresh", "replayed", "in_progress", "failed", "dlq"
            ));
            for (name, t) in &self.targets {
                out.push_str(&format!(
                    "  {:<20} {:>9} {:>6} {:>9} {:>12} {:>7} {:>6}\n",
                    name,
                    t.delivered,
                    t.outcomes.fresh,
                    t.outcomes.replayed,
                    t.outcomes.in_progress,
                    t.outcomes.failed,
                    t.dead_lettered
                ));
            }
        }
        if self.waiting > 0 {
            out.push_str(&format!(
                "  {} messages still waiting in queues\n",
                self.waiting
            ));
        }
        if self.dead_letters.is_empty() {
            out.push_str("DLQ: empty\n");
        } else {
            out.push_str(&format!("DLQ: {} message(s)\n", self.dead_letters.len()));
            for d in &self.dead_letters {
                out.push_str(&format!(
                    "  {} <- {}  {} {}  key {}  message {}  after {} receives: {}\n",
                    d.dlq.as_deref().unwrap_or("(no DLQ)"),
                    d.queue,
                    d.source,
                    d.detail_type,
                    short(d.key.as_deref()),
                    d.message_id,
                    d.receive_count,
                    d.last_error
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(next: Next) -> Delivery {
        Delivery {
            time: "2026-11-23T10:47:00.123Z".parse().unwrap(),
            source: "com.orders".into(),
            detail_type: "OrderCreated".into(),
            key: Some("c1b95b88-4b1e-4c1f-9a55-4b9d3f0c2a11".into()),
            rule: "FulfillmentFromOrdersRule".into(),
            queue: "FulfillmentEventsQueue".into(),
            target: "fulfillment-events".into(),
            message_id: "m-1".into(),
            receive_count: 1,
            duplicate: false,
            outcome: "fresh".into(),
            next,
            emitted: vec!["OrderPicked".into()],
            error: None,
        }
    }

    #[test]
    fn a_delivery_line_shows_time_source_type_key_rule_target_and_outcome() {
        let line = Flow::Delivery(delivery(Next::Done)).text();
        for part in [
            "10:47:00.123",
            "com.orders",
            "OrderCreated",
            "c1b95b88-4b1…",
            "FulfillmentFromOrdersRule -> fulfillment-events",
            "fresh",
            "(emitted OrderPicked)",
        ] {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
    }

    #[test]
    fn the_json_form_is_one_object_with_a_type_tag() {
        let json = serde_json::to_value(Flow::Delivery(delivery(Next::DeadLettered {
            dlq: Some("OrdersEventsDLQ".into()),
        })))
        .unwrap();
        assert_eq!(json["type"], "delivery");
        assert_eq!(json["next"], "dead_lettered");
        assert_eq!(json["dlq"], "OrdersEventsDLQ");
        assert_eq!(json["rule"], "FulfillmentFromOrdersRule");
        assert_eq!(json["time"], "2026-11-23T10:47:00.123Z");
    }

    #[test]
    fn a_request_line_says_who_called_and_who_refused() {
        let request = |target: Option<&str>, auth: &str, status, outcome: &str| {
            Flow::Request(Request {
                time: "2026-11-23T10:47:00.123Z".parse().unwrap(),
                method: "POST".into(),
                path: "/returns/R-1/received".into(),
                target: target.map(str::to_owned),
                status,
                outcome: outcome.into(),
                duplicate: false,
                auth: auth.into(),
            })
            .text()
        };
        let refused = request(None, "refused", 403, "refused:insufficient_scope");
        assert!(
            refused.contains("[refused] -> (authorizer)  403 refused:insufficient_scope"),
            "{refused}"
        );
        let served = request(Some("support-api"), "sub W-1", 200, "fresh");
        assert!(
            served.contains("[sub W-1] -> support-api  200 fresh"),
            "{served}"
        );
        assert!(request(Some("support-api"), "NO AUTH", 200, "fresh").contains("[NO AUTH]"));
    }

    #[test]
    fn outcome_labels_are_counted_by_kind() {
        let mut o = Outcomes::default();
        for label in [
            "fresh",
            "replayed",
            "replayed",
            "in_progress",
            "failed:Rejected",
            "error:NotFound",
            "ok",
        ] {
            o.count(label);
        }
        assert_eq!(
            o,
            Outcomes {
                fresh: 1,
                replayed: 2,
                in_progress: 1,
                failed: 2
            }
        );
    }
}
