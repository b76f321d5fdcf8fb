//! Policy checks on `template.yaml` that cfn-lint and checkov do not know about, judged where it
//! matters on the template as SAM expands it (what `sam deploy` creates, roles and policies SAM
//! adds included):
//! - [`iam`]: no role reaches `*` but X-Ray's two write actions; each function reaches only its
//!   own log group, queue and idempotency records; each producer publishes only its own source and
//!   detail types, and no other principal may;
//! - [`paging`]: every alarm notifies the alarm topic, every queue, consumer, rule, table and the
//!   HTTP API has its alarms, the metrics contract and the dashboard agree with the functions;
//! - [`deploy`]: the stack deploys on a fresh account and keeps data: tables protected, DLQs and
//!   logs kept without blocking a redeploy, no reserved concurrency unless asked;
//! - [`routing`]: the rules speak the event contract, every consumer queue has a dead-letter queue
//!   and outlasts its function, every function has its binary and fixtures.
//!
//! Each check is also run on a mutated template it must reject: a check that cannot fail tests
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod auth;
mod deploy;
mod iam;
mod paging;
mod routing;
mod support;
