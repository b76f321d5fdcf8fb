//! Typed views of the resources the product cares about.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Stack, Template, TemplateError};

/// A DynamoDB table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Logical id.
    pub logical_id: String,
    /// Physical name in the stack.
    pub name: String,
    /// Partition key: attribute name and type (`S`, `N` or `B`).
    pub hash_key: (String, String),
    /// Sort key, if any.
    pub range_key: Option<(String, String)>,
    /// TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
    /// The stream's view type (`NEW_AND_OLD_IMAGES`, ...), when the table has a stream.
    pub stream_view_type: Option<String>,
}

/// An EventBridge bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusSpec {
    /// Logical id.
    pub logical_id: String,
    /// Physical name.
    pub name: String,
}

/// Where a queue's failed messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveSpec {
    /// Logical id of the dead-letter queue.
    pub dead_letter_queue: String,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
}

/// An SQS queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Logical id.
    pub logical_id: String,
    /// Physical name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Visibility timeout in seconds, when set.
    pub visibility_timeout: Option<u32>,
    /// Redrive policy, when the queue has a DLQ.
    pub redrive: Option<RedriveSpec>,
}

/// A rule's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The target's `Id` within the rule.
    pub id: String,
    /// Resolved ARN.
    pub arn: String,
    /// Logical id of the target resource when the ARN is a `GetAtt` of one.
    pub logical_id: Option<String>,
}

/// An EventBridge rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Logical id.
    pub logical_id: String,
    /// Physical name.
    pub name: String,
    /// Logical id of the bus it listens on (`None`: the default bus).
    pub bus: Option<String>,
    /// The event pattern, as JSON.
    pub pattern: Value,
    /// Its targets.
    pub targets: Vec<TargetSpec>,
}

/// An HTTP API route of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRoute {
    /// Method, upper case (`ANY` allowed).
    pub method: String,
    /// Path with `{param}` segments.
    pub path: String,
    /// Logical id of the `AWS::Serverless::HttpApi` it belongs to (`ApiId: !Ref X`); `None`
    /// for SAM's implicit API.
    pub api: Option<String>,
    /// `Auth.Authorizer` of the route (`NONE` opens it); `None`: the API's default applies.
    pub authorizer: Option<String>,
    /// `Auth.AuthorizationScopes` of the route, as written (they may be intrinsics); `None`:
    /// the authorizer's own scopes apply.
    pub scopes: Option<Vec<Value>>,
}

/// An authorizer of an HTTP API (`Auth.Authorizers.<name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAuthorizerSpec {
    /// Its name.
    pub name: String,
    /// Whether it is a JWT authorizer (it has a `JwtConfiguration`); else a Lambda authorizer.
    pub jwt: bool,
    /// `IdentitySource`, e.g. `$request.header.Authorization`.
    pub identity_source: Option<String>,
    /// `AuthorizationScopes` routes get when they name none, as written.
    pub scopes: Vec<Value>,
}

/// An `AWS::Serverless::HttpApi` (or SAM's implicit one, from `Globals.HttpApi`): its auth.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpApiSpec {
    /// Logical id (`None`: the implicit API).
    pub logical_id: Option<String>,
    /// `Auth.DefaultAuthorizer`.
    pub default_authorizer: Option<String>,
    /// `Auth.Authorizers`, by name.
    pub authorizers: BTreeMap<String, HttpAuthorizerSpec>,
}

impl HttpApiSpec {
    /// The authorizer a route ends up with: its own, else the API's default; `None` when the
    /// route is open (no authorizer, or `NONE`).
    pub fn authorizer_of<'a>(&'a self, route: &'a HttpRoute) -> Option<&'a str> {
        route
            .authorizer
            .as_deref()
            .or(self.default_authorizer.as_deref())
            .filter(|name| *name != "NONE")
    }
}

