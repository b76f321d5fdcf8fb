//! The measurements, each a scenario over the real binaries on the stand-in:
//!
//! - [`init_runs`]: cold starts, exec to first `/next` poll, with the function's own breakdown.
//! - [`lifecycle`]: whole orders (and a return each) one record per invocation, every delivery
//!   repeated in the warm environment (cached duplicate), then every record again in new
//!   environments (duplicate): the AWS calls per event type and case.
//! - [`batches`]: orders whose events reach the consumers in SQS batches of `size` records (the
//!   PutEvents calls per batch).
//! - [`load`]: many orders through long-lived environments in batches: warm durations, peak
//!   RSS, CPU and log volume per function, and the usage the cost model prices.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::BenchError;
use crate::events;
use crate::function::{Launch, Running};
use crate::harness::{Case, Harness, Sample};

/// One cold start.
#[derive(Debug, Clone, Serialize)]
pub struct InitRun {
    /// Exec to first `/next` poll, ms.
    pub total_ms: f64,
    /// `(phase, ms)` in order, summing to `total_ms`: `exec to main` (binary load, dynamic
    /// linking, Rust and tokio runtime start), the function's own phases when it logs them
    /// (`tracing`, `config`, `sdk_config`, `clients`, `warm_up`), and `runtime to poll`
    /// (lambda_runtime's start up to its first request).
    pub phases: Vec<(String, f64)>,
    /// Resident set size right after the first poll, KiB.
    pub rss_kib: u64,
    /// The main thread's time on a CPU until the first poll, ms (when the kernel reports it).
    pub cpu_ms: Option<f64>,
    /// The main thread's time waiting for a CPU until the first poll, ms.
    pub wait_ms: Option<f64>,
}

/// Phases a function logs in its init line, in order (see `platform::init`).
pub const LOGGED_PHASES: [&str; 5] = ["tracing", "config", "sdk_config", "clients", "warm_up"];

/// `runs` cold starts of `launch` (after one unrecorded start that warms the page cache).
pub async fn init_runs(launch: &Launch, runs: usize) -> Result<Vec<InitRun>, BenchError> {
    let mut results = Vec::with_capacity(runs);
    for run in 0..=runs {
        let running = Running::start(launch, Duration::from_secs(20)).await?;
        let total_ms = ms(running.init_duration());
        let rss_kib = running.rss_kib().unwrap_or_default();
        let schedule = running.init_schedule();
        let report = running.init_report().await;
        let phases = breakdown(report.as_ref(), running.spawned_epoch_us(), total_ms);
        running.stop().await;
        if run > 0 {
            results.push(InitRun {
                total_ms,
                phases,
                rss_kib,
                cpu_ms: schedule.map(|s| ms(s.on_cpu)),
                wait_ms: schedule.map(|s| ms(s.waiting)),
            });
        }
    }
    Ok(results)
}

/// Splits an init into phases using the function's init line (when it logs one).
pub fn breakdown(
    report: Option<&Value>,
    spawned_epoch_us: u128,
    total_ms: f64,
) -> Vec<(String, f64)> {
    let Some(fields) = report.and_then(|r| r.get("fields")) else {
        return vec![("total (no init line)".to_owned(), total_ms)];
    };
    let micros = |name: &str| fields.get(name).and_then(Value::as_u64);
    let mut phases = Vec::new();
    let mut accounted = 0.0;
    if let Some(started) = micros("started_at_us") {
        let exec_to_main = (u128::from(started).saturating_sub(spawned_epoch_us)) as f64 / 1000.0;
        phases.push(("exec to main".to_owned(), exec_to_main));
        accounted += exec_to_main;
    }
    for phase in LOGGED_PHASES {
        if let Some(us) = micros(&format!("{phase}_us")) {
            let value = us as f64 / 1000.0;
            phases.push((phase.to_owned(), value));
            accounted += value;
        }
    }
    phases.push((
        "runtime to poll".to_owned(),
        (total_ms - accounted).max(0.0),
    ));
    phases
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Starts one environment of every function.
pub async fn start_all(h: &Harness) -> Result<BTreeMap<String, Running>, BenchError> {
    let mut running = BTreeMap::new();
    for name in h.sites().keys() {
        running.insert(name.clone(), h.start(name).await?);
    }
    Ok(running)
}

/// Stops every environment.
pub async fn stop_all(running: BTreeMap<String, Running>) {
    for (_, r) in running {
        r.stop().await;
    }
}

fn get<'a>(running: &'a BTreeMap<String, Running>, name: &str) -> Result<&'a Running, BenchError> {
    running
        .get(name)
        .ok_or_else(|| BenchError::input("template.yaml", format!("no function {name}")))
}

