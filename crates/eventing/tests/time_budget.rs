//! Issue #5, retries outlive the invocation: one time budget per invocation. Every scenario runs
//! on Tokio's paused clock, which only moves when every task waits on a timer, so what the
//! answers say does not depend on the machine's speed: a batch whose handler, publish or
//! completion hangs is still answered before the budget ends, the hung records fail alone with
//! `DeadlineExceeded` and keep their claims (they expire at the invocation's deadline), and the
//! EventBridge publisher's retries stop at the budget instead of after their last attempt.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
use common::{FulfillmentLike, Script, batch, created, envelope};
use eventing::{
    BatchReport, Consumer, EventBridgePublisher, EventPublisher, FailedEntry, InMemoryPublisher,
    MIN_ATTEMPT_TIME, OutgoingEvent, PublishError, RecordOutcome, RetryPolicy,
};
use idempotency::{
    ClaimResult, Clock, FencedWrite, Idempotency, IdempotencyConfig, IdempotencyStore,
    InMemoryStore, Record, RecordState, Status, StoreError, SystemClock, TableLayout,
};
use platform::budget::{Budget, REPORTING_MARGIN};
use tokio::time::Instant;

/// Lambda's remaining time when the batch starts: the template's 15 s function timeout.
const REMAINING: Duration = Duration::from_secs(15);

const DEADLINE_EXCEEDED: RecordOutcome = RecordOutcome::Failed("DeadlineExceeded");

/// Three `OrderCreated` records, `m-0`..`m-2`, for orders `order-<tag>-0`..
fn three(tag: &str) -> aws_lambda_events::sqs::SqsEvent {
    let bodies: Vec<(String, String)> = (0..3)
        .map(|i| {
            let detail = created(&format!("{tag}-{i}"), &format!("order-{tag}-{i}"));
            (format!("m-{i}"), envelope(&detail).to_string())
        })
        .collect();
    let borrowed: Vec<(&str, String)> = bodies
        .iter()
        .map(|(id, body)| (id.as_str(), body.clone()))
        .collect();
    batch(&borrowed)
}

fn outcomes(report: &BatchReport) -> Vec<RecordOutcome> {
    report.records.iter().map(|r| r.outcome).collect()
}

/// The stored record of `report`'s record `index`.
fn record_of(memory: &InMemoryStore, report: &BatchReport, index: usize) -> Record {
    let hash = report.records[index].key_hash.clone().unwrap();
    memory
        .records()
        .into_iter()
        .find(|r| r.id.ends_with(&hash))
        .expect("the record's claim is stored")
}

