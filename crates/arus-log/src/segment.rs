//! One segment: a `.log` file of whole batches plus its sparse `.index` and `.timeindex`.
//!
//! # File names
//! `{base_offset:020}.log`, `{base_offset:020}.index`, `{base_offset:020}.timeindex`, where
//! `base_offset` is the first offset the segment may hold (Kafka's naming).
//!
//! # `.log`
//! Record batches (magic v2) byte-for-byte, back to back, no file header: each batch carries
//! its own magic byte, which versions the format.
//!
//! # `.index` (offset → file position): Kafka's `OffsetIndex`
//! ```text
//! entries : relative_offset u32 BE | position u32 BE                         = 8 bytes each
//! ```
//! No header. `relative_offset` = the **last** offset of a batch − the segment base;
//! `position` is where that batch starts in the `.log`. Kafka 4.4 `LogSegment.append`
//! and `recover` add an entry for a batch when more than `index.interval.bytes` of batches
//! were written since the previous entry's batch started (strictly more; the first batch,
//! at position 0, never gets one). Entries strictly increase in both fields. A lookup for
//! offset `o` takes the last entry with `relative_offset <= o − base` and walks batches
//! from its position.
//!
//! # `.timeindex` (timestamp → offset): Kafka's `TimeIndex`
//! ```text
//! entries : timestamp i64 BE | relative_offset u32 BE                        = 12 bytes each
//! ```
//! No header. An entry `(T, o)` says: the largest batch `maxTimestamp` in the segment up to
//! and including the batch whose last offset is `base + o` is `T`, and that batch is the
//! first to carry it (Kafka's "shallow offset of max timestamp"). Entries are written with
//! `.index` entries when the segment's max timestamp has grown since the last entry, and
//! once more when the segment stops being active (roll / close) or is recovered, so the
//! last entry of an inactive segment is the segment's max timestamp. Timestamps strictly
//! increase and are above -1 (Kafka's `NO_TIMESTAMP`); offsets do not decrease.
//!
//! # Preallocation and the zero tail
//! Like Kafka's mmapped indexes, the active segment's `.index` and `.timeindex` are
//! preallocated (sparse) to `segment.index.bytes` rounded down to a whole number of
//! entries, and entries are written in place; when the segment stops being active (roll,
//! close) or is recovered, both files are trimmed to their entries. A crash therefore
//! leaves an active segment's index with a zero-filled tail. As in Kafka's
//! `DumpLogSegments`, an entry after the first whose relative offset is 0 (or an offset
//! entry at position 0, where none can be) starts that tail, and loading stops there.
//!
//! # `.txnindex`
//! Aborted transactions whose marker is in the segment; see [`crate::txn_index`] (Kafka's
//! `TransactionIndex` layout). Unlike the two indexes above it is not derivable from the
//! segment alone, so it is fsynced with the segment and rebuilt only by producer-state
//! replay.
//!
//! # Trust, corruption and the previous format
//! Index files are a cache: they are sanity-checked at open (sizes, monotonic entries,
//! positions inside the `.log`, the last offset entry pointing at a batch ending at that
//! offset, the time index not beyond the segment end) and rebuilt from the `.log` when
//! missing or malformed, and whenever the segment is scanned during recovery (Kafka
//! rebuilds segments above the recovery point and those whose index is corrupt the same
//! way). Files of the previous Arus release started with an 8-byte header (`ARIX`/`ARTI`,
//! version 1, 3 zero bytes); such a file is recognised by that header and rebuilt from the
//! `.log`, never reinterpreted. Rebuilt index files are written to `<name>.tmp`, fsynced
//! and renamed over the old file, so a crash during a rebuild leaves either the old file
//! (rebuilt again at the next open) or the complete new one, never a torn file that could
//! pass the sanity check.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::batch::{self, BatchHeader, HEADER_LEN, NO_TIMESTAMP};
use crate::producer_state::AbortedTxn;
use crate::txn_index::{self, TXN_INDEX_SUFFIX};

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";

pub const INDEX_ENTRY_LEN: u64 = 8;
pub const TIME_INDEX_ENTRY_LEN: u64 = 12;
/// The first 8 bytes of a `.index` / `.timeindex` written by the previous Arus release.
pub const LEGACY_INDEX_HEADER: [u8; 8] = *b"ARIX\x01\0\0\0";
pub const LEGACY_TIME_INDEX_HEADER: [u8; 8] = *b"ARTI\x01\0\0\0";
/// The smallest v2 batch (header, no records): bounds how many index entries a `.log` of
/// a given size can have, so a preallocated index is not read past its entries.
const MIN_BATCH_LEN: u64 = batch::HEADER_LEN as u64;
/// An index entry whose batch's base offset was not read yet.
const UNKNOWN_BASE: u32 = u32::MAX;
/// An index entry that does not name the batch at its position.
const BAD_BASE: u32 = u32::MAX - 1;

