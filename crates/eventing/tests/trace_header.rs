//! The EventBridge publisher reads the invocation's X-Ray header (`_X_AMZN_TRACE_ID`) when it
//! publishes and sets it on every entry that carries none of its own.
//!
//! The process environment cannot be changed safely from a running (multi-threaded) test, so
//! the test re-runs itself in a child process with the variable set, the way Lambda sets it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::{Arc, Mutex};

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
use eventing::{EventBridgePublisher, EventPublisher, OutgoingEvent};

const TRACE_ENV: &str = "_X_AMZN_TRACE_ID";
const INVOCATION_TRACE: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const TEST_NAME: &str = "the_invocations_trace_header_is_set_on_entries_without_their_own";

fn event(key: &str) -> OutgoingEvent {
    OutgoingEvent {
        source: "com.orders".into(),
        detail_type: "OrderCreated".into(),
        detail: "{}".into(),
        idempotency_key: key.into(),
        trace_header: None,
    }
}

/// Publishes through a mocked client; returns each entry's trace header, in order.
async fn published_trace_headers(events: &[OutgoingEvent]) -> Vec<Option<String>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let rule = mock!(Client::put_events).then_compute_output(move |input: &PutEventsInput| {
        let mut out = PutEventsOutput::builder().failed_entry_count(0);
        for entry in input.entries() {
            recorder
                .lock()
                .unwrap()
                .push(entry.trace_header().map(str::to_owned));
            out = out.entries(PutEventsResultEntry::builder().event_id("e").build());
        }
        out.build()
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
    EventBridgePublisher::new(client, "bus")
        .publish(events)
        .await
        .unwrap();
    seen.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invocations_trace_header_is_set_on_entries_without_their_own() {
    if std::env::var(TRACE_ENV).as_deref() == Ok(INVOCATION_TRACE) {
        // Child: the variable is set as Lambda sets it.
        let own = event("own").with_trace_header(Some("Root=1-own".into()));
        let headers = published_trace_headers(&[event("plain"), own]).await;
        assert_eq!(
            headers,
            [
                Some(INVOCATION_TRACE.to_owned()),
                Some("Root=1-own".to_owned())
            ]
        );
        return;
    }

    // Parent: without the variable no header is invented...
    if std::env::var_os(TRACE_ENV).is_none() {
        assert_eq!(published_trace_headers(&[event("plain")]).await, [None]);
    }
    // ...and with it, the child's assertions must pass.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(TRACE_ENV, INVOCATION_TRACE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
