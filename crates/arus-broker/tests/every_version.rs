//! Every advertised API, at every advertised version, answered by the real handlers and
//! encoded: a response field set outside the versions that carry it (and that the spec does
//! not mark ignorable) fails encoding, which a client sees as a dropped connection.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

use std::collections::BTreeMap;

use arus_broker::{Broker, BrokerConfig, Outcome, SUPPORTED_APIS, supported_versions};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, BytesMut, Request, Response, encode_response};
use arus_records::{BatchBuilder, Compression};

fn open_broker(dir: &std::path::Path) -> std::sync::Arc<Broker> {
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.display().to_string());
    // Joins complete at once instead of after the 3 s initial rebalance delay.
    props.insert(
        "group.initial.rebalance.delay.ms".to_string(),
        "0".to_string(),
    );
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

fn batch() -> arus_protocol::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(
        1_700_000_000_000,
        Some(b"k"),
        Some(b"v"),
        &[("h", Some(b"x"))],
    );
    b.build().unwrap()
}

/// The member id of the one-member group "stable" set up before the samples run.
static MEMBER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn member() -> String {
    MEMBER.get().cloned().unwrap_or_default()
}

/// Forms group "stable" (one member, generation 1, protocol "range") through the handlers.
async fn form_stable_group(broker: &std::sync::Arc<Broker>) {
    use arus_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use arus_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    broker.groups.wait_loaded().await;
    let header = |key: ApiKey| RequestHeader {
        request_api_key: key as i16,
        request_api_version: 3,
        correlation_id: 1,
        client_id: Some("test".into()),
        ..Default::default()
    };
    let join = Request::JoinGroup(JoinGroupRequest {
        group_id: "stable".into(),
        session_timeout_ms: 60_000,
        rebalance_timeout_ms: 60_000,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: arus_protocol::Bytes::from_static(b"\0\0\0\0\0\0"),
            ..Default::default()
        }],
        ..Default::default()
    });
    let Outcome::Respond(arus_protocol::Response::JoinGroup(j)) =
        broker.handle(&header(ApiKey::JoinGroup), join).await
    else {
        panic!("join failed")
    };
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, 1);
    MEMBER.set(j.member_id.clone()).unwrap();
    let sync = Request::SyncGroup(SyncGroupRequest {
        group_id: "stable".into(),
        generation_id: 1,
        member_id: j.member_id.clone(),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: j.member_id,
            assignment: arus_protocol::Bytes::from_static(b"a"),
            ..Default::default()
        }],
        ..Default::default()
    });
    let Outcome::Respond(arus_protocol::Response::SyncGroup(s)) =
        broker.handle(&header(ApiKey::SyncGroup), sync).await
    else {
        panic!("sync failed")
    };
    assert_eq!(s.error_code, 0);
    assert_eq!(&s.assignment[..], b"a");
}

/// An id no topic has.
const UNKNOWN_ID: arus_protocol::Uuid = arus_protocol::Uuid([7; 16]);

