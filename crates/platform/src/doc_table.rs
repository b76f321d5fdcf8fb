//! A DynamoDB table of JSON documents keyed by `pk`, with the few conditional writes the domains
//! need, each one round trip. Domain stores wrap it behind their own capability traits.
//!
//! Item layout: `pk` (S, `<TYPE>#<id>`), `doc` (S, the document as JSON), `state` (S, optional, a
//! small status that conditional writes test without parsing `doc`). Stores whose writes need
//! more (a transaction, an outbox attribute) build them with [`DocTable::client`] and the
//! encoding helpers here, so every store reads and writes documents the same way.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A failed document operation.
#[derive(Debug, thiserror::Error)]
pub enum DocTableError {
    /// The DynamoDB call failed (throttling, network, ...): retry.
    #[error("DynamoDB {operation} on {table} failed")]
    DynamoDb {
        /// The call.
        operation: &'static str,
        /// The table.
        table: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A document could not be written or read back.
    #[error("document {pk} in {table} is not valid: {problem}")]
    Corrupt {
        /// The table.
        table: String,
        /// The key.
        pk: String,
        /// What is wrong.
        problem: String,
    },
}

impl DocTableError {
    /// Stable error type string.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::DynamoDb { .. } => "StoreUnavailable",
            Self::Corrupt { .. } => "StoreCorrupt",
        }
    }
}

/// A table of JSON documents.
#[derive(Debug, Clone)]
pub struct DocTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DocTable {
    /// Documents in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client, for writes this type does not offer.
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// A [`DocTableError::Corrupt`] for the item `pk`.
    pub fn corrupt(&self, pk: &str, problem: impl std::fmt::Display) -> DocTableError {
        DocTableError::Corrupt {
            table: self.table.clone(),
            pk: pk.to_owned(),
            problem: problem.to_string(),
        }
    }

    /// A [`DocTableError::DynamoDb`] for a failed call.
    pub fn sdk_error(
        &self,
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> DocTableError {
        DocTableError::DynamoDb {
            operation,
            table: self.table.clone(),
            source: Box::new(source),
        }
    }

    /// The document of a stored item.
    pub fn decode<T: DeserializeOwned>(
        &self,
        pk: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<T, DocTableError> {
        let doc = item
            .get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| self.corrupt(pk, "no doc attribute"))?;
        serde_json::from_str(doc).map_err(|e| self.corrupt(pk, e))
    }

    /// A document as the `doc` attribute.
    pub fn encode<T: Serialize>(&self, pk: &str, doc: &T) -> Result<AttributeValue, DocTableError> {
        serde_json::to_string(doc)
            .map(AttributeValue::S)
            .map_err(|e| self.corrupt(pk, e))
    }

    /// Writes `doc` unless `pk` exists; returns what is stored afterwards (the existing document
    /// on a repeat). One conditional `PutItem`; ALL_OLD spares the read on a repeat.
    pub async fn put_new<T: Serialize + DeserializeOwned + Clone>(
        &self,
        pk: &str,
        doc: &T,
        state: Option<&str>,
    ) -> Result<T, DocTableError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("doc", self.encode(pk, doc)?)
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(state) = state {
            request = request.item("state", AttributeValue::S(state.to_owned()));
        }
        match request.send().await {
            Ok(_) => Ok(doc.clone()),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                    let existing = e.item().ok_or_else(|| self.corrupt(pk, "condition failed without ALL_OLD"))?;
                    self.decode(pk, existing)
                }
                other => Err(self.sdk_error("PutItem", other)),
            },
        }
    }

    /// Writes `doc` whatever is there (projections of full-state events), keeping the item's
    /// other attributes (counters other writes keep beside the document).
    pub async fn put_doc<T: Serialize>(&self, pk: &str, doc: &T) -> Result<(), DocTableError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .update_expression("SET doc = :doc")
            .expression_attribute_values(":doc", self.encode(pk, doc)?)
            .send()
            .await
            .map_err(|e| self.sdk_error("UpdateItem", e.into_service_error()))?;
        Ok(())
    }

    /// The item at `pk`, all its attributes (strongly consistent).
    pub async fn get_item(
        &self,
        pk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, DocTableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", e.into_service_error()))?;
        Ok(out.item)
    }

    /// The document at `pk` (strongly consistent).
    pub async fn get<T: DeserializeOwned>(&self, pk: &str) -> Result<Option<T>, DocTableError> {
        self.get_item(pk)
            .await?
            .as_ref()
            .map(|item| self.decode(pk, item))
            .transpose()
    }
}
