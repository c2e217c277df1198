//! Transactional offset commits: Kafka's `OffsetMetadataManager` pending offsets, markers
//! and the log-order rule.

use super::*;
use crate::TxnCommitParams;

fn txn(
    pid: i64,
    generation: i32,
    member: &str,
    partitions: &[(&str, i32, i64)],
) -> TxnCommitParams {
    TxnCommitParams {
        group_id: G.into(),
        producer_id: pid,
        producer_epoch: 7,
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        partitions: partitions
            .iter()
            .map(|(t, p, o)| CommitPartition {
                topic: t.to_string(),
                partition: *p,
                offset: *o,
                leader_epoch: 2,
                metadata: Some("txn".into()),
            })
            .collect(),
    }
}

/// The committed offset of `G`'s `topic`-`partition`, if any.
fn committed(c: &Coordinator, topic: &str, partition: i32) -> Option<i64> {
    c.fetch_offsets(G, Some(&[(topic.to_string(), vec![partition])]))[0].1[0]
        .1
        .as_ref()
        .map(|e| e.offset)
}

/// `__consumer_offsets` as the driver would write it: plain batches, transactional batches
/// and markers, in order.
#[derive(Debug, Clone)]
enum Logged {
    Plain(CoordinatorRecord),
    Txn(i64, CoordinatorRecord),
    Marker(i64, bool),
}

#[derive(Default)]
struct Log(Vec<Logged>);

impl Log {
    fn take(&mut self, c: &mut Coordinator) {
        let e = c.take_effects();
        self.0.extend(e.records.into_iter().map(Logged::Plain));
        for t in e.txn_records {
            self.0
                .extend(t.records.into_iter().map(|r| Logged::Txn(t.producer_id, r)));
        }
    }
    fn marker(&mut self, c: &mut Coordinator, pid: i64, commit: bool, now: i64) {
        c.complete_txn(pid, commit, now);
        self.0.push(Logged::Marker(pid, commit));
        self.take(c);
    }
    fn replay(&self, now: i64) -> Coordinator {
        let mut c = Coordinator::new(cfg(), 0);
        for l in self.0.clone() {
            match l {
                Logged::Plain(r) => c.replay(r, now),
                Logged::Txn(pid, r) => c.replay_txn_offset(pid, r, now),
                Logged::Marker(pid, commit) => c.complete_txn(pid, commit, now),
            }
        }
        c.finish_loading(now);
        c
    }
}

#[test]
fn pending_offsets_are_invisible_until_the_commit_marker() {
    let mut c = Coordinator::new(cfg(), 0);
    assert_eq!(
        c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 10), ("t", 1, 20)]), 100),
        Ok(vec![ErrorCode::None, ErrorCode::None])
    );
    // Kafka creates the simple group at once; the offsets are not readable yet.
    assert_eq!(c.group_state(G), Some(GroupState::Empty));
    assert!(c.fetch_offsets(G, None).is_empty());
    assert_eq!(committed(&c, "t", 0), None);
    assert!(c.has_pending_txn_offset(G, "t", 0));
    assert!(c.has_pending_txn_offset(G, "t", 1));
    assert!(!c.has_pending_txn_offset(G, "t", 2));
    assert!(!c.has_pending_txn_offset("other", "t", 0));
    assert!(c.has_offsets(G), "an open transaction keeps the group");
    assert!(c.has_open_txn(1));
    let e = c.take_effects();
    assert!(e.records.is_empty(), "never in the plain records");
    assert_eq!(e.txn_records.len(), 1);
    let t = &e.txn_records[0];
    assert_eq!((t.producer_id, t.producer_epoch), (1, 7));
    assert_eq!(t.records.len(), 2);
    match &t.records[0] {
        CoordinatorRecord::OffsetCommit {
            group,
            topic,
            partition,
            value: Some(v),
        } => {
            assert_eq!((group.as_str(), topic.as_str(), *partition), (G, "t", 0));
            assert_eq!(
                (v.offset, v.leader_epoch, v.metadata.as_str()),
                (10, 2, "txn")
            );
            assert_eq!((v.commit_timestamp, v.expire_timestamp), (100, -1));
        }
        other => panic!("unexpected {other:?}"),
    }

    c.complete_txn(1, true, 200);
    assert!(c.take_effects().is_empty(), "the marker is the record");
    assert_eq!(committed(&c, "t", 0), Some(10));
    assert_eq!(committed(&c, "t", 1), Some(20));
    assert!(!c.has_pending_txn_offset(G, "t", 0));
    assert!(!c.has_open_txn(1));
    // A second marker for the same producer has nothing left to do.
    c.complete_txn(1, false, 300);
    assert_eq!(committed(&c, "t", 0), Some(10));
}

