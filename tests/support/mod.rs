//! Shared support of the resilience tests: the functions wired as the Lambda binaries wire them
//! (over an SDK configuration pointed at the fault proxy), a client that retries as a real one
//! does, an SQS-like delivery loop with redelivery after a visibility timeout, an audit queue
//! that sees every event on the bus, and normalized snapshots of the stack's tables.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use eventing::{Consumer, RecordOutcome};
use platform::config::Env;
use platform::http::{ApiRequest, ApiResponse};
use serde_json::Value;
use testkit::LocalStack;

pub mod runtime_api;

/// Remaining time handed to every invocation: the in-progress expiry of its claims. Short, so a
/// claim left by a failed call expires within the test, yet longer than a call with its retries
/// normally takes.
pub const REMAINING: Duration = Duration::from_secs(2);

/// How long a failed message stays invisible before SQS redelivers it. On AWS it is the queue's
/// visibility timeout (90 s), always longer than the in-progress expiry: modelled here as the
/// expiry plus a margin.
pub const VISIBILITY: Duration = Duration::from_millis(2_300);

/// The consumers, by the queue that feeds them.
pub const CONSUMER_QUEUES: [(&str, &str); 3] = [
    ("FulfillmentEventsQueue", "FulfillmentEventsFunction"),
    ("OrdersEventsQueue", "OrdersEventsFunction"),
    ("SupportEventsQueue", "SupportEventsFunction"),
];

/// Seed of the fault dice: `RESILIENCE_SEED` when set (to explore), else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("RESILIENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The environment the template gives a function of `stack`.
pub fn env_of(stack: &LocalStack, function: &str) -> Env<impl Fn(&str) -> Option<String> + use<>> {
    let vars: BTreeMap<String, String> = stack.function_env(function).unwrap();
    Env::from_fn(move |name| vars.get(name).cloned())
}

/// The SDK configuration a function loads (`platform::init`: standard retries, 3 attempts, 1 s
/// connect / 2 s attempt / 5 s call), with the endpoint at `endpoint` and dummy credentials.
pub async fn product_sdk(endpoint: &str) -> SdkConfig {
    platform::init::loader()
        .region(aws_config::Region::new(testkit::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "resilience",
        ))
        .load()
        .await
}

/// An HTTP fixture from `events/`.
pub fn fixture(name: &str) -> ApiRequest {
    let path = testkit::workspace_root().join("events").join(name);
    ApiRequest::from_apigw(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
        .unwrap()
}

/// `request` as `customer` sends it: API Gateway's authorizer hands the function their identity.
pub fn as_customer(mut request: ApiRequest, customer: &str) -> ApiRequest {
    request.identity = Some(platform::auth::Caller::new(customer, vec![], vec![], None));
    request
}

/// A response's JSON body.
pub fn json(response: &ApiResponse) -> Value {
    serde_json::from_str(&response.body).unwrap()
}

/// Every function of the stack, wired with `sdk` as its binary wires it.
pub struct Functions {
    pub orders_api: orders::api::OrdersApi,
    pub support_api: support::api::SupportApi,
    /// `(queue logical id, consumer)`.
    pub consumers: Vec<(&'static str, Consumer)>,
    /// The outbox relays with their streams' readers.
    pub relays: tokio::sync::Mutex<Relays>,
}

impl Functions {
    /// Relays every new fact of the tables' outboxes (see [`Relays::pump`]).
    pub async fn relay(&self) -> Pumped {
        self.relays.lock().await.pump().await
    }
}

/// Every function of the stack, wired with `sdk` as its binary wires it; the tables' streams
/// are read through `direct`, as Lambda's event source mappings read them (never through a
/// fault proxy between the functions and the stand-in).
pub fn wire(stack: &LocalStack, direct: &SdkConfig, sdk: &SdkConfig) -> Functions {
    let consumer = |queue: &'static str, function: &str| -> (&'static str, Consumer) {
        let env = env_of(stack, function);
        let consumer = match function {
            "FulfillmentEventsFunction" => {
                fulfillment::wire_events(&fulfillment::Config::from_env(&env).unwrap(), sdk)
            }
            "OrdersEventsFunction" => {
                orders::wire_events(&orders::Config::from_env(&env).unwrap(), sdk)
            }
            _ => support::wire_events(&support::Config::from_env(&env).unwrap(), sdk),
        };
        (queue, consumer)
    };
    Functions {
        orders_api: orders::wire_api(
            &orders::Config::from_env(&env_of(stack, "OrdersApiFunction")).unwrap(),
            sdk,
        ),
        support_api: support::wire_api(
            &support::Config::from_env(&env_of(stack, "SupportApiFunction")).unwrap(),
            sdk,
        ),
        consumers: CONSUMER_QUEUES
            .iter()
            .map(|(queue, function)| consumer(queue, function))
            .collect(),
        relays: tokio::sync::Mutex::new(Relays::new(stack, direct, sdk)),
    }
}

/// What a client saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientFigures {
    pub requests: usize,
    pub retries_after_5xx: usize,
    pub retries_after_409: usize,
}

