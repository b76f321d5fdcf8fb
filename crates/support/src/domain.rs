//! Support's rules for returns. Plain Rust, no AWS types.

use chrono::{DateTime, Utc};
use contracts::{
    IdempotencyKey, OrderItem, OrderShipped, ReturnItem, ReturnReceived, ReturnRequested,
    ReturnStatus,
};
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

/// Why a return request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReturn {
    /// Nothing to return.
    #[error("items must not be empty")]
    NoItems,
    /// Empty or overlong reason.
    #[error("reason must be 1 to {MAX_REASON_CHARS} characters")]
    Reason,
    /// A line that was not shipped, or more units than shipped.
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

    /// Checks every line against what was shipped (summing repeated SKUs).
    pub fn check_against(&self, shipped: &ShippedOrder) -> Result<(), InvalidReturn> {
        let mut asked: std::collections::BTreeMap<&str, u64> = Default::default();
        for (index, item) in self.items.iter().enumerate() {
            let total = asked.entry(item.sku.as_str()).or_default();
            *total += u64::from(item.quantity);
            let shipped_qty: u64 = shipped
                .items
                .iter()
                .filter(|s| s.sku == item.sku)
                .map(|s| u64::from(s.quantity))
                .sum();
            if item.quantity == 0 || *total > shipped_qty {
                return Err(InvalidReturn::NotShipped {
                    index,
                    sku: item.sku.chars().take(64).collect(),
                    quantity: item.quantity,
                    order_id: shipped.order_id.clone(),
                });
            }
        }
        Ok(())
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
    /// The client's key of the request: `ReturnReceived`'s key is derived from it.
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

    /// A new requested return, checked against the shipped order.
    pub fn request(
        body: RequestReturn,
        shipped: &ShippedOrder,
        key: IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Self, InvalidReturn> {
        body.validate()?;
        body.check_against(shipped)?;
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

    /// The same return, received at `at`.
    pub fn received(&self, at: DateTime<Utc>) -> Self {
        Self {
            status: ReturnStatus::Received,
            received_at: Some(at),
            ..self.clone()
        }
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
        let r = Return::request(body("MUG", &[2]), &shipped(), key, Utc::now()).unwrap();
        assert_eq!(r.status, ReturnStatus::Requested);
        assert_eq!(r.customer_id, "456");
        assert!(r.received_event().is_none());
        assert!(r.received(Utc::now()).received_event().is_some());
    }

    #[test]
    fn returning_more_than_shipped_or_another_sku_is_refused() {
        assert!(
            body("MUG", &[1, 2]).check_against(&shipped()).is_err(),
            "3 of 2 across lines"
        );
        assert!(body("TEAPOT", &[1]).check_against(&shipped()).is_err());
        assert!(body("MUG", &[0]).check_against(&shipped()).is_err());
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
