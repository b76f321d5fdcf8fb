//! The template as the template tests read it: the SAM source (functions' binaries, crates and
//! environment) beside the CloudFormation SAM expands it to (what `sam deploy` creates: every role
//! and policy, those SAM adds included).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use testkit::Template;

/// A string or a list of strings as a list; anything else (an intrinsic) as nothing.
pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// `!GetAtt <logical_id>.<attribute>` in long form.
pub fn get_att(logical_id: &str, attribute: &str) -> Value {
    json!({"Fn::GetAtt": [logical_id, attribute]})
}

/// `!Ref <logical_id>` in long form.
pub fn reference(logical_id: &str) -> Value {
    json!({"Ref": logical_id})
}

/// The logical id a `Ref` or `Fn::GetAtt` names.
pub fn logical_of(v: &Value) -> Option<String> {
    if let Some(target) = v.get("Ref").and_then(Value::as_str) {
        return Some(target.to_owned());
    }
    v.get("Fn::GetAtt")?.get(0)?.as_str().map(str::to_owned)
}

/// The product's `template.yaml` text with one occurrence of `from` replaced by `to` (which must
/// be there: a mutation that misses tests nothing).
pub fn mutated_yaml(from: &str, to: &str) -> String {
    let yaml = std::fs::read_to_string(testkit::workspace_root().join("template.yaml")).unwrap();
    assert!(
        yaml.contains(from),
        "mutation target {from:?} not in template.yaml"
    );
    yaml.replacen(from, to, 1)
}

/// A template's source and its expansion.
pub struct Deployed {
    /// The SAM template as written.
    pub source: Template,
    /// What `sam deploy` creates from it.
    pub expanded: Template,
}

/// A function as deployed.
#[derive(Debug)]
pub struct DeployedFunction {
    /// Logical id (the same in source and expansion).
    pub logical_id: String,
    /// Its Cargo binary.
    pub binary: String,
    /// Its crate (`CodeUri`).
    pub code_uri: String,
    /// Its environment as deployed (Globals merged, `AWS::NoValue` dropped).
    pub environment: BTreeMap<String, Value>,
    /// Logical id of its execution role in the expansion.
    pub role: String,
    /// Every statement of that role.
    pub statements: Vec<Value>,
    /// Logical id of the log group its `LoggingConfig` names.
    pub log_group: Option<String>,
    /// Logical ids of the queues its event source mappings read.
    pub queues: Vec<String>,
    /// Logical ids of the tables whose streams its event source mappings read (an outbox relay).
    pub streams: Vec<String>,
    /// Logical ids of its event source mappings' on-failure destinations.
    pub on_failure: Vec<String>,
}

impl DeployedFunction {
    /// Whether it takes events from a queue or a stream in batches (and so reports per-record
    /// failures).
    pub fn takes_batches(&self) -> bool {
        !self.queues.is_empty() || !self.streams.is_empty()
    }

    /// Whether it makes operations idempotent through the idempotency table (every function
    /// but the outbox relays, whose publishes are deduplicated downstream).
    pub fn uses_idempotency(&self) -> bool {
        self.streams.is_empty()
    }
}

impl Deployed {
    /// The product's template.
    pub fn product() -> Self {
        Self {
            source: testkit::template(),
            expanded: testkit::expanded_template(),
        }
    }

    /// A template given as text (a mutation of the product's).
    pub fn from_yaml(yaml: &str) -> Self {
        Self {
            source: Template::from_yaml(yaml, "mutated.yaml").unwrap(),
            expanded: testkit::expand(yaml, "mutated.yaml"),
        }
    }

    /// Every function, as deployed.
    pub fn functions(&self) -> Vec<DeployedFunction> {
        let mappings: Vec<_> = self
            .expanded
            .resources_of("AWS::Lambda::EventSourceMapping")
            .collect();
        self.source
            .functions()
            .into_iter()
            .map(|spec| {
                let id = &spec.logical_id;
                let lambda = self
                    .expanded
                    .resource(id)
                    .unwrap_or_else(|| panic!("{id} is not in the expansion"));
                assert_eq!(lambda.kind, "AWS::Lambda::Function", "{id}");
                let role = logical_of(&lambda.properties["Role"])
                    .unwrap_or_else(|| panic!("{id}: Role names no role of the template"));
                let own: Vec<_> = mappings
                    .iter()
                    .filter(|m| m.properties["FunctionName"] == reference(id))
                    .collect();
                let sources_of = |kind: &str| -> Vec<String> {
                    own.iter()
                        .filter_map(|m| logical_of(&m.properties["EventSourceArn"]))
                        .filter(|source| {
                            self.expanded
                                .resource(source)
                                .is_some_and(|r| r.kind == kind)
                        })
                        .collect()
                };
                let (queues, streams) = (
                    sources_of("AWS::SQS::Queue"),
                    sources_of("AWS::DynamoDB::Table"),
                );
                let on_failure = own
                    .iter()
                    .filter_map(|m| {
                        logical_of(&m.properties["DestinationConfig"]["OnFailure"]["Destination"])
                    })
                    .collect();
                DeployedFunction {
                    logical_id: id.clone(),
                    binary: spec.binary.clone(),
                    code_uri: spec.code_uri.clone().unwrap(),
                    environment: spec.environment.clone(),
                    statements: self.expanded.role_statements(&role),
                    role,
                    log_group: logical_of(&lambda.properties["LoggingConfig"]["LogGroup"]),
                    queues,
                    streams,
                    on_failure,
                }
            })
            .collect()
    }
}

/// Whether `check` panics on `input`: a check that cannot fail tests nothing.
pub fn fails<T: std::panic::RefUnwindSafe>(
    check: impl Fn(&T) + std::panic::RefUnwindSafe,
    input: &T,
) -> bool {
    std::panic::catch_unwind(|| check(input)).is_err()
}
