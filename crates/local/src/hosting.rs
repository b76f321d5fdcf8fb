//! Hosting the functions in process: the very constructors the Lambda binaries' `wire_*`
//! functions use, over in-memory or DynamoDB adapters, with the bus as their publisher.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use eventing::{BatchReport, Consumer, EventPublisher};
use fulfillment::store::{DynamoDbFulfillmentStore, FulfillmentStore, InMemoryFulfillmentStore};
use idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig, IdempotencyStore, InMemoryStore};
use orders::store::{DynamoDbOrderStore, InMemoryOrderStore, OrderStore};
use platform::config::{BusConfig, Env};
use platform::http::{ApiRequest, ApiResponse};
use serde::Serialize;
use support::store::{DynamoDbSupportStore, InMemorySupportStore, SupportStore};

use crate::LocalError;
use crate::bus::{Bus, BusPublisher};
use crate::streams::{StreamConsumer, StreamPoller, StreamReader, StreamSource};
use crate::topology::{FunctionTopology, Topology};

/// Where the functions keep their state.
#[derive(Debug, Clone, Default)]
pub enum Stores {
    /// In-memory adapters, one per table name (functions naming the same table share it).
    #[default]
    InMemory,
    /// DynamoDB tables named by the functions' environment, through this SDK configuration
    /// (its endpoint comes from `AWS_ENDPOINT_URL` when set: the moto stand-in, or real AWS).
    DynamoDb(Box<aws_config::SdkConfig>),
}

/// Capability: answer an HTTP request (an API function).
#[async_trait::async_trait]
pub trait HttpFunction: Send + Sync {
    /// Handles one request; every failure is an HTTP answer.
    async fn handle(&self, request: &ApiRequest, remaining: Option<Duration>) -> ApiResponse;
}

#[async_trait::async_trait]
impl HttpFunction for orders::api::OrdersApi {
    async fn handle(&self, request: &ApiRequest, remaining: Option<Duration>) -> ApiResponse {
        orders::api::OrdersApi::handle(self, request, remaining).await
    }
}

#[async_trait::async_trait]
impl HttpFunction for support::api::SupportApi {
    async fn handle(&self, request: &ApiRequest, remaining: Option<Duration>) -> ApiResponse {
        support::api::SupportApi::handle(self, request, remaining).await
    }
}

/// Capability: take an SQS batch and report each record's outcome (a queue's consumer).
#[async_trait::async_trait]
pub trait QueueConsumer: Send + Sync {
    /// Processes one batch; failed records are the ones to redeliver.
    async fn consume(&self, batch: SqsEvent, remaining: Option<Duration>) -> BatchReport;
}

#[async_trait::async_trait]
impl QueueConsumer for Consumer {
    async fn consume(&self, batch: SqsEvent, remaining: Option<Duration>) -> BatchReport {
        self.process_sqs(batch, remaining).await
    }
}

/// How many entities the in-memory stores hold (the demo's "nothing happened twice" check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    /// Orders.
    pub orders: usize,
    /// Picks.
    pub picks: usize,
    /// Shipments.
    pub shipments: usize,
    /// Returns.
    pub returns: usize,
}

/// The in-memory stores, by table name.
#[derive(Debug, Default)]
struct Memory {
    idempotency: BTreeMap<String, Arc<InMemoryStore>>,
    orders: BTreeMap<String, InMemoryOrderStore>,
    fulfillment: BTreeMap<String, InMemoryFulfillmentStore>,
    support: BTreeMap<String, InMemorySupportStore>,
}

/// A table stream's relay and the reader of the stream.
pub(crate) struct HostedStream {
    /// The relay it feeds.
    pub relay: Arc<dyn StreamConsumer>,
    /// Where it is read.
    pub reader: StreamReader,
}

