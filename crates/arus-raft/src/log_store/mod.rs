//! openraft's log storage: segment files (format in [`segment`]), the vote and the purge point.
//!
//! Files in the log directory:
//! - `log-{index:020}.seg`: the entries (see [`segment`]).
//! - `vote`: the last vote ([`crate::checked`] file, magic `AVOT`), written atomically and
//!   durably before `save_vote` returns, as Raft requires.
//! - `purged`: the last purged log id (magic `APRG`), written before segments are deleted, so
//!   after a crash the log still starts right after it.
//! - `committed`: the last committed log id known here (magic `ACMT`), written without fsync:
//!   it is a hint that lets a restarted node re-apply its committed entries before it hears
//!   from a leader (as a KRaft broker replays its local metadata log). A lost or damaged file
//!   only means less is replayed; it is clamped to the recovered log, whose entries up to it
//!   are committed (Raft never truncates committed entries).
//!
//! The whole unpurged log is also kept in memory: the metadata log is small and bounded by
//! snapshots, and reads (replication, apply) then never touch the disk. Writes are synchronous
//! file I/O; the metadata log sees few, small writes, each fsynced before it is acknowledged.

pub(crate) mod segment;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogId, RaftLogReader, StorageIOError};

use crate::checked;
use crate::disk::Disk;
use crate::error::StoreError;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const VOTE_FILE: &str = "vote";
const VOTE_MAGIC: [u8; 4] = *b"AVOT";
const PURGED_FILE: &str = "purged";
const PURGED_MAGIC: [u8; 4] = *b"APRG";
const COMMITTED_FILE: &str = "committed";
const COMMITTED_MAGIC: [u8; 4] = *b"ACMT";

/// Default size at which a new segment is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
struct SegmentState {
    size: u64,
    last: Option<u64>,
}

#[derive(Debug)]
struct Stored {
    entry: Entry,
    segment: u64,
    offset: u64,
}

struct Inner {
    disk: Arc<dyn Disk>,
    segment_bytes: u64,
    entries: BTreeMap<u64, Stored>,
    segments: BTreeMap<u64, SegmentState>,
    vote: Option<Vote>,
    purged: Option<LogId>,
}

/// The Raft log of one node. Clones share the same log (one is openraft's reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens the log in `disk`, recovering from a crash: a torn tail of the last segment is
    /// cut off (it was never acknowledged).
    pub fn open(disk: Arc<dyn Disk>, segment_bytes: u64) -> Result<Self, StoreError> {
        let vote = match disk.read(VOTE_FILE)? {
            Some(data) => Some(checked::decode(VOTE_FILE, VOTE_MAGIC, &data)?),
            None => None,
        };
        let purged: Option<LogId> = match disk.read(PURGED_FILE)? {
            Some(data) => Some(checked::decode(PURGED_FILE, PURGED_MAGIC, &data)?),
            None => None,
        };
        let bases: Vec<u64> = disk
            .list()?
            .iter()
            .filter_map(|name| segment::parse_file_name(name))
            .collect();
        let mut entries = BTreeMap::new();
        let mut segments = BTreeMap::new();
        let purged_index = purged.map(|p| p.index);
        for (i, &base) in bases.iter().enumerate() {
            let name = segment::file_name(base);
            let data = disk.read(&name)?.unwrap_or_default();
            let scan = segment::scan(&name, &data)?;
            if let Some(damage) = &scan.damage {
                if i + 1 != bases.len() {
                    return Err(StoreError::Corrupt {
                        file: name,
                        reason: damage.clone(),
                    });
                }
                tracing::warn!(
                    segment = %name,
                    damage = %damage,
                    kept_bytes = scan.valid_len,
                    "dropping the torn tail of the metadata log (never acknowledged)"
                );
                disk.truncate(&name, scan.valid_len)?;
            }
            let mut last = None;
            for (offset, entry) in scan.entries {
                let index = entry.log_id.index;
                last = Some(index);
                if purged_index.is_some_and(|p| index <= p) {
                    continue;
                }
                let expected = entries
                    .keys()
                    .next_back()
                    .map(|prev| prev + 1)
                    .or(purged_index.map(|p| p + 1));
                if expected.is_some_and(|e| e != index) {
                    return Err(StoreError::Corrupt {
                        file: name,
                        reason: format!("entry {index} where {expected:?} was expected"),
                    });
                }
                entries.insert(
                    index,
                    Stored {
                        entry,
                        segment: base,
                        offset,
                    },
                );
            }
            segments.insert(
                base,
                SegmentState {
                    size: scan.valid_len,
                    last,
                },
            );
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                disk,
                segment_bytes: segment_bytes.max(1),
                entries,
                segments,
                vote,
                purged,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log id of the last entry (or of the purge point when the log is empty).
    pub fn last_log_id(&self) -> Option<LogId> {
        let inner = self.lock();
        inner.last_log_id()
    }

    /// The number of entries kept (not purged).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether nothing was ever written: no vote, no entry, no purge point.
    pub fn is_pristine(&self) -> bool {
        let inner = self.lock();
        inner.vote.is_none() && inner.entries.is_empty() && inner.purged.is_none()
    }

    /// The entries of `range` for openraft: a prefix of the range that starts at its start, or
    /// nothing. When the start was purged meanwhile (openraft 0.9's replication can retry a
    /// range the leader has since purged), returning the later entries would send a follower
    /// entries that do not follow its `prev_log_id`; an empty answer makes openraft fall back to
    /// a heartbeat and then to a snapshot.
    fn consecutive_entries(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let inner = self.lock();
        if inner.purged.is_some_and(|p| start <= p.index) {
            tracing::debug!(start, purged = ?inner.purged, "log read below the purge point");
            return Vec::new();
        }
        inner
            .entries
            .range(range)
            .map(|(_, s)| s.entry.clone())
            .collect()
    }

    /// A copy of the entries in `range` (tests and diagnostics).
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        let inner = self.lock();
        inner
            .entries
            .range(range)
            .map(|(_, s)| s.entry.clone())
            .collect()
    }
}

