//! Simulated nodes: started from their durable state, killed with a power cut.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::{ChangeMembers, Config, ServerState};
use tokio::task::JoinHandle;

use super::app::{Applied, RecordingApp, SharedChecker};
use super::network::{SimNet, SimNetworkFactory};
use crate::disk::{Disk, MemDisk};
use crate::log_store::LogStore;
use crate::settings::RaftSettings;
use crate::state_machine::StateMachineStore;
use crate::types::{Batch, Node, NodeId, Raft};

pub type History = Arc<Mutex<Applied>>;

pub struct Running {
    pub raft: Raft,
    pub log: LogStore,
    pub history: History,
    watcher: JoinHandle<()>,
}

pub struct SimCluster {
    pub ids: Vec<NodeId>,
    disks: BTreeMap<NodeId, MemDisk>,
    pub running: BTreeMap<NodeId, Running>,
    pub net: SimNet,
    pub checker: SharedChecker,
    config: Arc<Config>,
    segment_bytes: u64,
    incarnations: u64,
}

pub fn sim_settings() -> RaftSettings {
    RaftSettings {
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(30),
        snapshot_every: 8,
        logs_to_keep: 2,
        segment_bytes: 300,
        max_payload_entries: 8,
        install_snapshot_timeout: Duration::from_millis(1_000),
    }
}

impl SimCluster {
    pub fn new(size: u64, seed: u64) -> Self {
        let settings = sim_settings();
        let config = settings.openraft_config("sim").expect("valid settings");
        let ids: Vec<NodeId> = (1..=size).collect();
        Self {
            disks: ids.iter().map(|&id| (id, MemDisk::new())).collect(),
            ids,
            running: BTreeMap::new(),
            net: SimNet::new(seed),
            checker: SharedChecker::default(),
            config: Arc::new(config),
            segment_bytes: settings.segment_bytes,
            incarnations: 0,
        }
    }

    pub fn dead(&self) -> Vec<NodeId> {
        self.ids
            .iter()
            .copied()
            .filter(|id| !self.running.contains_key(id))
            .collect()
    }

    pub fn alive(&self) -> Vec<NodeId> {
        self.running.keys().copied().collect()
    }

    /// Starts `id` from what its disk durably holds.
    pub async fn start(&mut self, id: NodeId) -> Result<(), String> {
        let disk: Arc<dyn Disk> = Arc::new(self.disks[&id].handle());
        let log = LogStore::open(disk.clone(), self.segment_bytes)
            .map_err(|e| format!("node {id}: cannot open its log: {e}"))?;
        let history: History = Arc::default();
        let app = RecordingApp {
            node: id,
            history: history.clone(),
            checker: self.checker.clone(),
        };
        let sm = StateMachineStore::open(disk, app)
            .map_err(|e| format!("node {id}: cannot open its snapshot: {e}"))?;
        let pristine = log.is_pristine();
        self.incarnations += 1;
        let incarnation = self.incarnations;
        let network = SimNetworkFactory {
            from: id,
            incarnation,
            net: self.net.clone(),
        };
        let raft = Raft::new(id, self.config.clone(), network, log.clone(), sm)
            .await
            .map_err(|e| format!("node {id}: cannot start: {e}"))?;
        if pristine {
            let members: BTreeMap<NodeId, Node> = self
                .ids
                .iter()
                .map(|&n| (n, Node::new(format!("sim-{n}"))))
                .collect();
            // Every voter bootstraps the same membership (log id 0), like
            // `kafka-storage format --initial-controllers` on each of them.
            let _ = raft.initialize(members).await;
        }
        self.net.attach(id, incarnation, raft.clone());
        let watcher = tokio::spawn(watch_leadership(raft.clone(), self.checker.clone()));
        self.running.insert(
            id,
            Running {
                raft,
                log,
                history,
                watcher,
            },
        );
        Ok(())
    }

    /// A power cut on `id`: the network forgets it, its unsynced writes are lost, then its
    /// tasks are stopped (they can no longer reach the disk).
    pub async fn kill(&mut self, id: NodeId) {
        let Some(running) = self.running.remove(&id) else {
            return;
        };
        self.net.detach(id);
        self.disks[&id].crash();
        running.watcher.abort();
        let _ = running.raft.shutdown().await;
    }

    /// Every running node's openraft metrics, for failure messages.
    pub fn describe(&self) -> String {
        self.running
            .values()
            .map(|r| r.raft.metrics().borrow().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The running node that believes it leads the highest term.
    pub fn leader(&self) -> Option<(NodeId, Raft)> {
        self.running
            .iter()
            .filter_map(|(&id, r)| {
                let m = r.raft.metrics().borrow().clone();
                (m.state == ServerState::Leader).then_some((m.current_term, id, r.raft.clone()))
            })
            .max_by_key(|(term, id, _)| (*term, *id))
            .map(|(_, id, raft)| (id, raft))
    }

    /// Sends a client write to `raft` in the background; an acknowledgement is recorded.
    pub fn spawn_write(&self, raft: Raft, payload: Bytes) -> JoinHandle<()> {
        let checker = self.checker.clone();
        tokio::spawn(async move {
            let write = raft.client_write(Batch(vec![payload.clone()]));
            if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(3), write).await {
                checker.record_ack(response.log_id.index, payload);
            }
        })
    }
}

impl SimCluster {
    /// Turns `id` from voter into learner or back, in the background. At least two voters
    /// stay, and a removed voter stays a learner so it keeps receiving the log.
    pub fn spawn_voter_change(&self, raft: Raft, id: NodeId) -> JoinHandle<()> {
        tokio::spawn(async move {
            let voters: BTreeSet<NodeId> = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            let change = if voters.contains(&id) {
                if voters.len() <= 2 {
                    return;
                }
                ChangeMembers::RemoveVoters(BTreeSet::from([id]))
            } else {
                ChangeMembers::AddVoterIds(BTreeSet::from([id]))
            };
            let _ =
                tokio::time::timeout(Duration::from_secs(3), raft.change_membership(change, true))
                    .await;
        })
    }
}

async fn watch_leadership(raft: Raft, checker: SharedChecker) {
    let mut metrics = raft.metrics();
    loop {
        {
            let m = metrics.borrow_and_update();
            if m.state == ServerState::Leader {
                checker.record_leader(m.id, m.current_term);
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
