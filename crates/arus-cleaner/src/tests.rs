//! End-to-end rounds over an in-memory log.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arus_records::{BatchBuilder, Compression, ControlType, RecordBatch, batches};
use bytes::Bytes;

use crate::batch::{plain_section, scan_records};
use crate::throttle::{Clock, SystemClock};
use crate::{
    AbortedTxn, CleanResult, CleanedSegmentInfo, CleanerConfig, CleanerError, CleanerSource,
    LastRecord, OffsetMap, SegmentMeta, Throttler, clean_log, delete_horizon_ms,
};

struct MemSeg {
    base: i64,
    next_offset: i64,
    data: Vec<u8>,
    largest_ts: i64,
    aborted: Vec<AbortedTxn>,
}

/// A log in memory: segments, a transaction index per segment, a checkpoint.
struct MemLog {
    segs: Vec<MemSeg>,
    checkpoint: Option<i64>,
    producers: HashMap<i64, LastRecord>,
    next: i64,
    lso: Option<i64>,
    replaced: usize,
    /// `check_abort` fails once this many calls have passed.
    abort_after: Cell<Option<usize>>,
}

impl MemLog {
    fn new() -> MemLog {
        MemLog {
            segs: vec![MemSeg {
                base: 0,
                next_offset: 0,
                data: Vec::new(),
                largest_ts: -1,
                aborted: Vec::new(),
            }],
            checkpoint: None,
            producers: HashMap::new(),
            next: 0,
            lso: None,
            replaced: 0,
            abort_after: Cell::new(None),
        }
    }

    /// Appends a built batch at the log end; returns its (base, last) offsets.
    fn append(&mut self, batch: Bytes) -> (i64, i64) {
        let mut b = batch.to_vec();
        arus_records::set_base_offset(&mut b, self.next);
        let rb = RecordBatch::new(Bytes::from(b)).unwrap();
        let (base, last) = (rb.base_offset(), rb.last_offset());
        let seg = self.segs.last_mut().unwrap();
        seg.data.extend_from_slice(rb.as_bytes());
        seg.largest_ts = seg.largest_ts.max(rb.max_timestamp());
        seg.next_offset = last + 1;
        self.next = last + 1;
        (base, last)
    }

    fn put(&mut self, ts: i64, kvs: &[(&str, Option<&str>)], codec: Compression) -> (i64, i64) {
        let mut b = BatchBuilder::new(codec, ts);
        for (k, v) in kvs {
            b.push(ts, Some(k.as_bytes()), v.map(str::as_bytes), &[]);
        }
        self.append(b.build().unwrap())
    }

    fn txn_put(&mut self, pid: i64, ts: i64, kvs: &[(&str, &str)]) -> (i64, i64) {
        let mut b = BatchBuilder::new(Compression::None, ts).producer(pid, 0, 0, true);
        for (k, v) in kvs {
            b.push(ts, Some(k.as_bytes()), Some(v.as_bytes()), &[]);
        }
        self.append(b.build().unwrap())
    }

    fn marker(&mut self, pid: i64, kind: ControlType, ts: i64) -> i64 {
        let (o, _) = self.append(arus_records::control_record_batch(kind, pid, 0, 0, ts));
        o
    }

    fn roll(&mut self) {
        self.segs.push(MemSeg {
            base: self.next,
            next_offset: self.next,
            data: Vec::new(),
            largest_ts: -1,
            aborted: Vec::new(),
        });
    }

    /// Every batch of the non-active segments, CRC-checked.
    fn batches(&self) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for s in &self.segs[..self.segs.len() - 1] {
            for b in batches(Bytes::from(s.data.clone())) {
                let b = b.unwrap();
                b.verify_crc().unwrap();
                out.push(b);
            }
        }
        out
    }

    /// (offset, key, value) of every data record in the non-active segments.
    fn records(&self) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        for b in self.batches() {
            if b.is_control() {
                continue;
            }
            let s = plain_section(&b).unwrap();
            for r in scan_records(&s, b.record_count(), b.last_offset_delta()).unwrap() {
                let key = String::from_utf8(s[r.key.clone().unwrap()].to_vec()).unwrap();
                let value = r.has_value.then(|| {
                    // value follows the key: re-read it through the arus-records parser
                    // is not possible with gaps, so decode by hand.
                    let body = &s[r.after_timestamp.clone()];
                    decode_value(body)
                });
                out.push((b.base_offset() + i64::from(r.offset_delta), key, value));
            }
        }
        out
    }

    fn markers(&self) -> Vec<(i64, i64, Option<i64>, i32)> {
        self.batches()
            .iter()
            .filter(|b| b.is_control())
            .map(|b| {
                (
                    b.base_offset(),
                    b.producer_id(),
                    delete_horizon_ms(b),
                    b.record_count(),
                )
            })
            .collect()
    }
}

