//! Building record batches: the CLI producer, tests and transaction markers.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{
    ATTRIBUTES_OFFSET, BATCH_HEADER_LEN, CONTROL_BIT, CRC_OFFSET, LOG_OVERHEAD, MAGIC_V2,
    TRANSACTIONAL_BIT,
};
use crate::record::encode_record;
use crate::{Compression, RecordError, compress};

/// Accumulates records and encodes them as one v2 batch, the way a client does: base offset
/// 0, partition leader epoch -1, offset deltas `0..n`, CRC32C over attributes onward.
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    compression: Compression,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    count: usize,
    /// Records encoded as they are pushed, so `estimated_size` is exact before compression.
    records: Vec<u8>,
}

impl BatchBuilder {
    /// A builder whose record timestamps are stored relative to `base_timestamp` (clients use
    /// the first record's timestamp).
    pub fn new(compression: Compression, base_timestamp: i64) -> Self {
        BatchBuilder {
            compression,
            base_timestamp,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            count: 0,
            records: Vec::new(),
        }
    }

    /// Idempotent / transactional producer fields (default -1, -1, -1, false).
    pub fn producer(
        mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        transactional: bool,
    ) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch (transaction markers).
    pub fn control(mut self, is_control: bool) -> Self {
        self.control = is_control;
        self
    }

    /// Appends a record; its offset delta is its position.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        let delta = i32::try_from(self.count).unwrap_or(i32::MAX);
        encode_record(
            &mut self.records,
            delta,
            timestamp.wrapping_sub(self.base_timestamp),
            key,
            value,
            headers,
        );
        self.max_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Size of the batch if built uncompressed (an upper bound for the usual compressible
    /// payload), for producers deciding when a batch is full.
    pub fn estimated_size(&self) -> usize {
        BATCH_HEADER_LEN + self.records.len()
    }

    /// Encodes the batch. Fails on an empty builder (Kafka batches hold at least one record),
    /// on more records than an i32 counts, or if the codec fails.
    pub fn build(self) -> Result<Bytes, RecordError> {
        if self.count == 0 {
            return Err(RecordError::EmptyBatch);
        }
        let count = i32::try_from(self.count)
            .map_err(|_| RecordError::InvalidRecord("too many records for one batch".into()))?;
        let body = match self.compression {
            Compression::None => self.records,
            c => compress(c, &self.records)?,
        };
        let total = BATCH_HEADER_LEN + body.len();
        let batch_length = i32::try_from(total - LOG_OVERHEAD)
            .map_err(|_| RecordError::InvalidRecord("batch larger than 2 GiB".into()))?;
        let mut attrs = i16::from(self.compression.id());
        if self.transactional {
            attrs |= TRANSACTIONAL_BIT;
        }
        if self.control {
            attrs |= CONTROL_BIT;
        }
        let mut buf = BytesMut::with_capacity(total);
        buf.put_i64(0); // base offset: the broker assigns it
        buf.put_i32(batch_length);
        buf.put_i32(-1); // partition leader epoch: the broker sets it
        buf.put_i8(MAGIC_V2);
        buf.put_u32(0); // CRC, filled below
        buf.put_i16(attrs);
        buf.put_i32(count - 1);
        buf.put_i64(self.base_timestamp);
        buf.put_i64(self.max_timestamp);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.base_sequence);
        buf.put_i32(count);
        buf.extend_from_slice(&body);
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..]);
        buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(buf.freeze())
    }
}

/// The kind of a transaction marker (control record key `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlType {
    Abort = 0,
    Commit = 1,
}

impl ControlType {
    /// Reads a control record key (`version i16 | type i16`). Unknown types are `None`:
    /// Kafka skips control records it does not know rather than failing.
    pub fn from_key(key: &[u8]) -> Option<ControlType> {
        match key {
            [_, _, a, b, ..] => match i16::from_be_bytes([*a, *b]) {
                0 => Some(ControlType::Abort),
                1 => Some(ControlType::Commit),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A transaction marker batch: transactional + control, one record whose key is
/// `version 0 | type` and value `version 0 | coordinatorEpoch`; sequence -1 as Kafka writes.
pub fn control_record_batch(
    kind: ControlType,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Bytes {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&(kind as i16).to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = BatchBuilder::new(Compression::None, timestamp)
        .producer(producer_id, producer_epoch, -1, true)
        .control(true);
    b.push(timestamp, Some(&key), Some(&value), &[]);
    // One uncompressed record: none of build's failure cases (empty, huge, codec) can occur.
    b.build().unwrap_or_default()
}