/// Sends a request as a client that follows the API's advice does: a 5xx ("retry with the same
/// Idempotency-Key") is retried at once, a 409 "in progress" after a short pause. Returns the
/// first other answer.
pub async fn send<F, Fut>(figures: &mut ClientFigures, mut call: F) -> ApiResponse
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResponse>,
{
    figures.requests += 1;
    for _ in 0..60 {
        let response = call().await;
        let in_progress = response.status == 409
            && serde_json::from_str::<Value>(&response.body)
                .ok()
                .is_some_and(|b| b["error"]["type"] == "RequestInProgress");
        if response.status >= 500 {
            figures.retries_after_5xx += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else if in_progress {
            figures.retries_after_409 += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        } else {
            return response;
        }
    }
    panic!("the request never got a final answer in 60 attempts");
}

/// Per consumer: what its deliveries came to.
#[derive(Debug, Default, Clone)]
pub struct Deliveries {
    /// Records handled now.
    pub fresh: usize,
    /// Records found already handled.
    pub replayed: usize,
    /// Records refused because another invocation held the claim.
    pub in_progress: usize,
    /// Records failed for another reason, by error type.
    pub failed: BTreeMap<String, usize>,
    /// Deliveries of a message after a failed one.
    pub redeliveries: usize,
    /// Most receives any message needed.
    pub max_receives: u32,
    /// Events the consumer's publisher accepted.
    pub events_published: usize,
}

struct InFlight {
    message: SqsMessage,
    receives: u32,
    visible_at: Instant,
}

/// Delivers everything in the consumer queues, round after round, until they are empty and
/// nothing awaits redelivery. Each message taken from a queue is delivered twice, as two copies
/// handled concurrently by two invocations (at-least-once delivery handing one message to two
/// pollers). A copy whose record fails comes back after [`VISIBILITY`]; one that would exceed
/// the queue's `maxReceiveCount` (and be dead-lettered) fails the test.
pub async fn settle(
    stack: &LocalStack,
    sqs: &aws_sdk_sqs::Client,
    consumers: &[(&'static str, Consumer)],
    tally: &mut BTreeMap<&'static str, Deliveries>,
) {
    let max_receives = max_receive_count(stack);
    let mut waiting: BTreeMap<&'static str, Vec<InFlight>> = BTreeMap::new();
    loop {
        let mut moved = false;
        for (queue, consumer) in consumers {
            let now = Instant::now();
            let mut due: Vec<InFlight> = Vec::new();
            let pending = waiting.entry(queue).or_default();
            let mut later = Vec::new();
            for item in pending.drain(..) {
                if item.visible_at <= now {
                    due.push(item);
                } else {
                    later.push(item);
                }
            }
            *pending = later;
            for body in stack.drain(sqs, queue).await.unwrap() {
                for _copy in 0..2 {
                    let mut message = SqsMessage::default();
                    message.message_id = Some(uuid::Uuid::new_v4().to_string());
                    message.body = Some(body.clone());
                    due.push(InFlight {
                        message,
                        receives: 0,
                        visible_at: now,
                    });
                }
            }
            if due.is_empty() {
                continue;
            }
            moved = true;
            let figures = tally.entry(queue).or_default();
            // Copies alternate, so the two copies of a message go to two concurrent invocations.
            let (mut first, mut second) = (Vec::new(), Vec::new());
            for (i, item) in due.into_iter().enumerate() {
                if i % 2 == 0 {
                    first.push(item);
                } else {
                    second.push(item);
                }
            }
            let mut failed_again = Vec::new();
            let (mut a_chunks, mut b_chunks) = (
                chunks(first, 10).into_iter(),
                chunks(second, 10).into_iter(),
            );
            loop {
                let (a, b) = (a_chunks.next(), b_chunks.next());
                if a.is_none() && b.is_none() {
                    break;
                }
                let (ra, rb) = tokio::join!(deliver(consumer, a), deliver(consumer, b));
                for (report, items) in [ra, rb].into_iter().flatten() {
                    for (record, mut item) in report.records.into_iter().zip(items) {
                        item.receives += 1;
                        if item.receives > 1 {
                            figures.redeliveries += 1;
                        }
                        figures.max_receives = figures.max_receives.max(item.receives);
                        figures.events_published += record.emitted.len();
                        match record.outcome {
                            RecordOutcome::Fresh => figures.fresh += 1,
                            RecordOutcome::Replayed => figures.replayed += 1,
                            RecordOutcome::InProgress => figures.in_progress += 1,
                            RecordOutcome::Failed(kind) => {
                                *figures.failed.entry(kind.to_owned()).or_default() += 1;
                            }
                        }
                        if record.outcome.is_failure() {
                            assert!(
                                item.receives < max_receives,
                                "{queue}: a message failed {} times and would be dead-lettered; last: {:?} {:?}",
                                item.receives,
                                record.outcome,
                                record.error
                            );
                            item.visible_at = Instant::now() + VISIBILITY;
                            failed_again.push(item);
                        }
                    }
                }
            }
            waiting.entry(queue).or_default().extend(failed_again);
        }
        let next_visible = waiting.values().flatten().map(|item| item.visible_at).min();
        match next_visible {
            None if !moved => return,
            None => {}
            Some(at) if !moved => tokio::time::sleep_until(at.into()).await,
            Some(_) => {}
        }
    }
}

/// The outbox relays, each with the reader of its table's stream: Lambda's DynamoDB event
/// source mappings, read directly on the stand-in.
pub struct Relays {
    relays: Vec<(eventing::OutboxRelay, local::streams::StreamReader)>,
}

/// The relays, by the table whose stream feeds them.
pub const RELAY_TABLES: [(&str, &str); 2] = [
    ("OrdersTable", "OrdersOutboxRelayFunction"),
    ("SupportTable", "SupportOutboxRelayFunction"),
];

impl Relays {
    /// The template's relays, wired with `sdk` as their binaries wire them, reading the streams
    /// through `direct`.
    pub fn new(stack: &LocalStack, direct: &SdkConfig, sdk: &SdkConfig) -> Self {
        let relays = RELAY_TABLES
            .iter()
            .map(|(table, function)| {
                let config =
                    platform::config::BusConfig::from_env(&env_of(stack, function)).unwrap();
                let relay = match *table {
                    "OrdersTable" => orders::wire_outbox_relay(&config, sdk),
                    _ => support::wire_outbox_relay(&config, sdk),
                };
                let poller = local::streams::StreamPoller::new(direct, stack.table(table));
                let source = local::streams::StreamSource::DynamoDb(Box::new(poller));
                // Retried until it goes through: a record a test gives up on fails the test.
                (
                    relay,
                    local::streams::StreamReader::new(source, 100, u32::MAX),
                )
            })
            .collect();
        Self { relays }
    }

    /// Relays every new record of every stream; a stream stops at its first batch with a
    /// failure, which is retried (with what follows it) on the next call.
    pub async fn pump(&mut self) -> Pumped {
        let mut pumped = Pumped::default();
        for (relay, reader) in &mut self.relays {
            while let Some(delivered) = reader.deliver_next(relay, Some(REMAINING)).await.unwrap() {
                assert!(delivered.given_up.is_empty(), "{:?}", delivered.given_up);
                pumped.published += delivered.report.published();
                if delivered.report.failed() > 0 {
                    break;
                }
            }
            pumped.waiting += reader.pending();
        }
        pumped
    }
}

/// What one [`Relays::pump`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pumped {
    /// Facts published.
    pub published: usize,
    /// Records read and not relayed yet (their batch failed: retried on the next pump).
    pub waiting: usize,
}

/// Rounds [`settle_all`] goes on while stream records wait on a failing relay and nothing is
/// published: a bus outage that lasts is left for the next call.
pub const STALLED_ROUNDS: usize = 5;

/// Delivers everything the stack has to deliver, until nothing moves: the outbox relays, then
/// every consumer queue (see [`settle`]), again until the relays find no new fact (records
/// that keep failing are retried [`STALLED_ROUNDS`] times, then left waiting).
pub async fn settle_all(
    stack: &LocalStack,
    sqs: &aws_sdk_sqs::Client,
    functions: &Functions,
    tally: &mut BTreeMap<&'static str, Deliveries>,
) {
    let mut stalled = 0;
    loop {
        let pumped = functions.relay().await;
        settle(stack, sqs, &functions.consumers, tally).await;
        if pumped.published > 0 {
            stalled = 0;
            continue;
        }
        if pumped.waiting == 0 || stalled >= STALLED_ROUNDS {
            return;
        }
        stalled += 1;
    }
}

fn chunks(items: Vec<InFlight>, size: usize) -> Vec<Vec<InFlight>> {
    let mut out: Vec<Vec<InFlight>> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(last) if last.len() < size => last.push(item),
            _ => out.push(vec![item]),
        }
    }
    out
}

