//! Log start offset, DeleteRecords, retention, delayed deletes and the cleaner hooks.

use std::path::{Path, PathBuf};

use super::tests::{make_batch, make_batch_attr};
use super::txn_tests::{marker_batch, pbatch};
use super::*;
use crate::lifecycle::{
    LOG_START_OFFSET_FILE, LOG_START_OFFSET_VERSION, SWAP_MANIFEST_FILE, SWAP_SUFFIX,
};
use crate::segment::segment_path;

/// Single-record batches with a 100-byte value are 170 bytes: two per 400-byte segment.
fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Log {
    Log::open(dir, cfg(), 0).unwrap()
}

/// One single-record batch per timestamp; returns each batch as stored (offset = index
/// when the log started empty).
fn fill(log: &mut Log, tss: &[i64]) -> Vec<Vec<u8>> {
    tss.iter()
        .map(|&ts| {
            let mut b = make_batch(1, ts, 100);
            log.append(&mut b, None, 0).unwrap();
            b
        })
        .collect()
}

/// Ten batches with timestamps 1000, 2000, …, 10000 in segments [0, 2, 4, 6, 8].
fn ten(log: &mut Log) -> Vec<Vec<u8>> {
    let tss: Vec<i64> = (1..=10).map(|i| i * 1000).collect();
    let b = fill(log, &tss);
    assert_eq!(bases(log), vec![0, 2, 4, 6, 8]);
    let infos = log.segment_infos();
    let ends: Vec<i64> = infos.iter().map(|s| s.next_offset).collect();
    assert_eq!(ends, vec![2, 4, 6, 8, 10]);
    assert!(infos.iter().all(|s| s.size == 340));
    let largest: Vec<i64> = infos.iter().map(|s| s.largest_timestamp).collect();
    assert_eq!(largest, vec![2000, 4000, 6000, 8000, 10_000]);
    assert_eq!(infos[1].path, segment_path(log.dir(), 2, "log"));
    assert!(b.iter().all(|x| x.len() == 170));
    b
}

fn bases(log: &Log) -> Vec<i64> {
    log.segment_infos().iter().map(|s| s.base).collect()
}

fn read_at(log: &Log, offset: i64) -> Result<Vec<u8>, LogError> {
    log.read(offset, usize::MAX, i64::MAX)
        .map(|r| r.bytes.to_vec())
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn with_any(dir: &Path, suffix: &str) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .collect()
}

fn out_of_range(r: Result<Vec<u8>, LogError>) -> bool {
    matches!(r, Err(LogError::OffsetOutOfRange { .. }))
}

#[test]
fn delete_records_moves_start_deletes_segments_and_survives_restart() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);

    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(bases(&log), vec![4, 6, 8]);
    for gone in [0, 2] {
        assert!(!segment_path(d.path(), gone, "log").exists());
        assert!(!segment_path(d.path(), gone, "index").exists());
    }
    assert!(out_of_range(read_at(&log, 4)));
    assert!(out_of_range(read_at(&log, 0)));
    assert_eq!(read_at(&log, 5).unwrap()[..170], b[5][..]);

    // Never moves down; above the high watermark or negative is refused.
    assert_eq!(log.delete_records_before(2).unwrap(), 5);
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert!(matches!(
        log.delete_records_before(11),
        Err(LogError::DeleteOffsetOutOfRange {
            offset: 11,
            high_watermark: 10
        })
    ));
    assert!(matches!(
        log.delete_records_before(-2),
        Err(LogError::DeleteOffsetOutOfRange { .. })
    ));
    assert_eq!(log.log_start_offset(), 5);

    // Unclean restart keeps it.
    drop(log);
    let mut log = open(d.path());
    assert_eq!(log.log_start_offset(), 5);
    assert!(out_of_range(read_at(&log, 4)));
    assert_eq!(read_at(&log, 5).unwrap()[..170], b[5][..]);

    // -1 is the high watermark; the active segment keeps its (unreadable) data.
    assert_eq!(log.delete_records_before(-1).unwrap(), 10);
    assert_eq!(bases(&log), vec![8]);
    assert!(out_of_range(read_at(&log, 9)));
    assert!(read_at(&log, 10).unwrap().is_empty());
    let b10 = fill(&mut log, &[11_000]);
    assert_eq!(read_at(&log, 10).unwrap(), b10[0]);
    log.close().unwrap();
    let log = open(d.path());
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(log.log_end_offset(), 11);
}

