//! Issue #8: throttling, 5xx, lost responses, dropped connections, delays and failed PutEvents
//! entries on 20% of the DynamoDB and EventBridge calls, through full order lifecycles in which
//! every HTTP request is sent twice and every event is delivered twice (two concurrent copies).
//! The functions run their real wiring (`wire_api` / `wire_events`) with the product's SDK retry
//! and timeout policy, against the moto stand-in behind the fault proxy.
//!
//! The final state must be identical to a fault-free run of the same lifecycles: the same items
//! in every table (times aside), the same idempotency records, all COMPLETED (none stuck
//! INPROGRESS), and the same facts on the bus (none missing; copies of a fact carry the same
//! data). No message may need more receives than the queues' `maxReceiveCount`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faults::{Fault, FaultPlan, FaultProxy, FaultStats, Rule, Service, codes};
use platform::http::ApiRequest;
use serde_json::Value;
use support::{
    BusRecord, ClientFigures, Deliveries, REMAINING, TableState, as_customer, audit_queue,
    drain_url, fixture, idempotency_records, json, product_sdk, send, settle_all, table_state,
    wire,
};
use testkit::{LocalStack, moto, template};

/// Orders taken through the lifecycle; the first `RETURNED` of them are returned.
const ORDERS: usize = 3;
const RETURNED: usize = 2;

/// 20% of DynamoDB calls and 20% of PutEvents calls broken, spread over every kind of fault.
fn twenty_percent(seed: u64) -> FaultPlan {
    let ddb = |name: &str, fault: Fault, share: f64| {
        Rule::new(format!("dynamodb-{name}"), fault)
            .service(Service::DynamoDb)
            .share(share)
    };
    let events = |name: &str, fault: Fault, share: f64| {
        Rule::new(format!("events-{name}"), fault)
            .service(Service::EventBridge)
            .operations(&["PutEvents"])
            .share(share)
    };
    FaultPlan::seeded(seed)
        .rule(ddb("throughput", Fault::throttle(), 0.05))
        .rule(ddb(
            "throttling",
            Fault::throttle_with(codes::THROTTLING),
            0.03,
        ))
        .rule(ddb("500", Fault::server_error(500), 0.03))
        .rule(ddb("503", Fault::server_error(503), 0.02))
        .rule(ddb("lost-response", Fault::lose_response(500), 0.03))
        .rule(ddb(
            "drop",
            Fault::Drop {
                after_forward: false,
            },
            0.015,
        ))
        .rule(ddb(
            "drop-after-forward",
            Fault::Drop {
                after_forward: true,
            },
            0.015,
        ))
        .rule(ddb("delay", Fault::Delay(Duration::from_millis(150)), 0.01))
        .rule(events("throttling", Fault::throttle(), 0.05))
        .rule(events("503", Fault::server_error(503), 0.03))
        .rule(events("lost-response", Fault::lose_response(500), 0.03))
        .rule(events(
            "drop",
            Fault::Drop {
                after_forward: false,
            },
            0.015,
        ))
        .rule(events(
            "drop-after-forward",
            Fault::Drop {
                after_forward: true,
            },
            0.015,
        ))
        .rule(events(
            "delay",
            Fault::Delay(Duration::from_millis(150)),
            0.01,
        ))
        .rule(events(
            "failed-entries",
            Fault::FailEntries {
                share: 1.0,
                code: codes::THROTTLING.to_owned(),
            },
            0.05,
        ))
}

/// Everything a run leaves behind, and what it took.
struct Run {
    tables: BTreeMap<&'static str, TableState>,
    idempotency: BTreeMap<String, String>,
    bus: BusRecord,
    tally: BTreeMap<&'static str, Deliveries>,
    client: ClientFigures,
    proxy: FaultStats,
    elapsed: Duration,
}

fn with_key(mut request: ApiRequest, key: &str) -> ApiRequest {
    request.headers.insert("idempotency-key".into(), key.into());
    request
}

