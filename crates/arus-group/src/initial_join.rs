//! The end of a classic group's initial rebalance delay (`group.initial.rebalance.delay.ms`)
//! while members that were answered MEMBER_ID_REQUIRED have not rejoined yet.
//!
//! Kafka 4.4's `GroupMetadataManager` ends the delay with a timer event
//! (`tryCompleteInitialRebalanceElseSchedule`, then `completeClassicGroupJoin`, which does
//! not look at pending members) that its coordinator runtime queues behind the requests it
//! has already received. So with a zero delay a member told MEMBER_ID_REQUIRED that rejoins
//! at once is often, not always, in the first generation. Arus runs its timers inline, in
//! the call that finds them due, so it would always lose that race. Arus makes the outcome
//! deterministic instead: when the delay runs out with such pending members, the join phase
//! waits for them, as Kafka's `hasAllMembersJoined` (which counts pending members) makes
//! every later rebalance wait. It completes as soon as each has joined or left, or its
//! session timeout (the deadline set by MEMBER_ID_REQUIRED) dropped it, and at the latest
//! when the rebalance timeout that bounds Kafka's initial rebalance runs out.
//!
//! The difference from Kafka: a member that crashes between MEMBER_ID_REQUIRED and its
//! rejoin holds back the first generation until its session timeout, where Kafka would
//! complete it without that member at the end of the delay. A member whose *first*
//! JoinGroup arrives after the delay ran out is not waited for (Kafka, too, only waits
//! for it if that request was queued before the timer event).

use tracing::info;

use crate::classic::{Group, JoinTimer};

/// Called when the initial delay runs out with no extension left: switches the join phase
/// to waiting for the pending members and returns true, or returns false (complete now)
/// when there are none or no rebalance time remains.
pub(crate) fn await_pending_members(g: &mut Group, remaining_ms: i64, now: i64) -> bool {
    if g.pending_members.is_empty() || remaining_ms <= 0 {
        return false;
    }
    info!(
        group = %g.id,
        pending = g.pending_members.len(),
        "initial rebalance delay over: waiting for members told MEMBER_ID_REQUIRED to rejoin"
    );
    g.join_timer = Some((
        now.saturating_add(remaining_ms),
        JoinTimer::AwaitingPendingMembers,
    ));
    true
}
