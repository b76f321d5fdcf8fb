//! Support's rules for returns. Plain Rust, no AWS types.

use chrono::{DateTime, Utc};
use contracts::{
    IdempotencyKey, OrderItem, OrderShipped, ReturnItem, ReturnReceived, ReturnRequested,
    ReturnStatus,
};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest accepted return reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Support's own record of a shipped order (from `OrderShipped`; no call to orders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShippedOrder {
    /// The order.
    pub order_id: String,
    /// Its customer.
    pub customer_id: String,
    /// What was shipped.
    pub items: Vec<OrderItem>,
    /// When.
    pub shipped_at: DateTime<Utc>,
}

impl From<&OrderShipped> for ShippedOrder {
    fn from(e: &OrderShipped) -> Self {
        Self {
            order_id: e.order_id.clone(),
            customer_id: e.customer_id.clone(),
            items: e.items.clone(),
            shipped_at: e.shipped_at,
        }
    }
}

/// The body of `POST /returns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RequestReturn {
    /// The shipped order.
    pub order_id: String,
    /// Why (free text, bounded).
    pub reason: String,
    /// What comes back.
    pub items: Vec<ReturnItem>,
}

/// Units of each SKU, by SKU (lines of one SKU summed).
pub type Units = BTreeMap<String, u64>;

/// Why a return request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReturn {
    /// Nothing to return.
    #[error("items must not be empty")]
    NoItems,
    /// Empty or overlong reason.
    #[error("reason must be 1 to {MAX_REASON_CHARS} characters")]
    Reason,
    /// A line of zero units, or of a SKU the order did not ship.
    #[error("items[{index}]: {sku} x{quantity} was not shipped with order {order_id}")]
    NotShipped {
        /// Line index.
        index: usize,
        /// The SKU.
        sku: String,
        /// Units asked.
        quantity: u32,
        /// The order.
        order_id: String,
    },
    /// More units of a SKU than may still be returned: shipped, less what earlier returns of
    /// the order took.
    #[error("{asked} x {sku} asked, but only {returnable} may still be returned")]
    ExceedsShipped {
        /// The SKU.
        sku: String,
        /// Units this request asks for (its lines of the SKU summed).
        asked: u64,
        /// Units of it that may still be returned.
        returnable: u64,
    },
}

impl RequestReturn {
    /// Checks the shape of the request (before any lookup).
    pub fn validate(&self) -> Result<(), InvalidReturn> {
        let chars = self.reason.trim().chars().count();
        if chars == 0 || chars > MAX_REASON_CHARS {
            return Err(InvalidReturn::Reason);
        }
        if self.items.is_empty() {
            return Err(InvalidReturn::NoItems);
        }
        Ok(())
    }

    /// Units asked per SKU (repeated SKUs summed).
    pub fn asked(&self) -> Units {
        let mut asked = Units::new();
        for item in &self.items {
            *asked.entry(item.sku.clone()).or_default() += u64::from(item.quantity);
        }
        asked
    }

    /// Checks every line against what was shipped and what earlier returns of the order took
    /// (`returned`, units per SKU). The store enforces the same bound again in the write that
    /// counts this return, so two concurrent requests cannot both take the last unit.
    pub fn check_against(
        &self,
        shipped: &ShippedOrder,
        returned: &Units,
    ) -> Result<(), InvalidReturn> {
        let shipped_units = shipped.units();
        for (index, item) in self.items.iter().enumerate() {
            if item.quantity == 0 || !shipped_units.contains_key(&item.sku) {
                return Err(InvalidReturn::NotShipped {
                    index,
                    sku: item.sku.chars().take(64).collect(),
                    quantity: item.quantity,
                    order_id: shipped.order_id.clone(),
                });
            }
        }
        for (sku, asked) in self.asked() {
            let returnable = shipped.returnable(&sku, returned);
            if asked > returnable {
                return Err(InvalidReturn::ExceedsShipped {
                    sku,
                    asked,
                    returnable,
                });
            }
        }
        Ok(())
    }
}

impl ShippedOrder {
    /// Units shipped per SKU.
    pub fn units(&self) -> Units {
        let mut units = Units::new();
        for item in &self.items {
            *units.entry(item.sku.clone()).or_default() += u64::from(item.quantity);
        }
        units
    }

    /// Units of `sku` that may still be returned, given what earlier returns took.
    pub fn returnable(&self, sku: &str, returned: &Units) -> u64 {
        let shipped = self.units().get(sku).copied().unwrap_or(0);
        shipped.saturating_sub(returned.get(sku).copied().unwrap_or(0))
    }
}

/// A return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Return {
    /// The return's id.
    pub return_id: String,
    /// The order.
    pub order_id: String,
    /// Its customer.
    pub customer_id: String,
    /// Requested, then Received.
    pub status: ReturnStatus,
    /// Why.
    pub reason: String,
    /// Lines.
    pub items: Vec<ReturnItem>,
    /// When requested.
    pub requested_at: DateTime<Utc>,
    /// When received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<DateTime<Utc>>,
    /// The client's key of the request: the facts' keys are derived from it and the order
    /// ([`Return::requested_key`]).
    pub request_key: IdempotencyKey,
}

impl Return {
    /// The id of the return requested with `key` for `order_id` (derived: a re-run writes the same).
    pub fn id_for(order_id: &str, key: &IdempotencyKey) -> String {
        let digest = Sha256::new()
            .chain_update(b"return-v1\x1f")
            .chain_update(order_id.as_bytes())
            .chain_update(b"\x1f")
            .chain_update(key.as_str().as_bytes())
            .finalize();
        format!("RET-{}", hex::encode(&digest[..8]))
    }

