//! The leader's view of one follower, updated from the follower's Fetch requests (Kafka's
//! `Replica` / `ReplicaState`).

/// Kafka's `UnifiedLog.UnknownOffset`.
pub const UNKNOWN_OFFSET: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaState {
    /// The follower's log start offset, as its last Fetch said.
    pub log_start_offset: i64,
    /// The follower's log end offset: the fetch offset of its last Fetch.
    pub log_end_offset: i64,
    /// The leader's log end offset when the last Fetch arrived (never decreases between
    /// resets); a later fetch reaching it proves the follower was caught up back then.
    pub last_fetch_leader_log_end_offset: i64,
    pub last_fetch_time_ms: i64,
    /// The latest time at which the follower's fetch offset had reached the leader's log end
    /// offset. The ISR is defined by it: in sync means caught up within
    /// `replica.lag.time.max.ms`.
    pub last_caught_up_time_ms: i64,
    /// The broker epoch of the follower's last Fetch (`None` before any); -1 means the
    /// follower did not send one.
    pub broker_epoch: Option<i64>,
}

impl Default for ReplicaState {
    fn default() -> Self {
        Self {
            log_start_offset: UNKNOWN_OFFSET,
            log_end_offset: UNKNOWN_OFFSET,
            last_fetch_leader_log_end_offset: 0,
            last_fetch_time_ms: 0,
            last_caught_up_time_ms: 0,
            broker_epoch: None,
        }
    }
}

impl ReplicaState {
    /// Caught up: at the leader's log end offset, or caught up within `max_lag_ms` of `now_ms`.
    pub fn is_caught_up(&self, leader_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        leader_end_offset == self.log_end_offset
            || now_ms.saturating_sub(self.last_caught_up_time_ms) <= max_lag_ms
    }

    /// Applies one follower Fetch (Kafka's `updateFetchStateOrThrow`, after its broker
    /// epoch check, which [`crate::LeaderPartition`] does). A fetch at or past the leader's
    /// current end makes the follower caught up now; a fetch reaching the leader's end as of
    /// the previous fetch makes it caught up as of that previous fetch, so a follower keeps
    /// its ISR seat under a steady stream of small produces it can never quite reach.
    pub fn apply_fetch(
        &mut self,
        fetch_offset: i64,
        follower_start_offset: i64,
        fetch_time_ms: i64,
        leader_end_offset: i64,
        broker_epoch: i64,
    ) {
        let last_caught_up_time_ms = if fetch_offset >= leader_end_offset {
            self.last_caught_up_time_ms.max(fetch_time_ms)
        } else if fetch_offset >= self.last_fetch_leader_log_end_offset {
            self.last_caught_up_time_ms.max(self.last_fetch_time_ms)
        } else {
            self.last_caught_up_time_ms
        };
        *self = Self {
            log_start_offset: follower_start_offset,
            log_end_offset: fetch_offset,
            last_fetch_leader_log_end_offset: leader_end_offset
                .max(self.last_fetch_leader_log_end_offset),
            last_fetch_time_ms: fetch_time_ms,
            last_caught_up_time_ms,
            broker_epoch: Some(broker_epoch),
        };
    }

    /// On becoming leader (or a new leader epoch): an ISR member counts as caught up now,
    /// anyone else as never (so it does not hold the high watermark back). A new leader
    /// forgets everything it knew of the follower (Kafka's `resetReplicaState`).
    pub fn reset(
        &mut self,
        now_ms: i64,
        leader_end_offset: i64,
        is_new_leader: bool,
        is_follower_in_sync: bool,
    ) {
        let last_caught_up_time_ms = if is_follower_in_sync { now_ms } else { 0 };
        *self = if is_new_leader {
            Self {
                log_start_offset: UNKNOWN_OFFSET,
                log_end_offset: UNKNOWN_OFFSET,
                last_fetch_leader_log_end_offset: UNKNOWN_OFFSET,
                last_fetch_time_ms: 0,
                last_caught_up_time_ms,
                broker_epoch: None,
            }
        } else {
            Self {
                last_fetch_leader_log_end_offset: leader_end_offset,
                // Not in the ISR: not brought back before a real fetch arrives.
                last_fetch_time_ms: if is_follower_in_sync { now_ms } else { 0 },
                last_caught_up_time_ms,
                ..*self
            }
        };
    }
}

#[cfg(test)]
mod tests {
    //! Cases from Kafka's `ReplicaTest` (names kept in snake case).
    use super::*;

    const LAG: i64 = 30_000;

    fn fetch(r: &mut ReplicaState, offset: i64, time: i64, leader_end: i64) {
        r.apply_fetch(offset, 0, time, leader_end, 1);
    }

