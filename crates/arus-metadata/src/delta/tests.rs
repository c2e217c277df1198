//! Replay semantics of every record type.

use std::sync::Arc;

use arus_protocol::Uuid;
use arus_protocol::metadata::client_quota_record::EntityData;
use arus_protocol::metadata::register_broker_record::BrokerEndpoint;
use arus_protocol::metadata::*;

use super::{DeltaError, MetadataDelta};
use crate::image::{
    ConfigResource, LeaderRecoveryState, MetadataImage, MetadataProvenance, NO_LEADER,
    TopicIdPartition, resource_type,
};
use crate::record::MetadataRecord;

pub(crate) const T1: Uuid = Uuid([1; 16]);
pub(crate) const T2: Uuid = Uuid([2; 16]);

pub(crate) fn topic(name: &str, id: Uuid) -> MetadataRecord {
    TopicRecord {
        name: name.into(),
        topic_id: id,
    }
    .into()
}

pub(crate) fn partition(id: Uuid, p: i32, replicas: &[i32], leader: i32) -> MetadataRecord {
    PartitionRecord {
        partition_id: p,
        topic_id: id,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    }
    .into()
}

pub(crate) fn change(id: Uuid, p: i32) -> PartitionChangeRecord {
    PartitionChangeRecord {
        partition_id: p,
        topic_id: id,
        ..Default::default()
    }
}

pub(crate) fn broker(id: i32, epoch: i64) -> MetadataRecord {
    RegisterBrokerRecord {
        broker_id: id,
        broker_epoch: epoch,
        incarnation_id: Uuid([id as u8; 16]),
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092 + id as u16,
            security_protocol: 0,
        }],
        rack: None,
        fenced: true,
        ..Default::default()
    }
    .into()
}

fn config(rtype: i8, name: &str, key: &str, value: Option<&str>) -> MetadataRecord {
    ConfigRecord {
        resource_type: rtype,
        resource_name: name.into(),
        name: key.into(),
        value: value.map(Into::into),
    }
    .into()
}

/// Applies records onto `image` and returns the next image.
pub(crate) fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut delta = MetadataDelta::new(image);
    delta.replay_all(records).unwrap();
    delta.apply(MetadataProvenance::new(records.len() as i64, 1))
}

/// An image with topic "a" (T1, partitions 0 and 1 on brokers 1,2,3) and topic "b" (T2).
pub(crate) fn two_topics() -> MetadataImage {
    apply(
        &MetadataImage::empty("c"),
        &[
            topic("a", T1),
            partition(T1, 0, &[1, 2, 3], 1),
            partition(T1, 1, &[2, 3, 1], 2),
            topic("b", T2),
            partition(T2, 0, &[3], 3),
        ],
    )
}

#[test]
fn topics_and_partitions_are_created_and_looked_up() {
    let image = two_topics();
    assert_eq!(image.topic_id("a"), Some(T1));
    assert_eq!(image.topic_by_id(&T2).unwrap().name, "b");
    assert_eq!(image.leader("a", 1), Some(2));
    assert_eq!(
        image.partition_by_id(&T1, 0).unwrap().replicas,
        vec![1, 2, 3]
    );
    assert_eq!(
        image.partitions_led_by(2),
        vec![TopicIdPartition {
            topic_id: T1,
            partition: 1
        }]
    );
    assert_eq!(image.partitions_on(3).len(), 3);
    assert_eq!(image.provenance(), MetadataProvenance::new(5, 1));
}

#[test]
fn partition_change_follows_kafka_merge() {
    let image = two_topics();
    let mut c = change(T1, 0);
    c.isr = Some(vec![1, 2]);
    let next = apply(&image, &[c.into()]);
    let p = next.partition("a", 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 1));
    assert_eq!(p.isr, vec![1, 2]);
    assert_eq!(p.replicas, vec![1, 2, 3]);

    let mut c = change(T1, 0);
    c.leader = NO_LEADER;
    let offline = apply(&next, &[c.into()]);
    let p = offline.partition("a", 0).unwrap();
    assert_eq!(
        (p.leader(), p.leader_epoch, p.partition_epoch),
        (None, 1, 2)
    );
    assert_eq!(p.isr, vec![1, 2]);

    let mut c = change(T1, 0);
    c.leader = 2;
    c.leader_recovery_state = 1;
    let p = apply(&offline, &[c.into()]);
    let p = p.partition("a", 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 2, 3));
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovering);
}

