//! In-memory store with the DynamoDB store's conditions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::TableLayout;
use crate::error::{StoreError, StoreOperation};
use crate::record::{Record, Status};
use crate::store::{ClaimResult, FencedWrite, IdempotencyStore};

/// The error injected by [`InMemoryStore::fail_next`].
#[derive(Debug, thiserror::Error)]
#[error("injected in-memory store failure")]
pub struct InjectedFailure;

type Key = (Option<String>, String);

#[derive(Debug, Default)]
struct State {
    records: HashMap<Key, Record>,
    failures: HashMap<StoreOperation, u32>,
}

/// An in-memory [`IdempotencyStore`] (local runner, tests, benchmarks). `Clone` shares the
/// records. Conditions are the DynamoDB store's, evaluated atomically under one lock.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave a half-applied record (every mutation is a
    // single map operation), so a poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the next `times` calls of `operation` fail with a [`StoreError`] (fault injection).
    pub fn fail_next(&self, operation: StoreOperation, times: u32) {
        self.lock().failures.insert(operation, times);
    }

    /// Every stored record, in no particular order.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.values().cloned().collect()
    }

    /// Writes `record` unconditionally (to seed scenarios, e.g. an already expired record).
    pub fn put(&self, layout: &TableLayout, record: Record) {
        let key = key(layout, &record.id);
        self.lock().records.insert(key, record);
    }

    fn injected(state: &mut State, operation: StoreOperation) -> Result<(), StoreError> {
        match state.failures.get_mut(&operation) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(StoreError::new(operation, InjectedFailure))
            }
            _ => Ok(()),
        }
    }
}

fn key(layout: &TableLayout, id: &str) -> Key {
    (
        layout.static_partition_key.as_ref().map(|(_, v)| v.clone()),
        id.to_owned(),
    )
}

#[async_trait::async_trait]
impl IdempotencyStore for InMemoryStore {
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now_millis: u64,
    ) -> Result<ClaimResult, StoreError> {
        let mut state = self.lock();
        Self::injected(&mut state, StoreOperation::Claim)?;
        let key = key(layout, &record.id);
        if let Some(existing) = state.records.get(&key)
            && !existing.is_claimable_at(now_millis)
        {
            return Ok(ClaimResult::Conflict(Some(existing.clone())));
        }
        state.records.insert(key, record.clone());
        Ok(ClaimResult::Claimed)
    }

    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError> {
        let mut state = self.lock();
        Self::injected(&mut state, StoreOperation::Complete)?;
        match state.records.get_mut(&key(layout, id)) {
            Some(record) if record.owner == owner => {
                record.status = Status::Completed;
                record.data = Some(data.to_owned());
                record.expiration = expiration;
                Ok(FencedWrite::Applied)
            }
            _ => Ok(FencedWrite::NotOwner),
        }
    }

    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError> {
        let mut state = self.lock();
        Self::injected(&mut state, StoreOperation::Release)?;
        let key = key(layout, id);
        match state.records.get(&key) {
            Some(record) if record.owner != owner => Ok(FencedWrite::NotOwner),
            _ => {
                state.records.remove(&key);
                Ok(FencedWrite::Applied)
            }
        }
    }

    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        let mut state = self.lock();
        Self::injected(&mut state, StoreOperation::Get)?;
        Ok(state.records.get(&key(layout, id)).cloned())
    }
}
