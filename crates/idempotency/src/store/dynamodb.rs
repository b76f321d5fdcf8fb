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

const CLAIM_CONDITION: &str =
    "attribute_not_exists(#id) OR #exp < :now OR (#st = :inprogress AND #ipe < :now_ms)";
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

/// Parses a stored item. Public for adapters and tests that read the table directly.
pub(crate) fn from_item(
    layout: &TableLayout,
    item: &HashMap<String, AttributeValue>,
    operation: StoreOperation,
) -> Result<Record, StoreError> {
    let names = &layout.attributes;
    let string = |name: &str| -> Result<Option<String>, StoreError> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
            Some(_) => Err(StoreError::malformed(
                operation,
                format!("attribute {name} is not a string"),
            )),
        }
    };
    let number = |name: &str| -> Result<Option<u64>, StoreError> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(s)) => s.parse().map(Some).map_err(|_| {
                StoreError::malformed(
                    operation,
                    format!("attribute {name} is not an unsigned integer: {s}"),
                )
            }),
            Some(_) => Err(StoreError::malformed(
                operation,
                format!("attribute {name} is not a number"),
            )),
        }
    };
    let required =
        |name: &str| StoreError::malformed(operation, format!("attribute {name} missing"));
    let id = string(&names.id)?.ok_or_else(|| required(&names.id))?;
    let status_text = string(&names.status)?.ok_or_else(|| required(&names.status))?;
    let status = Status::parse(&status_text).ok_or_else(|| {
        StoreError::malformed(operation, format!("unknown status {status_text:?}"))
    })?;
    let record = Record {
        id,
        status,
        expiration: number(&names.expiration)?.ok_or_else(|| required(&names.expiration))?,
        in_progress_expiration: number(&names.in_progress_expiration)?,
        data: string(&names.data)?,
        validation: string(&names.validation)?,
        owner: string(&names.owner)?.unwrap_or_default(),
    };
    if record.status == Status::Completed && record.data.is_none() {
        return Err(required(&names.data));
    }
    Ok(record)
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
