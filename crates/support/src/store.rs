//! Where support keeps shipped orders and returns: the [`SupportStore`] port and its adapters.
//!
//! A return is stored with the fact it makes true in one write (the transactional outbox: the
//! item's `outbox` attribute, published from the table's stream by `support-outbox-relay`).
//! Requesting a return stores it with `ReturnRequested` and counts its units against the shipped
//! order in the same atomic write, conditional on what may still be returned, so two concurrent
//! requests can never both take the last unit. Receiving moves it to Received with
//! `ReturnReceived`, once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use eventing::{ChangeFeed, OUTBOX_ATTRIBUTE, OutgoingEvent};
use platform::doc_table::{DocTable, DocTableError};

use crate::domain::{Return, ShippedOrder, Units};

/// Keeps support's projection of shipped orders and its returns.
#[async_trait]
pub trait SupportStore: Send + Sync {
    /// Records a shipped order (full state: a repeat overwrites the order with the same data and
    /// keeps what its returns took).
    async fn put_shipped_order(&self, order: &ShippedOrder) -> Result<(), DocTableError>;
    /// A shipped order support has seen, with the units its returns took so far.
    async fn shipped_order(
        &self,
        order_id: &str,
    ) -> Result<Option<(ShippedOrder, Units)>, DocTableError>;
    /// Stores a new return with `requested`, its fact, and counts its units against `shipped`,
    /// in one atomic write that holds only while every SKU keeps within what was shipped.
    async fn request_return(
        &self,
        ret: &Return,
        requested: &OutgoingEvent,
        shipped: &ShippedOrder,
    ) -> Result<Requested, DocTableError>;
    /// A return by id.
    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError>;
    /// Moves a requested return to Received, storing `received` (the return as received) with
    /// its fact in one write; a later call finds it received and writes nothing. `None` when
    /// the return does not exist.
    async fn receive_return(
        &self,
        received: &Return,
        fact: &OutgoingEvent,
    ) -> Result<Option<Receipt>, DocTableError>;
}

/// What [`SupportStore::request_return`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Stored now, with its fact; its units are counted.
    Stored(Return),
    /// A return with this id exists (a re-run of the same request): nothing was written.
    Exists(Return),
    /// A SKU asks more units than may still be returned (counted at the time of the write).
    Exceeds {
        /// The SKU.
        sku: String,
        /// Units asked.
        asked: u64,
        /// Units of it that may still be returned.
        returnable: u64,
    },
    /// Support has no shipped order with this id (any more).
    NotShipped,
}

/// What [`SupportStore::receive_return`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Received now: the return and its fact are stored.
    Received(Return),
    /// Received before (a retry, or a concurrent request): the return as first received.
    AlreadyReceived(Return),
}

/// The states a return's `state` attribute takes.
mod state {
    pub const REQUESTED: &str = "Requested";
    /// Written by earlier versions between storing a receipt and publishing its fact; such a
    /// return is received again (its stored receipt time kept), so its fact is not lost.
    pub const RECEIVING: &str = "Receiving";
    pub const RECEIVED: &str = "Received";
}

/// The attribute counting the units of `sku` returned from a shipped order.
fn returned_attribute(sku: &str) -> String {
    format!("returned#{sku}")
}

/// The first SKU of `asked` that `shipped`, less `returned`, cannot cover.
fn exceeded(shipped: &ShippedOrder, returned: &Units, asked: &Units) -> Option<Requested> {
    asked.iter().find_map(|(sku, &asked)| {
        let returnable = shipped.returnable(sku, returned);
        (asked > returnable).then(|| Requested::Exceeds {
            sku: sku.clone(),
            asked,
            returnable,
        })
    })
}

/// A return as the in-memory adapter keeps it: its state and outbox entry.
#[derive(Debug, Clone)]
struct StoredReturn {
    ret: Return,
    state: &'static str,
    outbox: String,
}

#[derive(Debug, Default)]
struct Tables {
    shipped: HashMap<String, (ShippedOrder, Units)>,
    returns: HashMap<String, StoredReturn>,
}

