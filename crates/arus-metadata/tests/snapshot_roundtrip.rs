//! Properties over random record sequences (drawn from small pools of ids and names, so
//! that records refer to each other and many of them apply):
//! - a record that fails to replay leaves the delta as it was;
//! - the image's snapshot (`to_records`), framed to bytes and back, replayed onto an empty
//!   image gives an equal image, and loading it onto the image itself reports no change;
//! - replaying a sequence in one delta or split over two gives the same image.

use arus_metadata::{MetadataDelta, MetadataImage, MetadataProvenance, MetadataRecord};
use arus_protocol::Uuid;
use arus_protocol::metadata::client_quota_record::EntityData;
use arus_protocol::metadata::register_broker_record::BrokerEndpoint;
use arus_protocol::metadata::*;
use proptest::prelude::*;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const FEATURES: [&str; 4] = [
    "metadata.version",
    "group.version",
    "transaction.version",
    "kraft.version",
];

fn uuid(i: u8) -> Uuid {
    Uuid([i + 1; 16])
}

fn replicas() -> impl Strategy<Value = Vec<i32>> {
    proptest::sample::subsequence(vec![0, 1, 2, 3, 4], 1..4).prop_shuffle()
}

fn opt_list() -> impl Strategy<Value = Option<Vec<i32>>> {
    proptest::option::of(proptest::collection::vec(0..5i32, 0..3))
}

fn topic_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        // Mostly the id that goes with the name, sometimes another (a re-created topic).
        2 => (0..4usize, prop_oneof![4 => Just(0u8), 1 => Just(4u8)]).prop_map(|(n, shift)| {
            TopicRecord {
                name: NAMES[n].into(),
                topic_id: uuid(n as u8 + shift),
            }
            .into()
        }),
        4 => (0..5u8, 0..3i32, replicas(), 0..3usize, opt_list(), 0..3i32).prop_map(
            |(id, p, replicas, leader, elr, epoch)| PartitionRecord {
                partition_id: p,
                topic_id: uuid(id),
                isr: replicas.clone(),
                leader: replicas.get(leader).copied().unwrap_or(-1),
                leader_epoch: epoch,
                partition_epoch: epoch,
                directories: if leader == 2 {
                    replicas.iter().map(|r| uuid(*r as u8 + 10)).collect()
                } else {
                    vec![]
                },
                replicas,
                eligible_leader_replicas: elr,
                ..Default::default()
            }
            .into()
        ),
        4 => (
            (0..5u8, 0..3i32, -2..5i32, opt_list()),
            (proptest::option::of(replicas()), opt_list(), opt_list(), -1..2i8)
        )
            .prop_map(
                |((id, p, leader, isr), (replicas, elr, lkelr, lrs))| PartitionChangeRecord {
                    partition_id: p,
                    topic_id: uuid(id),
                    isr,
                    leader,
                    replicas,
                    eligible_leader_replicas: elr,
                    last_known_elr: lkelr,
                    leader_recovery_state: lrs,
                    ..Default::default()
                }
                .into()
            ),
        1 => (0..5u8).prop_map(|id| RemoveTopicRecord { topic_id: uuid(id) }.into()),
        1 => (0..5usize).prop_map(|n| ClearElrRecord {
            topic_name: NAMES.get(n).copied().unwrap_or("").into(),
        }
        .into()),
    ]
}

fn cluster_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        (
            0..4i32,
            0..3i64,
            any::<bool>(),
            proptest::option::of(0..2u8)
        )
            .prop_map(|(id, epoch, fenced, rack)| RegisterBrokerRecord {
                broker_id: id,
                broker_epoch: epoch,
                incarnation_id: uuid(id as u8),
                end_points: vec![BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: format!("host{id}"),
                    port: 9092,
                    security_protocol: 0,
                }],
                rack: rack.map(|r| format!("r{r}")),
                fenced,
                log_dirs: vec![uuid(20)],
                ..Default::default()
            }
            .into()),
        (0..4i32).prop_map(|id| UnregisterBrokerRecord {
            broker_id: id,
            broker_epoch: 0,
        }
        .into()),
        (0..4i32, 0..3i64).prop_map(|(id, epoch)| FenceBrokerRecord { id, epoch }.into()),
        (0..4i32, 0..3i64).prop_map(|(id, epoch)| UnfenceBrokerRecord { id, epoch }.into()),
        (0..4i32, 0..3i64, -1..2i8, 0..2i8, any::<bool>()).prop_map(
            |(id, epoch, fenced, ics, dirs)| BrokerRegistrationChangeRecord {
                broker_id: id,
                broker_epoch: epoch,
                fenced,
                in_controlled_shutdown: ics,
                log_dirs: if dirs { vec![uuid(21)] } else { vec![] },
                cordoned_log_dirs: dirs.then(Vec::new),
            }
            .into()
        ),
        (0..2i32).prop_map(|id| RegisterControllerRecord {
            controller_id: 3000 + id,
            incarnation_id: uuid(30),
            ..Default::default()
        }
        .into()),
        (0..2i32).prop_map(|id| UnregisterControllerRecord {
            controller_id: 3000 + id,
        }
        .into()),
        (0..4usize, 0..30i16).prop_map(|(f, level)| FeatureLevelRecord {
            name: FEATURES[f].into(),
            feature_level: level,
        }
        .into()),
    ]
}

