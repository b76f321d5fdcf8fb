//! Measures what Lambda bills for our functions, by running their real release binaries the
//! way Lambda runs them, against the moto stand-in.
//!
//! - [`emulator`]: a Lambda Runtime API emulator (`/next`, `/response`, `/error`,
//!   `/init/error`) that records the end of init (the first `/next` poll) and each invocation's
//!   duration.
//! - [`function`]: one execution environment: the binary started with Lambda's environment
//!   variables only, its init time, logs, peak RSS and CPU time.
//! - [`proxy`] and [`calls`]: a counting proxy as the function's `AWS_ENDPOINT_URL`, so every
//!   DynamoDB, EventBridge and SQS call is counted per invocation, by table and outcome.
//! - [`harness`] and [`scenarios`]: `template.yaml` provisioned on moto, every function wired
//!   to it, and the scenarios (cold starts, whole lifecycles with every kind of duplicate, SQS
//!   batches, a load run).
//! - [`report`], [`stats`] and [`cost`]: the tables, medians and the cost per million orders
//!   from the counted usage and the dated list prices in `docs/prices.yaml`.
//!
//! The `lambda-bench` binary drives it (`scripts/bench` builds and runs it); the
//! `minimal-consumer` binary is the reference point: a consumer holding both SDK clients and
//! nothing else. Nothing here asserts a timing; figures are printed.
//!
//! ```
//! use lambda_bench::cost::{Prices, Usage};
//! use lambda_bench::stats::Summary;
//!
//! let prices = Prices::parse(include_str!("../../../docs/prices.yaml"), "docs/prices.yaml").unwrap();
//! // One order: two idempotency writes and one domain write in each of four invocations.
//! let per_order = Usage { dynamodb_write_units: 12.0, lambda_requests: 4.0, ..Usage::default() };
//! let per_million = per_order.scaled(1e6).cost(&prices);
//! assert!(per_million.total > 0.0);
//!
//! let init = Summary::of(&[9.8, 10.4, 10.1]).unwrap();
//! assert_eq!(init.median, 10.1);
//! ```

pub mod calls;
pub mod cost;
pub mod emulator;
pub mod error;
pub mod events;
pub mod function;
pub mod harness;
pub mod proxy;
pub mod report;
pub mod scenarios;
pub mod stats;

pub use error::BenchError;
