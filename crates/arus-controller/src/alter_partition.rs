//! AlterPartition: a partition leader changes its ISR (Kafka's
//! `ReplicationControlManager.alterPartition` and `validateAlterPartitionData`). The
//! request carries the leader's leader epoch and partition epoch, so a change based on a
//! stale view is refused instead of undoing a newer one.

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_partition_request::PartitionData as RequestPartition;
use arus_protocol::messages::alter_partition_response::{
    PartitionData as ResponsePartition, TopicData as ResponseTopic,
};
use arus_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse};

use crate::brokers::check_broker_epoch;
use crate::election::{ChangeSpec, Decider};
use crate::error::ControllerError;
use crate::partition_change::{Election, RECOVERED, RECOVERING};
use crate::records::MetadataRecord;
use crate::state::{NO_LEADER_CHANGE, PartitionInfo, merge_partition_change};

/// Kafka's `Replicas.validateIsr`: no negative ids, no duplicates, a subset of the replicas.
fn valid_isr(replicas: &[i32], isr: &[i32]) -> bool {
    let mut sorted = isr.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return false;
    }
    sorted.iter().all(|r| *r >= 0 && replicas.contains(r))
}

/// `(broker, epoch)` pairs of the proposed ISR (v0–v2 send ids only: epoch -1 skips the
/// epoch check).
fn proposed_isr(p: &RequestPartition, version: i16) -> Vec<(i32, i64)> {
    if version < 3 {
        p.new_isr.iter().map(|&b| (b, -1)).collect()
    } else {
        p.new_isr_with_epochs
            .iter()
            .map(|s| (s.broker_id, s.broker_epoch))
            .collect()
    }
}

fn validate(
    d: &Decider<'_>,
    broker_id: i32,
    partition: Option<&PartitionInfo>,
    req: &RequestPartition,
    isr: &[(i32, i64)],
    version: i16,
) -> Result<(), ErrorCode> {
    let Some(p) = partition else {
        return Err(ErrorCode::UnknownTopicOrPartition);
    };
    // A leader ahead of us means we are probably no longer the active controller.
    if req.leader_epoch > p.leader_epoch || req.partition_epoch > p.partition_epoch {
        return Err(ErrorCode::NotController);
    }
    if req.leader_epoch < p.leader_epoch {
        return Err(ErrorCode::FencedLeaderEpoch);
    }
    if broker_id != p.leader {
        return Err(ErrorCode::InvalidRequest);
    }
    if req.partition_epoch < p.partition_epoch {
        return Err(ErrorCode::InvalidUpdateVersion);
    }
    let ids: Vec<i32> = isr.iter().map(|(b, _)| *b).collect();
    if !valid_isr(&p.replicas, &ids) || !ids.contains(&p.leader) {
        return Err(ErrorCode::InvalidRequest);
    }
    if req.leader_recovery_state == RECOVERING && ids.len() > 1 {
        return Err(ErrorCode::InvalidRequest);
    }
    if p.leader_recovery_state == RECOVERED && req.leader_recovery_state == RECOVERING {
        return Err(ErrorCode::InvalidRequest);
    }
    let ineligible: Vec<String> = isr
        .iter()
        .filter_map(|&(b, epoch)| match d.state.brokers.get(&b) {
            None => Some(format!("{b} (not registered)")),
            Some(r) if r.in_controlled_shutdown => Some(format!("{b} (shutting down)")),
            Some(r) if r.fenced => Some(format!("{b} (fenced)")),
            Some(r) if epoch != -1 && r.epoch != epoch => Some(format!(
                "{b} (broker epoch mismatch: requested={epoch} VS expected={})",
                r.epoch
            )),
            Some(_) => None,
        })
        .collect();
    if !ineligible.is_empty() {
        tracing::info!(
            broker_id,
            ?ineligible,
            "rejecting AlterPartition: ineligible replicas in the new ISR"
        );
        return Err(if version > 1 {
            ErrorCode::IneligibleReplica
        } else {
            ErrorCode::OperationNotAttempted
        });
    }
    Ok(())
}

