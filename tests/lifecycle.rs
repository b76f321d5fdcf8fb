//! End to end on the moto stand-in provisioned from `template.yaml`, through each function's real
//! wiring (`wire_api` / `wire_events` / `wire_outbox_relay`, the code the Lambda binaries run) with
//! the environment the template gives it: an order goes to Shipped via the outbox relays, the
//! template's rules and queues, a return goes to Returned, and every HTTP request and every SQS
//! batch is delivered twice with no second effect.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod support;

use std::collections::BTreeMap;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use eventing::Consumer;
use platform::config::Env;
use platform::http::{ApiRequest, ApiResponse};
use testkit::{LocalStack, moto, template};

fn env_of(stack: &LocalStack, function: &str) -> Env<impl Fn(&str) -> Option<String> + use<>> {
    let vars: BTreeMap<String, String> = stack.function_env(function).unwrap();
    Env::from_fn(move |name| vars.get(name).cloned())
}

fn fixture(name: &str) -> ApiRequest {
    let path = testkit::workspace_root().join("events").join(name);
    ApiRequest::from_apigw(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
        .unwrap()
}

fn json(response: &ApiResponse) -> serde_json::Value {
    serde_json::from_str(&response.body).unwrap()
}

/// Per consumer: records handled fresh and records replayed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    fresh: usize,
    replayed: usize,
}

struct Pipeline {
    stack: LocalStack,
    sqs: aws_sdk_sqs::Client,
    relays: support::Relays,
    consumers: Vec<(&'static str, Consumer)>,
    tallies: BTreeMap<&'static str, Tally>,
}

impl Pipeline {
    /// Relays the tables' new facts and drains every consumer queue into its consumer until
    /// all are empty; each batch is delivered twice, as SQS does when an acknowledgement is lost.
    async fn settle(&mut self) {
        loop {
            let pumped = self.relays.pump().await;
            assert_eq!(pumped.waiting, 0, "no relay fails here");
            let mut moved = pumped.published > 0;
            for (queue, consumer) in &self.consumers {
                let bodies = self.stack.drain(&self.sqs, queue).await.unwrap();
                if bodies.is_empty() {
                    continue;
                }
                moved = true;
                let mut batch = SqsEvent::default();
                for body in bodies {
                    let mut message = SqsMessage::default();
                    message.message_id = Some(uuid::Uuid::new_v4().to_string());
                    message.body = Some(body);
                    batch.records.push(message);
                }
                let n = batch.records.len();
                let first = consumer.process_sqs(batch.clone(), None).await;
                assert!(
                    first.failed_message_ids().is_empty(),
                    "{queue}: {:?}",
                    first.records
                );
                let again = consumer.process_sqs(batch, None).await;
                assert_eq!(
                    again.stats.replayed, n,
                    "{queue}: redelivery must replay: {:?}",
                    again.records
                );
                assert_eq!(
                    again.stats.events_published, 0,
                    "{queue}: a replay publishes nothing"
                );
                let tally = self.tallies.entry(queue).or_default();
                tally.fresh += first.stats.fresh;
                tally.replayed += again.stats.replayed;
            }
            if !moved {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_ships_and_is_returned_with_every_delivery_duplicated() {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();

    let orders_api = orders::wire_api(
        &orders::Config::from_env(&env_of(&stack, "OrdersApiFunction")).unwrap(),
        &config,
    );
    let support_api = ::support::wire_api(
        &::support::Config::from_env(&env_of(&stack, "SupportApiFunction")).unwrap(),
        &config,
    );
    let mut pipeline = Pipeline {
        sqs: aws_sdk_sqs::Client::new(&config),
        relays: support::Relays::new(&stack, &config, &config),
        consumers: vec![
            (
                "FulfillmentEventsQueue",
                fulfillment::wire_events(
                    &fulfillment::Config::from_env(&env_of(&stack, "FulfillmentEventsFunction"))
                        .unwrap(),
                    &config,
                ),
            ),
            (
                "OrdersEventsQueue",
                orders::wire_events(
                    &orders::Config::from_env(&env_of(&stack, "OrdersEventsFunction")).unwrap(),
                    &config,
                ),
            ),
            (
                "SupportEventsQueue",
                ::support::wire_events(
                    &::support::Config::from_env(&env_of(&stack, "SupportEventsFunction")).unwrap(),
                    &config,
                ),
            ),
        ],
        stack,
        tallies: BTreeMap::new(),
    };

    // POST /orders, twice.
    let post = fixture("http/post-order.json");
    let created = orders_api.handle(&post, None).await;
    let replayed = orders_api.handle(&post, None).await;
    assert_eq!(
        (created.status, replayed.status),
        (201, 201),
        "{}",
        created.body
    );
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(json(&created), json(&replayed));
    let order_id = json(&created)["order-id"].as_str().unwrap().to_owned();

    // OrderCreated -> fulfillment picks -> OrderPicked -> orders + fulfillment ships -> OrderShipped.
    pipeline.settle().await;
    let mut get = fixture("http/get-order.json");
    get.path = format!("/orders/{order_id}");
    let order = json(&orders_api.handle(&get, None).await);
    assert_eq!(order["status"], "Shipped", "{order}");

    // POST /returns, twice, for the shipped order; then the items arrive, twice.
    let mut post_return = fixture("http/post-return.json");
    let mut body: serde_json::Value = serde_json::from_slice(&post_return.body).unwrap();
    body["order-id"] = order_id.clone().into();
    post_return.body = serde_json::to_vec(&body).unwrap();
    let requested = support_api.handle(&post_return, None).await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    let again = support_api.handle(&post_return, None).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let return_id = json(&requested)["return-id"].as_str().unwrap().to_owned();

    let mut received = fixture("http/post-return-received.json");
    received.path = format!("/returns/{return_id}/received");
    let first = support_api.handle(&received, None).await;
    let second = support_api.handle(&received, None).await;
    assert_eq!((first.status, second.status), (200, 200), "{}", first.body);
    assert_eq!(json(&first)["status"], "Received");
    assert_eq!(second.header("idempotent-replayed"), Some("true"));

    pipeline.settle().await;
    let order = json(&orders_api.handle(&get, None).await);
    assert_eq!(order["status"], "Returned", "{order}");

    // One order, one pick, one shipment, one return: each consumer handled each fact once.
    let tally = |q| pipeline.tallies.get(q).copied().unwrap_or_default();
    assert_eq!(
        tally("FulfillmentEventsQueue"),
        Tally {
            fresh: 2,
            replayed: 2
        },
        "OrderCreated + OrderPicked"
    );
    assert_eq!(
        tally("OrdersEventsQueue"),
        Tally {
            fresh: 3,
            replayed: 3
        },
        "Picked + Shipped + ReturnReceived"
    );
    assert_eq!(
        tally("SupportEventsQueue"),
        Tally {
            fresh: 1,
            replayed: 1
        },
        "OrderShipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_return_for_an_order_support_has_not_seen_ship_is_409() {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();
    let support_api = ::support::wire_api(
        &::support::Config::from_env(&env_of(&stack, "SupportApiFunction")).unwrap(),
        &config,
    );
    let response = support_api
        .handle(&fixture("http/post-return.json"), None)
        .await;
    assert_eq!(response.status, 409, "{}", response.body);
    assert_eq!(json(&response)["error"]["type"], "OrderNotShipped");
}