#[test]
fn log_start_checkpoint_is_clamped_on_open() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ten(&mut log);
    drop(log);
    checkpoint::write_offset_file(
        &d.path().join(lifecycle::LOG_START_OFFSET_FILE),
        lifecycle::LOG_START_OFFSET_VERSION,
        99,
    )
    .unwrap();
    assert_eq!(open(d.path()).log_start_offset(), 10);
    // The clamped value is persisted: data appended above it stays readable.
    let mut log = open(d.path());
    log.truncate_to(3).unwrap();
    drop(log);
    checkpoint::write_offset_file(
        &d.path().join(lifecycle::LOG_START_OFFSET_FILE),
        lifecycle::LOG_START_OFFSET_VERSION,
        99,
    )
    .unwrap();
    let mut log = open(d.path());
    // Truncating at the start restarted the log at 3.
    assert_eq!(bases(&log), vec![3]);
    assert_eq!(log.log_start_offset(), 3);
    fill(&mut log, &[1, 2, 3]);
    drop(log);
    let log = open(d.path());
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.log_end_offset(), 6);
    drop(log);
    // Another version: ignored, the first segment's base.
    std::fs::write(d.path().join(lifecycle::LOG_START_OFFSET_FILE), "7\n5\n").unwrap();
    assert_eq!(open(d.path()).log_start_offset(), 3);
}

#[test]
fn timestamp_lookup_never_returns_offsets_below_the_start() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ten(&mut log);
    log.delete_records_before(5).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((5, 6000)));
    assert_eq!(log.offset_for_timestamp(3000).unwrap(), Some((5, 6000)));
    assert_eq!(log.offset_for_timestamp(6500).unwrap(), Some((6, 7000)));
    assert_eq!(log.offset_for_timestamp(10_001).unwrap(), None);

    // A start in the middle of a batch: record-level, not below it.
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let mut b = make_batch(4, 2000, 10);
    log.append(&mut b, None, 0).unwrap();
    log.delete_records_before(2).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((2, 2002)));
    assert_eq!(log.offset_for_timestamp(2003).unwrap(), Some((3, 2003)));
    // The batch itself is still returned whole by a read from the start.
    assert_eq!(read_at(&log, 2).unwrap(), b);
}

#[test]
fn retention_by_time_renames_for_delayed_delete_and_rolls_when_everything_expires() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ten(&mut log);
    let policy = RetentionPolicy {
        retention_ms: 5000,
        retention_bytes: -1,
    };
    // Segment 0's largest timestamp is 2000 (8500 - 2000 > 5000); segment 2's is 4000.
    let out = log.apply_retention(&policy, 8500).unwrap();
    assert_eq!(out.segments_deleted, 1);
    assert_eq!(out.bytes_deleted, 340);
    assert_eq!(out.log_start_offset, 2);
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(bases(&log), vec![2, 4, 6, 8]);
    let pending: Vec<String> = out
        .pending_deletes
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        pending,
        vec![
            "00000000000000000000.log.deleted",
            "00000000000000000000.index.deleted",
            "00000000000000000000.timeindex.deleted",
        ]
    );
    assert!(out.pending_deletes.iter().all(|p| p.exists()));
    assert!(!segment_path(d.path(), 0, "log").exists());
    assert!(out_of_range(read_at(&log, 1)));
    // Exactly at the limit is kept (Kafka: strictly greater).
    let out = log.apply_retention(&policy, 9000).unwrap();
    assert_eq!(out.segments_deleted, 0);

    // Everything expired: a new empty active segment at the log end first.
    let out = log.apply_retention(&policy, 100_000).unwrap();
    assert_eq!(out.segments_deleted, 4);
    assert_eq!(out.bytes_deleted, 4 * 340);
    assert_eq!(out.log_start_offset, 10);
    assert_eq!(bases(&log), vec![10]);
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.size_bytes(), 0);
    // An empty active segment is never deleted.
    let out = log.apply_retention(&policy, 1_000_000).unwrap();
    assert_eq!(out.segments_deleted, 0);
    let b = fill(&mut log, &[11_000]);
    assert_eq!(read_at(&log, 10).unwrap(), b[0]);

    // Leftovers of a delayed delete are removed on open.
    assert!(!with_any(d.path(), ".deleted").is_empty());
    drop(log);
    let log = open(d.path());
    assert!(with_any(d.path(), ".deleted").is_empty());
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(log.log_end_offset(), 11);
}

