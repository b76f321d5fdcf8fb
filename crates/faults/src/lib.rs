//! Fault injection for the resilience tests: break AWS calls on purpose, reproducibly.
//!
//! - [`plan`]: the AWS-free core. A [`FaultPlan`] is a seeded list of [`Rule`]s, each targeting
//!   calls (service, operation, body text) and injecting a [`Fault`] into a share of them;
//!   an [`Injector`] rolls one die per call and picks at most one rule.
//! - [`FaultProxy`]: a loopback HTTP proxy between the SDK and the AWS-API stand-in (moto).
//!   It answers throttling errors (`ProvisionedThroughputExceededException`,
//!   `ThrottlingException`) and 5xx without forwarding, loses the answer of a forwarded call,
//!   delays calls, drops connections before or after forwarding, fails chosen PutEvents entries
//!   (with EventBridge's partial-failure answer) and hangs calls until released. It works for
//!   in-process clients (`endpoint_url`) and child processes (`AWS_ENDPOINT_URL`) alike.
//! - [`ports`]: the same faults for in-process runs over the in-memory adapters:
//!   [`ports::FaultyStore`] (idempotency store) and [`ports::FaultyPublisher`], with the SDK's
//!   attempts modelled per call.
//!
//! ```
//! use faults::{Call, Fault, FaultPlan, Injector, Rule, Service};
//!
//! // 20% of DynamoDB writes throttled, every PutEvents entry of the first request failed.
//! let plan = FaultPlan::seeded(42)
//!     .rule(Rule::new("throttle", Fault::throttle())
//!         .service(Service::DynamoDb)
//!         .operations(&["PutItem", "UpdateItem"])
//!         .share(0.2))
//!     .rule(Rule::new("entries", Fault::FailEntries { share: 1.0, code: "ThrottlingException".into() })
//!         .operations(&["PutEvents"])
//!         .limit(1));
//! let mut injector = Injector::new(plan);
//! let ddb = Service::DynamoDb;
//! let throttled = (0..1_000)
//!     .filter(|_| injector.decide(&Call { service: &ddb, operation: "PutItem", body: b"" }).is_some())
//!     .count();
//! assert!((150..250).contains(&throttled));
//!
//! let events = Service::EventBridge;
//! let put = Call { service: &events, operation: "PutEvents", body: b"" };
//! assert_eq!(injector.decide(&put).map(|d| d.fault.kind()), Some("fail-entries"));
//! assert_eq!(injector.decide(&put), None, "limited to one request");
//! ```
//!
//! Starting the proxy in front of the stand-in:
//!
//! ```no_run
//! # async fn example(moto_endpoint: &str) -> Result<(), faults::FaultError> {
//! use faults::{Fault, FaultPlan, FaultProxy, Rule, Service};
//!
//! let proxy = FaultProxy::start(
//!     moto_endpoint,
//!     FaultPlan::seeded(7).rule(Rule::new("5xx", Fault::server_error(503)).service(Service::EventBridge).share(0.2)),
//! )
//! .await?;
//! // SDK clients built with `endpoint_url(proxy.endpoint())` now see 20% of PutEvents fail.
//! println!("{}", proxy.stats().text());
//! # Ok(())
//! # }
//! ```

mod error;
pub mod plan;
pub mod ports;
mod proxy;
mod wire;

pub use error::FaultError;
pub use plan::{Call, Decision, Fault, FaultPlan, Injector, Rule, Service, Target, codes};
pub use proxy::{FaultProxy, FaultStats};
