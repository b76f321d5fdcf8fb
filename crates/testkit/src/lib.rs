//! Test support: the local AWS stand-in (moto's server) and a stack provisioned on it from
//! `template.yaml`.
//!
//! [`moto()`] starts one moto server per test binary on a free loopback port, the first time a
//! test asks for it. A shell watchdog stops the server when the test process exits. If moto is
//! not installed, the test fails with the command that installs it; it never silently passes.
//!
//! [`LocalStack::provision`] reads the template and creates its DynamoDB tables (key schema and
//! TTL), event buses, SQS queues (with their redrive policies) and rules (with their patterns and
//! targets) on the server, under a unique stack name per test, so tests run in parallel on one
//! server without seeing each other's resources, and template and code cannot drift.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test support: fail loudly

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
pub use sam_template::{Stack, Template};

/// Region every stand-in resource lives in.
pub const REGION: &str = "us-east-1";

/// The workspace root (where `template.yaml` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit sits two levels below the workspace root")
        .to_path_buf()
}

/// The product's template.
pub fn template() -> Template {
    Template::load(workspace_root().join("template.yaml")).expect("template.yaml parses")
}

/// The SAM CLI's Python interpreter (`.venv/sam`), which also has SAM's template translator.
/// Panics naming the command that installs it when it is missing.
pub fn sam_python() -> PathBuf {
    let python = workspace_root().join(".venv/sam/bin/python");
    assert!(
        python.exists(),
        "the SAM CLI is not installed ({} is missing): run `scripts/python-tools sam` \
         (or the README's test command, `scripts/test`, which does it)",
        python.display()
    );
    python
}

/// Runs `scripts/<script>` with the SAM CLI's Python in the workspace root, `stdin` on its
/// standard input and exactly the environment `env` (nothing inherited but `PATH`); returns its
/// standard output. Panics with its standard error when it fails.
pub fn run_sam_script(
    script: &str,
    args: &[&str],
    stdin: &str,
    env: &[(String, String)],
) -> String {
    use std::io::Write as _;
    let mut child = Command::new(sam_python())
        .arg(workspace_root().join("scripts").join(script))
        .args(args)
        .current_dir(workspace_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SAM_CLI_TELEMETRY", "0")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting scripts/{script}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .unwrap_or_else(|e| panic!("writing to scripts/{script}: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the script prints UTF-8 JSON")
}

/// A template as `sam deploy` creates it: expanded by SAM's own translator
/// (`scripts/sam-expand.py`), every role, policy and permission SAM adds included. `yaml` is the
/// SAM template's text; `name` names it in errors.
pub fn expand(yaml: &str, name: &str) -> Template {
    let json = run_sam_script(
        "sam-expand.py",
        &["-"],
        yaml,
        &[("AWS_DEFAULT_REGION".to_owned(), REGION.to_owned())],
    );
    Template::from_yaml(&json, &format!("{name} (expanded by SAM)"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The product's template as `sam deploy` creates it (see [`expand`]), expanded once per test
/// binary.
pub fn expanded_template() -> Template {
    static EXPANDED: OnceLock<Template> = OnceLock::new();
    EXPANDED
        .get_or_init(|| {
            let path = workspace_root().join("template.yaml");
            let yaml = std::fs::read_to_string(&path).expect("template.yaml is readable");
            expand(&yaml, "template.yaml")
        })
        .clone()
}

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The moto server of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| Moto::start().unwrap_or_else(|e| panic!("{e:#}")))
}

impl Moto {
    fn start() -> Result<Self> {
        let bin = workspace_root().join(".venv/tools/bin/moto_server");
        if !bin.exists() {
            return Err(anyhow!(
                "the local AWS stand-in is not installed ({} is missing): run `scripts/python-tools tools` \
                 (or the README's test command, `scripts/test`, which does it)",
                bin.display()
            ));
        }
        let mut last_err = None;
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            // The watchdog loop kills moto once this test process is gone, so no server outlives
            // its tests even when the process is killed.
            let script = format!(
                "'{bin}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
                 while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; kill $m 2>/dev/null",
                bin = bin.display(),
                pid = std::process::id()
            );
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("spawning moto_server")?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(Self {
                        endpoint: format!("http://127.0.0.1:{port}"),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_err = Some(anyhow!(
                "moto_server did not listen on port {port} within 30 s"
            ));
        }
        Err(last_err.unwrap_or_else(|| anyhow!("moto_server did not start")))
    }

    /// `http://127.0.0.1:<port>`: what `AWS_ENDPOINT_URL` is set to for child processes.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Environment for a child process (a Lambda binary) to reach the stand-in through the SDK's
    /// standard variables.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ]
    }

    /// SDK configuration pointing at the stand-in with dummy credentials: the same loader and
    /// endpoint override that `AWS_ENDPOINT_URL` drives, without mutating process environment.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

/// SDK configuration for a stand-in at `endpoint`, with dummy credentials.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    // The SDK's default retries and timeouts (a stand-in on a busy test machine can be slow),
    // with the product's HTTP client: the SDK crates are built without one of their own.
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(platform::init::http_client(true))
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "testkit"))
        .load()
        .await
}

