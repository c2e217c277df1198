//! CreateTopics, DeleteTopics, CreatePartitions and config changes.

use std::collections::BTreeSet;

use arus_protocol::ErrorCode;
use arus_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use arus_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopicConfig,
};
use arus_protocol::messages::delete_topics_request::DeleteTopicState;
use arus_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use arus_protocol::messages::{
    CreatePartitionsRequest, DeleteTopicsRequest, IncrementalAlterConfigsRequest,
};

use super::*;

fn create_req(topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest {
        topics,
        validate_only,
        ..Default::default()
    }
}

fn topic(name: &str, p: i32, rf: i16) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: p,
        replication_factor: rf,
        ..Default::default()
    }
}

fn err_of(h: &mut Harness, t: CreatableTopic) -> ControllerError {
    let out =
        h.c.create_topics(&create_req(vec![t], false), &mut h.ids, &AcceptAllConfigs)
            .unwrap();
    assert!(out.records.is_empty());
    out.response[0].1.clone().unwrap_err()
}

#[test]
fn create_topic_writes_topic_config_and_partition_records() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    let mut t = topic("orders", 3, 2);
    t.configs = vec![CreatableTopicConfig {
        name: "cleanup.policy".into(),
        value: Some("compact".into()),
    }];
    let out =
        h.c.create_topics(&create_req(vec![t], false), &mut h.ids, &AcceptAllConfigs)
            .unwrap();
    let kinds: Vec<&str> = out
        .records
        .iter()
        .map(|r| match r {
            MetadataRecord::Topic(_) => "topic",
            MetadataRecord::Config(_) => "config",
            MetadataRecord::Partition(_) => "partition",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["topic", "config", "partition", "partition", "partition"]
    );
    let created = out.response[0].1.clone().unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (3, 2));
    h.apply(&out.records);
    let p = h.partition("orders", 0);
    assert_eq!(p.leader, p.replicas[0]);
    assert_eq!(p.isr, p.replicas);
    assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
    assert_eq!(
        p.directories,
        p.replicas.iter().map(|&r| dir_of(r)).collect::<Vec<_>>()
    );
    assert_eq!(
        h.c.state().resource_configs(2, "orders").unwrap()["cleanup.policy"],
        "compact"
    );
}

#[test]
fn leaders_spread_over_all_brokers() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 6, 1).unwrap();
    let leaders: BTreeSet<i32> = (0..6).map(|p| h.partition("t", p).leader).collect();
    assert_eq!(leaders, BTreeSet::from([0, 1, 2]));
}

#[test]
fn racks_are_respected_on_six_brokers() {
    let mut h = Harness::new(true);
    h.brokers(&[
        Some("a"),
        Some("b"),
        Some("c"),
        Some("a"),
        Some("b"),
        Some("c"),
    ]);
    h.create("t", 12, 3).unwrap();
    let racks = ["a", "b", "c", "a", "b", "c"];
    for p in 0..12 {
        let part = h.partition("t", p);
        let set: BTreeSet<&str> = part.replicas.iter().map(|&r| racks[r as usize]).collect();
        assert_eq!(set.len(), 3, "partition {p}: {:?}", part.replicas);
    }
}

#[test]
fn defaults_apply_for_minus_one() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    let c = h.create("d", -1, -1).unwrap();
    assert_eq!((c.num_partitions, c.replication_factor), (1, 1));
}

