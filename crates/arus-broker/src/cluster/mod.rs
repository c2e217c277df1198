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
//!
//! A broker with no cluster configured runs [`ClusterView::single_node`]: it is the only
//! broker and leads every partition of its topic registry at epoch 0, which is exactly what
//! it answered before the view existed.

pub mod coordinators;
pub mod describe;
pub mod leadership;
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
