//! Orders' business rules: plain Rust, no AWS types.

use chrono::{DateTime, Utc};
use contracts::{AnyEvent, Currency, Money, OrderCreated, OrderItem, OrderStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most lines an order may have.
pub const MAX_ITEMS: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: u32 = 1_000;
/// Longest SKU.
pub const MAX_ID_LEN: usize = 64;
/// Longest customer id: the identity provider's subject (a Cognito `sub` is a 36-character UUID;
/// other providers' subjects are longer, e.g. `auth0|…`).
pub const MAX_CUSTOMER_ID_LEN: usize = 128;

/// The body of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateOrder {
    /// The customer's opaque id.
    pub customer_id: String,
    /// ISO 4217 code of a supported currency.
    pub currency: Currency,
    /// The lines ordered.
    pub items: Vec<OrderItem>,
}

/// Why a create request is refused (answered as 400 with the field named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrder {
    /// No lines.
    #[error("items must not be empty")]
    NoItems,
    /// Too many lines.
    #[error("an order has at most {MAX_ITEMS} items, got {0}")]
    TooManyItems(usize),
    /// A zero or too large quantity.
    #[error("items[{index}].quantity must be between 1 and {MAX_QUANTITY}, got {quantity}")]
    Quantity {
        /// Line index.
        index: usize,
        /// The rejected quantity.
        quantity: u32,
    },
    /// A malformed identifier.
    #[error("{field} must be 1 to {MAX_ID_LEN} characters of letters, digits, '-' or '_'")]
    Identifier {
        /// The field, e.g. `items[2].sku`.
        field: String,
    },
    /// A customer id (the caller's subject) that is empty, too long or not visible ASCII.
    #[error("the customer id must be 1 to {MAX_CUSTOMER_ID_LEN} visible ASCII characters")]
    CustomerId,
    /// The total does not fit.
    #[error("the order total is too large")]
    TotalOverflow,
}

fn valid_customer_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_CUSTOMER_ID_LEN && s.bytes().all(|b| b.is_ascii_graphic())
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CreateOrder {
    /// Checks the request and computes its exact total.
    pub fn validate(&self) -> Result<Money, InvalidOrder> {
        if !valid_customer_id(&self.customer_id) {
            return Err(InvalidOrder::CustomerId);
        }
        if self.items.is_empty() {
            return Err(InvalidOrder::NoItems);
        }
        if self.items.len() > MAX_ITEMS {
            return Err(InvalidOrder::TooManyItems(self.items.len()));
        }
        let mut total = Money::ZERO;
        for (index, item) in self.items.iter().enumerate() {
            if !valid_id(&item.sku) {
                return Err(InvalidOrder::Identifier {
                    field: format!("items[{index}].sku"),
                });
            }
            if item.quantity == 0 || item.quantity > MAX_QUANTITY {
                return Err(InvalidOrder::Quantity {
                    index,
                    quantity: item.quantity,
                });
            }
            total = item
                .unit_price
                .checked_mul(item.quantity)
                .and_then(|line| total.checked_add(line))
                .ok_or(InvalidOrder::TotalOverflow)?;
        }
        Ok(total)
    }
}

