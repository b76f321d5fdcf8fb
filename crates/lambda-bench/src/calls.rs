//! AWS calls as the proxy saw them: counted by service, operation and resource, with the
//! outcome that matters for billing (a failed conditional write is still a billed write).

use std::collections::BTreeMap;

use serde::Serialize;

/// What a call was: `dynamodb` / `events` / `sqs` / another service, the operation (`PutItem`),
/// and the table or bus it named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CallKey {
    /// `dynamodb`, `events`, `sqs`, or the raw target prefix.
    pub service: String,
    /// The API operation, e.g. `PutItem`, `PutEvents`.
    pub operation: String,
    /// `TableName` for DynamoDB, the first entry's `EventBusName` for PutEvents.
    pub resource: Option<String>,
}

/// Counters of one [`CallKey`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallTally {
    /// Requests sent.
    pub calls: u64,
    /// Of which answered `ConditionalCheckFailedException` (billed like any write).
    pub failed_conditions: u64,
    /// Of which answered another error status.
    pub errors: u64,
    /// PutEvents entries sent (0 for other operations).
    pub entries: u64,
    /// DynamoDB request units billed, estimated from the item size in the request (a write is
    /// one unit per started KB, a read one unit per started 4 KB).
    pub capacity_units: u64,
}

impl CallTally {
    fn add(&mut self, other: &CallTally) {
        self.calls += other.calls;
        self.failed_conditions += other.failed_conditions;
        self.errors += other.errors;
        self.entries += other.entries;
        self.capacity_units += other.capacity_units;
    }

    fn minus(&self, earlier: &CallTally) -> CallTally {
        CallTally {
            calls: self.calls.saturating_sub(earlier.calls),
            failed_conditions: self
                .failed_conditions
                .saturating_sub(earlier.failed_conditions),
            errors: self.errors.saturating_sub(earlier.errors),
            entries: self.entries.saturating_sub(earlier.entries),
            capacity_units: self.capacity_units.saturating_sub(earlier.capacity_units),
        }
    }
}

/// Every call counted so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// Counters per call kind.
    pub by_key: BTreeMap<CallKey, CallTally>,
}

/// DynamoDB operations that write (billed in write request units).
const DYNAMODB_WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];
/// DynamoDB operations that read (billed in read request units).
const DYNAMODB_READS: [&str; 6] = [
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
    "DescribeTable",
];

impl CallCounts {
    /// Records one call.
    pub fn record(&mut self, key: CallKey, tally: CallTally) {
        self.by_key.entry(key).or_default().add(&tally);
    }

    /// The calls made since `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        let by_key = self
            .by_key
            .iter()
            .filter_map(|(key, now)| {
                let delta = match earlier.by_key.get(key) {
                    Some(before) => now.minus(before),
                    None => *now,
                };
                (delta != CallTally::default()).then(|| (key.clone(), delta))
            })
            .collect();
        CallCounts { by_key }
    }

    /// Adds `other` into these counts.
    pub fn merge(&mut self, other: &CallCounts) {
        for (key, tally) in &other.by_key {
            self.record(key.clone(), *tally);
        }
    }

    fn sum(&self, keep: impl Fn(&CallKey) -> bool) -> CallTally {
        let mut total = CallTally::default();
        for (key, tally) in &self.by_key {
            if keep(key) {
                total.add(tally);
            }
        }
        total
    }

    /// DynamoDB write requests (any table; `table` narrows to one).
    pub fn dynamodb_writes(&self, table: Option<&str>) -> CallTally {
        self.sum(|k| {
            k.service == "dynamodb"
                && DYNAMODB_WRITES.contains(&k.operation.as_str())
                && table.is_none_or(|t| k.resource.as_deref() == Some(t))
        })
    }

    /// DynamoDB read requests (any table; `table` narrows to one).
    pub fn dynamodb_reads(&self, table: Option<&str>) -> CallTally {
        self.sum(|k| {
            k.service == "dynamodb"
                && DYNAMODB_READS.contains(&k.operation.as_str())
                && table.is_none_or(|t| k.resource.as_deref() == Some(t))
        })
    }

    /// PutEvents requests (their `entries` are the events billed).
    pub fn put_events(&self) -> CallTally {
        self.sum(|k| k.service == "events" && k.operation == "PutEvents")
    }

    /// Every call, all services.
    pub fn total(&self) -> CallTally {
        self.sum(|_| true)
    }
}

