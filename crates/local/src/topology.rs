//! What the runner takes from `template.yaml`: buses, rules (pattern and target queues), queues
//! (redrive), table streams (the functions they feed, batching, retries, on-failure
//! destination), functions (binary, resolved environment, SQS sources with their batching, HTTP
//! routes with their authorization, timeout, the event sources IAM lets them publish).

use std::collections::BTreeMap;
use std::time::Duration;

use sam_template::{FunctionSpec, Stack, Template};
use serde_json::Value;

use crate::LocalError;

/// Batch size Lambda uses for an SQS event source that does not set one.
pub const DEFAULT_BATCH_SIZE: usize = 10;
/// Concurrent batches per queue when the event source sets no `MaximumConcurrency`: Lambda's
/// own floor for SQS pollers.
pub const DEFAULT_MAX_CONCURRENCY: usize = 5;
/// Receives before a failing message is set aside when its queue has no redrive policy (SQS
/// would keep it for the retention period; locally it goes to the dead-letter listing).
pub const DEFAULT_MAX_RECEIVES: u32 = 10;
/// Lambda's default function timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Batch size Lambda uses for a DynamoDB stream event source that does not set one.
pub const DEFAULT_STREAM_BATCH_SIZE: usize = 100;
/// Retries of a failing stream batch when the event source sets no `MaximumRetryAttempts`
/// (Lambda's default is to retry until the records expire; locally they go to the on-failure
/// listing after this many).
pub const DEFAULT_STREAM_RETRIES: u32 = 10;

/// The binaries the runner hosts in process, by their Cargo names.
pub const HOSTED_BINARIES: [&str; 7] = [
    "orders-api",
    "orders-events",
    "orders-outbox-relay",
    "fulfillment-events",
    "support-api",
    "support-events",
    "support-outbox-relay",
];

/// A rule: where its events go.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTopology {
    /// Logical id.
    pub logical_id: String,
    /// Physical name of the bus it listens on (`default` for the default bus).
    pub bus: String,
    /// The event pattern, as JSON text.
    pub pattern: String,
    /// Target ids and the index of their queue in [`Topology::queues`].
    pub targets: Vec<(String, usize)>,
}

/// A queue, with the function that consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTopology {
    /// Logical id.
    pub logical_id: String,
    /// Physical name.
    pub name: String,
    /// ARN (the `eventSourceARN` of its records).
    pub arn: String,
    /// Logical id of its dead-letter queue, if it has a redrive policy.
    pub dead_letter_queue: Option<String>,
    /// Receives before a failing message moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// Index in [`Topology::functions`] of the function it feeds, if any.
    pub consumer: Option<usize>,
    /// Records per batch.
    pub batch_size: usize,
    /// Batches delivered at once.
    pub max_concurrency: usize,
}

/// A table's stream, with the function it feeds (a `Type: DynamoDB` event source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTopology {
    /// Logical id of the table.
    pub table: String,
    /// Physical name of the table.
    pub table_name: String,
    /// Index in [`Topology::functions`] of the function it feeds.
    pub consumer: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// Retries of a failing batch before its records go to the on-failure destination.
    pub max_retries: u32,
    /// Logical id of the on-failure destination, if any.
    pub on_failure: Option<String>,
}

/// How a route is authorized: its API's JWT authorizer and the scopes it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    /// The authorizer's name in the API's `Auth.Authorizers`.
    pub authorizer: String,
    /// Lower-case name of the header the token is read from (`IdentitySource:
    /// $request.header.Authorization` gives `authorization`).
    pub header: String,
    /// `AuthorizationScopes`, resolved for the stack: a token needs at least one (none: any
    /// valid token).
    pub scopes: Vec<String>,
}

/// An HTTP API route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTopology {
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// Path template, e.g. `/orders/{id}`.
    pub path: String,
    /// Index in [`Topology::functions`].
    pub function: usize,
    /// Its authorization (`None`: an open route, API Gateway passes no claims).
    pub auth: Option<RouteAuth>,
}

impl RouteTopology {
    /// Segments of the path template that are not `{param}`s (API Gateway prefers the route
    /// with more of them).
    pub fn literal_segments(&self) -> usize {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .filter(|s| !(s.starts_with('{') && s.ends_with('}')))
            .count()
    }

