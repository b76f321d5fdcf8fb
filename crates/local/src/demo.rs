//! The demo: a full order lifecycle and a return through the HTTP APIs and the bus, and the
//! proof that duplicates change nothing: the final state of a run with duplicates equals the
//! final state of the same run without them.

use std::collections::BTreeMap;
use std::time::Duration;

use platform::http::{ApiRequest, ApiResponse};
use serde::Serialize;
use serde_json::{Value, json};

use crate::LocalError;
use crate::flow::Summary;
use crate::hosting::StoreCounts;
use crate::runner::{Runner, response_outcome};

/// Attempts per request while the answer is "in progress" (a client retrying a 409).
const IN_PROGRESS_ATTEMPTS: usize = 20;

/// What the demo ends with, without anything that legitimately differs between runs (times).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinalState {
    /// The order as `GET /orders/{id}` answers it.
    pub order: Value,
    /// Its shipment, as the fulfillment store holds it.
    pub shipment: Option<Value>,
    /// The return as `GET /returns/{id}` answers it.
    #[serde(rename = "return")]
    pub return_: Value,
    /// Effects that ran: fresh deliveries per consuming function, fresh writes over HTTP.
    pub effects: BTreeMap<String, usize>,
    /// Messages dead-lettered.
    pub dead_letters: usize,
    /// Entities in the stores (in-memory runs only).
    pub store_counts: Option<StoreCounts>,
}

impl FinalState {
    /// Equal, ignoring store counts unless both runs have them (a DynamoDB run shares its
    /// tables with earlier runs, so only the entities of this run are compared).
    pub fn same_as(&self, other: &Self) -> bool {
        let counts_agree = match (&self.store_counts, &other.store_counts) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        counts_agree
            && self.order == other.order
            && self.shipment == other.shipment
            && self.return_ == other.return_
            && self.effects == other.effects
            && self.dead_letters == other.dead_letters
    }

    /// One readable line.
    pub fn text(&self) -> String {
        let s = |v: &Value, f: &str| v[f].as_str().unwrap_or("?").to_owned();
        let shipment = self.shipment.as_ref().map_or_else(
            || "no shipment".to_owned(),
            |sh| format!("shipment {} by {}", s(sh, "shipment-id"), s(sh, "carrier")),
        );
        let counts = self.store_counts.map_or_else(String::new, |c| {
            format!(
                "; stores hold {} order(s), {} pick(s), {} shipment(s), {} return(s)",
                c.orders, c.picks, c.shipments, c.returns
            )
        });
        format!(
            "order {} {} ({} {}), {shipment}, return {} {}{counts}; {} dead-lettered",
            s(&self.order, "order-id"),
            s(&self.order, "status"),
            s(&self.order, "currency"),
            s(&self.order, "total"),
            s(&self.return_, "return-id"),
            s(&self.return_, "status"),
            self.dead_letters,
        )
    }
}

/// One run of the demo.
#[derive(Debug, Clone, Serialize)]
pub struct DemoRun {
    /// Where it ended.
    pub final_state: FinalState,
    /// What happened on the way.
    pub summary: Summary,
}

/// The demo's result: the run asked for and the same run without duplicates.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// `--duplicates`.
    pub duplicates: f64,
    /// `--seed`.
    pub seed: u64,
    /// The run with duplicates.
    pub run: DemoRun,
    /// The reference run: in-memory stores, no duplicates, same keys.
    pub baseline: DemoRun,
    /// Whether both ended in the same state.
    pub same_final_state: bool,
}

impl DemoReport {
    /// The readable conclusion, several lines.
    pub fn text(&self) -> String {
        let line = |label: &str, s: &Summary| {
            format!(
                "{label}: deliveries fresh {} / replayed {} / in-progress {} / failed {}; \
                 HTTP writes fresh {} / replayed {} / in-progress {}; {} duplicates injected\n",
                s.deliveries.fresh,
                s.deliveries.replayed,
                s.deliveries.in_progress,
                s.deliveries.failed,
                s.requests.fresh,
                s.requests.replayed,
                s.requests.in_progress,
                s.duplicates_injected
            )
        };
        let mut out = String::new();
        out.push_str(&format!("Final state: {}\n", self.run.final_state.text()));
        out.push_str(&line(
            &format!("With duplicates {}", self.duplicates),
            &self.run.summary,
        ));
        out.push_str(&line("Without duplicates", &self.baseline.summary));
        out.push_str(if self.same_final_state {
            "The final state is the same as without duplicates.\n"
        } else {
            "The final state DIFFERS from the run without duplicates.\n"
        });
        out
    }
}

/// A request as a client sends it, with its bearer token.
fn request(
    token: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> ApiRequest {
    let mut headers = BTreeMap::from([
        ("content-type".to_owned(), "application/json".to_owned()),
        ("authorization".to_owned(), format!("Bearer {token}")),
    ]);
    if let Some(key) = key {
        headers.insert("idempotency-key".to_owned(), key.to_owned());
    }
    ApiRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        request_id: Some(uuid::Uuid::new_v4().to_string()),
        identity: None,
    }
}

/// Sends a request, retrying while it is in progress, and checks the status.
async fn call(
    runner: &Runner,
    step: &str,
    request: &ApiRequest,
    expect: u16,
) -> Result<Value, LocalError> {
    let mut response = runner.request(request).await;
    for _ in 1..IN_PROGRESS_ATTEMPTS {
        if response_outcome(&request.method, &response) != "in_progress" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        response = runner.request(request).await;
    }
    check(step, &response, expect)
}

fn check(step: &str, response: &ApiResponse, expect: u16) -> Result<Value, LocalError> {
    let failed = || LocalError::DemoStep {
        step: step.to_owned(),
        status: response.status,
        body: response.body.clone(),
    };
    if response.status != expect {
        return Err(failed());
    }
    serde_json::from_str(&response.body).map_err(|_| failed())
}

