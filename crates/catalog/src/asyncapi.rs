//! The AsyncAPI 3.0.0 document of the catalog (`asyncapi.yaml`).
//!
//! - One channel per detail type, addressed by its `detail-type` (what rules route on), with one
//!   message: the whole EventBridge event, its `detail` the contract's schema.
//! - One `send` operation per detail type: its producer, the `source` the contract gives it.
//! - One `receive` operation per subscription (rule target) of the template: rule, pattern,
//!   queue, dead-letter queue and consuming function, as `x-` extensions tools can read and as
//!   prose the rendered docs show.
//! - `components.schemas`: each detail type's envelope (`<DetailType>Event`), its `detail`
//!   (`<DetailType>Detail`) and the named types they share, converted to AsyncAPI's schema
//!   dialect (draft 7).
//! - The examples of `events/eventbridge/`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::dialect::{self, Dialect};
use crate::yaml::{Map, Node as Yaml, from_json};
use crate::{ASYNCAPI_PATH, Catalog, CatalogError, EventType, REGENERATE, Subscription, envelope};

const SCHEMAS_AT: &str = "#/components/schemas/";

/// The document's title.
pub const TITLE: &str = "Commerce events";

/// The operation id of a detail type's producer.
pub fn send_operation_id(detail_type: &str) -> String {
    format!("send{detail_type}")
}

/// The operation id of one subscription: detail type, rule, and the target id when the rule
/// has several targets.
pub fn receive_operation_id(
    detail_type: &str,
    subscription: &Subscription,
    rule_targets: usize,
) -> String {
    if rule_targets > 1 {
        format!(
            "receive{detail_type}Via{}.{}",
            subscription.rule, subscription.target
        )
    } else {
        format!("receive{detail_type}Via{}", subscription.rule)
    }
}

fn reference(to: String) -> Yaml {
    Map::new().with("$ref", to).into()
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

/// Every schema of `components.schemas`, by name: shared definitions must be identical.
fn component_schemas(catalog: &Catalog) -> Result<BTreeMap<String, Value>, CatalogError> {
    let mut schemas: BTreeMap<String, (Value, &str)> = BTreeMap::new();
    let mut add = |name: String, schema: Value, owner: &'static str| match schemas.get(&name) {
        Some((existing, first)) if *existing != schema => Err(CatalogError::DefinitionConflict {
            name,
            first: (*first).to_owned(),
            second: owner.to_owned(),
        }),
        Some(_) => Ok(()),
        None => {
            schemas.insert(name, (schema, owner));
            Ok(())
        }
    };
    for event in &catalog.events {
        let dt = event.detail_type;
        let converted = dialect::convert(dt, &event.detail_schema, Dialect::Draft7, SCHEMAS_AT)?;
        for (name, definition) in converted.definitions {
            add(name, definition, dt)?;
        }
        add(format!("{dt}Detail"), Value::Object(converted.root), dt)?;
        let envelope = envelope::schema(
            event.named(),
            &format!("{SCHEMAS_AT}{dt}Detail"),
            Dialect::Draft7,
        );
        add(format!("{dt}Event"), Value::Object(envelope), dt)?;
    }
    Ok(schemas.into_iter().map(|(k, (v, _))| (k, v)).collect())
}

fn subscription_line(s: &Subscription) -> String {
    let mut line = format!("rule {}", code(&s.rule));
    match &s.queue {
        Some(queue) => line.push_str(&format!(" → queue {}", code(queue))),
        None => line.push_str(&format!(" → target {}", code(&s.target))),
    }
    if let Some(consumer) = &s.consumer {
        line.push_str(&format!(" → {}", code(&consumer.binary)));
    }
    if let Some(description) = &s.description {
        line.push_str(&format!(": {description}"));
    }
    line
}

