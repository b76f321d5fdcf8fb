//! The edges a real client walks, end to end on the moto stand-in provisioned from
//! `template.yaml`, through each function's real wiring and the template's own rules: keys chosen
//! by strangers, clients that never retry, requests racing for the last unit, a create re-run
//! after the order moved on. Every delivery is doubled (two concurrent copies of each message),
//! and a message that would be dead-lettered fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod support;

use std::collections::BTreeMap;

use faults::{Fault, FaultPlan, FaultProxy, Rule, Service};
use platform::http::{ApiRequest, ApiResponse};
use serde_json::{Value, json};
use support::{
    BusRecord, REMAINING, as_customer, audit_queue, drain_url, fixture, product_sdk, wire,
};
use testkit::{LocalStack, moto, template};

/// The stack, its functions wired through a fault proxy, and an audit of the bus.
struct World {
    stack: LocalStack,
    proxy: FaultProxy,
    functions: support::Functions,
    sqs: aws_sdk_sqs::Client,
    audit: String,
    bus: BusRecord,
}

impl World {
    async fn new() -> Self {
        let direct = moto().sdk_config().await;
        let stack = LocalStack::provision(&direct, &template()).await.unwrap();
        let audit = audit_queue(&direct, &stack).await;
        let proxy = FaultProxy::start(moto().endpoint(), FaultPlan::none())
            .await
            .unwrap();
        let functions = wire(&stack, &direct, &product_sdk(proxy.endpoint()).await);
        Self {
            stack,
            proxy,
            functions,
            sqs: aws_sdk_sqs::Client::new(&direct),
            audit,
            bus: BusRecord::default(),
        }
    }

    /// Delivers everything there is to deliver (outbox streams and queues), each message twice.
    async fn settle(&mut self) {
        support::settle_all(
            &self.stack,
            &self.sqs,
            &self.functions,
            &mut BTreeMap::new(),
        )
        .await;
        let bodies = drain_url(&self.sqs, &self.audit).await;
        self.bus.add(&bodies);
    }

    async fn post_order(&self, customer: &str, key: &str, mugs: u32) -> ApiResponse {
        let mut post = as_customer(fixture("http/post-order.json"), customer);
        post.headers.insert("idempotency-key".into(), key.into());
        post.body = serde_json::to_vec(&json!({
            "currency": "USD",
            "items": [{ "sku": "MUG", "quantity": mugs, "unit-price": "12.50" }],
        }))
        .unwrap();
        self.functions
            .orders_api
            .handle(&post, Some(REMAINING))
            .await
    }

    async fn order_status(&self, customer: &str, order_id: &str) -> String {
        let mut get = as_customer(fixture("http/get-order.json"), customer);
        get.path = format!("/orders/{order_id}");
        let response = self
            .functions
            .orders_api
            .handle(&get, Some(REMAINING))
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
        body(&response)["status"].as_str().unwrap().to_owned()
    }

    fn return_request(customer: &str, order_id: &str, key: &str, mugs: u32) -> ApiRequest {
        let mut post = as_customer(fixture("http/post-return.json"), customer);
        post.headers.insert("idempotency-key".into(), key.into());
        post.body = serde_json::to_vec(&json!({
            "order-id": order_id,
            "reason": "chipped",
            "items": [{ "sku": "MUG", "quantity": mugs }],
        }))
        .unwrap();
        post
    }

    async fn request_return(
        &self,
        customer: &str,
        order_id: &str,
        key: &str,
        mugs: u32,
    ) -> ApiResponse {
        let post = Self::return_request(customer, order_id, key, mugs);
        self.functions
            .support_api
            .handle(&post, Some(REMAINING))
            .await
    }

    async fn receive_return(&self, return_id: &str) -> ApiResponse {
        let mut post = fixture("http/post-return-received.json");
        post.path = format!("/returns/{return_id}/received");
        self.functions
            .support_api
            .handle(&post, Some(REMAINING))
            .await
    }

    /// A shipped order of `mugs` mugs for `customer`.
    async fn shipped_order(&mut self, customer: &str, key: &str, mugs: u32) -> String {
        let created = self.post_order(customer, key, mugs).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let order_id = body(&created)["order-id"].as_str().unwrap().to_owned();
        self.settle().await;
        assert_eq!(self.order_status(customer, &order_id).await, "Shipped");
        order_id
    }
}