    /// Whether a request matches, as API Gateway matches a route: same method (or `ANY`), same
    /// number of segments, literal segments equal, `{param}` segments non-empty.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let want: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        let got: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        want.len() == got.len()
            && want
                .iter()
                .zip(&got)
                .all(|(w, g)| (w.starts_with('{') && w.ends_with('}') && !g.is_empty()) || w == g)
    }
}

/// Which event sources a function may publish with, from its IAM statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishGrant {
    /// No statement allows `events:PutEvents`: every entry is denied.
    None,
    /// Only these sources (`events:source` under `ForAllValues:StringEquals` or `StringEquals`).
    Sources(Vec<String>),
    /// Any source (a statement without a source condition, or a policy the runner cannot read).
    Any,
}

impl PublishGrant {
    /// Whether an entry with `source` would be accepted.
    pub fn allows(&self, source: &str) -> bool {
        match self {
            Self::None => false,
            Self::Sources(sources) => sources.iter().any(|s| s == source),
            Self::Any => true,
        }
    }
}

/// A function, with everything the runner needs to host it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTopology {
    /// Logical id.
    pub logical_id: String,
    /// Physical name (`<stack>-<LogicalId>` unless named): the idempotency key prefix, as
    /// `AWS_LAMBDA_FUNCTION_NAME` makes it on Lambda.
    pub name: String,
    /// The Cargo binary, one of [`HOSTED_BINARIES`].
    pub binary: String,
    /// Environment variables with every intrinsic resolved for the stack.
    pub environment: BTreeMap<String, String>,
    /// The function's timeout: the remaining time each invocation starts with.
    pub timeout: Duration,
    /// Indexes in [`Topology::queues`] of the queues that feed it.
    pub queues: Vec<usize>,
    /// Indexes in [`Topology::streams`] of the table streams that feed it.
    pub streams: Vec<usize>,
    /// What it may publish.
    pub publish: PublishGrant,
}

/// Everything the runner routes by, read from one template for one stack.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The template's path, for messages.
    pub path: String,
    /// The stack names resolve against.
    pub stack: Stack,
    /// Physical names of the custom buses, in template order.
    pub buses: Vec<String>,
    /// Rules with their patterns and target queues.
    pub rules: Vec<RuleTopology>,
    /// Every queue.
    pub queues: Vec<QueueTopology>,
    /// Every table stream that feeds a function.
    pub streams: Vec<StreamTopology>,
    /// Every hosted function.
    pub functions: Vec<FunctionTopology>,
    /// HTTP API routes.
    pub routes: Vec<RouteTopology>,
}

/// The logical id an intrinsic (`Ref` or `Fn::GetAtt`) names.
fn logical_of(value: &Value) -> Option<&str> {
    if let Some(target) = value.get("Ref").and_then(Value::as_str) {
        return Some(target);
    }
    match value.get("Fn::GetAtt")? {
        Value::Array(parts) => parts.first()?.as_str(),
        Value::String(dotted) => dotted.split_once('.').map(|(a, _)| a),
        _ => None,
    }
}

