//! Where a follower truncates its log before fetching from a new leader (KIP-101, KIP-279),
//! as Kafka's `AbstractFetcherThread` decides: by the leader's answer to
//! OffsetForLeaderEpoch, never by the follower's high watermark when epochs are known.
//!
//! The loop: the follower asks for its latest epoch ([`epoch_to_request`]); the leader
//! answers `(epoch, end offset)` from its own cache ([`crate::LeaderEpochCache::end_offset_for`]);
//! [`follower_truncation`] gives the offset. When the leader answers an epoch the follower
//! never had, the follower truncates to the end of its largest epoch below that one and asks
//! again with its (now truncated) latest epoch, until the answer is final.
//!
//! A Fetch response's `DivergingEpoch` (Fetch v12+, [`crate::diverging_epoch`]) is handled the
//! same way (Kafka's `truncateOnFetchResponse`), without the OffsetForLeaderEpoch round trip.

use crate::epoch_cache::{LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

/// What a truncating follower does first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncationStart {
    /// Send OffsetForLeaderEpoch for this epoch (the follower's latest).
    AskLeader { leader_epoch: i32 },
    /// The follower has no epoch at all: truncate to its high watermark (Kafka's
    /// `truncateToHighWatermark`, the only case where the high watermark is used).
    TruncateToHighWatermark,
}

pub fn epoch_to_request(follower_cache: &LeaderEpochCache) -> TruncationStart {
    match follower_cache.latest_epoch() {
        Some(leader_epoch) => TruncationStart::AskLeader { leader_epoch },
        None => TruncationStart::TruncateToHighWatermark,
    }
}

/// Kafka's `OffsetTruncationState`: truncate the log to `offset`; when
/// `truncation_completed` is false, ask the leader again afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TruncationDecision {
    pub offset: i64,
    pub truncation_completed: bool,
}

