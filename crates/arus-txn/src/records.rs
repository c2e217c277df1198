//! The `__transaction_state` record codec, byte-compatible with Kafka 4.x's `TransactionLog`.
//!
//! - **Key**: `int16` key version, then `TransactionLogKey` at version 0:
//!   `TransactionalId` as a classic `int16`-length string. The key version is the coordinator
//!   record type; Kafka defines only 0 (`CoordinatorRecordType.TRANSACTION_LOG`).
//! - **Value**: `int16` value version, then `TransactionLogValue` at that version; a
//!   **tombstone** (transactional id expired, compacted away) has a null value.
//!   - v0 (classic): `ProducerId int64, ProducerEpoch int16, TransactionTimeoutMs int32,
//!     TransactionStatus int8, TransactionPartitions nullable [Topic string,
//!     PartitionIds [int32]], TransactionLastUpdateTimestampMs int64,
//!     TransactionStartTimestampMs int64`.
//!   - v1 (flexible, KIP-915): the same fields with compact lengths, an (empty) tagged-field
//!     section after each partition entry, and top-level tagged fields 0
//!     `PreviousProducerId int64` (default -1), 1 `NextProducerId int64` (default -1),
//!     2 `ClientTransactionVersion int16` (default 0), each written only when it differs
//!     from its default.
//! - Arus writes value version [`TXN_LOG_VALUE_VERSION`] (1): Kafka 4.x writes
//!   `TransactionVersion.transactionLogValueVersion()`, which is 1 once `transaction.version`
//!   is finalized at 1 or more. Both versions are read.
//! - As in `TransactionLog.valueToBytes`, an `Empty` transaction is written with null
//!   partitions, every other state with an array (possibly empty) grouped by topic. Arus
//!   orders topics and partitions; Kafka's order is a hash set's, and readers do not care.
//!
//! Decoding is bounded: every length is checked against the bytes left before allocating.

use arus_protocol::codec as c;
use arus_protocol::coordinator_key::coordinator_partition_for;
use arus_protocol::{Bytes, BytesMut, DecodeError};

use crate::types::{TopicPartition, TxnState};

/// The key version (coordinator record type) of a `__transaction_state` record.
pub const TXN_LOG_KEY_VERSION: i16 = 0;
/// The `TransactionLogValue` version Arus writes (Kafka 4.x with `transaction.version` ≥ 1).
pub const TXN_LOG_VALUE_VERSION: i16 = 1;
/// The highest `TransactionLogValue` version the spec defines (read side).
pub const TXN_LOG_VALUE_MAX_VERSION: i16 = 1;

/// Tag of `PreviousProducerId` in value v1+.
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
/// Tag of `NextProducerId` in value v1+.
const TAG_NEXT_PRODUCER_ID: u32 = 1;
/// Tag of `ClientTransactionVersion` in value v1+.
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// The content of a `TransactionLogValue`, with the state and partitions typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Sorted, without duplicates (empty for `Empty`).
    pub partitions: Vec<TopicPartition>,
    pub last_update_ms: i64,
    /// -1 when no transaction has started.
    pub start_ms: i64,
    /// Tagged field 0 (v1+): the producer id before the transition this record describes
    /// (Kafka's `prevProducerId`); -1 = absent. Used by KIP-360 to accept a retried
    /// InitProducerId after a producer id rotation.
    pub prev_producer_id: i64,
    /// Tagged field 1 (v1+): transaction version 2, the producer id a Prepare state moves
    /// to when it completes (its epoch is exhausted); -1 = absent.
    pub next_producer_id: i64,
    /// Tagged field 2 (v1+): the client's transaction version (2 for EndTxn v5+, Produce
    /// v12+ and TxnOffsetCommit v5+ clients, else 0).
    pub client_transaction_version: i16,
}

/// One `__transaction_state` record: the key's transactional id and the value
/// (`None` = tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub value: Option<TxnLogValue>,
}

