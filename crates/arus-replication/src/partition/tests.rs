//! Cases ported from Kafka's `PartitionTest` (test names in the comments), run against the
//! pure leader state: "seedLogData" is `on_leader_append`, "fetchFollower" is
//! `update_follower_fetch_state`, "completeIsrUpdate"/"failIsrUpdate" is
//! `handle_alter_partition_response`.

use std::collections::BTreeMap;

use super::*;
use crate::isr::BrokerStatus;

const LEADER: i32 = 0;
const F1: i32 = 1;
const F2: i32 = 2;
const LAG: i64 = 30_000;
const T0: i64 = 1_000_000;

fn epoch_of(id: i32) -> i64 {
    100 + i64::from(id)
}

fn brokers() -> BTreeMap<i32, BrokerStatus> {
    [LEADER, F1, F2]
        .into_iter()
        .map(|id| {
            (
                id,
                BrokerStatus {
                    broker_epoch: epoch_of(id),
                    fenced: false,
                    in_controlled_shutdown: false,
                },
            )
        })
        .collect()
}

fn config(min_isr: usize) -> LeaderConfig {
    LeaderConfig {
        local_broker_id: LEADER,
        local_broker_epoch: epoch_of(LEADER),
        replica_lag_time_max_ms: LAG,
        min_insync_replicas: min_isr,
    }
}

fn leadership(
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: &[i32],
    isr: &[i32],
) -> Leadership {
    Leadership {
        leader_epoch,
        partition_epoch,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
    }
}

/// A leader at epoch 5 over a log of 10 records written in epoch 4, high watermark 0.
fn leader(
    min_isr: usize,
    replicas: &[i32],
    isr: &[i32],
    b: &BTreeMap<i32, BrokerStatus>,
) -> LeaderPartition {
    LeaderPartition::become_leader(
        config(min_isr),
        &leadership(5, 1, replicas, isr),
        LeaderLog {
            log_start_offset: 0,
            log_end_offset: 10,
            high_watermark: 0,
        },
        T0,
        b,
    )
}

fn fetch_at(
    p: &mut LeaderPartition,
    b: &BTreeMap<i32, BrokerStatus>,
    replica_id: i32,
    fetch_offset: i64,
    time: i64,
) -> FetchOutcome {
    p.update_follower_fetch_state(
        FollowerFetch {
            replica_id,
            fetch_offset,
            log_start_offset: 0,
            fetch_time_ms: time,
            broker_epoch: epoch_of(replica_id),
        },
        b,
    )
    .unwrap()
}

fn committed(p: &LeaderPartition, isr: &[i32]) -> CommittedLeaderAndIsr {
    CommittedLeaderAndIsr {
        leader_epoch: p.leader_epoch(),
        partition_epoch: p.partition_epoch() + 1,
        isr: isr.to_vec(),
        leader_recovery_state: LeaderRecoveryState::Recovered,
    }
}

fn set(ids: &[i32]) -> BTreeSet<i32> {
    ids.iter().copied().collect()
}

#[test]
fn test_maybe_shrink_isr() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1, F2], &[LEADER, F1, F2], &b);
    assert_eq!(p.high_watermark(), 0);
    fetch_at(&mut p, &b, F1, 10, T0);
    assert_eq!(p.replica(F2).unwrap().last_caught_up_time_ms, T0);
    assert_eq!(p.replica(F2).unwrap().log_end_offset, -1);
    // On initialization the replica counts as caught up.
    assert_eq!(p.maybe_shrink_isr(T0), None);

    let sent = p.maybe_shrink_isr(T0 + LAG + 1).expect("shrink");
    assert_eq!(sent.isr_ids(), set(&[LEADER, F1]));
    assert!(
        sent.new_isr
            .iter()
            .all(|s| s.broker_epoch == epoch_of(s.broker_id))
    );
    assert_eq!(p.state().isr(), &set(&[LEADER, F1, F2]));
    assert_eq!(p.state().maximal_isr(), set(&[LEADER, F1, F2]));
    assert_eq!(p.high_watermark(), 0);

    let answer = committed(&p, &[LEADER, F1]);
    assert_eq!(
        p.handle_alter_partition_response(&sent, Ok(answer), T0 + LAG + 1, &b),
        AlterPartitionOutcome::Committed {
            high_watermark_advanced: true
        }
    );
    assert_eq!(p.partition_epoch(), 2);
    assert_eq!(p.state().maximal_isr(), set(&[LEADER, F1]));
    assert_eq!(p.high_watermark(), 10);
}

