//! AlterPartitionReassignments and ListPartitionReassignments, as Kafka 4.4's
//! `ReplicationControlManager` (`alterPartitionReassignment`, `changePartitionReassignment`,
//! `cancelPartitionReassignment`, `listPartitionReassignments`) decides them, with the
//! replica arithmetic of `PartitionReassignmentReplicas` and `PartitionReassignmentRevert`.
//!
//! A reassignment goes through three stages, each a `PartitionChangeRecord`:
//! 1. the replica list becomes the target followed by the replicas being removed, with
//!    `adding_replicas` and `removing_replicas` set and the ISR unchanged; the brokers newly
//!    named open the partition as followers and fetch from the leader;
//! 2. the leader adds each caught-up new replica to the ISR (AlterPartition);
//! 3. the change that puts the last adding replica in the ISR (or any later change whose
//!    ISR allows it) completes it: the replicas become the target, the removed ones leave
//!    the ISR, adding/removing are cleared and, if the leader was removed, a new one is
//!    elected. The brokers no longer named stop and delete their replica.
//!
//! Stage 3 lives in the `PartitionChangeBuilder` (`complete_reassignment_if_needed`), so
//! every change completes a reassignment its ISR allows, as in Kafka. A target already
//! satisfied by the ISR (a reorder, a shrink whose remaining replicas are in the ISR)
//! completes in stage 1's record.
//!
//! Kafka checks each partition in turn: the topic and partition exist; a cancellation
//! (`Replicas` null) needs a reassignment in progress; a target must be a valid manual
//! assignment of registered brokers and, when `AllowReplicationFactorChange` is false
//! (KIP-860), keep the replication factor the partition is headed for.

use std::collections::BTreeSet;

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_partition_reassignments_request::ReassignablePartition;
use arus_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use arus_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};

use crate::election::{ChangeSpec, Decider};
use crate::error::ControllerError;
use crate::partition_change::Election;
use crate::placement::validate_manual_assignment;
use crate::records::MetadataRecord;
use crate::state::{ClusterState, PartitionInfo, TopicInfo};

/// Kafka's `NO_REASSIGNMENT_IN_PROGRESS` exception message, which `ApiError` drops because
/// it is the code's default one.
fn no_reassignment_in_progress() -> ControllerError {
    ControllerError::code_only(ErrorCode::NoReassignmentInProgress)
}

/// Kafka's `isReassignmentInProgress`.
pub fn in_progress(p: &PartitionInfo) -> bool {
    !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()
}

/// Kafka's `PartitionReassignmentReplicas`: the replicas a reassignment removes and adds
/// (each sorted by id) and the merged replica list (the target in the operator's order,
/// then the removed replicas by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentReplicas {
    pub removing: Vec<i32>,
    pub adding: Vec<i32>,
    pub replicas: Vec<i32>,
}

fn difference(a: &[i32], b: &[i32]) -> Vec<i32> {
    let set: BTreeSet<i32> = a.iter().copied().filter(|r| !b.contains(r)).collect();
    set.into_iter().collect()
}

impl ReassignmentReplicas {
    /// The reassignment from `current` replicas to `target`.
    pub fn new(current: &[i32], target: &[i32]) -> Self {
        let removing = difference(current, target);
        let adding = difference(target, current);
        let mut replicas = target.to_vec();
        replicas.extend(&removing);
        ReassignmentReplicas {
            removing,
            adding,
            replicas,
        }
    }