/// Failure to decode a `__transaction_state` record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The key is shorter than its 2-byte version prefix.
    #[error("transaction log key is {len} bytes, too short for its int16 version")]
    KeyTooShort { len: usize },
    /// A key version other than 0. Kafka's loader skips such records.
    #[error("unknown transaction log key version {version}")]
    UnknownKeyVersion { version: i16 },
    /// The value is shorter than its 2-byte version prefix.
    #[error("transaction log value is {len} bytes, too short for its int16 version")]
    ValueTooShort { len: usize },
    /// A value version the spec does not define. Kafka's loader skips such records.
    #[error("unknown transaction log value version {version} (supported: 0..=1)")]
    UnknownValueVersion { version: i16 },
    /// The key struct is malformed.
    #[error("malformed transaction log key: {0}")]
    BadKey(#[source] DecodeError),
    /// The value struct is malformed.
    #[error("malformed transaction log value (version {version}): {source}")]
    BadValue {
        version: i16,
        #[source]
        source: DecodeError,
    },
    /// `TransactionStatus` is not one of Kafka's states.
    #[error("unknown transaction status {status}")]
    UnknownStatus { status: i8 },
}

impl RecordError {
    /// True for records of a format this version does not know, which a loader skips as
    /// Kafka's does (`TransactionLog.read` returns `UnknownKeyVersion`/`UnknownValueVersion`);
    /// false for corrupt records.
    pub fn is_unknown_version(&self) -> bool {
        matches!(
            self,
            RecordError::UnknownKeyVersion { .. } | RecordError::UnknownValueVersion { .. }
        )
    }
}

/// Writes a string, classic (`int16` length) or compact (uvarint length + 1).
///
/// Kafka strings hold at most 0x7fff bytes. The coordinator refuses longer transactional
/// ids and topic names before they reach a record, so this only guards against a caller
/// building one by hand: such a string is cut at a character boundary rather than
/// panicking or writing an unreadable length.
fn put_str(out: &mut BytesMut, s: &str, compact: bool) {
    let mut end = s.len().min(c::MAX_STRING_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = &s[..end];
    if compact {
        // end ≤ 0x7fff, so the conversion cannot fail.
        c::write_uvarint(out, u32::try_from(end).unwrap_or(0) + 1);
    } else {
        c::write_i16(out, i16::try_from(end).unwrap_or(0));
    }
    out.extend_from_slice(s.as_bytes());
}

/// Writes an array length (classic `int32`, compact uvarint length + 1).
fn put_len(out: &mut BytesMut, len: usize, compact: bool) {
    // A transaction's partition count is bounded by memory, far below i32::MAX.
    let n = i32::try_from(len).unwrap_or(i32::MAX);
    if compact {
        c::write_uvarint(out, n as u32 + 1);
    } else {
        c::write_i32(out, n);
    }
}

/// The partitions grouped by topic, topics and partitions in order.
fn group_by_topic(partitions: &[TopicPartition]) -> Vec<(&str, Vec<i32>)> {
    let mut sorted: Vec<&TopicPartition> = partitions.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in sorted {
        match out.last_mut() {
            Some((t, ids)) if *t == tp.topic => ids.push(tp.partition),
            _ => out.push((&tp.topic, vec![tp.partition])),
        }
    }
    out
}

/// Encodes a record's key (`TransactionLog.keyToBytes`).
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(4 + transactional_id.len());
    c::write_i16(&mut out, TXN_LOG_KEY_VERSION);
    put_str(&mut out, transactional_id, false);
    out.to_vec()
}