#[test]
fn test_high_watermark_advance_should_not_advance_when_under_min_isr() {
    let b = brokers();
    let mut p = leader(3, &[LEADER, F1, F2], &[LEADER, F1], &b);
    assert!(p.is_under_min_isr());
    assert_eq!(p.high_watermark(), 0);
    fetch_at(&mut p, &b, F1, 10, T0);
    assert_eq!(p.high_watermark(), 0);
    // The maximal ISR reaches 3, but only the committed ISR counts for min ISR.
    let out = fetch_at(&mut p, &b, F2, 10, T0);
    let sent = out.alter_partition.expect("expansion");
    assert_eq!(p.high_watermark(), 0);
    assert_eq!(p.state().maximal_isr().len(), 3);
    let answer = committed(&p, &[LEADER, F1, F2]);
    p.handle_alter_partition_response(&sent, Ok(answer), T0, &b);
    assert!(!p.is_under_min_isr());
    assert_eq!(p.high_watermark(), 10);
}

#[test]
fn test_should_not_shrink_isr_if_previous_fetch_is_caught_up() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER, F1], &b);
    let first_fetch = T0 + 5_000;
    fetch_at(&mut p, &b, F1, 5, first_fetch);
    assert_eq!(p.replica(F1).unwrap().last_caught_up_time_ms, T0);
    assert_eq!(p.high_watermark(), 5);

    let now = first_fetch + 5_001;
    p.on_leader_append(15, now, &b);
    fetch_at(&mut p, &b, F1, 10, now);
    assert_eq!(p.replica(F1).unwrap().last_caught_up_time_ms, first_fetch);
    assert_eq!(p.high_watermark(), 10);
    assert_eq!(p.maybe_shrink_isr(now), None);
    assert_eq!(p.state().isr(), &set(&[LEADER, F1]));
}

#[test]
fn test_should_not_shrink_isr_if_follower_caught_up_to_log_end() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER, F1], &b);
    fetch_at(&mut p, &b, F1, 10, T0);
    assert_eq!(p.replica(F1).unwrap().last_caught_up_time_ms, T0);
    assert_eq!(p.high_watermark(), 10);
    assert_eq!(p.maybe_shrink_isr(T0 + 30_001), None);
}

