//! Fulfillment's rules: which warehouse picks, which carrier ships. Plain Rust, no AWS types.
//!
//! Every derived value (warehouse, shipment id, carrier, tracking number) is a pure function of
//! the order, so re-processing a cause yields the same facts; the stored record stays the one of
//! the first run (the store keeps the first write).

use chrono::{DateTime, Utc};
use contracts::{Carrier, OrderCreated, OrderItem, OrderPicked, OrderShipped};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A picked order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Pick {
    /// The order.
    pub order_id: String,
    /// Its customer.
    pub customer_id: String,
    /// Lines picked.
    pub items: Vec<OrderItem>,
    /// Warehouse that picked it.
    pub warehouse_id: String,
    /// When.
    pub picked_at: DateTime<Utc>,
}

/// A shipment of a picked order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Shipment {
    /// The order.
    pub order_id: String,
    /// Its customer.
    pub customer_id: String,
    /// Lines shipped.
    pub items: Vec<OrderItem>,
    /// The shipment's id.
    pub shipment_id: String,
    /// The carrier.
    pub carrier: Carrier,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// When the carrier took it.
    pub shipped_at: DateTime<Utc>,
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(b"\x1f");
    }
    hasher.finalize().into()
}

impl Pick {
    /// Picks a new order: orders in dollars go to the US warehouse, the rest to the EU one.
    pub fn of(order: &OrderCreated, now: DateTime<Utc>) -> Self {
        let warehouse = match order.currency.as_str() {
            "USD" | "CAD" => "WH-US-1",
            _ => "WH-EU-1",
        };
        Self {
            order_id: order.order_id.clone(),
            customer_id: order.customer_id.clone(),
            items: order.items.clone(),
            warehouse_id: warehouse.to_owned(),
            picked_at: now,
        }
    }

    /// The full-state fact.
    pub fn event(&self) -> OrderPicked {
        OrderPicked {
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            items: self.items.clone(),
            warehouse_id: self.warehouse_id.clone(),
            picked_at: self.picked_at,
        }
    }
}

impl Shipment {
    /// Ships a picked order with a carrier chosen by the order id's hash (spreads the load).
    pub fn of(picked: &OrderPicked, now: DateTime<Utc>) -> Self {
        let hash = digest(&["shipment-v1", &picked.order_id]);
        let carrier = match hash[0] % 3 {
            0 => Carrier::Ups,
            1 => Carrier::Dhl,
            _ => Carrier::FedEx,
        };
        Self {
            order_id: picked.order_id.clone(),
            customer_id: picked.customer_id.clone(),
            items: picked.items.clone(),
            shipment_id: format!("SHP-{}", picked.order_id),
            carrier,
            tracking_number: format!("1Z{}", hex::encode_upper(&hash[1..9])),
            shipped_at: now,
        }
    }

    /// The full-state fact.
    pub fn event(&self) -> OrderShipped {
        OrderShipped {
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            items: self.items.clone(),
            shipment_id: self.shipment_id.clone(),
            carrier: self.carrier,
            tracking_number: self.tracking_number.clone(),
            shipped_at: self.shipped_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use contracts::{Currency, OrderStatus};

    use super::*;

    fn created(currency: &str) -> OrderCreated {
        OrderCreated {
            order_id: "o-1".into(),
            status: OrderStatus::Open,
            total: "1.00".parse().unwrap(),
            currency: Currency::new(currency).unwrap(),
            customer_id: "c".into(),
            items: vec![],
            created_at: Utc::now(),
        }
    }

    #[test]
    fn dollar_orders_are_picked_in_the_us_and_the_rest_in_the_eu() {
        assert_eq!(
            Pick::of(&created("USD"), Utc::now()).warehouse_id,
            "WH-US-1"
        );
        assert_eq!(
            Pick::of(&created("EUR"), Utc::now()).warehouse_id,
            "WH-EU-1"
        );
    }

    #[test]
    fn a_shipment_is_the_same_whenever_it_is_derived() {
        let pick = Pick::of(&created("USD"), Utc::now()).event();
        let (a, b) = (
            Shipment::of(&pick, Utc::now()),
            Shipment::of(&pick, Utc::now()),
        );
        assert_eq!(
            (&a.shipment_id, a.carrier, &a.tracking_number),
            (&b.shipment_id, b.carrier, &b.tracking_number)
        );
        assert_eq!(a.tracking_number.len(), 18);
    }
}
