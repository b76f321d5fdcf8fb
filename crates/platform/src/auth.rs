//! Who is calling: the caller identity API Gateway's JWT authorizer hands a function, typed.
//!
//! An HTTP API with a JWT authorizer (payload 2.0) validates the bearer token (signature, issuer,
//! audience or `client_id`, expiry, the route's scopes) before the function runs, and passes the
//! token's claims under `requestContext.authorizer.jwt.claims`, **every value as a string**:
//! numbers as their decimal text (`"exp": "1787996002"`), and an array claim flattened the way Go
//! prints a slice, `"[warehouse]"` for one element, `"[a b]"` for two. The token's scopes arrive
//! under `requestContext.authorizer.jwt.scopes` (`null` when the token has none). [`Caller`] is
//! parsed from exactly that shape ([`Caller::from_jwt`]); [`flatten_claims`] produces it from a
//! token's JSON claims, so the local runner, which plays the authorizer, hands its handlers the
//! very strings Lambda would.
//!
//! The function trusts these claims (API Gateway checked the token); it never reads the
//! `Authorization` header itself. A request without claims has no caller ([`crate::http::ApiRequest::caller`]
//! is then a 401), never an anonymous customer.
//!
//! - The customer is [`Caller::subject`], the token's `sub`.
//! - Warehouse staff are recognised by a **scope**, [`DEFAULT_STAFF_SCOPE`] (`commerce/warehouse`,
//!   configurable with [`STAFF_SCOPE_ENV`]): the authorizer enforces scopes per route, and only
//!   the warehouse system's confidential app client can obtain it. The `warehouse` group
//!   ([`WAREHOUSE_GROUP`], Cognito's `cognito:groups` claim) marks staff people in the user pool;
//!   it grants nothing on the API by itself, and [`Caller::in_group`] lets a handler read it.
//!
//! ## Refusals
//!
//! The authorizer answers a missing or invalid token with `401 {"message":"Unauthorized"}` and a
//! token without the route's scope with `403 {"message":"Forbidden"}`. A handler-level refusal
//! ([`unauthorized`], [`forbidden`]) keeps the same status codes but answers with the product's
//! typed error body, `{"error":{"type":"Unauthorized"|"Forbidden","message":...}}`, like every
//! other error a function returns: clients branch on the status, which is the same, and the
//! body says which layer refused. A handler-level 401 or 403 in production means a request
//! reached the function without passing the route's authorization (a route deployed without
//! its authorizer, a direct invoke): the typed body and the function's own log line tell that
//! apart from the gateway's answer, where a copy of the gateway's body would hide it. Both carry
//! a `www-authenticate: Bearer` challenge (RFC 6750), as the gateway's do.
//!
//! ```
//! use std::collections::HashMap;
//! use platform::auth::{Caller, DEFAULT_STAFF_SCOPE};
//!
//! // What API Gateway passes for a Cognito user in the `warehouse` group.
//! let claims = HashMap::from([
//!     ("sub".to_owned(), "456".to_owned()),
//!     ("cognito:groups".to_owned(), "[warehouse]".to_owned()),
//!     ("scope".to_owned(), "aws.cognito.signin.user.admin".to_owned()),
//! ]);
//! let caller = Caller::from_claims(&claims, None).unwrap();
//! assert_eq!(caller.subject(), "456");
//! assert!(caller.in_group("warehouse"));
//! // The group alone does not make staff: the receipt needs the scope.
//! assert_eq!(caller.require_scope(DEFAULT_STAFF_SCOPE).unwrap_err().status, 403);
//! ```

use std::collections::HashMap;

use aws_lambda_events::apigw::ApiGatewayRequestAuthorizerJwtDescription;
use serde_json::Value;

use crate::config::Env;
use crate::http::ApiError;

/// The scope that marks the warehouse's system (staff): `<resource server>/<scope>` as Cognito
/// names it. The route `POST /returns/{id}/received` requires it, and so does its handler.
pub const DEFAULT_STAFF_SCOPE: &str = "commerce/warehouse";

