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
    /// Being replayed by load `load`: answers COORDINATOR_LOAD_IN_PROGRESS.
    Loading { epoch: i32, load: u64 },
    /// Served.
    Loaded { epoch: i32 },
}

impl ShardState {
    fn epoch(&self) -> i32 {
        match *self {
            ShardState::Loading { epoch, .. } | ShardState::Loaded { epoch } => epoch,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorShards {
    /// Every partition is led here (a single node): served once the whole topic is loaded.
    All,
    /// The partitions led here, by index; any other answers NOT_COORDINATOR. `next_load`
    /// numbers loads, so that a load overtaken by a resignation (and perhaps a new load)
    /// is told apart from the current one.
    Led {
        shards: BTreeMap<i32, ShardState>,
        next_load: u64,
    },
}

impl CoordinatorShards {
    pub fn all() -> CoordinatorShards {
        CoordinatorShards::All
    }

    /// No partition led yet (a cluster member before its first metadata).
    pub fn led() -> CoordinatorShards {
        CoordinatorShards::Led {
            shards: BTreeMap::new(),
            next_load: 1,
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, CoordinatorShards::All)
    }

    /// Whether the ids of `partition` may be served: `Err` with the code Kafka answers.
    pub fn status(&self, partition: i32) -> Result<(), ErrorCode> {
        match self {
            CoordinatorShards::All => Ok(()),
            CoordinatorShards::Led { shards, .. } => match shards.get(&partition) {
                None => Err(ErrorCode::NotCoordinator),
                Some(ShardState::Loading { .. }) => Err(ErrorCode::CoordinatorLoadInProgress),
                Some(ShardState::Loaded { .. }) => Ok(()),
            },
        }
    }

    /// The leader epoch at which `partition` is led here, Kafka's coordinator epoch (carried
    /// in transaction markers, so that a deposed coordinator's markers are fenced): 0 for
    /// the single node, `None` when it is not led here.
    pub fn epoch(&self, partition: i32) -> Option<i32> {
        match self {
            CoordinatorShards::All => Some(0),
            CoordinatorShards::Led { shards, .. } => shards.get(&partition).map(ShardState::epoch),
        }
    }

    /// Whether some led partition is still loading (ListGroups and ListTransactions then
    /// answer COORDINATOR_LOAD_IN_PROGRESS, as Kafka's read-all operations do).
    pub fn any_loading(&self) -> bool {
        match self {
            CoordinatorShards::All => false,
            CoordinatorShards::Led { shards, .. } => shards
                .values()
                .any(|s| matches!(s, ShardState::Loading { .. })),
        }
    }

    /// This node now leads `partition` at `epoch`: `Some(load)` if the caller must load it
    /// (then [`CoordinatorShards::finish_load`] with that `load`). A partition already led
    /// (loading or loaded) only takes the newer epoch, without a reload, as Kafka's
    /// `CoordinatorRuntime.scheduleLoadOperation`; an older epoch changes nothing.
    pub fn begin_load(&mut self, partition: i32, epoch: i32) -> Option<u64> {
        let CoordinatorShards::Led { shards, next_load } = self else {
            return None;
        };
        if let Some(state) = shards.get_mut(&partition) {
            if epoch > state.epoch() {
                *state = match *state {
                    ShardState::Loading { load, .. } => ShardState::Loading { epoch, load },
                    ShardState::Loaded { .. } => ShardState::Loaded { epoch },
                };
            }
            return None;
        }
        let load = *next_load;
        *next_load += 1;
        shards.insert(partition, ShardState::Loading { epoch, load });
        Some(load)
    }

    /// Whether `load` of `partition` is still wanted (not overtaken by a resignation).
    pub fn is_loading(&self, partition: i32, load: u64) -> bool {
        match self {
            CoordinatorShards::All => false,
            CoordinatorShards::Led { shards, .. } => matches!(
                shards.get(&partition),
                Some(ShardState::Loading { load: current, .. }) if *current == load
            ),
        }
    }

    /// `load` ended: `true` if the partition is now served, `false` if the load was
    /// overtaken (whoever resigned unloads).
    pub fn finish_load(&mut self, partition: i32, load: u64) -> bool {
        if !self.is_loading(partition, load) {
            return false;
        }
        if let CoordinatorShards::Led { shards, .. } = self
            && let Some(state) = shards.get_mut(&partition)
        {
            *state = ShardState::Loaded {
                epoch: state.epoch(),
            };
        }
        true
    }

    /// This node no longer leads `partition`: `true` if it did (its ids must be unloaded,
    /// under the same lock as the loads, so that no load of the old leadership lands after).
    pub fn resign(&mut self, partition: i32) -> bool {
        match self {
            CoordinatorShards::All => false,
            CoordinatorShards::Led { shards, .. } => shards.remove(&partition).is_some(),
        }
    }

    /// The led partitions (loaded or loading).
    pub fn partitions(&self) -> Vec<i32> {
        match self {
            CoordinatorShards::All => Vec::new(),
            CoordinatorShards::Led { shards, .. } => shards.keys().copied().collect(),
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
        assert_eq!(all.epoch(7), Some(0));
        assert_eq!(all.begin_load(7, 1), None);
        assert!(!all.resign(7));
        assert_eq!(all.status(7), Ok(()));
    }

    #[test]
    fn led_partitions_load_then_serve_and_resign() {
        let mut shards = CoordinatorShards::led();
        assert_eq!(shards.status(3), Err(ErrorCode::NotCoordinator));
        let load = shards.begin_load(3, 5).unwrap();
        assert_eq!(shards.status(3), Err(ErrorCode::CoordinatorLoadInProgress));
        assert!(shards.any_loading());
        // Leadership reported again, even at a newer epoch: no second load.
        assert_eq!(shards.begin_load(3, 5), None);
        assert_eq!(shards.begin_load(3, 6), None);
        // The coordinator epoch follows the newest leader epoch.
        assert_eq!(shards.epoch(3), Some(6));
        assert!(shards.finish_load(3, load));
        assert_eq!(shards.status(3), Ok(()));
        assert!(!shards.any_loading());
        assert_eq!(shards.begin_load(3, 7), None);
        assert_eq!(shards.status(3), Ok(()));
        assert_eq!(shards.status(4), Err(ErrorCode::NotCoordinator));
        assert_eq!(shards.epoch(3), Some(7));
        assert!(shards.resign(3));
        assert_eq!(shards.epoch(3), None);
        assert!(!shards.resign(3));
        assert_eq!(shards.status(3), Err(ErrorCode::NotCoordinator));
    }

    #[test]
    fn a_load_overtaken_by_a_resignation_does_not_serve() {
        let mut shards = CoordinatorShards::led();
        let first = shards.begin_load(0, 1).unwrap();
        assert!(shards.resign(0));
        assert!(!shards.is_loading(0, first));
        assert!(!shards.finish_load(0, first));
        assert_eq!(shards.status(0), Err(ErrorCode::NotCoordinator));
        // Led again: a new load, and only it completes the partition.
        let second = shards.begin_load(0, 2).unwrap();
        assert_ne!(first, second);
        assert!(!shards.finish_load(0, first));
        assert_eq!(shards.status(0), Err(ErrorCode::CoordinatorLoadInProgress));
        assert!(shards.finish_load(0, second));
        assert_eq!(shards.status(0), Ok(()));
        assert_eq!(shards.partitions(), vec![0]);
    }
}
