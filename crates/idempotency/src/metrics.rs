//! Counters of outcomes and store round trips.

use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of an [`crate::Idempotency`]'s counters (shared by its clones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Claims won: the operation ran (or is running) for a key not seen live before.
    pub fresh: u64,
    /// Duplicates answered from a COMPLETED record, so the operation did not run (from the store
    /// or the local cache), unreadable ones included.
    pub replayed: u64,
    /// Requests refused because another invocation holds a live claim.
    pub in_progress: u64,
    /// Requests refused because their payload differs from the stored one.
    pub validation_failures: u64,
    /// Requests answered by the local cache without a round trip.
    pub cache_hits: u64,
    /// Store round trips (DynamoDB requests): the sum of the four per-primitive counts below.
    pub store_calls: u64,
    /// Claim round trips (conditional `PutItem`).
    pub claim_calls: u64,
    /// Complete round trips (conditional `UpdateItem`).
    pub complete_calls: u64,
    /// Release round trips (conditional `DeleteItem`).
    pub release_calls: u64,
    /// Read round trips (`GetItem`; only when a store cannot return the conflicting record).
    pub get_calls: u64,
    /// Requests run without persistence ([`crate::Request::unkeyed`]).
    pub unkeyed: u64,
    /// Store primitives that failed.
    pub store_errors: u64,
    /// Completes or releases refused by fencing (the claim was taken over).
    pub claims_lost: u64,
    /// Claims retried because the conflicting record was already expired.
    pub claim_retries: u64,
    /// Of the replays, those whose stored result could not be read: missing, not JSON, or not of
    /// the type the caller asked for (each also logged at WARN with its record id).
    pub unreadable: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) fresh: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) in_progress: AtomicU64,
    pub(crate) validation_failures: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) claim_calls: AtomicU64,
    pub(crate) complete_calls: AtomicU64,
    pub(crate) release_calls: AtomicU64,
    pub(crate) get_calls: AtomicU64,
    pub(crate) unkeyed: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) claims_lost: AtomicU64,
    pub(crate) claim_retries: AtomicU64,
    pub(crate) unreadable: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let claim_calls = get(&self.claim_calls);
        let complete_calls = get(&self.complete_calls);
        let release_calls = get(&self.release_calls);
        let get_calls = get(&self.get_calls);
        MetricsSnapshot {
            fresh: get(&self.fresh),
            replayed: get(&self.replayed),
            in_progress: get(&self.in_progress),
            validation_failures: get(&self.validation_failures),
            cache_hits: get(&self.cache_hits),
            store_calls: claim_calls + complete_calls + release_calls + get_calls,
            claim_calls,
            complete_calls,
            release_calls,
            get_calls,
            unkeyed: get(&self.unkeyed),
            store_errors: get(&self.store_errors),
            claims_lost: get(&self.claims_lost),
            claim_retries: get(&self.claim_retries),
            unreadable: get(&self.unreadable),
        }
    }
}
