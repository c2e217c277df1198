use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arus_protocol::Uuid;

use super::{TopicSpec, Transition};
use crate::broker_config::BrokerConfig;
use crate::log_dirs::LogDirs;
use crate::partition::role::LocalRole;
use crate::topics::{NewTopic, STRAY_DIR_SUFFIX, TopicError, TopicRegistry};

const LEADER: LocalRole = LocalRole::Leader { epoch: 0 };

fn config(dirs: &[&Path]) -> Arc<BrokerConfig> {
    let joined: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let props = BTreeMap::from([
        ("log.dirs".to_string(), joined.join(",")),
        ("num.recovery.threads.per.data.dir".to_string(), "2".into()),
    ]);
    Arc::new(BrokerConfig::from_properties(props).unwrap())
}

fn open(dirs: &[&Path]) -> TopicRegistry {
    let c = config(dirs);
    let log_dirs = LogDirs::new(&c.log_dirs, &c.log_dir).unwrap();
    TopicRegistry::open_driven(c, log_dirs, "cluster-1".into()).unwrap()
}

fn spec(name: &str, id: u8, count: i32, local: &[(i32, LocalRole)]) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        id: Uuid([id; 16]),
        partition_count: count,
        local: local.iter().copied().collect(),
        configs: BTreeMap::new(),
    }
}

fn append(registry: &TopicRegistry, topic: &str, index: i32, batches: usize) {
    let p = registry.get(topic).unwrap().partition(index).unwrap();
    for _ in 0..batches {
        let mut b = arus_records::BatchBuilder::new(arus_records::Compression::None, 0);
        b.push(0, Some(b"k"), Some(b"v"), &[]);
        p.append(&mut b.build().unwrap().to_vec(), 1, 0).unwrap();
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn only_the_partitions_named_local_touch_storage() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(&[dir.path()]);
    let follower = LocalRole::Follower {
        leader: 2,
        epoch: 4,
    };
    let applied = registry
        .apply(&[spec("t", 1, 4, &[(1, LEADER), (3, follower)])])
        .unwrap();
    assert!(applied.failures.is_empty());
    assert_eq!(
        applied
            .changes
            .iter()
            .map(|c| (c.partition, c.change))
            .collect::<Vec<_>>(),
        vec![
            (1, Transition::BecameLeader { epoch: 0 }),
            (
                3,
                Transition::BecameFollower {
                    leader: 2,
                    epoch: 4
                }
            )
        ]
    );
    let t = registry.get("t").unwrap();
    assert_eq!(t.partition_count(), 4);
    assert_eq!(
        t.partitions().iter().map(|p| p.index).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert!(t.partition(0).is_none() && t.has_partition(0));
    assert!(t.partition(4).is_none() && !t.has_partition(4));
    assert!(t.partition(1).unwrap().is_leader());
    let p3 = t.partition(3).unwrap();
    assert!(!p3.is_leader());
    assert_eq!(p3.leader_epoch(), 4);
    assert_eq!(dir_names(dir.path()), vec!["t-1", "t-3"]);
    // No metadata file: the metadata log is the record of topics.
    assert!(!dir.path().join(crate::store::METADATA_FILE).exists());
    // The registry's own topic changes are the controller's in this mode.
    let refused = registry.create(NewTopic {
        name: "u".into(),
        partitions: 1,
        replication_factor: 1,
        configs: BTreeMap::new(),
    });
    assert!(matches!(refused, Err(TopicError::MetadataDriven)));
}

#[test]
fn sync_recovers_named_partitions_and_sets_strays_aside() {
    let dir = tempfile::tempdir().unwrap();
    let specs = vec![
        spec("a", 1, 2, &[(0, LEADER), (1, LEADER)]),
        spec("b", 2, 1, &[(0, LEADER)]),
    ];
    let registry = open(&[dir.path()]);
    registry.sync(&specs).unwrap();
    append(&registry, "a", 0, 3);
    append(&registry, "a", 1, 1);
    append(&registry, "b", 0, 2);
    registry.close_all();
    drop(registry);
    // Since then the metadata moved a-1 elsewhere and deleted b.
    let now = vec![spec("a", 1, 2, &[(0, LEADER)])];
    let registry = open(&[dir.path()]);
    let applied = registry.sync(&now).unwrap();
    assert!(applied.failures.is_empty());
    let a = registry.get("a").unwrap();
    assert_eq!(a.partition(0).unwrap().high_watermark(), 3);
    assert!(a.partition(1).is_none());
    assert!(registry.get("b").is_none());
    let names = dir_names(dir.path());
    assert!(names.contains(&"a-0".to_string()), "{names:?}");
    for stray in ["a-1.", "b-0."] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(stray) && n.ends_with(STRAY_DIR_SUFFIX)),
            "{stray} not set aside: {names:?}"
        );
    }
}

