//! Random fetch / append / time / ISR-change sequences on one leader with two followers:
//! the high watermark never decreases, never exceeds the log end offset of the leader or of
//! any member of the (maximal) ISR, and an `acks=all` produce is never answered before every
//! member of the maximal ISR has its offset.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::ErrorCode;
use proptest::prelude::*;

use crate::acks::AcksDecision;
use crate::isr::{AlterPartitionProposal, BrokerStatus, CommittedLeaderAndIsr};
use crate::partition::{FollowerFetch, LeaderConfig, LeaderLog, LeaderPartition, Leadership};

const LEADER: i32 = 0;
const FOLLOWERS: [i32; 2] = [1, 2];
const LAG: i64 = 100;

#[derive(Clone, Debug)]
enum Op {
    Append(i64),
    Produce(i64),
    Fetch { follower: usize, advance: i64 },
    Tick(i64),
    Shrink,
    Answer(u8),
    ControllerRemoves(usize),
    Fence { follower: usize, fenced: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1i64..5).prop_map(Op::Append),
        2 => (1i64..5).prop_map(Op::Produce),
        6 => (0usize..2, 0i64..6).prop_map(|(follower, advance)| Op::Fetch { follower, advance }),
        3 => (0i64..80).prop_map(Op::Tick),
        2 => Just(Op::Shrink),
        2 => (0u8..5).prop_map(Op::Answer),
        1 => (0usize..2).prop_map(Op::ControllerRemoves),
        1 => (0usize..2, any::<bool>()).prop_map(|(follower, fenced)| Op::Fence { follower, fenced }),
    ]
}

fn brokers() -> BTreeMap<i32, BrokerStatus> {
    (0..3)
        .map(|id| {
            (
                id,
                BrokerStatus {
                    broker_epoch: 10,
                    fenced: false,
                    in_controlled_shutdown: false,
                },
            )
        })
        .collect()
}

fn check_invariants(p: &LeaderPartition, leo: i64, previous_hw: i64) {
    let hw = p.high_watermark();
    assert!(
        hw >= previous_hw,
        "high watermark went back from {previous_hw} to {hw}"
    );
    assert!(hw <= leo, "high watermark {hw} past the leader's end {leo}");
    for id in p.state().maximal_isr() {
        if id == LEADER {
            continue;
        }
        let end = p.replica(id).unwrap().log_end_offset;
        assert!(
            hw <= end,
            "high watermark {hw} past ISR member {id} at {end}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn high_watermark_and_acks_all_are_safe(
        min_isr in 1usize..4,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut b = brokers();
        let mut now = 1_000i64;
        let mut leo = 0i64;
        let mut follower_leo = [0i64; 2];
        let mut p = LeaderPartition::become_leader(
            LeaderConfig {
                local_broker_id: LEADER,
                local_broker_epoch: 10,
                replica_lag_time_max_ms: LAG,
                min_insync_replicas: min_isr,
            },
            &Leadership { leader_epoch: 1, partition_epoch: 1, replicas: vec![0, 1, 2], isr: vec![0] },
            LeaderLog { log_start_offset: 0, log_end_offset: 0, high_watermark: 0 },
            now,
            &b,
        );
        let mut in_flight: Option<AlterPartitionProposal> = None;
        let mut waiting: Vec<i64> = Vec::new();
        for op in ops {
            let previous_hw = p.high_watermark();
            match op {
                Op::Append(n) => {
                    leo += n;
                    p.on_leader_append(leo, now, &b);
                }
                Op::Produce(n) => {
                    if p.check_append(-1).is_ok() {
                        leo += n;
                        p.on_leader_append(leo, now, &b);
                        waiting.push(leo);
                    }
                }
                Op::Fetch { follower, advance } => {
                    follower_leo[follower] = (follower_leo[follower] + advance).min(leo);
                    let out = p.update_follower_fetch_state(
                        FollowerFetch {
                            replica_id: FOLLOWERS[follower],
                            fetch_offset: follower_leo[follower],
                            log_start_offset: 0,
                            fetch_time_ms: now,
                            broker_epoch: 10,
                        },
                        &b,
                    ).unwrap();
                    if let Some(sent) = out.alter_partition {
                        prop_assert!(in_flight.is_none(), "second AlterPartition in flight");
                        in_flight = Some(sent);
                    }
                }
                Op::Tick(ms) => now += ms,
                Op::Shrink => {
                    if let Some(sent) = p.maybe_shrink_isr(now) {
                        prop_assert!(in_flight.is_none(), "second AlterPartition in flight");
                        in_flight = Some(sent);
                    }
                }
                Op::Answer(kind) => {
                    if let Some(sent) = in_flight.take() {
                        let answer = match kind {
                            0 | 1 => Ok(CommittedLeaderAndIsr {
                                leader_epoch: sent.leader_epoch,
                                partition_epoch: sent.partition_epoch + 1,
                                isr: sent.isr_ids().into_iter().collect(),
                                leader_recovery_state: sent.leader_recovery_state,
                            }),
                            2 => Err(ErrorCode::IneligibleReplica),
                            3 => Err(ErrorCode::NetworkException),
                            _ => Err(ErrorCode::InvalidUpdateVersion),
                        };
                        match p.handle_alter_partition_response(&sent, answer, now, &b) {
                            crate::AlterPartitionOutcome::Retry(again) => in_flight = Some(again),
                            crate::AlterPartitionOutcome::AwaitMetadata { .. } => {
                                // Stuck until metadata: the controller restates the committed ISR.
                                let isr: Vec<i32> = p.state().isr().iter().copied().collect();
                                let epoch = p.partition_epoch() + 1;
                                p.update_leadership(
                                    &Leadership { leader_epoch: 1, partition_epoch: epoch, replicas: vec![0, 1, 2], isr },
                                    now,
                                    &b,
                                ).unwrap();
                            }
                            _ => {}
                        }
                    }
                }
                Op::ControllerRemoves(follower) => {
                    let mut isr: BTreeSet<i32> = p.state().isr().clone();
                    isr.remove(&FOLLOWERS[follower]);
                    let epoch = p.partition_epoch() + 1;
                    p.update_leadership(
                        &Leadership { leader_epoch: 1, partition_epoch: epoch, replicas: vec![0, 1, 2], isr: isr.into_iter().collect() },
                        now,
                        &b,
                    ).unwrap();
                    in_flight = None;
                }
                Op::Fence { follower, fenced } => {
                    b.get_mut(&FOLLOWERS[follower]).unwrap().fenced = fenced;
                }
            }
            prop_assert_eq!(p.state().is_inflight(), in_flight.is_some());
            check_invariants(&p, leo, previous_hw);
            waiting.retain(|&required| {
                match p.check_enough_replicas_reach_offset(required) {
                    AcksDecision::Wait => true,
                    AcksDecision::Complete | AcksDecision::NotEnoughReplicasAfterAppend => {
                        for id in p.state().maximal_isr() {
                            let end = if id == LEADER { leo } else { p.replica(id).unwrap().log_end_offset };
                            assert!(end >= required, "acks=all answered at {required} while {id} has {end}");
                        }
                        false
                    }
                }
            });
        }
    }
}
