use super::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

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

/// A valid v2 batch. `timestamps` has one entry per record; `attributes` may set a
/// compression codec (the payload is then opaque bytes, which is fine for the log).
pub(crate) fn make_batch_attr(timestamps: &[i64], value_len: usize, attributes: i16) -> Vec<u8> {
    assert!(!timestamps.is_empty());
    let base_ts = timestamps[0];
    let max_ts = *timestamps.iter().max().unwrap();
    let mut records = Vec::new();
    for (i, &ts) in timestamps.iter().enumerate() {
        let mut body = vec![0u8];
        put_varint(&mut body, ts - base_ts);
        put_varint(&mut body, i as i64);
        put_varint(&mut body, -1);
        put_varint(&mut body, value_len as i64);
        body.extend(std::iter::repeat_n((i % 251) as u8, value_len));
        put_varint(&mut body, 0);
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&777i64.to_be_bytes()); // arbitrary client base offset
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&((timestamps.len() - 1) as i32).to_be_bytes());
    b.extend_from_slice(&base_ts.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(timestamps.len() as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

pub(crate) fn make_batch(n: usize, ts: i64, value_len: usize) -> Vec<u8> {
    let tss: Vec<i64> = (0..n as i64).map(|i| ts + i).collect();
    make_batch_attr(&tss, value_len, 0)
}

fn cfg() -> LogConfig {
    LogConfig::default()
}

fn small_cfg(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

/// Splits concatenated batches into (base offset, last offset, bytes).
fn split(bytes: &[u8]) -> Vec<(i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let h = batch::parse_header(&bytes[p..]).unwrap();
        assert!(batch::crc_ok(&h, &bytes[p..p + h.size]), "crc at {p}");
        out.push((
            h.base_offset,
            h.last_offset(),
            bytes[p..p + h.size].to_vec(),
        ));
        p += h.size;
    }
    out
}

fn read_all(log: &Log) -> Vec<u8> {
    log.read(log.log_start_offset(), usize::MAX, i64::MAX)
        .unwrap()
        .bytes
        .to_vec()
}

fn append(log: &mut Log, mut b: Vec<u8>) -> (AppendInfo, Vec<u8>) {
    let info = log.append(&mut b, None, 0).unwrap();
    (info, b)
}

#[test]
fn append_read_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let (info, stored) = append(&mut log, make_batch(3, 1000, 10));
    assert_eq!(info.first_offset, 0);
    assert_eq!(info.last_offset, 2);
    assert_eq!(info.max_timestamp, 1002);
    assert_eq!(info.offset_of_max_timestamp, 2);
    assert_eq!(info.bytes, stored.len());
    assert_eq!(log.log_end_offset(), 3);
    let r = log.read(0, 1 << 20, i64::MAX).unwrap();
    assert_eq!(r.first_batch_offset, Some(0));
    assert_eq!(&r.bytes[..], &stored[..]);
    // Reading an offset inside the batch returns the whole batch.
    let r = log.read(2, 1 << 20, i64::MAX).unwrap();
    assert_eq!(&r.bytes[..], &stored[..]);
    // At LEO: empty.
    let r = log.read(3, 1 << 20, i64::MAX).unwrap();
    assert!(r.bytes.is_empty());
    assert_eq!(r.first_batch_offset, None);
}

#[test]
fn offsets_across_appends_and_multi_batch_appends() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    let mut expect = Vec::new();
    let (i1, b1) = append(&mut log, make_batch(2, 0, 5));
    expect.extend_from_slice(&b1);
    let mut multi = make_batch(3, 10, 5);
    multi.extend(make_batch(1, 20, 5));
    multi.extend(make_batch(4, 30, 5));
    let info = log.append(&mut multi, Some(7), 0).unwrap();
    expect.extend_from_slice(&multi);
    assert_eq!(i1.last_offset, 1);
    assert_eq!((info.first_offset, info.last_offset), (2, 9));
    assert_eq!(info.max_timestamp, 33);
    assert_eq!(info.offset_of_max_timestamp, 9);
    let batches = split(&read_all(&log));
    let ranges: Vec<_> = batches.iter().map(|b| (b.0, b.1)).collect();
    assert_eq!(ranges, vec![(0, 1), (2, 4), (5, 5), (6, 9)]);
    for (_, _, b) in &batches[1..] {
        assert_eq!(i32::from_be_bytes(b[12..16].try_into().unwrap()), 7);
    }
    assert_eq!(read_all(&log), expect);
    assert_eq!(
        log.read(5, 1, i64::MAX).unwrap().first_batch_offset,
        Some(5)
    );
    assert_eq!(
        log.read(7, 1, i64::MAX).unwrap().first_batch_offset,
        Some(6)
    );
}

