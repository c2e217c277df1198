//! Byte-for-byte comparison of our metadata record framing with Apache Kafka 4.4's own
//! `MetadataRecordSerde`: `kafka-serde/SerdeDump.java` prints Kafka's encoding of a fixed
//! set of records (every record type, every version of the versioned ones), this test
//! builds the same records and compares, then decodes Kafka's bytes and re-encodes them.
//!
//! Needs `java` (11+) and Kafka's classpath: the file named by `ARUS_KAFKA_CLASSPATH_FILE`,
//! or `compat/work/reference-classpath.txt` (made by `compat/reference/kafka-broker.sh`, or
//! `cd compat/reference && mvn -q dependency:build-classpath
//! -Dmdep.outputFile=../work/reference-classpath.txt`). Without them the test says so and
//! passes without checking, unless `ARUS_KAFKA_SERDE_REQUIRED` is set (as in
//! `scripts/test-all.sh`, which runs it again once the classpath exists): then it fails.

mod common;

use std::collections::BTreeMap;

use arus_metadata::{MetadataRecord, VersionedRecord};
use arus_protocol::metadata::client_quota_record::EntityData;
use arus_protocol::metadata::register_broker_record::{BrokerEndpoint, BrokerFeature};
use arus_protocol::metadata::register_controller_record::{ControllerEndpoint, ControllerFeature};
use arus_protocol::metadata::*;
use arus_protocol::{Bytes, Uuid};