fn channel(catalog: &Catalog, event: &EventType) -> Yaml {
    let dt = event.detail_type;
    let mut description = format!(
        "Events with `source` {} and `detail-type` {} on the commerce bus ({}).\n\n",
        code(event.source),
        code(dt),
        code(&catalog.bus)
    );
    if event.subscriptions.is_empty() {
        description.push_str(
            "No subscriber in this stack: another team subscribes with a rule on the bus matching \
             this `source` and `detail-type`.",
        );
    } else {
        description.push_str("Subscribers:\n");
        for s in &event.subscriptions {
            description.push_str(&format!("\n- {}", subscription_line(s)));
        }
    }
    Map::new()
        .with("address", dt)
        .with("title", dt)
        .with("summary", event.summary.as_str())
        .with("description", description)
        .with(
            "messages",
            Map::new().with(dt, reference(format!("#/components/messages/{dt}"))),
        )
        .into()
}

fn message_ref(dt: &str) -> Yaml {
    Yaml::Seq(vec![reference(format!("#/channels/{dt}/messages/{dt}"))])
}

fn send_operation(event: &EventType) -> Yaml {
    let dt = event.detail_type;
    Map::new()
        .with("action", "send")
        .with("channel", reference(format!("#/channels/{dt}")))
        .with("title", format!("{} publishes {dt}", event.source))
        .with("summary", event.summary.as_str())
        .with(
            "description",
            format!(
                "The producer puts {dt} on the bus with `source` {}. Its \
                 `detail.metadata.idempotency-key` is the same on every copy of one business \
                 fact (retries, re-processing of its cause): deduplicate on it, never on `id`.",
                code(event.source)
            ),
        )
        .with("messages", message_ref(dt))
        .with(
            "tags",
            Yaml::Seq(vec![Map::new().with("name", event.source).into()]),
        )
        .with("x-eventbridge-source", event.source)
        .into()
}

