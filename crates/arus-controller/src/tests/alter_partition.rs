//! AlterPartition: ISR changes by the leader, with Kafka's epoch checks.

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use arus_protocol::messages::{AlterPartitionRequest, ElectLeadersRequest};

use super::*;

pub fn alter_req(h: &Harness, topic: &str, partition: i32, isr: &[i32]) -> AlterPartitionRequest {
    let p = h.partition(topic, partition);
    AlterPartitionRequest {
        broker_id: p.leader,
        broker_epoch: h.c.state().brokers[&p.leader].epoch,
        topics: vec![TopicData {
            topic_id: h.c.state().topic_ids[topic],
            partitions: vec![PartitionData {
                partition_index: partition,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr_with_epochs: isr
                    .iter()
                    .map(|&b| BrokerState {
                        broker_id: b,
                        broker_epoch: h.c.state().brokers.get(&b).map_or(-1, |r| r.epoch),
                    })
                    .collect(),
                leader_recovery_state: p.leader_recovery_state,
                ..Default::default()
            }],
        }],
    }
}

fn code(out: &Outcome<arus_protocol::messages::AlterPartitionResponse>) -> i16 {
    out.response.topics[0].partitions[0].error_code
}

#[test]
fn a_returning_replica_rejoins_the_isr_and_preferred_leadership_comes_back() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 1, 3).unwrap();
    let p = h.partition("t", 0);
    let preferred = p.replicas[0];
    let others: Vec<i32> = p.replicas[1..].to_vec();
    h.advance(10_000, &others);
    assert_ne!(h.partition("t", 0).leader, preferred);
    // Back: unfenced, then the leader (once the follower caught up) expands the ISR.
    h.heartbeat(preferred, false);
    let req = alter_req(&h, "t", 0, &p.replicas);
    let out = h.c.alter_partition(&req, 3).unwrap();
    assert_eq!(code(&out), 0);
    assert_eq!(out.records.len(), 1);
    h.apply(&out.records);
    let r = &out.response.topics[0].partitions[0];
    let now = h.partition("t", 0);
    assert_eq!(
        (r.isr.clone(), r.partition_epoch, r.leader_epoch),
        (now.isr.clone(), now.partition_epoch, now.leader_epoch)
    );
    assert_eq!(now.isr.len(), 3);
    let out =
        h.c.elect_leaders(&ElectLeadersRequest {
            election_type: 0,
            topic_partitions: None,
            ..Default::default()
        })
        .unwrap();
    h.apply(&out.records);
    assert_eq!(h.partition("t", 0).leader, preferred);
    h.check_invariants();
}

#[test]
fn stale_or_invalid_changes_are_refused_with_kafkas_codes() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 1, 3).unwrap();
    let p = h.partition("t", 0);
    let base = alter_req(&h, "t", 0, &p.replicas[..2]);
    let check = |h: &mut Harness, req: &AlterPartitionRequest, want: ErrorCode| {
        let out = h.c.alter_partition(req, 3).unwrap();
        assert!(out.records.is_empty());
        assert_eq!(code(&out), want.code(), "{req:?}");
    };
    let mut r = base.clone();
    r.topics[0].partitions[0].leader_epoch += 1;
    check(&mut h, &r, ErrorCode::NotController);
    let mut r = base.clone();
    r.topics[0].partitions[0].partition_epoch += 1;
    check(&mut h, &r, ErrorCode::NotController);
    // A leader-epoch bump (the leader moved and came back) makes the old request stale.
    let mut r = base.clone();
    r.topics[0].partitions[0].leader_epoch -= 1;
    check(&mut h, &r, ErrorCode::FencedLeaderEpoch);
    let mut r = base.clone();
    r.broker_id = p.replicas[1];
    r.broker_epoch = h.epochs[&p.replicas[1]];
    check(&mut h, &r, ErrorCode::InvalidRequest);
    let mut r = base.clone();
    r.topics[0].partitions[0]
        .new_isr_with_epochs
        .retain(|b| b.broker_id != p.leader);
    check(&mut h, &r, ErrorCode::InvalidRequest);
    let mut r = base.clone();
    r.topics[0].partitions[0]
        .new_isr_with_epochs
        .push(BrokerState {
            broker_id: 9,
            broker_epoch: 0,
        });
    check(&mut h, &r, ErrorCode::InvalidRequest);
    let mut r = base.clone();
    r.topics[0].partitions[0].new_isr_with_epochs[1].broker_epoch += 5;
    check(&mut h, &r, ErrorCode::IneligibleReplica);
    let mut r = base.clone();
    r.topics[0].topic_id = Uuid([3; 16]);
    check(&mut h, &r, ErrorCode::UnknownTopicId);
    let mut r = base.clone();
    r.topics[0].partitions[0].partition_index = 4;
    check(&mut h, &r, ErrorCode::UnknownTopicOrPartition);
    let mut r = base.clone();
    r.broker_epoch += 1;
    assert_eq!(
        h.c.alter_partition(&r, 3).unwrap_err().code,
        ErrorCode::StaleBrokerEpoch
    );
    // The valid shrink goes through; replaying it makes the same request stale.
    let out = h.c.alter_partition(&base, 3).unwrap();
    assert_eq!(code(&out), 0);
    h.apply(&out.records);
    check(&mut h, &base, ErrorCode::InvalidUpdateVersion);
    // A fenced broker cannot be added back.
    let third = p.replicas[2];
    h.advance(10_000, &p.replicas[..2]);
    assert!(h.c.state().brokers[&third].fenced);
    let req = alter_req(&h, "t", 0, &p.replicas);
    check(&mut h, &req, ErrorCode::IneligibleReplica);
    h.check_invariants();
}