/// Encodes a value at `version` (0 or 1; anything above 0 is written as 1).
pub fn encode_value(v: &TxnLogValue, version: i16) -> Vec<u8> {
    let flex = version >= 1;
    let version = if flex { 1 } else { 0 };
    let mut out = BytesMut::with_capacity(64);
    c::write_i16(&mut out, version);
    c::write_i64(&mut out, v.producer_id);
    c::write_i16(&mut out, v.producer_epoch);
    c::write_i32(&mut out, v.timeout_ms);
    c::write_i8(&mut out, v.state.id());
    if v.state == TxnState::Empty {
        // Null array: TransactionLog.valueToBytes leaves the partitions unset for Empty.
        if flex {
            c::write_uvarint(&mut out, 0);
        } else {
            c::write_i32(&mut out, -1);
        }
    } else {
        let topics = group_by_topic(&v.partitions);
        put_len(&mut out, topics.len(), flex);
        for (topic, ids) in &topics {
            put_str(&mut out, topic, flex);
            put_len(&mut out, ids.len(), flex);
            for id in ids {
                c::write_i32(&mut out, *id);
            }
            if flex {
                c::write_uvarint(&mut out, 0);
            }
        }
    }
    c::write_i64(&mut out, v.last_update_ms);
    c::write_i64(&mut out, v.start_ms);
    if flex {
        // Tagged fields in tag order, each only when it differs from its default (as
        // Kafka's generated writer does).
        let mut tagged = BytesMut::new();
        let mut count = 0u32;
        if v.prev_producer_id != -1 {
            count += 1;
            c::write_uvarint(&mut tagged, TAG_PREVIOUS_PRODUCER_ID);
            c::write_uvarint(&mut tagged, 8);
            c::write_i64(&mut tagged, v.prev_producer_id);
        }
        if v.next_producer_id != -1 {
            count += 1;
            c::write_uvarint(&mut tagged, TAG_NEXT_PRODUCER_ID);
            c::write_uvarint(&mut tagged, 8);
            c::write_i64(&mut tagged, v.next_producer_id);
        }
        if v.client_transaction_version != 0 {
            count += 1;
            c::write_uvarint(&mut tagged, TAG_CLIENT_TRANSACTION_VERSION);
            c::write_uvarint(&mut tagged, 2);
            c::write_i16(&mut tagged, v.client_transaction_version);
        }
        c::write_uvarint(&mut out, count);
        out.extend_from_slice(&tagged);
    }
    out.to_vec()
}

/// Encodes a record as Kafka writes it: `(key, value)`, `value` `None` for a tombstone.
pub fn encode_record(r: &TxnRecord) -> (Vec<u8>, Option<Vec<u8>>) {
    encode_record_at(r, TXN_LOG_VALUE_VERSION)
}

/// [`encode_record`] with the value at `value_version`: Kafka's
/// `TransactionVersion.transactionLogValueVersion()`, 0 while `transaction.version` is
/// finalized at 0 (no tagged fields) and 1 from level 1.
pub fn encode_record_at(r: &TxnRecord, value_version: i16) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        encode_key(&r.transactional_id),
        r.value.as_ref().map(|v| encode_value(v, value_version)),
    )
}

