//! `orders-api`: `POST /orders` (idempotent create) and `GET /orders/{id}`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contracts::{Detail, IdempotencyKey, Metadata};
use eventing::OutgoingEvent;
use idempotency::{Idempotency, IdempotencyError, Outcome, Request, RunError};
use platform::budget::Budget;
use platform::http::{ApiError, ApiRequest, ApiResponse, route};

use crate::domain::{CreateOrder, Order};
use crate::store::{OrderStore, StoreError};

/// Response header set on a replayed create.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The body of `POST /orders`: the order without its customer, who is the caller (the token's
/// subject). A `customer-id` may still be sent (clients written before authentication did);
/// one that names someone else is refused, never used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OrderRequest {
    /// Must be absent or the caller's own id.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// ISO 4217 code of a supported currency.
    pub currency: contracts::Currency,
    /// The lines ordered.
    pub items: Vec<contracts::OrderItem>,
}

impl OrderRequest {
    /// The order `customer` asks for; a 400 when the body names another customer.
    pub fn for_customer(self, customer: &str) -> Result<CreateOrder, ApiError> {
        if self
            .customer_id
            .as_deref()
            .is_some_and(|named| named != customer)
        {
            return Err(ApiError::bad_request(
                "CustomerMismatch",
                "customer-id names another customer than the caller; omit it (the customer is the token's subject)",
            ));
        }
        Ok(CreateOrder {
            customer_id: customer.to_owned(),
            currency: self.currency,
            items: self.items,
        })
    }
}

/// Why a create that was claimed did not complete (its claim is released: the client may retry).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The orders table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event could not be built.
    #[error(transparent)]
    Event(#[from] eventing::EventingError),
}

/// The orders HTTP API over its ports. It never publishes: an order is stored with its
/// `OrderCreated` fact in one write, which `orders-outbox-relay` publishes from the table's stream.
#[derive(Clone)]
pub struct OrdersApi {
    idempotency: Idempotency,
    store: Arc<dyn OrderStore>,
    clock: fn() -> DateTime<Utc>,
}

impl OrdersApi {
    /// Wires the API to its idempotency layer and store.
    pub fn new(idempotency: Idempotency, store: Arc<dyn OrderStore>) -> Self {
        Self {
            idempotency,
            store,
            clock: Utc::now,
        }
    }