/// A representative request for `key` at `version`, touching topic `t` (which exists).
fn request(key: ApiKey, version: i16, topic_id: arus_protocol::Uuid, n: i16) -> Request {
    use arus_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use arus_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use arus_protocol::messages::delete_topics_request::DeleteTopicState;
    use arus_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use arus_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use arus_protocol::messages::leave_group_request::MemberIdentity;
    use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use arus_protocol::messages::metadata_request::MetadataRequestTopic;
    use arus_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use arus_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use arus_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use arus_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let fresh = format!("fresh-{}-{version}-{n}", key.name());
    match key {
        ApiKey::ApiVersions => Request::ApiVersions(ApiVersionsRequest {
            client_software_name: "test".into(),
            client_software_version: "1.0".into(),
            // v5: every other sample names another cluster (REBOOTSTRAP_REQUIRED).
            cluster_id: (version >= 5 && n % 2 == 0).then(|| "another-cluster".into()),
            node_id: if version >= 5 && n % 2 == 0 { 1 } else { -1 },
            ..Default::default()
        }),
        ApiKey::Metadata => Request::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some("t".into()),
                ..Default::default()
            }]),
            include_topic_authorized_operations: version >= 8,
            include_cluster_authorized_operations: (8..=10).contains(&version),
            ..Default::default()
        }),
        ApiKey::Produce => Request::Produce(ProduceRequest {
            acks: -1,
            timeout_ms: 5000,
            topic_data: vec![
                TopicProduceData {
                    name: if version < 13 {
                        "t".into()
                    } else {
                        String::new()
                    },
                    topic_id: if version >= 13 {
                        topic_id
                    } else {
                        Default::default()
                    },
                    partition_data: vec![
                        PartitionProduceData {
                            index: 0,
                            records: Some(batch()),
                            ..Default::default()
                        },
                        // An error path too: unknown partition.
                        PartitionProduceData {
                            index: 9,
                            records: Some(batch()),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                // And an unknown topic (by id from v13: UNKNOWN_TOPIC_ID).
                TopicProduceData {
                    name: if version < 13 {
                        "missing".into()
                    } else {
                        String::new()
                    },
                    topic_id: if version >= 13 {
                        UNKNOWN_ID
                    } else {
                        Default::default()
                    },
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(batch()),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        ApiKey::Fetch => Request::Fetch(FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            isolation_level: if version >= 4 { 1 } else { 0 },
            topics: vec![FetchTopic {
                topic: if version < 13 {
                    "t".into()
                } else {
                    String::new()
                },
                topic_id: if version >= 13 {
                    topic_id
                } else {
                    Default::default()
                },
                partitions: vec![
                    FetchPartition {
                        partition: 0,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    },
                    FetchPartition {
                        partition: 0,
                        fetch_offset: 999,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::ListOffsets => {
            // One timestamp per version (a partition asked twice is INVALID_REQUEST), the
            // newest special one the version knows, and one it does not know yet (refused
            // UNSUPPORTED_VERSION), on an unknown partition too.
            let newest = match version {
                11.. => -6,
                9..=10 => -5,
                8 => -4,
                7 => -3,
                _ => -2,
            };
            let timestamps = [
                newest,
                if version % 2 == 0 {
                    -6
                } else {
                    1_700_000_000_000
                },
            ];
            Request::ListOffsets(ListOffsetsRequest {
                replica_id: -1,
                topics: timestamps
                    .iter()
                    .zip([0, 9])
                    .map(|(ts, partition_index)| ListOffsetsTopic {
                        name: "t".into(),
                        partitions: vec![ListOffsetsPartition {
                            partition_index,
                            timestamp: *ts,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
        ApiKey::CreateTopics => Request::CreateTopics(CreateTopicsRequest {
            topics: vec![
                CreatableTopic {
                    name: fresh,
                    num_partitions: 2,
                    replication_factor: 1,
                    configs: vec![CreatableTopicConfig {
                        name: "retention.ms".into(),
                        value: Some("1000".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                CreatableTopic {
                    name: "t".into(),
                    num_partitions: 1,
                    replication_factor: 1,
                    ..Default::default()
                },
                CreatableTopic {
                    name: "bad rf".into(),
                    num_partitions: 1,
                    replication_factor: 3,
                    ..Default::default()
                },
            ],
            timeout_ms: 1000,
            ..Default::default()
        }),
        ApiKey::DeleteTopics => Request::DeleteTopics(DeleteTopicsRequest {
            topics: if version >= 6 {
                vec![DeleteTopicState {
                    name: Some("missing".into()),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            topic_names: if version < 6 {
                vec!["missing".into()]
            } else {
                Vec::new()
            },
            timeout_ms: 1000,
            ..Default::default()
        }),
        ApiKey::CreatePartitions => Request::CreatePartitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "t".into(),
                count: 1,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: 1000,
            validate_only: true,
            ..Default::default()
        }),
        ApiKey::DescribeConfigs => Request::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![
                DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: "t".into(),
                    configuration_keys: None,
                    ..Default::default()
                },
                DescribeConfigsResource {
                    resource_type: 4,
                    resource_name: "1".into(),
                    configuration_keys: None,
                    ..Default::default()
                },
            ],
            include_synonyms: version >= 1,
            include_documentation: version >= 3,
            ..Default::default()
        }),
        ApiKey::AlterConfigs => Request::AlterConfigs(AlterConfigsRequest {
            validate_only: true,
            ..Default::default()
        }),
        ApiKey::IncrementalAlterConfigs => {
            Request::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
                validate_only: true,
                ..Default::default()
            })
        }
        ApiKey::DescribeCluster => Request::DescribeCluster(DescribeClusterRequest {
            include_cluster_authorized_operations: true,
            include_fenced_brokers: version >= 2,
            ..Default::default()
        }),
        ApiKey::OffsetForLeaderEpoch => {
            Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                replica_id: -1,
                topics: vec![OffsetForLeaderTopic {
                    topic: "t".into(),
                    partitions: vec![OffsetForLeaderPartition {
                        partition: 0,
                        leader_epoch: 0,
                        current_leader_epoch: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
        ApiKey::FindCoordinator => Request::FindCoordinator(FindCoordinatorRequest {
            key: if version < 4 {
                "g".into()
            } else {
                String::new()
            },
            // Transaction keys exercise the refusal path.
            key_type: if version >= 1 && n % 2 == 0 { 1 } else { 0 },
            coordinator_keys: if version >= 4 {
                vec!["g".into(), "h".into()]
            } else {
                Vec::new()
            },
            ..Default::default()
        }),
        ApiKey::JoinGroup => Request::JoinGroup(JoinGroupRequest {
            group_id: fresh,
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            member_id: String::new(),
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: arus_protocol::Bytes::from_static(b"\0\0\0\0\0\0"),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::SyncGroup => Request::SyncGroup(SyncGroupRequest {
            group_id: "stable".into(),
            generation_id: 1,
            member_id: member(),
            protocol_type: (version >= 5).then(|| "consumer".into()),
            protocol_name: (version >= 5).then(|| "range".into()),
            ..Default::default()
        }),
        ApiKey::Heartbeat => Request::Heartbeat(HeartbeatRequest {
            group_id: "stable".into(),
            generation_id: 1,
            member_id: member(),
            ..Default::default()
        }),
        ApiKey::LeaveGroup => Request::LeaveGroup(LeaveGroupRequest {
            group_id: "stable".into(),
            member_id: if version < 3 {
                "nobody".into()
            } else {
                String::new()
            },
            members: if version >= 3 {
                vec![MemberIdentity {
                    member_id: "nobody".into(),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            ..Default::default()
        }),
        ApiKey::OffsetCommit => Request::OffsetCommit(OffsetCommitRequest {
            group_id: "stable".into(),
            generation_id_or_member_epoch: 1,
            member_id: member(),
            topics: vec![
                OffsetCommitRequestTopic {
                    name: if version < 10 {
                        "t".into()
                    } else {
                        String::new()
                    },
                    topic_id: if version >= 10 {
                        topic_id
                    } else {
                        Default::default()
                    },
                    partitions: vec![
                        OffsetCommitRequestPartition {
                            partition_index: 0,
                            committed_offset: 1,
                            committed_metadata: Some("m".into()),
                            ..Default::default()
                        },
                        OffsetCommitRequestPartition {
                            partition_index: 9,
                            committed_offset: 1,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                OffsetCommitRequestTopic {
                    name: if version < 10 {
                        "missing".into()
                    } else {
                        String::new()
                    },
                    topic_id: if version >= 10 {
                        UNKNOWN_ID
                    } else {
                        Default::default()
                    },
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        ApiKey::OffsetFetch => {
            if version < 8 {
                Request::OffsetFetch(OffsetFetchRequest {
                    group_id: "stable".into(),
                    topics: Some(vec![OffsetFetchRequestTopic {
                        name: "t".into(),
                        partition_indexes: vec![0, 1],
                        ..Default::default()
                    }]),
                    require_stable: version >= 7,
                    ..Default::default()
                })
            } else {
                Request::OffsetFetch(OffsetFetchRequest {
                    groups: vec![
                        OffsetFetchRequestGroup {
                            group_id: "stable".into(),
                            topics: None,
                            ..Default::default()
                        },
                        OffsetFetchRequestGroup {
                            group_id: "missing".into(),
                            topics: Some(vec![
                                OffsetFetchRequestTopics {
                                    name: if version < 10 {
                                        "t".into()
                                    } else {
                                        String::new()
                                    },
                                    topic_id: if version >= 10 {
                                        topic_id
                                    } else {
                                        Default::default()
                                    },
                                    partition_indexes: vec![0],
                                    ..Default::default()
                                },
                                OffsetFetchRequestTopics {
                                    name: if version < 10 {
                                        "missing".into()
                                    } else {
                                        String::new()
                                    },
                                    topic_id: if version >= 10 {
                                        UNKNOWN_ID
                                    } else {
                                        Default::default()
                                    },
                                    partition_indexes: vec![0],
                                    ..Default::default()
                                },
                            ]),
                            ..Default::default()
                        },
                    ],
                    require_stable: true,
                    ..Default::default()
                })
            }
        }
        ApiKey::DescribeGroups => Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec!["stable".into(), "missing".into()],
            include_authorized_operations: version >= 3,
            ..Default::default()
        }),
        ApiKey::ListGroups => Request::ListGroups(ListGroupsRequest {
            states_filter: if version >= 4 {
                vec!["Stable".into()]
            } else {
                Vec::new()
            },
            types_filter: if version >= 5 {
                vec!["classic".into()]
            } else {
                Vec::new()
            },
            ..Default::default()
        }),
        ApiKey::DeleteGroups => Request::DeleteGroups(DeleteGroupsRequest {
            groups_names: vec!["missing".into(), "stable".into()],
            ..Default::default()
        }),
        ApiKey::OffsetDelete => Request::OffsetDelete(OffsetDeleteRequest {
            group_id: "stable".into(),
            topics: vec![OffsetDeleteRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetDeleteRequestPartition {
                    partition_index: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::ConsumerGroupHeartbeat => {
            Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
                group_id: format!("cg-{n}"),
                // v1+: the client generates its member id.
                member_id: if version >= 1 {
                    format!("member-{n}")
                } else {
                    String::new()
                },
                member_epoch: 0,
                rebalance_timeout_ms: 60_000,
                subscribed_topic_names: Some(vec!["t".into()]),
                topic_partitions: Some(vec![]),
                ..Default::default()
            })
        }
        ApiKey::ConsumerGroupDescribe => {
            Request::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
                group_ids: vec!["cg-described".into(), "stable".into(), "missing".into()],
                include_authorized_operations: true,
                ..Default::default()
            })
        }
        ApiKey::InitProducerId => Request::InitProducerId(InitProducerIdRequest {
            transactional_id: (n % 2 == 0).then(|| format!("tx-{n}")),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }),
        ApiKey::AddPartitionsToTxn => {
            use arus_protocol::messages::add_partitions_to_txn_request::{
                AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
            };
            let topics = vec![AddPartitionsToTxnTopic {
                name: "t".into(),
                partitions: vec![0, 7],
                ..Default::default()
            }];
            if version <= 3 {
                Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                    v3_and_below_transactional_id: "tx-missing".into(),
                    v3_and_below_producer_id: 1,
                    v3_and_below_producer_epoch: 0,
                    v3_and_below_topics: topics,
                    ..Default::default()
                })
            } else {
                Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                    transactions: vec![AddPartitionsToTxnTransaction {
                        transactional_id: "tx-missing".into(),
                        producer_id: 1,
                        producer_epoch: 0,
                        verify_only: n % 2 == 0,
                        topics,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            }
        }
        ApiKey::AddOffsetsToTxn => Request::AddOffsetsToTxn(AddOffsetsToTxnRequest {
            transactional_id: "tx-missing".into(),
            producer_id: 1,
            producer_epoch: 0,
            group_id: "stable".into(),
            ..Default::default()
        }),
        ApiKey::EndTxn => Request::EndTxn(EndTxnRequest {
            transactional_id: "tx-missing".into(),
            producer_id: 1,
            producer_epoch: 0,
            committed: n % 2 == 0,
            ..Default::default()
        }),
        ApiKey::WriteTxnMarkers => {
            use arus_protocol::messages::write_txn_markers_request::{
                WritableTxnMarker, WritableTxnMarkerTopic,
            };
            Request::WriteTxnMarkers(WriteTxnMarkersRequest {
                markers: vec![WritableTxnMarker {
                    producer_id: 900 + n as i64,
                    producer_epoch: 0,
                    transaction_result: false,
                    coordinator_epoch: 0,
                    transaction_version: if version >= 2 { 2 } else { 0 },
                    topics: vec![
                        WritableTxnMarkerTopic {
                            name: "t".into(),
                            partition_indexes: vec![0],
                            ..Default::default()
                        },
                        WritableTxnMarkerTopic {
                            name: "missing".into(),
                            partition_indexes: vec![0],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
            })
        }
        ApiKey::TxnOffsetCommit => {
            use arus_protocol::messages::txn_offset_commit_request::{
                TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
            };
            Request::TxnOffsetCommit(TxnOffsetCommitRequest {
                transactional_id: "tx-missing".into(),
                group_id: "stable".into(),
                producer_id: 1,
                producer_epoch: 0,
                generation_id_or_member_epoch: -1,
                member_id: String::new(),
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: if version < 6 {
                        "t".into()
                    } else {
                        String::new()
                    },
                    topic_id: if version >= 6 {
                        topic_id
                    } else {
                        Default::default()
                    },
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 1,
                        committed_leader_epoch: -1,
                        committed_metadata: Some("m".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
        ApiKey::DescribeTransactions => {
            Request::DescribeTransactions(DescribeTransactionsRequest {
                transactional_ids: vec!["tx-2".into(), "tx-missing".into()],
                ..Default::default()
            })
        }
        ApiKey::ListTransactions => Request::ListTransactions(ListTransactionsRequest {
            state_filters: if n % 2 == 0 {
                vec!["Empty".into(), "Bogus".into()]
            } else {
                vec![]
            },
            producer_id_filters: vec![],
            duration_filter: -1,
            // v2: a pattern, or an invalid one (INVALID_REGULAR_EXPRESSION).
            transactional_id_pattern: (version >= 2).then(|| {
                if n % 2 == 0 {
                    "tx-.*".into()
                } else {
                    "[".into()
                }
            }),
            ..Default::default()
        }),
        ApiKey::DescribeProducers => Request::DescribeProducers(DescribeProducersRequest {
            topics: vec![
                arus_protocol::messages::describe_producers_request::TopicRequest {
                    name: "t".into(),
                    partition_indexes: vec![0, 9],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        ApiKey::DeleteRecords => {
            use arus_protocol::messages::delete_records_request::{
                DeleteRecordsPartition, DeleteRecordsTopic,
            };
            Request::DeleteRecords(DeleteRecordsRequest {
                topics: vec![DeleteRecordsTopic {
                    name: "t".into(),
                    partitions: vec![
                        DeleteRecordsPartition {
                            partition_index: 0,
                            offset: 0,
                            ..Default::default()
                        },
                        DeleteRecordsPartition {
                            partition_index: 5,
                            offset: 0,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            })
        }
        // The current level again: accepted at every version, levels unchanged.
        ApiKey::UpdateFeatures => Request::UpdateFeatures(UpdateFeaturesRequest {
            timeout_ms: 1000,
            feature_updates: vec![
                arus_protocol::messages::update_features_request::FeatureUpdateKey {
                    feature: "transaction.version".into(),
                    max_version_level: 2,
                    upgrade_type: 1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        ApiKey::DescribeLogDirs => {
            use arus_protocol::messages::DescribeLogDirsRequest;
            use arus_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
            Request::DescribeLogDirs(DescribeLogDirsRequest {
                topics: Some(vec![DescribableLogDirTopic {
                    topic: "t".into(),
                    partitions: vec![0, 5],
                    ..Default::default()
                }]),
                ..Default::default()
            })
        }
        ApiKey::AlterReplicaLogDirs => {
            use arus_protocol::messages::AlterReplicaLogDirsRequest;
            use arus_protocol::messages::alter_replica_log_dirs_request::{
                AlterReplicaLogDir, AlterReplicaLogDirTopic,
            };
            // A directory not in the config: answered (LOG_DIR_NOT_FOUND), nothing moves.
            Request::AlterReplicaLogDirs(AlterReplicaLogDirsRequest {
                dirs: vec![AlterReplicaLogDir {
                    path: "/no/such/log/dir".into(),
                    topics: vec![AlterReplicaLogDirTopic {
                        name: "t".into(),
                        partitions: vec![0],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
        ApiKey::DescribeAcls => Request::DescribeAcls(DescribeAclsRequest {
            resource_type_filter: 1,
            pattern_type_filter: 1,
            operation: 1,
            permission_type: 1,
            ..Default::default()
        }),
        ApiKey::CreateAcls => Request::CreateAcls(CreateAclsRequest {
            creations: vec![create_acls_request::AclCreation {
                resource_type: 2,
                resource_name: "t".into(),
                resource_pattern_type: 3,
                principal: "User:a".into(),
                host: "*".into(),
                operation: 3,
                permission_type: 3,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::DeleteAcls => Request::DeleteAcls(DeleteAclsRequest {
            filters: vec![delete_acls_request::DeleteAclsFilter {
                resource_type_filter: 1,
                pattern_type_filter: 1,
                operation: 1,
                permission_type: 1,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::ElectLeaders => Request::ElectLeaders(ElectLeadersRequest {
            election_type: 0,
            topic_partitions: Some(vec![elect_leaders_request::TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 7],
                ..Default::default()
            }]),
            timeout_ms: 1000,
            ..Default::default()
        }),
        ApiKey::AlterPartitionReassignments => {
            use arus_protocol::messages::alter_partition_reassignments_request as a;
            Request::AlterPartitionReassignments(AlterPartitionReassignmentsRequest {
                timeout_ms: 1000,
                allow_replication_factor_change: version == 0,
                topics: vec![a::ReassignableTopic {
                    name: "t".into(),
                    partitions: vec![
                        a::ReassignablePartition {
                            partition_index: 0,
                            replicas: Some(vec![1]),
                            ..Default::default()
                        },
                        a::ReassignablePartition {
                            partition_index: 0,
                            replicas: None,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
        ApiKey::ListPartitionReassignments => {
            Request::ListPartitionReassignments(ListPartitionReassignmentsRequest {
                timeout_ms: 1000,
                topics: None,
                ..Default::default()
            })
        }
        ApiKey::DescribeQuorum => Request::DescribeQuorum(DescribeQuorumRequest {
            topics: vec![describe_quorum_request::TopicData {
                topic_name: "__cluster_metadata".into(),
                partitions: vec![describe_quorum_request::PartitionData {
                    partition_index: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::DescribeTopicPartitions => {
            Request::DescribeTopicPartitions(DescribeTopicPartitionsRequest {
                topics: vec![],
                response_partition_limit: 2000,
                cursor: None,
                ..Default::default()
            })
        }
        ApiKey::ListConfigResources => Request::ListConfigResources(ListConfigResourcesRequest {
            resource_types: if version >= 1 {
                vec![2, 16, 32]
            } else {
                vec![]
            },
            ..Default::default()
        }),
        ApiKey::GetTelemetrySubscriptions => {
            Request::GetTelemetrySubscriptions(GetTelemetrySubscriptionsRequest::default())
        }
        ApiKey::PushTelemetry => Request::PushTelemetry(PushTelemetryRequest {
            client_instance_id: arus_protocol::Uuid([7; 16]),
            subscription_id: 1,
            compression_type: 0,
            ..Default::default()
        }),
        ApiKey::AddRaftVoter => Request::AddRaftVoter(AddRaftVoterRequest {
            cluster_id: None,
            timeout_ms: 1_000,
            voter_id: 2,
            voter_directory_id: arus_protocol::Uuid([2; 16]),
            listeners: vec![add_raft_voter_request::Listener {
                name: "CONTROLLER".into(),
                host: "127.0.0.1".into(),
                port: 9093,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::RemoveRaftVoter => Request::RemoveRaftVoter(RemoveRaftVoterRequest {
            cluster_id: None,
            voter_id: 1,
            voter_directory_id: arus_protocol::Uuid([1; 16]),
            ..Default::default()
        }),
        other => panic!("no sample request for {}", other.name()),
    }
}

#[tokio::test]
async fn every_supported_version_answers_and_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let created = broker
        .topics
        .create(arus_broker::topics::NewTopic {
            name: "t".into(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    form_stable_group(&broker).await;
    broker.txns.wait_loaded().await;
    // A consumer group with one member, for ConsumerGroupDescribe.
    let header = RequestHeader {
        request_api_key: ApiKey::ConsumerGroupHeartbeat as i16,
        request_api_version: 0,
        correlation_id: 1,
        client_id: Some("test".into()),
        ..Default::default()
    };
    let hb = Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
        group_id: "cg-described".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        topic_partitions: Some(vec![]),
        ..Default::default()
    });
    match broker.handle(&header, hb).await {
        Outcome::Respond(Response::ConsumerGroupHeartbeat(r)) => assert_eq!(r.error_code, 0),
        other => panic!("{other:?}"),
    }
    let mut n = 0;
    for (key, _, _) in SUPPORTED_APIS {
        let (min, max) = supported_versions(*key).unwrap();
        for version in min..=max {
            n += 1;
            let req = request(*key, version, created.id, n);
            // The request must be encodable at this version too (sanity of the sample).
            let mut scratch = BytesMut::new();
            req.encode(&mut scratch, version)
                .unwrap_or_else(|e| panic!("sample {} v{version}: {e}", key.name()));
            let header = RequestHeader {
                request_api_key: *key as i16,
                request_api_version: version,
                correlation_id: 1,
                client_id: Some("test".into()),
                ..Default::default()
            };
            match broker.handle(&header, req).await {
                Outcome::Respond(resp) => {
                    let mut out = BytesMut::new();
                    encode_response(1, *key, version, &resp, &mut out)
                        .unwrap_or_else(|e| panic!("{} v{version} response: {e}", key.name()));
                }
                other => panic!("{} v{version}: {other:?}", key.name()),
            }
        }
    }
    broker.shutdown();
}