/// In-memory adapter: unit tests and the local runner. One lock makes each write atomic, and
/// every write is recorded in its [`ChangeFeed`], as the table's stream records it.
#[derive(Debug, Clone, Default)]
pub struct InMemorySupportStore {
    tables: Arc<Mutex<Tables>>,
    changes: ChangeFeed,
}

impl InMemorySupportStore {
    fn tables(&self) -> MutexGuard<'_, Tables> {
        // Every write below completes under the lock without panicking: a poisoned lock (a
        // panicking test thread) leaves consistent maps.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every return.
    pub fn returns(&self) -> Vec<Return> {
        self.tables()
            .returns
            .values()
            .map(|stored| stored.ret.clone())
            .collect()
    }

    /// The table's stream (what the outbox relay reads).
    pub fn changes(&self) -> &ChangeFeed {
        &self.changes
    }
}

fn outbox_entry(fact: &OutgoingEvent, pk: &str) -> Result<String, DocTableError> {
    fact.to_outbox().map_err(|e| DocTableError::Corrupt {
        table: String::new(),
        pk: pk.to_owned(),
        problem: e.to_string(),
    })
}

#[async_trait]
impl SupportStore for InMemorySupportStore {
    async fn put_shipped_order(&self, order: &ShippedOrder) -> Result<(), DocTableError> {
        let mut tables = self.tables();
        let existed = match tables.shipped.get_mut(&order.order_id) {
            Some((stored, _)) => {
                *stored = order.clone();
                true
            }
            None => {
                tables
                    .shipped
                    .insert(order.order_id.clone(), (order.clone(), Units::new()));
                false
            }
        };
        self.changes.record(
            &format!("SHIPPED#{}", order.order_id),
            existed.then_some(None),
            None,
        );
        Ok(())
    }

    async fn shipped_order(
        &self,
        order_id: &str,
    ) -> Result<Option<(ShippedOrder, Units)>, DocTableError> {
        Ok(self.tables().shipped.get(order_id).cloned())
    }

    async fn request_return(
        &self,
        ret: &Return,
        requested: &OutgoingEvent,
        _shipped: &ShippedOrder,
    ) -> Result<Requested, DocTableError> {
        let pk = format!("RETURN#{}", ret.return_id);
        let entry = outbox_entry(requested, &pk)?;
        let mut tables = self.tables();
        if let Some(existing) = tables.returns.get(&ret.return_id) {
            return Ok(Requested::Exists(existing.ret.clone()));
        }
        let asked = ret.units();
        let Some((shipped, returned)) = tables.shipped.get_mut(&ret.order_id) else {
            return Ok(Requested::NotShipped);
        };
        if let Some(exceeds) = exceeded(shipped, returned, &asked) {
            return Ok(exceeds);
        }
        for (sku, units) in asked {
            *returned.entry(sku).or_default() += units;
        }
        self.changes
            .record(&format!("SHIPPED#{}", ret.order_id), Some(None), None);
        self.changes.record(&pk, None, Some(&entry));
        tables.returns.insert(
            ret.return_id.clone(),
            StoredReturn {
                ret: ret.clone(),
                state: state::REQUESTED,
                outbox: entry,
            },
        );
        Ok(Requested::Stored(ret.clone()))
    }

    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError> {
        Ok(self
            .tables()
            .returns
            .get(return_id)
            .map(|stored| stored.ret.clone()))
    }

    async fn receive_return(
        &self,
        received: &Return,
        fact: &OutgoingEvent,
    ) -> Result<Option<Receipt>, DocTableError> {
        let pk = format!("RETURN#{}", received.return_id);
        let entry = outbox_entry(fact, &pk)?;
        let mut tables = self.tables();
        let Some(stored) = tables.returns.get_mut(&received.return_id) else {
            return Ok(None);
        };
        if stored.state == state::RECEIVED {
            return Ok(Some(Receipt::AlreadyReceived(stored.ret.clone())));
        }
        self.changes
            .record(&pk, Some(Some(&stored.outbox)), Some(&entry));
        *stored = StoredReturn {
            ret: received.clone(),
            state: state::RECEIVED,
            outbox: entry,
        };
        Ok(Some(Receipt::Received(received.clone())))
    }
}

