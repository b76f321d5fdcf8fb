//! `fulfillment-events`: `OrderCreated` -> pick -> `OrderPicked`; `OrderPicked` -> ship -> `OrderShipped`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use contracts::{AnyEvent, Detail, OrderPicked, OrderShipped};
use eventing::{EventHandler, HandlerError, OutgoingEvent};

use crate::domain::{Pick, Shipment};
use crate::store::FulfillmentStore;

/// Picks created orders and ships picked ones. Emitted events carry keys derived from their
/// cause's key, so a re-delivered cause never yields a second effect downstream.
#[derive(Clone)]
pub struct FulfillmentHandler {
    store: Arc<dyn FulfillmentStore>,
    clock: fn() -> DateTime<Utc>,
}

impl FulfillmentHandler {
    /// A handler writing to `store`.
    pub fn new(store: Arc<dyn FulfillmentStore>) -> Self {
        Self {
            store,
            clock: Utc::now,
        }
    }
}

fn transient(e: impl std::error::Error + Send + Sync + 'static) -> HandlerError {
    HandlerError::Transient(Box::new(e))
}

fn permanent(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Rejected {
        reason: e.to_string(),
    }
}

#[async_trait]
impl EventHandler for FulfillmentHandler {
    async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError> {
        match event {
            AnyEvent::OrderCreated(created) => {
                let pick = self
                    .store
                    .record_pick(&Pick::of(&created.data, (self.clock)()))
                    .await
                    .map_err(transient)?;
                let metadata = created.metadata.caused::<OrderPicked>(pick.picked_at);
                tracing::info!(order_id = %pick.order_id, warehouse = %pick.warehouse_id, "order picked");
                Ok(vec![
                    OutgoingEvent::new(&Detail::new(metadata, pick.event())).map_err(permanent)?,
                ])
            }
            AnyEvent::OrderPicked(picked) => {
                let shipment = self
                    .store
                    .record_shipment(&Shipment::of(&picked.data, (self.clock)()))
                    .await
                    .map_err(transient)?;
                let metadata = picked.metadata.caused::<OrderShipped>(shipment.shipped_at);
                tracing::info!(order_id = %shipment.order_id, carrier = ?shipment.carrier, "order shipped");
                Ok(vec![
                    OutgoingEvent::new(&Detail::new(metadata, shipment.event()))
                        .map_err(permanent)?,
                ])
            }
            other => Err(HandlerError::Unhandled {
                detail_type: other.route().1.to_owned(),
            }),
        }
    }
}
