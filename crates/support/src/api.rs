//! `support-api`: `POST /returns`, `POST /returns/{id}/received`, `GET /returns/{id}`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contracts::{Detail, IdempotencyKey, Metadata, ReturnReceived};
use eventing::{EventPublisher, OutgoingEvent};
use idempotency::{Idempotency, IdempotencyError, Outcome, Request, RunError};
use platform::doc_table::DocTableError;
use platform::http::{ApiError, ApiRequest, ApiResponse, route};

use crate::domain::{InvalidReturn, RequestReturn, Return};
use crate::store::{Receipt, SupportStore};

/// Response header set on a replayed request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Why a claimed return request did not complete (the claim is released).
#[derive(Debug, thiserror::Error)]
pub enum ReturnError {
    /// Support has not seen the order ship.
    #[error("order {0} has not shipped (or support has not seen it ship yet)")]
    NotShipped(String),
    /// The lines do not match the shipment.
    #[error(transparent)]
    Invalid(#[from] InvalidReturn),
    /// The support table failed.
    #[error(transparent)]
    Store(#[from] DocTableError),
    /// The event could not be published.
    #[error(transparent)]
    Publish(#[from] eventing::PublishError),
    /// The event could not be built.
    #[error(transparent)]
    Event(#[from] eventing::EventingError),
}

impl From<ReturnError> for ApiError {
    fn from(e: ReturnError) -> Self {
        match e {
            ReturnError::NotShipped(_) => ApiError::new(409, "OrderNotShipped", e.to_string()),
            ReturnError::Invalid(_) => ApiError::bad_request("InvalidReturn", e.to_string()),
            other => ApiError::unavailable(other),
        }
    }
}

/// The support HTTP API over its ports.
#[derive(Clone)]
pub struct SupportApi {
    idempotency: Idempotency,
    store: Arc<dyn SupportStore>,
    publisher: Arc<dyn EventPublisher>,
    clock: fn() -> DateTime<Utc>,
}

impl SupportApi {
    /// Wires the API to its idempotency layer, store and publisher.
    pub fn new(
        idempotency: Idempotency,
        store: Arc<dyn SupportStore>,
        publisher: Arc<dyn EventPublisher>,
    ) -> Self {
        Self {
            idempotency,
            store,
            publisher,
            clock: Utc::now,
        }
    }

    /// Handles one request; never fails: every error is an HTTP answer.
    pub async fn handle(&self, request: &ApiRequest, remaining: Option<Duration>) -> ApiResponse {
        let result = if route(request, "POST", &["returns"]).is_some() {
            self.request_return(request, remaining).await
        } else if let Some(params) = route(request, "POST", &["returns", "*", "received"]) {
            self.receive(params[0]).await
        } else if let Some(params) = route(request, "GET", &["returns", "*"]) {
            match self.store.get_return(params[0]).await {
                Ok(Some(ret)) => Ok(ApiResponse::json(200, &ret)),
                Ok(None) => Err(ApiError::not_found(format!("return {}", params[0]))),
                Err(e) => Err(ApiError::unavailable(e)),
            }
        } else {
            Err(ApiError::new(
                404,
                "RouteNotFound",
                format!("no route for {} {}", request.method, request.path),
            ))
        };
        result.unwrap_or_else(ApiResponse::from)
    }

    async fn request_return(
        &self,
        request: &ApiRequest,
        remaining: Option<Duration>,
    ) -> Result<ApiResponse, ApiError> {
        let key = request.header("idempotency-key").ok_or_else(|| {
            ApiError::bad_request(
                "MissingIdempotencyKey",
                "the Idempotency-Key header is required",
            )
        })?;
        let key = IdempotencyKey::new(key)
            .map_err(|e| ApiError::bad_request("InvalidIdempotencyKey", e.to_string()))?;
        let body: RequestReturn = request.json()?;
        body.validate()
            .map_err(|e| ApiError::bad_request("InvalidReturn", e.to_string()))?;

        let material =
            serde_json::json!({ "order-id": body.order_id, "idempotency-key": key.as_str() });
        let mut idem = Request::new(&material)
            .and_then(|r| r.validate(&body))
            .map_err(ApiError::internal)?;
        if let Some(remaining) = remaining {
            idem = idem.remaining_time(remaining);
        }
        let key_hash = idem.key_hash().unwrap_or_default().to_owned();
        match self
            .idempotency
            .run(&idem, || self.create_return(body, key))
            .await
        {
            Ok(Outcome::Fresh(ret)) => {
                tracing::info!(return_id = %ret.return_id, key_hash, outcome = "fresh", "return requested");
                Ok(ApiResponse::json(201, &ret))
            }
            Ok(Outcome::Replayed(ret)) => {
                tracing::info!(return_id = %ret.return_id, key_hash, outcome = "replayed", "return request replayed");
                Ok(ApiResponse::json(201, &ret).with_header(REPLAYED_HEADER, "true"))
            }
            Ok(Outcome::InProgress) => Err(ApiError::new(
                409,
                "RequestInProgress",
                "a request with this Idempotency-Key is still in progress; retry shortly",
            )),
            Err(RunError::Idempotency(IdempotencyError::Validation { .. })) => Err(ApiError::new(
                422,
                "IdempotencyKeyReused",
                "this Idempotency-Key was already used with a different request body",
            )),
            Err(RunError::Idempotency(e)) => Err(ApiError::unavailable(e)),
            Err(RunError::Operation(e)) => Err(e.into()),
        }
    }

    async fn create_return(
        &self,
        body: RequestReturn,
        key: IdempotencyKey,
    ) -> Result<Return, ReturnError> {
        let shipped = self
            .store
            .shipped_order(&body.order_id)
            .await?
            .ok_or_else(|| ReturnError::NotShipped(body.order_id.clone()))?;
        let ret = Return::request(body, &shipped, key.clone(), (self.clock)())?;
        let ret = self.store.insert_return(&ret).await?;
        let metadata = Metadata::first(key, ret.order_id.clone(), ret.requested_at);
        let event = OutgoingEvent::new(&Detail::new(metadata, ret.requested_event()))?;
        self.publisher.publish(std::slice::from_ref(&event)).await?;
        Ok(ret)
    }

    /// Naturally idempotent, with every publication carrying the same data: the receipt (and its
    /// `received-at`) is stored before the fact is published, and marked done after. A retry or a
    /// concurrent request re-publishes the stored fact under the same derived key, which
    /// downstream deduplicates; a crash between the steps cannot lose the fact.
    async fn receive(&self, return_id: &str) -> Result<ApiResponse, ApiError> {
        let current = self
            .store
            .get_return(return_id)
            .await
            .map_err(ApiError::unavailable)?
            .ok_or_else(|| ApiError::not_found(format!("return {return_id}")))?;
        let receipt = self
            .store
            .begin_receipt(&current.received((self.clock)()))
            .await
            .map_err(ApiError::unavailable)?
            .ok_or_else(|| ApiError::not_found(format!("return {return_id}")))?;
        let (received, replayed) = match receipt {
            Receipt::Done(done) => {
                return Ok(ApiResponse::json(200, &done).with_header(REPLAYED_HEADER, "true"));
            }
            Receipt::Started(received) => (received, false),
            Receipt::Pending(received) => (received, true),
        };
        let data = received
            .received_event()
            .ok_or_else(|| ApiError::internal("received return without a date"))?;
        let metadata = Metadata {
            idempotency_key: received
                .request_key
                .derive(contracts::detail_type::RETURN_RECEIVED),
            ..Metadata::first(
                received.request_key.clone(),
                received.order_id.clone(),
                data.received_at,
            )
        };
        let event = OutgoingEvent::new(&Detail::<ReturnReceived>::new(metadata, data))
            .map_err(ApiError::internal)?;
        self.publisher
            .publish(std::slice::from_ref(&event))
            .await
            .map_err(ApiError::unavailable)?;
        self.store
            .finish_receipt(&received)
            .await
            .map_err(ApiError::unavailable)?;
        tracing::info!(return_id, replayed, "return received");
        let response = ApiResponse::json(200, &received);
        Ok(if replayed {
            response.with_header(REPLAYED_HEADER, "true")
        } else {
            response
        })
    }
}
