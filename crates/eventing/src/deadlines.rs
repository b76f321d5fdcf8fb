//! How an invocation's time budget is shared by the consumer's phases.
//!
//! The phases of a batch run one after the other (claim and handle every record, publish the
//! batch's events in one call, complete the claims), so a phase that takes the whole budget
//! leaves nothing to the next: one hung record would fail every other. Each phase therefore
//! ends early enough to leave the next ones their reserve, and a record that has not finished
//! its phase by then fails alone (`DeadlineExceeded`), keeping its claim until the claim's
//! `in_progress_expiration` (the invocation's deadline) frees it.

use std::future::Future;
use std::time::Duration;

use platform::budget::{Budget, DeadlineExceeded};

/// Time kept after the handlers for the batch's publish: the SDK's attempt timeout
/// (`platform::init::sdk_timeouts` gives an attempt 2 s), so a publish that starts when the
/// handlers' time is up still gets one whole PutEvents attempt (tens of milliseconds in region).
pub const PUBLISH_RESERVE: Duration = Duration::from_secs(2);

/// Time kept after the publish for completing the claims: one conditional `UpdateItem` per
/// record, all at once (single-digit milliseconds in region); a second leaves room for a
/// throttled attempt and the SDK's retry of it.
pub const COMPLETE_RESERVE: Duration = Duration::from_secs(1);

/// No reserve takes more than a quarter of the budget, so a short invocation (the last seconds
/// of a timeout, a redelivery with little time, a test) still gives every phase a share.
const MAX_RESERVE_DIVISOR: u32 = 4;

/// The phases a record can run out of time in, as `EventingError::DeadlineExceeded` names them.
pub(crate) const HANDLING: &str = "claiming and handling it";
pub(crate) const PUBLISHING: &str = "publishing its events";
pub(crate) const COMPLETING: &str = "completing its claim";

/// The deadline of each phase of one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhaseBudgets {
    /// Claims and handlers.
    pub(crate) handle: Budget,
    /// The batch's publish.
    pub(crate) publish: Budget,
    /// Completing and releasing claims: the invocation's whole budget.
    pub(crate) complete: Budget,
}

impl PhaseBudgets {
    /// Splits `budget`: completing ends with it, publishing [`COMPLETE_RESERVE`] before,
    /// handling [`PUBLISH_RESERVE`] before that (each reserve at most a quarter of the budget).
    pub(crate) fn of(budget: Budget) -> Self {
        let cap = budget.remaining() / MAX_RESERVE_DIVISOR;
        let publish = budget.reserving(COMPLETE_RESERVE.min(cap));
        let handle = publish.reserving(PUBLISH_RESERVE.min(cap));
        Self {
            handle,
            publish,
            complete: budget,
        }
    }
}

/// Runs `work` within `budget` when there is one (no timer at all when there is none).
pub(crate) async fn within<F: Future>(
    budget: Option<Budget>,
    work: F,
) -> Result<F::Output, DeadlineExceeded> {
    match budget {
        Some(budget) => budget.run(work).await,
        None => Ok(work.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lambda_budget_keeps_the_full_reserves_for_publishing_and_completing() {
        let budget = Budget::from_remaining(Duration::from_secs(15));
        let phases = PhaseBudgets::of(budget);
        assert_eq!(phases.complete, budget);
        assert_eq!(
            budget.deadline() - phases.publish.deadline(),
            COMPLETE_RESERVE
        );
        assert_eq!(
            phases.publish.deadline() - phases.handle.deadline(),
            PUBLISH_RESERVE
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_budget_gives_every_phase_a_share() {
        let budget = Budget::after(Duration::from_millis(1_200));
        let phases = PhaseBudgets::of(budget);
        assert_eq!(phases.handle.remaining(), Duration::from_millis(600));
        assert_eq!(phases.publish.remaining(), Duration::from_millis(900));
        assert_eq!(phases.complete.remaining(), Duration::from_millis(1_200));
    }
}
