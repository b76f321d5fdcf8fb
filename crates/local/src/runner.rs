//! The runner: the template's topology, the bus, and every function hosted on it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use eventing::{BatchReport, BatchStats};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use platform::http::{ApiRequest, ApiResponse};
use sam_template::{Stack, Template};
use serde_json::Value;

use crate::LocalError;
use crate::auth::{Authorization, Grant, Refusal, TokenAuthority};
use crate::bus::{Bus, Duplicates, Entry};
use crate::flow::{DeadLetter, Flow, Relay};
use crate::flow::{FlowObserver, Summary};
use crate::hosting::{Hosted, QueueConsumer, StoreCounts, Stores, host};
use crate::router::Router;
use crate::streams::{StreamConsumer, StreamReader};
use crate::topology::{RouteTopology, Topology};

/// Batches one [`Runner::settle`] delivers before declaring a routing loop.
pub const MAX_BATCHES: usize = 1_000_000;

/// How to run.
#[derive(Clone, Default)]
pub struct RunnerOptions {
    /// Stack name the template's names resolve with (`<stack>-OrdersTable`, ...).
    pub stack_name: String,
    /// In-memory or DynamoDB stores.
    pub stores: Stores,
    /// Duplicate deliveries and requests to inject.
    pub duplicates: Option<Duplicates>,
    /// Who sees the flow (nobody when `None`).
    pub observer: Option<Arc<dyn FlowObserver>>,
    /// Send duplicated requests concurrently with the original instead of after its answer.
    pub concurrent_retries: bool,
    /// How long a failed message stays invisible before its next receive (default
    /// [`crate::bus::DEFAULT_RETRY_DELAY`]).
    pub retry_delay: Option<Duration>,
    /// How HTTP requests are authorized (default: JWTs, with a key made for this runner).
    pub authorization: Authorization,
}

impl std::fmt::Debug for RunnerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerOptions")
            .field("stack_name", &self.stack_name)
            .field("stores", &self.stores)
            .field("duplicates", &self.duplicates)
            .field("observed", &self.observer.is_some())
            .field("concurrent_retries", &self.concurrent_retries)
            .field("retry_delay", &self.retry_delay)
            .field("authorization", &self.authorization)
            .finish()
    }
}

impl RunnerOptions {
    /// In-memory stores, stack `dev`, no duplicates, nobody watching.
    pub fn in_memory() -> Self {
        Self {
            stack_name: "dev".to_owned(),
            ..Self::default()
        }
    }