#[test]
fn retention_by_size() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);
    let unlimited = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: -1,
    };
    assert_eq!(
        log.apply_retention(&unlimited, i64::MAX).unwrap(),
        RetentionOutcome {
            log_start_offset: 0,
            ..RetentionOutcome::default()
        }
    );
    // 1700 bytes, limit 1000: segments go while size - segment.size >= 1000.
    let policy = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: 1000,
    };
    let out = log.apply_retention(&policy, 0).unwrap();
    assert_eq!(out.segments_deleted, 2);
    assert_eq!(out.bytes_deleted, 680);
    assert_eq!(bases(&log), vec![4, 6, 8]);
    assert_eq!(log.size_bytes(), 1020);
    assert_eq!(read_at(&log, 4).unwrap()[..170], b[4][..]);
    // Exactly the limit left after a deletion: 1020 - 340 = 680 < 700, kept.
    let policy = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: 700,
    };
    assert_eq!(log.apply_retention(&policy, 0).unwrap().segments_deleted, 0);
    let policy = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: 680,
    };
    assert_eq!(log.apply_retention(&policy, 0).unwrap().segments_deleted, 1);
    // Size 0: everything goes, the log rolls and keeps its end.
    let policy = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: 0,
    };
    assert_eq!(log.apply_retention(&policy, 0).unwrap().segments_deleted, 2);
    assert_eq!(bases(&log), vec![10]);
    assert_eq!(log.log_start_offset(), 10);
}

#[test]
fn retention_by_time_and_size_together() {
    for (bytes, ms, expect) in [
        // Size deletes 2, time 1.
        (1000, 7000, vec![4, 6, 8]),
        // Size deletes 1, time 3.
        (1300, 3500, vec![6, 8]),
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut log = open(d.path());
        ten(&mut log);
        let policy = RetentionPolicy {
            retention_ms: ms,
            retention_bytes: bytes,
        };
        log.apply_retention(&policy, 10_000).unwrap();
        assert_eq!(bases(&log), expect, "bytes {bytes} ms {ms}");
        assert_eq!(log.log_start_offset(), expect[0]);
    }
}

