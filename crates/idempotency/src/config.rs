//! Configuration of one idempotent operation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};

/// Default lifetime of a record: one hour.
pub const DEFAULT_EXPIRES_AFTER: Duration = Duration::from_secs(60 * 60);

/// In-progress timeout used when the request carries no remaining time and no explicit timeout is
/// configured: 60 seconds (longer than most SQS-fed handlers, short enough that a crashed
/// invocation's claim is taken over well before SQS's default visibility timeout redelivers twice).
pub const DEFAULT_IN_PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Claims attempted before [`crate::IdempotencyError::InconsistentState`].
pub const MAX_CLAIM_ATTEMPTS: u32 = 3;

/// Names of the record's attributes in the table. The defaults match DESIGN.md section 3 and
/// `template.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeNames {
    /// The record id `<prefix>#<hash>`: the partition key, or the sort key with a static
    /// partition key. Default `id`.
    pub id: String,
    /// `INPROGRESS` or `COMPLETED`. Default `status`.
    pub status: String,
    /// Epoch seconds; the TTL attribute. Default `expiration`.
    pub expiration: String,
    /// Epoch milliseconds. Default `in_progress_expiration`.
    pub in_progress_expiration: String,
    /// The result as JSON text. Default `data`.
    pub data: String,
    /// Payload hash. Default `validation`.
    pub validation: String,
    /// Fencing token. Default `owner`.
    pub owner: String,
}

impl Default for AttributeNames {
    fn default() -> Self {
        Self {
            id: "id".into(),
            status: "status".into(),
            expiration: "expiration".into(),
            in_progress_expiration: "in_progress_expiration".into(),
            data: "data".into(),
            validation: "validation".into(),
            owner: "owner".into(),
        }
    }
}

/// Where records live in the table: attribute names and the optional static partition key.
/// Passed to every [`crate::IdempotencyStore`] call so one store can serve several configs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableLayout {
    /// Attribute names.
    pub attributes: AttributeNames,
    /// `(attribute, value)` of a static partition key; the record id is then the sort key
    /// (attribute [`AttributeNames::id`]).
    pub static_partition_key: Option<(String, String)>,
}

/// Configuration of one idempotent operation.
#[derive(Clone)]
pub struct IdempotencyConfig {
    pub(crate) operation: String,
    pub(crate) key_prefix: String,
    pub(crate) expires_after: Duration,
    pub(crate) in_progress_timeout: Option<Duration>,
    pub(crate) cache_capacity: usize,
    pub(crate) layout: TableLayout,
    pub(crate) clock: Arc<dyn Clock>,
}

impl fmt::Debug for IdempotencyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyConfig")
            .field("operation", &self.operation)
            .field("key_prefix", &self.key_prefix)
            .field("expires_after", &self.expires_after)
            .field("in_progress_timeout", &self.in_progress_timeout)
            .field("cache_capacity", &self.cache_capacity)
            .field("layout", &self.layout)
            .field("clock", &self.clock)
            .finish()
    }
}

impl IdempotencyConfig {
    /// `operation` names what is made idempotent (e.g. `"create-order"`, `"OrderCreated"`).
    ///
    /// The default key prefix is `<AWS_LAMBDA_FUNCTION_NAME or "local">#<operation>`, so two
    /// functions (or two operations of one function) sharing a table never share records.
    pub fn new(operation: impl Into<String>) -> Self {
        let operation = operation.into();
        let function =
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
        Self {
            key_prefix: format!("{function}#{operation}"),
            operation,
            expires_after: DEFAULT_EXPIRES_AFTER,
            in_progress_timeout: None,
            cache_capacity: 0,
            layout: TableLayout::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// How long a record (and so a replayable result) lives. Default one hour.
    pub fn expires_after(mut self, d: Duration) -> Self {
        self.expires_after = d;
        self
    }

    /// An explicit in-progress timeout. When set it overrides the request's remaining time
    /// ([`crate::Request::remaining_time`]); when neither is set,
    /// [`DEFAULT_IN_PROGRESS_TIMEOUT`] applies.
    pub fn in_progress_timeout(mut self, d: Duration) -> Self {
        self.in_progress_timeout = Some(d);
        self
    }

    /// An in-process LRU cache of up to `capacity` COMPLETED records (never INPROGRESS), so a
    /// repeated duplicate in a warm container costs no round trip. Off by default; 0 turns it off.
    pub fn local_cache(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Replaces the default key prefix. Record ids are `<prefix>#<hash>`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Overrides attribute names.
    pub fn attribute_names(mut self, names: AttributeNames) -> Self {
        self.layout.attributes = names;
        self
    }

    /// Composite key: the table's partition key `attribute` always holds `value`, and the record
    /// id goes to the sort key attribute ([`AttributeNames::id`]).
    pub fn static_partition_key(
        mut self,
        attribute: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.layout.static_partition_key = Some((attribute.into(), value.into()));
        self
    }

    /// Replaces the time source (tests and simulations).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The operation's name.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The key prefix in effect.
    pub fn prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Attribute names and static partition key in effect.
    pub fn layout(&self) -> &TableLayout {
        &self.layout
    }

    /// In-progress timeout for a request with `remaining` time left: the explicit timeout if
    /// configured, else `remaining` (zero included), else the default.
    pub(crate) fn effective_in_progress_timeout(&self, remaining: Option<Duration>) -> Duration {
        self.in_progress_timeout
            .or(remaining)
            .unwrap_or(DEFAULT_IN_PROGRESS_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_timeout_wins_over_remaining_time_and_zero_remaining_is_kept() {
        let base = IdempotencyConfig::new("op");
        assert_eq!(
            base.effective_in_progress_timeout(Some(Duration::ZERO)),
            Duration::ZERO
        );
        assert_eq!(
            base.effective_in_progress_timeout(None),
            DEFAULT_IN_PROGRESS_TIMEOUT
        );
        let explicit = base.in_progress_timeout(Duration::from_secs(5));
        assert_eq!(
            explicit.effective_in_progress_timeout(Some(Duration::ZERO)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn default_prefix_names_function_and_operation() {
        let config = IdempotencyConfig::new("create-order");
        let function =
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
        assert_eq!(config.prefix(), format!("{function}#create-order"));
        assert_eq!(config.key_prefix("custom").prefix(), "custom");
    }
}
