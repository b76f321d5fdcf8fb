//! Parsing an event of any detail type from its envelope fields.

use serde_json::Value;

use crate::{
    Detail, DomainEvent, Metadata, OrderCreated, OrderPicked, OrderShipped, ReturnReceived,
    ReturnRequested,
};

/// Any event of the contract, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    /// `com.orders` / `OrderCreated`.
    OrderCreated(Detail<OrderCreated>),
    /// `com.fulfillment` / `OrderPicked`.
    OrderPicked(Detail<OrderPicked>),
    /// `com.fulfillment` / `OrderShipped`.
    OrderShipped(Detail<OrderShipped>),
    /// `com.support` / `ReturnRequested`.
    ReturnRequested(Detail<ReturnRequested>),
    /// `com.support` / `ReturnReceived`.
    ReturnReceived(Detail<ReturnReceived>),
}

/// Why an event could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The `(source, detail-type)` pair is not in the contract.
    #[error("unknown event {source_name}/{detail_type}: not in the contract")]
    UnknownType {
        /// The envelope's source.
        source_name: String,
        /// The envelope's detail type.
        detail_type: String,
    },
    /// The detail does not match its type's schema.
    #[error("invalid {detail_type} detail: {source}")]
    InvalidDetail {
        /// The detail type.
        detail_type: String,
        /// The serde error, naming the field.
        #[source]
        source: serde_json::Error,
    },
}

impl ParseError {
    /// A stable error type string for logs and Lambda error responses.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnknownType { .. } => "UnknownEventType",
            Self::InvalidDetail { .. } => "InvalidEventDetail",
        }
    }
}

fn typed<E: DomainEvent>(detail: Value) -> Result<Detail<E>, ParseError> {
    serde_json::from_value(detail).map_err(|source| ParseError::InvalidDetail {
        detail_type: E::DETAIL_TYPE.to_owned(),
        source,
    })
}

impl AnyEvent {
    /// Parses `detail` as the type named by `source` and `detail_type`.
    pub fn parse(source: &str, detail_type: &str, detail: Value) -> Result<Self, ParseError> {
        fn is<E: DomainEvent>(source: &str, detail_type: &str) -> bool {
            E::SOURCE == source && E::DETAIL_TYPE == detail_type
        }
        if is::<OrderCreated>(source, detail_type) {
            typed(detail).map(Self::OrderCreated)
        } else if is::<OrderPicked>(source, detail_type) {
            typed(detail).map(Self::OrderPicked)
        } else if is::<OrderShipped>(source, detail_type) {
            typed(detail).map(Self::OrderShipped)
        } else if is::<ReturnRequested>(source, detail_type) {
            typed(detail).map(Self::ReturnRequested)
        } else if is::<ReturnReceived>(source, detail_type) {
            typed(detail).map(Self::ReturnReceived)
        } else {
            Err(ParseError::UnknownType {
                source_name: source.chars().take(64).collect(),
                detail_type: detail_type.chars().take(64).collect(),
            })
        }
    }

    /// The event's metadata.
    pub fn metadata(&self) -> &Metadata {
        match self {
            Self::OrderCreated(d) => &d.metadata,
            Self::OrderPicked(d) => &d.metadata,
            Self::OrderShipped(d) => &d.metadata,
            Self::ReturnRequested(d) => &d.metadata,
            Self::ReturnReceived(d) => &d.metadata,
        }
    }

    /// The `(source, detail-type)` pair.
    pub fn route(&self) -> (&'static str, &'static str) {
        fn of<E: DomainEvent>() -> (&'static str, &'static str) {
            (E::SOURCE, E::DETAIL_TYPE)
        }
        match self {
            Self::OrderCreated(_) => of::<OrderCreated>(),
            Self::OrderPicked(_) => of::<OrderPicked>(),
            Self::OrderShipped(_) => of::<OrderShipped>(),
            Self::ReturnRequested(_) => of::<ReturnRequested>(),
            Self::ReturnReceived(_) => of::<ReturnReceived>(),
        }
    }

    /// The order the event is about.
    pub fn order_id(&self) -> &str {
        match self {
            Self::OrderCreated(d) => &d.data.order_id,
            Self::OrderPicked(d) => &d.data.order_id,
            Self::OrderShipped(d) => &d.data.order_id,
            Self::ReturnRequested(d) => &d.data.order_id,
            Self::ReturnReceived(d) => &d.data.order_id,
        }
    }
}
