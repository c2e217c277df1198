//! The cluster as this broker sees it: which nodes exist and where clients reach them, which
//! node leads each partition, the cluster id and the active controller. Request handlers
//! read the current [`ClusterView`] without a lock; whoever learns of a change (today only
//! the broker itself and tests, later the metadata image) installs a whole new view.
//!
//! - [`view`]: the immutable snapshot and its queries.
//! - [`leadership`]: whether this node serves a partition's data, and KIP-951's pointers to
//!   the leader for the clients it refuses.
//! - [`coordinators`]: which consumer groups and transactional ids this node coordinates.
//! - [`describe`]: partitions and brokers as Metadata, DescribeTopicPartitions,
//!   DescribeCluster and FindCoordinator report them.
//! - [`replica_selector`]: which replica a consumer should read from (KIP-392).
//!
//! A broker with no cluster configured runs [`ClusterView::single_node`]: it is the only
//! broker and leads every partition of its topic registry at epoch 0, which is exactly what
//! it answered before the view existed.
//!
//! Filling it from the metadata image (on every new image, then [`ClusterViewHandle::install`]):
//! [`ClusterView::new`] with the image's cluster id, this node's id and the Raft leader as
//! active controller; one [`BrokerNode`] per `BrokerRegistration` (endpoints by listener
//! name, rack, fenced); one [`PartitionPlacement`] per `PartitionRegistration` (leader -1 is
//! `None`; leader epoch, replicas, ISR, ELR, last known ELR; `in_offline_dirs`: the replicas
//! whose assigned directory is not among their broker's online directories). Topic names, ids
//! and partition counts are still resolved through the topic registry: once the registry
//! holds only local replicas, a topic with no replica here must still be found by name and
//! id (Metadata lists it, the data APIs answer NOT_LEADER_OR_FOLLOWER for it), so the image's
//! topics have to reach the handlers too.

pub mod coordinators;
pub mod describe;
pub mod leadership;
pub mod replica_selector;
pub mod view;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use leadership::{
    Access, LeaderEndpoints, NamedNode, check_local, current_leader, serve_local,
};
pub use view::{BrokerNode, ClusterView, Endpoint, PartitionPlacement};

use crate::Broker;

/// The current [`ClusterView`], replaced atomically.
pub struct ClusterViewHandle {
    current: ArcSwap<ClusterView>,
}

impl ClusterViewHandle {
    pub fn new(view: ClusterView) -> ClusterViewHandle {
        ClusterViewHandle {
            current: ArcSwap::from_pointee(view),
        }
    }

    /// The view to answer one request from: a request reads one snapshot throughout, so
    /// that its answers are consistent even if a new view is installed meanwhile.
    pub fn current(&self) -> Arc<ClusterView> {
        self.current.load_full()
    }

    /// Replaces the view; requests already running keep the one they read.
    pub fn install(&self, view: ClusterView) {
        self.current.store(Arc::new(view));
    }
}

/// The name of the listener a request came in on. Until requests carry their listener, the
/// broker's first advertised listener, the one it sends clients to.
pub(crate) fn request_listener(broker: &Broker) -> String {
    broker.advertised_listener().name
}