pub fn segment_path(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}.{suffix}"))
}

/// Kafka `AbstractIndex.roundDownToExactMultiple`: the preallocated size of an index.
pub fn preallocated_len(index_bytes: u64, entry_len: u64) -> u64 {
    index_bytes.min(i32::MAX as u64) / entry_len * entry_len
}

/// Why a segment's index files were not loaded.
#[derive(Debug, PartialEq, Eq)]
pub enum IndexProblem {
    /// Written by the previous Arus release (`ARIX`/`ARTI` header): converted by a rebuild.
    Legacy(&'static str),
    /// Missing or failing the sanity check.
    Invalid(String),
}

/// An I/O error together with the file it happened on.
pub type PathIoResult<T> = Result<T, (PathBuf, io::Error)>;

fn at<T>(path: &Path, r: io::Result<T>) -> PathIoResult<T> {
    r.map_err(|e| (path.to_path_buf(), e))
}

pub struct Segment {
    pub base: i64,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub time_path: PathBuf,
    pub log: Arc<File>,
    pub index_file: Arc<File>,
    pub time_file: Arc<File>,
    pub txn_path: PathBuf,
    /// Opened when the segment gets its first aborted-transaction entry.
    pub txn_file: Option<Arc<File>>,
    /// Entries in the `.txnindex` file.
    pub txn_entries: u64,
    /// Bytes of valid batches in the `.log`.
    pub size: u64,
    /// One past the last offset stored here (== `base` when empty).
    pub next_offset: i64,
    /// `(relative last offset of a batch, its position)`, mirrors `.index`.
    pub offset_index: Vec<(u32, u32)>,
    /// The relative base offset of each indexed batch, [`UNKNOWN_BASE`] until read: known
    /// for entries appended or rebuilt by this process, read from the batch header (once)
    /// for entries loaded from the file. With it a lookup starts at the batch holding the
    /// offset, not one index interval earlier (what Kafka's last-offset keys alone give).
    index_bases: Vec<AtomicU32>,
    /// `(timestamp, relative shallow offset)`, mirrors `.timeindex`.
    pub time_index: Vec<(i64, u32)>,
    pub max_timestamp: i64,
    /// Last offset of the first batch carrying `max_timestamp` (-1 if none).
    pub shallow_offset_of_max_timestamp: i64,
    /// The record carrying `max_timestamp` where the batch was read since the segment was
    /// opened (record-level for uncompressed CreateTime batches), else -1: then it is
    /// found from the shallow offset when asked ([`Segment::max_timestamp_record`]).
    pub offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch (Kafka's `rollingBasedTimestamp`).
    pub first_batch_timestamp: Option<i64>,
    pub created_ms: i64,
    pub bytes_since_index_entry: u64,
}

/// What a scan of a `.log` found.
pub struct ScanEnd {
    /// Position just after the last valid batch.
    pub valid_end: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

fn open_rw(p: &Path) -> PathIoResult<File> {
    at(
        p,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p),
    )
}

/// The entries of an index file, up to its zero-filled tail (see the module docs).
/// `is_tail(i, entry)` says whether entry `i` starts the tail.
fn index_entries(
    bytes: &[u8],
    entry_len: usize,
    is_tail: impl Fn(usize, &[u8]) -> bool,
) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    for (i, e) in bytes.chunks_exact(entry_len).enumerate() {
        if is_tail(i, e) {
            if bytes[i * entry_len..].iter().any(|&b| b != 0) {
                return Err(format!("non-zero bytes after the entries, at entry {i}"));
            }
            break;
        }
        out.push(e);
    }
    Ok(out)
}

impl Segment {
    /// Creates a fresh, empty, active segment (truncating any leftover files of that name)
    /// with its index files preallocated to `index_bytes`.
    pub fn create(dir: &Path, base: i64, now_ms: i64, index_bytes: u64) -> PathIoResult<Segment> {
        let log_path = segment_path(dir, base, LOG_SUFFIX);
        let log = at(
            &log_path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&log_path),
        )?;
        let seg = Segment::with_log(dir, base, log_path, log, now_ms)?;
        at(&seg.index_path, seg.index_file.set_len(0))?;
        at(&seg.time_path, seg.time_file.set_len(0))?;
        seg.preallocate_indexes(index_bytes)?;
        Ok(seg)
    }

