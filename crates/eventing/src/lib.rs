//! EventBridge publishing and SQS consuming for the commerce domains.
//!
//! - [`OutgoingEvent`] is a contract event ready to publish: `source` and `detail-type` from the
//!   contract constants, `detail` serialized once, its idempotency key kept for reporting.
//! - [`EventPublisher`] is the port that publishes them. [`EventBridgePublisher`] sends PutEvents
//!   requests of at most 10 entries and 256 KB, re-sends only failed entries with exponential
//!   backoff and jitter, and returns a [`PublishError`] naming what still failed; nothing is
//!   dropped silently. [`InMemoryPublisher`] records them (unit tests, the local runner).
//!   [`EventPublisher::publish_within`] publishes under the invocation's time budget
//!   (`platform::budget::Budget`): entries not accepted when it ends fail with
//!   [`FailedEntry::DEADLINE_EXCEEDED`]; the EventBridge publisher starts no attempt with less
//!   than [`MIN_ATTEMPT_TIME`] left, and no back-off that would leave less.
//! - [`EventHandler`] is the domain port of a consumer: one typed event in, the events it causes
//!   out, or a [`HandlerError`].
//! - [`Consumer`] is the entry point of every SQS-fed Lambda: it parses each record (an
//!   EventBridge envelope) into an [`contracts::AnyEvent`], handles it at most once through the
//!   `idempotency` crate (concurrently, bounded, a panic confined to its record), publishes the
//!   events of the whole batch in one call, and answers a partial batch response naming only
//!   the records to retry. It also takes a bare EventBridge event (`sam local invoke`).
//!   Given the invocation's remaining time, it runs the batch under one time budget: the handlers
//!   stop [`PUBLISH_RESERVE`] before the publish's end, the publish [`COMPLETE_RESERVE`] before
//!   the budget's (each at most a quarter of it), and a record that runs out of time fails alone
//!   with `DeadlineExceeded`, its claim left to expire at the invocation's deadline, so the
//!   partial batch response always gets out. A duplicate is acknowledged whether or not its
//!   stored result can still be read: the effect happened.
//! - The transactional outbox ([`OutboxRelay`], [`ChangeFeed`]): an HTTP API stores the fact it
//!   makes true in the same write as the state change ([`OutgoingEvent::to_outbox`]); the
//!   domain's relay publishes it from the table's stream and reports what it could not.
//!
//! ```
//! use contracts::{Detail, IdempotencyKey, Metadata, OrderPicked};
//! use eventing::{EventPublisher, InMemoryPublisher, OutgoingEvent};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let picked = OrderPicked {
//!     order_id: "1073459984".into(),
//!     customer_id: "456".into(),
//!     items: vec![],
//!     warehouse_id: "WH-EU-1".into(),
//!     picked_at: "2026-11-23T10:52:10Z".parse().unwrap(),
//! };
//! let metadata = Metadata::first(
//!     IdempotencyKey::new("client-key-1").unwrap(),
//!     "1073459984",
//!     picked.picked_at,
//! );
//! let event = OutgoingEvent::new(&Detail::new(metadata, picked)).unwrap();
//! assert_eq!((event.source.as_str(), event.detail_type.as_str()), ("com.fulfillment", "OrderPicked"));
//!
//! let publisher = InMemoryPublisher::new();
//! publisher.publish(&[event.clone()]).await.unwrap();
//! assert_eq!(publisher.published(), vec![event]);
//! assert_eq!(publisher.put_events_calls(), 1);
//! # });
//! ```

mod consumer;
mod deadlines;
mod error;
mod event;
mod handler;
mod outbox;
mod publish;
#[cfg(test)]
mod test_support;

pub use consumer::{
    BatchReport, BatchStats, Consumer, DEFAULT_CONCURRENCY, EmittedEvent, RecordOutcome,
    RecordReport, idempotency_request,
};
pub use deadlines::{COMPLETE_RESERVE, PUBLISH_RESERVE};
pub use error::{ConsumerError, EventingError};
pub use event::{MAX_ENTRIES_PER_REQUEST, MAX_REQUEST_BYTES, OutgoingEvent};
pub use handler::{EventHandler, HandlerError};
pub use outbox::{
    ChangeFeed, OUTBOX_ATTRIBUTE, OutboxRelay, RelayOutcome, RelayReport, RelayedRecord,
};
pub use publish::{
    EventBridgePublisher, EventPublisher, FailedEntry, InMemoryPublisher, MIN_ATTEMPT_TIME,
    PublishError, RetryPolicy,
};
