use std::collections::BTreeMap;
use std::sync::Arc;

use arus_records::{BatchBuilder, Compression};

use super::*;
use crate::BrokerConfig;
use crate::log_dirs::LogDirs;
use crate::topic_settings::TopicSettings;

fn open(dir: &std::path::Path, role: LocalRole) -> Partition {
    let dirs = LogDirs::new(&[dir.to_path_buf()], dir).unwrap();
    let settings = Arc::new(TopicSettings::resolve(
        &BrokerConfig::default(),
        BTreeMap::new(),
    ));
    Partition::open_as("t", 0, dirs.all()[0].clone(), settings, role, 0).unwrap()
}

fn batch(records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None, 1_000);
    for i in 0..records {
        b.push(1_000, None, Some(format!("v{i}").as_bytes()), &[]);
    }
    b.build().unwrap().to_vec()
}

const FOLLOWER: LocalRole = LocalRole::Follower {
    leader: 1,
    epoch: 0,
};

/// A leader with `batches` appended, and every byte of its log.
fn leader_with(dir: &std::path::Path, batches: &[usize]) -> (Partition, Vec<u8>) {
    let leader = open(dir, LocalRole::Leader { epoch: 0 });
    for &n in batches {
        leader.append(&mut batch(n), n as u64, 0).unwrap();
    }
    let bytes = leader.read(0, 1 << 20, i64::MAX).unwrap().bytes.to_vec();
    (leader, bytes)
}

#[test]
fn a_follower_appends_the_leaders_batches_and_takes_its_high_watermark() {
    let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, bytes) = leader_with(l.path(), &[2, 3]);
    let follower = open(f.path(), FOLLOWER);
    assert_eq!(
        follower.follower_log_state(),
        FollowerLogState {
            log_start_offset: 0,
            log_end_offset: 0,
            high_watermark: 0,
            latest_epoch: None,
        }
    );
    let info = follower.append_as_follower(&bytes, 0, 5).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 4));
    assert_eq!(follower.log_end_offset(), 5);
    // A follower's high watermark is the leader's word, not its own log end.
    assert_eq!(follower.high_watermark(), 0);
    assert_eq!(follower.unflushed_records.load(Ordering::Relaxed), 5);
    assert_eq!(follower.latest_epoch(), Some(0));
    assert_eq!(
        follower.read(0, 1 << 20, i64::MAX).unwrap().bytes.to_vec(),
        bytes,
        "the leader's bytes, unchanged"
    );

    follower.update_from_leader(3, 0, 0).unwrap();
    assert_eq!(follower.high_watermark(), 3);
    // Never past the local log end.
    follower.update_from_leader(9, 0, 0).unwrap();
    assert_eq!(follower.high_watermark(), 5);
    assert_eq!(leader.log_end_offset(), 5);
}

#[test]
fn a_step_of_another_epoch_or_role_is_refused_without_writing() {
    let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_leader, bytes) = leader_with(l.path(), &[2]);
    let follower = open(f.path(), FOLLOWER);
    follower.become_follower(1, 2).unwrap();
    let refused = follower.append_as_follower(&bytes, 0, 0);
    assert!(
        matches!(refused, Err(FollowerError::NotFollower { expected: 0, .. })),
        "{refused:?}"
    );
    follower.become_leader(3).unwrap();
    assert!(follower.append_as_follower(&bytes, 2, 0).is_err());
    assert!(follower.truncate_as_follower(0, false, 2).is_err());
    assert!(follower.update_from_leader(0, 0, 2).is_err());
    assert_eq!(follower.log_end_offset(), 0);
}

#[test]
fn truncation_caps_the_high_watermark_and_a_full_one_restarts_the_log() {
    let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_leader, bytes) = leader_with(l.path(), &[2, 3]);
    let follower = open(f.path(), FOLLOWER);
    follower.append_as_follower(&bytes, 0, 0).unwrap();
    follower.update_from_leader(5, 0, 0).unwrap();
    assert_eq!(follower.high_watermark(), 5);

    // Offset 3 is inside the second batch (2..=4): the whole batch goes.
    follower.truncate_as_follower(3, false, 0).unwrap();
    assert_eq!(follower.log_end_offset(), 2);
    assert_eq!(follower.high_watermark(), 2);

    follower.truncate_as_follower(10, true, 0).unwrap();
    assert_eq!(
        follower.follower_log_state(),
        FollowerLogState {
            log_start_offset: 10,
            log_end_offset: 10,
            high_watermark: 10,
            latest_epoch: None,
        }
    );
}

#[test]
fn truncation_offset_comes_from_the_local_epoch_cache() {
    let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_leader, bytes) = leader_with(l.path(), &[2, 3]);
    let follower = open(f.path(), FOLLOWER);
    follower.append_as_follower(&bytes, 0, 0).unwrap();
    // The leader says epoch 0 ended at 4: the follower's epoch 0 ran to 5, so cut at 4.
    assert_eq!(
        follower.follower_truncation(0, 4, 5),
        TruncationDecision {
            offset: 4,
            truncation_completed: true,
        }
    );
}

#[test]
fn records_are_counted_from_the_batch_headers() {
    let mut bytes = batch(2);
    bytes.extend(batch(3));
    assert_eq!(count_records(&bytes), 5);
    assert_eq!(count_records(&[]), 0);
    // A torn tail adds nothing.
    assert_eq!(
        count_records(&bytes[..bytes.len() - 1 - batch(3).len() + 10]),
        2
    );
}
