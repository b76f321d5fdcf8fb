//! The catalog model: detail types from the contract, subscriptions from the template.

use std::collections::BTreeMap;

use contracts::{
    DomainEvent, OrderCreated, OrderPicked, OrderShipped, ReturnReceived, ReturnRequested,
};
use quamina::Quamina;
use sam_template::{Stack, Template};
use serde_json::Value;

use crate::CatalogError;

/// The catalog: every detail type of the contract with its producer, schema, subscriptions and
/// examples, in contract order.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Logical id of the bus the contract's events are published on.
    pub bus: String,
    /// Every detail type of the contract.
    pub events: Vec<EventType>,
}

/// One detail type.
#[derive(Debug, Clone)]
pub struct EventType {
    /// The `detail-type`.
    pub detail_type: &'static str,
    /// The producer: the `source` the contract gives it.
    pub source: &'static str,
    /// One sentence on the fact it records, from the Rust type's documentation.
    pub summary: String,
    /// The JSON Schema (draft 2020-12) of its `detail`, as `crates/contracts/schemas` holds it.
    pub detail_schema: Value,
    /// Every rule target that receives it, by rule logical id.
    pub subscriptions: Vec<Subscription>,
    /// Example events, when loaded with [`Catalog::load_examples`].
    pub examples: Vec<Example>,
}

/// One rule target receiving a detail type.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The rule's logical id.
    pub rule: String,
    /// The rule's `Description`, when it has one.
    pub description: Option<String>,
    /// The rule's whole event pattern.
    pub pattern: Value,
    /// Fields other than `source` and `detail-type` the pattern also tests (e.g. `detail`):
    /// when not empty, the rule receives only some events of the type.
    pub narrowed_by: Vec<String>,
    /// The target's `Id` within the rule.
    pub target: String,
    /// Logical id of the target queue, when the target is an SQS queue of the template.
    pub queue: Option<String>,
    /// Logical id of that queue's dead-letter queue.
    pub dead_letter_queue: Option<String>,
    /// The function that consumes the queue (or is the target itself).
    pub consumer: Option<Consumer>,
}

/// A consuming function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Its logical id.
    pub function: String,
    /// Its Cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
}

/// An example event (see [`Catalog::load_examples`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The file's stem, e.g. `order-created`.
    pub name: String,
    /// The file, relative to the repository root, e.g. `events/eventbridge/order-created.json`.
    pub path: String,
    /// The whole EventBridge event.
    pub event: Value,
}

impl EventType {
    pub(crate) fn named(&self) -> crate::envelope::Named<'_> {
        crate::envelope::Named {
            detail_type: self.detail_type,
            source: self.source,
            summary: &self.summary,
        }
    }
}

/// What the contract says of one detail type.
struct Contracted {
    detail_type: &'static str,
    source: &'static str,
    detail_schema: Value,
}

fn contracted<E: DomainEvent>() -> Contracted {
    Contracted {
        detail_type: E::DETAIL_TYPE,
        source: E::SOURCE,
        detail_schema: contracts::schema::detail_schema::<E>(),
    }
}

