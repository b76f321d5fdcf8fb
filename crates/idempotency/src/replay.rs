//! A stored result found instead of a claim: the operation already ran.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{IdempotencyError, UnreadableReason};
use crate::idempotency::Inner;
use crate::metrics::bump;

/// A COMPLETED, live record found by [`crate::Idempotency::begin`]: the operation already ran
/// (its effect happened), so it must not run again.
///
/// Its stored result may be unreadable: missing (an attribute renamed by another version), not
/// JSON, or of another shape than the caller's type (a result type changed across a deploy). A
/// caller that does not need the result (an SQS consumer: the effect happened, acknowledge the
/// record) just matches `Begin::Replayed(_)`; a caller that needs it asks [`Replay::value`] or
/// [`Replay::deserialize`] and gets [`IdempotencyError::UnreadableResult`], never a transient
/// error, when it cannot be read. Either way the record is counted in
/// [`crate::MetricsSnapshot::unreadable`] and logged at WARN with its id, never its data.
#[derive(Clone)]
pub struct Replay {
    pub(crate) inner: Arc<Inner>,
    pub(crate) record_id: String,
    pub(crate) value: Result<Value, UnreadableReason>,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("record_id", &self.record_id)
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// The record id, `<prefix>#<hash>`.
    pub fn record_id(&self) -> &str {
        &self.record_id
    }

    /// Whether the stored result was read as JSON (it may still be of another shape than a
    /// caller's type: see [`Replay::deserialize`]).
    pub fn is_readable(&self) -> bool {
        self.value.is_ok()
    }

    /// The stored result as JSON, or [`IdempotencyError::UnreadableResult`] when it is missing
    /// or not JSON.
    pub fn value(&self) -> Result<&Value, IdempotencyError> {
        self.value.as_ref().map_err(|reason| self.error(*reason))
    }

    /// The stored result as JSON, by value (see [`Replay::value`]).
    pub fn into_value(self) -> Result<Value, IdempotencyError> {
        let Self {
            record_id, value, ..
        } = self;
        value.map_err(|reason| IdempotencyError::UnreadableResult { record_id, reason })
    }

    /// The stored result as a `T`. A result that is missing, not JSON or of another shape is
    /// [`IdempotencyError::UnreadableResult`]; another shape is counted and logged here (the
    /// other two were when the record was found).
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, IdempotencyError> {
        match &self.value {
            // The serde error is dropped on purpose: its message may quote the stored data.
            Ok(value) => T::deserialize(value).map_err(|_| {
                unreadable(&self.inner, &self.record_id, UnreadableReason::OtherShape)
            }),
            Err(reason) => Err(self.error(*reason)),
        }
    }

    fn error(&self, reason: UnreadableReason) -> IdempotencyError {
        IdempotencyError::UnreadableResult {
            record_id: self.record_id.clone(),
            reason,
        }
    }
}

/// Counts and logs an unreadable stored result (its record id and what is wrong, never the
/// data) and returns its error.
pub(crate) fn unreadable(
    inner: &Inner,
    record_id: &str,
    reason: UnreadableReason,
) -> IdempotencyError {
    bump(&inner.metrics.unreadable);
    tracing::warn!(
        record_id,
        reason = reason.as_str(),
        error_type = "IdempotencyUnreadableResult",
        "the stored result of an idempotency record cannot be read; its operation ran and is not run again"
    );
    IdempotencyError::UnreadableResult {
        record_id: record_id.to_owned(),
        reason,
    }
}