#[test]
fn test_follower_does_not_join_isr_until_caught_up_to_offset_within_current_leader_epoch() {
    let b = brokers();
    let mut p = LeaderPartition::become_leader(
        config(1),
        &leadership(8, 1, &[LEADER, F1, F2], &[LEADER, F2]),
        LeaderLog {
            log_start_offset: 0,
            log_end_offset: 0,
            high_watermark: 0,
        },
        T0,
        &b,
    );
    p.on_leader_append(2, T0, &b);
    p.on_leader_append(5, T0, &b);
    assert_eq!(p.high_watermark(), 0);
    fetch_at(&mut p, &b, F2, 0, T0);
    fetch_at(&mut p, &b, F2, 1, T0);
    assert_eq!(p.high_watermark(), 1);

    // Follower, then leader again at epoch 10, nothing appended in between.
    let mut p = LeaderPartition::become_leader(
        config(1),
        &leadership(10, 1, &[LEADER, F1, F2], &[LEADER, F2]),
        LeaderLog {
            log_start_offset: 0,
            log_end_offset: 5,
            high_watermark: 1,
        },
        T0,
        &b,
    );
    assert_eq!(p.leader_epoch_start_offset(), 5);
    p.on_leader_append(7, T0, &b);

    assert_eq!(fetch_at(&mut p, &b, F1, 0, T0).alter_partition, None);
    assert_eq!(fetch_at(&mut p, &b, F1, 1, T0).alter_partition, None);
    assert_eq!(p.state().isr(), &set(&[LEADER, F2]));

    let sent = fetch_at(&mut p, &b, F1, 5, T0)
        .alter_partition
        .expect("expansion once at the epoch's start offset");
    assert_eq!(p.state().isr(), &set(&[LEADER, F2]));
    assert_eq!(p.state().maximal_isr(), set(&[LEADER, F1, F2]));
    assert_eq!(sent.isr_ids(), set(&[LEADER, F1, F2]));
    assert_eq!(sent.leader_epoch, 10);
}

#[test]
fn test_invalid_alter_partition_requests_are_not_retried() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER], &b);
    assert_eq!(p.replica(F1).unwrap().last_caught_up_time_ms, 0);
    let sent = fetch_at(&mut p, &b, F1, 10, T0).alter_partition.unwrap();
    assert_eq!(p.state().isr(), &set(&[LEADER]));
    assert_eq!(p.state().maximal_isr(), set(&[LEADER, F1]));
    for error in [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidUpdateVersion,
        ErrorCode::UnknownTopicOrPartition,
        ErrorCode::UnknownTopicId,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::NewLeaderElected,
    ] {
        // testIsrNotExpandedIfUpdateFails, testAlterIsrUnknownTopic,
        // testAlterIsrInvalidVersion, testAlterIsrNewLeaderElected.
        assert_eq!(
            p.handle_alter_partition_response(&sent, Err(error), T0, &b),
            AlterPartitionOutcome::AwaitMetadata { error }
        );
        assert_eq!(p.state().isr(), &set(&[LEADER]));
        assert_eq!(p.state().maximal_isr(), set(&[LEADER, F1]));
        assert!(p.state().is_inflight());
    }
}

#[test]
fn test_alter_isr_unexpected_error_is_retried() {
    // testAlterIsrUnexpectedError / testPartitionShouldRetryAlterPartitionRequest.
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER], &b);
    let sent = fetch_at(&mut p, &b, F1, 10, T0).alter_partition.unwrap();
    assert_eq!(
        p.handle_alter_partition_response(&sent, Err(ErrorCode::UnknownServerError), T0, &b),
        AlterPartitionOutcome::Retry(sent.clone())
    );
    assert!(p.state().is_inflight());
    let answer = committed(&p, &[LEADER, F1]);
    assert_eq!(
        p.handle_alter_partition_response(&sent, Ok(answer), T0, &b),
        AlterPartitionOutcome::Committed {
            high_watermark_advanced: false
        }
    );
    assert_eq!(p.state().isr(), &set(&[LEADER, F1]));
}

#[test]
fn ineligible_replica_reverts_to_the_committed_state() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER], &b);
    let sent = fetch_at(&mut p, &b, F1, 10, T0).alter_partition.unwrap();
    for error in [
        ErrorCode::IneligibleReplica,
        ErrorCode::OperationNotAttempted,
    ] {
        assert_eq!(
            p.handle_alter_partition_response(&sent, Err(error), T0, &b),
            AlterPartitionOutcome::Reverted { error }
        );
        assert!(!p.state().is_inflight());
        assert_eq!(p.state().maximal_isr(), set(&[LEADER]));
        // A later fetch proposes the expansion again.
        let again = fetch_at(&mut p, &b, F1, 10, T0 + 1).alter_partition;
        assert_eq!(again.as_ref(), Some(&sent));
    }
}