#[test]
fn malformed_append_rejected() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    let mut b = make_batch(1, 0, 1);
    b.pop();
    assert!(matches!(
        log.append(&mut b, None, 0),
        Err(LogError::CorruptBatch { .. })
    ));
    let mut b = make_batch(1, 0, 1);
    b[16] = 1;
    assert!(matches!(
        log.append(&mut b, None, 0),
        Err(LogError::CorruptBatch { .. })
    ));
    assert!(log.append(&mut [], None, 0).is_err());
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn roll_by_bytes_and_read_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(1000), 0).unwrap();
    let mut expect = Vec::new();
    for i in 0..40 {
        let (_, b) = append(&mut log, make_batch(2, i * 10, 50));
        expect.extend_from_slice(&b);
    }
    assert!(log.segment_count() > 3, "{}", log.segment_count());
    assert_eq!(log.log_end_offset(), 80);
    assert_eq!(read_all(&log), expect);
    assert_eq!(log.size_bytes(), expect.len() as u64);
    // Every offset reads back starting at the batch containing it.
    for o in 0..80 {
        let r = log.read(o, 1, i64::MAX).unwrap();
        assert_eq!(r.first_batch_offset, Some(o - o % 2));
    }
    // Segment files are named by base offset.
    let mut logs: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    logs.sort();
    assert_eq!(logs[0], "00000000000000000000.log");
    assert_eq!(logs.len(), log.segment_count());
    // Reopen (clean) and read again.
    log.close().unwrap();
    let log = Log::open(d.path(), small_cfg(1000), 0).unwrap();
    assert_eq!(read_all(&log), expect);
    assert_eq!(log.log_end_offset(), 80);
}

#[test]
fn roll_by_time_and_index_full() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        segment_ms: 1000,
        ..cfg()
    };
    let mut log = Log::open(d.path(), c, 0).unwrap();
    log.append(&mut make_batch(1, 5000, 1), None, 0).unwrap();
    log.append(&mut make_batch(1, 5500, 1), None, 0).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&mut make_batch(1, 6001, 1), None, 0).unwrap();
    assert_eq!(log.segment_count(), 2);

    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        index_interval_bytes: 1,
        segment_index_bytes: 8 + 3 * 8,
        ..cfg()
    };
    let mut log = Log::open(d.path(), c, 0).unwrap();
    for i in 0..10 {
        log.append(&mut make_batch(1, i, 1), None, 0).unwrap();
    }
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
    for o in 0..10 {
        assert_eq!(
            log.read(o, 1, i64::MAX).unwrap().first_batch_offset,
            Some(o)
        );
    }
}

#[test]
fn max_bytes_max_offset_and_kip74() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(1 << 20), 0).unwrap();
    let mut sizes = Vec::new();
    for i in 0..5 {
        let (_, b) = append(&mut log, make_batch(2, i, 100));
        sizes.push(b.len());
    }
    let s = sizes[0];
    // KIP-74: max_bytes smaller than a batch still returns the first batch.
    let r = log.read(0, 1, i64::MAX).unwrap();
    assert_eq!(r.bytes.len(), s);
    // Exactly two batches fit.
    let r = log.read(0, 2 * s + s / 2, i64::MAX).unwrap();
    assert_eq!(r.bytes.len(), 2 * s);
    // max_offset is exclusive and batch-granular.
    let r = log.read(0, usize::MAX, 4).unwrap();
    assert_eq!(split(&r.bytes).last().unwrap().1, 3);
    let r = log.read(0, usize::MAX, 5).unwrap();
    assert_eq!(split(&r.bytes).last().unwrap().1, 3);
    let r = log.read(4, usize::MAX, 4).unwrap();
    assert!(r.bytes.is_empty());
    // First batch not below max_offset: nothing, even under KIP-74.
    let r = log.read(0, 1, 1).unwrap();
    assert!(r.bytes.is_empty());
    assert_eq!(r.first_batch_offset, None);
}

