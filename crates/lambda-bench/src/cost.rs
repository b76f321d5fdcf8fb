//! Cost from counted usage and list prices (kept, with their date, in `docs/prices.yaml`).

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// AWS list prices in US dollars, as recorded in the prices file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Prices {
    /// When the prices were recorded (ISO date).
    pub date: String,
    /// The region they apply to.
    pub region: String,
    /// Lambda (arm64).
    pub lambda: LambdaPrices,
    /// DynamoDB on-demand capacity.
    pub dynamodb: DynamoDbPrices,
    /// EventBridge custom events.
    pub eventbridge: EventBridgePrices,
    /// SQS standard queues.
    pub sqs: SqsPrices,
    /// API Gateway HTTP APIs.
    pub http_api: HttpApiPrices,
    /// CloudWatch Logs.
    pub cloudwatch_logs: LogsPrices,
    /// Usage assumptions that are not measured (how often an environment is new).
    pub assumptions: Assumptions,
}

/// Lambda prices.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LambdaPrices {
    /// Per GB-second of arm64 duration (first tier).
    pub arm64_gb_second: f64,
    /// Per million requests.
    pub requests_per_million: f64,
}

/// DynamoDB on-demand prices.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DynamoDbPrices {
    /// Per million write request units.
    pub write_units_per_million: f64,
    /// Per million read request units.
    pub read_units_per_million: f64,
}

/// EventBridge prices.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EventBridgePrices {
    /// Per million custom events published (each 64 KB chunk of an entry is one event).
    pub custom_events_per_million: f64,
}

/// SQS prices.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SqsPrices {
    /// Per million standard-queue requests (each 64 KB chunk is one request).
    pub requests_per_million: f64,
}

/// API Gateway HTTP API prices.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HttpApiPrices {
    /// Per million requests (first tier).
    pub requests_per_million: f64,
}

/// CloudWatch Logs prices.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LogsPrices {
    /// Per GB ingested (standard class).
    pub ingested_per_gb: f64,
}

/// Assumptions the bench cannot measure locally.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Assumptions {
    /// Share of invocations that start a new execution environment (pay init).
    pub cold_start_fraction: f64,
}

impl Prices {
    /// Parses a prices file.
    pub fn parse(text: &str, path: &str) -> Result<Self, BenchError> {
        serde_norway::from_str(text).map_err(|e| BenchError::input(path, e))
    }

    /// Reads and parses a prices file.
    pub fn load(path: &std::path::Path) -> Result<Self, BenchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }
}

/// Billable usage (any unit of work: one order, a million orders).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Lambda invocations.
    pub lambda_requests: f64,
    /// Lambda billed duration times memory, in GB-seconds (init included).
    pub lambda_gb_seconds: f64,
    /// DynamoDB write request units.
    pub dynamodb_write_units: f64,
    /// DynamoDB read request units.
    pub dynamodb_read_units: f64,
    /// EventBridge events published.
    pub eventbridge_events: f64,
    /// SQS requests (EventBridge's sends, the event source mapping's receives and deletes).
    pub sqs_requests: f64,
    /// HTTP API requests.
    pub http_api_requests: f64,
    /// Bytes of logs ingested.
    pub log_bytes: f64,
}

impl Usage {
    /// Adds `other` into this usage.
    pub fn add(&mut self, other: &Usage) {
        self.lambda_requests += other.lambda_requests;
        self.lambda_gb_seconds += other.lambda_gb_seconds;
        self.dynamodb_write_units += other.dynamodb_write_units;
        self.dynamodb_read_units += other.dynamodb_read_units;
        self.eventbridge_events += other.eventbridge_events;
        self.sqs_requests += other.sqs_requests;
        self.http_api_requests += other.http_api_requests;
        self.log_bytes += other.log_bytes;
    }

    /// This usage times `factor` (e.g. per order -> per million orders).
    pub fn scaled(&self, factor: f64) -> Usage {
        Usage {
            lambda_requests: self.lambda_requests * factor,
            lambda_gb_seconds: self.lambda_gb_seconds * factor,
            dynamodb_write_units: self.dynamodb_write_units * factor,
            dynamodb_read_units: self.dynamodb_read_units * factor,
            eventbridge_events: self.eventbridge_events * factor,
            sqs_requests: self.sqs_requests * factor,
            http_api_requests: self.http_api_requests * factor,
            log_bytes: self.log_bytes * factor,
        }
    }

    /// What this usage costs at `prices`, line by line.
    pub fn cost(&self, prices: &Prices) -> Cost {
        let per_million = |count: f64, price: f64| count / 1e6 * price;
        let lines = vec![
            (
                "Lambda requests",
                per_million(self.lambda_requests, prices.lambda.requests_per_million),
            ),
            (
                "Lambda duration (arm64 GB-s)",
                self.lambda_gb_seconds * prices.lambda.arm64_gb_second,
            ),
            (
                "DynamoDB writes",
                per_million(
                    self.dynamodb_write_units,
                    prices.dynamodb.write_units_per_million,
                ),
            ),
            (
                "DynamoDB reads",
                per_million(
                    self.dynamodb_read_units,
                    prices.dynamodb.read_units_per_million,
                ),
            ),
            (
                "EventBridge events",
                per_million(
                    self.eventbridge_events,
                    prices.eventbridge.custom_events_per_million,
                ),
            ),
            (
                "SQS requests",
                per_million(self.sqs_requests, prices.sqs.requests_per_million),
            ),
            (
                "HTTP API requests",
                per_million(self.http_api_requests, prices.http_api.requests_per_million),
            ),
            (
                "CloudWatch Logs ingestion",
                self.log_bytes / 1e9 * prices.cloudwatch_logs.ingested_per_gb,
            ),
        ];
        let total = lines.iter().map(|(_, v)| v).sum();
        Cost {
            lines: lines
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            total,
        }
    }
}

/// A cost, by line, in US dollars.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// `(what, dollars)`.
    pub lines: Vec<(String, f64)>,
    /// Sum of the lines.
    pub total: f64,
}

/// Lambda GB-seconds of one invocation: the duration rounded up to the next millisecond (Lambda
/// bills in 1 ms steps) times the configured memory.
pub fn billed_gb_seconds(duration_ms: f64, memory_mb: u32) -> f64 {
    duration_ms.max(0.0).ceil() / 1000.0 * f64::from(memory_mb) / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: &str = include_str!("../../../docs/prices.yaml");

    #[test]
    fn the_prices_file_parses_and_is_dated() {
        let prices = Prices::parse(PRICES, "docs/prices.yaml").unwrap();
        assert_eq!(prices.date.len(), 10, "an ISO date: {}", prices.date);
        assert!(prices.lambda.arm64_gb_second > 0.0);
        assert!(prices.assumptions.cold_start_fraction < 1.0);
    }

    #[test]
    fn a_million_writes_cost_the_write_unit_price() {
        let prices = Prices::parse(PRICES, "docs/prices.yaml").unwrap();
        let usage = Usage {
            dynamodb_write_units: 1e6,
            ..Usage::default()
        };
        let cost = usage.cost(&prices);
        assert_eq!(cost.total, prices.dynamodb.write_units_per_million);
        assert_eq!(usage.scaled(2.0).cost(&prices).total, 2.0 * cost.total);
    }

    #[test]
    fn duration_is_billed_per_started_millisecond() {
        assert_eq!(billed_gb_seconds(1.2, 1024), 0.002);
        assert_eq!(billed_gb_seconds(3.0, 256), 0.003 / 4.0);
        assert_eq!(billed_gb_seconds(-1.0, 256), 0.0);
    }
}
