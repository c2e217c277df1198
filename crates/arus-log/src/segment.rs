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
//! # `.index` (offset → file position), format version [`INDEX_VERSION`]
//! ```text
//! header  : magic "ARIX" (4) | version u8 = 1 | 3 reserved zero bytes      = 8 bytes
//! entries : relative_offset u32 BE | position u32 BE                         = 8 bytes each
//! ```
//! `relative_offset` = a batch's base offset − segment base offset; `position` is where that
//! batch starts in the `.log`. One entry after every `index_interval_bytes` of batches
//! (the first batch at position 0 has no entry). Entries are strictly increasing in both
//! fields. The file is append-only (not preallocated).
//!
//! # `.timeindex` (timestamp → offset), format version [`TIME_INDEX_VERSION`]
//! ```text
//! header  : magic "ARTI" (4) | version u8 = 1 | 3 reserved zero bytes      = 8 bytes
//! entries : timestamp i64 BE | relative_offset u32 BE                        = 12 bytes each
//! ```
//! An entry `(T, o)` says: the largest timestamp in the segment up to and including the
//! record at `base + o` is `T`, and that record carries it. Entries are written alongside
//! `.index` entries when the segment's max timestamp has grown since the last entry, and
//! once more when the segment stops being active (roll / close), so the last entry of an
//! inactive segment is the segment's max timestamp. Timestamps strictly increase.
//!
//! # `.txnindex`
//! Aborted transactions whose marker is in the segment; see [`crate::txn_index`]. Unlike
//! the two indexes above it is not derivable from the segment alone, so it is fsynced with
//! the segment and rebuilt only by producer-state replay.
//!
//! Index files are a cache: they are sanity-checked at open and rebuilt from the `.log` when
//! missing, malformed, or when the segment is scanned during recovery.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_LEN, NO_TIMESTAMP};
use crate::producer_state::AbortedTxn;
use crate::txn_index::{self, TXN_INDEX_SUFFIX};

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";

/// Header of the `.index` file.
pub const INDEX_MAGIC: &[u8; 4] = b"ARIX";
pub const INDEX_VERSION: u8 = 1;
/// Header of the `.timeindex` file.
pub const TIME_INDEX_MAGIC: &[u8; 4] = b"ARTI";
pub const TIME_INDEX_VERSION: u8 = 1;
/// Both index files start with an 8-byte header (magic, version, 3 reserved bytes).
pub const INDEX_HEADER_LEN: u64 = 8;
pub const INDEX_ENTRY_LEN: u64 = 8;
pub const TIME_INDEX_ENTRY_LEN: u64 = 12;

pub fn segment_path(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}.{suffix}"))
}

fn index_header(magic: &[u8; 4], version: u8) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(magic);
    h[4] = version;
    h
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
    /// `(relative offset, position)`, mirrors `.index`.
    pub offset_index: Vec<(u32, u32)>,
    /// `(timestamp, relative offset)`, mirrors `.timeindex`.
    pub time_index: Vec<(i64, u32)>,
    pub max_timestamp: i64,
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

