//! The runner's stand-in for API Gateway's JWT authorizer, and for the identity provider that
//! issues the tokens it accepts.
//!
//! [`TokenAuthority`] holds one ES256 signing key. It mints access tokens shaped like Cognito's
//! ([`Grant::customer`]: a user signed in with SRP through the customers' app client;
//! [`Grant::warehouse`]: the warehouse system's client-credentials token, carrying the staff
//! scope), and validates a request's bearer token the way an HTTP API's JWT authorizer does:
//!
//! - the identity source (`Authorization` header, an optional `Bearer ` prefix) must be there,
//!   else `401 {"message":"Unauthorized"}`;
//! - signature (ES256, the key's `kid`), issuer, audience (`aud`, or `client_id` when the token
//!   has no `aud`, as API Gateway does), expiry (`exp`, no leeway), `nbf` and `iat` must hold,
//!   else the same 401 with `www-authenticate: Bearer scope="" error="invalid_token"
//!   error_description="..."`;
//! - when the route has `AuthorizationScopes`, the token's `scope` claim must hold at least one,
//!   else `403 {"message":"Forbidden"}` with `error="insufficient_scope"`.
//!
//! Status, body and challenge are API Gateway's; of the descriptions, only "the token does not
//! have a valid audience" is AWS's published wording, the others say what failed in the same
//! style. The validated claims reach the function flattened to strings, as API Gateway passes
//! them ([`platform::auth::jwt_description`]).
//!
//! The issuer and audiences are the runner's own ([`LOCAL_ISSUER`], [`CUSTOMER_CLIENT_ID`],
//! [`WAREHOUSE_CLIENT_ID`]), not the template's `JwtConfiguration` (a Cognito pool that exists
//! only once deployed); the scopes each route requires are the template's.
//!
//! The key is generated with `ring` (already the workspace's TLS crypto) and kept as PKCS#8 in
//! [`default_key_path`] (`.local-runner/` beside the template, git-ignored), created on first
//! use, so tokens minted by `local token` are accepted by a later `local serve`. Tests and the
//! demo use a key generated in memory ([`TokenAuthority::ephemeral`]).
//!
//! `jsonwebtoken` does the JWT work; it ships no `ring` backend (its own are aws-lc and
//! RustCrypto's, whose `rsa` crate carries an open advisory), so [`ring_es256`] plugs ring's
//! ECDSA P-256 into its `CryptoProvider` seam: a signer and a verifier, nothing else.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use platform::http::ApiResponse;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Map, Value, json};

use crate::LocalError;

/// Issuer (`iss`) of the tokens the runner mints and accepts.
pub const LOCAL_ISSUER: &str = "https://local-runner.localhost";
/// The customers' app client (`client_id` of customer tokens), like the stack's public client.
pub const CUSTOMER_CLIENT_ID: &str = "local-customers";
/// The warehouse system's app client (`client_id` and `sub` of its client-credentials tokens).
pub const WAREHOUSE_CLIENT_ID: &str = "local-warehouse-system";
/// The scope Cognito puts in the access token of a user signed in with SRP.
pub const SIGNED_IN_USER_SCOPE: &str = "aws.cognito.signin.user.admin";
/// Lifetime of a minted token unless told otherwise (Cognito's default for access tokens).
pub const DEFAULT_LIFETIME_SECS: i64 = 3600;

/// Where the signing key of the runner that reads `template` is kept:
/// `<template's directory>/.local-runner/signing-key.p8` (git-ignored).
pub fn default_key_path(template: &Path) -> PathBuf {
    template
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(".local-runner")
        .join("signing-key.p8")
}

/// What a minted token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `sub`.
    pub subject: String,
    /// `client_id`: the app client the token was issued to (API Gateway checks it against the
    /// audiences when the token has no `aud`, as Cognito access tokens do not).
    pub client_id: String,
    /// `scope` (space-separated in the token).
    pub scopes: Vec<String>,
    /// `cognito:groups`, left out when empty.
    pub groups: Vec<String>,
    /// Seconds from now to `exp`; negative for a token that has already expired.
    pub lifetime_secs: i64,
}

