//! The immutable cluster snapshot request handlers read: nodes with their endpoints per
//! listener, where each partition lives, the cluster id and the active controller. It holds
//! only what Kafka's `KRaftMetadataCache` reads from the metadata image to answer clients;
//! topics themselves (names, ids, partition counts) are still the topic registry's.

use std::collections::{BTreeMap, HashMap};

use arus_protocol::Uuid;

use crate::broker_config::Listener;

/// Where clients reach a node on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// A registered broker, as the metadata image's `BrokerRegistration` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerNode {
    pub id: i32,
    /// By listener name (`PLAINTEXT`, `CONTROLLER`, …).
    pub endpoints: BTreeMap<String, Endpoint>,
    pub rack: Option<String>,
    /// A fenced broker is registered but not alive: clients are not sent to it.
    pub fenced: bool,
}

impl BrokerNode {
    /// An unfenced broker without a rack.
    pub fn new(id: i32, endpoints: impl IntoIterator<Item = (String, Endpoint)>) -> BrokerNode {
        BrokerNode {
            id,
            endpoints: endpoints.into_iter().collect(),
            rack: None,
            fenced: false,
        }
    }

    /// This broker's endpoint on `listener`, Kafka's `BrokerRegistration.node(listener)`.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints.get(listener)
    }
}

/// One partition's replicas and leadership (Kafka's `PartitionRegistration`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionPlacement {
    /// `None`: no leader (Kafka's leader -1), e.g. every replica fenced.
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Eligible leader replicas and last known ELR (KIP-966).
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
    /// Replicas whose log directory is offline. Fenced, unregistered and listener-less
    /// replicas are offline too; [`ClusterView::offline_replicas`] adds them.
    pub in_offline_dirs: Vec<i32>,
}

/// Where the partitions the view does not list live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unlisted {
    /// Every partition of the topic registry is led by this node, its only replica, at leader
    /// epoch 0: the single-node broker, whatever topics it creates or deletes meanwhile.
    LedHere,
    /// A partition the view does not list does not exist in the cluster.
    Unknown,
}

/// The cluster as this node sees it, immutable: a new view replaces it as a whole.
#[derive(Debug, Clone)]
pub struct ClusterView {
    cluster_id: String,
    this_node: i32,
    active_controller: Option<i32>,
    brokers: BTreeMap<i32, BrokerNode>,
    partitions: HashMap<(Uuid, i32), PartitionPlacement>,
    unlisted: Unlisted,
    /// What an unlisted partition is under [`Unlisted::LedHere`], built once so that the
    /// data path looks partitions up without allocating.
    led_here: PartitionPlacement,
}

impl ClusterView {
    /// The single-node cluster: this node is the only broker (reachable on every advertised
    /// listener), the active controller, and the only replica and leader of every partition.
    pub fn single_node(cluster_id: &str, node_id: i32, listeners: &[Listener]) -> ClusterView {
        let me = BrokerNode::new(
            node_id,
            listeners.iter().map(|l| {
                (
                    l.name.clone(),
                    Endpoint {
                        host: l.host.clone(),
                        port: l.port,
                    },
                )
            }),
        );
        ClusterView {
            cluster_id: cluster_id.to_string(),
            this_node: node_id,
            active_controller: Some(node_id),
            brokers: BTreeMap::from([(node_id, me)]),
            partitions: HashMap::new(),
            unlisted: Unlisted::LedHere,
            led_here: PartitionPlacement {
                leader: Some(node_id),
                leader_epoch: 0,
                replicas: vec![node_id],
                isr: vec![node_id],
                ..Default::default()
            },
        }
    }

    /// An empty cluster view in which only the listed partitions exist (what the metadata
    /// image fills in).
    pub fn new(cluster_id: &str, this_node: i32, active_controller: Option<i32>) -> ClusterView {
        ClusterView {
            cluster_id: cluster_id.to_string(),
            this_node,
            active_controller,
            brokers: BTreeMap::new(),
            partitions: HashMap::new(),
            unlisted: Unlisted::Unknown,
            led_here: PartitionPlacement::default(),
        }
    }

    /// Whether this is [`ClusterView::single_node`] (rebuilt when the bound ports are known).
    pub fn is_single_node(&self) -> bool {
        self.unlisted == Unlisted::LedHere && self.brokers.len() == 1 && self.partitions.is_empty()
    }

    /// Whether this node leads every partition there is (the single-node view with nothing
    /// placed elsewhere): per-key coordinator lookups can be skipped.
    pub fn leads_every_partition(&self) -> bool {
        self.unlisted == Unlisted::LedHere && self.partitions.is_empty()
    }

    /// Whether this node leads partition `index` of `topic_id`.
    pub fn leads(&self, topic_id: Uuid, index: i32) -> bool {
        self.partition(topic_id, index)
            .is_some_and(|p| p.leader == Some(self.this_node))
    }

    /// Adds or replaces a broker.
    pub fn with_broker(mut self, broker: BrokerNode) -> ClusterView {
        self.brokers.insert(broker.id, broker);
        self
    }

    /// Sets where partition `index` of topic `topic_id` lives.
    pub fn with_partition(
        mut self,
        topic_id: Uuid,
        index: i32,
        placement: PartitionPlacement,
    ) -> ClusterView {
        self.partitions.insert((topic_id, index), placement);
        self
    }

