//! The on-disk formats against bytes real Kafka 4.4.0 wrote (`tests/fixtures/kafka-4.4`:
//! topic `fx`, `index.interval.bytes=150`, an idempotent producer, four transactions of
//! which two aborted, a gzip batch; Kafka rolled at the first commit marker, whose
//! timestamp is a week after the first batch's), and the conversion of a directory the
//! previous Arus release wrote (`tests/fixtures/arus-e4e557b`).

use std::path::{Path, PathBuf};

use super::*;
use crate::segment::{IndexProblem, LEGACY_INDEX_HEADER, LEGACY_TIME_INDEX_HEADER};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn kafka_dir() -> PathBuf {
    fixture("kafka-4.4/fx-0")
}

fn kafka_cfg() -> LogConfig {
    LogConfig {
        index_interval_bytes: 150,
        ..LogConfig::default()
    }
}

/// The batches of a `.log` file.
fn batches_of(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let h = batch::parse_header(&b[pos..]).unwrap();
        out.push(b[pos..pos + h.size].to_vec());
        pos += h.size;
    }
    out
}

const KAFKA_FILES: [&str; 8] = [
    "00000000000000000000.log",
    "00000000000000000000.index",
    "00000000000000000000.timeindex",
    "00000000000000000033.log",
    "00000000000000000033.index",
    "00000000000000000033.timeindex",
    "00000000000000000033.txnindex",
    "leader-epoch-checkpoint",
];

fn copy_dir(from: &Path, to: &Path, only: Option<&[&str]>) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if only.is_none_or(|o| o.contains(&name.as_str())) {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn assert_same_file(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(x == y, "{} differs from {}", a.display(), b.display());
}

#[test]
fn appending_kafkas_batches_writes_kafkas_bytes() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), kafka_cfg(), 0).unwrap();
    log.become_leader(0).unwrap();
    for name in ["00000000000000000000.log", "00000000000000000033.log"] {
        for mut b in batches_of(&kafka_dir().join(name)) {
            log.append(&mut b, Some(0), 0).unwrap();
        }
    }
    assert_eq!(log.segment_count(), 2, "rolled where Kafka did");
    // While active, the indexes are preallocated like Kafka's.
    let active = d.path().join("00000000000000000033.index");
    assert_eq!(std::fs::metadata(&active).unwrap().len(), 10 << 20);
    let active_time = d.path().join("00000000000000000033.timeindex");
    assert_eq!(
        std::fs::metadata(&active_time).unwrap().len(),
        (10 << 20) / 12 * 12
    );
    log.close().unwrap();
    for f in KAFKA_FILES {
        assert_same_file(&d.path().join(f), &kafka_dir().join(f));
    }
}