impl Segment {
    /// Creates a fresh, empty segment (truncating any leftover files of that name).
    pub fn create(dir: &Path, base: i64, now_ms: i64) -> PathIoResult<Segment> {
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
        let mut seg = Segment::with_log(dir, base, log_path, log, now_ms)?;
        seg.write_index_files()?;
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
        let open_rw = |p: &Path| {
            at(
                p,
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(p),
            )
        };
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
            time_index: Vec::new(),
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            first_batch_timestamp: None,
            created_ms: now_ms,
            bytes_since_index_entry: 0,
        })
    }

    /// Opens an existing segment. Loads the index files if they pass a sanity check and
    /// walks the batches after the last index entry to find the end (headers checked, CRC
    /// not). Returns the segment and whether it needs a full recovery scan (indexes bad or
    /// tail inconsistent); in that case the in-memory indexes are empty and must be rebuilt.
    pub fn open(dir: &Path, base: i64, now_ms: i64) -> PathIoResult<(Segment, bool)> {
        let log_path = segment_path(dir, base, LOG_SUFFIX);
        let log = at(
            &log_path,
            OpenOptions::new().read(true).write(true).open(&log_path),
        )?;
        let file_len = at(&log_path, log.metadata())?.len();
        let mut seg = Segment::with_log(dir, base, log_path, log, now_ms)?;
        seg.size = file_len;
        let loaded = seg.load_indexes(file_len)?;
        if !loaded {
            return Ok((seg, true));
        }
        // Walk the tail after the last index entry.
        let (start_pos, start_next) = match seg.offset_index.last() {
            Some(&(_rel, pos)) => (u64::from(pos), base),
            None => (0, base),
        };
        seg.bytes_since_index_entry = 0;
        let mut next = start_next;
        let mut max_ts = seg.max_timestamp;
        let mut off_max = seg.offset_of_max_timestamp;
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
                off_max = batch::offset_of_max_timestamp(h, bytes);
            }
        })?;
        if end.stopped.is_some() || end.valid_end != file_len {
            seg.clear_indexes();
            return Ok((seg, true));
        }
        seg.next_offset = next;
        seg.max_timestamp = max_ts;
        seg.offset_of_max_timestamp = off_max;
        // The first index entry is never at position 0, so the walk from the last entry
        // only covered the first batch when there were no entries.
        seg.first_batch_timestamp = match first_ts {
            Some(t) => Some(t),
            None if file_len > 0 => seg.read_header(0)?.map(|h| h.max_timestamp),
            None => None,
        };
        seg.bytes_since_index_entry = since;
        Ok((seg, false))
    }

    fn clear_indexes(&mut self) {
        self.offset_index.clear();
        self.time_index.clear();
        self.max_timestamp = NO_TIMESTAMP;
        self.offset_of_max_timestamp = -1;
        self.first_batch_timestamp = None;
        self.bytes_since_index_entry = 0;
        self.next_offset = self.base;
    }

    /// Reads and sanity-checks both index files; false if either is missing or malformed.
    fn load_indexes(&mut self, log_len: u64) -> PathIoResult<bool> {
        let mut ibuf = Vec::new();
        let mut tbuf = Vec::new();
        at(&self.index_path, (&*self.index_file).read_to_end(&mut ibuf))?;
        at(&self.time_path, (&*self.time_file).read_to_end(&mut tbuf))?;
        let ok_header = |b: &[u8], magic: &[u8; 4], v: u8, entry: u64| {
            b.len() as u64 >= INDEX_HEADER_LEN
                && &b[..4] == magic
                && b[4] == v
                && (b.len() as u64 - INDEX_HEADER_LEN).is_multiple_of(entry)
        };
        if !ok_header(&ibuf, INDEX_MAGIC, INDEX_VERSION, INDEX_ENTRY_LEN)
            || !ok_header(
                &tbuf,
                TIME_INDEX_MAGIC,
                TIME_INDEX_VERSION,
                TIME_INDEX_ENTRY_LEN,
            )
        {
            return Ok(false);
        }
        let mut oi = Vec::new();
        for e in ibuf[INDEX_HEADER_LEN as usize..].chunks_exact(INDEX_ENTRY_LEN as usize) {
            let rel = u32::from_be_bytes(e[..4].try_into().unwrap());
            let pos = u32::from_be_bytes(e[4..].try_into().unwrap());
            if let Some(&(prel, ppos)) = oi.last()
                && (rel <= prel || pos <= ppos)
            {
                return Ok(false);
            }
            if u64::from(pos) >= log_len || pos == 0 {
                return Ok(false);
            }
            oi.push((rel, pos));
        }
        let mut ti: Vec<(i64, u32)> = Vec::new();
        for e in tbuf[INDEX_HEADER_LEN as usize..].chunks_exact(TIME_INDEX_ENTRY_LEN as usize) {
            let ts = i64::from_be_bytes(e[..8].try_into().unwrap());
            let rel = u32::from_be_bytes(e[8..].try_into().unwrap());
            if let Some(&(pts, prel)) = ti.last()
                && (ts <= pts || rel < prel)
            {
                return Ok(false);
            }
            ti.push((ts, rel));
        }
        // Every indexed batch must actually start with a sane header at that position
        // with the recorded offset (cheap check of the last entry).
        if let Some(&(rel, pos)) = oi.last() {
            match self.read_header(u64::from(pos))? {
                Some(h) if h.base_offset == self.base + i64::from(rel) => {}
                _ => return Ok(false),
            }
        }
        if let Some(&(ts, rel)) = ti.last() {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = self.base + i64::from(rel);
        }
        self.offset_index = oi;
        self.time_index = ti;
        Ok(true)
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
    /// 0), truncates the `.log` at the first invalid batch, and rewrites both index files.
    /// Returns why the scan stopped early, if it did.
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
        st.finish_into(self);
        if end.valid_end != file_len {
            at(&self.log_path, self.log.set_len(end.valid_end))?;
        }
        self.size = end.valid_end;
        self.write_index_files()?;
        Ok(end.stopped)
    }

    /// Rewrites both index files from the in-memory indexes.
    pub fn write_index_files(&mut self) -> PathIoResult<()> {
        let ib = encode_offset_index(&self.offset_index);
        let tb = encode_time_index(&self.time_index);
        at(&self.index_path, self.index_file.set_len(0))?;
        at(&self.index_path, self.index_file.write_all_at(&ib, 0))?;
        at(&self.time_path, self.time_file.set_len(0))?;
        at(&self.time_path, self.time_file.write_all_at(&tb, 0))?;
        Ok(())
    }

    pub fn append_offset_entry(&mut self, rel: u32, pos: u32) -> PathIoResult<()> {
        let at_pos = INDEX_HEADER_LEN + self.offset_index.len() as u64 * INDEX_ENTRY_LEN;
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&pos.to_be_bytes());
        at(&self.index_path, self.index_file.write_all_at(&e, at_pos))?;
        self.offset_index.push((rel, pos));
        Ok(())
    }

    /// Appends a time index entry for the current max timestamp if it grew since the last
    /// entry.
    pub fn maybe_append_time_entry(&mut self) -> PathIoResult<()> {
        if self.max_timestamp == NO_TIMESTAMP && self.offset_of_max_timestamp < 0 {
            return Ok(());
        }
        if let Some(&(ts, _)) = self.time_index.last()
            && ts >= self.max_timestamp
        {
            return Ok(());
        }
        let rel = (self.offset_of_max_timestamp - self.base) as u32;
        let at_pos = INDEX_HEADER_LEN + self.time_index.len() as u64 * TIME_INDEX_ENTRY_LEN;
        let mut e = [0u8; 12];
        e[..8].copy_from_slice(&self.max_timestamp.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        at(&self.time_path, self.time_file.write_all_at(&e, at_pos))?;
        self.time_index.push((self.max_timestamp, rel));
        Ok(())
    }

    /// Position of the last indexed batch whose base offset is <= `offset` (0 if none).
    pub fn floor_position(&self, offset: i64) -> u64 {
        if offset <= self.base {
            return 0;
        }
        let rel = (offset - self.base).min(i64::from(u32::MAX)) as u32;
        let i = self.offset_index.partition_point(|&(r, _)| r <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.offset_index[i - 1].1)
        }
    }

    /// The greatest batch start in the offset index at or before `position`, as (position,
    /// the batch's base offset), if any: a batch boundary found without reading the file
    /// (index entries always point at batch starts and hold their base offsets).
    pub fn indexed_batch_start_at_or_before(&self, position: u64) -> Option<(u64, i64)> {
        let i = self
            .offset_index
            .partition_point(|&(_, p)| u64::from(p) <= position);
        i.checked_sub(1).map(|i| {
            let (rel, pos) = self.offset_index[i];
            (u64::from(pos), self.base + i64::from(rel))
        })
    }

    /// Position of the first batch with `last_offset >= offset`, with its header, or None
    /// if every batch in the segment ends before `offset`.
    pub fn locate(&self, offset: i64) -> PathIoResult<Option<(u64, BatchHeader)>> {
        let mut pos = self.floor_position(offset);
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

    pub fn max_index_entries(index_bytes: u64, entry: u64) -> usize {
        (index_bytes.saturating_sub(INDEX_HEADER_LEN) / entry).max(1) as usize
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

/// The whole `.index` file for these entries.
pub fn encode_offset_index(entries: &[(u32, u32)]) -> Vec<u8> {
    let mut ib = Vec::with_capacity(8 + entries.len() * 8);
    ib.extend_from_slice(&index_header(INDEX_MAGIC, INDEX_VERSION));
    for &(rel, pos) in entries {
        ib.extend_from_slice(&rel.to_be_bytes());
        ib.extend_from_slice(&pos.to_be_bytes());
    }
    ib
}

/// The whole `.timeindex` file for these entries.
pub fn encode_time_index(entries: &[(i64, u32)]) -> Vec<u8> {
    let mut tb = Vec::with_capacity(8 + entries.len() * 12);
    tb.extend_from_slice(&index_header(TIME_INDEX_MAGIC, TIME_INDEX_VERSION));
    for &(ts, rel) in entries {
        tb.extend_from_slice(&ts.to_be_bytes());
        tb.extend_from_slice(&rel.to_be_bytes());
    }
    tb
}

/// Builds the in-memory index state batch by batch, the same way `append` does.
pub struct IndexBuilder {
    base: i64,
    pub offset_index: Vec<(u32, u32)>,
    pub time_index: Vec<(i64, u32)>,
    pub max_timestamp: i64,
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
            time_index: Vec::new(),
            max_timestamp: NO_TIMESTAMP,
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
            self.offset_of_max_timestamp = batch::offset_of_max_timestamp(h, bytes);
        }
        if self.bytes_since >= u64::from(interval) && pos > 0 && pos <= u64::from(u32::MAX) {
            if (self.offset_index.len() as u64) < max_oi {
                self.offset_index
                    .push(((h.base_offset - self.base) as u32, pos as u32));
            }
            if self.offset_of_max_timestamp >= 0
                && (self.time_index.len() as u64) < max_ti
                && self
                    .time_index
                    .last()
                    .is_none_or(|&(ts, _)| ts < self.max_timestamp)
            {
                self.time_index.push((
                    self.max_timestamp,
                    (self.offset_of_max_timestamp - self.base) as u32,
                ));
            }
            self.bytes_since = 0;
        }
        self.bytes_since += h.size as u64;
        self.next_offset = h.last_offset() + 1;
    }

    /// The entry a segment gets when it stops being active: the time index ends with the
    /// segment's max timestamp (see the `.timeindex` docs above).
    pub fn seal(&mut self) {
        if self.offset_of_max_timestamp >= 0
            && self
                .time_index
                .last()
                .is_none_or(|&(ts, _)| ts < self.max_timestamp)
        {
            self.time_index.push((
                self.max_timestamp,
                (self.offset_of_max_timestamp - self.base) as u32,
            ));
        }
    }

    fn finish_into(self, seg: &mut Segment) {
        seg.offset_index = self.offset_index;
        seg.time_index = self.time_index;
        seg.max_timestamp = self.max_timestamp;
        seg.offset_of_max_timestamp = self.offset_of_max_timestamp;
        seg.first_batch_timestamp = self.first_batch_timestamp;
        seg.bytes_since_index_entry = self.bytes_since;
        seg.next_offset = self.next_offset;
    }
}
