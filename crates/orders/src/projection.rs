//! `orders-events`: keeps each order's status current from the other domains' events.

use std::sync::Arc;

use async_trait::async_trait;
use contracts::AnyEvent;
use eventing::{EventHandler, HandlerError, OutgoingEvent};

use crate::domain::status_change;
use crate::store::{Advance, OrderStore};

/// Applies `OrderPicked`, `OrderShipped` and `ReturnReceived` to the order's status, forward only.
#[derive(Clone)]
pub struct OrderStatusProjection {
    store: Arc<dyn OrderStore>,
}

impl OrderStatusProjection {
    /// A projection writing to `store`.
    pub fn new(store: Arc<dyn OrderStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl EventHandler for OrderStatusProjection {
    async fn handle(&self, event: &AnyEvent) -> Result<Vec<OutgoingEvent>, HandlerError> {
        let Some((status, at)) = status_change(event) else {
            return Err(HandlerError::Unhandled {
                detail_type: event.route().1.to_owned(),
            });
        };
        let order_id = event.order_id();
        match self.store.advance(order_id, status, at).await {
            Ok(Advance::Moved) => {
                tracing::info!(order_id, ?status, "order status moved forward");
                Ok(Vec::new())
            }
            Ok(Advance::Unchanged(current)) => {
                // Events arrive out of order: a late one is a success that changes nothing.
                tracing::info!(
                    order_id,
                    ?status,
                    ?current,
                    "late or repeated event: status kept"
                );
                Ok(Vec::new())
            }
            Ok(Advance::NotFound) => Err(HandlerError::Rejected {
                reason: format!("order {order_id} is unknown to the orders domain"),
            }),
            Err(e) => Err(HandlerError::Transient(Box::new(e))),
        }
    }
}
