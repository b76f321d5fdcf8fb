//! The checked-in catalog: `asyncapi.yaml` and the Schema Registry block of `template.yaml` are
//! what the generator writes today, cover the whole contract and every rule of the template,
//! and their schemas accept the event fixtures and refuse the bad ones.
//!
//! The checks read the checked-in files and the template directly, not the catalog model, so a
//! fault in the model cannot hide itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use catalog::{
    ASYNCAPI_PATH, Catalog, EXAMPLES_DIR, REGENERATE, TEMPLATE_PATH, asyncapi, registry,
};
use sam_template::{Stack, Template};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn template() -> Template {
    Template::from_yaml(&read(TEMPLATE_PATH), TEMPLATE_PATH).unwrap()
}

/// The checked-in AsyncAPI document as JSON.
fn document() -> Value {
    serde_norway::from_str(&read(ASYNCAPI_PATH)).unwrap()
}

fn json_file(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
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

/// Every fixture of `dir` by file name, with the EventBridge events of `events/sqs` bodies.
fn events_in(dir: &str) -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for file in files {
        let name = format!("{dir}/{}", file.file_name().unwrap().to_string_lossy());
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        match value.get("Records").and_then(Value::as_array) {
            Some(records) => {
                for (i, record) in records.iter().enumerate() {
                    let body = record["body"].as_str().unwrap();
                    if let Ok(event) = serde_json::from_str::<Value>(body) {
                        events.push((format!("{name} record {i}"), event));
                    }
                }
            }
            None => events.push((name, value)),
        }
    }
    events
}

#[test]
fn the_checked_in_catalog_is_what_the_generator_writes() {
    let template_text = read(TEMPLATE_PATH);
    let mut catalog = Catalog::from_template(&template()).unwrap();
    catalog.load_examples(&root(), EXAMPLES_DIR).unwrap();
    let stale_asyncapi = asyncapi::document(&catalog).unwrap() != read(ASYNCAPI_PATH);
    let block = registry::block(&catalog).unwrap();
    let stale_template =
        registry::splice(&template_text, TEMPLATE_PATH, &block).unwrap() != template_text;
    assert!(
        !stale_asyncapi && !stale_template,
        "stale: {}{}; run `{REGENERATE}` and review the diff",
        if stale_asyncapi { ASYNCAPI_PATH } else { "" },
        if stale_template {
            " template.yaml (Schema Registry block)"
        } else {
            ""
        },
    );
}

#[test]
fn every_detail_type_of_the_contract_has_a_channel_a_producer_and_an_example() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let channels = doc["channels"].as_object().unwrap();
    assert_eq!(
        channels.keys().collect::<BTreeSet<_>>(),
        contracts::detail_type::ALL
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect(),
        "one channel per detail type, no other"
    );
    let operations = doc["operations"].as_object().unwrap();
    for (source, detail_type) in contracts::ROUTES {
        let channel = &channels[detail_type];
        assert_eq!(channel["address"], detail_type);
        let message_ref = channel["messages"][detail_type]["$ref"].as_str().unwrap();
        let message = doc.pointer(message_ref.trim_start_matches('#')).unwrap();

        let producers: Vec<_> = operations
            .values()
            .filter(|op| {
                op["action"] == "send"
                    && op["channel"]["$ref"] == format!("#/channels/{detail_type}")
            })
            .collect();
        assert_eq!(producers.len(), 1, "{detail_type}: one producer");
        assert_eq!(producers[0]["x-eventbridge-source"], source);

        let payload_ref = message["payload"]["$ref"].as_str().unwrap();
        let payload = doc.pointer(payload_ref.trim_start_matches('#')).unwrap();
        assert_eq!(payload["properties"]["source"]["const"], source);
        assert_eq!(payload["properties"]["detail-type"]["const"], detail_type);

        let examples = message["examples"].as_array().unwrap();
        assert!(!examples.is_empty(), "{detail_type}: no example");
        for example in examples {
            assert_eq!(example["payload"]["detail-type"], detail_type);
            assert_eq!(example["payload"]["source"], source);
            let file = example["summary"].as_str().unwrap();
            assert_eq!(
                example["payload"],
                json_file(file),
                "{file} differs from its example"
            );
        }
    }
}

#[test]
fn every_rule_of_the_template_is_a_subscription_and_every_subscription_a_rule() {
    let t = template();
    let stack = Stack::new("s");
    let consumers: BTreeMap<String, String> = t
        .functions()
        .into_iter()
        .flat_map(|f| {
            f.sqs_sources
                .into_iter()
                .map(move |q| (q, f.logical_id.clone()))
        })
        .collect();
    let doc = document();
    let receives: Vec<&Value> = doc["operations"]
        .as_object()
        .unwrap()
        .values()
        .filter(|op| op["action"] == "receive")
        .collect();
    let mut expected = BTreeSet::new();
    for rule in t.rules(&stack).unwrap() {
        for target in &rule.targets {
            for detail_type in strings(&rule.pattern["detail-type"]) {
                let channel = format!("#/channels/{detail_type}");
                let queue = target.logical_id.clone().unwrap();
                let found = receives.iter().any(|op| {
                    op["channel"]["$ref"] == channel.as_str()
                        && op["x-eventbridge-rule"] == rule.logical_id.as_str()
                        && op["x-eventbridge-target"] == target.id.as_str()
                        && op["x-eventbridge-pattern"] == rule.pattern
                        && op["x-sqs-queue"] == queue.as_str()
                        && op["x-consumer-function"] == consumers[&queue].as_str()
                });
                assert!(
                    found,
                    "{} ({detail_type} -> {queue}) has no receive operation in {ASYNCAPI_PATH}",
                    rule.logical_id
                );
                expected.insert((rule.logical_id.clone(), detail_type));
            }
        }
    }
    let documented: BTreeSet<(String, String)> = receives
        .iter()
        .map(|op| {
            let channel = op["channel"]["$ref"].as_str().unwrap();
            (
                op["x-eventbridge-rule"].as_str().unwrap().to_owned(),
                channel.trim_start_matches("#/channels/").to_owned(),
            )
        })
        .collect();
    assert_eq!(documented, expected, "receive operations without a rule");
}

