//! What operators see: a span per request carrying the hashed key and the outcome, an event per
//! outcome with its round trips, a warning for every unkeyed run, and the counters.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use idempotency::{Idempotency, IdempotencyConfig, InMemoryStore, Request};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

type Fields = BTreeMap<String, String>;

#[derive(Default)]
struct Captured {
    spans: Mutex<BTreeMap<u64, (String, Fields)>>,
    events: Mutex<Vec<(Level, Fields)>>,
    next_id: AtomicU64,
}

/// A minimal subscriber that keeps every span's fields and every event.
#[derive(Clone, Default)]
struct Capture(Arc<Captured>);

struct FieldsVisitor<'a>(&'a mut Fields);

impl Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let mut fields = Fields::new();
        attrs.record(&mut FieldsVisitor(&mut fields));
        self.0
            .spans
            .lock()
            .unwrap()
            .insert(id, (attrs.metadata().name().to_owned(), fields));
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        if let Some((_, fields)) = spans.get_mut(&span.into_u64()) {
            values.record(&mut FieldsVisitor(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut FieldsVisitor(&mut fields));
        self.0
            .events
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    fn idempotency_spans(&self) -> Vec<Fields> {
        self.0
            .spans
            .lock()
            .unwrap()
            .values()
            .filter(|(name, _)| name == "idempotency")
            .map(|(_, fields)| fields.clone())
            .collect()
    }

    fn events_with_message(&self, message: &str) -> Vec<(Level, Fields)> {
        self.0
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| f.get("message").is_some_and(|m| m.contains(message)))
            .cloned()
            .collect()
    }
}

fn run_with(capture: &Capture, work: impl AsyncFnOnce()) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(capture.clone(), || rt.block_on(work()));
}

#[test]
fn every_request_gets_a_span_with_its_hashed_key_and_outcome() {
    let capture = Capture::default();
    let idem = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("charge"));
    let request = Request::new("order-1").unwrap();
    run_with(&capture, async || {
        for _ in 0..2 {
            idem.run(&request, || async { Ok::<_, std::io::Error>(1) })
                .await
                .unwrap();
        }
    });
    let spans = capture.idempotency_spans();
    assert_eq!(spans.len(), 2);
    for (span, outcome) in spans.iter().zip(["fresh", "replayed"]) {
        assert_eq!(span["key"], request.key_hash().unwrap());
        assert_eq!(span["operation"], "charge");
        assert_eq!(span["outcome"], outcome);
        assert!(
            !span.values().any(|v| v.contains("order-1")),
            "the raw key must not be logged"
        );
    }
    let outcomes = capture.events_with_message("idempotency outcome");
    let calls: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|(_, f)| (f["outcome"].as_str(), f["store_calls"].as_str()))
        .collect();
    assert_eq!(calls, [("fresh", "1"), ("replayed", "1")]);
}

#[test]
fn every_unkeyed_run_logs_a_warning() {
    let capture = Capture::default();
    let idem = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("charge"));
    run_with(&capture, async || {
        for _ in 0..2 {
            idem.run(&Request::unkeyed(), || async { Ok::<_, std::io::Error>(1) })
                .await
                .unwrap();
        }
    });
    let warnings = capture.events_with_message("without idempotency");
    assert_eq!(warnings.len(), 2);
    assert!(warnings.iter().all(|(level, _)| *level == Level::WARN));
    assert_eq!(capture.idempotency_spans()[0]["outcome"], "fresh");
    assert_eq!(capture.idempotency_spans()[0]["key"], "unkeyed");
}

#[test]
fn counters_are_logged_on_request() {
    let capture = Capture::default();
    let idem = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("charge"));
    run_with(&capture, async || {
        idem.run(&Request::new("k").unwrap(), || async {
            Ok::<_, std::io::Error>(1)
        })
        .await
        .unwrap();
        idem.log_metrics();
    });
    let logged = capture.events_with_message("idempotency metrics");
    assert_eq!(logged.len(), 1);
    let (level, fields) = &logged[0];
    assert_eq!(*level, Level::INFO);
    assert_eq!(fields["fresh"], "1");
    assert_eq!(fields["store_calls"], "2");
    assert_eq!(fields["operation"], "charge");
}

#[test]
fn an_unreadable_result_is_logged_with_its_record_id_never_its_data() {
    let capture = Capture::default();
    let memory = InMemoryStore::new();
    let idem = Idempotency::new(memory.clone(), IdempotencyConfig::new("charge"));
    let request = Request::new("k").unwrap();
    let id = idem.record_id(&request).unwrap();
    // What another version stored: a result of another shape, holding personal data.
    let stored = r#"{"email":"jane@example.com"}"#;
    memory.put(
        idem.config().layout(),
        idempotency::Record {
            id: id.clone(),
            status: idempotency::Status::Completed,
            expiration: u64::MAX,
            in_progress_expiration: None,
            data: Some(stored.to_owned()),
            validation: None,
            owner: "another-version".into(),
        },
    );
    run_with(&capture, async || {
        let err = idem
            .run(&request, || async { Ok::<_, std::io::Error>(1u32) })
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "IdempotencyUnreadableResult");
        assert!(!err.to_string().contains("jane"), "{err}");
        idem.log_metrics();
    });
    let warnings = capture.events_with_message("cannot be read");
    assert_eq!(warnings.len(), 1);
    let (level, fields) = &warnings[0];
    assert_eq!(*level, Level::WARN);
    assert_eq!(fields["record_id"], id);
    assert_eq!(fields["reason"], "other_shape");
    assert_eq!(fields["error_type"], "IdempotencyUnreadableResult");
    let everything = capture.0.events.lock().unwrap().clone();
    assert!(
        !everything
            .iter()
            .any(|(_, f)| f.values().any(|v| v.contains("jane"))),
        "the stored data must not be logged"
    );
    assert_eq!(
        capture.idempotency_spans()[0]["outcome"],
        "IdempotencyUnreadableResult"
    );
    let (_, metrics) = &capture.events_with_message("idempotency metrics")[0];
    assert_eq!(metrics["unreadable"], "1");
}
