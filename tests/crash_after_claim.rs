//! Issue #8, crash after claim: the real `fulfillment-events` binary (its `main.rs`, built as
//! `fulfillment-events-e2e`) runs as a child process under a minimal Lambda Runtime API, talks to
//! the moto stand-in through the fault proxy, and is killed with SIGKILL after it claimed an
//! `OrderCreated` and before it completed the claim: once while its PutEvents hangs (the event
//! never left), once while its completion hangs (the event left).
//!
//! The same SQS record, redelivered to a new process before the claim's
//! `in_progress_expiration`, is refused as in progress (a batch-item failure, nothing done);
//! redelivered after it, it is processed, and exactly one pick and one `OrderPicked` fact result,
//! which the orders projection applies once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faults::{Fault, FaultPlan, FaultProxy, Rule, Service};
use serde_json::{Value, json};
use support::runtime_api::{Answer, RuntimeApi};
use support::{
    BusRecord, ClientFigures, audit_queue, drain_url, fixture, send, settle, table_state, wire,
};
use testkit::{LocalStack, moto, template};

/// The claim's lifetime: the first invocation's deadline is this far away.
const CLAIM_FOR: Duration = Duration::from_secs(5);

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Starts the function binary as Lambda would: its template environment, the stand-in reached
/// through `endpoint`, the Runtime API at `runtime`.
fn start_function(stack: &LocalStack, endpoint: &str, runtime: &RuntimeApi, log: &str) -> Child {
    let log = std::fs::File::create(std::env::temp_dir().join(log)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_fulfillment-events-e2e"));
    command
        .envs(stack.function_env("FulfillmentEventsFunction").unwrap())
        .envs(moto().env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "fulfillment-events")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    command.spawn().unwrap()
}

fn sqs_batch(message_id: &str, body: &str) -> Value {
    json!({ "Records": [{
        "messageId": message_id,
        "receiptHandle": "rh",
        "body": body,
        "attributes": { "ApproximateReceiveCount": "1" },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:FulfillmentEventsQueue",
        "awsRegion": "us-east-1"
    }]})
}

async fn answer(runtime: &RuntimeApi, request_id: &str) -> Value {
    match tokio::time::timeout(Duration::from_secs(60), runtime.answer(request_id))
        .await
        .expect("the function answered within a minute")
    {
        Answer::Response(value) => value,
        Answer::Error(error) => panic!("the function failed: {error}"),
    }
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// Where the process is when it is killed.
#[derive(Debug, Clone, Copy)]
enum KilledWhile {
    /// Its PutEvents call hangs: the pick is stored, `OrderPicked` not published.
    Publishing,
    /// Its completion (UpdateItem on the idempotency table) hangs: `OrderPicked` is out.
    Completing,
}

async fn killed_after_claim(when: KilledWhile) {
    let direct = moto().sdk_config().await;
    let stack = LocalStack::provision(&direct, &template()).await.unwrap();
    let audit = audit_queue(&direct, &stack).await;
    let sqs = aws_sdk_sqs::Client::new(&direct);
    let ddb = aws_sdk_dynamodb::Client::new(&direct);
    let in_process = wire(&stack, &direct, &direct);
    let hang = match when {
        KilledWhile::Publishing => Rule::new("hang", Fault::Hang).operations(&["PutEvents"]),
        KilledWhile::Completing => Rule::new("hang", Fault::Hang)
            .service(Service::DynamoDb)
            .operations(&["UpdateItem"])
            .body_contains(stack.table("IdempotencyTable")),
    };
    let proxy = FaultProxy::start(moto().endpoint(), FaultPlan::seeded(1).rule(hang.limit(1)))
        .await
        .unwrap();

    // An order, and its OrderCreated as the fulfillment queue holds it.
    let post = fixture("http/post-order.json");
    let api = &in_process.orders_api;
    let created = send(&mut ClientFigures::default(), || api.handle(&post, None)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        in_process.relay().await.published,
        1,
        "OrderCreated relayed"
    );
    let bodies = stack.drain(&sqs, "FulfillmentEventsQueue").await.unwrap();
    assert_eq!(bodies.len(), 1);
    let batch = sqs_batch("msg-1", &bodies[0]);

    // First invocation: claims, then hangs in the chosen call, and is killed there.
    let runtime = RuntimeApi::start().await;
    let mut first = start_function(&stack, proxy.endpoint(), &runtime, "crash-first.log");
    let deadline = now_ms() + u64::try_from(CLAIM_FOR.as_millis()).unwrap();
    runtime.invoke(batch.clone(), deadline);
    tokio::time::timeout(Duration::from_secs(60), proxy.injected_at_least("hang", 1))
        .await
        .expect("the function reached the hanging call");
    first.kill().unwrap(); // SIGKILL: no destructor, no release, no answer.
    let status = first.wait().unwrap();
    let killed_at = Instant::now();
    assert!(!status.success(), "{status:?}");
    proxy.release_hung();
    println!("{when:?}: killed; proxy so far: {}", proxy.stats().text());

    // The claim it left: INPROGRESS until the invocation's deadline.
    let records = table_state(&ddb, stack.table("IdempotencyTable"), "id").await;
    let (id, claim) = records
        .iter()
        .find(|(id, _)| id.starts_with("fulfillment-events#fulfil#"))
        .expect("the killed process's claim");
    assert_eq!(claim["status"], "INPROGRESS", "{id}: {claim}");
    let expires_ms: u64 = claim["in_progress_expiration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Lambda's deadline, not the 60 s default: the remaining time went into the claim (read a
    // few milliseconds after the deadline was computed, hence the bound).
    assert!(
        (deadline..deadline + 1_000).contains(&expires_ms),
        "in_progress_expiration {expires_ms} for deadline {deadline}"
    );
    let mut bus = BusRecord::default();
    bus.add(&drain_url(&sqs, &audit).await);
    let picked_before = bus.copies_of("OrderPicked");
    match when {
        KilledWhile::Publishing => assert_eq!(picked_before, 0, "the event never left"),
        KilledWhile::Completing => assert_eq!(picked_before, 1, "the event left before the kill"),
    }

    // SQS redelivers to a new process before the claim expires: refused, nothing done.
    let runtime = RuntimeApi::start().await;
    let mut second = start_function(&stack, proxy.endpoint(), &runtime, "crash-second.log");
    proxy.reset_stats();
    assert!(
        now_ms() < expires_ms,
        "the redelivery must start before the claim expires (the machine stalled for {} ms)",
        CLAIM_FOR.as_millis()
    );
    let early = runtime.invoke(batch.clone(), now_ms() + 2_000);
    let early = answer(&runtime, &early).await;
    let early_calls = proxy.stats();
    println!(
        "redelivered before expiry: {early} ({})",
        early_calls.text()
    );
    assert_eq!(failures(&early), ["msg-1"], "in progress: retried later");
    assert_eq!(
        early_calls.calls,
        BTreeMap::from([("dynamodb.PutItem".to_owned(), 1)]),
        "one refused claim, nothing else"
    );

    // After the expiry: processed, once.
    let wait = Duration::from_millis(expires_ms.saturating_sub(now_ms()) + 100);
    tokio::time::sleep(wait).await;
    let late = runtime.invoke(batch.clone(), now_ms() + 2_000);
    let late = answer(&runtime, &late).await;
    let recovered = killed_at.elapsed();
    assert_eq!(failures(&late), Vec::<String>::new(), "{late}");
    let late_calls = proxy.stats();
    println!(
        "redelivered after expiry: {late}; recovered {:.1} s after the kill ({})",
        recovered.as_secs_f64(),
        late_calls.text()
    );
    assert_eq!(late_calls.calls_to("events.PutEvents"), 1);

    // And once more (a duplicate): replayed.
    proxy.reset_stats();
    let dup = runtime.invoke(batch, now_ms() + 2_000);
    assert_eq!(
        failures(&answer(&runtime, &dup).await),
        Vec::<String>::new()
    );
    assert_eq!(
        proxy.stats().calls_to("events.PutEvents"),
        0,
        "a replay publishes nothing"
    );
    second.kill().unwrap();
    second.wait().unwrap();

    // One pick; one OrderPicked fact (twice on the bus when the first went out before the kill,
    // with the same data); the claim COMPLETED; the projection moves the order once.
    let fulfillment = table_state(&ddb, stack.table("FulfillmentTable"), "pk").await;
    assert_eq!(
        fulfillment
            .keys()
            .filter(|k| k.starts_with("PICK#"))
            .count(),
        1
    );
    let records = table_state(&ddb, stack.table("IdempotencyTable"), "id").await;
    assert_eq!(records[id]["status"], "COMPLETED");
    bus.add(&drain_url(&sqs, &audit).await);
    let picked: Vec<_> = bus
        .data
        .iter()
        .filter(|((kind, _), _)| kind == "OrderPicked")
        .collect();
    assert_eq!(picked.len(), 1, "one fact: {picked:?}");
    assert_eq!(picked[0].1.len(), 1, "its copies carry the same data");
    let copies = bus.copies_of("OrderPicked");
    let expected_copies = match when {
        KilledWhile::Publishing => 1,
        KilledWhile::Completing => 2,
    };
    assert_eq!(copies, expected_copies);

    let mut tally = BTreeMap::new();
    settle(&stack, &sqs, &in_process.consumers[1..2], &mut tally).await;
    let orders = &tally["OrdersEventsQueue"];
    println!("orders-events: {orders:?}");
    assert_eq!(orders.fresh, 1, "OrderPicked applied once: {orders:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_while_publishing_is_redone_once_after_its_claim_expires() {
    killed_after_claim(KilledWhile::Publishing).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_while_completing_is_redone_once_after_its_claim_expires() {
    killed_after_claim(KilledWhile::Completing).await;
}
