//! What every Lambda binary of the product shares, so each `main.rs` only wires and stays short.
//!
//! - [`http`]: API Gateway HTTP API (payload 2.0) requests and responses converted to and from
//!   plain [`http::ApiRequest`] / [`http::ApiResponse`], so domain HTTP handlers carry no AWS types
//!   and the local runner can serve the very same handlers on loopback. Errors are JSON bodies
//!   with a stable `type` string.
//! - [`auth`]: who is calling, as API Gateway's JWT authorizer validated it: the typed
//!   [`auth::Caller`] (subject, groups, scopes) parsed from the string-valued claims API Gateway
//!   passes, and the 401/403 answers of the handler-level checks.
//! - [`config`]: configuration from environment variables only, with errors that name the
//!   variable, so a misconfigured function fails at init with a clear message.
//! - [`budget`]: one time budget per invocation ([`budget::Budget`]): work run under it stops
//!   [`budget::REPORTING_MARGIN`] before Lambda's deadline with a typed
//!   [`budget::DeadlineExceeded`] (a 503 for an API), so the answer always gets out.
//! - [`init`]: the tracing subscriber (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`) and the AWS SDK
//!   configuration (endpoints from the SDK's standard `AWS_ENDPOINT_URL` handling).
//!
//! ```
//! use platform::http::{ApiError, ApiResponse};
//!
//! let missing = ApiError::bad_request("MissingIdempotencyKey", "the Idempotency-Key header is required");
//! let response: ApiResponse = missing.into();
//! assert_eq!(response.status, 400);
//! assert!(response.body.contains("\"type\":\"MissingIdempotencyKey\""));
//! ```

pub mod auth;
pub mod budget;
pub mod config;
pub mod doc_table;
pub mod http;
pub mod init;
pub mod metrics;