#[test]
fn test_single_in_flight_alter_isr() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1, F2], &[LEADER, F1, F2], &b);
    fetch_at(&mut p, &b, F1, 10, T0);
    let sent = p.maybe_shrink_isr(T0 + LAG + 1).expect("F2 out of sync");
    assert_eq!(sent.isr_ids(), set(&[LEADER, F1]));
    // Another follower falling behind does not produce a second request.
    assert_eq!(p.maybe_shrink_isr(T0 + 10 * LAG), None);
    assert!(p.out_of_sync_replicas(T0 + 10 * LAG).is_empty());
}

#[test]
fn test_retry_shrink_isr() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1, F2], &[LEADER, F1, F2], &b);
    fetch_at(&mut p, &b, F1, 10, T0);
    let sent = p.maybe_shrink_isr(T0 + LAG + 1).unwrap();
    let retry = p.handle_alter_partition_response(&sent, Err(ErrorCode::NetworkException), T0, &b);
    assert_eq!(retry, AlterPartitionOutcome::Retry(sent.clone()));
    let answer = committed(&p, &[LEADER, F1]);
    p.handle_alter_partition_response(&sent, Ok(answer), T0 + LAG + 1, &b);
    assert_eq!(p.state().isr(), &set(&[LEADER, F1]));
    assert_eq!(p.high_watermark(), 10);
}

#[test]
fn test_alter_isr_leader_and_isr_race() {
    // New metadata arrives while the AlterPartition is in flight; the late answer is ignored.
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER, F1], &b);
    let sent = p.maybe_shrink_isr(T0 + LAG + 1).unwrap();
    p.update_leadership(
        &leadership(5, 2, &[LEADER, F1], &[LEADER]),
        T0 + LAG + 1,
        &b,
    )
    .unwrap();
    let answer = committed(&p, &[LEADER]);
    assert_eq!(
        p.handle_alter_partition_response(&sent, Ok(answer), T0, &b),
        AlterPartitionOutcome::Outdated
    );
    assert_eq!(p.partition_epoch(), 2);
}

#[test]
fn stale_successful_answers_are_ignored_and_stay_pending() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER], &b);
    let sent = fetch_at(&mut p, &b, F1, 10, T0).alter_partition.unwrap();
    let mut other_epoch = committed(&p, &[LEADER, F1]);
    other_epoch.leader_epoch += 1;
    assert_eq!(
        p.handle_alter_partition_response(&sent, Ok(other_epoch), T0, &b),
        AlterPartitionOutcome::StaleAnswer
    );
    let mut older = committed(&p, &[LEADER, F1]);
    older.partition_epoch = 0;
    assert_eq!(
        p.handle_alter_partition_response(&sent, Ok(older), T0, &b),
        AlterPartitionOutcome::StaleAnswer
    );
    assert!(p.state().is_inflight());
    // Same partition epoch: the controller found nothing to change; committed.
    let mut same = committed(&p, &[LEADER, F1]);
    same.partition_epoch = p.partition_epoch();
    assert!(matches!(
        p.handle_alter_partition_response(&sent, Ok(same), T0, &b),
        AlterPartitionOutcome::Committed { .. }
    ));
    assert!(!p.state().is_inflight());
}

#[test]
fn older_partition_epoch_in_metadata_is_skipped() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER, F1], &b);
    p.update_leadership(&leadership(5, 3, &[LEADER, F1], &[LEADER, F1]), T0, &b)
        .unwrap();
    assert_eq!(
        p.update_leadership(&leadership(5, 2, &[LEADER, F1], &[LEADER]), T0, &b),
        Err(StalePartitionEpoch {
            offered: 2,
            current: 3
        })
    );
    assert_eq!(p.state().isr(), &set(&[LEADER, F1]));
}

