//! [`LocalChanges`]: what a delta means for one node's replicas (Kafka's
//! `TopicsDelta.localChanges(brokerId)` and `LocalReplicaChanges`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arus_protocol::Uuid;

use crate::delta::MetadataDelta;
use crate::image::{PartitionRegistration, TopicIdPartition};

/// A partition this node now leads or follows, with its new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPartition {
    pub topic_name: String,
    pub topic_id: Uuid,
    pub partition: i32,
    /// The new state: leader, leader epoch, partition epoch, replicas, ISR, ...
    pub state: Arc<PartitionRegistration>,
    /// For a leader: the leader epoch changed (or the partition is new), i.e. this node
    /// was just elected (Kafka's `electedLeaders`) rather than seeing an ISR or replica
    /// change under its leadership.
    pub newly_elected: bool,
}

/// A partition whose replica on this node must go: the topic was deleted, or the node is
/// no longer one of its replicas.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalDelete {
    pub topic_name: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// What one node must do after a delta, as Kafka's `LocalReplicaChanges`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalChanges {
    /// Partitions the node leads whose partition epoch changed (or that are new); see
    /// [`LocalPartition::newly_elected`].
    pub leaders: Vec<LocalPartition>,
    /// Partitions the node follows whose partition epoch changed (or that are new).
    pub followers: Vec<LocalPartition>,
    /// Replicas to stop and delete.
    pub deletes: Vec<LocalDelete>,
    /// Every topic of the base image that the delta deleted (whether or not this node had
    /// a replica).
    pub deleted_topic_ids: BTreeSet<Uuid>,
    /// The log directory of this node's replica, for new partitions and those whose
    /// directory for this node changed (Kafka's `directoryIds`; a replica newly added to
    /// an existing partition is not listed, as in Kafka).
    pub directory_ids: BTreeMap<TopicIdPartition, Uuid>,
}

impl LocalChanges {
    pub fn is_empty(&self) -> bool {
        self.leaders.is_empty()
            && self.followers.is_empty()
            && self.deletes.is_empty()
            && self.deleted_topic_ids.is_empty()
            && self.directory_ids.is_empty()
    }
}

impl MetadataDelta {
    /// The changes to `node`'s replicas between the base image and the working copy.
    ///
    /// For each partition a record touched: if `node` is not a replica, it is deleted when
    /// it was one before; if `node` is the leader, it is listed when the partition epoch
    /// changed (new partitions included); otherwise it is a follower, listed on the same
    /// condition. Every partition of a deleted topic that had a replica on `node` is
    /// deleted. A topic deleted and created again appears both in `deletes` (its old
    /// partitions) and in `leaders`/`followers` (its new ones).
    ///
    /// Loading a snapshot ([`MetadataDelta::for_snapshot`]) lists only the partitions whose
    /// epoch differs from the base image, where Kafka lists every local partition of every
    /// topic in the snapshot again: partition epochs grow with every change, so nothing
    /// that changed is missed, and a node is not told to become leader of what it leads.
    pub fn local_changes(&self, node: i32) -> LocalChanges {
        let mut changes = LocalChanges::default();
        for &TopicIdPartition {
            topic_id,
            partition,
        } in self.changed_partitions()
        {
            let Some(topic) = self.state.topics.get(&topic_id) else {
                continue;
            };
            let Some(state) = topic.partitions.get(&partition) else {
                continue;
            };
            // A topic created by this delta is new even if an earlier incarnation with the
            // same id was in the base (removed and created again): Kafka compares it with
            // the new, empty topic.
            let previous = if self.state.created_topics.contains(&topic_id) {
                None
            } else {
                self.base
                    .topics
                    .get(&topic_id)
                    .and_then(|t| t.partition(partition))
            };
            let epoch_changed = previous.is_none_or(|p| p.partition_epoch != state.partition_epoch);
            let entry = |newly_elected| LocalPartition {
                topic_name: topic.name.clone(),
                topic_id,
                partition,
                state: state.clone(),
                newly_elected,
            };
            if let Some(dir) = state.directory(node) {
                let listed = match previous {
                    None => true,
                    Some(p) => p.directory(node).is_some_and(|old| old != dir),
                };
                if listed {
                    let key = TopicIdPartition {
                        topic_id,
                        partition,
                    };
                    changes.directory_ids.insert(key, dir);
                }
            }
            if !state.has_replica(node) {
                if previous.is_some_and(|p| p.has_replica(node)) {
                    changes.deletes.push(LocalDelete {
                        topic_name: topic.name.clone(),
                        topic_id,
                        partition,
                    });
                }
            } else if state.leader == node {
                if epoch_changed {
                    let elected = previous.is_none_or(|p| p.leader_epoch != state.leader_epoch);
                    changes.leaders.push(entry(elected));
                }
            } else if epoch_changed {
                changes.followers.push(entry(false));
            }
        }
        changes.deleted_topic_ids = self.deleted_topic_ids();
        for id in &changes.deleted_topic_ids {
            let Some(topic) = self.base.topics.get(id) else {
                continue;
            };
            for (&partition, p) in &topic.partitions {
                if p.has_replica(node) {
                    changes.deletes.push(LocalDelete {
                        topic_name: topic.name.clone(),
                        topic_id: *id,
                        partition,
                    });
                }
            }
        }
        changes.deletes.sort();
        changes.deletes.dedup();
        changes
    }
}