#[test]
fn create_errors_carry_kafkas_codes_and_messages() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    h.create("exists", 1, 1).unwrap();
    let e = err_of(&mut h, topic("exists", 1, 1));
    assert_eq!(e.code, ErrorCode::TopicAlreadyExists);
    assert_eq!(e.message.as_deref(), Some("Topic 'exists' already exists."));
    let e = err_of(&mut h, topic("bad name", 1, 1));
    assert_eq!(e.code, ErrorCode::InvalidTopicException);
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Topic name is invalid: 'bad name' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
        )
    );
    h.create("a.b", 1, 1).unwrap();
    let e = err_of(&mut h, topic("a_b", 1, 1));
    assert_eq!(
        e.message.as_deref(),
        Some("Topic 'a_b' collides with existing topic: a.b")
    );
    let e = err_of(&mut h, topic("x", 1, 3));
    assert_eq!(e.code, ErrorCode::InvalidReplicationFactor);
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 2 broker(s) are registered or some brokers have all their log directories cordoned."
        )
    );
    let e = err_of(&mut h, topic("x", 1, 0));
    assert_eq!(
        e.message.as_deref(),
        Some("Replication factor must be larger than 0, or -1 to use the default value.")
    );
    let e = err_of(&mut h, topic("x", 0, 1));
    assert_eq!(e.code, ErrorCode::InvalidPartitions);
    assert_eq!(
        e.message.as_deref(),
        Some("Number of partitions was set to an invalid non-positive value.")
    );
    let mut t = topic("x", 1, 1);
    t.configs = vec![CreatableTopicConfig {
        name: "retention.ms".into(),
        value: None,
    }];
    let e = err_of(&mut h, t);
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert_eq!(
        e.message.as_deref(),
        Some("Null value not supported for topic configs: retention.ms")
    );
    let e =
        h.c.create_topics(
            &create_req(vec![topic("big", 10_001, 1)], false),
            &mut h.ids,
            &AcceptAllConfigs,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PolicyViolation);
}

#[test]
fn manual_assignments_are_checked() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    let manual = |a: Vec<(i32, Vec<i32>)>| CreatableTopic {
        name: "m".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: a
            .into_iter()
            .map(|(p, b)| CreatableReplicaAssignment {
                partition_index: p,
                broker_ids: b,
            })
            .collect(),
        ..Default::default()
    };
    let mut bad_rf = manual(vec![(0, vec![0])]);
    bad_rf.replication_factor = 1;
    let e = err_of(&mut h, bad_rf);
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    let e = err_of(&mut h, manual(vec![(0, vec![0, 1]), (2, vec![1, 2])]));
    assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment);
    assert_eq!(
        e.message.as_deref(),
        Some("partitions should be a consecutive 0-based integer sequence")
    );
    let e = err_of(&mut h, manual(vec![(0, vec![0, 1]), (1, vec![2])]));
    assert!(e.message.unwrap().contains("which have 2 replica(s)"));
    let e = err_of(&mut h, manual(vec![(0, vec![0, 7])]));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "The manual partition assignment includes broker 7, but no such broker is registered."
        )
    );
    let out =
        h.c.create_topics(
            &create_req(vec![manual(vec![(0, vec![2, 0]), (1, vec![1, 2])])], false),
            &mut h.ids,
            &AcceptAllConfigs,
        )
        .unwrap();
    h.apply(&out.records);
    assert_eq!(h.partition("m", 0).replicas, vec![2, 0]);
    assert_eq!(h.partition("m", 0).leader, 2);
}

#[test]
fn fenced_replicas_are_left_out_of_the_isr_and_never_lead() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.advance(10_000, &[0, 1]);
    h.create("f", 4, 3).unwrap();
    for p in 0..4 {
        let part = h.partition("f", p);
        assert!(
            part.replicas.contains(&2),
            "fenced brokers may hold followers"
        );
        assert!(!part.isr.contains(&2));
        assert_ne!(part.leader, 2);
    }
    h.advance(10_000, &[]);
    let e = err_of(&mut h, topic("g", 1, 1));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Unable to replicate the partition 1 time(s): All brokers are currently fenced, or have all their log directories cordoned."
        )
    );
}

#[test]
fn validate_only_writes_nothing() {
    let mut h = Harness::new(true);
    h.brokers(&[None]);
    let out =
        h.c.create_topics(
            &create_req(vec![topic("v", 2, 1)], true),
            &mut h.ids,
            &AcceptAllConfigs,
        )
        .unwrap();
    assert!(out.records.is_empty());
    assert!(out.response[0].1.is_ok());
}