#[test]
fn test_fence_follower_fetch_with_stale_broker_epoch() {
    let mut b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER], &b);
    // The follower restarted: registered again with a newer epoch.
    b.get_mut(&F1).unwrap().broker_epoch = epoch_of(F1) + 1;
    let stale = p.update_follower_fetch_state(
        FollowerFetch {
            replica_id: F1,
            fetch_offset: 10,
            log_start_offset: 0,
            fetch_time_ms: T0,
            broker_epoch: epoch_of(F1),
        },
        &b,
    );
    let err = stale.unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NotLeaderOrFollower);
    assert_eq!(p.replica(F1).unwrap().log_end_offset, -1, "state untouched");
    assert!(!p.state().is_inflight());
    // -1 skips the check.
    let ok = p.update_follower_fetch_state(
        FollowerFetch {
            replica_id: F1,
            fetch_offset: 10,
            log_start_offset: 0,
            fetch_time_ms: T0,
            broker_epoch: -1,
        },
        &b,
    );
    assert!(ok.unwrap().alter_partition.is_some());
}

#[test]
fn unknown_replica_is_not_leader_or_follower() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER, F1], &b);
    let err = p
        .update_follower_fetch_state(
            FollowerFetch {
                replica_id: 7,
                fetch_offset: 0,
                log_start_offset: 0,
                fetch_time_ms: T0,
                broker_epoch: -1,
            },
            &b,
        )
        .unwrap_err();
    assert_eq!(err, FetchStateError::UnknownReplica { replica_id: 7 });
}

#[test]
fn test_isr_not_expanded_if_replica_is_fenced_or_shutdown() {
    for (fenced, shutting_down) in [(true, false), (false, true)] {
        let mut b = brokers();
        let mut p = leader(1, &[LEADER, F1], &[LEADER], &b);
        let status = b.get_mut(&F1).unwrap();
        status.fenced = fenced;
        status.in_controlled_shutdown = shutting_down;
        assert_eq!(fetch_at(&mut p, &b, F1, 10, T0).alter_partition, None);
        // Back to normal: the next fetch adds it.
        let status = b.get_mut(&F1).unwrap();
        status.fenced = false;
        status.in_controlled_shutdown = false;
        assert!(
            fetch_at(&mut p, &b, F1, 10, T0 + 1)
                .alter_partition
                .is_some()
        );
    }
}

#[test]
fn test_isr_can_expand_only_if_broker_epochs_match() {
    // testIsrCanExpandedIfBrokerEpochsMatchWithKraftMetadataCache: a fetch carrying an
    // epoch newer than the image's (the image is behind) is stored but not eligible.
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER], &b);
    let out = p
        .update_follower_fetch_state(
            FollowerFetch {
                replica_id: F1,
                fetch_offset: 10,
                log_start_offset: 0,
                fetch_time_ms: T0,
                broker_epoch: epoch_of(F1) + 5,
            },
            &b,
        )
        .unwrap();
    assert_eq!(out.alter_partition, None);
    let sent = fetch_at(&mut p, &b, F1, 10, T0 + 1)
        .alter_partition
        .unwrap();
    assert_eq!(
        sent.new_isr,
        vec![
            IsrBrokerState {
                broker_id: LEADER,
                broker_epoch: epoch_of(LEADER)
            },
            IsrBrokerState {
                broker_id: F1,
                broker_epoch: epoch_of(F1)
            }
        ]
    );
}

