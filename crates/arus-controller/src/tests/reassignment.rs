//! AlterPartitionReassignments and ListPartitionReassignments: Kafka's per-partition checks
//! and codes, the stages of a reassignment (start, completion through AlterPartition,
//! cancellation) and the targets that complete at once.

#![allow(clippy::needless_update)]

use arus_protocol::ErrorCode;
use arus_protocol::messages::AlterPartitionReassignmentsRequest;
use arus_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};

use super::*;

fn request(
    topic: &str,
    targets: &[(i32, Option<Vec<i32>>)],
    allow_rf: bool,
) -> AlterPartitionReassignmentsRequest {
    AlterPartitionReassignmentsRequest {
        allow_replication_factor_change: allow_rf,
        topics: vec![ReassignableTopic {
            name: topic.into(),
            partitions: targets
                .iter()
                .map(|(p, r)| ReassignablePartition {
                    partition_index: *p,
                    replicas: r.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn only_result(out: &Outcome<ReassignmentResults>) -> Result<(), ControllerError> {
    out.response[0].1[0].1.clone()
}

#[test]
fn the_current_assignment_is_a_no_op_that_succeeds() {
    let mut h = Harness::new(true);
    h.brokers(&[None]);
    h.create("t", 1, 1).unwrap();
    let replicas = h.partition("t", 0).replicas;
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(replicas))], true));
    assert_eq!(only_result(&out), Ok(()));
    assert!(out.records.is_empty());
}

#[test]
fn a_reorder_completes_at_once_and_keeps_the_leader() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 1, 3).unwrap();
    let before = h.partition("t", 0);
    let mut reordered = before.replicas.clone();
    reordered.reverse();
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(reordered.clone()))], false));
    assert_eq!(only_result(&out), Ok(()));
    assert_eq!(out.records.len(), 1);
    h.apply(&out.records);
    let after = h.partition("t", 0);
    assert_eq!(after.replicas, reordered);
    assert_eq!(after.leader, before.leader);
    assert_eq!(after.leader_epoch, before.leader_epoch);
    assert!(after.adding_replicas.is_empty() && after.removing_replicas.is_empty());
    h.check_invariants();
    // Nothing is left in progress: cancelling now has nothing to cancel.
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, None)], true));
    assert_eq!(
        only_result(&out),
        Err(ControllerError::code_only(
            ErrorCode::NoReassignmentInProgress
        ))
    );
}

#[test]
fn kafkas_refusals_per_partition_in_request_order() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    h.create("t", 1, 1).unwrap();
    let current = h.partition("t", 0).replicas[0];
    let other = if current == 0 { 1 } else { 0 };
    let out = h.c.alter_partition_reassignments(&request(
        "t",
        &[
            (0, None),
            (5, Some(vec![current])),
            (0, Some(vec![])),
            (0, Some(vec![current, 7])),
            (0, Some(vec![current, current])),
            (0, Some(vec![current, other])),
        ],
        false,
    ));
    assert!(out.records.is_empty());
    let got: Vec<(i32, ErrorCode, Option<String>)> = out.response[0]
        .1
        .iter()
        .map(|(p, r)| {
            let e = r.clone().unwrap_err();
            (*p, e.code, e.message)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, ErrorCode::NoReassignmentInProgress, None),
            (5, ErrorCode::UnknownTopicOrPartition, Some("Unable to find partition t:5.".into())),
            (0, ErrorCode::InvalidReplicaAssignment,
                Some("The manual partition assignment includes an empty replica list.".into())),
            (0, ErrorCode::InvalidReplicaAssignment, Some(
                "The manual partition assignment includes broker 7, but no such broker is registered.".into())),
            (0, ErrorCode::InvalidReplicaAssignment, Some(format!(
                "The manual partition assignment includes the broker {current} more than once."))),
            (0, ErrorCode::InvalidReplicationFactor,
                Some("The replication factor is changed from 1 to 2".into())),
        ]
    );
    let out =
        h.c.alter_partition_reassignments(&request("nope", &[(0, Some(vec![current]))], true));
    assert_eq!(
        only_result(&out),
        Err(ControllerError::new(
            ErrorCode::UnknownTopicOrPartition,
            "Unable to find a topic named nope."
        ))
    );
}

/// The only PartitionChangeRecord of `out`.
fn change_of<T>(out: &Outcome<T>) -> arus_protocol::metadata::PartitionChangeRecord {
    assert_eq!(out.records.len(), 1, "{:?}", out.records);
    match &out.records[0] {
        MetadataRecord::PartitionChange(r) => r.clone(),
        other => panic!("not a PartitionChangeRecord: {other:?}"),
    }
}