fn expect_status(
    function: &str,
    input: &str,
    status: u16,
    expected: u16,
    body: &Value,
) -> Result<(), BenchError> {
    if status == expected {
        Ok(())
    } else {
        Err(BenchError::UnexpectedAnswer {
            function: function.to_owned(),
            input: input.to_owned(),
            answer: format!("status {status} (expected {expected}): {body}"),
        })
    }
}

fn field(function: &str, input: &str, body: &Value, name: &str) -> Result<String, BenchError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BenchError::UnexpectedAnswer {
            function: function.to_owned(),
            input: input.to_owned(),
            answer: format!("no {name} in {body}"),
        })
}

/// The body of `events/http/post-order.json`: what every bench order asks for.
fn order_body(h: &Harness) -> Result<String, BenchError> {
    let path = h.root().join("events/http/post-order.json");
    let fixture = events::load(&path)?;
    fixture["body"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::input(path.display().to_string(), "no body"))
}

fn return_body(order_id: &str) -> String {
    json!({
        "order-id": order_id,
        "reason": "damaged in transit",
        "items": [{"sku": "SKU-RED-MUG", "quantity": 1}]
    })
    .to_string()
}

fn fresh_key(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// `POST /orders` with a fresh key: the sample and the order id.
async fn create_order(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    body: &str,
    key: &str,
    case: Case,
) -> Result<(Sample, String), BenchError> {
    let api = get(running, "orders-api")?;
    let (sample, status, json) = h
        .http(
            api,
            case,
            "POST",
            "/orders",
            "POST /orders",
            Some(key),
            Some(body),
        )
        .await?;
    expect_status("orders-api", "POST /orders", status, 201, &json)?;
    let id = field("orders-api", "POST /orders", &json, "order-id")?;
    Ok((sample, id))
}

/// `POST /returns` for a shipped order: the sample and the return id.
async fn request_return(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    order_id: &str,
    key: &str,
    case: Case,
) -> Result<(Sample, String), BenchError> {
    let api = get(running, "support-api")?;
    let body = return_body(order_id);
    let (sample, status, json) = h
        .http(
            api,
            case,
            "POST",
            "/returns",
            "POST /returns",
            Some(key),
            Some(&body),
        )
        .await?;
    expect_status("support-api", "POST /returns", status, 201, &json)?;
    let id = field("support-api", "POST /returns", &json, "return-id")?;
    Ok((sample, id))
}

async fn receive_return(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    return_id: &str,
    case: Case,
) -> Result<Sample, BenchError> {
    let api = get(running, "support-api")?;
    let route = "POST /returns/{id}/received";
    let path = format!("/returns/{return_id}/received");
    let (sample, status, json) = h.http(api, case, "POST", &path, route, None, None).await?;
    expect_status("support-api", route, status, 200, &json)?;
    Ok(sample)
}

/// Delivers every waiting message one record per invocation (then once more to the same warm
/// environment when `repeat`), until the queues are empty. Returns what was delivered.
async fn settle_one_by_one(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    samples: &mut Vec<Sample>,
    repeat: bool,
) -> Result<Vec<(String, String)>, BenchError> {
    let mut delivered = Vec::new();
    loop {
        let messages = h.drain().await?;
        if messages.is_empty() {
            return Ok(delivered);
        }
        for (queue, body) in messages {
            let consumer = get(running, h.consumer_of(&queue)?)?;
            let one = std::slice::from_ref(&body);
            samples.push(h.deliver(consumer, &queue, Case::Fresh, one).await?);
            if repeat {
                samples.push(
                    h.deliver(consumer, &queue, Case::CachedDuplicate, one)
                        .await?,
                );
            }
            delivered.push((queue, body));
        }
    }
}

/// Delivers every waiting message in batches of at most `size` records of one detail type,
/// until the queues are empty.
async fn settle_in_batches(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    size: usize,
    samples: &mut Vec<Sample>,
) -> Result<(), BenchError> {
    loop {
        let messages = h.drain().await?;
        if messages.is_empty() {
            return Ok(());
        }
        let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (queue, body) in messages {
            groups
                .entry((queue, events::detail_type(&body)))
                .or_default()
                .push(body);
        }
        for ((queue, _), bodies) in groups {
            let consumer = get(running, h.consumer_of(&queue)?)?;
            for chunk in bodies.chunks(size.max(1)) {
                samples.push(h.deliver(consumer, &queue, Case::Fresh, chunk).await?);
            }
        }
    }
}

/// The first two requests of new `orders-api` environments, `runs` times: `POST /orders` with
/// fresh keys, so both do the same calls (claim, order, publish, complete). The first pays what
/// init left for later (connections, the SDK's lazy state); the second is warm.
pub async fn first_requests(h: &Harness, runs: usize) -> Result<Vec<(f64, f64)>, BenchError> {
    let body = order_body(h)?;
    let mut pairs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut running = BTreeMap::new();
        running.insert("orders-api".to_owned(), h.start("orders-api").await?);
        let first = create_order(h, &running, &body, &fresh_key("first"), Case::Fresh).await;
        let second = create_order(h, &running, &body, &fresh_key("second"), Case::Fresh).await;
        stop_all(running).await;
        pairs.push((first?.0.duration_ms, second?.0.duration_ms));
    }
    // The orders' events are not consumed here: drop them so later scenarios start clean.
    h.drain().await?;
    Ok(pairs)
}

