//! Leadership on fencing, unfencing, restarts, and ElectLeaders.

use arus_protocol::ErrorCode;
use arus_protocol::messages::ElectLeadersRequest;
use arus_protocol::messages::elect_leaders_request::TopicPartitions;

use super::*;

#[test]
fn fencing_moves_leadership_to_another_isr_member_and_bumps_the_epoch() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 3, 3).unwrap();
    let before: Vec<PartitionInfo> = (0..3).map(|p| h.partition("t", p)).collect();
    h.advance(10_000, &[0, 2]);
    assert!(h.c.state().brokers[&1].fenced);
    for (p, b) in before.iter().enumerate() {
        let now = h.partition("t", p as i32);
        assert!(!now.isr.contains(&1), "broker 1 left the ISR of {p}");
        if b.leader == 1 {
            assert!(now.leader == 0 || now.leader == 2);
            assert_eq!(now.leader_epoch, b.leader_epoch + 1);
            // The new leader is the first live replica in replica order.
            let expected = *b.replicas.iter().find(|&&r| r != 1).unwrap();
            assert_eq!(now.leader, expected);
        } else {
            assert_eq!(now.leader, b.leader);
        }
    }
    h.check_invariants();
    // Back: unfencing does not move leadership of led partitions, and a preferred election
    // cannot choose broker 1 while it is outside the ISR (Kafka answers
    // PREFERRED_LEADER_NOT_AVAILABLE until AlterPartition puts it back).
    h.heartbeat(1, false);
    assert!(!h.c.state().brokers[&1].fenced);
    let moved = before.iter().position(|b| b.leader == 1).unwrap() as i32;
    let out =
        h.c.elect_leaders(&ElectLeadersRequest {
            election_type: 0,
            topic_partitions: Some(vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![moved],
            }]),
            ..Default::default()
        })
        .unwrap();
    assert!(out.records.is_empty());
    let err = out.response[0].1[0].1.clone().unwrap_err();
    assert_eq!(err.code, ErrorCode::PreferredLeaderNotAvailable);
}

#[test]
fn preferred_election_moves_leadership_back_when_the_preferred_replica_is_in_the_isr() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 1, 3).unwrap();
    let p = h.partition("t", 0);
    let preferred = p.replicas[0];
    let others: Vec<i32> = p.replicas[1..].to_vec();
    // Controlled shutdown of the preferred leader moves leadership away and shrinks the ISR.
    assert!(h.heartbeat(preferred, true).in_controlled_shutdown);
    assert_ne!(h.partition("t", 0).leader, preferred);
    for &o in &others {
        h.heartbeat(o, false);
    }
    assert!(h.heartbeat(preferred, true).should_shut_down);
    // It restarts (a clean shutdown: it presents its previous epoch). Kafka 4.4 refuses the
    // new incarnation while the old one's session is still live.
    let generation = h.incarnations[&preferred] + 1;
    let req = h.registration(preferred, None, generation);
    let e = h.c.register_broker(&req, h.next_offset, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::DuplicateBrokerRegistration);
    h.advance(10_000, &others);
    let generation = h.incarnations[&preferred] + 1;
    let req = h.registration(preferred, None, generation);
    let out = h.c.register_broker(&req, h.next_offset, h.now).unwrap();
    h.apply(&out.records);
    h.epochs.insert(preferred, out.response);
    h.incarnations.insert(preferred, generation);
    assert!(!h.heartbeat(preferred, false).is_fenced);
    // Not in the ISR yet: no preferred election possible.
    let all = ElectLeadersRequest {
        election_type: 0,
        topic_partitions: None,
        ..Default::default()
    };
    let out = h.c.elect_leaders(&all).unwrap();
    assert!(out.records.is_empty());
    assert_eq!(
        out.response[0].1[0].1.clone().unwrap_err().code,
        ErrorCode::PreferredLeaderNotAvailable
    );
    // AlterPartition (by the leader, once it caught up) puts it back into the ISR.
    let topic_id = h.c.state().topic_ids["t"];
    h.apply(&[MetadataRecord::PartitionChange(
        arus_protocol::metadata::PartitionChangeRecord {
            topic_id,
            partition_id: 0,
            isr: Some(p.replicas.clone()),
            ..Default::default()
        },
    )]);
    let before = h.partition("t", 0);
    let out = h.c.elect_leaders(&all).unwrap();
    assert_eq!(out.records.len(), 1);
    h.apply(&out.records);
    let after = h.partition("t", 0);
    assert_eq!(after.leader, preferred);
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    // Again: ELECTION_NOT_NEEDED, which the all-partitions form leaves out.
    let out = h.c.elect_leaders(&all).unwrap();
    assert!(out.response[0].1.is_empty());
    let out =
        h.c.elect_leaders(&ElectLeadersRequest {
            election_type: 0,
            topic_partitions: Some(vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 7],
            }]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        out.response[0].1[0].1.clone().unwrap_err().code,
        ErrorCode::ElectionNotNeeded
    );
    let e = out.response[0].1[1].1.clone().unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownTopicOrPartition);
    assert_eq!(e.message.as_deref(), Some("No such partition as t-7"));
    h.check_invariants();
}

