//! The state machine: claim, then complete or release.

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::{Instrument, Span};

use crate::clock::{Clock, SystemClock, duration_millis};
use crate::config::{IdempotencyConfig, MAX_CLAIM_ATTEMPTS};
use crate::error::{IdempotencyError, RunError, UnreadableReason};
use crate::metrics::{Metrics, MetricsSnapshot, bump};
use crate::record::{Record, RecordState, Status};
use crate::replay::{Replay, unreadable};
use crate::request::{KeyExtractor, Request};
use crate::store::{ClaimResult, FencedWrite, IdempotencyStore};

/// A COMPLETED record as the local cache keeps it.
#[derive(Debug, Clone)]
struct Cached {
    expiration: u64,
    validation: Option<String>,
    /// The stored result as its JSON text: parsed only on a hit (rare), never on insert, and
    /// cheap to hand out and to drop on eviction.
    data: Arc<str>,
}

pub(crate) struct Inner {
    store: Arc<dyn IdempotencyStore>,
    config: IdempotencyConfig,
    cache: Option<Mutex<LruCache<String, Cached, foldhash::fast::RandomState>>>,
    pub(crate) metrics: Metrics,
}

impl Inner {
    fn now(&self) -> u64 {
        self.config.clock.now_millis()
    }

    fn expiration_from(&self, now_millis: u64) -> u64 {
        (now_millis / 1000).saturating_add(self.config.expires_after.as_secs())
    }

    // Cache operations never await while holding the lock. A panic inside LruCache cannot leave
    // it unusable for our purposes (worst case a stale entry), so a poisoned lock is reused.
    fn cache(
        &self,
    ) -> Option<MutexGuard<'_, LruCache<String, Cached, foldhash::fast::RandomState>>> {
        self.cache
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn cached(&self, id: &str, now_millis: u64) -> Option<Cached> {
        let mut cache = self.cache()?;
        let hit = cache.get(id)?.clone();
        if hit.expiration < now_millis / 1000 {
            cache.pop(id);
            return None;
        }
        Some(hit)
    }

    fn cache_completed(
        &self,
        id: &str,
        expiration: u64,
        validation: Option<String>,
        data: Arc<str>,
    ) {
        if let Some(mut cache) = self.cache() {
            cache.put(
                id.to_owned(),
                Cached {
                    expiration,
                    validation,
                    data,
                },
            );
        }
    }

    fn store_error(&self, e: crate::error::StoreError) -> IdempotencyError {
        bump(&self.metrics.store_errors);
        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "idempotency store call failed");
        IdempotencyError::Store(e)
    }
}

/// A fencing token unique to one claim attempt, in the 32-hex-digit form of a UUID: 64 random
/// bits drawn once per process (two containers' tokens never meet in practice) followed by a
/// per-process counter (two claims of one process never share one). Drawing 128 fresh random
/// bits per claim cost a `getrandom` system call on every record.
fn owner_token() -> String {
    static PROCESS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let claim = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Same text as `format!("{process:016x}{claim:016x}")`, without the formatting machinery
    // (a measurable share of a claim in the local runner's profile).
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&process.to_be_bytes());
    bytes[8..].copy_from_slice(&claim.to_be_bytes());
    crate::request::hex_lower(&bytes)
}

/// `<prefix>#<hash>`, the record id.
fn record_id(prefix: &str, key_hash: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + key_hash.len());
    id.push_str(prefix);
    id.push('#');
    id.push_str(key_hash);
    id
}

/// Makes operations idempotent against one store and configuration.
///
/// Cheap to clone (an `Arc` inside); clones share the store, the local cache and the counters.
#[derive(Clone)]
pub struct Idempotency {
    inner: Arc<Inner>,
}

impl fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("config", &self.inner.config)
            .field("metrics", &self.inner.metrics.snapshot())
            .finish_non_exhaustive()
    }
}

/// What [`Idempotency::begin`] found.
#[derive(Debug)]
pub enum Begin {
    /// Fresh: the caller runs the operation, then [`Claim::complete`]s or [`Claim::release`]s.
    Claimed(Claim),
    /// A COMPLETED, live record (payload validated): the operation already ran. Its stored
    /// result may be unreadable (see [`Replay`]); a caller that does not need it acknowledges.
    Replayed(Replay),
    /// Another invocation holds a live claim: retry later.
    InProgress,
    /// [`Request::unkeyed`]: run the operation without persistence.
    Unkeyed,
}

impl Begin {
    /// `"fresh"`, `"replayed"`, `"in_progress"` or `"unkeyed"`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Claimed(_) => "fresh",
            Self::Replayed(_) => "replayed",
            Self::InProgress => "in_progress",
            Self::Unkeyed => "unkeyed",
        }
    }
}

