//! The command line: `serve` (the default), `demo`, `replay`, `bench`, `token`, `routes`.

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sam_template::Template;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::auth::{Authorization, Grant, TokenAuthority};
use crate::bus::Duplicates;
use crate::fixtures::{self, Injection};
use crate::flow::{FlowObserver, Printer, Summary};
use crate::hosting::Stores;
use crate::runner::{Runner, RunnerOptions};
use crate::{LocalError, bench, demo};

const ABOUT: &str = "Runs every function of template.yaml in one process, routed by the template's own \
EventBridge rules: no AWS account, no Docker.";

const LONG_ABOUT: &str =
    "Runs every function of template.yaml in one process, routed by the template's own \
EventBridge rules: no AWS account, no Docker.

The runner reads the bus, every rule's event pattern and target queue, every queue's redrive \
policy and every function's environment, events and routes from the template. It matches events \
with a real EventBridge pattern engine, delivers them to the consuming functions as SQS batches \
(partial batch failures are redelivered after a 100 ms visibility pause, up to the queue's \
maxReceiveCount, then listed as dead-lettered), and serves the HTTP API routes on loopback. The handlers are the Lambda \
binaries' own, with in-memory stores by default.

Every route is authorized as the template says, the way API Gateway's JWT authorizer does it: \
a request needs `Authorization: Bearer <token>`, a token signed by the runner's local key, not \
expired, of the runner's issuer and app clients, with the route's scopes (401 or 403 otherwise, \
API Gateway's answers). `local token` mints one; the key is created on first use in \
.local-runner/ beside the template (git-ignored). --no-auth turns the authorizer off.

Each event delivered prints one line: time, source, detail-type, idempotency key, rule, target \
function and outcome (fresh, replayed, in_progress, failed:<type>). A summary, with the \
dead-letter listing, is printed on exit (Ctrl-C in serve mode).";

const AFTER_HELP: &str = "Examples:
  cargo run -p local                                  serve on http://127.0.0.1:3000
  TOKEN=$(cargo run -q -p local -- token --customer C-1)
  curl -X POST localhost:3000/orders -H \"Authorization: Bearer $TOKEN\" -H 'Idempotency-Key: k-1' \\
       -d '{\"customer-id\":\"C-1\",\"currency\":\"EUR\",\"items\":[{\"sku\":\"MUG\",\"quantity\":1,\"unit-price\":\"9.90\"}]}'
  cargo run -p local -- token --warehouse             a token for POST /returns/{id}/received
  cargo run -p local -- --no-auth                     serve with tokens read unchecked (experiments only)
  cargo run -p local -- demo --duplicates 0.5         the lifecycle, half of everything delivered twice
  cargo run -p local -- replay events/eventbridge/order-created.json
  cargo run -p local -- --json replay events/sqs/*.json
  cargo run --profile runner -p local -- bench        events routed and handled per second
  cargo run -p local -- routes                        who publishes each event, which rule, queue and function get it

Exit status: 0 done (serve: stopped with Ctrl-C), 1 error (bad template, fixture or option), \
2 command-line usage error, 3 demo final state differs, 130 demo, replay or bench interrupted.";

/// The local runner's command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "local", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// The SAM template to take buses, rules, queues and functions from.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "template.yaml"
    )]
    pub template: PathBuf,

    /// Print the flow, responses and the summary as JSON lines (one object per line, with a
    /// "type" field) instead of readable text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Keep state in DynamoDB instead of in memory: the tables named by the functions'
    /// environment (see --stack-name), reached through the AWS SDK's standard configuration,
    /// so AWS_ENDPOINT_URL points it at a stand-in (scripts/standin) and its absence at real
    /// AWS with your credentials. Events are still routed in process.
    #[arg(long, global = true)]
    pub dynamodb: bool,

    /// Stack name the template's names resolve with: tables are <stack>-OrdersTable, ..., the
    /// bus <stack>-commerce.
    #[arg(long, global = true, value_name = "NAME", default_value = "dev")]
    pub stack_name: String,

    /// Share (0 to 1) of event deliveries and of non-GET requests that are delivered twice:
    /// a second copy of the SQS message (received by a concurrent invocation) or a concurrent
    /// retry of the request. Idempotency must make them harmless.
    #[arg(long, global = true, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub duplicates: f64,

    /// Seed choosing which deliveries and requests --duplicates picks (same seed, same picks).
    #[arg(long, global = true, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Send each duplicated request at the same time as the original (a client retrying too
    /// early) instead of right after its answer (a client retrying after a lost response).
    #[arg(long, global = true)]
    pub concurrent_retries: bool,

    /// Serve without the authorizer: bearer tokens are read without any check (signature,
    /// issuer, audience, expiry, route scopes), so any token names any caller. The functions
    /// still act only for the caller a token names (no token: their own 401) and still check
    /// staff scope themselves. For quick experiments; the banner, every request line and the
    /// summary say so.
    #[arg(long, global = true)]
    pub no_auth: bool,

    /// The local signing key (PKCS#8, ES256) that `token` signs with and `serve` checks
    /// against; created on first use. Default: .local-runner/signing-key.p8 beside the template.
    #[arg(long, global = true, value_name = "PATH")]
    pub signing_key: Option<PathBuf>,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The runner's modes.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the HTTP API routes on 127.0.0.1 and route every event until Ctrl-C (the default).
    Serve {
        /// Loopback port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    /// Play a full order lifecycle and a return, and check that the final state equals that of
    /// the same run without duplicates (use with --duplicates RATE and --seed N).
    Demo,
    /// Inject fixture files, in order, and route what they cause: EventBridge events and SQS
    /// batches (events/eventbridge, events/sqs) go on the bus, API Gateway requests
    /// (events/http) go to their function. Every file is validated first.
    Replay {
        /// Fixture files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Measure events routed and handled per second with in-memory stores (build with
    /// `--profile runner` for representative figures).
    Bench {
        /// Orders per run (each makes 3 events and 5 deliveries).
        #[arg(long, default_value_t = 20_000)]
        orders: usize,
        /// Runs; the median is reported.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Mint an access token that `serve` accepts, signed with the local key, and print it:
    /// a customer's (as Cognito issues after sign-in) or the warehouse system's (client
    /// credentials, with the scopes the template's routes require).
    Token {
        /// The customer the token is for (its `sub`).
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "warehouse",
            conflicts_with = "warehouse"
        )]
        customer: Option<String>,
        /// A token for the warehouse's system instead (`POST /returns/{id}/received`).
        #[arg(long)]
        warehouse: bool,
        /// A Cognito group the customer is in (`cognito:groups`); repeatable.
        #[arg(long, value_name = "NAME", conflicts_with = "warehouse")]
        group: Vec<String>,
        /// Seconds until the token expires (negative: already expired, to try a refusal).
        #[arg(long, value_name = "SECONDS", default_value_t = crate::auth::DEFAULT_LIFETIME_SECS, allow_negative_numbers = true)]
        expires_in: i64,
    },
    /// Print the routing table of the event catalog (the model asyncapi.yaml is generated
    /// from): each detail type, its producer, and every rule, queue and consuming function
    /// that receives it.
    Routes,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number; give a share from 0 to 1, e.g. 0.5"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "{rate} is outside 0..=1; give a share from 0 to 1, e.g. 0.5"
        ))
    }
}

/// How a command ended (the binary turns it into an exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Done.
    Done,
    /// Stopped by Ctrl-C (after printing the summary).
    Interrupted,
    /// The demo's final state differs from the run without duplicates.
    DemoDiffers,
}

/// Prints text or JSON lines to standard output; a closed output is ignored, never a panic.
#[derive(Debug, Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    fn text(&self, text: &str) {
        if !self.json {
            let _ = write!(
                std::io::stdout().lock(),
                "{text}{}",
                if text.ends_with('\n') { "" } else { "\n" }
            );
        }
    }

    fn json(&self, kind: &str, value: impl serde::Serialize) {
        if self.json {
            let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
            let value = match value.as_object_mut() {
                Some(object) => {
                    object.insert("type".to_owned(), Value::from(kind));
                    value
                }
                None => serde_json::json!({ "type": kind, "value": value }),
            };
            let _ = writeln!(std::io::stdout().lock(), "{value}");
        }
    }

    fn banner(&self, runner: &Runner) {
        self.text(&runner.banner());
        let topology = runner.topology();
        self.json(
            "banner",
            serde_json::json!({
                "template": topology.path,
                "rules": topology.rules.len(),
                "functions": topology.functions.len(),
                "stack": topology.stack.name,
                "authorization": if runner.authorization_enforced() { "jwt" } else { "off" },
                "text": runner.banner(),
            }),
        );
    }

    fn summary(&self, summary: &Summary) {
        self.text(&summary.text());
        self.json("summary", summary);
    }
}

/// Resolves when Ctrl-C is pressed; never, if the signal cannot be watched.
pub async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Serves the runner's HTTP routes on `listener` and delivers every event published, until
/// `shutdown` completes; then stops accepting, finishes open requests, delivers what is left
/// and returns.
pub async fn serve(
    runner: Arc<Runner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), LocalError> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let drainer = {
        let runner = Arc::clone(&runner);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = runner.bus().notified() => {}
                    _ = stopped.changed() => return,
                }
                // Never cancelled half-way: messages received in a round are always completed.
                if let Err(e) = runner.settle().await {
                    // A routing loop: say so, and keep serving (AWS would keep looping too).
                    let _ = writeln!(std::io::stderr().lock(), "error [{}]: {e}", e.error_type());
                }
            }
        })
    };
    crate::http::serve(Arc::clone(&runner), listener, shutdown).await;
    let _ = stop.send(true);
    let _ = drainer.await;
    runner.settle().await
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<Completion, LocalError> {
    let out = Out { json: cli.json };
    let template = Template::load(&cli.template)?;
    let command = cli.command.clone().unwrap_or(Command::Serve { port: 3000 });
    if let Command::Bench { orders, repeat } = command {
        return run_bench(out, &cli, &template, orders, repeat).await;
    }
    if let Command::Routes = command {
        return run_routes(out, &template);
    }
    if let Command::Token {
        customer,
        warehouse,
        group,
        expires_in,
    } = &command
    {
        return run_token(
            out,
            &cli,
            &template,
            customer.as_deref(),
            *warehouse,
            group,
            *expires_in,
        );
    }
    // serve checks tokens minted by `local token` in another process: the key file. The demo
    // and replay mint (or carry) their own: a key made for the run.
    let authorization = if cli.no_auth {
        Authorization::Off
    } else if matches!(command, Command::Serve { .. }) {
        let (authority, _) = TokenAuthority::from_key_file(&key_path(&cli))?;
        Authorization::Jwt(Arc::new(authority))
    } else {
        Authorization::Ephemeral
    };
    let stores = if cli.dynamodb {
        Stores::DynamoDb(Box::new(platform::init::aws_config().await))
    } else {
        Stores::InMemory
    };
    let printer: Arc<dyn FlowObserver> = Arc::new(Printer::new(cli.json));
    let options = RunnerOptions {
        stack_name: cli.stack_name.clone(),
        stores,
        duplicates: Some(Duplicates::new(cli.duplicates, cli.seed)),
        observer: Some(printer),
        concurrent_retries: cli.concurrent_retries,
        retry_delay: None,
        authorization,
    };
    match command {
        Command::Serve { port } => run_serve(out, &template, options, port).await,
        Command::Demo => run_demo(out, &cli, &template, options).await,
        Command::Replay { files } => run_replay(out, &template, options, &files).await,
        Command::Bench { .. } | Command::Token { .. } | Command::Routes => Ok(Completion::Done),
    }
}

/// The signing key's path: `--signing-key`, else beside the template.
fn key_path(cli: &Cli) -> PathBuf {
    cli.signing_key
        .clone()
        .unwrap_or_else(|| crate::auth::default_key_path(&cli.template))
}

fn run_token(
    out: Out,
    cli: &Cli,
    template: &Template,
    customer: Option<&str>,
    warehouse: bool,
    groups: &[String],
    expires_in: i64,
) -> Result<Completion, LocalError> {
    let path = key_path(cli);
    let (authority, created) = TokenAuthority::from_key_file(&path)?;
    let grant = if warehouse {
        // The scopes the template's routes require: a runner knows them without hosting.
        let topology = crate::topology::Topology::from_template(
            template,
            &sam_template::Stack::new(&cli.stack_name),
        )?;
        Grant::warehouse(topology.required_scopes())
    } else {
        let id = customer.ok_or_else(|| LocalError::InvalidOption {
            option: "--customer",
            problem: "give --customer ID or --warehouse".into(),
        })?;
        groups
            .iter()
            .fold(Grant::customer(id), |grant, group| grant.in_group(group))
    }
    .expires_in(expires_in);
    let token = authority.mint(&grant)?;
    if created {
        let _ = writeln!(
            std::io::stderr().lock(),
            "created the local signing key {}",
            path.display()
        );
    }
    // The token alone on stdout, so `TOKEN=$(local token ...)` works.
    out.text(&token);
    out.json(
        "token",
        serde_json::json!({
            "token": token,
            "sub": grant.subject,
            "client_id": grant.client_id,
            "scope": grant.scopes.join(" "),
            "expires_in": grant.lifetime_secs,
            "signing_key": path.display().to_string(),
        }),
    );
    Ok(Completion::Done)
}

fn run_routes(out: Out, template: &Template) -> Result<Completion, LocalError> {
    let routes = catalog::Catalog::from_template(template)?.routes();
    out.text(&catalog::routes_text(&routes));
    for route in &routes {
        out.json("route", route);
    }
    Ok(Completion::Done)
}

async fn run_serve(
    out: Out,
    template: &Template,
    options: RunnerOptions,
    port: u16,
) -> Result<Completion, LocalError> {
    let runner = Arc::new(Runner::new(template, options)?);
    let address = format!("127.0.0.1:{port}");
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|source| LocalError::Bind {
            address: address.clone(),
            source,
        })?;
    let url = listener
        .local_addr()
        .map_or_else(|_| format!("http://{address}"), |a| format!("http://{a}"));
    out.banner(&runner);
    let routes: Vec<String> = runner
        .topology()
        .routes
        .iter()
        .map(|r| {
            let target = runner
                .topology()
                .functions
                .get(r.function)
                .map_or("?", |f| f.binary.as_str());
            let auth = match (&r.auth, runner.authorization_enforced()) {
                (_, false) => " (NO AUTH)".to_owned(),
                (None, true) => " (open)".to_owned(),
                (Some(a), true) if a.scopes.is_empty() => " (token)".to_owned(),
                (Some(a), true) => format!(" (token with {})", a.scopes.join(" or ")),
            };
            format!("{} {} -> {target}{auth}", r.method, r.path)
        })
        .collect();
    out.text(&format!(
        "Serving the HTTP API on {url} (Ctrl-C to stop):\n  {}",
        routes.join("\n  ")
    ));
    if runner.authorization_enforced() {
        out.text(&format!(
            "Every route needs `Authorization: Bearer <token>` signed with {} \
             (mint one: cargo run -p local -- token --customer C-1; the receipt: --warehouse)",
            runner.authority().key_path().map_or_else(
                || "a key made for this run".to_owned(),
                |p| p.display().to_string()
            )
        ));
    }
    out.json(
        "listening",
        serde_json::json!({ "url": url, "routes": routes }),
    );
    serve(Arc::clone(&runner), listener, ctrl_c()).await?;
    out.summary(&runner.summary());
    // Ctrl-C is how serving ends: a clean exit.
    Ok(Completion::Done)
}

async fn run_demo(
    out: Out,
    cli: &Cli,
    template: &Template,
    options: RunnerOptions,
) -> Result<Completion, LocalError> {
    // DynamoDB tables outlive a run: fresh keys keep this run's order and return its own.
    let nonce = if cli.dynamodb {
        format!(
            "s{}-{}",
            cli.seed,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    } else {
        format!("s{}", cli.seed)
    };
    let runner = Runner::new(template, options)?;
    out.banner(&runner);
    out.text(&format!(
        "Demo: an order through fulfillment to Shipped, then a return to Returned; duplicates {} (seed {})",
        cli.duplicates, cli.seed
    ));
    let report = tokio::select! {
        report = demo::run(template, &runner, cli.duplicates, cli.seed, &nonce) => report,
        () = ctrl_c() => {
            out.summary(&runner.summary());
            return Ok(Completion::Interrupted);
        }
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            out.summary(&runner.summary());
            return Err(e);
        }
    };
    out.summary(&report.run.summary);
    out.text(&report.text());
    out.json("demo", &report);
    Ok(if report.same_final_state {
        Completion::Done
    } else {
        Completion::DemoDiffers
    })
}

async fn run_replay(
    out: Out,
    template: &Template,
    options: RunnerOptions,
    files: &[PathBuf],
) -> Result<Completion, LocalError> {
    // Validate every file before injecting anything: a bad fixture changes nothing.
    let loaded = files
        .iter()
        .map(|f| Ok((f.display().to_string(), fixtures::load(f)?)))
        .collect::<Result<Vec<_>, LocalError>>()?;
    let runner = Runner::new(template, options)?;
    out.banner(&runner);
    let play = async {
        for (file, injections) in &loaded {
            let mut events = Vec::new();
            for injection in injections {
                match injection {
                    Injection::Event(entry) => events.push(entry.clone()),
                    Injection::Request(request) => {
                        runner.inject(&std::mem::take(&mut events));
                        let response = runner.replay_request(request).await;
                        out.text(&format!("  {} {}", response.status, response.body));
                        out.json(
                            "response",
                            serde_json::json!({
                                "file": file,
                                "status": response.status,
                                "body": serde_json::from_str::<Value>(&response.body).unwrap_or(Value::Null),
                            }),
                        );
                    }
                }
            }
            if !events.is_empty() {
                runner.inject(&events);
            }
            runner.settle().await?;
        }
        Ok::<(), LocalError>(())
    };
    let interrupted = tokio::select! {
        result = play => { result?; false }
        () = ctrl_c() => true,
    };
    out.summary(&runner.summary());
    Ok(if interrupted {
        Completion::Interrupted
    } else {
        Completion::Done
    })
}

async fn run_bench(
    out: Out,
    cli: &Cli,
    template: &Template,
    orders: usize,
    repeat: usize,
) -> Result<Completion, LocalError> {
    if cli.dynamodb {
        return Err(LocalError::InvalidOption {
            option: "--dynamodb",
            problem: "bench measures the in-memory stores; drop --dynamodb".into(),
        });
    }
    if cfg!(debug_assertions) {
        out.text("note: this is a debug build; use `cargo run --profile runner -p local -- bench` for representative figures");
    }
    out.text(&format!(
        "Benchmark: {repeat} run(s) of {orders} orders through {} (in-memory stores)",
        template.path()
    ));
    let report = tokio::select! {
        report = bench::run(template, orders, repeat) => report?,
        () = ctrl_c() => return Ok(Completion::Interrupted),
    };
    out.text(&report.text());
    out.json("bench", &report);
    Ok(Completion::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn duplicates_must_be_a_share_from_zero_to_one() {
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("1.5").unwrap_err().contains("outside 0..=1"));
        assert!(parse_rate("half").unwrap_err().contains("not a number"));
        let err = Cli::try_parse_from(["local", "demo", "--duplicates", "2"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--duplicates"), "{err}");
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "local",
            "demo",
            "--duplicates",
            "0.5",
            "--seed",
            "9",
            "--json",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Demo)));
        assert_eq!((cli.duplicates, cli.seed, cli.json), (0.5, 9, true));
        let cli = Cli::try_parse_from([
            "local",
            "--template",
            "t.yaml",
            "replay",
            "a.json",
            "b.json",
        ])
        .unwrap();
        assert_eq!(cli.template, PathBuf::from("t.yaml"));
        assert!(matches!(cli.command, Some(Command::Replay { files }) if files.len() == 2));
        assert!(Cli::try_parse_from(["local"]).unwrap().command.is_none());
    }

    #[test]
    fn token_takes_a_customer_or_the_warehouse_and_a_signed_lifetime() {
        let cli = Cli::try_parse_from([
            "local",
            "token",
            "--customer",
            "C-1",
            "--group",
            "warehouse",
            "--expires-in",
            "-60",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Token {
                customer,
                warehouse,
                group,
                expires_in,
            }) => {
                assert_eq!(customer.as_deref(), Some("C-1"));
                assert!(!warehouse);
                assert_eq!(group, ["warehouse"]);
                assert_eq!(expires_in, -60);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["local", "token"]).is_err(),
            "who is it for?"
        );
        assert!(
            Cli::try_parse_from(["local", "token", "--customer", "C-1", "--warehouse"]).is_err()
        );
        assert!(Cli::try_parse_from(["local", "token", "--warehouse", "--group", "g"]).is_err());
        let cli = Cli::try_parse_from(["local", "--no-auth", "serve"]).unwrap();
        assert!(cli.no_auth);
    }

    #[test]
    fn help_describes_every_option_and_command() {
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        for flag in [
            "--template",
            "--json",
            "--dynamodb",
            "--stack-name",
            "--duplicates",
            "--seed",
            "--no-auth",
            "--signing-key",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
        for sub in ["serve", "demo", "replay", "bench", "token", "routes"] {
            assert!(help.contains(sub), "{sub} missing from --help");
        }
        for sub in command.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "{} has no description",
                sub.get_name()
            );
        }
        for arg in command.get_arguments() {
            assert!(
                arg.get_help().is_some(),
                "--{} has no description",
                arg.get_id()
            );
        }
    }
}
