//! The functions of `template.yaml` on the moto stand-in: each function's release binary, its
//! environment from the template, and a counting proxy as its AWS endpoint, so every DynamoDB,
//! EventBridge and SQS call it makes is counted per invocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testkit::{LocalStack, Template};

use crate::calls::CallCounts;
use crate::error::BenchError;
use crate::events;
use crate::function::{Launch, Running};
use crate::proxy::CountingProxy;

/// What one invocation did.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The function (binary name).
    pub function: String,
    /// What it was given: an HTTP route (`POST /orders`) or a detail type (`OrderCreated`).
    pub input: String,
    /// The scenario.
    pub case: Case,
    /// Records in the SQS batch (1 for an HTTP request).
    pub records: usize,
    /// Lambda's duration: event handed out to answer received.
    pub duration_ms: f64,
    /// AWS calls made while serving it.
    pub calls: CallCounts,
    /// Log bytes written while serving it (approximate: lines are read asynchronously).
    pub log_bytes: u64,
}

impl Sample {
    /// Whether the input came through the HTTP API (else an SQS batch).
    pub fn is_http(&self) -> bool {
        self.input.starts_with(|c: char| c.is_ascii_uppercase()) && self.input.contains(' ')
    }
}

/// The delivery scenario of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Case {
    /// First delivery of a key.
    Fresh,
    /// A repeated key in an environment that has not seen it (or has no local cache).
    Duplicate,
    /// A repeated key in the warm environment that completed it (local cache).
    CachedDuplicate,
    /// A read (`GET`).
    Read,
}

impl Case {
    /// Short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Duplicate => "duplicate",
            Self::CachedDuplicate => "cached duplicate",
            Self::Read => "read",
        }
    }
}

/// One function of the template, ready to start.
pub struct Site {
    /// How to start it.
    pub launch: Launch,
    /// Its AWS endpoint.
    pub proxy: CountingProxy,
    /// The queues (logical id -> ARN) that feed it.
    pub queues: BTreeMap<String, String>,
}

/// The stand-in with the template provisioned, and every function of the template.
pub struct Harness {
    root: PathBuf,
    stack: LocalStack,
    sqs: aws_sdk_sqs::Client,
    sites: BTreeMap<String, Site>,
    consumer_of: BTreeMap<String, String>,
    http_template: Value,
    standin_endpoint: String,
}

