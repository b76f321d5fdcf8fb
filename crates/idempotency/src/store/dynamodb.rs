//! DynamoDB store: one conditional request per primitive.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use crate::config::TableLayout;
use crate::error::{StoreError, StoreOperation};
use crate::record::{Record, Status};
use crate::store::{ClaimResult, FencedWrite, IdempotencyStore};

/// The claim's condition: no record, or one a claim may replace. Beyond DESIGN.md's three
/// clauses (absent, expired, abandoned in-progress claim), it makes items this version cannot
/// read claimable instead of wedging their key for ever (see [`from_item`]): one without a
/// numeric `expiration` (TTL never deletes it, and no comparison with `:now` is ever true for
/// it), and one whose status is neither INPROGRESS nor COMPLETED, once its
/// `in_progress_expiration` passed or at once when it has none. Every comparison is guarded by
/// the attribute's type: DynamoDB finds a comparison across types false anyway; the guards say
/// so, and keep the local stand-in (which fails on such a comparison) in agreement.
const CLAIM_CONDITION: &str = "attribute_not_exists(#id) \
     OR NOT attribute_type(#exp, :number) OR #exp < :now \
     OR (#st = :inprogress AND attribute_type(#ipe, :number) AND #ipe < :now_ms) \
     OR (NOT (#st IN (:inprogress, :completed)) \
         AND (NOT attribute_type(#ipe, :number) OR #ipe < :now_ms))";
const OWNER_CONDITION: &str = "#own = :owner";

/// An [`IdempotencyStore`] on a DynamoDB table (partition key `id`, or a static partition key
/// plus sort key `id`; TTL on `expiration`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    /// A store on `table`. The client's configuration (region, endpoint, retries) is used as is.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn key(layout: &TableLayout, id: &str) -> HashMap<String, AttributeValue> {
    let mut key = HashMap::with_capacity(2);
    if let Some((attribute, value)) = &layout.static_partition_key {
        key.insert(attribute.clone(), AttributeValue::S(value.clone()));
    }
    key.insert(
        layout.attributes.id.clone(),
        AttributeValue::S(id.to_owned()),
    );
    key
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn to_item(layout: &TableLayout, record: &Record) -> HashMap<String, AttributeValue> {
    let names = &layout.attributes;
    let mut item = key(layout, &record.id);
    item.insert(
        names.status.clone(),
        AttributeValue::S(record.status.as_str().to_owned()),
    );
    item.insert(names.expiration.clone(), n(record.expiration));
    if let Some(ipe) = record.in_progress_expiration {
        item.insert(names.in_progress_expiration.clone(), n(ipe));
    }
    if let Some(data) = &record.data {
        item.insert(names.data.clone(), AttributeValue::S(data.clone()));
    }
    if let Some(validation) = &record.validation {
        item.insert(
            names.validation.clone(),
            AttributeValue::S(validation.clone()),
        );
    }
    item.insert(names.owner.clone(), AttributeValue::S(record.owner.clone()));
    item
}

/// Reads a stored item as a [`Record`], whatever version of the library (or which hand) wrote
/// it: an item this version cannot fully read must never wedge its key, so only an item without
/// its `id` (which DynamoDB's key schema rules out) is an error. The rest is read as follows, and
/// [`CLAIM_CONDITION`] agrees, so [`Record::state_at`] stays the negation of the condition:
///
/// - `data` missing (renamed by another version) or not a string: no result. A COMPLETED record
///   without one is an unreadable replay: the operation ran, the caller acknowledges or answers
///   from its own state.
/// - `status` missing or neither INPROGRESS nor COMPLETED: a claim of unknown outcome, read as
///   INPROGRESS until its `in_progress_expiration`, and as already expired (claimable) without
///   one. Not a replay: nothing says the operation completed. Not live for ever either.
/// - `expiration` missing or not a number: expired (claimable). A number that is not an
///   unsigned integer is read the way DynamoDB compares it (fractions cut, below 0 is 0, beyond
///   `u64::MAX` is `u64::MAX`).
/// - `in_progress_expiration` missing or not a number: none (an INPROGRESS record then lives
///   until `expiration`, as DynamoDB's condition says).
/// - `validation` not a string: none (with validation on, the request is then refused as a
///   payload mismatch until the record expires); `owner` missing: empty.
pub(crate) fn from_item(
    layout: &TableLayout,
    item: &HashMap<String, AttributeValue>,
    operation: StoreOperation,
) -> Result<Record, StoreError> {
    let names = &layout.attributes;
    let string = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    let number = |name: &str| match item.get(name) {
        // `as` saturates (and maps NaN to 0), which is DynamoDB's order for these values.
        Some(AttributeValue::N(s)) => s
            .parse::<u64>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().map(|f| f as u64)),
        _ => None,
    };
    let id = string(&names.id).ok_or_else(|| {
        StoreError::malformed(operation, format!("attribute {} missing", names.id))
    })?;
    let in_progress_expiration = number(&names.in_progress_expiration);
    let (status, in_progress_expiration) =
        match string(&names.status).as_deref().and_then(Status::parse) {
            Some(status) => (status, in_progress_expiration),
            None => {
                tracing::warn!(
                    record_id = %id,
                    "idempotency record with an unknown status: read as a claim of unknown outcome"
                );
                (
                    Status::InProgress,
                    Some(in_progress_expiration.unwrap_or(0)),
                )
            }
        };
    Ok(Record {
        id,
        status,
        expiration: number(&names.expiration).unwrap_or(0),
        in_progress_expiration,
        data: string(&names.data),
        validation: string(&names.validation),
        owner: string(&names.owner).unwrap_or_default(),
    })
}