/// Every hosted function, by role.
pub(crate) struct Hosted {
    /// Per queue (index in [`Topology::queues`]): its consumer.
    pub consumers: Vec<Option<Arc<dyn QueueConsumer>>>,
    /// Per function (index in [`Topology::functions`]): its HTTP handler.
    pub apis: Vec<Option<Arc<dyn HttpFunction>>>,
    /// Per table stream (index in [`Topology::streams`]): its relay and where it reads.
    pub streams: Vec<Option<HostedStream>>,
    /// The fulfillment store of the first fulfillment function (the demo reads shipments).
    pub fulfillment: Option<Arc<dyn FulfillmentStore>>,
    /// The order stores, by table (the benchmark seeds orders).
    pub order_stores: BTreeMap<String, Arc<dyn OrderStore>>,
    memory: Option<Memory>,
}

impl Hosted {
    /// Entity counts of the in-memory stores (`None` with DynamoDB).
    pub fn counts(&self) -> Option<StoreCounts> {
        let memory = self.memory.as_ref()?;
        let (picks, shipments) = memory
            .fulfillment
            .values()
            .map(InMemoryFulfillmentStore::counts)
            .fold((0, 0), |(p, s), (p2, s2)| (p + p2, s + s2));
        Some(StoreCounts {
            orders: memory.orders.values().map(|s| s.all().len()).sum(),
            picks,
            shipments,
            returns: memory.support.values().map(|s| s.returns().len()).sum(),
        })
    }
}

/// Builds what one function needs, sharing stores by table name.
struct Wiring<'a> {
    topology: &'a Topology,
    bus: &'a Arc<Bus>,
    sdk: Option<&'a aws_config::SdkConfig>,
    ddb: Option<aws_sdk_dynamodb::Client>,
    memory: Memory,
}

impl Wiring<'_> {
    fn idempotency(
        &mut self,
        table: &str,
        operation: &str,
        key_prefix: String,
        cache: usize,
    ) -> Idempotency {
        let store: Arc<dyn IdempotencyStore> = match &self.ddb {
            Some(client) => Arc::new(DynamoDbStore::new(client.clone(), table)),
            None => self
                .memory
                .idempotency
                .entry(table.to_owned())
                .or_insert_with(|| Arc::new(InMemoryStore::new()))
                .clone(),
        };
        // The function's own prefix from its template environment (IDEMPOTENCY_KEY_PREFIX), as
        // deployed: functions sharing the table never share records.
        let config = IdempotencyConfig::new(operation)
            .key_prefix(key_prefix)
            .local_cache(cache);
        Idempotency::from_arc(store, config)
    }

    fn orders(&mut self, table: &str) -> Arc<dyn OrderStore> {
        match &self.ddb {
            Some(client) => Arc::new(DynamoDbOrderStore::new(client.clone(), table)),
            None => Arc::new(
                self.memory
                    .orders
                    .entry(table.to_owned())
                    .or_default()
                    .clone(),
            ),
        }
    }

    fn fulfillment(&mut self, table: &str) -> Arc<dyn FulfillmentStore> {
        match &self.ddb {
            Some(client) => Arc::new(DynamoDbFulfillmentStore::new(client.clone(), table)),
            None => Arc::new(
                self.memory
                    .fulfillment
                    .entry(table.to_owned())
                    .or_default()
                    .clone(),
            ),
        }
    }

    fn support(&mut self, table: &str) -> Arc<dyn SupportStore> {
        match &self.ddb {
            Some(client) => Arc::new(DynamoDbSupportStore::new(client.clone(), table)),
            None => Arc::new(
                self.memory
                    .support
                    .entry(table.to_owned())
                    .or_default()
                    .clone(),
            ),
        }
    }

    /// Where the stream of `table` is read: the in-memory table's feed (the store of `kind`,
    /// shared with the functions that write it), or the DynamoDB table's stream.
    fn stream(&mut self, table: &str, kind: TableKind) -> StreamSource {
        if let Some(sdk) = self.sdk {
            return StreamSource::DynamoDb(Box::new(StreamPoller::new(sdk, table)));
        }
        let feed = match kind {
            TableKind::Orders => self
                .memory
                .orders
                .entry(table.to_owned())
                .or_default()
                .changes(),
            TableKind::Support => self
                .memory
                .support
                .entry(table.to_owned())
                .or_default()
                .changes(),
        };
        StreamSource::Memory(feed.clone())
    }

    fn publisher(
        &self,
        index: usize,
        function: &FunctionTopology,
    ) -> Result<BusPublisher, LocalError> {
        let bus_name = self.topology.bus_of(index).unwrap_or("default");
        if bus_name != "default" && !self.topology.buses.iter().any(|b| b == bus_name) {
            return Err(LocalError::Unsupported {
                path: self.topology.path.clone(),
                at: format!(
                    "{}.Properties.Environment.Variables.EVENT_BUS_NAME",
                    function.logical_id
                ),
                problem: format!("{bus_name} is not a bus of the template"),
            });
        }
        Ok(BusPublisher::new(
            Arc::clone(self.bus),
            bus_name,
            function.binary.clone(),
            function.publish.clone(),
        ))
    }
}

