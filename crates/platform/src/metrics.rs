//! Metrics in CloudWatch's Embedded Metric Format (EMF): the log line is the metric.
//!
//! A function counts what one invocation did in a [`Counts`] and hands it to its
//! [`MetricsSink`] when the invocation ends. On Lambda the sink is [`Emf`]: one JSON document on
//! standard output, which CloudWatch Logs turns into metrics (no `PutMetricData` call, no extra
//! permission, no work at cold start). The namespace comes from `POWERTOOLS_METRICS_NAMESPACE`,
//! the one dimension `service` from `POWERTOOLS_SERVICE_NAME`, as Powertools for AWS Lambda
//! names them; the metric names are [`name`]'s, documented in `docs/operations.md`.
//!
//! AWS requests are counted where they leave the process: [`counting`] wraps the HTTP client
//! every SDK client of a function is built with, and [`take_aws_requests`] hands over what it
//! counted since the last call (one invocation at a time per Lambda environment).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use serde_json::{Map, Value, json};

use crate::config::Env;

/// Environment variable naming the metrics' namespace (Powertools' name for it).
pub const NAMESPACE_ENV: &str = "POWERTOOLS_METRICS_NAMESPACE";
/// Environment variable naming the `service` dimension's value (Powertools' name for it).
pub const SERVICE_ENV: &str = "POWERTOOLS_SERVICE_NAME";
/// Namespace when `POWERTOOLS_METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "Commerce";

/// The metric names (`docs/operations.md` says what each counts).
pub mod name {
    /// Operations run for the first time.
    pub const IDEMPOTENCY_FRESH: &str = "IdempotencyFresh";
    /// Duplicates answered from the stored result.
    pub const IDEMPOTENCY_REPLAYED: &str = "IdempotencyReplayed";
    /// Duplicates refused while the first is still running.
    pub const IDEMPOTENCY_IN_PROGRESS: &str = "IdempotencyInProgress";
    /// Completions or releases refused because another invocation holds the claim.
    pub const IDEMPOTENCY_CLAIM_LOST: &str = "IdempotencyClaimLost";
    /// Same key, different payload.
    pub const IDEMPOTENCY_VALIDATION_FAILED: &str = "IdempotencyValidationFailed";
    /// Stored results that could not be read.
    pub const IDEMPOTENCY_UNREADABLE: &str = "IdempotencyUnreadable";
    /// Records received in a batch (SQS messages, stream records).
    pub const BATCH_RECORDS: &str = "BatchRecords";
    /// Records reported as failed in the partial batch response.
    pub const BATCH_ITEM_FAILURES: &str = "BatchItemFailures";
    /// Events accepted by EventBridge.
    pub const EVENTS_PUBLISHED: &str = "EventsPublished";
    /// `PutEvents` requests re-sent for failed entries.
    pub const PUBLISH_RETRIES: &str = "PublishRetries";
    /// Entries still failed after the retries.
    pub const PUBLISH_FAILED_ENTRIES: &str = "PublishFailedEntries";
    /// DynamoDB requests sent (every attempt).
    pub const DYNAMODB_CALLS: &str = "DynamoDbCalls";
    /// `PutEvents` requests sent (every attempt).
    pub const PUT_EVENTS_CALLS: &str = "PutEventsCalls";
}

/// What one invocation counted, by metric name (unit `Count`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<&'static str, u64>);

impl Counts {
    /// Nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` to `metric`.
    pub fn add(&mut self, metric: &'static str, n: u64) {
        *self.0.entry(metric).or_default() += n;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (metric, n) in &other.0 {
            self.add(metric, *n);
        }
    }

    /// The count of `metric` (0 when never counted).
    pub fn get(&self, metric: &str) -> u64 {
        self.0.get(metric).copied().unwrap_or(0)
    }

    /// The counts above zero, by name.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
    }
}

/// Where a function's counts go when an invocation ends.
pub trait MetricsSink: Send + Sync {
    /// Records one invocation's counts.
    fn record(&self, counts: &Counts);
}

