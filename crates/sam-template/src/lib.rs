//! A typed, read-only model of the product's SAM `template.yaml`.
//!
//! The template is the single source of truth for tables, the bus, queues, rules and functions:
//! the local AWS stand-in is provisioned from it, the local runner routes by its rules, and the
//! template policy tests read it. This crate parses it once and answers those questions.
//!
//! YAML short-form intrinsics (`!Ref X`, `!GetAtt A.B`, `!Sub s`, `!If [...]`) are rewritten to
//! CloudFormation's canonical long form (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, ...) so
//! every consumer reads plain JSON. [`Template::resolve`] evaluates the intrinsics that name
//! resources (`Ref`, `Fn::GetAtt`, `Fn::Sub`) for a local stack, where the physical name of an
//! unnamed resource is `<stack>-<LogicalId>`, as CloudFormation's own naming starts.
//!
//! ```
//! let yaml = r#"
//! Resources:
//!   Bus:
//!     Type: AWS::Events::EventBus
//!     Properties: { Name: !Sub "${AWS::StackName}-bus" }
//! "#;
//! let template = sam_template::Template::from_yaml(yaml, "inline").unwrap();
//! let stack = sam_template::Stack::new("dev");
//! assert_eq!(template.event_buses(&stack).unwrap()[0].name, "dev-bus");
//! ```

mod model;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

pub use model::{
    BusSpec, FunctionSpec, HttpApiSpec, HttpAuthorizerSpec, HttpRoute, QueueSpec, RedriveSpec,
    RuleSpec, TableSpec, TargetSpec,
};

/// Errors reading or interpreting a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read template {path}: {source}")]
    Io {
        /// The template's path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("template {path} is not valid YAML: {source}")]
    Yaml {
        /// The template's path.
        path: String,
        /// The parser's error, with its line and column.
        #[source]
        source: serde_norway::Error,
    },
    /// A required field is missing or has the wrong shape.
    #[error("template {path}: {at}: {problem}")]
    Invalid {
        /// The template's path.
        path: String,
        /// Where: a resource's logical id and field.
        at: String,
        /// What is wrong.
        problem: String,
    },
}

