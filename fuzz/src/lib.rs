//! What the fuzz targets share: the real consumers and HTTP APIs over the in-memory adapters,
//! one runtime, and the properties every input must keep (a crash is a property broken).
//!
//! - An SQS record never makes a consumer panic (the consumer would catch it and report
//!   `failed:Panicked`; here that is a crash), and a record the contract refuses is always a
//!   batch-item failure.
//! - An HTTP request is never answered 5xx, and every answer of 400 or more is a JSON
//!   `{"error": {"type", "message"}}`.

use std::sync::{Arc, OnceLock};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use eventing::{Consumer, InMemoryPublisher, RecordOutcome};
use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
use platform::http::{ApiRequest, ApiResponse};

/// The functions under test.
pub struct Functions {
    /// fulfillment-events, orders-events, support-events.
    pub consumers: Vec<Consumer>,
    /// orders-api.
    pub orders_api: orders::api::OrdersApi,
    /// support-api.
    pub support_api: support::api::SupportApi,
}

fn idempotency(operation: &str) -> Idempotency {
    Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new(operation))
}

/// The functions, built once per process.
pub fn functions() -> &'static Functions {
    static FUNCTIONS: OnceLock<Functions> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let orders_store = Arc::new(orders::store::InMemoryOrderStore::default());
        let support_store = Arc::new(support::store::InMemorySupportStore::default());
        Functions {
            consumers: vec![
                Consumer::new(
                    fulfillment::handler::FulfillmentHandler::new(Arc::new(
                        fulfillment::store::InMemoryFulfillmentStore::default(),
                    )),
                    idempotency("fulfil"),
                    InMemoryPublisher::new(),
                ),
                Consumer::new(
                    orders::projection::OrderStatusProjection::new(orders_store.clone()),
                    idempotency("apply-status"),
                    InMemoryPublisher::new(),
                ),
                Consumer::new(
                    support::projection::ShippedOrdersProjection::new(support_store.clone()),
                    idempotency("record-shipped"),
                    InMemoryPublisher::new(),
                ),
            ],
            orders_api: orders::api::OrdersApi::new(idempotency("create-order"), orders_store),
            support_api: support::api::SupportApi::new(
                idempotency("request-return"),
                support_store,
                platform::auth::DEFAULT_STAFF_SCOPE,
            ),
        }
    })
}

/// One current-thread runtime per process (the consumers spawn a task per record).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds")
        })
        .block_on(future)
}

/// Whether the contract takes `body` as an event: as a whole JSON value, or (fields nobody
/// reads are only checked to be JSON, as "consumers ignore unknown fields" asks) as an object
/// whose `source` and `detail-type` are strings and whose `detail` is that type's detail.
fn contract_takes(body: &str) -> bool {
    let as_value = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let (s, d) = (v.get("source")?.as_str()?, v.get("detail-type")?.as_str()?);
            contracts::AnyEvent::parse(s, d, v.get("detail")?.clone()).ok()
        })
        .is_some();
    let as_fields = serde_json::from_str::<
        std::collections::HashMap<String, Box<serde_json::value::RawValue>>,
    >(body)
    .ok()
    .and_then(|fields| {
        let text = |name: &str| serde_json::from_str::<String>(fields.get(name)?.get()).ok();
        let (s, d) = (text("source")?, text("detail-type")?);
        contracts::AnyEvent::parse_str(&s, &d, fields.get("detail")?.get()).ok()
    })
    .is_some();
    as_value || as_fields
}

/// Delivers `body` as a one-record batch to every consumer and checks the properties.
pub fn check_record(body: &str) {
    let parses = contract_takes(body);
    for consumer in &functions().consumers {
        let mut message = SqsMessage::default();
        message.message_id = Some("fuzz".to_owned());
        message.body = Some(body.to_owned());
        let mut batch = SqsEvent::default();
        batch.records.push(message);
        let report = block_on(consumer.process_sqs(batch, None));
        assert_eq!(report.records.len(), 1, "one report per record");
        let outcome = report.records[0].outcome;
        assert_ne!(
            outcome,
            RecordOutcome::Failed("Panicked"),
            "{:?}",
            report.records[0].error
        );
        if !parses {
            assert!(
                outcome.is_failure(),
                "a record the contract refuses was acknowledged"
            );
        }
    }
}

/// Serves `request` and checks the answer: never 5xx, JSON error bodies for 4xx.
pub fn check_request(request: &ApiRequest) -> ApiResponse {
    let f = functions();
    let response = block_on(async {
        if request.path.starts_with("/returns") {
            f.support_api.handle(request, None).await
        } else {
            f.orders_api.handle(request, None).await
        }
    });
    assert!(
        response.status < 500,
        "{} {}: {}",
        request.method,
        request.path,
        response.body
    );
    if response.status >= 400 {
        check_error(&response);
    }
    response
}

/// A JSON error body with a type and a message.
pub fn check_error(response: &ApiResponse) {
    let body: serde_json::Value =
        serde_json::from_str(&response.body).expect("error bodies are JSON");
    let error = &body["error"];
    assert!(
        error["type"].as_str().is_some_and(|t| !t.is_empty())
            && error["message"].as_str().is_some_and(|m| !m.is_empty())
            || body["message"].is_string(),
        "{body}"
    );
}