#[test]
fn apply_grows_partitions_changes_roles_and_reresolves_configs() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(&[dir.path()]);
    registry.apply(&[spec("t", 1, 1, &[(0, LEADER)])]).unwrap();
    append(&registry, "t", 0, 2);
    let mut grown = spec(
        "t",
        1,
        3,
        &[
            (
                0,
                LocalRole::Follower {
                    leader: 5,
                    epoch: 1,
                },
            ),
            (2, LocalRole::Leader { epoch: 7 }),
        ],
    );
    grown.configs.insert("retention.ms".into(), "12345".into());
    let applied = registry.apply(std::slice::from_ref(&grown)).unwrap();
    assert!(applied.failures.is_empty());
    let t = registry.get("t").unwrap();
    assert_eq!(t.partition_count(), 3);
    assert_eq!(t.settings().retention_ms, 12345);
    let p0 = t.partition(0).unwrap();
    assert_eq!(p0.settings().retention_ms, 12345);
    assert!(!p0.is_leader());
    assert_eq!(p0.high_watermark(), 2, "a role change keeps the data");
    let p2 = t.partition(2).unwrap();
    assert!(p2.is_leader());
    assert_eq!(p2.leader_epoch(), 7);
    // Appends as leader carry the leader epoch.
    append(&registry, "t", 2, 1);
    let read = p2.read(0, 1 << 20, i64::MAX).unwrap();
    let batch = arus_records::batches(read.bytes).next().unwrap().unwrap();
    assert_eq!(batch.partition_leader_epoch(), 7);
    // Applying the same spec again changes nothing.
    let again = registry.apply(&[grown]).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
}

#[test]
fn remove_deletes_local_data_and_reports_stopped_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(&[dir.path()]);
    registry
        .apply(&[spec("t", 9, 2, &[(0, LEADER), (1, LEADER)])])
        .unwrap();
    append(&registry, "t", 0, 1);
    let t = registry.get("t").unwrap();
    let applied = registry.remove(&[Uuid([9; 16]), Uuid([3; 16])]).unwrap();
    assert_eq!(
        applied
            .changes
            .iter()
            .map(|c| (c.partition, c.change))
            .collect::<Vec<_>>(),
        vec![(0, Transition::Stopped), (1, Transition::Stopped)]
    );
    assert!(registry.get("t").is_none());
    assert_eq!(t.partition_count(), 0);
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn a_recreated_topic_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(&[dir.path()]);
    registry.apply(&[spec("t", 1, 1, &[(0, LEADER)])]).unwrap();
    append(&registry, "t", 0, 4);
    registry.apply(&[spec("t", 2, 1, &[(0, LEADER)])]).unwrap();
    let t = registry.get("t").unwrap();
    assert_eq!(t.id, Uuid([2; 16]));
    assert_eq!(t.partition(0).unwrap().high_watermark(), 0);
    assert!(registry.get_by_id(&Uuid([1; 16])).is_none());
}

#[test]
fn a_failing_log_dir_goes_offline_and_the_rest_is_hosted() {
    let root = tempfile::tempdir().unwrap();
    let (a, b): (PathBuf, PathBuf) = (root.path().join("a"), root.path().join("b"));
    let registry = open(&[&a, &b]);
    // The second disk fails: its directory is no longer one.
    std::fs::remove_dir_all(&b).unwrap();
    std::fs::write(&b, b"").unwrap();
    let applied = registry
        .apply(&[spec(
            "t",
            1,
            3,
            &[(0, LEADER), (1, LEADER), (2, LEADER), (7, LEADER)],
        )])
        .unwrap();
    // Partition 7 does not exist: reported, and the others are hosted regardless.
    assert_eq!(applied.failures.len(), 1, "{:?}", applied.failures);
    assert_eq!(applied.failures[0].partition, 7);
    assert!(!registry.log_dirs().all()[1].is_online());
    assert!(registry.log_dirs().all()[0].is_online());
    assert_eq!(dir_names(&a), vec!["t-0", "t-1", "t-2"]);
}

#[test]
fn the_file_backed_registry_refuses_driven_changes() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&[dir.path()]);
    let dirs = LogDirs::new(&c.log_dirs, &c.log_dir).unwrap();
    let registry = TopicRegistry::open(c, dirs).unwrap();
    assert!(!registry.is_driven());
    assert!(matches!(
        registry.apply(&[spec("t", 1, 1, &[(0, LEADER)])]),
        Err(TopicError::MetadataDriven)
    ));
}

mod prepared {
    use super::*;
    use crate::topics::driven::prepared::PrepareSpec;

    fn prepare_spec(name: &str, id: u8, partitions: &[i32]) -> PrepareSpec {
        PrepareSpec {
            name: name.into(),
            id: Uuid([id; 16]),
            partitions: partitions.iter().map(|&p| (p, LEADER)).collect(),
            configs: Some(BTreeMap::new()),
        }
    }

