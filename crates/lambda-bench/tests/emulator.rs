//! The Runtime API emulator drives a real Lambda binary (the `minimal-consumer` of this crate,
//! built on lambda_runtime) the way Lambda does: init ends at its first `/next` poll, an event
//! comes back as a response, an unparsable event as an error report, and a binary that dies
//! before polling is an init failure, not a hang.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::path::PathBuf;
use std::time::Duration;

use lambda_bench::emulator::Answer;
use lambda_bench::function::{Launch, Running};
use lambda_bench::{BenchError, events};

fn launch(binary: PathBuf) -> Launch {
    Launch {
        name: "minimal-consumer".to_owned(),
        binary,
        // Never reached: the reference consumer makes no AWS call.
        env: [(
            "AWS_ENDPOINT_URL".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        )]
        .into(),
        memory_mb: 256,
        timeout: Duration::from_secs(15),
        log_dir: None,
    }
}

fn fixture(name: &str) -> serde_json::Value {
    events::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixture_event_goes_through_a_real_binary_and_its_answer_comes_back() {
    let launch = launch(env!("CARGO_BIN_EXE_minimal-consumer").into());
    let running = Running::start(&launch, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(running.init_duration() > Duration::ZERO);
    assert!(running.peak_rss_kib().unwrap() > 0);

    let event = fixture("sqs/order-created.json").to_string();
    let invocation = running.invoke(event.clone()).await.unwrap();
    assert_eq!(
        invocation.answer.json(),
        Some(serde_json::json!({"batchItemFailures": []}))
    );
    // The same environment serves the next event (the runtime polls again).
    let second = running.invoke(event).await.unwrap();
    assert_ne!(second.request_id, invocation.request_id);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_handler_cannot_parse_is_answered_on_the_error_route() {
    let launch = launch(env!("CARGO_BIN_EXE_minimal-consumer").into());
    let running = Running::start(&launch, Duration::from_secs(30))
        .await
        .unwrap();
    let invocation = running.invoke("not json").await.unwrap();
    match invocation.answer {
        Answer::Error { body, .. } => {
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(body.get("errorType").is_some(), "{body}");
        }
        other => panic!("expected an error report, got {other:?}"),
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_that_exits_before_polling_is_an_init_failure() {
    let launch = launch(PathBuf::from("/bin/false"));
    let err = Running::start(&launch, Duration::from_secs(30))
        .await
        .err()
        .expect("/bin/false never polls");
    assert!(matches!(err, BenchError::InitFailed { .. }), "{err}");
    assert!(err.to_string().contains("exited"), "{err}");
}