#[test]
fn segments_without_timestamps_expire_by_modification_time() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    for _ in 0..4 {
        let mut b = make_batch_attr(&[-1], 100, 0);
        log.append(&mut b, None, 0).unwrap();
    }
    assert_eq!(bases(&log), vec![0, 2]);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(segment_path(d.path(), 0, "log"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    assert_eq!(log.segment_infos()[0].largest_timestamp, 1_000_000);
    let policy = RetentionPolicy {
        retention_ms: 5000,
        retention_bytes: -1,
    };
    assert_eq!(
        log.apply_retention(&policy, 1_005_000)
            .unwrap()
            .segments_deleted,
        0
    );
    // Segment 2 was modified just now (far after 1_006_000): kept.
    let out = log.apply_retention(&policy, 1_006_000).unwrap();
    assert_eq!(out.segments_deleted, 1);
    assert_eq!(bases(&log), vec![2]);
}

#[test]
fn aborted_state_below_the_start_is_dropped_producers_are_kept() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let app = |log: &mut Log, mut b: Vec<u8>| log.append(&mut b, None, 0).unwrap();
    // pid 1: transactional batch at 0, abort marker at 1.
    app(&mut log, pbatch(1, 0, 0, 1, true, 500));
    app(&mut log, marker_batch(1, 0, 0, 0, 500));
    // pid 2 at 2, then filler so that segments roll (and snapshots get written).
    app(&mut log, pbatch(2, 0, 0, 1, false, 600));
    fill(&mut log, &[700, 800, 900, 1000]);
    app(&mut log, pbatch(3, 0, 0, 1, false, 1100));
    let leo = log.log_end_offset();
    assert_eq!(log.collect_aborted_txns(0, leo).len(), 1);
    let pids = |log: &Log| {
        log.producers()
            .iter()
            .map(|p| p.producer_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(pids(&log), vec![1, 2, 3]);
    log.delete_records_before(2).unwrap();
    // KIP-360: producers outlive their batches (until producer.id.expiration.ms).
    assert_eq!(pids(&log), vec![1, 2, 3]);
    assert!(log.collect_aborted_txns(0, leo).is_empty());

    // Reloaded state (snapshot or replay) does not bring the aborted entry back.
    drop(log);
    let log = open(d.path());
    assert!(log.collect_aborted_txns(0, leo).is_empty());
    drop(log);
    let mut log = open(d.path());
    let snaps = |d: &Path| -> Vec<i64> {
        with_any(d, ".snapshot")
            .iter()
            .map(|s| s.split('.').next().unwrap().parse().unwrap())
            .collect()
    };
    assert!(snaps(d.path()).iter().any(|&o| o < 7));
    log.delete_records_before(7).unwrap();
    assert!(snaps(d.path()).iter().all(|&o| o >= 7));
    assert!(pids(&log).contains(&3));
    let before = pids(&log);
    log.close().unwrap();
    assert_eq!(pids(&open(d.path())), before);
}

fn cat(parts: &[&Vec<u8>]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// The cleaned version of segments [0, 2, 4] used below: batches 1 and 3 only.
fn cleaned(b: &[Vec<u8>]) -> Vec<CleanedSegment> {
    vec![CleanedSegment {
        base: 0,
        bytes: cat(&[&b[1], &b[3]]),
    }]
}

fn check_cleaned(log: &Log, b: &[Vec<u8>]) {
    assert_eq!(bases(log), vec![0, 6, 8]);
    let infos = log.segment_infos();
    assert_eq!(infos[0].next_offset, 6);
    assert_eq!(infos[0].size, 340);
    assert_eq!(infos[0].largest_timestamp, 4000);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 10);
    let r = log.read(0, 1, i64::MAX).unwrap();
    assert_eq!(r.first_batch_offset, Some(1));
    assert_eq!(r.bytes.to_vec(), b[1]);
    assert_eq!(log.read(2, 1, i64::MAX).unwrap().bytes.to_vec(), b[3]);
    // An offset in the gap at the end of the cleaned segment: the next segment's batch.
    assert_eq!(log.read(4, 1, i64::MAX).unwrap().bytes.to_vec(), b[6]);
    assert_eq!(
        read_at(log, 0).unwrap(),
        cat(&[&b[1], &b[3], &b[6], &b[7], &b[8], &b[9]])
    );
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((1, 2000)));
    assert_eq!(log.offset_for_timestamp(2500).unwrap(), Some((3, 4000)));
    assert_eq!(log.offset_for_timestamp(4500).unwrap(), Some((6, 7000)));
}

#[test]
fn replace_segments_swaps_in_cleaned_data() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);
    log.replace_segments(&[0, 2, 4], cleaned(&b)).unwrap();
    check_cleaned(&log, &b);
    for n in names(d.path()) {
        assert!(
            !n.ends_with(".cleaned") && !n.ends_with(".swap") && n != SWAP_MANIFEST_FILE,
            "{n}"
        );
    }
    assert!(!segment_path(d.path(), 2, "log").exists());
    assert!(!segment_path(d.path(), 4, "index").exists());
    // Unclean restart (full recovery scan from the recovery point) keeps the gap.
    drop(log);
    let log = open(d.path());
    check_cleaned(&log, &b);
    log.close().unwrap();
    let log = open(d.path());
    check_cleaned(&log, &b);
    // A rebuilt cleaned segment below the recovery point keeps its gap and the later
    // segments (a gap above the recovery point would be lost data).
    drop(log);
    std::fs::remove_file(segment_path(d.path(), 0, "index")).unwrap();
    let log = open(d.path());
    check_cleaned(&log, &b);
    // Retention treats the cleaned segment like any other.
    let mut log = log;
    let out = log
        .apply_retention(
            &RetentionPolicy {
                retention_ms: 6500,
                retention_bytes: -1,
            },
            10_600,
        )
        .unwrap();
    assert_eq!(out.segments_deleted, 1);
    assert_eq!(log.log_start_offset(), 6);
    // Appends still work after it.
    let more = fill(&mut log, &[11_000]);
    assert_eq!(read_at(&log, 10).unwrap(), more[0]);
}

