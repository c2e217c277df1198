//! Whether this node may serve a partition's data (Produce, Fetch, ListOffsets,
//! OffsetForLeaderEpoch, DeleteRecords), decided as Kafka's `ReplicaManager.getPartitionOrError`
//! and `Partition.getLocalLog` do, and the leader a refused client is pointed to (KIP-951).

use std::collections::BTreeMap;

use arus_protocol::{ErrorCode, Uuid};

use super::view::ClusterView;

/// Who may be served from this node's replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only the leader (produce, consumer fetch, OffsetForLeaderEpoch, DeleteRecords, and
    /// ListOffsets from consumers).
    LeaderOnly,
    /// Any replica (ListOffsets from the debugging replica id -2).
    AnyReplica,
}

/// Whether this node serves partition `index` of `topic_id` for a request that named
/// `current_leader_epoch` (`None` when the request carries none). The checks run in Kafka's
/// order: a partition the cluster does not have is UNKNOWN_TOPIC_OR_PARTITION; one this node
/// holds no replica of is NOT_LEADER_OR_FOLLOWER (the local log is never looked at); then the
/// client's leader epoch is compared with the partition's (FENCED_LEADER_EPOCH if the client's
/// is older, UNKNOWN_LEADER_EPOCH if newer); then a follower refuses leader-only access with
/// NOT_LEADER_OR_FOLLOWER. Leaderless partitions are NOT_LEADER_OR_FOLLOWER too: Kafka's data
/// path has no LEADER_NOT_AVAILABLE.
pub fn check_local(
    view: &ClusterView,
    topic_id: Uuid,
    index: i32,
    current_leader_epoch: Option<i32>,
    access: Access,
) -> Result<(), ErrorCode> {
    let Some(placement) = view.partition(topic_id, index) else {
        return Err(ErrorCode::UnknownTopicOrPartition);
    };
    let me = view.this_node();
    if !placement.replicas.contains(&me) {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    if let Some(epoch) = current_leader_epoch {
        if placement.leader_epoch > epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if placement.leader_epoch < epoch {
            return Err(ErrorCode::UnknownLeaderEpoch);
        }
    }
    if access == Access::LeaderOnly && placement.leader != Some(me) {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    Ok(())
}

/// The local partition to serve `index` of `topic_id` from, given what the topic registry
/// hosts here (`local`), or the error, as Kafka's `ReplicaManager.getPartitionOrError` then
/// `Partition.getLocalLog`: a partition the cluster does not have is
/// UNKNOWN_TOPIC_OR_PARTITION; one it has but this node does not host is
/// NOT_LEADER_OR_FOLLOWER (the client is to look for the leader); then [`check_local`].
pub fn serve_local<P>(
    view: &ClusterView,
    topic_id: Uuid,
    index: i32,
    local: Option<P>,
    current_leader_epoch: Option<i32>,
    access: Access,
) -> Result<P, ErrorCode> {
    if !view.has_partition(topic_id, index, local.is_some()) {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    let local = local.ok_or(ErrorCode::NotLeaderOrFollower)?;
    check_local(view, topic_id, index, current_leader_epoch, access)?;
    Ok(local)
}

/// The partition's current leader and epoch as KIP-951 reports it (`CurrentLeader`): -1 and
/// -1 when the cluster does not know the partition, leader -1 when it has none.
pub fn current_leader(view: &ClusterView, topic_id: Uuid, index: i32) -> (i32, i32) {
    match view.partition(topic_id, index) {
        Some(p) => (p.leader.unwrap_or(-1), p.leader_epoch),
        None => (-1, -1),
    }
}

/// A node named in a response's `NodeEndpoints` (KIP-951).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedNode {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The endpoints of the leaders a response points clients to, each once, as Kafka's
/// `handleProduceRequest`/`handleFetchRequest` collect them: only alive leaders, on the
/// listener the request came in on.
#[derive(Debug, Default)]
pub struct LeaderEndpoints {
    nodes: BTreeMap<i32, NamedNode>,
}

impl LeaderEndpoints {
    /// Points the client of a refused partition to its current leader: returns the leader
    /// and epoch to put in the partition's `CurrentLeader`, and remembers the leader's
    /// endpoint if it is alive and reachable on `listener`.
    pub fn refer(
        &mut self,
        view: &ClusterView,
        topic_id: Uuid,
        index: i32,
        listener: &str,
    ) -> (i32, i32) {
        let (leader, epoch) = current_leader(view, topic_id, index);
        if let Some(endpoint) = view.alive_endpoint(leader, listener) {
            let rack = view.broker(leader).and_then(|b| b.rack.clone());
            self.nodes.insert(
                leader,
                NamedNode {
                    id: leader,
                    host: endpoint.host.clone(),
                    port: endpoint.port as i32,
                    rack,
                },
            );
        }
        (leader, epoch)
    }

    /// The collected nodes, by id.
    pub fn into_nodes(self) -> impl Iterator<Item = NamedNode> {
        self.nodes.into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::{BrokerNode, Endpoint, PartitionPlacement};

    fn view() -> ClusterView {
        let node = |id: i32| {
            BrokerNode::new(
                id,
                [(
                    "PLAINTEXT".to_string(),
                    Endpoint {
                        host: format!("h{id}"),
                        port: 9000 + id as u16,
                    },
                )],
            )
        };
        let placement = |leader: Option<i32>, epoch| PartitionPlacement {
            leader,
            leader_epoch: epoch,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            ..Default::default()
        };
        let t = Uuid::ZERO;
        ClusterView::new("c", 1, Some(1))
            .with_broker(node(1))
            .with_broker(node(2))
            .with_partition(t, 0, placement(Some(1), 3))
            .with_partition(t, 1, placement(Some(2), 4))
            .with_partition(t, 2, placement(None, 5))
            .with_partition(
                t,
                3,
                PartitionPlacement {
                    leader: Some(2),
                    replicas: vec![2],
                    ..Default::default()
                },
            )
    }

    #[test]
    fn the_checks_run_in_kafkas_order() {
        let v = view();
        let t = Uuid::ZERO;
        let leader = Access::LeaderOnly;
        assert!(check_local(&v, t, 0, None, leader).is_ok());
        assert!(check_local(&v, t, 0, Some(3), leader).is_ok());
        assert_eq!(
            check_local(&v, t, 0, Some(2), leader),
            Err(ErrorCode::FencedLeaderEpoch)
        );
        assert_eq!(
            check_local(&v, t, 0, Some(4), leader),
            Err(ErrorCode::UnknownLeaderEpoch)
        );
        // A follower: the epoch first, then leadership.
        assert_eq!(
            check_local(&v, t, 1, Some(9), leader),
            Err(ErrorCode::UnknownLeaderEpoch)
        );
        assert_eq!(
            check_local(&v, t, 1, None, leader),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        assert!(check_local(&v, t, 1, None, Access::AnyReplica).is_ok());
        assert_eq!(
            check_local(&v, t, 2, None, leader),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        // Not a replica here: no epoch check, nothing local.
        assert_eq!(
            check_local(&v, t, 3, Some(9), Access::AnyReplica),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(
            check_local(&v, t, 4, None, leader),
            Err(ErrorCode::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn a_partition_the_cluster_has_but_this_node_does_not_host_is_not_led_here() {
        let v = view();
        let t = Uuid::ZERO;
        let leader = Access::LeaderOnly;
        assert_eq!(serve_local(&v, t, 0, Some("log"), None, leader), Ok("log"));
        assert_eq!(
            serve_local(&v, t, 0, None::<&str>, Some(9), leader),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(
            serve_local(&v, t, 1, Some("log"), None, leader),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(
            serve_local(&v, t, 9, Some("log"), None, leader),
            Err(ErrorCode::UnknownTopicOrPartition)
        );
        // The single-node view has the partitions the registry hosts, and no others.
        let single = ClusterView::single_node("c", 1, &[]);
        assert_eq!(
            serve_local(&single, t, 5, Some("log"), None, leader),
            Ok("log")
        );
        assert_eq!(
            serve_local(&single, t, 5, None::<&str>, None, leader),
            Err(ErrorCode::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn only_alive_leaders_are_named_once() {
        let v = view();
        let t = Uuid::ZERO;
        let mut endpoints = LeaderEndpoints::default();
        assert_eq!(endpoints.refer(&v, t, 1, "PLAINTEXT"), (2, 4));
        assert_eq!(endpoints.refer(&v, t, 3, "PLAINTEXT"), (2, 0));
        assert_eq!(endpoints.refer(&v, t, 2, "PLAINTEXT"), (-1, 5));
        assert_eq!(endpoints.refer(&v, t, 9, "PLAINTEXT"), (-1, -1));
        let nodes: Vec<_> = endpoints.into_nodes().collect();
        assert_eq!(
            nodes,
            vec![NamedNode {
                id: 2,
                host: "h2".into(),
                port: 9002,
                rack: None
            }]
        );
        let mut other = LeaderEndpoints::default();
        other.refer(&v, t, 1, "SSL");
        assert_eq!(other.into_nodes().count(), 0);
    }
}