#[test]
fn a_delta_touching_one_topic_shares_the_others() {
    let image = two_topics();
    let mut c = change(T1, 0);
    c.leader = 2;
    let next = apply(&image, &[c.into()]);
    assert!(Arc::ptr_eq(
        next.topic_by_id(&T2).unwrap(),
        image.topic_by_id(&T2).unwrap()
    ));
    assert!(Arc::ptr_eq(
        &next.topic("a").unwrap().partitions[&1],
        &image.topic("a").unwrap().partitions[&1]
    ));
    // The base image did not change.
    assert_eq!(image.leader("a", 0), Some(1));
    assert_eq!(next.leader("a", 0), Some(2));
}

#[test]
fn records_about_missing_things_are_errors_that_change_nothing() {
    let image = two_topics();
    let mut delta = MetadataDelta::new(&image);
    let unknown = Uuid([9; 16]);
    assert_eq!(
        delta.replay(&partition(unknown, 0, &[1], 1)),
        Err(DeltaError::UnknownTopicId(unknown))
    );
    assert_eq!(
        delta.replay(&change(T1, 7).into()),
        Err(DeltaError::UnknownPartition {
            topic_id: T1,
            partition: 7
        })
    );
    assert_eq!(
        delta.replay(&RemoveTopicRecord { topic_id: unknown }.into()),
        Err(DeltaError::UnknownTopicId(unknown))
    );
    assert_eq!(
        delta.replay(&topic("a", unknown)),
        Err(DeltaError::TopicNameExists {
            name: "a".into(),
            existing: T1
        })
    );
    assert_eq!(
        delta.replay(&topic("z", T1)),
        Err(DeltaError::TopicIdExists(T1))
    );
    let mut bad = change(T1, 0);
    bad.leader_recovery_state = 5;
    assert!(matches!(
        delta.replay(&bad.into()),
        Err(DeltaError::InvalidPartition { .. })
    ));
    assert_eq!(delta.apply(image.provenance()), image);
    assert!(delta.changed_partitions().is_empty());
}

#[test]
fn remove_topic_drops_the_topic_and_its_configs() {
    let image = apply(
        &two_topics(),
        &[
            config(resource_type::TOPIC, "a", "retention.ms", Some("1000")),
            config(resource_type::TOPIC, "b", "retention.ms", Some("2000")),
        ],
    );
    let next = apply(&image, &[RemoveTopicRecord { topic_id: T1 }.into()]);
    assert!(next.topic("a").is_none() && next.topic_by_id(&T1).is_none());
    assert!(next.configs().get(&ConfigResource::topic("a")).is_none());
    assert_eq!(next.topic_config("b", "retention.ms"), Some("2000"));
    // The name can be used again, by a new id.
    let again = apply(&next, &[topic("a", Uuid([5; 16]))]);
    assert_eq!(again.topic_id("a"), Some(Uuid([5; 16])));
}

#[test]
fn clear_elr_clears_and_bumps_only_partitions_with_an_elr() {
    let mut c = change(T1, 0);
    c.eligible_leader_replicas = Some(vec![2]);
    c.last_known_elr = Some(vec![3]);
    let image = apply(&two_topics(), &[c.into()]);
    assert_eq!(image.partition("a", 0).unwrap().partition_epoch, 1);
    for name in ["a", ""] {
        let mut delta = MetadataDelta::new(&image);
        delta
            .replay(
                &ClearElrRecord {
                    topic_name: name.into(),
                }
                .into(),
            )
            .unwrap();
        let next = delta.apply(image.provenance());
        let p = next.partition("a", 0).unwrap();
        assert!(p.elr.is_empty() && p.last_known_elr.is_empty());
        assert_eq!(p.partition_epoch, 2);
        assert_eq!(next.partition("a", 1), image.partition("a", 1));
        assert_eq!(delta.changed_partitions().len(), 1);
    }
    let mut delta = MetadataDelta::new(&image);
    assert_eq!(
        delta.replay(
            &ClearElrRecord {
                topic_name: "nope".into()
            }
            .into()
        ),
        Err(DeltaError::UnknownTopicName("nope".into()))
    );
}