    /// Sets who sees the flow.
    pub fn observer(mut self, observer: Arc<dyn FlowObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Sets the duplicates to inject.
    pub fn duplicates(mut self, duplicates: Duplicates) -> Self {
        self.duplicates = Some(duplicates);
        self
    }
}

/// Every function of a template in one process, routed by the template's own rules.
pub struct Runner {
    topology: Topology,
    bus: Arc<Bus>,
    hosted: Hosted,
    /// Per table stream: its relay and reader (read by one settle at a time).
    streams: Vec<Option<RelaySlot>>,
    duplicates: Duplicates,
    settling: tokio::sync::Mutex<()>,
    /// Per queue: the remaining time its consumer's invocations start with.
    timeouts: Vec<Option<Duration>>,
    in_memory: bool,
    concurrent_retries: bool,
    /// Mints tokens, and validates them when `enforce` is set.
    authority: Arc<TokenAuthority>,
    /// Whether routes are authorized (`false`: `--no-auth`).
    enforce: bool,
}

/// Where a request's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// The bearer token in the route's identity source (what a client sends).
    Token,
    /// The claims already in the request (a fixture: what API Gateway passed the function).
    Claims,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("template", &self.topology.path)
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

/// How a response is counted: `fresh`, `replayed`, `in_progress`, `ok` (a read) or
/// `error:<type>`.
pub fn response_outcome(method: &str, response: &ApiResponse) -> String {
    let error_type = || {
        serde_json::from_str::<Value>(&response.body)
            .ok()
            .and_then(|b| {
                b.pointer("/error/type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("HTTP{}", response.status))
    };
    match response.status {
        200..=299 if response.header("idempotent-replayed") == Some("true") => {
            "replayed".to_owned()
        }
        200..=299 if method.eq_ignore_ascii_case("GET") => "ok".to_owned(),
        200..=299 => "fresh".to_owned(),
        409 if error_type() == "RequestInProgress" => "in_progress".to_owned(),
        _ => format!("error:{}", error_type()),
    }
}

/// A table stream's relay and its reader, locked while a settle reads it.
type RelaySlot = (Arc<dyn StreamConsumer>, tokio::sync::Mutex<StreamReader>);

/// Wakes the bus's waiter when dropped (after a request, however it ended).
struct WakeOnDrop<'a>(&'a Bus);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.wake();
    }
}

/// One invocation of a queue's consumer: the batch as an SQS event, the consumer's report
/// applied to it. A consumer that panics (or a queue without one) reports nothing, so every
/// record of the batch counts as failed and is redelivered, never lost.
async fn deliver(
    bus: Arc<Bus>,
    consumer: Option<Arc<dyn QueueConsumer>>,
    batch: crate::bus::Batch,
    timeout: Option<Duration>,
) {
    let report = match consumer {
        Some(consumer) => {
            let event = bus.sqs_event(&batch);
            AssertUnwindSafe(consumer.consume(event, timeout))
                .catch_unwind()
                .await
                .ok()
        }
        None => None,
    };
    let report = report.unwrap_or_else(|| BatchReport {
        records: Vec::new(),
        stats: BatchStats::default(),
    });
    bus.complete(batch, &report);
}

impl Runner {
    /// Reads the template, compiles its rules and hosts its functions.
    pub fn new(template: &Template, options: RunnerOptions) -> Result<Self, LocalError> {
        let stack_name = if options.stack_name.is_empty() {
            "dev"
        } else {
            &options.stack_name
        };
        let topology = Topology::from_template(template, &Stack::new(stack_name))?;
        let router = Router::new(&topology)?;
        let duplicates = options.duplicates.unwrap_or(Duplicates::NONE);
        let bus = Arc::new(
            Bus::new(&topology, router, duplicates, options.observer).with_retry_delay(
                options
                    .retry_delay
                    .unwrap_or(crate::bus::DEFAULT_RETRY_DELAY),
            ),
        );
        let mut hosted = host(&topology, &bus, &options.stores)?;
        let streams = std::mem::take(&mut hosted.streams)
            .into_iter()
            .map(|slot| slot.map(|hosted| (hosted.relay, tokio::sync::Mutex::new(hosted.reader))))
            .collect();
        let (authority, enforce) = match options.authorization {
            Authorization::Ephemeral => (Arc::new(TokenAuthority::ephemeral()?), true),
            Authorization::Jwt(authority) => (authority, true),
            // Still able to mint, so the demo and tests speak the same way with --no-auth.
            Authorization::Off => (Arc::new(TokenAuthority::ephemeral()?), false),
        };
        let timeouts = topology
            .queues
            .iter()
            .map(|q| {
                q.consumer
                    .and_then(|f| topology.functions.get(f))
                    .map(|f| f.timeout)
            })
            .collect();
        Ok(Self {
            timeouts,
            in_memory: matches!(options.stores, Stores::InMemory),
            concurrent_retries: options.concurrent_retries,
            topology,
            bus,
            hosted,
            streams,
            duplicates,
            settling: tokio::sync::Mutex::new(()),
            authority,
            enforce,
        })
    }

    /// Loads the template file, then [`Runner::new`].
    pub fn load(
        path: impl AsRef<std::path::Path>,
        options: RunnerOptions,
    ) -> Result<Self, LocalError> {
        Self::new(&Template::load(path)?, options)
    }

    /// What was read from the template.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The bus.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// `Routing from template.yaml: 5 rules, 2 table streams, 7 functions (in-memory stores)`,
    /// and a loud second line when authorization is off.
    pub fn banner(&self) -> String {
        let mut banner = format!(
            "Routing from {}: {} rules, {} table streams, {} functions ({} stores, stack {})",
            self.topology.file_name(),
            self.topology.rules.len(),
            self.topology.streams.len(),
            self.topology.functions.len(),
            if self.in_memory {
                "in-memory"
            } else {
                "DynamoDB"
            },
            self.topology.stack.name,
        );
        if !self.enforce {
            banner.push('\n');
            banner.push_str(crate::flow::NO_AUTH_WARNING);
        }
        banner
    }

    /// The runner's identity provider: mints the tokens its authorizer accepts.
    pub fn authority(&self) -> &Arc<TokenAuthority> {
        &self.authority
    }

    /// Whether HTTP routes are authorized (`false` with `--no-auth`).
    pub fn authorization_enforced(&self) -> bool {
        self.enforce
    }

    /// Every scope a route of the template requires (what the warehouse's token carries).
    pub fn staff_scopes(&self) -> Vec<String> {
        self.topology.required_scopes()
    }

    /// A signed token for customer `id`.
    pub fn customer_token(&self, id: &str) -> Result<String, LocalError> {
        self.authority.mint(&Grant::customer(id))
    }