#[test]
fn an_abort_drops_the_pending_offsets() {
    let mut c = Coordinator::new(cfg(), 0);
    c.commit_offsets(commit(-1, "", &[("t", 0, 5)]), 100)
        .unwrap();
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 10), ("t", 1, 20)]), 100)
        .unwrap();
    c.complete_txn(1, false, 200);
    assert_eq!(committed(&c, "t", 0), Some(5));
    assert_eq!(committed(&c, "t", 1), None);
    assert!(!c.has_pending_txn_offset(G, "t", 0));
    assert!(!c.has_pending_txn_offset(G, "t", 1));
}

#[test]
fn two_producers_on_one_group_commit_independently() {
    let mut c = Coordinator::new(cfg(), 0);
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 10), ("t", 2, 30)]), 100)
        .unwrap();
    c.txn_commit_offsets(txn(2, -1, "", &[("t", 0, 15), ("t", 1, 20)]), 110)
        .unwrap();
    assert_eq!(c.take_effects().txn_records.len(), 2);
    c.complete_txn(2, true, 120);
    assert_eq!(committed(&c, "t", 0), Some(15));
    assert_eq!(committed(&c, "t", 1), Some(20));
    assert_eq!(committed(&c, "t", 2), None);
    // Producer 1 still holds t-0 and t-2.
    assert!(c.has_pending_txn_offset(G, "t", 0));
    assert!(!c.has_pending_txn_offset(G, "t", 1));
    c.complete_txn(1, true, 130);
    // Producer 1 wrote t-0 before producer 2 did: the later record stays (Kafka compares
    // record offsets, not marker order).
    assert_eq!(committed(&c, "t", 0), Some(15));
    assert_eq!(committed(&c, "t", 2), Some(30));
    assert!(!c.has_pending_txn_offset(G, "t", 0));
}

#[test]
fn a_later_plain_commit_wins_over_an_earlier_transactional_one() {
    let mut c = Coordinator::new(cfg(), 0);
    c.commit_offsets(commit(-1, "", &[("t", 1, 1)]), 90)
        .unwrap();
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 10), ("t", 1, 11)]), 100)
        .unwrap();
    c.commit_offsets(commit(-1, "", &[("t", 0, 20)]), 110)
        .unwrap();
    assert_eq!(committed(&c, "t", 0), Some(20));
    c.complete_txn(1, true, 120);
    assert_eq!(
        committed(&c, "t", 0),
        Some(20),
        "written after the txn offset"
    );
    assert_eq!(
        committed(&c, "t", 1),
        Some(11),
        "written before the txn offset"
    );
}