fn positive(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().filter(|n| *n > 0),
        Value::String(s) => s.parse().ok().filter(|n| *n > 0),
        _ => None,
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads the `events:PutEvents` grants of a function: its SAM `Policies` and the statements of its
/// `Role` when the role is a resource of the template.
fn publish_grant(template: &Template, function: &FunctionSpec) -> PublishGrant {
    let policies = match &function.properties["Policies"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    if policies
        .iter()
        .any(|policy| policy.get("Statement").is_none())
    {
        // A managed policy name or a SAM policy template: its grants are not in the template,
        // so the runner does not second-guess them.
        return PublishGrant::Any;
    }
    let mut sources = Vec::new();
    let mut granted = false;
    for statement in template.policy_statements(function) {
        let allows = statement["Effect"] == "Allow"
            && strings(&statement["Action"])
                .iter()
                .any(|a| a == "events:PutEvents" || a == "events:*" || a == "*");
        if !allows {
            continue;
        }
        granted = true;
        // `events:source` is multivalued for PutEvents: `ForAllValues:StringEquals` says every
        // entry's source is one of these; a plain `StringEquals` reads the same for one entry.
        let condition = ["ForAllValues:StringEquals", "StringEquals"]
            .iter()
            .find_map(|op| statement.pointer(&format!("/Condition/{op}/events:source")));
        match condition {
            Some(condition) => sources.extend(strings(condition)),
            None => return PublishGrant::Any,
        }
    }
    if granted {
        PublishGrant::Sources(sources)
    } else {
        PublishGrant::None
    }
}

impl Topology {
    /// Reads the template for `stack`. Errors name the template file and the field.
    pub fn from_template(template: &Template, stack: &Stack) -> Result<Self, LocalError> {
        let path = template.path().to_owned();
        let unsupported = |at: String, problem: String| LocalError::Unsupported {
            path: path.clone(),
            at,
            problem,
        };

        let buses: Vec<String> = template
            .event_buses(stack)?
            .into_iter()
            .map(|b| b.name)
            .collect();
        let bus_by_logical: BTreeMap<String, String> = template
            .event_buses(stack)?
            .into_iter()
            .map(|b| (b.logical_id, b.name))
            .collect();

        let specs = template.queues(stack)?;
        let mut queues: Vec<QueueTopology> = specs
            .iter()
            .map(|q| QueueTopology {
                logical_id: q.logical_id.clone(),
                name: q.name.clone(),
                arn: q.arn.clone(),
                dead_letter_queue: q.redrive.as_ref().map(|r| r.dead_letter_queue.clone()),
                max_receive_count: q
                    .redrive
                    .as_ref()
                    .map_or(DEFAULT_MAX_RECEIVES, |r| r.max_receive_count.max(1)),
                consumer: None,
                batch_size: DEFAULT_BATCH_SIZE,
                max_concurrency: DEFAULT_MAX_CONCURRENCY,
            })
            .collect();
        let queue_ids: Vec<String> = queues.iter().map(|q| q.logical_id.clone()).collect();
        let queue_index = |logical: &str| queue_ids.iter().position(|q| q == logical);

        let mut rules = Vec::new();
        for rule in template.rules(stack)? {
            let id = &rule.logical_id;
            let bus = match &rule.bus {
                None => "default".to_owned(),
                Some(logical) => bus_by_logical.get(logical).cloned().ok_or_else(|| {
                    unsupported(
                        format!("{id}.Properties.EventBusName"),
                        format!(
                            "names {logical}, which is not an AWS::Events::EventBus of the template"
                        ),
                    )
                })?,
            };
            let mut targets = Vec::new();
            for (i, target) in rule.targets.iter().enumerate() {
                let queue = target
                    .logical_id
                    .as_deref()
                    .and_then(&queue_index)
                    .ok_or_else(|| {
                        unsupported(
                            format!("{id}.Properties.Targets[{i}].Arn"),
                            format!(
                                "{} is not an SQS queue of the template; the local runner delivers rules to queues only",
                                target.arn
                            ),
                        )
                    })?;
                targets.push((target.id.clone(), queue));
            }
            rules.push(RuleTopology {
                logical_id: id.clone(),
                bus,
                pattern: rule.pattern.to_string(),
                targets,
            });
        }

        let table_names: BTreeMap<String, String> = template
            .tables(stack)?
            .into_iter()
            .map(|t| (t.logical_id, t.name))
            .collect();
        let mut streams: Vec<StreamTopology> = Vec::new();

        let global_timeout = template.root().pointer("/Globals/Function/Timeout");
        let mut functions = Vec::new();
        let mut routes: Vec<RouteTopology> = Vec::new();
        for spec in template.functions() {
            let id = &spec.logical_id;
            if !HOSTED_BINARIES.contains(&spec.binary.as_str()) {
                return Err(unsupported(
                    format!("{id}.Metadata.BuildProperties.Binary"),
                    format!(
                        "the local runner does not host binary `{}` (it hosts {})",
                        spec.binary,
                        HOSTED_BINARIES.join(", ")
                    ),
                ));
            }
            let index = functions.len();
            let environment = spec
                .environment
                .iter()
                .map(|(name, value)| {
                    let at = format!("{id}.Properties.Environment.Variables.{name}");
                    Ok((name.clone(), template.resolve_string(value, stack, &at)?))
                })
                .collect::<Result<BTreeMap<_, _>, LocalError>>()?;
            let timeout = spec
                .properties
                .get("Timeout")
                .or(global_timeout)
                .and_then(positive)
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs);

            let mut fed_by = Vec::new();
            let mut fed_by_streams = Vec::new();
            let events = spec.properties["Events"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (name, event) in &events {
                if event["Type"] == "DynamoDB" {
                    let properties = &event["Properties"];
                    let (table, table_name) = logical_of(&properties["Stream"])
                        .and_then(|table| table_names.get_key_value(table))
                        .ok_or_else(|| {
                            unsupported(
                                format!("{id}.Properties.Events.{name}.Properties.Stream"),
                                "must be !GetAtt <Table>.StreamArn of a table of the template"
                                    .into(),
                            )
                        })?;
                    fed_by_streams.push(streams.len());
                    streams.push(StreamTopology {
                        table: table.clone(),
                        table_name: table_name.clone(),
                        consumer: index,
                        batch_size: properties
                            .get("BatchSize")
                            .and_then(positive)
                            .and_then(|n| usize::try_from(n).ok())
                            .unwrap_or(DEFAULT_STREAM_BATCH_SIZE),
                        max_retries: properties
                            .get("MaximumRetryAttempts")
                            .and_then(positive)
                            .and_then(|n| u32::try_from(n).ok())
                            .unwrap_or(DEFAULT_STREAM_RETRIES),
                        on_failure: logical_of(
                            &properties["DestinationConfig"]["OnFailure"]["Destination"],
                        )
                        .map(str::to_owned),
                    });
                    continue;
                }
                if event["Type"] != "SQS" {
                    continue;
                }
                let at = format!("{id}.Properties.Events.{name}.Properties.Queue");
                let properties = &event["Properties"];
                let queue = logical_of(&properties["Queue"])
                    .and_then(&queue_index)
                    .ok_or_else(|| {
                        unsupported(
                            at.clone(),
                            "must be !GetAtt <Queue>.Arn of a queue of the template".into(),
                        )
                    })?;
                let slot = &mut queues[queue];
                if let Some(other) = slot.consumer {
                    return Err(unsupported(
                        at,
                        format!(
                            "{} already feeds {}; the local runner delivers each queue to one function",
                            slot.logical_id,
                            functions_name(&functions, other)
                        ),
                    ));
                }
                slot.consumer = Some(index);
                if let Some(size) = properties.get("BatchSize").and_then(positive) {
                    slot.batch_size = usize::try_from(size).unwrap_or(DEFAULT_BATCH_SIZE);
                }
                if let Some(limit) = properties
                    .pointer("/ScalingConfig/MaximumConcurrency")
                    .and_then(positive)
                {
                    slot.max_concurrency =
                        usize::try_from(limit).unwrap_or(DEFAULT_MAX_CONCURRENCY);
                }
                fed_by.push(queue);
            }

            for route in &spec.http_routes {
                if let Some(clash) = routes
                    .iter()
                    .find(|r| r.method == route.method && r.path == route.path)
                {
                    return Err(unsupported(
                        format!("{id}.Properties.Events"),
                        format!(
                            "route {} {} is also served by {}",
                            route.method,
                            route.path,
                            functions_name(&functions, clash.function)
                        ),
                    ));
                }
                let at = format!(
                    "{id}.Properties.Events ({} {}).Auth",
                    route.method, route.path
                );
                routes.push(RouteTopology {
                    method: route.method.clone(),
                    path: route.path.clone(),
                    function: index,
                    auth: route_auth(template, stack, route, &at)?,
                });
            }

            functions.push(FunctionTopology {
                logical_id: id.clone(),
                name: template.physical_name(id, stack)?,
                binary: spec.binary.clone(),
                environment,
                timeout,
                queues: fed_by,
                streams: fed_by_streams,
                publish: publish_grant(template, &spec),
            });
        }

        Ok(Self {
            path,
            stack: stack.clone(),
            buses,
            rules,
            queues,
            streams,
            functions,
            routes,
        })
    }

    /// The route API Gateway would pick for a request: the most specific match (more literal
    /// segments, then an exact method over `ANY`), whatever the template's order.
    pub fn route_for(&self, method: &str, path: &str) -> Option<&RouteTopology> {
        self.routes
            .iter()
            .filter(|r| r.matches(method, path))
            .max_by_key(|r| (r.literal_segments(), r.method != "ANY"))
    }

    /// Every scope a route requires, once each, in route order (what the warehouse's token
    /// carries).
    pub fn required_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for scope in self
            .routes
            .iter()
            .filter_map(|r| r.auth.as_ref())
            .flat_map(|a| &a.scopes)
        {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }

    /// The bus a function publishes to: its resolved `EVENT_BUS_NAME`, when it has one.
    pub fn bus_of(&self, function: usize) -> Option<&str> {
        self.functions
            .get(function)?
            .environment
            .get("EVENT_BUS_NAME")
            .map(String::as_str)
    }

    /// The bus fixtures are injected on: the template's first custom bus, else `default`.
    pub fn main_bus(&self) -> &str {
        self.buses.first().map_or("default", String::as_str)
    }

    /// The file name of the template, for the banner.
    pub fn file_name(&self) -> &str {
        std::path::Path::new(&self.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.path)
    }
}

/// Reads a route's authorization: its authorizer (the route's, else its API's default) must be
/// a JWT authorizer reading a request header, the only kind the runner plays.
fn route_auth(
    template: &Template,
    stack: &Stack,
    route: &sam_template::HttpRoute,
    at: &str,
) -> Result<Option<RouteAuth>, LocalError> {
    let unsupported = |problem: String| LocalError::Unsupported {
        path: template.path().to_owned(),
        at: at.to_owned(),
        problem,
    };
    let api = template.http_api(route.api.as_deref())?;
    let Some(name) = api.authorizer_of(route) else {
        return Ok(None);
    };
    let authorizer = api.authorizers.get(name).ok_or_else(|| {
        unsupported(format!(
            "authorizer {name} is not in the API's Auth.Authorizers"
        ))
    })?;
    if !authorizer.jwt {
        return Err(unsupported(format!(
            "authorizer {name} is not a JWT authorizer; the local runner plays JWT authorizers only"
        )));
    }
    let source = authorizer
        .identity_source
        .as_deref()
        .unwrap_or("$request.header.Authorization");
    let header = source
        .strip_prefix("$request.header.")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            unsupported(format!(
                "identity source {source} of {name}: the local runner reads tokens from a header only"
            ))
        })?
        .to_ascii_lowercase();
    let written = route.scopes.as_ref().unwrap_or(&authorizer.scopes);
    let scopes = written
        .iter()
        .enumerate()
        .map(|(i, scope)| {
            template
                .resolve_string(scope, stack, &format!("{at}.AuthorizationScopes[{i}]"))
                .map_err(LocalError::from)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(RouteAuth {
        authorizer: name.to_owned(),
        header,
        scopes,
    }))
}

fn functions_name(functions: &[FunctionTopology], index: usize) -> &str {
    functions
        .get(index)
        .map_or("another function", |f| f.logical_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> Topology {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        Topology::from_template(&Template::load(path).unwrap(), &Stack::new("dev")).unwrap()
    }

    #[test]
    fn the_product_template_gives_rules_queues_functions_and_routes() {
        let t = product();
        assert_eq!(t.buses, ["dev-commerce"]);
        assert_eq!(t.rules.len(), 5);
        assert_eq!(t.functions.len(), 7);
        let tables: Vec<_> = t.streams.iter().map(|s| s.table_name.as_str()).collect();
        assert_eq!(tables, ["dev-OrdersTable", "dev-SupportTable"]);
        let relay = &t.functions[t.streams[0].consumer];
        assert_eq!(relay.binary, "orders-outbox-relay");
        assert_eq!(relay.streams, [0]);
        assert_eq!(
            (t.streams[0].batch_size, t.streams[0].max_retries),
            (100, 1000)
        );
        assert_eq!(
            t.streams[0].on_failure.as_deref(),
            Some("OrdersOutboxRelayDLQ")
        );
        let orders_queue = t
            .queues
            .iter()
            .find(|q| q.logical_id == "OrdersEventsQueue")
            .unwrap();
        assert_eq!(orders_queue.max_receive_count, 5);
        assert_eq!(
            orders_queue.dead_letter_queue.as_deref(),
            Some("OrdersEventsDLQ")
        );
        assert_eq!(
            (orders_queue.batch_size, orders_queue.max_concurrency),
            (10, 5)
        );
        let consumer = &t.functions[orders_queue.consumer.unwrap()];
        assert_eq!(consumer.binary, "orders-events");
        assert_eq!(consumer.environment["ORDERS_TABLE"], "dev-OrdersTable");
        assert_eq!(consumer.environment["EVENT_BUS_NAME"], "dev-commerce");
        assert_eq!(consumer.timeout, Duration::from_secs(15));
        assert_eq!(consumer.publish, PublishGrant::None);
        let fulfillment = t
            .functions
            .iter()
            .find(|f| f.binary == "fulfillment-events")
            .unwrap();
        assert_eq!(
            fulfillment.publish,
            PublishGrant::Sources(vec!["com.fulfillment".into()])
        );
        assert!(
            t.routes
                .iter()
                .any(|r| r.method == "GET" && r.path == "/orders/{id}")
        );
    }

    #[test]
    fn every_product_route_is_behind_the_jwt_authorizer_and_the_receipt_needs_the_staff_scope() {
        let t = product();
        assert_eq!(t.routes.len(), 5);
        for route in &t.routes {
            let auth = route
                .auth
                .as_ref()
                .unwrap_or_else(|| panic!("{} {} is open", route.method, route.path));
            assert_eq!(auth.header, "authorization");
            let want: &[&str] = if route.path == "/returns/{id}/received" {
                &[platform::auth::DEFAULT_STAFF_SCOPE]
            } else {
                &[]
            };
            assert_eq!(auth.scopes, want, "{} {}", route.method, route.path);
        }
    }

    #[test]
    fn a_lambda_authorizer_is_refused_naming_the_route() {
        let yaml = r#"
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Custom
        Authorizers:
          Custom: { FunctionArn: arn:aws:lambda:us-east-1:123456789012:function:auth }
  Fn:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: orders-api } }
    Properties:
      Events:
        Get: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: GET, Path: /things } }