impl Inner {
    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .values()
            .next_back()
            .map(|s| *s.entry.get_log_id())
            .or(self.purged)
    }

    fn append(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let mut touched = Vec::new();
        for entry in entries {
            let frame = segment::encode_frame(&entry)?;
            let index = entry.log_id.index;
            let base = match self.segments.iter().next_back() {
                Some((&base, state)) if state.size < self.segment_bytes => base,
                _ => index,
            };
            let name = segment::file_name(base);
            let state = self.segments.entry(base).or_insert(SegmentState {
                size: 0,
                last: None,
            });
            let offset = state.size;
            self.disk.append(&name, &frame)?;
            state.size += frame.len() as u64;
            state.last = Some(index);
            self.entries.insert(
                index,
                Stored {
                    entry,
                    segment: base,
                    offset,
                },
            );
            if touched.last() != Some(&base) {
                touched.push(base);
            }
        }
        for base in touched {
            self.disk.sync(&segment::file_name(base))?;
        }
        Ok(())
    }

    fn truncate(&mut self, from: u64) -> Result<(), StoreError> {
        let Some(first) = self.entries.get(&from) else {
            self.entries.split_off(&from);
            return Ok(());
        };
        let (segment, offset) = (first.segment, first.offset);
        // Later segments go first: a crash in between leaves a shorter, still consecutive log.
        let later: Vec<u64> = self
            .segments
            .range(segment + 1..)
            .map(|(&b, _)| b)
            .collect();
        for base in later.into_iter().rev() {
            self.disk.remove(&segment::file_name(base))?;
            self.segments.remove(&base);
        }
        let name = segment::file_name(segment);
        if offset == 0 {
            self.disk.remove(&name)?;
            self.segments.remove(&segment);
        } else {
            self.disk.truncate(&name, offset)?;
            let last = (from > segment).then(|| from - 1);
            self.segments
                .insert(segment, SegmentState { size: offset, last });
        }
        self.entries.split_off(&from);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> Result<(), StoreError> {
        if self.purged.is_some_and(|p| p.index >= upto.index) {
            return Ok(());
        }
        self.disk
            .write_atomic(PURGED_FILE, &checked::encode(PURGED_MAGIC, &upto)?)?;
        self.purged = Some(upto);
        let keep = self.entries.split_off(&(upto.index + 1));
        self.entries = keep;
        let dead: Vec<u64> = self
            .segments
            .iter()
            .filter(|(_, s)| s.last.is_none_or(|last| last <= upto.index))
            .map(|(&b, _)| b)
            .collect();
        for base in dead {
            self.disk.remove(&segment::file_name(base))?;
            self.segments.remove(&base);
        }
        Ok(())
    }
}

fn write_logs(e: StoreError) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.consecutive_entries(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let data = checked::encode(VOTE_MAGIC, vote)
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        inner
            .disk
            .write_atomic(VOTE_FILE, &data)
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let Some(committed) = committed else {
            return Ok(());
        };
        let inner = self.lock();
        let data = checked::encode(COMMITTED_MAGIC, &committed).map_err(write_logs)?;
        if let Err(e) = inner.disk.write_volatile(COMMITTED_FILE, &data) {
            // Only a hint: failing to record it costs a longer replay after a restart.
            tracing::warn!(error = %e, "cannot record the committed index of the metadata log");
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let inner = self.lock();
        let saved: Option<LogId> = match inner.disk.read(COMMITTED_FILE) {
            Ok(Some(data)) => checked::decode(COMMITTED_FILE, COMMITTED_MAGIC, &data).ok(),
            _ => None,
        };
        let Some(saved) = saved else {
            return Ok(None);
        };
        // Clamp to what the log holds: the entry there is the committed one.
        let clamped = match inner.entries.range(..=saved.index).next_back() {
            Some((_, stored)) => Some(stored.entry.log_id),
            None => inner.purged.filter(|p| p.index <= saved.index),
        };
        Ok(clamped)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.lock().append(entries.into_iter().collect());
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_logs(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock().truncate(log_id.index).map_err(write_logs)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock().purge(log_id).map_err(write_logs)
    }
}

#[cfg(test)]
mod tests;