    /// A signed token for the warehouse's system, with every scope the template's routes
    /// require ([`Runner::staff_scopes`]).
    pub fn warehouse_token(&self) -> Result<String, LocalError> {
        self.authority.mint(&Grant::warehouse(self.staff_scopes()))
    }

    /// Where an entry put on the template's main bus would go: `(rule, queue)` logical ids.
    pub fn targets(&self, entry: &Entry) -> Vec<(String, String)> {
        self.bus.targets(self.topology.main_bus(), entry)
    }

    /// Puts fixture entries on the template's main bus, as `PutEvents` would.
    pub fn inject(&self, entries: &[Entry]) {
        self.bus.put(self.topology.main_bus(), entries, None);
    }

    /// Serves one HTTP request as API Gateway would: the template's most specific matching route
    /// picks the function (no route: API Gateway's `404 {"message":"Not Found"}`); the route's
    /// JWT authorizer validates the bearer token of its identity source (`Authorization`) and
    /// the route's scopes, refusing as API Gateway does (401, 403: [`crate::auth`]); the
    /// function gets the validated claims as API Gateway passes them
    /// ([`ApiRequest::identity`]; any identity already in `request` is ignored) and its
    /// timeout as remaining time. With `--no-auth` ([`Authorization::Off`]) nothing is checked
    /// and the token's claims, if any, are passed unverified. A non-read request picked by
    /// the duplicates is sent a second time: right after the first answer (a client retrying
    /// after a lost response), or at the same time with [`RunnerOptions::concurrent_retries`]
    /// (a client retrying too early); the first answer that is not "in progress" is returned.
    pub async fn request(&self, request: &ApiRequest) -> ApiResponse {
        self.serve_request(request, Identity::Token).await
    }

    /// Serves a request as API Gateway hands it to the function, with the claims its
    /// authorizer already validated in [`ApiRequest::identity`] (a fixture of `events/http`):
    /// the route's authorization is still applied to those claims, so a request without claims
    /// on an authorized route is API Gateway's 401 and one without the route's scope its 403.
    pub async fn replay_request(&self, request: &ApiRequest) -> ApiResponse {
        self.serve_request(request, Identity::Claims).await
    }

    /// The route's authorization, as its authorizer would decide: the caller identity to
    /// pass, and how the flow line shows it.
    fn authorize(
        &self,
        route: &RouteTopology,
        request: &ApiRequest,
        source: Identity,
    ) -> Result<(Option<platform::auth::Caller>, String), Refusal> {
        let caller_of = |claims: &serde_json::Map<String, Value>| {
            platform::auth::Caller::from_jwt(&platform::auth::jwt_description(claims))
        };
        let label = |caller: &Option<platform::auth::Caller>| {
            caller.as_ref().map_or_else(
                || "no subject".to_owned(),
                |c| format!("sub {}", c.subject()),
            )
        };
        if !self.enforce {
            let caller = match source {
                Identity::Token => {
                    let header = route.auth.as_ref().map_or("authorization", |a| &a.header);
                    crate::auth::unverified_claims(request.header(header))
                        .as_ref()
                        .and_then(caller_of)
                }
                Identity::Claims => request.identity.clone(),
            };
            return Ok((caller, "NO AUTH".to_owned()));
        }
        let Some(auth) = &route.auth else {
            // An open route: API Gateway passes no claims.
            return Ok((None, "open route".to_owned()));
        };
        let caller = match source {
            Identity::Token => {
                let claims = self
                    .authority
                    .authorize(request.header(&auth.header), &auth.scopes)?;
                caller_of(&claims)
            }
            Identity::Claims => {
                let caller = request.identity.clone().ok_or_else(Refusal::missing)?;
                if !auth.scopes.is_empty() && !auth.scopes.iter().any(|s| caller.has_scope(s)) {
                    return Err(Refusal::insufficient_scope(&auth.scopes));
                }
                Some(caller)
            }
        };
        let shown = label(&caller);
        Ok((caller, shown))
    }

