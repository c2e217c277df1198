//! WriteTxnMarkers (API 27): a transaction coordinator on another node asks this broker to
//! append COMMIT/ABORT control batches to the partitions it leads (Kafka's
//! `KafkaApis.handleWriteTxnMarkersRequest`). Each partition is answered on its own:
//! UNKNOWN_TOPIC_OR_PARTITION for one the cluster does not have, NOT_LEADER_OR_FOLLOWER
//! where this node is not the leader, the producer state's fencing errors
//! (INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED for a marker of an older
//! coordinator epoch), KAFKA_STORAGE_ERROR when the append fails. `__consumer_offsets`
//! markers go through the group driver, so that the transaction's pending offsets complete
//! in log order. The answer leaves once every appended marker is fsynced
//! (REQUEST_TIMED_OUT for those that were not within the persistence timeout), so that the
//! coordinator completes the transaction only when its outcome is durable everywhere.
//!
//! Kafka requires CLUSTER_ACTION on the cluster for this API; ACLs are not enforced yet
//! (the security issue), so any client may send it.

use std::sync::Arc;
use std::time::Duration;

use arus_protocol::ErrorCode;
use arus_protocol::messages::WriteTxnMarkersRequest;
use arus_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
};
use arus_txn::{MarkerJob, TopicPartition};
use tracing::debug;

use crate::Broker;
use crate::cluster::{Access, serve_local};
use crate::partition::Partition;
use crate::txn::write_marker;

/// How long the answer waits for the markers to be fsynced.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// An appended marker: its (marker, topic, partition) position in the answer, and the
/// offset up to which its partition must be fsynced.
type Written = ((usize, usize, usize), Arc<Partition>, i64);

pub async fn handle(broker: &Arc<Broker>, r: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let view = broker.cluster.current();
    let mut markers = Vec::with_capacity(r.markers.len());
    let mut written: Vec<Written> = Vec::new();
    for (mi, m) in r.markers.iter().enumerate() {
        let job = MarkerJob {
            transactional_id: String::new(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            commit: m.transaction_result,
            partitions: Vec::new(),
        };
        let mut topics = Vec::with_capacity(m.topics.len());
        for (ti, t) in m.topics.iter().enumerate() {
            let topic = broker.topics.get(&t.name);
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for (pi, &index) in t.partition_indexes.iter().enumerate() {
                let led = match &topic {
                    None => Err(ErrorCode::UnknownTopicOrPartition),
                    Some(topic) => serve_local(
                        &view,
                        topic.id,
                        index,
                        topic.partition(index),
                        None,
                        Access::LeaderOnly,
                    )
                    .map(|_| ()),
                };
                let code = match led.map(|()| {
                    write_marker(
                        broker,
                        &job,
                        m.coordinator_epoch,
                        TopicPartition::new(t.name.clone(), index),
                    )
                }) {
                    Err(code) => code,
                    Ok(Ok(Some((partition, end)))) => {
                        written.push(((mi, ti, pi), partition, end));
                        ErrorCode::None
                    }
                    Ok(Ok(None)) => ErrorCode::UnknownTopicOrPartition,
                    Ok(Err(e)) => {
                        debug!(topic = %t.name, partition = index, producer_id = m.producer_id, error = %e, "transaction marker refused");
                        e.code()
                    }
                };
                if code != ErrorCode::None {
                    debug!(topic = %t.name, partition = index, producer_id = m.producer_id, error = code.name(), "WriteTxnMarkers partition not written");
                }
                partitions.push(WritableTxnMarkerPartitionResult {
                    partition_index: index,
                    error_code: code.code(),
                    ..Default::default()
                });
            }
            topics.push(WritableTxnMarkerTopicResult {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        markers.push(WritableTxnMarkerResult {
            producer_id: m.producer_id,
            topics,
            ..Default::default()
        });
    }
    if !written.is_empty() {
        broker.data_arrived.notify_waiters();
        for (_, p, _) in &written {
            broker.request_flush(p.clone());
        }
        let deadline = tokio::time::Instant::now() + FLUSH_TIMEOUT;
        for ((mi, ti, pi), p, end) in &written {
            // Durable here, then in every in-sync replica (Kafka appends markers with
            // required acks -1).
            let durable = tokio::time::timeout_at(deadline, async {
                if !p.wait_flushed_or_offline(*end).await {
                    return ErrorCode::KafkaStorageError;
                }
                if !p.wait_replicated(*end).await {
                    return ErrorCode::NotEnoughReplicasAfterAppend;
                }
                ErrorCode::None
            })
            .await;
            let code = match durable {
                Ok(ErrorCode::None) => continue,
                Ok(code) => code,
                Err(_) => ErrorCode::RequestTimedOut,
            };
            markers[*mi].topics[*ti].partitions[*pi].error_code = code.code();
        }
    }
    WriteTxnMarkersResponse { markers }
}