#[test]
fn delete_topics_by_name_and_id() {
    let mut h = Harness::new(true);
    h.brokers(&[None]);
    let a = h.create("a", 1, 1).unwrap();
    h.create("b", 1, 1).unwrap();
    let out = h.c.delete_topics(&DeleteTopicsRequest {
        topic_names: vec!["b".into(), "nope".into()],
        ..Default::default()
    });
    assert_eq!(out.records.len(), 1);
    let nope = out
        .response
        .iter()
        .find(|r| r.0.as_deref() == Some("nope"))
        .unwrap();
    assert_eq!(
        nope.2.clone().unwrap_err().code,
        ErrorCode::UnknownTopicOrPartition
    );
    h.apply(&out.records);
    assert!(h.c.state().topic_by_name("b").is_none());
    let unknown = Uuid([9; 16]);
    let out = h.c.delete_topics(&DeleteTopicsRequest {
        topics: vec![
            DeleteTopicState {
                name: None,
                topic_id: a.topic_id,
            },
            DeleteTopicState {
                name: None,
                topic_id: unknown,
            },
            DeleteTopicState {
                name: Some("a".into()),
                topic_id: a.topic_id,
            },
        ],
        ..Default::default()
    });
    let by_id = |id: Uuid| {
        out.response
            .iter()
            .find(|r| r.1 == id && r.0.is_none())
            .unwrap()
            .2
            .clone()
    };
    assert_eq!(by_id(unknown).unwrap_err().code, ErrorCode::UnknownTopicId);
    let both = out
        .response
        .iter()
        .find(|r| r.0.as_deref() == Some("a"))
        .unwrap();
    assert_eq!(
        both.2.clone().unwrap_err().message.as_deref(),
        Some("You may not specify both topic name and topic id.")
    );
    assert_eq!(out.records.len(), 1);
    h.apply(&out.records);
    assert!(h.c.state().topics.is_empty());
}

#[test]
fn create_partitions_errors_and_success() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 2, 2).unwrap();
    let run = |h: &mut Harness, count: i32, assignments: Option<Vec<Vec<i32>>>, name: &str| {
        let out =
            h.c.create_partitions(&CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: name.into(),
                    count,
                    assignments: assignments.map(|a| {
                        a.into_iter()
                            .map(|broker_ids| CreatePartitionsAssignment { broker_ids })
                            .collect()
                    }),
                }],
                ..Default::default()
            })
            .unwrap();
        h.apply(&out.records);
        out.response[0].1.clone()
    };
    let e = run(&mut h, 2, None, "t").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidPartitions);
    assert_eq!(
        e.message.as_deref(),
        Some("Topic already has 2 partition(s).")
    );
    let e = run(&mut h, 1, None, "t").unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some("The topic t currently has 2 partition(s); 1 would not be an increase.")
    );
    let e = run(&mut h, 4, Some(vec![vec![0, 1]]), "t").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment);
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."
        )
    );
    let e = run(&mut h, 3, None, "missing").unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownTopicOrPartition);
    run(&mut h, 3, Some(vec![vec![2, 1]]), "t").unwrap();
    assert_eq!(h.partition("t", 2).replicas, vec![2, 1]);
    run(&mut h, 6, None, "t").unwrap();
    let e =
        h.c.create_partitions(&CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "t".into(),
                count: 10_007,
                assignments: None,
            }],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PolicyViolation);
    assert_eq!(
        e.message.as_deref(),
        Some("Excessively large number of additional partitions per request.")
    );
    assert_eq!(h.c.state().topic_by_name("t").unwrap().partitions.len(), 6);
    assert_eq!(h.partition("t", 5).replicas.len(), 2);
}

struct RejectRetention;

impl ConfigValidator for RejectRetention {
    fn validate(
        &self,
        _resource: &ConfigResource,
        new_configs: &std::collections::BTreeMap<String, String>,
        _existing: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        match new_configs.get("retention.ms") {
            Some(v) if v.parse::<i64>().is_err() => Err(ControllerError::new(
                ErrorCode::InvalidConfig,
                format!(
                    "Invalid value {v} for configuration retention.ms: Not a number of type LONG"
                ),
            )),
            _ => Ok(()),
        }
    }

    fn is_list(&self, _resource: &ConfigResource, key: &str) -> bool {
        key == "cleanup.policy"
    }

    fn default_value(&self, _resource: &ConfigResource, key: &str) -> Option<String> {
        (key == "cleanup.policy").then(|| "delete".to_owned())
    }
}

