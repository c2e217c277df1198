//! Partitions and brokers as clients are told about them, following Kafka's
//! `KRaftMetadataCache` (`getPartitionMetadata`, `getPartitionMetadataForDescribeTopicResponse`,
//! `getAliveBrokerNodes`).

use arus_protocol::{ErrorCode, Uuid};

use super::leadership::NamedNode;
use super::view::{ClusterView, PartitionPlacement};

/// Which answer a partition is described for: the checks differ per API and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Describing {
    /// Metadata at `version`: v0 leaves out replicas that are fenced or lack the request's
    /// listener (REPLICA_NOT_AVAILABLE when it does), v6+ says LISTENER_NOT_FOUND when the
    /// leader lacks the listener (LEADER_NOT_AVAILABLE before).
    Metadata { version: i16 },
    /// DescribeTopicPartitions: never a per-partition error, nothing left out.
    DescribeTopicPartitions,
}

/// One partition as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedPartition {
    pub error: ErrorCode,
    /// -1 when the leader cannot be reached on the request's listener.
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

/// Partition `index` of `topic_id` as seen from `listener`. A partition the topic registry
/// has but the view does not (a topic created or grown an instant before the view learns
/// of it) is leaderless: LEADER_NOT_AVAILABLE for Metadata, as a partition whose leader is
/// unknown.
pub fn partition(
    view: &ClusterView,
    topic_id: Uuid,
    index: i32,
    listener: &str,
    describing: Describing,
) -> DescribedPartition {
    let unknown = PartitionPlacement {
        leader: None,
        leader_epoch: -1,
        ..Default::default()
    };
    let placement = view.partition(topic_id, index).unwrap_or(&unknown);
    let filter_unavailable = describing == Describing::Metadata { version: 0 };
    let available = |ids: &[i32]| -> Vec<i32> {
        if !filter_unavailable {
            return ids.to_vec();
        }
        ids.iter()
            .copied()
            .filter(|id| {
                view.broker(*id)
                    .is_some_and(|b| !b.fenced && b.endpoint(listener).is_some())
            })
            .collect()
    };
    let replicas = available(&placement.replicas);
    let isr = available(&placement.isr);
    // Kafka's `getAliveEndpoint` looks the leader up among registered brokers, fenced or not
    // (a fenced broker leads nothing once the controller has moved leadership away).
    let leader_broker = placement.leader.and_then(|id| view.broker(id));
    let reachable_leader = leader_broker.filter(|b| b.endpoint(listener).is_some());
    let error = match describing {
        Describing::DescribeTopicPartitions => ErrorCode::None,
        Describing::Metadata { version } => match (leader_broker, reachable_leader) {
            (None, _) => ErrorCode::LeaderNotAvailable,
            (Some(_), None) if version >= 6 => ErrorCode::ListenerNotFound,
            (Some(_), None) => ErrorCode::LeaderNotAvailable,
            (Some(_), Some(_))
                if replicas.len() < placement.replicas.len() || isr.len() < placement.isr.len() =>
            {
                ErrorCode::ReplicaNotAvailable
            }
            (Some(_), Some(_)) => ErrorCode::None,
        },
    };
    DescribedPartition {
        error,
        leader_id: reachable_leader.map_or(-1, |b| b.id),
        leader_epoch: placement.leader_epoch,
        offline_replicas: view.offline_replicas(placement, listener),
        replicas,
        isr,
        elr: placement.elr.clone(),
        last_known_elr: placement.last_known_elr.clone(),
    }
}

/// Kafka's `getAliveBrokerNodes(listener)`: unfenced brokers with an endpoint on `listener`,
/// by id.
pub fn alive_brokers(view: &ClusterView, listener: &str) -> Vec<NamedNode> {
    view.alive_brokers()
        .filter_map(|b| {
            b.endpoint(listener).map(|e| NamedNode {
                id: b.id,
                host: e.host.clone(),
                port: e.port as i32,
                rack: b.rack.clone(),
            })
        })
        .collect()
}

/// Every registered broker with an endpoint on `listener`, fenced or not, and whether it is
/// fenced (DescribeCluster v2 with IncludeFencedBrokers, KIP-1073).
pub fn all_brokers(view: &ClusterView, listener: &str) -> Vec<(NamedNode, bool)> {
    view.brokers()
        .filter_map(|b| {
            b.endpoint(listener).map(|e| {
                (
                    NamedNode {
                        id: b.id,
                        host: e.host.clone(),
                        port: e.port as i32,
                        rack: b.rack.clone(),
                    },
                    b.fenced,
                )
            })
        })
        .collect()
}