#[test]
fn offset_out_of_range() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    log.append(&mut make_batch(3, 0, 1), None, 0).unwrap();
    assert!(matches!(
        log.read(4, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange {
            offset: 4,
            log_start: 0,
            log_end: 3
        })
    ));
    assert!(matches!(
        log.read(-1, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.truncate_to(0).unwrap();
    log.truncate_to(0).unwrap();
    assert!(log.read(0, 100, i64::MAX).unwrap().bytes.is_empty());
}

#[test]
fn offset_for_timestamp_and_max_timestamp() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(2000), 0).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), None);
    // 30 batches of 3 records, timestamps 100*i + {0, 5, 2}.
    for i in 0..30i64 {
        let t = 100 * i;
        log.append(&mut make_batch_attr(&[t, t + 5, t + 2], 40, 0), None, 0)
            .unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(-5).unwrap(), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(1).unwrap(), Some((1, 5)));
    assert_eq!(log.offset_for_timestamp(5).unwrap(), Some((1, 5)));
    assert_eq!(log.offset_for_timestamp(6).unwrap(), Some((3, 100)));
    for i in 0..30i64 {
        assert_eq!(
            log.offset_for_timestamp(100 * i + 3).unwrap(),
            Some((3 * i + 1, 100 * i + 5)),
            "i={i}"
        );
    }
    assert_eq!(log.offset_for_timestamp(2906).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((88, 2905)));
    // Compressed batch: batch granularity.
    log.append(&mut make_batch_attr(&[5000, 5009, 5001], 40, 1), None, 0)
        .unwrap();
    assert_eq!(log.offset_for_timestamp(5003).unwrap(), Some((90, 5009)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((90, 5009)));
    // Same answers after a clean reopen and after an unclean one.
    log.close().unwrap();
    let log = Log::open(d.path(), small_cfg(2000), 0).unwrap();
    assert_eq!(log.offset_for_timestamp(1503).unwrap(), Some((46, 1505)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((90, 5009)));
    drop(log);
    std::fs::remove_file(d.path().join(checkpoint::RECOVERY_POINT_FILE)).unwrap();
    let log = Log::open(d.path(), small_cfg(2000), 0).unwrap();
    assert_eq!(log.offset_for_timestamp(1503).unwrap(), Some((46, 1505)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((90, 5009)));
}

fn segment_logs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn chop(path: &Path, n: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(n)).unwrap();
}

#[test]
fn recovery_torn_tail() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    let mut expect = Vec::new();
    for i in 0..5 {
        let (_, b) = append(&mut log, make_batch(2, i, 30));
        expect.extend_from_slice(&b);
    }
    let last_len = make_batch(2, 0, 30).len();
    drop(log); // crash: no close
    chop(&segment_logs(d.path())[0], 7);
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    expect.truncate(expect.len() - last_len);
    assert_eq!(read_all(&log), expect);
    let (info, b) = append(&mut log, make_batch(1, 9, 30));
    assert_eq!(info.first_offset, 8);
    expect.extend_from_slice(&b);
    assert_eq!(read_all(&log), expect);
}