    /// Kafka's `maybeCompleteReassignment`: the `(replicas, isr)` the partition completes
    /// to with `isr` as its target ISR, or `None` while it cannot. The removed replicas
    /// leave both; the result must keep an ISR member and every remaining replica must be in
    /// the ISR (so every adding replica has caught up).
    pub fn maybe_complete(&self, isr: &[i32]) -> Option<(Vec<i32>, Vec<i32>)> {
        if self.removing.is_empty() && self.adding.is_empty() {
            return None;
        }
        let keep = |r: &&i32| !self.removing.contains(r);
        let new_isr: Vec<i32> = isr.iter().filter(keep).copied().collect();
        let new_replicas: Vec<i32> = self.replicas.iter().filter(keep).copied().collect();
        if new_isr.is_empty() || new_replicas.is_empty() {
            return None;
        }
        if !new_replicas.iter().all(|r| new_isr.contains(r)) {
            return None;
        }
        Some((new_replicas, new_isr))
    }

    /// The replicas before the reassignment (Kafka's `originalReplicas`).
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding.contains(r))
            .collect()
    }
}

/// Kafka's `PartitionReassignmentRevert`: the replicas and ISR a cancellation goes back to.
/// The adding replicas leave both; if that empties the ISR, the first original replica is
/// put in it, which is an unclean election (`unclean`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentRevert {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub unclean: bool,
}

impl ReassignmentRevert {
    pub fn new(p: &PartitionInfo) -> Result<Self, ControllerError> {
        let ongoing = ReassignmentReplicas {
            removing: p.removing_replicas.clone(),
            adding: p.adding_replicas.clone(),
            replicas: p.replicas.clone(),
        };
        let replicas = ongoing.original_replicas();
        let mut isr: Vec<i32> = p
            .isr
            .iter()
            .copied()
            .filter(|r| !ongoing.adding.contains(r))
            .collect();
        if !isr.is_empty() {
            return Ok(ReassignmentRevert {
                replicas,
                isr,
                unclean: false,
            });
        }
        // Unreachable from a valid log: the partition had replicas before it started.
        let Some(&first) = replicas.first() else {
            return Err(ControllerError::new(
                ErrorCode::InvalidReplicaAssignment,
                "Invalid replica assignment: addingReplicas contains all replicas.",
            ));
        };
        isr.push(first);
        Ok(ReassignmentRevert {
            replicas,
            isr,
            unclean: true,
        })
    }
}

impl Decider<'_> {
    /// One partition of an AlterPartitionReassignments: the record it produces (if any) or
    /// Kafka's error for it.
    pub fn alter_partition_reassignment(
        &self,
        topic: &str,
        target: &ReassignablePartition,
        allow_replication_factor_change: bool,
    ) -> Result<Option<MetadataRecord>, ControllerError> {
        let Some(info) = self.state.topic_by_name(topic) else {
            return Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("Unable to find a topic named {topic}."),
            ));
        };
        let index = target.partition_index;
        let Some(part) = info.partitions.get(&index) else {
            return Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("Unable to find partition {topic}:{index}."),
            ));
        };
        let record = match &target.replicas {
            None => self.cancel_reassignment(info, index, part)?,
            Some(replicas) => {
                validate_manual_assignment(replicas, None, |id| {
                    self.state.brokers.contains_key(&id)
                })?;
                if !allow_replication_factor_change {
                    replication_factor_unchanged(part, replicas.len())?;
                }
                self.change_reassignment(info, index, part, replicas)
            }
        };
        Ok(record.map(MetadataRecord::PartitionChange))
    }

    /// Kafka's `cancelPartitionReassignment`.
    fn cancel_reassignment(
        &self,
        info: &TopicInfo,
        index: i32,
        part: &PartitionInfo,
    ) -> Result<Option<arus_protocol::metadata::PartitionChangeRecord>, ControllerError> {
        if !in_progress(part) {
            return Err(no_reassignment_in_progress());
        }
        let revert = ReassignmentRevert::new(part)?;
        let unclean_enabled = self.unclean_enabled(&info.name);
        if revert.unclean && !unclean_enabled {
            return Err(ControllerError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "Unable to revert partition assignment for {}:{index} because it would \
                     require an unclean leader election.",
                    info.name
                ),
            ));
        }
        let acceptable = |r: i32| self.state.is_active(r);
        let spec = ChangeSpec {
            acceptable: &acceptable,
            election: if unclean_enabled {
                Election::Unclean
            } else {
                Election::Online
            },
            target_isr: Some(revert.isr),
            target_replicas: Some(revert.replicas),
            target_adding: Some(Vec::new()),
            target_removing: Some(Vec::new()),
            unclean_shutdown: None,
            target_recovery: None,
        };
        Ok(self.change(&info.name, info.id, index, part, spec))
    }

    /// Kafka's `changePartitionReassignment`: stage 1 of a reassignment (or all of it when
    /// the ISR already allows completing it).
    fn change_reassignment(
        &self,
        info: &TopicInfo,
        index: i32,
        part: &PartitionInfo,
        target: &[i32],
    ) -> Option<arus_protocol::metadata::PartitionChangeRecord> {
        let r = ReassignmentReplicas::new(&part.replicas, target);
        let acceptable = |b: i32| self.state.is_active(b);
        // Kafka sets each part only when it differs or is non-empty: an empty adding or
        // removing list keeps the partition's current one.
        let spec = ChangeSpec {
            acceptable: &acceptable,
            election: Election::Online,
            target_isr: None,
            target_replicas: (r.replicas != part.replicas).then(|| r.replicas.clone()),
            target_adding: (!r.adding.is_empty()).then(|| r.adding.clone()),
            target_removing: (!r.removing.is_empty()).then(|| r.removing.clone()),
            unclean_shutdown: None,
            target_recovery: None,
        };
        self.change(&info.name, info.id, index, part, spec)
    }
}