/// Classifies a request from its `x-amz-target` header and JSON body (the DynamoDB, EventBridge
/// and SQS JSON protocols all carry the operation in that header).
pub fn classify(target: Option<&str>, body: &[u8]) -> (CallKey, CallTally) {
    let (service, operation) = match target.and_then(|t| t.split_once('.')) {
        Some((prefix, op)) => {
            let service = match prefix {
                p if p.starts_with("DynamoDB_") => "dynamodb",
                "AWSEvents" => "events",
                "AmazonSQS" => "sqs",
                other => other,
            };
            (service.to_owned(), op.to_owned())
        }
        None => ("unknown".to_owned(), target.unwrap_or("unknown").to_owned()),
    };
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let resource = match service.as_str() {
        "dynamodb" => json
            .get("TableName")
            .and_then(|t| t.as_str())
            .map(str::to_owned),
        "events" => json
            .pointer("/Entries/0/EventBusName")
            .and_then(|t| t.as_str())
            .map(str::to_owned),
        _ => None,
    };
    let entries = if service == "events" && operation == "PutEvents" {
        json.get("Entries")
            .and_then(|e| e.as_array())
            .map_or(0, |e| e.len() as u64)
    } else {
        0
    };
    let capacity_units = if service == "dynamodb" {
        dynamodb_units(&operation, &json)
    } else {
        0
    };
    let key = CallKey {
        service,
        operation,
        resource,
    };
    let tally = CallTally {
        calls: 1,
        entries,
        capacity_units,
        ..CallTally::default()
    };
    (key, tally)
}

/// Billed units of one DynamoDB request, from the item the request carries. The JSON text of an
/// item slightly overstates its DynamoDB size (type tags, quotes), so this errs high; an update's
/// size is that of the whole item afterwards, which the request does not show, so an update is
/// estimated from its expression values, at least one unit.
fn dynamodb_units(operation: &str, json: &serde_json::Value) -> u64 {
    let size_of = |v: Option<&serde_json::Value>| v.map_or(0, |v| v.to_string().len() as u64);
    match operation {
        "PutItem" => size_of(json.get("Item")).div_ceil(1024).max(1),
        "UpdateItem" => (size_of(json.get("Key")) + size_of(json.get("ExpressionAttributeValues")))
            .div_ceil(1024)
            .max(1),
        // A read is one unit per started 4 KB when strongly consistent (ours are: the item is not
        // in the request, and our items are far below 4 KB); an eventually consistent read,
        // billed half a unit, is counted as one, erring high.
        _ => 1,
    }
}

/// Marks a response's outcome on a classified call.
pub fn mark_outcome(tally: &mut CallTally, status: u16, body: &[u8]) {
    if status < 300 {
        return;
    }
    let text = String::from_utf8_lossy(body);
    if text.contains("ConditionalCheckFailed") {
        tally.failed_conditions += 1;
    } else {
        tally.errors += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conditional_put_is_a_write_on_its_table() {
        let (key, tally) = classify(
            Some("DynamoDB_20120810.PutItem"),
            br#"{"TableName":"dev-IdempotencyTable","Item":{"id":{"S":"x"}}}"#,
        );
        assert_eq!(key.service, "dynamodb");
        assert_eq!(key.operation, "PutItem");
        assert_eq!(key.resource.as_deref(), Some("dev-IdempotencyTable"));
        let mut counts = CallCounts::default();
        counts.record(key, tally);
        assert_eq!(
            counts.dynamodb_writes(Some("dev-IdempotencyTable")).calls,
            1
        );
        assert_eq!(counts.dynamodb_writes(Some("dev-OrdersTable")).calls, 0);
        assert_eq!(counts.dynamodb_reads(None).calls, 0);
    }

    #[test]
    fn put_events_counts_requests_and_entries() {
        let (key, tally) = classify(
            Some("AWSEvents.PutEvents"),
            br#"{"Entries":[{"EventBusName":"dev-commerce"},{"EventBusName":"dev-commerce"}]}"#,
        );
        let mut counts = CallCounts::default();
        counts.record(key, tally);
        assert_eq!(counts.put_events().calls, 1);
        assert_eq!(counts.put_events().entries, 2);
    }

    #[test]
    fn a_failed_condition_is_told_apart_from_an_error() {
        let mut tally = CallTally {
            calls: 1,
            ..CallTally::default()
        };
        mark_outcome(
            &mut tally,
            400,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#,
        );
        mark_outcome(&mut tally, 500, b"oops");
        mark_outcome(&mut tally, 200, b"{}");
        assert_eq!((tally.failed_conditions, tally.errors), (1, 1));
    }

    #[test]
    fn a_delta_keeps_only_what_changed() {
        let key = |op: &str| CallKey {
            service: "dynamodb".into(),
            operation: op.into(),
            resource: Some("t".into()),
        };
        let one = CallTally {
            calls: 1,
            capacity_units: 1,
            ..CallTally::default()
        };
        let mut before = CallCounts::default();
        before.record(key("GetItem"), one);
        let mut after = before.clone();
        after.record(key("PutItem"), one);
        after.record(key("PutItem"), one);
        let delta = after.since(&before);
        assert_eq!(delta.by_key.len(), 1);
        assert_eq!(delta.dynamodb_writes(None).calls, 2);
    }

    #[test]
    fn a_large_item_costs_a_unit_per_started_kilobyte() {
        let big = "x".repeat(1500);
        let body = format!(r#"{{"TableName":"t","Item":{{"doc":{{"S":"{big}"}}}}}}"#);
        let (_, tally) = classify(Some("DynamoDB_20120810.PutItem"), body.as_bytes());
        assert_eq!(tally.capacity_units, 2);
    }
}