#[test]
fn recovery_garbage_tail() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    let (_, expect) = append(&mut log, make_batch(3, 0, 30));
    drop(log);
    let p = &segment_logs(d.path())[0];
    let mut bytes = std::fs::read(p).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(&[0xAB; 100]);
    // Also a plausible-looking header with a bad CRC.
    let mut fake = make_batch(1, 0, 3);
    fake[0..8].copy_from_slice(&3i64.to_be_bytes());
    let n = fake.len();
    fake[n - 1] ^= 0xff;
    bytes.extend_from_slice(&fake);
    std::fs::write(p, &bytes).unwrap();
    let log = Log::open(d.path(), cfg(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(std::fs::metadata(p).unwrap().len(), good as u64);
    assert_eq!(read_all(&log), expect);
}

#[test]
fn recovery_corrupt_crc_in_middle_deletes_later_segments() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(600), 0).unwrap();
    let mut batches = Vec::new();
    for i in 0..20 {
        batches.push(append(&mut log, make_batch(1, i, 100)).1);
    }
    assert!(log.segment_count() >= 4);
    drop(log);
    // Remove the recovery point so everything is scanned; corrupt a byte in segment 1.
    std::fs::remove_file(d.path().join(checkpoint::RECOVERY_POINT_FILE)).ok();
    let segs = segment_logs(d.path());
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    let seg1_base: i64 = segs[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let blen = batches[0].len();
    // Second batch of segment 1, in its record payload.
    bytes[blen + 80] ^= 0x01;
    std::fs::write(&segs[1], &bytes).unwrap();
    let mut log = Log::open(d.path(), small_cfg(600), 0).unwrap();
    assert_eq!(log.log_end_offset(), seg1_base + 1);
    assert_eq!(log.segment_count(), 2);
    assert_eq!(segment_logs(d.path()).len(), 2);
    let expect: Vec<u8> = batches[..(seg1_base + 1) as usize].concat();
    assert_eq!(read_all(&log), expect);
    let (info, _) = append(&mut log, make_batch(1, 0, 100));
    assert_eq!(info.first_offset, seg1_base + 1);
}

#[test]
fn recovery_from_recovery_point_only_scans_tail() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(600), 0).unwrap();
    for i in 0..20 {
        append(&mut log, make_batch(1, i, 100));
    }
    let t = log.flush_target();
    t.sync().unwrap();
    log.mark_flushed(t.end_offset());
    assert_eq!(log.flushed_offset(), 20);
    // Force a roll so the recovery point is persisted.
    append(&mut log, make_batch(1, 0, 500));
    drop(log);
    // Corrupt segment 0: not scanned because it is below the recovery point.
    let segs = segment_logs(d.path());
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&segs[0], &bytes).unwrap();
    let log = Log::open(d.path(), small_cfg(600), 0).unwrap();
    assert_eq!(log.log_end_offset(), 21);
}

#[test]
fn deleted_or_corrupt_index_files_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(3000), 0).unwrap();
    for i in 0..40 {
        append(&mut log, make_batch(2, i * 10, 60));
    }
    let expect = read_all(&log);
    let ts_answer = log.offset_for_timestamp(155).unwrap();
    log.close().unwrap();
    let mut removed = 0;
    for e in std::fs::read_dir(d.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.to_str().unwrap().to_string();
        if name.ends_with(".index") {
            std::fs::remove_file(&p).unwrap();
            removed += 1;
        } else if name.ends_with(".timeindex") {
            std::fs::write(&p, b"garbage!!").unwrap();
        }
    }
    assert!(removed >= 2);
    let log = Log::open(d.path(), small_cfg(3000), 0).unwrap();
    assert_eq!(log.log_end_offset(), 80);
    assert_eq!(read_all(&log), expect);
    assert_eq!(log.offset_for_timestamp(155).unwrap(), ts_answer);
    for o in 0..80 {
        assert_eq!(
            log.read(o, 1, i64::MAX).unwrap().first_batch_offset,
            Some(o - o % 2)
        );
    }
    let idx = std::fs::read(d.path().join("00000000000000000000.index")).unwrap();
    // Rebuilt in Kafka's format: headerless entries, trimmed (segment 0 is not active).
    assert!(!idx.is_empty());
    assert_eq!(idx.len() % 8, 0);
    assert_ne!(&idx[..8], &segment::LEGACY_INDEX_HEADER);
}

