//! One type per detail type. Every one is full-state: a consumer never calls the producer back.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Currency, DomainEvent, Money, detail_type, source};

/// An order's lifecycle status. It only moves forward, in declaration order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum OrderStatus {
    /// Accepted, not yet picked.
    Open,
    /// Items picked in the warehouse.
    Picked,
    /// Handed to a carrier.
    Shipped,
    /// Returned items received back.
    Returned,
}

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct OrderItem {
    /// Stock keeping unit.
    pub sku: String,
    /// Units ordered, at least 1.
    pub quantity: u32,
    /// Price of one unit.
    pub unit_price: Money,
}

/// `com.orders` / `OrderCreated`: an order was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct OrderCreated {
    /// The order's id.
    pub order_id: String,
    /// Always [`OrderStatus::Open`] at creation.
    pub status: OrderStatus,
    /// Sum of quantity times unit price over the items.
    pub total: Money,
    /// Currency of every amount of the order.
    pub currency: Currency,
    /// The customer's id (an opaque id, never personal data).
    pub customer_id: String,
    /// The ordered lines.
    pub items: Vec<OrderItem>,
    /// When the order was accepted.
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: DateTime<Utc>,
}

impl DomainEvent for OrderCreated {
    const SOURCE: &'static str = source::ORDERS;
    const DETAIL_TYPE: &'static str = detail_type::ORDER_CREATED;
}

/// `com.fulfillment` / `OrderPicked`: every item of an order was picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct OrderPicked {
    /// The order's id.
    pub order_id: String,
    /// The customer's id.
    pub customer_id: String,
    /// The picked lines (all of the order's).
    pub items: Vec<OrderItem>,
    /// Warehouse that picked the order.
    pub warehouse_id: String,
    /// When picking finished.
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub picked_at: DateTime<Utc>,
}

impl DomainEvent for OrderPicked {
    const SOURCE: &'static str = source::FULFILLMENT;
    const DETAIL_TYPE: &'static str = detail_type::ORDER_PICKED;
}

/// Carriers the warehouse ships with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Carrier {
    /// United Parcel Service.
    #[serde(rename = "UPS")]
    Ups,
    /// DHL.
    #[serde(rename = "DHL")]
    Dhl,
    /// FedEx.
    FedEx,
}

/// `com.fulfillment` / `OrderShipped`: an order left the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct OrderShipped {
    /// The order's id.
    pub order_id: String,
    /// The customer's id.
    pub customer_id: String,
    /// The shipped lines.
    pub items: Vec<OrderItem>,
    /// The shipment's id.
    pub shipment_id: String,
    /// The carrier.
    pub carrier: Carrier,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// When the carrier took the parcel.
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub shipped_at: DateTime<Utc>,
}

impl DomainEvent for OrderShipped {
    const SOURCE: &'static str = source::FULFILLMENT;
    const DETAIL_TYPE: &'static str = detail_type::ORDER_SHIPPED;
}

/// A returned line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ReturnItem {
    /// Stock keeping unit.
    pub sku: String,
    /// Units returned, at least 1.
    pub quantity: u32,
}

/// A return's status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ReturnStatus {
    /// The customer asked to return items.
    Requested,
    /// The items arrived back.
    Received,
}

/// `com.support` / `ReturnRequested`: a customer asked to return items of a shipped order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ReturnRequested {
    /// The return's id.
    pub return_id: String,
    /// The order the items belong to.
    pub order_id: String,
    /// The customer's id.
    pub customer_id: String,
    /// Always [`ReturnStatus::Requested`].
    pub status: ReturnStatus,
    /// Why the customer returns them (free text, bounded, no personal data expected).
    pub reason: String,
    /// Lines to return.
    pub items: Vec<ReturnItem>,
    /// When the return was requested.
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub requested_at: DateTime<Utc>,
}

impl DomainEvent for ReturnRequested {
    const SOURCE: &'static str = source::SUPPORT;
    const DETAIL_TYPE: &'static str = detail_type::RETURN_REQUESTED;
}

/// `com.support` / `ReturnReceived`: returned items arrived back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ReturnReceived {
    /// The return's id.
    pub return_id: String,
    /// The order the items belong to.
    pub order_id: String,
    /// The customer's id.
    pub customer_id: String,
    /// Always [`ReturnStatus::Received`].
    pub status: ReturnStatus,
    /// Lines received.
    pub items: Vec<ReturnItem>,
    /// When the items arrived.
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub received_at: DateTime<Utc>,
}

impl DomainEvent for ReturnReceived {
    const SOURCE: &'static str = source::SUPPORT;
    const DETAIL_TYPE: &'static str = detail_type::RETURN_RECEIVED;
}
