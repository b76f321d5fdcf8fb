//! The crate's error type.

use crate::handler::HandlerError;
use crate::publish::PublishError;

/// Everything that can go wrong in this crate, outside the two port-level errors
/// ([`PublishError`] from publishers, [`HandlerError`] from domain handlers), which it wraps.
///
/// Each variant has a stable [`EventingError::error_type`] string for logs, batch reports and
/// Lambda error responses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventingError {
    /// An event's detail could not be serialized, or a report could not be turned into JSON.
    #[error("serialization failed: {0}")]
    Serialization(#[source] serde_json::Error),

    /// One entry alone exceeds the PutEvents request limit, so no request can ever carry it.
    #[error(
        "event {detail_type} with idempotency key {idempotency_key} is {size} bytes, \
         over the {limit}-byte PutEvents limit"
    )]
    EntryTooLarge {
        /// The event's detail type.
        detail_type: String,
        /// The event's idempotency key.
        idempotency_key: String,
        /// The entry's size by AWS's formula.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
    },

    /// A Lambda payload that is neither an SQS batch nor an EventBridge event.
    #[error("unrecognised payload: {reason}")]
    UnrecognisedPayload {
        /// What the payload looked like (never its content).
        reason: String,
    },

    /// A record whose body is not an EventBridge envelope (not JSON, or without `source`,
    /// `detail-type` or `detail`).
    #[error("malformed record: {reason}")]
    MalformedRecord {
        /// What is wrong with it (never its content).
        reason: String,
    },

    /// The envelope names an event the contract does not have, or its detail does not match it.
    #[error(transparent)]
    Parse(#[from] contracts::ParseError),

    /// The domain handler failed.
    #[error(transparent)]
    Handler(#[from] HandlerError),

    /// Another invocation (or another record of the same batch) holds the claim on this key:
    /// retry later.
    #[error("event with key hash {key_hash} is already being processed")]
    InProgress {
        /// The hashed idempotency key.
        key_hash: String,
    },

    /// The idempotency layer failed (store error, payload validation, lost claim...).
    #[error(transparent)]
    Idempotency(#[from] idempotency::IdempotencyError),

    /// Events caused by the record could not all be published.
    #[error(transparent)]
    Publish(#[from] PublishError),

    /// The invocation's time budget ended before the record was done (`phase` says where it
    /// was): it is retried, and its claim, neither completed nor released, expires at the
    /// invocation's deadline.
    #[error("the invocation's time budget ran out while {phase}")]
    DeadlineExceeded {
        /// What the record was doing: claiming and handling it, publishing its events, or
        /// completing its claim.
        phase: &'static str,
    },

    /// Handling the record panicked; the panic was caught and confined to this record.
    #[error("handling the record panicked: {message}")]
    Panicked {
        /// The panic message, when it was a string.
        message: String,
    },
}

impl EventingError {
    /// A stable string naming the kind of error, for logs and reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Serialization(_) => "Serialization",
            Self::EntryTooLarge { .. } => "EntryTooLarge",
            Self::UnrecognisedPayload { .. } => "UnrecognisedPayload",
            Self::MalformedRecord { .. } => "MalformedRecord",
            Self::Parse(e) => e.error_type(),
            Self::Handler(e) => e.error_type(),
            Self::InProgress { .. } => "InProgress",
            Self::Idempotency(e) => e.error_type(),
            Self::Publish(e) => e.error_type(),
            Self::DeadlineExceeded { .. } => platform::budget::DeadlineExceeded::ERROR_TYPE,
            Self::Panicked { .. } => "Panicked",
        }
    }
}

/// The error of the consumer's entry points: the crate's error type under the name the Lambda
/// binaries use.
pub type ConsumerError = EventingError;