/// Processes `batch` with `REMAINING` left and checks it was answered within the budget.
async fn process_in_time(
    consumer: &Consumer,
    batch: aws_lambda_events::sqs::SqsEvent,
) -> BatchReport {
    let start = Instant::now();
    // A generous guard (on the paused clock, so it costs nothing): an answer that never comes
    // fails here instead of hanging the test.
    let report = tokio::time::timeout(REMAINING * 4, consumer.process_sqs(batch, Some(REMAINING)))
        .await
        .expect("the batch is answered");
    assert!(
        Instant::now() - start <= REMAINING - REPORTING_MARGIN,
        "answered {:?} after the start, past the budget",
        Instant::now() - start
    );
    report
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_hangs_fails_alone_and_keeps_its_claim_until_the_deadline() {
    let memory = InMemoryStore::new();
    let idempotency = Idempotency::new(memory.clone(), IdempotencyConfig::new("fulfil"));
    let handler = FulfillmentLike::default();
    handler.script("order-hung-1", Script::Hang);
    let publisher = InMemoryPublisher::new();
    let consumer = Consumer::new(handler.clone(), idempotency.clone(), publisher.clone());

    let report = process_in_time(&consumer, three("hung")).await;

    assert_eq!(
        outcomes(&report),
        [
            RecordOutcome::Fresh,
            DEADLINE_EXCEEDED,
            RecordOutcome::Fresh
        ]
    );
    assert_eq!(report.failed_message_ids(), ["m-1"]);
    assert_eq!(
        publisher.published().len(),
        2,
        "the others' events went out"
    );
    assert_eq!(record_of(&memory, &report, 0).status, Status::Completed);
    // Not released: the claim holds until the invocation's deadline, so a redelivery now is
    // refused as in progress rather than run a second time alongside the hung one.
    let hung = record_of(&memory, &report, 1);
    assert_eq!(hung.status, Status::InProgress);
    assert_eq!(
        hung.state_at(SystemClock.now_millis()),
        RecordState::InProgress
    );
    let deadline_ms = SystemClock.now_millis() + 15_000;
    assert!(hung.in_progress_expiration.unwrap() <= deadline_ms);
    let again = consumer.process_sqs(three("hung"), Some(REMAINING)).await;
    assert_eq!(
        outcomes(&again),
        [
            RecordOutcome::Replayed,
            RecordOutcome::InProgress,
            RecordOutcome::Replayed
        ]
    );
    assert_eq!(handler.calls("hung-1"), 1);
}

/// A publisher that never answers (a bus that hangs) and has no deadline path of its own.
struct HangingPublisher;

#[async_trait::async_trait]
impl EventPublisher for HangingPublisher {
    async fn publish(&self, _: &[OutgoingEvent]) -> Result<(), PublishError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_publish_that_hangs_is_cut_off_and_the_batch_is_still_answered() {
    let memory = InMemoryStore::new();
    let idempotency = Idempotency::new(memory.clone(), IdempotencyConfig::new("fulfil"));
    let consumer = Consumer::new(FulfillmentLike::default(), idempotency, HangingPublisher);

    let report = process_in_time(&consumer, three("bus-down")).await;

    assert_eq!(outcomes(&report), [DEADLINE_EXCEEDED; 3]);
    assert_eq!(report.failed_message_ids(), ["m-0", "m-1", "m-2"]);
    assert!(
        report.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("publishing its events")
    );
    for index in 0..3 {
        assert_eq!(
            record_of(&memory, &report, index).status,
            Status::InProgress,
            "kept, not released: its events may have reached the bus"
        );
    }
}

/// The in-memory store, except that completing `hung` never answers.
struct HangingCompletion {
    inner: InMemoryStore,
    hung: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl IdempotencyStore for HangingCompletion {
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now: u64,
    ) -> Result<ClaimResult, StoreError> {
        self.inner.claim(layout, record, now).await
    }
    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError> {
        let hangs = self
            .hung
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|hung| id.ends_with(hung));
        if hangs {
            std::future::pending::<()>().await;
        }
        self.inner
            .complete(layout, id, owner, data, expiration)
            .await
    }
    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError> {
        self.inner.release(layout, id, owner).await
    }
    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        self.inner.get(layout, id).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_completion_that_hangs_fails_its_record_alone_with_its_events_reported() {
    let memory = InMemoryStore::new();
    let store = Arc::new(HangingCompletion {
        inner: memory.clone(),
        hung: Mutex::new(None),
    });
    let idempotency = Idempotency::from_arc(store.clone(), IdempotencyConfig::new("fulfil"));
    let publisher = InMemoryPublisher::new();
    let consumer = Consumer::new(FulfillmentLike::default(), idempotency.clone(), publisher);
    let batch = three("slow-write");
    let hung_key = idempotency::Request::new("slow-write-2").unwrap();
    *store.hung.lock().unwrap() = hung_key.key_hash().map(str::to_owned);

    let report = process_in_time(&consumer, batch).await;

    assert_eq!(
        outcomes(&report),
        [
            RecordOutcome::Fresh,
            RecordOutcome::Fresh,
            DEADLINE_EXCEEDED
        ]
    );
    assert!(
        report.records[2]
            .error
            .as_deref()
            .unwrap()
            .contains("completing its claim")
    );
    assert_eq!(
        report.records[2].emitted.len(),
        1,
        "its event went out and is reported"
    );
    assert_eq!(record_of(&memory, &report, 2).status, Status::InProgress);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_claims_nothing_and_answers_at_once() {
    let memory = InMemoryStore::new();
    let idempotency = Idempotency::new(memory.clone(), IdempotencyConfig::new("fulfil"));
    let handler = FulfillmentLike::default();
    let consumer = Consumer::new(handler.clone(), idempotency, InMemoryPublisher::new());
    let start = Instant::now();

    let report = consumer
        .process_sqs(three("late"), Some(Duration::ZERO))
        .await;

    assert_eq!(Instant::now(), start, "no time passed");
    assert_eq!(outcomes(&report), [DEADLINE_EXCEEDED; 3]);
    assert!(memory.records().is_empty(), "nothing claimed");
    assert_eq!(handler.total_calls(), 0);
}

/// A client whose every PutEvents entry is throttled; counts the requests.
fn throttled_bus() -> (Client, Arc<Mutex<usize>>) {
    let requests = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&requests);
    let rule = mock!(Client::put_events).then_compute_output(move |input: &PutEventsInput| {
        *counted.lock().unwrap() += 1;
        let entries = input.entries();
        let mut out = PutEventsOutput::builder();
        for _ in entries {
            out = out.entries(
                PutEventsResultEntry::builder()
                    .error_code("ThrottlingException")
                    .error_message("slow down")
                    .build(),
            );
        }
        out.failed_entry_count(i32::try_from(entries.len()).unwrap())
            .build()
    });
    let config = aws_sdk_eventbridge::Config::builder()
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
        .build();
    (Client::from_conf(config), requests)
}

fn two_events() -> Vec<OutgoingEvent> {
    (0..2)
        .map(|i| OutgoingEvent::new(&created(&format!("throttled-{i}"), "o")).unwrap())
        .collect()
}

/// Many slow attempts: 20 of them, backing off 200-400 ms each time.
const PATIENT: RetryPolicy = RetryPolicy {
    max_attempts: 20,
    base_delay: Duration::from_millis(400),
    max_delay: Duration::from_millis(400),
};

#[tokio::test(start_paused = true)]
async fn publisher_retries_stop_at_the_budget_not_after_their_last_attempt() {
    let (client, requests) = throttled_bus();
    let publisher = EventBridgePublisher::new(client, "bus").with_retry(PATIENT);
    let budget = Budget::after(Duration::from_secs(2));

    let err = publisher
        .publish_within(&two_events(), budget)
        .await
        .unwrap_err();

    assert!(
        Instant::now() <= budget.deadline(),
        "no back-off ran past the budget"
    );
    let made = *requests.lock().unwrap();
    assert!((2..20).contains(&made), "{made} attempts");
    assert!(err.is_deadline_exceeded());
    for entry in &err.failed {
        assert_eq!(entry.error_code, FailedEntry::DEADLINE_EXCEEDED);
        assert!(
            entry.message.starts_with("ThrottlingException"),
            "the last refusal is kept: {}",
            entry.message
        );
    }

    // Without a budget the same publisher makes every attempt (this is what outlived the
    // invocation), and the entries fail with the bus's own code.
    *requests.lock().unwrap() = 0;
    let err = publisher.publish(&two_events()).await.unwrap_err();
    assert_eq!(*requests.lock().unwrap(), 20);
    assert!(!err.is_deadline_exceeded());
    assert!(
        err.failed
            .iter()
            .all(|f| f.error_code == "ThrottlingException")
    );
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_without_the_time_to_finish_it() {
    let (client, requests) = throttled_bus();
    let publisher = EventBridgePublisher::new(client, "bus");
    let budget = Budget::after(MIN_ATTEMPT_TIME / 2);

    let err = publisher
        .publish_within(&two_events(), budget)
        .await
        .unwrap_err();

    assert_eq!(*requests.lock().unwrap(), 0, "nothing sent");
    assert_eq!(err.failed.len(), 2);
    assert!(err.failed.iter().all(FailedEntry::is_deadline_exceeded));
}

#[tokio::test(start_paused = true)]
async fn a_publisher_without_its_own_deadline_path_is_bounded_as_a_whole() {
    let budget = Budget::after(Duration::from_secs(1));
    let err = HangingPublisher
        .publish_within(&two_events(), budget)
        .await
        .unwrap_err();
    assert_eq!(Instant::now(), budget.deadline());
    let indexes: Vec<usize> = err.failed.iter().map(|f| f.index).collect();
    assert_eq!(indexes, [0, 1]);
    assert!(err.failed.iter().all(FailedEntry::is_deadline_exceeded));
}
