//! Producer state through the `Log`: idempotence, fencing, transactions, `.txnindex`,
//! snapshots and their recovery.

use super::tests::make_batch_attr;
use super::*;
use crate::batch::{CONTROL_FLAG, TRANSACTIONAL_FLAG};
use crate::producer_state::NO_PRODUCER_EPOCH;

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
}

fn set_producer(b: &mut [u8], pid: i64, epoch: i16, seq: i32) {
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A data batch of `n` records from producer `pid`.
pub(crate) fn pbatch(pid: i64, epoch: i16, seq: i32, n: usize, txn: bool, ts: i64) -> Vec<u8> {
    let tss: Vec<i64> = (0..n as i64).map(|i| ts + i).collect();
    let attrs = if txn { TRANSACTIONAL_FLAG } else { 0 };
    let mut b = make_batch_attr(&tss, 4, attrs);
    set_producer(&mut b, pid, epoch, seq);
    b
}

/// A control batch with one end-transaction marker (`ctype` 0 abort, 1 commit).
pub(crate) fn marker_batch(
    pid: i64,
    epoch: i16,
    ctype: i16,
    coordinator_epoch: i32,
    ts: i64,
) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varint(&mut body, 0);
    put_varint(&mut body, 0);
    put_varint(&mut body, 4);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&ctype.to_be_bytes());
    put_varint(&mut body, 6);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&coordinator_epoch.to_be_bytes());
    put_varint(&mut body, 0);
    let mut records = Vec::new();
    put_varint(&mut records, body.len() as i64);
    records.extend_from_slice(&body);
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(CONTROL_FLAG | TRANSACTIONAL_FLAG).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&[0; 14]);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&records);
    set_producer(&mut b, pid, epoch, -1);
    b
}

pub(crate) fn commit(pid: i64, epoch: i16) -> Vec<u8> {
    marker_batch(pid, epoch, 1, 0, 0)
}
pub(crate) fn abort(pid: i64, epoch: i16) -> Vec<u8> {
    marker_batch(pid, epoch, 0, 0, 0)
}

fn app(log: &mut Log, mut b: Vec<u8>) -> Result<AppendInfo, LogError> {
    log.append(&mut b, None, 0)
}

fn ok(log: &mut Log, b: Vec<u8>) -> AppendInfo {
    app(log, b).unwrap()
}

fn code(r: Result<AppendInfo, LogError>) -> i16 {
    match r {
        Err(LogError::Producer(e)) => e.kafka_error_code(),
        other => panic!("expected a producer error, got {other:?}"),
    }
}

fn open(dir: &std::path::Path) -> Log {
    Log::open(dir, LogConfig::default(), 0).unwrap()
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

fn snapshots(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    v.sort();
    v
}

#[test]
fn sequences_duplicates_and_out_of_order() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    // Six batches of two records: seqs 0-1, 2-3, …, 10-11 at offsets 0-1, 2-3, …
    for i in 0..6 {
        let info = ok(&mut log, pbatch(1, 0, i * 2, 2, false, 100));
        assert_eq!(
            (info.first_offset, info.last_offset),
            (i64::from(i) * 2, i64::from(i) * 2 + 1)
        );
        assert!(!info.duplicate);
    }
    // A gap.
    assert_eq!(code(app(&mut log, pbatch(1, 0, 13, 1, false, 100))), 45);
    // Each of the last five is recognised and answered with its original offsets.
    for i in 1..6 {
        let info = ok(&mut log, pbatch(1, 0, i * 2, 2, false, 100));
        assert!(info.duplicate);
        assert_eq!(
            (info.first_offset, info.last_offset),
            (i64::from(i) * 2, i64::from(i) * 2 + 1)
        );
        assert_eq!(info.bytes, 0);
    }
    assert_eq!(log.log_end_offset(), 12);
    // The sixth-newest is no longer retained: Kafka answers out of order.
    assert_eq!(code(app(&mut log, pbatch(1, 0, 0, 2, false, 100))), 45);
    // Same first sequence, different last: not a duplicate, out of order.
    assert_eq!(code(app(&mut log, pbatch(1, 0, 10, 1, false, 100))), 45);
    ok(&mut log, pbatch(1, 0, 12, 1, false, 100));
    let v = log.producers();
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].producer_id, v[0].producer_epoch, v[0].last_sequence),
        (1, 0, 12)
    );
    assert_eq!(v[0].current_txn_start_offset, -1);
    // Non-idempotent appends are untouched by any of this.
    let info = ok(&mut log, make_batch_attr(&[1, 2], 4, 0));
    assert!(!info.duplicate && info.completed_txns.is_empty());
    assert_eq!(log.producers().len(), 1);
}

