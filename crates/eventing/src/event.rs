//! The unit of publishing: an event with its envelope fields resolved and its detail serialized.

use contracts::{Detail, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::EventingError;

/// Most entries one PutEvents request takes.
pub const MAX_ENTRIES_PER_REQUEST: usize = 10;

/// Largest PutEvents request, in bytes by AWS's entry-size formula (256 KB). A single entry
/// larger than this can never be sent.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Buffer a detail is serialized into: room for the contract's events without regrowing.
const DETAIL_CAPACITY: usize = 1024;

/// Bytes AWS counts for an entry's `Time`, whether or not it is set.
const TIME_BYTES: usize = 14;

/// Environment variable through which Lambda hands each invocation its X-Ray trace header.
pub(crate) const TRACE_ENV: &str = "_X_AMZN_TRACE_ID";

/// An event ready to publish: envelope fields from the contract constants, detail serialized once.
///
/// Serializing at construction means the size used for batching is exactly what is sent, and a
/// detail that cannot be serialized fails in the handler that made it, not in the publisher.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutgoingEvent {
    /// EventBridge `source` (the producing domain).
    pub source: String,
    /// EventBridge `detail-type`.
    pub detail_type: String,
    /// The `detail` as JSON text.
    pub detail: String,
    /// `metadata.idempotency-key` of the detail, kept out of the JSON for reporting failures.
    pub idempotency_key: String,
    /// X-Ray trace header to propagate; when `None` the EventBridge publisher uses the
    /// invocation's `_X_AMZN_TRACE_ID`.
    pub trace_header: Option<String>,
}

impl OutgoingEvent {
    /// Builds the event for a typed detail: `source` and `detail-type` from `E`'s contract
    /// constants, `detail` serialized to JSON.
    ///
    /// Fails with [`EventingError::EntryTooLarge`] when the entry alone exceeds the PutEvents
    /// limit, so an unpublishable event is refused where it is made.
    pub fn new<E: DomainEvent>(detail: &Detail<E>) -> Result<Self, EventingError> {
        // serde_json starts at 128 bytes and doubles; a contract detail is 0.5-1 KB, so one
        // buffer of that size saves three reallocations and their copies per event.
        let mut text = Vec::with_capacity(DETAIL_CAPACITY);
        serde_json::to_writer(&mut text, detail).map_err(EventingError::Serialization)?;
        let event = Self {
            source: E::SOURCE.to_owned(),
            detail_type: E::DETAIL_TYPE.to_owned(),
            // serde_json writes UTF-8 only; the check is kept rather than an unsafe conversion.
            detail: String::from_utf8(text).map_err(|e| {
                EventingError::Serialization(serde::ser::Error::custom(e.to_string()))
            })?,
            idempotency_key: detail.metadata.idempotency_key.to_string(),
            trace_header: None,
        };
        event.check_size()?;
        Ok(event)
    }

    /// Sets the X-Ray trace header to send with the event (from `_X_AMZN_TRACE_ID`).
    pub fn with_trace_header(mut self, header: Option<String>) -> Self {
        self.trace_header = header;
        self
    }

    /// Sets the trace header to the current invocation's (`_X_AMZN_TRACE_ID`, read now: Lambda
    /// sets a new one for every invocation of a warm sandbox) unless one is set: an event kept in
    /// an outbox and published later by a relay stays on the trace of the request that made it.
    pub fn with_invocation_trace(mut self) -> Self {
        if self.trace_header.is_none() {
            self.trace_header = std::env::var(TRACE_ENV).ok().filter(|h| !h.is_empty());
        }
        self
    }

    /// AWS's PutEvents entry size: 14 (Time) + UTF-8 bytes of Source, DetailType, Detail and
    /// Resources (none are sent).
    pub fn entry_size(&self) -> usize {
        TIME_BYTES + self.source.len() + self.detail_type.len() + self.detail.len()
    }

    /// `Err(EntryTooLarge)` when no PutEvents request could carry this entry.
    pub fn check_size(&self) -> Result<(), EventingError> {
        let size = self.entry_size();
        if size > MAX_REQUEST_BYTES {
            return Err(EventingError::EntryTooLarge {
                detail_type: self.detail_type.clone(),
                idempotency_key: self.idempotency_key.clone(),
                size,
                limit: MAX_REQUEST_BYTES,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::picked;

    #[test]
    fn envelope_fields_come_from_the_contract_constants() {
        let event = OutgoingEvent::new(&picked("k-1", "WH-1")).unwrap();
        assert_eq!(event.source, "com.fulfillment");
        assert_eq!(event.detail_type, "OrderPicked");
        assert_eq!(event.idempotency_key, "k-1");
        assert_eq!(event.trace_header, None);
        let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap();
        assert_eq!(detail["metadata"]["idempotency-key"], "k-1");
        assert_eq!(detail["data"]["warehouse-id"], "WH-1");
    }

    #[test]
    fn entry_size_counts_utf8_bytes_plus_fourteen_for_time() {
        let event = OutgoingEvent {
            source: "com.x".into(),
            detail_type: "Déjà".into(),
            detail: "{\"a\":\"€\"}".into(),
            idempotency_key: "k".into(),
            trace_header: Some("Root=1-abc".into()),
        };
        // "Déjà" is 6 bytes (4 characters); the detail is 11 bytes ("€" alone is 3).
        assert_eq!(event.entry_size(), 14 + 5 + 6 + 11);
    }

    #[test]
    fn a_detail_too_large_for_any_request_is_refused_at_construction() {
        let huge = "x".repeat(MAX_REQUEST_BYTES);
        let err = OutgoingEvent::new(&picked("k-big", &huge)).unwrap_err();
        assert_eq!(err.error_type(), "EntryTooLarge");
        match err {
            EventingError::EntryTooLarge {
                idempotency_key,
                size,
                limit,
                ..
            } => {
                assert_eq!(idempotency_key, "k-big");
                assert!(size > limit);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn trace_header_is_attached_on_request() {
        let event = OutgoingEvent::new(&picked("k-1", "WH-1"))
            .unwrap()
            .with_trace_header(Some("Root=1-5759e988-bd862e3fe1be46a994272793".into()));
        assert_eq!(
            event.trace_header.as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793")
        );
    }
}
