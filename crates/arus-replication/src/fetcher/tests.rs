use super::*;

const CONFIG: FetcherConfig = FetcherConfig {
    replica_id: 2,
    broker_epoch: 77,
    max_wait_ms: 500,
    min_bytes: 1,
    response_max_bytes: 10 << 20,
    partition_max_bytes: 1 << 20,
    backoff_ms: 1000,
};

fn key(p: i32) -> PartitionKey {
    PartitionKey {
        topic_id: Uuid([7; 16]),
        partition: p,
    }
}

fn init(offset: i64, epoch: i32, latest: Option<i32>) -> InitialFetchState {
    InitialFetchState {
        topic: "t".into(),
        init_offset: offset,
        current_leader_epoch: epoch,
        latest_epoch: latest,
    }
}

fn local(_: &PartitionKey) -> Option<LocalLogState> {
    Some(LocalLogState {
        log_start_offset: 0,
        high_watermark: 3,
    })
}

fn ok() -> PartitionResponse {
    PartitionResponse {
        error: ErrorCode::None,
        diverging_epoch: None,
    }
}

fn error(e: ErrorCode) -> PartitionResponse {
    PartitionResponse {
        error: e,
        diverging_epoch: None,
    }
}

#[test]
fn the_request_carries_the_replica_and_each_ready_partitions_epochs() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 4, Some(3)));
    f.add(key(1), init(0, 4, None));
    let r = f.build_request(&CONFIG, 0, local).unwrap();
    assert_eq!((r.replica_id, r.replica_state.replica_id), (2, 2));
    assert_eq!(r.replica_state.replica_epoch, 77);
    assert_eq!(
        (r.max_wait_ms, r.min_bytes, r.max_bytes),
        (500, 1, 10 << 20)
    );
    assert_eq!(
        (r.session_id, r.session_epoch, r.isolation_level),
        (0, -1, 0)
    );
    // Partition 1 has no epoch: it truncates to its high watermark first.
    assert_eq!(f.truncating(0), vec![key(1)]);
    assert_eq!(r.topics.len(), 1);
    let p = &r.topics[0].partitions;
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].partition, p[0].fetch_offset, p[0].current_leader_epoch),
        (0, 10, 4)
    );
    assert_eq!(p[0].last_fetched_epoch, 3);
    assert_eq!(p[0].partition_max_bytes, 1 << 20);
    assert_eq!((p[0].log_start_offset, p[0].high_watermark), (0, 3));
    f.on_truncated(&key(1), 0, None);
    let r = f.build_request(&CONFIG, 0, local).unwrap();
    assert_eq!(r.topics[0].partitions.len(), 2);
    assert_eq!(r.topics[0].partitions[1].last_fetched_epoch, -1);
}

#[test]
fn appended_records_move_the_fetch_offset_and_the_last_fetched_epoch() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 4, Some(3)));
    let a = f.on_partition_response(&key(0), 10, 4, ok(), &CONFIG, 0);
    assert_eq!(a, ResponseAction::Append);
    f.on_appended(&key(0), Some((14, Some(4))), 20);
    let s = f.state(&key(0)).unwrap();
    assert_eq!(
        (s.fetch_offset, s.last_fetched_epoch, s.lag),
        (15, Some(4), Some(5))
    );
    // An empty answer keeps the offset.
    f.on_appended(&key(0), None, 20);
    assert_eq!(f.state(&key(0)).unwrap().fetch_offset, 15);
}

#[test]
fn a_diverging_epoch_truncates_without_appending() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 5, Some(4)));
    let a = f.on_partition_response(
        &key(0),
        10,
        5,
        PartitionResponse {
            error: ErrorCode::None,
            diverging_epoch: Some((3, 7)),
        },
        &CONFIG,
        0,
    );
    assert_eq!(
        a,
        ResponseAction::Truncate {
            epoch: 3,
            end_offset: 7
        }
    );
    f.on_truncated(&key(0), 7, Some(3));
    let s = f.state(&key(0)).unwrap();
    assert_eq!((s.fetch_offset, s.last_fetched_epoch), (7, Some(3)));
}

#[test]
fn an_answer_for_an_offset_no_longer_fetched_is_ignored() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 5, Some(4)));
    f.on_truncated(&key(0), 8, Some(4));
    assert_eq!(
        f.on_partition_response(&key(0), 10, 5, ok(), &CONFIG, 0),
        ResponseAction::Ignore
    );
    assert_eq!(
        f.on_partition_response(&key(9), 10, 5, ok(), &CONFIG, 0),
        ResponseAction::Ignore
    );
}

