//! Aggregation of samples into the report's tables (Markdown), and the usage the cost model
//! prices.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::cost::{Prices, Usage, billed_gb_seconds};
use crate::harness::{Case, Sample};
use crate::scenarios::{InitRun, LoadRun};
use crate::stats::Summary;

/// The machine the figures come from: CPU model, cores, memory, kernel and load average (the
/// box is shared: a high load average explains a wide p90).
pub fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            let kib: f64 = l
                .strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib / 1_048_576.0)
        })
        .unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let load: Vec<String> = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .map(str::to_owned)
        .collect();
    format!(
        "{model}, {cores} cores, {memory_gib:.1} GiB, Linux {kernel}, {} ({}), load average {}",
        std::env::consts::ARCH,
        std::env::consts::OS,
        load.join(" ")
    )
}

/// A Markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        headers.iter().map(|_| " --- |").collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

fn f2(v: f64) -> String {
    format!("{v:.2}")
}

/// Init of one function over its runs.
#[derive(Debug, Clone, Serialize)]
pub struct InitSummary {
    /// The function.
    pub function: String,
    /// Exec to first poll.
    pub total: Summary,
    /// Median of each phase, in order.
    pub phases: Vec<(String, f64)>,
    /// Median RSS right after init, KiB.
    pub rss_kib: u64,
    /// Median CPU time of the main thread until the first poll, ms.
    pub cpu_ms: Option<f64>,
    /// Median run-queue wait of the main thread until the first poll, ms.
    pub wait_ms: Option<f64>,
}

/// Summarises `runs` of `function`; `None` without runs.
pub fn init_summary(function: &str, runs: &[InitRun]) -> Option<InitSummary> {
    let total = Summary::of(&runs.iter().map(|r| r.total_ms).collect::<Vec<_>>())?;
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        for (name, _) in &run.phases {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let phases = names
        .into_iter()
        .filter_map(|name| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.phases.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                .collect();
            Some((name, Summary::of(&values)?.median))
        })
        .collect();
    let mut rss: Vec<u64> = runs.iter().map(|r| r.rss_kib).collect();
    rss.sort_unstable();
    let median_of = |values: Vec<f64>| Summary::of(&values).map(|s| s.median);
    Some(InitSummary {
        function: function.to_owned(),
        total,
        phases,
        rss_kib: rss.get(rss.len() / 2).copied().unwrap_or_default(),
        cpu_ms: median_of(runs.iter().filter_map(|r| r.cpu_ms).collect()),
        wait_ms: median_of(runs.iter().filter_map(|r| r.wait_ms).collect()),
    })
}

/// The init table: one row per function.
pub fn init_table(summaries: &[InitSummary]) -> String {
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            let phases = s
                .phases
                .iter()
                .map(|(name, v)| format!("{name} {v:.2}"))
                .collect::<Vec<_>>()
                .join(" · ");
            let or_dash = |v: Option<f64>| v.map_or("-".to_owned(), f2);
            vec![
                s.function.clone(),
                s.total.n.to_string(),
                f2(s.total.median),
                format!("{} / {}", f2(s.total.min), f2(s.total.p90)),
                format!("{} / {}", or_dash(s.cpu_ms), or_dash(s.wait_ms)),
                phases,
                f1(s.rss_kib as f64 / 1024.0),
            ]
        })
        .collect();
    table(
        &[
            "function",
            "runs",
            "init ms (median)",
            "min / p90",
            "on CPU / waiting for a CPU, ms (median)",
            "median breakdown, ms",
            "RSS at first poll, MiB",
        ],
        &rows,
    )
}

/// AWS calls of one kind of invocation, per record (per invocation for PutEvents).
#[derive(Debug, Clone, Serialize)]
pub struct CallRow {
    /// The function.
    pub function: String,
    /// HTTP route or detail type.
    pub input: String,
    /// The scenario.
    pub case: Case,
    /// Records per invocation.
    pub batch: usize,
    /// Invocations measured.
    pub invocations: usize,
    /// Writes to the idempotency table per record.
    pub idempotency_writes: f64,
    /// Of which failed conditions, per record.
    pub failed_conditions: f64,
    /// Writes to domain tables per record.
    pub domain_writes: f64,
    /// Reads (any table) per record.
    pub reads: f64,
    /// PutEvents requests per invocation.
    pub put_events_calls: f64,
    /// PutEvents entries per invocation.
    pub put_events_entries: f64,
    /// Median duration, ms.
    pub median_ms: f64,
}

