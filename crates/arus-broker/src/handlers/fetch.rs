//! Fetch with long-poll: answer as soon as `min_bytes` are available across the requested
//! partitions, else when `max_wait_ms` runs out. Appends wake waiting fetches through the
//! broker's `data_arrived` notification — no polling loop.
//!
//! Fetch sessions (KIP-227) are declined by answering `session_id = 0`, which the protocol
//! defines as "no session": clients then keep sending full fetch requests.

use std::sync::Arc;
use std::time::Duration;

use arus_log::LogError;
use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use arus_protocol::{Bytes, ErrorCode};

use crate::broker::Broker;
use crate::topics::Topic;

/// Whether any batch in `records` is zstd-compressed (attributes' low three bits == 4).
fn contains_zstd(records: &[u8]) -> bool {
    let mut pos = 0usize;
    while let Some(header) = records.get(pos..pos + 23) {
        if header[22] & 0x07 == 4 {
            return true;
        }
        let len = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if len <= 0 {
            return false;
        }
        pos += 12 + len as usize;
    }
    false
}

fn empty_partition(index: i32, code: ErrorCode) -> PartitionData {
    PartitionData {
        partition_index: index,
        error_code: code.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    }
}

struct Pass {
    response: FetchResponse,
    bytes: usize,
    errors: bool,
}

fn read_once(broker: &Broker, request: &FetchRequest, version: i16) -> Pass {
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let read_committed = request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for ft in &request.topics {
        let topic: Option<Arc<Topic>> = if version >= 13 {
            broker.topics.get_by_id(&ft.topic_id)
        } else {
            broker.topics.get(&ft.topic)
        };
        let unknown = if version >= 13 {
            ErrorCode::UnknownTopicId
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
        let mut partitions = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(fp.partition)) else {
                errors = true;
                partitions.push(empty_partition(fp.partition, unknown));
                continue;
            };
            // Our leader epoch is always 0 on a single node.
            if fp.current_leader_epoch > 0 {
                errors = true;
                partitions.push(empty_partition(fp.partition, ErrorCode::UnknownLeaderEpoch));
                continue;
            }
            let hw = partition.high_watermark();
            let mut data = PartitionData {
                partition_index: fp.partition,
                error_code: ErrorCode::None.code(),
                high_watermark: hw,
                last_stable_offset: hw,
                log_start_offset: partition.log_start_offset(),
                aborted_transactions: if read_committed {
                    Some(Vec::new())
                } else {
                    None
                },
                records: Some(Bytes::new()),
                ..Default::default()
            };
            let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            if fp.fetch_offset == hw && fp.fetch_offset >= partition.log_start_offset() {
                partitions.push(data);
                continue;
            }
            match partition.read(fp.fetch_offset, limit.max(1), hw) {
                Ok(read) => {
                    let bytes = read.bytes;
                    // KIP-74: an oversized first batch goes out whole only when the response
                    // has nothing else yet; later partitions must fit what is left.
                    let fits = bytes.len() <= limit || total == 0;
                    if !bytes.is_empty() && fits && limit > 0 {
                        if version < 10 && contains_zstd(&bytes) {
                            data.error_code = ErrorCode::UnsupportedCompressionType.code();
                            errors = true;
                        } else {
                            total += bytes.len();
                            remaining = remaining.saturating_sub(bytes.len());
                            data.records = Some(bytes);
                        }
                    }
                }
                Err(LogError::OffsetOutOfRange { .. }) => {
                    errors = true;
                    data.error_code = ErrorCode::OffsetOutOfRange.code();
                }
                Err(e) => {
                    errors = true;
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fetch read failed");
                    data.error_code = ErrorCode::KafkaStorageError.code();
                }
            }
            partitions.push(data);
        }
        topics.push(FetchableTopicResponse {
            topic: if version < 13 {
                ft.topic.clone()
            } else {
                String::new()
            },
            topic_id: if version >= 13 {
                ft.topic_id
            } else {
                Default::default()
            },
            partitions,
            ..Default::default()
        });
    }
    Pass {
        response: FetchResponse {
            error_code: ErrorCode::None.code(),
            session_id: 0,
            responses: topics,
            ..Default::default()
        },
        bytes: total,
        errors,
    }
}

pub async fn handle(broker: &Arc<Broker>, request: FetchRequest, version: i16) -> FetchResponse {
    if request.session_id != 0 {
        // We never hand out sessions, so any id the client names is unknown to us.
        return FetchResponse {
            error_code: ErrorCode::FetchSessionIdNotFound.code(),
            session_id: 0,
            ..Default::default()
        };
    }
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Register for the wake-up before reading, so an append between the read and the
        // wait is not missed.
        let notified = broker.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let pass = read_once(broker, &request, version);
        if pass.bytes >= min_bytes || pass.errors || tokio::time::Instant::now() >= deadline {
            return pass.response;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::contains_zstd;

    #[test]
    fn zstd_detection_walks_batches() {
        let mut a = vec![0u8; 61];
        a[8..12].copy_from_slice(&49i32.to_be_bytes());
        let mut b = a.clone();
        b[22] = 4;
        assert!(!contains_zstd(&a));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert!(contains_zstd(&both));
    }
}
