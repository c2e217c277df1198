//! Three real quorum members over TCP on 127.0.0.1, with their data in temp dirs: election,
//! writes, NotLeader redirection, the leader's death and re-election, and the dead leader's
//! return, caught up by a snapshot because the log it needs was purged meanwhile.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arus_raft::{
    CommittedBatch, MetadataStateMachine, Quorum, QuorumConfig, QuorumError, RaftSettings,
    TransportSettings,
};
use bytes::Bytes;

type Applied = Arc<Mutex<BTreeMap<u64, Vec<Bytes>>>>;

/// Keeps everything it applied; snapshots are the whole map.
struct ListApp(Applied);

#[derive(Debug, thiserror::Error)]
#[error("bad snapshot: {0}")]
struct AppError(#[from] bincode::Error);

impl MetadataStateMachine for ListApp {
    type Error = AppError;

    fn apply(&mut self, batch: CommittedBatch<'_>) -> Result<(), AppError> {
        self.0
            .lock()
            .unwrap()
            .insert(batch.index, batch.records.to_vec());
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, AppError> {
        Ok(bincode::serialize(&*self.0.lock().unwrap())?)
    }

    fn install_snapshot(&mut self, _index: u64, _term: u64, data: &[u8]) -> Result<(), AppError> {
        *self.0.lock().unwrap() = bincode::deserialize(data)?;
        Ok(())
    }
}

fn settings() -> RaftSettings {
    RaftSettings {
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(50),
        snapshot_every: 4,
        // Nothing kept below a snapshot: a node that missed purged entries needs a snapshot.
        logs_to_keep: 0,
        segment_bytes: 512,
        max_payload_entries: 64,
        install_snapshot_timeout: Duration::from_secs(5),
    }
}

struct Member {
    quorum: Quorum,
    applied: Applied,
}

async fn start(
    id: u64,
    address: &str,
    voters: &BTreeMap<u64, String>,
    dir: &std::path::Path,
) -> Member {
    let applied = Applied::default();
    let config = QuorumConfig {
        node_id: id,
        cluster_name: "test".into(),
        data_dir: dir.join(format!("node-{id}")),
        initial_voters: voters
            .iter()
            .map(|(id, a)| (*id, arus_raft::Member::new(a.clone(), None)))
            .collect(),
        settings: settings(),
        transport: TransportSettings::default(),
    };
    let mut quorum = Quorum::start(config, ListApp(applied.clone()))
        .await
        .expect("quorum starts");
    let (listener, _) = arus_raft::transport::bind(address).await.expect("bind");
    quorum.serve(listener);
    Member { quorum, applied }
}

/// Waits, on the members' metrics watches, for a leader of a term above `newer_than`.
async fn wait_for_leader(members: &BTreeMap<u64, Member>, newer_than: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for (&id, m) in members {
            if m.quorum.is_leader() && m.quorum.term() > newer_than {
                return id;
            }
        }
        let mut watches: Vec<_> = members.values().map(|m| m.quorum.raft_metrics()).collect();
        let changed = futures_like_select(&mut watches);
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            panic!("no leader elected within 20 s");
        }
    }
}

/// Resolves when any of the watches changes.
async fn futures_like_select<T: Send + Sync + 'static>(
    watches: &mut [tokio::sync::watch::Receiver<T>],
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut tasks = Vec::new();
    for w in watches.iter() {
        let mut w = w.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            if w.changed().await.is_ok() {
                let _ = tx.send(()).await;
            }
        }));
    }
    let _ = rx.recv().await;
    for t in tasks {
        t.abort();
    }
}

async fn wait_applied(member: &Member, index: u64) {
    let mut applied = member.quorum.applied_index();
    tokio::time::timeout(
        Duration::from_secs(20),
        applied.wait_for(|a| a.is_some_and(|a| a >= index)),
    )
    .await
    .unwrap_or_else(|_| panic!("node {} did not apply {index}", member.quorum.node_id()))
    .expect("watch open");
}

async fn wait_metrics(member: &Member, cond: impl Fn(&arus_raft::types::RaftMetrics) -> bool) {
    let mut metrics = member.quorum.raft_metrics();
    tokio::time::timeout(Duration::from_secs(20), metrics.wait_for(|m| cond(m)))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "node {}: condition not reached: {}",
                member.quorum.node_id(),
                *member.quorum.raft_metrics().borrow()
            )
        })
        .expect("watch open");
}

/// Waits until the leader's metrics show exactly `voters` (they trail the committed change).
async fn wait_voters(member: &Member, voters: &[u64]) {
    wait_metrics(member, |m| {
        m.membership_config
            .membership()
            .voter_ids()
            .eq(voters.iter().copied())
    })
    .await;
}