/// Groups samples by function, input, case and batch size.
pub fn call_rows(samples: &[Sample]) -> Vec<CallRow> {
    let mut groups: BTreeMap<(String, String, Case, usize), Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        groups
            .entry((s.function.clone(), s.input.clone(), s.case, s.records))
            .or_default()
            .push(s);
    }
    groups
        .into_iter()
        .map(|((function, input, case, batch), group)| {
            let records: f64 = group.iter().map(|s| s.records as f64).sum::<f64>().max(1.0);
            let invocations = group.len();
            let sum = |f: &dyn Fn(&Sample) -> u64| group.iter().map(|s| f(s) as f64).sum::<f64>();
            let is_idem = |s: &Sample| {
                s.calls
                    .by_key
                    .iter()
                    .filter(|(k, _)| {
                        k.service == "dynamodb"
                            && k.resource
                                .as_deref()
                                .is_some_and(|r| r.ends_with("IdempotencyTable"))
                    })
                    .map(|(k, _)| k.resource.clone())
                    .next()
                    .flatten()
            };
            let idem_table = group.iter().find_map(|s| is_idem(s));
            let idem = |s: &Sample| s.calls.dynamodb_writes(idem_table.as_deref());
            let idempotency_writes = if idem_table.is_some() {
                sum(&|s| idem(s).calls)
            } else {
                0.0
            };
            let failed = if idem_table.is_some() {
                sum(&|s| idem(s).failed_conditions)
            } else {
                0.0
            };
            let all_writes = sum(&|s| s.calls.dynamodb_writes(None).calls);
            let durations: Vec<f64> = group.iter().map(|s| s.duration_ms).collect();
            CallRow {
                function,
                input,
                case,
                batch,
                invocations,
                idempotency_writes: idempotency_writes / records,
                failed_conditions: failed / records,
                domain_writes: (all_writes - idempotency_writes) / records,
                reads: sum(&|s| s.calls.dynamodb_reads(None).calls) / records,
                put_events_calls: sum(&|s| s.calls.put_events().calls) / invocations as f64,
                put_events_entries: sum(&|s| s.calls.put_events().entries) / invocations as f64,
                median_ms: Summary::of(&durations).map_or(0.0, |s| s.median),
            }
        })
        .collect()
}

/// The calls table.
pub fn calls_table(rows: &[CallRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.function.clone(),
                r.input.clone(),
                r.case.label().to_owned(),
                r.batch.to_string(),
                r.invocations.to_string(),
                format!(
                    "{} ({} failed cond.)",
                    f2(r.idempotency_writes),
                    f2(r.failed_conditions)
                ),
                f2(r.domain_writes),
                f2(r.reads),
                format!("{} / {}", f2(r.put_events_calls), f2(r.put_events_entries)),
                f2(r.median_ms),
            ]
        })
        .collect();
    table(
        &[
            "function",
            "input",
            "case",
            "records/batch",
            "invocations",
            "idempotency writes/record",
            "domain writes/record",
            "reads/record",
            "PutEvents calls / entries per invocation",
            "median ms",
        ],
        &rows,
    )
}