#[test]
fn replace_segments_carries_aborted_transactions() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let app = |log: &mut Log, mut b: Vec<u8>| {
        log.append(&mut b, None, 0).unwrap();
        b
    };
    let mut stored = vec![app(&mut log, pbatch(1, 0, 0, 1, true, 500))];
    stored.extend(fill(&mut log, &[600, 700]));
    stored.push(app(&mut log, marker_batch(1, 0, 0, 0, 800)));
    stored.extend(fill(&mut log, &[900, 1000, 1100]));
    let infos = log.segment_infos();
    assert!(infos.len() >= 3);
    let marker_seg = infos.iter().position(|s| s.next_offset > 3).unwrap();
    assert!(marker_seg > 0, "the marker must be in a later segment");
    let run: Vec<i64> = infos[..=marker_seg].iter().map(|s| s.base).collect();
    let end = infos[marker_seg].next_offset;
    let expect = log.collect_aborted_txns(0, 100);
    assert_eq!(expect.len(), 1);
    // Identity cleaning of the run into one segment.
    let bytes: Vec<u8> = stored[..end as usize].concat();
    log.replace_segments(&run, vec![CleanedSegment { base: 0, bytes }])
        .unwrap();
    assert_eq!(log.collect_aborted_txns(0, 100), expect);
    assert!(segment_path(d.path(), 0, "txnindex").exists());
    assert!(!segment_path(d.path(), run[marker_seg], "txnindex").exists());
    drop(log);
    let log = open(d.path());
    assert_eq!(log.collect_aborted_txns(0, 100), expect);
    assert_eq!(log.read(3, 1, i64::MAX).unwrap().bytes.to_vec(), stored[3]);
}

#[test]
fn replace_segments_refuses_changed_segments_and_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);
    let before = read_at(&log, 0).unwrap();
    let changed = |r: Result<(), LogError>| matches!(r, Err(LogError::SegmentsChanged(_)));
    // Includes the active segment.
    assert!(changed(log.replace_segments(
        &[6, 8],
        vec![CleanedSegment {
            base: 6,
            bytes: b[6].clone()
        }]
    )));
    // Not consecutive.
    assert!(changed(log.replace_segments(&[2, 6], cleaned(&b))));
    // A batch beyond the run's end, a base other than the first old one.
    let bad = |log: &mut Log, base: i64, bytes: Vec<u8>| {
        matches!(
            log.replace_segments(&[0, 2], vec![CleanedSegment { base, bytes }]),
            Err(LogError::InvalidArgument(_))
        )
    };
    assert!(bad(&mut log, 0, b[4].clone()));
    assert!(bad(&mut log, 1, b[1].clone()));
    assert!(bad(&mut log, 0, b[1][..100].to_vec()));
    let mut corrupt = b[1].clone();
    corrupt[100] ^= 1;
    assert!(bad(&mut log, 0, corrupt));
    assert!(matches!(
        log.replace_segments(&[], Vec::new()),
        Err(LogError::InvalidArgument(_))
    ));
    assert_eq!(read_at(&log, 0).unwrap(), before);
    assert_eq!(bases(&log), vec![0, 2, 4, 6, 8]);
    // A swap that failed after its commit point is pending: no new one until reopened.
    let manifest = d.path().join(SWAP_MANIFEST_FILE);
    std::fs::write(&manifest, "1\nold 0\nnew 0\n").unwrap();
    assert!(changed(log.replace_segments(&[0, 2, 4], cleaned(&b))));
    std::fs::remove_file(&manifest).unwrap();

    // Retention deleted the first segment since the cleaner looked.
    log.apply_retention(
        &RetentionPolicy {
            retention_ms: 7000,
            retention_bytes: -1,
        },
        10_000,
    )
    .unwrap();
    assert_eq!(bases(&log), vec![2, 4, 6, 8]);
    assert!(changed(log.replace_segments(&[0, 2, 4], cleaned(&b))));
    assert_eq!(bases(&log), vec![2, 4, 6, 8]);
    assert!(with_any(d.path(), ".cleaned").is_empty());
    assert!(with_any(d.path(), ".swap").is_empty());
}