#[test]
fn multi_batch_append_is_validated_in_order_and_atomically() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 1, false, 0));
    let mut two = pbatch(1, 0, 1, 2, false, 0);
    two.extend(pbatch(1, 0, 3, 1, false, 0));
    assert_eq!(ok(&mut log, two).last_offset, 3);
    // The second batch is out of order: nothing of the append is written or applied.
    let mut bad = pbatch(1, 0, 4, 1, false, 0);
    bad.extend(pbatch(1, 0, 9, 1, false, 0));
    assert_eq!(code(app(&mut log, bad)), 45);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.producers()[0].last_sequence, 3);
    ok(&mut log, pbatch(1, 0, 4, 1, false, 0));
}

#[test]
fn epochs_bump_at_zero_and_fence_older() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 2, false, 0));
    // A new epoch must start at 0.
    assert_eq!(code(app(&mut log, pbatch(1, 1, 2, 1, false, 0))), 45);
    ok(&mut log, pbatch(1, 1, 0, 1, false, 0));
    // The old epoch is fenced.
    assert_eq!(code(app(&mut log, pbatch(1, 0, 2, 1, false, 0))), 47);
    assert_eq!(code(app(&mut log, commit(1, 0))), 47);
    // A retry of the old epoch's batch is no duplicate any more (epoch differs): fenced.
    assert_eq!(code(app(&mut log, pbatch(1, 0, 0, 2, false, 0))), 47);
    ok(&mut log, pbatch(1, 1, 1, 1, false, 0));
}

#[test]
fn unknown_producer_accepted_with_any_sequence() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(7, 3, 42, 1, false, 0));
    assert_eq!(code(app(&mut log, pbatch(7, 3, 44, 1, false, 0))), 45);
    ok(&mut log, pbatch(7, 3, 43, 1, false, 0));
    let v = log.producers();
    assert_eq!((v[0].producer_epoch, v[0].last_sequence), (3, 43));
}

#[test]
fn sequence_wraps_past_i32_max() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    // MAX-1, MAX, 0.
    ok(&mut log, pbatch(1, 0, i32::MAX - 1, 3, false, 0));
    assert_eq!(log.producers()[0].last_sequence, 0);
    ok(&mut log, pbatch(1, 0, 1, 1, false, 0));
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, i32::MAX - 1, 2, false, 0));
    assert_eq!(log.producers()[0].last_sequence, i32::MAX);
    assert_eq!(code(app(&mut log, pbatch(1, 0, 1, 1, false, 0))), 45);
    ok(&mut log, pbatch(1, 0, 0, 1, false, 0));
}