/// Environment variable naming the staff scope when the stack uses another identity provider
/// (the template's `StaffScope` parameter); [`DEFAULT_STAFF_SCOPE`] when unset.
pub const STAFF_SCOPE_ENV: &str = "STAFF_SCOPE";

/// The Cognito group of warehouse staff people.
pub const WAREHOUSE_GROUP: &str = "warehouse";

/// The claim Cognito lists a user's groups in.
pub const GROUPS_CLAIM: &str = "cognito:groups";

/// Stable `error_type` of a request without a validated identity (401).
pub const UNAUTHORIZED: &str = "Unauthorized";

/// Stable `error_type` of a caller without the required scope or group (403).
pub const FORBIDDEN: &str = "Forbidden";

/// The staff scope this function checks: [`STAFF_SCOPE_ENV`], else [`DEFAULT_STAFF_SCOPE`].
pub fn staff_scope<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> String {
    env.required(STAFF_SCOPE_ENV)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| DEFAULT_STAFF_SCOPE.to_owned())
}

/// 401: the request carries no validated identity.
pub fn unauthorized() -> ApiError {
    ApiError::new(
        401,
        UNAUTHORIZED,
        "this route needs a caller identity validated by the API's authorizer \
         (send `Authorization: Bearer <token>`)",
    )
}

/// 403: the caller is known but lacks `what` (a scope or a group).
pub fn forbidden(what: &str) -> ApiError {
    ApiError::new(403, FORBIDDEN, format!("this route requires {what}"))
}

/// The caller, as API Gateway's JWT authorizer validated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    subject: String,
    groups: Vec<String>,
    scopes: Vec<String>,
    client_id: Option<String>,
}

impl Caller {
    /// A caller with these parts (tests, and callers that built the identity themselves).
    pub fn new(
        subject: impl Into<String>,
        groups: Vec<String>,
        scopes: Vec<String>,
        client_id: Option<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            groups,
            scopes,
            client_id,
        }
    }

    /// Parses `requestContext.authorizer.jwt`. `None` when the claims carry no (non-empty) `sub`:
    /// without a subject there is nobody to act as.
    pub fn from_jwt(jwt: &ApiGatewayRequestAuthorizerJwtDescription) -> Option<Self> {
        Self::from_claims(&jwt.claims, jwt.scopes.as_deref())
    }

    /// Parses string-valued claims as API Gateway passes them, and its `scopes` list. The scopes
    /// are those of `scopes` and of the `scope` claim (space-separated) together: API Gateway
    /// fills `scopes` from the token, but sends `null` in some configurations while the claim
    /// is still there.
    pub fn from_claims(
        claims: &HashMap<String, String>,
        scopes: Option<&[String]>,
    ) -> Option<Self> {
        let subject = claims
            .get("sub")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())?;
        let mut all_scopes: Vec<String> = Vec::new();
        let listed = scopes.unwrap_or_default().iter().map(String::as_str);
        let claimed = claims
            .get("scope")
            .map(String::as_str)
            .unwrap_or_default()
            .split_whitespace();
        for scope in listed.chain(claimed) {
            if !scope.is_empty() && !all_scopes.iter().any(|s| s == scope) {
                all_scopes.push(scope.to_owned());
            }
        }
        Some(Self {
            subject: subject.to_owned(),
            groups: claims
                .get(GROUPS_CLAIM)
                .map(|g| parse_list_claim(g))
                .unwrap_or_default(),
            scopes: all_scopes,
            client_id: claims.get("client_id").filter(|c| !c.is_empty()).cloned(),
        })
    }

    /// The token's `sub`: the customer id for a customer, the app client id for the
    /// warehouse's system (client-credentials tokens have the client as subject).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Cognito groups (`cognito:groups`), empty when the token has none.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// OAuth scopes of the token.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The app client the token was issued to (`client_id` claim of Cognito access tokens).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the caller is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `Ok` when the token carries `scope`, else a 403.
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            tracing::warn!(scope, "caller lacks the required scope");
            Err(forbidden(&format!("the scope {scope}")))
        }
    }

    /// `Ok` when the caller is in `group`, else a 403.
    pub fn require_group(&self, group: &str) -> Result<(), ApiError> {
        if self.in_group(group) {
            Ok(())
        } else {
            tracing::warn!(group, "caller is not in the required group");
            Err(forbidden(&format!("membership of the group {group}")))
        }
    }
}