#[async_trait::async_trait]
impl IdempotencyStore for DynamoDbStore {
    async fn claim(
        &self,
        layout: &TableLayout,
        record: &Record,
        now_millis: u64,
    ) -> Result<ClaimResult, StoreError> {
        let names = &layout.attributes;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(layout, record)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#id", &names.id)
            .expression_attribute_names("#exp", &names.expiration)
            .expression_attribute_names("#st", &names.status)
            .expression_attribute_names("#ipe", &names.in_progress_expiration)
            .expression_attribute_values(":now", n(now_millis / 1000))
            .expression_attribute_values(":now_ms", n(now_millis))
            .expression_attribute_values(
                ":inprogress",
                AttributeValue::S(Status::InProgress.as_str().to_owned()),
            )
            .expression_attribute_values(
                ":completed",
                AttributeValue::S(Status::Completed.as_str().to_owned()),
            )
            .expression_attribute_values(":number", AttributeValue::S("N".to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimResult::Claimed),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let existing = failed
                        .item()
                        .map(|item| from_item(layout, item, StoreOperation::Claim))
                        .transpose()?;
                    Ok(ClaimResult::Conflict(existing))
                }
                _ => Err(StoreError::new(StoreOperation::Claim, e)),
            },
        }
    }

    async fn complete(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
        data: &str,
        expiration: u64,
    ) -> Result<FencedWrite, StoreError> {
        let names = &layout.attributes;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(layout, id)))
            .update_expression("SET #st = :completed, #data = :data, #exp = :exp")
            .condition_expression(OWNER_CONDITION)
            .expression_attribute_names("#st", &names.status)
            .expression_attribute_names("#data", &names.data)
            .expression_attribute_names("#exp", &names.expiration)
            .expression_attribute_names("#own", &names.owner)
            .expression_attribute_values(
                ":completed",
                AttributeValue::S(Status::Completed.as_str().to_owned()),
            )
            .expression_attribute_values(":data", AttributeValue::S(data.to_owned()))
            .expression_attribute_values(":exp", n(expiration))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(FencedWrite::Applied),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Ok(FencedWrite::NotOwner)
                }
                _ => Err(StoreError::new(StoreOperation::Complete, e)),
            },
        }
    }

    async fn release(
        &self,
        layout: &TableLayout,
        id: &str,
        owner: &str,
    ) -> Result<FencedWrite, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(layout, id)))
            .condition_expression(OWNER_CONDITION)
            .expression_attribute_names("#own", &layout.attributes.owner)
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(FencedWrite::Applied),
            Err(e) => match e.as_service_error() {
                // No old item: the record is already gone.
                Some(DeleteItemError::ConditionalCheckFailedException(failed))
                    if failed.item().is_none_or(HashMap::is_empty) =>
                {
                    Ok(FencedWrite::Applied)
                }
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                    Ok(FencedWrite::NotOwner)
                }
                _ => Err(StoreError::new(StoreOperation::Release, e)),
            },
        }
    }

    async fn get(&self, layout: &TableLayout, id: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(layout, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new(StoreOperation::Get, e))?;
        out.item()
            .map(|item| from_item(layout, item, StoreOperation::Get))
            .transpose()
    }
}
