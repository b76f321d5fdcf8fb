//! `lambda-bench`: runs the release binaries of `template.yaml`'s functions under the Runtime
//! API emulator against the moto stand-in and prints the figures (Markdown tables).
//!
//! `scripts/bench` builds the binaries and runs `lambda-bench all`; see `docs/performance.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use lambda_bench::BenchError;
use lambda_bench::cost::Prices;
use lambda_bench::function::Launch;
use lambda_bench::harness::Harness;
use lambda_bench::report::{self, Flow};
use lambda_bench::scenarios;
use lambda_bench::stats::Summary;

#[derive(Parser)]
#[command(about = "Lambda init, warm duration, memory, AWS calls and cost of the real binaries")]
struct Cli {
    /// The workspace root (template.yaml, events/, docs/prices.yaml).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))]
    root: PathBuf,
    /// Where the release binaries are (default: <root>/target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Extra environment for every function, KEY=VALUE (what-if measurements).
    #[arg(long = "env", value_parser = parse_pair)]
    extra_env: Vec<(String, String)>,
    /// Only these functions (default: every function of the template).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Copy every environment's output (its log lines) into this directory.
    #[arg(long)]
    keep_logs: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cold starts: exec to first /next poll, median of runs, with the breakdown.
    Init {
        /// Recorded cold starts per function (after one unrecorded).
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// AWS calls per event type: fresh, duplicate, cached duplicate; and SQS batches.
    Calls {
        /// Whole order lifecycles (each with a return).
        #[arg(long, default_value_t = 3)]
        orders: usize,
        /// Records per SQS batch in the batch scenario.
        #[arg(long, default_value_t = 10)]
        batch: usize,
    },
    /// A load run: warm durations, peak RSS, CPU, logs, and the cost per million orders.
    Load {
        /// Orders (each with a return).
        #[arg(long, default_value_t = 1000)]
        orders: usize,
        /// Records per SQS batch.
        #[arg(long, default_value_t = 10)]
        batch: usize,
        /// Cold starts per function for the init share of the cost.
        #[arg(long, default_value_t = 5)]
        init_runs: usize,
    },
    /// First and second request of new orders-api environments (what init leaves for later).
    First {
        /// New environments.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Sizes of the release binaries.
    Sizes,
    /// Everything above.
    All {
        /// Recorded cold starts per function.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Lifecycles for the call counts.
        #[arg(long, default_value_t = 3)]
        orders: usize,
        /// Orders in the load run.
        #[arg(long, default_value_t = 1000)]
        load_orders: usize,
        /// Records per SQS batch.
        #[arg(long, default_value_t = 10)]
        batch: usize,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("lambda-bench: {e} [{}]", e.error_type());
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text}"))
}

async fn run(cli: Cli) -> Result<(), BenchError> {
    println!("Machine: {}\n", report::machine());
    let result = measure(cli).await;
    println!("At the end: {}", report::machine());
    result
}

async fn measure(cli: Cli) -> Result<(), BenchError> {
    let root = cli.root.canonicalize().unwrap_or(cli.root);
    let bin_dir = cli.bin_dir.unwrap_or_else(|| root.join("target/release"));
    let extra: BTreeMap<String, String> = cli.extra_env.into_iter().collect();
    let only = cli.only;
    let keep_logs = cli.keep_logs;
    let reference_env = (only.is_empty() || only.iter().any(|o| o == REFERENCE)).then_some(&extra);
    let setup = || async {
        Harness::setup(&root, &bin_dir)
            .await
            .map(|h| h.adjust(&extra, &only, keep_logs.as_deref()))
    };
    match cli.command {
        Command::Sizes => sizes(&bin_dir),
        Command::Init { runs } => {
            let h = setup().await?;
            init(&h, &bin_dir, runs, reference_env).await.map(|_| ())
        }
        Command::First { runs } => {
            let h = setup().await?;
            first(&h, runs).await
        }
        Command::Calls { orders, batch } => {
            let h = setup().await?;
            calls(&h, orders, batch).await
        }
        Command::Load {
            orders,
            batch,
            init_runs,
        } => {
            let h = setup().await?;
            let init_ms = init(&h, &bin_dir, init_runs, None).await?;
            load(&h, &root, orders, batch, &init_ms).await
        }
        Command::All {
            runs,
            orders,
            load_orders,
            batch,
        } => {
            sizes(&bin_dir)?;
            let h = setup().await?;
            let init_ms = init(&h, &bin_dir, runs, reference_env).await?;
            calls(&h, orders, batch).await?;
            load(&h, &root, load_orders, batch, &init_ms).await
        }
    }
}

const REFERENCE: &str = "minimal-consumer";

fn sizes(bin_dir: &Path) -> Result<(), BenchError> {
    let mut rows = Vec::new();
    let names = [
        "orders-api",
        "orders-events",
        "fulfillment-events",
        "support-api",
        "support-events",
        REFERENCE,
    ];
    for name in names {
        let path = bin_dir.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            rows.push(vec![name.to_owned(), "not built".to_owned(), String::new()]);
            continue;
        };
        let bytes = meta.len();
        rows.push(vec![
            name.to_owned(),
            bytes.to_string(),
            format!("{:.2}", bytes as f64 / 1_048_576.0),
        ]);
    }
    println!("## Binary sizes ({})\n", bin_dir.display());
    println!("{}", report::table(&["binary", "bytes", "MiB"], &rows));
    Ok(())
}

/// Cold starts of every function and of the reference; returns each function's median init.
async fn init(
    h: &Harness,
    bin_dir: &Path,
    runs: usize,
    reference_env: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, f64>, BenchError> {
    let mut summaries = Vec::new();
    let mut medians = BTreeMap::new();
    for (name, site) in h.sites() {
        eprintln!("  init: {name} x {runs}");
        let results = scenarios::init_runs(&site.launch, runs).await?;
        if let Some(summary) = report::init_summary(name, &results) {
            medians.insert(name.clone(), summary.total.median);
            summaries.push(summary);
        }
    }
    let reference = bin_dir.join(REFERENCE);
    if let (true, Some(extra)) = (reference.exists(), reference_env) {
        let mut env: BTreeMap<String, String> = [(
            "AWS_ENDPOINT_URL".to_owned(),
            h.standin_endpoint().to_owned(),
        )]
        .into();
        env.extend(extra.clone());
        let launch = Launch {
            name: REFERENCE.to_owned(),
            binary: reference,
            env,
            memory_mb: 256,
            timeout: Duration::from_secs(15),
            log_dir: None,
        };
        eprintln!("  init: {REFERENCE} x {runs}");
        let results = scenarios::init_runs(&launch, runs).await?;
        summaries.extend(report::init_summary(REFERENCE, &results));
    }
    println!("## Init: exec to first /next poll\n");
    println!("{}", report::init_table(&summaries));
    Ok(medians)
}

async fn first(h: &Harness, runs: usize) -> Result<(), BenchError> {
    eprintln!("  first: orders-api x {runs}");
    let pairs = scenarios::first_requests(h, runs).await?;
    let summary = |values: Vec<f64>| Summary::of(&values).map_or(0.0, |s| s.median);
    let first = summary(pairs.iter().map(|p| p.0).collect());
    let second = summary(pairs.iter().map(|p| p.1).collect());
    println!(
        "## First requests of a new orders-api environment (POST /orders, median of {runs})\n"
    );
    println!(
        "{}",
        report::table(
            &["first ms", "second ms", "first - second ms"],
            &[vec![
                format!("{first:.2}"),
                format!("{second:.2}"),
                format!("{:.2}", first - second),
            ]],
        )
    );
    Ok(())
}

async fn calls(h: &Harness, orders: usize, batch: usize) -> Result<(), BenchError> {
    eprintln!("  calls: {orders} lifecycles, one record per invocation");
    let mut samples = scenarios::lifecycle(h, orders).await?;
    eprintln!("  calls: {batch} orders in batches of {batch}");
    samples.extend(scenarios::batches(h, batch).await?);
    println!("## AWS calls per event\n");
    println!("{}", report::calls_table(&report::call_rows(&samples)));
    Ok(())
}

async fn load(
    h: &Harness,
    root: &Path,
    orders: usize,
    batch: usize,
    init_ms: &BTreeMap<String, f64>,
) -> Result<(), BenchError> {
    eprintln!("  load: {orders} orders, batches of {batch}");
    let run = scenarios::load(h, orders, batch).await?;
    println!("## Load: {orders} orders and returns, SQS batches of up to {batch}\n");
    println!("{}", report::load_table(&run));

    let prices = Prices::load(&root.join("docs/prices.yaml"))?;
    let memory: BTreeMap<String, u32> = h
        .sites()
        .iter()
        .map(|(name, site)| (name.clone(), site.launch.memory_mb))
        .collect();
    let per_unit: Vec<(Flow, _)> = [Flow::Order, Flow::Return]
        .into_iter()
        .map(|flow| {
            (
                flow,
                report::flow_usage(&run, flow, &memory, init_ms, &prices),
            )
        })
        .collect();
    println!(
        "## Cost per million (prices of {}, {}; cold starts {}% of invocations)\n",
        prices.date,
        prices.region,
        prices.assumptions.cold_start_fraction * 100.0
    );
    println!("{}", report::usage_table(&per_unit));
    println!("{}", report::cost_table(&per_unit, &prices));
    Ok(())
}
