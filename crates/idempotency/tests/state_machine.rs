//! Property tests of the state machine against the in-memory store: random interleavings of
//! begin / complete / release / clock moves over a few keys, with and without payload validation
//! and the local cache, must match a small reference model of DESIGN.md section 3.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::HashMap;
use std::time::Duration;

use idempotency::{
    Begin, Claim, Clock, Idempotency, IdempotencyConfig, IdempotencyError, InMemoryStore,
    ManualClock, Request,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const EXPIRES_AFTER_SECS: u64 = 10;
const DEFAULT_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone)]
enum Op {
    /// Begin on `key`, validating `payload` if given, with `remaining` ms if given.
    Begin {
        key: u8,
        payload: Option<u8>,
        remaining: Option<u64>,
    },
    /// Complete the `n`-th held claim (modulo the number held) with `value`.
    Complete { n: usize, value: u32 },
    /// Release the `n`-th held claim.
    Release { n: usize },
    /// Drop the `n`-th held claim (a crashed invocation).
    Drop { n: usize },
    /// Move the clock forward.
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3u8, proptest::option::of(0..2u8), proptest::option::of(prop_oneof![Just(0u64), 1..3_000u64]))
            .prop_map(|(key, payload, remaining)| Op::Begin { key, payload, remaining }),
        2 => (any::<usize>(), any::<u32>()).prop_map(|(n, value)| Op::Complete { n, value }),
        1 => any::<usize>().prop_map(|n| Op::Release { n }),
        1 => any::<usize>().prop_map(|n| Op::Drop { n }),
        2 => prop_oneof![Just(1u64), 0..2_000u64, 5_000..15_000u64].prop_map(|ms| Op::Advance { ms }),
    ]
}

/// What one step observably did.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Claimed,
    Replayed(Value),
    InProgress,
    Validation,
    ClaimLost,
    Done,
}

#[derive(Debug, Clone)]
struct ModelRecord {
    completed: bool,
    expiration_s: u64,
    in_progress_expiration_ms: u64,
    data: Option<Value>,
    validation: Option<u8>,
    owner: u64,
}

impl ModelRecord {
    fn live(&self, now_ms: u64) -> bool {
        !(self.expiration_s < now_ms / 1000
            || (!self.completed && self.in_progress_expiration_ms < now_ms))
    }
}

#[derive(Default)]
struct Model {
    records: HashMap<u8, ModelRecord>,
    next_owner: u64,
}

impl Model {
    fn begin(
        &mut self,
        now: u64,
        key: u8,
        payload: Option<u8>,
        remaining: Option<u64>,
    ) -> (Seen, Option<u64>) {
        if let Some(r) = self.records.get(&key).filter(|r| r.live(now)) {
            if payload.is_some() && r.validation != payload {
                return (Seen::Validation, None);
            }
            return match &r.data {
                Some(data) if r.completed => (Seen::Replayed(data.clone()), None),
                _ => (Seen::InProgress, None),
            };
        }
        self.next_owner += 1;
        let owner = self.next_owner;
        self.records.insert(
            key,
            ModelRecord {
                completed: false,
                expiration_s: now / 1000 + EXPIRES_AFTER_SECS,
                in_progress_expiration_ms: now + remaining.unwrap_or(DEFAULT_TIMEOUT_MS),
                data: None,
                validation: payload,
                owner,
            },
        );
        (Seen::Claimed, Some(owner))
    }

    fn complete(&mut self, now: u64, key: u8, owner: u64, value: u32) -> Seen {
        match self.records.get_mut(&key) {
            Some(r) if r.owner == owner => {
                r.completed = true;
                r.data = Some(json!(value));
                r.expiration_s = now / 1000 + EXPIRES_AFTER_SECS;
                Seen::Done
            }
            _ => Seen::ClaimLost,
        }
    }

    fn release(&mut self, key: u8, owner: u64) -> Seen {
        match self.records.get(&key) {
            Some(r) if r.owner != owner => Seen::ClaimLost,
            _ => {
                self.records.remove(&key);
                Seen::Done
            }
        }
    }
}

fn request(key: u8, payload: Option<u8>, remaining: Option<u64>) -> Request {
    let mut request = Request::new(&json!({ "key": key })).unwrap();
    if let Some(p) = payload {
        request = request.validate(&p).unwrap();
    }
    if let Some(ms) = remaining {
        request = request.remaining_time(Duration::from_millis(ms));
    }
    request
}

