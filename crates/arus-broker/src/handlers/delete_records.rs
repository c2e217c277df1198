//! DeleteRecords: moves a partition's log start offset forward (Kafka
//! `UnifiedLog.maybeIncrementLogStartOffset`): records below it are no longer readable and
//! the segments wholly below it are deleted. An offset of -1 means the high watermark; an
//! offset above it is OFFSET_OUT_OF_RANGE; a topic without the `delete` cleanup policy is
//! POLICY_VIOLATION, as in Kafka.

use arus_log::LogError;
use arus_protocol::ErrorCode;
use arus_protocol::messages::DeleteRecordsRequest;
use arus_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use tracing::{info, warn};

use crate::Broker;
use crate::cluster::{Access, serve_local};

pub fn handle(broker: &Broker, r: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let view = broker.cluster.current();
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topics.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut result = DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: -1,
                        ..Default::default()
                    };
                    let Some(t) = topic.as_ref() else {
                        result.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return result;
                    };
                    // Kafka's `Partition.deleteRecordsOnLeader`: only the leader deletes (the
                    // replica's own role, `leaderLogIfLocal`, not only the view).
                    let local = t.partition(p.partition_index);
                    let partition = match serve_local(
                        &view,
                        t.id,
                        p.partition_index,
                        local,
                        None,
                        Access::LeaderOnly,
                    )
                    .and_then(|partition| partition.check_local_role(None, true).map(|()| partition))
                    {
                        Ok(partition) => partition,
                        Err(code) => {
                            result.error_code = code.code();
                            return result;
                        }
                    };
                    if !partition.settings().delete_enabled {
                        result.error_code = ErrorCode::PolicyViolation.code();
                        return result;
                    }
                    match partition.delete_records_before(p.offset) {
                        Ok(start) => {
                            info!(topic = %t.name, partition = p.partition_index, log_start_offset = start, "records deleted");
                            result.low_watermark = start;
                        }
                        Err(LogError::DeleteOffsetOutOfRange { .. }) => {
                            result.error_code = ErrorCode::OffsetOutOfRange.code();
                        }
                        Err(e) => {
                            warn!(topic = %t.name, partition = p.partition_index, error = %e, "DeleteRecords failed");
                            result.error_code = ErrorCode::KafkaStorageError.code();
                        }
                    }
                    result
                })
                .collect();
            DeleteRecordsTopicResult {
                name: t.name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}
