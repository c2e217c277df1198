//! Transaction state while cleaning: Kafka's `CleanedTransactionMetadata`.
//!
//! The cleaner walks the log in offset order. Aborted transactions (from the transaction
//! index) become "ongoing" when the walk reaches their first offset; data batches of an
//! ongoing aborted transaction are removed; its ABORT marker is kept while any of its
//! batches was still seen in this pass (and its index entry is then carried into the
//! cleaned segment's transaction index), otherwise the marker becomes removable. A COMMIT
//! marker is removable once no data batch of its transaction was seen in this pass.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use arus_records::{ControlType, RecordBatch};

use crate::AbortedTxn;

#[derive(Debug)]
struct OngoingAborted {
    txn: AbortedTxn,
    last_observed_batch_offset: Option<i64>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct TxnTracker {
    ongoing_committed: HashSet<i64>,
    ongoing_aborted: HashMap<i64, OngoingAborted>,
    /// Min-heap on first offset; the index is only a tie-breaker for the heap.
    pending: BinaryHeap<Reverse<(i64, usize)>>,
    pending_txns: Vec<AbortedTxn>,
    /// Aborted transactions whose marker was retained: the cleaned segment's index.
    retained: Vec<AbortedTxn>,
}

impl TxnTracker {
    pub(crate) fn add_aborted(&mut self, txns: impl IntoIterator<Item = AbortedTxn>) {
        for t in txns {
            self.pending
                .push(Reverse((t.first_offset, self.pending_txns.len())));
            self.pending_txns.push(t);
        }
    }

    /// Transaction-index entries retained since the last call (for the segment just built).
    pub(crate) fn take_retained(&mut self) -> Vec<AbortedTxn> {
        std::mem::take(&mut self.retained)
    }

    fn consume_up_to(&mut self, offset: i64) {
        while let Some(Reverse((first, idx))) = self.pending.peek().copied() {
            if first > offset {
                break;
            }
            self.pending.pop();
            let txn = self.pending_txns[idx];
            self.ongoing_aborted
                .entry(txn.producer_id)
                .or_insert(OngoingAborted {
                    txn,
                    last_observed_batch_offset: None,
                });
        }
    }

    /// A control batch was read; `kind` is its first record's type (`None` when the batch
    /// is empty or of an unknown type). Returns whether the marker may be discarded.
    pub(crate) fn on_control_batch(
        &mut self,
        batch: &RecordBatch,
        kind: Option<ControlType>,
        empty: bool,
    ) -> bool {
        self.consume_up_to(batch.last_offset());
        if empty {
            // An empty control batch was already cleaned: safe to discard.
            return true;
        }
        let pid = batch.producer_id();
        match kind {
            Some(ControlType::Abort) => match self.ongoing_aborted.remove(&pid) {
                Some(a) if a.last_observed_batch_offset.is_some() => {
                    self.retained.push(a.txn);
                    false
                }
                _ => true,
            },
            Some(ControlType::Commit) => !self.ongoing_committed.remove(&pid),
            None => false,
        }
    }

    /// A data batch was read. Returns whether it belongs to an aborted transaction.
    pub(crate) fn on_data_batch(&mut self, batch: &RecordBatch) -> bool {
        self.consume_up_to(batch.last_offset());
        if !batch.is_transactional() {
            return false;
        }
        let pid = batch.producer_id();
        if let Some(a) = self.ongoing_aborted.get_mut(&pid) {
            a.last_observed_batch_offset = Some(batch.last_offset());
            true
        } else {
            self.ongoing_committed.insert(pid);
            false
        }
    }
}