/// Four brokers, topic `t` with one partition on one replica; `(current, others)`.
fn one_replica_on_four() -> (Harness, i32, Vec<i32>) {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None, None]);
    h.create("t", 1, 1).unwrap();
    let current = h.partition("t", 0).replicas[0];
    let others = (0..4).filter(|&b| b != current).collect();
    (h, current, others)
}

fn alter(h: &mut Harness, isr: &[i32]) -> Outcome<arus_protocol::messages::AlterPartitionResponse> {
    let req = super::alter_partition::alter_req(h, "t", 0, isr);
    let out = h.c.alter_partition(&req, 3).unwrap();
    h.apply(&out.records);
    h.check_invariants();
    out
}

#[test]
fn a_move_starts_with_the_merged_list_adding_and_removing_and_the_isr_unchanged() {
    let (mut h, c, o) = one_replica_on_four();
    let before = h.partition("t", 0);
    // The operator's order is kept; adding and removing are sorted by id.
    let target = vec![o[1], o[0]];
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(target))], true));
    assert_eq!(only_result(&out), Ok(()));
    let r = change_of(&out);
    assert_eq!(r.replicas, Some(vec![o[1], o[0], c]));
    assert_eq!(r.adding_replicas, Some(vec![o[0], o[1]]));
    assert_eq!(r.removing_replicas, Some(vec![c]));
    assert_eq!(
        r.isr, None,
        "the ISR does not change when a reassignment starts"
    );
    assert_eq!(r.leader, crate::state::NO_LEADER_CHANGE);
    h.apply(&out.records);
    h.check_invariants();
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.leader_epoch), (c, before.leader_epoch));
    assert_eq!(p.isr, vec![c]);
    assert!(crate::reassignment::in_progress(&p));
}

#[test]
fn ongoing_reassignments_are_listed_until_they_complete() {
    let (mut h, c, o) = one_replica_on_four();
    assert!(h.c.list_partition_reassignments(None).is_empty());
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![o[0]]))], true));
    h.apply(&out.records);
    let all = h.c.list_partition_reassignments(None);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "t");
    let p = &all[0].partitions[0];
    assert_eq!(
        (
            p.partition_index,
            p.replicas.clone(),
            p.adding_replicas.clone(),
            p.removing_replicas.clone()
        ),
        (0, vec![o[0], c], vec![o[0]], vec![c])
    );
    use arus_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    let asked = |name: &str, parts: Vec<i32>| ListPartitionReassignmentsTopics {
        name: name.into(),
        partition_indexes: parts,
        ..Default::default()
    };
    let named =
        h.c.list_partition_reassignments(Some(&[asked("t", vec![0, 5]), asked("nope", vec![0])]));
    assert_eq!(named, all, "unknown topics and partitions are left out");
    assert!(
        h.c.list_partition_reassignments(Some(&[asked("t", vec![1])]))
            .is_empty()
    );
    alter(&mut h, &[c, o[0]]);
    assert!(h.c.list_partition_reassignments(None).is_empty());
}

#[test]
fn the_last_adding_replica_joining_the_isr_completes_the_move_and_elects_a_new_leader() {
    let (mut h, c, o) = one_replica_on_four();
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![o[0], o[1]]))], true));
    h.apply(&out.records);
    // One of two new replicas caught up: the ISR grows, nothing completes.
    let out = alter(&mut h, &[c, o[0]]);
    assert_eq!(out.response.topics[0].partitions[0].error_code, 0);
    let p = h.partition("t", 0);
    assert_eq!(p.isr, vec![c, o[0]]);
    assert!(crate::reassignment::in_progress(&p));
    let epoch = p.leader_epoch;
    // Both: the replicas become the target, the removed leader leaves the ISR and
    // leadership, and the old leader hears NEW_LEADER_ELECTED.
    let out = alter(&mut h, &[c, o[0], o[1]]);
    assert_eq!(
        out.response.topics[0].partitions[0].error_code,
        ErrorCode::NewLeaderElected.code()
    );
    let r = change_of(&out);
    assert_eq!(r.replicas, Some(vec![o[0], o[1]]));
    assert_eq!(r.isr, Some(vec![o[0], o[1]]));
    assert_eq!(
        (r.adding_replicas, r.removing_replicas),
        (Some(vec![]), Some(vec![]))
    );
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.leader_epoch), (o[0], epoch + 1));
}

#[test]
fn raising_the_replication_factor_completes_once_every_new_replica_is_in_sync() {
    let (mut h, c, o) = one_replica_on_four();
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![c, o[0], o[1]]))], true));
    let r = change_of(&out);
    assert_eq!(r.replicas, Some(vec![c, o[0], o[1]]));
    assert_eq!(r.adding_replicas, Some(vec![o[0], o[1]]));
    assert_eq!(
        r.removing_replicas, None,
        "nothing to remove: left as it is"
    );
    h.apply(&out.records);
    let epoch = h.partition("t", 0).leader_epoch;
    let out = alter(&mut h, &[c, o[0], o[1]]);
    let resp = &out.response.topics[0].partitions[0];
    assert_eq!((resp.error_code, resp.leader_id), (0, c));
    let p = h.partition("t", 0);
    assert_eq!(p.replicas, vec![c, o[0], o[1]]);
    assert!(!crate::reassignment::in_progress(&p));
    // No replica left: the leader epoch stays.
    assert_eq!((p.leader, p.leader_epoch), (c, epoch));
}

