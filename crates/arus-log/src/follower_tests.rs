//! `Log::append_as_follower`: a follower's log built from the bytes its leader wrote is the
//! leader's log — same segment bytes, leader epochs, producer state, aborted transactions
//! and last stable offset — and bad input is refused without writing anything.

use super::tests::make_batch;
use super::txn_tests::{abort, commit, pbatch};
use super::*;

fn open(dir: &Path) -> Log {
    Log::open(dir, LogConfig::default(), 0).unwrap()
}

/// A leader's log: plain batches at epoch 0, then at epoch 3 an idempotent producer, an
/// aborted and a committed transaction, and a transaction left open.
fn leader(dir: &Path) -> Log {
    let mut log = open(dir);
    log.become_leader(0).unwrap();
    for _ in 0..2 {
        log.append(&mut make_batch(2, 100, 8), Some(0), 0).unwrap();
    }
    log.become_leader(3).unwrap();
    let batches = [
        pbatch(7, 0, 0, 2, false, 200),
        pbatch(8, 0, 0, 1, true, 210),
        abort(8, 0),
        pbatch(9, 0, 0, 2, true, 220),
        commit(9, 0),
        pbatch(7, 0, 2, 1, false, 230),
        pbatch(10, 0, 0, 3, true, 240),
    ];
    for mut b in batches {
        log.append(&mut b, Some(3), 0).unwrap();
    }
    log
}

/// Every batch of `log` as the leader wrote it.
fn batches_of(log: &Log) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1, i64::MAX).unwrap();
        let h = batch::parse_header(&r.bytes).unwrap();
        out.push(r.bytes[..h.size].to_vec());
        offset = h.last_offset() + 1;
    }
    out
}

fn state(log: &Log) -> impl PartialEq + std::fmt::Debug {
    (
        log.log_end_offset(),
        log.leader_epochs(),
        (0..6)
            .map(|e| log.end_offset_for_epoch(e))
            .collect::<Vec<_>>(),
        log.last_stable_offset(),
        log.collect_aborted_txns(0, i64::MAX),
        log.producers(),
    )
}

fn segment_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("00000000000000000000.log")).unwrap()
}

#[test]
fn a_follower_fed_the_leaders_batches_is_the_leader() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader(ld.path());
    let batches = batches_of(&leader);
    let mut follower = open(fd.path());
    // In fetch-sized pieces: one batch, then three, then the rest.
    let (one, rest) = batches.split_at(1);
    let (three, rest) = rest.split_at(3);
    for chunk in [one, three, rest] {
        let bytes = chunk.concat();
        let info = follower.append_as_follower(&bytes, 0).unwrap();
        assert_eq!(info.last_offset + 1, follower.log_end_offset());
        assert!(!info.duplicate);
    }
    assert_eq!(state(&follower), state(&leader));
    assert_eq!(follower.leader_epochs(), [(0, 0), (3, 4)]);
    // The open transaction of producer 10 holds the last stable offset back.
    assert!(follower.last_stable_offset() < follower.log_end_offset());
    assert_eq!(segment_bytes(fd.path()), segment_bytes(ld.path()));
    assert_eq!(
        std::fs::read(fd.path().join("leader-epoch-checkpoint")).unwrap(),
        std::fs::read(ld.path().join("leader-epoch-checkpoint")).unwrap()
    );
    // And after a restart of both.
    let leader_state = format!("{:?}", state(&leader));
    leader.close().unwrap();
    follower.close().unwrap();
    assert_eq!(format!("{:?}", state(&open(fd.path()))), leader_state);
}

#[test]
fn a_follower_keeps_what_the_client_checks_would_refuse() {
    // The leader already validated: a repeated sequence (a duplicate to a leader) and an
    // older producer epoch are appended as they come, not deduplicated or fenced.
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let at = |b: Vec<u8>, offset: i64, epoch: i32| {
        let mut b = b;
        batch::set_base_offset(&mut b, offset);
        batch::set_leader_epoch(&mut b, epoch);
        b
    };
    let first = at(pbatch(7, 2, 0, 1, false, 0), 0, 1);
    let again = at(pbatch(7, 2, 0, 1, false, 0), 1, 1);
    let older = at(pbatch(7, 1, 1, 1, false, 0), 2, 2);
    for b in [first, again, older] {
        let info = log.append_as_follower(&b, 0).unwrap();
        assert!(!info.duplicate);
    }
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.leader_epochs(), [(1, 0), (2, 2)]);
}