fn check(ops: &[Op], cache: usize) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let clock = ManualClock::starting_now();
    let idem = Idempotency::new(
        InMemoryStore::new(),
        IdempotencyConfig::new("prop")
            .expires_after(Duration::from_secs(EXPIRES_AFTER_SECS))
            .local_cache(cache)
            .clock(clock.clone()),
    );
    let mut model = Model::default();
    // Held claims: (key, model owner id, the real claim).
    let mut held: Vec<(u8, u64, Claim)> = Vec::new();

    for (step, op) in ops.iter().enumerate() {
        let now = clock.now_millis();
        let (expected, actual) = match op.clone() {
            Op::Begin {
                key,
                payload,
                remaining,
            } => {
                let (expected, owner) = model.begin(now, key, payload, remaining);
                let actual = match rt.block_on(idem.begin(&request(key, payload, remaining))) {
                    Ok(Begin::Claimed(claim)) => {
                        if let Some(owner) = owner {
                            held.push((key, owner, claim));
                        }
                        Seen::Claimed
                    }
                    Ok(Begin::Replayed(replay)) => Seen::Replayed(
                        replay
                            .into_value()
                            .unwrap_or_else(|e| panic!("step {step}: {e}")),
                    ),
                    Ok(Begin::InProgress) => Seen::InProgress,
                    Ok(Begin::Unkeyed) => panic!("keyed request began unkeyed"),
                    Err(IdempotencyError::Validation { .. }) => Seen::Validation,
                    Err(e) => panic!("step {step}: unexpected error {e:?}"),
                };
                (expected, actual)
            }
            Op::Complete { n, value } if !held.is_empty() => {
                let (key, owner, claim) = held.remove(n % held.len());
                let expected = model.complete(now, key, owner, value);
                let actual = match rt.block_on(claim.complete(&value)) {
                    Ok(()) => Seen::Done,
                    Err(IdempotencyError::ClaimLost { .. }) => Seen::ClaimLost,
                    Err(e) => panic!("step {step}: unexpected error {e:?}"),
                };
                (expected, actual)
            }
            Op::Release { n } if !held.is_empty() => {
                let (key, owner, claim) = held.remove(n % held.len());
                let expected = model.release(key, owner);
                let actual = match rt.block_on(claim.release()) {
                    Ok(()) => Seen::Done,
                    Err(IdempotencyError::ClaimLost { .. }) => Seen::ClaimLost,
                    Err(e) => panic!("step {step}: unexpected error {e:?}"),
                };
                (expected, actual)
            }
            Op::Drop { n } if !held.is_empty() => {
                drop(held.remove(n % held.len()));
                (Seen::Done, Seen::Done)
            }
            Op::Advance { ms } => {
                clock.advance(Duration::from_millis(ms));
                (Seen::Done, Seen::Done)
            }
            Op::Complete { .. } | Op::Release { .. } | Op::Drop { .. } => continue,
        };
        prop_assert_eq!(
            &actual,
            &expected,
            "step {} ({:?}) diverged from the model",
            step,
            op
        );
    }

    let m = idem.metrics();
    prop_assert_eq!(
        m.store_calls,
        m.claim_calls + m.complete_calls + m.release_calls + m.get_calls
    );
    prop_assert_eq!(m.get_calls, 0, "ALL_OLD makes reads unnecessary");
    if cache == 0 {
        prop_assert_eq!(m.cache_hits, 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_match_the_reference_model(ops in proptest::collection::vec(op(), 1..60)) {
        check(&ops, 0)?;
    }

    #[test]
    fn local_cache_never_changes_an_outcome(ops in proptest::collection::vec(op(), 1..60)) {
        check(&ops, 4)?;
    }

    #[test]
    fn reordering_object_keys_never_changes_the_key(
        map in proptest::collection::btree_map("[a-z]{1,6}", any::<i64>(), 1..8)
    ) {
        let forward: serde_json::Map<String, Value> =
            map.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let backward: serde_json::Map<String, Value> =
            map.iter().rev().map(|(k, v)| (k.clone(), json!(v))).collect();
        prop_assert_eq!(
            Request::new(&Value::Object(forward)).unwrap().key_hash().map(str::to_owned),
            Request::new(&Value::Object(backward)).unwrap().key_hash().map(str::to_owned)
        );
    }

    #[test]
    fn distinct_keys_never_share_a_hash(a in "[ -~]{1,40}", b in "[ -~]{1,40}") {
        prop_assume!(a != b);
        prop_assert_ne!(
            Request::new(&a).unwrap().key_hash().map(str::to_owned),
            Request::new(&b).unwrap().key_hash().map(str::to_owned)
        );
    }
}