#[test]
fn reads_kafkas_index_files() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&kafka_dir(), d.path(), Some(&KAFKA_FILES));
    for (base, entries) in [(0, 7), (33, 6)] {
        let (seg, problem) = Segment::open(d.path(), base, 0).unwrap();
        assert_eq!(problem, None, "segment {base}");
        assert_eq!(seg.offset_index.len(), entries);
        let ib = std::fs::read(&seg.index_path).unwrap();
        assert_eq!(segment::encode_offset_index(&seg.offset_index), ib);
        let tb = std::fs::read(&seg.time_path).unwrap();
        assert_eq!(segment::encode_time_index(&seg.time_index), tb);
    }
    // Kafka's first entries of segment 0 (DumpLogSegments: "offset: 9 position: 231").
    let (seg, _) = Segment::open(d.path(), 0, 0).unwrap();
    assert_eq!(seg.offset_index[0], (9, 231));
    // Lookups start at the batch holding the offset (its base read once from the header),
    // not one index interval earlier.
    assert_eq!(seg.floor_position(7).unwrap(), 231);
    assert_eq!(seg.floor_position(9).unwrap(), 231);
    assert_eq!(seg.floor_position(4).unwrap(), 0);
    assert_eq!(seg.floor_position(10).unwrap(), 462);
    assert_eq!(seg.floor_position(12).unwrap(), 462);
    assert_eq!(seg.max_timestamp, 1_700_000_001_002);
    // The whole log through Kafka's indexes: every offset is found.
    let log = Log::open(d.path(), kafka_cfg(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 50);
    for o in 0..50 {
        let r = log.read(o, 1, i64::MAX).unwrap();
        let h = batch::parse_header(&r.bytes).unwrap();
        assert!(h.base_offset <= o && o <= h.last_offset(), "offset {o}");
    }
    // Two aborted transactions of producer 1, as Kafka's .txnindex says.
    let aborted = log.collect_aborted_txns(0, 50);
    assert_eq!(aborted.len(), 2);
    assert_eq!((aborted[0].first_offset, aborted[0].last_offset), (34, 37));
    assert_eq!(aborted[0].last_stable_offset, 38);
    assert_eq!(log.leader_epochs(), &[(0, 0)]);
    assert_eq!(
        log.offset_for_timestamp(1_700_000_000_255).unwrap(),
        Some((15, 1_700_000_000_300))
    );
    log.close().unwrap();
    // Recovery (no clean-shutdown marker of Arus's) rebuilt them to the same bytes.
    for f in KAFKA_FILES {
        assert_same_file(&d.path().join(f), &kafka_dir().join(f));
    }
}

#[test]
fn zero_filled_tail_of_a_preallocated_index() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&kafka_dir(), d.path(), Some(&KAFKA_FILES));
    let (want, _) = Segment::open(d.path(), 33, 0).unwrap();
    for (name, len) in [
        ("00000000000000000033.index", 10 << 20),
        ("00000000000000000033.timeindex", (10 << 20) / 12 * 12),
    ] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.path().join(name))
            .unwrap();
        f.set_len(len).unwrap();
    }
    let (seg, problem) = Segment::open(d.path(), 33, 0).unwrap();
    assert_eq!(problem, None);
    assert_eq!(seg.offset_index, want.offset_index);
    assert_eq!(seg.time_index, want.time_index);
    // Anything but zeros after the entries is corruption: rebuilt.
    let p = d.path().join("00000000000000000033.index");
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9], 6 * 8)
        .unwrap();
    let (_, problem) = Segment::open(d.path(), 33, 0).unwrap();
    assert!(
        matches!(problem, Some(IndexProblem::Invalid(_))),
        "{problem:?}"
    );
}

#[test]
fn corrupt_index_is_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&kafka_dir(), d.path(), Some(&KAFKA_FILES));
    let p = d.path().join("00000000000000000000.index");
    // The last entry points into the middle of a batch (like Kafka, only the last entry's
    // batch is read at open).
    let mut b = std::fs::read(&p).unwrap();
    b[52..56].copy_from_slice(&1545u32.to_be_bytes());
    std::fs::write(&p, &b).unwrap();
    let (_, problem) = Segment::open(d.path(), 0, 0).unwrap();
    assert!(matches!(problem, Some(IndexProblem::Invalid(_))));
    // A size that is not whole entries.
    std::fs::write(&p, &b[..13]).unwrap();
    let (_, problem) = Segment::open(d.path(), 0, 0).unwrap();
    assert!(matches!(problem, Some(IndexProblem::Invalid(_))));
    Log::open(d.path(), kafka_cfg(), 0)
        .unwrap()
        .close()
        .unwrap();
    assert_same_file(&p, &kafka_dir().join("00000000000000000000.index"));
}

/// The previous release's directory, with its clean-shutdown marker (`clean`) or without.
fn legacy_dir(clean: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture("arus-e4e557b/p-0"), d.path(), None);
    if !clean {
        std::fs::remove_file(d.path().join(checkpoint::CLEAN_SHUTDOWN_FILE)).unwrap();
    }
    d
}