#[test]
fn clean_shutdown_path() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    append(&mut log, make_batch(4, 0, 10));
    let expect = read_all(&log);
    log.close().unwrap();
    let marker = d.path().join(checkpoint::CLEAN_SHUTDOWN_FILE);
    assert!(marker.exists());
    assert_eq!(
        checkpoint::read_offset_file(
            &d.path().join(checkpoint::RECOVERY_POINT_FILE),
            checkpoint::RECOVERY_POINT_VERSION
        ),
        Some(4)
    );
    let mut log = Log::open(d.path(), cfg(), 0).unwrap();
    assert!(!marker.exists());
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.flushed_offset(), 4);
    assert_eq!(read_all(&log), expect);
    // A marker that disagrees with the files triggers recovery of the last segment.
    append(&mut log, make_batch(1, 0, 10));
    log.close().unwrap();
    chop(&segment_logs(d.path())[0], 3);
    let log = Log::open(d.path(), cfg(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(read_all(&log), expect);
}

#[test]
fn flush_target_syncs_from_another_thread() {
    let d = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Log::open(d.path(), small_cfg(2000), 0).unwrap()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let log = log.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut syncs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = log.lock().unwrap().flush_target();
                t.sync().unwrap(); // outside the lock
                log.lock().unwrap().mark_flushed(t.end_offset());
                syncs += 1;
            }
            syncs
        })
    };
    for i in 0..200 {
        log.lock()
            .unwrap()
            .append(&mut make_batch(1, i, 50), None, 0)
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(flusher.join().unwrap() > 0);
    let mut log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
    assert!(log.segment_count() > 1);
    let t = log.flush_target();
    t.sync().unwrap();
    log.mark_flushed(t.end_offset());
    assert_eq!(log.flushed_offset(), 200);
    assert!(log.flushed_offset() <= log.log_end_offset());
    // Nothing left to sync.
    assert!(log.flush_target().files.is_empty());
}

#[test]
fn flush_target_fsyncs_directory_after_roll() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(500), 0).unwrap();
    append(&mut log, make_batch(1, 0, 300));
    assert!(log.flush_target().dir.is_none());
    log.close().unwrap();
    let mut log = Log::open(d.path(), small_cfg(500), 0).unwrap();
    assert!(log.flush_target().files.is_empty());
    append(&mut log, make_batch(1, 0, 300)); // rolls
    assert_eq!(log.segment_count(), 2);
    let t = log.flush_target();
    assert!(t.dir.is_some());
    // Only the new .log: the rolled segment was fully durable already.
    assert_eq!(t.files.len(), 1);
    t.sync().unwrap();
    log.mark_flushed(t.end_offset());
    assert!(log.flush_target().files.is_empty());
    append(&mut log, make_batch(1, 0, 10));
    let t = log.flush_target();
    assert!(t.dir.is_none());
    assert_eq!(t.files.len(), 1);
    append(&mut log, make_batch(1, 0, 300)); // rolls with unflushed data in the old one
    let t = log.flush_target();
    assert!(t.dir.is_some());
    // The rolled segment's .log and both index files, plus the new .log.
    assert_eq!(t.files.len(), 4);
}

#[test]
fn truncate_to_works() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(700), 0).unwrap();
    let mut batches = Vec::new();
    for i in 0..20 {
        batches.push(append(&mut log, make_batch(2, i * 10, 100)).1);
    }
    let segs_before = log.segment_count();
    assert!(segs_before > 3);
    // Mid-batch: the whole batch goes.
    log.truncate_to(21).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(read_all(&log), batches[..10].concat());
    assert!(log.segment_count() < segs_before);
    assert_eq!(segment_logs(d.path()).len(), log.segment_count());
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((19, 91)));
    assert_eq!(log.offset_for_timestamp(95).unwrap(), None);
    let (info, b) = append(&mut log, make_batch(1, 1, 100));
    assert_eq!(info.first_offset, 20);
    let mut expect = batches[..10].concat();
    expect.extend_from_slice(&b);
    assert_eq!(read_all(&log), expect);
    // Survives an unclean reopen.
    drop(log);
    let mut log = Log::open(d.path(), small_cfg(700), 0).unwrap();
    assert_eq!(read_all(&log), expect);
    // To the start: empty log at that offset.
    log.truncate_to(0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(append(&mut log, make_batch(1, 1, 1)).0.first_offset, 0);
}

#[test]
fn delete_removes_dir() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("topic-0");
    let mut log = Log::open(&p, cfg(), 0).unwrap();
    append(&mut log, make_batch(1, 1, 1));
    log.delete().unwrap();
    assert!(!p.exists());
}

