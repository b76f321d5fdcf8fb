//! Parsing an event of any detail type from its envelope fields.

use serde::{Deserialize, Deserializer};
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

/// Where a detail is read from: an already parsed JSON value, JSON text (parsed straight into
/// the typed detail, with no intermediate value: the consumer's hot path), or a deserializer
/// positioned on the detail inside a larger document.
trait DetailSource {
    type Error;
    fn typed<E: DomainEvent>(self) -> Result<Detail<E>, Self::Error>;
}

impl DetailSource for Value {
    type Error = serde_json::Error;
    fn typed<E: DomainEvent>(self) -> Result<Detail<E>, serde_json::Error> {
        serde_json::from_value(self)
    }
}

impl DetailSource for &str {
    type Error = serde_json::Error;
    fn typed<E: DomainEvent>(self) -> Result<Detail<E>, serde_json::Error> {
        serde_json::from_str(self)
    }
}

/// A deserializer as a [`DetailSource`].
struct FromDeserializer<'de, D>(D, std::marker::PhantomData<&'de ()>);

impl<'de, D: Deserializer<'de>> DetailSource for FromDeserializer<'de, D> {
    type Error = D::Error;
    fn typed<E: DomainEvent>(self) -> Result<Detail<E>, D::Error> {
        Detail::<E>::deserialize(self.0)
    }
}

/// Reads `detail` as the contract type named by `source` and `detail_type`; `None` when the
/// pair is not in the contract.
fn dispatch<S: DetailSource>(
    source: &str,
    detail_type: &str,
    detail: S,
) -> Option<Result<AnyEvent, S::Error>> {
    fn is<E: DomainEvent>(source: &str, detail_type: &str) -> bool {
        E::SOURCE == source && E::DETAIL_TYPE == detail_type
    }
    Some(if is::<OrderCreated>(source, detail_type) {
        detail.typed().map(AnyEvent::OrderCreated)
    } else if is::<OrderPicked>(source, detail_type) {
        detail.typed().map(AnyEvent::OrderPicked)
    } else if is::<OrderShipped>(source, detail_type) {
        detail.typed().map(AnyEvent::OrderShipped)
    } else if is::<ReturnRequested>(source, detail_type) {
        detail.typed().map(AnyEvent::ReturnRequested)
    } else if is::<ReturnReceived>(source, detail_type) {
        detail.typed().map(AnyEvent::ReturnReceived)
    } else {
        return None;
    })
}

fn parse_from(
    source: &str,
    detail_type: &str,
    detail: impl DetailSource<Error = serde_json::Error>,
) -> Result<AnyEvent, ParseError> {
    match dispatch(source, detail_type, detail) {
        Some(parsed) => parsed.map_err(|error| ParseError::InvalidDetail {
            detail_type: detail_type.to_owned(),
            source: error,
        }),
        None => Err(unknown(source, detail_type)),
    }
}

/// The error for a `(source, detail-type)` pair the contract does not have (names clipped:
/// they are untrusted and end up in logs).
fn unknown(source: &str, detail_type: &str) -> ParseError {
    ParseError::UnknownType {
        source_name: source.chars().take(64).collect(),
        detail_type: detail_type.chars().take(64).collect(),
    }
}

impl AnyEvent {
    /// Parses `detail` as the type named by `source` and `detail_type`.
    pub fn parse(source: &str, detail_type: &str, detail: Value) -> Result<Self, ParseError> {
        parse_from(source, detail_type, detail)
    }

    /// Like [`AnyEvent::parse`], from the detail's JSON text: the typed detail is read straight
    /// from the text, without building a [`Value`] first.
    pub fn parse_str(source: &str, detail_type: &str, detail: &str) -> Result<Self, ParseError> {
        parse_from(source, detail_type, detail)
    }

    /// Like [`AnyEvent::parse_str`], reading the detail from `deserializer`, e.g. as the value of
    /// an envelope's `detail` field while the envelope is being read, so the detail's text is
    /// scanned once. An unknown `(source, detail-type)` pair is a custom error; callers that
    /// need the typed [`ParseError`] re-read with [`AnyEvent::parse_str`].
    pub fn deserialize_detail<'de, D: Deserializer<'de>>(
        source: &str,
        detail_type: &str,
        deserializer: D,
    ) -> Result<Self, D::Error> {
        dispatch(
            source,
            detail_type,
            FromDeserializer(deserializer, std::marker::PhantomData),
        )
        .unwrap_or_else(|| Err(serde::de::Error::custom(unknown(source, detail_type))))
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
