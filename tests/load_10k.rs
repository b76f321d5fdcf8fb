//! Issue #8, load: 10,000 orders through the local runner's bus with 30% duplicates and 10% of
//! AWS call attempts failing; at the end there are exactly 10,000 orders, picks and shipments,
//! every order is Shipped, nothing is dead-lettered and nothing is left in a queue.
//!
//! The topology (rules, queues, batch sizes, `MaximumConcurrency`, `maxReceiveCount`, IAM
//! `events:source` grants) is the local runner's reading of `template.yaml`, and deliveries go
//! through its bus (`local::bus::Bus`: rule matching, SQS-shaped batches, partial batch
//! failures, redelivery after a visibility pause, dead-letter listing, a duplicate lane fed by
//! `Duplicates`). The functions are built as `local::hosting` builds them, over the in-memory
//! adapters, each wrapped in the fault layer (`faults::ports`): 10% of attempts of every
//! idempotency-store, domain-store and PutEvents call fail (a third of them after being
//! applied: lost answers), 3% of PutEvents entries fail, and every call gets the SDK's 3
//! attempts. The local runner has no hook to wrap its hosted adapters, hence this hosting.
//!
//! Requests: 10,000 `POST /orders`, 30% sent twice (half concurrently, half after the first
//! answer), by clients that retry 5xx and 409 as the API advises. Each order is stored with its
//! `OrderCreated` fact; the outbox relays read the in-memory tables' streams as Lambda's event
//! source mapping does (`local::streams`), publishing through the same fault layer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use contracts::OrderStatus;
use eventing::OutgoingEvent;
use eventing::{BatchReport, BatchStats, Consumer, EventPublisher};
use faults::Service;
use faults::ports::{FaultyPublisher, FaultyStore, InjectedFault, PortFaults};
use fulfillment::domain::{Pick, Shipment};
use fulfillment::store::{FulfillmentStore, InMemoryFulfillmentStore};
use futures::StreamExt;
use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
use local::bus::{Bus, BusPublisher, Duplicates};
use local::router::Router;
use local::streams::{StreamReader, StreamSource};
use local::topology::Topology;
use orders::domain::Order;
use orders::store::{Advance, InMemoryOrderStore, OrderStore, StoreError};
use platform::doc_table::DocTableError;
use platform::http::{ApiRequest, ApiResponse};
use sam_template::Stack;
use support::domain::{Return, ShippedOrder, Units};
use support::store::{InMemorySupportStore, Receipt, Requested, SupportStore};

const ORDERS: usize = 10_000;
const DUPLICATES: f64 = 0.3;
const FAULTS: f64 = 0.1;
const LOST_SHARE: f64 = 1.0 / 3.0;
const ENTRY_FAULTS: f64 = 0.03;
/// In-progress expiry of every claim (the invocation's remaining time, scaled down like the
/// bus's visibility pause, which stays longer).
const REMAINING: Duration = Duration::from_millis(200);
const VISIBILITY: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------------------------
// The domain stores behind the fault layer.

struct Faulty<S> {
    inner: S,
    faults: PortFaults,
}

fn orders_error(operation: &'static str) -> impl FnOnce(InjectedFault) -> StoreError {
    move |fault| StoreError::DynamoDb {
        operation,
        source: Box::new(fault),
    }
}

fn doc_error(operation: &'static str) -> impl FnOnce(InjectedFault) -> DocTableError {
    move |fault| DocTableError::DynamoDb {
        operation,
        table: "in-memory".into(),
        source: Box::new(fault),
    }
}

const DDB: Service = Service::DynamoDb;

#[async_trait]
impl OrderStore for Faulty<InMemoryOrderStore> {
    async fn insert(&self, order: &Order, created: &OutgoingEvent) -> Result<Order, StoreError> {
        self.faults
            .run(&DDB, "PutItem", true, || self.inner.insert(order, created))
            .await
            .map_err(orders_error("PutItem"))?
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        self.faults
            .run(&DDB, "GetItem", false, || self.inner.get(order_id))
            .await
            .map_err(orders_error("GetItem"))?
    }

