//! Reading fixture files (`events/`): bare EventBridge events, SQS batches of them, API Gateway
//! HTTP API requests. Everything is validated against the contract before anything is injected,
//! and every refusal names the file and the field.

use std::path::Path;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use contracts::{
    AnyEvent, Detail, DomainEvent, OrderCreated, OrderPicked, OrderShipped, ParseError,
    ReturnReceived, ReturnRequested,
};
use platform::http::ApiRequest;
use serde_json::Value;

use crate::LocalError;
use crate::bus::Entry;

/// What a fixture file asks the runner to do, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Injection {
    /// Put this event on the bus.
    Event(Entry),
    /// Serve this HTTP request.
    Request(ApiRequest),
}

fn invalid(path: &str, field: impl Into<String>, problem: impl Into<String>) -> LocalError {
    LocalError::InvalidFixture {
        path: path.to_owned(),
        field: field.into(),
        problem: problem.into(),
    }
}

/// Where in `detail` the contract type refuses it, and why: `("detail.data.total", "invalid
/// type: ...")`. A missing field is named itself (`detail.metadata.idempotency-key`).
fn detail_fault(detail_type: &str, detail: &Value) -> Option<(String, String)> {
    fn probe<E: DomainEvent>(detail: &Value) -> Option<(String, String)> {
        let err = serde_path_to_error::deserialize::<_, Detail<E>>(detail).err()?;
        let mut path = match err.path().to_string().as_str() {
            "." | "" => "detail".to_owned(),
            inner => format!("detail.{inner}"),
        };
        let message = err.inner().to_string();
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            path = format!("{path}.{missing}");
        }
        Some((path, message))
    }
    match detail_type {
        OrderCreated::DETAIL_TYPE => probe::<OrderCreated>(detail),
        OrderPicked::DETAIL_TYPE => probe::<OrderPicked>(detail),
        OrderShipped::DETAIL_TYPE => probe::<OrderShipped>(detail),
        ReturnRequested::DETAIL_TYPE => probe::<ReturnRequested>(detail),
        ReturnReceived::DETAIL_TYPE => probe::<ReturnReceived>(detail),
        _ => None,
    }
}

/// Validates an EventBridge envelope (`at` prefixes field names, e.g. `Records[0].body.`).
pub fn envelope_entry(path: &str, at: &str, envelope: &Value) -> Result<Entry, LocalError> {
    let Some(fields) = envelope.as_object() else {
        return Err(invalid(
            path,
            format!("{at}(root)"),
            "an EventBridge event must be a JSON object",
        ));
    };
    let text = |name: &str| match fields.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(invalid(path, format!("{at}{name}"), "must be a string")),
        None => Err(invalid(path, format!("{at}{name}"), "is missing")),
    };
    let source = text("source")?;
    let detail_type = text("detail-type")?;
    let detail = match fields.get("detail") {
        Some(detail @ Value::Object(_)) => detail,
        Some(_) => {
            return Err(invalid(
                path,
                format!("{at}detail"),
                "must be a JSON object",
            ));
        }
        None => return Err(invalid(path, format!("{at}detail"), "is missing")),
    };
    match AnyEvent::parse(source, detail_type, detail.clone()) {
        Ok(_) => Ok(Entry::from_parts(source, detail_type, detail)),
        Err(ParseError::UnknownType { .. }) => {
            let known = contracts::ROUTES
                .iter()
                .map(|(s, d)| format!("{s}/{d}"))
                .collect::<Vec<_>>()
                .join(", ");
            let field = if contracts::source::ALL.contains(&source) {
                "detail-type"
            } else {
                "source"
            };
            Err(invalid(
                path,
                format!("{at}{field}"),
                format!(
                    "unknown event {source}/{detail_type}: not in the contract (known: {known})"
                ),
            ))
        }
        Err(e @ ParseError::InvalidDetail { .. }) => {
            let (field, problem) = detail_fault(detail_type, detail)
                .unwrap_or_else(|| ("detail".to_owned(), e.to_string()));
            Err(invalid(
                path,
                format!("{at}{field}"),
                format!("{detail_type}: {problem}"),
            ))
        }
    }
}

/// Reads one fixture file into what it injects.
pub fn load(path: &Path) -> Result<Vec<Injection>, LocalError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::FixtureUnreadable {
        path: name.clone(),
        source,
    })?;
    let json: Value =
        serde_json::from_str(&text).map_err(|source| LocalError::MalformedFixture {
            path: name.clone(),
            source,
        })?;
    parse(&name, &json)
}

