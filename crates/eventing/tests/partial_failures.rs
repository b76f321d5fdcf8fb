//! The EventBridge publisher under injected partial failures (aws-smithy-mocks answering
//! PutEvents): only failed entries are re-sent, every event is accepted exactly once, and what
//! keeps failing comes back as a typed error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::operation::put_events::{PutEventsError, PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_sdk_eventbridge::types::error::InternalException;
use aws_smithy_mocks::{MockResponse, MockResponseInterceptor, RuleMode, mock};
use eventing::{EventBridgePublisher, EventPublisher, OutgoingEvent, RetryPolicy};

/// What the fake bus saw.
#[derive(Default)]
struct Bus {
    /// Entries accepted, per idempotency key.
    accepted: HashMap<String, usize>,
    /// Entries received (accepted or not), per key.
    attempts: HashMap<String, usize>,
    /// PutEvents requests received, with their entry counts.
    requests: Vec<usize>,
}

/// How the fake bus answers an entry on its `attempt`-th arrival: `None` accepts it.
type Verdict = dyn Fn(&str, usize) -> Option<&'static str> + Send + Sync;

/// A client whose PutEvents is answered by `verdict`, entry by entry, recording into `bus`.
/// `fail_requests` whole requests fail (InternalException) before any is answered.
fn client(bus: Arc<Mutex<Bus>>, verdict: Arc<Verdict>, fail_requests: usize) -> Client {
    let failing = Arc::new(Mutex::new(fail_requests));
    let rule = mock!(Client::put_events).then_compute_response(move |input: &PutEventsInput| {
        let entries = input.entries();
        let mut bus = bus.lock().unwrap();
        bus.requests.push(entries.len());
        {
            let mut failing = failing.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return MockResponse::Error(PutEventsError::InternalException(
                    InternalException::builder().message("bus hiccup").build(),
                ));
            }
        }
        let mut out = PutEventsOutput::builder();
        let mut failed = 0;
        for entry in entries {
            let detail: serde_json::Value = serde_json::from_str(entry.detail().unwrap()).unwrap();
            let key = detail["metadata"]["idempotency-key"]
                .as_str()
                .unwrap()
                .to_owned();
            let attempt = {
                let n = bus.attempts.entry(key.clone()).or_default();
                *n += 1;
                *n
            };
            let result = match verdict(&key, attempt) {
                Some(code) => {
                    failed += 1;
                    PutEventsResultEntry::builder()
                        .error_code(code)
                        .error_message(format!("{code} on attempt {attempt}"))
                        .build()
                }
                None => {
                    *bus.accepted.entry(key.clone()).or_default() += 1;
                    PutEventsResultEntry::builder()
                        .event_id(format!("evt-{key}-{attempt}"))
                        .build()
                }
            };
            out = out.entries(result);
        }
        MockResponse::Output(out.failed_entry_count(failed).build())
    });
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&rule);
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(aws_smithy_mocks::create_mock_http_client())
        // Only our policy retries here, so attempts are counted exactly.
        .retry_config(RetryConfig::disabled())
        .interceptor(interceptor)
        .build();
    Client::from_conf(config)
}

fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    }
}

fn events(prefix: &str, n: usize) -> Vec<OutgoingEvent> {
    (0..n)
        .map(|i| {
            let key = contracts::IdempotencyKey::new(format!("{prefix}-{i:03}")).unwrap();
            let detail = contracts::Detail::new(
                contracts::Metadata::first(key, "corr", chrono::Utc::now()),
                contracts::OrderPicked {
                    order_id: format!("order-{i}"),
                    customer_id: "456".into(),
                    items: vec![],
                    warehouse_id: "WH-EU-1".into(),
                    picked_at: chrono::Utc::now(),
                },
            );
            OutgoingEvent::new(&detail).unwrap()
        })
        .collect()
}