    async fn advance(
        &self,
        order_id: &str,
        status: OrderStatus,
        at: DateTime<Utc>,
    ) -> Result<Advance, StoreError> {
        self.faults
            .run(&DDB, "UpdateItem", true, || {
                self.inner.advance(order_id, status, at)
            })
            .await
            .map_err(orders_error("UpdateItem"))?
    }
}

#[async_trait]
impl FulfillmentStore for Faulty<InMemoryFulfillmentStore> {
    async fn record_pick(&self, pick: &Pick) -> Result<Pick, DocTableError> {
        self.faults
            .run(&DDB, "PutItem", true, || self.inner.record_pick(pick))
            .await
            .map_err(doc_error("PutItem"))?
    }

    async fn record_shipment(&self, shipment: &Shipment) -> Result<Shipment, DocTableError> {
        self.faults
            .run(&DDB, "PutItem", true, || {
                self.inner.record_shipment(shipment)
            })
            .await
            .map_err(doc_error("PutItem"))?
    }

    async fn shipment(&self, order_id: &str) -> Result<Option<Shipment>, DocTableError> {
        self.faults
            .run(&DDB, "GetItem", false, || self.inner.shipment(order_id))
            .await
            .map_err(doc_error("GetItem"))?
    }
}

#[async_trait]
impl SupportStore for Faulty<InMemorySupportStore> {
    async fn put_shipped_order(&self, order: &ShippedOrder) -> Result<(), DocTableError> {
        self.faults
            .run(&DDB, "UpdateItem", true, || {
                self.inner.put_shipped_order(order)
            })
            .await
            .map_err(doc_error("UpdateItem"))?
    }

    async fn shipped_order(
        &self,
        order_id: &str,
    ) -> Result<Option<(ShippedOrder, Units)>, DocTableError> {
        self.faults
            .run(&DDB, "GetItem", false, || {
                self.inner.shipped_order(order_id)
            })
            .await
            .map_err(doc_error("GetItem"))?
    }

    async fn request_return(
        &self,
        ret: &Return,
        requested: &OutgoingEvent,
        shipped: &ShippedOrder,
    ) -> Result<Requested, DocTableError> {
        self.faults
            .run(&DDB, "TransactWriteItems", true, || {
                self.inner.request_return(ret, requested, shipped)
            })
            .await
            .map_err(doc_error("TransactWriteItems"))?
    }

    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError> {
        self.faults
            .run(&DDB, "GetItem", false, || self.inner.get_return(return_id))
            .await
            .map_err(doc_error("GetItem"))?
    }

    async fn receive_return(
        &self,
        received: &Return,
        fact: &OutgoingEvent,
    ) -> Result<Option<Receipt>, DocTableError> {
        self.faults
            .run(&DDB, "UpdateItem", true, || {
                self.inner.receive_return(received, fact)
            })
            .await
            .map_err(doc_error("UpdateItem"))?
    }
}

// ---------------------------------------------------------------------------------------------
// Hosting, as `local::hosting` does it, with every port behind the fault layer.

struct Hosted {
    bus: Arc<Bus>,
    /// Per queue: its consumer.
    consumers: Vec<Option<Consumer>>,
    /// The outbox relays, with the readers of their tables' streams.
    relays: tokio::sync::Mutex<Vec<(eventing::OutboxRelay, StreamReader)>>,
    orders_api: orders::api::OrdersApi,
    orders: InMemoryOrderStore,
    fulfillment: InMemoryFulfillmentStore,
    support: InMemorySupportStore,
}