/// A SAM function.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// Logical id.
    pub logical_id: String,
    /// `CodeUri` (the Cargo package directory for rust-cargolambda).
    pub code_uri: Option<String>,
    /// The Cargo binary: `Metadata.BuildProperties.Binary`, else the logical id.
    pub binary: String,
    /// Environment variables (Globals merged), values as written (long-form intrinsics); a
    /// variable set to `!Ref AWS::NoValue` is absent, as CloudFormation deploys it.
    pub environment: BTreeMap<String, Value>,
    /// Logical ids of the SQS queues that feed it.
    pub sqs_sources: Vec<String>,
    /// Logical ids of the tables whose streams feed it (`Type: DynamoDB` events).
    pub stream_sources: Vec<String>,
    /// Its HTTP API routes.
    pub http_routes: Vec<HttpRoute>,
    /// Logical id of its execution role, when `Role` is a `!GetAtt <Role>.Arn` of the template
    /// (`None`: SAM creates one from `Policies`).
    pub role: Option<String>,
    /// Its whole `Properties` (Globals not merged).
    pub properties: Value,
}

fn logical_of(value: &Value) -> Option<String> {
    if let Some(target) = value.get("Ref").and_then(Value::as_str) {
        return Some(target.to_owned());
    }
    match value.get("Fn::GetAtt")? {
        Value::Array(parts) => parts.first()?.as_str().map(str::to_owned),
        Value::String(dotted) => dotted.split_once('.').map(|(a, _)| a.to_owned()),
        _ => None,
    }
}

impl Template {
    /// Every DynamoDB table.
    pub fn tables(&self, stack: &Stack) -> Result<Vec<TableSpec>, TemplateError> {
        self.resources_of("AWS::DynamoDB::Table")
            .map(|r| {
                let id = &r.logical_id;
                let p = &r.properties;
                let attr_type = |name: &str| -> Result<String, TemplateError> {
                    p["AttributeDefinitions"]
                        .as_array()
                        .and_then(|defs| {
                            defs.iter()
                                .find(|d| d["AttributeName"] == name)
                                .and_then(|d| d["AttributeType"].as_str())
                        })
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            self.invalid(
                                format!("{id}.AttributeDefinitions"),
                                format!("no type for key attribute {name}"),
                            )
                        })
                };
                let keys = p["KeySchema"]
                    .as_array()
                    .ok_or_else(|| self.invalid(format!("{id}.KeySchema"), "missing"))?;
                let key = |kind: &str| -> Result<Option<(String, String)>, TemplateError> {
                    keys.iter()
                        .find(|k| k["KeyType"] == kind)
                        .and_then(|k| k["AttributeName"].as_str())
                        .map(|name| Ok((name.to_owned(), attr_type(name)?)))
                        .transpose()
                };
                let hash_key = key("HASH")?
                    .ok_or_else(|| self.invalid(format!("{id}.KeySchema"), "no HASH key"))?;
                let ttl = &p["TimeToLiveSpecification"];
                Ok(TableSpec {
                    logical_id: id.clone(),
                    name: self.physical_name(id, stack)?,
                    hash_key,
                    range_key: key("RANGE")?,
                    ttl_attribute: (ttl["Enabled"] == true)
                        .then(|| ttl["AttributeName"].as_str().map(str::to_owned))
                        .flatten(),
                    stream_view_type: p
                        .pointer("/StreamSpecification/StreamViewType")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            })
            .collect()
    }

    /// Every custom event bus.
    pub fn event_buses(&self, stack: &Stack) -> Result<Vec<BusSpec>, TemplateError> {
        self.resources_of("AWS::Events::EventBus")
            .map(|r| {
                Ok(BusSpec {
                    logical_id: r.logical_id.clone(),
                    name: self.physical_name(&r.logical_id, stack)?,
                })
            })
            .collect()
    }