fn read_partitions(
    buf: &mut Bytes,
    flex: bool,
) -> Result<Option<Vec<TopicPartition>>, DecodeError> {
    const F: &str = "TransactionLogValue.TransactionPartitions";
    // Smallest entry: an empty topic and an empty id array (1+1 bytes compact, 2+4 classic).
    let min = if flex { 3 } else { 6 };
    let topics = c::read_nullable_array(buf, flex, F, min, |b| {
        let topic = c::read_string(b, flex, "PartitionsSchema.Topic")?;
        let ids = c::read_array(b, flex, "PartitionsSchema.PartitionIds", 4, |b| {
            c::read_i32(b, "PartitionsSchema.PartitionIds")
        })?;
        if flex {
            skip_tagged(b, "PartitionsSchema.<tagged fields>")?;
        }
        Ok((topic, ids))
    })?;
    Ok(topics.map(|topics| {
        let mut out: Vec<TopicPartition> = topics
            .into_iter()
            .flat_map(|(topic, ids)| {
                ids.into_iter()
                    .map(move |p| TopicPartition::new(topic.clone(), p))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }))
}

fn skip_tagged(buf: &mut Bytes, field: &'static str) -> Result<(), DecodeError> {
    let n = c::read_uvarint(buf, field)?;
    for _ in 0..n {
        c::read_tagged_field(buf, field)?;
    }
    Ok(())
}

fn tagged_i64(data: &Bytes, field: &'static str) -> Result<i64, DecodeError> {
    c::read_i64(&mut data.clone(), field)
}

/// Decodes a value (version prefix + struct).
fn decode_value(value: &[u8]) -> Result<TxnLogValue, RecordError> {
    let Some((head, body)) = value.split_first_chunk::<2>() else {
        return Err(RecordError::ValueTooShort { len: value.len() });
    };
    let version = i16::from_be_bytes(*head);
    if !(0..=TXN_LOG_VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnknownValueVersion { version });
    }
    let flex = version >= 1;
    let bad = |source| RecordError::BadValue { version, source };
    let mut buf = Bytes::copy_from_slice(body);
    let b = &mut buf;
    let producer_id = c::read_i64(b, "TransactionLogValue.ProducerId").map_err(bad)?;
    let producer_epoch = c::read_i16(b, "TransactionLogValue.ProducerEpoch").map_err(bad)?;
    let timeout_ms = c::read_i32(b, "TransactionLogValue.TransactionTimeoutMs").map_err(bad)?;
    let status = c::read_i8(b, "TransactionLogValue.TransactionStatus").map_err(bad)?;
    let partitions = read_partitions(b, flex).map_err(bad)?;
    let last_update_ms =
        c::read_i64(b, "TransactionLogValue.TransactionLastUpdateTimestampMs").map_err(bad)?;
    let start_ms =
        c::read_i64(b, "TransactionLogValue.TransactionStartTimestampMs").map_err(bad)?;
    let mut v = TxnLogValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state: TxnState::from_id(status).ok_or(RecordError::UnknownStatus { status })?,
        partitions: partitions.unwrap_or_default(),
        last_update_ms,
        start_ms,
        prev_producer_id: -1,
        next_producer_id: -1,
        client_transaction_version: 0,
    };
    if v.state == TxnState::Empty {
        // TransactionLog.read ignores the partitions of an Empty transaction.
        v.partitions.clear();
    }
    if flex {
        const F: &str = "TransactionLogValue.<tagged fields>";
        let n = c::read_uvarint(b, F).map_err(bad)?;
        for _ in 0..n {
            let (tag, data) = c::read_tagged_field(b, F).map_err(bad)?;
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => {
                    v.prev_producer_id =
                        tagged_i64(&data, "TransactionLogValue.PreviousProducerId").map_err(bad)?;
                }
                TAG_NEXT_PRODUCER_ID => {
                    v.next_producer_id =
                        tagged_i64(&data, "TransactionLogValue.NextProducerId").map_err(bad)?;
                }
                TAG_CLIENT_TRANSACTION_VERSION => {
                    v.client_transaction_version = c::read_i16(
                        &mut data.clone(),
                        "TransactionLogValue.ClientTransactionVersion",
                    )
                    .map_err(bad)?;
                }
                // Tags of later Kafka versions are skipped, as Kafka's reader does.
                _ => {}
            }
        }
    }
    // Trailing bytes are ignored, as Kafka does.
    Ok(v)
}

/// Decodes a `__transaction_state` record from its key and value (`None` = tombstone).
/// Never panics; see [`RecordError::is_unknown_version`] for the records a loader skips.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<TxnRecord, RecordError> {
    let Some((head, body)) = key.split_first_chunk::<2>() else {
        return Err(RecordError::KeyTooShort { len: key.len() });
    };
    let version = i16::from_be_bytes(*head);
    if version != TXN_LOG_KEY_VERSION {
        return Err(RecordError::UnknownKeyVersion { version });
    }
    let transactional_id = c::read_string(
        &mut Bytes::copy_from_slice(body),
        false,
        "TransactionLogKey.TransactionalId",
    )
    .map_err(RecordError::BadKey)?;
    Ok(TxnRecord {
        transactional_id,
        value: value.map(decode_value).transpose()?,
    })
}

