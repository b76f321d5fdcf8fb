//! What to break and how often: rules matched against calls, chosen by a seeded die.
//!
//! This is the AWS-free core of the crate: a [`Call`] names an API operation, a [`Rule`] says
//! which calls it targets, which [`Fault`] it injects and for what share of them, and the
//! [`Injector`] rolls one seeded die per call to pick at most one rule. The proxy and the port
//! wrappers only carry decisions out.

use std::collections::BTreeMap;
use std::time::Duration;

/// The service an API call is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// DynamoDB (`X-Amz-Target: DynamoDB_20120810.<Operation>`).
    DynamoDb,
    /// EventBridge (`X-Amz-Target: AWSEvents.<Operation>`).
    EventBridge,
    /// SQS (`X-Amz-Target: AmazonSQS.<Operation>`, or a query-protocol `Action`).
    Sqs,
    /// Anything else, by its target prefix (empty when unknown).
    Other(String),
}

impl Service {
    /// The service named by an `X-Amz-Target` prefix.
    pub fn from_target_prefix(prefix: &str) -> Self {
        match prefix {
            p if p.starts_with("DynamoDB") => Self::DynamoDb,
            "AWSEvents" => Self::EventBridge,
            "AmazonSQS" => Self::Sqs,
            other => Self::Other(other.to_owned()),
        }
    }

    /// A short name for reports: `dynamodb`, `events`, `sqs` or the prefix.
    pub fn name(&self) -> &str {
        match self {
            Self::DynamoDb => "dynamodb",
            Self::EventBridge => "events",
            Self::Sqs => "sqs",
            Self::Other(prefix) => prefix,
        }
    }

    /// The error code this service answers when it throttles a call: DynamoDB's data plane
    /// says `ProvisionedThroughputExceededException`, the others `ThrottlingException`.
    pub fn throttling_code(&self) -> &'static str {
        match self {
            Self::DynamoDb => codes::PROVISIONED_THROUGHPUT_EXCEEDED,
            _ => codes::THROTTLING,
        }
    }

    /// The error code of a server-side failure (5xx) for this service.
    pub fn server_error_code(&self) -> &'static str {
        match self {
            Self::DynamoDb => "InternalServerError",
            Self::EventBridge => "InternalException",
            _ => "InternalFailure",
        }
    }
}

/// Error codes the SDK's standard retry mode treats as throttling.
pub mod codes {
    /// DynamoDB's data-plane throttling error.
    pub const PROVISIONED_THROUGHPUT_EXCEEDED: &str = "ProvisionedThroughputExceededException";
    /// The generic throttling error (EventBridge, SQS, DynamoDB control plane).
    pub const THROTTLING: &str = "ThrottlingException";
    /// What a failed PutEvents entry carries when EventBridge had an internal failure.
    pub const INTERNAL_FAILURE: &str = "InternalFailure";
}

/// One API call as the injector sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The service.
    pub service: &'a Service,
    /// The operation, e.g. `PutItem`.
    pub operation: &'a str,
    /// The request body (rules can match on a table name or an event's content in it).
    pub body: &'a [u8],
}

/// What to do to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer an error without forwarding: the call never reaches the service (throttling,
    /// or a 5xx from a front end).
    Reject {
        /// HTTP status (400 for throttling, 500/503 for server errors).
        status: u16,
        /// The error code (`__type` and `x-amzn-ErrorType`); empty: the service's default for
        /// the status (its throttling code for 400, its server-error code otherwise).
        code: String,
    },
    /// Forward the call (the service applies it), then answer an error instead of its result:
    /// the acknowledgement is lost and the caller retries a call that already took effect.
    LoseResponse {
        /// HTTP status answered.
        status: u16,
        /// Error code; empty: the service's default for the status.
        code: String,
    },
    /// Wait, then forward.
    Delay(Duration),
    /// Close the connection without answering.
    Drop {
        /// Whether the call was forwarded (and applied) before the connection was closed.
        after_forward: bool,
    },
    /// PutEvents only: each entry fails with probability `share`; failed entries are not
    /// forwarded and come back with `ErrorCode` = `code`, as EventBridge reports partial failures.
    FailEntries {
        /// Probability that one entry fails.
        share: f64,
        /// The entry's `ErrorCode`.
        code: String,
    },
    /// Accept the call and never answer (until [`crate::FaultProxy::release_hung`] or the
    /// caller gives up): a dependency that hangs, or a process frozen mid-call.
    Hang,
}

impl Fault {
    /// The service's throttling error (HTTP 400), not forwarded.
    pub fn throttle() -> Self {
        Self::Reject {
            status: 400,
            code: String::new(),
        }
    }

