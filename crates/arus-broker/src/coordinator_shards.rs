//! Which partitions of a coordinator's internal topic (`__consumer_offsets`,
//! `__transaction_state`) this node coordinates, and whether each is loaded. Kafka's
//! coordinators run where the partition's leader is: a group or transactional id is served
//! only if this node leads its partition and has replayed it (Kafka's
//! `CoordinatorRuntime` shard states: LOADING, ACTIVE; an unknown shard answers
//! NOT_COORDINATOR). Pure: the drivers in `groups/` and `txn/` do the replay.
//!
//! A single node leads every partition ([`CoordinatorShards::all`]), loaded once at start as
//! before; the cluster adapter switches a driver to [`CoordinatorShards::led`] and reports
//! leadership changes of the internal partitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_protocol::ErrorCode;

use crate::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::partition::role::Transition;
use crate::topics::driven::RoleChange;
use crate::txn::TRANSACTION_STATE_TOPIC;

/// Hands the role changes of `__consumer_offsets` and `__transaction_state` partitions
/// (as [`crate::topics::TopicRegistry::apply`] reports them) to the group and transaction
/// coordinators: a partition led here is loaded, one no longer led is unloaded. Other
/// topics' changes are ignored.
pub fn follow_leadership(broker: &Arc<Broker>, changes: &[RoleChange]) {
    for c in changes {
        let (groups, txns) = (c.topic == OFFSETS_TOPIC, c.topic == TRANSACTION_STATE_TOPIC);
        if !groups && !txns {
            continue;
        }
        match c.change {
            Transition::BecameLeader { epoch } if groups => {
                broker.groups.on_become_leader(broker, c.partition, epoch)
            }
            Transition::BecameLeader { epoch } => {
                broker.txns.on_become_leader(broker, c.partition, epoch)
            }
            Transition::BecameFollower { .. } | Transition::Stopped if groups => {
                broker.groups.on_resign(broker, c.partition)
            }
            Transition::BecameFollower { .. } | Transition::Stopped => {
                broker.txns.on_resign(broker, c.partition)
            }
            Transition::Unchanged => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// Being replayed for leader epoch `epoch`: answers COORDINATOR_LOAD_IN_PROGRESS.
    Loading { epoch: i32 },
    /// Served.
    Loaded { epoch: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorShards {
    /// Every partition is led here (a single node): served once the whole topic is loaded.
    All,
    /// The partitions led here, by index; any other answers NOT_COORDINATOR.
    Led(BTreeMap<i32, ShardState>),
}

impl CoordinatorShards {
    pub fn all() -> CoordinatorShards {
        CoordinatorShards::All
    }

    /// No partition led yet (a cluster member before its first metadata).
    pub fn led() -> CoordinatorShards {
        CoordinatorShards::Led(BTreeMap::new())
    }

    pub fn is_all(&self) -> bool {
        matches!(self, CoordinatorShards::All)
    }

    /// Whether the ids of `partition` may be served: `Err` with the code Kafka answers.
    pub fn status(&self, partition: i32) -> Result<(), ErrorCode> {
        match self {
            CoordinatorShards::All => Ok(()),
            CoordinatorShards::Led(led) => match led.get(&partition) {
                None => Err(ErrorCode::NotCoordinator),
                Some(ShardState::Loading { .. }) => Err(ErrorCode::CoordinatorLoadInProgress),
                Some(ShardState::Loaded { .. }) => Ok(()),
            },
        }
    }

    /// Whether some led partition is still loading (ListGroups and ListTransactions then
    /// answer COORDINATOR_LOAD_IN_PROGRESS, as Kafka's read-all operations do).
    pub fn any_loading(&self) -> bool {
        match self {
            CoordinatorShards::All => false,
            CoordinatorShards::Led(led) => led
                .values()
                .any(|s| matches!(s, ShardState::Loading { .. })),
        }
    }

    /// This node now leads `partition` at `epoch`: `true` if the caller must (re)load it.
    /// A leader epoch not newer than the one held changes nothing.
    pub fn begin_load(&mut self, partition: i32, epoch: i32) -> bool {
        let CoordinatorShards::Led(led) = self else {
            return false;
        };
        let held = led.get(&partition).map(|s| match *s {
            ShardState::Loading { epoch } | ShardState::Loaded { epoch } => epoch,
        });
        if held.is_some_and(|held| held >= epoch) {
            return false;
        }
        led.insert(partition, ShardState::Loading { epoch });
        true
    }

    /// Whether the load of `partition` for `epoch` is still wanted (no resignation or newer
    /// epoch since it began).
    pub fn is_loading(&self, partition: i32, epoch: i32) -> bool {
        match self {
            CoordinatorShards::All => false,
            CoordinatorShards::Led(led) => {
                led.get(&partition) == Some(&ShardState::Loading { epoch })
            }
        }
    }

    /// The load for `epoch` ended: `true` if the partition is now served; `false` if it was
    /// resigned or re-led at a newer epoch meanwhile (whoever did that reloads or unloads).
    pub fn finish_load(&mut self, partition: i32, epoch: i32) -> bool {
        if !self.is_loading(partition, epoch) {
            return false;
        }
        if let CoordinatorShards::Led(led) = self {
            led.insert(partition, ShardState::Loaded { epoch });
        }
        true
    }

    /// This node no longer leads `partition`: `true` if it did (its ids must be unloaded).
    pub fn resign(&mut self, partition: i32) -> bool {
        match self {
            CoordinatorShards::All => false,
            CoordinatorShards::Led(led) => led.remove(&partition).is_some(),
        }
    }

    /// The led partitions (loaded or loading).
    pub fn partitions(&self) -> Vec<i32> {
        match self {
            CoordinatorShards::All => Vec::new(),
            CoordinatorShards::Led(led) => led.keys().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_node_serves_everything() {
        let mut all = CoordinatorShards::all();
        assert_eq!(all.status(7), Ok(()));
        assert!(!all.begin_load(7, 1));
        assert!(!all.resign(7));
        assert_eq!(all.status(7), Ok(()));
    }

    #[test]
    fn led_partitions_load_then_serve_and_resign() {
        let mut shards = CoordinatorShards::led();
        assert_eq!(shards.status(3), Err(ErrorCode::NotCoordinator));
        assert!(shards.begin_load(3, 5));
        assert_eq!(shards.status(3), Err(ErrorCode::CoordinatorLoadInProgress));
        assert!(shards.any_loading());
        // Leadership reported again at the same epoch: nothing to reload.
        assert!(!shards.begin_load(3, 5));
        assert!(shards.finish_load(3, 5));
        assert_eq!(shards.status(3), Ok(()));
        assert!(!shards.any_loading());
        assert_eq!(shards.status(4), Err(ErrorCode::NotCoordinator));
        assert!(shards.resign(3));
        assert!(!shards.resign(3));
        assert_eq!(shards.status(3), Err(ErrorCode::NotCoordinator));
    }

    #[test]
    fn a_load_overtaken_by_a_resignation_or_a_newer_epoch_does_not_serve() {
        let mut shards = CoordinatorShards::led();
        assert!(shards.begin_load(0, 1));
        assert!(shards.resign(0));
        assert!(!shards.finish_load(0, 1));
        assert_eq!(shards.status(0), Err(ErrorCode::NotCoordinator));
        assert!(shards.begin_load(0, 2));
        assert!(shards.begin_load(0, 3));
        assert!(!shards.finish_load(0, 2));
        assert_eq!(shards.status(0), Err(ErrorCode::CoordinatorLoadInProgress));
        assert!(shards.finish_load(0, 3));
        assert_eq!(shards.partitions(), vec![0]);
    }
}
