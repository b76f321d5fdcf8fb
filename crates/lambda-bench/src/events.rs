//! Lambda events built from the repository's fixtures (`events/`): API Gateway HTTP API 2.0
//! requests with a chosen route, body and `Idempotency-Key`, and SQS batches around EventBridge
//! envelopes as the stand-in's queues deliver them.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::BenchError;

/// Reads a JSON fixture.
pub fn load(path: &Path) -> Result<Value, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| BenchError::input(path.display().to_string(), e))
}

/// An HTTP API request shaped like `template` (a fixture from `events/http/`), for `method`
/// and `path`, with `route_key` (e.g. `POST /orders`), an optional `Idempotency-Key` and body.
pub fn http_request(
    template: &Value,
    method: &str,
    path: &str,
    route_key: &str,
    idempotency_key: Option<&str>,
    body: Option<&str>,
    request_id: &str,
) -> Value {
    let mut event = template.clone();
    event["routeKey"] = json!(route_key);
    event["rawPath"] = json!(path);
    event["requestContext"]["routeKey"] = json!(route_key);
    event["requestContext"]["requestId"] = json!(request_id);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.remove("idempotency-key");
        if let Some(key) = idempotency_key {
            headers.insert("idempotency-key".to_owned(), json!(key));
        }
    }
    event["body"] = body.map_or(Value::Null, |b| json!(b));
    event["isBase64Encoded"] = json!(false);
    event
}

/// An SQS event whose records carry `bodies`, from the queue `queue_arn`.
pub fn sqs_batch(bodies: &[String], queue_arn: &str) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|body| {
            json!({
                "messageId": uuid::Uuid::new_v4().to_string(),
                "receiptHandle": format!("bench-{}", uuid::Uuid::new_v4().simple()),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1763895000000",
                    "SenderId": "AIDAEVENTBRIDGE",
                    "ApproximateFirstReceiveTimestamp": "1763895000100"
                },
                "messageAttributes": {},
                "md5OfBody": "00000000000000000000000000000000",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The `detail-type` of an EventBridge envelope (an SQS record's body), or `?` when absent.
pub fn detail_type(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail-type")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The ids of the records a consumer reported as failed (`batchItemFailures`).
pub fn failed_records(response: &Value) -> Vec<String> {
    response
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .map(|failures| {
            failures
                .iter()
                .filter_map(|f| f.get("itemIdentifier")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An HTTP API response's status code and JSON body.
pub fn http_response(response: &Value) -> (u16, Value) {
    let status = response
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let body = response
        .get("body")
        .and_then(Value::as_str)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../events")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn an_http_request_takes_route_key_and_body() {
        let event = http_request(
            &fixture("http/post-order.json"),
            "POST",
            "/returns",
            "POST /returns",
            Some("k-1"),
            Some("{}"),
            "r-1",
        );
        assert_eq!(event["rawPath"], "/returns");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(event["headers"]["idempotency-key"], "k-1");
        assert_eq!(event["body"], "{}");
        let get = http_request(
            &event,
            "GET",
            "/orders/1",
            "GET /orders/{id}",
            None,
            None,
            "r-2",
        );
        assert!(get["headers"].get("idempotency-key").is_none());
        assert!(get["body"].is_null());
    }

    #[test]
    fn an_sqs_batch_carries_every_body_with_its_queue() {
        let sqs = fixture("sqs/order-created.json");
        let body = sqs["Records"][0]["body"].as_str().unwrap().to_owned();
        let batch = sqs_batch(&[body.clone(), body], "arn:aws:sqs:us-east-1:1:q");
        let records = batch["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        assert_ne!(records[0]["messageId"], records[1]["messageId"]);
        assert_eq!(records[1]["eventSource"], "aws:sqs");
        assert_eq!(
            detail_type(records[0]["body"].as_str().unwrap()),
            "OrderCreated"
        );
    }

    #[test]
    fn answers_are_read_as_lambda_returns_them() {
        let failures = json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]});
        assert_eq!(failed_records(&failures), vec!["m-2".to_owned()]);
        assert!(failed_records(&json!({"batchItemFailures": []})).is_empty());
        let response = json!({"statusCode": 201, "body": "{\"order-id\":\"7\"}"});
        assert_eq!(http_response(&response), (201, json!({"order-id": "7"})));
    }
}
