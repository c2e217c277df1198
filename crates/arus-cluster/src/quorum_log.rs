//! The metadata quorum (`arus_raft::Quorum`) as the controller driver's [`MetadataLog`].

use std::sync::Arc;

use arus_raft::Quorum;
use arus_raft::QuorumError;
use bytes::Bytes;
use openraft_metrics::leadership_of;
use tokio::sync::watch;

use crate::controller_driver::{BoxFuture, Leadership, LogWriteError, MetadataLog};

/// See the module documentation.
pub struct QuorumLog {
    quorum: Arc<Quorum>,
    leadership: watch::Receiver<Leadership>,
    applied: watch::Receiver<Option<u64>>,
}

impl QuorumLog {
    /// Wraps `quorum`; a task follows its metrics to publish leadership changes.
    pub fn new(quorum: Arc<Quorum>) -> QuorumLog {
        let mut metrics = quorum.raft_metrics();
        let (tx, rx) = watch::channel(leadership_of(&metrics.borrow()));
        tokio::spawn(async move {
            while metrics.changed().await.is_ok() {
                let now = leadership_of(&metrics.borrow());
                tx.send_if_modified(|l| {
                    let changed = *l != now;
                    *l = now;
                    changed
                });
            }
        });
        QuorumLog {
            applied: quorum.applied_index(),
            quorum,
            leadership: rx,
        }
    }

    pub fn quorum(&self) -> &Arc<Quorum> {
        &self.quorum
    }
}

mod openraft_metrics {
    use crate::controller_driver::Leadership;
    use arus_raft::types::RaftMetrics;

    pub fn leadership_of(m: &RaftMetrics) -> Leadership {
        Leadership {
            leader: m.current_leader.map(|id| id as i32),
            term: m.current_term,
        }
    }
}

impl MetadataLog for QuorumLog {
    fn write(&self, batch: Vec<Bytes>) -> BoxFuture<Result<u64, LogWriteError>> {
        let quorum = self.quorum.clone();
        Box::pin(async move {
            quorum.write(batch).await.map_err(|e| match e {
                QuorumError::NotLeader { leader_id, .. } => LogWriteError::NotLeader {
                    leader: leader_id.map(|id| id as i32),
                },
                other => LogWriteError::Failed(other.to_string()),
            })
        })
    }

    fn next_index(&self) -> u64 {
        self.last_log_index().map_or(1, |i| i + 1)
    }

    fn last_log_index(&self) -> Option<u64> {
        self.quorum.raft_metrics().borrow().last_log_index
    }

    fn applied_index(&self) -> Option<u64> {
        *self.applied.borrow()
    }

    fn wait_applied(&self, index: u64) -> BoxFuture<()> {
        let mut applied = self.applied.clone();
        Box::pin(async move {
            let _ = applied.wait_for(|a| a.is_some_and(|a| a >= index)).await;
        })
    }

    fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }
}
