//! AlterPartitionReassignments: Kafka's per-partition checks and codes, the no-op and
//! reorder cases that complete at once, and the refusal of a replica move.

#![allow(clippy::needless_update)]

use arus_protocol::ErrorCode;
use arus_protocol::messages::AlterPartitionReassignmentsRequest;
use arus_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};

use super::*;
use crate::reassignment::MOVE_NOT_SUPPORTED;

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
            (0, Some(vec![other])),
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
            (0, ErrorCode::InvalidRequest, Some(MOVE_NOT_SUPPORTED.into())),
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
    // With the replication factor free to change, growing it is still a move.
    let out =
        h.c.alter_partition_reassignments(&request("t", &[(0, Some(vec![current, other]))], true));
    assert_eq!(
        only_result(&out),
        Err(ControllerError::new(
            ErrorCode::InvalidRequest,
            MOVE_NOT_SUPPORTED
        ))
    );
}
