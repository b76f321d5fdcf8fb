//! The event catalog: which events flow on the commerce bus, who publishes them and who
//! consumes them, read from the two places that decide it.
//!
//! - The contract (`crates/contracts`) gives every detail type, its producer (`source`) and the
//!   JSON Schema of its `detail`, generated from the Rust types.
//! - `template.yaml` gives every subscription: the bus's rules, their target queues and the
//!   functions those queues feed.
//!
//! [`Catalog`] joins them once; everything that describes the events to people or tools is
//! derived from it, so no two of them can disagree:
//!
//! - [`asyncapi::document`]: `asyncapi.yaml` (AsyncAPI 3.0.0), one channel per detail type with
//!   the full EventBridge envelope as payload, a `send` operation per producer, a `receive`
//!   operation per subscription, and the examples of `events/eventbridge/`;
//! - [`registry::block`]: the `AWS::EventSchemas::Registry` and one `AWS::EventSchemas::Schema`
//!   per detail type (JSON Schema draft 4) in `template.yaml`, so other teams can download code
//!   bindings from AWS;
//! - [`Catalog::routes`]: the routing table `local routes` prints.
//!
//! JSON Schema dialects: the contract's schemas are draft 2020-12 (schemars); AsyncAPI's schema
//! object is a superset of draft 7 and the Schema Registry takes draft 4. [`dialect`] converts,
//! refusing keywords it has no faithful translation for.
//!
//! `cargo run -p catalog` regenerates the checked-in outputs; the crate's tests fail when they
//! are stale.
//!
//! ```
//! let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
//! let template = sam_template::Template::load(format!("{root}/template.yaml")).unwrap();
//! let catalog = catalog::Catalog::from_template(&template).unwrap();
//! let created = catalog.event("OrderCreated").unwrap();
//! assert_eq!(created.source, "com.orders");
//! assert_eq!(created.subscriptions[0].rule, "FulfillmentFromOrdersRule");
//! assert_eq!(created.subscriptions[0].consumer.as_ref().unwrap().binary, "fulfillment-events");
//! ```

pub mod asyncapi;
pub mod dialect;
mod envelope;
mod error;
mod examples;
mod model;
pub mod registry;
mod routes;
mod yaml;

pub use error::CatalogError;
pub use model::{Catalog, Consumer, EventType, Example, Subscription};
pub use routes::{Route, routes_text};

/// Where the AsyncAPI document lives, relative to the repository root.
pub const ASYNCAPI_PATH: &str = "asyncapi.yaml";
/// The SAM template, relative to the repository root.
pub const TEMPLATE_PATH: &str = "template.yaml";
/// The EventBridge event fixtures that serve as examples, relative to the repository root.
pub const EXAMPLES_DIR: &str = "events/eventbridge";
/// The command that regenerates every checked-in output of the catalog.
pub const REGENERATE: &str = "cargo run -p catalog";