async fn deliver(
    consumer: &Consumer,
    items: Option<Vec<InFlight>>,
) -> Option<(eventing::BatchReport, Vec<InFlight>)> {
    let items = items?;
    let mut batch = SqsEvent::default();
    batch.records = items.iter().map(|i| i.message.clone()).collect();
    let report = consumer.process_sqs(batch, Some(REMAINING)).await;
    assert_eq!(report.records.len(), items.len(), "one report per record");
    Some((report, items))
}

/// The template's `maxReceiveCount` of the consumer queues (the smallest).
pub fn max_receive_count(stack: &LocalStack) -> u32 {
    stack
        .template
        .queues(&stack.stack)
        .unwrap()
        .iter()
        .filter_map(|q| q.redrive.as_ref().map(|r| r.max_receive_count))
        .min()
        .unwrap()
}

/// Creates a queue that receives every event of the contract put on the stack's bus (as an
/// archive would), directly on the stand-in. Returns its URL.
pub async fn audit_queue(direct: &SdkConfig, stack: &LocalStack) -> String {
    let sqs = aws_sdk_sqs::Client::new(direct);
    let events = aws_sdk_eventbridge::Client::new(direct);
    let name = format!("{}-audit", stack.stack.name);
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = format!("arn:aws:sqs:{}:123456789012:{name}", testkit::REGION);
    let bus = stack.bus("EventBus");
    events
        .put_rule()
        .name(&name)
        .event_bus_name(bus)
        .event_pattern(serde_json::json!({ "source": contracts::source::ALL }).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&name)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("audit")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    url
}