/// Reads a list claim as API Gateway flattens it: `"[a b]"` (Go's rendering of a slice), a JSON
/// array text (`["a","b"]`, as some tools send), or a single plain value (`"a"`).
pub fn parse_list_claim(text: &str) -> Vec<String> {
    let text = text.trim();
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) {
        return items
            .iter()
            .map(flatten_claim)
            .filter(|s| !s.is_empty())
            .collect();
    }
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner.split_whitespace().map(str::to_owned).collect()
}

/// One claim value as API Gateway passes it: a string as is, a number as its decimal text, a
/// boolean as `true`/`false`, an array as `[a b]` (elements rendered the same way, separated by
/// one space), an object as its JSON text.
pub fn flatten_claim(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(flatten_claim)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Object(_) => value.to_string(),
    }
}

/// A token's JSON claims as API Gateway passes them to the function: every value a string
/// ([`flatten_claim`]).
pub fn flatten_claims(claims: &serde_json::Map<String, Value>) -> HashMap<String, String> {
    claims
        .iter()
        .map(|(name, value)| (name.clone(), flatten_claim(value)))
        .collect()
}

/// The `scopes` list API Gateway passes with the claims: the `scope` claim split on spaces,
/// `None` when the token has no scope (API Gateway sends `null` then).
pub fn scopes_of(claims: &serde_json::Map<String, Value>) -> Option<Vec<String>> {
    let scopes: Vec<String> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (!scopes.is_empty()).then_some(scopes)
}