#[test]
fn log_is_send() {
    fn is_send<T: Send>() {}
    is_send::<Log>();
    is_send::<FlushTarget>();
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Append these batches (records per batch, value length) in one call.
        Append(Vec<(usize, usize)>),
        Reopen {
            clean: bool,
        },
        /// Crash, cut bytes off the last segment, reopen.
        CrashChop(u64),
        Truncate(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => proptest::collection::vec((1usize..5, 0usize..200), 1..4).prop_map(Op::Append),
            1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
            1 => (0u64..300).prop_map(Op::CrashChop),
            1 => any::<u8>().prop_map(Op::Truncate),
        ]
    }

    /// Checks the log equals exactly `model` (batches with assigned offsets).
    fn check(log: &Log, model: &[Vec<u8>]) {
        let got = read_all(log);
        assert_eq!(got, model.concat());
        let mut next = log.log_start_offset();
        for (base, last, _) in split(&got) {
            assert_eq!(base, next);
            next = last + 1;
        }
        assert_eq!(next, log.log_end_offset());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn appends_reopens_and_chops_keep_a_contiguous_prefix(ops in proptest::collection::vec(op(), 1..40)) {
            let d = tempfile::tempdir().unwrap();
            let c = LogConfig { segment_bytes: 1500, index_interval_bytes: 100, ..LogConfig::default() };
            let mut log = Some(Log::open(d.path(), c.clone(), 0).unwrap());
            let mut model: Vec<Vec<u8>> = Vec::new();
            let mut ts = 0;
            for op in ops {
                match op {
                    Op::Append(spec) => {
                        let l = log.as_mut().unwrap();
                        let mut buf = Vec::new();
                        let mut sizes = Vec::new();
                        for (n, v) in spec {
                            ts += 1;
                            let b = make_batch(n, ts, v);
                            sizes.push(b.len());
                            buf.extend(b);
                        }
                        let info = l.append(&mut buf, None, 0).unwrap();
                        prop_assert_eq!(info.bytes, buf.len());
                        let mut p = 0;
                        for s in sizes { model.push(buf[p..p + s].to_vec()); p += s; }
                    }
                    Op::Reopen { clean } => {
                        let l = log.take().unwrap();
                        if clean { l.close().unwrap() } else { drop(l) }
                        log = Some(Log::open(d.path(), c.clone(), 0).unwrap());
                    }
                    Op::CrashChop(n) => {
                        drop(log.take());
                        let segs = segment_logs(d.path());
                        chop(segs.last().unwrap(), n);
                        let l = Log::open(d.path(), c.clone(), 0).unwrap();
                        // What survives must be a prefix of what was appended.
                        let got = read_all(&l);
                        let mut k = 0;
                        let mut len = 0;
                        while k < model.len() && len + model[k].len() <= got.len() {
                            len += model[k].len();
                            k += 1;
                        }
                        prop_assert_eq!(len, got.len());
                        model.truncate(k);
                        log = Some(l);
                    }
                    Op::Truncate(x) => {
                        let l = log.as_mut().unwrap();
                        let leo = l.log_end_offset();
                        let to = if leo == 0 { 0 } else { i64::from(x) % (leo + 1) };
                        l.truncate_to(to).unwrap();
                        // Whole batches whose last offset < to survive.
                        model.retain(|b| {
                            let h = batch::parse_header(b).unwrap();
                            h.last_offset() < to
                        });
                    }
                }
                check(log.as_ref().unwrap(), &model);
            }
        }
    }
}

