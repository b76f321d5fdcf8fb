//! Typed errors.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error from a store's backend (an SDK error, an I/O error, ...).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The store primitive that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOperation {
    /// The conditional put of a claim.
    Claim,
    /// The conditional update to COMPLETED.
    Complete,
    /// The conditional delete of a claim.
    Release,
    /// A consistent read of a record.
    Get,
}

impl StoreOperation {
    /// Stable lower-case name (`claim`, `complete`, `release`, `get`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Complete => "complete",
            Self::Release => "release",
            Self::Get => "get",
        }
    }
}

impl fmt::Display for StoreOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store primitive failed: the backend errored (throttling, 5xx, network, ...) or returned an
/// item that is not a record at all (no `id`). The backend's error is kept as the source. A
/// record this version cannot fully read is not a store failure: see the DynamoDB store's
/// reading rules in the crate README.
#[derive(Debug, thiserror::Error)]
#[error("idempotency store {operation} failed")]
pub struct StoreError {
    operation: StoreOperation,
    #[source]
    source: BoxError,
}

/// The source of a [`StoreError`] for an item that cannot be a record (it has no `id`).
#[derive(Debug, thiserror::Error)]
#[error("malformed idempotency record: {0}")]
pub struct MalformedRecord(pub String);

impl StoreError {
    /// A failure of `operation` caused by `source`.
    pub fn new(operation: StoreOperation, source: impl Into<BoxError>) -> Self {
        Self {
            operation,
            source: source.into(),
        }
    }

    /// A stored item that cannot be a record.
    pub fn malformed(operation: StoreOperation, reason: impl Into<String>) -> Self {
        Self::new(operation, MalformedRecord(reason.into()))
    }

    /// The primitive that failed.
    pub fn operation(&self) -> StoreOperation {
        self.operation
    }

    /// Whether the failure is an item that cannot be a record rather than a backend error.
    pub fn is_malformed_record(&self) -> bool {
        self.source.is::<MalformedRecord>()
    }
}

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyError {
    /// The request has no key material and did not opt out with [`crate::Request::unkeyed`].
    #[error("idempotency key missing")]
    KeyMissing,
    /// Same key, different validated payload: refused rather than replayed.
    #[error("payload does not match the one stored for idempotency key {key_hash}")]
    Validation {
        /// The hashed key.
        key_hash: String,
    },
    /// A store primitive failed.
    #[error("idempotency store failure")]
    Store(#[source] StoreError),
    /// A result or key material could not be (de)serialized as JSON.
    #[error("idempotency serialization failure")]
    Serialization(#[source] serde_json::Error),
    /// The claim kept conflicting with a record that is already expired (a race with a
    /// concurrent writer or clock skew); gave up after `attempts` claims.
    #[error("idempotency record stayed inconsistent after {attempts} claim attempts")]
    InconsistentState {
        /// Claims attempted.
        attempts: u32,
    },
    /// Fencing: this claim no longer owns the record (it expired and another invocation took it
    /// over, or it was deleted), so it may neither complete nor release it.
    #[error("idempotency claim on {key_hash} is no longer held by this invocation")]
    ClaimLost {
        /// The hashed key.
        key_hash: String,
    },
    /// A COMPLETED, live record whose stored result cannot be read: missing, not JSON, or not of
    /// the type asked for (an attribute renamed, a result type changed across a deploy). The
    /// operation did run and must not run again; only its result is lost to this caller, who
    /// answers from its own state instead. Not transient: the same record gives the same answer
    /// until it expires.
    #[error("the stored result of idempotency record {record_id} cannot be read: {reason}")]
    UnreadableResult {
        /// The record id (`<prefix>#<hash>`), for the operator who looks at the record.
        record_id: String,
        /// What is wrong with the stored result (never the result itself).
        reason: UnreadableReason,
    },
}

/// Why a stored result cannot be read. The result itself is never logged or carried: it may
/// hold personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnreadableReason {
    /// The record has no result: the attribute is missing (renamed by another version) or not
    /// stored as text.
    Missing,
    /// The stored result is not JSON.
    NotJson,
    /// The stored result is JSON of another shape than the caller's type (the result type
    /// changed across a deploy).
    OtherShape,
}

impl UnreadableReason {
    /// Stable lower-case name (`missing`, `not_json`, `other_shape`) for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::NotJson => "not_json",
            Self::OtherShape => "other_shape",
        }
    }
}

impl fmt::Display for UnreadableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "the result is missing",
            Self::NotJson => "the result is not JSON",
            Self::OtherShape => "the result is not of the requested type",
        })
    }
}

impl IdempotencyError {
    /// A stable machine-readable name for logs, metrics and batch-item failure labels.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::KeyMissing => "IdempotencyKeyMissing",
            Self::Validation { .. } => "IdempotencyValidation",
            Self::Store(_) => "IdempotencyStoreFailed",
            Self::Serialization(_) => "IdempotencySerialization",
            Self::InconsistentState { .. } => "IdempotencyInconsistentState",
            Self::ClaimLost { .. } => "IdempotencyClaimLost",
            Self::UnreadableResult { .. } => "IdempotencyUnreadableResult",
        }
    }

    /// Whether retrying the same request later may succeed (store failures, races, lost
    /// claims), as opposed to a permanent problem with the request itself or its record (an
    /// unreadable stored result answers the same until the record expires).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Store(_) | Self::InconsistentState { .. } | Self::ClaimLost { .. }
        )
    }
}

impl From<StoreError> for IdempotencyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The error of [`crate::Idempotency::run`]: the operation's own error, or the library's.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    /// The operation ran and failed; its claim was released so a retry can run it.
    #[error("idempotent operation failed")]
    Operation(#[source] E),
    /// The library failed (the operation may or may not have run: see the variant).
    #[error(transparent)]
    Idempotency(IdempotencyError),
}

impl<E> RunError<E> {
    /// `"OperationFailed"` for the operation's error, else the [`IdempotencyError::error_type`].
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Operation(_) => "OperationFailed",
            Self::Idempotency(e) => e.error_type(),
        }
    }

    /// The operation's error, if that is what this is.
    pub fn operation_error(&self) -> Option<&E> {
        match self {
            Self::Operation(e) => Some(e),
            Self::Idempotency(_) => None,
        }
    }

    /// The library's error, if that is what this is.
    pub fn idempotency_error(&self) -> Option<&IdempotencyError> {
        match self {
            Self::Operation(_) => None,
            Self::Idempotency(e) => Some(e),
        }
    }
}

impl<E> From<IdempotencyError> for RunError<E> {
    fn from(e: IdempotencyError) -> Self {
        Self::Idempotency(e)
    }
}