/// `ORDERS` orders to Shipped, `RETURNED` of them to Returned, every request sent twice.
async fn lifecycle(plan: FaultPlan) -> Run {
    let direct = moto().sdk_config().await;
    let stack = LocalStack::provision(&direct, &template()).await.unwrap();
    let audit = audit_queue(&direct, &stack).await;
    let proxy = FaultProxy::start(moto().endpoint(), plan).await.unwrap();
    let functions = wire(&stack, &direct, &product_sdk(proxy.endpoint()).await);
    let sqs = aws_sdk_sqs::Client::new(&direct);
    let ddb = aws_sdk_dynamodb::Client::new(&direct);
    let mut client = ClientFigures::default();
    let mut tally = BTreeMap::new();
    let started = Instant::now();

    let mut order_ids = Vec::new();
    for n in 0..ORDERS {
        let customer = format!("C-{n}");
        let mut post = as_customer(
            with_key(fixture("http/post-order.json"), &format!("order-key-{n}")),
            &customer,
        );
        let mut body: Value = serde_json::from_slice(&post.body).unwrap();
        body["customer-id"] = customer.into();
        post.body = serde_json::to_vec(&body).unwrap();
        let api = &functions.orders_api;
        let first = send(&mut client, || api.handle(&post, Some(REMAINING))).await;
        let second = send(&mut client, || api.handle(&post, Some(REMAINING))).await;
        assert_eq!((first.status, second.status), (201, 201), "{}", first.body);
        assert_eq!(second.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            json(&first),
            json(&second),
            "a replay answers the same order"
        );
        order_ids.push(json(&first)["order-id"].as_str().unwrap().to_owned());
    }

    settle_all(&stack, &sqs, &functions, &mut tally).await;
    for (n, order_id) in order_ids.iter().enumerate() {
        let mut get = as_customer(fixture("http/get-order.json"), &format!("C-{n}"));
        get.path = format!("/orders/{order_id}");
        let api = &functions.orders_api;
        let order = json(&send(&mut client, || api.handle(&get, Some(REMAINING))).await);
        assert_eq!(order["status"], "Shipped", "{order}");
    }

    for (n, order_id) in order_ids.iter().take(RETURNED).enumerate() {
        let mut post = as_customer(
            with_key(fixture("http/post-return.json"), &format!("return-key-{n}")),
            &format!("C-{n}"),
        );
        let mut body: Value = serde_json::from_slice(&post.body).unwrap();
        body["order-id"] = order_id.clone().into();
        post.body = serde_json::to_vec(&body).unwrap();
        let api = &functions.support_api;
        let first = send(&mut client, || api.handle(&post, Some(REMAINING))).await;
        let second = send(&mut client, || api.handle(&post, Some(REMAINING))).await;
        assert_eq!((first.status, second.status), (201, 201), "{}", first.body);
        assert_eq!(second.header("idempotent-replayed"), Some("true"));
        let return_id = json(&first)["return-id"].as_str().unwrap().to_owned();

        let mut received = fixture("http/post-return-received.json");
        received.path = format!("/returns/{return_id}/received");
        let first = send(&mut client, || api.handle(&received, Some(REMAINING))).await;
        let second = send(&mut client, || api.handle(&received, Some(REMAINING))).await;
        assert_eq!((first.status, second.status), (200, 200), "{}", first.body);
        assert_eq!(json(&second)["status"], "Received");
        assert_eq!(second.header("idempotent-replayed"), Some("true"));
    }

    settle_all(&stack, &sqs, &functions, &mut tally).await;
    for (n, order_id) in order_ids.iter().enumerate() {
        let mut get = as_customer(fixture("http/get-order.json"), &format!("C-{n}"));
        get.path = format!("/orders/{order_id}");
        let api = &functions.orders_api;
        let order = json(&send(&mut client, || api.handle(&get, Some(REMAINING))).await);
        let expected = if n < RETURNED { "Returned" } else { "Shipped" };
        assert_eq!(order["status"], expected, "{order}");
    }
    let elapsed = started.elapsed();

    let mut tables = BTreeMap::new();
    for logical in ["OrdersTable", "FulfillmentTable", "SupportTable"] {
        tables.insert(logical, table_state(&ddb, stack.table(logical), "pk").await);
    }
    let mut bus = BusRecord::default();
    bus.add(&drain_url(&sqs, &audit).await);
    Run {
        tables,
        idempotency: idempotency_records(&ddb, &stack).await,
        bus,
        tally,
        client,
        proxy: proxy.stats(),
        elapsed,
    }
}

fn report(label: &str, run: &Run) {
    println!("--- {label}: {:.1} s", run.elapsed.as_secs_f64());
    println!("proxy: {}", run.proxy.text());
    println!("client: {:?}", run.client);
    for (queue, d) in &run.tally {
        println!("{queue}: {d:?}");
    }
    println!(
        "bus: {} distinct facts, {} copies; idempotency records: {}",
        run.bus.distinct().len(),
        run.bus.copies(),
        run.idempotency.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_percent_faults_leave_the_same_final_state_as_a_fault_free_run() {
    let seed = support::seed(8);
    let (clean, faulty) = tokio::join!(
        lifecycle(FaultPlan::none()),
        lifecycle(twenty_percent(seed))
    );
    println!("seed {seed}");
    report("fault-free", &clean);
    report("20% faults", &faulty);

    // The faults really happened, at about the share asked for.
    let injected = faulty.proxy.total_injected();
    let calls = faulty.proxy.calls_to_service("dynamodb") + faulty.proxy.calls_to_service("events");
    assert!(injected > 0 && clean.proxy.total_injected() == 0);
    let share = injected as f64 / calls as f64;
    assert!(
        (0.1..0.3).contains(&share),
        "{injected} faults in {calls} calls"
    );

    // Same state everywhere, times aside.
    for (table, state) in &clean.tables {
        assert!(!state.is_empty(), "{table} is empty");
        assert_eq!(faulty.tables.get(table), Some(state), "{table} differs");
    }
    assert_eq!(
        faulty.idempotency, clean.idempotency,
        "idempotency records differ"
    );
    let stuck: Vec<_> = faulty
        .idempotency
        .iter()
        .filter(|(_, status)| status.as_str() != "COMPLETED")
        .collect();
    assert!(
        stuck.is_empty(),
        "records not COMPLETED at the end: {stuck:?}"
    );

    // Every fact of the fault-free run is on the bus, none other; copies are the same fact.
    assert_eq!(
        faulty.bus.distinct(),
        clean.bus.distinct(),
        "facts on the bus differ"
    );
    let expected_facts = ORDERS * 3 + RETURNED * 2; // created, picked, shipped; requested, received
    assert_eq!(clean.bus.distinct().len(), expected_facts);
    for (fact, data) in &faulty.bus.data {
        assert_eq!(
            data.len(),
            1,
            "copies of {fact:?} carry different data: {data:?}"
        );
    }
}