/// The summary of a detail type: its data type's description without the "`source` /
/// `DetailType`: " prefix the contract's docs open with, capitalized.
pub(crate) fn summary_of(detail_schema: &Value) -> String {
    let data = detail_schema
        .pointer("/properties/data/$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| detail_schema.pointer(pointer));
    let text = data
        .and_then(|d| d.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = match text.split_once("`: ") {
        Some((prefix, rest)) if prefix.starts_with('`') => rest,
        _ => text,
    };
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl Catalog {
    /// Joins the contract with the subscriptions `template` declares. Examples are not loaded
    /// (see [`Catalog::load_examples`]).
    pub fn from_template(template: &Template) -> Result<Self, CatalogError> {
        let path = template.path().to_owned();
        // Logical ids are all the catalog shows; a stack is only needed to read the template.
        let stack = Stack::new("catalog");
        let buses = template.event_buses(&stack)?;
        let [bus] = buses.as_slice() else {
            return Err(CatalogError::Bus {
                path,
                found: buses.len(),
            });
        };

        let contract = [
            contracted::<OrderCreated>(),
            contracted::<OrderPicked>(),
            contracted::<OrderShipped>(),
            contracted::<ReturnRequested>(),
            contracted::<ReturnReceived>(),
        ];
        let mut events: Vec<EventType> = contract
            .into_iter()
            .map(|c| EventType {
                summary: summary_of(&c.detail_schema),
                detail_type: c.detail_type,
                source: c.source,
                detail_schema: c.detail_schema,
                subscriptions: Vec::new(),
                examples: Vec::new(),
            })
            .collect();

        let queues = template.queues(&stack)?;
        let mut consumer_of: BTreeMap<String, Consumer> = BTreeMap::new();
        let functions = template.functions();
        for function in &functions {
            for queue in &function.sqs_sources {
                let consumer = Consumer {
                    function: function.logical_id.clone(),
                    binary: function.binary.clone(),
                };
                if let Some(first) = consumer_of.insert(queue.clone(), consumer) {
                    return Err(CatalogError::SharedQueue {
                        path,
                        queue: queue.clone(),
                        first: first.function,
                        second: function.logical_id.clone(),
                    });
                }
            }
        }

        for rule in template.rules(&stack)? {
            if rule.bus.as_deref() != Some(bus.logical_id.as_str()) {
                // Another bus (the default one, say) carries no event of the contract.
                continue;
            }
            let matched = matching_events(&rule.pattern, &events).map_err(|source| {
                CatalogError::Pattern {
                    path: path.clone(),
                    rule: rule.logical_id.clone(),
                    source,
                }
            })?;
            if matched.is_empty() {
                return Err(CatalogError::RuleMatchesNothing {
                    path,
                    rule: rule.logical_id.clone(),
                });
            }
            let narrowed_by: Vec<String> = rule
                .pattern
                .as_object()
                .map(|fields| {
                    fields
                        .keys()
                        .filter(|k| *k != "source" && *k != "detail-type")
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let description = template
                .resource(&rule.logical_id)
                .and_then(|r| r.properties.get("Description"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            for target in &rule.targets {
                let logical = target.logical_id.as_deref();
                let queue = logical.and_then(|id| queues.iter().find(|q| q.logical_id == id));
                let consumer = match (queue, logical) {
                    (Some(q), _) => consumer_of.get(&q.logical_id).cloned(),
                    // A function as the target: it is its own consumer.
                    (None, Some(id)) => {
                        functions
                            .iter()
                            .find(|f| f.logical_id == id)
                            .map(|f| Consumer {
                                function: f.logical_id.clone(),
                                binary: f.binary.clone(),
                            })
                    }
                    (None, None) => None,
                };
                let subscription = Subscription {
                    rule: rule.logical_id.clone(),
                    description: description.clone(),
                    pattern: rule.pattern.clone(),
                    narrowed_by: narrowed_by.clone(),
                    target: target.id.clone(),
                    queue: queue.map(|q| q.logical_id.clone()),
                    dead_letter_queue: queue
                        .and_then(|q| q.redrive.as_ref())
                        .map(|r| r.dead_letter_queue.clone()),
                    consumer,
                };
                for &index in &matched {
                    events[index].subscriptions.push(subscription.clone());
                }
            }
        }

        Ok(Self {
            bus: bus.logical_id.clone(),
            events,
        })
    }

    /// One detail type by name.
    pub fn event(&self, detail_type: &str) -> Option<&EventType> {
        self.events.iter().find(|e| e.detail_type == detail_type)
    }
}

/// Indexes of the `events` a rule's pattern selects by `source` and `detail-type`, decided by
/// the EventBridge pattern engine on those two fields alone: fields the pattern also tests
/// (`detail`, ...) narrow a subscription, they do not make it another event's.
fn matching_events(
    pattern: &Value,
    events: &[EventType],
) -> Result<Vec<usize>, quamina::QuaminaError> {
    let routing: serde_json::Map<String, Value> = pattern
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(k, _)| *k == "source" || *k == "detail-type")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if routing.is_empty() {
        // No condition on either field: every event of the bus.
        return Ok((0..events.len()).collect());
    }
    let mut engine: Quamina<usize> = Quamina::new();
    engine.add_pattern(0, &Value::Object(routing).to_string())?;
    let mut matched = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let probe = serde_json::json!({ "source": event.source, "detail-type": event.detail_type });
        if engine.has_matches(probe.to_string().as_bytes())? {
            matched.push(index);
        }
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_of(rules: &str) -> Result<Catalog, CatalogError> {
        let yaml = format!(
            r#"
Resources:
  Bus: {{ Type: AWS::Events::EventBus, Properties: {{ Name: b }} }}
  DLQ: {{ Type: AWS::SQS::Queue }}
  Q:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {{ deadLetterTargetArn: !GetAtt DLQ.Arn, maxReceiveCount: 5 }}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {{ BuildProperties: {{ Binary: orders-events }} }}
    Properties:
      Events:
        Queue: {{ Type: SQS, Properties: {{ Queue: !GetAtt Q.Arn }} }}
{rules}"#
        );
        Catalog::from_template(&Template::from_yaml(&yaml, "t.yaml")?)
    }

    fn subscribed(catalog: &Catalog) -> Vec<(&str, &str)> {
        catalog
            .events
            .iter()
            .flat_map(|e| {
                e.subscriptions
                    .iter()
                    .map(|s| (e.detail_type, s.rule.as_str()))
            })
            .collect()
    }

    #[test]
    fn a_rule_subscribes_the_queue_consumer_to_every_detail_type_it_matches() {
        let catalog = catalog_of(
            r#"
  Picked:
    Type: AWS::Events::Rule
    Properties:
      Description: Picked and shipped.
      EventBusName: !Ref Bus
      EventPattern: { source: [com.fulfillment], detail-type: [{ prefix: Order }] }
      Targets: [{ Id: t, Arn: !GetAtt Q.Arn }]
"#,
        )
        .unwrap();
        assert_eq!(
            subscribed(&catalog),
            [("OrderPicked", "Picked"), ("OrderShipped", "Picked")]
        );
        let s = &catalog.event("OrderPicked").unwrap().subscriptions[0];
        assert_eq!(s.queue.as_deref(), Some("Q"));
        assert_eq!(s.dead_letter_queue.as_deref(), Some("DLQ"));
        assert_eq!(s.description.as_deref(), Some("Picked and shipped."));
        assert_eq!(
            s.consumer,
            Some(Consumer {
                function: "Fn".into(),
                binary: "orders-events".into()
            })
        );
        assert!(s.narrowed_by.is_empty());
    }

    #[test]
    fn a_pattern_on_the_detail_narrows_the_subscription_without_hiding_it() {
        let catalog = catalog_of(
            r#"
  UpsOnly:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: { detail-type: [OrderShipped], detail: { data: { carrier: [UPS] } } }
      Targets: [{ Id: t, Arn: !GetAtt Q.Arn }]
"#,
        )
        .unwrap();
        assert_eq!(subscribed(&catalog), [("OrderShipped", "UpsOnly")]);
        assert_eq!(
            catalog.event("OrderShipped").unwrap().subscriptions[0].narrowed_by,
            ["detail"]
        );
    }

    #[test]
    fn a_rule_that_matches_nothing_of_the_contract_is_an_error_naming_it() {
        let err = catalog_of(
            r#"
  Typo:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: { source: [com.orders], detail-type: [OrderCreatd] }
      Targets: [{ Id: t, Arn: !GetAtt Q.Arn }]
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("t.yaml") && err.contains("Typo.Properties.EventPattern"),
            "{err}"
        );
    }

    #[test]
    fn rules_of_another_bus_are_not_subscriptions() {
        let catalog = catalog_of(
            r#"
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: { source: [aws.s3] }
      Targets: [{ Id: t, Arn: !GetAtt Q.Arn }]
"#,
        )
        .unwrap();
        assert!(subscribed(&catalog).is_empty());
    }

    #[test]
    fn summaries_drop_the_route_prefix_of_the_contract_docs() {
        let schema = contracts::schema::detail_schema::<OrderCreated>();
        assert_eq!(summary_of(&schema), "An order was accepted.");
    }

    #[test]
    fn a_template_without_exactly_one_bus_is_refused() {
        let err = Catalog::from_template(
            &Template::from_yaml("Resources: { Q: { Type: AWS::SQS::Queue } }", "n.yaml").unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("exactly one AWS::Events::EventBus, found 0"),
            "{err}"
        );
    }
}
