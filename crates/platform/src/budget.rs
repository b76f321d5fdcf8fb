//! One time budget per invocation: every AWS call, retry and back-off of an invocation stops
//! before Lambda's deadline, early enough for the function to report what happened.
//!
//! Lambda kills an invocation at its deadline: an SQS consumer killed there loses its partial
//! batch response (the whole batch comes back and burns a receive of every record), and an HTTP
//! API killed there answers API Gateway's own 5xx instead of a typed 503. A [`Budget`] ends
//! [`REPORTING_MARGIN`] before the deadline; work run through [`Budget::run`] is dropped when it
//! ends, which cancels the SDK call in flight (an SDK future owns its request), and the caller
//! gets [`DeadlineExceeded`] with time left to answer.
//!
//! ```
//! use std::time::Duration;
//! use platform::budget::{Budget, DeadlineExceeded};
//! use platform::http::{ApiError, ApiResponse};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! // In a handler: `Budget::for_invocation(&event.context)`.
//! let budget = Budget::from_remaining(Duration::from_secs(15));
//! let stored = budget.run(async { "order 1073459984 stored" }).await;
//! assert_eq!(stored, Ok("order 1073459984 stored"));
//!
//! let hung = Budget::from_remaining(Duration::from_millis(100))
//!     .run(std::future::pending::<()>())
//!     .await; // cut after 75 ms: the margin is at most a quarter of the remaining time
//! assert_eq!(hung, Err(DeadlineExceeded));
//! let response = ApiResponse::from(ApiError::from(DeadlineExceeded));
//! assert_eq!(response.status, 503);
//! assert!(response.body.contains("\"type\":\"DeadlineExceeded\""));
//! # });
//! ```

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::http::ApiError;

/// Time kept back from an invocation's remaining time for reporting: ending the work, writing
/// the answer (a partial batch response or an HTTP response, and the log lines that go with
/// it) and posting it to the Runtime API, which Lambda must receive before the deadline.
///
/// That is CPU work and one loopback request, a few milliseconds on a full vCPU; 500 ms covers
/// it at the CPU share of a small function (Lambda gives one vCPU per 1,769 MB, so the
/// template's 256 MB get about a seventh of one, 128 MB a fourteenth) with a scheduling stall on
/// top, while leaving 97% of the functions' 15 s timeout to the work.
///
/// It never takes more than a quarter of the remaining time ([`MAX_MARGIN_DIVISOR`]), so an
/// invocation with little time (a function with a short timeout, a test scaled down) still gets
/// most of it for its work.
pub const REPORTING_MARGIN: Duration = Duration::from_millis(500);

/// The margin is at most the remaining time divided by this (a quarter).
pub const MAX_MARGIN_DIVISOR: u32 = 4;

/// How far away "no deadline" is when a remaining time is too large to add to the clock.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// The time an invocation may spend before it must report: a deadline on Tokio's clock (so
/// tests with a paused clock are deterministic). Cheap to copy; one per invocation, shared by
/// everything the invocation does.
///
/// Running work under a budget needs Tokio's timer (`lambda_runtime` and `#[tokio::main]`
/// runtimes have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Budget {
    deadline: Instant,
}

impl Budget {
    /// The budget of an invocation with `remaining` time before Lambda's deadline: it ends
    /// [`REPORTING_MARGIN`] earlier, or a quarter of `remaining` earlier when that is less.
    pub fn from_remaining(remaining: Duration) -> Self {
        Self::after(remaining - Self::margin_of(remaining))
    }

    /// The reporting margin kept from `remaining`: [`REPORTING_MARGIN`], at most a quarter of it.
    pub fn margin_of(remaining: Duration) -> Duration {
        REPORTING_MARGIN.min(remaining / MAX_MARGIN_DIVISOR)
    }

    /// The budget of a Lambda invocation, from its context's deadline (see
    /// [`Budget::from_remaining`]).
    pub fn for_invocation(context: &lambda_runtime::Context) -> Self {
        Self::from_remaining(crate::init::remaining_time(context))
    }

    /// A budget ending exactly `duration` from now (no margin taken).
    pub fn after(duration: Duration) -> Self {
        let now = Instant::now();
        Self {
            deadline: now
                .checked_add(duration)
                .or_else(|| now.checked_add(FAR_FUTURE))
                .unwrap_or(now),
        }
    }

