//! A plain HTTP request/response pair and its API Gateway HTTP API (payload 2.0) adapter.
//!
//! The adapter also reads who is calling: the claims API Gateway's JWT authorizer validated
//! become [`ApiRequest::caller`] ([`crate::auth::Caller`]); handlers ask for it with
//! [`ApiRequest::caller`] (401 without one) and [`ApiRequest::require_scope`] (403 without the
//! scope).

use std::collections::BTreeMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use serde::Serialize;

use crate::auth::{self, Caller};

/// Largest request body accepted, in bytes. API Gateway allows 10 MB; no request of ours needs
/// more than a fraction of this, and bounding it bounds parse time and memory.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An HTTP request, free of AWS types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequest {
    /// Upper-case method, e.g. `POST`.
    pub method: String,
    /// The raw path, e.g. `/orders/123`.
    pub path: String,
    /// Header names in lower case (HTTP API lower-cases them too).
    pub headers: BTreeMap<String, String>,
    /// The decoded body (empty when absent).
    pub body: Vec<u8>,
    /// The platform's request id (for logs and correlation).
    pub request_id: Option<String>,
    /// Who is calling, as the API's authorizer validated it (`None`: the request carried no
    /// validated claims). Only [`ApiRequest::from_apigw`] and the local runner's authorizer set
    /// it; a handler reads it through [`ApiRequest::caller`].
    pub identity: Option<Caller>,
}

impl ApiRequest {
    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The validated caller, or a 401 [`ApiError`] (`Unauthorized`) when the request carries no
    /// validated identity: never an anonymous customer.
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.identity.as_ref().ok_or_else(|| {
            tracing::warn!("request without a validated caller identity");
            auth::unauthorized()
        })
    }

    /// The validated caller when it carries `scope`: a 401 without a caller, a 403
    /// (`Forbidden`) without the scope. The handler-level half of a route's
    /// `AuthorizationScopes` (defence in depth).
    pub fn require_scope(&self, scope: &str) -> Result<&Caller, ApiError> {
        let caller = self.caller()?;
        caller.require_scope(scope)?;
        Ok(caller)
    }

    /// The validated caller when it is in `group`: a 401 without a caller, a 403 otherwise.
    pub fn require_group(&self, group: &str) -> Result<&Caller, ApiError> {
        let caller = self.caller()?;
        caller.require_group(group)?;
        Ok(caller)
    }

    /// The path split into non-empty segments.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// Parses the body as JSON into `T`, with errors a client can act on.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                413,
                "PayloadTooLarge",
                format!(
                    "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                    self.body.len()
                ),
            ));
        }
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| ApiError::bad_request("InvalidBody", "the body is not valid UTF-8"))?;
        if text.trim().is_empty() {
            return Err(ApiError::bad_request(
                "InvalidBody",
                "a JSON body is required",
            ));
        }
        serde_json::from_str(text).map_err(|e| {
            let kind = if e.is_data() {
                "InvalidField"
            } else {
                "MalformedJson"
            };
            ApiError::bad_request(kind, e.to_string())
        })
    }

    /// Converts an API Gateway HTTP API 2.0 event. Fails only on a body that is not valid base64.
    /// The JWT authorizer's claims (`requestContext.authorizer.jwt`) become
    /// [`ApiRequest::identity`]; a request without them (or whose claims name no subject) has
    /// none.
    pub fn from_apigw(event: ApiGatewayV2httpRequest) -> Result<Self, ApiError> {
        let identity = event
            .request_context
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.jwt.as_ref())
            .and_then(Caller::from_jwt);
        let headers = event
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    name.as_str().to_ascii_lowercase(),
                    value.to_str().ok()?.to_owned(),
                ))
            })
            .collect();
        let body = match event.body {
            None => Vec::new(),
            Some(text) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| {
                    ApiError::bad_request("InvalidBody", "the body is not valid base64")
                })?,
            Some(text) => text.into_bytes(),
        };
        let http = event.request_context.http;
        Ok(Self {
            method: http.method.as_str().to_ascii_uppercase(),
            path: event
                .raw_path
                .or(http.path)
                .unwrap_or_else(|| "/".to_owned()),
            headers,
            body,
            request_id: event.request_context.request_id,
            identity,
        })
    }
}

