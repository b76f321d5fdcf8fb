//! A DynamoDB table of JSON documents keyed by `pk`, with the few conditional writes the domains
//! need, each one round trip. Domain stores wrap it behind their own capability traits.
//!
//! Item layout: `pk` (S, `<TYPE>#<id>`), `doc` (S, the document as JSON), `state` (S, optional, a
//! small status that conditional transitions test without parsing `doc`).

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

    fn corrupt(&self, pk: &str, problem: impl std::fmt::Display) -> DocTableError {
        DocTableError::Corrupt {
            table: self.table.clone(),
            pk: pk.to_owned(),
            problem: problem.to_string(),
        }
    }

    fn sdk(
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

    fn decode<T: DeserializeOwned>(
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

    fn encode<T: Serialize>(&self, pk: &str, doc: &T) -> Result<AttributeValue, DocTableError> {
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
                other => Err(self.sdk("PutItem", other)),
            },
        }
    }

    /// Writes `doc` whatever is there (projections of full-state events).
    pub async fn put<T: Serialize>(&self, pk: &str, doc: &T) -> Result<(), DocTableError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("doc", self.encode(pk, doc)?)
            .send()
            .await
            .map_err(|e| self.sdk("PutItem", e.into_service_error()))?;
        Ok(())
    }

    /// Replaces the document only while its `state` is `from`, setting it to `to`. Returns false
    /// when the condition failed (another writer moved it, or it does not exist).
    pub async fn transition<T: Serialize>(
        &self,
        pk: &str,
        doc: &T,
        from: &str,
        to: &str,
    ) -> Result<bool, DocTableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("doc", self.encode(pk, doc)?)
            .item("state", AttributeValue::S(to.to_owned()))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(self.sdk("PutItem", other)),
            },
        }
    }

    /// The document at `pk` with its `state` attribute (strongly consistent).
    pub async fn get_with_state<T: DeserializeOwned>(
        &self,
        pk: &str,
    ) -> Result<Option<(T, Option<String>)>, DocTableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk("GetItem", e.into_service_error()))?;
        out.item
            .as_ref()
            .map(|item| {
                let state = item.get("state").and_then(|v| v.as_s().ok()).cloned();
                Ok((self.decode(pk, item)?, state))
            })
            .transpose()
    }

    /// The document at `pk` (strongly consistent).
    pub async fn get<T: DeserializeOwned>(&self, pk: &str) -> Result<Option<T>, DocTableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk("GetItem", e.into_service_error()))?;
        out.item
            .as_ref()
            .map(|item| self.decode(pk, item))
            .transpose()
    }
}