"#;
        let err = Topology::from_template(
            &Template::from_yaml(yaml, "l.yaml").unwrap(),
            &Stack::new("s"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("Fn.Properties.Events (GET /things).Auth") && err.contains("JWT"),
            "{err}"
        );
    }

    #[test]
    fn routes_match_like_api_gateway() {
        let route = RouteTopology {
            method: "POST".into(),
            path: "/returns/{id}/received".into(),
            function: 0,
            auth: None,
        };
        assert!(route.matches("POST", "/returns/RET-1/received"));
        assert!(!route.matches("GET", "/returns/RET-1/received"));
        assert!(!route.matches("POST", "/returns/received"));
        assert!(!route.matches("POST", "/returns/RET-1/received/x"));
        assert_eq!(route.literal_segments(), 2);
    }

    #[test]
    fn the_most_specific_route_wins_whatever_the_template_order() {
        let yaml = r#"
Resources:
  Generic:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: orders-api } }
    Properties:
      Events:
        Any: { Type: HttpApi, Properties: { Method: ANY, Path: "/things/{id}" } }
        Get: { Type: HttpApi, Properties: { Method: GET, Path: "/things/{id}" } }
  Special:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: support-api } }
    Properties:
      Events:
        Get: { Type: HttpApi, Properties: { Method: GET, Path: /things/special } }
