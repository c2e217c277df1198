//! DescribeQuorum: the KRaft metadata quorum as `kafka-metadata-quorum describe` shows it.
//!
//! Arus runs as one node that is both the only broker and the only decider of metadata; it
//! keeps no replicated `__cluster_metadata` log (topics and configs live in their own files).
//! So the quorum of `__cluster_metadata-0` is this node alone, and each number means:
//!
//! - `LeaderId`: this node's id. It is the sole voter and decides every metadata change.
//! - `LeaderEpoch`: 0. No election has ever been held; the node leads from its start, and 0
//!   is also the leader epoch Arus reports for every partition.
//! - `HighWatermark` and the voter's `LogEndOffset`: -1, Kafka's value for "no high
//!   watermark" / "unknown", because there is no metadata log whose offsets could be given.
//!   (Kafka's single node reports its metadata log's offsets here.)
//! - `LastFetchTimestamp` / `LastCaughtUpTimestamp` (v1+): now, as Kafka reports them for
//!   the leader (a leader is trivially caught up with itself).
//! - `ReplicaDirectoryId` (v2+): the `directory.id` of the metadata directory's
//!   `meta.properties` (zero, "unassigned", when the broker was opened without reading it).
//! - `Observers`: none; no other node follows the quorum.
//! - `Nodes` (v2+): this node with its advertised listeners (Arus has no separate
//!   controller listener; the metadata decider is reached through them).
//!
//! Any other topic or partition, or more than one, gets UNKNOWN_TOPIC_OR_PARTITION on each
//! requested partition, as `KafkaRaftClient.handleDescribeQuorumRequest` answers.

use arus_protocol::ErrorCode;
use arus_protocol::Uuid;
use arus_protocol::messages::DescribeQuorumRequest;
use arus_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};

use tracing::info;

use crate::Broker;
use crate::broker::now_ms;

pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Kafka's `Errors.UNKNOWN_TOPIC_OR_PARTITION` message.
const UNKNOWN_PARTITION_MESSAGE: &str = "This server does not host this topic-partition.";

pub fn handle(
    broker: &Broker,
    request: &DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    // Kafka fills the v2 message fields with "" when there is no error.
    let no_message = || (version >= 2).then(String::new);
    let valid = request.topics.len() == 1
        && request.topics[0].topic_name == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !valid {
        info!(
            topics = ?request.topics.iter().map(|t| &t.topic_name).collect::<Vec<_>>(),
            "DescribeQuorum for something other than __cluster_metadata-0"
        );
        return DescribeQuorumResponse {
            error_code: ErrorCode::None.code(),
            error_message: no_message(),
            topics: request
                .topics
                .iter()
                .map(|t| TopicData {
                    topic_name: t.topic_name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| PartitionData {
                            partition_index: p.partition_index,
                            error_code: ErrorCode::UnknownTopicOrPartition.code(),
                            error_message: Some(UNKNOWN_PARTITION_MESSAGE.into()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let node = broker.node_id();
    let now = now_ms();
    let voter = ReplicaState {
        replica_id: node,
        replica_directory_id: broker
            .config
            .identity
            .as_ref()
            .map_or(Uuid::ZERO, |i| i.directory_id(&broker.config.log_dir)),
        log_end_offset: -1,
        last_fetch_timestamp: now,
        last_caught_up_timestamp: now,
        ..Default::default()
    };
    let listeners = broker
        .advertised_listeners()
        .into_iter()
        .map(|l| Listener {
            name: l.name,
            host: l.host,
            port: l.port,
            ..Default::default()
        })
        .collect();
    DescribeQuorumResponse {
        error_code: ErrorCode::None.code(),
        error_message: no_message(),
        topics: vec![TopicData {
            topic_name: METADATA_TOPIC.into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                error_code: ErrorCode::None.code(),
                error_message: no_message(),
                leader_id: node,
                leader_epoch: 0,
                high_watermark: -1,
                current_voters: vec![voter],
                observers: vec![],
                ..Default::default()
            }],
            ..Default::default()
        }],
        nodes: if version >= 2 {
            vec![Node {
                node_id: node,
                listeners,
                ..Default::default()
            }]
        } else {
            vec![]
        },
        ..Default::default()
    }
}
