//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5), earliest pending upload (-6, v11, KIP-1023), or the first offset whose timestamp is at least the one asked for. As in
//! Kafka's `Partition.fetchOffsetForTimestamp`, the isolation level bounds every answer:
//! `read_committed` sees up to the last stable offset, `read_uncommitted` up to the high
//! watermark; a lookup landing at or beyond that bound finds nothing.

use arus_protocol::ErrorCode;
use arus_protocol::messages::ListOffsetsRequest;
use arus_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use crate::broker::Broker;
use crate::cluster::{Access, serve_local};
use crate::partition::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// The replica id of a debugging tool, which may read a follower's replica (Kafka's
/// `ListOffsetsRequest.DEBUGGING_REPLICA_ID`); consumers send -1 and read the leader's.
const DEBUGGING_REPLICA_ID: i32 = -2;

/// The first version that may ask for each special timestamp (Kafka's
/// `ReplicaManager.timestampMinSupportedVersion`): asked earlier, or any other negative
/// timestamp, is UNSUPPORTED_VERSION for that partition.
fn timestamp_supported(timestamp: i64, version: i16) -> bool {
    let min = match timestamp {
        t if t >= 0 => return true,
        LATEST | EARLIEST => 1,
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        LATEST_TIERED => 9,
        EARLIEST_PENDING_UPLOAD => 11,
        _ => return false,
    };
    version >= min
}

/// `(timestamp, offset, leader_epoch)` of the answer; -1 for each part that is unknown.
fn lookup(
    p: &Partition,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64, i32), ErrorCode> {
    // Kafka's `HostedPartition.Offline`: the directory failed.
    if !p.is_online() {
        return Err(ErrorCode::KafkaStorageError);
    }
    let fetchable = if read_committed {
        p.last_stable_offset()
    } else {
        p.high_watermark()
    };
    // The epoch of a found batch: Kafka reads the batch's `partitionLeaderEpoch`; the epoch
    // cache gives the same epoch for every offset of the log.
    let found = |offset: i64, ts: i64| {
        if offset < fetchable {
            (ts, offset, p.epoch_for_offset(offset).unwrap_or(-1))
        } else {
            (-1, -1, -1)
        }
    };
    Ok(match timestamp {
        // Kafka `Partition.fetchOffsetForTimestamp`: the partition's current leader epoch.
        LATEST => (-1, fetchable, p.leader_epoch()),
        // Kafka `UnifiedLog.fetchOffsetByTimestamp`: the earliest cached epoch when it starts
        // at or before the log start (always, once the cache is truncated to it).
        EARLIEST | EARLIEST_LOCAL => {
            let start = p.log_start_offset();
            (-1, start, p.epoch_for_offset(start).unwrap_or(-1))
        }
        // Without tiered storage nothing is tiered, and nothing waits to be uploaded: Kafka's
        // UnifiedLog answers -1 for both (fetchEarliestPendingUploadOffset when
        // remoteLogEnabled() is false), whatever the request's version.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => (-1, -1, -1),
        MAX_TIMESTAMP => match p.max_timestamp_offset() {
            Ok(Some((offset, ts))) => found(offset, ts),
            Ok(None) => (-1, -1, -1),
            Err(_) => return Err(ErrorCode::KafkaStorageError),
        },
        // Refused before the lookup (`timestamp_supported`).
        t if t < 0 => return Err(ErrorCode::UnsupportedVersion),
        t => match p.offset_for_timestamp(t) {
            Ok(Some((offset, ts))) => found(offset, ts),
            Ok(None) => (-1, -1, -1),
            Err(_) => return Err(ErrorCode::KafkaStorageError),
        },
    })
}

pub fn handle(broker: &Broker, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    // v0/v1 have no isolation level: read_uncommitted.
    let read_committed = version >= 2 && request.isolation_level == 1;
    // Kafka answers a partition asked for more than once with one INVALID_REQUEST entry.
    let mut seen = std::collections::HashSet::new();
    let duplicates: std::collections::HashSet<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), p.partition_index))
        })
        .filter(|key| !seen.insert(key.clone()))
        .collect();
    let mut answered_duplicates = std::collections::HashSet::new();
    let view = broker.cluster.current();
    let access = if request.replica_id == DEBUGGING_REPLICA_ID {
        Access::AnyReplica
    } else {
        Access::LeaderOnly
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topics.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .filter(|p| {
                    let key = (t.name.clone(), p.partition_index);
                    !duplicates.contains(&key) || answered_duplicates.insert(key)
                })
                .map(|p| {
                    let mut resp = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        timestamp: -1,
                        offset: -1,
                        leader_epoch: -1,
                        ..Default::default()
                    };
                    if duplicates.contains(&(t.name.clone(), p.partition_index)) {
                        resp.error_code = ErrorCode::InvalidRequest.code();
                        return resp;
                    }
                    if !timestamp_supported(p.timestamp, version) {
                        tracing::debug!(
                            timestamp = p.timestamp,
                            version,
                            "ListOffsets: special timestamp not supported at this version"
                        );
                        resp.error_code = ErrorCode::UnsupportedVersion.code();
                        return resp;
                    }
                    let Some(t) = topic.as_ref() else {
                        resp.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return resp;
                    };
                    // -1 is "no epoch" (ListOffsetsResponse.UNKNOWN_EPOCH).
                    let epoch = (p.current_leader_epoch != -1).then_some(p.current_leader_epoch);
                    let local = t.partition(p.partition_index);
                    let served = serve_local(&view, t.id, p.partition_index, local, epoch, access)
                        .and_then(|partition| {
                            partition
                                .check_local_role(epoch, access == Access::LeaderOnly)
                                .map(|()| partition)
                        });
                    let partition = match served {
                        Ok(partition) => partition,
                        Err(code) => {
                            resp.error_code = code.code();
                            return resp;
                        }
                    };
                    match lookup(&partition, p.timestamp, read_committed) {
                        Ok((ts, offset, leader_epoch)) => {
                            resp.timestamp = ts;
                            resp.offset = offset;
                            // LeaderEpoch exists from v4 and is not ignorable.
                            if version >= 4 {
                                resp.leader_epoch = leader_epoch;
                            }
                        }
                        Err(code) => resp.error_code = code.code(),
                    }
                    resp
                })
                .collect();
            ListOffsetsTopicResponse {
                name: t.name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}