#[test]
fn replaying_txn_records_and_markers_rebuilds_the_same_state() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut log = Log::default();
    c.commit_offsets(commit(-1, "", &[("t", 1, 1)]), 90)
        .unwrap();
    log.take(&mut c);
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 10), ("t", 1, 11)]), 100)
        .unwrap();
    log.take(&mut c);
    c.txn_commit_offsets(txn(2, -1, "", &[("t", 2, 12)]), 100)
        .unwrap();
    log.take(&mut c);
    c.txn_commit_offsets(txn(3, -1, "", &[("t", 3, 13), ("t", 4, 14)]), 100)
        .unwrap();
    log.take(&mut c);
    c.commit_offsets(commit(-1, "", &[("t", 0, 20)]), 110)
        .unwrap();
    log.take(&mut c);
    log.marker(&mut c, 1, true, 120);
    log.marker(&mut c, 2, false, 120);
    // OffsetDelete of a partition only a pending offset holds: a tombstone, and the
    // pending offset goes.
    let r = c.delete_offsets(G, &[("t".into(), vec![4])], 130).unwrap();
    assert_eq!(r[0].1, vec![(4, ErrorCode::None)]);
    assert!(!c.has_pending_txn_offset(G, "t", 4));
    log.take(&mut c);
    assert!(log.0.iter().any(|l| matches!(
        l,
        Logged::Plain(CoordinatorRecord::OffsetCommit {
            partition: 4,
            value: None,
            ..
        })
    )));
    // Producer 3 stays open with t-3.

    let fresh = log.replay(1000);
    assert_eq!(fresh.fetch_offsets(G, None), c.fetch_offsets(G, None));
    assert_eq!(committed(&fresh, "t", 0), Some(20));
    assert_eq!(committed(&fresh, "t", 1), Some(11));
    assert_eq!(committed(&fresh, "t", 2), None);
    for p in 0..5 {
        assert_eq!(
            fresh.has_pending_txn_offset(G, "t", p),
            c.has_pending_txn_offset(G, "t", p),
            "partition {p}"
        );
    }
    assert!(fresh.has_pending_txn_offset(G, "t", 3));
    assert!(fresh.has_open_txn(3) && !fresh.has_open_txn(1) && !fresh.has_open_txn(2));

    // Both finish the open transaction the same way.
    let mut fresh = fresh;
    fresh.complete_txn(3, true, 2000);
    c.complete_txn(3, true, 2000);
    assert_eq!(fresh.fetch_offsets(G, None), c.fetch_offsets(G, None));
    assert_eq!(committed(&fresh, "t", 3), Some(13));
    assert_eq!(committed(&fresh, "t", 4), None, "deleted while pending");
}

#[test]
fn a_tombstone_in_a_transactional_batch_deletes_like_any_other() {
    let mut c = Coordinator::new(cfg(), 0);
    c.commit_offsets(commit(-1, "", &[("t", 0, 5)]), 100)
        .unwrap();
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 10)]), 100)
        .unwrap();
    c.replay_txn_offset(
        2,
        CoordinatorRecord::OffsetCommit {
            group: G.into(),
            topic: "t".into(),
            partition: 0,
            value: None,
        },
        100,
    );
    assert_eq!(committed(&c, "t", 0), None);
    assert!(!c.has_pending_txn_offset(G, "t", 0));
    c.complete_txn(1, true, 200);
    assert_eq!(committed(&c, "t", 0), None);
}

#[test]
fn txn_commits_are_checked_against_the_generation_and_member() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 1);
    assert_eq!(
        c.txn_commit_offsets(txn(1, 1, &ids[0], &[("t", 0, 1)]), t),
        Ok(vec![ErrorCode::None])
    );
    assert_eq!(
        c.txn_commit_offsets(txn(1, 0, &ids[0], &[("t", 0, 1)]), t),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        c.txn_commit_offsets(txn(1, 1, "stranger", &[("t", 0, 1)]), t),
        Err(ErrorCode::UnknownMemberId)
    );
    // A member id without a generation (v3+ sends both): still checked.
    assert_eq!(
        c.txn_commit_offsets(txn(1, -1, "stranger", &[("t", 0, 1)]), t),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        c.txn_commit_offsets(txn(1, -1, &ids[0], &[("t", 0, 1)]), t),
        Err(ErrorCode::IllegalGeneration)
    );
    // An unknown group.instance.id.
    let mut p = txn(1, 1, &ids[0], &[("t", 0, 1)]);
    p.group_instance_id = Some("nobody".into());
    assert_eq!(c.txn_commit_offsets(p, t), Err(ErrorCode::UnknownMemberId));
    // TxnOffsetCommit < v3 carries no member fields: accepted in a live group, unlike a
    // plain commit (this is also the path for KIP-848 groups the broker validated).
    assert_eq!(
        c.txn_commit_offsets(txn(2, -1, "", &[("t", 0, 2)]), t),
        Ok(vec![ErrorCode::None])
    );
    // A generation for a group that does not exist.
    let mut p = txn(1, 3, "m", &[("t", 0, 1)]);
    p.group_id = "other".into();
    assert_eq!(
        c.txn_commit_offsets(p, t),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(c.group_state("other"), None);
    // Nothing was recorded for the refused requests.
    let e = c.take_effects();
    assert_eq!(e.txn_records.len(), 2);
    assert!(c.has_open_txn(1) && c.has_open_txn(2));
}