#[test]
fn transactions_commit_abort_and_lso() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    assert_eq!(log.last_stable_offset(), 0);
    ok(&mut log, pbatch(1, 0, 0, 2, true, 0)); // 0-1
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(log.producers()[0].current_txn_start_offset, 0);
    // Non-transactional while a transaction is open.
    assert_eq!(code(app(&mut log, pbatch(1, 0, 2, 1, false, 0))), 48);
    ok(&mut log, make_batch_attr(&[5], 4, 0)); // 2, plain producer
    ok(&mut log, pbatch(1, 0, 2, 1, true, 0)); // 3
    assert_eq!(log.last_stable_offset(), 0);
    let info = ok(&mut log, commit(1, 0)); // 4
    assert_eq!(
        info.completed_txns,
        vec![CompletedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 4,
            is_aborted: false
        }]
    );
    assert_eq!(log.last_stable_offset(), 5);
    assert!(log.collect_aborted_txns(0, 100).is_empty());
    // Markers leave sequences alone.
    assert_eq!(log.producers()[0].last_sequence, 2);
    ok(&mut log, pbatch(1, 0, 3, 2, true, 0)); // 5-6
    assert_eq!(log.last_stable_offset(), 5);
    let info = ok(&mut log, abort(1, 0)); // 7
    assert!(info.completed_txns[0].is_aborted);
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.collect_aborted_txns(0, 100), vec![aborted(1, 5, 7, 8)]);
    // An abort with no data in this partition completes an empty transaction but adds
    // no aborted entry (Kafka 4.x).
    let info = ok(&mut log, abort(9, 0)); // 8
    assert_eq!(
        info.completed_txns,
        vec![CompletedTxn {
            producer_id: 9,
            first_offset: 8,
            last_offset: 8,
            is_aborted: true
        }]
    );
    assert_eq!(log.collect_aborted_txns(0, 100), vec![aborted(1, 5, 7, 8)]);
    assert_eq!(log.last_stable_offset(), 9);
    // Fenced coordinator: a marker with an older coordinator epoch.
    ok(&mut log, marker_batch(1, 0, 1, 5, 0)); // 9, coordinator epoch 5
    assert_eq!(code(app(&mut log, marker_batch(1, 0, 0, 4, 0))), 52);
    assert_eq!(log.producers()[0].coordinator_epoch, 5);
    // A control batch whose marker cannot be parsed is refused.
    let mut bad = commit(1, 0);
    let n = bad.len();
    bad[n - 8] = 9; // control type 9
    set_producer(&mut bad, 1, 0, -1);
    assert!(matches!(
        app(&mut log, bad),
        Err(LogError::CorruptBatch { .. })
    ));
}

#[test]
fn interleaved_transactions_and_aborted_ranges() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 1, true, 0)); // 0
    ok(&mut log, pbatch(2, 0, 0, 1, true, 0)); // 1
    ok(&mut log, pbatch(1, 0, 1, 1, true, 0)); // 2
    assert_eq!(log.last_stable_offset(), 0);
    ok(&mut log, abort(1, 0)); // 3: producer 2's transaction (from 1) is still open
    assert_eq!(log.last_stable_offset(), 1);
    ok(&mut log, pbatch(3, 0, 0, 1, true, 0)); // 4
    ok(&mut log, abort(2, 0)); // 5: producer 3's transaction from 4 is open
    assert_eq!(log.last_stable_offset(), 4);
    ok(&mut log, commit(3, 0)); // 6
    assert_eq!(log.last_stable_offset(), 7);
    let a1 = aborted(1, 0, 3, 1);
    let a2 = aborted(2, 1, 5, 4);
    assert_eq!(log.collect_aborted_txns(0, 7), vec![a1, a2]);
    assert_eq!(log.collect_aborted_txns(0, 1), vec![a1]);
    assert_eq!(log.collect_aborted_txns(3, 7), vec![a1, a2]);
    assert_eq!(log.collect_aborted_txns(4, 7), vec![a2]);
    assert_eq!(log.collect_aborted_txns(6, 7), vec![]);
    // Ordered by first offset even when markers come in the other order.
    ok(&mut log, pbatch(4, 0, 0, 1, true, 0)); // 7
    ok(&mut log, pbatch(5, 0, 0, 1, true, 0)); // 8
    ok(&mut log, abort(5, 0)); // 9
    ok(&mut log, abort(4, 0)); // 10
    assert_eq!(
        log.collect_aborted_txns(7, 11),
        vec![aborted(4, 7, 10, 11), aborted(5, 8, 9, 7)]
    );
}

#[test]
fn restart_keeps_state_without_scanning() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 2, true, 10));
    ok(&mut log, abort(1, 0));
    ok(&mut log, pbatch(2, 4, 0, 3, false, 20));
    ok(&mut log, pbatch(1, 0, 2, 1, true, 30)); // ongoing at 6
    let views = log.producers();
    let ab = log.collect_aborted_txns(0, 100);
    log.close().unwrap();
    assert_eq!(snapshots(d.path()), vec![format!("{:020}.snapshot", 7)]);
    let mut log = open(d.path());
    assert_eq!(log.last_replay_batches, 0);
    assert_eq!(log.producers(), views);
    assert_eq!(log.collect_aborted_txns(0, 100), ab);
    assert_eq!(log.last_stable_offset(), 6);
    // Dedup works across the restart.
    let info = ok(&mut log, pbatch(2, 4, 0, 3, false, 20));
    assert!(info.duplicate);
    assert_eq!((info.first_offset, info.last_offset), (3, 5));
    ok(&mut log, commit(1, 0));
    assert_eq!(log.last_stable_offset(), 8);
}