fn host(faults: &PortFaults, seed: u64) -> Hosted {
    let template = testkit::template();
    let topology = Topology::from_template(&template, &Stack::new("load")).unwrap();
    let router = Router::new(&topology).unwrap();
    let bus = Arc::new(
        Bus::new(&topology, router, Duplicates::new(DUPLICATES, seed), None)
            .with_retry_delay(VISIBILITY),
    );
    let (orders, fulfillment, support) = (
        InMemoryOrderStore::default(),
        InMemoryFulfillmentStore::default(),
        InMemorySupportStore::default(),
    );
    let order_store: Arc<dyn OrderStore> = Arc::new(Faulty {
        inner: orders.clone(),
        faults: faults.clone(),
    });
    let fulfillment_store: Arc<dyn FulfillmentStore> = Arc::new(Faulty {
        inner: fulfillment.clone(),
        faults: faults.clone(),
    });
    let support_store: Arc<dyn SupportStore> = Arc::new(Faulty {
        inner: support.clone(),
        faults: faults.clone(),
    });
    // One idempotency table, shared by every function as in the template.
    let table = FaultyStore::new(InMemoryStore::new(), faults.clone());
    let table = Arc::new(table);
    let mut consumers: Vec<Option<Consumer>> = vec![None; topology.queues.len()];
    let mut relays = Vec::new();
    let mut orders_api = None;
    for (index, function) in topology.functions.iter().enumerate() {
        let idempotency = |operation: &str, cache: usize| {
            Idempotency::from_arc(
                table.clone(),
                IdempotencyConfig::new(operation)
                    .key_prefix(format!("{}#{operation}", function.name))
                    .local_cache(cache),
            )
        };
        let publisher = FaultyPublisher::new(
            BusPublisher::new(
                Arc::clone(&bus),
                topology.bus_of(index).unwrap_or("default"),
                function.binary.clone(),
                function.publish.clone(),
            ),
            faults.clone(),
        );
        let consumer = match function.binary.as_str() {
            "orders-api" => {
                orders_api = Some(orders::api::OrdersApi::new(
                    idempotency("create-order", 0),
                    order_store.clone(),
                ));
                None
            }
            "orders-outbox-relay" | "support-outbox-relay" => {
                let publisher: Arc<dyn EventPublisher> = Arc::new(publisher);
                let (relay, feed) = if function.binary == "orders-outbox-relay" {
                    (orders::outbox_relay(publisher), orders.changes())
                } else {
                    (support::outbox_relay(publisher), support.changes())
                };
                let stream = &topology.streams[function.streams[0]];
                let source = StreamSource::Memory(feed.clone());
                relays.push((
                    relay,
                    StreamReader::new(source, stream.batch_size, stream.max_retries),
                ));
                None
            }
            "orders-events" => Some(Consumer::new(
                orders::projection::OrderStatusProjection::new(order_store.clone()),
                idempotency("apply-status", 1024),
                publisher,
            )),
            "fulfillment-events" => Some(Consumer::new(
                fulfillment::handler::FulfillmentHandler::new(fulfillment_store.clone()),
                idempotency("fulfil", 1024),
                publisher,
            )),
            "support-events" => Some(Consumer::new(
                support::projection::ShippedOrdersProjection::new(support_store.clone()),
                idempotency("record-shipped", 1024),
                publisher,
            )),
            _ => None,
        };
        if let Some(consumer) = consumer {
            for &queue in &function.queues {
                consumers[queue] = Some(consumer.clone());
            }
        }
    }
    Hosted {
        orders_api: orders_api.expect("the template has orders-api"),
        bus,
        consumers,
        relays: tokio::sync::Mutex::new(relays),
        orders,
        fulfillment,
        support,
    }
}

// ---------------------------------------------------------------------------------------------
// Clients and delivery.

#[derive(Debug, Default, Clone, Copy)]
struct ClientStats {
    retries_5xx: usize,
    retries_409: usize,
}