    /// Every SQS queue, dead-letter queues first (so they can be created first).
    pub fn queues(&self, stack: &Stack) -> Result<Vec<QueueSpec>, TemplateError> {
        let mut queues = self
            .resources_of("AWS::SQS::Queue")
            .map(|r| {
                let id = &r.logical_id;
                let p = &r.properties;
                let redrive = match p.get("RedrivePolicy") {
                    None => None,
                    Some(policy) => Some(RedriveSpec {
                        dead_letter_queue: logical_of(&policy["deadLetterTargetArn"]).ok_or_else(
                            || {
                                self.invalid(
                                    format!("{id}.RedrivePolicy.deadLetterTargetArn"),
                                    "must be !GetAtt <Queue>.Arn",
                                )
                            },
                        )?,
                        max_receive_count: as_u32(&policy["maxReceiveCount"]).ok_or_else(|| {
                            self.invalid(
                                format!("{id}.RedrivePolicy.maxReceiveCount"),
                                "not a number",
                            )
                        })?,
                    }),
                };
                Ok(QueueSpec {
                    logical_id: id.clone(),
                    name: self.physical_name(id, stack)?,
                    arn: self.arn(id, stack)?,
                    visibility_timeout: p.get("VisibilityTimeout").and_then(as_u32),
                    redrive,
                })
            })
            .collect::<Result<Vec<_>, TemplateError>>()?;
        queues.sort_by_key(|q| q.redrive.is_some());
        Ok(queues)
    }

