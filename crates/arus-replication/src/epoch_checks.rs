//! The leader epoch checks of a read (Kafka's `Partition.checkCurrentLeaderEpoch` and the
//! diverging-epoch part of `Partition.readRecords`): a stale client or replica is fenced by
//! the `current_leader_epoch` it sends (KIP-320), and a follower whose last fetched epoch
//! diverges from the leader's log is told where to truncate in the Fetch response itself
//! (`DivergingEpoch`), which it handles with [`crate::follower_truncation`] as an
//! OffsetForLeaderEpoch answer.

use arus_protocol::ErrorCode;

use crate::epoch_cache::{LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

/// `current_leader_epoch` of Fetch, ListOffsets or OffsetForLeaderEpoch against this
/// replica's leader epoch: older is FENCED_LEADER_EPOCH (the sender is behind), newer is
/// UNKNOWN_LEADER_EPOCH (this replica is behind). `None` (-1 on the wire) skips the check.
pub fn check_current_leader_epoch(
    requested: Option<i32>,
    local_leader_epoch: i32,
) -> Result<(), ErrorCode> {
    match requested {
        Some(requested) if local_leader_epoch > requested => Err(ErrorCode::FencedLeaderEpoch),
        Some(requested) if local_leader_epoch < requested => Err(ErrorCode::UnknownLeaderEpoch),
        _ => Ok(()),
    }
}

/// Kafka's wire convention: -1 means "no epoch given".
pub fn optional_epoch(epoch: i32) -> Option<i32> {
    (epoch != UNDEFINED_EPOCH).then_some(epoch)
}

/// The `(epoch, end offset)` a Fetch response carries as `DivergingEpoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DivergingEpoch {
    pub epoch: i32,
    pub end_offset: i64,
}

/// A read refused with OFFSET_OUT_OF_RANGE.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DivergenceCheckError {
    #[error(
        "Could not determine the end offset of the last fetched epoch {last_fetched_epoch} from the request"
    )]
    UnknownLastFetchedEpoch { last_fetched_epoch: i32 },
    #[error(
        "Received request for offset {fetch_offset}, but we only have log segments in the range {log_start_offset} to {log_end_offset}."
    )]
    BeforeLogStart {
        fetch_offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
}

impl DivergenceCheckError {
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::OffsetOutOfRange
    }
}

/// For a Fetch with `last_fetched_epoch` (v12+): `Some` when the fetcher's log diverges
/// from this one — this log's largest epoch at or below the fetcher's last epoch is older,
/// or ends before the fetch offset — and the response must carry no records but that
/// `DivergingEpoch`. Checked before the data is read, with the log's offsets as of then.
pub fn diverging_epoch(
    cache: &LeaderEpochCache,
    log_start_offset: i64,
    log_end_offset: i64,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Result<Option<DivergingEpoch>, DivergenceCheckError> {
    let (epoch, end_offset) = cache.end_offset_for(last_fetched_epoch, log_end_offset);
    if end_offset == UNDEFINED_EPOCH_OFFSET || epoch == UNDEFINED_EPOCH {
        return Err(DivergenceCheckError::UnknownLastFetchedEpoch { last_fetched_epoch });
    }
    // Below the log start the answer is OFFSET_OUT_OF_RANGE whether or not epochs diverge.
    if fetch_offset < log_start_offset {
        return Err(DivergenceCheckError::BeforeLogStart {
            fetch_offset,
            log_start_offset,
            log_end_offset,
        });
    }
    if epoch < last_fetched_epoch || end_offset < fetch_offset {
        return Ok(Some(DivergingEpoch { epoch, end_offset }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truncation::follower_truncation;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::new();
        for &(e, o) in entries {
            c.assign(e, o).unwrap();
        }
        c
    }

    #[test]
    fn current_leader_epoch_fences_both_ways() {
        assert_eq!(check_current_leader_epoch(None, 5), Ok(()));
        assert_eq!(check_current_leader_epoch(Some(5), 5), Ok(()));
        assert_eq!(
            check_current_leader_epoch(Some(4), 5),
            Err(ErrorCode::FencedLeaderEpoch)
        );
        assert_eq!(
            check_current_leader_epoch(Some(6), 5),
            Err(ErrorCode::UnknownLeaderEpoch)
        );
        assert_eq!(optional_epoch(-1), None);
        assert_eq!(optional_epoch(0), Some(0));
    }

    #[test]
    fn no_divergence_when_the_fetchers_epoch_is_ours_and_reaches_the_fetch_offset() {
        let leader = cache(&[(0, 0), (1, 4), (3, 8)]);
        assert_eq!(diverging_epoch(&leader, 0, 12, 6, 1), Ok(None));
        assert_eq!(diverging_epoch(&leader, 0, 12, 8, 1), Ok(None));
        assert_eq!(diverging_epoch(&leader, 0, 12, 12, 3), Ok(None));
    }

    #[test]
    fn divergence_when_the_fetcher_wrote_past_our_end_of_its_epoch() {
        let leader = cache(&[(0, 0), (1, 4), (3, 8)]);
        // The fetcher has epoch 1 up to offset 10; ours ended at 8.
        assert_eq!(
            diverging_epoch(&leader, 0, 12, 10, 1),
            Ok(Some(DivergingEpoch {
                epoch: 1,
                end_offset: 8
            }))
        );
        // The fetcher's epoch 2 never existed here: our epoch 1 ending at 8.
        let d = diverging_epoch(&leader, 0, 12, 9, 2).unwrap().unwrap();
        assert_eq!(
            d,
            DivergingEpoch {
                epoch: 1,
                end_offset: 8
            }
        );
        // The follower handles it as an OffsetForLeaderEpoch answer.
        let follower = cache(&[(0, 0), (2, 4)]);
        let t = follower_truncation(d.epoch, d.end_offset, &follower, 9, 0);
        assert_eq!((t.offset, t.truncation_completed), (4, false));
    }

    #[test]
    fn unknown_epoch_or_offset_before_log_start_is_out_of_range() {
        let leader = cache(&[(3, 8)]);
        let err = diverging_epoch(&leader, 8, 12, 9, 4).unwrap_err();
        assert_eq!(
            err,
            DivergenceCheckError::UnknownLastFetchedEpoch {
                last_fetched_epoch: 4
            }
        );
        assert_eq!(err.error_code(), ErrorCode::OffsetOutOfRange);
        assert!(matches!(
            diverging_epoch(&LeaderEpochCache::new(), 0, 0, 0, 1),
            Err(DivergenceCheckError::UnknownLastFetchedEpoch { .. })
        ));
        assert!(matches!(
            diverging_epoch(&leader, 8, 12, 5, 3),
            Err(DivergenceCheckError::BeforeLogStart { .. })
        ));
    }
}