/// A sink that drops everything (tests, and hosts that read the counters themselves).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn record(&self, _: &Counts) {}
}

/// The Lambda sink: one EMF document per invocation, on its own line of standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emf {
    namespace: String,
    service: String,
}

impl Emf {
    /// A sink for `namespace` with `service` as its one dimension's value.
    pub fn new(namespace: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            service: service.into(),
        }
    }

    /// From `POWERTOOLS_METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]) and
    /// `POWERTOOLS_SERVICE_NAME` (default `service_default`, the binary's name).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>, service_default: &str) -> Self {
        let or = |name, default: &str| env.required(name).unwrap_or_else(|_| default.to_owned());
        Self::new(
            or(NAMESPACE_ENV, DEFAULT_NAMESPACE),
            or(SERVICE_ENV, service_default),
        )
    }

    /// The EMF document for `counts` at `timestamp_ms` (epoch milliseconds); `None` when
    /// nothing was counted (no line is better than a line of zeros: alarms treat missing data
    /// as not breaching).
    pub fn document(&self, counts: &Counts, timestamp_ms: u64) -> Option<Value> {
        let mut root = Map::new();
        let mut definitions = Vec::new();
        for (metric, n) in counts.nonzero() {
            definitions.push(json!({ "Name": metric, "Unit": "Count" }));
            root.insert(metric.to_owned(), json!(n));
        }
        if definitions.is_empty() {
            return None;
        }
        root.insert("service".to_owned(), json!(self.service));
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["service"]],
                    "Metrics": definitions,
                }],
            }),
        );
        Some(Value::Object(root))
    }
}

impl MetricsSink for Emf {
    fn record(&self, counts: &Counts) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if let Some(document) = self.document(counts, now_ms) {
            // A closed stdout must not fail the invocation: the metrics are lost, not the work.
            let _ = writeln!(std::io::stdout().lock(), "{document}");
        }
    }
}

static DYNAMODB_REQUESTS: AtomicU64 = AtomicU64::new(0);
static PUT_EVENTS_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The AWS requests this process sent since the last call, as [`name::DYNAMODB_CALLS`] and
/// [`name::PUT_EVENTS_CALLS`] (every attempt: each is a billed request).
pub fn take_aws_requests() -> Counts {
    let mut counts = Counts::new();
    counts.add(
        name::DYNAMODB_CALLS,
        DYNAMODB_REQUESTS.swap(0, Ordering::Relaxed),
    );
    counts.add(
        name::PUT_EVENTS_CALLS,
        PUT_EVENTS_REQUESTS.swap(0, Ordering::Relaxed),
    );
    counts
}

/// Counts a request by its `X-Amz-Target` (the JSON protocols of DynamoDB and EventBridge name
/// the operation there, whatever the endpoint: AWS or the local stand-in).
fn count(request: &HttpRequest) {
    let Some(target) = request.headers().get("x-amz-target") else {
        return;
    };
    if target.starts_with("DynamoDB_") {
        DYNAMODB_REQUESTS.fetch_add(1, Ordering::Relaxed);
    } else if target == "AWSEvents.PutEvents" {
        PUT_EVENTS_REQUESTS.fetch_add(1, Ordering::Relaxed);
    }
}

/// `inner`, counting every request it sends for [`take_aws_requests`].
pub fn counting(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(CountingClient(inner))
}

#[derive(Debug)]
struct CountingClient(SharedHttpClient);

impl HttpClient for CountingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CountingConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

#[derive(Debug)]
struct CountingConnector(SharedHttpConnector);