    /// A throttling error with an explicit code, not forwarded.
    pub fn throttle_with(code: &str) -> Self {
        Self::Reject {
            status: 400,
            code: code.to_owned(),
        }
    }

    /// A server error with `status` (5xx), not forwarded.
    pub fn server_error(status: u16) -> Self {
        Self::Reject {
            status,
            code: String::new(),
        }
    }

    /// A server error with `status` answered after the call was applied.
    pub fn lose_response(status: u16) -> Self {
        Self::LoseResponse {
            status,
            code: String::new(),
        }
    }

    /// A stable label for reports, e.g. `throttle`, `5xx`, `lost-response`, `delay`, `drop`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reject { status, .. } if *status < 500 => "throttle",
            Self::Reject { .. } => "5xx",
            Self::LoseResponse { .. } => "lost-response",
            Self::Delay(_) => "delay",
            Self::Drop {
                after_forward: false,
            } => "drop",
            Self::Drop {
                after_forward: true,
            } => "drop-after-forward",
            Self::FailEntries { .. } => "fail-entries",
            Self::Hang => "hang",
        }
    }

    /// The error code to answer for `service`: the explicit one, else the service's default.
    pub fn code_for(status: u16, code: &str, service: &Service) -> String {
        if !code.is_empty() {
            code.to_owned()
        } else if status < 500 {
            service.throttling_code().to_owned()
        } else {
            service.server_error_code().to_owned()
        }
    }
}

/// Which calls a rule applies to. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// Only calls to this service.
    pub service: Option<Service>,
    /// Only these operations (e.g. `PutItem`, `PutEvents`).
    pub operations: Vec<String>,
    /// Only calls whose body contains this text (a table name, an event's key...).
    pub body_contains: Option<String>,
}

impl Target {
    /// Whether `call` is targeted.
    pub fn matches(&self, call: &Call<'_>) -> bool {
        self.service.as_ref().is_none_or(|s| s == call.service)
            && (self.operations.is_empty() || self.operations.iter().any(|o| o == call.operation))
            && self
                .body_contains
                .as_deref()
                .is_none_or(|needle| contains(call.body, needle.as_bytes()))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// One way of breaking calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Name for reports and for waiting on it.
    pub name: String,
    /// The calls it applies to.
    pub target: Target,
    /// The share of targeted calls it breaks (0 to 1).
    pub share: f64,
    /// Most calls it breaks in total; `None` is unlimited.
    pub limit: Option<u64>,
    /// What it does.
    pub fault: Fault,
}

impl Rule {
    /// A rule breaking every call (share 1, no limit) with `fault`; narrow it with the
    /// builder methods.
    pub fn new(name: impl Into<String>, fault: Fault) -> Self {
        Self {
            name: name.into(),
            target: Target::default(),
            share: 1.0,
            limit: None,
            fault,
        }
    }

    /// Only calls to `service`.
    pub fn service(mut self, service: Service) -> Self {
        self.target.service = Some(service);
        self
    }

    /// Only these operations.
    pub fn operations(mut self, operations: &[&str]) -> Self {
        self.target.operations = operations.iter().map(|o| (*o).to_owned()).collect();
        self
    }

    /// Only calls whose body contains `text`.
    pub fn body_contains(mut self, text: impl Into<String>) -> Self {
        self.target.body_contains = Some(text.into());
        self
    }

    /// Breaks this share (clamped to 0..=1; NaN is 0) of the targeted calls.
    pub fn share(mut self, share: f64) -> Self {
        self.share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    /// Breaks at most `n` calls in total.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
}

/// A set of rules and the seed of the die that picks among them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Seed: the same plan, seed and sequence of calls inject the same faults.
    pub seed: u64,
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

impl FaultPlan {
    /// A plan injecting nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// An empty plan with this seed.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            rules: Vec::new(),
        }
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }
}

/// A decision: the rule picked for a call and its fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The rule's name.
    pub rule: String,
    /// What to do.
    pub fault: Fault,
}

/// Rolls the die for each call, keeps the rules' limits and counts what it injected.
#[derive(Debug)]
pub struct Injector {
    plan: FaultPlan,
    rng: fastrand::Rng,
    used: Vec<u64>,
    injected: BTreeMap<String, u64>,
}

