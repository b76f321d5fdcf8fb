//! The idempotency record and its status.

use std::fmt;

/// The status stored in a record. "Expired" is never stored: see [`Record::state_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A live claim: an invocation is running the operation.
    InProgress,
    /// The operation finished; `data` holds its result.
    Completed,
}

impl Status {
    /// The stored string: `INPROGRESS` or `COMPLETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "INPROGRESS",
            Self::Completed => "COMPLETED",
        }
    }

    /// Parses the stored string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(Self::InProgress),
            "COMPLETED" => Some(Self::Completed),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a record at a given instant: the stored status, or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordState {
    /// A live claim held by another invocation.
    InProgress,
    /// A live result: replay it.
    Completed,
    /// The record's `expiration` passed, or it is an INPROGRESS record whose
    /// `in_progress_expiration` passed: a new claim may replace it.
    Expired,
}

/// One idempotency record, as stored (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `<prefix>#<hash>`.
    pub id: String,
    /// Stored status.
    pub status: Status,
    /// Epoch seconds after which the record is expired (the table's TTL attribute).
    pub expiration: u64,
    /// Epoch milliseconds after which an INPROGRESS record may be taken over.
    pub in_progress_expiration: Option<u64>,
    /// The operation's result as JSON text (COMPLETED records).
    pub data: Option<String>,
    /// Hash of the validated part of the payload, when validation is on.
    pub validation: Option<String>,
    /// Fencing token of the invocation that wrote the record (empty if the record has none).
    pub owner: String,
}

impl Record {
    /// The record's state at `now_millis`.
    ///
    /// This is exactly the negation of the claim condition
    /// `attribute_not_exists(id) OR expiration < :now OR (status = INPROGRESS AND
    /// in_progress_expiration < :now_ms)`: a record is [`RecordState::Expired`] precisely when a
    /// claim at the same instant would replace it.
    pub fn state_at(&self, now_millis: u64) -> RecordState {
        if self.expiration < now_millis / 1000 {
            return RecordState::Expired;
        }
        match self.status {
            Status::Completed => RecordState::Completed,
            Status::InProgress => match self.in_progress_expiration {
                Some(deadline) if deadline < now_millis => RecordState::Expired,
                _ => RecordState::InProgress,
            },
        }
    }

    /// Whether a claim at `now_millis` may replace this record.
    pub fn is_claimable_at(&self, now_millis: u64) -> bool {
        self.state_at(now_millis) == RecordState::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, expiration: u64, ipe: Option<u64>) -> Record {
        Record {
            id: "p#h".into(),
            status,
            expiration,
            in_progress_expiration: ipe,
            data: None,
            validation: None,
            owner: "o".into(),
        }
    }

    #[test]
    fn expiry_boundaries_match_the_strict_claim_condition() {
        let r = record(Status::Completed, 100, None);
        assert_eq!(r.state_at(100_999), RecordState::Completed);
        assert_eq!(r.state_at(101_000), RecordState::Expired);
        let r = record(Status::InProgress, 100, Some(50_000));
        assert_eq!(r.state_at(50_000), RecordState::InProgress);
        assert_eq!(r.state_at(50_001), RecordState::Expired);
    }

    #[test]
    fn completed_record_ignores_in_progress_expiration() {
        let r = record(Status::Completed, 100, Some(1));
        assert_eq!(r.state_at(50_000), RecordState::Completed);
    }

    #[test]
    fn status_round_trips_through_its_stored_string() {
        for s in [Status::InProgress, Status::Completed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("EXPIRED"), None);
    }
}