    pub fn with_active_controller(mut self, controller: Option<i32>) -> ClusterView {
        self.active_controller = controller;
        self
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn this_node(&self) -> i32 {
        self.this_node
    }

    /// The active controller (the Raft leader), if one is known. Clients are not told it:
    /// Kafka's brokers name a random alive broker instead ([`ClusterView::random_alive_broker`]).
    pub fn active_controller(&self) -> Option<i32> {
        self.active_controller
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerNode> {
        self.brokers.get(&id)
    }

    /// Every registered broker, fenced or not, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerNode> {
        self.brokers.values()
    }

    /// Unfenced brokers, by id.
    pub fn alive_brokers(&self) -> impl Iterator<Item = &BrokerNode> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Kafka's `getAliveBrokerNode`: `id`'s endpoint on `listener` if it is registered and
    /// unfenced.
    pub fn alive_endpoint(&self, id: i32, listener: &str) -> Option<&Endpoint> {
        self.brokers
            .get(&id)
            .filter(|b| !b.fenced)
            .and_then(|b| b.endpoint(listener))
    }

    /// What Kafka's brokers report as the controller to clients (KIP-590: admin requests go
    /// to any broker, which forwards them): a random alive broker, `None` if there is none.
    pub fn random_alive_broker(&self) -> Option<i32> {
        use rand::seq::IteratorRandom;
        self.alive_brokers()
            .map(|b| b.id)
            .choose(&mut rand::thread_rng())
    }

    /// Where partition `index` of `topic_id` lives; `None` if the cluster has no such
    /// partition. The topic registry decides whether the topic and index exist in the
    /// single-node view.
    pub fn partition(&self, topic_id: Uuid, index: i32) -> Option<&PartitionPlacement> {
        match self.partitions.get(&(topic_id, index)) {
            Some(p) => Some(p),
            None if self.unlisted == Unlisted::LedHere => Some(&self.led_here),
            None => None,
        }
    }

    /// Whether the cluster has partition `index` of `topic_id` (Kafka's
    /// `metadataCache.contains`). The single-node view has exactly the partitions this node
    /// hosts, so `hosted_here` answers for those it does not list.
    pub fn has_partition(&self, topic_id: Uuid, index: i32, hosted_here: bool) -> bool {
        self.partitions.contains_key(&(topic_id, index))
            || (self.unlisted == Unlisted::LedHere && hosted_here)
    }

    /// Kafka's `KRaftMetadataCache.getOfflineReplicas`: replicas that are unregistered,
    /// fenced, without an endpoint on `listener`, or in an offline directory.
    pub fn offline_replicas(&self, placement: &PartitionPlacement, listener: &str) -> Vec<i32> {
        placement
            .replicas
            .iter()
            .copied()
            .filter(|id| match self.brokers.get(id) {
                None => true,
                Some(b) => {
                    b.fenced
                        || b.endpoint(listener).is_none()
                        || placement.in_offline_dirs.contains(id)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str, port: u16) -> Listener {
        Listener {
            name: name.into(),
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn endpoint(port: u16) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn the_single_node_view_leads_every_partition_here() {
        let view = ClusterView::single_node("c", 7, &[listener("PLAINTEXT", 9092)]);
        let p = view.partition(Uuid::ZERO, 3).unwrap();
        assert_eq!(p.leader, Some(7));
        assert_eq!(p.leader_epoch, 0);
        assert_eq!(p.replicas, vec![7]);
        assert_eq!(p.isr, vec![7]);
        assert_eq!(view.random_alive_broker(), Some(7));
        assert_eq!(view.active_controller(), Some(7));
        assert_eq!(view.alive_endpoint(7, "PLAINTEXT"), Some(&endpoint(9092)));
        assert!(view.is_single_node());
    }

    #[test]
    fn an_explicit_view_knows_only_its_partitions() {
        let view = ClusterView::new("c", 1, Some(1)).with_partition(
            Uuid::ZERO,
            0,
            PartitionPlacement {
                leader: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(view.partition(Uuid::ZERO, 0).unwrap().leader, Some(2));
        assert_eq!(view.partition(Uuid::ZERO, 1), None::<&PartitionPlacement>);
        assert!(!view.is_single_node());
    }

    #[test]
    fn fenced_brokers_are_neither_alive_nor_online_replicas() {
        let mut fenced = BrokerNode::new(2, [("PLAINTEXT".to_string(), endpoint(2))]);
        fenced.fenced = true;
        let view = ClusterView::new("c", 1, None)
            .with_broker(BrokerNode::new(1, [("PLAINTEXT".to_string(), endpoint(1))]))
            .with_broker(fenced)
            .with_broker(BrokerNode::new(3, [("OTHER".to_string(), endpoint(3))]));
        assert_eq!(view.alive_endpoint(2, "PLAINTEXT"), None);
        assert_eq!(view.alive_endpoint(3, "PLAINTEXT"), None);
        assert_eq!(view.alive_endpoint(3, "OTHER"), Some(&endpoint(3)));
        let placement = PartitionPlacement {
            leader: Some(1),
            replicas: vec![1, 2, 3, 4, 5],
            in_offline_dirs: vec![5],
            ..Default::default()
        };
        // 2 fenced, 3 without the listener, 4 unregistered, 5 in an offline directory.
        assert_eq!(
            view.offline_replicas(&placement, "PLAINTEXT"),
            vec![2, 3, 4, 5]
        );
        for _ in 0..20 {
            let c = view.random_alive_broker().unwrap();
            assert!(c == 1 || c == 3, "{c}");
        }
    }
}