#[test]
fn incremental_alter_configs_for_topics_and_brokers() {
    let mut h = Harness::new(true);
    h.brokers(&[None]);
    h.create("t", 1, 1).unwrap();
    let req = |rtype: i8, name: &str, configs: Vec<(&str, i8, Option<&str>)>| {
        IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: rtype,
                resource_name: name.into(),
                configs: configs
                    .into_iter()
                    .map(|(n, op, v)| AlterableConfig {
                        name: n.into(),
                        config_operation: op,
                        value: v.map(str::to_owned),
                    })
                    .collect(),
            }],
            validate_only: false,
        }
    };
    let out = h.c.incremental_alter_configs(
        &req(2, "t", vec![("retention.ms", 0, Some("x"))]),
        &RejectRetention,
    );
    assert!(out.records.is_empty());
    assert_eq!(
        out.response[0].1.clone().unwrap_err().code,
        ErrorCode::InvalidConfig
    );
    let out = h.c.incremental_alter_configs(
        &req(2, "t", vec![("cleanup.policy", 2, Some("compact"))]),
        &RejectRetention,
    );
    h.apply(&out.records);
    assert_eq!(
        h.c.state().resource_configs(2, "t").unwrap()["cleanup.policy"],
        "delete,compact"
    );
    let out = h.c.incremental_alter_configs(
        &req(2, "t", vec![("retention.ms", 2, Some("5"))]),
        &RejectRetention,
    );
    assert_eq!(
        out.response[0].1.clone().unwrap_err().message.as_deref(),
        Some("Can't APPEND to key retention.ms because its type is not LIST.")
    );
    let out = h.c.incremental_alter_configs(
        &req(2, "gone", vec![("retention.ms", 0, Some("5"))]),
        &RejectRetention,
    );
    let e = out.response[0].1.clone().unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownTopicOrPartition);
    assert_eq!(
        e.message.as_deref(),
        Some("The topic 'gone' does not exist.")
    );
    let out = h.c.incremental_alter_configs(
        &req(4, "7", vec![("log.cleaner.threads", 0, Some("2"))]),
        &RejectRetention,
    );
    let e = out.response[0].1.clone().unwrap_err();
    assert_eq!(e.code, ErrorCode::BrokerIdNotRegistered);
    assert_eq!(e.message.as_deref(), Some("No node with id 7 found."));
    let out =
        h.c.incremental_alter_configs(&req(4, "x", vec![("a", 0, Some("2"))]), &RejectRetention);
    assert_eq!(
        out.response[0].1.clone().unwrap_err().message.as_deref(),
        Some("Unable to parse broker name as a base 10 number.")
    );
    // Broker configs are written even when unchanged (KAFKA-14136).
    let out = h.c.incremental_alter_configs(
        &req(4, "", vec![("log.retention.ms", 0, Some("1"))]),
        &RejectRetention,
    );
    h.apply(&out.records);
    let out = h.c.incremental_alter_configs(
        &req(4, "", vec![("log.retention.ms", 0, Some("1"))]),
        &RejectRetention,
    );
    assert_eq!(out.records.len(), 1);
    // ...topic configs are not.
    let out = h.c.incremental_alter_configs(
        &req(2, "t", vec![("cleanup.policy", 0, Some("delete,compact"))]),
        &RejectRetention,
    );
    assert!(out.records.is_empty() && out.response[0].1.is_ok());
    let out = h.c.incremental_alter_configs(
        &req(2, "t", vec![("cleanup.policy", 1, None)]),
        &RejectRetention,
    );
    h.apply(&out.records);
    assert!(h.c.state().resource_configs(2, "t").is_none());
}

#[test]
fn min_isr_override_drives_elr() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    let mut t = topic("t", 1, 3);
    t.configs = vec![CreatableTopicConfig {
        name: "min.insync.replicas".into(),
        value: Some("3".into()),
    }];
    let out =
        h.c.create_topics(&create_req(vec![t], false), &mut h.ids, &AcceptAllConfigs)
            .unwrap();
    h.apply(&out.records);
    h.create("u", 1, 3).unwrap();
    let victim = 2;
    h.advance(10_000, &[0, 1]);
    // min.insync.replicas=3: the ISR falls below it and the fenced replica is kept as an
    // eligible leader (KIP-966).
    let p = h.partition("t", 0);
    assert_eq!(p.isr.len(), 2);
    assert_eq!(p.elr, vec![victim]);
    // The default of 1 keeps no ELR.
    let q = h.partition("u", 0);
    assert_eq!(q.isr.len(), 2);
    assert!(q.elr.is_empty());
}

