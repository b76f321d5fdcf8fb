//! Someone gets paged, and can see why: alarms, the alarm topic, the metrics contract, the
//! dashboard and the HTTP API's access logs.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use testkit::{Stack, Template};

use crate::support::{Deployed, fails, get_att, logical_of, mutated_yaml, reference, strings};

/// An alarm of the expanded template.
struct Alarm<'a> {
    id: &'a str,
    properties: &'a Value,
}

impl Alarm<'_> {
    /// The value of one of its dimensions (a single-metric alarm).
    fn dimension(&self, name: &str) -> Option<&Value> {
        self.properties["Dimensions"]
            .as_array()?
            .iter()
            .find(|d| d["Name"] == name)
            .map(|d| &d["Value"])
    }

    fn is(&self, namespace: &str, metric: &str) -> bool {
        self.properties["Namespace"] == namespace && self.properties["MetricName"] == metric
    }
}

fn alarms(t: &Template) -> Vec<Alarm<'_>> {
    t.resources_of("AWS::CloudWatch::Alarm")
        .map(|r| Alarm {
            id: &r.logical_id,
            properties: &r.properties,
        })
        .collect()
}

/// Every alarm of a template notifies the alarm topic when it fires and when it clears.
fn check_every_alarm_notifies(t: &Template) {
    let alarms = alarms(t);
    assert!(!alarms.is_empty());
    for alarm in alarms {
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(
                alarm.properties[actions],
                json!([reference("AlarmTopic")]),
                "{}: {actions}",
                alarm.id
            );
        }
    }
}

#[test]
fn every_alarm_notifies_the_alarm_topic() {
    check_every_alarm_notifies(&testkit::expanded_template());
    let silent = Deployed::from_yaml(&mutated_yaml("      AlarmActions: [!Ref AlarmTopic]\n", ""));
    assert!(
        fails(check_every_alarm_notifies, &silent.expanded),
        "an alarm that pages no one"
    );
}