    fn with_log(
        dir: &Path,
        base: i64,
        log_path: PathBuf,
        log: File,
        now_ms: i64,
    ) -> PathIoResult<Segment> {
        let index_path = segment_path(dir, base, INDEX_SUFFIX);
        let time_path = segment_path(dir, base, TIME_INDEX_SUFFIX);
        let index_file = open_rw(&index_path)?;
        let time_file = open_rw(&time_path)?;
        Ok(Segment {
            base,
            log_path,
            index_path,
            time_path,
            log: Arc::new(log),
            index_file: Arc::new(index_file),
            time_file: Arc::new(time_file),
            txn_path: segment_path(dir, base, TXN_INDEX_SUFFIX),
            txn_file: None,
            txn_entries: 0,
            size: 0,
            next_offset: base,
            offset_index: Vec::new(),
            index_bases: Vec::new(),
            time_index: Vec::new(),
            max_timestamp: NO_TIMESTAMP,
            shallow_offset_of_max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_batch_timestamp: None,
            created_ms: now_ms,
            bytes_since_index_entry: 0,
        })
    }

    /// Opens an existing segment. Loads the index files if they pass a sanity check and
    /// walks the batches after the last index entry to find the end (headers checked, CRC
    /// not). Returns the segment and, if it needs a full recovery scan (indexes bad, of the
    /// previous format, or tail inconsistent), why; in that case the in-memory indexes are
    /// empty and must be rebuilt.
    pub fn open(
        dir: &Path,
        base: i64,
        now_ms: i64,
    ) -> PathIoResult<(Segment, Option<IndexProblem>)> {
        let log_path = segment_path(dir, base, LOG_SUFFIX);
        let log = at(
            &log_path,
            OpenOptions::new().read(true).write(true).open(&log_path),
        )?;
        let file_len = at(&log_path, log.metadata())?.len();
        let mut seg = Segment::with_log(dir, base, log_path, log, now_ms)?;
        seg.size = file_len;
        if let Err(problem) = seg.load_indexes(file_len)? {
            seg.clear_indexes();
            return Ok((seg, Some(problem)));
        }
        // Walk the tail from the last indexed batch (its header was checked by the load).
        let start_pos = seg
            .offset_index
            .last()
            .map_or(0, |&(_, pos)| u64::from(pos));
        seg.bytes_since_index_entry = 0;
        let mut next = base;
        let mut max_ts = seg.max_timestamp;
        let mut shallow = seg.shallow_offset_of_max_timestamp;
        let mut off_max = -1;
        let mut first_ts = None;
        let mut since = 0u64;
        let end = seg.scan(start_pos, file_len, false, &mut |pos, h, bytes| {
            if pos == 0 {
                first_ts = Some(h.max_timestamp);
            }
            next = h.last_offset() + 1;
            since += h.size as u64;
            if h.max_timestamp > max_ts {
                max_ts = h.max_timestamp;
                shallow = h.last_offset();
                off_max = batch::offset_of_max_timestamp(h, bytes);
            }
        })?;
        if end.stopped.is_some() || end.valid_end != file_len {
            seg.clear_indexes();
            return Ok((seg, Some(IndexProblem::Invalid("inconsistent tail".into()))));
        }
        if let Some(&(_, rel)) = seg.time_index.last()
            && base + i64::from(rel) >= next
        {
            seg.clear_indexes();
            return Ok((
                seg,
                Some(IndexProblem::Invalid(format!(
                    "time index entry at offset {} is beyond the segment end {next}",
                    base + i64::from(rel)
                ))),
            ));
        }
        seg.next_offset = next;
        seg.max_timestamp = max_ts;
        seg.shallow_offset_of_max_timestamp = shallow;
        seg.offset_of_max_timestamp = off_max;
        // The first index entry is never at position 0, so the walk from the last entry
        // only covered the first batch when there were no entries.
        seg.first_batch_timestamp = match first_ts {
            Some(t) => Some(t),
            None if file_len > 0 => seg.read_header(0)?.map(|h| h.max_timestamp),
            None => None,
        };
        seg.bytes_since_index_entry = since;
        Ok((seg, None))
    }

    fn clear_indexes(&mut self) {
        self.offset_index.clear();
        self.index_bases.clear();
        self.time_index.clear();
        self.max_timestamp = NO_TIMESTAMP;
        self.shallow_offset_of_max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.first_batch_timestamp = None;
        self.bytes_since_index_entry = 0;
        self.next_offset = self.base;
    }

    /// Reads at most `max_entries` entries' worth of an index file (a preallocated file
    /// is mostly zeros); `Err(problem)` for a previous-format or malformed file.
    fn read_index_file(
        file: &File,
        path: &Path,
        entry_len: u64,
        max_entries: u64,
        legacy: &[u8; 8],
        name: &'static str,
    ) -> PathIoResult<Result<Vec<u8>, IndexProblem>> {
        let len = at(path, file.metadata())?.len();
        let mut head = [0u8; 8];
        if len >= 8 {
            at(path, file.read_exact_at(&mut head, 0))?;
            if &head == legacy {
                return Ok(Err(IndexProblem::Legacy(name)));
            }
        }
        if !len.is_multiple_of(entry_len) {
            return Ok(Err(IndexProblem::Invalid(format!(
                "{name} of {len} bytes is not a whole number of {entry_len}-byte entries"
            ))));
        }
        let want = len.min(max_entries.saturating_mul(entry_len));
        let mut buf = vec![0u8; want as usize];
        at(path, file.read_exact_at(&mut buf, 0))?;
        Ok(Ok(buf))
    }

