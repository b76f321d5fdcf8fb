//! Table streams, as Lambda's DynamoDB event source mapping reads them: the records of each
//! stream that feeds a function, in order, in batches of its `BatchSize`, each batch's
//! partial response honoured (the batch is retried from its lowest failed record, up to the
//! source's `MaximumRetryAttempts`, then its records go to the on-failure listing).
//!
//! Where the records come from: an in-memory table's [`ChangeFeed`], or the stream of a
//! DynamoDB table read through the DynamoDB Streams API ([`StreamPoller`]; the runner's
//! `--dynamodb` mode, and the stand-in tests).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use eventing::{ChangeFeed, RelayOutcome, RelayReport};
use serde_json::{Value, json};

use crate::LocalError;

/// Capability: take a batch of stream records (an outbox relay).
#[async_trait::async_trait]
pub trait StreamConsumer: Send + Sync {
    /// Handles one batch (the records as Lambda delivers them); reports each record.
    async fn consume(&self, records: Vec<Value>, remaining: Option<Duration>) -> RelayReport;
}

#[async_trait::async_trait]
impl StreamConsumer for eventing::OutboxRelay {
    async fn consume(&self, records: Vec<Value>, remaining: Option<Duration>) -> RelayReport {
        let sequence_numbers: Vec<String> = records.iter().map(sequence_number).collect();
        match serde_json::from_value(json!({ "Records": records })) {
            Ok(batch) => self.process(batch, remaining).await,
            // Not the shape Lambda delivers: every record fails, as the Lambda would fail.
            Err(e) => RelayReport {
                records: sequence_numbers
                    .into_iter()
                    .map(|sequence_number| eventing::RelayedRecord {
                        sequence_number,
                        key: None,
                        outcome: RelayOutcome::Failed {
                            error_type: "UnrecognisedPayload",
                            error: e.to_string(),
                        },
                    })
                    .collect(),
            },
        }
    }
}

/// A record's `dynamodb.SequenceNumber`.
pub fn sequence_number(record: &Value) -> String {
    record
        .pointer("/dynamodb/SequenceNumber")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Reads a DynamoDB table's stream through the DynamoDB Streams API, every shard from its
/// oldest record (`TRIM_HORIZON`, the event source's starting position), remembering where
/// each shard was left.
#[derive(Debug)]
pub struct StreamPoller {
    streams: aws_sdk_dynamodbstreams::Client,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    stream_arn: Option<String>,
    /// Next iterator per shard; `None` once a closed shard is read to its end.
    iterators: BTreeMap<String, Option<String>>,
}

impl StreamPoller {
    /// A poller of `table`'s stream through `sdk`.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            table: table.into(),
            stream_arn: None,
            iterators: BTreeMap::new(),
        }
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> LocalError {
        LocalError::Stream {
            table: self.table.clone(),
            problem: format!("{what}: {e}"),
        }
    }

    /// Every record written since the last call, in shard order, as Lambda delivers them.
    pub async fn poll(&mut self) -> Result<Vec<Value>, LocalError> {
        let arn = match &self.stream_arn {
            Some(arn) => arn.clone(),
            None => {
                let table = self
                    .ddb
                    .describe_table()
                    .table_name(&self.table)
                    .send()
                    .await
                    .map_err(|e| self.error("DescribeTable", e.into_service_error()))?;
                let arn = table
                    .table
                    .and_then(|t| t.latest_stream_arn)
                    .ok_or_else(|| self.error("DescribeTable", "the table has no stream"))?;
                self.stream_arn = Some(arn.clone());
                arn
            }
        };
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .map_err(|e| self.error("DescribeStream", e.into_service_error()))?;
        for shard in description
            .stream_description
            .map(|d| d.shards.unwrap_or_default())
            .unwrap_or_default()
        {
            let Some(id) = shard.shard_id else { continue };
            if self.iterators.contains_key(&id) {
                continue;
            }
            let iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(&id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| self.error("GetShardIterator", e.into_service_error()))?
                .shard_iterator;
            self.iterators.insert(id, iterator);
        }
        let mut records = Vec::new();
        let shards: Vec<String> = self.iterators.keys().cloned().collect();
        for shard in shards {
            let Some(Some(iterator)) = self.iterators.get(&shard).cloned() else {
                continue;
            };
            let out = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .map_err(|e| self.error("GetRecords", e.into_service_error()))?;
            records.extend(
                out.records
                    .unwrap_or_default()
                    .iter()
                    .map(|r| lambda_record(r, &arn)),
            );
            self.iterators.insert(shard, out.next_shard_iterator);
        }
        Ok(records)
    }
}

