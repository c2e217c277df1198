//! What a node's configuration and formatted directory say about the quorum's membership:
//! the initial voters with their directory ids (`--standalone` / `--initial-controllers`),
//! the bootstrap servers, and the finalized `kraft.version`.

use std::collections::BTreeMap;

use arus_broker::BrokerConfig;
use arus_node::config::Quorum as QuorumKind;
use arus_protocol::Uuid;

/// The initial voters as the membership records them: address and, when the format named
/// it, directory id.
pub fn initial_members(
    voters: &BTreeMap<u64, String>,
    directory_ids: &BTreeMap<i32, Uuid>,
) -> BTreeMap<u64, arus_raft::Member> {
    voters
        .iter()
        .map(|(id, address)| {
            let directory = directory_ids
                .get(&(*id as i32))
                .filter(|d| **d != Uuid::ZERO)
                .map(|d| d.to_string());
            (*id, arus_raft::Member::new(address.clone(), directory))
        })
        .collect()
}

/// `controller.quorum.bootstrap.servers`, `host:port` each (empty with static voters).
pub fn bootstrap_servers(config: &BrokerConfig) -> Vec<String> {
    match &config.node.quorum {
        QuorumKind::Bootstrap(servers) => servers.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The voters' directory ids a `--initial-controllers` / `--standalone` format recorded.
pub fn initial_controller_directory_ids(config: &BrokerConfig) -> BTreeMap<i32, Uuid> {
    match arus_node::storage::read_bootstrap(&config.log_dir) {
        Ok(Some(b)) => b
            .initial_controllers
            .iter()
            .map(|c| (c.id, c.directory_id))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The finalized `kraft.version`: 1 for a quorum formatted with `--standalone` /
/// `--initial-controllers` and found through `controller.quorum.bootstrap.servers`
/// (KIP-853); 0 for a static quorum (`controller.quorum.voters`) and for the node that is its
/// own quorum without `process.roles`: their voters cannot change.
pub fn kraft_version(config: &BrokerConfig) -> i16 {
    match config.node.quorum {
        QuorumKind::Bootstrap(_) => 1,
        QuorumKind::Static(_) | QuorumKind::Implicit => 0,
    }
}