    /// A new requested return, checked against the shipped order and what earlier returns of it
    /// took (`returned`).
    pub fn request(
        body: RequestReturn,
        shipped: &ShippedOrder,
        returned: &Units,
        key: IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Self, InvalidReturn> {
        body.validate()?;
        body.check_against(shipped, returned)?;
        Ok(Self {
            return_id: Self::id_for(&body.order_id, &key),
            order_id: body.order_id,
            customer_id: shipped.customer_id.clone(),
            status: ReturnStatus::Requested,
            reason: body.reason.trim().to_owned(),
            items: body.items,
            requested_at: now,
            received_at: None,
            request_key: key,
        })
    }

    /// The same return, received at `at` (or when it was first recorded as received: a receipt
    /// begun by an earlier version keeps its time, so every copy of the fact says the same).
    pub fn received(&self, at: DateTime<Utc>) -> Self {
        Self {
            status: ReturnStatus::Received,
            received_at: Some(self.received_at.unwrap_or(at)),
            ..self.clone()
        }
    }

    /// The idempotency key of `ReturnRequested`: scoped by the order, like the API's claim, so
    /// one client key used for the returns of two orders makes two facts.
    pub fn requested_key(&self) -> IdempotencyKey {
        IdempotencyKey::for_return(&self.order_id, &self.request_key)
    }

    /// Units of each SKU this return takes back.
    pub fn units(&self) -> Units {
        let mut units = Units::new();
        for item in &self.items {
            *units.entry(item.sku.clone()).or_default() += u64::from(item.quantity);
        }
        units
    }

    /// The `ReturnRequested` fact.
    pub fn requested_event(&self) -> ReturnRequested {
        ReturnRequested {
            return_id: self.return_id.clone(),
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            status: ReturnStatus::Requested,
            reason: self.reason.clone(),
            items: self.items.clone(),
            requested_at: self.requested_at,
        }
    }

    /// The `ReturnReceived` fact (`None` until received).
    pub fn received_event(&self) -> Option<ReturnReceived> {
        Some(ReturnReceived {
            return_id: self.return_id.clone(),
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            status: ReturnStatus::Received,
            items: self.items.clone(),
            received_at: self.received_at?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> ShippedOrder {
        ShippedOrder {
            order_id: "o-1".into(),
            customer_id: "456".into(),
            items: vec![OrderItem {
                sku: "MUG".into(),
                quantity: 2,
                unit_price: "12.50".parse().unwrap(),
            }],
            shipped_at: Utc::now(),
        }
    }

    fn body(sku: &str, quantities: &[u32]) -> RequestReturn {
        RequestReturn {
            order_id: "o-1".into(),
            reason: "broken".into(),
            items: quantities
                .iter()
                .map(|&quantity| ReturnItem {
                    sku: sku.into(),
                    quantity,
                })
                .collect(),
        }
    }

    #[test]
    fn a_return_of_shipped_units_is_accepted() {
        let key = IdempotencyKey::new("k").unwrap();
        let r = Return::request(
            body("MUG", &[2]),
            &shipped(),
            &Units::new(),
            key,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(r.status, ReturnStatus::Requested);
        assert_eq!(r.customer_id, "456");
        assert!(r.received_event().is_none());
        assert!(r.received(Utc::now()).received_event().is_some());
    }

    #[test]
    fn returning_more_than_shipped_or_another_sku_is_refused() {
        let none = Units::new();
        assert_eq!(
            body("MUG", &[1, 2]).check_against(&shipped(), &none),
            Err(InvalidReturn::ExceedsShipped {
                sku: "MUG".into(),
                asked: 3,
                returnable: 2
            }),
            "3 of 2 across lines"
        );
        assert!(matches!(
            body("TEAPOT", &[1]).check_against(&shipped(), &none),
            Err(InvalidReturn::NotShipped { .. })
        ));
        assert!(matches!(
            body("MUG", &[0]).check_against(&shipped(), &none),
            Err(InvalidReturn::NotShipped { .. })
        ));
    }

    #[test]
    fn earlier_returns_count_against_what_may_still_be_returned() {
        let returned = Units::from([("MUG".to_owned(), 1)]);
        assert!(
            body("MUG", &[1])
                .check_against(&shipped(), &returned)
                .is_ok()
        );
        assert_eq!(
            body("MUG", &[2]).check_against(&shipped(), &returned),
            Err(InvalidReturn::ExceedsShipped {
                sku: "MUG".into(),
                asked: 2,
                returnable: 1
            })
        );
        let all = Units::from([("MUG".to_owned(), 2)]);
        assert_eq!(shipped().returnable("MUG", &all), 0);
    }

    #[test]
    fn a_receipt_keeps_the_time_it_was_first_recorded() {
        let key = IdempotencyKey::new("k").unwrap();
        let r = Return::request(
            body("MUG", &[1]),
            &shipped(),
            &Units::new(),
            key,
            Utc::now(),
        )
        .unwrap();
        let first = r.received("2026-11-23T10:00:00Z".parse().unwrap());
        let again = first.received(Utc::now());
        assert_eq!(again.received_at, first.received_at);
    }

    #[test]
    fn an_empty_or_overlong_reason_is_refused() {
        let mut b = body("MUG", &[1]);
        b.reason = "  ".into();
        assert_eq!(b.validate(), Err(InvalidReturn::Reason));
        b.reason = "x".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(b.validate(), Err(InvalidReturn::Reason));
    }
}