/// An attribute value in DynamoDB's JSON form (`{"S": "..."}`), as Lambda delivers images.
fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(items) => json!({ "SS": items }),
        AttributeValue::Ns(items) => json!({ "NS": items }),
        AttributeValue::Bs(items) => {
            json!({ "BS": items.iter().map(|b| base64(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(items) => {
            json!({ "L": items.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": image_json(map) }),
        // A type newer than this SDK: passed on as null rather than dropped silently.
        _ => json!({ "NULL": true }),
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn image_json(image: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        image
            .iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect(),
    )
}

/// A DynamoDB Streams record in the shape Lambda hands a function.
fn lambda_record(record: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    let mut change = serde_json::Map::new();
    if let Some(stream) = &record.dynamodb {
        for (field, image) in [
            ("Keys", &stream.keys),
            ("NewImage", &stream.new_image),
            ("OldImage", &stream.old_image),
        ] {
            if let Some(image) = image {
                change.insert(field.to_owned(), image_json(image));
            }
        }
        change.insert(
            "SequenceNumber".to_owned(),
            json!(stream.sequence_number.clone().unwrap_or_default()),
        );
        change.insert(
            "SizeBytes".to_owned(),
            json!(stream.size_bytes.unwrap_or(0)),
        );
        if let Some(view) = &stream.stream_view_type {
            change.insert("StreamViewType".to_owned(), json!(view.as_str()));
        }
    }
    json!({
        "eventID": record.event_id.clone().unwrap_or_default(),
        "eventName": record.event_name.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
        "eventVersion": record.event_version.clone().unwrap_or_default(),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region.clone().unwrap_or_default(),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    })
}

/// Where a stream's records come from.
#[derive(Debug)]
pub enum StreamSource {
    /// An in-memory table's stream.
    Memory(ChangeFeed),
    /// A DynamoDB table's stream.
    DynamoDb(Box<StreamPoller>),
}

impl StreamSource {
    async fn fetch(&mut self, into: &mut VecDeque<Value>) -> Result<(), LocalError> {
        match self {
            Self::Memory(feed) => into.extend(feed.take(usize::MAX)),
            Self::DynamoDb(poller) => into.extend(poller.poll().await?),
        }
        Ok(())
    }
}

/// A record the relay failed on every allowed attempt (Lambda sends its batch's description
/// to the on-failure destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// The record's sequence number.
    pub sequence_number: String,
    /// The item's key, when known.
    pub key: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

/// One stream's reading state: where it is, and the batch being retried.
#[derive(Debug)]
pub struct StreamReader {
    source: StreamSource,
    /// Records read and not yet acknowledged, oldest first.
    pending: VecDeque<Value>,
    /// Attempts made on the batch at the head of `pending` (0 before the first).
    attempts: u32,
    batch_size: usize,
    max_retries: u32,
}

/// What one delivery of a batch came to.
#[derive(Debug, Default)]
pub struct Delivered {
    /// The relay's report.
    pub report: RelayReport,
    /// Which attempt of its batch this was (1 for the first).
    pub attempt: u32,
    /// Records given up on (after the last allowed attempt).
    pub given_up: Vec<FailedRecord>,
}

impl StreamReader {
    /// A reader of `source` in batches of `batch_size`, retrying a failing batch `max_retries`
    /// times.
    pub fn new(source: StreamSource, batch_size: usize, max_retries: u32) -> Self {
        Self {
            source,
            pending: VecDeque::new(),
            attempts: 0,
            batch_size: batch_size.max(1),
            max_retries,
        }
    }

    /// Delivers the next batch to `consumer`; `None` when the stream has nothing new.
    pub async fn deliver_next(
        &mut self,
        consumer: &dyn StreamConsumer,
        remaining: Option<Duration>,
    ) -> Result<Option<Delivered>, LocalError> {
        if self.pending.is_empty() {
            self.source.fetch(&mut self.pending).await?;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let n = self.batch_size.min(self.pending.len());
        let batch: Vec<Value> = self.pending.iter().take(n).cloned().collect();
        self.attempts += 1;
        let attempt = self.attempts;
        let report = consumer.consume(batch, remaining).await;
        // Lambda checkpoints before the lowest failed record and retries from there; a record
        // without a report (a consumer that answered for fewer) counts as failed.
        let first_failed = (0..n).find(|&i| {
            report
                .records
                .get(i)
                .is_none_or(|r| matches!(r.outcome, RelayOutcome::Failed { .. }))
        });
        let mut given_up = Vec::new();
        match first_failed {
            None => {
                self.pending.drain(..n);
                self.attempts = 0;
            }
            Some(failed) => {
                self.pending.drain(..failed);
                if attempt > self.max_retries {
                    for (i, record) in self.pending.drain(..n - failed).enumerate() {
                        let reported = report.records.get(failed + i);
                        given_up.push(FailedRecord {
                            sequence_number: sequence_number(&record),
                            key: reported.and_then(|r| r.key.clone()),
                            attempts: attempt,
                            error: match reported.map(|r| &r.outcome) {
                                Some(RelayOutcome::Failed { error, .. }) => error.clone(),
                                _ => "not reported".to_owned(),
                            },
                        });
                    }
                    self.attempts = 0;
                }
            }
        }
        Ok(Some(Delivered {
            report,
            attempt,
            given_up,
        }))
    }

    /// Records read and not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.pending.len()
            + match &self.source {
                StreamSource::Memory(feed) => feed.pending(),
                StreamSource::DynamoDb(_) => 0,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fails every record whose key is `ORDER#bad`, counting calls.
    struct Picky {
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl StreamConsumer for Picky {
        async fn consume(&self, records: Vec<Value>, _: Option<Duration>) -> RelayReport {
            self.calls.fetch_add(1, Ordering::Relaxed);
            RelayReport {
                records: records
                    .iter()
                    .map(|r| {
                        let key = r.pointer("/dynamodb/Keys/pk/S").and_then(Value::as_str);
                        eventing::RelayedRecord {
                            sequence_number: sequence_number(r),
                            key: key.map(str::to_owned),
                            outcome: if key == Some("ORDER#bad") {
                                RelayOutcome::Failed {
                                    error_type: "PublishFailed",
                                    error: "down".into(),
                                }
                            } else {
                                RelayOutcome::Skipped
                            },
                        }
                    })
                    .collect(),
            }
        }
    }

    #[tokio::test]
    async fn a_failing_record_is_retried_with_what_follows_then_given_up() {
        let feed = ChangeFeed::new();
        for key in ["ORDER#a", "ORDER#bad", "ORDER#c"] {
            feed.record(key, None, None);
        }
        let consumer = Arc::new(Picky {
            calls: AtomicUsize::new(0),
        });
        let mut reader = StreamReader::new(StreamSource::Memory(feed.clone()), 10, 2);
        let mut given_up = Vec::new();
        while let Some(delivered) = reader.deliver_next(consumer.as_ref(), None).await.unwrap() {
            given_up.extend(delivered.given_up);
        }
        // First attempt: a, bad, c; then two retries from bad: bad, c.
        assert_eq!(consumer.calls.load(Ordering::Relaxed), 3);
        let keys: Vec<_> = given_up.iter().map(|g| g.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            ["ORDER#bad", "ORDER#c"],
            "the failed record and what followed it"
        );
        assert_eq!(given_up[0].attempts, 3);
        assert_eq!(reader.pending(), 0);

        // What comes after is read as usual.
        feed.record("ORDER#d", None, None);
        let next = reader
            .deliver_next(consumer.as_ref(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((next.attempt, next.given_up.len()), (1, 0));
    }
}