fn varint(b: &[u8], pos: &mut usize) -> i64 {
    let mut raw = 0u64;
    let mut shift = 0;
    loop {
        let x = b[*pos];
        *pos += 1;
        raw |= u64::from(x & 0x7f) << shift;
        shift += 7;
        if x & 0x80 == 0 {
            return ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        }
    }
}

/// Value of a record body starting at its offset delta.
fn decode_value(body: &[u8]) -> String {
    let mut p = 0;
    varint(body, &mut p); // offset delta
    let kl = varint(body, &mut p);
    p += kl.max(0) as usize;
    let vl = varint(body, &mut p) as usize;
    String::from_utf8(body[p..p + vl].to_vec()).unwrap()
}

impl CleanerSource for MemLog {
    type Sink = Vec<u8>;

    fn segments(&self) -> Result<Vec<SegmentMeta>, CleanerError> {
        Ok(self
            .segs
            .iter()
            .map(|s| SegmentMeta {
                base: s.base,
                next_offset: s.next_offset,
                size: s.data.len() as u64,
                largest_timestamp: s.largest_ts,
                first_batch_timestamp: batches(Bytes::from(s.data.clone()))
                    .next()
                    .and_then(Result::ok)
                    .map(|b| b.base_timestamp()),
            })
            .collect())
    }
    fn first_dirty_offset(&self) -> Option<i64> {
        self.checkpoint
    }
    fn last_stable_offset(&self) -> i64 {
        self.lso.unwrap_or(self.next)
    }
    fn read(&self, base: i64, position: u64, max: usize) -> Result<Bytes, CleanerError> {
        let s = self.segs.iter().find(|s| s.base == base).unwrap();
        let from = (position as usize).min(s.data.len());
        let to = (from + max).min(s.data.len());
        Ok(Bytes::copy_from_slice(&s.data[from..to]))
    }
    fn aborted_txns(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>, CleanerError> {
        Ok(self
            .segs
            .iter()
            .flat_map(|s| s.aborted.iter())
            .filter(|a| a.last_offset >= from && a.first_offset < upper)
            .copied()
            .collect())
    }
    fn active_producers(&self) -> Result<HashMap<i64, LastRecord>, CleanerError> {
        Ok(self.producers.clone())
    }
    fn create_cleaned(&mut self, _base: i64) -> Result<Vec<u8>, CleanerError> {
        Ok(Vec::new())
    }
    fn replace_segments(
        &mut self,
        cleaned: Vec<u8>,
        info: CleanedSegmentInfo,
    ) -> Result<(), CleanerError> {
        let first = self.segs.iter().position(|s| s.base == info.base).unwrap();
        let n = info.replaced_bases.len();
        for (k, b) in info.replaced_bases.iter().enumerate() {
            assert_eq!(self.segs[first + k].base, *b);
        }
        assert!(
            first + n < self.segs.len(),
            "the active segment is never replaced"
        );
        let seg = MemSeg {
            base: info.base,
            next_offset: info.next_offset,
            data: cleaned,
            largest_ts: info.largest_timestamp,
            aborted: info.aborted_txns,
        };
        self.segs.splice(first..first + n, [seg]);
        self.replaced += 1;
        Ok(())
    }
    fn set_first_dirty_offset(&mut self, offset: i64) -> Result<(), CleanerError> {
        self.checkpoint = Some(offset);
        Ok(())
    }
    fn check_abort(&self) -> Result<(), CleanerError> {
        match self.abort_after.get() {
            Some(0) => Err(CleanerError::Aborted),
            Some(n) => {
                self.abort_after.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn cfg() -> CleanerConfig {
    CleanerConfig {
        dedupe_buffer_bytes: 1 << 20,
        delete_retention_ms: 500,
        min_cleanable_dirty_ratio: 0.0,
        io_buffer_bytes: 4096,
        ..CleanerConfig::default()
    }
}

fn run(log: &mut MemLog, c: &CleanerConfig, now: i64, map: &mut OffsetMap) -> Option<CleanResult> {
    let mut t = Throttler::new(f64::MAX, Arc::new(SystemClock));
    clean_log(log, c, now, &mut t, map).unwrap()
}

#[test]
fn a_million_updates_shrink_to_the_latest_per_key() {
    const KEYS: usize = 10_000;
    const UPDATES: usize = 1_000_000;
    let mut log = MemLog::new();
    let mut latest = vec![0i64; KEYS];
    let mut i = 0usize;
    while i < UPDATES {
        let mut b = BatchBuilder::new(Compression::None, 1);
        let start = log.next;
        for j in 0..200 {
            let k = (i + j) % KEYS;
            latest[k] = start + j as i64;
            b.push(1, Some(&(k as u32).to_be_bytes()), Some(b"v"), &[]);
        }
        log.append(b.build().unwrap());
        i += 200;
        if i.is_multiple_of(100_000) {
            log.roll();
        }
    }
    log.put(2, &[("tail", Some("x"))], Compression::None); // in the active segment
    let c = CleanerConfig {
        io_buffer_bytes: 64 * 1024,
        ..cfg()
    };
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    let r = run(&mut log, &c, 10, &mut map).unwrap();
    assert_eq!(r.end_offset, UPDATES as i64);
    assert_eq!(r.map_keys, KEYS);
    assert_eq!(r.stats.messages_retained, KEYS as u64);
    // Ten 1.6 MB segments shrink enough to merge into one.
    assert_eq!(log.segs.len(), 2);
    let mut seen = vec![false; KEYS];
    let mut count = 0;
    for b in log.batches() {
        let s = plain_section(&b).unwrap();
        for rec in scan_records(&s, b.record_count(), b.last_offset_delta()).unwrap() {
            let key = &s[rec.key.clone().unwrap()];
            let k = u32::from_be_bytes(key.try_into().unwrap()) as usize;
            assert_eq!(b.base_offset() + i64::from(rec.offset_delta), latest[k]);
            assert!(!seen[k]);
            seen[k] = true;
            count += 1;
        }
    }
    assert_eq!(count, KEYS);
    assert_eq!(log.checkpoint, Some(UPDATES as i64));
    // Nothing dirty is left: the next round does not run.
    assert!(run(&mut log, &c, 11, &mut map).is_none());
}

#[test]
fn tombstones_live_until_their_delete_horizon() {
    let mut log = MemLog::new();
    log.put(
        100,
        &[("a", Some("1")), ("b", Some("1"))],
        Compression::None,
    );
    log.put(100, &[("a", None)], Compression::None);
    log.roll();
    log.put(100, &[("c", Some("1"))], Compression::None);
    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    run(&mut log, &c, 1_000, &mut map).unwrap();
    assert_eq!(
        log.records(),
        vec![(1, "b".into(), Some("1".into())), (2, "a".into(), None)]
    );
    // The tombstone's batch now carries a delete horizon of now + delete.retention.ms.
    let hz: Vec<_> = log.batches().iter().map(delete_horizon_ms).collect();
    assert_eq!(hz, vec![None, Some(1_500)]);

    // Before the horizon the tombstone survives another round.
    log.roll();
    log.put(1_200, &[("d", Some("1"))], Compression::None);
    run(&mut log, &c, 1_200, &mut map).unwrap();
    assert!(log.records().contains(&(2, "a".into(), None)));

    // At the horizon it goes.
    log.roll();
    log.put(1_500, &[("e", Some("1"))], Compression::None);
    run(&mut log, &c, 1_500, &mut map).unwrap();
    let keys: Vec<String> = log.records().into_iter().map(|r| r.1).collect();
    assert_eq!(keys, vec!["b", "c", "d"]);
}

#[test]
fn aborted_data_goes_committed_stays_and_markers_follow_kafka() {
    let mut log = MemLog::new();
    let (a0, _) = log.txn_put(5, 100, &[("x1", "aborted"), ("x2", "aborted")]);
    log.txn_put(6, 100, &[("y1", "committed")]);
    let abort_at = log.marker(5, ControlType::Abort, 100);
    let commit_at = log.marker(6, ControlType::Commit, 100);
    log.segs.last_mut().unwrap().aborted.push(AbortedTxn {
        producer_id: 5,
        first_offset: a0,
        last_offset: abort_at,
        last_stable_offset: a0,
    });
    log.put(100, &[("z", Some("plain"))], Compression::None);
    log.roll();
    log.put(100, &[("active", Some("1"))], Compression::None);

    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    // Round 1: aborted data removed; both markers kept (data of their transactions was
    // seen in this pass); the abort stays in the cleaned transaction index.
    run(&mut log, &c, 1_000, &mut map).unwrap();
    let keys: Vec<String> = log.records().into_iter().map(|r| r.1).collect();
    assert_eq!(keys, vec!["y1", "z"]);
    assert_eq!(
        log.markers(),
        vec![(abort_at, 5, None, 1), (commit_at, 6, None, 1)]
    );
    assert_eq!(log.segs[0].aborted.len(), 1);

    // Round 2: no aborted data left, so the ABORT marker becomes removable and gets a
    // delete horizon; y1's transactional record is superseded and removed, but its batch
    // was seen in this pass, so the COMMIT marker stays as it is.
    log.roll();
    log.put(2_000, &[("y1", Some("overwritten"))], Compression::None);
    log.roll();
    log.put(2_000, &[("f", Some("1"))], Compression::None);
    run(&mut log, &c, 2_000, &mut map).unwrap();
    assert_eq!(
        log.markers(),
        vec![(abort_at, 5, Some(2_500), 1), (commit_at, 6, None, 1)]
    );
    assert!(log.segs[0].aborted.is_empty());

    // Round 3 (before the ABORT horizon): nothing of transaction 6 is left, so the COMMIT
    // marker is removable and gets its horizon; the ABORT one waits.
    log.roll();
    log.put(2_100, &[("f", Some("2"))], Compression::None);
    run(&mut log, &c, 2_100, &mut map).unwrap();
    assert_eq!(
        log.markers(),
        vec![
            (abort_at, 5, Some(2_500), 1),
            (commit_at, 6, Some(2_600), 1)
        ]
    );

    // Round 4, past both horizons: both markers are gone.
    log.roll();
    log.put(3_000, &[("f", Some("3"))], Compression::None);
    run(&mut log, &c, 3_000, &mut map).unwrap();
    assert!(log.markers().is_empty());
    let kept: Vec<(String, Option<String>)> = log
        .records()
        .into_iter()
        .filter(|r| r.1 != "f")
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(
        kept,
        vec![
            ("z".into(), Some("plain".into())),
            ("active".into(), Some("1".into())),
            ("y1".into(), Some("overwritten".into()))
        ]
    );
}

#[test]
fn an_active_producers_last_batch_keeps_its_header() {
    let mut log = MemLog::new();
    let (a0, a1) = log.txn_put(5, 100, &[("x1", "aborted"), ("x2", "aborted")]);
    let abort_at = log.marker(5, ControlType::Abort, 100);
    log.segs.last_mut().unwrap().aborted.push(AbortedTxn {
        producer_id: 5,
        first_offset: a0,
        last_offset: abort_at,
        last_stable_offset: a0,
    });
    log.put(100, &[("z", Some("1"))], Compression::None);
    log.roll();
    log.put(100, &[("active", Some("1"))], Compression::None);
    log.producers.insert(
        5,
        LastRecord {
            last_data_offset: Some(a1),
            producer_epoch: 0,
        },
    );
    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    run(&mut log, &c, 1_000, &mut map).unwrap();
    let b = log.batches();
    assert_eq!(
        (b[0].base_offset(), b[0].last_offset(), b[0].record_count()),
        (a0, a1, 0)
    );
    assert!(b[0].is_transactional());
    assert_eq!(b[0].producer_id(), 5);
    // The empty aborted batch is still seen on later rounds, so the marker stays.
    for now in [2_000, 3_000] {
        log.roll();
        log.put(now, &[("n", Some("1"))], Compression::None);
        run(&mut log, &c, now, &mut map).unwrap();
        assert_eq!(log.markers(), vec![(abort_at, 5, None, 1)]);
    }
}

#[test]
fn a_full_offset_map_stops_the_round_and_the_next_continues() {
    let mut log = MemLog::new();
    for round in 0..2 {
        for k in 0..50 {
            log.put(
                1,
                &[(&format!("k{k}"), Some(&format!("{round}")))],
                Compression::None,
            );
            if k % 20 == 19 {
                log.roll();
            }
        }
    }
    log.roll();
    log.put(1, &[("active", Some("1"))], Compression::None);
    let c = CleanerConfig {
        dedupe_buffer_bytes: 24 * 20, // 20 slots, 18 keys
        ..cfg()
    };
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    let r = run(&mut log, &c, 10, &mut map).unwrap();
    assert_eq!(r.end_offset, 18);
    assert_eq!(log.checkpoint, Some(18));
    assert_eq!(
        log.records().len(),
        100,
        "nothing superseded within offsets 0..18"
    );
    let mut rounds = 1;
    while let Some(r) = run(&mut log, &c, 10, &mut map) {
        rounds += 1;
        assert!(r.end_offset <= 100);
        if r.end_offset == 100 {
            break;
        }
    }
    assert_eq!(rounds, 6);
    let recs = log.records();
    assert_eq!(recs.len(), 50);
    for (i, (offset, key, value)) in recs.iter().enumerate() {
        assert_eq!(*offset, 50 + i as i64);
        assert_eq!(key, &format!("k{i}"));
        assert_eq!(value.as_deref(), Some("1"));
    }
}

#[test]
fn compressed_batches_keep_their_codec_and_a_valid_crc() {
    let mut log = MemLog::new();
    for codec in Compression::ALL {
        log.put(
            100,
            &[("a", Some("old")), ("b", Some("keep")), ("a", Some("new"))],
            codec,
        );
    }
    log.roll();
    log.put(100, &[("active", Some("1"))], Compression::None);
    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    run(&mut log, &c, 1_000, &mut map).unwrap();
    let b = log.batches();
    // Only the last batch holds the latest a and b; the others are empty and dropped,
    // except the round's last batch which would be kept anyway.
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].compression().unwrap(), Compression::Zstd);
    assert_eq!(b[0].record_count(), 2);
    assert_eq!(
        log.records(),
        vec![
            (13, "b".into(), Some("keep".into())),
            (14, "a".into(), Some("new".into()))
        ]
    );

    // Per codec, a batch that loses one record is rewritten with the same codec.
    for codec in Compression::ALL {
        let mut log = MemLog::new();
        log.put(100, &[("a", Some("1")), ("b", Some("1"))], codec);
        log.put(100, &[("a", Some("2"))], Compression::None);
        log.roll();
        log.put(100, &[("active", Some("1"))], Compression::None);
        run(&mut log, &c, 1_000, &mut map).unwrap();
        let b = log.batches();
        assert_eq!(b[0].compression().unwrap(), codec);
        assert_eq!((b[0].base_offset(), b[0].last_offset()), (0, 1));
        assert_eq!(b[0].record_count(), 1);
        assert_eq!(
            log.records(),
            vec![
                (1, "b".into(), Some("1".into())),
                (2, "a".into(), Some("2".into()))
            ]
        );
    }
}

#[test]
fn records_without_keys_are_dropped() {
    let mut log = MemLog::new();
    let mut b = BatchBuilder::new(Compression::None, 1);
    b.push(1, None, Some(b"nokey"), &[]);
    b.push(1, Some(b"k"), Some(b"v"), &[]);
    log.append(b.build().unwrap());
    log.put(1, &[("k2", Some("v"))], Compression::None);
    log.roll();
    log.put(1, &[("active", Some("1"))], Compression::None);
    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    let r = run(&mut log, &c, 10, &mut map).unwrap();
    assert_eq!(r.stats.invalid_messages, 1);
    let keys: Vec<String> = log.records().into_iter().map(|r| r.1).collect();
    assert_eq!(keys, vec!["k", "k2"]);
}

#[test]
fn a_batch_larger_than_the_read_buffer_is_read_whole() {
    let mut log = MemLog::new();
    let big = "x".repeat(20_000);
    log.put(1, &[("a", Some(&big)), ("b", Some("1"))], Compression::None);
    log.put(1, &[("a", Some("small"))], Compression::None);
    log.roll();
    log.put(1, &[("active", Some("1"))], Compression::None);
    let c = cfg(); // 4 KiB reads
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    run(&mut log, &c, 10, &mut map).unwrap();
    assert_eq!(
        log.records(),
        vec![
            (1, "b".into(), Some("1".into())),
            (2, "a".into(), Some("small".into()))
        ]
    );
}

#[test]
fn corrupt_segments_are_reported_not_panicked_on() {
    let mut log = MemLog::new();
    log.put(1, &[("a", Some("1"))], Compression::None);
    log.segs[0]
        .data
        .extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0x7f, 0xff, 0xff, 0xff, 2]);
    log.roll();
    log.put(1, &[("active", Some("1"))], Compression::None);
    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    let mut t = Throttler::unlimited();
    assert!(clean_log(&mut log, &c, 10, &mut t, &mut map).is_err());
}

#[test]
fn an_aborted_round_changes_nothing() {
    let mut log = MemLog::new();
    for i in 0..50 {
        log.put(1, &[("k", Some(&i.to_string()))], Compression::None);
    }
    log.roll();
    log.put(1, &[("active", Some("1"))], Compression::None);
    let before: Vec<Vec<u8>> = log.segs.iter().map(|s| s.data.clone()).collect();
    log.abort_after.set(Some(1)); // the map is built, the clean is stopped
    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    let mut t = Throttler::unlimited();
    assert!(matches!(
        clean_log(&mut log, &c, 10, &mut t, &mut map),
        Err(CleanerError::Aborted)
    ));
    let after: Vec<Vec<u8>> = log.segs.iter().map(|s| s.data.clone()).collect();
    assert_eq!(before, after);
    assert_eq!((log.replaced, log.checkpoint), (0, None));
}

struct FakeClock {
    start: Instant,
    elapsed: Mutex<Duration>,
    slept: Mutex<Duration>,
}

impl Clock for FakeClock {
    /// Each look at the clock costs 10 ms of "work", so time passes as the cleaner reads.
    fn now(&self) -> Instant {
        let mut e = self.elapsed.lock().unwrap();
        *e += Duration::from_millis(10);
        self.start + *e
    }
    fn sleep(&self, d: Duration) {
        *self.elapsed.lock().unwrap() += d;
        *self.slept.lock().unwrap() += d;
    }
}

#[test]
fn the_io_rate_is_honoured() {
    let mut log = MemLog::new();
    for i in 0..2_000 {
        log.put(
            1,
            &[(&format!("k{}", i % 10), Some("value"))],
            Compression::None,
        );
    }
    log.roll();
    log.put(1, &[("active", Some("1"))], Compression::None);
    let size = log.segs[0].data.len() as f64;
    let clock = Arc::new(FakeClock {
        start: Instant::now(),
        elapsed: Mutex::new(Duration::ZERO),
        slept: Mutex::new(Duration::ZERO),
    });
    // The segment is read twice (map, clean) plus a small output: the round must take
    // about 2 × size / rate, most of it asleep.
    let rate = 10_240.0;
    let mut t = Throttler::new(rate, clock.clone());
    let c = CleanerConfig {
        io_buffer_bytes: 1024,
        ..cfg()
    };
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    clean_log(&mut log, &c, 10, &mut t, &mut map).unwrap();
    let took = clock.elapsed.lock().unwrap().as_secs_f64();
    let slept = clock.slept.lock().unwrap().as_secs_f64();
    let expected = 2.0 * size / rate;
    assert!(
        took > expected * 0.9 && took < expected * 1.1 && slept > took / 2.0,
        "took {took}s (slept {slept}s) for {size} bytes read twice at {rate} B/s (expected ~{expected}s)"
    );
}

#[test]
fn the_rounds_last_batch_keeps_its_header_when_emptied() {
    let mut log = MemLog::new();
    log.put(1, &[("k", Some("v"))], Compression::None);
    let mut b = BatchBuilder::new(Compression::Lz4, 1);
    b.push(1, None, Some(b"nokey"), &[]);
    b.push(1, None, Some(b"nokey"), &[]);
    let (base, last) = log.append(b.build().unwrap());
    log.put(1, &[("x", None)], Compression::None); // a tombstone: kept, given a horizon
    let mut b = BatchBuilder::new(Compression::None, 1).producer(9, 3, 0, false);
    b.push(1, None, Some(b"nokey"), &[]);
    let (last_base, _) = log.append(b.build().unwrap());
    log.roll();
    log.put(1, &[("active", Some("1"))], Compression::None);
    let c = cfg();
    let mut map = OffsetMap::new(c.dedupe_buffer_bytes);
    run(&mut log, &c, 10, &mut map).unwrap();
    let hdrs: Vec<(i64, i64, i32)> = log
        .batches()
        .iter()
        .map(|b| (b.base_offset(), b.last_offset(), b.record_count()))
        .collect();
    // The keyless batch in the middle is dropped; the last one before the first
    // uncleanable offset stays, empty, with its offsets and producer.
    assert_eq!((base, last), (1, 2));
    assert_eq!(hdrs, vec![(0, 0, 1), (3, 3, 1), (last_base, last_base, 0)]);
    assert_eq!(delete_horizon_ms(&log.batches()[1]), Some(510));
    assert_eq!(log.batches()[2].producer_epoch(), 3);
}