/// `read_slice` names exactly the bytes `read` returns, cut to one segment, at a batch
/// boundary, within the budget (or the whole first batch), and below `max_offset`.
#[test]
fn read_slice_is_a_batch_aligned_prefix_of_read() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), small_cfg(2000), 0).unwrap();
    for i in 0..60 {
        // Batches of 1..=4 records, ~70 bytes per record: several index entries per segment.
        append(&mut log, make_batch(1 + (i % 4) as usize, i * 10, 40));
    }
    assert!(log.segment_count() > 3);
    let end = log.log_end_offset();
    for offset in 0..end {
        for max_bytes in [1usize, 100, 300, 1000, 100_000] {
            for max_offset in [end, end - 7, offset + 3] {
                let slice = log.read_slice(offset, max_bytes, max_offset).unwrap();
                let read = log.read(offset, usize::MAX, max_offset).unwrap().bytes;
                let Some(slice) = slice else {
                    // Nothing sendable from this segment: the batch holding `offset` is not
                    // below max_offset.
                    let first = split(&log.read(offset, 1, i64::MAX).unwrap().bytes);
                    assert!(
                        first[0].1 >= max_offset,
                        "{offset} {max_bytes} {max_offset}"
                    );
                    continue;
                };
                let bytes = slice.read_to_bytes().unwrap();
                assert!(
                    read.starts_with(&bytes),
                    "{offset} {max_bytes} {max_offset}"
                );
                let batches = split(&bytes); // panics unless whole, valid batches
                let after = split(&log.read(offset, usize::MAX, i64::MAX).unwrap().bytes)
                    .into_iter()
                    .map(|b| b.0)
                    .find(|&base| base > batches.last().unwrap().1)
                    .unwrap_or(end);
                assert_eq!(
                    slice.next_offset, after,
                    "{offset} {max_bytes} {max_offset}"
                );
                assert!(batches[0].0 <= offset && offset <= batches[0].1);
                assert!(batches.iter().all(|b| b.1 < max_offset));
                assert!(bytes.len() <= max_bytes.max(batches[0].2.len()));
                // It stays in one segment: the first batch's segment.
                let seg = &log.segments[log.segment_for(batches[0].0)];
                assert!(batches.last().unwrap().1 < seg.next_offset);
                // Short of the budget only at the segment's or max_offset's end, or by less
                // than one index interval plus a batch.
                if bytes.len() + 128 + 400 < max_bytes.min(read.len()) {
                    let next = batches.last().unwrap().1 + 1;
                    assert!(next == seg.next_offset || next >= max_offset);
                }
            }
        }
    }
    // Out of range is an error, as for read.
    assert!(matches!(
        log.read_slice(end + 1, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.read_slice(end, 100, i64::MAX).unwrap().is_none());
}

/// The log's epoch cache is `arus-replication`'s `LeaderEpochCache`: OffsetForLeaderEpoch's
/// answers across several leader epochs, a restart and truncations, and the file beside them.
#[test]
fn end_offset_for_epoch_follows_leaderships_restarts_and_truncation() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("leader-epoch-checkpoint");
    let mut log = Log::open(d.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.end_offset_for_epoch(0), (-1, -1), "empty cache");
    log.become_leader(0).unwrap();
    for _ in 0..3 {
        log.append(&mut make_batch(1, 10, 4), Some(0), 0).unwrap();
    }
    log.become_leader(2).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n2\n0 0\n2 3\n");
    for _ in 0..2 {
        log.append(&mut make_batch(1, 10, 4), Some(2), 0).unwrap();
    }
    let answers = |log: &Log| {
        [-1, 0, 1, 2, 3]
            .map(|e| log.end_offset_for_epoch(e))
            .to_vec()
    };
    let expected = vec![(-1, -1), (0, 3), (0, 3), (2, 5), (-1, -1)];
    assert_eq!(answers(&log), expected);
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.epoch_for_offset(2), Some(0));
    assert_eq!(log.epoch_for_offset(4), Some(2));
    log.close().unwrap();

    let mut log = Log::open(d.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.leader_epochs(), [(0, 0), (2, 3)]);
    assert_eq!(answers(&log), expected);
    // Truncation inside epoch 2 keeps it; to its start removes it (Kafka truncateFromEnd).
    log.truncate_to(4).unwrap();
    assert_eq!(log.end_offset_for_epoch(2), (2, 4));
    log.truncate_to(3).unwrap();
    assert_eq!(log.leader_epochs(), [(0, 0)]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n1\n0 0\n");
    assert_eq!(log.end_offset_for_epoch(0), (0, 3));
    assert_eq!(log.end_offset_for_epoch(2), (-1, -1));
    // An epoch below every cached one after the log start moved: Kafka answers the
    // requested epoch with the first remaining epoch's start.
    log.become_leader(5).unwrap();
    log.append(&mut make_batch(1, 10, 4), Some(5), 0).unwrap();
    log.delete_records_before(4).unwrap();
    assert_eq!(log.leader_epochs(), [(5, 4)]);
    assert_eq!(log.end_offset_for_epoch(1), (1, 4));
}

#[test]
fn a_negative_leader_epoch_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), LogConfig::default(), 0).unwrap();
    assert!(matches!(
        log.become_leader(-3),
        Err(LogError::InvalidLeaderEpoch(_))
    ));
    assert_eq!(log.leader_epochs(), []);
    assert!(!d.path().join("leader-epoch-checkpoint").exists());
}