#[test]
fn a_group_mid_rebalance_takes_txn_commits_from_its_members() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 1);
    // A second member joins: the group prepares a rebalance; the first rejoins and the
    // group completes the join phase, waiting for SyncGroup.
    let _ = c.join_group(join("", None, &range()), t);
    let (_, _) = join_two_step(&mut c, &range(), t);
    let _ = c.join_group(join(&ids[0], None, &range()), t);
    let deadline = c.next_deadline();
    c.tick(deadline);
    assert_eq!(c.group_state(G), Some(GroupState::CompletingRebalance));
    assert_eq!(
        c.commit_offsets(commit(2, &ids[0], &[("t", 0, 1)]), deadline),
        Err(ErrorCode::RebalanceInProgress)
    );
    assert_eq!(
        c.txn_commit_offsets(txn(1, 2, &ids[0], &[("t", 0, 1)]), deadline),
        Ok(vec![ErrorCode::None])
    );
}

#[test]
fn a_fenced_static_member_cannot_commit_transactionally() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut d = Done::default();
    let t1 = pending(c.join_group(join("", Some("i1"), &range()), 0));
    c.tick(3000);
    d.absorb(c.take_effects());
    let r1 = d.join(t1);
    now_sync(c.sync_group(sync(&r1.member_id, 1, &[(&r1.member_id, b"A")]), 3000));
    // The instance restarts under a new member id; the old one is fenced.
    let r = now_join(c.join_group(join("", Some("i1"), &range()), 4000));
    assert_ne!(r.member_id, r1.member_id);
    let mut p = txn(1, 1, &r1.member_id, &[("t", 0, 1)]);
    p.group_instance_id = Some("i1".into());
    assert_eq!(
        c.txn_commit_offsets(p, 4000),
        Err(ErrorCode::FencedInstanceId)
    );
    let mut p = txn(1, 1, &r.member_id, &[("t", 0, 1)]);
    p.group_instance_id = Some("i1".into());
    assert_eq!(c.txn_commit_offsets(p, 4000), Ok(vec![ErrorCode::None]));
}

#[test]
fn metadata_too_large_is_refused_per_partition() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut p = txn(1, -1, "", &[("t", 0, 1), ("t", 1, 1)]);
    p.partitions[0].metadata = Some("x".repeat(4097));
    assert_eq!(
        c.txn_commit_offsets(p, 100),
        Ok(vec![ErrorCode::OffsetMetadataTooLarge, ErrorCode::None])
    );
    assert!(!c.has_pending_txn_offset(G, "t", 0));
    assert!(c.has_pending_txn_offset(G, "t", 1));
    assert_eq!(c.take_effects().txn_records[0].records.len(), 1);
    // Every partition refused: no batch, no open transaction.
    let mut p = txn(2, -1, "", &[("t", 0, 1)]);
    p.partitions[0].metadata = Some("x".repeat(4097));
    assert_eq!(
        c.txn_commit_offsets(p, 100),
        Ok(vec![ErrorCode::OffsetMetadataTooLarge])
    );
    assert!(c.take_effects().txn_records.is_empty());
    assert!(!c.has_open_txn(2));
}

