//! OffsetForLeaderEpoch: consumers (Java, librdkafka) validate their position after a
//! metadata change by asking where a leader epoch ended. A single node has only epoch 0,
//! which ends at the log end offset; any other epoch is undefined, as in Kafka's
//! `LeaderEpochFileCache::endOffsetFor`.

use arus_protocol::ErrorCode;
use arus_protocol::messages::OffsetForLeaderEpochRequest;
use arus_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};

use crate::broker::Broker;
use crate::cluster::{Access, serve_local};

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
                        leader_epoch: -1,
                        end_offset: -1,
                        ..Default::default()
                    };
                    let Some(t) = topic.as_ref() else {
                        out.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return out;
                    };
                    // -1 is "no epoch" (RecordBatch.NO_PARTITION_LEADER_EPOCH); only the
                    // leader answers (Kafka's `fetchOnlyFromLeader = true`).
                    let epoch = (p.current_leader_epoch != -1).then_some(p.current_leader_epoch);
                    let local = t.partition(p.partition);
                    match serve_local(&view, t.id, p.partition, local, epoch, Access::LeaderOnly) {
                        Err(code) => out.error_code = code.code(),
                        Ok(partition) if p.leader_epoch == 0 => {
                            out.leader_epoch = 0;
                            out.end_offset = partition.log_end_offset();
                        }
                        Ok(_) => {}
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