#[test]
fn config_null_value_deletes_and_empty_resources_vanish() {
    let empty = MetadataImage::empty("c");
    let image = apply(
        &empty,
        &[
            config(resource_type::BROKER, "", "log.retention.ms", Some("5")),
            config(resource_type::BROKER, "1", "a", Some("x")),
            config(resource_type::BROKER, "1", "a", Some("y")),
        ],
    );
    let default = ConfigResource::broker_default();
    assert_eq!(
        image.configs().value(&default, "log.retention.ms"),
        Some("5")
    );
    assert_eq!(
        image.configs().value(&ConfigResource::broker(1), "a"),
        Some("y")
    );
    let next = apply(&image, &[config(resource_type::BROKER, "1", "a", None)]);
    assert!(next.configs().get(&ConfigResource::broker(1)).is_none());
    let mut delta = MetadataDelta::new(&image);
    delta
        .replay(&config(resource_type::BROKER, "", "x", None))
        .unwrap();
    assert!(delta.changed_configs().is_empty());
    delta
        .replay(&config(resource_type::BROKER, "", "x", Some("1")))
        .unwrap();
    assert_eq!(
        delta.changed_configs().into_iter().collect::<Vec<_>>(),
        vec![default]
    );
}

fn feature(name: &str, level: i16) -> MetadataRecord {
    FeatureLevelRecord {
        name: name.into(),
        feature_level: level,
    }
    .into()
}

#[test]
fn feature_levels() {
    let image = apply(
        &MetadataImage::empty("c"),
        &[
            feature("metadata.version", 30),
            feature("group.version", 1),
            feature("kraft.version", 1),
        ],
    );
    assert_eq!(image.metadata_version(), Some(30));
    assert_eq!(image.feature_level("group.version"), Some(1));
    assert_eq!(image.feature_level("kraft.version"), None);
    let next = apply(&image, &[feature("group.version", 0)]);
    assert_eq!(next.feature_level("group.version"), None);
    let mut delta = MetadataDelta::new(&next);
    assert_eq!(
        delta.replay(&feature("metadata.version", 0)),
        Err(DeltaError::UnsupportedMetadataVersion(0))
    );
    assert!(!delta.features_changed());
}

#[test]
fn broker_registration_fencing_and_changes() {
    let image = apply(&MetadataImage::empty("c"), &[broker(1, 10), broker(2, 20)]);
    assert!(image.broker(1).unwrap().fenced);
    assert_eq!(image.live_brokers().count(), 0);
    assert_eq!(
        image.broker(2).unwrap().listener("PLAINTEXT").unwrap().port,
        9094
    );

    let unfence = UnfenceBrokerRecord { id: 1, epoch: 10 };
    let image = apply(&image, &[unfence.into()]);
    assert!(image.is_broker_live(1));
    assert_eq!(
        image.live_brokers().map(|b| b.id).collect::<Vec<_>>(),
        vec![1]
    );

    let mut delta = MetadataDelta::new(&image);
    assert_eq!(
        delta.replay(&FenceBrokerRecord { id: 1, epoch: 9 }.into()),
        Err(DeltaError::BrokerEpochMismatch {
            broker: 1,
            action: "fence",
            given: 9,
            current: 10
        })
    );
    assert_eq!(
        delta.replay(&FenceBrokerRecord { id: 3, epoch: 9 }.into()),
        Err(DeltaError::UnknownBroker {
            broker: 3,
            action: "fence"
        })
    );
    let shutdown = BrokerRegistrationChangeRecord {
        broker_id: 1,
        broker_epoch: 10,
        fenced: 0,
        in_controlled_shutdown: 1,
        log_dirs: vec![Uuid([7; 16])],
        ..Default::default()
    };
    delta.replay(&shutdown.into()).unwrap();
    let next = delta.apply(image.provenance());
    let b = next.broker(1).unwrap();
    assert!(!b.fenced && b.in_controlled_shutdown);
    assert_eq!(b.directories, vec![Uuid([7; 16])]);
    assert_eq!(
        delta.changed_brokers().into_iter().collect::<Vec<_>>(),
        vec![1]
    );

    for (fenced, ics) in [(2, 0), (0, -1)] {
        let bad = BrokerRegistrationChangeRecord {
            broker_id: 1,
            broker_epoch: 10,
            fenced,
            in_controlled_shutdown: ics,
            ..Default::default()
        };
        assert!(delta.replay(&bad.into()).is_err());
    }
    let fence = BrokerRegistrationChangeRecord {
        broker_id: 1,
        broker_epoch: 10,
        fenced: 1,
        ..Default::default()
    };
    delta.replay(&fence.into()).unwrap();
    assert!(delta.apply(image.provenance()).broker(1).unwrap().fenced);

    // A new registration replaces the old one; unregistration removes it.
    let image = apply(&image, &[broker(1, 11)]);
    assert_eq!(image.broker(1).unwrap().epoch, 11);
    assert!(image.broker(1).unwrap().fenced);
    let image = apply(
        &image,
        &[UnregisterBrokerRecord {
            broker_id: 2,
            broker_epoch: 0,
        }
        .into()],
    );
    assert!(image.broker(2).is_none());
}

