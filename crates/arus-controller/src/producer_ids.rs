//! AllocateProducerIds (Kafka's `ProducerIdControlManager.generateNextProducerId`): blocks
//! of 1000 ids handed out in order; the `ProducerIdsRecord` carries the first id of the
//! next block, so a block is never handed out twice, across controller changes too.

use arus_protocol::ErrorCode;
use arus_protocol::metadata::ProducerIdsRecord;

use crate::brokers::check_broker_epoch;
use crate::election::Decider;
use crate::error::ControllerError;
use crate::records::MetadataRecord;

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// A block of producer ids for one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdsBlock {
    pub first_producer_id: i64,
    pub size: i32,
}

/// The record and the block for broker `broker_id` at `broker_epoch`.
pub fn allocate_producer_ids(
    d: &Decider<'_>,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<(Vec<MetadataRecord>, ProducerIdsBlock), ControllerError> {
    check_broker_epoch(d, broker_id, broker_epoch)?;
    let first = d.state.next_producer_id;
    if first > i64::MAX - i64::from(PRODUCER_ID_BLOCK_SIZE) {
        return Err(ControllerError::new(
            ErrorCode::UnknownServerError,
            "Exhausted all producerIds as the next block's end producerId has exceeded the int64 type limit",
        ));
    }
    let record = ProducerIdsRecord {
        broker_id,
        broker_epoch,
        next_producer_id: first + i64::from(PRODUCER_ID_BLOCK_SIZE),
    };
    Ok((
        vec![MetadataRecord::ProducerIds(record)],
        ProducerIdsBlock {
            first_producer_id: first,
            size: PRODUCER_ID_BLOCK_SIZE,
        },
    ))
}