impl Grant {
    /// A customer signed in through the customers' app client.
    pub fn customer(id: impl Into<String>) -> Self {
        Self {
            subject: id.into(),
            client_id: CUSTOMER_CLIENT_ID.to_owned(),
            scopes: vec![SIGNED_IN_USER_SCOPE.to_owned()],
            groups: Vec::new(),
            lifetime_secs: DEFAULT_LIFETIME_SECS,
        }
    }

    /// The warehouse's system: a client-credentials token with the staff `scopes`.
    pub fn warehouse(scopes: Vec<String>) -> Self {
        Self {
            subject: WAREHOUSE_CLIENT_ID.to_owned(),
            client_id: WAREHOUSE_CLIENT_ID.to_owned(),
            scopes,
            groups: Vec::new(),
            lifetime_secs: DEFAULT_LIFETIME_SECS,
        }
    }

    /// Adds a group (`cognito:groups`).
    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Sets the lifetime (negative: already expired).
    pub fn expires_in(mut self, seconds: i64) -> Self {
        self.lifetime_secs = seconds;
        self
    }
}

/// Why the authorizer refused a request: API Gateway's status, body and challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401 or 403.
    pub status: u16,
    /// `missing_token`, `invalid_token` or `insufficient_scope`.
    pub error: &'static str,
    /// What failed (the challenge's `error_description`).
    pub description: String,
    /// The scopes the route requires (the challenge's `scope`).
    pub scope: String,
}

impl Refusal {
    /// The identity source is absent: 401.
    pub fn missing() -> Self {
        Self {
            status: 401,
            error: "missing_token",
            description: "the request has no Authorization header".to_owned(),
            scope: String::new(),
        }
    }

    /// The token is not valid: 401.
    pub fn invalid(description: &str) -> Self {
        Self {
            status: 401,
            error: "invalid_token",
            description: description.to_owned(),
            scope: String::new(),
        }
    }

    /// The token lacks every scope the route requires: 403.
    pub fn insufficient_scope(scopes: &[String]) -> Self {
        Self {
            status: 403,
            error: "insufficient_scope",
            description: "the token does not have the scope this route requires".to_owned(),
            scope: scopes.join(" "),
        }
    }

    /// The answer API Gateway gives: `{"message":"Unauthorized"}` or `{"message":"Forbidden"}`
    /// with a `www-authenticate` challenge.
    pub fn response(&self) -> ApiResponse {
        let message = if self.status == 403 {
            "Forbidden"
        } else {
            "Unauthorized"
        };
        let challenge = if self.error == "missing_token" {
            "Bearer".to_owned()
        } else {
            format!(
                "Bearer scope=\"{}\" error=\"{}\" error_description=\"{}\"",
                self.scope, self.error, self.description
            )
        };
        ApiResponse::json(self.status, &json!({ "message": message }))
            .with_header("www-authenticate", challenge)
    }

    /// How the flow counts it: `refused:<error>`.
    pub fn outcome(&self) -> String {
        format!("refused:{}", self.error)
    }
}

/// Whether and how the runner authorizes HTTP requests.
#[derive(Debug, Clone, Default)]
pub enum Authorization {
    /// Validate tokens with a key generated for this runner alone (tests, the demo, replay):
    /// tokens come from [`crate::Runner::customer_token`] and the like.
    #[default]
    Ephemeral,
    /// Validate tokens with this authority (`serve`, with the key file `local token` signs with).
    Jwt(Arc<TokenAuthority>),
    /// `--no-auth`: no route is authorized; a bearer token's claims are read unverified.
    Off,
}