fn records(tag: &str, i: u64) -> Vec<Bytes> {
    vec![
        Bytes::from(format!("{tag}-{i}-a")),
        Bytes::from(format!("{tag}-{i}-b")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_replicate_fail_over_and_catch_up_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // Reserve three ports, then free them for the members to bind.
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let (listener, address) = arus_raft::transport::bind("127.0.0.1:0").await.unwrap();
        drop(listener);
        voters.insert(id, address.to_string());
    }
    let mut members = BTreeMap::new();
    for (&id, address) in &voters {
        members.insert(id, start(id, address, &voters, dir.path()).await);
    }

    let first_leader = wait_for_leader(&members, 0).await;
    let first_term = members[&first_leader].quorum.term();
    let mut last = 0;
    for i in 0..6 {
        last = members[&first_leader]
            .quorum
            .write(records("first", i))
            .await
            .expect("the leader commits");
    }
    // A follower redirects to the leader.
    let follower = *members.keys().find(|&&id| id != first_leader).unwrap();
    match members[&follower].quorum.write(records("x", 0)).await {
        Err(QuorumError::NotLeader {
            leader_id,
            leader_address,
        }) => {
            assert_eq!(leader_id, Some(first_leader));
            assert_eq!(
                leader_address.as_deref(),
                Some(voters[&first_leader].as_str())
            );
        }
        other => panic!("expected NotLeader, got {other:?}"),
    }
    for m in members.values() {
        wait_applied(m, last).await;
    }
    // The leader hears the last acknowledgements just after the followers applied.
    wait_metrics(&members[&first_leader], |m| {
        m.replication
            .as_ref()
            .is_some_and(|r| r.values().all(|l| l.is_some_and(|l| l.index == last)))
    })
    .await;
    let status = members[&first_leader].quorum.status();
    assert_eq!(status.leader_id, Some(first_leader));
    assert_eq!(status.voters.len(), 3);
    assert!(
        status.voters.iter().all(|v| v.log_end_index == Some(last)),
        "{status:?} last {last}"
    );
    assert!(status.voters.iter().all(|v| v.last_fetch.is_some()));

    // The leader dies; the two others elect a new one and keep committing, past several
    // snapshots, so the entries the old leader lacks are purged.
    let dead = members.remove(&first_leader).unwrap();
    let dead_applied = dead.quorum.applied_index().borrow().unwrap();
    dead.quorum.shutdown().await.unwrap();
    let second_leader = wait_for_leader(&members, first_term).await;
    for i in 0..12 {
        last = members[&second_leader]
            .quorum
            .write(records("second", i))
            .await
            .expect("the new leader commits");
    }
    for m in members.values() {
        wait_applied(m, last).await;
    }
    // openraft postpones a purge while a replication to the dead node is in flight; the next
    // failed attempt releases it.
    wait_metrics(&members[&second_leader], |m| {
        m.purged.is_some_and(|p| p.index > dead_applied)
    })
    .await;
    assert!(
        members[&second_leader].quorum.log_len() < 12,
        "snapshots bound the log"
    );

    // The old leader comes back from its directory and catches up by snapshot.
    let back = start(first_leader, &voters[&first_leader], &voters, dir.path()).await;
    wait_applied(&back, last).await;
    let snapshot = back
        .quorum
        .raft_metrics()
        .borrow()
        .snapshot
        .map(|s| s.index);
    assert!(
        snapshot.is_some_and(|s| s > dead_applied),
        "caught up by a snapshot beyond what it had ({snapshot:?})"
    );
    let expected = members[&second_leader].applied.lock().unwrap().clone();
    assert_eq!(*back.applied.lock().unwrap(), expected);
    assert_eq!(expected.len(), 18, "every acknowledged batch, once");
    members.insert(first_leader, back);

    for (_, m) in members {
        m.quorum.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_voter_grows_the_quorum_with_an_observer_turned_voter_and_shrinks_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut addresses = BTreeMap::new();
    for id in 1..=2u64 {
        let (listener, address) = arus_raft::transport::bind("127.0.0.1:0").await.unwrap();
        drop(listener);
        addresses.insert(id, address.to_string());
    }
    // `kafka-storage format --standalone`: node 1 alone is the quorum.
    let standalone = BTreeMap::from([(1, addresses[&1].clone())]);
    let one = start(1, &addresses[&1], &standalone, dir.path()).await;
    let mut members = BTreeMap::from([(1, one)]);
    wait_for_leader(&members, 0).await;
    let first = members[&1].quorum.write(records("solo", 0)).await.unwrap();

    // Node 2 starts with nothing to bootstrap: it waits to be added.
    let two = start(2, &addresses[&2], &BTreeMap::new(), dir.path()).await;
    members[&1]
        .quorum
        .add_observer(2, addresses[&2].clone())
        .await
        .expect("observer added");
    wait_applied(&two, first).await;
    wait_metrics(&members[&1], |m| {
        m.membership_config.membership().learner_ids().eq([2])
    })
    .await;
    let status = members[&1].quorum.status();
    assert_eq!(
        status.voters.iter().map(|v| v.node_id).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        status
            .observers
            .iter()
            .map(|v| v.node_id)
            .collect::<Vec<_>>(),
        vec![2]
    );

    members[&1]
        .quorum
        .add_voter(
            2,
            arus_raft::Member::new(addresses[&2].clone(), Some("dir-of-2".into())),
            Duration::from_secs(10),
        )
        .await
        .expect("voter added");
    wait_voters(&members[&1], &[1, 2]).await;
    let status = members[&1].quorum.status();
    // The membership keeps the new voter's directory id (KIP-853).
    assert_eq!(status.voters[1].directory_id.as_deref(), Some("dir-of-2"));
    assert_eq!(status.voters[1].address, addresses[&2]);
    assert_eq!(
        status.voters.iter().map(|v| v.node_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(status.observers.is_empty());
    let second = members[&1].quorum.write(records("pair", 0)).await.unwrap();
    wait_applied(&two, second).await;

    members[&1]
        .quorum
        .remove_voter(2)
        .await
        .expect("voter removed");
    wait_voters(&members[&1], &[1]).await;
    let status = members[&1].quorum.status();
    assert_eq!(
        status.voters.iter().map(|v| v.node_id).collect::<Vec<_>>(),
        vec![1]
    );
    // Node 2 stays an observer (Kafka's removed controller goes on fetching) and gets what
    // node 1 now commits alone, until it is removed as an observer.
    assert_eq!(
        status
            .observers
            .iter()
            .map(|v| v.node_id)
            .collect::<Vec<_>>(),
        vec![2]
    );
    let third = members[&1].quorum.write(records("solo", 1)).await.unwrap();
    wait_applied(&two, third).await;
    members[&1]
        .quorum
        .remove_observer(2)
        .await
        .expect("observer removed");
    assert!(members[&1].quorum.status().observers.is_empty());
    members.insert(2, two);
    for (_, m) in members {
        m.quorum.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_restarted_single_voter_replays_its_log_and_keeps_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, address) = arus_raft::transport::bind("127.0.0.1:0").await.unwrap();
    drop(listener);
    let address = address.to_string();
    let voters = BTreeMap::from([(1, address.clone())]);
    let one = start(1, &address, &voters, dir.path()).await;
    let members = BTreeMap::from([(1, one)]);
    wait_for_leader(&members, 0).await;
    let mut last = 0;
    for i in 0..10 {
        last = members[&1].quorum.write(records("w", i)).await.unwrap();
    }
    let before = members[&1].applied.lock().unwrap().clone();
    let (_, one) = members.into_iter().next().unwrap();
    one.quorum.shutdown().await.unwrap();

    let again = start(1, &address, &voters, dir.path()).await;
    // The snapshot and the committed entries after it are back before any election.
    assert_eq!(
        again.quorum.applied_index().borrow().map(|a| a >= last - 1),
        Some(true)
    );
    wait_applied(&again, last).await;
    assert_eq!(*again.applied.lock().unwrap(), before);
    again.quorum.shutdown().await.unwrap();
}

/// Reads until the server closes the connection; true when it did within a second.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn the_listener_drops_foreign_oversized_and_undecodable_connections_and_keeps_serving() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (listener, address) = arus_raft::transport::bind("127.0.0.1:0").await.unwrap();
    drop(listener);
    let address = address.to_string();
    let voters = BTreeMap::from([(1, address.clone())]);
    let members = BTreeMap::from([(1, start(1, &address, &voters, dir.path()).await)]);
    wait_for_leader(&members, 0).await;

    let mut foreign = tokio::net::TcpStream::connect(&address).await.unwrap();
    foreign.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut foreign).await, "no preamble");

    let mut oversized = tokio::net::TcpStream::connect(&address).await.unwrap();
    oversized
        .write_all(&arus_raft::transport::PREAMBLE)
        .await
        .unwrap();
    oversized.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(
        closed_by_server(&mut oversized).await,
        "4 GiB frame announced"
    );

    let mut garbage = tokio::net::TcpStream::connect(&address).await.unwrap();
    garbage
        .write_all(&arus_raft::transport::PREAMBLE)
        .await
        .unwrap();
    garbage.write_all(&8u32.to_be_bytes()).await.unwrap();
    garbage.write_all(&[0xff; 8]).await.unwrap();
    assert!(closed_by_server(&mut garbage).await, "undecodable request");

    members[&1].quorum.write(records("still", 0)).await.unwrap();
    for (_, m) in members {
        m.quorum.shutdown().await.unwrap();
    }
}
