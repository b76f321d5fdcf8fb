//! `support-events`: support's own projection of shipped orders, from `OrderShipped`.

use std::sync::Arc;

use async_trait::async_trait;
use contracts::AnyEvent;
use eventing::{EventHandler, HandlerError, OutgoingEvent};

use crate::domain::ShippedOrder;
use crate::store::SupportStore;

/// Records every shipped order so returns can be checked without calling the orders domain.
#[derive(Clone)]
pub struct ShippedOrdersProjection {
    store: Arc<dyn SupportStore>,
}

impl ShippedOrdersProjection {
    /// A projection writing to `store`.
    pub fn new(store: Arc<dyn SupportStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl EventHandler for ShippedOrdersProjection {
    async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError> {
        let AnyEvent::OrderShipped(shipped) = event else {
            return Err(HandlerError::Unhandled {
                detail_type: event.route().1.to_owned(),
            });
        };
        self.store
            .put_shipped_order(&ShippedOrder::from(&shipped.data))
            .await
            .map_err(|e| HandlerError::Transient(Box::new(e)))?;
        tracing::info!(order_id = %shipped.data.order_id, "shipped order recorded");
        Ok(Vec::new())
    }
}