/// An HTTP response, free of AWS types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers (`content-type: application/json` is always set).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: String,
}

impl ApiResponse {
    /// A JSON response.
    pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Self {
        match serde_json::to_string(body) {
            Ok(body) => Self {
                status,
                headers: Vec::new(),
                body,
            },
            Err(e) => ApiError::internal(format!("response did not serialize: {e}")).into(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Converts to the API Gateway HTTP API 2.0 response shape.
    pub fn into_apigw(self) -> ApiGatewayV2httpResponse {
        let mut headers = ::http::HeaderMap::new();
        headers.insert(
            ::http::header::CONTENT_TYPE,
            ::http::HeaderValue::from_static("application/json"),
        );
        for (name, value) in &self.headers {
            // Our own header names and values are ASCII tokens; skip (never panic on) any other.
            if let (Ok(name), Ok(value)) = (
                ::http::HeaderName::from_bytes(name.as_bytes()),
                ::http::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let mut response = ApiGatewayV2httpResponse::default();
        response.status_code = i64::from(self.status);
        response.headers = headers;
        response.body = Some(Body::Text(self.body));
        response
    }
}

/// An error answered to the client as `{"error": {"type": ..., "message": ..., <details>}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error_type}: {message}")]
pub struct ApiError {
    /// Status code (4xx for the client's mistakes, 5xx for ours).
    pub status: u16,
    /// Stable machine-readable type, e.g. `MissingIdempotencyKey`.
    pub error_type: &'static str,
    /// Human-readable explanation (never personal data, never internals).
    pub message: String,
    /// Machine-readable fields a client can act on (e.g. the SKU of a refused line and how many
    /// units may still be returned), answered beside `type` and `message`.
    pub details: BTreeMap<&'static str, serde_json::Value>,
}

impl ApiError {
    /// Any status.
    pub fn new(status: u16, error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    /// Adds a machine-readable field to the error object (`type` and `message` are taken).
    pub fn with_detail(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(name, value.into());
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(error_type: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, error_type, message)
    }

    /// 404 Not Found.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(404, "NotFound", format!("{} not found", what.into()))
    }

    /// 500, with a generic message: details go to the logs, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            500,
            "InternalError",
            "internal error; retry with the same Idempotency-Key",
        )
    }

    /// 503 for a dependency failure the client should retry.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "dependency unavailable");
        Self::new(
            503,
            "ServiceUnavailable",
            "temporarily unavailable; retry with the same Idempotency-Key",
        )
    }
}

impl From<ApiError> for ApiResponse {
    fn from(e: ApiError) -> Self {
        let mut error = serde_json::Map::new();
        for (name, value) in e.details {
            error.insert(name.to_owned(), value);
        }
        error.insert("type".to_owned(), e.error_type.into());
        error.insert("message".to_owned(), e.message.into());
        let response = ApiResponse::json(e.status, &serde_json::json!({ "error": error }));
        // RFC 6750's challenge, as the API's authorizer sends with its own 401 and 403.
        match (e.status, e.error_type) {
            (401, auth::UNAUTHORIZED) => response.with_header("www-authenticate", "Bearer"),
            (403, auth::FORBIDDEN) => {
                response.with_header("www-authenticate", "Bearer error=\"insufficient_scope\"")
            }
            _ => response,
        }
    }
}

/// The one route table shape both APIs use: matches a request's method and path segments.
pub fn route<'a>(request: &'a ApiRequest, method: &str, pattern: &[&str]) -> Option<Vec<&'a str>> {
    if request.method != method {
        return None;
    }
    let segments = request.segments();
    if segments.len() != pattern.len() {
        return None;
    }
    let mut params = Vec::new();
    for (segment, expected) in segments.iter().zip(pattern) {
        if *expected == "*" {
            params.push(*segment);
        } else if segment != expected {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> ApiGatewayV2httpRequest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_post_fixture_becomes_a_plain_request() {
        let request = ApiRequest::from_apigw(fixture("http/post-order.json")).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/orders");
        assert!(request.header("Idempotency-Key").is_some());
        assert!(request.json::<serde_json::Value>().is_ok());
    }

    #[test]
    fn error_details_are_answered_beside_type_and_message() {
        let response: ApiResponse = ApiError::new(409, "ReturnExceedsShipped", "too many")
            .with_detail("sku", "MUG")
            .with_detail("returnable", 0)
            .with_detail("type", "ignored")
            .into();
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "error": {
                "type": "ReturnExceedsShipped", "message": "too many", "sku": "MUG", "returnable": 0
            }})
        );
    }

    #[test]
    fn the_authorizer_claims_of_a_fixture_become_the_caller() {
        let request = ApiRequest::from_apigw(fixture("http/post-order.json")).unwrap();
        let caller = request.caller().unwrap();
        assert_eq!(caller.subject(), "456");
        assert!(!caller.has_scope(auth::DEFAULT_STAFF_SCOPE));

        let receipt = ApiRequest::from_apigw(fixture("http/post-return-received.json")).unwrap();
        assert!(receipt.require_scope(auth::DEFAULT_STAFF_SCOPE).is_ok());
    }

    #[test]
    fn a_request_without_claims_is_a_401_never_an_anonymous_customer() {
        let request =
            ApiRequest::from_apigw(fixture("bad/http-post-order-no-claims.json")).unwrap();
        assert_eq!(request.identity, None);
        let err = request.caller().unwrap_err();
        assert_eq!((err.status, err.error_type), (401, auth::UNAUTHORIZED));
        let response = ApiResponse::from(err);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert!(response.body.contains("\"type\":\"Unauthorized\""));
        assert_eq!(
            request
                .require_scope(auth::DEFAULT_STAFF_SCOPE)
                .unwrap_err()
                .status,
            401
        );
    }

    #[test]
    fn a_customer_token_on_the_receipt_is_a_403() {
        let request =
            ApiRequest::from_apigw(fixture("bad/http-post-return-received-customer-token.json"))
                .unwrap();
        assert_eq!(request.caller().unwrap().subject(), "456");
        let err = request
            .require_scope(auth::DEFAULT_STAFF_SCOPE)
            .unwrap_err();
        assert_eq!((err.status, err.error_type), (403, auth::FORBIDDEN));
        let response = ApiResponse::from(err).into_apigw();
        assert_eq!(response.status_code, 403);
        assert_eq!(
            response.headers["www-authenticate"],
            "Bearer error=\"insufficient_scope\""
        );
        assert_eq!(
            request
                .require_group(auth::WAREHOUSE_GROUP)
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn malformed_json_is_a_400_naming_the_problem() {
        let request =
            ApiRequest::from_apigw(fixture("bad/http-post-order-malformed-json.json")).unwrap();
        let err = request.json::<serde_json::Value>().unwrap_err();
        assert_eq!((err.status, err.error_type), (400, "MalformedJson"));
    }

    #[test]
    fn invalid_utf8_and_oversized_bodies_are_rejected() {
        let mut request = ApiRequest {
            body: vec![0xff, 0xfe],
            ..ApiRequest::default()
        };
        assert_eq!(
            request.json::<serde_json::Value>().unwrap_err().error_type,
            "InvalidBody"
        );
        request.body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(request.json::<serde_json::Value>().unwrap_err().status, 413);
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let mut event = fixture("http/post-order.json");
        let body = event.body.take().unwrap();
        event.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
        event.is_base64_encoded = true;
        let request = ApiRequest::from_apigw(event).unwrap();
        assert_eq!(request.body, body.into_bytes());
    }

    #[test]
    fn routes_match_method_and_segments() {
        let request = ApiRequest {
            method: "GET".into(),
            path: "/orders/42".into(),
            ..ApiRequest::default()
        };
        assert_eq!(route(&request, "GET", &["orders", "*"]), Some(vec!["42"]));
        assert_eq!(route(&request, "POST", &["orders", "*"]), None);
        assert_eq!(route(&request, "GET", &["orders"]), None);
    }

    #[test]
    fn responses_carry_json_content_type_and_extra_headers() {
        let response = ApiResponse::json(201, &serde_json::json!({"ok": true}))
            .with_header("idempotent-replayed", "true")
            .into_apigw();
        assert_eq!(response.status_code, 201);
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(response.headers["idempotent-replayed"], "true");
    }
}