    /// Reads and sanity-checks both index files (see the module docs).
    fn load_indexes(&mut self, log_len: u64) -> PathIoResult<Result<(), IndexProblem>> {
        // Each entry is a distinct batch start (the time index has one more, the seal).
        let max_entries = log_len / MIN_BATCH_LEN + 2;
        let ibuf = match Self::read_index_file(
            &self.index_file,
            &self.index_path,
            INDEX_ENTRY_LEN,
            max_entries,
            &LEGACY_INDEX_HEADER,
            "offset index",
        )? {
            Ok(b) => b,
            Err(p) => return Ok(Err(p)),
        };
        let tbuf = match Self::read_index_file(
            &self.time_file,
            &self.time_path,
            TIME_INDEX_ENTRY_LEN,
            max_entries,
            &LEGACY_TIME_INDEX_HEADER,
            "time index",
        )? {
            Ok(b) => b,
            Err(p) => return Ok(Err(p)),
        };
        let u32_at = |e: &[u8], i: usize| u32::from_be_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
        let invalid = |why: String| Ok(Err(IndexProblem::Invalid(why)));
        let entries = index_entries(&ibuf, INDEX_ENTRY_LEN as usize, |i, e| {
            (i > 0 && u32_at(e, 0) == 0) || u32_at(e, 4) == 0
        });
        let entries = match entries {
            Ok(e) => e,
            Err(why) => return invalid(format!("offset index: {why}")),
        };
        let mut oi: Vec<(u32, u32)> = Vec::with_capacity(entries.len());
        for e in entries {
            let (rel, pos) = (u32_at(e, 0), u32_at(e, 4));
            if let Some(&(prel, ppos)) = oi.last()
                && (rel <= prel || pos <= ppos)
            {
                return invalid(format!(
                    "offset index entry ({rel}, {pos}) after ({prel}, {ppos})"
                ));
            }
            if u64::from(pos) >= log_len {
                return invalid(format!("offset index position {pos} beyond the log"));
            }
            oi.push((rel, pos));
        }
        let zero = |e: &[u8]| e.iter().all(|&b| b == 0);
        let tlen = TIME_INDEX_ENTRY_LEN as usize;
        let entries = index_entries(&tbuf, tlen, |i, e| {
            // A first all-zero entry is real (timestamp 0 at the base offset) unless the
            // next one is zero too: then the file is an unwritten preallocation.
            (i > 0 && u32_at(e, 8) == 0)
                || (i == 0 && zero(e) && tbuf.get(tlen..2 * tlen).is_some_and(zero))
        });
        let entries = match entries {
            Ok(e) => e,
            Err(why) => return invalid(format!("time index: {why}")),
        };
        let mut ti: Vec<(i64, u32)> = Vec::with_capacity(entries.len());
        for e in entries {
            let ts = i64::from_be_bytes(e[..8].try_into().expect("8 bytes"));
            let rel = u32_at(e, 8);
            let prev_ts = ti.last().map_or(NO_TIMESTAMP, |&(t, _)| t);
            if ts <= prev_ts || ti.last().is_some_and(|&(_, prel)| rel < prel) {
                return invalid(format!("time index entry ({ts}, {rel}) out of order"));
            }
            ti.push((ts, rel));
        }
        // The last indexed batch must start at its position and end at its offset.
        if let Some(&(rel, pos)) = oi.last() {
            match self.read_header(u64::from(pos))? {
                Some(h) if h.last_offset() == self.base + i64::from(rel) => {}
                _ => {
                    return invalid(format!(
                        "no batch ending at offset {} at position {pos}",
                        self.base + i64::from(rel)
                    ));
                }
            }
        }
        if let Some(&(ts, rel)) = ti.last() {
            self.max_timestamp = ts;
            self.shallow_offset_of_max_timestamp = self.base + i64::from(rel);
        }
        self.index_bases = (0..oi.len())
            .map(|_| AtomicU32::new(UNKNOWN_BASE))
            .collect();
        self.offset_index = oi;
        self.time_index = ti;
        Ok(Ok(()))
    }