/// A stack provisioned on the stand-in from the template.
#[derive(Debug, Clone)]
pub struct LocalStack {
    /// The stack's names.
    pub stack: Stack,
    /// The template it came from.
    pub template: Template,
    tables: BTreeMap<String, String>,
    buses: BTreeMap<String, String>,
    queue_urls: BTreeMap<String, String>,
}

impl LocalStack {
    /// Creates every table, bus, queue and rule of `template` under a fresh stack name.
    pub async fn provision(config: &SdkConfig, template: &Template) -> Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self::provision_as(config, template, Stack::new(format!("t{}", &suffix[..10]))).await
    }

    /// Creates every table, bus, queue and rule of `template` for `stack` (e.g. `dev`, whose
    /// names the functions' `cargo lambda watch` defaults use).
    pub async fn provision_as(
        config: &SdkConfig,
        template: &Template,
        stack: Stack,
    ) -> Result<Self> {
        let ddb = aws_sdk_dynamodb::Client::new(config);
        let events = aws_sdk_eventbridge::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);

        let mut tables = BTreeMap::new();
        for table in template.tables(&stack)? {
            let mut defs = vec![attribute(&table.hash_key)?];
            let mut keys = vec![key(&table.hash_key.0, KeyType::Hash)?];
            if let Some(range) = &table.range_key {
                defs.push(attribute(range)?);
                keys.push(key(&range.0, KeyType::Range)?);
            }
            let stream = table
                .stream_view_type
                .as_deref()
                .map(|view| {
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(StreamViewType::from(view))
                        .build()
                })
                .transpose()?;
            ddb.create_table()
                .table_name(&table.name)
                .set_attribute_definitions(Some(defs))
                .set_key_schema(Some(keys))
                .billing_mode(BillingMode::PayPerRequest)
                .set_stream_specification(stream)
                .send()
                .await
                .with_context(|| format!("creating table {}", table.name))?;
            if let Some(ttl) = &table.ttl_attribute {
                ddb.update_time_to_live()
                    .table_name(&table.name)
                    .time_to_live_specification(
                        TimeToLiveSpecification::builder()
                            .attribute_name(ttl)
                            .enabled(true)
                            .build()?,
                    )
                    .send()
                    .await
                    .with_context(|| format!("enabling TTL on {}", table.name))?;
            }
            tables.insert(table.logical_id, table.name);
        }

        let mut buses = BTreeMap::new();
        for bus in template.event_buses(&stack)? {
            events
                .create_event_bus()
                .name(&bus.name)
                .send()
                .await
                .with_context(|| format!("creating bus {}", bus.name))?;
            buses.insert(bus.logical_id, bus.name);
        }

        let queues = template.queues(&stack)?;
        let arn_of: BTreeMap<_, _> = queues
            .iter()
            .map(|q| (q.logical_id.clone(), q.arn.clone()))
            .collect();
        let mut queue_urls = BTreeMap::new();
        for queue in &queues {
            let mut request = sqs.create_queue().queue_name(&queue.name);
            if let Some(timeout) = queue.visibility_timeout {
                request =
                    request.attributes(QueueAttributeName::VisibilityTimeout, timeout.to_string());
            }
            if let Some(redrive) = &queue.redrive {
                let dlq_arn = arn_of.get(&redrive.dead_letter_queue).ok_or_else(|| {
                    anyhow!(
                        "{}: unknown DLQ {}",
                        queue.logical_id,
                        redrive.dead_letter_queue
                    )
                })?;
                let policy = serde_json::json!({
                    "deadLetterTargetArn": dlq_arn,
                    "maxReceiveCount": redrive.max_receive_count,
                });
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let url = request
                .send()
                .await
                .with_context(|| format!("creating queue {}", queue.name))?
                .queue_url
                .ok_or_else(|| anyhow!("no URL for queue {}", queue.name))?;
            queue_urls.insert(queue.logical_id.clone(), url);
        }

        for rule in template.rules(&stack)? {
            let bus = match &rule.bus {
                Some(logical) => Some(
                    buses
                        .get(logical)
                        .ok_or_else(|| {
                            anyhow!("rule {} names unknown bus {logical}", rule.logical_id)
                        })?
                        .clone(),
                ),
                None => None,
            };
            events
                .put_rule()
                .name(&rule.name)
                .set_event_bus_name(bus.clone())
                .event_pattern(rule.pattern.to_string())
                .send()
                .await
                .with_context(|| format!("creating rule {}", rule.name))?;
            let targets = rule
                .targets
                .iter()
                .map(|t| {
                    aws_sdk_eventbridge::types::Target::builder()
                        .id(&t.id)
                        .arn(&t.arn)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            events
                .put_targets()
                .rule(&rule.name)
                .set_event_bus_name(bus)
                .set_targets(Some(targets))
                .send()
                .await
                .with_context(|| format!("adding targets to rule {}", rule.name))?;
        }

        Ok(Self {
            stack,
            template: template.clone(),
            tables,
            buses,
            queue_urls,
        })
    }

    /// Physical name of a table, by logical id.
    pub fn table(&self, logical_id: &str) -> &str {
        self.tables
            .get(logical_id)
            .unwrap_or_else(|| panic!("no table {logical_id} in template"))
    }

    /// Physical name of a bus, by logical id.
    pub fn bus(&self, logical_id: &str) -> &str {
        self.buses
            .get(logical_id)
            .unwrap_or_else(|| panic!("no bus {logical_id} in template"))
    }

    /// URL of a queue, by logical id.
    pub fn queue_url(&self, logical_id: &str) -> &str {
        self.queue_urls
            .get(logical_id)
            .unwrap_or_else(|| panic!("no queue {logical_id} in template"))
    }

    /// Receives and deletes every message currently in a queue; returns their bodies.
    pub async fn drain(&self, sqs: &aws_sdk_sqs::Client, queue: &str) -> Result<Vec<String>> {
        let url = self.queue_url(queue);
        let mut bodies = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(bodies);
            }
            for m in messages {
                if let Some(handle) = &m.receipt_handle {
                    sqs.delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
                bodies.extend(m.body);
            }
        }
    }

    /// Environment variables a function of this stack gets: every template variable whose value
    /// resolves locally (table names, bus name, ...).
    pub fn function_env(&self, logical_id: &str) -> Result<BTreeMap<String, String>> {
        let function = self
            .template
            .functions()
            .into_iter()
            .find(|f| f.logical_id == logical_id)
            .ok_or_else(|| anyhow!("no function {logical_id} in template"))?;
        function
            .environment
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.template.resolve_string(v, &self.stack, k)?)))
            .collect()
    }
}

fn attribute((name, kind): &(String, String)) -> Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::from(kind.as_str()))
        .build()?)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}