/// Names of the deployed stack that resolve pseudo parameters and physical names locally.
#[derive(Debug, Clone)]
pub struct Stack {
    /// `AWS::StackName`; also the prefix of generated physical names.
    pub name: String,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId`.
    pub account_id: String,
}

impl Stack {
    /// A stack in `us-east-1` of the stand-in's default account (`123456789012`).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
        }
    }
}

/// One resource of the template.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Its logical id.
    pub logical_id: String,
    /// Its `Type`, e.g. `AWS::SQS::Queue`.
    pub kind: String,
    /// Its `Properties` (long-form intrinsics), `{}` when absent.
    pub properties: Value,
    /// Its `Metadata`, `{}` when absent.
    pub metadata: Value,
    /// The whole resource node, for attributes such as `DeletionPolicy`.
    pub raw: Value,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    path: String,
    root: Value,
    resources: BTreeMap<String, Resource>,
}

impl Template {
    /// Reads and parses a template file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TemplateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Parses template text; `path` only names it in errors.
    pub fn from_yaml(text: &str, path: &str) -> Result<Self, TemplateError> {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|source| TemplateError::Yaml {
                path: path.to_owned(),
                source,
            })?;
        let root = to_json(yaml);
        let mut resources = BTreeMap::new();
        let Some(nodes) = root.get("Resources").and_then(Value::as_object) else {
            return Err(TemplateError::Invalid {
                path: path.to_owned(),
                at: "Resources".into(),
                problem: "missing or not a mapping".into(),
            });
        };
        for (logical_id, node) in nodes {
            let Some(kind) = node.get("Type").and_then(Value::as_str) else {
                return Err(TemplateError::Invalid {
                    path: path.to_owned(),
                    at: format!("Resources.{logical_id}.Type"),
                    problem: "missing or not a string".into(),
                });
            };
            let field = |name: &str| node.get(name).cloned().unwrap_or(Value::Object(Map::new()));
            resources.insert(
                logical_id.clone(),
                Resource {
                    logical_id: logical_id.clone(),
                    kind: kind.to_owned(),
                    properties: field("Properties"),
                    metadata: field("Metadata"),
                    raw: node.clone(),
                },
            );
        }
        Ok(Self {
            path: path.to_owned(),
            root,
            resources,
        })
    }

    /// The path the template was read from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The whole template as JSON with long-form intrinsics.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Every resource, by logical id.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    /// The resources of one type, e.g. `AWS::SQS::Queue`.
    pub fn resources_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.values().filter(move |r| r.kind == kind)
    }

    /// One resource by logical id.
    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.get(logical_id)
    }

    pub(crate) fn invalid(
        &self,
        at: impl Into<String>,
        problem: impl Into<String>,
    ) -> TemplateError {
        TemplateError::Invalid {
            path: self.path.clone(),
            at: at.into(),
            problem: problem.into(),
        }
    }

    /// The physical name a resource gets in `stack`: its explicit name property when it has one,
    /// else `<stack>-<LogicalId>`.
    pub fn physical_name(&self, logical_id: &str, stack: &Stack) -> Result<String, TemplateError> {
        let resource = self
            .resource(logical_id)
            .ok_or_else(|| self.invalid(logical_id, "no such resource"))?;
        let name_field = match resource.kind.as_str() {
            "AWS::DynamoDB::Table" => "TableName",
            "AWS::SQS::Queue" => "QueueName",
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => "FunctionName",
            _ => "Name",
        };
        match resource.properties.get(name_field) {
            Some(v) => self.resolve_string(v, stack, &format!("{logical_id}.{name_field}")),
            None => Ok(format!("{}-{logical_id}", stack.name)),
        }
    }

    /// The ARN of a resource in `stack`.
    pub fn arn(&self, logical_id: &str, stack: &Stack) -> Result<String, TemplateError> {
        let resource = self
            .resource(logical_id)
            .ok_or_else(|| self.invalid(logical_id, "no such resource"))?;
        let name = self.physical_name(logical_id, stack)?;
        let Stack {
            region, account_id, ..
        } = stack;
        Ok(match resource.kind.as_str() {
            "AWS::SQS::Queue" => format!("arn:aws:sqs:{region}:{account_id}:{name}"),
            "AWS::DynamoDB::Table" => {
                format!("arn:aws:dynamodb:{region}:{account_id}:table/{name}")
            }
            "AWS::Events::EventBus" => {
                format!("arn:aws:events:{region}:{account_id}:event-bus/{name}")
            }
            "AWS::Events::Rule" => format!("arn:aws:events:{region}:{account_id}:rule/{name}"),
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                format!("arn:aws:lambda:{region}:{account_id}:function:{name}")
            }
            other => format!("arn:aws:{other}:{region}:{account_id}:{name}"),
        })
    }

    fn ref_value(&self, target: &str, stack: &Stack, at: &str) -> Result<String, TemplateError> {
        match target {
            "AWS::StackName" => return Ok(stack.name.clone()),
            "AWS::Region" => return Ok(stack.region.clone()),
            "AWS::AccountId" => return Ok(stack.account_id.clone()),
            "AWS::Partition" => return Ok("aws".to_owned()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".to_owned()),
            _ => {}
        }
        if let Some(param) = self.root.pointer(&format!("/Parameters/{target}")) {
            return param
                .get("Default")
                .map(|d| match d {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .ok_or_else(|| self.invalid(at, format!("parameter {target} has no Default")));
        }
        let resource = self
            .resource(target)
            .ok_or_else(|| self.invalid(at, format!("Ref to unknown resource {target}")))?;
        match resource.kind.as_str() {
            // Ref of a queue is its URL; locally we only ever need its name, so say so loudly.
            "AWS::SQS::Queue" => Err(self.invalid(
                at,
                format!("Ref of queue {target} is a URL; use !GetAtt {target}.QueueName or .Arn"),
            )),
            "AWS::Events::Rule" | "AWS::Events::EventBus" | "AWS::DynamoDB::Table" => {
                self.physical_name(target, stack)
            }
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                self.physical_name(target, stack)
            }
            _ => self.physical_name(target, stack),
        }
    }

    fn get_att(
        &self,
        target: &str,
        attribute: &str,
        stack: &Stack,
        at: &str,
    ) -> Result<String, TemplateError> {
        match attribute {
            "Arn" => self.arn(target, stack),
            "QueueName" | "Name" => self.physical_name(target, stack),
            "QueueUrl" => Ok(format!(
                "https://sqs.{}.amazonaws.com/{}/{}",
                stack.region,
                stack.account_id,
                self.physical_name(target, stack)?
            )),
            other => Err(self.invalid(at, format!("unsupported attribute {target}.{other}"))),
        }
    }

    /// Evaluates a scalar that may be a literal or a `Ref` / `Fn::GetAtt` / `Fn::Sub` intrinsic.
    /// `at` names the field in errors.
    pub fn resolve_string(
        &self,
        value: &Value,
        stack: &Stack,
        at: &str,
    ) -> Result<String, TemplateError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Object(obj) if obj.len() == 1 => {
                let (func, arg) = obj.iter().next().ok_or_else(|| self.invalid(at, "empty"))?;
                match (func.as_str(), arg) {
                    ("Ref", Value::String(target)) => self.ref_value(target, stack, at),
                    ("Fn::GetAtt", Value::Array(parts)) if parts.len() == 2 => {
                        let target = parts[0].as_str().unwrap_or_default();
                        let attribute = parts[1].as_str().unwrap_or_default();
                        self.get_att(target, attribute, stack, at)
                    }
                    ("Fn::GetAtt", Value::String(dotted)) => {
                        let (target, attribute) = dotted
                            .split_once('.')
                            .ok_or_else(|| self.invalid(at, format!("bad GetAtt {dotted}")))?;
                        self.get_att(target, attribute, stack, at)
                    }
                    ("Fn::Sub", Value::String(text)) => self.substitute(text, stack, at),
                    (other, _) => Err(self.invalid(at, format!("cannot resolve {other} locally"))),
                }
            }
            other => Err(self.invalid(at, format!("expected a string, got {other}"))),
        }
    }

    fn substitute(&self, text: &str, stack: &Stack, at: &str) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| self.invalid(at, format!("unclosed ${{ in {text:?}")))?;
            let name = &after[..end];
            let value = match name.split_once('.') {
                Some((target, attribute)) if !name.starts_with("AWS::") => {
                    self.get_att(target, attribute, stack, at)?
                }
                _ => self.ref_value(name, stack, at)?,
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Converts YAML to JSON, rewriting CloudFormation short-form tags to their long form.
fn to_json(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().map(Value::from).unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            let (key, value) = match name {
                "Ref" | "Condition" => (name.to_owned(), value),
                "GetAtt" => {
                    // `!GetAtt A.B` is the string form of `Fn::GetAtt: [A, B]`.
                    let value = match value {
                        Value::String(s) => match s.split_once('.') {
                            Some((a, b)) => Value::Array(vec![a.into(), b.into()]),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), value)
                }
                other => (format!("Fn::{other}"), value),
            };
            let mut obj = Map::new();
            obj.insert(key, value);
            Value::Object(obj)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
Parameters:
  Stage: { Type: String, Default: dev }
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Named:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-${Stage}-t"
  Rule:
    Type: AWS::Events::Rule
    Properties:
      Targets:
        - Arn: !GetAtt Queue.Arn
          Id: q
        - Arn: { "Fn::GetAtt": [Queue, Arn] }
          Id: q2
"#;

    #[test]
    fn short_and_long_form_intrinsics_resolve_alike() {
        let t = Template::from_yaml(YAML, "t.yaml").unwrap();
        let stack = Stack::new("s");
        let targets = &t.resource("Rule").unwrap().properties["Targets"];
        let a = t.resolve_string(&targets[0]["Arn"], &stack, "a").unwrap();
        let b = t.resolve_string(&targets[1]["Arn"], &stack, "b").unwrap();
        assert_eq!(a, "arn:aws:sqs:us-east-1:123456789012:s-Queue");
        assert_eq!(a, b);
    }

    #[test]
    fn sub_resolves_pseudo_parameters_and_parameter_defaults() {
        let t = Template::from_yaml(YAML, "t.yaml").unwrap();
        assert_eq!(
            t.physical_name("Named", &Stack::new("s")).unwrap(),
            "s-dev-t"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let err = Template::from_yaml("Resources:\n  X: { Properties: {} }\n", "bad.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.yaml") && err.contains("Resources.X.Type"),
            "{err}"
        );
        let err = Template::from_yaml("Resources: [", "broken.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("broken.yaml"), "{err}");
    }

    #[test]
    fn routes_carry_their_api_authorizer_and_scopes() {
        let yaml = r#"
Parameters:
  StaffScope: { Type: String, Default: commerce/warehouse }
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: { issuer: https://issuer, audience: [a] }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Open: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: get, Path: /open, Auth: { Authorizer: NONE } } }
        Plain: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: GET, Path: /plain } }
        Staff:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: POST
            Path: /staff
            Auth: { Authorizer: Jwt, AuthorizationScopes: [!Ref StaffScope] }
"#;
        let t = Template::from_yaml(yaml, "a.yaml").unwrap();
        let routes = &t.functions()[0].http_routes;
        let route = |path: &str| routes.iter().find(|r| r.path == path).unwrap();
        let api = t.http_api(route("/plain").api.as_deref()).unwrap();
        assert_eq!(api.logical_id.as_deref(), Some("Api"));
        assert_eq!(api.authorizer_of(route("/plain")), Some("Jwt"));
        assert_eq!(api.authorizer_of(route("/open")), None);
        assert_eq!(route("/open").method, "GET");
        let jwt = &api.authorizers["Jwt"];
        assert!(jwt.jwt);
        assert_eq!(
            jwt.identity_source.as_deref(),
            Some("$request.header.Authorization")
        );
        let scopes = route("/staff").scopes.clone().unwrap();
        assert_eq!(
            t.resolve_string(&scopes[0], &Stack::new("s"), "scope")
                .unwrap(),
            "commerce/warehouse"
        );
        assert_eq!(route("/plain").scopes, None);
        assert!(t.http_api(Some("Fn")).is_err(), "not an HttpApi");
        assert_eq!(t.http_api(None).unwrap().default_authorizer, None);
    }

    #[test]
    fn a_variable_set_to_no_value_is_absent_like_on_aws() {
        let yaml = r#"
Globals:
  Function:
    Environment:
      Variables:
        KEPT: "1"
        AWS_ENDPOINT_URL: !Ref AWS::NoValue
        DROPPED_HERE: "2"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          DROPPED_HERE: !Ref AWS::NoValue
"#;
        let t = Template::from_yaml(yaml, "t.yaml").unwrap();
        let names: Vec<_> = t.functions()[0].environment.keys().cloned().collect();
        assert_eq!(names, ["KEPT"]);
    }

    #[test]
    fn a_function_gets_the_statements_of_its_policies_and_of_its_role() {
        let yaml = r#"
Resources:
  Inline:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement: [{ Sid: A, Effect: Allow, Action: s3:GetObject, Resource: x }]
        - AmazonS3ReadOnlyAccess
  Explicit:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt ExplicitRole.Arn
  ExplicitRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: own
          PolicyDocument:
            Statement: { Sid: B, Effect: Allow, Action: sqs:ReceiveMessage, Resource: q }
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      Roles: [!Ref ExplicitRole]
      PolicyDocument:
        Statement: [{ Sid: C, Effect: Allow, Action: logs:PutLogEvents, Resource: l }]
"#;
        let t = Template::from_yaml(yaml, "t.yaml").unwrap();
        let sids = |id: &str| -> Vec<String> {
            let f = t
                .functions()
                .into_iter()
                .find(|f| f.logical_id == id)
                .unwrap();
            t.policy_statements(&f)
                .iter()
                .map(|s| s["Sid"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(sids("Inline"), ["A"]);
        assert_eq!(sids("Explicit"), ["B", "C"]);
    }

    #[test]
    fn ref_to_an_unknown_resource_is_an_error() {
        let t = Template::from_yaml(YAML, "t.yaml").unwrap();
        let v = serde_json::json!({"Ref": "Nope"});
        assert!(t.resolve_string(&v, &Stack::new("s"), "x").is_err());
    }
}