fn rf1_offline_then_online(elr: bool, restart: bool) {
    let mut h = Harness::new(elr);
    h.brokers(&[None, None, None]);
    h.create("t", 3, 1).unwrap();
    let p = (0..3).find(|&p| h.partition("t", p).leader == 2).unwrap();
    // SIGKILL of broker 2: fenced after the session timeout, its partition goes offline.
    h.advance(10_000, &[0, 1]);
    let off = h.partition("t", p);
    assert_eq!(off.leader, -1, "offline");
    if elr {
        assert!(off.isr.is_empty());
        assert_eq!(off.elr, vec![2]);
        assert_eq!(off.last_known_elr, vec![2]);
    } else {
        assert_eq!(off.isr, vec![2], "without ELR the last ISR member stays");
    }
    h.check_invariants();
    if restart {
        // It comes back as a new incarnation (a restart after a crash).
        h.register(2, None).unwrap();
        assert_eq!(h.partition("t", p).leader, -1);
        h.check_invariants();
    }
    h.heartbeat(2, false);
    let on = h.partition("t", p);
    assert_eq!(on.leader, 2, "online again");
    assert_eq!(on.isr, vec![2]);
    assert!(on.leader_epoch > off.leader_epoch);
    h.check_invariants();
}

#[test]
fn rf1_partition_is_offline_while_its_broker_is_fenced_and_online_after_with_elr() {
    rf1_offline_then_online(true, false);
}

#[test]
fn rf1_partition_comes_back_after_a_restart_with_elr() {
    rf1_offline_then_online(true, true);
}

#[test]
fn rf1_partition_comes_back_without_elr() {
    rf1_offline_then_online(false, false);
    rf1_offline_then_online(false, true);
}

#[test]
fn unknown_election_type_is_invalid_request() {
    let mut h = Harness::new(true);
    let e =
        h.c.elect_leaders(&ElectLeadersRequest {
            election_type: 5,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert_eq!(e.message.as_deref(), Some("Unknown election type 5"));
}

#[test]
fn unclean_election_of_a_partition_with_a_leader_is_not_needed() {
    let mut h = Harness::new(false);
    h.brokers(&[None]);
    h.create("t", 1, 1).unwrap();
    let out =
        h.c.elect_leaders(&ElectLeadersRequest {
            election_type: 1,
            topic_partitions: Some(vec![TopicPartitions {
                topic: "nope".into(),
                partitions: vec![0],
            }]),
            ..Default::default()
        })
        .unwrap();
    let e = out.response[0].1[0].1.clone().unwrap_err();
    assert_eq!(e.message.as_deref(), Some("No such topic as nope"));
}

#[test]
fn the_balance_task_moves_leadership_back_to_preferred_replicas() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 3, 3).unwrap();
    assert!(
        h.c.balance_partition_leaders().records.is_empty(),
        "balanced after creation"
    );
    h.heartbeat(0, true);
    h.heartbeat(1, false);
    h.heartbeat(2, false);
    assert!(h.heartbeat(0, true).should_shut_down);
    // While broker 0 is away, partitions it preferred are led elsewhere; none can move back.
    assert!(h.c.balance_partition_leaders().records.is_empty());
    h.advance(10_000, &[1, 2]);
    h.register(0, None).unwrap();
    h.heartbeat(0, false);
    for p in 0..3 {
        let part = h.partition("t", p);
        let req = super::alter_partition::alter_req(&h, "t", p, &part.replicas);
        let out = h.c.alter_partition(&req, 3).unwrap();
        h.apply(&out.records);
    }
    let out = h.c.balance_partition_leaders();
    assert!(!out.records.is_empty() && !out.response);
    h.apply(&out.records);
    for p in 0..3 {
        let part = h.partition("t", p);
        assert_eq!(part.leader, part.replicas[0]);
    }
    h.check_invariants();
}

#[test]
fn the_unclean_task_only_touches_topics_that_allow_it() {
    let mut h = Harness::new(false);
    h.brokers(&[None, None]);
    h.create("t", 1, 2).unwrap();
    let p = h.partition("t", 0);
    let (leader, follower) = (p.replicas[0], p.replicas[1]);
    // The follower leaves the ISR (AlterPartition shrink), then the leader dies.
    let req = super::alter_partition::alter_req(&h, "t", 0, &[leader]);
    let out = h.c.alter_partition(&req, 3).unwrap();
    h.apply(&out.records);
    h.advance(10_000, &[follower]);
    assert_eq!(h.partition("t", 0).leader, -1);
    assert!(h.c.elect_unclean_leaders().records.is_empty());
    let out = h.c.incremental_alter_configs(
        &arus_protocol::messages::IncrementalAlterConfigsRequest {
            resources: vec![arus_protocol::messages::incremental_alter_configs_request::AlterConfigsResource {
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![arus_protocol::messages::incremental_alter_configs_request::AlterableConfig {
                    name: "unclean.leader.election.enable".into(),
                    config_operation: 0,
                    value: Some("true".into()),
                }],
            }],
            validate_only: false,
        },
        &AcceptAllConfigs,
    );
    h.apply(&out.records);
    let out = h.c.elect_unclean_leaders();
    assert_eq!(out.records.len(), 1);
    h.apply(&out.records);
    let after = h.partition("t", 0);
    assert_eq!(after.leader, follower);
    assert_eq!(after.isr, vec![follower]);
    assert_eq!(
        after.leader_recovery_state,
        crate::partition_change::RECOVERING
    );
    h.check_invariants();
}
