//! The consumer with in-memory adapters: per-record outcomes, partial batch responses, batched
//! publishing, panics and failures confined to their record, and the bare EventBridge path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::time::Duration;

use common::{
    FulfillmentLike, Script, batch, created, created_batch, envelope, fixture, picked_for,
};
use contracts::{AnyEvent, DomainEvent, OrderPicked};
use eventing::{
    Consumer, EventingError, FailedEntry, InMemoryPublisher, RecordOutcome, idempotency_request,
};
use idempotency::{Begin, Idempotency, IdempotencyConfig, InMemoryStore};
use serde_json::json;

struct Harness {
    consumer: Consumer,
    handler: FulfillmentLike,
    publisher: InMemoryPublisher,
    idempotency: Idempotency,
}

fn harness() -> Harness {
    let handler = FulfillmentLike::default();
    let publisher = InMemoryPublisher::new();
    let idempotency = Idempotency::new(
        InMemoryStore::new(),
        IdempotencyConfig::new("fulfillment-events"),
    );
    let consumer = Consumer::new(handler.clone(), idempotency.clone(), publisher.clone());
    Harness {
        consumer,
        handler,
        publisher,
        idempotency,
    }
}

const REMAINING: Option<Duration> = Some(Duration::from_secs(30));

#[tokio::test(flavor = "multi_thread")]
async fn ten_fresh_records_each_emitting_one_event_cost_one_put_events_call() {
    let h = harness();
    let report = h
        .consumer
        .process_sqs(created_batch("ten", 10), REMAINING)
        .await;

    assert!(report.failed_message_ids().is_empty(), "{report:?}");
    assert!(
        report
            .records
            .iter()
            .all(|r| r.outcome == RecordOutcome::Fresh)
    );
    assert_eq!(h.publisher.put_events_calls(), 1);
    assert_eq!(report.stats.publish_calls, 1);
    assert_eq!(report.stats.fresh, 10);
    assert_eq!(report.stats.events_published, 10);
    let published = h.publisher.published();
    assert_eq!(published.len(), 10);
    assert!(
        published
            .iter()
            .all(|e| e.detail_type == OrderPicked::DETAIL_TYPE)
    );

    // Each record reports the event it caused, under the key derived from its own.
    for (i, record) in report.records.iter().enumerate() {
        let cause = contracts::IdempotencyKey::new(format!("ten-{i}")).unwrap();
        assert_eq!(record.message_id, format!("m-{i}"));
        assert_eq!(record.idempotency_key.as_deref(), Some(cause.as_str()));
        assert_eq!(record.emitted.len(), 1);
        assert_eq!(
            record.emitted[0].idempotency_key,
            cause.derive(OrderPicked::DETAIL_TYPE).as_str()
        );
        assert_eq!(record.label(), "fresh");
    }
    // A first-time event costs two idempotency writes: claim and complete.
    assert_eq!(h.idempotency.metrics().store_calls, 20);
    assert_eq!(h.consumer.last_batch_stats(), Some(report.stats));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_batch_is_replayed_without_handling_or_publishing() {
    let h = harness();
    let first = h
        .consumer
        .handle_sqs(created_batch("re", 4), REMAINING)
        .await;
    assert!(first.batch_item_failures.is_empty());
    let writes = h.idempotency.metrics().store_calls;

    let again = h
        .consumer
        .process_sqs(created_batch("re", 4), REMAINING)
        .await;
    assert!(again.failed_message_ids().is_empty());
    assert!(again.records.iter().all(|r| r.label() == "replayed"));
    assert!(again.records.iter().all(|r| r.emitted.is_empty()));
    assert_eq!(again.stats.replayed, 4);
    assert_eq!(again.stats.publish_calls, 0);
    assert_eq!(h.handler.total_calls(), 4, "handled once per key");
    assert_eq!(h.publisher.published().len(), 4, "nothing published twice");
    assert_eq!(h.publisher.put_events_calls(), 1);
    // A duplicate costs one failed conditional write.
    assert_eq!(h.idempotency.metrics().store_calls - writes, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_record_report_names_its_flow_and_event_for_the_logs() {
    let h = harness();
    let report = h
        .consumer
        .process_sqs(created_batch("corr", 2), REMAINING)
        .await;
    for record in &report.records {
        let key = record.idempotency_key.as_deref().unwrap();
        assert!(
            record
                .correlation_id
                .as_deref()
                .is_some_and(|c| !c.is_empty()),
            "{key}"
        );
        assert!(
            record.event_id.as_deref().is_some_and(|e| !e.is_empty()),
            "{key}"
        );
    }
    assert_ne!(report.records[0].event_id, report.records[1].event_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_batch_reports_exactly_the_failed_records() {
    let h = harness();
    // Held by another invocation: claimed and not finished.
    let held = created("held-elsewhere", "order-held");
    let request = idempotency_request(&AnyEvent::OrderCreated(held.clone()), REMAINING).unwrap();
    let Begin::Claimed(_claim) = h.idempotency.begin(&request).await.unwrap() else {
        panic!("the key must be free");
    };
    // Already handled in an earlier batch.
    let done = created("done-before", "order-done");
    h.consumer
        .handle_sqs(
            batch(&[("earlier", envelope(&done).to_string())]),
            REMAINING,
        )
        .await;
    let handled_before = h.handler.total_calls();

    // The fixture: good OrderPicked, malformed body, unknown detail type, copy of the first.
    let mut records: Vec<(String, String)> = fixture("bad/sqs-mixed-batch.json")["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["messageId"].as_str().unwrap().to_owned(),
                r["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let [good, malformed, unknown, copy] = [0, 1, 2, 3].map(|i| records[i].0.clone());
    records.push(("in-progress".into(), envelope(&held).to_string()));
    records.push(("duplicate".into(), envelope(&done).to_string()));
    records.push((
        "fresh".into(),
        envelope(&created("new-1", "order-new")).to_string(),
    ));
    records.push(("not-json".into(), "{\"source\": ".into()));
    records.push((
        "no-source".into(),
        json!({"detail-type": "OrderCreated", "detail": {}}).to_string(),
    ));
    let borrowed: Vec<(&str, String)> = records
        .iter()
        .map(|(id, body)| (id.as_str(), body.clone()))
        .collect();

    let report = h.consumer.process_sqs(batch(&borrowed), REMAINING).await;

    let failed = report.failed_message_ids();
    assert_eq!(
        failed,
        [
            malformed.as_str(),
            unknown.as_str(),
            "in-progress",
            "not-json",
            "no-source"
        ]
    );
    let response = report.response();
    let ids: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(ids, failed);

    let label = |id: &str| {
        report
            .records
            .iter()
            .find(|r| r.message_id == id)
            .unwrap()
            .label()
    };
    assert_eq!(label(&good), "fresh");
    assert_eq!(
        label(&copy),
        "replayed",
        "an identical copy follows its leader"
    );
    assert_eq!(label(&malformed), "failed:MalformedRecord");
    assert_eq!(label(&unknown), "failed:UnknownEventType");
    assert_eq!(label("in-progress"), "in_progress");
    assert_eq!(label("duplicate"), "replayed");
    assert_eq!(label("fresh"), "fresh");
    assert_eq!(label("not-json"), "failed:MalformedRecord");
    assert_eq!(label("no-source"), "failed:MalformedRecord");
    let no_source = report
        .records
        .iter()
        .find(|r| r.message_id == "no-source")
        .unwrap();
    assert_eq!(no_source.detail_type.as_deref(), Some("OrderCreated"));
    assert_eq!(no_source.source, None);

    // Only the good OrderPicked and the fresh OrderCreated ran; one event published in total.
    assert_eq!(h.handler.total_calls() - handled_before, 2);
    assert_eq!(report.stats.events_published, 1);
    assert_eq!(report.stats.in_progress, 1);
    assert_eq!(report.stats.failed, 4);
    assert_eq!(report.stats.replayed, 2);
    assert_eq!(report.stats.fresh, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_handler_fails_only_its_record_and_releases_its_claim() {
    let h = harness();
    h.handler.script("order-boom", Script::Panic);
    let boom = created("boom", "order-boom");
    let fine = created("fine", "order-fine");
    let report = h
        .consumer
        .process_sqs(
            batch(&[
                ("boom", envelope(&boom).to_string()),
                ("fine", envelope(&fine).to_string()),
            ]),
            REMAINING,
        )
        .await;
    assert_eq!(report.failed_message_ids(), ["boom"]);
    assert_eq!(report.records[0].label(), "failed:Panicked");
    assert!(
        report.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("bug in the handler")
    );
    assert_eq!(report.records[1].label(), "fresh");
    assert_eq!(h.publisher.published().len(), 1);

    // The claim was released, not left to expire: the key can be claimed at once.
    let request = idempotency_request(&AnyEvent::OrderCreated(boom), REMAINING).unwrap();
    assert!(matches!(
        h.idempotency.begin(&request).await.unwrap(),
        Begin::Claimed(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_errors_fail_their_record_and_a_redelivery_runs_again() {
    let h = harness();
    h.handler.script("order-r", Script::Reject);
    h.handler.script("order-t", Script::Transient);
    let shipped = fixture("eventbridge/order-shipped.json");
    let records = [
        ("rejected", envelope(&created("r", "order-r")).to_string()),
        ("transient", envelope(&created("t", "order-t")).to_string()),
        ("unhandled", shipped.to_string()),
    ];
    let report = h.consumer.process_sqs(batch(&records), REMAINING).await;
    let labels: Vec<String> = report.records.iter().map(|r| r.label()).collect();
    assert_eq!(
        labels,
        ["failed:Rejected", "failed:Transient", "failed:Unhandled"]
    );
    assert_eq!(report.stats.publish_calls, 0);

    // Claims were released: once the outage is over, the redelivery is handled.
    h.handler.script("order-t", Script::Pick);
    let again = h.consumer.process_sqs(batch(&records), REMAINING).await;
    assert_eq!(again.failed_message_ids(), ["rejected", "unhandled"]);
    assert_eq!(again.records[1].label(), "fresh");
    assert_eq!(h.handler.calls("t"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_whose_events_failed_to_publish_is_released_and_failed_alone() {
    let h = harness();
    let ok = created("pub-ok", "order-ok");
    let unlucky = created("pub-fail", "order-fail");
    let unlucky_event = picked_for(&unlucky);
    h.publisher
        .fail_key(unlucky_event.metadata.idempotency_key.to_string());
    let records = [
        ("ok", envelope(&ok).to_string()),
        ("unlucky", envelope(&unlucky).to_string()),
    ];

    let report = h.consumer.process_sqs(batch(&records), REMAINING).await;
    assert_eq!(report.failed_message_ids(), ["unlucky"]);
    assert_eq!(report.records[1].label(), "failed:PublishFailed");
    assert!(report.records[1].emitted.is_empty());
    assert_eq!(report.records[0].label(), "fresh");
    assert_eq!(h.publisher.put_events_calls(), 1, "one call for the batch");
    assert_eq!(report.stats.events_published, 1);

    // Released, so the redelivery handles and publishes it; the other is a replay.
    h.publisher.clear_failures();
    let again = h.consumer.process_sqs(batch(&records), REMAINING).await;
    assert!(again.failed_message_ids().is_empty());
    let labels: Vec<String> = again.records.iter().map(|r| r.label()).collect();
    assert_eq!(labels, ["replayed", "fresh"]);
    let keys: Vec<String> = h
        .publisher
        .published()
        .into_iter()
        .map(|e| e.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 2, "each event accepted once: {keys:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_caused_event_fails_its_record_with_a_typed_error() {
    struct Oversized;
    #[async_trait::async_trait]
    impl eventing::EventHandler for Oversized {
        async fn handle(
            &self,
            event: &AnyEvent,
        ) -> Result<Vec<eventing::OutgoingEvent>, eventing::HandlerError> {
            Ok(vec![eventing::OutgoingEvent {
                source: "com.fulfillment".into(),
                detail_type: "OrderPicked".into(),
                detail: "x".repeat(eventing::MAX_REQUEST_BYTES),
                idempotency_key: event
                    .metadata()
                    .idempotency_key
                    .derive("OrderPicked")
                    .to_string(),
                trace_header: None,
            }])
        }
    }
    let publisher = InMemoryPublisher::new();
    let consumer = Consumer::new(
        Oversized,
        Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("x")),
        publisher.clone(),
    );
    let report = consumer
        .process_sqs(
            batch(&[("big", envelope(&created("big", "o")).to_string())]),
            REMAINING,
        )
        .await;
    assert_eq!(report.failed_message_ids(), ["big"]);
    assert_eq!(report.records[0].label(), "failed:PublishFailed");
    assert!(
        report.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains(FailedEntry::ENTRY_TOO_LARGE)
    );
    assert!(publisher.published().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_with_different_data_is_never_replayed() {
    let h = harness();
    let original = created("reused", "order-a");
    let mut changed = original.clone();
    changed.data.total = "99.99".parse().unwrap();

    // Within one batch, the conflicting copy waits for a redelivery.
    let report = h
        .consumer
        .process_sqs(
            batch(&[
                ("a", envelope(&original).to_string()),
                ("b", envelope(&changed).to_string()),
            ]),
            REMAINING,
        )
        .await;
    assert_eq!(report.records[0].label(), "fresh");
    assert_eq!(report.records[1].label(), "in_progress");

    // Redelivered alone, the idempotency layer refuses it.
    let report = h
        .consumer
        .process_sqs(batch(&[("b", envelope(&changed).to_string())]), REMAINING)
        .await;
    assert_eq!(report.records[0].label(), "failed:IdempotencyValidation");
    assert_eq!(h.handler.calls("reused"), 1);

    // A re-emission with new metadata but the same facts is a duplicate.
    let mut reemitted = original.clone();
    reemitted.metadata.event_id = "another-emission".into();
    let report = h
        .consumer
        .process_sqs(batch(&[("c", envelope(&reemitted).to_string())]), REMAINING)
        .await;
    assert_eq!(report.records[0].label(), "replayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn records_run_concurrently_up_to_the_limit() {
    let h = harness();
    let consumer = h.consumer.clone().with_concurrency(3);
    // Every call waits for two others: only concurrent handling gets past it.
    h.handler.rendezvous(3);
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        consumer.process_sqs(created_batch("conc", 9), REMAINING),
    )
    .await
    .expect("three records must be in flight together");
    assert!(report.failed_message_ids().is_empty());
    assert_eq!(h.handler.max_in_flight(), 3);
    assert_eq!(h.publisher.put_events_calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_without_message_id_fails_the_whole_batch_rather_than_being_acked() {
    let h = harness();
    let batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({
        "Records": [{"body": "not an event", "eventSource": "aws:sqs"}]
    }))
    .unwrap();
    let response = h.consumer.handle_sqs(batch, REMAINING).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_eventbridge_event_is_handled_and_its_failure_is_an_error() {
    let h = harness();
    let event = fixture("eventbridge/order-created.json");
    let report = h
        .consumer
        .handle_eventbridge(event.clone(), REMAINING)
        .await
        .unwrap();
    assert_eq!(report.outcome, RecordOutcome::Fresh);
    assert_eq!(report.message_id, "cba17ef7-9072-5773-a378-992c66a1c439");
    assert_eq!(report.emitted.len(), 1);
    assert_eq!(h.publisher.published().len(), 1);
    let again = h.consumer.handle_eventbridge(event, None).await.unwrap();
    assert_eq!(again.outcome, RecordOutcome::Replayed);

    let unknown = h
        .consumer
        .handle_eventbridge(fixture("bad/eventbridge-unknown-detail-type.json"), None)
        .await
        .unwrap_err();
    assert_eq!(unknown.error_type(), "UnknownEventType");
    let keyless = h
        .consumer
        .handle_eventbridge(
            fixture("bad/eventbridge-missing-idempotency-key.json"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(keyless.error_type(), "InvalidEventDetail");
    let wrong = h
        .consumer
        .handle_eventbridge(fixture("bad/eventbridge-wrong-field-types.json"), None)
        .await
        .unwrap_err();
    assert_eq!(wrong.error_type(), "InvalidEventDetail");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_held_by_another_invocation_is_an_error_on_direct_invoke() {
    let h = harness();
    let held = created("held", "order-held");
    let request = idempotency_request(&AnyEvent::OrderCreated(held.clone()), None).unwrap();
    let Begin::Claimed(_claim) = h.idempotency.begin(&request).await.unwrap() else {
        panic!("the key must be free");
    };
    let err = h
        .consumer
        .handle_eventbridge(envelope(&held), REMAINING)
        .await
        .unwrap_err();
    assert!(matches!(err, EventingError::InProgress { .. }), "{err:?}");
    assert_eq!(h.handler.total_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_payload_shape_picks_the_entry_point() {
    let h = harness();
    let sqs = h
        .consumer
        .handle_payload(fixture("sqs/order-created.json"), REMAINING)
        .await
        .unwrap();
    assert_eq!(sqs, json!({"batchItemFailures": []}));

    let mixed = h
        .consumer
        .handle_payload(fixture("bad/sqs-mixed-batch.json"), REMAINING)
        .await
        .unwrap();
    assert_eq!(mixed["batchItemFailures"].as_array().unwrap().len(), 2);

    let bare = h
        .consumer
        .handle_payload(fixture("eventbridge/order-picked.json"), REMAINING)
        .await
        .unwrap();
    // The same OrderPicked as the batch's good record: already handled.
    assert_eq!(bare["outcome"], "replayed");
    assert_eq!(bare["detail_type"], "OrderPicked");

    for payload in [
        json!({"hello": "world"}),
        json!([1, 2]),
        json!("text"),
        json!({"Records": [{"EventSource": "aws:sns", "eventSource": "aws:sns"}]}),
        json!({"Records": "nope"}),
    ] {
        let err = h
            .consumer
            .handle_payload(payload.clone(), None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "UnrecognisedPayload", "{payload}");
    }
    // A bare event that is malformed is the event's error, not an unrecognised payload.
    let err = h
        .consumer
        .handle_payload(json!({"source": "com.orders"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "MalformedRecord");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_with_some_events_refused_reports_what_went_out_and_is_retried() {
    /// Causes two events per record.
    struct TwoEvents;
    #[async_trait::async_trait]
    impl eventing::EventHandler for TwoEvents {
        async fn handle(
            &self,
            event: &AnyEvent,
        ) -> Result<Vec<eventing::OutgoingEvent>, eventing::HandlerError> {
            let AnyEvent::OrderCreated(created) = event else {
                return Err(eventing::HandlerError::unhandled(event));
            };
            let first = picked_for(created);
            let mut second = first.clone();
            second.metadata.idempotency_key =
                created.metadata.idempotency_key.derive("OrderPicked#2");
            Ok(vec![
                eventing::OutgoingEvent::new(&first).unwrap(),
                eventing::OutgoingEvent::new(&second).unwrap(),
            ])
        }
    }
    let publisher = InMemoryPublisher::new();
    let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("two"));
    let consumer = Consumer::new(TwoEvents, idempotency.clone(), publisher.clone());
    let order = created("two-events", "order-two");
    let refused = order.metadata.idempotency_key.derive("OrderPicked#2");
    publisher.fail_key_times(refused.to_string(), 1);
    let records = [("two", envelope(&order).to_string())];

    let report = consumer.process_sqs(batch(&records), REMAINING).await;
    assert_eq!(report.failed_message_ids(), ["two"]);
    let record = &report.records[0];
    assert_eq!(record.label(), "failed:PublishFailed");
    let went_out: Vec<&str> = record
        .emitted
        .iter()
        .map(|e| e.idempotency_key.as_str())
        .collect();
    assert_eq!(
        went_out,
        [order
            .metadata
            .idempotency_key
            .derive(OrderPicked::DETAIL_TYPE)
            .as_str()]
    );
    assert_eq!(report.stats.events_published, 1);

    // Retried: the claim was released, so both are re-emitted under the same keys.
    let again = consumer.process_sqs(batch(&records), REMAINING).await;
    assert_eq!(again.records[0].label(), "fresh");
    assert_eq!(again.records[0].emitted.len(), 2);
    let keys: Vec<String> = publisher
        .published()
        .into_iter()
        .map(|e| e.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 3, "the first event went out twice, same key");
    assert_eq!(keys[0], keys[1]);
}