    /// A budget ending exactly at `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self { deadline }
    }

    /// When it ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The time left (zero once it ended).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Whether it has ended.
    pub fn is_spent(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The budget of an earlier phase that must leave `reserve` of this one to the phases after
    /// it: it ends `reserve` earlier (it is spent at once if less than that remains).
    pub fn reserving(&self, reserve: Duration) -> Self {
        Self {
            deadline: self
                .deadline
                .checked_sub(reserve)
                .unwrap_or_else(|| Instant::now().min(self.deadline)),
        }
    }

    /// Runs `work` until it finishes or the budget ends, whichever comes first. When the budget
    /// ends first `work` is dropped (an SDK call in flight is cancelled; whether it reached the
    /// service is unknown) and the answer is [`DeadlineExceeded`]. A budget already spent does
    /// not start `work` at all.
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, DeadlineExceeded> {
        if self.is_spent() {
            return Err(DeadlineExceeded);
        }
        tokio::time::timeout_at(self.deadline, work)
            .await
            .map_err(|_| DeadlineExceeded)
    }
}

/// The invocation's time budget ended before the work did. Whatever the work had started may
/// or may not have happened; a retry (a redelivery, the client's retry with the same key) finds
/// out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the invocation's time budget ran out")]
pub struct DeadlineExceeded;

impl DeadlineExceeded {
    /// The stable error type (`DeadlineExceeded`) for logs, batch-item failures and HTTP bodies.
    pub const ERROR_TYPE: &'static str = "DeadlineExceeded";

    /// [`DeadlineExceeded::ERROR_TYPE`].
    pub fn error_type(&self) -> &'static str {
        Self::ERROR_TYPE
    }
}

/// A 503 with the stable type `DeadlineExceeded`: answered by the function itself, before
/// Lambda would kill it and API Gateway answer its own 5xx.
impl From<DeadlineExceeded> for ApiError {
    fn from(e: DeadlineExceeded) -> Self {
        tracing::warn!(error = %e, "request out of time");
        ApiError::new(
            503,
            DeadlineExceeded::ERROR_TYPE,
            "the request ran out of time; retry with the same Idempotency-Key",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test(start_paused = true)]
    async fn work_that_finishes_in_time_gives_its_output() {
        let budget = Budget::from_remaining(Duration::from_secs(15));
        assert_eq!(budget.remaining(), Duration::from_millis(14_500));
        let output = budget
            .run(async {
                tokio::time::sleep(Duration::from_secs(14)).await;
                42
            })
            .await;
        assert_eq!(output, Ok(42));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_hangs_is_cut_at_the_margin_before_the_deadline() {
        let start = Instant::now();
        let budget = Budget::from_remaining(Duration::from_secs(15));
        let hung = budget.run(std::future::pending::<()>()).await;
        assert_eq!(hung, Err(DeadlineExceeded));
        // The paused clock only moves to the next timer: exactly the budget's end.
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(15) - REPORTING_MARGIN
        );
        assert!(budget.is_spent());
        assert_eq!(budget.remaining(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_invocation_keeps_most_of_its_time_for_the_work() {
        let budget = Budget::from_remaining(Duration::from_millis(200));
        assert_eq!(budget.remaining(), Duration::from_millis(150));
        let budget = Budget::from_remaining(Duration::from_secs(2));
        assert_eq!(budget.remaining(), Duration::from_millis(1_500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_does_not_start_the_work() {
        let started = Arc::new(AtomicBool::new(false));
        let budget = Budget::from_remaining(Duration::ZERO);
        assert!(budget.is_spent());
        let flag = Arc::clone(&started);
        let result = budget
            .run(async move { flag.store(true, Ordering::SeqCst) })
            .await;
        assert_eq!(result, Err(DeadlineExceeded));
        assert!(!started.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_phase_leaves_its_reserve_to_the_later_ones() {
        let budget = Budget::after(Duration::from_secs(10));
        let first = budget.reserving(Duration::from_secs(3));
        assert_eq!(budget.deadline() - first.deadline(), Duration::from_secs(3));
        let too_much = budget.reserving(Duration::from_secs(60));
        assert!(too_much.is_spent());
        assert!(too_much.deadline() <= budget.deadline());
    }

    #[tokio::test(start_paused = true)]
    async fn a_remaining_time_beyond_the_clock_is_far_but_not_a_panic() {
        let budget = Budget::from_remaining(Duration::MAX);
        assert!(budget.remaining() >= Duration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn an_api_answers_it_as_a_typed_503() {
        let error = ApiError::from(DeadlineExceeded);
        assert_eq!((error.status, error.error_type), (503, "DeadlineExceeded"));
        assert_eq!(DeadlineExceeded.error_type(), "DeadlineExceeded");
    }
}