    /// Reads the header of the batch at `pos`, `None` if fewer than a header's bytes remain
    /// or it fails the sanity check.
    pub fn read_header(&self, pos: u64) -> PathIoResult<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_LEN];
        at(&self.log_path, self.log.read_exact_at(&mut buf, pos))?;
        Ok(batch::parse_header(&buf).ok())
    }

    /// Reads `len` bytes at `pos` of the `.log`.
    pub fn read_bytes(&self, pos: u64, len: usize) -> PathIoResult<Vec<u8>> {
        let mut buf = vec![0u8; len];
        at(&self.log_path, self.log.read_exact_at(&mut buf, pos))?;
        Ok(buf)
    }

    /// Sequentially reads whole batches from `start` up to `end`, checking header sanity,
    /// offset order (each base offset >= the previous batch's last offset + 1, and >= the
    /// segment base, relative offsets fit in u32) and, if `verify_crc`, the CRC-32C.
    /// Calls `f(position, header, whole batch bytes)` for each valid batch and stops at
    /// the first invalid one.
    pub fn scan(
        &self,
        start: u64,
        end: u64,
        verify_crc: bool,
        f: &mut dyn FnMut(u64, &BatchHeader, &[u8]),
    ) -> PathIoResult<ScanEnd> {
        let mut file = &*self.log;
        at(&self.log_path, file.seek(SeekFrom::Start(start)))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut pos = start;
        let mut min_next = self.base;
        let mut buf = Vec::new();
        let stop = |pos: u64, why: String| {
            Ok(ScanEnd {
                valid_end: pos,
                stopped: Some(why),
            })
        };
        while pos < end {
            if end - pos < HEADER_LEN as u64 {
                return stop(pos, format!("{} trailing bytes at {pos}", end - pos));
            }
            buf.resize(HEADER_LEN, 0);
            at(&self.log_path, reader.read_exact(&mut buf))?;
            let h = match batch::parse_header(&buf) {
                Ok(h) => h,
                Err(why) => return stop(pos, format!("bad batch header at {pos}: {why}")),
            };
            if pos + h.size as u64 > end {
                return stop(pos, format!("torn batch at {pos}"));
            }
            if h.base_offset < min_next || h.last_offset() - self.base > i64::from(u32::MAX) {
                return stop(
                    pos,
                    format!("out-of-order offset {} at {pos}", h.base_offset),
                );
            }
            buf.resize(h.size, 0);
            at(&self.log_path, reader.read_exact(&mut buf[HEADER_LEN..]))?;
            if verify_crc && !batch::crc_ok(&h, &buf) {
                return stop(pos, format!("CRC mismatch at {pos}"));
            }
            f(pos, &h, &buf);
            min_next = h.last_offset() + 1;
            pos += h.size as u64;
        }
        Ok(ScanEnd {
            valid_end: pos,
            stopped: None,
        })
    }

    /// Rebuilds the in-memory indexes and all derived state from the `.log` (from position
    /// 0) the way Kafka's `LogSegment.recover` does, truncates the `.log` at the first
    /// invalid batch, and replaces both index files (trimmed; see the module docs for why
    /// through a temporary file). The caller preallocates them again if the segment is the
    /// active one. Returns why the scan stopped early, if it did.
    pub fn rebuild(
        &mut self,
        verify_crc: bool,
        index_interval: u32,
    ) -> PathIoResult<Option<String>> {
        self.clear_indexes();
        let file_len = at(&self.log_path, self.log.metadata())?.len();
        self.size = file_len;
        let mut st = IndexBuilder::new(self.base);
        let end = self.scan(0, file_len, verify_crc, &mut |pos, h, bytes| {
            st.add(pos, h, bytes, index_interval, u64::MAX, u64::MAX);
        })?;
        st.seal();
        st.finish_into(self);
        if end.valid_end != file_len {
            at(&self.log_path, self.log.set_len(end.valid_end))?;
        }
        self.size = end.valid_end;
        self.replace_index_files()?;
        Ok(end.stopped)
    }

    /// Replaces both index files with the in-memory indexes: each written to `<name>.tmp`,
    /// fsynced and renamed over the old one (the directory is fsynced by the caller).
    fn replace_index_files(&mut self) -> PathIoResult<()> {
        let files = [
            (
                self.index_path.clone(),
                encode_offset_index(&self.offset_index),
            ),
            (self.time_path.clone(), encode_time_index(&self.time_index)),
        ];
        let mut opened = Vec::with_capacity(2);
        for (path, bytes) in files {
            let mut tmp = path.clone().into_os_string();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            let write = || -> io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_data()
            };
            if let Err(e) = write() {
                let _ = std::fs::remove_file(&tmp);
                return Err((tmp, e));
            }
            at(&path, std::fs::rename(&tmp, &path))?;
            opened.push(Arc::new(open_rw(&path)?));
        }
        self.time_file = opened.pop().expect("two files");
        self.index_file = opened.pop().expect("two files");
        Ok(())
    }

    /// Kafka `LogSegment.resizeIndexes(maxIndexSize)` for the active segment: both index
    /// files get their preallocated (sparse, zero) length.
    pub fn preallocate_indexes(&self, index_bytes: u64) -> PathIoResult<()> {
        let oi = (self.offset_index.len() as u64 * INDEX_ENTRY_LEN)
            .max(preallocated_len(index_bytes, INDEX_ENTRY_LEN));
        let ti = (self.time_index.len() as u64 * TIME_INDEX_ENTRY_LEN)
            .max(preallocated_len(index_bytes, TIME_INDEX_ENTRY_LEN));
        at(&self.index_path, self.index_file.set_len(oi))?;
        at(&self.time_path, self.time_file.set_len(ti))?;
        Ok(())
    }

    /// Kafka `AbstractIndex.trimToValidSize` on both indexes: when the segment stops being
    /// active (roll, close), the files shrink to their entries.
    pub fn trim_indexes(&self) -> PathIoResult<()> {
        let oi = self.offset_index.len() as u64 * INDEX_ENTRY_LEN;
        let ti = self.time_index.len() as u64 * TIME_INDEX_ENTRY_LEN;
        if at(&self.index_path, self.index_file.metadata())?.len() != oi {
            at(&self.index_path, self.index_file.set_len(oi))?;
        }
        if at(&self.time_path, self.time_file.metadata())?.len() != ti {
            at(&self.time_path, self.time_file.set_len(ti))?;
        }
        Ok(())
    }

    /// Appends `(rel, pos)` to the `.index`; `rel_base` is the batch's relative base offset.
    pub fn append_offset_entry(&mut self, rel: u32, pos: u32, rel_base: u32) -> PathIoResult<()> {
        let at_pos = self.offset_index.len() as u64 * INDEX_ENTRY_LEN;
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&pos.to_be_bytes());
        at(&self.index_path, self.index_file.write_all_at(&e, at_pos))?;
        self.offset_index.push((rel, pos));
        self.index_bases.push(AtomicU32::new(rel_base));
        Ok(())
    }

    /// Kafka `TimeIndex.maybeAppend(maxTimestampSoFar, shallowOffsetOfMaxTimestampSoFar)`:
    /// appends an entry if the segment's max timestamp grew past the last entry's (or past
    /// -1 when there is none).
    pub fn maybe_append_time_entry(&mut self) -> PathIoResult<()> {
        let last_ts = self.time_index.last().map_or(NO_TIMESTAMP, |&(ts, _)| ts);
        if self.max_timestamp <= last_ts || self.shallow_offset_of_max_timestamp < self.base {
            return Ok(());
        }
        let rel = (self.shallow_offset_of_max_timestamp - self.base) as u32;
        let at_pos = self.time_index.len() as u64 * TIME_INDEX_ENTRY_LEN;
        let mut e = [0u8; 12];
        e[..8].copy_from_slice(&self.max_timestamp.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        at(&self.time_path, self.time_file.write_all_at(&e, at_pos))?;
        self.time_index.push((self.max_timestamp, rel));
        Ok(())
    }

    /// `(offset, timestamp)` of the record carrying the segment's max timestamp, reading
    /// the batch found through the shallow offset when it was not seen since the open
    /// (Kafka `UnifiedLog` MAX_TIMESTAMP lookup). `None` if no batch has a timestamp.
    pub fn max_timestamp_record(&self) -> PathIoResult<Option<(i64, i64)>> {
        if self.max_timestamp == NO_TIMESTAMP || self.shallow_offset_of_max_timestamp < 0 {
            return Ok(None);
        }
        if self.offset_of_max_timestamp >= 0 {
            return Ok(Some((self.offset_of_max_timestamp, self.max_timestamp)));
        }
        let offset = match self.locate(self.shallow_offset_of_max_timestamp)? {
            Some((pos, h)) => {
                let bytes = self.read_bytes(pos, h.size)?;
                batch::offset_of_max_timestamp(&h, &bytes)
            }
            None => self.shallow_offset_of_max_timestamp,
        };
        Ok(Some((offset, self.max_timestamp)))
    }

    /// The relative base offset of the batch of index entry `i`; `None` if the batch at
    /// the entry's position does not end at its offset (the load checks only the last
    /// entry), and the entry is then never used as a start.
    fn entry_base(&self, i: usize) -> PathIoResult<Option<u32>> {
        let known = self.index_bases[i].load(Ordering::Relaxed);
        if known == BAD_BASE {
            return Ok(None);
        }
        if known != UNKNOWN_BASE {
            return Ok(Some(known));
        }
        let (rel_last, pos) = self.offset_index[i];
        let rel = match self.read_header(u64::from(pos))? {
            Some(h)
                if h.last_offset() == self.base + i64::from(rel_last)
                    && h.base_offset >= self.base =>
            {
                (h.base_offset - self.base) as u32
            }
            _ => BAD_BASE,
        };
        self.index_bases[i].store(rel, Ordering::Relaxed);
        Ok((rel != BAD_BASE).then_some(rel))
    }

    /// A batch start at or before the batch holding `offset` (0 if none is indexed): the
    /// first indexed batch ending at or after `offset` if it also starts at or before it,
    /// else the last indexed batch ending before it (Kafka `OffsetIndex.lookup`).
    pub fn floor_position(&self, offset: i64) -> PathIoResult<u64> {
        if offset <= self.base {
            return Ok(0);
        }
        let rel = (offset - self.base).min(i64::from(u32::MAX)) as u32;
        let i = self.offset_index.partition_point(|&(r, _)| r < rel);
        if i < self.offset_index.len() && self.entry_base(i)?.is_some_and(|b| b <= rel) {
            return Ok(u64::from(self.offset_index[i].1));
        }
        Ok(i.checked_sub(1)
            .map_or(0, |i| u64::from(self.offset_index[i].1)))
    }

    /// The greatest batch start in the offset index at or before `position`, with that
    /// batch's base offset, if any: a batch boundary found without walking the file.
    pub fn indexed_batch_start_at_or_before(
        &self,
        position: u64,
    ) -> PathIoResult<Option<(u64, i64)>> {
        let i = self
            .offset_index
            .partition_point(|&(_, p)| u64::from(p) <= position);
        let Some(i) = i.checked_sub(1) else {
            return Ok(None);
        };
        Ok(self
            .entry_base(i)?
            .map(|b| (u64::from(self.offset_index[i].1), self.base + i64::from(b))))
    }

    /// Position of the first batch with `last_offset >= offset`, with its header, or None
    /// if every batch in the segment ends before `offset`.
    pub fn locate(&self, offset: i64) -> PathIoResult<Option<(u64, BatchHeader)>> {
        let mut pos = self.floor_position(offset)?;
        while pos < self.size {
            let Some(h) = self.read_header(pos)? else {
                return Ok(None);
            };
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// Kafka `AbstractIndex.maxEntries` of an index preallocated to `index_bytes`.
    pub fn max_index_entries(index_bytes: u64, entry: u64) -> usize {
        (preallocated_len(index_bytes, entry) / entry).max(1) as usize
    }

    pub fn index_full(&self, segment_index_bytes: u64) -> bool {
        self.offset_index.len() >= Self::max_index_entries(segment_index_bytes, INDEX_ENTRY_LEN)
            || self.time_index.len()
                >= Self::max_index_entries(segment_index_bytes, TIME_INDEX_ENTRY_LEN)
    }

    /// Loads the valid entries of the `.txnindex` (empty if there is none) and opens it
    /// for appending; a file with an invalid tail is rewritten with its valid prefix.
    pub fn load_txn_entries(&mut self) -> PathIoResult<Vec<AbortedTxn>> {
        let b = match std::fs::read(&self.txn_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err((self.txn_path.clone(), e)),
        };
        let entries = txn_index::decode_entries(&b, self.base, self.next_offset);
        if entries.is_empty() || entries.len() * txn_index::TXN_ENTRY_LEN != b.len() {
            self.write_txn_entries(&entries)?;
        } else {
            self.open_txn_file()?;
            self.txn_entries = entries.len() as u64;
        }
        Ok(entries)
    }

    /// Replaces the `.txnindex` with `entries` (removing the file when there are none) and
    /// fsyncs it: a rewrite can drop entries of data already counted as flushed, and a
    /// torn rewrite must not lose those. Only recovery and truncation rewrite.
    pub fn write_txn_entries(&mut self, entries: &[AbortedTxn]) -> PathIoResult<()> {
        if entries.is_empty() {
            self.txn_file = None;
            self.txn_entries = 0;
            return match std::fs::remove_file(&self.txn_path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err((self.txn_path.clone(), e)),
                _ => Ok(()),
            };
        }
        let mut b = Vec::with_capacity(entries.len() * txn_index::TXN_ENTRY_LEN);
        for e in entries {
            b.extend_from_slice(&txn_index::encode_entry(e));
        }
        let f = self.open_txn_file()?;
        at(&self.txn_path, f.set_len(0))?;
        at(&self.txn_path, f.write_all_at(&b, 0))?;
        at(&self.txn_path, f.sync_data())?;
        self.txn_entries = entries.len() as u64;
        Ok(())
    }

    /// Appends one entry; returns whether the file had to be created.
    pub fn append_txn_entry(&mut self, entry: &AbortedTxn) -> PathIoResult<bool> {
        let created = self.txn_file.is_none();
        let f = self.open_txn_file()?;
        let pos = self.txn_entries * txn_index::TXN_ENTRY_LEN as u64;
        at(
            &self.txn_path,
            f.write_all_at(&txn_index::encode_entry(entry), pos),
        )?;
        self.txn_entries += 1;
        Ok(created)
    }

    fn open_txn_file(&mut self) -> PathIoResult<Arc<File>> {
        if let Some(f) = &self.txn_file {
            return Ok(f.clone());
        }
        let f = Arc::new(at(
            &self.txn_path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.txn_path),
        )?);
        self.txn_file = Some(f.clone());
        Ok(f)
    }

    pub fn sync_all(&self) -> PathIoResult<()> {
        if let Some(f) = &self.txn_file {
            at(&self.txn_path, f.sync_data())?;
        }
        at(&self.log_path, self.log.sync_data())?;
        at(&self.index_path, self.index_file.sync_data())?;
        at(&self.time_path, self.time_file.sync_data())?;
        Ok(())
    }

    pub fn remove_files(&self) -> PathIoResult<()> {
        for p in [
            &self.log_path,
            &self.index_path,
            &self.time_path,
            &self.txn_path,
        ] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err((p.clone(), e)),
            }
        }
        Ok(())
    }
}