/// Kafka's `validatePartitionReplicationFactorUnchanged` (KIP-860): the target must be as
/// long as the replica set the partition is headed for (during a reassignment: the replicas
/// and adding ones, without the removing ones).
fn replication_factor_unchanged(
    part: &PartitionInfo,
    target: usize,
) -> Result<(), ControllerError> {
    let current = if in_progress(part) {
        let heading: BTreeSet<i32> = part
            .replicas
            .iter()
            .chain(&part.adding_replicas)
            .copied()
            .filter(|r| !part.removing_replicas.contains(r))
            .collect();
        heading.len()
    } else {
        part.replicas.len()
    };
    if current == target {
        return Ok(());
    }
    Err(ControllerError::new(
        ErrorCode::InvalidReplicationFactor,
        format!("The replication factor is changed from {current} to {target}"),
    ))
}

/// Kafka's `listPartitionReassignments`: every partition with a reassignment in progress
/// (`topics` null), or those of the named topics and partitions (unknown ones are left
/// out, as in Kafka).
pub fn list_reassignments(
    state: &ClusterState,
    topics: Option<&[ListPartitionReassignmentsTopics]>,
) -> Vec<OngoingTopicReassignment> {
    let ongoing = |index: i32, p: &PartitionInfo| OngoingPartitionReassignment {
        partition_index: index,
        replicas: p.replicas.clone(),
        adding_replicas: p.adding_replicas.clone(),
        removing_replicas: p.removing_replicas.clone(),
    };
    let topic_entry = |t: &TopicInfo, indexes: &mut dyn Iterator<Item = i32>| {
        let partitions: Vec<OngoingPartitionReassignment> = indexes
            .filter_map(|i| {
                t.partitions
                    .get(&i)
                    .filter(|p| in_progress(p))
                    .map(|p| ongoing(i, p))
            })
            .collect();
        (!partitions.is_empty()).then(|| OngoingTopicReassignment {
            name: t.name.clone(),
            partitions,
        })
    };
    match topics {
        None => state
            .topics
            .values()
            .filter_map(|t| topic_entry(t, &mut t.partitions.keys().copied()))
            .collect(),
        Some(asked) => asked
            .iter()
            .filter_map(|a| {
                let t = state.topic_by_name(&a.name)?;
                topic_entry(t, &mut a.partition_indexes.iter().copied())
            })
            .collect(),
    }
}