/// Every queue a function consumes has an alarm on the age of its oldest message, and every
/// dead-letter queue one on its depth and one on its age.
fn check_queue_alarms(deployed: &Deployed) {
    let t = &deployed.expanded;
    let alarms = alarms(t);
    let on_queue = |metric: &str, queue: &str| {
        alarms
            .iter()
            .filter(|a| a.is("AWS/SQS", metric))
            .filter(|a| a.dimension("QueueName") == Some(&get_att(queue, "QueueName")))
            .count()
    };
    let mut consumer_queues = 0;
    for f in deployed.functions() {
        for queue in &f.queues {
            consumer_queues += 1;
            assert_eq!(
                on_queue("ApproximateAgeOfOldestMessage", queue),
                1,
                "{queue} (feeds {}): age of its oldest message",
                f.binary
            );
        }
    }
    assert_eq!(consumer_queues, 3);
    let dead_letter_queues: BTreeSet<String> = t
        .resources_of("AWS::SQS::Queue")
        .filter_map(|q| logical_of(&q.properties["RedrivePolicy"]["deadLetterTargetArn"]))
        .chain(deployed.functions().into_iter().flat_map(|f| f.on_failure))
        .chain(t.resources_of("AWS::Events::Rule").flat_map(|r| {
            r.properties["Targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|target| logical_of(&target["DeadLetterConfig"]["Arn"]))
        }))
        .collect();
    assert_eq!(dead_letter_queues.len(), 6, "{dead_letter_queues:?}");
    for dlq in &dead_letter_queues {
        for metric in [
            "ApproximateNumberOfMessagesVisible",
            "ApproximateAgeOfOldestMessage",
        ] {
            assert_eq!(on_queue(metric, dlq), 1, "{dlq}: {metric}");
        }
    }
}

#[test]
fn every_consumer_queue_has_an_age_alarm_and_every_dead_letter_queue_depth_and_age() {
    check_queue_alarms(&Deployed::product());
    let unwatched = Deployed::from_yaml(&mutated_yaml(
        "Value: !GetAtt FulfillmentEventsQueue.QueueName",
        "Value: !GetAtt FulfillmentEventsDLQ.QueueName",
    ));
    assert!(
        fails(check_queue_alarms, &unwatched),
        "a consumer queue without an age alarm"
    );
}

/// The metrics contract: one namespace for every function, one `service` dimension per function,
/// its binary's name.
fn namespace(t: &Template) -> Value {
    t.root()
        .pointer("/Globals/Function/Environment/Variables/POWERTOOLS_METRICS_NAMESPACE")
        .cloned()
        .unwrap()
}

#[test]
fn every_function_names_its_metrics_by_the_contract() {
    let deployed = Deployed::product();
    assert_eq!(namespace(&deployed.source), "Commerce");
    for f in deployed.functions() {
        assert_eq!(
            f.environment.get("POWERTOOLS_SERVICE_NAME"),
            Some(&json!(f.binary)),
            "{}",
            f.logical_id
        );
        assert_eq!(
            f.environment.get("POWERTOOLS_METRICS_NAMESPACE"),
            Some(&namespace(&deployed.source)),
            "{}",
            f.logical_id
        );
    }
}

/// Every function has error and throttle alarms; every consumer one on its per-record failures,
/// which Lambda's `Errors` never counts.
fn check_function_alarms(deployed: &Deployed) {
    let alarms = alarms(&deployed.expanded);
    let ns = namespace(&deployed.source);
    for f in deployed.functions() {
        for metric in ["Errors", "Throttles"] {
            let n = alarms
                .iter()
                .filter(|a| a.is("AWS/Lambda", metric))
                .filter(|a| a.dimension("FunctionName") == Some(&reference(&f.logical_id)))
                .count();
            assert_eq!(n, 1, "{}: {metric}", f.binary);
        }
        let record_failures = alarms
            .iter()
            .filter(|a| a.properties["Namespace"] == ns)
            .filter(|a| a.properties["MetricName"] == "BatchItemFailures")
            .filter(|a| a.dimension("service") == f.environment.get("POWERTOOLS_SERVICE_NAME"))
            .count();
        assert_eq!(
            record_failures,
            usize::from(f.takes_batches()),
            "{}: per-record failures alarm",
            f.binary
        );
    }
}

#[test]
fn every_function_has_error_and_throttle_alarms_and_every_consumer_a_record_failure_alarm() {
    check_function_alarms(&Deployed::product());
    let other_service = Deployed::from_yaml(&mutated_yaml(
        "Dimensions: [{ Name: service, Value: support-events }]",
        "Dimensions: [{ Name: service, Value: support-api }]",
    ));
    assert!(
        fails(check_function_alarms, &other_service),
        "a consumer's failures alarm on another service"
    );
}

#[test]
fn every_rule_has_delivery_alarms_named_as_its_metrics_are() {
    let deployed = Deployed::product();
    let t = &deployed.expanded;
    let stack = Stack::new("s");
    let alarms = alarms(t);
    for rule in t.resources_of("AWS::Events::Rule") {
        let name = t.physical_name(&rule.logical_id, &stack).unwrap();
        for metric in ["FailedInvocations", "InvocationsSentToDlq"] {
            let n = alarms
                .iter()
                .filter(|a| a.is("AWS/Events", metric))
                .filter(|a| a.dimension("EventBusName") == Some(&get_att("EventBus", "Name")))
                .filter(|a| {
                    a.dimension("RuleName")
                        .and_then(|v| t.resolve_string(v, &stack, a.id).ok())
                        == Some(name.clone())
                })
                .count();
            assert_eq!(n, 1, "{}: {metric}", rule.logical_id);
        }
    }
}

#[test]
fn every_table_has_a_throttle_alarm_and_the_http_api_error_and_latency_alarms() {
    let t = testkit::expanded_template();
    let alarms = alarms(&t);
    for table in t.resources_of("AWS::DynamoDB::Table") {
        let watched: BTreeSet<String> = alarms
            .iter()
            .flat_map(|a| a.properties["Metrics"].as_array().into_iter().flatten())
            .filter(|m| m["MetricStat"]["Metric"]["Namespace"] == "AWS/DynamoDB")
            .filter(|m| {
                m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == reference(&table.logical_id)
            })
            .filter_map(|m| m["MetricStat"]["Metric"]["MetricName"].as_str())
            .map(str::to_owned)
            .collect();
        assert_eq!(
            watched,
            BTreeSet::from(["ReadThrottleEvents".into(), "WriteThrottleEvents".into()]),
            "{}",
            table.logical_id
        );
    }
    for metric in ["5xx", "Latency"] {
        let n = alarms
            .iter()
            .filter(|a| a.is("AWS/ApiGateway", metric))
            .filter(|a| a.dimension("ApiId") == Some(&reference("HttpApi")))
            .count();
        assert_eq!(n, 1, "HTTP API {metric}");
    }
}

#[test]
fn the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() {
    let t = testkit::expanded_template();
    let topic = t.resource("AlarmTopic").unwrap();
    assert_eq!(topic.kind, "AWS::SNS::Topic");
    let key_id = logical_of(&topic.properties["KmsMasterKeyId"]).unwrap();
    let key = t.resource(&key_id).unwrap();
    assert_eq!(
        key.kind, "AWS::KMS::Key",
        "a customer managed key of the stack"
    );
    assert_eq!(key.properties["EnableKeyRotation"], true);
    let cloudwatch: Vec<&Value> = key.properties["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .collect();
    assert_eq!(cloudwatch.len(), 1);
    let mut actions = strings(&cloudwatch[0]["Action"]);
    actions.sort();
    assert_eq!(actions, ["kms:Decrypt", "kms:GenerateDataKey*"]);
    assert_eq!(
        cloudwatch[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        reference("AWS::AccountId"),
        "only this account's alarms"
    );
    let subscription = t.resource("AlarmEmailSubscription").unwrap();
    assert_eq!(subscription.raw["Condition"], "HasAlarmEmail");
    assert_eq!(subscription.properties["TopicArn"], reference("AlarmTopic"));
    assert_eq!(
        t.root()["Parameters"]["AlarmEmail"]["Default"],
        "",
        "optional"
    );
}

#[test]
fn the_dashboard_shows_every_service_queue_and_dead_letter_queue() {
    let deployed = Deployed::product();
    let t = &deployed.expanded;
    let stack = Stack::new("s");
    let dashboard = t.resources_of("AWS::CloudWatch::Dashboard").next().unwrap();
    let body = t
        .resolve_string(&dashboard.properties["DashboardBody"], &stack, "Dashboard")
        .unwrap();
    let body: Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    let metrics: Vec<Vec<String>> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().into_iter().flatten())
        .map(strings)
        .collect();
    let shows = |wanted: &[&str]| {
        metrics
            .iter()
            .any(|m| m.starts_with(&wanted.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()))
    };
    let ns = namespace(&deployed.source);
    let ns = ns.as_str().unwrap();
    for f in deployed.functions() {
        let name = t.physical_name(&f.logical_id, &stack).unwrap();
        for metric in ["Invocations", "Errors", "Throttles"] {
            assert!(
                shows(&["AWS/Lambda", metric, "FunctionName", &name]),
                "{}: {metric}",
                f.binary
            );
        }
        let outcomes = if f.uses_idempotency() {
            &[
                "IdempotencyFresh",
                "IdempotencyReplayed",
                "IdempotencyInProgress",
                "IdempotencyClaimLost",
                "IdempotencyValidationFailed",
                "IdempotencyUnreadable",
            ][..]
        } else {
            &[][..]
        };
        for outcome in outcomes {
            assert!(
                shows(&[ns, outcome, "service", &f.binary]),
                "{}: {outcome}",
                f.binary
            );
        }
        if f.takes_batches() {
            assert!(
                shows(&[ns, "BatchItemFailures", "service", &f.binary]),
                "{}",
                f.binary
            );
        }
        for queue in &f.queues {
            let queue_name = t.physical_name(queue, &stack).unwrap();
            assert!(
                shows(&[
                    "AWS/SQS",
                    "ApproximateAgeOfOldestMessage",
                    "QueueName",
                    &queue_name
                ]),
                "{queue}"
            );
        }
    }
    for q in t.resources_of("AWS::SQS::Queue") {
        if q.properties.get("RedriveAllowPolicy").is_some() {
            let name = t.physical_name(&q.logical_id, &stack).unwrap();
            assert!(
                shows(&[
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    &name
                ]),
                "{}",
                q.logical_id
            );
        }
    }
}

#[test]
fn access_logs_say_who_called_what_and_how_it_went() {
    let t = testkit::expanded_template();
    let stage = t
        .resources_of("AWS::ApiGatewayV2::Stage")
        .next()
        .expect("SAM creates the HTTP API's stage");
    let settings = &stage.properties["AccessLogSettings"];
    assert_eq!(
        settings["DestinationArn"],
        get_att("HttpApiAccessLogGroup", "Arn")
    );
    let format: Value = serde_json::from_str(settings["Format"].as_str().unwrap())
        .expect("access log lines are JSON");
    let variables: BTreeSet<&str> = format
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_str)
        .collect();
    for wanted in [
        "$context.identity.sourceIp",
        "$context.httpMethod",
        "$context.path",
        "$context.identity.userAgent",
        "$context.responseLatency",
        "$context.integrationErrorMessage",
        "$context.status",
        "$context.requestId",
    ] {
        assert!(variables.contains(wanted), "access logs lack {wanted}");
    }
}