/// The `__transaction_state` partition owning `transactional_id`, as Kafka's
/// `TransactionStateManager.partitionFor` computes it (see [`coordinator_partition_for`]).
pub fn transaction_partition_for(transactional_id: &str, partitions: i32) -> i32 {
    coordinator_partition_for(transactional_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::Message;
    use arus_protocol::coordinator::TransactionLogValue;
    use arus_protocol::coordinator::transaction_log_value::PartitionsSchema;

    fn value(state: TxnState, partitions: Vec<TopicPartition>) -> TxnLogValue {
        TxnLogValue {
            producer_id: 5,
            producer_epoch: 1,
            timeout_ms: 60_000,
            state,
            partitions,
            last_update_ms: 0x0102,
            start_ms: 0x0100,
            prev_producer_id: 5,
            next_producer_id: -1,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn state_ids_and_names_match_kafka() {
        let expected = [
            (0, "Empty"),
            (1, "Ongoing"),
            (2, "PrepareCommit"),
            (3, "PrepareAbort"),
            (4, "CompleteCommit"),
            (5, "CompleteAbort"),
            (6, "Dead"),
            (7, "PrepareEpochFence"),
        ];
        for (s, (id, name)) in TxnState::ALL.into_iter().zip(expected) {
            assert_eq!((s.id(), s.name()), (id, name));
            assert_eq!(TxnState::from_id(id), Some(s));
            assert_eq!(TxnState::from_name(name), Some(s));
        }
        assert_eq!(TxnState::from_id(8), None);
        assert_eq!(TxnState::from_id(-1), None);
        assert_eq!(TxnState::from_name("ongoing"), None);
    }

    /// Bytes derived by hand from TransactionLogKey.json / TransactionLogValue.json.
    #[test]
    fn known_bytes_v1() {
        let r = TxnRecord {
            transactional_id: "t1".into(),
            value: Some(value(
                TxnState::Ongoing,
                vec![TopicPartition::new("a", 1), TopicPartition::new("a", 0)],
            )),
        };
        let (k, v) = encode_record(&r);
        // key version 0, int16 length 2, "t1"
        assert_eq!(k, [0, 0, 0, 2, b't', b'1']);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0, 1,                                   // value version 1
            0, 0, 0, 0, 0, 0, 0, 5,                 // ProducerId 5
            0, 1,                                   // ProducerEpoch 1
            0, 0, 0xea, 0x60,                       // TransactionTimeoutMs 60000
            1,                                      // TransactionStatus Ongoing
            2,                                      // 1 topic (compact: n+1)
            2, b'a',                                // Topic "a" (compact)
            3, 0, 0, 0, 0, 0, 0, 0, 1,              // PartitionIds [0, 1]
            0,                                      // no tagged fields in the entry
            0, 0, 0, 0, 0, 0, 1, 2,                 // LastUpdateTimestampMs 0x102
            0, 0, 0, 0, 0, 0, 1, 0,                 // StartTimestampMs 0x100
            1,                                      // 1 tagged field
            0, 8, 0, 0, 0, 0, 0, 0, 0, 5,           // tag 0 PreviousProducerId = 5
        ];
        assert_eq!(v.as_deref(), Some(&expected[..]));
        assert_eq!(decode_record(&k, v.as_deref()).unwrap(), {
            let mut r = r.clone();
            if let Some(v) = r.value.as_mut() {
                v.partitions.sort();
            }
            r
        });
    }

    #[test]
    fn known_bytes_empty_and_v0() {
        // Empty: partitions are written as a null array (compact 0).
        let v = value(TxnState::Empty, vec![]);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0, 1,
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 1,
            0, 0, 0xea, 0x60,
            0,                                      // Empty
            0,                                      // null partitions
            0, 0, 0, 0, 0, 0, 1, 2,
            0, 0, 0, 0, 0, 0, 1, 0,
            1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5,
        ];
        assert_eq!(encode_value(&v, 1), expected);
        // v0 (classic) of a CompleteCommit with no partitions: empty array, no tags.
        let mut v0 = value(TxnState::CompleteCommit, vec![]);
        v0.prev_producer_id = -1;
        #[rustfmt::skip]
        let expected0: Vec<u8> = vec![
            0, 0,
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 1,
            0, 0, 0xea, 0x60,
            4,
            0, 0, 0, 0,                             // empty array (int32 0)
            0, 0, 0, 0, 0, 0, 1, 2,
            0, 0, 0, 0, 0, 0, 1, 0,
        ];
        let bytes = encode_value(&v0, 0);
        assert_eq!(bytes, expected0);
        let r = decode_record(&encode_key("x"), Some(&bytes)).unwrap();
        assert_eq!(r.value, Some(v0));
    }

    /// Cross-check against the generated codec (which knows no tagged fields): same bytes
    /// when every tagged field has its default.
    #[test]
    fn agrees_with_generated_codec() {
        let mut v = value(
            TxnState::PrepareCommit,
            vec![
                TopicPartition::new("b", 7),
                TopicPartition::new("a", 3),
                TopicPartition::new("a", 2),
            ],
        );
        v.prev_producer_id = -1;
        let generated = TransactionLogValue {
            producer_id: 5,
            producer_epoch: 1,
            transaction_timeout_ms: 60_000,
            transaction_status: 2,
            transaction_partitions: Some(vec![
                PartitionsSchema {
                    topic: "a".into(),
                    partition_ids: vec![2, 3],
                },
                PartitionsSchema {
                    topic: "b".into(),
                    partition_ids: vec![7],
                },
            ]),
            transaction_last_update_timestamp_ms: 0x0102,
            transaction_start_timestamp_ms: 0x0100,
        };
        for version in 0..=1 {
            let mut out = BytesMut::new();
            c::write_i16(&mut out, version);
            generated.encode(&mut out, version).unwrap();
            assert_eq!(encode_value(&v, version), out.to_vec(), "version {version}");
        }
    }

    #[test]
    fn round_trip_all_states_and_tags() {
        for s in TxnState::ALL {
            let parts = if s == TxnState::Empty {
                vec![]
            } else {
                vec![TopicPartition::new("t", 0), TopicPartition::new("ü", 9)]
            };
            let mut v = value(s, parts);
            v.next_producer_id = 77;
            v.client_transaction_version = 2;
            let r = TxnRecord {
                transactional_id: "txn-ü".into(),
                value: Some(v),
            };
            let (k, val) = encode_record(&r);
            assert_eq!(decode_record(&k, val.as_deref()).unwrap(), r);
        }
        let tomb = TxnRecord {
            transactional_id: "gone".into(),
            value: None,
        };
        let (k, v) = encode_record(&tomb);
        assert_eq!(v, None);
        assert_eq!(decode_record(&k, None).unwrap(), tomb);
    }

    #[test]
    fn reads_unknown_tags_and_trailing_bytes() {
        let mut bytes = encode_value(&value(TxnState::Ongoing, vec![]), 1);
        // Replace the tag section (1 field, 10 bytes) with tag 0 + an unknown tag 9.
        bytes.truncate(bytes.len() - 11);
        bytes.extend_from_slice(&[2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3, 9, 2, 0xab, 0xcd]);
        bytes.extend_from_slice(&[0xff, 0xff]);
        let r = decode_record(&encode_key("x"), Some(&bytes)).unwrap();
        assert_eq!(r.value.unwrap().prev_producer_id, 3);
    }

    /// The value of Kafka's `TransactionLogTest.testDeserializeFutureTransactionLogValue`,
    /// written out by hand: unknown tagged fields 100 ("foo" as a classic STRING) and 101
    /// (INT32 4000) both in the partition entry and at the top level are skipped.
    #[test]
    fn reads_kafka_future_value_with_unknown_tags() {
        #[rustfmt::skip]
        let value: Vec<u8> = vec![
            0, 1,
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,           // producer_id 1000
            0, 100,                                 // producer_epoch 100
            0, 0, 0x03, 0xe8,                       // timeout 1000
            4,                                      // CompleteCommit
            2,                                      // 1 entry
            6, b't', b'o', b'p', b'i', b'c',
            2, 0, 0, 0, 1,                          // [1]
            2, 100, 5, 0, 3, b'f', b'o', b'o', 101, 4, 0, 0, 0x0f, 0xa0,
            0, 0, 0, 0, 0, 0, 0x07, 0xd0,           // last update 2000
            0, 0, 0, 0, 0, 0, 0x0b, 0xb8,           // start 3000
            2, 100, 5, 0, 3, b'f', b'o', b'o', 101, 4, 0, 0, 0x0f, 0xa0,
        ];
        let r = decode_record(&encode_key("transaction-id"), Some(&value)).unwrap();
        let v = r.value.unwrap();
        assert_eq!(
            (v.producer_id, v.producer_epoch, v.timeout_ms, v.state),
            (1000, 100, 1000, TxnState::CompleteCommit)
        );
        assert_eq!(v.partitions, vec![TopicPartition::new("topic", 1)]);
        assert_eq!((v.last_update_ms, v.start_ms), (2000, 3000));
        assert_eq!((v.prev_producer_id, v.next_producer_id), (-1, -1));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            decode_record(&[0], None),
            Err(RecordError::KeyTooShort { len: 1 })
        );
        let e = decode_record(&[0, 1, 0, 1, b'x'], None).unwrap_err();
        assert_eq!(e, RecordError::UnknownKeyVersion { version: 1 });
        assert!(e.is_unknown_version());
        assert!(matches!(
            decode_record(&[0, 0, 0, 5, b'x'], None),
            Err(RecordError::BadKey(_))
        ));
        let k = encode_key("x");
        assert_eq!(
            decode_record(&k, Some(&[0])),
            Err(RecordError::ValueTooShort { len: 1 })
        );
        let e = decode_record(&k, Some(&[0, 2, 0])).unwrap_err();
        assert_eq!(e, RecordError::UnknownValueVersion { version: 2 });
        assert!(e.is_unknown_version());
        let mut v = encode_value(&value(TxnState::Ongoing, vec![]), 1);
        v[16] = 8; // status byte
        assert_eq!(
            decode_record(&k, Some(&v)),
            Err(RecordError::UnknownStatus { status: 8 })
        );
        let v = encode_value(&value(TxnState::Ongoing, vec![]), 1);
        let e = decode_record(&k, Some(&v[..v.len() - 3])).unwrap_err();
        assert!(matches!(e, RecordError::BadValue { version: 1, .. }));
        assert!(!e.is_unknown_version());
    }

    #[test]
    fn overlong_strings_are_cut_not_panicking() {
        let long = "é".repeat(20_000); // 40000 bytes
        let k = encode_key(&long);
        let r = decode_record(&k, None).unwrap();
        assert!(r.transactional_id.len() <= c::MAX_STRING_LEN);
        assert!(long.starts_with(&r.transactional_id));
    }

    /// A small deterministic generator (xorshift), so the test needs no extra dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x5eed_1234_abcd);
        let valid: Vec<Vec<u8>> = TxnState::ALL
            .into_iter()
            .flat_map(|s| {
                let v = value(s, vec![TopicPartition::new("topic", 3)]);
                [encode_value(&v, 0), encode_value(&v, 1)]
            })
            .collect();
        let key = encode_key("some-id");
        for i in 0..50_000 {
            let mut k = key.clone();
            let mut v = valid[rng.below(valid.len())].clone();
            if i % 3 == 0 {
                let len = rng.below(48);
                v = (0..len).map(|_| rng.next() as u8).collect();
                if len >= 2 && rng.below(5) > 0 {
                    v[0] = 0;
                    v[1] = rng.below(3) as u8;
                }
            } else {
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(v.len());
                    v[at] = rng.next() as u8;
                }
                let cut = rng.below(v.len() + 1);
                v.truncate(cut);
            }
            if i % 7 == 0 {
                let at = rng.below(k.len());
                k[at] = rng.next() as u8;
                let cut = rng.below(k.len() + 1);
                k.truncate(cut);
            }
            let _ = decode_record(&k, Some(&v));
        }
    }

    #[test]
    fn partition_for_transactional_id() {
        // Utils.abs(s.hashCode()) % 50 (same function as the group coordinator's).
        assert_eq!(transaction_partition_for("my-group", 50), 12);
        assert_eq!(transaction_partition_for("hello", 50), 22);
        assert_eq!(transaction_partition_for("polygenelubricants", 50), 0);
        assert_eq!(transaction_partition_for("grüppe", 50), 12);
        assert_eq!(transaction_partition_for("日本", 50), 47);
        assert_eq!(transaction_partition_for("😀", 50), 49);
        assert_eq!(transaction_partition_for("x", 1), 0);
        assert_eq!(transaction_partition_for("x", 0), 0);
        assert_eq!(transaction_partition_for("x", -3), 0);
    }
}
