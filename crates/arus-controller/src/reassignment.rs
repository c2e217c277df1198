//! AlterPartitionReassignments, as Kafka 4.4's `ReplicationControlManager`
//! (`alterPartitionReassignment`, `cancelPartitionReassignment`,
//! `changePartitionReassignment`) decides it, for the reassignments that move no data.
//!
//! Kafka checks each partition in turn: the topic and partition exist; a cancellation
//! (`Replicas` null) needs a reassignment in progress; a target must be a valid manual
//! assignment of registered brokers and, when `AllowReplicationFactorChange` is false
//! (KIP-860), keep the replication factor. A target with the same replicas as now is a
//! no-op; one that only reorders them completes at once with a `PartitionChangeRecord`
//! (a new preferred leader). Moving a replica to another broker needs that broker to copy
//! the partition, i.e. replication (issue 15): it is refused per partition, so no
//! reassignment is ever in progress here.

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_partition_reassignments_request::ReassignablePartition;

use crate::election::{ChangeSpec, Decider};
use crate::error::ControllerError;
use crate::partition_change::Election;
use crate::placement::validate_manual_assignment;
use crate::records::MetadataRecord;

/// Why a replica move is refused until replication exists.
pub const MOVE_NOT_SUPPORTED: &str =
    "Moving replicas between brokers is not supported by Arus yet.";

/// Kafka's `NO_REASSIGNMENT_IN_PROGRESS` exception message, which `ApiError` drops because
/// it is the code's default one.
fn no_reassignment_in_progress() -> ControllerError {
    ControllerError::code_only(ErrorCode::NoReassignmentInProgress)
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
        let in_progress = !part.adding_replicas.is_empty() || !part.removing_replicas.is_empty();
        let Some(replicas) = &target.replicas else {
            // Arus never starts a reassignment that would need reverting.
            return Err(if in_progress {
                ControllerError::new(ErrorCode::InvalidRequest, MOVE_NOT_SUPPORTED)
            } else {
                no_reassignment_in_progress()
            });
        };
        validate_manual_assignment(replicas, None, |id| self.state.brokers.contains_key(&id))?;
        if !allow_replication_factor_change && replicas.len() != part.replicas.len() {
            return Err(ControllerError::new(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "The replication factor is changed from {} to {}",
                    part.replicas.len(),
                    replicas.len()
                ),
            ));
        }
        let same_set = replicas.len() == part.replicas.len()
            && replicas.iter().all(|r| part.replicas.contains(r));
        if in_progress || !same_set {
            return Err(ControllerError::new(
                ErrorCode::InvalidRequest,
                MOVE_NOT_SUPPORTED,
            ));
        }
        if *replicas == part.replicas {
            return Ok(None);
        }
        // Only the order changes: Kafka's `PartitionReassignmentReplicas` has nothing to add
        // or remove, so the builder just sets the new replica list (the leader stays).
        let acceptable = |r: i32| self.state.is_active(r);
        let spec = ChangeSpec {
            acceptable: &acceptable,
            election: Election::Online,
            target_isr: None,
            target_replicas: Some(replicas.clone()),
            unclean_shutdown: None,
            target_recovery: None,
        };
        Ok(self
            .change(topic, info.id, index, part, spec)
            .map(MetadataRecord::PartitionChange))
    }
}