fn legacy_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 1200,
        index_interval_bytes: 150,
        ..LogConfig::default()
    }
}

/// Every index entry of a closed log points at a batch ending at its offset, and every
/// time entry at a batch ending at its offset with that max timestamp so far (what
/// `kafka-dump-log --verify-index-only` checks).
fn assert_kafka_indexes(dir: &Path, bases: &[i64]) {
    for &base in bases {
        let idx = std::fs::read(segment::segment_path(dir, base, "index")).unwrap();
        let tix = std::fs::read(segment::segment_path(dir, base, "timeindex")).unwrap();
        assert_ne!(idx.get(..8), Some(&LEGACY_INDEX_HEADER[..]));
        assert_ne!(tix.get(..8), Some(&LEGACY_TIME_INDEX_HEADER[..]));
        let batches = batches_of(&segment::segment_path(dir, base, "log"));
        let mut positions = Vec::new();
        let mut pos = 0u32;
        for b in &batches {
            let h = batch::parse_header(b).unwrap();
            positions.push((pos, h));
            pos += h.size as u32;
        }
        for e in idx.chunks_exact(8) {
            let rel = u32::from_be_bytes(e[..4].try_into().unwrap());
            let p = u32::from_be_bytes(e[4..].try_into().unwrap());
            let (_, h) = positions
                .iter()
                .find(|(q, _)| *q == p)
                .expect("batch start");
            assert_eq!(h.last_offset(), base + i64::from(rel));
        }
        for e in tix.chunks_exact(12) {
            let ts = i64::from_be_bytes(e[..8].try_into().unwrap());
            let off = base + i64::from(u32::from_be_bytes(e[8..].try_into().unwrap()));
            let (_, h) = positions
                .iter()
                .find(|(_, h)| h.last_offset() == off)
                .unwrap();
            assert_eq!(h.max_timestamp, ts);
        }
    }
}

#[test]
fn previous_release_directory_converts_on_first_open() {
    for clean in [true, false] {
        let d = legacy_dir(clean);
        let logs: Vec<Vec<u8>> = ["00000000000000000000.log", "00000000000000000035.log"]
            .iter()
            .map(|n| std::fs::read(d.path().join(n)).unwrap())
            .collect();
        let log = Log::open(d.path(), legacy_cfg(), 0).unwrap();
        assert_eq!(log.log_end_offset(), 50);
        assert_eq!(log.segment_count(), 2);
        // Every offset readable; the aborted transactions and max timestamp as before.
        for o in 0..50 {
            let r = log.read(o, 1, i64::MAX).unwrap();
            let h = batch::parse_header(&r.bytes).unwrap();
            assert!(h.base_offset <= o && o <= h.last_offset());
        }
        assert_eq!(log.collect_aborted_txns(0, 50).len(), 2);
        assert_eq!(
            log.max_timestamp_offset().unwrap(),
            Some((49, 1_700_000_000_410))
        );
        assert_eq!(log.leader_epochs(), &[(0, 0)]);
        log.close().unwrap();
        assert_kafka_indexes(d.path(), &[0, 35]);
        // The .log files are untouched, the leader epochs written in Kafka's format.
        for (n, want) in ["00000000000000000000.log", "00000000000000000035.log"]
            .iter()
            .zip(&logs)
        {
            assert_eq!(&std::fs::read(d.path().join(n)).unwrap(), want);
        }
        assert_eq!(
            std::fs::read_to_string(d.path().join("leader-epoch-checkpoint")).unwrap(),
            "0\n1\n0 0\n"
        );
    }
}