/// Attempts of a return request's transaction when DynamoDB cancels it for a conflict with a
/// concurrent transaction on the same items (it does not retry those itself); the next attempt
/// sees the other one's outcome.
const TRANSACTION_ATTEMPTS: u32 = 3;

/// DynamoDB adapter. Items of the support table:
/// - `SHIPPED#<order>`: `doc` (the shipped order), and one `returned#<SKU>` number per SKU its
///   returns took;
/// - `RETURN#<id>`: `doc` (the return), `state` (Requested, Received), `outbox` (the fact its
///   latest write made true).
#[derive(Debug, Clone)]
pub struct DynamoDbSupportStore {
    table: DocTable,
}

impl DynamoDbSupportStore {
    /// An adapter for `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: DocTable::new(client, table),
        }
    }

    /// The units per SKU a `SHIPPED#` item says its returns took.
    fn returned(item: &HashMap<String, AttributeValue>) -> Units {
        item.iter()
            .filter_map(|(name, value)| {
                let sku = name.strip_prefix("returned#")?;
                let units = value.as_n().ok()?.parse().ok()?;
                Some((sku.to_owned(), units))
            })
            .collect()
    }

    /// The two writes of a return request: the return with its fact, if it is new; its units
    /// added to the shipped order's counters, if each stays within what was shipped.
    fn request_items(
        &self,
        ret: &Return,
        requested: &OutgoingEvent,
        shipped: &ShippedOrder,
    ) -> Result<[TransactWriteItem; 2], DocTableError> {
        let pk = format!("RETURN#{}", ret.return_id);
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            self.table.corrupt(&pk, format!("transaction: {e}"))
        };
        let put = Put::builder()
            .table_name(self.table.name())
            .item("pk", AttributeValue::S(pk.clone()))
            .item("doc", self.table.encode(&pk, ret)?)
            .item("state", AttributeValue::S(state::REQUESTED.to_owned()))
            .item(
                OUTBOX_ATTRIBUTE,
                AttributeValue::S(outbox_entry(requested, &pk)?),
            )
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build)?;
        let shipped_units = shipped.units();
        let mut sets = Vec::new();
        let mut condition = "attribute_exists(pk)".to_owned();
        let mut update = Update::builder()
            .table_name(self.table.name())
            .key("pk", AttributeValue::S(format!("SHIPPED#{}", ret.order_id)))
            .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()));
        for (i, (sku, asked)) in ret.units().into_iter().enumerate() {
            // Checked by the domain before; a SKU it let through is within what was shipped.
            let limit = shipped_units
                .get(&sku)
                .copied()
                .unwrap_or(0)
                .saturating_sub(asked);
            sets.push(format!("#r{i} = if_not_exists(#r{i}, :zero) + :q{i}"));
            condition.push_str(&format!(
                " AND (attribute_not_exists(#r{i}) OR #r{i} <= :l{i})"
            ));
            update = update
                .expression_attribute_names(format!("#r{i}"), returned_attribute(&sku))
                .expression_attribute_values(format!(":q{i}"), AttributeValue::N(asked.to_string()))
                .expression_attribute_values(
                    format!(":l{i}"),
                    AttributeValue::N(limit.to_string()),
                );
        }
        let update = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build)?;
        Ok([
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
        ])
    }
}

#[async_trait]
impl SupportStore for DynamoDbSupportStore {
    async fn put_shipped_order(&self, order: &ShippedOrder) -> Result<(), DocTableError> {
        self.table
            .put_doc(&format!("SHIPPED#{}", order.order_id), order)
            .await
    }

    async fn shipped_order(
        &self,
        order_id: &str,
    ) -> Result<Option<(ShippedOrder, Units)>, DocTableError> {
        let pk = format!("SHIPPED#{order_id}");
        let Some(item) = self.table.get_item(&pk).await? else {
            return Ok(None);
        };
        Ok(Some((
            self.table.decode(&pk, &item)?,
            Self::returned(&item),
        )))
    }

