//! The operators' APIs on one node, through the broker's handlers, with the answers Kafka
//! 4.4 gives on a single node (checked against a real one): DescribeTopicPartitions paging,
//! DescribeQuorum, ElectLeaders, partition reassignments, and the ACL APIs without an
//! authorizer.

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

mod common;

use std::sync::Arc;

use arus_broker::topics::NewTopic;
use arus_broker::{Broker, Outcome};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response};

async fn call(broker: &Arc<Broker>, key: ApiKey, version: i16, req: Request) -> Outcome {
    let header = RequestHeader {
        request_api_key: key as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("ops-test".into()),
        ..Default::default()
    };
    broker.handle(&header, req).await
}

async fn respond(broker: &Arc<Broker>, key: ApiKey, version: i16, req: Request) -> Response {
    match call(broker, key, version, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

fn topic(broker: &Broker, name: &str, partitions: i32) {
    broker
        .topics
        .create(NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs: Default::default(),
        })
        .unwrap();
}

mod describe_topic_partitions {
    use super::*;
    use arus_protocol::messages::describe_topic_partitions_request as req;
    use arus_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponse;

    async fn dtp(
        broker: &Arc<Broker>,
        topics: &[&str],
        limit: i32,
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsResponse {
        let r = Request::DescribeTopicPartitions(DescribeTopicPartitionsRequest {
            topics: topics
                .iter()
                .map(|t| req::TopicRequest {
                    name: t.to_string(),
                    ..Default::default()
                })
                .collect(),
            response_partition_limit: limit,
            cursor: cursor.map(|(t, p)| req::Cursor {
                topic_name: t.into(),
                partition_index: p,
                ..Default::default()
            }),
            ..Default::default()
        });
        match respond(broker, ApiKey::DescribeTopicPartitions, 0, r).await {
            Response::DescribeTopicPartitions(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// (topic, error, [partition indexes]) per topic, and the next cursor.
    type Shape = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

    /// The shape of a response.
    fn shape(r: &DescribeTopicPartitionsResponse) -> Shape {
        (
            r.topics
                .iter()
                .map(|t| {
                    (
                        t.name.clone().unwrap(),
                        t.error_code,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                })
                .collect(),
            r.next_cursor
                .as_ref()
                .map(|c| (c.topic_name.clone(), c.partition_index)),
        )
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[tokio::test]
    async fn pages_through_topics_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[]);
        topic(&broker, "t1", 3);
        topic(&broker, "zz", 2);

        let r = dtp(&broker, &[], 2, None).await;
        assert_eq!(
            shape(&r),
            (vec![(s("t1"), 0, vec![0, 1])], Some((s("t1"), 2)))
        );
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.leader_id, p.leader_epoch), (1, 0));
        assert_eq!(
            (p.replica_nodes.clone(), p.isr_nodes.clone()),
            (vec![1], vec![1])
        );
        // No ELR data: empty lists, not null (Kafka's `Replicas.toList` of an empty array).
        assert_eq!(p.eligible_leader_replicas, Some(vec![]));
        assert_eq!(p.last_known_elr, Some(vec![]));
        assert_eq!(r.topics[0].topic_authorized_operations, 0b1101_1111_1000);
        assert_eq!(r.topics[0].topic_id, broker.topics.get("t1").unwrap().id);

        // Resuming at the cursor.
        let r = dtp(&broker, &[], 2000, Some(("t1", 1))).await;
        assert_eq!(
            shape(&r),
            (
                vec![(s("t1"), 0, vec![1, 2]), (s("zz"), 0, vec![0, 1])],
                None
            )
        );
        // A cursor past the topic's end gives it with no partitions and goes on.
        let r = dtp(&broker, &[], 2000, Some(("t1", 7))).await;
        assert_eq!(
            shape(&r),
            (vec![(s("t1"), 0, vec![]), (s("zz"), 0, vec![0, 1])], None)
        );
        // The limit reached exactly at a topic's end: the cursor is the next topic's start.
        let r = dtp(&broker, &["zz", "t1", "t1"], 3, None).await;
        assert_eq!(
            shape(&r),
            (vec![(s("t1"), 0, vec![0, 1, 2])], Some((s("zz"), 0)))
        );
        // Cut inside the second topic.
        let r = dtp(&broker, &["t1", "zz"], 4, None).await;
        assert_eq!(
            shape(&r),
            (
                vec![(s("t1"), 0, vec![0, 1, 2]), (s("zz"), 0, vec![0])],
                Some((s("zz"), 1))
            )
        );
        // A limit of 0 counts as 1; unknown and illegal names are reported, sorted first.
        let r = dtp(&broker, &["t1", "nope", "bad$"], 0, None).await;
        assert_eq!(
            shape(&r),
            (
                vec![
                    (s("bad$"), ErrorCode::InvalidTopicException.code(), vec![]),
                    (s("nope"), ErrorCode::UnknownTopicOrPartition.code(), vec![]),
                    (s("t1"), 0, vec![0]),
                ],
                Some((s("t1"), 1))
            )
        );
        broker.shutdown();
    }

    #[tokio::test]
    async fn a_bad_cursor_fails_every_requested_topic() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[]);
        topic(&broker, "t1", 3);
        for cursor in [("a", 0), ("t1", -1)] {
            let r = dtp(&broker, &["t1"], 10, Some(cursor)).await;
            assert_eq!(
                shape(&r),
                (
                    vec![(s("t1"), ErrorCode::InvalidRequest.code(), vec![])],
                    None
                )
            );
            assert_eq!(r.topics[0].topic_authorized_operations, i32::MIN);
        }
        broker.shutdown();
    }
}

mod describe_quorum {
    use super::*;
    use arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};

    fn request(topics: &[(&str, &[i32])]) -> Request {
        Request::DescribeQuorum(DescribeQuorumRequest {
            topics: topics
                .iter()
                .map(|(t, ps)| TopicData {
                    topic_name: t.to_string(),
                    partitions: ps
                        .iter()
                        .map(|p| PartitionData {
                            partition_index: *p,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn this_node_is_the_only_voter_and_leads() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[("node.id", "7")]);
        for version in 0..=2 {
            let r = match respond(
                &broker,
                ApiKey::DescribeQuorum,
                version,
                request(&[("__cluster_metadata", &[0])]),
            )
            .await
            {
                Response::DescribeQuorum(r) => r,
                other => panic!("{other:?}"),
            };
            assert_eq!(r.error_code, 0);
            let p = &r.topics[0].partitions[0];
            assert_eq!((p.error_code, p.leader_id, p.leader_epoch), (0, 7, 0));
            // No metadata log: no high watermark, no log end offset (Kafka's -1).
            assert_eq!(p.high_watermark, -1);
            assert_eq!(p.current_voters.len(), 1);
            assert_eq!(p.current_voters[0].replica_id, 7);
            assert_eq!(p.current_voters[0].log_end_offset, -1);
            assert!(p.current_voters[0].last_caught_up_timestamp > 0);
            assert!(p.observers.is_empty());
            if version == 2 {
                assert_eq!(r.nodes.len(), 1);
                assert_eq!(r.nodes[0].node_id, 7);
                assert_eq!(r.nodes[0].listeners[0].name, "PLAINTEXT");
                assert_eq!(r.error_message.as_deref(), Some(""));
            } else {
                assert!(r.nodes.is_empty());
            }
        }
        broker.shutdown();
    }

    #[tokio::test]
    async fn other_partitions_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[]);
        for topics in [
            &[("t1", &[0][..])][..],
            &[("__cluster_metadata", &[1][..])][..],
            &[("__cluster_metadata", &[0, 0][..])][..],
        ] {
            let r = match respond(&broker, ApiKey::DescribeQuorum, 2, request(topics)).await {
                Response::DescribeQuorum(r) => r,
                other => panic!("{other:?}"),
            };
            assert_eq!(r.error_code, 0);
            for p in r.topics.iter().flat_map(|t| &t.partitions) {
                assert_eq!(p.error_code, ErrorCode::UnknownTopicOrPartition.code());
                assert_eq!(
                    p.error_message.as_deref(),
                    Some("This server does not host this topic-partition.")
                );
                assert!(p.current_voters.is_empty());
            }
        }
        let r = match respond(&broker, ApiKey::DescribeQuorum, 2, request(&[])).await {
            Response::DescribeQuorum(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(r.topics.is_empty());
        broker.shutdown();
    }
}

mod leadership {
    use super::*;
    use arus_protocol::messages::alter_partition_reassignments_request as ap;
    use arus_protocol::messages::elect_leaders_request::TopicPartitions;
    use arus_protocol::messages::elect_leaders_response::ElectLeadersResponse;

    async fn elect(
        broker: &Arc<Broker>,
        version: i16,
        election_type: i8,
        tps: Option<Vec<(&str, Vec<i32>)>>,
    ) -> ElectLeadersResponse {
        let r = Request::ElectLeaders(ElectLeadersRequest {
            election_type,
            topic_partitions: tps.map(|v| {
                v.into_iter()
                    .map(|(t, partitions)| TopicPartitions {
                        topic: t.into(),
                        partitions,
                        ..Default::default()
                    })
                    .collect()
            }),
            timeout_ms: 1000,
            ..Default::default()
        });
        match respond(broker, ApiKey::ElectLeaders, version, r).await {
            Response::ElectLeaders(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn results(r: &ElectLeadersResponse) -> Vec<(String, i32, i16, String)> {
        r.replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| {
                    (
                        t.topic.clone(),
                        p.partition_id,
                        p.error_code,
                        p.error_message.clone().unwrap_or_default(),
                    )
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn elections_are_never_needed_on_one_node() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[]);
        topic(&broker, "t1", 2);
        let not_needed = "Leader election not needed for topic partition.".to_string();
        for (version, kind) in [(0, 0), (1, 1), (2, 0), (2, 1)] {
            let r = elect(
                &broker,
                version,
                kind,
                Some(vec![("t1", vec![0, 9]), ("nope", vec![0])]),
            )
            .await;
            assert_eq!(r.error_code, 0);
            assert_eq!(
                results(&r),
                vec![
                    (
                        "t1".into(),
                        0,
                        ErrorCode::ElectionNotNeeded.code(),
                        not_needed.clone()
                    ),
                    (
                        "t1".into(),
                        9,
                        ErrorCode::UnknownTopicOrPartition.code(),
                        "No such partition as t1-9".into()
                    ),
                    (
                        "nope".into(),
                        0,
                        ErrorCode::UnknownTopicOrPartition.code(),
                        "No such topic as nope".into()
                    ),
                ]
            );
        }
        // All partitions: each topic is listed, with the not-needed ones left out.
        let r = elect(&broker, 2, 0, None).await;
        assert_eq!(r.replica_election_results.len(), 1);
        assert_eq!(r.replica_election_results[0].topic, "t1");
        assert!(results(&r).is_empty());
        // An unknown election type fails the request and each partition.
        let r = elect(&broker, 2, 5, Some(vec![("t1", vec![0])])).await;
        assert_eq!(r.error_code, ErrorCode::InvalidRequest.code());
        assert_eq!(
            results(&r),
            vec![(
                "t1".into(),
                0,
                ErrorCode::InvalidRequest.code(),
                "Unknown election type 5".into()
            )]
        );
        broker.shutdown();
    }

    #[tokio::test]
    async fn reassignment_to_this_node_completes_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[]);
        topic(&broker, "t1", 1);
        type Case = (
            &'static str,
            i32,
            Option<Vec<i32>>,
            ErrorCode,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            ("t1", 0, Some(vec![1]), ErrorCode::None, None),
            (
                "t1",
                0,
                Some(vec![2]),
                ErrorCode::InvalidReplicaAssignment,
                Some(
                    "The manual partition assignment includes broker 2, but no such broker is registered.",
                ),
            ),
            (
                "t1",
                0,
                Some(vec![1, 2]),
                ErrorCode::InvalidReplicaAssignment,
                Some(
                    "The manual partition assignment includes broker 2, but no such broker is registered.",
                ),
            ),
            (
                "t1",
                0,
                Some(vec![]),
                ErrorCode::InvalidReplicaAssignment,
                Some("The manual partition assignment includes an empty replica list."),
            ),
            (
                "t1",
                0,
                Some(vec![1, 1]),
                ErrorCode::InvalidReplicaAssignment,
                Some("The manual partition assignment includes the broker 1 more than once."),
            ),
            ("t1", 0, None, ErrorCode::NoReassignmentInProgress, None),
            (
                "nope",
                0,
                Some(vec![1]),
                ErrorCode::UnknownTopicOrPartition,
                Some("Unable to find a topic named nope."),
            ),
            (
                "t1",
                9,
                None,
                ErrorCode::UnknownTopicOrPartition,
                Some("Unable to find partition t1:9."),
            ),
        ];
        for version in 0..=1 {
            for (name, partition, replicas, code, message) in &cases {
                let r = Request::AlterPartitionReassignments(AlterPartitionReassignmentsRequest {
                    timeout_ms: 1000,
                    allow_replication_factor_change: version == 0,
                    topics: vec![ap::ReassignableTopic {
                        name: name.to_string(),
                        partitions: vec![ap::ReassignablePartition {
                            partition_index: *partition,
                            replicas: replicas.clone(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                let r =
                    match respond(&broker, ApiKey::AlterPartitionReassignments, version, r).await {
                        Response::AlterPartitionReassignments(r) => r,
                        other => panic!("{other:?}"),
                    };
                assert_eq!((r.error_code, r.error_message.clone()), (0, None));
                assert_eq!(r.allow_replication_factor_change, version == 0);
                let p = &r.responses[0].partitions[0];
                assert_eq!(
                    (p.error_code, p.error_message.as_deref()),
                    (code.code(), *message),
                    "{name}-{partition} -> {replicas:?}"
                );
            }
        }
        // Nothing is in progress afterwards, whichever topics are asked for.
        for topics in [
            None,
            Some(vec![
                list_partition_reassignments_request::ListPartitionReassignmentsTopics {
                    name: "t1".into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                },
            ]),
        ] {
            let r = Request::ListPartitionReassignments(ListPartitionReassignmentsRequest {
                timeout_ms: 1000,
                topics,
                ..Default::default()
            });
            match respond(&broker, ApiKey::ListPartitionReassignments, 0, r).await {
                Response::ListPartitionReassignments(r) => {
                    assert_eq!((r.error_code, r.topics.len()), (0, 0))
                }
                other => panic!("{other:?}"),
            }
        }
        // The assignment itself is unchanged: this node still leads the one replica.
        assert_eq!(broker.topics.get("t1").unwrap().partition_count(), 1);
        broker.shutdown();
    }
}

mod acls {
    use super::*;
    use arus_protocol::messages::create_acls_request::AclCreation;
    use arus_protocol::messages::delete_acls_request::DeleteAclsFilter;

    fn creation() -> AclCreation {
        AclCreation {
            resource_type: 2,
            resource_name: "t1".into(),
            resource_pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission_type: 3,
            ..Default::default()
        }
    }

    fn filter() -> DeleteAclsFilter {
        DeleteAclsFilter {
            resource_type_filter: 1,
            pattern_type_filter: 1,
            operation: 1,
            permission_type: 1,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn security_is_disabled_without_an_authorizer() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[]);
        for version in 1..=3 {
            let r = Request::DescribeAcls(DescribeAclsRequest {
                resource_type_filter: 1,
                pattern_type_filter: 1,
                operation: 1,
                permission_type: 1,
                ..Default::default()
            });
            match respond(&broker, ApiKey::DescribeAcls, version, r).await {
                Response::DescribeAcls(r) => {
                    assert_eq!(r.error_code, ErrorCode::SecurityDisabled.code());
                    assert_eq!(
                        r.error_message.as_deref(),
                        Some("No Authorizer is configured on the broker")
                    );
                    assert!(r.resources.is_empty());
                }
                other => panic!("{other:?}"),
            }
            let r = Request::CreateAcls(CreateAclsRequest {
                creations: vec![creation(), creation()],
                ..Default::default()
            });
            match respond(&broker, ApiKey::CreateAcls, version, r).await {
                Response::CreateAcls(r) => {
                    assert_eq!(r.results.len(), 2);
                    for x in &r.results {
                        assert_eq!(x.error_code, ErrorCode::SecurityDisabled.code());
                        assert_eq!(
                            x.error_message.as_deref(),
                            Some("No Authorizer is configured.")
                        );
                    }
                }
                other => panic!("{other:?}"),
            }
            let r = Request::DeleteAcls(DeleteAclsRequest {
                filters: vec![filter(), filter(), filter()],
                ..Default::default()
            });
            match respond(&broker, ApiKey::DeleteAcls, version, r).await {
                Response::DeleteAcls(r) => {
                    assert_eq!(r.filter_results.len(), 3);
                    for x in &r.filter_results {
                        assert_eq!(x.error_code, ErrorCode::SecurityDisabled.code());
                        assert_eq!(
                            x.error_message.as_deref(),
                            Some("No Authorizer is configured.")
                        );
                        assert!(x.matching_acls.is_empty());
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        broker.shutdown();
    }

    #[tokio::test]
    async fn unknown_elements_close_the_connection_as_in_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let broker = common::open_broker(dir.path(), &[]);
        let describe = Request::DescribeAcls(DescribeAclsRequest::default());
        assert!(matches!(
            call(&broker, ApiKey::DescribeAcls, 3, describe).await,
            Outcome::Close(_)
        ));
        let create = Request::CreateAcls(CreateAclsRequest {
            creations: vec![
                creation(),
                AclCreation {
                    operation: 0,
                    ..creation()
                },
            ],
            ..Default::default()
        });
        assert!(matches!(
            call(&broker, ApiKey::CreateAcls, 3, create).await,
            Outcome::Close(_)
        ));
        let delete = Request::DeleteAcls(DeleteAclsRequest {
            filters: vec![DeleteAclsFilter {
                resource_type_filter: 0,
                ..filter()
            }],
            ..Default::default()
        });
        assert!(matches!(
            call(&broker, ApiKey::DeleteAcls, 3, delete).await,
            Outcome::Close(_)
        ));
        broker.shutdown();
    }
}
