//! Builders shared by the unit tests.

use contracts::{Detail, IdempotencyKey, Metadata, OrderPicked};

use crate::OutgoingEvent;

/// An `OrderPicked` detail keyed `key`, picked in `warehouse` (which also sets its size).
pub(crate) fn picked(key: &str, warehouse: &str) -> Detail<OrderPicked> {
    Detail::new(
        Metadata::first(
            IdempotencyKey::new(key).unwrap(),
            "corr-1",
            "2026-11-23T10:52:10Z".parse().unwrap(),
        ),
        OrderPicked {
            order_id: "1073459984".into(),
            customer_id: "456".into(),
            items: vec![],
            warehouse_id: warehouse.into(),
            picked_at: "2026-11-23T10:52:10Z".parse().unwrap(),
        },
    )
}

/// `n` small events keyed `<prefix>-0`, `<prefix>-1`, ...
pub(crate) fn events(prefix: &str, n: usize) -> Vec<OutgoingEvent> {
    (0..n)
        .map(|i| OutgoingEvent::new(&picked(&format!("{prefix}-{i}"), "WH-1")).unwrap())
        .collect()
}
