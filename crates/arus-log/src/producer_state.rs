//! Per-partition producer state: idempotence (sequence numbers, duplicate detection),
//! producer fencing, and the transactions in progress — Kafka's `ProducerStateManager`,
//! `ProducerStateEntry` and `ProducerAppendInfo` (Kafka 4.x). Pure logic, no I/O: the
//! [`crate::Log`] owns one manager and persists it through snapshots (format below) and
//! the `.txnindex` files.
//!
//! # Snapshot format (version [`SNAPSHOT_VERSION`])
//! Stored as `<20-digit offset>.snapshot`; the state reflects every batch below that offset.
//! All integers big-endian.
//! ```text
//! magic "ARPS" (4) | version u8 = 1 | 3 reserved zero bytes
//! crc u32                         CRC-32C of every byte after this field
//! offset i64                      equal to the file name's offset
//! producer_count u32
//! producer entries:
//!   producer_id i64 | producer_epoch i16 | coordinator_epoch i32 | last_timestamp i64
//!   current_txn_first_offset i64 (-1: none) | batch_count u8 (<= 5)
//!   batches: first_seq i32 | last_seq i32 | first_offset i64 | last_offset i64
//!            | timestamp i64                                       (32 bytes each)
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::batch::{BatchHeader, ControlMarker, NO_SEQUENCE};

/// Kafka `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`: how many batches per producer are
/// remembered for duplicate detection (the client's max in-flight requests).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Kafka `RecordBatch.NO_PRODUCER_EPOCH`: the producer's epoch is not known.
pub const NO_PRODUCER_EPOCH: i16 = -1;

pub const SNAPSHOT_MAGIC: &[u8; 4] = b"ARPS";
pub const SNAPSHOT_VERSION: u8 = 1;
const SNAPSHOT_HEADER_LEN: usize = 8 + 4 + 8 + 4;
const SNAPSHOT_ENTRY_LEN: usize = 8 + 2 + 4 + 8 + 8 + 1;
const SNAPSHOT_BATCH_LEN: usize = 4 + 4 + 8 + 8 + 8;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProducerStateError {
    /// Kafka error 47.
    #[error(
        "producer {producer_id}: epoch {epoch} at offset {offset} is older than the current epoch {current_epoch} (fenced)"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
        offset: i64,
    },
    /// Kafka error 45.
    #[error(
        "producer {producer_id} epoch {epoch}: out-of-order sequence number at offset {offset}: {first_seq} (incoming), {last_seq} (current end sequence; a new epoch must start at 0)"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
        offset: i64,
    },
    /// Kafka error 48.
    #[error(
        "producer {producer_id}: non-transactional batch at offset {offset} while the transaction started at offset {txn_first_offset} is ongoing"
    )]
    InvalidTxnState {
        producer_id: i64,
        offset: i64,
        txn_first_offset: i64,
    },
    /// Kafka error 52.
    #[error(
        "producer {producer_id}: transaction marker at offset {offset} has coordinator epoch {coordinator_epoch}, older than the current {current_coordinator_epoch}"
    )]
    CoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current_coordinator_epoch: i32,
        offset: i64,
    },
}

impl ProducerStateError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ProducerStateError::InvalidProducerEpoch { .. } => 47,
            ProducerStateError::OutOfOrderSequence { .. } => 45,
            ProducerStateError::InvalidTxnState { .. } => 48,
            ProducerStateError::CoordinatorFenced { .. } => 52,
        }
    }
}

/// Why a snapshot could not be decoded (the caller falls back to an older one or replay).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("producer snapshot is truncated")]
    Truncated,
    #[error("producer snapshot has a bad magic or unsupported version")]
    BadHeader,
    #[error("producer snapshot CRC mismatch")]
    Crc,
    #[error("producer snapshot is invalid: {0}")]
    Invalid(&'static str),
}

/// Metadata of one retained batch (Kafka `BatchMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// One producer's state (Kafka `ProducerStateEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_epoch: i16,
    /// The last [`NUM_BATCHES_TO_RETAIN`] batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    pub coordinator_epoch: i32,
    pub last_timestamp: i64,
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn empty() -> Self {
        ProducerEntry {
            producer_epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
        }
    }

    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// Kafka `ProducerStateEntry.maybeUpdateProducerEpoch`: a new epoch forgets the batches.
    fn set_epoch(&mut self, epoch: i16) {
        if self.producer_epoch != epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
        }
    }

    /// Kafka `ProducerStateEntry.findDuplicateBatch`.
    fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        if h.producer_epoch != self.producer_epoch {
            return None;
        }
        let (first, last) = (h.base_sequence, h.last_sequence());
        self.batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
            .copied()
    }
}