impl Injector {
    /// An injector for `plan`.
    pub fn new(plan: FaultPlan) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(plan.seed),
            used: vec![0; plan.rules.len()],
            injected: BTreeMap::new(),
            plan,
        }
    }

    /// One roll: at most one rule among those targeting `call` (and under their limits) is
    /// picked, each with probability equal to its share, in rule order (shares beyond a total
    /// of 1 are never reached).
    pub fn decide(&mut self, call: &Call<'_>) -> Option<Decision> {
        let roll = self.rng.f64();
        let mut upto = 0.0;
        for (index, rule) in self.plan.rules.iter().enumerate() {
            let used = self.used.get(index).copied().unwrap_or(0);
            if !rule.target.matches(call) || rule.limit.is_some_and(|limit| used >= limit) {
                continue;
            }
            upto += rule.share;
            if roll < upto {
                if let Some(count) = self.used.get_mut(index) {
                    *count += 1;
                }
                *self.injected.entry(rule.name.clone()).or_default() += 1;
                return Some(Decision {
                    rule: rule.name.clone(),
                    fault: rule.fault.clone(),
                });
            }
        }
        None
    }

    /// A uniform number in `[0, 1)` from the same seeded sequence (for per-entry choices).
    pub fn roll(&mut self) -> f64 {
        self.rng.f64()
    }

    /// Faults injected so far, by rule name.
    pub fn injected(&self) -> &BTreeMap<String, u64> {
        &self.injected
    }

    /// The plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(service: &'a Service, operation: &'a str, body: &'a [u8]) -> Call<'a> {
        Call {
            service,
            operation,
            body,
        }
    }

    #[test]
    fn a_rule_targets_service_operation_and_body() {
        let rule = Rule::new("r", Fault::throttle())
            .service(Service::DynamoDb)
            .operations(&["PutItem", "UpdateItem"])
            .body_contains("IdempotencyTable");
        let ddb = Service::DynamoDb;
        assert!(rule.target.matches(&call(
            &ddb,
            "PutItem",
            b"{\"TableName\":\"t-IdempotencyTable\"}"
        )));
        assert!(
            !rule
                .target
                .matches(&call(&ddb, "PutItem", b"{\"TableName\":\"t-Orders\"}"))
        );
        assert!(
            !rule
                .target
                .matches(&call(&ddb, "GetItem", b"IdempotencyTable"))
        );
        let events = Service::EventBridge;
        assert!(
            !rule
                .target
                .matches(&call(&events, "PutItem", b"IdempotencyTable"))
        );
    }

    #[test]
    fn shares_are_honoured_over_many_calls_and_the_same_seed_decides_the_same() {
        let plan = FaultPlan::seeded(7)
            .rule(Rule::new("throttle", Fault::throttle()).share(0.1))
            .rule(Rule::new("5xx", Fault::server_error(500)).share(0.1));
        let service = Service::DynamoDb;
        let run = |plan: FaultPlan| {
            let mut injector = Injector::new(plan);
            let decisions: Vec<Option<String>> = (0..10_000)
                .map(|_| {
                    injector
                        .decide(&call(&service, "PutItem", b""))
                        .map(|d| d.rule)
                })
                .collect();
            (decisions, injector.injected().clone())
        };
        let (first, counts) = run(plan.clone());
        let (second, _) = run(plan);
        assert_eq!(first, second, "same seed, same faults");
        for name in ["throttle", "5xx"] {
            let n = counts.get(name).copied().unwrap_or(0);
            assert!((800..1200).contains(&n), "{name}: {n} of 10000");
        }
    }

    #[test]
    fn a_limited_rule_stops_after_its_limit_and_later_rules_take_over() {
        let plan = FaultPlan::seeded(1)
            .rule(Rule::new("first-two", Fault::Hang).limit(2))
            .rule(Rule::new("then-always", Fault::throttle()));
        let mut injector = Injector::new(plan);
        let service = Service::EventBridge;
        let names: Vec<String> = (0..4)
            .filter_map(|_| injector.decide(&call(&service, "PutEvents", b"")))
            .map(|d| d.rule)
            .collect();
        assert_eq!(
            names,
            ["first-two", "first-two", "then-always", "then-always"]
        );
    }

    #[test]
    fn default_codes_follow_the_service_and_the_status() {
        assert_eq!(
            Fault::code_for(400, "", &Service::DynamoDb),
            "ProvisionedThroughputExceededException"
        );
        assert_eq!(
            Fault::code_for(400, "", &Service::EventBridge),
            "ThrottlingException"
        );
        assert_eq!(
            Fault::code_for(503, "", &Service::DynamoDb),
            "InternalServerError"
        );
        assert_eq!(
            Fault::code_for(400, "ThrottlingException", &Service::DynamoDb),
            "ThrottlingException"
        );
        assert_eq!(Fault::throttle().kind(), "throttle");
        assert_eq!(Fault::server_error(503).kind(), "5xx");
    }

    #[test]
    fn out_of_range_shares_are_clamped() {
        assert_eq!(Rule::new("r", Fault::Hang).share(7.0).share, 1.0);
        assert_eq!(Rule::new("r", Fault::Hang).share(-1.0).share, 0.0);
        assert_eq!(Rule::new("r", Fault::Hang).share(f64::NAN).share, 0.0);
    }
}