/// The whole (trimmed) `.index` file for these entries.
pub fn encode_offset_index(entries: &[(u32, u32)]) -> Vec<u8> {
    let mut ib = Vec::with_capacity(entries.len() * INDEX_ENTRY_LEN as usize);
    for &(rel, pos) in entries {
        ib.extend_from_slice(&rel.to_be_bytes());
        ib.extend_from_slice(&pos.to_be_bytes());
    }
    ib
}

/// The whole (trimmed) `.timeindex` file for these entries.
pub fn encode_time_index(entries: &[(i64, u32)]) -> Vec<u8> {
    let mut tb = Vec::with_capacity(entries.len() * TIME_INDEX_ENTRY_LEN as usize);
    for &(ts, rel) in entries {
        tb.extend_from_slice(&ts.to_be_bytes());
        tb.extend_from_slice(&rel.to_be_bytes());
    }
    tb
}

/// Builds the in-memory index state batch by batch, the way Kafka's `LogSegment.append`
/// and `recover` do (and `Log::append` does).
pub struct IndexBuilder {
    base: i64,
    pub offset_index: Vec<(u32, u32)>,
    index_bases: Vec<u32>,
    pub time_index: Vec<(i64, u32)>,
    pub max_timestamp: i64,
    pub shallow_offset_of_max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    pub first_batch_timestamp: Option<i64>,
    pub bytes_since: u64,
    pub next_offset: i64,
}