#[test]
fn pending_offsets_hold_back_expiry_and_group_removal() {
    let cfg = GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1000,
        ..cfg()
    };
    let mut c = Coordinator::new(cfg, 0);
    c.commit_offsets(commit(-1, "", &[("t", 0, 1), ("t", 1, 1)]), 0)
        .unwrap();
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 2)]), 0)
        .unwrap();
    c.take_effects();
    c.tick(61_000);
    // t-1 expired; t-0 waits for its transaction; the group stays.
    assert_eq!(committed(&c, "t", 1), None);
    assert_eq!(committed(&c, "t", 0), Some(1));
    assert_eq!(c.group_state(G), Some(GroupState::Empty));
    c.complete_txn(1, false, 62_000);
    c.tick(63_000);
    assert_eq!(committed(&c, "t", 0), None);
    assert_eq!(c.group_state(G), None);

    // A group whose only offsets are pending is not removed either.
    c.txn_commit_offsets(txn(2, -1, "", &[("t", 0, 2)]), 100_000)
        .unwrap();
    c.tick(200_000);
    assert_eq!(c.group_state(G), Some(GroupState::Empty));
    assert!(c.has_offsets(G));
    c.complete_txn(2, true, 200_001);
    assert_eq!(committed(&c, "t", 0), Some(2));
}

#[test]
fn deleting_a_group_tombstones_its_pending_offsets_too() {
    let mut c = Coordinator::new(cfg(), 0);
    c.commit_offsets(commit(-1, "", &[("t", 0, 1)]), 0).unwrap();
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 2), ("t", 1, 3)]), 0)
        .unwrap();
    c.txn_commit_offsets(txn(2, -1, "", &[("t", 1, 4)]), 0)
        .unwrap();
    c.take_effects();
    assert_eq!(c.delete_groups(&[G.into()], 10), vec![ErrorCode::None]);
    let e = c.take_effects();
    let tombstones: Vec<i32> = e
        .records
        .iter()
        .filter_map(|r| match r {
            CoordinatorRecord::OffsetCommit {
                partition,
                value: None,
                ..
            } => Some(*partition),
            _ => None,
        })
        .collect();
    assert_eq!(tombstones, vec![0, 1], "one tombstone per partition");
    assert!(e.records.contains(&CoordinatorRecord::GroupMetadata {
        group: G.into(),
        value: None
    }));
    assert!(!c.has_pending_txn_offset(G, "t", 0));
    assert!(!c.has_pending_txn_offset(G, "t", 1));
    // The markers that follow commit nothing.
    c.complete_txn(1, true, 20);
    c.complete_txn(2, true, 20);
    assert!(c.fetch_offsets(G, None).is_empty());
}

#[test]
fn a_marker_scoped_to_some_groups_leaves_the_others_pending() {
    let mut c = Coordinator::new(cfg(), 0);
    c.txn_commit_offsets(txn(1, -1, "", &[("t", 0, 10)]), 100)
        .unwrap();
    let mut other = txn(1, -1, "", &[("t", 0, 30)]);
    other.group_id = "h".into();
    c.txn_commit_offsets(other, 100).unwrap();
    c.complete_txn_where(1, true, 200, |g| g == G);
    assert_eq!(committed(&c, "t", 0), Some(10));
    assert!(c.has_pending_txn_offset("h", "t", 0));
    assert!(c.has_open_txn(1));
    assert!(c.fetch_offsets("h", None).is_empty());
    c.complete_txn_where(1, true, 300, |g| g == "h");
    assert!(!c.has_open_txn(1));
    assert_eq!(
        c.fetch_offsets("h", None)[0].1[0]
            .1
            .as_ref()
            .map(|e| e.offset),
        Some(30)
    );
}