/// A log with the ten batches, closed, plus the files `replace_segments` would have
/// staged for [`cleaned`] (taken from a log where it ran).
fn crashed_mid_swap(d: &Path) -> Vec<Vec<u8>> {
    let reference = tempfile::tempdir().unwrap();
    let mut r = open(reference.path());
    let b = ten(&mut r);
    r.replace_segments(&[0, 2, 4], cleaned(&b)).unwrap();
    r.close().unwrap();

    let mut log = open(d);
    ten(&mut log);
    drop(log);
    for suffix in ["log", "index", "timeindex"] {
        let from = segment_path(reference.path(), 0, suffix);
        let mut to: PathBuf = segment_path(d, 0, suffix);
        to.as_mut_os_string().push(SWAP_SUFFIX);
        std::fs::copy(from, to).unwrap();
    }
    let mut txn = segment_path(d, 0, "txnindex");
    txn.as_mut_os_string().push(SWAP_SUFFIX);
    std::fs::write(txn, b"").unwrap();
    // replace_segments made the run durable and moved the recovery point past it first.
    checkpoint::write_offset_file(
        &d.join(checkpoint::RECOVERY_POINT_FILE),
        checkpoint::RECOVERY_POINT_VERSION,
        6,
    )
    .unwrap();
    b
}

#[test]
fn interrupted_swap_without_manifest_is_rolled_back() {
    let d = tempfile::tempdir().unwrap();
    let b = crashed_mid_swap(d.path());
    let mut half = segment_path(d.path(), 2, "log");
    half.as_mut_os_string().push(".cleaned");
    std::fs::write(&half, b"partial").unwrap();
    let log = open(d.path());
    assert_eq!(bases(&log), vec![0, 2, 4, 6, 8]);
    assert_eq!(read_at(&log, 0).unwrap(), b.concat());
    assert!(with_any(d.path(), ".swap").is_empty());
    assert!(with_any(d.path(), ".cleaned").is_empty());
}

#[test]
fn interrupted_swap_with_manifest_is_completed() {
    // Crash right after the commit point.
    let d = tempfile::tempdir().unwrap();
    let b = crashed_mid_swap(d.path());
    std::fs::write(d.path().join(SWAP_MANIFEST_FILE), "1\nold 0 2 4\nnew 0\n").unwrap();
    let log = open(d.path());
    check_cleaned(&log, &b);
    assert!(!d.path().join(SWAP_MANIFEST_FILE).exists());
    assert!(with_any(d.path(), ".swap").is_empty());
    assert!(!segment_path(d.path(), 2, "log").exists());
    assert!(!segment_path(d.path(), 4, "timeindex").exists());

    // Crash in the middle of the completion: the new .log in place, segment 2 removed,
    // the index renames and segment 4's removal not done yet.
    let d = tempfile::tempdir().unwrap();
    let b = crashed_mid_swap(d.path());
    std::fs::write(d.path().join(SWAP_MANIFEST_FILE), "1\nold 0 2 4\nnew 0\n").unwrap();
    let mut swap_log = segment_path(d.path(), 0, "log");
    swap_log.as_mut_os_string().push(SWAP_SUFFIX);
    std::fs::rename(&swap_log, segment_path(d.path(), 0, "log")).unwrap();
    for suffix in ["log", "index", "timeindex"] {
        std::fs::remove_file(segment_path(d.path(), 2, suffix)).unwrap();
    }
    let log = open(d.path());
    check_cleaned(&log, &b);
    assert!(!segment_path(d.path(), 4, "log").exists());

    // An unreadable manifest stops the open instead of guessing.
    let d = tempfile::tempdir().unwrap();
    crashed_mid_swap(d.path());
    std::fs::write(d.path().join(SWAP_MANIFEST_FILE), "1\nold 0 x\n").unwrap();
    assert!(matches!(
        Log::open(d.path(), cfg(), 0),
        Err(LogError::CorruptSwapManifest { .. })
    ));
}