/// Interprets a fixture's JSON; `name` names it in errors.
pub fn parse(name: &str, json: &Value) -> Result<Vec<Injection>, LocalError> {
    let Some(fields) = json.as_object() else {
        return Err(invalid(name, "(root)", "a fixture must be a JSON object"));
    };
    if let Some(records) = fields.get("Records") {
        let Some(records) = records.as_array() else {
            return Err(invalid(name, "Records", "must be a list of SQS messages"));
        };
        return records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let at = format!("Records[{i}].body");
                let body = record
                    .get("body")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(name, &at, "is missing or not a string"))?;
                let envelope: Value = serde_json::from_str(body)
                    .map_err(|e| invalid(name, &at, format!("is not JSON: {e}")))?;
                envelope_entry(name, &format!("{at}."), &envelope).map(Injection::Event)
            })
            .collect();
    }
    if fields.contains_key("requestContext") || fields.contains_key("routeKey") {
        let request: ApiGatewayV2httpRequest =
            serde_path_to_error::deserialize(json).map_err(|e| {
                invalid(
                    name,
                    e.path().to_string(),
                    format!("not an API Gateway HTTP API request: {}", e.inner()),
                )
            })?;
        let request =
            ApiRequest::from_apigw(request).map_err(|e| invalid(name, "body", e.message))?;
        return Ok(vec![Injection::Request(request)]);
    }
    if ["source", "detail-type", "detail"]
        .iter()
        .any(|f| fields.contains_key(*f))
    {
        return envelope_entry(name, "", json).map(|entry| vec![Injection::Event(entry)]);
    }
    Err(invalid(
        name,
        "(root)",
        "not an EventBridge event (source, detail-type, detail), an SQS batch (Records) \
         or an API Gateway HTTP API request (requestContext)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(rel)
    }

    fn refusal(rel: &str) -> String {
        load(&events(rel)).unwrap_err().to_string()
    }

    #[test]
    fn every_good_fixture_loads() {
        for dir in ["eventbridge", "sqs", "http"] {
            for entry in std::fs::read_dir(events(dir)).unwrap() {
                let path = entry.unwrap().path();
                let injections = load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!injections.is_empty(), "{}", path.display());
            }
        }
    }

    #[test]
    fn an_unknown_detail_type_is_refused_naming_the_file_and_the_field() {
        let err = refusal("bad/eventbridge-unknown-detail-type.json");
        assert!(
            err.contains("eventbridge-unknown-detail-type.json"),
            "{err}"
        );
        assert!(
            err.contains("field `detail-type`") && err.contains("OrderTeleported"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_idempotency_key_is_named_with_its_path() {
        let err = refusal("bad/eventbridge-missing-idempotency-key.json");
        assert!(
            err.contains("field `detail.metadata.idempotency-key`"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_field_type_is_named_with_its_path() {
        let err = refusal("bad/eventbridge-wrong-field-types.json");
        // The fixture has two wrong fields; which one serde meets first follows map order, which
        // serde_json's `preserve_order` (enabled by another crate in a workspace build) changes.
        let items =
            err.contains("field `detail.data.items`") && err.contains("expected a sequence");
        let total = err.contains("field `detail.data.total`") && err.contains("expected a string");
        assert!(items || total, "{err}");
    }

    #[test]
    fn a_mixed_sqs_batch_names_the_bad_record() {
        let err = refusal("bad/sqs-mixed-batch.json");
        assert!(
            err.contains("sqs-mixed-batch.json: field `Records[1].body`: is not JSON"),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_is_refused_with_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "{\"source\": \"com.orders\",\n  \"detail\": {").unwrap();
        let err = load(&path).unwrap_err();
        assert_eq!(err.error_type(), "MalformedFixture");
        let text = err.to_string();
        assert!(
            text.contains("broken.json") && text.contains("line 2"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_source_names_the_source_field() {
        let json = serde_json::json!({"source": "com.elsewhere", "detail-type": "OrderCreated", "detail": {}});
        let err = parse("x.json", &json).unwrap_err().to_string();
        assert!(err.contains("x.json: field `source`"), "{err}");
    }

    #[test]
    fn http_fixtures_become_requests_and_keep_malformed_bodies_for_the_api_to_answer() {
        let requests = load(&events("bad/http-post-order-malformed-json.json")).unwrap();
        match requests.as_slice() {
            [Injection::Request(r)] => {
                assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/orders"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn something_else_entirely_is_refused() {
        let err = parse("odd.json", &serde_json::json!({"hello": "world"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("odd.json: field `(root)`"), "{err}");
        let err = parse("list.json", &serde_json::json!([1, 2]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("list.json"), "{err}");
    }
}