/// Deterministic 30%: keys whose number ends in 0, 3 or 7 fail their first two attempts
/// (throttled, then an internal failure).
fn thirty_percent(key: &str, attempt: usize) -> Option<&'static str> {
    let unlucky = key.ends_with('0') || key.ends_with('3') || key.ends_with('7');
    match (unlucky, attempt) {
        (true, 1) => Some("ThrottlingException"),
        (true, 2) => Some("InternalFailure"),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_thirty_percent_of_entries_failing_at_first_every_event_is_accepted_once() {
    let bus = Arc::new(Mutex::new(Bus::default()));
    let publisher =
        EventBridgePublisher::new(client(bus.clone(), Arc::new(thirty_percent), 0), "bus")
            .with_retry(fast_retries(4));
    let events = events("k", 50);

    publisher.publish(&events).await.unwrap();

    let bus = bus.lock().unwrap();
    assert_eq!(bus.accepted.len(), 50, "every event accepted");
    assert!(
        bus.accepted.values().all(|&n| n == 1),
        "none accepted twice: {:?}",
        bus.accepted
    );
    let unlucky = events
        .iter()
        .filter(|e| thirty_percent(&e.idempotency_key, 1).is_some())
        .count();
    assert_eq!(unlucky, 15, "30% of 50");
    // Lucky entries were sent once; unlucky ones three times (two failures, then accepted).
    for event in &events {
        let expected = if thirty_percent(&event.idempotency_key, 1).is_some() {
            3
        } else {
            1
        };
        assert_eq!(
            bus.attempts[&event.idempotency_key], expected,
            "{}",
            event.idempotency_key
        );
    }
    // 50 entries in 5 requests, then the 15 failures re-batched into 2, then again 2.
    assert_eq!(bus.requests.len(), 9, "{:?}", bus.requests);
    assert_eq!(bus.requests.iter().sum::<usize>(), 50 + 15 + 15);
    assert!(bus.requests.iter().all(|&n| n <= 10));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_always_failing_entry_yields_the_typed_error_after_bounded_attempts() {
    let bus = Arc::new(Mutex::new(Bus::default()));
    let verdict: Arc<Verdict> = Arc::new(|key: &str, attempt: usize| {
        if key == "k-004" {
            Some("InternalFailure")
        } else {
            thirty_percent(key, attempt)
        }
    });
    let publisher = EventBridgePublisher::new(client(bus.clone(), verdict, 0), "bus")
        .with_retry(fast_retries(4));
    let events = events("k", 12);

    let err = publisher.publish(&events).await.unwrap_err();

    assert_eq!(err.error_type(), "PublishFailed");
    assert_eq!(err.failed.len(), 1);
    let failed = &err.failed[0];
    assert_eq!(failed.index, 4);
    assert_eq!(failed.idempotency_key, "k-004");
    assert_eq!(failed.error_code, "InternalFailure");
    assert!(failed.message.contains("attempt 4"), "{}", failed.message);
    let bus = bus.lock().unwrap();
    assert_eq!(bus.attempts["k-004"], 4, "bounded by max_attempts");
    assert_eq!(bus.accepted.get("k-004"), None);
    assert_eq!(bus.accepted.len(), 11);
    assert!(bus.accepted.values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_entry_errors_are_not_retried() {
    let bus = Arc::new(Mutex::new(Bus::default()));
    let verdict: Arc<Verdict> =
        Arc::new(|key: &str, _| (key == "k-001").then_some("NotAuthorizedForSourceException"));
    let publisher = EventBridgePublisher::new(client(bus.clone(), verdict, 0), "bus")
        .with_retry(fast_retries(4));

    let err = publisher.publish(&events("k", 3)).await.unwrap_err();

    assert_eq!(err.failed.len(), 1);
    assert_eq!(err.failed[0].index, 1);
    assert_eq!(err.failed[0].error_code, "NotAuthorizedForSourceException");
    let bus = bus.lock().unwrap();
    assert_eq!(bus.attempts["k-001"], 1);
    assert_eq!(bus.requests, [3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_request_is_resent_whole_and_then_accepted() {
    let bus = Arc::new(Mutex::new(Bus::default()));
    let publisher =
        EventBridgePublisher::new(client(bus.clone(), Arc::new(|_: &str, _| None), 1), "bus")
            .with_retry(fast_retries(3));

    publisher.publish(&events("k", 4)).await.unwrap();

    let bus = bus.lock().unwrap();
    assert_eq!(bus.requests, [4, 4], "the failed request, then its re-send");
    assert!(bus.accepted.values().all(|&n| n == 1));
    assert_eq!(bus.accepted.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_failing_on_every_attempt_reports_every_entry_with_the_service_code() {
    let bus = Arc::new(Mutex::new(Bus::default()));
    let publisher =
        EventBridgePublisher::new(client(bus.clone(), Arc::new(|_: &str, _| None), 10), "bus")
            .with_retry(fast_retries(3));

    let err = publisher.publish(&events("k", 2)).await.unwrap_err();

    let indexes: Vec<usize> = err.failed.iter().map(|f| f.index).collect();
    assert_eq!(indexes, [0, 1]);
    assert!(
        err.failed
            .iter()
            .all(|f| f.error_code == "InternalException")
    );
    assert_eq!(bus.lock().unwrap().requests.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_without_a_result_counts_as_failed_and_is_resent() {
    // A response shorter than the request: acceptance of the missing entries is unproven.
    let bus = Arc::new(Mutex::new(Bus::default()));
    let recorder = bus.clone();
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let rule = mock!(Client::put_events).then_compute_response(move |input: &PutEventsInput| {
        let mut calls = counter.lock().unwrap();
        *calls += 1;
        recorder
            .lock()
            .unwrap()
            .requests
            .push(input.entries().len());
        let answered = if *calls == 1 {
            1
        } else {
            input.entries().len()
        };
        let mut out = PutEventsOutput::builder().failed_entry_count(0);
        for i in 0..answered {
            out = out.entries(
                PutEventsResultEntry::builder()
                    .event_id(format!("e{i}"))
                    .build(),
            );
        }
        MockResponse::<_, PutEventsError>::Output(out.build())
    });
    let client = Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .retry_config(RetryConfig::disabled())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&rule),
            )
            .build(),
    );
    let publisher = EventBridgePublisher::new(client, "bus").with_retry(fast_retries(3));

    publisher.publish(&events("k", 3)).await.unwrap();

    assert_eq!(*calls.lock().unwrap(), 2);
    assert_eq!(
        bus.lock().unwrap().requests,
        [3, 2],
        "only the two unanswered entries are re-sent"
    );
}