fn field(step: &str, value: &Value, name: &str) -> Result<String, LocalError> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| LocalError::DemoStep {
            step: step.to_owned(),
            status: 200,
            body: format!("no `{name}` in {value}"),
        })
}

fn expect_status(step: &str, value: &Value, want: &str) -> Result<(), LocalError> {
    if value["status"] == want {
        Ok(())
    } else {
        Err(LocalError::DemoStep {
            step: step.to_owned(),
            status: 200,
            body: format!("expected status {want}, got {value}"),
        })
    }
}

fn without(mut value: Value, fields: &[&str]) -> Value {
    if let Some(object) = value.as_object_mut() {
        for f in fields {
            object.remove(*f);
        }
    }
    value
}

/// The demo's customer (the `sub` of its token, and the order's customer).
pub const CUSTOMER: &str = "C-42";

/// Plays the lifecycle on `runner`; `nonce` makes the client keys unique (and so the ids).
/// POST /orders, the order ships through fulfillment, POST /returns, the items arrive, the
/// order ends Returned. The customer calls with a token of their own, the warehouse's system
/// marks the return received with its own (both minted by the runner).
pub async fn play(runner: &Runner, nonce: &str) -> Result<FinalState, LocalError> {
    let customer = runner.customer_token(CUSTOMER)?;
    let warehouse = runner.warehouse_token()?;
    let order_key = format!("demo-{nonce}-order");
    let return_key = format!("demo-{nonce}-return");
    let order_body = json!({
        "customer-id": CUSTOMER,
        "currency": "EUR",
        "items": [
            { "sku": "SKU-RED-MUG", "quantity": 2, "unit-price": "12.50" },
            { "sku": "SKU-TEAPOT", "quantity": 1, "unit-price": "212.51" }
        ]
    });

    let created = call(
        runner,
        "POST /orders",
        &request(
            &customer,
            "POST",
            "/orders",
            Some(&order_key),
            Some(&order_body),
        ),
        201,
    )
    .await?;
    let order_id = field("POST /orders", &created, "order-id")?;
    runner.settle().await?;

    let order_path = format!("/orders/{order_id}");
    let order = call(
        runner,
        "GET /orders/{id}",
        &request(&customer, "GET", &order_path, None, None),
        200,
    )
    .await?;
    expect_status("GET /orders/{id} after fulfillment", &order, "Shipped")?;

    let return_body = json!({
        "order-id": order_id,
        "reason": "damaged in transit",
        "items": [{ "sku": "SKU-RED-MUG", "quantity": 1 }]
    });
    let requested = call(
        runner,
        "POST /returns",
        &request(
            &customer,
            "POST",
            "/returns",
            Some(&return_key),
            Some(&return_body),
        ),
        201,
    )
    .await?;
    let return_id = field("POST /returns", &requested, "return-id")?;
    runner.settle().await?;

    let received_path = format!("/returns/{return_id}/received");
    call(
        runner,
        "POST /returns/{id}/received",
        &request(&warehouse, "POST", &received_path, None, None),
        200,
    )
    .await?;
    runner.settle().await?;

    let order = call(
        runner,
        "GET /orders/{id}",
        &request(&customer, "GET", &order_path, None, None),
        200,
    )
    .await?;
    expect_status("GET /orders/{id} after the return", &order, "Returned")?;
    let ret = call(
        runner,
        "GET /returns/{id}",
        &request(
            &customer,
            "GET",
            &format!("/returns/{return_id}"),
            None,
            None,
        ),
        200,
    )
    .await?;
    expect_status("GET /returns/{id}", &ret, "Received")?;

    let shipment = runner
        .shipment(&order_id)
        .await
        .and_then(|s| serde_json::to_value(s).ok())
        .map(|s| without(s, &["shipped-at"]));
    let summary = runner.summary();
    let mut effects: BTreeMap<String, usize> = summary
        .targets
        .iter()
        .map(|(target, stats)| (target.clone(), stats.outcomes.fresh))
        .collect();
    effects.insert("http writes".to_owned(), summary.requests.fresh);
    Ok(FinalState {
        order: without(order, &["created-at", "updated-at"]),
        shipment,
        return_: without(ret, &["requested-at", "received-at"]),
        effects,
        dead_letters: summary.dead_letters.len(),
        store_counts: runner.store_counts(),
    })
}

/// Compares a run with a reference run.
pub fn report(
    duplicates: f64,
    seed: u64,
    run: (FinalState, Summary),
    baseline: (FinalState, Summary),
) -> DemoReport {
    let same_final_state = run.0.same_as(&baseline.0);
    DemoReport {
        duplicates,
        seed,
        run: DemoRun {
            final_state: run.0,
            summary: run.1,
        },
        baseline: DemoRun {
            final_state: baseline.0,
            summary: baseline.1,
        },
        same_final_state,
    }
}

/// Plays the demo on `runner`, and on a fresh in-memory runner of the same template without
/// duplicates (the reference), with the same keys; reports whether both end the same.
pub async fn run(
    template: &sam_template::Template,
    runner: &Runner,
    duplicates: f64,
    seed: u64,
    nonce: &str,
) -> Result<DemoReport, LocalError> {
    let reference = Runner::new(
        template,
        crate::RunnerOptions {
            stack_name: runner.topology().stack.name.clone(),
            ..crate::RunnerOptions::in_memory()
        },
    )?;
    let baseline = play(&reference, nonce).await?;
    let state = play(runner, nonce).await?;
    Ok(report(
        duplicates,
        seed,
        (state, runner.summary()),
        (baseline, reference.summary()),
    ))
}