    async fn serve_request(&self, request: &ApiRequest, source: Identity) -> ApiResponse {
        let Some(route) = self.topology.route_for(&request.method, &request.path) else {
            let response = ApiResponse::json(404, &serde_json::json!({ "message": "Not Found" }));
            self.record(request, None, &response, false, "no route", None);
            return response;
        };
        let (Some(function), Some(Some(api))) = (
            self.topology.functions.get(route.function),
            self.hosted.apis.get(route.function),
        ) else {
            let response = ApiResponse::json(
                500,
                &serde_json::json!({ "message": "Internal Server Error" }),
            );
            self.record(request, None, &response, false, "-", None);
            return response;
        };
        let (identity, auth) = match self.authorize(route, request, source) {
            Ok(granted) => granted,
            Err(refusal) => {
                let response = refusal.response();
                // Refused before the integration: the function never ran.
                self.record(
                    request,
                    None,
                    &response,
                    false,
                    "refused",
                    Some(refusal.outcome()),
                );
                return response;
            }
        };
        let mut authorized = request.clone();
        authorized.identity = identity;
        let request = &authorized;
        let remaining = Some(function.timeout);
        let key = request.header("idempotency-key").unwrap_or_default();
        let twice = !request.method.eq_ignore_ascii_case("GET")
            && self.duplicates.pick(&[
                &request.method,
                &request.path,
                key,
                &String::from_utf8_lossy(&request.body),
            ]);
        // A write may have stored a fact in a table's outbox: whoever settles has work.
        let _wake = (!request.method.eq_ignore_ascii_case("GET")).then(|| WakeOnDrop(&self.bus));
        if !twice {
            let response = api.handle(request, remaining).await;
            self.record(
                request,
                Some(&function.binary),
                &response,
                false,
                &auth,
                None,
            );
            return response;
        }
        self.bus.count_duplicate();
        let mut answers = Vec::with_capacity(2);
        if self.concurrent_retries {
            let spawn = |request: ApiRequest| {
                let api = Arc::clone(api);
                tokio::spawn(async move { api.handle(&request, remaining).await })
            };
            let tasks = [spawn(request.clone()), spawn(request.clone())];
            for task in tasks {
                answers.push(task.await.unwrap_or_else(|join| {
                    ApiResponse::json(
                        500,
                        &serde_json::json!({ "error": { "type": "Panicked", "message": join.to_string() } }),
                    )
                }));
            }
        } else {
            answers.push(api.handle(request, remaining).await);
            answers.push(api.handle(request, remaining).await);
        }
        for (response, duplicate) in answers.iter().zip([false, true]) {
            self.record(
                request,
                Some(&function.binary),
                response,
                duplicate,
                &auth,
                None,
            );
        }
        // The client keeps the first answer that is not "in progress" (it would retry that one).
        let kept = answers
            .iter()
            .position(|r| response_outcome(&request.method, r) != "in_progress")
            .unwrap_or(0);
        answers.swap_remove(kept)
    }

    fn record(
        &self,
        request: &ApiRequest,
        target: Option<&str>,
        response: &ApiResponse,
        duplicate: bool,
        auth: &str,
        outcome: Option<String>,
    ) {
        let outcome = outcome.unwrap_or_else(|| response_outcome(&request.method, response));
        self.bus.count_request(&request.method, &outcome);
        if self.bus.has_observer() {
            self.bus
                .emit(crate::flow::Flow::Request(crate::flow::Request {
                    time: Utc::now(),
                    method: request.method.clone(),
                    path: request.path.clone(),
                    target: target.map(str::to_owned),
                    status: response.status,
                    outcome,
                    duplicate,
                    auth: auth.to_owned(),
                }));
        }
    }

    /// Delivers every new record of every table stream to its outbox relay, in order, batch by
    /// batch, as Lambda's event source mapping does (what the relays publish goes on the bus).
    /// Returns whether any record was delivered.
    async fn pump_streams(&self) -> Result<bool, LocalError> {
        let mut delivered_any = false;
        for (index, slot) in self.streams.iter().enumerate() {
            let (Some((relay, reader)), Some(stream)) = (slot, self.topology.streams.get(index))
            else {
                continue;
            };
            let Some(function) = self.topology.functions.get(stream.consumer) else {
                continue;
            };
            let mut reader = reader.lock().await;
            while let Some(delivered) = reader
                .deliver_next(relay.as_ref(), Some(function.timeout))
                .await?
            {
                delivered_any = true;
                self.bus.count_relayed(delivered.report.published());
                if self.bus.has_observer() {
                    for record in &delivered.report.records {
                        let (outcome, detail_type, idempotency_key, error) = match &record.outcome {
                            eventing::RelayOutcome::Skipped => continue,
                            eventing::RelayOutcome::Published {
                                detail_type,
                                idempotency_key,
                            } => (
                                "published".to_owned(),
                                Some(detail_type.clone()),
                                Some(idempotency_key.clone()),
                                None,
                            ),
                            eventing::RelayOutcome::Failed { error_type, error } => (
                                format!("failed:{error_type}"),
                                None,
                                None,
                                Some(error.clone()),
                            ),
                        };
                        self.bus.emit(Flow::Relay(Relay {
                            time: Utc::now(),
                            table: stream.table.clone(),
                            key: record.key.clone(),
                            target: function.binary.clone(),
                            outcome,
                            detail_type,
                            idempotency_key,
                            attempt: delivered.attempt,
                            error,
                        }));
                    }
                }
                for failed in delivered.given_up {
                    self.bus.dead_letter(DeadLetter {
                        queue: format!("{} stream", stream.table),
                        dlq: stream.on_failure.clone(),
                        message_id: failed.sequence_number,
                        source: function.binary.clone(),
                        detail_type: "(stream record)".to_owned(),
                        key: failed.key,
                        receive_count: failed.attempts,
                        last_error: failed.error,
                        body: String::new(),
                    });
                }
            }
        }
        Ok(delivered_any)
    }