/// A draft-7 validator for a schema of the AsyncAPI document's `components.schemas`.
fn payload_validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"].clone(),
    });
    jsonschema::draft7::new(&schema).unwrap()
}

#[test]
fn the_fixtures_match_the_asyncapi_payloads_and_bad_ones_do_not() {
    let doc = document();
    let mut checked = 0;
    for (name, event) in events_in("events/eventbridge")
        .into_iter()
        .chain(events_in("events/sqs"))
    {
        let dt = event["detail-type"].as_str().unwrap();
        let validator = payload_validator(&doc, &format!("{dt}Event"));
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        checked += 1;
    }
    assert!(checked >= 2 * contracts::detail_type::ALL.len());
    for bad in [
        "eventbridge-wrong-field-types.json",
        "eventbridge-missing-idempotency-key.json",
    ] {
        let event = json_file(&format!("events/bad/{bad}"));
        let dt = event["detail-type"].as_str().unwrap();
        assert!(
            !payload_validator(&doc, &format!("{dt}Event")).is_valid(&event),
            "events/bad/{bad} passes its payload schema"
        );
    }
}

/// The Schema Registry resources of the template, by schema name.
fn registry_schemas(t: &Template) -> BTreeMap<String, Value> {
    t.resources_of("AWS::EventSchemas::Schema")
        .map(|r| {
            let p = &r.properties;
            assert_eq!(p["Type"], "JSONSchemaDraft4", "{}", r.logical_id);
            assert_eq!(
                p["RegistryName"],
                json!({ "Fn::GetAtt": [registry::REGISTRY, "RegistryName"] }),
                "{}",
                r.logical_id
            );
            let content: Value = serde_json::from_str(p["Content"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{}.Content is not JSON: {e}", r.logical_id));
            (p["SchemaName"].as_str().unwrap().to_owned(), content)
        })
        .collect()
}

#[test]
fn the_registry_holds_the_checked_in_json_schema_of_every_detail_type() {
    let t = template();
    assert_eq!(t.resources_of("AWS::EventSchemas::Registry").count(), 1);
    let schemas = registry_schemas(&t);
    assert_eq!(schemas.len(), contracts::ROUTES.len());
    for (source, detail_type) in contracts::ROUTES {
        let name = registry::schema_name(source, detail_type);
        let content = schemas
            .get(&name)
            .unwrap_or_else(|| panic!("no registry schema {name}"));
        let checked_in = json_file(&format!("crates/contracts/schemas/{detail_type}.json"));
        assert_eq!(
            content,
            &registry::content(source, detail_type, &checked_in).unwrap(),
            "{name} differs from crates/contracts/schemas/{detail_type}.json"
        );
        // Every field of the checked-in schema is in the registry's (nothing lost converting).
        let detail = &content["definitions"][format!("{detail_type}Detail")];
        for (def_name, def) in checked_in["$defs"].as_object().unwrap() {
            let converted = &content["definitions"][def_name];
            let fields = |v: &Value| {
                v["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect::<Vec<_>>())
            };
            assert_eq!(fields(converted), fields(def), "{name}: {def_name}");
            assert_eq!(converted["required"], def["required"], "{name}: {def_name}");
        }
        assert_eq!(detail["required"], checked_in["required"]);
    }
}

#[test]
fn the_registry_schemas_are_draft_4_and_accept_the_fixtures_and_refuse_bad_ones() {
    let schemas = registry_schemas(&template());
    let by_type: BTreeMap<&str, jsonschema::Validator> = contracts::ROUTES
        .iter()
        .map(|(source, dt)| {
            let content = &schemas[&registry::schema_name(source, dt)];
            if let Err(e) = jsonschema::draft4::meta::validate(content) {
                panic!("{dt}: not a draft-4 schema: {e}");
            }
            (*dt, jsonschema::draft4::new(content).unwrap())
        })
        .collect();
    for (name, event) in events_in("events/eventbridge")
        .into_iter()
        .chain(events_in("events/sqs"))
    {
        let dt = event["detail-type"].as_str().unwrap();
        let errors: Vec<String> = by_type[dt]
            .iter_errors(&event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    let shipped = json_file("events/eventbridge/order-shipped.json");
    let mutations = [
        ("/detail/data/carrier", json!("Royal Mail")),
        ("/detail/data/items/0/unit-price", json!(12.5)),
        ("/detail/metadata/idempotency-key", json!("")),
        ("/detail-type", json!("OrderPicked")),
        ("/detail/data/shipped-at", json!("yesterday")),
    ];
    for (pointer, value) in mutations {
        let mut event = shipped.clone();
        *event.pointer_mut(pointer).unwrap() = value.clone();
        assert!(
            !by_type["OrderShipped"].is_valid(&event),
            "OrderShipped with {pointer} = {value} passes the registry schema"
        );
    }
    let mut missing = shipped.clone();
    missing["detail"]["data"]
        .as_object_mut()
        .unwrap()
        .remove("tracking-number");
    assert!(!by_type["OrderShipped"].is_valid(&missing));
    let wrong = json_file("events/bad/eventbridge-wrong-field-types.json");
    assert!(!by_type["OrderCreated"].is_valid(&wrong));
}
