//! In-memory store with the DynamoDB store's conditions.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::TableLayout;
use crate::error::{StoreError, StoreOperation};
use crate::record::{Record, Status};
use crate::store::{ClaimResult, FencedWrite, IdempotencyStore};

/// The error injected by [`InMemoryStore::fail_next`].
#[derive(Debug, thiserror::Error)]
#[error("injected in-memory store failure")]
pub struct InjectedFailure;

type Records = HashMap<String, Record, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct State {
    /// Records by static partition key value (`None` without one), then by id: looked up by
    /// `&str`, so no call allocates a key (a store serves every record of the local runner).
    partitions: Vec<(Option<String>, Records)>,
    failures: HashMap<StoreOperation, u32>,
}

impl State {
    fn partition(&self, layout: &TableLayout) -> Option<&Records> {
        let wanted = partition_value(layout);
        self.partitions
            .iter()
            .find(|(value, _)| value.as_deref() == wanted)
            .map(|(_, records)| records)
    }

    fn partition_mut(&mut self, layout: &TableLayout) -> &mut Records {
        let wanted = partition_value(layout);
        let index = match self
            .partitions
            .iter()
            .position(|(value, _)| value.as_deref() == wanted)
        {
            Some(index) => index,
            None => {
                self.partitions
                    .push((wanted.map(str::to_owned), Records::default()));
                self.partitions.len() - 1
            }
        };
        // `index` is a position found above or the entry just pushed.
        &mut self.partitions[index].1
    }
}

fn partition_value(layout: &TableLayout) -> Option<&str> {
    layout
        .static_partition_key
        .as_ref()
        .map(|(_, value)| value.as_str())
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
        self.lock()
            .partitions
            .iter()
            .flat_map(|(_, records)| records.values().cloned())
            .collect()
    }

    /// Writes `record` unconditionally (to seed scenarios, e.g. an already expired record).
    pub fn put(&self, layout: &TableLayout, record: Record) {
        self.lock()
            .partition_mut(layout)
            .insert(record.id.clone(), record);
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
        // One lookup (ids are long, hashing them is most of a claim): the key is cloned up
        // front, which a fresh claim, the common case, needs anyway.
        match state.partition_mut(layout).entry(record.id.clone()) {
            Entry::Occupied(existing) if !existing.get().is_claimable_at(now_millis) => {
                Ok(ClaimResult::Conflict(Some(existing.get().clone())))
            }
            Entry::Occupied(mut existing) => {
                existing.get_mut().clone_from(record);
                Ok(ClaimResult::Claimed)
            }
            Entry::Vacant(slot) => {
                slot.insert(record.clone());
                Ok(ClaimResult::Claimed)
            }
        }
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
        match state.partition_mut(layout).get_mut(id) {
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
        let records = state.partition_mut(layout);
        match records.get(id) {
            Some(record) if record.owner != owner => Ok(FencedWrite::NotOwner),
            _ => {
                records.remove(id);
                Ok(FencedWrite::Applied)
            }
        }
    }

    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        let mut state = self.lock();
        Self::injected(&mut state, StoreOperation::Get)?;
        Ok(state
            .partition(layout)
            .and_then(|records| records.get(id))
            .cloned())
    }
}