    /// Delivers everything in the table streams and the queues until they are empty and nothing
    /// is in flight (what the relays and the consumers publish is routed and delivered too). Like Lambda's SQS pollers, each
    /// queue's consumer gets up to its `MaximumConcurrency` batches at once (per lane), each in
    /// its own task, and a new batch as soon as one completes. Only one settle runs at a time.
    ///
    /// A batch's task builds its SQS event, runs the consumer and applies the report itself, so
    /// the records and the report are made and freed on one worker thread (freeing another
    /// thread's memory was a large share of the allocator's time); this loop only hands out
    /// batches and counts.
    pub async fn settle(&self) -> Result<(), LocalError> {
        let _one_at_a_time = self.settling.lock().await;
        let mut in_flight = vec![[0usize; 2]; self.bus.queue_count()];
        let mut running = FuturesUnordered::new();
        let mut completed = 0usize;
        loop {
            self.pump_streams().await?;
            let batches = self.bus.receive(|queue, lane| {
                let busy = in_flight.get(queue).map_or(0, |slots| slots[lane as usize]);
                self.bus.concurrency(queue).saturating_sub(busy)
            });
            for batch in batches {
                if let Some(slots) = in_flight.get_mut(batch.queue) {
                    slots[batch.lane as usize] += 1;
                }
                let slot = (batch.queue, batch.lane);
                let consumer = self.hosted.consumers.get(batch.queue).cloned().flatten();
                let timeout = self.timeouts.get(batch.queue).copied().flatten();
                let bus = Arc::clone(&self.bus);
                let task = tokio::spawn(deliver(bus, consumer, batch, timeout));
                running.push(async move {
                    // `deliver` completes its batch even when the consumer panics; a task that
                    // died anyway (the runtime shutting down) leaves its messages in flight,
                    // which the summary reports as waiting.
                    let _ = task.await;
                    slot
                });
            }
            let Some((queue, lane)) = running.next().await else {
                // Nothing running: done, unless a stream got records meanwhile or failed
                // messages wait out their visibility.
                if self.pump_streams().await? {
                    continue;
                }
                match self.bus.next_visible() {
                    Some(due) => {
                        tokio::time::sleep_until(due.into()).await;
                        continue;
                    }
                    None => return Ok(()),
                }
            };
            if let Some(slots) = in_flight.get_mut(queue) {
                slots[lane as usize] = slots[lane as usize].saturating_sub(1);
            }
            completed += 1;
            if completed >= MAX_BATCHES {
                // Let what runs finish, so no message is left half-delivered.
                while running.next().await.is_some() {}
                return Err(LocalError::Unsettled { batches: completed });
            }
        }
    }

    /// Counters, outcomes and the dead-letter listing so far.
    pub fn summary(&self) -> Summary {
        let mut summary = self.bus.summary();
        summary.authorization_off = !self.enforce;
        summary
    }

    /// Entity counts of the in-memory stores (`None` with DynamoDB).
    pub fn store_counts(&self) -> Option<StoreCounts> {
        self.hosted.counts()
    }

    /// An order's shipment, as the fulfillment store holds it.
    pub async fn shipment(&self, order_id: &str) -> Option<fulfillment::domain::Shipment> {
        let store = self.hosted.fulfillment.as_ref()?;
        store.shipment(order_id).await.ok().flatten()
    }

    /// The order store of `table` (the benchmark seeds orders through it).
    pub fn order_store(&self, table: &str) -> Option<Arc<dyn orders::store::OrderStore>> {
        self.hosted.order_stores.get(table).cloned()
    }

    /// Remaining time a consumer invocation starts with.
    pub fn timeout_of(&self, binary: &str) -> Option<Duration> {
        self.topology
            .functions
            .iter()
            .find(|f| f.binary == binary)
            .map(|f| f.timeout)
    }
}
