//! Issue #6, an unreadable stored result wedges a key: a consumer whose idempotency record for a
//! delivered event was completed by last month's version, whose stored result this version
//! cannot read (the attribute renamed, the text cut short), acknowledges the record (the effect
//! happened) on every delivery instead of failing it until it is dead-lettered. With the
//! in-memory store and with the DynamoDB table on the stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{FulfillmentLike, batch, created, envelope};
use contracts::AnyEvent;
use eventing::{Consumer, InMemoryPublisher, RecordOutcome, idempotency_request};
use idempotency::{
    DynamoDbStore, Idempotency, IdempotencyConfig, InMemoryStore, Record, Request, Status,
};
use testkit::{LocalStack, moto, template};

const REMAINING: Option<Duration> = Some(Duration::from_secs(30));

/// What last month's version left as the result of a completed record.
#[derive(Debug, Clone, Copy)]
enum LastMonths {
    /// Under another attribute name: this version finds no result.
    Renamed,
    /// Cut short: not JSON.
    CutShort,
}

const LAST_MONTHS: [LastMonths; 2] = [LastMonths::Renamed, LastMonths::CutShort];

struct Scenario {
    consumer: Consumer,
    handler: FulfillmentLike,
    publisher: InMemoryPublisher,
    idempotency: Idempotency,
}

impl Scenario {
    fn new(idempotency: Idempotency) -> Self {
        let handler = FulfillmentLike::default();
        let publisher = InMemoryPublisher::new();
        let consumer = Consumer::new(handler.clone(), idempotency.clone(), publisher.clone());
        Self {
            consumer,
            handler,
            publisher,
            idempotency,
        }
    }

    /// The idempotency request the consumer builds for `body`.
    fn request_of(body: &str) -> Request {
        let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
        let event = AnyEvent::parse(
            envelope["source"].as_str().unwrap(),
            envelope["detail-type"].as_str().unwrap(),
            envelope["detail"].clone(),
        )
        .unwrap();
        idempotency_request(&event, None).unwrap()
    }

    /// A batch of the event last month's version completed (`old`) and a new one; both are
    /// acknowledged, every time, and only the new one is handled.
    async fn deliver_twice(&self, old: &str, new: &str, seeded: LastMonths) {
        for delivery in 1..=2 {
            let report = self
                .consumer
                .process_sqs(
                    batch(&[("old", old.to_owned()), ("new", new.to_owned())]),
                    REMAINING,
                )
                .await;
            assert!(
                report.failed_message_ids().is_empty(),
                "{seeded:?}, delivery {delivery}: {report:?}"
            );
            assert_eq!(
                report.records[0].outcome,
                RecordOutcome::Replayed,
                "{seeded:?}: acknowledged, the effect happened"
            );
            assert!(report.records[0].emitted.is_empty());
            let metrics = self.idempotency.metrics();
            assert_eq!(metrics.unreadable, delivery, "{seeded:?}: {metrics:?}");
            assert_eq!(metrics.store_errors, 0, "{seeded:?}: not a store failure");
        }
        assert_eq!(
            self.handler.total_calls(),
            1,
            "{seeded:?}: only the new event was handled"
        );
        assert_eq!(self.publisher.published().len(), 1);
    }
}

fn bodies(tag: &str) -> (String, String) {
    (
        envelope(&created(&format!("{tag}-old"), &format!("order-{tag}-old"))).to_string(),
        envelope(&created(&format!("{tag}-new"), &format!("order-{tag}-new"))).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_completed_by_last_months_version_is_acknowledged_in_memory() {
    for (i, seeded) in LAST_MONTHS.into_iter().enumerate() {
        let memory = InMemoryStore::new();
        let idempotency =
            Idempotency::new(memory.clone(), IdempotencyConfig::new("fulfillment-events"));
        let scenario = Scenario::new(idempotency.clone());
        let (old, new) = bodies(&format!("memory-{i}"));
        let request = Scenario::request_of(&old);
        memory.put(
            idempotency.config().layout(),
            Record {
                id: idempotency.record_id(&request).unwrap(),
                status: Status::Completed,
                expiration: u64::MAX,
                in_progress_expiration: Some(0),
                data: match seeded {
                    LastMonths::Renamed => None,
                    LastMonths::CutShort => Some(r#"{"emitted":["k-1","#.to_owned()),
                },
                validation: request.validation_hash().map(str::to_owned),
                owner: "last-months-version".into(),
            },
        );
        scenario.deliver_twice(&old, &new, seeded).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_completed_by_last_months_version_is_acknowledged_with_dynamodb() {
    let config = moto().sdk_config().await;
    let stack = LocalStack::provision(&config, &template()).await.unwrap();
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = stack.table("IdempotencyTable").to_owned();
    for (i, seeded) in LAST_MONTHS.into_iter().enumerate() {
        let idempotency = Idempotency::from_arc(
            Arc::new(DynamoDbStore::new(client.clone(), &table)),
            IdempotencyConfig::new("fulfillment-events"),
        );
        let scenario = Scenario::new(idempotency.clone());
        let (old, new) = bodies(&format!("dynamodb-{i}"));
        let request = Scenario::request_of(&old);
        let s = |text: &str| AttributeValue::S(text.to_owned());
        let (result_name, result) = match seeded {
            LastMonths::Renamed => ("result", s(r#"{"emitted":[]}"#)),
            LastMonths::CutShort => ("data", s(r#"{"emitted":["k-1","#)),
        };
        let item = HashMap::from([
            (
                "id".to_owned(),
                s(&idempotency.record_id(&request).unwrap()),
            ),
            ("status".to_owned(), s("COMPLETED")),
            (
                "expiration".to_owned(),
                AttributeValue::N((u64::from(u32::MAX) * 4).to_string()),
            ),
            (
                "in_progress_expiration".to_owned(),
                AttributeValue::N("0".into()),
            ),
            (
                "validation".to_owned(),
                s(request.validation_hash().unwrap()),
            ),
            ("owner".to_owned(), s("last-months-version")),
            (result_name.to_owned(), result),
        ]);
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
        scenario.deliver_twice(&old, &new, seeded).await;
    }
}