#[test]
fn cleaner_checkpoint_persists_and_follows_truncation() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ten(&mut log);
    assert_eq!(log.cleaner_checkpoint(), None);
    log.set_cleaner_checkpoint(8).unwrap();
    assert!(matches!(
        log.set_cleaner_checkpoint(-1),
        Err(LogError::InvalidArgument(_))
    ));
    drop(log);
    let mut log = open(d.path());
    assert_eq!(log.cleaner_checkpoint(), Some(8));
    log.truncate_to(5).unwrap();
    assert_eq!(log.cleaner_checkpoint(), Some(5));
    log.truncate_to(7).unwrap();
    assert_eq!(log.cleaner_checkpoint(), Some(5));
    log.close().unwrap();
    assert_eq!(open(d.path()).cleaner_checkpoint(), Some(5));
}

#[test]
fn truncation_below_the_start_restarts_there() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ten(&mut log);
    log.delete_records_before(5).unwrap();
    // Inside the batch range above the start: the start stays.
    log.truncate_to(7).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 7));
    // At the start: the log is emptied and restarts at that offset.
    log.truncate_to(5).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 5));
    drop(log);
    let log = open(d.path());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 5));
}

/// Makes every write of the checkpoint at `file` fail: its temp file's name is taken by a
/// directory, so creating the temp file fails (EISDIR), as it would on a full disk.
fn block_writes_of(dir: &Path, file: &str) -> PathBuf {
    let blocker = dir.join(file).with_extension("tmp");
    std::fs::create_dir(&blocker).unwrap();
    blocker
}

#[test]
fn delete_records_changes_nothing_when_the_log_start_cannot_be_written() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);
    let blocker = block_writes_of(d.path(), LOG_START_OFFSET_FILE);
    let before = names(d.path());

    for offset in [5, 4, -1] {
        assert!(matches!(
            log.delete_records_before(offset),
            Err(LogError::Io { .. })
        ));
    }
    // Nothing changed, in memory or on disk.
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(bases(&log), vec![0, 2, 4, 6, 8]);
    assert_eq!(read_at(&log, 0).unwrap()[..170], b[0][..]);
    assert_eq!(names(d.path()), before);
    // Nor after a crash.
    drop(log);
    let mut log = open(d.path());
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(bases(&log), vec![0, 2, 4, 6, 8]);

    // Once the checkpoint can be written again, the same call works.
    std::fs::remove_dir(&blocker).unwrap();
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert_eq!(bases(&log), vec![4, 6, 8]);
    drop(log);
    let log = open(d.path());
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(bases(&log), vec![4, 6, 8]);
}

/// Retention needs no write to take effect: with the log-start checkpoint unwritable (as
/// on a full disk) it still deletes, which is how it frees space, and a crash right after
/// finds the same log start (the first segment's base).
#[test]
fn retention_frees_segments_when_nothing_can_be_written() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    ten(&mut log);
    block_writes_of(d.path(), LOG_START_OFFSET_FILE);
    let by_size = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: 1000,
    };
    let out = log.apply_retention(&by_size, 20_000).unwrap();
    assert_eq!(out.segments_deleted, 2);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(bases(&log), vec![4, 6, 8]);
    assert!(out_of_range(read_at(&log, 3)));
    drop(log);
    let mut log = open(d.path());
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(bases(&log), vec![4, 6, 8]);

    // Everything expired, and no new segment can be made (its index files cannot be
    // created): all but the active segment go now.
    for base in [10, 11] {
        for suffix in ["index", "timeindex"] {
            std::fs::create_dir(segment_path(d.path(), base, suffix)).unwrap();
        }
    }
    let all = RetentionPolicy {
        retention_ms: 1,
        retention_bytes: -1,
    };
    let out = log.apply_retention(&all, 20_000).unwrap();
    assert_eq!(out.segments_deleted, 2);
    assert_eq!(bases(&log), vec![8]);
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(log.log_end_offset(), 10);
}