#[test]
fn transient_errors_back_off_and_the_partition_is_left_out_until_then() {
    for e in [
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::UnknownTopicOrPartition,
        ErrorCode::UnknownTopicId,
        ErrorCode::InconsistentTopicId,
        ErrorCode::KafkaStorageError,
    ] {
        let mut f = Fetcher::new();
        f.add(key(0), init(10, 5, Some(4)));
        assert_eq!(
            f.on_partition_response(&key(0), 10, 5, error(e), &CONFIG, 100),
            ResponseAction::Retry,
            "{e:?}"
        );
        assert!(f.build_request(&CONFIG, 1099, local).is_none(), "{e:?}");
        assert_eq!(f.next_ready_ms(), Some(1100));
        assert!(f.build_request(&CONFIG, 1100, local).is_some(), "{e:?}");
    }
}

#[test]
fn fenced_at_the_current_epoch_stops_the_partition_until_it_is_added_again() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 5, Some(4)));
    let a = f.on_partition_response(
        &key(0),
        10,
        5,
        error(ErrorCode::FencedLeaderEpoch),
        &CONFIG,
        0,
    );
    assert_eq!(a, ResponseAction::Fenced);
    assert!(f.is_failed(&key(0)) && f.state(&key(0)).is_none());
    f.add(key(0), init(10, 6, Some(4)));
    assert!(!f.is_failed(&key(0)));
    assert_eq!(f.state(&key(0)).unwrap().current_leader_epoch, 6);
}

#[test]
fn fenced_for_an_older_request_while_the_epoch_moved_on_retries() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 5, Some(4)));
    f.add(key(0), init(10, 6, Some(4)));
    let a = f.on_partition_response(
        &key(0),
        10,
        5,
        error(ErrorCode::FencedLeaderEpoch),
        &CONFIG,
        0,
    );
    assert_eq!(a, ResponseAction::Retry);
    assert!(!f.is_failed(&key(0)));
}

#[test]
fn the_same_epoch_keeps_the_state_and_a_new_one_starts_over() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 5, Some(4)));
    f.on_appended(&key(0), Some((19, Some(5))), 20);
    f.add(key(0), init(10, 5, Some(4)));
    assert_eq!(f.state(&key(0)).unwrap().fetch_offset, 20);
    f.add(key(0), init(20, 6, Some(5)));
    let s = f.state(&key(0)).unwrap();
    assert_eq!((s.fetch_offset, s.current_leader_epoch), (20, 6));
}

#[test]
fn out_of_range_follows_kafkas_fetch_offset_and_truncate() {
    // The leader's log ends before ours (an unclean election happened).
    assert_eq!(out_of_range(100, 80, 0), OutOfRange::TruncateTo(80));
    // The leader deleted what we would fetch next.
    assert_eq!(
        out_of_range(100, 500, 300),
        OutOfRange::TruncateFullyAndStartAt(300)
    );
    // Otherwise fetch from our end again.
    assert_eq!(out_of_range(100, 500, 50), OutOfRange::FetchFrom(100));
    assert_eq!(out_of_range(100, 100, 100), OutOfRange::FetchFrom(100));
}

#[test]
fn out_of_range_resolution_resumes_or_fences() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 5, Some(4)));
    assert_eq!(
        f.on_partition_response(
            &key(0),
            10,
            5,
            error(ErrorCode::OffsetOutOfRange),
            &CONFIG,
            0
        ),
        ResponseAction::ResolveOutOfRange
    );
    f.on_out_of_range_resolved(&key(0), 300, 500, None);
    let s = f.state(&key(0)).unwrap();
    assert_eq!((s.fetch_offset, s.lag), (300, Some(200)));
    assert_eq!(
        f.on_out_of_range_failed(&key(0), ErrorCode::NotLeaderOrFollower, 5, &CONFIG, 0),
        ResponseAction::Retry
    );
    assert_eq!(
        f.on_out_of_range_failed(&key(0), ErrorCode::FencedLeaderEpoch, 5, &CONFIG, 0),
        ResponseAction::Fenced
    );
}

#[test]
fn a_failed_request_delays_every_partition() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 5, Some(4)));
    f.add(key(1), init(10, 5, Some(4)));
    f.on_request_failed(&CONFIG, 0);
    assert!(f.build_request(&CONFIG, 999, local).is_none());
    assert_eq!(
        f.build_request(&CONFIG, 1000, local).unwrap().topics[0]
            .partitions
            .len(),
        2
    );
}

#[test]
fn a_partition_error_delays_the_partition_and_keeps_its_offset() {
    let mut f = Fetcher::new();
    f.add(key(0), init(10, 4, Some(3)));
    f.add(key(1), init(20, 4, Some(3)));
    f.on_partition_error(&key(0), &CONFIG, 100);
    let r = f.build_request(&CONFIG, 100, local).unwrap();
    let fetched: Vec<i32> = r.topics[0].partitions.iter().map(|p| p.partition).collect();
    assert_eq!(fetched, vec![1], "partition 0 waits");
    assert!(!f.is_failed(&key(0)));
    assert_eq!(f.next_ready_ms(), Some(1100));
    let r = f.build_request(&CONFIG, 1100, local).unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (p.partition, p.fetch_offset),
        (0, 10),
        "the same offset again"
    );
}