#[cfg(test)]
mod tests {
    use arus_protocol::metadata::RemoveTopicRecord;

    use super::*;
    use crate::MetadataRecord;
    use crate::delta::tests::{T1, T2, apply, change, partition, topic, two_topics};
    use crate::image::MetadataImage;

    fn delta(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataDelta {
        let mut d = MetadataDelta::new(image);
        d.replay_all(records).unwrap();
        d
    }

    fn keys(ps: &[LocalPartition]) -> Vec<(Uuid, i32, bool)> {
        ps.iter()
            .map(|p| (p.topic_id, p.partition, p.newly_elected))
            .collect()
    }

    #[test]
    fn new_partitions_are_led_or_followed() {
        let d = delta(
            &MetadataImage::empty("c"),
            &[
                topic("a", T1),
                partition(T1, 0, &[1, 2], 1),
                partition(T1, 1, &[2, 3], 2),
            ],
        );
        let on1 = d.local_changes(1);
        assert_eq!(keys(&on1.leaders), vec![(T1, 0, true)]);
        assert!(on1.followers.is_empty() && on1.deletes.is_empty());
        let on2 = d.local_changes(2);
        assert_eq!(keys(&on2.leaders), vec![(T1, 1, true)]);
        assert_eq!(keys(&on2.followers), vec![(T1, 0, false)]);
        assert_eq!(on2.followers[0].state.leader, 1);
        assert_eq!(on2.followers[0].topic_name, "a");
        assert!(d.local_changes(4).is_empty());
    }

    #[test]
    fn directories_of_new_partitions_and_moved_replicas() {
        use crate::image::MIGRATING_DIRECTORY;
        let d = delta(
            &MetadataImage::empty("c"),
            &[topic("a", T1), partition(T1, 0, &[1, 2], 1)],
        );
        let key = TopicIdPartition {
            topic_id: T1,
            partition: 0,
        };
        assert_eq!(
            d.local_changes(1).directory_ids,
            BTreeMap::from([(key, MIGRATING_DIRECTORY)])
        );
        let image = d.apply(crate::MetadataProvenance::new(0, 0));
        let dir = Uuid([8; 16]);
        let mut c = change(T1, 0);
        c.directories = Some(vec![dir, MIGRATING_DIRECTORY]);
        let d = delta(&image, &[c.into()]);
        assert_eq!(
            d.local_changes(1).directory_ids,
            BTreeMap::from([(key, dir)])
        );
        assert!(d.local_changes(2).directory_ids.is_empty());
    }

    #[test]
    fn leader_change_isr_change_and_removal_from_replicas() {
        let image = two_topics();
        // Partition a-0: leader moves from 1 to 2 and replica 3 is dropped.
        let mut c = change(T1, 0);
        c.leader = 2;
        c.replicas = Some(vec![1, 2]);
        c.isr = Some(vec![1, 2]);
        // Partition a-1 (leader 2): only the ISR shrinks.
        let mut shrink = change(T1, 1);
        shrink.isr = Some(vec![2, 3]);
        let d = delta(&image, &[c.into(), shrink.into()]);

        let on2 = d.local_changes(2);
        assert_eq!(keys(&on2.leaders), vec![(T1, 0, true), (T1, 1, false)]);
        assert_eq!(on2.leaders[0].state.leader_epoch, 1);
        let on1 = d.local_changes(1);
        assert_eq!(keys(&on1.followers), vec![(T1, 0, false), (T1, 1, false)]);
        let on3 = d.local_changes(3);
        assert_eq!(
            on3.deletes,
            vec![LocalDelete {
                topic_name: "a".into(),
                topic_id: T1,
                partition: 0
            }]
        );
        assert_eq!(keys(&on3.followers), vec![(T1, 1, false)]);
        assert!(on3.deleted_topic_ids.is_empty());
    }

    #[test]
    fn unchanged_partition_epoch_is_not_reported() {
        // A PartitionRecord that restates a partition as it was (as a snapshot does).
        let image = two_topics();
        let d = delta(&image, &[partition(T1, 0, &[1, 2, 3], 1)]);
        assert!(d.local_changes(1).is_empty());
        assert!(d.local_changes(2).is_empty());
    }

    #[test]
    fn deleted_topics_delete_local_replicas() {
        let image = two_topics();
        let d = delta(&image, &[RemoveTopicRecord { topic_id: T1 }.into()]);
        let on1 = d.local_changes(1);
        assert_eq!(on1.deletes.len(), 2);
        assert!(on1.deletes.iter().all(|x| x.topic_id == T1));
        assert_eq!(on1.deleted_topic_ids, BTreeSet::from([T1]));
        // Node 4 has no replica, but still learns which topics are gone.
        let on4 = d.local_changes(4);
        assert!(on4.deletes.is_empty());
        assert_eq!(on4.deleted_topic_ids, BTreeSet::from([T1]));
    }

    #[test]
    fn topic_created_and_removed_in_one_delta_leaves_no_trace() {
        let image = two_topics();
        let t3 = Uuid([3; 16]);
        let d = delta(
            &image,
            &[
                topic("c", t3),
                partition(t3, 0, &[1], 1),
                RemoveTopicRecord { topic_id: t3 }.into(),
            ],
        );
        assert!(d.local_changes(1).is_empty());
        assert!(d.created_topic_ids().is_empty());
    }

    #[test]
    fn recreated_name_is_deleted_under_the_old_id_and_led_under_the_new() {
        let image = two_topics();
        let t3 = Uuid([3; 16]);
        let d = delta(
            &image,
            &[
                RemoveTopicRecord { topic_id: T2 }.into(),
                topic("b", t3),
                partition(t3, 0, &[3], 3),
            ],
        );
        let on3 = d.local_changes(3);
        // Only b-0 under the old id: a-0 and a-1 did not change.
        assert_eq!(on3.deletes.len(), 1);
        assert_eq!(on3.deletes[0].topic_id, T2);
        assert_eq!(keys(&on3.leaders), vec![(t3, 0, true)]);
    }

    #[test]
    fn topic_recreated_under_the_same_id_is_new_again() {
        let image = two_topics();
        let d = delta(
            &image,
            &[
                RemoveTopicRecord { topic_id: T2 }.into(),
                topic("b", T2),
                partition(T2, 0, &[3], 3),
            ],
        );
        let on3 = d.local_changes(3);
        assert_eq!(on3.deletes.len(), 1);
        assert_eq!(keys(&on3.leaders), vec![(T2, 0, true)]);
    }

    #[test]
    fn snapshot_load_reports_what_the_snapshot_changed() {
        let image = two_topics();
        // The target: topic b gone, a-0 led by 2 now.
        let mut c = change(T1, 0);
        c.leader = 2;
        let target = apply(
            &image,
            &[RemoveTopicRecord { topic_id: T2 }.into(), c.into()],
        );
        let mut d = MetadataDelta::for_snapshot(&image);
        d.replay_all(&target.to_records()).unwrap();
        assert_eq!(d.apply(target.provenance()), target);
        let on2 = d.local_changes(2);
        assert_eq!(keys(&on2.leaders), vec![(T1, 0, true)]);
        let on3 = d.local_changes(3);
        assert_eq!(on3.deleted_topic_ids, BTreeSet::from([T2]));
        assert_eq!(on3.deletes.len(), 1);
        assert_eq!(keys(&on3.followers), vec![(T1, 0, false)]);
    }
}
