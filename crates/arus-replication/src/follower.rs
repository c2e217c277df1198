//! What a follower takes from the leader's Fetch response besides the records (Kafka's
//! `ReplicaFetcherThread.processPartitionData`, after the append): the high watermark and
//! the log start offset.

/// The follower's new high watermark: the leader's, bounded below by the follower's log
/// start offset and above by its log end offset (Kafka's `UnifiedLog.updateHighWatermark`).
/// It may move back: it is the leader's word, not the follower's.
pub fn follower_high_watermark(
    leader_high_watermark: i64,
    log_start_offset: i64,
    log_end_offset: i64,
) -> i64 {
    if leader_high_watermark < log_start_offset {
        log_start_offset
    } else if leader_high_watermark >= log_end_offset {
        log_end_offset
    } else {
        leader_high_watermark
    }
}

/// The follower's log start offset after the leader reported its own: it only moves forward
/// (Kafka's `maybeIncrementLogStartOffset` with reason `LeaderOffsetIncremented`); segments
/// wholly below it may then be deleted.
pub fn follower_log_start_offset(current: i64, leader_log_start_offset: i64) -> i64 {
    current.max(leader_log_start_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_watermark_is_the_leaders_within_the_local_log() {
        assert_eq!(follower_high_watermark(5, 0, 10), 5);
        assert_eq!(
            follower_high_watermark(15, 0, 10),
            10,
            "not past what we have"
        );
        assert_eq!(follower_high_watermark(10, 0, 10), 10);
        assert_eq!(follower_high_watermark(2, 4, 10), 4, "not below our start");
    }

    #[test]
    fn log_start_offset_only_moves_forward() {
        assert_eq!(follower_log_start_offset(3, 7), 7);
        assert_eq!(follower_log_start_offset(7, 3), 7);
    }
}
