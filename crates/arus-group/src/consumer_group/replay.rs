//! Replaying `__consumer_offsets` records into the consumer groups: on load, and for every
//! record the state machine emits (its only way to change state durably).

use super::*;

impl ConsumerGroups {
    /// Applies one `__consumer_offsets` record (on load, and for every record this state
    /// machine emits). Returns false for records that are not KIP-848 consumer group
    /// records (offsets, classic groups, unknown types), which are ignored.
    pub fn replay(&mut self, record: &CoordinatorRecord) -> bool {
        use CoordinatorRecord as R;
        match record {
            R::ConsumerGroupMetadata { group_id, value } => match value {
                Some(v) => self.group_mut(group_id).group_epoch = v.epoch,
                None => {
                    self.groups.remove(group_id);
                    self.timers.retain(|(g, _), _| g != group_id);
                }
            },
            R::ConsumerGroupPartitionMetadata { group_id, value } => {
                let md = value
                    .as_ref()
                    .map(|v| {
                        v.topics
                            .iter()
                            .map(|t| {
                                (
                                    t.topic_name.clone(),
                                    SubscribedTopic {
                                        id: t.topic_id,
                                        name: t.topic_name.clone(),
                                        partitions: t.num_partitions,
                                    },
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if value.is_some() || self.groups.contains_key(group_id) {
                    self.group_mut(group_id).subscription_metadata = md;
                }
            }
            R::ConsumerGroupMemberMetadata {
                group_id,
                member_id,
                value,
            } => match value {
                Some(v) => {
                    let g = self.group_mut(group_id);
                    let mut m = g.member_or_new(member_id);
                    m.instance_id = v.instance_id.clone();
                    m.rack_id = v.rack_id.clone();
                    m.client_id = v.client_id.clone();
                    m.client_host = v.client_host.clone();
                    m.subscribed_topic_names = v.subscribed_topic_names.iter().cloned().collect();
                    m.subscribed_topic_regex = v.subscribed_topic_regex.clone();
                    m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                    m.server_assignor = v.server_assignor.clone();
                    g.update_member(m);
                }
                None => {
                    if let Some(g) = self.groups.get_mut(group_id) {
                        g.remove_member(member_id);
                    }
                }
            },
            R::ConsumerGroupRegularExpression {
                group_id,
                regex: r,
                value,
            } => match value {
                Some(v) => {
                    self.group_mut(group_id)
                        .resolved_regexes
                        .insert(r.clone(), regex::from_value(v));
                }
                None => {
                    if let Some(g) = self.groups.get_mut(group_id) {
                        g.resolved_regexes.remove(r);
                    }
                }
            },
            R::ConsumerGroupTargetAssignmentMetadata { group_id, value } => {
                if let Some(v) = value {
                    self.group_mut(group_id).assignment_epoch = v.assignment_epoch;
                } else if let Some(g) = self.groups.get_mut(group_id) {
                    g.assignment_epoch = 0;
                }
            }
            R::ConsumerGroupTargetAssignmentMember {
                group_id,
                member_id,
                value,
            } => match value {
                Some(v) => {
                    let a = to_assignment(
                        v.topic_partitions
                            .iter()
                            .map(|t| (&t.topic_id, &t.partitions)),
                    );
                    self.group_mut(group_id)
                        .target_assignment
                        .insert(member_id.clone(), a);
                }
                None => {
                    if let Some(g) = self.groups.get_mut(group_id) {
                        g.target_assignment.remove(member_id);
                    }
                }
            },
            R::ConsumerGroupCurrentMemberAssignment {
                group_id,
                member_id,
                value,
            } => match value {
                Some(v) => {
                    let g = self.group_mut(group_id);
                    let mut m = g.member_or_new(member_id);
                    m.member_epoch = v.member_epoch;
                    m.previous_member_epoch = v.previous_member_epoch;
                    m.state = MemberState::from_value(v.state);
                    m.assigned_partitions = to_assignment(
                        v.assigned_partitions
                            .iter()
                            .map(|t| (&t.topic_id, &t.partitions)),
                    );
                    m.partitions_pending_revocation = to_assignment(
                        v.partitions_pending_revocation
                            .iter()
                            .map(|t| (&t.topic_id, &t.partitions)),
                    );
                    g.update_member(m);
                }
                None => {
                    if let Some(g) = self.groups.get_mut(group_id)
                        && let Some(old) = g.members.get(member_id)
                    {
                        let mut m = old.clone();
                        m.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                        m.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                        m.state = MemberState::Stable;
                        m.assigned_partitions.clear();
                        m.partitions_pending_revocation.clear();
                        g.update_member(m);
                    }
                }
            },
            _ => return false,
        }
        true
    }
}