/// The runner's identity provider and JWT authorizer: one signing key, one issuer, the
/// audiences it accepts.
pub struct TokenAuthority {
    issuer: String,
    audiences: Vec<String>,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_path: Option<PathBuf>,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("kid", &self.kid)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn key_error(path: Option<&Path>, problem: impl Into<String>) -> LocalError {
    LocalError::SigningKey {
        path: path.map_or_else(|| "(in memory)".to_owned(), |p| p.display().to_string()),
        problem: problem.into(),
    }
}

fn generate_pkcs8(path: Option<&Path>) -> Result<Vec<u8>, LocalError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| key_error(path, "the system random generator failed"))
}

impl TokenAuthority {
    /// An authority with a key generated in memory for this process only.
    pub fn ephemeral() -> Result<Self, LocalError> {
        Self::from_pkcs8(&generate_pkcs8(None)?, None)
    }

    /// The authority whose key is kept at `path`, created (mode 0600, directory included) when
    /// the file does not exist yet. Returns whether it was created.
    pub fn from_key_file(path: &Path) -> Result<(Self, bool), LocalError> {
        match std::fs::read(path) {
            Ok(pkcs8) => Ok((Self::from_pkcs8(&pkcs8, Some(path))?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pkcs8 = generate_pkcs8(Some(path))?;
                let created = write_new(path, &pkcs8)?;
                // Another process may have created it first: use whichever key won.
                let pkcs8 = if created {
                    pkcs8
                } else {
                    std::fs::read(path).map_err(|e| key_error(Some(path), e.to_string()))?
                };
                Ok((Self::from_pkcs8(&pkcs8, Some(path))?, created))
            }
            Err(e) => Err(key_error(Some(path), e.to_string())),
        }
    }

    fn from_pkcs8(pkcs8: &[u8], path: Option<&Path>) -> Result<Self, LocalError> {
        ring_es256::install();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| {
            key_error(
                path,
                format!("not a PKCS#8 ECDSA P-256 key ({e}); delete it to make a new one"),
            )
        })?;
        let public = pair.public_key().as_ref();
        let digest = ring::digest::digest(&ring::digest::SHA256, public);
        let kid = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Ok(Self {
            issuer: LOCAL_ISSUER.to_owned(),
            audiences: vec![
                CUSTOMER_CLIENT_ID.to_owned(),
                WAREHOUSE_CLIENT_ID.to_owned(),
            ],
            kid,
            encoding: EncodingKey::from_ec_der(pkcs8),
            // ring verifies against the uncompressed point, which is what this holds.
            decoding: DecodingKey::from_ec_der(public),
            key_path: path.map(Path::to_path_buf),
        })
    }

    /// The same key under another issuer (tests: a token from a foreign issuer).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The issuer (`iss`) it mints and accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audiences (`aud`, else `client_id`) it accepts.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Where its key is kept (`None`: in memory).
    pub fn key_path(&self) -> Option<&Path> {
        self.key_path.as_deref()
    }

