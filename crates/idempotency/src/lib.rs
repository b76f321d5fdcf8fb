//! Idempotency for Rust AWS Lambda functions: run an operation at most once per key, replay its
//! stored result for duplicates, and tell callers apart fresh runs, replays and work in progress.
//!
//! The semantics are those of Powertools for AWS Lambda's idempotency utility, with its known
//! defects fixed (see the crate README): a remaining time of zero is a real deadline, keyless
//! requests never share a hash, completes and releases are fenced by an owner token, the local
//! cache never holds an in-progress record, and a duplicate costs exactly one DynamoDB round trip
//! (a conditional `PutItem` returning the old item with `ALL_OLD`).
//!
//! - [`IdempotencyConfig`]: operation name, expiry, in-progress timeout, cache, key layout.
//! - [`Request`]: the hashed key (canonical JSON, SHA-256), optional payload validation, the
//!   invocation's remaining time.
//! - [`Idempotency`]: [`Idempotency::run`] wraps any async operation; [`Idempotency::begin`]
//!   plus [`Claim::complete`] / [`Claim::release`] is the two-step form for batches;
//!   [`Idempotency::handler`] wraps a whole handler.
//! - [`IdempotencyStore`]: four primitives, implemented by [`DynamoDbStore`] and
//!   [`InMemoryStore`] with the same semantics.
//! - A stored result that cannot be read (missing, not JSON, or of a type that changed across a
//!   deploy) never wedges its key: `begin` gives a [`Replay`] the caller can acknowledge (the
//!   operation ran), `run` gives [`IdempotencyError::UnreadableResult`], which is not transient;
//!   both are counted and logged with the record id.
//!
//! ```
//! use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore, Outcome, Request};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("charge"));
//! let request = Request::new(&serde_json::json!({"order-id": "1073459984"}))?
//!     .remaining_time(Duration::from_secs(30));
//!
//! let mut charges = 0;
//! let first = idempotency
//!     .run(&request, || async { charges += 1; Ok::<_, std::io::Error>(237.51) })
//!     .await?;
//! assert_eq!(first, Outcome::Fresh(237.51));
//!
//! let again = idempotency
//!     .run(&request, || async { Ok::<_, std::io::Error>(0.0) })
//!     .await?;
//! assert_eq!(again, Outcome::Replayed(237.51)); // the operation did not run again
//! assert_eq!(charges, 1);
//! assert_eq!(idempotency.metrics().store_calls, 3); // claim + complete, then one failed claim
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```

mod canonical;
mod clock;
mod config;
mod error;
mod idempotency;
mod metrics;
mod record;
mod replay;
mod request;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AttributeNames, DEFAULT_EXPIRES_AFTER, DEFAULT_IN_PROGRESS_TIMEOUT, IdempotencyConfig,
    MAX_CLAIM_ATTEMPTS, TableLayout,
};
pub use error::{
    BoxError, IdempotencyError, MalformedRecord, RunError, StoreError, StoreOperation,
    UnreadableReason,
};
pub use idempotency::{Begin, Claim, Idempotency, IdempotentHandler, Outcome, remaining_until};
pub use metrics::MetricsSnapshot;
pub use record::{Record, RecordState, Status};
pub use replay::Replay;
pub use request::{KeyExtractor, Request, canonical_json, hash_json};
pub use store::{
    ClaimResult, DynamoDbStore, FencedWrite, IdempotencyStore, InMemoryStore, InjectedFailure,
};
