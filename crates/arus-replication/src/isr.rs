//! The vocabulary of ISR changes: the partition state with at most one AlterPartition in
//! flight (Kafka's `CommittedPartitionState`, `PendingExpandIsr`, `PendingShrinkIsr`), the
//! request the leader sends, the controller's answer, and what the leader knows of the other
//! brokers (registered epoch, fenced, in controlled shutdown) from the metadata image.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::ErrorCode;

/// Kafka's `LeaderRecoveryState` (KIP-704): RECOVERING after an unclean election until the
/// new leader has finished recovering the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderRecoveryState {
    Recovered,
    Recovering,
}

impl LeaderRecoveryState {
    pub fn value(self) -> i8 {
        match self {
            Self::Recovered => 0,
            Self::Recovering => 1,
        }
    }
}

/// One ISR member in AlterPartition v3+ (`BrokerState`): its id and the broker epoch the
/// leader saw in its fetches (-1 when unknown), so the controller refuses a member that
/// restarted since (KIP-903).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsrBrokerState {
    pub broker_id: i32,
    pub broker_epoch: i64,
}

/// "Send this AlterPartition" for one partition (Kafka's `LeaderAndIsr` as submitted to
/// `AlterPartitionManager`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionProposal {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub leader_recovery_state: LeaderRecoveryState,
    /// Sorted by broker id.
    pub new_isr: Vec<IsrBrokerState>,
}

impl AlterPartitionProposal {
    pub fn isr_ids(&self) -> BTreeSet<i32> {
        self.new_isr.iter().map(|b| b.broker_id).collect()
    }
}