#[test]
fn a_target_the_isr_already_satisfies_completes_at_once_with_a_new_leader_epoch() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 1, 3).unwrap();
    let before = h.partition("t", 0);
    let leader = before.leader;
    let kept: Vec<i32> = before
        .replicas
        .iter()
        .copied()
        .filter(|&r| r != leader)
        .collect();
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(kept.clone()))], true));
    assert_eq!(only_result(&out), Ok(()));
    let r = change_of(&out);
    assert_eq!(r.replicas, Some(kept.clone()));
    assert_eq!(r.isr, Some(kept.clone()));
    assert_eq!((r.adding_replicas, r.removing_replicas), (None, None));
    h.apply(&out.records);
    h.check_invariants();
    let p = h.partition("t", 0);
    assert_eq!(
        (p.leader, p.leader_epoch),
        (kept[0], before.leader_epoch + 1)
    );

    // A removed follower also bumps the leader epoch, with the leader staying.
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 1, 3).unwrap();
    let before = h.partition("t", 0);
    let target: Vec<i32> = before
        .replicas
        .iter()
        .copied()
        .filter(|&r| r != before.replicas[2])
        .collect();
    let target = if target.contains(&before.leader) {
        target
    } else {
        vec![before.leader, target[0]]
    };
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(target))], true));
    let r = change_of(&out);
    assert_eq!(
        r.leader, before.leader,
        "the leader field is set to bump the epoch"
    );
    h.apply(&out.records);
    assert_eq!(h.partition("t", 0).leader_epoch, before.leader_epoch + 1);
}

#[test]
fn cancelling_reverts_to_the_original_replicas_and_isr() {
    let (mut h, c, o) = one_replica_on_four();
    let before = h.partition("t", 0);
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![o[0], o[1]]))], true));
    h.apply(&out.records);
    alter(&mut h, &[c, o[0]]);
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, None)], true));
    assert_eq!(only_result(&out), Ok(()));
    let r = change_of(&out);
    assert_eq!(r.replicas, Some(vec![c]));
    assert_eq!(r.isr, Some(vec![c]));
    assert_eq!(
        (r.adding_replicas, r.removing_replicas),
        (Some(vec![]), Some(vec![]))
    );
    h.apply(&out.records);
    h.check_invariants();
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.replicas.clone()), (c, before.replicas.clone()));
    assert!(h.c.list_partition_reassignments(None).is_empty());
}

#[test]
fn a_cancel_that_needs_an_unclean_election_is_refused_unless_allowed() {
    let mut h = Harness::new(false);
    h.brokers(&[None, None, None, None]);
    h.create("t", 1, 1).unwrap();
    let c = h.partition("t", 0).replicas[0];
    let o: Vec<i32> = (0..4).filter(|&b| b != c).collect();
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![o[0], o[1]]))], true));
    h.apply(&out.records);
    alter(&mut h, &[c, o[0]]);
    // The original replica is fenced: only an adding replica is left in the ISR.
    h.advance(10_000, &o);
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (o[0], vec![o[0]]));
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, None)], true));
    assert_eq!(
        only_result(&out),
        Err(ControllerError::new(
            ErrorCode::InvalidReplicaAssignment,
            "Unable to revert partition assignment for t:0 because it would require an unclean leader election."
        ))
    );
    assert!(out.records.is_empty());
}

#[test]
fn keeping_the_replication_factor_counts_the_replicas_a_reassignment_heads_for() {
    let (mut h, c, o) = one_replica_on_four();
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![o[0], o[1]]))], true));
    h.apply(&out.records);
    // Replicas [o0, o1, c], removing [c]: the partition is headed for two replicas.
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![o[2]]))], false));
    assert_eq!(
        only_result(&out),
        Err(ControllerError::new(
            ErrorCode::InvalidReplicationFactor,
            "The replication factor is changed from 2 to 1"
        ))
    );
    // A new target over the ongoing one is computed from the merged list.
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![o[2], o[0]]))], false));
    let r = change_of(&out);
    let mut removing = vec![c, o[1]];
    removing.sort();
    let mut replicas = vec![o[2], o[0]];
    replicas.extend(&removing);
    assert_eq!(r.replicas, Some(replicas));
    assert_eq!(r.adding_replicas, Some(vec![o[2]]));
    assert_eq!(r.removing_replicas, Some(removing));
}
