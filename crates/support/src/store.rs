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
    /// Stores `received` if the return is still Requested; false if it no longer is.
    async fn mark_received(&self, received: &Return) -> Result<bool, DocTableError>;
}

/// In-memory adapter: unit tests and the local runner.
#[derive(Debug, Clone, Default)]
pub struct InMemorySupportStore {
    shipped: Arc<Mutex<HashMap<String, ShippedOrder>>>,
    returns: Arc<Mutex<HashMap<String, Return>>>,
}

impl InMemorySupportStore {
    /// Every return.
    pub fn returns(&self) -> Vec<Return> {
        self.returns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
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
            .or_insert_with(|| ret.clone())
            .clone())
    }

    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError> {
        Ok(self
            .returns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(return_id)
            .cloned())
    }

    async fn mark_received(&self, received: &Return) -> Result<bool, DocTableError> {
        let mut returns = self.returns.lock().unwrap_or_else(PoisonError::into_inner);
        match returns.get_mut(&received.return_id) {
            Some(current) if current.status == contracts::ReturnStatus::Requested => {
                *current = received.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
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
            .put_new(&format!("RETURN#{}", ret.return_id), ret, Some("Requested"))
            .await
    }

    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError> {
        self.table.get(&format!("RETURN#{return_id}")).await
    }

    async fn mark_received(&self, received: &Return) -> Result<bool, DocTableError> {
        self.table
            .transition(
                &format!("RETURN#{}", received.return_id),
                received,
                "Requested",
                "Received",
            )
            .await
    }
}