/// An order as the orders domain keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Order {
    /// The order's id.
    pub order_id: String,
    /// Current status; only moves forward.
    pub status: OrderStatus,
    /// Exact total.
    pub total: Money,
    /// Currency of every amount.
    pub currency: Currency,
    /// The customer's opaque id.
    pub customer_id: String,
    /// The lines.
    pub items: Vec<OrderItem>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// The id of the order created by `idempotency_key` for `customer_id`: derived, so a retried
    /// create that runs again (after a crash) writes the same order instead of a second one.
    pub fn id_for(customer_id: &str, idempotency_key: &str) -> String {
        let digest = Sha256::new()
            .chain_update(b"order-v1\x1f")
            .chain_update(customer_id.as_bytes())
            .chain_update(b"\x1f")
            .chain_update(idempotency_key.as_bytes())
            .finalize();
        hex::encode(&digest[..10])
    }

    /// A new open order from a validated request.
    pub fn create(
        request: CreateOrder,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, InvalidOrder> {
        let total = request.validate()?;
        Ok(Self {
            order_id: Self::id_for(&request.customer_id, idempotency_key),
            status: OrderStatus::Open,
            total,
            currency: request.currency,
            customer_id: request.customer_id,
            items: request.items,
            created_at: now,
            updated_at: now,
        })
    }

    /// The full-state `OrderCreated` fact: the order as it was created, so `Open` whatever its
    /// status is now (every copy of a fact carries the same data).
    pub fn created_event(&self) -> OrderCreated {
        OrderCreated {
            order_id: self.order_id.clone(),
            status: OrderStatus::Open,
            total: self.total,
            currency: self.currency.clone(),
            customer_id: self.customer_id.clone(),
            items: self.items.clone(),
            created_at: self.created_at,
        }
    }

    /// Applies another domain's event: moves the status forward, never back. Returns whether the
    /// order changed (a late or repeated event changes nothing).
    pub fn apply(&mut self, event: &AnyEvent) -> bool {
        match status_change(event) {
            Some((status, at)) if status > self.status => {
                self.status = status;
                self.updated_at = at;
                true
            }
            _ => false,
        }
    }
}

/// The status an event moves an order to, and when; `None` for events that do not move it.
pub fn status_change(event: &AnyEvent) -> Option<(OrderStatus, DateTime<Utc>)> {
    match event {
        AnyEvent::OrderPicked(d) => Some((OrderStatus::Picked, d.data.picked_at)),
        AnyEvent::OrderShipped(d) => Some((OrderStatus::Shipped, d.data.shipped_at)),
        AnyEvent::ReturnReceived(d) => Some((OrderStatus::Returned, d.data.received_at)),
        AnyEvent::OrderCreated(_) | AnyEvent::ReturnRequested(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, quantity: u32, price: &str) -> OrderItem {
        OrderItem {
            sku: sku.into(),
            quantity,
            unit_price: price.parse().unwrap(),
        }
    }

    fn request(items: Vec<OrderItem>) -> CreateOrder {
        CreateOrder {
            customer_id: "456".into(),
            currency: Currency::new("USD").unwrap(),
            items,
        }
    }

    #[test]
    fn total_is_the_exact_sum_of_lines() {
        let r = request(vec![item("A", 2, "12.50"), item("B", 1, "212.51")]);
        assert_eq!(r.validate().unwrap(), "237.51".parse().unwrap());
    }

    #[test]
    fn empty_zero_and_oversized_orders_are_refused() {
        assert_eq!(request(vec![]).validate(), Err(InvalidOrder::NoItems));
        assert!(matches!(
            request(vec![item("A", 0, "1")]).validate(),
            Err(InvalidOrder::Quantity {
                index: 0,
                quantity: 0
            })
        ));
        let many = (0..10_000)
            .map(|i| item(&format!("S{i}"), 1, "1"))
            .collect();
        assert_eq!(
            request(many).validate(),
            Err(InvalidOrder::TooManyItems(10_000))
        );
        assert!(matches!(
            request(vec![item("bad sku", 1, "1")]).validate(),
            Err(InvalidOrder::Identifier { .. })
        ));
    }

    #[test]
    fn a_total_beyond_what_money_can_carry_is_refused_not_truncated() {
        let r = request(vec![item("A", MAX_QUANTITY, "999999999999999.9999"); 2]);
        assert_eq!(r.validate(), Err(InvalidOrder::TotalOverflow));
    }

    #[test]
    fn order_created_says_open_whatever_the_status_is_now() {
        let mut order = Order::create(request(vec![item("A", 1, "1")]), "k", Utc::now()).unwrap();
        order.status = OrderStatus::Shipped;
        assert_eq!(order.created_event().status, OrderStatus::Open);
        assert_eq!(order.created_event().created_at, order.created_at);
    }

    #[test]
    fn the_same_key_and_customer_derive_the_same_order_id() {
        assert_eq!(Order::id_for("456", "k1"), Order::id_for("456", "k1"));
        assert_ne!(Order::id_for("456", "k1"), Order::id_for("457", "k1"));
        assert_eq!(Order::id_for("456", "k1").len(), 20);
    }
}
