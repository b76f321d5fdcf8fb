//! Where support keeps shipped orders and returns: the [`SupportStore`] port and its adapters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use platform::doc_table::{DocTable, DocTableError};

use crate::domain::{Return, ShippedOrder};

/// Keeps support's projection of shipped orders and its returns.
#[async_trait]
pub trait SupportStore: Send + Sync {
    /// Records a shipped order (full state: a repeat overwrites with the same data).
    async fn put_shipped_order(&self, order: &ShippedOrder) -> Result<(), DocTableError>;
    /// A shipped order support has seen.
    async fn shipped_order(&self, order_id: &str) -> Result<Option<ShippedOrder>, DocTableError>;
    /// Records a new return (or returns the existing one with its id).
    async fn insert_return(&self, ret: &Return) -> Result<Return, DocTableError>;
    /// A return by id.
    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError>;
    /// Step 1 of a receipt: moves a Requested return to Receiving, storing `received` (and so its
    /// `received-at`) once. Whoever comes later gets the stored copy, so every publication of
    /// the fact carries the same data. `None` when the return does not exist.
    async fn begin_receipt(&self, received: &Return) -> Result<Option<Receipt>, DocTableError>;
    /// Step 2, after `ReturnReceived` was published: Receiving -> Received (no-op when done).
    async fn finish_receipt(&self, received: &Return) -> Result<(), DocTableError>;
}

/// Where a return's receipt stands after [`SupportStore::begin_receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// This call started it: publish, then finish.
    Started(Return),
    /// Started before (a retry, or a concurrent request) and not finished: publish the stored
    /// fact again (same key, same data: downstream deduplicates it), then finish.
    Pending(Return),
    /// Finished: the fact is out; nothing to do.
    Done(Return),
}

/// The states a return's `state` attribute takes.
mod state {
    pub const REQUESTED: &str = "Requested";
    pub const RECEIVING: &str = "Receiving";
    pub const RECEIVED: &str = "Received";
}

/// A map of the in-memory adapter, by id.
type Table<V> = Arc<Mutex<HashMap<String, V, foldhash::fast::RandomState>>>;

/// In-memory adapter: unit tests and the local runner.
#[derive(Debug, Clone, Default)]
pub struct InMemorySupportStore {
    shipped: Table<ShippedOrder>,
    /// Each return with its stage.
    returns: Table<(Return, &'static str)>,
}

impl InMemorySupportStore {
    /// Every return.
    pub fn returns(&self) -> Vec<Return> {
        self.returns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|(ret, _)| ret.clone())
            .collect()
    }
}

#[async_trait]
impl SupportStore for InMemorySupportStore {
    async fn put_shipped_order(&self, order: &ShippedOrder) -> Result<(), DocTableError> {
        self.shipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(order.order_id.clone(), order.clone());
        Ok(())
    }

    async fn shipped_order(&self, order_id: &str) -> Result<Option<ShippedOrder>, DocTableError> {
        Ok(self
            .shipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(order_id)
            .cloned())
    }

    async fn insert_return(&self, ret: &Return) -> Result<Return, DocTableError> {
        let mut returns = self.returns.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(returns
            .entry(ret.return_id.clone())
            .or_insert_with(|| (ret.clone(), state::REQUESTED))
            .0
            .clone())
    }

    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError> {
        Ok(self
            .returns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(return_id)
            .map(|(ret, _)| ret.clone()))
    }

    async fn begin_receipt(&self, received: &Return) -> Result<Option<Receipt>, DocTableError> {
        let mut returns = self.returns.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((stored, state)) = returns.get_mut(&received.return_id) else {
            return Ok(None);
        };
        Ok(Some(match *state {
            state::REQUESTED => {
                *stored = received.clone();
                *state = state::RECEIVING;
                Receipt::Started(received.clone())
            }
            state::RECEIVING => Receipt::Pending(stored.clone()),
            _ => Receipt::Done(stored.clone()),
        }))
    }

    async fn finish_receipt(&self, received: &Return) -> Result<(), DocTableError> {
        let mut returns = self.returns.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, state)) = returns.get_mut(&received.return_id)
            && *state == state::RECEIVING
        {
            *state = state::RECEIVED;
        }
        Ok(())
    }
}

/// DynamoDB adapter: `SHIPPED#<order>` and `RETURN#<id>` documents in the support table; a
/// return's `state` attribute guards the Requested -> Received transition.
#[derive(Debug, Clone)]
pub struct DynamoDbSupportStore {
    table: DocTable,
}

impl DynamoDbSupportStore {
    /// An adapter for `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: DocTable::new(client, table),
        }
    }
}

#[async_trait]
impl SupportStore for DynamoDbSupportStore {
    async fn put_shipped_order(&self, order: &ShippedOrder) -> Result<(), DocTableError> {
        self.table
            .put(&format!("SHIPPED#{}", order.order_id), order)
            .await
    }

    async fn shipped_order(&self, order_id: &str) -> Result<Option<ShippedOrder>, DocTableError> {
        self.table.get(&format!("SHIPPED#{order_id}")).await
    }

    async fn insert_return(&self, ret: &Return) -> Result<Return, DocTableError> {
        self.table
            .put_new(
                &format!("RETURN#{}", ret.return_id),
                ret,
                Some(state::REQUESTED),
            )
            .await
    }

    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError> {
        self.table.get(&format!("RETURN#{return_id}")).await
    }

    async fn begin_receipt(&self, received: &Return) -> Result<Option<Receipt>, DocTableError> {
        let pk = format!("RETURN#{}", received.return_id);
        if self
            .table
            .transition(&pk, received, state::REQUESTED, state::RECEIVING)
            .await?
        {
            return Ok(Some(Receipt::Started(received.clone())));
        }
        // Lost the transition (or no such return): one read tells which, and gives the fact as
        // first stored.
        match self.table.get_with_state::<Return>(&pk).await? {
            None => Ok(None),
            Some((stored, state)) => match state.as_deref() {
                Some(state::RECEIVING) => Ok(Some(Receipt::Pending(stored))),
                Some(state::RECEIVED) => Ok(Some(Receipt::Done(stored))),
                other => Err(DocTableError::Corrupt {
                    table: String::new(),
                    pk,
                    problem: format!("receipt transition refused in state {other:?}"),
                }),
            },
        }
    }

    async fn finish_receipt(&self, received: &Return) -> Result<(), DocTableError> {
        // False means it is already Received: a concurrent request finished first.
        self.table
            .transition(
                &format!("RETURN#{}", received.return_id),
                received,
                state::RECEIVING,
                state::RECEIVED,
            )
            .await
            .map(drop)
    }
}
