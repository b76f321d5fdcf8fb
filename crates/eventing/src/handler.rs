//! The domain port of a consumer: what to do with one typed event.

use contracts::AnyEvent;

use crate::OutgoingEvent;

/// What a domain does with one typed event: returns the events it causes (the consumer
/// publishes them, batched across the whole SQS batch).
///
/// The consumer calls it at most once per idempotency key while the key's claim is held, so
/// side effects in the domain's own store need no extra deduplication across redeliveries
/// (they must still be safe to repeat after a crash between the effect and the claim's
/// completion; projections that only move state forward are).
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    /// Handles `event`; `Ok` carries the events it causes (possibly none).
    async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError>;
}

#[async_trait::async_trait]
impl<H: EventHandler + ?Sized> EventHandler for std::sync::Arc<H> {
    async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError> {
        (**self).handle(event).await
    }
}

/// Why a handler did not handle an event. Any of them makes the record a batch-item failure
/// (the message is retried and, after the redrive count, lands in the DLQ).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// An event of the contract that this consumer does not take (a routing mistake).
    #[error("{detail_type} is not handled by this consumer")]
    Unhandled {
        /// The event's detail type.
        detail_type: String,
    },
    /// Permanent: the event is valid by the contract but the business rules refuse it.
    #[error("event rejected: {reason}")]
    Rejected {
        /// Why, without personal data.
        reason: String,
    },
    /// A store or AWS failure: retrying may succeed.
    #[error("transient failure: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    /// The [`HandlerError::Unhandled`] error for `event`.
    pub fn unhandled(event: &AnyEvent) -> Self {
        Self::Unhandled {
            detail_type: event.route().1.to_owned(),
        }
    }

    /// A [`HandlerError::Rejected`] error.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
        }
    }

    /// A [`HandlerError::Transient`] error wrapping `source`.
    pub fn transient(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Transient(source.into())
    }

    /// A stable string naming the kind of error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Unhandled { .. } => "Unhandled",
            Self::Rejected { .. } => "Rejected",
            Self::Transient(_) => "Transient",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::picked;
    use std::error::Error as _;

    #[test]
    fn each_kind_has_a_stable_error_type() {
        let event = AnyEvent::OrderPicked(picked("k", "WH"));
        let unhandled = HandlerError::unhandled(&event);
        assert_eq!(unhandled.error_type(), "Unhandled");
        assert_eq!(
            unhandled.to_string(),
            "OrderPicked is not handled by this consumer"
        );
        assert_eq!(HandlerError::rejected("no stock").error_type(), "Rejected");
        let transient = HandlerError::transient(std::io::Error::other("timeout"));
        assert_eq!(transient.error_type(), "Transient");
        assert_eq!(
            transient.source().map(ToString::to_string),
            Some("timeout".into())
        );
    }
}