/// Warm durations and resources of a load run, per function.
pub fn load_table(run: &LoadRun) -> String {
    let rows: Vec<Vec<String>> = run
        .environments
        .iter()
        .map(|(name, env)| {
            let durations: Vec<f64> = run
                .samples
                .iter()
                .filter(|s| &s.function == name)
                .map(|s| s.duration_ms)
                .collect();
            let summary = Summary::of(&durations);
            let events = env.events.max(1) as f64;
            vec![
                name.clone(),
                env.invocations.to_string(),
                env.events.to_string(),
                durations.first().map_or("-".into(), |d| f2(*d)),
                summary.map_or("-".into(), |s| f2(s.median)),
                summary.map_or("-".into(), |s| format!("{} / {}", f2(s.p90), f2(s.p99))),
                f1(env.peak_rss_kib as f64 / 1024.0),
                f2(env.cpu_ms / events),
                format!("{:.0}", env.log_bytes as f64 / events),
            ]
        })
        .collect();
    table(
        &[
            "function",
            "invocations",
            "events",
            "first invocation ms",
            "warm ms (median per invocation)",
            "p90 / p99",
            "peak RSS, MiB",
            "CPU ms/event",
            "log bytes/event",
        ],
        &rows,
    )
}

/// Which business flow an invocation belongs to, for the cost per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flow {
    /// `POST /orders` and the order events (`Order*`).
    Order,
    /// `POST /returns...` and the return events (`Return*`).
    Return,
}

/// The flow of a sample; reads (`GET`) belong to none.
pub fn flow_of(sample: &Sample) -> Option<Flow> {
    let input = sample.input.as_str();
    if input == "POST /orders" || input.starts_with("Order") {
        Some(Flow::Order)
    } else if input.starts_with("POST /returns") || input.starts_with("Return") {
        Some(Flow::Return)
    } else {
        None
    }
}

/// Usage of one unit of `flow` (one order, or one return) over a load run. Each SQS record
/// costs the send that put it on its queue; each batch costs the event source mapping's
/// receive and delete. Init is added for `cold_start_fraction` of the invocations, at the
/// median init of the function.
pub fn flow_usage(
    run: &LoadRun,
    flow: Flow,
    memory_mb: &BTreeMap<String, u32>,
    init_ms: &BTreeMap<String, f64>,
    prices: &Prices,
) -> Usage {
    let mut total = Usage::default();
    for sample in run.samples.iter().filter(|s| flow_of(s) == Some(flow)) {
        let memory = memory_mb.get(&sample.function).copied().unwrap_or(128);
        let init = init_ms.get(&sample.function).copied().unwrap_or_default();
        let (sqs, api) = if sample.is_http() {
            (0.0, 1.0)
        } else {
            (sample.records as f64 + 2.0, 0.0)
        };
        total.add(&Usage {
            lambda_requests: 1.0,
            lambda_gb_seconds: billed_gb_seconds(sample.duration_ms, memory)
                + prices.assumptions.cold_start_fraction * billed_gb_seconds(init, memory),
            dynamodb_write_units: sample.calls.dynamodb_writes(None).capacity_units as f64,
            dynamodb_read_units: sample.calls.dynamodb_reads(None).capacity_units as f64,
            eventbridge_events: sample.calls.put_events().entries as f64,
            sqs_requests: sqs,
            http_api_requests: api,
            log_bytes: sample.log_bytes as f64,
        });
    }
    total.scaled(1.0 / run.orders.max(1) as f64)
}