/// Receives and deletes every message of the queue at `url`; returns their bodies.
pub async fn drain_url(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            if let Some(handle) = &m.receipt_handle {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
            }
            bodies.extend(m.body);
        }
    }
}

/// What the bus carried: every event's `(detail-type, idempotency-key)`, and how many copies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BusRecord {
    pub facts: BTreeMap<(String, String), usize>,
    /// Every copy's `data`, by fact (to check copies of one fact carry the same facts).
    pub data: BTreeMap<(String, String), BTreeSet<String>>,
}

impl BusRecord {
    pub fn add(&mut self, bodies: &[String]) {
        for body in bodies {
            let envelope: Value = serde_json::from_str(body).unwrap();
            let fact = (
                envelope["detail-type"].as_str().unwrap().to_owned(),
                envelope["detail"]["metadata"]["idempotency-key"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            *self.facts.entry(fact.clone()).or_default() += 1;
            self.data
                .entry(fact)
                .or_default()
                .insert(envelope["detail"]["data"].to_string());
        }
    }

    pub fn distinct(&self) -> BTreeSet<(String, String)> {
        self.facts.keys().cloned().collect()
    }

    pub fn copies(&self) -> usize {
        self.facts.values().sum()
    }

    /// Copies of every fact of one detail type.
    pub fn copies_of(&self, detail_type: &str) -> usize {
        self.facts
            .iter()
            .filter(|((kind, _), _)| kind == detail_type)
            .map(|(_, n)| n)
            .sum()
    }
}

/// A table's items keyed by their partition key, with every time attribute removed (times
/// differ between runs; everything else must not).
pub type TableState = BTreeMap<String, Value>;

/// Whether a field differs between two runs of the same lifecycle: times, and the ids and
/// trace headers each emission draws afresh.
fn varies(field: &str) -> bool {
    field.ends_with("-at")
        || field.ends_with("_at")
        || field == "event-id"
        || field == "trace-header"
}

fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !varies(k))
                .map(|(k, v)| (k, normalize(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(|v| v.is_object())
            .map(normalize)
            .unwrap_or_else(|| Value::String(s.clone())),
        AttributeValue::N(n) => Value::String(n.clone()),
        AttributeValue::Bool(b) => Value::Bool(*b),
        other => Value::String(format!("{other:?}")),
    }
}

/// Every item of a table (scanned directly on the stand-in), normalized.
pub async fn table_state(ddb: &aws_sdk_dynamodb::Client, table: &str, key: &str) -> TableState {
    let mut state = TableState::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let out = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in out.items.unwrap_or_default() {
            let id = item.get(key).and_then(|v| v.as_s().ok()).cloned().unwrap();
            let fields = item
                .iter()
                .filter(|(k, _)| !varies(k))
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect();
            state.insert(id, normalize(Value::Object(fields)));
        }
        match out.last_evaluated_key {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => return state,
        }
    }
}

/// The idempotency table: each record's status, by record id.
pub async fn idempotency_records(
    ddb: &aws_sdk_dynamodb::Client,
    stack: &LocalStack,
) -> BTreeMap<String, String> {
    table_state(ddb, stack.table("IdempotencyTable"), "id")
        .await
        .into_iter()
        .map(|(id, item)| (id, item["status"].as_str().unwrap_or("?").to_owned()))
        .collect()
}