impl HttpConnector for CountingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        count(&request);
        self.0.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CloudWatch's published EMF JSON schema (the specification's "Embedded metric format
    /// example and JSON schema"), checked in as test data. It names no draft; its `$id`s are
    /// draft-07 style (JSON pointer fragments), so it is read as draft 7.
    fn published_schema() -> jsonschema::Validator {
        let schema: Value =
            serde_json::from_str(include_str!("../tests/data/emf-schema.json")).unwrap();
        jsonschema::draft7::new(&schema).unwrap()
    }

    #[test]
    fn a_document_has_one_line_of_every_counted_metric_and_passes_the_published_schema() {
        let mut counts = Counts::new();
        counts.add(name::BATCH_RECORDS, 3);
        counts.add(name::IDEMPOTENCY_FRESH, 2);
        counts.add(name::IDEMPOTENCY_REPLAYED, 0);
        let emf = Emf::new("Commerce", "orders-events");
        let document = emf.document(&counts, 1_764_979_200_000).unwrap();
        let validator = published_schema();
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}: {document}");
        assert_eq!(document["service"], "orders-events");
        assert_eq!(document["BatchRecords"], 3);
        assert_eq!(
            document.get("IdempotencyReplayed"),
            None,
            "zeros are left out"
        );
        let metrics = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "Commerce");
        assert_eq!(metrics["Dimensions"], json!([["service"]]));
        assert_eq!(metrics["Metrics"].as_array().unwrap().len(), 2);
        assert_eq!(
            emf.document(&Counts::new(), 0),
            None,
            "nothing counted, no line"
        );
    }

    #[test]
    fn the_published_schema_refuses_what_cloudwatch_would_not_extract() {
        let validator = published_schema();
        let no_timestamp = json!({ "_aws": { "CloudWatchMetrics": [] } });
        assert!(!validator.is_valid(&no_timestamp));
        let bad_unit = json!({ "_aws": { "Timestamp": 1, "CloudWatchMetrics": [{
            "Namespace": "N", "Dimensions": [["service"]],
            "Metrics": [{ "Name": "X", "Unit": "Apples" }] }] }, "X": 1, "service": "s" });
        assert!(!validator.is_valid(&bad_unit));
    }

    #[test]
    fn the_namespace_and_service_come_from_powertools_variables() {
        let env = Env::from_fn(|name| (name == SERVICE_ENV).then(|| "support-api".to_owned()));
        assert_eq!(
            Emf::from_env(&env, "fallback"),
            Emf::new(DEFAULT_NAMESPACE, "support-api")
        );
        let empty = Env::from_fn(|_| None);
        assert_eq!(
            Emf::from_env(&empty, "orders-api"),
            Emf::new("Commerce", "orders-api")
        );
    }

    /// Answers every request with `200 {}` without a network.
    #[derive(Debug)]
    struct Canned;

    impl HttpConnector for Canned {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Ok(
                aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                    200.try_into().unwrap(),
                    aws_smithy_types::body::SdkBody::from("{}"),
                ),
            ))
        }
    }

    #[tokio::test]
    async fn every_request_an_sdk_client_sends_is_counted_by_service() {
        let client = counting(aws_smithy_runtime_api::client::http::http_client_fn(
            |_, _| SharedHttpConnector::new(Canned),
        ));
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::for_tests(),
            ))
            .http_client(client)
            .build();
        take_aws_requests();
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        for _ in 0..2 {
            ddb.get_item().table_name("t").send().await.unwrap();
        }
        aws_sdk_eventbridge::Client::new(&sdk)
            .put_events()
            .send()
            .await
            .unwrap();
        let counted = take_aws_requests();
        assert_eq!(counted.get(name::DYNAMODB_CALLS), 2);
        assert_eq!(counted.get(name::PUT_EVENTS_CALLS), 1);
        assert_eq!(take_aws_requests().nonzero().count(), 0, "taken, so reset");
    }

    #[test]
    fn counts_merge_and_skip_zeros() {
        let mut a = Counts::new();
        a.add(name::DYNAMODB_CALLS, 2);
        let mut b = Counts::new();
        b.add(name::DYNAMODB_CALLS, 1);
        b.add(name::PUT_EVENTS_CALLS, 0);
        a.merge(&b);
        assert_eq!(a.get(name::DYNAMODB_CALLS), 3);
        assert_eq!(a.nonzero().collect::<Vec<_>>(), [(name::DYNAMODB_CALLS, 3)]);
    }
}
