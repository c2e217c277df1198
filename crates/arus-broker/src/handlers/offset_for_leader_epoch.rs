//! OffsetForLeaderEpoch (API 23): where a leader epoch ended in the leader's log. Consumers
//! (Java, librdkafka) ask it to validate their position after a leader change (KIP-320);
//! followers ask it to find where to truncate (KIP-101, KIP-279).
//!
//! As Kafka's `ReplicaManager.lastOffsetForLeaderEpoch` → `Partition.lastOffsetForLeaderEpoch`:
//! - a partition whose log directory failed is KAFKA_STORAGE_ERROR (`HostedPartition.Offline`,
//!   checked before anything else about the partition);
//! - a partition the cluster does not have is UNKNOWN_TOPIC_OR_PARTITION, one not hosted here
//!   NOT_LEADER_OR_FOLLOWER; then `current_leader_epoch` fences the client (-1: no check;
//!   older than the partition's: FENCED_LEADER_EPOCH; newer: UNKNOWN_LEADER_EPOCH), then only
//!   the leader answers (NOT_LEADER_OR_FOLLOWER) — Kafka passes `fetchOnlyFromLeader = true`
//!   whatever the `replica_id` (a consumer's -1, a follower's broker id, or v2's default -2),
//!   so `replica_id` changes nothing here. These checks run on the cluster view, then again
//!   on the replica's own role and epoch ([`crate::partition::Partition::check_local_role`]),
//!   which change together with its epoch cache;
//! - the answer is the leader epoch cache's `endOffsetFor` (see
//!   [`arus_log::Log::end_offset_for_epoch`]): the latest epoch ends at the log end offset,
//!   an earlier one where the next cached epoch starts (with the largest cached epoch at or
//!   below the one asked), an epoch below every cached one at the first cached start; an
//!   undefined (-1) or unknown newer epoch is answered with no error and -1 / -1.

use arus_protocol::ErrorCode;
use arus_protocol::messages::OffsetForLeaderEpochRequest;
use arus_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};

use crate::broker::Broker;
use crate::cluster::{Access, serve_local};

/// Kafka's `EpochEndOffset.UNDEFINED_EPOCH` / `UNDEFINED_EPOCH_OFFSET`.
const UNDEFINED: (i32, i64) = (-1, -1);

/// `(leader_epoch, end_offset)` of the response from the cache's `(epoch, end offset)`:
/// Kafka's `UnifiedLog.endOffsetForEpoch` turns an undefined end offset into "nothing found",
/// which the response carries as -1 / -1.
fn epoch_end_offset(found: (i32, i64)) -> (i32, i64) {
    if found.1 == UNDEFINED.1 {
        UNDEFINED
    } else {
        found
    }
}

pub fn handle(
    broker: &Broker,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let view = broker.cluster.current();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topics.get(&t.topic);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = EpochEndOffset {
                        error_code: ErrorCode::None.code(),
                        partition: p.partition,
                        leader_epoch: UNDEFINED.0,
                        end_offset: UNDEFINED.1,
                        ..Default::default()
                    };
                    let Some(t) = topic.as_ref() else {
                        out.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return out;
                    };
                    let local = t.partition(p.partition);
                    if local.as_ref().is_some_and(|l| !l.is_online()) {
                        tracing::debug!(topic = %t.name, partition = p.partition, "OffsetForLeaderEpoch: the partition's log directory is offline");
                        out.error_code = ErrorCode::KafkaStorageError.code();
                        return out;
                    }
                    // -1 is "no epoch" (RecordBatch.NO_PARTITION_LEADER_EPOCH).
                    let current = (p.current_leader_epoch != -1).then_some(p.current_leader_epoch);
                    let served =
                        serve_local(&view, t.id, p.partition, local, current, Access::LeaderOnly)
                            .and_then(|partition| {
                                partition.check_local_role(current, true).map(|()| partition)
                            });
                    match served {
                        Err(code) => {
                            tracing::debug!(topic = %t.name, partition = p.partition, current_leader_epoch = p.current_leader_epoch, error = ?code, "OffsetForLeaderEpoch refused");
                            out.error_code = code.code();
                        }
                        Ok(partition) => {
                            let (epoch, end) =
                                epoch_end_offset(partition.end_offset_for_epoch(p.leader_epoch));
                            out.leader_epoch = epoch;
                            out.end_offset = end;
                        }
                    }
                    out
                })
                .collect();
            OffsetForLeaderTopicResult {
                topic: t.topic,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    OffsetForLeaderEpochResponse {
        topics,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undefined_end_offset_is_answered_as_nothing_found() {
        assert_eq!(epoch_end_offset((3, 17)), (3, 17));
        assert_eq!(epoch_end_offset((-1, -1)), UNDEFINED);
        assert_eq!(epoch_end_offset((4, -1)), UNDEFINED);
    }
}