/// Kafka's `getOffsetTruncationState` for an answer without error.
///
/// - `leader_end_offset` undefined: the leader has no epochs; use the fetch offset the
///   follower started from (its high watermark).
/// - `leader_epoch` undefined (a pre-KIP-101 leader): the leader's offset, capped at the
///   follower's log end offset.
/// - the follower has the leader's epoch: `min(leader end, follower's end of that epoch,
///   follower LEO)`, final.
/// - the follower's largest epoch at or below the leader's is a smaller one (it never saw
///   the leader's epoch): the end of that epoch (capped at its LEO), then ask again.
/// - the follower has no epoch at or below the leader's: the leader's offset, capped.
pub fn follower_truncation(
    leader_epoch: i32,
    leader_end_offset: i64,
    follower_cache: &LeaderEpochCache,
    follower_log_end_offset: i64,
    follower_fetch_offset: i64,
) -> TruncationDecision {
    let done = |offset| TruncationDecision {
        offset,
        truncation_completed: true,
    };
    if leader_end_offset == UNDEFINED_EPOCH_OFFSET {
        tracing::warn!(
            fetch_offset = follower_fetch_offset,
            "leader replied with an unknown offset; truncating to the initial fetch offset"
        );
        return done(follower_fetch_offset);
    }
    if leader_epoch == UNDEFINED_EPOCH {
        return done(leader_end_offset.min(follower_log_end_offset));
    }
    // UnifiedLog.endOffsetForEpoch: an undefined offset means "no such epoch here".
    let (follower_epoch, follower_end_offset) =
        follower_cache.end_offset_for(leader_epoch, follower_log_end_offset);
    if follower_end_offset == UNDEFINED_EPOCH_OFFSET {
        tracing::warn!(
            leader_epoch,
            leader_end_offset,
            "leader replied with an epoch below every epoch of the follower; truncating to the leader's offset"
        );
        return done(leader_end_offset.min(follower_log_end_offset));
    }
    if follower_epoch != leader_epoch {
        let offset = follower_end_offset.min(follower_log_end_offset);
        tracing::info!(
            leader_epoch,
            follower_epoch,
            offset,
            "leader replied with an epoch unknown to the follower; truncating and asking again"
        );
        return TruncationDecision {
            offset,
            truncation_completed: false,
        };
    }
    done(
        follower_end_offset
            .min(leader_end_offset)
            .min(follower_log_end_offset),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::new();
        for &(e, o) in entries {
            c.assign(e, o).unwrap();
        }
        c
    }

    /// Plays the whole exchange: the follower asks, the leader answers from its cache, the
    /// follower truncates its log and its cache, until truncation is complete.
    fn converge(
        leader: &LeaderEpochCache,
        leader_leo: i64,
        follower: &mut LeaderEpochCache,
        mut follower_leo: i64,
        hw: i64,
    ) -> i64 {
        for _ in 0..10 {
            let offset = match epoch_to_request(follower) {
                TruncationStart::TruncateToHighWatermark => return hw.min(follower_leo),
                TruncationStart::AskLeader { leader_epoch } => {
                    let (epoch, end) = leader.end_offset_for(leader_epoch, leader_leo);
                    let decision = follower_truncation(epoch, end, follower, follower_leo, hw);
                    follower_leo = follower_leo.min(decision.offset);
                    follower.truncate_from_end(decision.offset);
                    if decision.truncation_completed {
                        return decision.offset;
                    }
                    decision.offset
                }
            };
            assert!(offset >= 0);
        }
        panic!("truncation did not converge");
    }

    #[test]
    fn test_truncation() {
        // AbstractFetcherThreadTest.testTruncation: follower batches at 0, 1, 2 in epochs
        // 0, 2, 4; the leader's in epochs 1, 3, 5. Each answer names an epoch the follower
        // lacks, so it walks back epoch by epoch to offset 0, then copies the leader's log.
        let leader = cache(&[(1, 0), (3, 1), (5, 2)]);
        let mut follower = cache(&[(0, 0), (2, 1), (4, 2)]);
        assert_eq!(converge(&leader, 3, &mut follower, 3, 0), 0);
        assert!(follower.is_empty(), "the whole log is gone, epochs too");
    }

    #[test]
    fn test_diverging_epochs() {
        // AbstractFetcherThreadTest.testDivergingEpochs: follower epochs 0, 2, 4 at 0, 1, 2;
        // leader epochs 0, 2, 5. The Fetch at 3 with last fetched epoch 4 gets
        // DivergingEpoch (2, 2); the follower truncates to 2 and its last epoch becomes 2.
        let leader = cache(&[(0, 0), (2, 1), (5, 2)]);
        let mut follower = cache(&[(0, 0), (2, 1), (4, 2)]);
        let diverging = crate::epoch_checks::diverging_epoch(&leader, 0, 3, 3, 4)
            .unwrap()
            .expect("diverging");
        assert_eq!((diverging.epoch, diverging.end_offset), (2, 2));
        let d = follower_truncation(diverging.epoch, diverging.end_offset, &follower, 3, 0);
        assert_eq!(
            d,
            TruncationDecision {
                offset: 2,
                truncation_completed: true
            }
        );
        follower.truncate_from_end(d.offset);
        assert_eq!(follower.latest_epoch(), Some(2));
        // Fetching again from 2 with last epoch 2 no longer diverges.
        assert_eq!(
            crate::epoch_checks::diverging_epoch(&leader, 0, 3, 2, 2),
            Ok(None)
        );
    }

    #[test]
    fn same_epoch_truncates_to_the_smaller_end() {
        // KIP-101 case: follower wrote 2 uncommitted records in epoch 1 that the leader lacks.
        let follower = cache(&[(0, 0), (1, 5)]);
        let d = follower_truncation(1, 7, &follower, 9, 3);
        assert_eq!(
            d,
            TruncationDecision {
                offset: 7,
                truncation_completed: true
            }
        );
        // Leader has more than the follower: nothing to remove.
        let d = follower_truncation(1, 20, &follower, 9, 3);
        assert_eq!(d.offset, 9);
    }

    #[test]
    fn never_truncates_to_the_high_watermark_when_epochs_are_known() {
        // The follower's HW (3) is behind data the leader also has: keep it all.
        let follower = cache(&[(0, 0), (1, 5)]);
        let d = follower_truncation(1, 9, &follower, 9, 3);
        assert_eq!(d.offset, 9);
    }

    #[test]
    fn unknown_epoch_falls_back_to_the_previous_epoch_and_asks_again() {
        // KIP-279: the follower has epochs 0 and 2; the leader answers epoch 1 (which the
        // follower never saw) ending at 8. The follower truncates to the end of epoch 0
        // in its own log (its epoch 2 started at 6) and asks again.
        let follower = cache(&[(0, 0), (2, 6)]);
        let d = follower_truncation(1, 8, &follower, 10, 0);
        assert_eq!(
            d,
            TruncationDecision {
                offset: 6,
                truncation_completed: false
            }
        );
    }

    #[test]
    fn kip_279_full_exchange_converges_on_the_divergence_point() {
        // Leader: epoch 0 [0,4), epoch 1 [4,8), epoch 3 from 8, LEO 12.
        // Follower: epoch 0 [0,4), epoch 2 [4,10): it led in epoch 2 without replicating.
        let leader = cache(&[(0, 0), (1, 4), (3, 8)]);
        let mut follower = cache(&[(0, 0), (2, 4)]);
        // Ask 2 -> leader (1, 8); follower end for 1 is (0, 4) -> truncate to 4, ask again
        // with 0 -> leader (0, 4) -> final 4.
        assert_eq!(converge(&leader, 12, &mut follower, 10, 2), 4);
        assert_eq!(follower.latest_epoch(), Some(0));
    }

    #[test]
    fn epoch_below_every_follower_epoch_ends_where_the_follower_epochs_start() {
        // The follower's cache answers (3, 100) for epoch 3 (below its first epoch, 5):
        // the same epoch as the leader's, so min(100, leader end, LEO).
        let follower = cache(&[(5, 100)]);
        assert_eq!(
            follower_truncation(3, 50, &follower, 150, 0),
            TruncationDecision {
                offset: 50,
                truncation_completed: true
            }
        );
        assert_eq!(follower_truncation(3, 500, &follower, 150, 0).offset, 100);
    }

    #[test]
    fn follower_without_epoch_for_the_answer_uses_the_leaders_offset() {
        // UnifiedLog.endOffsetForEpoch gives None (empty cache): the leader's offset, capped.
        let empty = LeaderEpochCache::new();
        assert_eq!(
            follower_truncation(3, 50, &empty, 150, 0),
            TruncationDecision {
                offset: 50,
                truncation_completed: true
            }
        );
        assert_eq!(follower_truncation(3, 500, &empty, 150, 0).offset, 150);
    }

    #[test]
    fn undefined_answers() {
        let follower = cache(&[(1, 0)]);
        // No epochs on the leader: back to the fetch offset the follower started from.
        assert_eq!(
            follower_truncation(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, &follower, 20, 7),
            TruncationDecision {
                offset: 7,
                truncation_completed: true
            }
        );
        // Old leader without epochs in its answer: its offset, capped at our end.
        assert_eq!(
            follower_truncation(UNDEFINED_EPOCH, 15, &follower, 20, 7).offset,
            15
        );
        assert_eq!(
            follower_truncation(UNDEFINED_EPOCH, 25, &follower, 20, 7).offset,
            20
        );
    }

    #[test]
    fn follower_without_epochs_truncates_to_its_high_watermark() {
        assert_eq!(
            epoch_to_request(&LeaderEpochCache::new()),
            TruncationStart::TruncateToHighWatermark
        );
        assert_eq!(
            epoch_to_request(&cache(&[(0, 0), (4, 9)])),
            TruncationStart::AskLeader { leader_epoch: 4 }
        );
    }
}