#[test]
fn conversion_interrupted_by_a_crash_finishes_on_the_next_open() {
    // The finished conversion, for reference.
    let done = legacy_dir(true);
    Log::open(done.path(), legacy_cfg(), 0)
        .unwrap()
        .close()
        .unwrap();
    // A crash after segment 0's offset index was renamed into place, while its time
    // index was still being written (`.tmp`) and segment 35 was not reached; the
    // clean-shutdown marker of the previous release is still there.
    let d = legacy_dir(true);
    std::fs::copy(
        done.path().join("00000000000000000000.index"),
        d.path().join("00000000000000000000.index"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("00000000000000000000.timeindex.tmp"),
        [0u8; 7],
    )
    .unwrap();
    let log = Log::open(d.path(), legacy_cfg(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 50);
    log.close().unwrap();
    assert!(!d.path().join("00000000000000000000.timeindex.tmp").exists());
    for f in [
        "00000000000000000000.index",
        "00000000000000000000.timeindex",
        "00000000000000000035.index",
        "00000000000000000035.timeindex",
        "00000000000000000000.txnindex",
        "00000000000000000035.txnindex",
        "leader-epoch-checkpoint",
    ] {
        assert_same_file(&d.path().join(f), &done.path().join(f));
    }
}

#[test]
fn leader_epoch_checkpoint_follows_the_log() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("leader-epoch-checkpoint");
    let mut log = Log::open(d.path(), kafka_cfg(), 0).unwrap();
    log.become_leader(0).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n1\n0 0\n");
    for mut b in batches_of(&kafka_dir().join("00000000000000000000.log")) {
        log.append(&mut b, Some(0), 0).unwrap();
    }
    log.delete_records_before(12).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n1\n0 12\n");
    log.truncate_to(5).unwrap();
    assert_eq!(log.leader_epochs(), &[]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n0\n");
    let mut b = batches_of(&kafka_dir().join("00000000000000000000.log")).remove(0);
    log.append(&mut b, Some(3), 0).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n1\n3 5\n");
    log.close().unwrap();
    // A lost checkpoint is rebuilt from the first batch's epoch at open.
    std::fs::remove_file(&path).unwrap();
    let log = Log::open(d.path(), kafka_cfg(), 0).unwrap();
    assert_eq!(log.leader_epochs(), &[(3, 5)]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n1\n3 5\n");
}

#[test]
fn a_wrong_middle_index_entry_is_not_used_as_a_start() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&kafka_dir(), d.path(), Some(&KAFKA_FILES));
    let p = d.path().join("00000000000000000000.index");
    let mut b = std::fs::read(&p).unwrap();
    // Entry 2 (offset 19) points into the middle of a batch; only the last entry is
    // checked at open, as in Kafka.
    b[20..24].copy_from_slice(&700u32.to_be_bytes());
    std::fs::write(&p, &b).unwrap();
    let (seg, problem) = Segment::open(d.path(), 0, 0).unwrap();
    assert_eq!(problem, None);
    assert_eq!(seg.floor_position(17).unwrap(), 462);
    std::fs::write(d.path().join(checkpoint::CLEAN_SHUTDOWN_FILE), "1\n50\n").unwrap();
    std::fs::write(d.path().join(checkpoint::RECOVERY_POINT_FILE), "1\n50\n").unwrap();
    let log = Log::open(d.path(), kafka_cfg(), 0).unwrap();
    for o in 0..50 {
        let r = log.read(o, 1, i64::MAX).unwrap();
        let h = batch::parse_header(&r.bytes).unwrap();
        assert!(h.base_offset <= o && o <= h.last_offset(), "offset {o}");
        let s = log.read_slice(o, 300, i64::MAX).unwrap().unwrap();
        // Whole batches from the one holding `o`, ending where `next_offset` starts.
        let bytes = s.read_to_bytes().unwrap();
        let mut pos = 0;
        let mut next = -1;
        while pos < bytes.len() {
            let h = batch::parse_header(&bytes[pos..]).unwrap();
            if pos == 0 {
                assert!(h.base_offset <= o && o <= h.last_offset());
            }
            next = h.last_offset() + 1;
            pos += h.size;
        }
        assert_eq!(pos, bytes.len());
        assert_eq!(s.next_offset, next, "offset {o}");
    }
}
