//! The routing table: one row per (detail type, subscription), and a row for a detail type no
//! rule subscribes to, so nothing published is missing from it.

use serde::Serialize;

use crate::Catalog;

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The `detail-type`.
    pub detail_type: String,
    /// The producer's `source`.
    pub producer: String,
    /// The rule's logical id; `None` when no rule subscribes to the detail type.
    pub rule: Option<String>,
    /// The target queue's logical id, when the target is a queue.
    pub queue: Option<String>,
    /// The consuming function's binary.
    pub consumer: Option<String>,
}

impl Catalog {
    /// The routing table: detail types in contract order, then rules by logical id.
    pub fn routes(&self) -> Vec<Route> {
        let mut rows = Vec::new();
        for event in &self.events {
            let row = |rule, queue, consumer| Route {
                detail_type: event.detail_type.to_owned(),
                producer: event.source.to_owned(),
                rule,
                queue,
                consumer,
            };
            if event.subscriptions.is_empty() {
                rows.push(row(None, None, None));
            }
            for s in &event.subscriptions {
                rows.push(row(
                    Some(s.rule.clone()),
                    s.queue.clone(),
                    s.consumer.as_ref().map(|c| c.binary.clone()),
                ));
            }
        }
        rows
    }
}

/// The routing table as aligned text columns with a header; `-` where a row has no value.
pub fn routes_text(routes: &[Route]) -> String {
    let header = ["DETAIL TYPE", "PRODUCER", "RULE", "QUEUE", "CONSUMER"];
    let cells: Vec<[&str; 5]> = routes
        .iter()
        .map(|r| {
            [
                r.detail_type.as_str(),
                r.producer.as_str(),
                r.rule.as_deref().unwrap_or("-"),
                r.queue.as_deref().unwrap_or("-"),
                r.consumer.as_deref().unwrap_or("-"),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_columns_and_marks_missing_values() {
        let routes = [
            Route {
                detail_type: "OrderCreated".into(),
                producer: "com.orders".into(),
                rule: Some("R".into()),
                queue: Some("Queue".into()),
                consumer: Some("fulfillment-events".into()),
            },
            Route {
                detail_type: "ReturnRequested".into(),
                producer: "com.support".into(),
                rule: None,
                queue: None,
                consumer: None,
            },
        ];
        assert_eq!(
            routes_text(&routes),
            "DETAIL TYPE      PRODUCER     RULE  QUEUE  CONSUMER\n\
             OrderCreated     com.orders   R     Queue  fulfillment-events\n\
             ReturnRequested  com.support  -     -      -\n"
        );
    }
}