fn receive_operation(event: &EventType, s: &Subscription) -> Yaml {
    let dt = event.detail_type;
    let receiver = s
        .consumer
        .as_ref()
        .map_or_else(|| s.target.clone(), |c| c.binary.clone());
    let mut description = format!(
        "Rule {} on the bus matches `{}`",
        code(&s.rule),
        crate::yaml::sorted_json(&s.pattern)
    );
    if let Some(queue) = &s.queue {
        description.push_str(&format!(" and sends the event to queue {}", code(queue)));
        if let Some(dlq) = &s.dead_letter_queue {
            description.push_str(&format!(" (dead-letter queue {})", code(dlq)));
        }
    } else {
        description.push_str(&format!(
            " and sends the event to target {}",
            code(&s.target)
        ));
    }
    match &s.consumer {
        Some(c) => description.push_str(&format!(
            ", consumed by {} ({}).",
            code(&c.binary),
            code(&c.function)
        )),
        None => description.push('.'),
    }
    if !s.narrowed_by.is_empty() {
        description.push_str(&format!(
            " Only events that also match the pattern's {} receive it.",
            s.narrowed_by
                .iter()
                .map(|f| code(f))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut operation = Map::new()
        .with("action", "receive")
        .with("channel", reference(format!("#/channels/{dt}")))
        .with("title", format!("{receiver} receives {dt}"));
    if let Some(summary) = &s.description {
        operation.insert("summary", summary.as_str());
    }
    operation.insert("description", description);
    operation.insert("messages", message_ref(dt));
    operation.insert("x-eventbridge-rule", s.rule.as_str());
    operation.insert("x-eventbridge-pattern", from_json(&s.pattern));
    operation.insert("x-eventbridge-target", s.target.as_str());
    if let Some(queue) = &s.queue {
        operation.insert("x-sqs-queue", queue.as_str());
    }
    if let Some(dlq) = &s.dead_letter_queue {
        operation.insert("x-sqs-dead-letter-queue", dlq.as_str());
    }
    if let Some(c) = &s.consumer {
        operation.insert("x-consumer-function", c.function.as_str());
        operation.insert("x-consumer-binary", c.binary.as_str());
    }
    operation.into()
}

fn message(event: &EventType) -> Yaml {
    let dt = event.detail_type;
    let examples = event
        .examples
        .iter()
        .map(|example| {
            Map::new()
                .with("name", example.name.as_str())
                .with("summary", example.path.as_str())
                .with("payload", from_json(&example.event))
                .into()
        })
        .collect();
    Map::new()
        .with("name", dt)
        .with("title", dt)
        .with("summary", event.summary.as_str())
        .with("contentType", "application/json")
        .with(
            "correlationId",
            Map::new()
                .with(
                    "description",
                    "Shared by every event of one business flow (an order and what follows it).",
                )
                .with(
                    "location",
                    "$message.payload#/detail/metadata/correlation-id",
                ),
        )
        .with("payload", reference(format!("{SCHEMAS_AT}{dt}Event")))
        .with("examples", Yaml::Seq(examples))
        .with("x-eventbridge-source", event.source)
        .with("x-eventbridge-detail-type", dt)
        .into()
}

fn info_description(catalog: &Catalog) -> String {
    let sources: Vec<String> = {
        let mut s: Vec<&str> = catalog.events.iter().map(|e| e.source).collect();
        s.dedup();
        s.into_iter().map(code).collect()
    };
    format!(
        "Every business fact the commerce backend publishes on its EventBridge bus \
         (`{bus}` in template.yaml, named `<stack>-commerce`; the stack's output \
         `EventBusName`), who publishes it and who consumes it. Producers: {sources}.

Each event is AWS's envelope around a `detail` of two parts: `metadata` \
(`idempotency-key`, `event-id`, `schema-version`, `correlation-id`, `causation-id`, \
`occurred-at`) and `data`, the full state of the fact, so a consumer never calls the producer \
back. Field names are kebab-case, money is a decimal string, times are RFC 3339 UTC.

- Subscribe with a rule on the bus matching `source` and `detail-type`; the operations below \
show the rules this stack has.
- Deduplicate on `detail.metadata.idempotency-key`: it is the same on every copy of one \
business fact; the envelope `id` is not.
- Events can arrive out of order and more than once.
- Evolution is additive within a detail type (new optional fields only): ignore fields you do \
not know. A breaking change gets a new detail type.
- The same schemas are in the stack's EventBridge Schema Registry (`<stack>-commerce`), \
named `<source>@<detail-type>` (JSON Schema draft 4), for code bindings.

Generated by `{REGENERATE}` from the contract (crates/contracts) and template.yaml.",
        bus = catalog.bus,
        sources = sources.join(", "),
    )
}

/// The AsyncAPI document of `catalog`, as the YAML text checked in at [`ASYNCAPI_PATH`].
pub fn document(catalog: &Catalog) -> Result<String, CatalogError> {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for event in &catalog.events {
        let dt = event.detail_type;
        channels.insert(dt, channel(catalog, event));
        operations.insert(&send_operation_id(dt), send_operation(event));
        for s in &event.subscriptions {
            let targets = event
                .subscriptions
                .iter()
                .filter(|other| other.rule == s.rule)
                .count();
            operations.insert(
                &receive_operation_id(dt, s, targets),
                receive_operation(event, s),
            );
        }
        messages.insert(dt, message(event));
    }
    let mut schemas = Map::new();
    for (name, schema) in component_schemas(catalog)? {
        schemas.insert(&name, from_json(&schema));
    }
    let mut tags: Vec<&str> = catalog.events.iter().map(|e| e.source).collect();
    tags.dedup();
    let document = Map::new()
        .with("asyncapi", "3.0.0")
        .with(
            "info",
            Map::new()
                .with("title", TITLE)
                .with("version", contracts::SCHEMA_VERSION)
                .with("description", info_description(catalog))
                .with(
                    "tags",
                    Yaml::Seq(
                        tags.into_iter()
                            .map(|t| {
                                Map::new()
                                    .with("name", t)
                                    .with("description", format!("Published with `source` {t}."))
                                    .into()
                            })
                            .collect(),
                    ),
                ),
        )
        .with("defaultContentType", "application/json")
        .with("channels", channels)
        .with("operations", operations)
        .with(
            "components",
            Map::new()
                .with("messages", messages)
                .with("schemas", schemas),
        );
    let body = crate::yaml::to_string(&document);
    Ok(format!(
        "# {ASYNCAPI_PATH}: generated by `{REGENERATE}` from crates/contracts and template.yaml.\n\
         # Do not edit: change the contract or the template and regenerate (a test fails when stale).\n\
         {body}"
    ))
}