    /// Every EventBridge rule with an event pattern.
    pub fn rules(&self, stack: &Stack) -> Result<Vec<RuleSpec>, TemplateError> {
        self.resources_of("AWS::Events::Rule")
            .map(|r| {
                let id = &r.logical_id;
                let p = &r.properties;
                let pattern = p
                    .get("EventPattern")
                    .cloned()
                    .ok_or_else(|| self.invalid(format!("{id}.EventPattern"), "missing"))?;
                let targets = p["Targets"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let at = format!("{id}.Targets[{i}]");
                        Ok(TargetSpec {
                            id: t["Id"]
                                .as_str()
                                .ok_or_else(|| self.invalid(format!("{at}.Id"), "missing"))?
                                .to_owned(),
                            arn: self.resolve_string(&t["Arn"], stack, &format!("{at}.Arn"))?,
                            logical_id: logical_of(&t["Arn"]),
                        })
                    })
                    .collect::<Result<Vec<_>, TemplateError>>()?;
                Ok(RuleSpec {
                    logical_id: id.clone(),
                    name: self.physical_name(id, stack)?,
                    bus: p.get("EventBusName").and_then(logical_of),
                    pattern,
                    targets,
                })
            })
            .collect()
    }

    /// Every `AWS::Serverless::Function`, with `Globals.Function.Environment` merged.
    pub fn functions(&self) -> Vec<FunctionSpec> {
        let global_env = self
            .root()
            .pointer("/Globals/Function/Environment/Variables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        self.resources_of("AWS::Serverless::Function")
            .map(|r| {
                let p = &r.properties;
                let mut environment: BTreeMap<String, Value> =
                    global_env.clone().into_iter().collect();
                if let Some(vars) = p
                    .pointer("/Environment/Variables")
                    .and_then(Value::as_object)
                {
                    environment.extend(vars.clone());
                }
                // CloudFormation drops a variable whose value is `AWS::NoValue`: the deployed
                // function does not have it.
                environment.retain(|_, value| !is_no_value(value));
                let mut sqs_sources = Vec::new();
                let mut stream_sources = Vec::new();
                let mut http_routes = Vec::new();
                for event in p["Events"].as_object().into_iter().flat_map(|e| e.values()) {
                    match event["Type"].as_str() {
                        Some("SQS") => {
                            sqs_sources.extend(logical_of(&event["Properties"]["Queue"]))
                        }
                        Some("DynamoDB") => {
                            stream_sources.extend(logical_of(&event["Properties"]["Stream"]))
                        }
                        Some("HttpApi") => {
                            let properties = &event["Properties"];
                            http_routes.push(HttpRoute {
                                method: properties["Method"]
                                    .as_str()
                                    .unwrap_or("ANY")
                                    .to_uppercase(),
                                path: properties["Path"].as_str().unwrap_or("/").to_owned(),
                                api: logical_of(&properties["ApiId"]),
                                authorizer: properties["Auth"]["Authorizer"]
                                    .as_str()
                                    .map(str::to_owned),
                                scopes: properties["Auth"]["AuthorizationScopes"]
                                    .as_array()
                                    .cloned(),
                            })
                        }
                        _ => {}
                    }
                }
                FunctionSpec {
                    logical_id: r.logical_id.clone(),
                    code_uri: p["CodeUri"].as_str().map(str::to_owned),
                    binary: r
                        .metadata
                        .pointer("/BuildProperties/Binary")
                        .and_then(Value::as_str)
                        .unwrap_or(&r.logical_id)
                        .to_owned(),
                    environment,
                    sqs_sources,
                    stream_sources,
                    http_routes,
                    role: logical_of(&p["Role"]),
                    properties: p.clone(),
                }
            })
            .collect()
    }

    /// The IAM statements an `AWS::IAM::Role` of the template carries: its inline `Policies`
    /// and every `AWS::IAM::Policy` or `AWS::IAM::ManagedPolicy` of the template attached to it.
    /// Managed policies named by ARN (`ManagedPolicyArns`) are not in the template, so not here.
    pub fn role_statements(&self, role: &str) -> Vec<Value> {
        let mut documents: Vec<&Value> = Vec::new();
        if let Some(r) = self.resource(role) {
            documents.extend(
                r.properties["Policies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| &p["PolicyDocument"]),
            );
        }
        for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
            for policy in self.resources_of(kind) {
                let attached = policy.properties["Roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| logical_of(r).as_deref() == Some(role));
                if attached {
                    documents.push(&policy.properties["PolicyDocument"]);
                }
            }
        }
        documents.into_iter().flat_map(statements_of).collect()
    }

    /// The IAM statements a function is granted in the template: those of SAM's `Policies`
    /// (inline statements; SAM policy templates and managed policy names are not statements) and
    /// those of its `Role` when the role is a resource of the template.
    pub fn policy_statements(&self, function: &FunctionSpec) -> Vec<Value> {
        let mut statements: Vec<Value> = match &function.properties["Policies"] {
            Value::Array(policies) => policies.iter().flat_map(statements_of).collect(),
            policy @ Value::Object(_) => statements_of(policy),
            _ => Vec::new(),
        };
        if let Some(role) = &function.role {
            statements.extend(self.role_statements(role));
        }
        statements
    }
}

/// The statements of a policy document (`Statement` may be one statement or a list).
fn statements_of(document: &Value) -> Vec<Value> {
    match &document["Statement"] {
        Value::Array(items) => items.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => Vec::new(),
    }
}

/// Whether a value is `!Ref AWS::NoValue`, which removes the property it is the value of.
fn is_no_value(value: &Value) -> bool {
    value.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

impl Template {
    /// The HTTP API a route belongs to: the `AWS::Serverless::HttpApi` its `ApiId` names, or
    /// SAM's implicit API (configured by `Globals.HttpApi`) when it names none.
    pub fn http_api(&self, logical_id: Option<&str>) -> Result<HttpApiSpec, TemplateError> {
        let properties = match logical_id {
            Some(id) => {
                let resource = self
                    .resource(id)
                    .filter(|r| r.kind == "AWS::Serverless::HttpApi")
                    .ok_or_else(|| {
                        self.invalid(id, "ApiId must name an AWS::Serverless::HttpApi")
                    })?;
                resource.properties.clone()
            }
            None => self
                .root()
                .pointer("/Globals/HttpApi")
                .cloned()
                .unwrap_or(Value::Null),
        };
        let auth = &properties["Auth"];
        let authorizers = auth["Authorizers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, a)| {
                (
                    name.clone(),
                    HttpAuthorizerSpec {
                        name: name.clone(),
                        jwt: a.get("JwtConfiguration").is_some(),
                        identity_source: a["IdentitySource"].as_str().map(str::to_owned),
                        scopes: a["AuthorizationScopes"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default(),
                    },
                )
            })
            .collect();
        Ok(HttpApiSpec {
            logical_id: logical_id.map(str::to_owned),
            default_authorizer: auth["DefaultAuthorizer"].as_str().map(str::to_owned),
            authorizers,
        })
    }
}

fn as_u32(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