    async fn request_return(
        &self,
        ret: &Return,
        requested: &OutgoingEvent,
        shipped: &ShippedOrder,
    ) -> Result<Requested, DocTableError> {
        let pk = format!("RETURN#{}", ret.return_id);
        let [put, update] = self.request_items(ret, requested, shipped)?;
        let mut attempt = 1;
        loop {
            let result = self
                .table
                .client()
                .transact_write_items()
                .transact_items(put.clone())
                .transact_items(update.clone())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Requested::Stored(ret.clone())),
                Err(err) => err.into_service_error(),
            };
            let TransactWriteItemsError::TransactionCanceledException(cancelled) = &err else {
                return Err(self.table.sdk_error("TransactWriteItems", err));
            };
            let reasons = cancelled.cancellation_reasons();
            let failed = |i: usize| {
                reasons
                    .get(i)
                    .filter(|r| r.code() == Some("ConditionalCheckFailed"))
            };
            if let Some(existing) = failed(0) {
                // The return exists: this request ran before (its units were counted then).
                let item = existing
                    .item()
                    .ok_or_else(|| self.table.corrupt(&pk, "condition failed without ALL_OLD"))?;
                return Ok(Requested::Exists(self.table.decode(&pk, item)?));
            }
            if let Some(counters) = failed(1) {
                return Ok(match counters.item() {
                    None => Requested::NotShipped,
                    Some(item) => exceeded(shipped, &Self::returned(item), &ret.units())
                        // The condition failed, so some SKU exceeded when it was checked; the
                        // counters it returned say which. Should they not (they only grow),
                        // the request is refused on the first SKU.
                        .unwrap_or_else(|| {
                            let (sku, asked) = ret.units().into_iter().next().unwrap_or_default();
                            Requested::Exceeds {
                                sku,
                                asked,
                                returnable: 0,
                            }
                        }),
                });
            }
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if !conflict || attempt >= TRANSACTION_ATTEMPTS {
                return Err(self.table.sdk_error("TransactWriteItems", err));
            }
            attempt += 1;
        }
    }

    async fn get_return(&self, return_id: &str) -> Result<Option<Return>, DocTableError> {
        self.table.get(&format!("RETURN#{return_id}")).await
    }

    async fn receive_return(
        &self,
        received: &Return,
        fact: &OutgoingEvent,
    ) -> Result<Option<Receipt>, DocTableError> {
        let pk = format!("RETURN#{}", received.return_id);
        let result = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key("pk", AttributeValue::S(pk.clone()))
            .update_expression("SET doc = :doc, #state = :received, #outbox = :outbox")
            .condition_expression("#state IN (:requested, :receiving)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#outbox", OUTBOX_ATTRIBUTE)
            .expression_attribute_values(":doc", self.table.encode(&pk, received)?)
            .expression_attribute_values(":outbox", AttributeValue::S(outbox_entry(fact, &pk)?))
            .expression_attribute_values(":received", AttributeValue::S(state::RECEIVED.into()))
            .expression_attribute_values(":requested", AttributeValue::S(state::REQUESTED.into()))
            .expression_attribute_values(":receiving", AttributeValue::S(state::RECEIVING.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Some(Receipt::Received(received.clone()))),
            Err(err) => err.into_service_error(),
        };
        let UpdateItemError::ConditionalCheckFailedException(failed) = &err else {
            return Err(self.table.sdk_error("UpdateItem", err));
        };
        // One round trip either way: ALL_OLD tells an absent return from a received one.
        let Some(item) = failed.item() else {
            return Ok(None);
        };
        match item
            .get("state")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
        {
            Some(state::RECEIVED) => Ok(Some(Receipt::AlreadyReceived(
                self.table.decode(&pk, item)?,
            ))),
            other => Err(self
                .table
                .corrupt(&pk, format!("receipt refused in state {other:?}"))),
        }
    }
}