    #[test]
    fn prepared_partitions_are_hidden_until_the_metadata_adopts_them() {
        let dir = tempfile::tempdir().unwrap();
        let registry = open(&[dir.path()]);
        registry.prepare(&prepare_spec("t", 1, &[0, 1])).unwrap();
        assert_eq!(dir_names(dir.path()), vec!["t-0", "t-1"]);
        assert_eq!(registry.prepared_count(), 2);
        assert!(registry.get("t").is_none(), "clients must not see it yet");

        let applied = registry
            .apply(&[spec("t", 1, 2, &[(0, LEADER), (1, LEADER)])])
            .unwrap();
        assert!(applied.failures.is_empty());
        // Adopted partitions are announced like any new one (the coordinators follow them).
        assert_eq!(
            applied
                .changes
                .iter()
                .map(|c| (c.partition, c.change))
                .collect::<Vec<_>>(),
            vec![
                (0, Transition::BecameLeader { epoch: 0 }),
                (1, Transition::BecameLeader { epoch: 0 })
            ]
        );
        assert_eq!(registry.prepared_count(), 0);
        append(&registry, "t", 1, 2);
        // Settling after the adoption deletes nothing.
        registry.settle_prepared(i64::MAX);
        assert_eq!(dir_names(dir.path()), vec!["t-0", "t-1"]);
    }

    #[test]
    fn a_failed_preparation_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let registry = open(&[dir.path()]);
        // A file where partition 2's directory must go: its creation fails.
        std::fs::write(dir.path().join("t-2"), b"in the way").unwrap();
        let err = registry
            .prepare(&prepare_spec("t", 1, &[0, 1, 2, 3]))
            .unwrap_err();
        assert_eq!(err.code(), arus_protocol::ErrorCode::KafkaStorageError);
        assert_eq!(registry.prepared_count(), 0);
        assert_eq!(dir_names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_batch_that_did_not_commit_is_discarded_and_one_never_applied_is_settled() {
        let dir = tempfile::tempdir().unwrap();
        let registry = open(&[dir.path()]);
        registry.prepare(&prepare_spec("lost", 1, &[0])).unwrap();
        registry.prepare(&prepare_spec("gone", 2, &[0, 1])).unwrap();
        registry.discard_prepared(Uuid([1; 16]));
        assert_eq!(dir_names(dir.path()), vec!["gone-0", "gone-1"]);
        // Committed at offset 7, then deleted before this node applied it: an image at 6
        // does not settle it, the image at 7 (which did not name it) does.
        registry.commit_prepared(Uuid([2; 16]), 7);
        registry.settle_prepared(6);
        assert_eq!(registry.prepared_count(), 2);
        registry.settle_prepared(7);
        assert_eq!(registry.prepared_count(), 0);
        assert_eq!(dir_names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn new_partitions_of_a_hosted_topic_keep_its_settings_and_skip_hosted_ones() {
        let dir = tempfile::tempdir().unwrap();
        let registry = open(&[dir.path()]);
        let mut t = spec("t", 1, 1, &[(0, LEADER)]);
        t.configs = BTreeMap::from([("segment.bytes".to_string(), "1048576".to_string())]);
        registry.apply(&[t]).unwrap();
        let mut grow = prepare_spec("t", 1, &[0, 1]);
        grow.configs = None;
        registry.prepare(&grow).unwrap();
        // Partition 0 is hosted already: only 1 was prepared.
        assert_eq!(registry.prepared_count(), 1);
        let mut t = spec("t", 1, 2, &[(0, LEADER), (1, LEADER)]);
        t.configs = BTreeMap::from([("segment.bytes".to_string(), "1048576".to_string())]);
        registry.apply(&[t]).unwrap();
        let p = registry.get("t").unwrap().partition(1).unwrap();
        assert_eq!(p.settings().segment_bytes, 1048576);
    }
}

#[test]
fn a_name_whose_old_incarnation_is_still_hosted_is_not_prepared() {
    use crate::topics::driven::prepared::PrepareSpec;
    let dir = tempfile::tempdir().unwrap();
    let registry = open(&[dir.path()]);
    registry.apply(&[spec("t", 1, 1, &[(0, LEADER)])]).unwrap();
    append(&registry, "t", 0, 3);
    // Created again under a new id before this node applied the deletion.
    registry
        .prepare(&PrepareSpec {
            name: "t".into(),
            id: Uuid([2; 16]),
            partitions: BTreeMap::from([(0, LEADER)]),
            configs: Some(BTreeMap::new()),
        })
        .unwrap();
    assert_eq!(registry.prepared_count(), 0);
    // The old incarnation's data is untouched until the metadata replaces it.
    let old = registry.get("t").unwrap().partition(0).unwrap();
    assert_eq!(old.log_end_offset(), 3);
    registry.apply(&[spec("t", 2, 1, &[(0, LEADER)])]).unwrap();
    assert_eq!(
        registry
            .get("t")
            .unwrap()
            .partition(0)
            .unwrap()
            .log_end_offset(),
        0
    );
}
