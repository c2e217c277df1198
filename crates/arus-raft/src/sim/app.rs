//! The simulated application and the global checker it reports to.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::state_machine::{CommittedBatch, MetadataStateMachine};
use crate::types::NodeId;

/// index -> (term, records): what a state machine applied.
pub type Applied = BTreeMap<u64, (u64, Vec<Bytes>)>;

/// What every node applied, and every acknowledged write, across all incarnations.
#[derive(Debug, Default)]
pub struct Checker {
    /// index -> (term, records) as first applied by any node.
    pub applied: Applied,
    /// term -> the node seen leading it.
    pub leaders: BTreeMap<u64, NodeId>,
    /// index -> records of writes the quorum acknowledged.
    pub acked: BTreeMap<u64, Bytes>,
    pub violations: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct SharedChecker(Arc<Mutex<Checker>>);

impl SharedChecker {
    pub fn lock(&self) -> MutexGuard<'_, Checker> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_applied(&self, node: NodeId, index: u64, term: u64, records: &[Bytes]) {
        let mut checker = self.lock();
        match checker.applied.get(&index) {
            Some((t, r)) if *t != term || r.as_slice() != records => {
                let msg = format!(
                    "node {node} applied ({term}, {records:?}) at index {index}, \
                     another node applied ({t}, {r:?})"
                );
                checker.violations.push(msg);
            }
            Some(_) => {}
            None => {
                checker.applied.insert(index, (term, records.to_vec()));
            }
        }
    }

    pub fn record_leader(&self, node: NodeId, term: u64) {
        let mut checker = self.lock();
        match checker.leaders.get(&term) {
            Some(&other) if other != node => {
                let msg = format!("nodes {other} and {node} both led term {term}");
                checker.violations.push(msg);
            }
            Some(_) => {}
            None => {
                checker.leaders.insert(term, node);
            }
        }
    }

    pub fn record_ack(&self, index: u64, payload: Bytes) {
        let mut checker = self.lock();
        if let Some(previous) = checker.acked.insert(index, payload.clone()) {
            let msg = format!("index {index} acknowledged twice: {previous:?} and {payload:?}");
            checker.violations.push(msg);
        }
    }
}

/// A state machine that keeps its whole history (index -> term, records), so that any two
/// nodes' states can be compared entry by entry.
#[derive(Debug)]
pub struct RecordingApp {
    pub node: NodeId,
    pub history: Arc<Mutex<Applied>>,
    pub checker: SharedChecker,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("batch {index} applied after {last}")]
    OutOfOrder { index: u64, last: u64 },
    #[error("bad snapshot: {0}")]
    Snapshot(#[from] bincode::Error),
}

impl RecordingApp {
    fn history(&self) -> MutexGuard<'_, Applied> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MetadataStateMachine for RecordingApp {
    type Error = AppError;

    fn apply(&mut self, batch: CommittedBatch<'_>) -> Result<(), AppError> {
        let mut history = self.history();
        if let Some((&last, _)) = history.iter().next_back()
            && last >= batch.index
        {
            return Err(AppError::OutOfOrder {
                index: batch.index,
                last,
            });
        }
        history.insert(batch.index, (batch.term, batch.records.to_vec()));
        drop(history);
        self.checker
            .record_applied(self.node, batch.index, batch.term, batch.records);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, AppError> {
        Ok(bincode::serialize(&*self.history())?)
    }

    fn install_snapshot(&mut self, _index: u64, _term: u64, data: &[u8]) -> Result<(), AppError> {
        let installed: Applied = bincode::deserialize(data)?;
        for (index, (term, records)) in &installed {
            self.checker
                .record_applied(self.node, *index, *term, records);
        }
        *self.history() = installed;
        Ok(())
    }
}