/// The result of an idempotent operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The operation ran now (or, for an unkeyed request, ran without persistence).
    Fresh(T),
    /// The operation had already completed: its stored result.
    Replayed(T),
    /// Another invocation is running it: retry later (a batch-item failure for SQS, a 409 for
    /// HTTP, an error for a direct invoke).
    InProgress,
}

impl<T> Outcome<T> {
    /// Whether the operation ran now.
    pub fn is_fresh(&self) -> bool {
        matches!(self, Self::Fresh(_))
    }

    /// Whether the result is a replay.
    pub fn is_replayed(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }

    /// Whether another invocation holds the claim.
    pub fn is_in_progress(&self) -> bool {
        matches!(self, Self::InProgress)
    }

    /// The result, fresh or replayed.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Fresh(v) | Self::Replayed(v) => Some(v),
            Self::InProgress => None,
        }
    }

    /// The result by value, fresh or replayed.
    pub fn into_value(self) -> Option<T> {
        match self {
            Self::Fresh(v) | Self::Replayed(v) => Some(v),
            Self::InProgress => None,
        }
    }

    /// `"fresh"`, `"replayed"` or `"in_progress"`, for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Fresh(_) => "fresh",
            Self::Replayed(_) => "replayed",
            Self::InProgress => "in_progress",
        }
    }
}

/// A held claim. It owns everything it needs (`Send + 'static`), so it can be kept across awaits
/// and tasks. Dropping it without [`Claim::complete`] or [`Claim::release`] leaves the record to
/// expire at its `in_progress_expiration`.
pub struct Claim {
    inner: Arc<Inner>,
    id: String,
    key_hash: String,
    owner: String,
    validation: Option<String>,
    span: Span,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Claim {
    /// Stores `result` as COMPLETED (one conditional `UpdateItem`), if this claim still owns the
    /// record; otherwise [`IdempotencyError::ClaimLost`].
    ///
    /// A result that cannot be serialized releases the claim (so a retry can run) and is
    /// [`IdempotencyError::Serialization`].
    pub async fn complete<T: Serialize + ?Sized>(self, result: &T) -> Result<(), IdempotencyError> {
        let data = match serde_json::to_string(result) {
            Ok(data) => data,
            Err(e) => {
                if let Err(release) = self.release_ref().await {
                    tracing::warn!(error = %release, "releasing a claim whose result does not serialize failed");
                }
                return Err(IdempotencyError::Serialization(e));
            }
        };
        let span = self.span.clone();
        self.complete_with(data).instrument(span).await
    }

    async fn complete_with(self, data: String) -> Result<(), IdempotencyError> {
        let inner = &self.inner;
        let expiration = inner.expiration_from(inner.now());
        bump(&inner.metrics.complete_calls);
        let written = inner
            .store
            .complete(
                &inner.config.layout,
                &self.id,
                &self.owner,
                &data,
                expiration,
            )
            .await
            .map_err(|e| inner.store_error(e))?;
        match written {
            FencedWrite::Applied => {
                if inner.cache.is_some() {
                    inner.cache_completed(
                        &self.id,
                        expiration,
                        self.validation.clone(),
                        Arc::from(data),
                    );
                }
                tracing::debug!("idempotency record completed");
                Ok(())
            }
            FencedWrite::NotOwner => Err(self.lost()),
        }
    }

    /// Deletes the record (one conditional `DeleteItem`) so a retry can run the operation, if this
    /// claim still owns it; if another invocation holds it now, [`IdempotencyError::ClaimLost`]
    /// and the record is left alone. A record that no longer exists counts as released. When the
    /// delete fails the record stays until its `in_progress_expiration`.
    pub async fn release(self) -> Result<(), IdempotencyError> {
        let span = self.span.clone();
        async move { self.release_ref().await }
            .instrument(span)
            .await
    }

    async fn release_ref(&self) -> Result<(), IdempotencyError> {
        let inner = &self.inner;
        bump(&inner.metrics.release_calls);
        let written = inner
            .store
            .release(&inner.config.layout, &self.id, &self.owner)
            .await
            .map_err(|e| inner.store_error(e))?;
        match written {
            FencedWrite::Applied => {
                tracing::debug!("idempotency claim released");
                Ok(())
            }
            FencedWrite::NotOwner => Err(self.lost()),
        }
    }

    fn lost(&self) -> IdempotencyError {
        bump(&self.inner.metrics.claims_lost);
        tracing::warn!("idempotency claim lost: another invocation took the record over");
        IdempotencyError::ClaimLost {
            key_hash: self.key_hash.clone(),
        }
    }

    /// The hashed key (hex).
    pub fn key_hash(&self) -> &str {
        &self.key_hash
    }

    /// The record id, `<prefix>#<hash>`.
    pub fn record_id(&self) -> &str {
        &self.id
    }
}

impl Idempotency {
    /// An idempotency layer over `store` with `config`.
    pub fn new(store: impl IdempotencyStore + 'static, config: IdempotencyConfig) -> Self {
        Self::from_arc(Arc::new(store), config)
    }