#[test]
fn test_high_watermark_increases_with_fenced_or_shutdown_follower() {
    for state in ["fenced", "shutdown", "unfenced"] {
        let mut b = brokers();
        let mut p = leader(1, &[LEADER, F1], &[LEADER, F1], &b);
        fetch_at(&mut p, &b, F1, 10, T0);
        assert_eq!(p.high_watermark(), 10);
        let status = b.get_mut(&F1).unwrap();
        match state {
            "fenced" => status.fenced = true,
            "shutdown" => status.in_controlled_shutdown = true,
            _ => {}
        }
        // The ISR still holds F1 when the leader appends: the high watermark waits.
        assert!(!p.on_leader_append(20, T0, &b));
        p.update_leadership(&leadership(5, 2, &[LEADER, F1], &[LEADER]), T0, &b)
            .unwrap();
        assert!(p.out_of_sync_replicas(T0).is_empty());
        // A caught-up, eligible follower outside the ISR still holds the high watermark
        // back (so it can ever rejoin); a fenced or shutting-down one does not.
        let expected = if state == "unfenced" { 10 } else { 20 };
        assert_eq!(p.high_watermark(), expected, "{state}");
    }
}

#[test]
fn test_update_follower_fetch_state_moves_the_low_watermark() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1], &[LEADER, F1], &b);
    p.on_log_start_offset(4);
    assert_eq!(p.low_watermark(&b), -1, "follower start unknown");
    let out = p
        .update_follower_fetch_state(
            FollowerFetch {
                replica_id: F1,
                fetch_offset: 10,
                log_start_offset: 2,
                fetch_time_ms: T0,
                broker_epoch: epoch_of(F1),
            },
            &b,
        )
        .unwrap();
    assert!(out.low_watermark_advanced);
    assert!(out.high_watermark_advanced);
    assert_eq!(p.low_watermark(&b), 2);
    // A fenced follower no longer holds it.
    let mut fenced = b.clone();
    fenced.get_mut(&F1).unwrap().fenced = true;
    assert_eq!(p.low_watermark(&fenced), 4);
}

#[test]
fn test_is_under_min_isr_and_at_min_isr() {
    let b = brokers();
    let p = leader(2, &[LEADER, F1, F2], &[LEADER], &b);
    assert!(p.is_under_min_isr());
    let p = leader(2, &[LEADER, F1, F2], &[LEADER, F1], &b);
    assert!(p.is_at_min_isr() && !p.is_under_min_isr());
    // min.insync.replicas above the replication factor is capped by it.
    let p = leader(5, &[LEADER, F1], &[LEADER, F1], &b);
    assert_eq!(p.effective_min_isr(), 2);
    assert!(!p.is_under_min_isr());
}

#[test]
fn acks_all_refused_before_append_when_under_min_isr() {
    let b = brokers();
    let p = leader(2, &[LEADER, F1, F2], &[LEADER], &b);
    let err = p.check_append(-1).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::NotEnoughReplicas);
    assert_eq!(err.min_isr, 2);
    assert_eq!(p.check_append(1), Ok(()));
    assert_eq!(p.check_append(0), Ok(()));
}

#[test]
fn acks_all_waits_for_every_isr_member_then_completes() {
    let b = brokers();
    let mut p = leader(2, &[LEADER, F1, F2], &[LEADER, F1, F2], &b);
    p.on_leader_append(15, T0, &b);
    assert_eq!(p.check_enough_replicas_reach_offset(15), AcksDecision::Wait);
    fetch_at(&mut p, &b, F1, 15, T0);
    assert_eq!(p.check_enough_replicas_reach_offset(15), AcksDecision::Wait);
    fetch_at(&mut p, &b, F2, 15, T0);
    assert_eq!(
        p.check_enough_replicas_reach_offset(15),
        AcksDecision::Complete
    );
}