/// AlterPartition at request version `version`: the PartitionChangeRecords and the response.
pub fn alter_partition(
    d: &Decider<'_>,
    request: &AlterPartitionRequest,
    version: i16,
) -> Result<(Vec<MetadataRecord>, AlterPartitionResponse), ControllerError> {
    check_broker_epoch(d, request.broker_id, request.broker_epoch)?;
    let mut records = Vec::new();
    let mut response = AlterPartitionResponse::default();
    for topic in &request.topics {
        let mut out = ResponseTopic {
            topic_id: topic.topic_id,
            ..ResponseTopic::default()
        };
        let Some(info) = d.state.topics.get(&topic.topic_id) else {
            for p in &topic.partitions {
                out.partitions.push(ResponsePartition {
                    partition_index: p.partition_index,
                    error_code: ErrorCode::UnknownTopicId.code(),
                    ..ResponsePartition::default()
                });
            }
            response.topics.push(out);
            continue;
        };
        for req in &topic.partitions {
            let pid = req.partition_index;
            let partition = info.partitions.get(&pid);
            let isr = proposed_isr(req, version);
            if let Err(code) = validate(d, request.broker_id, partition, req, &isr, version) {
                out.partitions.push(ResponsePartition {
                    partition_index: pid,
                    error_code: code.code(),
                    ..ResponsePartition::default()
                });
                continue;
            }
            let Some(partition) = partition else { continue };
            let acceptable = |r: i32| d.state.is_active(r);
            let election = if d.unclean_enabled(&info.name) {
                Election::Unclean
            } else {
                Election::Online
            };
            let target: Vec<i32> = isr.iter().map(|(b, _)| *b).collect();
            let change = d.change(
                &info.name,
                info.id,
                pid,
                partition,
                ChangeSpec {
                    acceptable: &acceptable,
                    election,
                    target_isr: Some(target),
                    target_replicas: None,
                    target_adding: None,
                    target_removing: None,
                    unclean_shutdown: None,
                    target_recovery: Some(req.leader_recovery_state),
                },
            );
            let mut after = partition.clone();
            if let Some(change) = change {
                merge_partition_change(&mut after, &change);
                let leader_changed =
                    change.leader != request.broker_id && change.leader != NO_LEADER_CHANGE;
                records.push(MetadataRecord::PartitionChange(change));
                if leader_changed {
                    // Only a reassignment completed by this ISR change moves the leader here:
                    // the leader hears it must refresh its metadata before trying again.
                    tracing::info!(broker = request.broker_id, topic = %info.name, partition = pid, new_leader = after.leader, "AlterPartition completed the ongoing partition reassignment and triggered a leadership change");
                    out.partitions.push(ResponsePartition {
                        partition_index: pid,
                        error_code: if version > 1 {
                            ErrorCode::NewLeaderElected.code()
                        } else {
                            ErrorCode::FencedLeaderEpoch.code()
                        },
                        ..ResponsePartition::default()
                    });
                    continue;
                }
                if crate::reassignment::in_progress(partition)
                    && !crate::reassignment::in_progress(&after)
                {
                    tracing::info!(broker = request.broker_id, topic = %info.name, partition = pid, replicas = ?after.replicas, "AlterPartition completed the ongoing partition reassignment");
                }
                tracing::debug!(broker = request.broker_id, topic = %info.name, partition = pid, isr = ?after.isr, "ISR altered");
            }
            out.partitions.push(ResponsePartition {
                partition_index: pid,
                error_code: 0,
                leader_id: after.leader,
                leader_epoch: after.leader_epoch,
                isr: after.isr.clone(),
                leader_recovery_state: after.leader_recovery_state,
                partition_epoch: after.partition_epoch,
            });
        }
        response.topics.push(out);
    }
    Ok((records, response))
}