fn other_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        (
            prop_oneof![Just(2i8), Just(4i8)],
            0..4usize,
            0..3u8,
            proptest::option::of(0..3u8)
        )
            .prop_map(|(rtype, n, key, value)| ConfigRecord {
                resource_type: rtype,
                resource_name: if rtype == 4 && n == 3 {
                    String::new()
                } else {
                    NAMES[n].into()
                },
                name: format!("key{key}"),
                value: value.map(|v| format!("v{v}")),
            }
            .into()),
        (0..10_000i64).prop_map(|next| ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 0,
            next_producer_id: next,
        }
        .into()),
        (0..2u8, 0..2u8, 0..100i32, any::<bool>()).prop_map(|(e, k, v, remove)| {
            ClientQuotaRecord {
                entity: vec![EntityData {
                    entity_type: "user".into(),
                    entity_name: (e == 0).then(|| "alice".into()),
                }],
                key: format!("quota{k}"),
                value: f64::from(v) / 4.0,
                remove,
            }
            .into()
        }),
        (0..3u8).prop_map(|i| AccessControlEntryRecord {
            id: uuid(40 + i),
            resource_name: "a".into(),
            ..Default::default()
        }
        .into()),
        (0..3u8).prop_map(|i| RemoveAccessControlEntryRecord { id: uuid(40 + i) }.into()),
        (0..2u8, 1..3i8).prop_map(|(n, m)| UserScramCredentialRecord {
            name: NAMES[n as usize].into(),
            mechanism: m,
            iterations: 4096,
            ..Default::default()
        }
        .into()),
        (0..2u8, 1..3i8).prop_map(|(n, m)| RemoveUserScramCredentialRecord {
            name: NAMES[n as usize].into(),
            mechanism: m,
        }
        .into()),
        (0..2u8).prop_map(|t| DelegationTokenRecord {
            token_id: format!("t{t}"),
            owner: "User:a".into(),
            ..Default::default()
        }
        .into()),
        (0..2u8).prop_map(|t| RemoveDelegationTokenRecord {
            token_id: format!("t{t}"),
        }
        .into()),
        Just(NoOpRecord {}.into()),
    ]
}

fn transaction_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        Just(BeginTransactionRecord { name: None }.into()),
        Just(EndTransactionRecord {}.into()),
        Just(AbortTransactionRecord { reason: None }.into()),
    ]
}

fn any_record() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        12 => topic_records(),
        4 => cluster_records(),
        4 => other_records(),
        1 => transaction_records(),
    ]
}

fn is_transaction_marker(r: &MetadataRecord) -> bool {
    matches!(
        r,
        MetadataRecord::BeginTransaction(_)
            | MetadataRecord::EndTransaction(_)
            | MetadataRecord::AbortTransaction(_)
    )
}

/// Replays what applies, checking that what fails changes nothing; returns the records
/// that applied.
fn replay_valid(delta: &mut MetadataDelta, records: &[MetadataRecord]) -> Vec<MetadataRecord> {
    let at = MetadataProvenance::new(1, 1);
    let mut applied = Vec::new();
    for r in records {
        let before = delta.apply(at);
        let in_txn = delta.in_transaction();
        match delta.replay(r) {
            Ok(()) => applied.push(r.clone()),
            Err(e) => {
                assert_eq!(delta.apply(at), before, "{e} changed the delta");
                assert_eq!(delta.in_transaction(), in_txn);
            }
        }
    }
    applied
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn snapshot_replays_to_an_equal_image(records in proptest::collection::vec(any_record(), 0..80)) {
        let empty = MetadataImage::empty("cluster");
        let mut delta = MetadataDelta::new(&empty);
        replay_valid(&mut delta, &records);
        let at = MetadataProvenance::new(records.len() as i64, 3);
        let image = delta.apply(at);

        let snapshot = image.to_records();
        let mut rebuilt = MetadataDelta::new(&empty);
        for record in &snapshot {
            let framed = record.encode().unwrap();
            let decoded = MetadataRecord::decode(framed).unwrap();
            prop_assert_eq!(&decoded, record);
            rebuilt.replay(&decoded).unwrap();
        }
        prop_assert_eq!(&rebuilt.apply(at), &image);
        // The snapshot of the rebuilt image is the same records.
        prop_assert_eq!(rebuilt.apply(at).to_records(), snapshot.clone());

        // Loading the image's own snapshot onto it changes nothing for any node.
        let mut reload = MetadataDelta::for_snapshot(&image);
        reload.replay_all(&snapshot).unwrap();
        prop_assert_eq!(&reload.apply(at), &image);
        prop_assert!(reload.deleted_topic_ids().is_empty());
        prop_assert!(reload.changed_brokers().is_empty());
        prop_assert!(reload.changed_configs().is_empty());
        for node in 0..5 {
            prop_assert!(reload.local_changes(node).is_empty(), "node {}", node);
        }
    }

    #[test]
    fn one_delta_or_two_give_the_same_image(
        records in proptest::collection::vec(any_record(), 0..60),
        split in 0usize..60,
    ) {
        let records: Vec<MetadataRecord> =
            records.into_iter().filter(|r| !is_transaction_marker(r)).collect();
        let empty = MetadataImage::empty("cluster");
        let at = MetadataProvenance::new(9, 1);
        let mut whole = MetadataDelta::new(&empty);
        let applied = replay_valid(&mut whole, &records);

        let split = split.min(applied.len());
        let mut first = MetadataDelta::new(&empty);
        first.replay_all(&applied[..split]).unwrap();
        let middle = first.apply(at);
        let mut second = MetadataDelta::new(&middle);
        second.replay_all(&applied[split..]).unwrap();
        prop_assert_eq!(second.apply(at), whole.apply(at));
    }
}
