//! What this node's replica of a partition is: its leader, a follower, or stopped — and the
//! leader epoch the metadata gave with that role. Pure: [`ReplicaRole::transition`] decides,
//! [`crate::partition::Partition`] applies the decision to its log (a new leader epoch is
//! recorded in `leader-epoch-checkpoint` at the log end, as Kafka's `Partition.makeLeader`).
//!
//! The rules follow Kafka's `Partition.makeLeader` / `makeFollower`: the metadata log is
//! ordered, so an epoch older than the one held is stale and ignored; the same epoch with the
//! same role is not a change (a partition epoch change, e.g. an ISR change, leaves the leader
//! epoch alone); a stopped replica takes no role again (the registry opens a new one).

/// A role the metadata assigns to this node's replica of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalRole {
    /// This node leads the partition at `epoch`.
    Leader { epoch: i32 },
    /// Another node (`leader`, -1 if none) leads at `epoch`; this node holds a replica.
    Follower { leader: i32, epoch: i32 },
}

impl LocalRole {
    pub fn epoch(&self) -> i32 {
        match *self {
            LocalRole::Leader { epoch } | LocalRole::Follower { epoch, .. } => epoch,
        }
    }
}

/// The replica's current role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaRole {
    Active(LocalRole),
    /// No longer served (Kafka's `StopReplica`): the partition is about to be closed or
    /// deleted. Requests that still hold it get NOT_LEADER_OR_FOLLOWER from the routing layer.
    Stopped,
}

/// What a transition changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing: the same role at the same epoch.
    Unchanged,
    /// This node now leads at a new epoch (from a follower, or a leader at an older epoch):
    /// the caller records the epoch at the log end.
    BecameLeader { epoch: i32 },
    /// This node now follows (or follows another leader, or at a newer epoch).
    BecameFollower { leader: i32, epoch: i32 },
    /// The replica stopped.
    Stopped,
}

/// Why a transition was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("leader epoch {requested} is older than the current epoch {current}")]
    StaleEpoch { current: i32, requested: i32 },
    #[error("the replica is stopped")]
    Stopped,
}

impl ReplicaRole {
    pub fn is_leader(&self) -> bool {
        matches!(self, ReplicaRole::Active(LocalRole::Leader { .. }))
    }

    /// The leader epoch of the current role (-1 once stopped).
    pub fn leader_epoch(&self) -> i32 {
        match self {
            ReplicaRole::Active(role) => role.epoch(),
            ReplicaRole::Stopped => -1,
        }
    }

    /// The leader the metadata names (this node's id is not known here: `None` means this
    /// node leads, `Some(-1)` no leader, `Some(id)` another node).
    pub fn leader(&self) -> Option<i32> {
        match *self {
            ReplicaRole::Active(LocalRole::Follower { leader, .. }) => Some(leader),
            ReplicaRole::Active(LocalRole::Leader { .. }) => None,
            ReplicaRole::Stopped => Some(-1),
        }
    }

    /// Decides the move to `to`; on success `self` holds the new role.
    pub fn transition(&mut self, to: LocalRole) -> Result<Transition, RoleError> {
        let ReplicaRole::Active(current) = *self else {
            return Err(RoleError::Stopped);
        };
        let (held, requested) = (current.epoch(), to.epoch());
        if requested < held {
            return Err(RoleError::StaleEpoch {
                current: held,
                requested,
            });
        }
        if current == to {
            return Ok(Transition::Unchanged);
        }
        *self = ReplicaRole::Active(to);
        Ok(match to {
            LocalRole::Leader { epoch } => Transition::BecameLeader { epoch },
            LocalRole::Follower { leader, epoch } => Transition::BecameFollower { leader, epoch },
        })
    }

    /// Stops the replica; stopping twice is not a change.
    pub fn stop(&mut self) -> Transition {
        match std::mem::replace(self, ReplicaRole::Stopped) {
            ReplicaRole::Stopped => Transition::Unchanged,
            ReplicaRole::Active(_) => Transition::Stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(epoch: i32) -> LocalRole {
        LocalRole::Leader { epoch }
    }
    fn follower(leader: i32, epoch: i32) -> LocalRole {
        LocalRole::Follower { leader, epoch }
    }

    #[test]
    fn leadership_moves_forward_with_the_epoch() {
        let mut role = ReplicaRole::Active(follower(2, 3));
        assert!(!role.is_leader());
        assert_eq!(role.leader(), Some(2));
        assert_eq!(
            role.transition(leader(4)),
            Ok(Transition::BecameLeader { epoch: 4 })
        );
        assert!(role.is_leader());
        assert_eq!(role.leader_epoch(), 4);
        assert_eq!(role.leader(), None);
        // The same role at the same epoch (an ISR change): nothing to do.
        assert_eq!(role.transition(leader(4)), Ok(Transition::Unchanged));
        assert_eq!(
            role.transition(follower(3, 5)),
            Ok(Transition::BecameFollower {
                leader: 3,
                epoch: 5
            })
        );
        assert_eq!(role.leader_epoch(), 5);
        // A new leader elected with no change of epoch on this side is still a change.
        assert_eq!(
            role.transition(follower(-1, 5)),
            Ok(Transition::BecameFollower {
                leader: -1,
                epoch: 5
            })
        );
    }

    #[test]
    fn stale_epochs_are_refused_and_change_nothing() {
        let mut role = ReplicaRole::Active(leader(7));
        assert_eq!(
            role.transition(follower(2, 6)),
            Err(RoleError::StaleEpoch {
                current: 7,
                requested: 6
            })
        );
        assert_eq!(role, ReplicaRole::Active(leader(7)));
    }

    #[test]
    fn a_stopped_replica_takes_no_role() {
        let mut role = ReplicaRole::Active(leader(1));
        assert_eq!(role.stop(), Transition::Stopped);
        assert!(!role.is_leader());
        assert_eq!(role.leader_epoch(), -1);
        assert_eq!(role.stop(), Transition::Unchanged);
        assert_eq!(role.transition(leader(2)), Err(RoleError::Stopped));
    }
}