/// The controller's successful answer for the partition (the committed `LeaderAndIsr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedLeaderAndIsr {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
    pub leader_recovery_state: LeaderRecoveryState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingChange {
    /// One follower caught up; it already counts for the high watermark and acks=all.
    Expand { new_in_sync_replica: i32 },
    /// Followers that fell behind; they still count until the controller agrees.
    Shrink { out_of_sync_replicas: BTreeSet<i32> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionState {
    Committed {
        isr: BTreeSet<i32>,
        leader_recovery_state: LeaderRecoveryState,
    },
    Pending {
        change: PendingChange,
        sent: AlterPartitionProposal,
        last_committed_isr: BTreeSet<i32>,
        last_committed_recovery_state: LeaderRecoveryState,
    },
}

impl PartitionState {
    /// The ISR the controller committed.
    pub fn isr(&self) -> &BTreeSet<i32> {
        match self {
            Self::Committed { isr, .. } => isr,
            Self::Pending {
                last_committed_isr, ..
            } => last_committed_isr,
        }
    }

    /// The committed ISR plus a replica being added (KIP-497): the stricter set, used for the
    /// high watermark and for acks=all. A pending shrink does not remove anyone from it, so
    /// a failed shrink can never have advanced the high watermark.
    pub fn maximal_isr(&self) -> BTreeSet<i32> {
        let mut isr = self.isr().clone();
        if let Self::Pending {
            change: PendingChange::Expand {
                new_in_sync_replica,
            },
            ..
        } = self
        {
            isr.insert(*new_in_sync_replica);
        }
        isr
    }

    pub fn is_inflight(&self) -> bool {
        matches!(self, Self::Pending { .. })
    }

    /// A pending change always proposes RECOVERED (as Kafka's `PendingPartitionChange`).
    pub fn leader_recovery_state(&self) -> LeaderRecoveryState {
        match self {
            Self::Committed {
                leader_recovery_state,
                ..
            } => *leader_recovery_state,
            Self::Pending { .. } => LeaderRecoveryState::Recovered,
        }
    }

    /// The state the controller last committed (itself when nothing is pending).
    pub(crate) fn last_committed(&self) -> Self {
        let (isr, leader_recovery_state) = self.committed_parts();
        Self::Committed {
            isr,
            leader_recovery_state,
        }
    }

    pub(crate) fn committed_parts(&self) -> (BTreeSet<i32>, LeaderRecoveryState) {
        match self {
            Self::Committed {
                isr,
                leader_recovery_state,
            } => (isr.clone(), *leader_recovery_state),
            Self::Pending {
                last_committed_isr,
                last_committed_recovery_state,
                ..
            } => (last_committed_isr.clone(), *last_committed_recovery_state),
        }
    }
}

/// What handling the controller's answer to an AlterPartition led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterPartitionOutcome {
    /// The answer is for a proposal that is no longer pending (a leader change or newer
    /// metadata replaced it): ignored.
    Outdated,
    /// The controller committed the change (or found nothing to change); the ISR and the
    /// partition epoch are the controller's now.
    Committed { high_watermark_advanced: bool },
    /// A success carrying another leader epoch or an older partition epoch: ignored, the
    /// change stays pending until new metadata arrives (as Kafka).
    StaleAnswer,
    /// OPERATION_NOT_ATTEMPTED or INELIGIBLE_REPLICA: the controller says it applied
    /// nothing and the partition epoch is right, so the state is back to the last committed
    /// one and a new change may be proposed.
    Reverted { error: ErrorCode },
    /// UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID, FENCED_LEADER_EPOCH,
    /// INVALID_UPDATE_VERSION, INVALID_REQUEST, NEW_LEADER_ELECTED: not retried; the change
    /// stays pending until new metadata replaces the state.
    AwaitMetadata { error: ErrorCode },
    /// Any other error: send the same proposal again.
    Retry(AlterPartitionProposal),
}

/// What the metadata image says of a broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerStatus {
    pub broker_epoch: i64,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

/// The leader's read-only view of the cluster's brokers (Kafka's `KRaftMetadataCache`).
pub trait BrokerRegistry {
    fn broker(&self, broker_id: i32) -> Option<BrokerStatus>;

    /// The epoch of a registered, unfenced broker.
    fn alive_broker_epoch(&self, broker_id: i32) -> Option<i64> {
        self.broker(broker_id)
            .filter(|b| !b.fenced)
            .map(|b| b.broker_epoch)
    }

    fn is_alive(&self, broker_id: i32) -> bool {
        self.broker(broker_id).is_some_and(|b| !b.fenced)
    }

    fn is_fenced(&self, broker_id: i32) -> bool {
        self.broker(broker_id).is_some_and(|b| b.fenced)
    }

    fn is_shutting_down(&self, broker_id: i32) -> bool {
        self.broker(broker_id)
            .is_some_and(|b| b.in_controlled_shutdown)
    }
}

impl BrokerRegistry for BTreeMap<i32, BrokerStatus> {
    fn broker(&self, broker_id: i32) -> Option<BrokerStatus> {
        self.get(&broker_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> AlterPartitionProposal {
        AlterPartitionProposal {
            leader_id: 1,
            leader_epoch: 5,
            partition_epoch: 1,
            leader_recovery_state: LeaderRecoveryState::Recovered,
            new_isr: vec![],
        }
    }

    #[test]
    fn maximal_isr_counts_a_pending_expansion_but_not_a_pending_shrink() {
        let committed: BTreeSet<i32> = [1, 2].into();
        let expand = PartitionState::Pending {
            change: PendingChange::Expand {
                new_in_sync_replica: 3,
            },
            sent: proposal(),
            last_committed_isr: committed.clone(),
            last_committed_recovery_state: LeaderRecoveryState::Recovered,
        };
        assert_eq!(expand.isr(), &committed);
        assert_eq!(expand.maximal_isr(), [1, 2, 3].into());
        let shrink = PartitionState::Pending {
            change: PendingChange::Shrink {
                out_of_sync_replicas: [2].into(),
            },
            sent: proposal(),
            last_committed_isr: committed.clone(),
            last_committed_recovery_state: LeaderRecoveryState::Recovering,
        };
        assert_eq!(shrink.maximal_isr(), committed);
        assert!(shrink.is_inflight());
        assert_eq!(
            shrink.leader_recovery_state(),
            LeaderRecoveryState::Recovered
        );
        assert_eq!(
            shrink.last_committed(),
            PartitionState::Committed {
                isr: committed,
                leader_recovery_state: LeaderRecoveryState::Recovering
            }
        );
    }

    #[test]
    fn registry_views() {
        let mut brokers = BTreeMap::new();
        brokers.insert(
            1,
            BrokerStatus {
                broker_epoch: 10,
                fenced: false,
                in_controlled_shutdown: true,
            },
        );
        brokers.insert(
            2,
            BrokerStatus {
                broker_epoch: 20,
                fenced: true,
                in_controlled_shutdown: false,
            },
        );
        assert_eq!(brokers.alive_broker_epoch(1), Some(10));
        assert_eq!(brokers.alive_broker_epoch(2), None);
        assert!(brokers.is_shutting_down(1) && !brokers.is_fenced(1));
        assert!(brokers.is_fenced(2) && !brokers.is_alive(2));
        assert!(!brokers.is_alive(3) && !brokers.is_fenced(3));
    }
}