/// The cost table for one unit of each flow, per million units.
pub fn cost_table(per_unit: &[(Flow, Usage)], prices: &Prices) -> String {
    let mut names: Vec<String> = Vec::new();
    let costs: Vec<_> = per_unit
        .iter()
        .map(|(flow, usage)| (flow, usage, usage.scaled(1e6).cost(prices)))
        .collect();
    for (_, _, cost) in &costs {
        for (name, _) in &cost.lines {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let mut rows: Vec<Vec<String>> = names
        .iter()
        .map(|name| {
            let mut row = vec![name.clone()];
            for (_, _, cost) in &costs {
                let value = cost
                    .lines
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0.0, |(_, v)| *v);
                row.push(format!("${value:.2}"));
            }
            row
        })
        .collect();
    let mut total = vec!["**total**".to_owned()];
    total.extend(costs.iter().map(|(_, _, c)| format!("**${:.2}**", c.total)));
    rows.push(total);
    let mut headers = vec!["per million"];
    for (flow, _, _) in &costs {
        headers.push(match flow {
            Flow::Order => "orders",
            Flow::Return => "returns",
        });
    }
    table(&headers, &rows)
}

/// The usage behind the cost table, per unit.
pub fn usage_table(per_unit: &[(Flow, Usage)]) -> String {
    let rows: Vec<Vec<String>> = per_unit
        .iter()
        .map(|(flow, u)| {
            vec![
                format!("{flow:?}"),
                f2(u.lambda_requests),
                format!("{:.5}", u.lambda_gb_seconds),
                f2(u.dynamodb_write_units),
                f2(u.dynamodb_read_units),
                f2(u.eventbridge_events),
                f2(u.sqs_requests),
                f2(u.http_api_requests),
                format!("{:.0}", u.log_bytes),
            ]
        })
        .collect();
    table(
        &[
            "per unit",
            "Lambda invocations",
            "GB-s",
            "DynamoDB WRU",
            "DynamoDB RRU",
            "EventBridge events",
            "SQS requests",
            "HTTP API requests",
            "log bytes",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{CallCounts, CallKey, CallTally};

    fn sample(function: &str, input: &str, case: Case, records: usize, writes: u64) -> Sample {
        let mut calls = CallCounts::default();
        calls.record(
            CallKey {
                service: "dynamodb".into(),
                operation: "PutItem".into(),
                resource: Some("t1-IdempotencyTable".into()),
            },
            CallTally {
                calls: writes,
                capacity_units: writes,
                ..CallTally::default()
            },
        );
        Sample {
            function: function.into(),
            input: input.into(),
            case,
            records,
            duration_ms: 2.5,
            calls,
            log_bytes: 100,
        }
    }

    #[test]
    fn call_rows_are_per_record_and_grouped_by_case_and_batch() {
        let samples = vec![
            sample("f", "OrderCreated", Case::Fresh, 1, 2),
            sample("f", "OrderCreated", Case::Fresh, 1, 2),
            sample("f", "OrderCreated", Case::Fresh, 10, 20),
            sample("f", "OrderCreated", Case::CachedDuplicate, 1, 0),
        ];
        let rows = call_rows(&samples);
        assert_eq!(rows.len(), 3);
        let single = rows
            .iter()
            .find(|r| r.case == Case::Fresh && r.batch == 1)
            .unwrap();
        assert_eq!((single.invocations, single.idempotency_writes), (2, 2.0));
        let batch = rows.iter().find(|r| r.batch == 10).unwrap();
        assert_eq!(batch.idempotency_writes, 2.0);
        assert!(calls_table(&rows).contains("cached duplicate"));
    }

    #[test]
    fn flows_split_orders_from_returns_and_leave_out_reads() {
        let order = sample("orders-api", "POST /orders", Case::Fresh, 1, 2);
        assert_eq!(flow_of(&order), Some(Flow::Order));
        assert!(order.is_http());
        let picked = sample("orders-events", "OrderPicked", Case::Fresh, 10, 20);
        assert_eq!(flow_of(&picked), Some(Flow::Order));
        assert!(!picked.is_http());
        let received = sample(
            "support-api",
            "POST /returns/{id}/received",
            Case::Fresh,
            1,
            0,
        );
        assert_eq!(flow_of(&received), Some(Flow::Return));
        let read = sample("orders-api", "GET /orders/{id}", Case::Read, 1, 0);
        assert_eq!(flow_of(&read), None);
    }

    #[test]
    fn init_summary_takes_the_median_of_every_phase() {
        let run = |total: f64, load: f64| InitRun {
            total_ms: total,
            phases: vec![
                ("exec to main".into(), load),
                ("runtime to poll".into(), total - load),
            ],
            rss_kib: 4096,
            cpu_ms: Some(total / 2.0),
            wait_ms: None,
        };
        let summary = init_summary("f", &[run(10.0, 1.0), run(12.0, 3.0), run(11.0, 2.0)]).unwrap();
        assert_eq!(summary.total.median, 11.0);
        assert_eq!(summary.phases[0], ("exec to main".to_owned(), 2.0));
        assert_eq!(summary.rss_kib, 4096);
        assert_eq!(summary.cpu_ms, Some(5.5));
        assert!(init_table(&[summary]).contains("| f | 3 | 11.00 |"));
    }
}