/// A client that retries with the same key as the API advises: 5xx at once, 409 after a pause.
async fn send(api: &orders::api::OrdersApi, request: &ApiRequest) -> (ApiResponse, ClientStats) {
    let mut stats = ClientStats::default();
    for _ in 0..100 {
        let response = api.handle(request, Some(REMAINING)).await;
        match response.status {
            500..=599 => stats.retries_5xx += 1,
            409 => {
                stats.retries_409 += 1;
                tokio::time::sleep(VISIBILITY).await;
            }
            _ => return (response, stats),
        }
    }
    panic!("no final answer after 100 attempts");
}

fn order_request(i: usize) -> ApiRequest {
    let body = serde_json::json!({
        "customer-id": format!("C-{}", i % 1_000),
        "currency": if i.is_multiple_of(3) { "EUR" } else { "USD" },
        "items": [
            { "sku": "SKU-RED-MUG", "quantity": 1 + i % 3, "unit-price": "12.50" },
            { "sku": format!("SKU-{}", i % 50), "quantity": 1, "unit-price": "3.99" }
        ]
    });
    let mut request = ApiRequest {
        method: "POST".into(),
        path: "/orders".into(),
        body: body.to_string().into_bytes(),
        identity: Some(platform::auth::Caller::new(
            format!("C-{}", i % 1_000),
            vec![],
            vec![],
            None,
        )),
        ..ApiRequest::default()
    };
    request
        .headers
        .insert("idempotency-key".into(), format!("load-order-{i}"));
    request
}

/// Relays every new stream record; a stream whose batch failed stops there (retried next
/// round, from the failed record). Returns the records still waiting.
async fn pump(hosted: &Hosted) -> usize {
    let mut relays = hosted.relays.lock().await;
    let mut waiting = 0;
    for (relay, reader) in relays.iter_mut() {
        while let Some(delivered) = reader.deliver_next(relay, Some(REMAINING)).await.unwrap() {
            assert!(delivered.given_up.is_empty(), "{:?}", delivered.given_up);
            if delivered.report.failed() > 0 {
                break;
            }
        }
        waiting += reader.pending();
    }
    waiting
}