"#;
        let t = Topology::from_template(
            &Template::from_yaml(yaml, "r.yaml").unwrap(),
            &Stack::new("s"),
        )
        .unwrap();
        let binary = |method: &str, path: &str| {
            t.route_for(method, path)
                .map(|r| (t.functions[r.function].binary.as_str(), r.method.as_str()))
        };
        assert_eq!(
            binary("GET", "/things/special"),
            Some(("support-api", "GET"))
        );
        assert_eq!(binary("GET", "/things/42"), Some(("orders-api", "GET")));
        assert_eq!(binary("DELETE", "/things/42"), Some(("orders-api", "ANY")));
        assert_eq!(binary("GET", "/other"), None);
    }

    #[test]
    fn an_unknown_binary_is_refused_naming_the_field() {
        let yaml = r#"
Resources:
  Mystery:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: mystery-fn } }
    Properties: {}
"#;
        let err = Topology::from_template(
            &Template::from_yaml(yaml, "m.yaml").unwrap(),
            &Stack::new("s"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("m.yaml") && text.contains("Mystery.Metadata.BuildProperties.Binary"),
            "{text}"
        );
        assert_eq!(err.error_type(), "TemplateUnsupported");
    }

    #[test]
    fn a_rule_targeting_something_other_than_a_queue_is_refused() {
        let yaml = r#"
Resources:
  Bus: { Type: AWS::Events::EventBus, Properties: { Name: b } }
  Fn: { Type: AWS::Lambda::Function, Properties: {} }
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: { source: [x] }
      Targets: [{ Id: t, Arn: !GetAtt Fn.Arn }]
"#;
        let err = Topology::from_template(
            &Template::from_yaml(yaml, "r.yaml").unwrap(),
            &Stack::new("s"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("r.yaml: Rule.Properties.Targets[0].Arn"),
            "{err}"
        );
    }
}
