//! One random schedule and the checks run after it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::app::Applied;
use super::cluster::SimCluster;

/// What happened across schedules (reported, and a sanity check that faults were injected).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub schedules: u64,
    pub kills: u64,
    pub partitions: u64,
    pub writes_sent: u64,
    pub writes_acked: u64,
    pub terms: u64,
    pub membership_changes: u64,
    pub max_index: u64,
}

impl Summary {
    pub fn add(&mut self, other: &Summary) {
        self.schedules += other.schedules;
        self.kills += other.kills;
        self.partitions += other.partitions;
        self.writes_sent += other.writes_sent;
        self.writes_acked += other.writes_acked;
        self.terms += other.terms;
        self.membership_changes += other.membership_changes;
        self.max_index = self.max_index.max(other.max_index);
    }
}

pub async fn run(seed: u64) -> Result<Summary, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let size = if rng.gen_bool(0.6) { 3 } else { 5 };
    let mut cluster = SimCluster::new(size, seed);
    let mut summary = Summary {
        schedules: 1,
        ..Summary::default()
    };
    for id in cluster.ids.clone() {
        // Real nodes never start in the same millisecond; starting them in lockstep would also
        // align openraft's election ticks and let them split every vote forever.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..50))).await;
        cluster.start(id).await?;
    }
    let mut writes = Vec::new();
    let steps = rng.gen_range(20..40);
    for _ in 0..steps {
        match rng.gen_range(0..100) {
            0..40 => {
                let target = match cluster.leader() {
                    Some((_, raft)) if rng.gen_bool(0.8) => Some(raft),
                    _ => cluster
                        .alive()
                        .choose(&mut rng)
                        .map(|id| cluster.running[id].raft.clone()),
                };
                if let Some(raft) = target {
                    summary.writes_sent += 1;
                    let payload = Bytes::from(format!("s{seed}-w{}", summary.writes_sent));
                    writes.push(cluster.spawn_write(raft, payload));
                }
            }
            40..50 => {
                if let Some(&id) = cluster.alive().choose(&mut rng) {
                    summary.kills += 1;
                    cluster.kill(id).await;
                }
            }
            50..62 => {
                if let Some(&id) = cluster.dead().choose(&mut rng) {
                    cluster.start(id).await?;
                }
            }
            62..70 => {
                let side: BTreeSet<u64> = cluster
                    .ids
                    .iter()
                    .copied()
                    .filter(|_| rng.gen_bool(0.4))
                    .collect();
                summary.partitions += 1;
                cluster.net.partition(&side, &cluster.ids);
            }
            70..74 => {
                let from = *cluster.ids.choose(&mut rng).expect("nodes");
                let to = *cluster.ids.choose(&mut rng).expect("nodes");
                cluster.net.cut(from, to);
            }
            74..84 => cluster.net.heal(),
            84..92 => {
                let drop = if rng.gen_bool(0.5) {
                    0
                } else {
                    rng.gen_range(0..300)
                };
                let delay = Duration::from_millis(rng.gen_range(0..60));
                cluster.net.set_quality(drop, delay);
            }
            92..96 => {
                // A voter change (KIP-853's AddRaftVoter/RemoveRaftVoter) racing the faults.
                if let (Some((_, raft)), Some(&id)) =
                    (cluster.leader(), cluster.ids.choose(&mut rng))
                {
                    summary.membership_changes += 1;
                    writes.push(cluster.spawn_voter_change(raft, id));
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..400))).await;
    }

    // Heal everything and require the cluster to converge on one log.
    cluster.net.heal();
    cluster.net.set_quality(0, Duration::from_millis(2));
    for id in cluster.dead() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1..50))).await;
        cluster.start(id).await?;
    }
    for write in writes {
        let _ = write.await;
    }
    let final_index = converge(&mut cluster, seed).await?;
    check(&cluster, final_index)?;

    let checker = cluster.checker.lock();
    summary.writes_acked = checker.acked.len() as u64;
    summary.terms = checker.leaders.len() as u64;
    summary.max_index = final_index;
    Ok(summary)
}

/// Waits (in virtual time) for a leader that commits a final write, then for every node to
/// apply it. Returns its index.
async fn converge(cluster: &mut SimCluster, seed: u64) -> Result<u64, String> {
    let payload = Bytes::from(format!("s{seed}-final"));
    let mut committed = None;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some((_, raft)) = cluster.leader() else {
            continue;
        };
        let write = raft.client_write(crate::types::Batch(vec![payload.clone()]));
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(2), write).await {
            cluster
                .checker
                .record_ack(response.log_id.index, payload.clone());
            committed = Some(response.log_id.index);
            break;
        }
    }
    let Some(index) = committed else {
        return Err(format!(
            "no leader committed a write within 30 s after healing; {}",
            cluster.describe()
        ));
    };
    for _ in 0..300 {
        let behind: Vec<u64> = cluster
            .running
            .iter()
            .filter(|(_, r)| {
                r.raft
                    .metrics()
                    .borrow()
                    .last_applied
                    .is_none_or(|l| l.index < index)
            })
            .map(|(&id, _)| id)
            .collect();
        if behind.is_empty() {
            return Ok(index);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "nodes did not apply index {index} within 30 s; {}",
        cluster.describe()
    ))
}

fn check(cluster: &SimCluster, final_index: u64) -> Result<(), String> {
    let checker = cluster.checker.lock();
    if let Some(violation) = checker.violations.first() {
        return Err(violation.clone());
    }
    // Every acknowledged write is in every node's state machine, at its index.
    for (id, running) in &cluster.running {
        let history = running.history.lock().unwrap_or_else(|p| p.into_inner());
        for (index, payload) in &checker.acked {
            match history.get(index) {
                Some((_, records)) if records.as_slice() == std::slice::from_ref(payload) => {}
                other => {
                    return Err(format!(
                        "acknowledged write {payload:?} at index {index} lost on node {id}: \
                         it holds {other:?}"
                    ));
                }
            }
        }
    }
    // All state machines applied the same sequence up to the final write.
    let histories: BTreeMap<u64, Applied> = cluster
        .running
        .iter()
        .map(|(&id, r)| {
            let history = r.history.lock().unwrap_or_else(|p| p.into_inner());
            let upto = history
                .range(..=final_index)
                .map(|(i, v)| (*i, v.clone()))
                .collect::<Applied>();
            (id, upto)
        })
        .collect();
    let mut iter = histories.iter();
    if let Some((first_id, first)) = iter.next() {
        for (id, other) in iter {
            if other != first {
                return Err(format!(
                    "state machines of nodes {first_id} and {id} differ up to index {final_index}"
                ));
            }
        }
    }
    // Committed logs agree wherever two nodes still hold the same index.
    let logs: Vec<(u64, Vec<_>)> = cluster
        .running
        .iter()
        .map(|(&id, r)| (id, r.log.entries(..=final_index)))
        .collect();
    for (a, log_a) in &logs {
        let by_index: BTreeMap<u64, _> = log_a.iter().map(|e| (e.log_id.index, e)).collect();
        for (b, log_b) in &logs {
            for entry in log_b {
                if let Some(mine) = by_index.get(&entry.log_id.index)
                    && (mine.log_id != entry.log_id || mine.payload != entry.payload)
                {
                    return Err(format!(
                        "committed logs of nodes {a} and {b} diverge at index {}",
                        entry.log_id.index
                    ));
                }
            }
        }
    }
    Ok(())
}
