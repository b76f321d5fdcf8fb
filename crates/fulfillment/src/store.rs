//! Where picks and shipments are kept: the [`FulfillmentStore`] port and its adapters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use platform::doc_table::{DocTable, DocTableError};

use crate::domain::{Pick, Shipment};

/// Keeps picks and shipments. Both writes keep the first record for an order and return it, so
/// a re-processed cause re-emits the original facts.
#[async_trait]
pub trait FulfillmentStore: Send + Sync {
    /// Records a pick (or returns the order's existing one).
    async fn record_pick(&self, pick: &Pick) -> Result<Pick, DocTableError>;
    /// Records a shipment (or returns the order's existing one).
    async fn record_shipment(&self, shipment: &Shipment) -> Result<Shipment, DocTableError>;
    /// The order's shipment, if any.
    async fn shipment(&self, order_id: &str) -> Result<Option<Shipment>, DocTableError>;
}

/// In-memory adapter: unit tests and the local runner.
#[derive(Debug, Clone, Default)]
pub struct InMemoryFulfillmentStore {
    picks: Arc<Mutex<HashMap<String, Pick, foldhash::fast::RandomState>>>,
    shipments: Arc<Mutex<HashMap<String, Shipment, foldhash::fast::RandomState>>>,
}

impl InMemoryFulfillmentStore {
    /// Number of picks and of shipments recorded.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.picks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            self.shipments
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        )
    }
}

#[async_trait]
impl FulfillmentStore for InMemoryFulfillmentStore {
    async fn record_pick(&self, pick: &Pick) -> Result<Pick, DocTableError> {
        let mut picks = self.picks.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(picks
            .entry(pick.order_id.clone())
            .or_insert_with(|| pick.clone())
            .clone())
    }

    async fn record_shipment(&self, shipment: &Shipment) -> Result<Shipment, DocTableError> {
        let mut shipments = self
            .shipments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(shipments
            .entry(shipment.order_id.clone())
            .or_insert_with(|| shipment.clone())
            .clone())
    }

    async fn shipment(&self, order_id: &str) -> Result<Option<Shipment>, DocTableError> {
        Ok(self
            .shipments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(order_id)
            .cloned())
    }
}

/// DynamoDB adapter: `PICK#<order>` and `SHIPMENT#<order>` documents in the fulfillment table.
#[derive(Debug, Clone)]
pub struct DynamoDbFulfillmentStore {
    table: DocTable,
}

impl DynamoDbFulfillmentStore {
    /// An adapter for `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: DocTable::new(client, table),
        }
    }
}

#[async_trait]
impl FulfillmentStore for DynamoDbFulfillmentStore {
    async fn record_pick(&self, pick: &Pick) -> Result<Pick, DocTableError> {
        self.table
            .put_new(&format!("PICK#{}", pick.order_id), pick, None)
            .await
    }

    async fn record_shipment(&self, shipment: &Shipment) -> Result<Shipment, DocTableError> {
        self.table
            .put_new(&format!("SHIPMENT#{}", shipment.order_id), shipment, None)
            .await
    }

    async fn shipment(&self, order_id: &str) -> Result<Option<Shipment>, DocTableError> {
        self.table.get(&format!("SHIPMENT#{order_id}")).await
    }
}