/// Relays the table streams and delivers rounds of batches (every consumed queue's
/// `MaximumConcurrency` per lane, each batch in its own task) until the streams and queues are
/// empty and no failed message waits to be visible.
async fn settle(hosted: &Hosted) -> usize {
    let mut rounds = 0;
    loop {
        let waiting_in_streams = pump(hosted).await;
        let batches = hosted.bus.receive_round();
        if batches.is_empty() {
            if waiting_in_streams > 0 {
                tokio::time::sleep(VISIBILITY).await;
                continue;
            }
            match hosted.bus.next_visible() {
                Some(due) => {
                    tokio::time::sleep_until(due.into()).await;
                    continue;
                }
                None => return rounds,
            }
        }
        rounds += 1;
        let running: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                let consumer = hosted.consumers[batch.queue].clone();
                let event = hosted.bus.sqs_event(&batch);
                let task = tokio::spawn(async move {
                    match consumer {
                        Some(consumer) => Some(consumer.process_sqs(event, Some(REMAINING)).await),
                        None => None,
                    }
                });
                (batch, task)
            })
            .collect();
        for (batch, task) in running {
            // A task that died reports nothing: every record of its batch is redelivered.
            let report = task.await.ok().flatten().unwrap_or(BatchReport {
                records: Vec::new(),
                stats: BatchStats::default(),
            });
            hosted.bus.complete(batch, &report);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_orders_with_duplicates_and_faults_end_as_ten_thousand_picks_and_shipments() {
    let seed = std::env::var("RESILIENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let faults = PortFaults::new(seed, FAULTS, LOST_SHARE, platform::init::SDK_MAX_ATTEMPTS)
        .with_entry_share(ENTRY_FAULTS);
    let hosted = host(&faults, seed);
    let duplicates = Duplicates::new(DUPLICATES, seed);
    let started = Instant::now();

    // 10,000 orders over HTTP, 30% of the requests sent twice.
    let api = &hosted.orders_api;
    let answers: Vec<(usize, bool, ClientStats)> = futures::stream::iter(0..ORDERS)
        .map(|i| async move {
            let request = order_request(i);
            let key = format!("load-order-{i}");
            let twice = duplicates.pick(&["POST", "/orders", &key]);
            let (first, second) = if !twice {
                (send(api, &request).await, None)
            } else if i.is_multiple_of(2) {
                let (a, b) = tokio::join!(send(api, &request), send(api, &request));
                (a, Some(b))
            } else {
                let a = send(api, &request).await;
                let b = send(api, &request).await;
                (a, Some(b))
            };
            let ((first, mut stats), second) = (first, second);
            assert_eq!(first.status, 201, "{}", first.body);
            if let Some((second, more)) = second {
                assert_eq!(second.status, 201, "{}", second.body);
                assert_eq!(first.body, second.body, "both answers name the same order");
                stats.retries_5xx += more.retries_5xx;
                stats.retries_409 += more.retries_409;
            }
            (i, twice, stats)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let requests_done = started.elapsed();
    let rounds = settle(&hosted).await;
    let elapsed = started.elapsed();

    let summary = hosted.bus.summary();
    let stats = faults.stats();
    let duplicated_requests = answers.iter().filter(|(_, twice, _)| *twice).count();
    let client = answers
        .iter()
        .fold(ClientStats::default(), |acc, (_, _, s)| ClientStats {
            retries_5xx: acc.retries_5xx + s.retries_5xx,
            retries_409: acc.retries_409 + s.retries_409,
        });
    let orders = hosted.orders.all();
    let (picks, shipments) = hosted.fulfillment.counts();
    let mut shipped_in_support = 0;
    for order in &orders {
        if hosted
            .support
            .shipped_order(&order.order_id)
            .await
            .unwrap()
            .is_some()
        {
            shipped_in_support += 1;
        }
    }
    println!(
        "seed {seed}: {ORDERS} orders in {:.1} s (requests {:.1} s, {rounds} delivery rounds)",
        elapsed.as_secs_f64(),
        requests_done.as_secs_f64()
    );
    println!("requests: {duplicated_requests} sent twice; client retries {client:?}");
    println!(
        "faults: {:.1}% of {} attempts ({} injected, {} lost answers, {} retries, {} calls failed after every attempt, {} PutEvents entries failed) over {} calls",
        stats.injected_share() * 100.0,
        stats.attempts,
        stats.injected,
        stats.lost_responses,
        stats.retries,
        stats.exhausted,
        stats.entries_failed,
        stats.calls
    );
    println!("bus: {}", summary.text().replace('\n', " | "));
    println!(
        "final: {} orders, {picks} picks, {shipments} shipments, {shipped_in_support} shipped orders known to support",
        orders.len()
    );

    assert!((0.08..0.12).contains(&stats.injected_share()), "{stats:?}");
    assert!(stats.exhausted > 0, "some calls failed outright: {stats:?}");
    assert!(summary.duplicates_injected > 0);
    assert_eq!(orders.len(), ORDERS);
    assert_eq!((picks, shipments), (ORDERS, ORDERS));
    assert_eq!(shipped_in_support, ORDERS);
    let not_shipped: Vec<_> = orders
        .iter()
        .filter(|o| o.status != OrderStatus::Shipped)
        .map(|o| (&o.order_id, o.status))
        .collect();
    assert!(
        not_shipped.is_empty(),
        "{:?}",
        &not_shipped[..not_shipped.len().min(5)]
    );
    assert!(
        summary.dead_letters.is_empty(),
        "{:?}",
        summary.dead_letters.first()
    );
    assert_eq!(summary.waiting, 0);
    // Every fact once: 3 per order (created, picked, shipped); copies come only from lost
    // PutEvents answers, under the same keys.
    let by_target: BTreeMap<_, _> = summary
        .targets
        .iter()
        .map(|(target, t)| (target.clone(), t.delivered))
        .collect();
    println!("deliveries by consumer: {by_target:?}");
}