    #[test]
    fn test_initial_state() {
        let r = ReplicaState::default();
        assert_eq!(r.log_start_offset, UNKNOWN_OFFSET);
        assert_eq!(r.log_end_offset, UNKNOWN_OFFSET);
        assert_eq!(r.last_caught_up_time_ms, 0);
        assert_eq!(r.broker_epoch, None);
    }

    #[test]
    fn test_update_fetch_state() {
        let mut r = ReplicaState::default();
        r.apply_fetch(10, 5, 100, 12, 7);
        assert_eq!(r.log_start_offset, 5);
        assert_eq!(r.log_end_offset, 10);
        assert_eq!(r.last_fetch_time_ms, 100);
        assert_eq!(r.last_fetch_leader_log_end_offset, 12);
        assert_eq!(r.broker_epoch, Some(7));
        // Not at the leader's end, and no earlier fetch to compare with.
        assert_eq!(r.last_caught_up_time_ms, 0);
    }

    #[test]
    fn test_is_caught_up_when_replica_is_caught_up_to_log_end() {
        let mut r = ReplicaState::default();
        fetch(&mut r, 10, 1_000, 10);
        assert_eq!(r.last_caught_up_time_ms, 1_000);
        assert!(
            r.is_caught_up(10, 1_000 + LAG + 1, LAG),
            "at the leader's end"
        );
        assert!(r.is_caught_up(11, 1_000 + LAG, LAG));
        assert!(!r.is_caught_up(11, 1_000 + LAG + 1, LAG));
    }

    #[test]
    fn test_is_caught_up_when_replica_is_not_caught_up_to_log_end() {
        let mut r = ReplicaState::default();
        fetch(&mut r, 5, 1_000, 10);
        assert!(!r.is_caught_up(10, 1_000 + LAG + 1, LAG));
    }

    #[test]
    fn test_last_caught_up_time_is_the_previous_fetch_when_it_reached_the_old_end() {
        // Fetch 1 at t=100 sees leader end 10; fetch 2 at t=200 asks offset 10 while the
        // leader is already at 15: caught up as of t=100.
        let mut r = ReplicaState::default();
        fetch(&mut r, 5, 100, 10);
        fetch(&mut r, 10, 200, 15);
        assert_eq!(r.last_caught_up_time_ms, 100);
        fetch(&mut r, 12, 300, 20);
        assert_eq!(r.last_caught_up_time_ms, 100, "12 < 15: not caught up");
        fetch(&mut r, 20, 400, 20);
        assert_eq!(r.last_caught_up_time_ms, 400);
    }

    #[test]
    fn test_last_caught_up_time_never_goes_backwards() {
        let mut r = ReplicaState::default();
        fetch(&mut r, 10, 500, 10);
        fetch(&mut r, 10, 400, 10);
        assert_eq!(r.last_caught_up_time_ms, 500);
    }

    #[test]
    fn test_reset_replica_state_when_leader_is_reelected_and_replica_is_in_sync() {
        let mut r = ReplicaState::default();
        fetch(&mut r, 10, 100, 10);
        r.reset(1_000, 11, false, true);
        assert_eq!(r.log_end_offset, 10);
        assert_eq!(r.last_fetch_leader_log_end_offset, 11);
        assert_eq!(r.last_fetch_time_ms, 1_000);
        assert_eq!(r.last_caught_up_time_ms, 1_000);
        assert_eq!(r.broker_epoch, Some(1));
    }

    #[test]
    fn test_reset_replica_state_when_leader_is_reelected_and_replica_is_not_in_sync() {
        let mut r = ReplicaState::default();
        fetch(&mut r, 10, 100, 10);
        r.reset(1_000, 11, false, false);
        assert_eq!(r.last_fetch_time_ms, 0);
        assert_eq!(r.last_caught_up_time_ms, 0);
    }

    #[test]
    fn test_reset_replica_state_when_new_leader_is_elected_and_replica_is_in_sync() {
        let mut r = ReplicaState::default();
        fetch(&mut r, 10, 100, 10);
        r.reset(1_000, 11, true, true);
        assert_eq!(r.log_end_offset, UNKNOWN_OFFSET);
        assert_eq!(r.log_start_offset, UNKNOWN_OFFSET);
        assert_eq!(r.last_fetch_leader_log_end_offset, UNKNOWN_OFFSET);
        assert_eq!(r.last_fetch_time_ms, 0);
        assert_eq!(r.last_caught_up_time_ms, 1_000);
        assert_eq!(r.broker_epoch, None);
    }

    #[test]
    fn test_reset_replica_state_when_new_leader_is_elected_and_replica_is_not_in_sync() {
        let mut r = ReplicaState::default();
        fetch(&mut r, 10, 100, 10);
        r.reset(1_000, 11, true, false);
        assert_eq!(r.last_caught_up_time_ms, 0);
        assert!(!r.is_caught_up(11, 100_000, LAG));
    }
}