    /// Handles one request; never fails: every error is an HTTP answer. With the invocation's
    /// `remaining` time, the work stops before Lambda's deadline and answers a typed 503
    /// (`DeadlineExceeded`) rather than let the invocation be killed; a create cut off that way
    /// keeps its claim until the deadline (a retry before then is told it is in progress).
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
        if route(request, "POST", &["orders"]).is_some() {
            self.create(request, remaining).await
        } else if let Some(params) = route(request, "GET", &["orders", "*"]) {
            self.get(request, params[0]).await
        } else {
            Err(ApiError::new(
                404,
                "RouteNotFound",
                format!("no route for {} {}", request.method, request.path),
            ))
        }
    }

    /// The caller's own order; another customer's is answered as if it did not exist.
    async fn get(&self, request: &ApiRequest, order_id: &str) -> Result<ApiResponse, ApiError> {
        let caller = request.caller()?;
        match self.store.get(order_id).await {
            Ok(Some(order)) if order.customer_id == caller.subject() => {
                Ok(ApiResponse::json(200, &order))
            }
            Ok(_) => Err(ApiError::not_found(format!("order {order_id}"))),
            Err(e) => Err(ApiError::unavailable(e)),
        }
    }

    async fn create(
        &self,
        request: &ApiRequest,
        remaining: Option<Duration>,
    ) -> Result<ApiResponse, ApiError> {
        let key = request.header("idempotency-key").ok_or_else(|| {
            ApiError::bad_request(
                "MissingIdempotencyKey",
                "the Idempotency-Key header is required (a unique value per order, reused on retries)",
            )
        })?;
        let key = IdempotencyKey::new(key)
            .map_err(|e| ApiError::bad_request("InvalidIdempotencyKey", e.to_string()))?;
        let caller = request.caller()?;
        let body = request
            .json::<OrderRequest>()?
            .for_customer(caller.subject())?;
        body.validate()
            .map_err(|e| ApiError::bad_request("InvalidOrder", e.to_string()))?;

        // Keys are scoped per customer: two customers reusing a key never see each other's order.
        let material =
            serde_json::json!({ "customer-id": body.customer_id, "idempotency-key": key.as_str() });
        let mut idem_request = Request::new(&material)
            .and_then(|r| r.validate(&body))
            .map_err(ApiError::internal)?;
        if let Some(remaining) = remaining {
            idem_request = idem_request.remaining_time(remaining);
        }

        let customer_id = body.customer_id.clone();
        let outcome = self
            .idempotency
            .run(&idem_request, || self.create_fresh(body, key.clone()))
            .await;
        let key_hash = idem_request.key_hash().unwrap_or_default().to_owned();
        match outcome {
            Ok(Outcome::Fresh(order)) => {
                tracing::info!(order_id = %order.order_id, key_hash, outcome = "fresh", "order created");
                Ok(ApiResponse::json(201, &order))
            }
            Ok(Outcome::Replayed(order)) => {
                tracing::info!(order_id = %order.order_id, key_hash, outcome = "replayed", "order create replayed");
                Ok(ApiResponse::json(201, &order).with_header(REPLAYED_HEADER, "true"))
            }
            Ok(Outcome::InProgress) => {
                tracing::info!(
                    key_hash,
                    outcome = "in_progress",
                    "order create already in progress"
                );
                Err(ApiError::new(
                    409,
                    "RequestInProgress",
                    "a request with this Idempotency-Key is still in progress; retry shortly",
                ))
            }
            Err(RunError::Idempotency(IdempotencyError::Validation { .. })) => {
                tracing::warn!(
                    key_hash,
                    outcome = "validation_failed",
                    "idempotency key reused with another body"
                );
                Err(ApiError::new(
                    422,
                    "IdempotencyKeyReused",
                    "this Idempotency-Key was already used with a different request body",
                ))
            }
            Err(RunError::Idempotency(IdempotencyError::UnreadableResult {
                record_id,
                reason,
            })) => {
                // The create completed, but its stored answer cannot be read (written by another
                // version): the order it made is the answer, found by its derived id.
                tracing::warn!(
                    key_hash,
                    record_id,
                    ?reason,
                    outcome = "unreadable",
                    "stored create result unreadable; answering from the orders table"
                );
                let order_id = Order::id_for(&customer_id, key.as_str());
                match self.store.get(&order_id).await {
                    Ok(Some(order)) => {
                        Ok(ApiResponse::json(201, &order).with_header(REPLAYED_HEADER, "true"))
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
            Err(RunError::Operation(e)) => Err(ApiError::unavailable(e)),
        }
    }

    /// The claimed path: one conditional write stores the order and its `OrderCreated` fact
    /// (the outbox), so the answer is given only once both are durable and the fact cannot be
    /// lost, whether or not the client ever retries. A re-run (after a crash, or a lost
    /// completion) finds the stored order under the same derived id and writes nothing: the
    /// fact stays the one first stored, `Open`, whatever the order's status is now.
    async fn create_fresh(
        &self,
        body: CreateOrder,
        client_key: IdempotencyKey,
    ) -> Result<Order, CreateError> {
        let now = (self.clock)();
        // Validated above; a failure here would be a bug, reported as a store-level corruption.
        let order =
            Order::create(body, client_key.as_str(), now).map_err(|e| StoreError::Corrupt {
                order_id: String::new(),
                problem: e.to_string(),
            })?;
        // The fact's key is scoped like the claim: two customers' identical client keys make
        // two facts, never one fact with two bodies.
        let key = IdempotencyKey::for_order(&order.customer_id, &client_key);
        let metadata = Metadata::first(key, order.order_id.clone(), order.created_at);
        let created = OutgoingEvent::new(&Detail::new(metadata, order.created_event()))?
            .with_invocation_trace();
        Ok(self.store.insert(&order, &created).await?)
    }
}
