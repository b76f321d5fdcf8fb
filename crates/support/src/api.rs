//! `support-api`: `POST /returns`, `POST /returns/{id}/received`, `GET /returns/{id}`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contracts::{Detail, IdempotencyKey, Metadata, ReturnReceived, ReturnRequested};
use eventing::OutgoingEvent;
use idempotency::{Idempotency, IdempotencyError, Outcome, Request, RunError};
use platform::budget::Budget;
use platform::doc_table::DocTableError;
use platform::http::{ApiError, ApiRequest, ApiResponse, route};

use crate::domain::{InvalidReturn, RequestReturn, Return};
use crate::store::{Receipt, Requested, SupportStore};

/// Response header set on a replayed request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Why a claimed return request did not complete (the claim is released).
#[derive(Debug, thiserror::Error)]
pub enum ReturnError {
    /// Support has not seen the order ship.
    #[error("order {0} has not shipped (or support has not seen it ship yet)")]
    NotShipped(String),
    /// The lines do not match the shipment, or ask more than may still be returned.
    #[error(transparent)]
    Invalid(#[from] InvalidReturn),
    /// The support table failed.
    #[error(transparent)]
    Store(#[from] DocTableError),
    /// The event could not be built.
    #[error(transparent)]
    Event(#[from] eventing::EventingError),
}

impl From<ReturnError> for ApiError {
    fn from(e: ReturnError) -> Self {
        match e {
            ReturnError::NotShipped(_) => ApiError::new(409, "OrderNotShipped", e.to_string()),
            ReturnError::Invalid(InvalidReturn::ExceedsShipped {
                ref sku,
                asked,
                returnable,
            }) => ApiError::new(409, "ReturnExceedsShipped", e.to_string())
                .with_detail("sku", sku.as_str())
                .with_detail("asked", asked)
                .with_detail("returnable", returnable),
            ReturnError::Invalid(_) => ApiError::bad_request("InvalidReturn", e.to_string()),
            other => ApiError::unavailable(other),
        }
    }
}

/// The support HTTP API over its ports. It never publishes: each return is stored with the
/// fact it makes true in one write, which `support-outbox-relay` publishes from the table's
/// stream.
#[derive(Clone)]
pub struct SupportApi {
    idempotency: Idempotency,
    store: Arc<dyn SupportStore>,
    /// The scope that makes a caller warehouse staff (who alone may mark a return received).
    staff_scope: String,
    clock: fn() -> DateTime<Utc>,
}

impl SupportApi {
    /// Wires the API to its idempotency layer and store; `staff_scope` is the scope a caller
    /// needs to mark a return received.
    pub fn new(
        idempotency: Idempotency,
        store: Arc<dyn SupportStore>,
        staff_scope: impl Into<String>,
    ) -> Self {
        Self {
            idempotency,
            store,
            staff_scope: staff_scope.into(),
            clock: Utc::now,
        }
    }

    /// Handles one request; never fails: every error is an HTTP answer. With the invocation's
    /// `remaining` time, the work stops before Lambda's deadline and answers a typed 503
    /// (`DeadlineExceeded`) rather than let the invocation be killed.
    pub async fn handle(&self, request: &ApiRequest, remaining: Option<Duration>) -> ApiResponse {
        let routed = self.route(request, remaining);
        let result = match remaining {
            Some(remaining) => Budget::from_remaining(remaining)
                .run(routed)
                .await
                .unwrap_or_else(|e| Err(ApiError::from(e))),
            None => routed.await,
        };
        result.unwrap_or_else(ApiResponse::from)
    }

    async fn route(
        &self,
        request: &ApiRequest,
        remaining: Option<Duration>,
    ) -> Result<ApiResponse, ApiError> {
        if route(request, "POST", &["returns"]).is_some() {
            self.request_return(request, remaining).await
        } else if let Some(params) = route(request, "POST", &["returns", "*", "received"]) {
            // Staff only, whatever the route's own authorization says (defence in depth).
            request.require_scope(&self.staff_scope)?;
            self.receive(params[0]).await
        } else if let Some(params) = route(request, "GET", &["returns", "*"]) {
            // The caller's own return; another customer's is answered as if it did not exist.
            let caller = request.caller()?;
            match self.store.get_return(params[0]).await {
                Ok(Some(ret)) if ret.customer_id == caller.subject() => {
                    Ok(ApiResponse::json(200, &ret))
                }
                Ok(_) => Err(ApiError::not_found(format!("return {}", params[0]))),
                Err(e) => Err(ApiError::unavailable(e)),
            }
        } else {
            Err(ApiError::new(
                404,
                "RouteNotFound",
                format!("no route for {} {}", request.method, request.path),
            ))
        }
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

        // Scoped by the caller too: a stranger's request with another customer's order and key
        // claims its own record, never replays theirs.
        let customer = request.caller()?.subject().to_owned();
        let material = serde_json::json!({ "customer-id": customer,
            "order-id": body.order_id, "idempotency-key": key.as_str() });
        let mut idem = Request::new(&material)
            .and_then(|r| r.validate(&body))
            .map_err(ApiError::internal)?;
        if let Some(remaining) = remaining {
            idem = idem.remaining_time(remaining);
        }
        let key_hash = idem.key_hash().unwrap_or_default().to_owned();
        let return_id = Return::id_for(&body.order_id, &key);
        match self
            .idempotency
            .run(&idem, || self.create_return(body, key, &customer))
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
            Err(RunError::Idempotency(IdempotencyError::UnreadableResult {
                record_id,
                reason,
            })) => {
                // The request completed, but its stored answer cannot be read (written by another
                // version): the return it made is the answer, found by its derived id.
                tracing::warn!(
                    key_hash,
                    record_id,
                    ?reason,
                    outcome = "unreadable",
                    "stored return result unreadable; answering from the support table"
                );
                match self.store.get_return(&return_id).await {
                    Ok(Some(ret)) => {
                        Ok(ApiResponse::json(201, &ret).with_header(REPLAYED_HEADER, "true"))
                    }
                    Ok(None) => Err(ApiError::new(
                        500,
                        "StoredResultUnreadable",
                        "this Idempotency-Key's request completed but its result cannot be read; \
                         contact support with the request id",
                    )),
                    Err(e) => Err(ApiError::unavailable(e)),
                }
            }
            Err(RunError::Idempotency(e)) => Err(ApiError::unavailable(e)),
            Err(RunError::Operation(e)) => Err(e.into()),
        }
    }

    /// The claimed path: the return, its `ReturnRequested` fact and its units counted against
    /// the shipped order, in one conditional write. A re-run finds the stored return.
    async fn create_return(
        &self,
        body: RequestReturn,
        key: IdempotencyKey,
        customer: &str,
    ) -> Result<Return, ReturnError> {
        // Another customer's order is answered as one support has not seen ship: no existence
        // leak.
        let (shipped, returned) = self
            .store
            .shipped_order(&body.order_id)
            .await?
            .filter(|(shipped, _)| shipped.customer_id == customer)
            .ok_or_else(|| ReturnError::NotShipped(body.order_id.clone()))?;
        let ret = Return::request(body, &shipped, &returned, key, (self.clock)())?;
        let metadata = Metadata::first(ret.requested_key(), ret.order_id.clone(), ret.requested_at);
        let requested = OutgoingEvent::new(&Detail::<ReturnRequested>::new(
            metadata,
            ret.requested_event(),
        ))?
        .with_invocation_trace();
        match self
            .store
            .request_return(&ret, &requested, &shipped)
            .await?
        {
            Requested::Stored(ret) | Requested::Exists(ret) => Ok(ret),
            Requested::Exceeds {
                sku,
                asked,
                returnable,
            } => Err(InvalidReturn::ExceedsShipped {
                sku,
                asked,
                returnable,
            }
            .into()),
            Requested::NotShipped => Err(ReturnError::NotShipped(ret.order_id)),
        }
    }

    /// Naturally idempotent: one conditional write moves the return to Received with its
    /// `ReturnReceived` fact (the outbox), so the fact goes out whether or not the client ever
    /// retries. A retry or a concurrent request finds it received and answers the return as
    /// first received; every copy of the fact carries the same data and key.
    async fn receive(&self, return_id: &str) -> Result<ApiResponse, ApiError> {
        let current = self
            .store
            .get_return(return_id)
            .await
            .map_err(ApiError::unavailable)?
            .ok_or_else(|| ApiError::not_found(format!("return {return_id}")))?;
        let received = current.received((self.clock)());
        let data = received
            .received_event()
            .ok_or_else(|| ApiError::internal("received return without a date"))?;
        let metadata = Metadata {
            idempotency_key: received
                .requested_key()
                .derive(contracts::detail_type::RETURN_RECEIVED),
            ..Metadata::first(
                received.requested_key(),
                received.order_id.clone(),
                data.received_at,
            )
        };
        let fact = OutgoingEvent::new(&Detail::<ReturnReceived>::new(metadata, data))
            .map_err(ApiError::internal)?
            .with_invocation_trace();
        match self
            .store
            .receive_return(&received, &fact)
            .await
            .map_err(ApiError::unavailable)?
        {
            None => Err(ApiError::not_found(format!("return {return_id}"))),
            Some(Receipt::Received(received)) => {
                tracing::info!(return_id, outcome = "fresh", "return received");
                Ok(ApiResponse::json(200, &received))
            }
            Some(Receipt::AlreadyReceived(received)) => {
                tracing::info!(return_id, outcome = "replayed", "return received before");
                Ok(ApiResponse::json(200, &received).with_header(REPLAYED_HEADER, "true"))
            }
        }
    }
}