/// `orders` whole lifecycles, one record per invocation, with every kind of repeat.
pub async fn lifecycle(h: &Harness, orders: usize) -> Result<Vec<Sample>, BenchError> {
    let running = start_all(h).await?;
    let result = lifecycle_in(h, &running, orders).await;
    stop_all(running).await;
    let (mut samples, delivered) = result?;

    // Every record again, in new environments: a duplicate without the local cache.
    let running = start_all(h).await?;
    let mut again = Vec::new();
    for (queue, body) in &delivered {
        let consumer = match get(&running, h.consumer_of(queue)?) {
            Ok(c) => c,
            Err(e) => {
                stop_all(running).await;
                return Err(e);
            }
        };
        match h
            .deliver(consumer, queue, Case::Duplicate, std::slice::from_ref(body))
            .await
        {
            Ok(sample) => again.push(sample),
            Err(e) => {
                stop_all(running).await;
                return Err(e);
            }
        }
    }
    stop_all(running).await;
    samples.extend(again);
    Ok(samples)
}

async fn lifecycle_in(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    orders: usize,
) -> Result<(Vec<Sample>, Vec<(String, String)>), BenchError> {
    let body = order_body(h)?;
    let mut samples = Vec::new();
    let mut delivered = Vec::new();
    for _ in 0..orders {
        let key = fresh_key("bench-order");
        let (sample, order_id) = create_order(h, running, &body, &key, Case::Fresh).await?;
        samples.push(sample);
        let (sample, again) = create_order(h, running, &body, &key, Case::Duplicate).await?;
        samples.push(sample);
        if again != order_id {
            return Err(BenchError::UnexpectedAnswer {
                function: "orders-api".to_owned(),
                input: "POST /orders (repeat)".to_owned(),
                answer: format!("order {again}, first answer was {order_id}"),
            });
        }
        let path = format!("/orders/{order_id}");
        let api = get(running, "orders-api")?;
        let (sample, status, json) = h
            .http(
                api,
                Case::Read,
                "GET",
                &path,
                "GET /orders/{id}",
                None,
                None,
            )
            .await?;
        expect_status("orders-api", "GET /orders/{id}", status, 200, &json)?;
        samples.push(sample);
        delivered.extend(settle_one_by_one(h, running, &mut samples, true).await?);

        let key = fresh_key("bench-return");
        let (sample, return_id) = request_return(h, running, &order_id, &key, Case::Fresh).await?;
        samples.push(sample);
        let (sample, _) = request_return(h, running, &order_id, &key, Case::Duplicate).await?;
        samples.push(sample);
        samples.push(receive_return(h, running, &return_id, Case::Fresh).await?);
        samples.push(receive_return(h, running, &return_id, Case::Duplicate).await?);
        let support = get(running, "support-api")?;
        let path = format!("/returns/{return_id}");
        let (sample, status, json) = h
            .http(
                support,
                Case::Read,
                "GET",
                &path,
                "GET /returns/{id}",
                None,
                None,
            )
            .await?;
        expect_status("support-api", "GET /returns/{id}", status, 200, &json)?;
        samples.push(sample);
        delivered.extend(settle_one_by_one(h, running, &mut samples, true).await?);
    }
    Ok((samples, delivered))
}