/// The node that coordinates keys hashed to partition `index` of the internal topic
/// `topic_id` (Kafka's `KafkaApis.getCoordinator`): the partition's leader if it has one
/// and that leader is alive on `listener`, else COORDINATOR_NOT_AVAILABLE.
pub fn coordinator(
    view: &ClusterView,
    topic_id: Uuid,
    index: i32,
    listener: &str,
) -> Result<NamedNode, ErrorCode> {
    let leader = view
        .partition(topic_id, index)
        .and_then(|p| p.leader)
        .ok_or(ErrorCode::CoordinatorNotAvailable)?;
    let endpoint = view
        .alive_endpoint(leader, listener)
        .ok_or(ErrorCode::CoordinatorNotAvailable)?;
    Ok(NamedNode {
        id: leader,
        host: endpoint.host.clone(),
        port: endpoint.port as i32,
        rack: view.broker(leader).and_then(|b| b.rack.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::{BrokerNode, Endpoint};

    fn node(id: i32, listener: &str) -> BrokerNode {
        BrokerNode::new(
            id,
            [(
                listener.to_string(),
                Endpoint {
                    host: format!("h{id}"),
                    port: 9000 + id as u16,
                },
            )],
        )
    }

    fn view() -> ClusterView {
        let mut fenced = node(3, "PLAINTEXT");
        fenced.fenced = true;
        let t = Uuid::ZERO;
        let placement = |leader| PartitionPlacement {
            leader,
            leader_epoch: 7,
            replicas: vec![1, 2, 3],
            isr: vec![1, 3],
            ..Default::default()
        };
        ClusterView::new("c", 1, Some(1))
            .with_broker(node(1, "PLAINTEXT"))
            .with_broker(node(2, "OTHER"))
            .with_broker(fenced)
            .with_partition(t, 0, placement(Some(1)))
            .with_partition(t, 1, placement(Some(2)))
            .with_partition(t, 2, placement(None))
            .with_partition(t, 3, placement(Some(9)))
    }

    fn describe(index: i32, describing: Describing) -> DescribedPartition {
        partition(&view(), Uuid::ZERO, index, "PLAINTEXT", describing)
    }

    #[test]
    fn metadata_reports_leaders_replicas_and_offline_replicas() {
        let p = describe(0, Describing::Metadata { version: 12 });
        assert_eq!(p.error, ErrorCode::None);
        assert_eq!(p.leader_id, 1);
        assert_eq!(p.leader_epoch, 7);
        assert_eq!(p.replicas, vec![1, 2, 3]);
        assert_eq!(p.isr, vec![1, 3]);
        assert_eq!(p.offline_replicas, vec![2, 3]);
    }

    #[test]
    fn metadata_v0_leaves_out_unavailable_replicas() {
        let p = describe(0, Describing::Metadata { version: 0 });
        assert_eq!(p.error, ErrorCode::ReplicaNotAvailable);
        assert_eq!(p.replicas, vec![1]);
        assert_eq!(p.isr, vec![1]);
    }

    #[test]
    fn leaders_without_the_listener_or_registration_are_reported_as_kafka_does() {
        let p = describe(1, Describing::Metadata { version: 6 });
        assert_eq!((p.error, p.leader_id), (ErrorCode::ListenerNotFound, -1));
        let p = describe(1, Describing::Metadata { version: 5 });
        assert_eq!((p.error, p.leader_id), (ErrorCode::LeaderNotAvailable, -1));
        for index in [2, 3] {
            let p = describe(index, Describing::Metadata { version: 12 });
            assert_eq!((p.error, p.leader_id), (ErrorCode::LeaderNotAvailable, -1));
            assert_eq!(p.leader_epoch, 7);
        }
        let p = describe(2, Describing::DescribeTopicPartitions);
        assert_eq!((p.error, p.leader_id), (ErrorCode::None, -1));
        let p = describe(4, Describing::Metadata { version: 12 });
        assert_eq!((p.error, p.leader_id), (ErrorCode::LeaderNotAvailable, -1));
    }

    #[test]
    fn brokers_and_coordinators_are_the_alive_ones_on_the_listener() {
        let v = view();
        let ids = |nodes: Vec<NamedNode>| nodes.into_iter().map(|n| n.id).collect::<Vec<_>>();
        assert_eq!(ids(alive_brokers(&v, "PLAINTEXT")), vec![1]);
        assert_eq!(
            all_brokers(&v, "PLAINTEXT")
                .into_iter()
                .map(|(n, fenced)| (n.id, fenced))
                .collect::<Vec<_>>(),
            vec![(1, false), (3, true)]
        );
        let t = Uuid::ZERO;
        assert_eq!(coordinator(&v, t, 0, "PLAINTEXT").unwrap().id, 1);
        for index in [1, 2, 3, 4] {
            assert_eq!(
                coordinator(&v, t, index, "PLAINTEXT"),
                Err(ErrorCode::CoordinatorNotAvailable)
            );
        }
    }
}