/// `requestContext.authorizer.jwt` as API Gateway builds it from a validated token's claims.
pub fn jwt_description(
    claims: &serde_json::Map<String, Value>,
) -> ApiGatewayRequestAuthorizerJwtDescription {
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = flatten_claims(claims);
    jwt.scopes = scopes_of(claims);
    jwt
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use serde_json::json;

    /// A request context exactly as API Gateway sends it for a Cognito access token of a user
    /// in two groups (claim values are strings, the groups flattened Go-style).
    fn apigw_event(authorizer: Value) -> ApiGatewayV2httpRequest {
        serde_json::from_value(json!({
            "version": "2.0",
            "routeKey": "GET /orders/{id}",
            "rawPath": "/orders/1",
            "headers": {},
            "requestContext": {
                "http": { "method": "GET", "path": "/orders/1" },
                "requestId": "r-1",
                "authorizer": authorizer,
            },
            "isBase64Encoded": false
        }))
        .unwrap()
    }

    fn jwt_of(event: &ApiGatewayV2httpRequest) -> &ApiGatewayRequestAuthorizerJwtDescription {
        event
            .request_context
            .authorizer
            .as_ref()
            .unwrap()
            .jwt
            .as_ref()
            .unwrap()
    }

    #[test]
    fn a_cognito_user_token_gives_subject_groups_scopes_and_client() {
        let event = apigw_event(json!({ "jwt": {
            "claims": {
                "sub": "6418b458-d091-705e-122e-04bf2945fcdf",
                "cognito:groups": "[warehouse returns-desk]",
                "client_id": "5kek0i61pgkokoob4fsm9fo9it",
                "exp": "1787996002",
                "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_HblcSIjTD",
                "scope": "aws.cognito.signin.user.admin",
                "token_use": "access"
            },
            "scopes": null
        }}));
        let caller = Caller::from_jwt(jwt_of(&event)).unwrap();
        assert_eq!(caller.subject(), "6418b458-d091-705e-122e-04bf2945fcdf");
        assert_eq!(caller.groups(), ["warehouse", "returns-desk"]);
        assert_eq!(caller.scopes(), ["aws.cognito.signin.user.admin"]);
        assert_eq!(caller.client_id(), Some("5kek0i61pgkokoob4fsm9fo9it"));
        assert!(caller.in_group(WAREHOUSE_GROUP));
        assert!(!caller.has_scope(DEFAULT_STAFF_SCOPE));
    }

    #[test]
    fn a_client_credentials_token_carries_the_staff_scope() {
        let event = apigw_event(json!({ "jwt": {
            "claims": {
                "sub": "7hq2example0warehouse0client",
                "client_id": "7hq2example0warehouse0client",
                "scope": "commerce/warehouse",
                "token_use": "access"
            },
            "scopes": ["commerce/warehouse"]
        }}));
        let caller = Caller::from_jwt(jwt_of(&event)).unwrap();
        assert_eq!(caller.scopes(), [DEFAULT_STAFF_SCOPE], "listed once");
        assert!(caller.groups().is_empty());
        assert_eq!(caller.require_scope(DEFAULT_STAFF_SCOPE), Ok(()));
        assert_eq!(
            caller.require_group(WAREHOUSE_GROUP).unwrap_err().status,
            403
        );
    }

    #[test]
    fn claims_without_a_subject_are_no_caller() {
        for claims in [
            json!({}),
            json!({ "sub": "" }),
            json!({ "sub": "  ", "scope": "a" }),
        ] {
            let event = apigw_event(json!({ "jwt": { "claims": claims, "scopes": null } }));
            assert_eq!(Caller::from_jwt(jwt_of(&event)), None, "{claims}");
        }
    }

    #[test]
    fn list_claims_read_every_flattening() {
        assert_eq!(parse_list_claim("[warehouse]"), ["warehouse"]);
        assert_eq!(parse_list_claim("[a b]"), ["a", "b"]);
        assert_eq!(parse_list_claim("[]"), Vec::<String>::new());
        assert_eq!(parse_list_claim(r#"["a","b"]"#), ["a", "b"]);
        assert_eq!(parse_list_claim("warehouse"), ["warehouse"]);
        assert_eq!(parse_list_claim(""), Vec::<String>::new());
    }

    #[test]
    fn json_claims_flatten_to_the_strings_api_gateway_sends() {
        let claims = json!({
            "sub": "456",
            "exp": 1787996002,
            "email_verified": true,
            "cognito:groups": ["warehouse"],
            "two": ["a", "b"],
            "scope": "commerce/warehouse openid"
        });
        let jwt = jwt_description(claims.as_object().unwrap());
        assert_eq!(jwt.claims["exp"], "1787996002");
        assert_eq!(jwt.claims["email_verified"], "true");
        assert_eq!(jwt.claims["cognito:groups"], "[warehouse]");
        assert_eq!(jwt.claims["two"], "[a b]");
        assert_eq!(
            jwt.scopes.as_deref(),
            Some(&["commerce/warehouse".to_owned(), "openid".to_owned()][..])
        );
        // And back: the platform parser reads what the flattening produced.
        let caller = Caller::from_jwt(&jwt).unwrap();
        assert_eq!(caller.groups(), ["warehouse"]);
        assert!(caller.has_scope("commerce/warehouse"));
        // Serialized, it is the shape Lambda receives.
        let wire = serde_json::to_value(&jwt).unwrap();
        assert_eq!(wire["claims"]["cognito:groups"], "[warehouse]");
        assert!(wire["claims"]["exp"].is_string());
    }

    #[test]
    fn a_token_without_scope_gets_null_scopes() {
        let jwt = jwt_description(json!({ "sub": "456" }).as_object().unwrap());
        assert_eq!(jwt.scopes, None);
    }

    #[test]
    fn refusals_are_typed_401_and_403() {
        let denied = unauthorized();
        assert_eq!((denied.status, denied.error_type), (401, UNAUTHORIZED));
        let denied = forbidden("the scope commerce/warehouse");
        assert_eq!((denied.status, denied.error_type), (403, FORBIDDEN));
        assert!(denied.message.contains("commerce/warehouse"));
    }

    #[test]
    fn the_staff_scope_comes_from_the_environment_or_the_default() {
        let env = Env::from_fn(|_| None);
        assert_eq!(staff_scope(&env), DEFAULT_STAFF_SCOPE);
        let env = Env::from_fn(|name| (name == STAFF_SCOPE_ENV).then(|| "api/staff".to_owned()));
        assert_eq!(staff_scope(&env), "api/staff");
    }
}
