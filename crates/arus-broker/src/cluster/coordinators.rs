//! Which keys this node coordinates. A consumer group's coordinator is the leader of the
//! partition of `__consumer_offsets` its id hashes to, a transactional id's the leader of its
//! partition of `__transaction_state` (Kafka's `GroupCoordinator.partitionFor`,
//! `TransactionStateManager.partitionFor`). Kafka's coordinators answer NOT_COORDINATOR for a
//! key whose partition they do not own (`CoordinatorRuntime`, `TransactionStateManager`), and
//! list only the groups and transactions of the partitions they own.

use arus_group::records::offsets_partition_for;
use arus_protocol::ErrorCode;
use arus_txn::records::transaction_partition_for;

use crate::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::txn::TRANSACTION_STATE_TOPIC;

/// The two coordinators whose keys are placed by an internal topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordinator {
    /// Consumer groups (classic and KIP-848), keyed by group id.
    Group,
    /// Transactions, keyed by transactional id.
    Transaction,
}

/// The message Kafka's `NotCoordinatorException` carries by default.
pub const NOT_COORDINATOR_MESSAGE: &str = "This is not the correct coordinator.";

/// Whether this node coordinates `key`. Before the internal topic exists only a node that
/// leads every partition does (the single node, which creates the topic on first use); in a
/// cluster the topic is created through the controller and FindCoordinator names no one
/// until it has leaders.
pub fn coordinates(broker: &Broker, coordinator: Coordinator, key: &str) -> bool {
    let view = broker.cluster.current();
    if view.leads_every_partition() {
        return true;
    }
    let (topic, partition_for): (_, fn(&str, i32) -> i32) = match coordinator {
        Coordinator::Group => (OFFSETS_TOPIC, offsets_partition_for),
        Coordinator::Transaction => (TRANSACTION_STATE_TOPIC, transaction_partition_for),
    };
    match broker.topics.get(topic) {
        Some(t) => view.leads(t.id, partition_for(key, t.partition_count())),
        None => false,
    }
}

/// NOT_COORDINATOR if this node does not coordinate `key`.
pub fn check(broker: &Broker, coordinator: Coordinator, key: &str) -> Result<(), ErrorCode> {
    if coordinates(broker, coordinator, key) {
        Ok(())
    } else {
        tracing::debug!(?coordinator, key, "not the coordinator of this key");
        Err(ErrorCode::NotCoordinator)
    }
}