/// `size` orders created, then their events delivered in batches of `size`.
pub async fn batches(h: &Harness, size: usize) -> Result<Vec<Sample>, BenchError> {
    let running = start_all(h).await?;
    let result = batches_in(h, &running, size).await;
    stop_all(running).await;
    result
}

async fn batches_in(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    size: usize,
) -> Result<Vec<Sample>, BenchError> {
    let body = order_body(h)?;
    for _ in 0..size {
        create_order(h, running, &body, &fresh_key("bench-batch"), Case::Fresh).await?;
    }
    let mut samples = Vec::new();
    settle_in_batches(h, running, size, &mut samples).await?;
    Ok(samples)
}

/// What one long-lived environment used over a load run.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentUse {
    /// Its init, ms.
    pub init_ms: f64,
    /// RSS right after init, KiB.
    pub rss_after_init_kib: u64,
    /// Peak RSS over the run (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// CPU time (user + system) over the run, ms (10 ms resolution).
    pub cpu_ms: f64,
    /// Log bytes and lines written.
    pub log_bytes: u64,
    /// Log lines written.
    pub log_lines: u64,
    /// Invocations served.
    pub invocations: usize,
    /// Events (HTTP requests or SQS records) served.
    pub events: usize,
}

/// A load run's results.
#[derive(Debug, Clone)]
pub struct LoadRun {
    /// Orders created (each with one return).
    pub orders: usize,
    /// SQS batch size used.
    pub batch: usize,
    /// Every invocation.
    pub samples: Vec<Sample>,
    /// Per function.
    pub environments: BTreeMap<String, EnvironmentUse>,
}

/// `orders` orders, each followed by a return, through one environment per function, in
/// rounds of `batch` orders whose events are delivered in batches of up to `batch` records.
pub async fn load(h: &Harness, orders: usize, batch: usize) -> Result<LoadRun, BenchError> {
    let running = start_all(h).await?;
    let mut init = BTreeMap::new();
    for (name, r) in &running {
        init.insert(
            name.clone(),
            (ms(r.init_duration()), r.rss_kib().unwrap_or_default()),
        );
    }
    let mut samples = Vec::new();
    let result = load_in(h, &running, orders, batch, &mut samples).await;
    let mut environments = BTreeMap::new();
    if result.is_ok() {
        for (name, r) in &running {
            let served: Vec<&Sample> = samples.iter().filter(|s| &s.function == name).collect();
            let (log_bytes, log_lines) = r.log_volume();
            let (init_ms, rss_after_init_kib) = init.get(name).copied().unwrap_or_default();
            environments.insert(
                name.clone(),
                EnvironmentUse {
                    init_ms,
                    rss_after_init_kib,
                    peak_rss_kib: r.peak_rss_kib()?,
                    cpu_ms: ms(r.cpu_time()?),
                    log_bytes,
                    log_lines,
                    invocations: served.len(),
                    events: served.iter().map(|s| s.records).sum(),
                },
            );
        }
    }
    stop_all(running).await;
    result?;
    Ok(LoadRun {
        orders,
        batch,
        samples,
        environments,
    })
}

async fn load_in(
    h: &Harness,
    running: &BTreeMap<String, Running>,
    orders: usize,
    batch: usize,
    samples: &mut Vec<Sample>,
) -> Result<(), BenchError> {
    let body = order_body(h)?;
    let batch = batch.max(1);
    let mut done = 0;
    while done < orders {
        let round = batch.min(orders - done);
        let mut order_ids = Vec::with_capacity(round);
        for _ in 0..round {
            let (sample, id) =
                create_order(h, running, &body, &fresh_key("load-order"), Case::Fresh).await?;
            samples.push(sample);
            order_ids.push(id);
        }
        settle_in_batches(h, running, batch, samples).await?;
        let mut return_ids = Vec::with_capacity(round);
        for order_id in &order_ids {
            let (sample, id) =
                request_return(h, running, order_id, &fresh_key("load-return"), Case::Fresh)
                    .await?;
            samples.push(sample);
            return_ids.push(id);
        }
        for return_id in &return_ids {
            samples.push(receive_return(h, running, return_id, Case::Fresh).await?);
        }
        settle_in_batches(h, running, batch, samples).await?;
        done += round;
        if done % 100 < batch {
            eprintln!("  load: {done}/{orders} orders");
        }
    }
    Ok(())
}