#[test]
fn group_and_client_metrics_configs_pass_to_the_validator_and_unknown_types_are_refused() {
    let mut h = Harness::new(true);
    let req = |rtype: i8, name: &str| IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: rtype,
            resource_name: name.into(),
            configs: vec![AlterableConfig {
                name: "k".into(),
                config_operation: 0,
                value: Some("v".into()),
            }],
        }],
        validate_only: false,
    };
    let out =
        h.c.incremental_alter_configs(&req(32, "g1"), &AcceptAllConfigs);
    assert!(out.response[0].1.is_ok());
    h.apply(&out.records);
    assert_eq!(h.c.state().resource_configs(32, "g1").unwrap()["k"], "v");
    let out =
        h.c.incremental_alter_configs(&req(32, ""), &AcceptAllConfigs);
    assert_eq!(
        out.response[0].1.clone().unwrap_err().message.as_deref(),
        Some("Default group resources are not allowed.")
    );
    let out =
        h.c.incremental_alter_configs(&req(16, "m"), &AcceptAllConfigs);
    assert!(out.response[0].1.is_ok());
    let out =
        h.c.incremental_alter_configs(&req(8, "1"), &AcceptAllConfigs);
    let e = out.response[0].1.clone().unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert_eq!(
        e.message.as_deref(),
        Some("Unknown resource type BROKER_LOGGER")
    );
}

#[test]
fn min_isr_changes_clear_elrs_and_broker_level_ones_are_refused_with_elr() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 1, 3).unwrap();
    let req = |rtype: i8, name: &str, op: i8, value: Option<&str>| IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: rtype,
            resource_name: name.into(),
            configs: vec![AlterableConfig {
                name: "min.insync.replicas".into(),
                config_operation: op,
                value: value.map(str::to_owned),
            }],
        }],
        validate_only: false,
    };
    let out =
        h.c.incremental_alter_configs(&req(2, "t", 0, Some("2")), &AcceptAllConfigs);
    assert_eq!(out.records.len(), 2);
    assert!(matches!(&out.records[1], MetadataRecord::ClearElr(c) if c.topic_name == "t"));
    h.apply(&out.records);
    let out =
        h.c.incremental_alter_configs(&req(4, "", 0, Some("2")), &AcceptAllConfigs);
    assert!(matches!(&out.records[1], MetadataRecord::ClearElr(c) if c.topic_name.is_empty()));
    h.apply(&out.records);
    let out =
        h.c.incremental_alter_configs(&req(4, "1", 0, Some("2")), &AcceptAllConfigs);
    assert_eq!(
        out.response[0].1.clone().unwrap_err().message.as_deref(),
        Some("Broker-level min.insync.replicas cannot be altered while ELR is enabled.")
    );
    let out =
        h.c.incremental_alter_configs(&req(4, "", 1, None), &AcceptAllConfigs);
    let e = out.response[0].1.clone().unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert_eq!(
        e.message.as_deref(),
        Some("Cluster-level min.insync.replicas cannot be removed while ELR is enabled.")
    );
    let big = "x".repeat(32_768);
    let out =
        h.c.incremental_alter_configs(&req(2, "t", 0, Some(&big)), &AcceptAllConfigs);
    assert_eq!(
        out.response[0].1.clone().unwrap_err().message.as_deref(),
        Some(
            "The configuration value cannot be added because it exceeds the maximum value size of 32767 bytes."
        )
    );
    h.check_invariants();
    // Without ELR none of this applies.
    let mut h = Harness::new(false);
    h.brokers(&[None]);
    let out =
        h.c.incremental_alter_configs(&req(4, "0", 0, Some("2")), &AcceptAllConfigs);
    assert!(out.response[0].1.is_ok());
    assert_eq!(out.records.len(), 1);
}
