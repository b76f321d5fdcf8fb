//! The store port: four primitives with DynamoDB's conditional-write semantics.

mod dynamodb;
mod memory;

pub use dynamodb::DynamoDbStore;
pub use memory::{InMemoryStore, InjectedFailure};

use crate::config::TableLayout;
use crate::error::StoreError;
use crate::record::Record;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// The record was written: the caller holds the claim.
    Claimed,
    /// A live record (as the store saw it) blocked the claim. It is the record the condition was
    /// evaluated against when the store can return it (DynamoDB's `ALL_OLD`), else `None`.
    Conflict(Option<Record>),
}

/// What a write fenced by the owner token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencedWrite {
    /// The record still carried the owner token: the write happened.
    Applied,
    /// The record is gone or carries another owner token: nothing was written.
    NotOwner,
}

/// A place to keep idempotency records. Every primitive is one atomic conditional operation
/// (one round trip for a remote store).
///
/// Time is passed in rather than read by the store, so one injectable clock drives every expiry
/// decision, and a store cannot disagree with the library about what "expired" means.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Writes `record` unless a record with its id exists that is live at `now_millis`
    /// (see [`Record::is_claimable_at`]). A blocking record is returned when available.
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now_millis: u64,
    ) -> Result<ClaimResult, StoreError>;

    /// Sets the record `id` to COMPLETED with `data` and `expiration` if it still carries `owner`.
    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError>;

    /// Deletes the record `id` if it still carries `owner`. A record that does not exist is
    /// [`FencedWrite::Applied`]: nothing of `owner`'s remains, and a retried delete whose first
    /// response was lost must not report a lost claim. Only a record carrying another owner token
    /// is [`FencedWrite::NotOwner`].
    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError>;

    /// Reads the record `id` (strongly consistent), whatever its state.
    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError>;
}

#[async_trait::async_trait]
impl<S: IdempotencyStore + ?Sized> IdempotencyStore for std::sync::Arc<S> {
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now_millis: u64,
    ) -> Result<ClaimResult, StoreError> {
        (**self).claim(layout, record, now_millis).await
    }

    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError> {
        (**self).complete(layout, id, owner, data, expiration).await
    }

    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError> {
        (**self).release(layout, id, owner).await
    }

    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        (**self).get(layout, id).await
    }
}
