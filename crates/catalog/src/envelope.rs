//! The EventBridge envelope around a detail type's `detail`, as a JSON Schema object in draft 4
//! or draft 7: what a consumer receives (the SQS message body, or a Lambda target's event).

use serde_json::{Map, Value, json};

use crate::dialect::Dialect;

/// The envelope's fields, in AWS's order. All of them are always present in a delivered event.
pub(crate) const FIELDS: [&str; 9] = [
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
];

/// A string that must be exactly `value`.
fn exactly(value: &str, description: &str, dialect: Dialect) -> Value {
    match dialect {
        Dialect::Draft7 => json!({ "type": "string", "const": value, "description": description }),
        Dialect::Draft4 => json!({ "type": "string", "enum": [value], "description": description }),
    }
}

/// What the envelope of one detail type says of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named<'a> {
    pub(crate) detail_type: &'a str,
    pub(crate) source: &'a str,
    pub(crate) summary: &'a str,
}

/// The envelope schema of `event`, its `detail` a reference to `detail_ref`.
pub(crate) fn schema(event: Named<'_>, detail_ref: &str, dialect: Dialect) -> Map<String, Value> {
    let properties = json!({
        "version": {
            "type": "string",
            "description": "Envelope version, \"0\"."
        },
        "id": {
            "type": "string",
            "description": "EventBridge's id of this event. Not a deduplication key: a producer's retry gets a new one; deduplicate on `detail.metadata.idempotency-key`."
        },
        "detail-type": exactly(event.detail_type, "The detail type.", dialect),
        "source": exactly(event.source, "The producing domain.", dialect),
        "account": {
            "type": "string",
            "description": "The AWS account of the bus."
        },
        "time": {
            "type": "string",
            "format": "date-time",
            "description": "When the event was put on the bus (RFC 3339, UTC)."
        },
        "region": {
            "type": "string",
            "description": "The AWS Region of the bus."
        },
        "resources": {
            "type": "array",
            "items": { "type": "string" },
            "description": "ARNs the event concerns (none for the contract's events)."
        },
        // A bare reference: code generators make the detail's own type of it.
        "detail": { "$ref": detail_ref }
    });
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("title".into(), json!(format!("{}Event", event.detail_type)));
    out.insert(
        "description".into(),
        json!(format!(
            "An EventBridge event of detail type {} from {}: AWS's envelope around the contract's `detail`. {}",
            event.detail_type, event.source, event.summary
        )),
    );
    out.insert("required".into(), json!(FIELDS));
    out.insert("properties".into(), properties);
    out
}