    /// Like [`Idempotency::new`], sharing a store already behind an `Arc`.
    pub fn from_arc(store: Arc<dyn IdempotencyStore>, config: IdempotencyConfig) -> Self {
        let cache = NonZeroUsize::new(config.cache_capacity).map(|n| {
            Mutex::new(LruCache::with_hasher(
                n,
                foldhash::fast::RandomState::default(),
            ))
        });
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                cache,
                metrics: Metrics::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IdempotencyConfig {
        &self.inner.config
    }

    /// The record id a request maps to (`<prefix>#<hash>`); `None` when unkeyed.
    pub fn record_id(&self, request: &Request) -> Option<String> {
        request
            .key_hash()
            .map(|hash| record_id(&self.inner.config.key_prefix, hash))
    }

    fn span(&self, request: &Request) -> Span {
        tracing::info_span!(
            "idempotency",
            operation = %self.inner.config.operation,
            key = request.key_hash().unwrap_or("unkeyed"),
            outcome = tracing::field::Empty,
        )
    }

    /// Step 1 of the two-step API: claims the request's key with one conditional write, or
    /// reports why the operation must not run now.
    pub async fn begin(&self, request: &Request) -> Result<Begin, IdempotencyError> {
        let span = self.span(request);
        let result = self.begin_in(request, &span).instrument(span.clone()).await;
        match &result {
            Ok(begin) => span.record("outcome", begin.label()),
            Err(e) => span.record("outcome", e.error_type()),
        };
        result
    }

    async fn begin_in(&self, request: &Request, span: &Span) -> Result<Begin, IdempotencyError> {
        let inner = &self.inner;
        let metrics = &inner.metrics;
        let Some(key_hash) = request.key_hash() else {
            bump(&metrics.unkeyed);
            tracing::warn!(
                operation = %inner.config.operation,
                "request has no idempotency key and opted out: running without idempotency"
            );
            return Ok(Begin::Unkeyed);
        };
        let id = record_id(&inner.config.key_prefix, key_hash);

        if let Some(hit) = inner.cached(&id, inner.now()) {
            bump(&metrics.cache_hits);
            self.check_validation(request, hit.validation.as_deref(), key_hash)?;
            // Cached texts were written by serde_json (or read back from the store and parsed
            // once already), so this cannot fail in practice; if it did, it is an unreadable
            // result like any other, not a panic.
            let value =
                serde_json::from_str::<Value>(&hit.data).map_err(|_| UnreadableReason::NotJson);
            bump(&metrics.replayed);
            tracing::info!(
                outcome = "replayed",
                cached = true,
                store_calls = 0,
                "idempotency outcome"
            );
            return Ok(Begin::Replayed(self.replay(id, value)));
        }

        let mut store_calls = 0u32;
        for attempt in 1..=MAX_CLAIM_ATTEMPTS {
            let now = inner.now();
            let timeout = inner
                .config
                .effective_in_progress_timeout(request.remaining());
            let record = Record {
                id: id.clone(),
                status: Status::InProgress,
                expiration: inner.expiration_from(now),
                in_progress_expiration: Some(now.saturating_add(duration_millis(timeout))),
                data: None,
                validation: request.validation_hash().map(str::to_owned),
                owner: owner_token(),
            };
            bump(&metrics.claim_calls);
            store_calls += 1;
            let claimed = inner
                .store
                .claim(&inner.config.layout, &record, now)
                .await
                .map_err(|e| inner.store_error(e))?;
            // The SDK retries a put whose response was lost; the retry then conflicts with our
            // own write. Our owner token on the blocking record means the claim is ours.
            let claimed = match claimed {
                ClaimResult::Conflict(Some(existing)) if existing.owner == record.owner => {
                    tracing::debug!("claim conflicted with itself (retried put); it is ours");
                    ClaimResult::Claimed
                }
                other => other,
            };
            let existing = match claimed {
                ClaimResult::Claimed => {
                    bump(&metrics.fresh);
                    tracing::info!(outcome = "fresh", store_calls, "idempotency outcome");
                    return Ok(Begin::Claimed(Claim {
                        inner: Arc::clone(inner),
                        id,
                        key_hash: key_hash.to_owned(),
                        owner: record.owner,
                        validation: record.validation,
                        span: span.clone(),
                    }));
                }
                ClaimResult::Conflict(Some(existing)) => Some(existing),
                ClaimResult::Conflict(None) => {
                    bump(&metrics.get_calls);
                    store_calls += 1;
                    inner
                        .store
                        .get(&inner.config.layout, &id)
                        .await
                        .map_err(|e| inner.store_error(e))?
                }
            };
            let state = existing
                .as_ref()
                .map_or(RecordState::Expired, |r| r.state_at(now));
            let existing = match (existing, state) {
                (Some(existing), RecordState::Completed | RecordState::InProgress) => existing,
                _ => {
                    // The record that blocked us is gone or already expired: it changed between
                    // the condition check and now. Claim again, a bounded number of times.
                    bump(&metrics.claim_retries);
                    tracing::debug!(attempt, "claim conflicted with an expired record; retrying");
                    continue;
                }
            };
            self.check_validation(request, existing.validation.as_deref(), key_hash)?;
            if state == RecordState::InProgress {
                bump(&metrics.in_progress);
                tracing::info!(outcome = "in_progress", store_calls, "idempotency outcome");
                return Ok(Begin::InProgress);
            }
            // A result that cannot be read is still a replay: the operation ran. It is counted
            // and logged here, and never cached, so every duplicate reports it.
            let value = match existing.data.as_deref() {
                None => Err(UnreadableReason::Missing),
                Some(data) => match serde_json::from_str::<Value>(data) {
                    Ok(value) => {
                        inner.cache_completed(
                            &id,
                            existing.expiration,
                            existing.validation,
                            Arc::from(data),
                        );
                        Ok(value)
                    }
                    Err(_) => Err(UnreadableReason::NotJson),
                },
            };
            bump(&metrics.replayed);
            tracing::info!(outcome = "replayed", store_calls, "idempotency outcome");
            if let Err(reason) = value {
                unreadable(inner, &id, reason);
            }
            return Ok(Begin::Replayed(self.replay(id, value)));
        }
        tracing::warn!(
            attempts = MAX_CLAIM_ATTEMPTS,
            "idempotency record stayed inconsistent"
        );
        Err(IdempotencyError::InconsistentState {
            attempts: MAX_CLAIM_ATTEMPTS,
        })
    }

    fn replay(&self, record_id: String, value: Result<Value, UnreadableReason>) -> Replay {
        Replay {
            inner: Arc::clone(&self.inner),
            record_id,
            value,
        }
    }

    // Strict: when the request validates, a record without a payload hash does not match
    // either, so enabling validation can never let a tampered payload replay.
    fn check_validation(
        &self,
        request: &Request,
        stored: Option<&str>,
        key_hash: &str,
    ) -> Result<(), IdempotencyError> {
        match request.validation_hash() {
            Some(expected) if stored != Some(expected) => {
                bump(&self.inner.metrics.validation_failures);
                tracing::warn!("payload differs from the one stored under this idempotency key");
                Err(IdempotencyError::Validation {
                    key_hash: key_hash.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Runs `op` at most once per key: begin, then `op`, then complete (on `Ok`) or release (on
    /// `Err`, so a retry can run it). A replay deserializes the stored result into `T`; a stored
    /// result that is missing, not JSON or not a `T` is [`IdempotencyError::UnreadableResult`]
    /// (not transient: the caller answers from its own state, the operation is not run again).
    ///
    /// If `op` succeeded but storing its result failed, the error is
    /// [`RunError::Idempotency`] (the operation did run; its claim expires at
    /// `in_progress_expiration`). If releasing after an operation error fails, the operation's
    /// error is still returned and the release failure is logged.
    pub async fn run<T, E, F, Fut>(
        &self,
        request: &Request,
        op: F,
    ) -> Result<Outcome<T>, RunError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let span = self.span(request);
        let result = self
            .run_in(request, op, &span)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(outcome) => span.record("outcome", outcome.label()),
            Err(e) => span.record("outcome", e.error_type()),
        };
        result
    }

    async fn run_in<T, E, F, Fut>(
        &self,
        request: &Request,
        op: F,
        span: &Span,
    ) -> Result<Outcome<T>, RunError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match self.begin_in(request, span).await? {
            Begin::Unkeyed => op().await.map(Outcome::Fresh).map_err(RunError::Operation),
            Begin::InProgress => Ok(Outcome::InProgress),
            Begin::Replayed(replay) => replay
                .deserialize()
                .map(Outcome::Replayed)
                .map_err(RunError::Idempotency),
            Begin::Claimed(claim) => match op().await {
                Ok(result) => {
                    claim.complete(&result).await?;
                    Ok(Outcome::Fresh(result))
                }
                Err(e) => {
                    if let Err(release) = claim.release().await {
                        tracing::warn!(error = %release, error_type = release.error_type(),
                            "releasing the claim after an operation error failed; it expires at in_progress_expiration");
                    }
                    Err(RunError::Operation(e))
                }
            },
        }
    }

    /// A whole-handler convenience: extracts the key from each event with `extractor` and runs
    /// `handler` idempotently (see [`IdempotentHandler::call`]).
    pub fn handler<X, H>(&self, extractor: X, handler: H) -> IdempotentHandler<X, H> {
        IdempotentHandler {
            idempotency: self.clone(),
            extractor,
            handler,
        }
    }

    /// The counters (shared by every clone).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Logs the counters at INFO (e.g. at the end of a batch or invocation).
    pub fn log_metrics(&self) {
        let m = self.metrics();
        tracing::info!(
            operation = %self.inner.config.operation,
            fresh = m.fresh,
            replayed = m.replayed,
            in_progress = m.in_progress,
            validation_failures = m.validation_failures,
            cache_hits = m.cache_hits,
            store_calls = m.store_calls,
            claim_calls = m.claim_calls,
            complete_calls = m.complete_calls,
            release_calls = m.release_calls,
            get_calls = m.get_calls,
            unkeyed = m.unkeyed,
            store_errors = m.store_errors,
            claims_lost = m.claims_lost,
            claim_retries = m.claim_retries,
            unreadable = m.unreadable,
            "idempotency metrics"
        );
    }
}

/// A handler made idempotent: see [`Idempotency::handler`].
#[derive(Debug, Clone)]
pub struct IdempotentHandler<X, H> {
    idempotency: Idempotency,
    extractor: X,
    handler: H,
}

impl<X, H> IdempotentHandler<X, H> {
    /// Runs the handler on `event` at most once per extracted key. `remaining` is the
    /// invocation's remaining time (see [`remaining_until`] for a Lambda deadline). An event
    /// without a key is [`IdempotencyError::KeyMissing`] and the handler does not run.
    pub async fn call<Ev, T, E, Fut>(
        &self,
        event: Ev,
        remaining: Option<Duration>,
    ) -> Result<Outcome<T>, RunError<E>>
    where
        X: KeyExtractor<Ev>,
        H: Fn(Ev) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned,
    {
        let mut request = Request::from_event(&self.extractor, &event)?;
        if let Some(remaining) = remaining {
            request = request.remaining_time(remaining);
        }
        self.idempotency
            .run(&request, || (self.handler)(event))
            .await
    }

    /// The underlying [`Idempotency`].
    pub fn idempotency(&self) -> &Idempotency {
        &self.idempotency
    }
}

/// Remaining time until a Lambda deadline in epoch milliseconds (`lambda_runtime::Context::deadline`),
/// by the system clock; zero once it has passed.
pub fn remaining_until(deadline_epoch_millis: u64) -> Duration {
    Duration::from_millis(deadline_epoch_millis.saturating_sub(SystemClock.now_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InMemoryStore;

    fn assert_send_static<T: Send + 'static>(_: &T) {}
    fn assert_clone_send_sync<T: Clone + Send + Sync + 'static>() {}

    #[test]
    fn handles_and_futures_can_cross_tasks() {
        assert_clone_send_sync::<Idempotency>();
        assert_clone_send_sync::<IdempotencyConfig>();
        assert_clone_send_sync::<Request>();
        let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("op"));
        let request = Request::unkeyed();
        // Futures must be Send so eventing can spawn them; Claim must outlive the Idempotency
        // borrow so it can be held across a batched publish.
        let idem = idempotency.clone();
        let begin = async move { idem.begin(&request).await };
        assert_send_static(&begin);
        let idem = idempotency.clone();
        let claim_work = async move {
            if let Ok(Begin::Claimed(claim)) = idem.begin(&Request::unkeyed()).await {
                claim.complete(&vec![1, 2, 3]).await
            } else {
                Ok(())
            }
        };
        assert_send_static(&claim_work);
        let idem = idempotency.clone();
        let run = async move {
            idem.run(&Request::unkeyed(), || async { Ok::<_, std::io::Error>(1) })
                .await
        };
        assert_send_static(&run);
    }
}
