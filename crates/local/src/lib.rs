//! The local runner: every function of `template.yaml` in one process, routed by the template's
//! own rules, with no AWS account and no Docker (`cargo run -p local -- --help`).
//!
//! - [`topology`]: what is read from the template: the bus, every rule's pattern and target
//!   queue, every queue's redrive policy, every function's binary, resolved environment, SQS
//!   sources (batch size, maximum concurrency), HTTP routes, timeout and `events:source` grant.
//! - [`router`]: rule matching with a real EventBridge pattern engine (quamina).
//! - [`bus`]: the in-process bus and queues: SQS-shaped batches, partial batch failures
//!   redelivered (after a short visibility pause) up to `maxReceiveCount`, then the dead-letter
//!   listing; `--duplicates`.
//! - [`hosting`]: the functions, built with the same constructors as the Lambda binaries'
//!   `wire_*` functions, over in-memory stores or DynamoDB, publishing onto the bus.
//! - [`streams`]: the table streams that feed the outbox relays, read as Lambda's event source
//!   mapping reads them (in-memory tables' change feeds, or DynamoDB Streams).
//! - [`Runner`]: all of it; [`Runner::request`] serves an HTTP request as API Gateway would
//!   (authorizer included), [`Runner::inject`] puts events on the bus, [`Runner::settle`] relays
//!   the table streams and delivers until streams and queues are empty, [`Runner::summary`] tells
//!   what happened.
//! - [`flow`]: one line per delivery and request, readable or JSON, and the summary.
//! - [`auth`]: API Gateway's JWT authorizer and the identity provider behind it, played with a
//!   local signing key: [`Runner::request`] validates a request's bearer token and the route's
//!   scopes from the template, and hands the function the claims as API Gateway would;
//!   [`auth::TokenAuthority`] mints tokens (`local token`).
//! - [`demo`], [`fixtures`] (replay), [`bench`], [`http`] (serving on loopback), [`cli`].
//!
//! ```
//! use local::{Runner, RunnerOptions};
//! use platform::http::ApiRequest;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
//! let runner = Runner::load(template, RunnerOptions::in_memory()).unwrap();
//! assert!(runner
//!     .banner()
//!     .starts_with("Routing from template.yaml: 5 rules, 2 table streams, 7 functions"));
//!
//! // The runner plays API Gateway's JWT authorizer: a request carries a token it minted.
//! let token = runner.customer_token("C-1").unwrap();
//! let mut post = ApiRequest {
//!     method: "POST".into(),
//!     path: "/orders".into(),
//!     body: br#"{"customer-id":"C-1","currency":"EUR","items":[{"sku":"MUG","quantity":1,"unit-price":"9.90"}]}"#.to_vec(),
//!     ..ApiRequest::default()
//! };
//! post.headers.insert("idempotency-key".into(), "doc-1".into());
//! assert_eq!(runner.request(&post).await.status, 401, "no token: API Gateway's 401");
//! post.headers.insert("authorization".into(), format!("Bearer {token}"));
//! let created = runner.request(&post).await;
//! assert_eq!(created.status, 201);
//!
//! // The orders table's stream -> the outbox relay -> OrderCreated -> fulfillment ->
//! // OrderPicked, OrderShipped -> orders and support.
//! runner.settle().await.unwrap();
//! let summary = runner.summary();
//! assert_eq!((summary.events_published, summary.deliveries.fresh), (3, 5));
//! assert_eq!(summary.facts_relayed, 1);
//! assert_eq!(summary.requests.failed, 1, "the refused request");
//! assert!(summary.dead_letters.is_empty());
//! # });
//! ```

pub mod auth;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod demo;
mod error;
pub mod fixtures;
pub mod flow;
pub mod hosting;
pub mod http;
pub mod router;
mod runner;
pub mod streams;
pub mod topology;

pub use error::LocalError;
pub use runner::{MAX_BATCHES, Runner, RunnerOptions, response_outcome};