impl IndexBuilder {
    pub fn new(base: i64) -> Self {
        IndexBuilder {
            base,
            offset_index: Vec::new(),
            index_bases: Vec::new(),
            time_index: Vec::new(),
            max_timestamp: NO_TIMESTAMP,
            shallow_offset_of_max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_batch_timestamp: None,
            bytes_since: 0,
            next_offset: base,
        }
    }

    pub fn add(
        &mut self,
        pos: u64,
        h: &BatchHeader,
        bytes: &[u8],
        interval: u32,
        max_oi: u64,
        max_ti: u64,
    ) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(h.max_timestamp);
        }
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.shallow_offset_of_max_timestamp = h.last_offset();
            self.offset_of_max_timestamp = batch::offset_of_max_timestamp(h, bytes);
        }
        if self.bytes_since > u64::from(interval) && pos <= u64::from(u32::MAX) {
            if (self.offset_index.len() as u64) < max_oi {
                self.offset_index
                    .push(((h.last_offset() - self.base) as u32, pos as u32));
                self.index_bases.push((h.base_offset - self.base) as u32);
            }
            if (self.time_index.len() as u64) < max_ti {
                self.maybe_time_entry();
            }
            self.bytes_since = 0;
        }
        self.bytes_since += h.size as u64;
        self.next_offset = h.last_offset() + 1;
    }

    fn maybe_time_entry(&mut self) {
        let last_ts = self.time_index.last().map_or(NO_TIMESTAMP, |&(ts, _)| ts);
        if self.max_timestamp > last_ts && self.shallow_offset_of_max_timestamp >= self.base {
            self.time_index.push((
                self.max_timestamp,
                (self.shallow_offset_of_max_timestamp - self.base) as u32,
            ));
        }
    }

    /// The entry a segment gets when it stops being active or is recovered: the time index
    /// ends with the segment's max timestamp (see the `.timeindex` docs above).
    pub fn seal(&mut self) {
        self.maybe_time_entry();
    }

    fn finish_into(self, seg: &mut Segment) {
        seg.offset_index = self.offset_index;
        seg.index_bases = self.index_bases.into_iter().map(AtomicU32::new).collect();
        seg.time_index = self.time_index;
        seg.max_timestamp = self.max_timestamp;
        seg.shallow_offset_of_max_timestamp = self.shallow_offset_of_max_timestamp;
        seg.offset_of_max_timestamp = self.offset_of_max_timestamp;
        seg.first_batch_timestamp = self.first_batch_timestamp;
        seg.bytes_since_index_entry = self.bytes_since;
        seg.next_offset = self.next_offset;
    }
}