fn body(response: &ApiResponse) -> Value {
    serde_json::from_str(&response.body).unwrap()
}

/// Every PutEvents call fails, as in an EventBridge outage.
fn bus_outage() -> FaultPlan {
    FaultPlan::seeded(1).rule(
        Rule::new("eventbridge-outage", Fault::server_error(503))
            .service(Service::EventBridge)
            .operations(&["PutEvents"]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_customers_sharing_a_key_both_ship() {
    let mut world = World::new().await;
    let first = world.post_order("C-1", "shared-key-1", 1).await;
    let second = world.post_order("C-2", "shared-key-1", 2).await;
    assert_eq!((first.status, second.status), (201, 201), "{}", second.body);
    let (a, b) = (body(&first), body(&second));
    assert_ne!(a["order-id"], b["order-id"]);

    world.settle().await;
    for order in [&a, &b] {
        let id = order["order-id"].as_str().unwrap();
        let customer = order["customer-id"].as_str().unwrap();
        assert_eq!(
            world.order_status(customer, id).await,
            "Shipped",
            "order {id}"
        );
    }
    // Two facts, not one fact with two bodies.
    assert_eq!(world.bus.copies_of("OrderCreated"), 2, "{:?}", world.bus);
    assert_eq!(world.bus.distinct().len(), 6, "{:?}", world.bus);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_for_two_orders_returns_brings_both_to_returned() {
    let mut world = World::new().await;
    let first = world.shipped_order("C-1", "order-a", 1).await;
    let second = world.shipped_order("C-1", "order-b", 1).await;
    let mut returns = Vec::new();
    for order in [&first, &second] {
        let requested = world.request_return("C-1", order, "return-key-1", 1).await;
        assert_eq!(requested.status, 201, "{}", requested.body);
        returns.push(body(&requested)["return-id"].as_str().unwrap().to_owned());
    }
    assert_ne!(returns[0], returns[1]);
    for return_id in &returns {
        let received = world.receive_return(return_id).await;
        assert_eq!(received.status, 200, "{}", received.body);
    }
    world.settle().await;
    assert_eq!(world.order_status("C-1", &first).await, "Returned");
    assert_eq!(world.order_status("C-1", &second).await, "Returned");
    assert_eq!(world.bus.copies_of("ReturnReceived"), 2, "{:?}", world.bus);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_taken_during_a_bus_outage_ships_without_a_client_retry() {
    let mut world = World::new().await;
    world.proxy.set_plan(bus_outage());
    let created = world.post_order("C-1", "outage-1", 1).await;
    // The order is durable: the client is told so, and never retries.
    assert_eq!(created.status, 201, "{}", created.body);
    let order_id = body(&created)["order-id"].as_str().unwrap().to_owned();
    world.settle().await;
    assert_eq!(
        world.order_status("C-1", &order_id).await,
        "Open",
        "nothing moves while the bus is down"
    );

    world.proxy.set_plan(FaultPlan::none());
    world.settle().await;
    assert_eq!(world.order_status("C-1", &order_id).await, "Shipped");
    assert_eq!(world.bus.copies_of("OrderCreated"), 1, "{:?}", world.bus);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_during_a_bus_outage_returns_the_order_without_a_retry() {
    let mut world = World::new().await;
    let order_id = world.shipped_order("C-1", "order-1", 1).await;
    let requested = world.request_return("C-1", &order_id, "return-1", 1).await;
    let return_id = body(&requested)["return-id"].as_str().unwrap().to_owned();

    world.proxy.set_plan(bus_outage());
    let received = world.receive_return(&return_id).await;
    assert_eq!(received.status, 200, "{}", received.body);
    assert_eq!(body(&received)["status"], "Received");
    world.settle().await;
    assert_eq!(world.order_status("C-1", &order_id).await, "Shipped");

    world.proxy.set_plan(FaultPlan::none());
    world.settle().await;
    assert_eq!(world.order_status("C-1", &order_id).await, "Returned");
}

#[tokio::test(flavor = "multi_thread")]
async fn three_returns_of_one_mug_on_an_order_of_two_refuse_the_third() {
    let mut world = World::new().await;
    let order_id = world.shipped_order("C-1", "order-1", 2).await;
    let first = world.request_return("C-1", &order_id, "r-1", 1).await;
    let second = world.request_return("C-1", &order_id, "r-2", 1).await;
    let third = world.request_return("C-1", &order_id, "r-3", 1).await;
    assert_eq!((first.status, second.status), (201, 201), "{}", second.body);
    assert_eq!(third.status, 409, "{}", third.body);
    let error = &body(&third)["error"];
    assert_eq!(error["type"], "ReturnExceedsShipped", "{error}");
    assert_eq!(error["sku"], "MUG", "{error}");
    assert_eq!(error["returnable"], 0, "{error}");

    // A refusal is not a fact; a retry of an accepted request is not a second one.
    let again = world.request_return("C-1", &order_id, "r-1", 1).await;
    assert_eq!(again.status, 201, "{}", again.body);
    world.settle().await;
    assert_eq!(world.bus.copies_of("ReturnRequested"), 2, "{:?}", world.bus);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_requests_for_the_last_unit_one_wins() {
    let mut world = World::new().await;
    let order_id = world.shipped_order("C-1", "order-1", 2).await;
    let first = world.request_return("C-1", &order_id, "r-1", 1).await;
    assert_eq!(first.status, 201, "{}", first.body);

    let (a, b) = (
        World::return_request("C-1", &order_id, "r-2", 1),
        World::return_request("C-1", &order_id, "r-3", 1),
    );
    let api = &world.functions.support_api;
    let (a, b) = tokio::join!(
        api.handle(&a, Some(REMAINING)),
        api.handle(&b, Some(REMAINING))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let refused = if a.status == 409 { &a } else { &b };
    assert_eq!(body(refused)["error"]["returnable"], 0, "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_rerun_after_the_order_moved_on_republishes_the_same_fact() {
    let mut world = World::new().await;
    // The create's completion is lost: its claim stays in progress until it expires.
    world.proxy.set_plan(
        FaultPlan::seeded(2).rule(
            Rule::new("lost-completion", Fault::server_error(500))
                .service(Service::DynamoDb)
                .operations(&["UpdateItem"])
                .body_contains("COMPLETED")
                .limit(u64::from(platform::init::SDK_MAX_ATTEMPTS)),
        ),
    );
    let created = world.post_order("C-1", "rerun-1", 1).await;
    assert_eq!(created.status, 503, "{}", created.body);
    world.proxy.set_plan(FaultPlan::none());
    world.settle().await;

    // The order moved on while the client was away; its retry re-runs the create.
    let order_id = orders::domain::Order::id_for("C-1", "rerun-1");
    assert_eq!(world.order_status("C-1", &order_id).await, "Shipped");
    tokio::time::sleep(REMAINING).await;
    let retried = world.post_order("C-1", "rerun-1", 1).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(body(&retried)["order-id"], order_id.as_str());
    world.settle().await;

    // Every copy of OrderCreated carries the same data: the order as it was created, Open.
    let created_facts: Vec<_> = world
        .bus
        .data
        .iter()
        .filter(|((kind, _), _)| kind == "OrderCreated")
        .collect();
    assert_eq!(created_facts.len(), 1, "{created_facts:?}");
    let (_, copies) = created_facts[0];
    assert_eq!(copies.len(), 1, "copies differ: {copies:?}");
    let data: Value = serde_json::from_str(copies.iter().next().unwrap()).unwrap();
    assert_eq!(data["status"], "Open");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_stored_answer_was_written_by_last_months_version_is_not_wedged() {
    let mut world = World::new().await;
    let created = world.post_order("C-1", "old-record-1", 1).await;
    assert_eq!(created.status, 201, "{}", created.body);
    // The idempotency record of that create, as an earlier version wrote it: its result under
    // another attribute name.
    let ddb = aws_sdk_dynamodb::Client::new(&moto().sdk_config().await);
    let table = world.stack.table("IdempotencyTable");
    let items = ddb
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let record = items
        .iter()
        .find(|item| item["id"].as_s().unwrap().contains("create-order"))
        .unwrap();
    ddb.update_item()
        .table_name(table)
        .key("id", record["id"].clone())
        .update_expression("SET #old = #data REMOVE #data")
        .expression_attribute_names("#old", "result")
        .expression_attribute_names("#data", "data")
        .send()
        .await
        .unwrap();

    // A retry is answered from the order it made, not told to retry for an hour.
    let retried = world.post_order("C-1", "old-record-1", 1).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(body(&retried), body(&created));
    world.settle().await;
    assert_eq!(world.bus.copies_of("OrderCreated"), 1, "{:?}", world.bus);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_hangs_past_the_deadline_gets_a_typed_503_in_time() {
    let world = World::new().await;
    world.proxy.set_plan(
        FaultPlan::seeded(3).rule(
            Rule::new("hang", Fault::Hang)
                .service(Service::DynamoDb)
                .operations(&["PutItem"])
                .body_contains(world.stack.table("OrdersTable")),
        ),
    );
    // The invocation has 2 s; the SDK alone would wait 5 s per call (and Lambda would kill it).
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        world.post_order("C-1", "hang-1", 1),
    )
    .await
    .expect("the API answers before its invocation ends");
    world.proxy.release_hung();
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(body(&answer)["error"]["type"], "DeadlineExceeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_customer_can_neither_read_nor_return_my_order_and_only_staff_receive() {
    let mut world = World::new().await;
    let order_id = world.shipped_order("C-1", "mine-1", 2).await;
    let mut get = as_customer(fixture("http/get-order.json"), "C-2");
    get.path = format!("/orders/{order_id}");
    let read = world
        .functions
        .orders_api
        .handle(&get, Some(REMAINING))
        .await;
    assert_eq!(read.status, 404, "no existence leak: {}", read.body);

    // A stranger who knows the order id and the key the owner will use: not a return of theirs.
    let stolen = world.request_return("C-2", &order_id, "r-1", 1).await;
    assert_eq!(stolen.status, 409, "{}", stolen.body);
    assert_eq!(body(&stolen)["error"]["type"], "OrderNotShipped");
    let mine = world.request_return("C-1", &order_id, "r-1", 1).await;
    assert_eq!(
        mine.status, 201,
        "the owner's claim is their own: {}",
        mine.body
    );
    assert_eq!(mine.header("idempotent-replayed"), None);
    let return_id = body(&mine)["return-id"].as_str().unwrap().to_owned();

    let mut get = as_customer(fixture("http/get-return.json"), "C-2");
    get.path = format!("/returns/{return_id}");
    let api = &world.functions.support_api;
    assert_eq!(api.handle(&get, Some(REMAINING)).await.status, 404);
    let mut own = as_customer(fixture("http/get-return.json"), "C-1");
    own.path = format!("/returns/{return_id}");
    assert_eq!(api.handle(&own, Some(REMAINING)).await.status, 200);

    // The customer cannot mark their own return received; nobody can without claims.
    let mut receipt = as_customer(fixture("http/post-return-received.json"), "C-1");
    receipt.path = format!("/returns/{return_id}/received");
    let refused = api.handle(&receipt, Some(REMAINING)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    receipt.identity = None;
    assert_eq!(api.handle(&receipt, Some(REMAINING)).await.status, 401);
    world.settle().await;
    assert_eq!(world.order_status("C-1", &order_id).await, "Shipped");
    assert_eq!(world.bus.copies_of("ReturnReceived"), 0, "{:?}", world.bus);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_naming_another_customer_in_its_body_is_refused() {
    let world = World::new().await;
    let mut post = as_customer(fixture("http/post-order.json"), "C-1");
    let mut order: Value = serde_json::from_slice(&post.body).unwrap();
    order["customer-id"] = "C-2".into();
    post.body = serde_json::to_vec(&order).unwrap();
    let refused = world
        .functions
        .orders_api
        .handle(&post, Some(REMAINING))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(body(&refused)["error"]["type"], "CustomerMismatch");
    post.identity = None;
    let anonymous = world
        .functions
        .orders_api
        .handle(&post, Some(REMAINING))
        .await;
    assert_eq!(
        anonymous.status, 401,
        "never an anonymous customer: {}",
        anonymous.body
    );
}