/// A crash after the log start became durable but before the segments below it were
/// deleted: open keeps them (below the start, unreadable) and retention deletes them.
#[test]
fn segments_left_below_a_durable_log_start_are_deleted_by_retention() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);
    drop(log);
    checkpoint::write_offset_file(
        &d.path().join(LOG_START_OFFSET_FILE),
        LOG_START_OFFSET_VERSION,
        5,
    )
    .unwrap();
    let mut log = open(d.path());
    assert_eq!(log.log_start_offset(), 5);
    assert!(out_of_range(read_at(&log, 3)));
    assert_eq!(read_at(&log, 5).unwrap()[..170], b[5][..]);
    let keep_all = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: -1,
    };
    let out = log.apply_retention(&keep_all, 20_000).unwrap();
    assert_eq!(out.segments_deleted, 2);
    assert_eq!(bases(&log), vec![4, 6, 8]);
    assert_eq!(log.log_start_offset(), 5);
}

/// The cleaner's swap fails before its commit point (here: the manifest cannot be
/// written): the old segments stay, in memory and on disk, no staged file is left to hold
/// space, and the same swap succeeds once writes work again.
#[test]
fn a_segment_swap_failing_before_its_commit_point_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);
    let before = names(d.path());
    for blocked in [
        // Staging the cleaned files.
        segment_path(d.path(), 0, "log.cleaned"),
        // Writing the manifest (the commit point).
        d.path().join(format!("{SWAP_MANIFEST_FILE}.tmp")),
    ] {
        std::fs::create_dir(&blocked).unwrap();
        assert!(matches!(
            log.replace_segments(&[0, 2, 4], cleaned(&b)),
            Err(LogError::Io { .. })
        ));
        std::fs::remove_dir(&blocked).unwrap();
        assert_eq!(names(d.path()), before, "blocked {}", blocked.display());
        assert_eq!(bases(&log), vec![0, 2, 4, 6, 8]);
        for (i, batch) in b.iter().enumerate() {
            assert_eq!(&read_at(&log, i as i64).unwrap()[..170], &batch[..]);
        }
    }
    log.replace_segments(&[0, 2, 4], cleaned(&b)).unwrap();
    check_cleaned(&log, &b);
}

/// A swap that fails after its commit point (here: an old segment's file cannot be
/// removed) leaves a log that still reads correctly, and the next `replace_segments`
/// finishes it (answering SegmentsChanged so that the cleaner re-plans) — no reopen.
#[test]
fn a_segment_swap_failing_after_its_commit_point_is_finished_by_the_next_call() {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path());
    let b = ten(&mut log);
    let stuck = segment_path(d.path(), 4, "index");
    std::fs::remove_file(&stuck).unwrap();
    std::fs::create_dir(&stuck).unwrap();
    assert!(matches!(
        log.replace_segments(&[0, 2, 4], cleaned(&b)),
        Err(LogError::Io { .. })
    ));
    assert!(d.path().join(SWAP_MANIFEST_FILE).exists());
    for (i, batch) in b.iter().enumerate() {
        assert_eq!(&read_at(&log, i as i64).unwrap()[..170], &batch[..]);
    }
    // Still stuck: the call fails again, changing nothing.
    assert!(matches!(
        log.replace_segments(&[0, 2, 4], cleaned(&b)),
        Err(LogError::Io { .. })
    ));
    std::fs::remove_dir(&stuck).unwrap();
    assert!(matches!(
        log.replace_segments(&[0, 2, 4], cleaned(&b)),
        Err(LogError::SegmentsChanged(_))
    ));
    check_cleaned(&log, &b);
    assert!(!d.path().join(SWAP_MANIFEST_FILE).exists());
    // Appends and a restart see the same log.
    let more = fill(&mut log, &[11_000]);
    assert_eq!(read_at(&log, 10).unwrap(), more[0]);
    drop(log);
    let log = open(d.path());
    assert_eq!(bases(&log), vec![0, 6, 8, 10]);
    assert_eq!(read_at(&log, 10).unwrap(), more[0]);
}