    /// A signed access token for `grant`.
    pub fn mint(&self, grant: &Grant) -> Result<String, LocalError> {
        let now = chrono::Utc::now().timestamp();
        let expires_at = now.saturating_add(grant.lifetime_secs);
        // An expired token was issued before it expired, as a real one would have been.
        let issued_at = now.min(expires_at.saturating_sub(1));
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from(grant.subject.as_str()));
        claims.insert("iss".into(), Value::from(self.issuer.as_str()));
        claims.insert("client_id".into(), Value::from(grant.client_id.as_str()));
        claims.insert("token_use".into(), Value::from("access"));
        claims.insert("scope".into(), Value::from(grant.scopes.join(" ")));
        claims.insert("auth_time".into(), Value::from(issued_at));
        claims.insert("iat".into(), Value::from(issued_at));
        claims.insert("exp".into(), Value::from(expires_at));
        claims.insert("jti".into(), Value::from(uuid::Uuid::new_v4().to_string()));
        if grant.client_id != grant.subject {
            claims.insert("username".into(), Value::from(grant.subject.as_str()));
        }
        if !grant.groups.is_empty() {
            claims.insert(platform::auth::GROUPS_CLAIM.into(), json!(grant.groups));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| LocalError::Token {
            problem: e.to_string(),
        })
    }

    /// Validates the identity source of a request (the `Authorization` header's value) for a
    /// route requiring any of `scopes` (none: any valid token), as API Gateway's JWT authorizer
    /// does. Returns the token's claims.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        scopes: &[String],
    ) -> Result<Map<String, Value>, Refusal> {
        let token = authorization
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(Refusal::missing)?;
        let token = strip_bearer(token);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Refusal::invalid("the token is not a valid JWT"))?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(Refusal::invalid(
                "the token is not signed by a key of the issuer",
            ));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &validation)
            .map_err(|e| {
                Refusal::invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    ErrorKind::InvalidIssuer => "the token does not have a valid issuer",
                    ErrorKind::InvalidSignature => "the token does not have a valid signature",
                    ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                        "the token does not have valid claims"
                    }
                    _ => "the token is not valid",
                })
            })?
            .claims;
        let now = chrono::Utc::now().timestamp();
        if claims
            .get("iat")
            .is_some_and(|iat| iat.as_i64().is_none_or(|iat| iat > now))
        {
            return Err(Refusal::invalid("the token was issued in the future"));
        }
        if !self.audience_accepted(&claims) {
            return Err(Refusal::invalid("the token does not have a valid audience"));
        }
        if !scopes.is_empty() {
            let granted: HashSet<&str> = claims
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            if !scopes.iter().any(|s| granted.contains(s.as_str())) {
                return Err(Refusal::insufficient_scope(scopes));
            }
        }
        Ok(claims)
    }

    /// API Gateway's audience rule: `aud` when the token has one (a string or a list), else
    /// `client_id`.
    fn audience_accepted(&self, claims: &Map<String, Value>) -> bool {
        let accepted = |v: &Value| {
            v.as_str()
                .is_some_and(|a| self.audiences.iter().any(|x| x == a))
        };
        match claims.get("aud") {
            Some(Value::Array(items)) => items.iter().any(accepted),
            Some(aud) => accepted(aud),
            None => claims.get("client_id").is_some_and(accepted),
        }
    }
}

fn strip_bearer(token: &str) -> &str {
    match token.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    }
}

/// The claims of a bearer token read WITHOUT checking anything (signature, issuer, audience,
/// expiry): `--no-auth` only, so a quick experiment can still say who it is. `None` when there
/// is no header or it is not a JWT.
pub fn unverified_claims(authorization: Option<&str>) -> Option<Map<String, Value>> {
    let token = strip_bearer(authorization?.trim());
    jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(token).ok()
}

/// Writes `bytes` to a new file at `path` (directories created, mode 0600 on Unix) without
/// ever replacing an existing one; `false` when the file already existed.
fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, LocalError> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| key_error(Some(path), e.to_string());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    // Written to a private temporary name, then linked into place: a reader never sees a
    // half-written key, and two first runs at once keep one key.
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(fail(e)),
    }
}