/// Default memory when the template sets none (Lambda's default).
const DEFAULT_MEMORY_MB: u32 = 128;
/// Default timeout when the template sets none (Lambda's default).
const DEFAULT_TIMEOUT_S: u64 = 3;

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl Harness {
    /// Starts moto (testkit's stand-in), provisions `template.yaml` under a fresh stack name and
    /// prepares every function whose binary exists in `bin_dir`.
    pub async fn setup(root: &Path, bin_dir: &Path) -> Result<Self, BenchError> {
        let moto = tokio::task::spawn_blocking(testkit::moto)
            .await
            .map_err(|e| BenchError::StandIn {
                what: "starting moto".to_owned(),
                source: Box::new(e),
            })?;
        let config = moto.sdk_config().await;
        let template = Template::load(root.join("template.yaml"))
            .map_err(|e| BenchError::input("template.yaml", e))?;
        let stack = LocalStack::provision(&config, &template)
            .await
            .map_err(|e| BenchError::StandIn {
                what: "provisioning template.yaml".to_owned(),
                source: e.into(),
            })?;
        let queue_arns: BTreeMap<String, String> = template
            .queues(&stack.stack)
            .map_err(|e| BenchError::input("template.yaml", e))?
            .into_iter()
            .map(|q| (q.logical_id, q.arn))
            .collect();
        let global = |name: &str| {
            template
                .root()
                .pointer(&format!("/Globals/Function/{name}"))
        };

        let mut sites = BTreeMap::new();
        let mut consumer_of = BTreeMap::new();
        for function in template.functions() {
            let binary = bin_dir.join(&function.binary);
            if !binary.exists() {
                return Err(BenchError::input(
                    binary.display().to_string(),
                    "missing: build the release binaries first (scripts/bench does)",
                ));
            }
            let proxy = CountingProxy::start(moto.endpoint()).await?;
            let mut env = stack
                .function_env(&function.logical_id)
                .map_err(|e| BenchError::input("template.yaml", e))?;
            env.insert("AWS_ENDPOINT_URL".to_owned(), proxy.endpoint());
            let memory_mb = number(function.properties.get("MemorySize"))
                .or_else(|| number(global("MemorySize")))
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(DEFAULT_MEMORY_MB);
            let timeout = number(function.properties.get("Timeout"))
                .or_else(|| number(global("Timeout")))
                .unwrap_or(DEFAULT_TIMEOUT_S);
            let mut queues = BTreeMap::new();
            for queue in &function.sqs_sources {
                consumer_of.insert(queue.clone(), function.binary.clone());
                queues.insert(
                    queue.clone(),
                    queue_arns.get(queue).cloned().unwrap_or_default(),
                );
            }
            sites.insert(
                function.binary.clone(),
                Site {
                    launch: Launch {
                        name: function.binary.clone(),
                        binary,
                        env,
                        memory_mb,
                        timeout: Duration::from_secs(timeout),
                        log_dir: None,
                    },
                    proxy,
                    queues,
                },
            );
        }
        let http_template = events::load(&root.join("events/http/post-order.json"))?;
        Ok(Self {
            root: root.to_owned(),
            sqs: aws_sdk_sqs::Client::new(&config),
            stack,
            sites,
            consumer_of,
            http_template,
            standin_endpoint: moto.endpoint().to_owned(),
        })
    }

    /// Adds `extra` to every function's environment (what-if measurements, e.g. another
    /// certificate store), keeps only the functions named in `only` when it is not empty, and
    /// copies every environment's output into `log_dir` when given.
    pub fn adjust(
        mut self,
        extra: &BTreeMap<String, String>,
        only: &[String],
        log_dir: Option<&Path>,
    ) -> Self {
        if !only.is_empty() {
            self.sites.retain(|name, _| only.contains(name));
        }
        for site in self.sites.values_mut() {
            site.launch.env.extend(extra.clone());
            site.launch.log_dir = log_dir.map(Path::to_owned);
        }
        self
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The stand-in's endpoint.
    pub fn standin_endpoint(&self) -> &str {
        &self.standin_endpoint
    }

    /// Every function, by binary name.
    pub fn sites(&self) -> &BTreeMap<String, Site> {
        &self.sites
    }

    /// One function.
    pub fn site(&self, name: &str) -> Result<&Site, BenchError> {
        self.sites
            .get(name)
            .ok_or_else(|| BenchError::input("template.yaml", format!("no function {name}")))
    }

    /// Starts a new execution environment of `name`.
    pub async fn start(&self, name: &str) -> Result<Running, BenchError> {
        Running::start(&self.site(name)?.launch, Duration::from_secs(20)).await
    }

    /// Sends an HTTP API request to `running`; returns the sample, the status and the body.
    #[allow(clippy::too_many_arguments)] // each is one field of the request
    pub async fn http(
        &self,
        running: &Running,
        case: Case,
        method: &str,
        path: &str,
        route_key: &str,
        idempotency_key: Option<&str>,
        body: Option<&str>,
    ) -> Result<(Sample, u16, Value), BenchError> {
        let event = events::http_request(
            &self.http_template,
            method,
            path,
            route_key,
            idempotency_key,
            body,
            &uuid::Uuid::new_v4().simple().to_string(),
        );
        let (sample, answer) = self
            .invoke(running, route_key, case, 1, event.to_string())
            .await?;
        let (status, body) = events::http_response(&answer);
        if status == 0 || status >= 500 {
            return Err(BenchError::UnexpectedAnswer {
                function: running.name().to_owned(),
                input: route_key.to_owned(),
                answer: answer.to_string(),
            });
        }
        Ok((sample, status, body))
    }

    /// Delivers `bodies` (EventBridge envelopes, one detail type) from `queue` to `running` as
    /// one SQS batch. Any failed record is an error: every scenario expects success.
    pub async fn deliver(
        &self,
        running: &Running,
        queue: &str,
        case: Case,
        bodies: &[String],
    ) -> Result<Sample, BenchError> {
        let arn = self
            .site(running.name())?
            .queues
            .get(queue)
            .cloned()
            .unwrap_or_default();
        let input = bodies
            .first()
            .map(|b| events::detail_type(b))
            .unwrap_or_default();
        let batch = events::sqs_batch(bodies, &arn);
        let (sample, answer) = self
            .invoke(running, &input, case, bodies.len(), batch.to_string())
            .await?;
        if !events::failed_records(&answer).is_empty() {
            return Err(BenchError::UnexpectedAnswer {
                function: running.name().to_owned(),
                input,
                answer: answer.to_string(),
            });
        }
        Ok(sample)
    }

    async fn invoke(
        &self,
        running: &Running,
        input: &str,
        case: Case,
        records: usize,
        payload: String,
    ) -> Result<(Sample, Value), BenchError> {
        let site = self.site(running.name())?;
        let calls_before = site.proxy.snapshot();
        let (logs_before, _) = running.log_volume();
        let invocation = running.invoke(payload).await?;
        let Some(answer) = invocation.answer.json() else {
            return Err(BenchError::UnexpectedAnswer {
                function: running.name().to_owned(),
                input: input.to_owned(),
                answer: invocation.answer.describe(),
            });
        };
        let (logs_after, _) = running.log_volume();
        let sample = Sample {
            function: running.name().to_owned(),
            input: input.to_owned(),
            case,
            records,
            duration_ms: invocation.duration.as_secs_f64() * 1000.0,
            calls: site.proxy.snapshot().since(&calls_before),
            log_bytes: logs_after.saturating_sub(logs_before),
        };
        Ok((sample, answer))
    }

    /// Receives (and deletes) every message waiting in every consumer queue: `(queue, body)`.
    pub async fn drain(&self) -> Result<Vec<(String, String)>, BenchError> {
        let mut all = Vec::new();
        for queue in self.consumer_of.keys() {
            let bodies =
                self.stack
                    .drain(&self.sqs, queue)
                    .await
                    .map_err(|e| BenchError::StandIn {
                        what: format!("draining {queue}"),
                        source: e.into(),
                    })?;
            all.extend(bodies.into_iter().map(|b| (queue.clone(), b)));
        }
        Ok(all)
    }

    /// The function that consumes `queue`.
    pub fn consumer_of(&self, queue: &str) -> Result<&str, BenchError> {
        self.consumer_of
            .get(queue)
            .map(String::as_str)
            .ok_or_else(|| BenchError::input("template.yaml", format!("no consumer of {queue}")))
    }
}