/// A transaction ended by a marker (Kafka `CompletedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    /// The transaction's first offset, or the marker's offset for a transaction that wrote
    /// nothing to this partition.
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub is_aborted: bool,
}

/// An entry of the aborted-transaction index (Kafka `AbortedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

/// One producer as shown by DescribeProducers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// -1 when no transaction is ongoing.
    pub current_txn_start_offset: i64,
    /// Last offset of the producer's last retained data batch (`None` when none is kept):
    /// the log cleaner keeps that batch's header so the producer's sequence survives.
    pub last_data_offset: Option<i64>,
}

/// What applying one batch produced: the completed transaction (every marker, including
/// one that ends a transaction with no data in this partition) and, for the abort of a
/// non-empty transaction, the entry for the `.txnindex`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnCompletion {
    pub completed: CompletedTxn,
    pub aborted: Option<AbortedTxn>,
}

/// Checks and applies one batch to an entry (Kafka `ProducerAppendInfo.append`).
/// `known_epoch` is the epoch of the producer before the whole append began
/// (Kafka's `currentEntry.producerEpoch`); `validate` is false for replay (Kafka origin
/// REPLICATION / log recovery), which accepts everything.
fn apply_to_entry(
    pid: i64,
    e: &mut ProducerEntry,
    known_epoch: i16,
    h: &BatchHeader,
    marker: Option<ControlMarker>,
    validate: bool,
) -> Result<Option<CompletedTxn>, ProducerStateError> {
    if validate && h.producer_epoch < e.producer_epoch {
        return Err(ProducerStateError::InvalidProducerEpoch {
            producer_id: pid,
            epoch: h.producer_epoch,
            current_epoch: e.producer_epoch,
            offset: h.base_offset,
        });
    }
    if h.is_control() {
        // An empty control batch (its marker cleaned away) changes nothing.
        let Some(m) = marker else { return Ok(None) };
        // Kafka `ProducerAppendInfo.checkCoordinatorEpoch`.
        if validate && e.coordinator_epoch > m.coordinator_epoch {
            return Err(ProducerStateError::CoordinatorFenced {
                producer_id: pid,
                coordinator_epoch: m.coordinator_epoch,
                current_coordinator_epoch: e.coordinator_epoch,
                offset: h.base_offset,
            });
        }
        let completed = CompletedTxn {
            producer_id: pid,
            first_offset: e.current_txn_first_offset.unwrap_or(h.base_offset),
            last_offset: h.base_offset,
            is_aborted: !m.commit,
        };
        // Kafka `ProducerStateEntry.update`: markers leave the sequence state alone except
        // that a new epoch (transactions v2 bumps it in the marker) forgets old batches.
        e.set_epoch(h.producer_epoch);
        e.coordinator_epoch = m.coordinator_epoch;
        e.last_timestamp = h.max_timestamp;
        e.current_txn_first_offset = None;
        return Ok(Some(completed));
    }
    let first_seq = h.base_sequence;
    // A batch without a sequence comes from a coordinator (Kafka's AppendOrigin.COORDINATOR,
    // e.g. TxnOffsetCommit records in __consumer_offsets): its epoch was checked above, its
    // sequence is not, and it is not kept for duplicate detection.
    let coordinator_written = first_seq == NO_SEQUENCE;
    if validate && !coordinator_written {
        // Kafka `ProducerAppendInfo.checkSequence` (client origin).
        let err = |last_seq| ProducerStateError::OutOfOrderSequence {
            producer_id: pid,
            epoch: h.producer_epoch,
            first_seq,
            last_seq,
            offset: h.base_offset,
        };
        if h.producer_epoch != e.producer_epoch {
            if first_seq != 0 && e.producer_epoch != NO_PRODUCER_EPOCH {
                return Err(err(e.last_seq()));
            }
        } else {
            let last = e.last_seq();
            let in_seq =
                i64::from(first_seq) == i64::from(last) + 1 || (first_seq == 0 && last == i32::MAX);
            // KIP-360: with no known epoch (state expired or removed) any sequence is fine.
            if !(known_epoch == NO_PRODUCER_EPOCH || in_seq) {
                return Err(err(last));
            }
        }
        if let Some(txn_first_offset) = e.current_txn_first_offset
            && !h.is_transactional()
        {
            return Err(ProducerStateError::InvalidTxnState {
                producer_id: pid,
                offset: h.base_offset,
                txn_first_offset,
            });
        }
    }
    // Kafka `ProducerStateEntry.addBatch`.
    e.set_epoch(h.producer_epoch);
    if !coordinator_written {
        if e.batches.len() == NUM_BATCHES_TO_RETAIN {
            e.batches.pop_front();
        }
        e.batches.push_back(BatchMetadata {
            first_seq,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        });
    }
    e.last_timestamp = h.max_timestamp;
    if h.is_transactional() && e.current_txn_first_offset.is_none() {
        e.current_txn_first_offset = Some(h.base_offset);
    }
    Ok(None)
}

