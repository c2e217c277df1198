//! Every advertised API, at every advertised version, answered by the real handlers and
//! encoded: a response field set outside the versions that carry it (and that the spec does
//! not mark ignorable) fails encoding, which a client sees as a dropped connection.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

use std::collections::BTreeMap;

use arus_broker::{Broker, BrokerConfig, Outcome, SUPPORTED_APIS, supported_versions};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, BytesMut, Request, encode_response};
use arus_records::{BatchBuilder, Compression};

fn open_broker(dir: &std::path::Path) -> std::sync::Arc<Broker> {
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.display().to_string());
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

/// A representative request for `key` at `version`, touching topic `t` (which exists).
fn request(key: ApiKey, version: i16, topic_id: arus_protocol::Uuid, n: i16) -> Request {
    use arus_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use arus_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use arus_protocol::messages::delete_topics_request::DeleteTopicState;
    use arus_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use arus_protocol::messages::metadata_request::MetadataRequestTopic;
    use arus_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let fresh = format!("fresh-{}-{version}-{n}", key.name());
    match key {
        ApiKey::ApiVersions => Request::ApiVersions(ApiVersionsRequest::default()),
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
            topic_data: vec![TopicProduceData {
                name: "t".into(),
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
            }],
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
        ApiKey::ListOffsets => Request::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: [-1i64, -2, -3, 1_700_000_000_000, 9_999_999_999_999]
                    .iter()
                    .filter(|ts| **ts != -3 || version >= 7)
                    .map(|ts| ListOffsetsPartition {
                        partition_index: 0,
                        timestamp: *ts,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }),
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
    let mut n = 0;
    for (key, _) in SUPPORTED_APIS {
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