/// ES256 for `jsonwebtoken` on `ring`: the only algorithm the runner signs and accepts.
mod ring_es256 {
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result, new_error};
    use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
    use jsonwebtoken::signature::{Error, Signer, Verifier};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
        UnparsedPublicKey,
    };

    struct Es256Signer(EcdsaKeyPair);

    impl Signer<Vec<u8>> for Es256Signer {
        fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, Error> {
            self.0
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::new())
        }
    }

    impl JwtSigner for Es256Signer {
        fn algorithm(&self) -> Algorithm {
            Algorithm::ES256
        }
    }

    /// The public key as an uncompressed P-256 point.
    struct Es256Verifier(Vec<u8>);

    impl Verifier<Vec<u8>> for Es256Verifier {
        fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
                .verify(message, signature)
                .map_err(|_| Error::new())
        }
    }

    impl JwtVerifier for Es256Verifier {
        fn algorithm(&self) -> Algorithm {
            Algorithm::ES256
        }
    }

    fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        if *algorithm != Algorithm::ES256 {
            return Err(new_error(ErrorKind::InvalidAlgorithm));
        }
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            key.as_bytes(),
            &SystemRandom::new(),
        )
        .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?;
        Ok(Box::new(Es256Signer(pair)))
    }

    fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        if *algorithm != Algorithm::ES256 {
            return Err(new_error(ErrorKind::InvalidAlgorithm));
        }
        Ok(Box::new(Es256Verifier(key.try_get_as_bytes()?.to_vec())))
    }

    fn unsupported() -> jsonwebtoken::errors::Error {
        new_error(ErrorKind::UnsupportedAlgorithm)
    }

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: signer,
        verifier_factory: verifier,
        // JWKs are not used by the runner: every helper answers an error rather than panic.
        key_utils: KeyUtils {
            rsa_pub_components_from_private_key: |_| Err(unsupported()),
            rsa_pub_components_from_public_key: |_| Err(unsupported()),
            ec_pub_components_from_private_key: |pkcs8, algorithm| {
                if algorithm != Algorithm::ES256 {
                    return Err(unsupported());
                }
                let pair = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &SystemRandom::new(),
                )
                .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?;
                let point = pair.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(32.min(point.len().saturating_sub(1)));
                Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
            },
            ed_pub_components_from_private_key: |_, _| Err(unsupported()),
            compute_digest: |data, hash| {
                let algorithm = match hash {
                    ThumbprintHash::SHA256 => &ring::digest::SHA256,
                    ThumbprintHash::SHA384 => &ring::digest::SHA384,
                    ThumbprintHash::SHA512 => &ring::digest::SHA512,
                    _ => return Err(unsupported()),
                };
                Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
            },
        },
    };

    /// Makes this the process's `jsonwebtoken` provider. A provider installed before (by a
    /// host process) stays: `install_default` succeeds once per process, and any complete
    /// provider signs and verifies ES256 alike.
    pub(super) fn install() {
        let _ = PROVIDER.install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> TokenAuthority {
        TokenAuthority::ephemeral().unwrap()
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn a_minted_customer_token_is_accepted_and_shaped_like_cognitos() {
        let a = authority();
        let token = a
            .mint(&Grant::customer("C-1").in_group("warehouse"))
            .unwrap();
        let claims = a.authorize(Some(&bearer(&token)), &[]).unwrap();
        assert_eq!(claims["sub"], "C-1");
        assert_eq!(claims["client_id"], CUSTOMER_CLIENT_ID);
        assert_eq!(claims["token_use"], "access");
        assert_eq!(claims["iss"], LOCAL_ISSUER);
        assert!(
            claims.get("aud").is_none(),
            "Cognito access tokens have no aud"
        );
        assert_eq!(claims["cognito:groups"], json!(["warehouse"]));
        // Without the prefix too, as API Gateway accepts it.
        assert!(a.authorize(Some(&token), &[]).is_ok());
    }

    #[test]
    fn missing_expired_foreign_and_tampered_tokens_are_401() {
        let a = authority();
        let missing = a.authorize(None, &[]).unwrap_err();
        assert_eq!((missing.status, missing.error), (401, "missing_token"));
        assert_eq!(a.authorize(Some("  "), &[]).unwrap_err().status, 401);

        let expired = a.mint(&Grant::customer("C-1").expires_in(-1)).unwrap();
        let refusal = a.authorize(Some(&bearer(&expired)), &[]).unwrap_err();
        assert_eq!((refusal.status, refusal.error), (401, "invalid_token"));
        assert!(refusal.description.contains("expired"), "{refusal:?}");

        let other_key = authority().mint(&Grant::customer("C-1")).unwrap();
        assert_eq!(
            a.authorize(Some(&bearer(&other_key)), &[])
                .unwrap_err()
                .status,
            401
        );

        // Same key, another issuer: only the issuer is wrong.
        let pkcs8 = generate_pkcs8(None).unwrap();
        let a = TokenAuthority::from_pkcs8(&pkcs8, None).unwrap();
        let same_key_other_issuer = TokenAuthority::from_pkcs8(&pkcs8, None)
            .unwrap()
            .with_issuer("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other");
        let token = same_key_other_issuer.mint(&Grant::customer("C-1")).unwrap();
        let refusal = a.authorize(Some(&bearer(&token)), &[]).unwrap_err();
        assert!(refusal.description.contains("issuer"), "{refusal:?}");

        // A signature of another payload: the same header and key, the claims swapped.
        let genuine = a.mint(&Grant::customer("C-1")).unwrap();
        let forged_claims = a.mint(&Grant::customer("C-2")).unwrap();
        let parts: Vec<&str> = genuine.split('.').collect();
        let forged: Vec<&str> = forged_claims.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged[1], parts[2]);
        let refusal = a.authorize(Some(&bearer(&tampered)), &[]).unwrap_err();
        assert!(refusal.description.contains("signature"), "{refusal:?}");

        assert_eq!(
            a.authorize(Some("Bearer not-a-jwt"), &[])
                .unwrap_err()
                .status,
            401
        );
    }

    #[test]
    fn an_unknown_audience_is_refused_with_api_gateways_words() {
        let a = authority();
        let mut grant = Grant::customer("C-1");
        grant.client_id = "someone-elses-client".to_owned();
        let token = a.mint(&grant).unwrap();
        let refusal = a.authorize(Some(&bearer(&token)), &[]).unwrap_err();
        assert_eq!(
            refusal.description,
            "the token does not have a valid audience"
        );
        let response = refusal.response();
        assert_eq!(response.status, 401);
        assert_eq!(response.body, r#"{"message":"Unauthorized"}"#);
        assert_eq!(
            response.header("www-authenticate"),
            Some(
                "Bearer scope=\"\" error=\"invalid_token\" error_description=\"the token does not have a valid audience\""
            )
        );
    }

    #[test]
    fn a_route_scope_needs_a_token_carrying_it() {
        let a = authority();
        let staff = vec![platform::auth::DEFAULT_STAFF_SCOPE.to_owned()];
        let customer = a
            .mint(&Grant::customer("C-1").in_group("warehouse"))
            .unwrap();
        let refusal = a.authorize(Some(&bearer(&customer)), &staff).unwrap_err();
        assert_eq!((refusal.status, refusal.error), (403, "insufficient_scope"));
        let response = refusal.response();
        assert_eq!(response.body, r#"{"message":"Forbidden"}"#);
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .contains("scope=\"commerce/warehouse\" error=\"insufficient_scope\"")
        );
        let warehouse = a.mint(&Grant::warehouse(staff.clone())).unwrap();
        let claims = a.authorize(Some(&bearer(&warehouse)), &staff).unwrap();
        assert_eq!(claims["sub"], WAREHOUSE_CLIENT_ID);
        assert_eq!(claims["scope"], "commerce/warehouse");
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_key_path(&dir.path().join("template.yaml"));
        let (first, created) = TokenAuthority::from_key_file(&path).unwrap();
        assert!(created && path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "private to its owner: {mode:o}");
        }
        let token = first.mint(&Grant::customer("C-1")).unwrap();
        let (second, created) = TokenAuthority::from_key_file(&path).unwrap();
        assert!(!created);
        assert!(
            second.authorize(Some(&token), &[]).is_ok(),
            "same key, same tokens"
        );
        assert_eq!(second.key_path(), Some(path.as_path()));

        std::fs::write(&path, b"not a key").unwrap();
        let err = TokenAuthority::from_key_file(&path).unwrap_err();
        assert_eq!(err.error_type(), "SigningKey");
        assert!(err.to_string().contains("delete it"), "{err}");
    }

    #[test]
    fn no_auth_reads_claims_without_checking_them() {
        let expired = authority()
            .mint(&Grant::customer("C-9").expires_in(-60))
            .unwrap();
        let claims = unverified_claims(Some(&bearer(&expired))).unwrap();
        assert_eq!(claims["sub"], "C-9");
        assert_eq!(unverified_claims(None), None);
        assert_eq!(unverified_claims(Some("Bearer nope")), None);
    }
}