#[test]
fn controllers_register_and_unregister() {
    let register = RegisterControllerRecord {
        controller_id: 3000,
        incarnation_id: Uuid([3; 16]),
        ..Default::default()
    };
    let image = apply(&MetadataImage::empty("c"), &[register.into()]);
    assert_eq!(
        image.cluster().controller(3000).unwrap().incarnation_id,
        Uuid([3; 16])
    );
    let image = apply(
        &image,
        &[UnregisterControllerRecord {
            controller_id: 3000,
        }
        .into()],
    );
    assert_eq!(image.cluster().controllers().count(), 0);
}

#[test]
fn producer_ids_quotas_acls_scram_tokens() {
    let entity = vec![EntityData {
        entity_type: "user".into(),
        entity_name: Some("alice".into()),
    }];
    let quota = |key: &str, value: f64, remove: bool| -> MetadataRecord {
        ClientQuotaRecord {
            entity: entity.clone(),
            key: key.into(),
            value,
            remove,
        }
        .into()
    };
    let acl = AccessControlEntryRecord {
        id: Uuid([4; 16]),
        resource_type: 2,
        resource_name: "a".into(),
        principal: "User:alice".into(),
        ..Default::default()
    };
    let scram = UserScramCredentialRecord {
        name: "alice".into(),
        mechanism: 1,
        iterations: 4096,
        ..Default::default()
    };
    let token = DelegationTokenRecord {
        token_id: "t1".into(),
        owner: "User:alice".into(),
        ..Default::default()
    };
    let image = apply(
        &MetadataImage::empty("c"),
        &[
            ProducerIdsRecord {
                broker_id: 1,
                broker_epoch: 5,
                next_producer_id: 1000,
            }
            .into(),
            quota("producer_byte_rate", 1024.0, false),
            quota("consumer_byte_rate", 2048.0, false),
            acl.clone().into(),
            scram.clone().into(),
            token.clone().into(),
            NoOpRecord {}.into(),
        ],
    );
    assert_eq!(image.next_producer_id(), 1000);
    let s = image.security();
    assert_eq!(s.client_quotas().values().next().unwrap().len(), 2);
    assert_eq!(s.acls()[&acl.id], acl);
    assert_eq!(s.scram_credential(1, "alice"), Some(&scram));
    assert_eq!(s.delegation_tokens()["t1"], token);

    let next = apply(
        &image,
        &[
            quota("producer_byte_rate", 0.0, true),
            quota("consumer_byte_rate", 0.0, true),
            RemoveAccessControlEntryRecord { id: acl.id }.into(),
            RemoveUserScramCredentialRecord {
                name: "alice".into(),
                mechanism: 1,
            }
            .into(),
            RemoveDelegationTokenRecord {
                token_id: "t1".into(),
            }
            .into(),
        ],
    );
    assert_eq!(next.security(), MetadataImage::empty("c").security());
    let mut delta = MetadataDelta::new(&next);
    assert_eq!(
        delta.replay(&RemoveAccessControlEntryRecord { id: acl.id }.into()),
        Err(DeltaError::UnknownAcl(acl.id))
    );
}

#[test]
fn transactions_commit_or_abort_as_a_whole() {
    let image = two_topics();
    let begin: MetadataRecord = BeginTransactionRecord { name: None }.into();
    let end: MetadataRecord = EndTransactionRecord {}.into();
    let abort: MetadataRecord = AbortTransactionRecord { reason: None }.into();

    let mut delta = MetadataDelta::new(&image);
    delta.replay(&begin).unwrap();
    assert!(delta.in_transaction());
    assert_eq!(delta.replay(&begin), Err(DeltaError::NestedTransaction));
    delta.replay(&topic("c", Uuid([3; 16]))).unwrap();
    delta.replay(&abort).unwrap();
    assert!(!delta.in_transaction());
    assert!(delta.apply(image.provenance()).topic("c").is_none());
    assert!(delta.created_topic_ids().is_empty());

    delta.replay(&begin).unwrap();
    delta.replay(&topic("c", Uuid([3; 16]))).unwrap();
    delta.replay(&end).unwrap();
    assert!(delta.apply(image.provenance()).topic("c").is_some());
    assert_eq!(
        delta.replay(&end),
        Err(DeltaError::NoTransaction("EndTransactionRecord"))
    );
    assert_eq!(
        delta.replay(&abort),
        Err(DeltaError::NoTransaction("AbortTransactionRecord"))
    );
}