#[test]
fn acks_all_after_append_shrink_is_not_enough_replicas_after_append() {
    let b = brokers();
    let mut p = leader(2, &[LEADER, F1, F2], &[LEADER, F1], &b);
    fetch_at(&mut p, &b, F1, 10, T0);
    p.on_leader_append(15, T0, &b);
    assert_eq!(p.check_enough_replicas_reach_offset(15), AcksDecision::Wait);
    // F1 stops fetching; the ISR shrinks to the leader alone (which, at min ISR 2, also
    // stops the high watermark; the controller's answer with ISR {leader} arrives).
    let sent = p.maybe_shrink_isr(T0 + LAG + 1).unwrap();
    let answer = committed(&p, &[LEADER]);
    p.handle_alter_partition_response(&sent, Ok(answer), T0 + LAG + 1, &b);
    assert_eq!(p.high_watermark(), 10, "under min ISR: frozen");
    assert_eq!(p.check_enough_replicas_reach_offset(15), AcksDecision::Wait);
    // Lowering min.insync.replicas lets the HW move; an offset already covered by the
    // HW while the ISR is below min is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND.
    assert_eq!(
        p.check_enough_replicas_reach_offset(10),
        AcksDecision::NotEnoughReplicasAfterAppend
    );
    assert_eq!(
        AcksDecision::NotEnoughReplicasAfterAppend.error_code(),
        Some(ErrorCode::NotEnoughReplicasAfterAppend)
    );
    p.set_min_insync_replicas(1);
    assert!(p.on_leader_append(15, T0 + LAG + 2, &b));
    assert_eq!(
        p.check_enough_replicas_reach_offset(15),
        AcksDecision::Complete
    );
}

#[test]
fn pending_expansion_counts_for_acks_pending_shrink_does_not_release() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1, F2], &[LEADER, F1], &b);
    fetch_at(&mut p, &b, F1, 10, T0);
    assert_eq!(
        p.high_watermark(),
        10,
        "F2 is outside the ISR and not caught up"
    );
    let sent = fetch_at(&mut p, &b, F2, 10, T0).alter_partition.unwrap();
    p.on_leader_append(12, T0, &b);
    fetch_at(&mut p, &b, F1, 12, T0);
    // F2 is in the maximal ISR (pending expansion): acks=all waits for it.
    assert_eq!(p.check_enough_replicas_reach_offset(12), AcksDecision::Wait);
    let answer = committed(&p, &[LEADER, F1, F2]);
    p.handle_alter_partition_response(&sent, Ok(answer), T0, &b);
    assert_eq!(p.check_enough_replicas_reach_offset(12), AcksDecision::Wait);
    // Pending shrink of F2: still waited for.
    let shrink = p.maybe_shrink_isr(T0 + LAG + 1).unwrap();
    assert_eq!(shrink.isr_ids(), set(&[LEADER, F1]));
    fetch_at(&mut p, &b, F1, 12, T0 + LAG + 1);
    assert_eq!(p.check_enough_replicas_reach_offset(12), AcksDecision::Wait);
    let answer = committed(&p, &[LEADER, F1]);
    p.handle_alter_partition_response(&shrink, Ok(answer), T0 + LAG + 1, &b);
    assert_eq!(
        p.check_enough_replicas_reach_offset(12),
        AcksDecision::Complete
    );
}

#[test]
fn new_leader_epoch_resets_followers_and_moves_the_epoch_start() {
    let b = brokers();
    let mut p = leader(1, &[LEADER, F1, F2], &[LEADER, F1], &b);
    fetch_at(&mut p, &b, F1, 10, T0);
    p.on_leader_append(20, T0, &b);
    p.update_leadership(
        &leadership(6, 2, &[LEADER, F1, F2], &[LEADER, F1]),
        T0 + 5,
        &b,
    )
    .unwrap();
    assert_eq!(p.leader_epoch(), 6);
    assert_eq!(p.leader_epoch_start_offset(), 20);
    let f1 = p.replica(F1).unwrap();
    assert_eq!(
        f1.log_end_offset, 10,
        "re-elected leader keeps what it knew"
    );
    assert_eq!(f1.last_caught_up_time_ms, T0 + 5);
    assert_eq!(p.replica(F2).unwrap().last_caught_up_time_ms, 0);
    // Removing a replica forgets it.
    p.update_leadership(&leadership(6, 3, &[LEADER, F1], &[LEADER, F1]), T0 + 5, &b)
        .unwrap();
    assert!(p.replica(F2).is_none());
}