/// The producer state of one partition (Kafka `ProducerStateManager`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Ongoing transactions: first offset → producer id (Kafka's `ongoingTxns`).
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// The retained batch that `h` duplicates (same epoch, same first and last sequence),
    /// checked against the state before the append like Kafka's `analyzeAndValidateProducerState`.
    pub fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        // Batches without a sequence are written by a coordinator on a producer's behalf
        // (transactional offset commits): Kafka checks duplicates for client appends only.
        if h.producer_id < 0 || h.is_control() || h.base_sequence == NO_SEQUENCE {
            return None;
        }
        self.producers.get(&h.producer_id)?.find_duplicate(h)
    }

    /// Validates the batches of one client append in order, each against the state as the
    /// previous ones left it, without changing `self` (only the touched entries are
    /// copied). Headers must carry their assigned offsets; batches with no producer id
    /// are skipped. Apply them with [`ProducerStateManager::apply`] once written.
    pub fn validate_append(
        &self,
        batches: impl IntoIterator<Item = (BatchHeader, Option<ControlMarker>)>,
    ) -> Result<(), ProducerStateError> {
        let mut updated: Vec<(i64, i16, ProducerEntry)> = Vec::new();
        for (h, marker) in batches {
            if h.producer_id < 0 {
                continue;
            }
            let idx = match updated.iter().position(|(p, _, _)| *p == h.producer_id) {
                Some(i) => i,
                None => {
                    let cur = self.producers.get(&h.producer_id);
                    let known = cur.map_or(NO_PRODUCER_EPOCH, |e| e.producer_epoch);
                    let e = cur.cloned().unwrap_or_else(ProducerEntry::empty);
                    updated.push((h.producer_id, known, e));
                    updated.len() - 1
                }
            };
            let (pid, known, e) = &mut updated[idx];
            apply_to_entry(*pid, e, *known, &h, marker, true)?;
        }
        Ok(())
    }

    /// Applies one batch read from (or just written to) the log without validation (Kafka
    /// origin REPLICATION / recovery). For a marker, returns the completed transaction and,
    /// for an abort, its [`AbortedTxn`] with Kafka's `lastStableOffset(completedTxn)`.
    pub fn apply(
        &mut self,
        h: &BatchHeader,
        marker: Option<ControlMarker>,
    ) -> Option<TxnCompletion> {
        if h.producer_id < 0 {
            return None;
        }
        let pid = h.producer_id;
        let e = self
            .producers
            .entry(pid)
            .or_insert_with(ProducerEntry::empty);
        let had_txn = e.current_txn_first_offset;
        let completed = apply_to_entry(pid, e, NO_PRODUCER_EPOCH, h, marker, false)
            .ok()
            .flatten();
        if had_txn.is_none()
            && let Some(first) = e.current_txn_first_offset
        {
            self.ongoing.insert(first, pid);
        }
        let completed = completed?;
        // Kafka `ProducerStateManager.lastStableOffset(completedTxn)`: the first offset of
        // the earliest transaction of another producer still open, else past the marker.
        // Kafka 4.x `appendEndTxnMarker` completes only non-empty transactions: a marker
        // with no data before it moves no LSO and gets no `.txnindex` entry.
        let aborted = (completed.is_aborted && had_txn.is_some()).then(|| AbortedTxn {
            producer_id: pid,
            first_offset: completed.first_offset,
            last_offset: completed.last_offset,
            last_stable_offset: self
                .ongoing
                .iter()
                .find(|&(_, &p)| p != pid)
                .map_or(completed.last_offset + 1, |(&o, _)| o),
        });
        if let Some(first) = had_txn {
            self.ongoing.remove(&first);
        }
        Some(TxnCompletion { completed, aborted })
    }

    /// First offset of the earliest ongoing transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    pub fn views(&self) -> Vec<ProducerView> {
        let mut v: Vec<ProducerView> = self
            .producers
            .iter()
            .map(|(&pid, e)| ProducerView {
                producer_id: pid,
                producer_epoch: e.producer_epoch,
                last_sequence: e.last_seq(),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
                last_data_offset: e.batches.back().map(|b| b.last_offset),
            })
            .collect();
        v.sort_unstable_by_key(|p| p.producer_id);
        v
    }

    /// The log start offset moved to `log_start` (DeleteRecords, retention): forgets the
    /// producers whose last batch is below it (Kafka 2.x `ProducerStateManager.truncateHead`
    /// / `isProducerRetained`: `!entry.isEmpty && logStartOffset <= lastDataOffset`).
    /// Producers with an ongoing transaction are kept: the transaction still bounds the
    /// last stable offset and its marker will come.
    pub fn truncate_head(&mut self, log_start: i64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || e.batches.back().is_some_and(|b| b.last_offset >= log_start)
        });
    }

    /// Kafka `ProducerStateManager.removeExpiredProducers` / `isProducerExpired`.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
    }

    /// Serializes the whole state (see the module docs for the format).
    pub fn encode_snapshot(&self, offset: i64) -> Vec<u8> {
        let mut pids: Vec<&i64> = self.producers.keys().collect();
        pids.sort_unstable();
        let mut b = Vec::with_capacity(
            SNAPSHOT_HEADER_LEN
                + pids.len() * (SNAPSHOT_ENTRY_LEN + NUM_BATCHES_TO_RETAIN * SNAPSHOT_BATCH_LEN),
        );
        b.extend_from_slice(SNAPSHOT_MAGIC);
        b.extend_from_slice(&[SNAPSHOT_VERSION, 0, 0, 0]);
        b.extend_from_slice(&[0; 4]); // crc, filled below
        b.extend_from_slice(&offset.to_be_bytes());
        b.extend_from_slice(&(pids.len() as u32).to_be_bytes());
        for pid in pids {
            let e = &self.producers[pid];
            b.extend_from_slice(&pid.to_be_bytes());
            b.extend_from_slice(&e.producer_epoch.to_be_bytes());
            b.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            b.extend_from_slice(&e.last_timestamp.to_be_bytes());
            b.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            b.push(e.batches.len() as u8);
            for m in &e.batches {
                b.extend_from_slice(&m.first_seq.to_be_bytes());
                b.extend_from_slice(&m.last_seq.to_be_bytes());
                b.extend_from_slice(&m.first_offset.to_be_bytes());
                b.extend_from_slice(&m.last_offset.to_be_bytes());
                b.extend_from_slice(&m.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&b[12..]);
        b[8..12].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Parses a snapshot, returning its offset and the state. Every length is checked
    /// against the bytes present before anything is allocated.
    pub fn decode_snapshot(b: &[u8]) -> Result<(i64, ProducerStateManager), SnapshotError> {
        if b.len() < SNAPSHOT_HEADER_LEN {
            return Err(SnapshotError::Truncated);
        }
        if &b[..4] != SNAPSHOT_MAGIC || b[4] != SNAPSHOT_VERSION || b[5..8] != [0, 0, 0] {
            return Err(SnapshotError::BadHeader);
        }
        let mut r = Reader { b, pos: 8 };
        let crc = r.u32()?;
        if crc32c::crc32c(&b[12..]) != crc {
            return Err(SnapshotError::Crc);
        }
        let offset = r.i64()?;
        if offset < 0 {
            return Err(SnapshotError::Invalid("negative offset"));
        }
        let count = r.u32()? as usize;
        if count > (b.len() - r.pos) / SNAPSHOT_ENTRY_LEN {
            return Err(SnapshotError::Truncated);
        }
        let mut st = ProducerStateManager {
            producers: HashMap::with_capacity(count),
            ongoing: BTreeMap::new(),
        };
        for _ in 0..count {
            let pid = r.i64()?;
            let mut e = ProducerEntry {
                producer_epoch: r.i16()?,
                coordinator_epoch: r.i32()?,
                last_timestamp: r.i64()?,
                current_txn_first_offset: None,
                batches: VecDeque::new(),
            };
            let txn = r.i64()?;
            let n = usize::from(r.u8()?);
            if pid < 0 || n > NUM_BATCHES_TO_RETAIN || txn < -1 || txn >= offset {
                return Err(SnapshotError::Invalid("bad producer entry"));
            }
            for _ in 0..n {
                let m = BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                };
                if m.first_offset < 0 || m.last_offset < m.first_offset || m.last_offset >= offset {
                    return Err(SnapshotError::Invalid("bad batch metadata"));
                }
                e.batches.push_back(m);
            }
            if txn >= 0 {
                e.current_txn_first_offset = Some(txn);
                if st.ongoing.insert(txn, pid).is_some() {
                    return Err(SnapshotError::Invalid("two transactions at one offset"));
                }
            }
            if st.producers.insert(pid, e).is_some() {
                return Err(SnapshotError::Invalid("duplicate producer id"));
            }
        }
        if r.pos != b.len() {
            return Err(SnapshotError::Invalid("trailing bytes"));
        }
        Ok((offset, st))
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let s = self
            .b
            .get(self.pos..self.pos + N)
            .ok_or(SnapshotError::Truncated)?;
        self.pos += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, SnapshotError> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{CONTROL_FLAG, TRANSACTIONAL_FLAG};

    fn header(pid: i64, epoch: i16, seq: i32, base: i64, delta: i32, attrs: i16) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            size: 61,
            magic: 2,
            crc: 0,
            attributes: attrs,
            last_offset_delta: delta,
            base_timestamp: 7,
            max_timestamp: 9,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: delta + 1,
        }
    }

    fn sample() -> ProducerStateManager {
        let mut st = ProducerStateManager::new();
        for i in 0..7 {
            st.apply(&header(1, 2, i * 3, i64::from(i) * 3, 2, 0), None);
        }
        st.apply(&header(5, 0, 0, 30, 0, TRANSACTIONAL_FLAG), None);
        st.apply(&header(6, 1, 0, 31, 0, TRANSACTIONAL_FLAG), None);
        let m = ControlMarker {
            commit: false,
            coordinator_epoch: 3,
        };
        let c = st.apply(&header(6, 1, -1, 32, 0, CONTROL_FLAG), Some(m));
        assert_eq!(
            c.unwrap().aborted,
            Some(AbortedTxn {
                producer_id: 6,
                first_offset: 31,
                last_offset: 32,
                last_stable_offset: 30
            })
        );
        st
    }

    #[test]
    fn snapshot_round_trip() {
        let st = sample();
        assert_eq!(st.entry(1).unwrap().batches.len(), NUM_BATCHES_TO_RETAIN);
        let b = st.encode_snapshot(33);
        let (off, back) = ProducerStateManager::decode_snapshot(&b).unwrap();
        assert_eq!(off, 33);
        assert_eq!(back, st);
        assert_eq!(back.first_unstable_offset(), Some(30));
        let empty = ProducerStateManager::new().encode_snapshot(0);
        assert_eq!(
            ProducerStateManager::decode_snapshot(&empty).unwrap(),
            (0, ProducerStateManager::new())
        );
    }

    #[test]
    fn corrupt_snapshots_are_errors_not_panics() {
        let b = sample().encode_snapshot(33);
        for n in 0..b.len() {
            assert!(
                ProducerStateManager::decode_snapshot(&b[..n]).is_err(),
                "prefix {n}"
            );
        }
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x5a;
            assert!(
                ProducerStateManager::decode_snapshot(&c).is_err(),
                "byte {i}"
            );
        }
        // A valid CRC over nonsense (huge count, batch offsets beyond the snapshot) is
        // still rejected, without allocating by the count.
        let reseal = |mut c: Vec<u8>| {
            let crc = crc32c::crc32c(&c[12..]);
            c[8..12].copy_from_slice(&crc.to_be_bytes());
            c
        };
        let mut c = b.clone();
        c[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            ProducerStateManager::decode_snapshot(&reseal(c)),
            Err(SnapshotError::Truncated)
        );
        let mut c = b.clone();
        c[12..20].copy_from_slice(&5i64.to_be_bytes());
        assert!(matches!(
            ProducerStateManager::decode_snapshot(&reseal(c)),
            Err(SnapshotError::Invalid(_))
        ));
    }

    #[test]
    fn error_codes() {
        let e = ProducerStateError::OutOfOrderSequence {
            producer_id: 1,
            epoch: 0,
            first_seq: 5,
            last_seq: 2,
            offset: 9,
        };
        assert_eq!(e.kafka_error_code(), 45);
        assert!(e.to_string().contains("producer 1"));
        assert!(e.to_string().contains('5'));
    }
}
