//! DescribeTopicPartitions (KIP-966), the paged topic description `kafka-topics --describe`
//! uses since Kafka 3.8, answered as Kafka's `DescribeTopicPartitionsRequestHandler` and
//! `KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse` do:
//!
//! - topics are visited in name order (duplicates once), from the cursor's topic on;
//! - at most `min(ResponsePartitionLimit, 2000)` partitions (at least 1) are returned; when
//!   the limit cuts a topic, `NextCursor` names the first partition left out, and when it is
//!   reached exactly at a topic boundary, the next topic's partition 0;
//! - asked for all topics, unknown ones are skipped; asked by name, an unknown topic is
//!   UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION if the name is not legal);
//! - a cursor whose topic is not in the requested list, or whose partition is negative, fails
//!   the whole request with INVALID_REQUEST on every requested topic.
//!
//! Partitions are described from the cluster view as Kafka's
//! `getPartitionMetadataForDescribeTopicResponse` does: no per-partition error, leader -1 when
//! the leader has no endpoint on the request's listener, ELR and last known ELR as the view
//! has them (empty lists on a single node, as Kafka sends them without ELR data).

use std::collections::BTreeSet;

use arus_protocol::ErrorCode;
use arus_protocol::Uuid;
use arus_protocol::messages::DescribeTopicPartitionsRequest;
use arus_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use tracing::info;

use crate::Broker;
use crate::authorized_operations;
use crate::cluster::ClusterView;
use crate::cluster::describe::{self, Describing};
use crate::topics::{Topic, is_internal_topic, validate_topic_name};

/// Kafka's `max.request.partition.size.limit` default, the cap on the client's limit.
pub const MAX_REQUEST_PARTITION_SIZE_LIMIT: i32 = 2000;

/// `listener`: the name of the listener the request came in on.
pub fn handle(
    broker: &Broker,
    request: DescribeTopicPartitionsRequest,
    listener: &str,
) -> DescribeTopicPartitionsResponse {
    let fetch_all = request.topics.is_empty();
    let cursor = request.cursor.as_ref();
    let cursor_topic = cursor.map(|c| c.topic_name.as_str()).unwrap_or("");
    let names: BTreeSet<String> = if fetch_all {
        broker
            .topics
            .all()
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| n.as_str() >= cursor_topic)
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| n.as_str() >= cursor_topic)
            .collect()
    };
    if let Some(c) = cursor {
        let problem = if !fetch_all && !names.contains(&c.topic_name) {
            Some(format!(
                "DescribeTopicPartitionsRequest topic list should contain the cursor topic: {}",
                c.topic_name
            ))
        } else if c.partition_index < 0 {
            Some(format!(
                "DescribeTopicPartitionsRequest cursor partition must be valid: {c:?}"
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            info!(%message, "DescribeTopicPartitions refused");
            return request_error(&request, ErrorCode::InvalidRequest);
        }
    }

    let limit = effective_limit(request.response_partition_limit);
    let start_of = |name: &str| match cursor {
        Some(c) if c.topic_name == name => c.partition_index,
        _ => 0,
    };
    let view = broker.cluster.current();
    let mut remaining = limit;
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            // The limit ended exactly with the previous topic: resume at this one.
            response.next_cursor = Some(Cursor {
                topic_name: name,
                partition_index: 0,
                ..Default::default()
            });
            break;
        }
        match broker.topics.get(&name) {
            Some(topic) => {
                let (described, next) =
                    describe(&topic, (&view, listener), start_of(&name), remaining);
                remaining -= described.partitions.len() as i32;
                response.topics.push(described);
                if let Some(next) = next {
                    response.next_cursor = Some(Cursor {
                        topic_name: name,
                        partition_index: next,
                        ..Default::default()
                    });
                    break;
                }
            }
            None if fetch_all => {}
            None => {
                let code = match validate_topic_name(&name) {
                    Ok(()) => ErrorCode::UnknownTopicOrPartition,
                    Err(_) => ErrorCode::InvalidTopicException,
                };
                response.topics.push(DescribeTopicPartitionsResponseTopic {
                    error_code: code.code(),
                    is_internal: is_internal_topic(&name),
                    name: Some(name),
                    topic_id: Uuid::ZERO,
                    partitions: vec![],
                    topic_authorized_operations: authorized_operations::topic(true),
                    ..Default::default()
                });
            }
        }
    }
    response
}

/// The client's partition limit within Kafka's bounds: at least 1, at most 2000.
fn effective_limit(requested: i32) -> i32 {
    requested.clamp(1, MAX_REQUEST_PARTITION_SIZE_LIMIT)
}

/// Partitions `start..` of `topic`, at most `max`, and the first index left out, if any.
fn describe(
    topic: &Topic,
    (view, listener): (&ClusterView, &str),
    start: i32,
    max: i32,
) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    let count = topic.partition_count();
    let upper = count.min(start.saturating_add(max));
    let next = (upper < count).then_some(upper);
    let partitions = (start..upper)
        .map(|index| {
            let d = describe::partition(
                view,
                topic.id,
                index,
                listener,
                Describing::DescribeTopicPartitions,
            );
            DescribeTopicPartitionsResponsePartition {
                error_code: d.error.code(),
                partition_index: index,
                leader_id: d.leader_id,
                leader_epoch: d.leader_epoch,
                replica_nodes: d.replicas,
                isr_nodes: d.isr,
                eligible_leader_replicas: Some(d.elr),
                last_known_elr: Some(d.last_known_elr),
                offline_replicas: d.offline_replicas,
                ..Default::default()
            }
        })
        .collect();
    let described = DescribeTopicPartitionsResponseTopic {
        error_code: ErrorCode::None.code(),
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: topic.internal,
        partitions,
        // Kafka always fills them in (there is no request flag); without an authorizer every
        // operation on topics is allowed.
        topic_authorized_operations: authorized_operations::topic(true),
        ..Default::default()
    };
    (described, next)
}

/// `DescribeTopicPartitionsRequest.getErrorResponse`: every requested topic, in request
/// order, with `code` and nothing else.
fn request_error(
    request: &DescribeTopicPartitionsRequest,
    code: ErrorCode,
) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse {
        topics: request
            .topics
            .iter()
            .map(|t| DescribeTopicPartitionsResponseTopic {
                error_code: code.code(),
                name: Some(t.name.clone()),
                is_internal: false,
                partitions: vec![],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_is_kept_within_kafkas_bounds() {
        assert_eq!(super::effective_limit(0), 1);
        assert_eq!(super::effective_limit(-5), 1);
        assert_eq!(super::effective_limit(3), 3);
        assert_eq!(super::effective_limit(i32::MAX), 2000);
    }
}
