use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arus_protocol::Uuid;
use arus_replication::{
    AcksDecision, BrokerStatus, FetchStateError, FollowerFetch, LeaderConfig, Leadership,
};

use crate::broker_config::BrokerConfig;
use crate::log_dirs::LogDirs;
use crate::partition::Partition;
use crate::partition::role::LocalRole;
use crate::topics::TopicRegistry;
use crate::topics::driven::TopicSpec;

/// A partition of a driven registry in `dir`, opened with `role`.
fn partition(dir: &Path, role: LocalRole) -> (TopicRegistry, Arc<Partition>) {
    let props = BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())]);
    let config = Arc::new(BrokerConfig::from_properties(props).unwrap());
    let log_dirs = LogDirs::new(&config.log_dirs, &config.log_dir).unwrap();
    let registry = TopicRegistry::open_driven(config, log_dirs, "cluster-1".into()).unwrap();
    registry
        .apply(&[TopicSpec {
            name: "t".into(),
            id: Uuid([7; 16]),
            partition_count: 1,
            local: BTreeMap::from([(0, role)]),
            configs: BTreeMap::new(),
        }])
        .unwrap();
    let p = registry.get("t").unwrap().partition(0).unwrap();
    (registry, p)
}

fn append(p: &Partition, records: usize) -> i64 {
    let mut b = arus_records::BatchBuilder::new(arus_records::Compression::None, 0);
    for _ in 0..records {
        b.push(0, Some(b"k"), Some(b"v"), &[]);
    }
    p.append(&mut b.build().unwrap().to_vec(), records as u64, 0)
        .unwrap()
        .last_offset
        + 1
}

fn brokers() -> BTreeMap<i32, BrokerStatus> {
    (1..=3)
        .map(|id| {
            (
                id,
                BrokerStatus {
                    broker_epoch: 10 + i64::from(id),
                    fenced: false,
                    in_controlled_shutdown: false,
                },
            )
        })
        .collect()
}

fn config(min_isr: usize) -> LeaderConfig {
    LeaderConfig {
        local_broker_id: 1,
        local_broker_epoch: 11,
        replica_lag_time_max_ms: 30_000,
        min_insync_replicas: min_isr,
    }
}

fn leadership(isr: &[i32]) -> Leadership {
    Leadership {
        leader_epoch: 1,
        partition_epoch: 1,
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
    }
}

fn fetched(replica: i32, offset: i64, now: i64) -> FollowerFetch {
    FollowerFetch {
        replica_id: replica,
        fetch_offset: offset,
        log_start_offset: 0,
        fetch_time_ms: now,
        broker_epoch: 10 + i64::from(replica),
    }
}

#[test]
fn a_solo_leader_moves_its_high_watermark_with_each_append() {
    let dir = tempfile::tempdir().unwrap();
    let (_r, p) = partition(dir.path(), LocalRole::Leader { epoch: 0 });
    let end = append(&p, 3);
    assert_eq!(p.high_watermark(), end);
    assert_eq!(p.acks_all_decision(end), AcksDecision::Complete);
}

#[test]
fn with_followers_the_high_watermark_waits_for_every_isr_member() {
    let dir = tempfile::tempdir().unwrap();
    let (_r, p) = partition(dir.path(), LocalRole::Leader { epoch: 1 });
    p.set_leadership(config(1), &leadership(&[1, 2, 3]), brokers(), 1_000);
    let end = append(&p, 2);
    assert_eq!(p.log_end_offset(), end);
    assert_eq!(p.high_watermark(), 0, "no follower has the records yet");
    assert_eq!(p.acks_all_decision(end), AcksDecision::Wait);

    let first = p.record_follower_fetch(fetched(2, end, 1_010)).unwrap();
    assert!(
        !first.high_watermark_advanced,
        "replica 3 has not fetched them"
    );
    assert_eq!(p.high_watermark(), 0);
    let second = p.record_follower_fetch(fetched(3, end, 1_020)).unwrap();
    assert!(second.high_watermark_advanced);
    assert_eq!(p.high_watermark(), end);
    assert_eq!(p.acks_all_decision(end), AcksDecision::Complete);
}

#[test]
fn acks_all_is_refused_below_min_insync_replicas_and_the_high_watermark_stands_still() {
    let dir = tempfile::tempdir().unwrap();
    let (_r, p) = partition(dir.path(), LocalRole::Leader { epoch: 1 });
    p.set_leadership(config(2), &leadership(&[1]), brokers(), 1_000);
    let refused = p.check_enough_replicas(-1).unwrap_err();
    assert_eq!(refused.min_isr, 2);
    assert!(p.check_enough_replicas(1).is_ok(), "acks=1 is not refused");
    append(&p, 1);
    assert_eq!(p.high_watermark(), 0, "KIP-966: no progress under min ISR");
}

#[test]
fn a_follower_that_is_not_a_replica_or_has_an_old_broker_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_r, p) = partition(dir.path(), LocalRole::Leader { epoch: 1 });
    p.set_leadership(config(1), &leadership(&[1, 2, 3]), brokers(), 1_000);
    assert!(matches!(
        p.record_follower_fetch(fetched(4, 0, 1_000)),
        Err(FetchStateError::UnknownReplica { replica_id: 4 })
    ));
    let mut stale = fetched(2, 0, 1_000);
    stale.broker_epoch = 5;
    assert!(matches!(
        p.record_follower_fetch(stale),
        Err(FetchStateError::StaleBrokerEpoch { .. })
    ));
}

#[test]
fn a_promoted_follower_counts_nothing_as_replicated_until_it_has_the_isr() {
    let dir = tempfile::tempdir().unwrap();
    let (_r, p) = partition(
        dir.path(),
        LocalRole::Follower {
            leader: 2,
            epoch: 0,
        },
    );
    p.change_role(LocalRole::Leader { epoch: 1 }).unwrap();
    let end = append(&p, 1);
    assert_eq!(p.high_watermark(), 0);
    assert_eq!(p.acks_all_decision(end), AcksDecision::Wait);
    // The leadership arrives: a lagging ISR member holds the high watermark back.
    p.set_leadership(config(1), &leadership(&[1, 2]), brokers(), 1_000);
    assert_eq!(p.high_watermark(), 0);
    p.record_follower_fetch(fetched(2, end, 1_001)).unwrap();
    assert_eq!(p.high_watermark(), end);
}

#[test]
fn a_lagging_follower_is_proposed_out_of_the_isr_after_the_lag_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_r, p) = partition(dir.path(), LocalRole::Leader { epoch: 1 });
    p.set_leadership(config(1), &leadership(&[1, 2, 3]), brokers(), 1_000);
    let end = append(&p, 1);
    p.record_follower_fetch(fetched(2, end, 2_000)).unwrap();
    assert!(p.maybe_shrink_isr(2_000).is_none(), "nobody lags yet");
    // Replica 3 never fetched: out of sync 30 s after the leadership began.
    let proposal = p.maybe_shrink_isr(31_001).expect("a shrink");
    assert_eq!(proposal.isr_ids(), [1, 2].into());
    assert_eq!(proposal.partition_epoch, 1);
}