const A: Uuid = Uuid([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
const B: Uuid = Uuid([
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
]);

fn broker(v: i16) -> RegisterBrokerRecord {
    let endpoint = |name: &str, host: &str, port, security_protocol| BrokerEndpoint {
        name: name.into(),
        host: host.into(),
        port,
        security_protocol,
    };
    RegisterBrokerRecord {
        broker_id: 1,
        incarnation_id: A,
        broker_epoch: 42,
        end_points: vec![
            endpoint("PLAINTEXT", "localhost", 9092, 0),
            endpoint("SSL", "hé", 65535, 1),
        ],
        features: vec![BrokerFeature {
            name: "metadata.version".into(),
            min_supported_version: 7,
            max_supported_version: 30,
        }],
        rack: (v >= 2).then(|| "rack-1".into()),
        fenced: true,
        in_controlled_shutdown: v >= 1,
        log_dirs: if v >= 3 { vec![A, B] } else { vec![] },
        cordoned_log_dirs: (v >= 4).then(|| vec![B]),
        ..Default::default()
    }
}

fn partition(v: i16) -> PartitionRecord {
    PartitionRecord {
        partition_id: 3,
        topic_id: A,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2],
        removing_replicas: vec![3],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 5,
        partition_epoch: 9,
        directories: if v >= 1 {
            vec![A, B, Uuid::ZERO]
        } else {
            vec![]
        },
        eligible_leader_replicas: (v >= 2).then(|| vec![2]),
        last_known_elr: (v >= 2).then(|| vec![3]),
    }
}

fn partition_change(v: i16) -> PartitionChangeRecord {
    PartitionChangeRecord {
        partition_id: 0,
        topic_id: B,
        isr: Some(vec![1]),
        leader: -1,
        replicas: Some(vec![1, 2]),
        removing_replicas: Some(vec![]),
        adding_replicas: Some(vec![2]),
        leader_recovery_state: 1,
        directories: (v >= 1).then(|| vec![A, B]),
        eligible_leader_replicas: (v >= 2).then(Vec::new),
        last_known_elr: (v >= 2).then(|| vec![2]),
    }
}

fn registration_change(v: i16) -> BrokerRegistrationChangeRecord {
    BrokerRegistrationChangeRecord {
        broker_id: 1,
        broker_epoch: 42,
        fenced: -1,
        in_controlled_shutdown: if v >= 1 { 1 } else { 0 },
        log_dirs: if v >= 2 { vec![A] } else { vec![] },
        cordoned_log_dirs: (v >= 3).then(Vec::new),
    }
}

/// The records `SerdeDump.java` writes, by the same labels.
fn ours() -> Vec<(String, VersionedRecord)> {
    let mut out: Vec<(String, VersionedRecord)> = Vec::new();
    let mut add = |label: &str, record: MetadataRecord, version: i16| {
        out.push((label.to_string(), VersionedRecord { record, version }));
    };
    for v in 0..=4 {
        add(&format!("RegisterBroker.v{v}"), broker(v).into(), v);
    }
    let unregister = UnregisterBrokerRecord {
        broker_id: 2,
        broker_epoch: -1,
    };
    add("UnregisterBroker.v0", unregister.into(), 0);
    let topic = TopicRecord {
        name: "orders".into(),
        topic_id: A,
    };
    add("Topic.v0", topic.into(), 0);
    for v in 0..=2 {
        add(&format!("Partition.v{v}"), partition(v).into(), v);
    }
    let config = |rtype: i8, rname: &str, name: &str, value: Option<&str>| ConfigRecord {
        resource_type: rtype,
        resource_name: rname.into(),
        name: name.into(),
        value: value.map(Into::into),
    };
    add(
        "Config.v0",
        config(2, "orders", "retention.ms", Some("86400000")).into(),
        0,
    );
    add(
        "ConfigNull.v0",
        config(4, "", "log.retention.ms", None).into(),
        0,
    );
    for v in 0..=2 {
        add(
            &format!("PartitionChange.v{v}"),
            partition_change(v).into(),
            v,
        );
    }
    let empty_change = PartitionChangeRecord {
        partition_id: 7,
        topic_id: A,
        ..Default::default()
    };
    add("PartitionChangeEmpty.v0", empty_change.into(), 0);
    add(
        "FenceBroker.v0",
        FenceBrokerRecord { id: 1, epoch: 42 }.into(),
        0,
    );
    add(
        "UnfenceBroker.v0",
        UnfenceBrokerRecord { id: 1, epoch: 42 }.into(),
        0,
    );
    add(
        "RemoveTopic.v0",
        RemoveTopicRecord { topic_id: A }.into(),
        0,
    );
    let token = DelegationTokenRecord {
        owner: "User:alice".into(),
        requester: "User:bob".into(),
        renewers: vec!["User:carol".into(), "User:dave".into()],
        issue_timestamp: 1,
        max_timestamp: 2,
        expiration_timestamp: 3,
        token_id: "token-1".into(),
    };
    add("DelegationToken.v0", token.into(), 0);
    let scram = UserScramCredentialRecord {
        name: "alice".into(),
        mechanism: 1,
        salt: Bytes::from_static(&[1, 2, 3]),
        stored_key: Bytes::from_static(&[4, 5]),
        server_key: Bytes::new(),
        iterations: 4096,
    };
    add("UserScramCredential.v0", scram.into(), 0);
    let feature = FeatureLevelRecord {
        name: "metadata.version".into(),
        feature_level: 30,
    };
    add("FeatureLevel.v0", feature.into(), 0);
    let quota = ClientQuotaRecord {
        entity: vec![
            EntityData {
                entity_type: "user".into(),
                entity_name: Some("alice".into()),
            },
            EntityData {
                entity_type: "client-id".into(),
                entity_name: None,
            },
        ],
        key: "producer_byte_rate".into(),
        value: 1048576.5,
        remove: false,
    };
    add("ClientQuota.v0", quota.into(), 0);
    let pids = ProducerIdsRecord {
        broker_id: 1,
        broker_epoch: 42,
        next_producer_id: 5000,
    };
    add("ProducerIds.v0", pids.into(), 0);
    for v in 0..=3 {
        add(
            &format!("BrokerRegistrationChange.v{v}"),
            registration_change(v).into(),
            v,
        );
    }
    let acl = AccessControlEntryRecord {
        id: B,
        resource_type: 2,
        resource_name: "orders".into(),
        pattern_type: 3,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: 3,
        permission_type: 3,
    };
    add("AccessControlEntry.v0", acl.into(), 0);
    add(
        "RemoveAccessControlEntry.v0",
        RemoveAccessControlEntryRecord { id: B }.into(),
        0,
    );
    add("NoOp.v0", NoOpRecord {}.into(), 0);
    add(
        "ZkMigrationState.v0",
        ZkMigrationStateRecord {
            zk_migration_state: 0,
        }
        .into(),
        0,
    );
    let remove_scram = RemoveUserScramCredentialRecord {
        name: "alice".into(),
        mechanism: 2,
    };
    add("RemoveUserScramCredential.v0", remove_scram.into(), 0);
    let begin = |name: Option<&str>| BeginTransactionRecord {
        name: name.map(Into::into),
    };
    add("BeginTransaction.v0", begin(Some("bulk create")).into(), 0);
    add("BeginTransactionNull.v0", begin(None).into(), 0);
    add("EndTransaction.v0", EndTransactionRecord {}.into(), 0);
    let abort = AbortTransactionRecord {
        reason: Some("controller failover".into()),
    };
    add("AbortTransaction.v0", abort.into(), 0);
    let remove_token = RemoveDelegationTokenRecord {
        token_id: "token-1".into(),
    };
    add("RemoveDelegationToken.v0", remove_token.into(), 0);
    let controller = RegisterControllerRecord {
        controller_id: 3000,
        incarnation_id: B,
        zk_migration_ready: false,
        end_points: vec![ControllerEndpoint {
            name: "CONTROLLER".into(),
            host: "10.0.0.1".into(),
            port: 9093,
            security_protocol: 0,
        }],
        features: vec![ControllerFeature {
            name: "kraft.version".into(),
            min_supported_version: 0,
            max_supported_version: 1,
        }],
    };
    add("RegisterController.v0", controller.into(), 0);
    let clear = ClearElrRecord {
        topic_name: "orders".into(),
    };
    add("ClearElr.v0", clear.into(), 0);
    let unregister = UnregisterControllerRecord {
        controller_id: 3000,
    };
    add("UnregisterController.v0", unregister.into(), 0);
    out
}

#[test]
fn framing_matches_kafka_byte_for_byte() {
    let Some(classpath) = common::kafka_classpath_or_skip("Kafka serde comparison") else {
        return;
    };
    let kafka: BTreeMap<String, String> = common::run_java(&classpath, "SerdeDump.java", "")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(label, hex)| (label.to_string(), hex.to_string()))
        .collect();

    let ours = ours();
    let labels: Vec<&String> = ours.iter().map(|(l, _)| l).collect();
    assert_eq!(
        kafka.keys().collect::<Vec<_>>(),
        {
            let mut sorted = labels.clone();
            sorted.sort();
            sorted
        },
        "the Java and Rust record lists differ"
    );
    let mut types = std::collections::BTreeSet::new();
    for (label, record) in &ours {
        types.insert(record.record.record_type());
        let encoded = record.encode().unwrap();
        assert_eq!(
            common::hex(&encoded),
            kafka[label],
            "{label}: our bytes differ from Kafka's"
        );
        // Kafka's bytes decode to the same record and version.
        let decoded = VersionedRecord::decode(Bytes::from(common::unhex(&kafka[label]))).unwrap();
        assert_eq!(
            &decoded, record,
            "{label}: Kafka's bytes decode differently"
        );
    }
    assert_eq!(types.len(), 27, "every metadata record type is compared");
}