/// The domain tables whose streams carry an outbox.
#[derive(Debug, Clone, Copy)]
enum TableKind {
    Orders,
    Support,
}

fn config_error(
    topology: &Topology,
    function: &FunctionTopology,
) -> impl Fn(platform::config::ConfigError) -> LocalError {
    let path = topology.path.clone();
    let logical_id = function.logical_id.clone();
    move |source| LocalError::FunctionConfig {
        path: path.clone(),
        function: logical_id.clone(),
        source,
    }
}

/// Hosts every function of `topology`. Each reads its configuration from its template
/// environment with its own `Config::from_env`, exactly as on Lambda, so a variable missing
/// from the template fails here too.
pub(crate) fn host(
    topology: &Topology,
    bus: &Arc<Bus>,
    stores: &Stores,
) -> Result<Hosted, LocalError> {
    let sdk = match stores {
        Stores::InMemory => None,
        Stores::DynamoDb(sdk) => Some(sdk.as_ref()),
    };
    let mut wiring = Wiring {
        topology,
        bus,
        sdk,
        ddb: sdk.map(aws_sdk_dynamodb::Client::new),
        memory: Memory::default(),
    };
    let mut streams: Vec<Option<HostedStream>> =
        (0..topology.streams.len()).map(|_| None).collect();
    let mut consumers: Vec<Option<Arc<dyn QueueConsumer>>> = vec![None; topology.queues.len()];
    let mut apis: Vec<Option<Arc<dyn HttpFunction>>> = Vec::with_capacity(topology.functions.len());
    let mut fulfillment_store = None;
    let mut order_stores = BTreeMap::new();

    for (index, function) in topology.functions.iter().enumerate() {
        let vars = function.environment.clone();
        let env = Env::from_fn(move |name| vars.get(name).cloned());
        let wrong = config_error(topology, function);
        let publisher = wiring.publisher(index, function)?;
        let mut relay: Option<(Arc<dyn StreamConsumer>, TableKind)> = None;
        let (api, consumer): (Option<Arc<dyn HttpFunction>>, Option<Consumer>) =
            match function.binary.as_str() {
                "orders-api" => {
                    let config = orders::Config::from_env(&env).map_err(&wrong)?;
                    let store = wiring.orders(&config.orders_table);
                    order_stores.insert(config.orders_table.clone(), Arc::clone(&store));
                    let idempotency = wiring.idempotency(
                        &config.idempotency_table,
                        "create-order",
                        config.key_prefix("create-order"),
                        0,
                    );
                    (
                        Some(Arc::new(orders::api::OrdersApi::new(idempotency, store))),
                        None,
                    )
                }
                "orders-outbox-relay" => {
                    BusConfig::from_env(&env).map_err(&wrong)?;
                    let publisher: Arc<dyn EventPublisher> = Arc::new(publisher);
                    relay = Some((Arc::new(orders::outbox_relay(publisher)), TableKind::Orders));
                    (None, None)
                }
                "support-outbox-relay" => {
                    BusConfig::from_env(&env).map_err(&wrong)?;
                    let publisher: Arc<dyn EventPublisher> = Arc::new(publisher);
                    relay = Some((
                        Arc::new(support::outbox_relay(publisher)),
                        TableKind::Support,
                    ));
                    (None, None)
                }
                "orders-events" => {
                    let config = orders::Config::from_env(&env).map_err(&wrong)?;
                    let store = wiring.orders(&config.orders_table);
                    order_stores.insert(config.orders_table.clone(), Arc::clone(&store));
                    let idempotency = wiring.idempotency(
                        &config.idempotency_table,
                        "apply-status",
                        config.key_prefix("apply-status"),
                        1024,
                    );
                    let handler = orders::projection::OrderStatusProjection::new(store);
                    (None, Some(Consumer::new(handler, idempotency, publisher)))
                }
                "fulfillment-events" => {
                    let config = fulfillment::Config::from_env(&env).map_err(&wrong)?;
                    let store = wiring.fulfillment(&config.fulfillment_table);
                    fulfillment_store.get_or_insert_with(|| Arc::clone(&store));
                    let idempotency = wiring.idempotency(
                        &config.idempotency_table,
                        "fulfil",
                        config.key_prefix("fulfil"),
                        1024,
                    );
                    let handler = fulfillment::handler::FulfillmentHandler::new(store);
                    (None, Some(Consumer::new(handler, idempotency, publisher)))
                }
                "support-api" => {
                    let config = support::Config::from_env(&env).map_err(&wrong)?;
                    let store = wiring.support(&config.support_table);
                    let idempotency = wiring.idempotency(
                        &config.idempotency_table,
                        "request-return",
                        config.key_prefix("request-return"),
                        0,
                    );
                    (
                        Some(Arc::new(support::api::SupportApi::new(
                            idempotency,
                            store,
                            &config.staff_scope,
                        ))),
                        None,
                    )
                }
                "support-events" => {
                    let config = support::Config::from_env(&env).map_err(&wrong)?;
                    let store = wiring.support(&config.support_table);
                    let idempotency = wiring.idempotency(
                        &config.idempotency_table,
                        "record-shipped",
                        config.key_prefix("record-shipped"),
                        1024,
                    );
                    let handler = support::projection::ShippedOrdersProjection::new(store);
                    (None, Some(Consumer::new(handler, idempotency, publisher)))
                }
                other => {
                    return Err(LocalError::Unsupported {
                        path: topology.path.clone(),
                        at: format!("{}.Metadata.BuildProperties.Binary", function.logical_id),
                        problem: format!("the local runner does not host binary `{other}`"),
                    });
                }
            };

        let has_routes = topology.routes.iter().any(|r| r.function == index);
        if has_routes && api.is_none() {
            return Err(LocalError::Unsupported {
                path: topology.path.clone(),
                at: format!("{}.Properties.Events", function.logical_id),
                problem: format!(
                    "{} has HttpApi events but is not an HTTP function",
                    function.binary
                ),
            });
        }
        match consumer {
            Some(consumer) => {
                let consumer: Arc<dyn QueueConsumer> = Arc::new(consumer);
                for &queue in &function.queues {
                    if let Some(slot) = consumers.get_mut(queue) {
                        *slot = Some(Arc::clone(&consumer));
                    }
                }
            }
            None if !function.queues.is_empty() => {
                return Err(LocalError::Unsupported {
                    path: topology.path.clone(),
                    at: format!("{}.Properties.Events", function.logical_id),
                    problem: format!(
                        "{} has SQS events but is not a queue consumer",
                        function.binary
                    ),
                });
            }
            None => {}
        }
        match relay {
            Some((relay, kind)) => {
                for &index in &function.streams {
                    let (Some(stream), Some(slot)) =
                        (topology.streams.get(index), streams.get_mut(index))
                    else {
                        continue;
                    };
                    let source = wiring.stream(&stream.table_name, kind);
                    *slot = Some(HostedStream {
                        relay: Arc::clone(&relay),
                        reader: StreamReader::new(source, stream.batch_size, stream.max_retries),
                    });
                }
            }
            None if !function.streams.is_empty() => {
                return Err(LocalError::Unsupported {
                    path: topology.path.clone(),
                    at: format!("{}.Properties.Events", function.logical_id),
                    problem: format!(
                        "{} has DynamoDB stream events but is not an outbox relay",
                        function.binary
                    ),
                });
            }
            None => {}
        }
        apis.push(api);
    }

    let memory = wiring.ddb.is_none().then_some(wiring.memory);
    Ok(Hosted {
        consumers,
        apis,
        streams,
        fulfillment: fulfillment_store,
        order_stores,
        memory,
    })
}
