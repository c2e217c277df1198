//! The records a consumer group's changes write to `__consumer_offsets`, built as Kafka's
//! `GroupCoordinatorRecordHelpers` builds them.

use super::*;

pub(super) fn rec_epoch(group_id: &str, epoch: i32) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupMetadata {
        group_id: group_id.to_string(),
        value: Some(ConsumerGroupMetadataValue {
            epoch,
            ..Default::default()
        }),
    }
}

pub(super) fn rec_subscription_metadata(
    group_id: &str,
    md: &BTreeMap<String, SubscribedTopic>,
) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupPartitionMetadata {
        group_id: group_id.to_string(),
        value: Some(ConsumerGroupPartitionMetadataValue {
            topics: md
                .values()
                .map(|t| pm_value::TopicMetadata {
                    topic_id: t.id,
                    topic_name: t.name.clone(),
                    num_partitions: t.partitions,
                    partition_metadata: vec![],
                })
                .collect(),
        }),
    }
}

pub(super) fn rec_member_subscription(group_id: &str, m: &Member) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupMemberMetadata {
        group_id: group_id.to_string(),
        member_id: m.member_id.clone(),
        value: Some(ConsumerGroupMemberMetadataValue {
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
            subscribed_topic_regex: m.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            server_assignor: m.server_assignor.clone(),
            classic_member_metadata: None,
        }),
    }
}

pub(super) fn rec_target_member(
    group_id: &str,
    member_id: &str,
    a: &Assignment,
) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupTargetAssignmentMember {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        value: Some(ConsumerGroupTargetAssignmentMemberValue {
            topic_partitions: a
                .iter()
                .map(|(t, ps)| tgt_value::TopicPartition {
                    topic_id: *t,
                    partitions: ps.iter().copied().collect(),
                })
                .collect(),
        }),
    }
}

pub(super) fn rec_target_epoch(group_id: &str, epoch: i32) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata {
        group_id: group_id.to_string(),
        value: Some(ConsumerGroupTargetAssignmentMetadataValue {
            assignment_epoch: epoch,
            ..Default::default()
        }),
    }
}

pub(super) fn cur_tps(a: &Assignment) -> Vec<cur_value::TopicPartitions> {
    a.iter()
        .map(|(t, ps)| cur_value::TopicPartitions {
            topic_id: *t,
            partitions: ps.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

pub(super) fn rec_current(group_id: &str, m: &Member) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupCurrentMemberAssignment {
        group_id: group_id.to_string(),
        member_id: m.member_id.clone(),
        value: Some(ConsumerGroupCurrentMemberAssignmentValue {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: m.state.value(),
            assigned_partitions: cur_tps(&m.assigned_partitions),
            partitions_pending_revocation: cur_tps(&m.partitions_pending_revocation),
        }),
    }
}

/// Kafka's `removeMember`: current assignment, target assignment, then subscription
/// tombstones (the order matters on replay).
pub(super) fn push_member_tombstones(
    records: &mut Vec<CoordinatorRecord>,
    group_id: &str,
    member_id: &str,
) {
    records.push(CoordinatorRecord::ConsumerGroupCurrentMemberAssignment {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        value: None,
    });
    records.push(CoordinatorRecord::ConsumerGroupTargetAssignmentMember {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        value: None,
    });
    records.push(CoordinatorRecord::ConsumerGroupMemberMetadata {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        value: None,
    });
}