#[test]
fn bad_follower_appends_are_refused_whole() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader(ld.path());
    let batches = batches_of(&leader);
    let mut log = open(fd.path());
    log.append_as_follower(&batches[..3].concat(), 0).unwrap();
    let end = log.log_end_offset();
    let before = segment_bytes(fd.path());

    // Starting below the log end: the follower must truncate first.
    let overlap = [batches[2].clone(), batches[3].clone()].concat();
    assert!(matches!(
        log.append_as_follower(&overlap, 0),
        Err(LogError::UnexpectedAppendOffset { first_offset, log_end_offset, .. })
            if first_offset < end && log_end_offset == end
    ));
    // Batches out of order.
    let swapped = [batches[4].clone(), batches[3].clone()].concat();
    assert!(matches!(
        log.append_as_follower(&swapped, 0),
        Err(LogError::OffsetsOutOfOrder { .. })
    ));
    // A corrupt batch after a good one: nothing of either is written.
    let mut corrupt = batches[4].clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let torn = [batches[3].clone(), corrupt].concat();
    assert!(matches!(
        log.append_as_follower(&torn, 0),
        Err(LogError::CorruptBatch { .. })
    ));
    // Garbage.
    assert!(log.append_as_follower(&[1, 2, 3], 0).is_err());
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(segment_bytes(fd.path()), before);
    // The next batch still goes in.
    log.append_as_follower(&batches[3], 0).unwrap();
}

#[test]
fn a_gap_left_by_the_leaders_compaction_is_kept() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let mut b = make_batch(2, 0, 4);
    batch::set_base_offset(&mut b, 0);
    batch::set_leader_epoch(&mut b, 4);
    log.append_as_follower(&b, 0).unwrap();
    let mut later = make_batch(1, 0, 4);
    batch::set_base_offset(&mut later, 10);
    batch::set_leader_epoch(&mut later, 4);
    log.append_as_follower(&later, 0).unwrap();
    assert_eq!(log.log_end_offset(), 11);
    // A gap beyond what a segment's 32-bit relative offsets hold is refused.
    let mut far = make_batch(1, 0, 4);
    batch::set_base_offset(&mut far, 11 + (1 << 33));
    assert!(matches!(
        log.append_as_follower(&far, 0),
        Err(LogError::InvalidArgument(_))
    ));
    // Reading inside the gap returns the next batch.
    let r = log.read(5, 1 << 20, i64::MAX).unwrap();
    assert_eq!(batch::parse_header(&r.bytes).unwrap().base_offset, 10);
    assert_eq!(log.end_offset_for_epoch(4), (4, 11));
    log.close().unwrap();
    let log = open(d.path());
    assert_eq!(log.log_end_offset(), 11);
    assert_eq!(log.leader_epochs(), [(4, 0)]);
}

/// A follower whose log ends before the leader's log start drops everything and restarts
/// at that offset (Kafka's `truncateFullyAndStartAt`), then appends the leader's batches
/// from there; `truncate_to` above the log end would have kept the stale log.
#[test]
fn truncate_fully_and_start_at_restarts_above_the_log_end() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let leader = leader(leader_dir.path());
    let all = batches_of(&leader);
    let mut follower = open(follower_dir.path());
    follower.append_as_follower(&all[0], 0).unwrap();
    assert_eq!(follower.log_end_offset(), 2);

    follower.truncate_fully_and_start_at(4).unwrap();
    assert_eq!(follower.log_start_offset(), 4);
    assert_eq!(follower.log_end_offset(), 4);
    assert_eq!(follower.leader_epochs(), Vec::<(i32, i64)>::new());
    assert_eq!(follower.producers(), leader_producers_none());
    for b in &all[2..] {
        follower.append_as_follower(b, 0).unwrap();
    }
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.latest_epoch(), Some(3));
    drop(follower);
    // The restart point is durable.
    let reopened = open(follower_dir.path());
    assert_eq!(reopened.log_start_offset(), 4);
    assert_eq!(reopened.log_end_offset(), leader.log_end_offset());
}

fn leader_producers_none() -> Vec<producer_state::ProducerView> {
    Vec::new()
}