#[test]
fn unclean_restart_rebuilds_by_replay() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 2, true, 10));
    ok(&mut log, pbatch(3, 0, 0, 1, true, 10)); // 2
    ok(&mut log, abort(1, 0)); // 3
    ok(&mut log, pbatch(2, 4, 0, 3, false, 20)); // 4-6
    ok(&mut log, pbatch(1, 1, 0, 1, true, 30)); // 7, ongoing
    let views = log.producers();
    let ab = log.collect_aborted_txns(0, 100);
    assert_eq!(ab, vec![aborted(1, 0, 3, 2)]);
    drop(log); // crash: no snapshot, no marker
    assert!(snapshots(d.path()).is_empty());
    // Lose the .txnindex too: replay recreates it.
    std::fs::remove_file(d.path().join(format!("{:020}.txnindex", 0))).unwrap();
    let mut log = open(d.path());
    assert_eq!(log.last_replay_batches, 5);
    assert_eq!(log.producers(), views);
    assert_eq!(log.collect_aborted_txns(0, 100), ab);
    assert_eq!(log.last_stable_offset(), 2);
    assert!(d.path().join(format!("{:020}.txnindex", 0)).exists());
    assert!(ok(&mut log, pbatch(2, 4, 0, 3, false, 20)).duplicate);
    // And a second unclean restart reads the recreated index without duplicating it.
    drop(log);
    let log = open(d.path());
    assert_eq!(log.collect_aborted_txns(0, 100), ab);
}

#[test]
fn truncate_drops_aborted_entries_and_state() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 2, true, 0)); // 0-1
    ok(&mut log, abort(1, 0)); // 2
    ok(&mut log, pbatch(2, 0, 0, 1, false, 0)); // 3
    ok(&mut log, pbatch(1, 0, 2, 1, true, 0)); // 4, ongoing
    assert_eq!(log.last_stable_offset(), 4);
    log.truncate_to(4).unwrap();
    assert_eq!(log.last_stable_offset(), 4);
    assert_eq!(log.producers()[0].current_txn_start_offset, -1);
    assert_eq!(log.producers().len(), 2);
    ok(&mut log, pbatch(1, 0, 2, 1, true, 0)); // the same sequence is in order again
    log.truncate_to(3).unwrap();
    assert_eq!(log.producers().len(), 1);
    assert_eq!(log.collect_aborted_txns(0, 100), vec![aborted(1, 0, 2, 3)]);
    log.truncate_to(2).unwrap();
    assert!(log.collect_aborted_txns(0, 100).is_empty());
    assert!(!d.path().join(format!("{:020}.txnindex", 0)).exists());
    assert_eq!(log.producers()[0].current_txn_start_offset, 0);
    assert_eq!(log.last_stable_offset(), 0);
    log.close().unwrap();
    let log = open(d.path());
    assert!(log.collect_aborted_txns(0, 100).is_empty());
    assert_eq!(log.last_stable_offset(), 0);
}

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    }
}

