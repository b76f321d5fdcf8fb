//! Throughput: events routed and handled per second with in-memory stores.
//!
//! Each run seeds `orders` orders in the orders store with their `OrderCreated` fact, as
//! `orders-api` stores them (not timed), then times until every table stream and queue is
//! empty. Each order makes 3 events (`OrderCreated`, relayed from the orders table's stream,
//! `OrderPicked`, `OrderShipped`) and 5 deliveries (fulfillment x2, orders x2, support x1), each
//! through the real consumer: parse, idempotency claim and complete, the domain handler,
//! publishing.

use std::time::{Duration, Instant};

use contracts::{Detail, IdempotencyKey, Metadata};
use eventing::OutgoingEvent;
use orders::domain::{CreateOrder, Order};
use sam_template::Template;
use serde::Serialize;

use crate::LocalError;
use crate::runner::{Runner, RunnerOptions};

/// One timed run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenchRun {
    /// Orders pushed through.
    pub orders: usize,
    /// Events put on the bus.
    pub events: usize,
    /// Deliveries handled (fresh).
    pub deliveries: usize,
    /// Deliveries that failed (should be 0).
    pub failed: usize,
    /// Wall time from the first put to empty queues.
    pub elapsed: Duration,
    /// CPU time the process used meanwhile, all threads (Linux only): divided by `elapsed`, how
    /// many cores the run kept busy.
    pub cpu: Option<Duration>,
}

impl BenchRun {
    /// Deliveries (events routed to and handled by one consumer) per second.
    pub fn deliveries_per_sec(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Events published and routed per second.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Every run and their medians.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The runs, in order.
    pub runs: Vec<BenchRun>,
    /// Median deliveries per second.
    pub median_deliveries_per_sec: f64,
    /// Median events per second.
    pub median_events_per_sec: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl BenchReport {
    /// Collects runs.
    pub fn new(runs: Vec<BenchRun>) -> Self {
        Self {
            median_deliveries_per_sec: median(
                runs.iter().map(BenchRun::deliveries_per_sec).collect(),
            ),
            median_events_per_sec: median(runs.iter().map(BenchRun::events_per_sec).collect()),
            runs,
        }
    }

    /// The readable form.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.runs.iter().enumerate() {
            let cores = r.cpu.map_or_else(String::new, |cpu| {
                format!(
                    ", {:.2} cores busy, {:.0} deliveries per CPU-second",
                    cpu.as_secs_f64() / r.elapsed.as_secs_f64().max(f64::EPSILON),
                    r.deliveries as f64 / cpu.as_secs_f64().max(f64::EPSILON)
                )
            });
            out.push_str(&format!(
                "run {}: {} orders, {} events, {} deliveries ({} failed) in {:.3} s: {:.0} deliveries/s, {:.0} events/s{cores}\n",
                i + 1,
                r.orders,
                r.events,
                r.deliveries,
                r.failed,
                r.elapsed.as_secs_f64(),
                r.deliveries_per_sec(),
                r.events_per_sec()
            ));
        }
        out.push_str(&format!(
            "median: {:.0} events routed and handled per second ({:.0} events published and routed per second)\n",
            self.median_deliveries_per_sec, self.median_events_per_sec
        ));
        out
    }
}

fn invalid(problem: impl Into<String>) -> LocalError {
    LocalError::InvalidOption {
        option: "bench",
        problem: problem.into(),
    }
}

/// Builds the runner with `orders` orders stored with their `OrderCreated` facts, waiting in
/// the orders table's stream.
pub async fn prepare(template: &Template, orders: usize) -> Result<Runner, LocalError> {
    let runner = Runner::new(template, RunnerOptions::in_memory())?;
    let table = runner
        .topology()
        .functions
        .iter()
        .find(|f| f.binary == "orders-events")
        .and_then(|f| f.environment.get("ORDERS_TABLE").cloned())
        .ok_or_else(|| invalid("the template has no orders-events function with ORDERS_TABLE"))?;
    let store = runner
        .order_store(&table)
        .ok_or_else(|| invalid(format!("no order store for table {table}")))?;
    let body: CreateOrder = serde_json::from_value(serde_json::json!({
        "customer-id": "C-bench",
        "currency": "USD",
        "items": [{ "sku": "SKU-RED-MUG", "quantity": 2, "unit-price": "12.50" }]
    }))
    .map_err(|e| invalid(e.to_string()))?;
    let now = chrono::Utc::now();
    for i in 0..orders {
        let key = IdempotencyKey::new(format!("bench-{i}")).map_err(|e| invalid(e.to_string()))?;
        let order =
            Order::create(body.clone(), key.as_str(), now).map_err(|e| invalid(e.to_string()))?;
        let detail = Detail::new(
            Metadata::first(
                IdempotencyKey::for_order(&order.customer_id, &key),
                order.order_id.clone(),
                now,
            ),
            order.created_event(),
        );
        let created = OutgoingEvent::new(&detail).map_err(|e| invalid(e.to_string()))?;
        store
            .insert(&order, &created)
            .await
            .map_err(|e| invalid(e.to_string()))?;
    }
    Ok(runner)
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux only).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, hence the last parenthesis):
    // utime and stime are the 12th and 13th, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// One timed run of `orders` orders.
pub async fn run_once(template: &Template, orders: usize) -> Result<BenchRun, LocalError> {
    let runner = prepare(template, orders).await?;
    let cpu_before = process_cpu_time();
    let start = Instant::now();
    runner.settle().await?;
    let elapsed = start.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let summary = runner.summary();
    Ok(BenchRun {
        orders,
        events: summary.events_published,
        deliveries: summary.deliveries.fresh,
        failed: summary.deliveries.failed + summary.deliveries.in_progress,
        elapsed,
        cpu,
    })
}

/// `repeat` runs of `orders` orders each.
pub async fn run(
    template: &Template,
    orders: usize,
    repeat: usize,
) -> Result<BenchReport, LocalError> {
    if orders == 0 || repeat == 0 {
        return Err(LocalError::InvalidOption {
            option: "--orders/--repeat",
            problem: "must be at least 1".into(),
        });
    }
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        runs.push(run_once(template, orders).await?);
    }
    Ok(BenchReport::new(runs))
}