#[test]
fn roll_writes_snapshots_and_open_replays_after_the_newest() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small(), 0).unwrap();
    // Each batch is bigger than half a segment: one batch per segment.
    for i in 0..8 {
        ok(&mut log, pbatch(1, 0, i, 1, false, 0));
        if i == 3 {
            ok(&mut log, pbatch(2, 0, 0, 1, true, 0)); // 4
            ok(&mut log, abort(2, 0)); // 5
        }
    }
    assert!(log.segment_count() >= 10);
    // Snapshots at the newest segment bases, only the last three kept.
    let snaps = snapshots(d.path());
    assert_eq!(snaps.len(), SNAPSHOTS_KEPT);
    assert_eq!(snaps.last().unwrap(), &format!("{:020}.snapshot", 9));
    let views = log.producers();
    let ab = log.collect_aborted_txns(0, 100);
    assert_eq!(ab, vec![aborted(2, 4, 5, 6)]);
    log.close().unwrap();
    let log = Log::open(d.path(), small(), 0).unwrap();
    assert_eq!(log.last_replay_batches, 0);
    drop(log); // unclean, after the clean open
    // Remove the close-time snapshot: the newest left is at 9 (recovery point 10), so
    // only the last segment is replayed.
    std::fs::remove_file(d.path().join(format!("{:020}.snapshot", 10))).unwrap();
    let mut log = Log::open(d.path(), small(), 0).unwrap();
    assert_eq!(log.last_replay_batches, 1);
    assert_eq!(log.producers(), views);
    assert_eq!(log.collect_aborted_txns(0, 100), ab);
    assert!(ok(&mut log, pbatch(1, 0, 7, 1, false, 0)).duplicate);
    log.close().unwrap();
    // A corrupt newest snapshot: fall back to the next one.
    let newest = d.path().join(snapshots(d.path()).last().unwrap());
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    let log = Log::open(d.path(), small(), 0).unwrap();
    assert_eq!(log.last_replay_batches, 1);
    assert_eq!(log.producers(), views);
    assert_eq!(log.collect_aborted_txns(0, 100), ab);
    drop(log);
    // All snapshots corrupt (here: empty): full replay.
    for s in snapshots(d.path()) {
        std::fs::write(d.path().join(s), b"").unwrap();
    }
    let log = Log::open(d.path(), small(), 0).unwrap();
    assert_eq!(log.last_replay_batches, 10);
    assert_eq!(log.producers(), views);
    assert_eq!(log.collect_aborted_txns(0, 100), ab);
    // Truncation deletes snapshots above the new end.
    let mut log = log;
    log.truncate_to(3).unwrap();
    assert!(
        snapshots(d.path())
            .iter()
            .all(|s| s.as_str() <= format!("{:020}.snapshot", 3).as_str())
    );
    assert!(log.collect_aborted_txns(0, 100).is_empty());
    assert!(
        log.producers()
            .iter()
            .all(|p| p.producer_id == 1 && p.last_sequence == 2)
    );
}

#[test]
fn expired_producers_are_forgotten() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 1, false, 1000));
    ok(&mut log, pbatch(2, 0, 0, 1, true, 1000));
    ok(&mut log, pbatch(3, 0, 0, 1, false, 5000));
    log.remove_expired_producers(6000, 2000);
    let ids: Vec<i64> = log.producers().iter().map(|p| p.producer_id).collect();
    assert_eq!(ids, vec![2, 3]);
    // Forgotten: any sequence is accepted again (KIP-360).
    ok(&mut log, pbatch(1, 0, 17, 1, false, 6000));
    assert_eq!(log.producers()[0].producer_epoch, 0);
    log.remove_expired_producers(7000, 1000);
    assert_eq!(log.producers().len(), 1);
    assert_ne!(log.producers()[0].producer_epoch, NO_PRODUCER_EPOCH);
}

#[test]
fn flush_target_covers_the_txn_index() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ok(&mut log, pbatch(1, 0, 0, 1, true, 0));
    let t = log.flush_target();
    t.sync().unwrap();
    log.mark_flushed(t.end_offset());
    assert!(log.flush_target().dir.is_none());
    ok(&mut log, abort(1, 0));
    // The new .txnindex file and its directory entry are part of the next flush.
    let t = log.flush_target();
    assert_eq!(t.files.len(), 2);
    assert!(t.dir.is_some());
    t.sync().unwrap();
    log.mark_flushed(t.end_offset());
    ok(&mut log, pbatch(1, 0, 1, 1, true, 0));
    let t = log.flush_target();
    assert_eq!(t.files.len(), 2);
    assert!(t.dir.is_none());
}

/// Coordinator-written batches (TxnOffsetCommit records: the producer's id and epoch, no
/// sequence) are neither duplicates of each other nor out of sequence, but still fenced by
/// epoch and still part of the producer's transaction.
#[test]
fn coordinator_written_batches_skip_sequence_checks() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let first = ok(&mut log, pbatch(9, 1, -1, 1, true, 100));
    assert!(!first.duplicate);
    ok(&mut log, commit(9, 1));
    let second = ok(&mut log, pbatch(9, 1, -1, 1, true, 101));
    assert!(
        !second.duplicate,
        "a second sequence-less batch is new data"
    );
    assert_eq!(second.first_offset, 2);
    assert_eq!(log.last_stable_offset(), 2, "it opened a transaction");
    ok(&mut log, abort(9, 1));
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(code(app(&mut log, pbatch(9, 0, -1, 1, true, 102))), 47);
}
