//! The `__consumer_offsets` record codec, byte-compatible with Kafka's group coordinator
//! (`GroupCoordinatorRecordSerde` / `CoordinatorRecordSerde`, and the older
//! `GroupMetadataManager` formats it still reads).
//!
//! - A record **key** is an `int16` record type (also called the key version) followed by the
//!   key struct at its version 0. Types 0 and 1 are offset commits (0 the legacy key, Kafka
//!   writes 1), 2 is `GroupMetadataKey`, 3..=8 are the KIP-848 consumer-group records (the
//!   specs' `apiKey`, Kafka's `CoordinatorRecordType`).
//! - A record **value** is an `int16` value version followed by the value struct at that
//!   version; a **tombstone** (the record deleted by compaction) has a null value.
//! - Written value versions are Kafka 4.4's: `OffsetCommitValue` v4, the flexible version
//!   whose tagged `topicId` survives a rewrite (v1 when an expire timestamp is set, the only
//!   version that has one), `GroupMetadataValue` v3, the KIP-848 values v0. Every version of
//!   the specs is read.
//!
//! Type 16 is `ConsumerGroupRegularExpressionKey` (a subscribed regex's resolved topics).
//! Record types this version of Arus does not interpret (the share-group records 9..=15,
//! future types) decode to [`CoordinatorRecord::Unknown`]
//! so a loader can skip them.

use arus_protocol::coordinator::{
    ConsumerGroupCurrentMemberAssignmentKey, ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataKey, ConsumerGroupMemberMetadataValue, ConsumerGroupMetadataKey,
    ConsumerGroupMetadataValue, ConsumerGroupPartitionMetadataKey,
    ConsumerGroupPartitionMetadataValue, ConsumerGroupRegularExpressionKey,
    ConsumerGroupRegularExpressionValue, ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMemberValue, ConsumerGroupTargetAssignmentMetadataKey,
    ConsumerGroupTargetAssignmentMetadataValue, GroupMetadataKey, GroupMetadataValue,
    LegacyOffsetCommitKey, OffsetCommitKey, OffsetCommitValue,
};
use arus_protocol::coordinator_key::coordinator_partition_for;
use arus_protocol::{DecodeError, EncodeError, Message};
use bytes::{BufMut, Bytes, BytesMut};

/// Key version of the legacy offset commit key (written by pre-0.9 brokers; same layout).
pub const OFFSET_COMMIT_KEY_V0: i16 = LegacyOffsetCommitKey::RECORD_TYPE;
/// Key version Kafka writes for offset commits.
pub const OFFSET_COMMIT_KEY: i16 = OffsetCommitKey::RECORD_TYPE;
/// Key version of the classic group metadata record.
pub const GROUP_METADATA_KEY: i16 = GroupMetadataKey::RECORD_TYPE;
/// Key version of `ConsumerGroupMetadataKey`.
pub const CONSUMER_GROUP_METADATA_KEY: i16 = ConsumerGroupMetadataKey::RECORD_TYPE;
/// Key version of `ConsumerGroupPartitionMetadataKey`.
pub const CONSUMER_GROUP_PARTITION_METADATA_KEY: i16 =
    ConsumerGroupPartitionMetadataKey::RECORD_TYPE;
/// Key version of `ConsumerGroupMemberMetadataKey`.
pub const CONSUMER_GROUP_MEMBER_METADATA_KEY: i16 = ConsumerGroupMemberMetadataKey::RECORD_TYPE;
/// Key version of `ConsumerGroupTargetAssignmentMetadataKey`.
pub const CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY: i16 =
    ConsumerGroupTargetAssignmentMetadataKey::RECORD_TYPE;
/// Key version of `ConsumerGroupTargetAssignmentMemberKey`.
pub const CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY: i16 =
    ConsumerGroupTargetAssignmentMemberKey::RECORD_TYPE;
/// Key version of `ConsumerGroupCurrentMemberAssignmentKey`.
pub const CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY: i16 =
    ConsumerGroupCurrentMemberAssignmentKey::RECORD_TYPE;

/// Key version of `ConsumerGroupRegularExpressionKey` (Kafka 4's resolved regex record).
pub const CONSUMER_GROUP_REGULAR_EXPRESSION_KEY: i16 =
    ConsumerGroupRegularExpressionKey::RECORD_TYPE;

/// `OffsetCommitValue` version Kafka 4.1+ writes when the commit has no expire timestamp.
/// Writing v3 would drop the tagged `topicId` of a v4 record on rewrite (compaction, reload).
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 4;
/// `OffsetCommitValue` version Kafka writes when the commit carries an expire timestamp
/// (the only version with the `expireTimestamp` field).
pub const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE: i16 = 1;
/// `GroupMetadataValue` version Kafka 4 writes.
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// One `__consumer_offsets` record, key fields plus the value (`None` = tombstone).
#[derive(Debug, Clone, PartialEq)]
pub enum CoordinatorRecord {
    /// A committed offset (key version 0 or 1).
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    /// A classic group's metadata (key version 2).
    GroupMetadata {
        group: String,
        value: Option<GroupMetadataValue>,
    },
    /// KIP-848 group epoch (key version 3).
    ConsumerGroupMetadata {
        group_id: String,
        value: Option<ConsumerGroupMetadataValue>,
    },
    /// KIP-848 subscribed topics' metadata (key version 4).
    ConsumerGroupPartitionMetadata {
        group_id: String,
        value: Option<ConsumerGroupPartitionMetadataValue>,
    },
    /// KIP-848 member metadata (key version 5).
    ConsumerGroupMemberMetadata {
        group_id: String,
        member_id: String,
        value: Option<ConsumerGroupMemberMetadataValue>,
    },
    /// KIP-848 target assignment epoch (key version 6).
    ConsumerGroupTargetAssignmentMetadata {
        group_id: String,
        value: Option<ConsumerGroupTargetAssignmentMetadataValue>,
    },
    /// KIP-848 one member's target assignment (key version 7).
    ConsumerGroupTargetAssignmentMember {
        group_id: String,
        member_id: String,
        value: Option<ConsumerGroupTargetAssignmentMemberValue>,
    },
    /// KIP-848 one member's current assignment (key version 8).
    ConsumerGroupCurrentMemberAssignment {
        group_id: String,
        member_id: String,
        value: Option<ConsumerGroupCurrentMemberAssignmentValue>,
    },
    /// KIP-848 a subscribed regular expression's resolution (key version 16).
    ConsumerGroupRegularExpression {
        group_id: String,
        regex: String,
        value: Option<ConsumerGroupRegularExpressionValue>,
    },
    /// A record type this version of Arus does not interpret (kept so a reader can skip it).
    Unknown { key_version: i16 },
}

/// Failure to encode or decode a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordCodecError {
    /// The key is shorter than its 2-byte version prefix.
    #[error("record key is {len} bytes, too short for its int16 version")]
    KeyTooShort { len: usize },
    /// The value is shorter than its 2-byte version prefix.
    #[error("{record} value is {len} bytes, too short for its int16 version")]
    ValueTooShort { record: &'static str, len: usize },
    /// The value version is outside the versions the spec defines.
    #[error("{record} value version {version} is not supported (supported: {min}..={max})")]
    UnsupportedValueVersion {
        record: &'static str,
        version: i16,
        min: i16,
        max: i16,
    },
    /// The key struct after the version prefix is malformed.
    #[error("malformed {record} key (key version {key_version}): {source}")]
    BadKey {
        record: &'static str,
        key_version: i16,
        #[source]
        source: DecodeError,
    },
    /// The value struct after the version prefix is malformed.
    #[error("malformed {record} value (version {version}): {source}")]
    BadValue {
        record: &'static str,
        version: i16,
        #[source]
        source: DecodeError,
    },
    /// The record could not be encoded (e.g. a string longer than 32767 bytes).
    #[error("cannot encode {record}: {source}")]
    Encode {
        record: &'static str,
        #[source]
        source: EncodeError,
    },
    /// [`CoordinatorRecord::Unknown`] carries no content and cannot be written.
    #[error("cannot encode a record of unknown type (key version {key_version})")]
    UnknownRecordType { key_version: i16 },
}

fn encode_struct<M: Message>(
    record: &'static str,
    version: i16,
    m: &M,
) -> Result<Bytes, RecordCodecError> {
    let mut out = BytesMut::new();
    out.put_i16(version);
    m.encode(&mut out, version)
        .map_err(|source| RecordCodecError::Encode { record, source })?;
    Ok(out.freeze())
}

/// A key: its record type, then the key struct at its only version (Kafka 4.4's specs give
/// every key version 0 and carry the record type as `apiKey`; older specs numbered the key
/// versions by record type, which is why the type is also called the key version).
fn encode_key<M: Message>(
    record: &'static str,
    record_type: i16,
    m: &M,
) -> Result<Bytes, RecordCodecError> {
    let mut out = BytesMut::new();
    out.put_i16(record_type);
    m.encode(&mut out, M::VERSIONS.0)
        .map_err(|source| RecordCodecError::Encode { record, source })?;
    Ok(out.freeze())
}

fn encode_value<M: Message>(
    record: &'static str,
    version: i16,
    m: Option<&M>,
) -> Result<Option<Bytes>, RecordCodecError> {
    m.map(|m| encode_struct(record, version, m)).transpose()
}

/// Encodes a record as Kafka writes it: `(key, value)`, `value` `None` for a tombstone.
pub fn encode_record(r: &CoordinatorRecord) -> Result<(Bytes, Option<Bytes>), RecordCodecError> {
    use CoordinatorRecord as R;
    Ok(match r {
        R::OffsetCommit {
            group,
            topic,
            partition,
            value,
        } => {
            let key = OffsetCommitKey {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
            };
            let version = match value {
                Some(v) if v.expire_timestamp != -1 => OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE,
                _ => OFFSET_COMMIT_VALUE_VERSION,
            };
            (
                encode_key("OffsetCommitKey", OFFSET_COMMIT_KEY, &key)?,
                encode_value("OffsetCommitValue", version, value.as_ref())?,
            )
        }
        R::GroupMetadata { group, value } => (
            encode_key(
                "GroupMetadataKey",
                GROUP_METADATA_KEY,
                &GroupMetadataKey {
                    group: group.clone(),
                },
            )?,
            encode_value(
                "GroupMetadataValue",
                GROUP_METADATA_VALUE_VERSION,
                value.as_ref(),
            )?,
        ),
        R::ConsumerGroupMetadata { group_id, value } => (
            encode_key(
                "ConsumerGroupMetadataKey",
                CONSUMER_GROUP_METADATA_KEY,
                &ConsumerGroupMetadataKey {
                    group_id: group_id.clone(),
                },
            )?,
            encode_value("ConsumerGroupMetadataValue", 0, value.as_ref())?,
        ),
        R::ConsumerGroupPartitionMetadata { group_id, value } => (
            encode_key(
                "ConsumerGroupPartitionMetadataKey",
                CONSUMER_GROUP_PARTITION_METADATA_KEY,
                &ConsumerGroupPartitionMetadataKey {
                    group_id: group_id.clone(),
                },
            )?,
            encode_value("ConsumerGroupPartitionMetadataValue", 0, value.as_ref())?,
        ),
        R::ConsumerGroupMemberMetadata {
            group_id,
            member_id,
            value,
        } => (
            encode_key(
                "ConsumerGroupMemberMetadataKey",
                CONSUMER_GROUP_MEMBER_METADATA_KEY,
                &ConsumerGroupMemberMetadataKey {
                    group_id: group_id.clone(),
                    member_id: member_id.clone(),
                },
            )?,
            encode_value("ConsumerGroupMemberMetadataValue", 0, value.as_ref())?,
        ),
        R::ConsumerGroupTargetAssignmentMetadata { group_id, value } => (
            encode_key(
                "ConsumerGroupTargetAssignmentMetadataKey",
                CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY,
                &ConsumerGroupTargetAssignmentMetadataKey {
                    group_id: group_id.clone(),
                },
            )?,
            encode_value(
                "ConsumerGroupTargetAssignmentMetadataValue",
                0,
                value.as_ref(),
            )?,
        ),
        R::ConsumerGroupTargetAssignmentMember {
            group_id,
            member_id,
            value,
        } => (
            encode_key(
                "ConsumerGroupTargetAssignmentMemberKey",
                CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY,
                &ConsumerGroupTargetAssignmentMemberKey {
                    group_id: group_id.clone(),
                    member_id: member_id.clone(),
                },
            )?,
            encode_value(
                "ConsumerGroupTargetAssignmentMemberValue",
                0,
                value.as_ref(),
            )?,
        ),
        R::ConsumerGroupCurrentMemberAssignment {
            group_id,
            member_id,
            value,
        } => (
            encode_key(
                "ConsumerGroupCurrentMemberAssignmentKey",
                CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY,
                &ConsumerGroupCurrentMemberAssignmentKey {
                    group_id: group_id.clone(),
                    member_id: member_id.clone(),
                },
            )?,
            encode_value(
                "ConsumerGroupCurrentMemberAssignmentValue",
                0,
                value.as_ref(),
            )?,
        ),
        R::ConsumerGroupRegularExpression {
            group_id,
            regex,
            value,
        } => (
            encode_key(
                "ConsumerGroupRegularExpressionKey",
                CONSUMER_GROUP_REGULAR_EXPRESSION_KEY,
                &ConsumerGroupRegularExpressionKey {
                    group_id: group_id.clone(),
                    regular_expression: regex.clone(),
                },
            )?,
            encode_value("ConsumerGroupRegularExpressionValue", 0, value.as_ref())?,
        ),
        R::Unknown { key_version } => {
            return Err(RecordCodecError::UnknownRecordType {
                key_version: *key_version,
            });
        }
    })
}

/// Decodes the key struct (after the version prefix) at `key_version`. Trailing bytes are
/// ignored, as Kafka does.
fn decode_key<M: Message>(
    record: &'static str,
    key_version: i16,
    body: &[u8],
) -> Result<M, RecordCodecError> {
    // Key specs pin their single version (the record type); OffsetCommitKey spans 0-1.
    let version = key_version.clamp(M::VERSIONS.0, M::VERSIONS.1);
    M::decode(&mut Bytes::copy_from_slice(body), version).map_err(|source| {
        RecordCodecError::BadKey {
            record,
            key_version,
            source,
        }
    })
}

/// Decodes a value (version prefix + struct), `None` for a tombstone. Trailing bytes are
/// ignored, as Kafka does.
fn decode_value<M: Message>(
    record: &'static str,
    value: Option<&[u8]>,
) -> Result<Option<M>, RecordCodecError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some((head, body)) = value.split_first_chunk::<2>() else {
        return Err(RecordCodecError::ValueTooShort {
            record,
            len: value.len(),
        });
    };
    let version = i16::from_be_bytes(*head);
    let (min, max) = M::VERSIONS;
    if version < min || version > max {
        return Err(RecordCodecError::UnsupportedValueVersion {
            record,
            version,
            min,
            max,
        });
    }
    M::decode(&mut Bytes::copy_from_slice(body), version)
        .map(Some)
        .map_err(|source| RecordCodecError::BadValue {
            record,
            version,
            source,
        })
}

/// Decodes a `__consumer_offsets` record from its key and value (`None` = tombstone).
/// Unknown key versions yield [`CoordinatorRecord::Unknown`] without looking at the value.
pub fn decode_record(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<CoordinatorRecord, RecordCodecError> {
    use CoordinatorRecord as R;
    let Some((head, body)) = key.split_first_chunk::<2>() else {
        return Err(RecordCodecError::KeyTooShort { len: key.len() });
    };
    let key_version = i16::from_be_bytes(*head);
    Ok(match key_version {
        OFFSET_COMMIT_KEY_V0 | OFFSET_COMMIT_KEY => {
            let k: OffsetCommitKey = decode_key("OffsetCommitKey", key_version, body)?;
            R::OffsetCommit {
                group: k.group,
                topic: k.topic,
                partition: k.partition,
                value: decode_value("OffsetCommitValue", value)?,
            }
        }
        GROUP_METADATA_KEY => {
            let k: GroupMetadataKey = decode_key("GroupMetadataKey", key_version, body)?;
            R::GroupMetadata {
                group: k.group,
                value: decode_value("GroupMetadataValue", value)?,
            }
        }
        CONSUMER_GROUP_METADATA_KEY => {
            let k: ConsumerGroupMetadataKey =
                decode_key("ConsumerGroupMetadataKey", key_version, body)?;
            R::ConsumerGroupMetadata {
                group_id: k.group_id,
                value: decode_value("ConsumerGroupMetadataValue", value)?,
            }
        }
        CONSUMER_GROUP_PARTITION_METADATA_KEY => {
            let k: ConsumerGroupPartitionMetadataKey =
                decode_key("ConsumerGroupPartitionMetadataKey", key_version, body)?;
            R::ConsumerGroupPartitionMetadata {
                group_id: k.group_id,
                value: decode_value("ConsumerGroupPartitionMetadataValue", value)?,
            }
        }
        CONSUMER_GROUP_MEMBER_METADATA_KEY => {
            let k: ConsumerGroupMemberMetadataKey =
                decode_key("ConsumerGroupMemberMetadataKey", key_version, body)?;
            R::ConsumerGroupMemberMetadata {
                group_id: k.group_id,
                member_id: k.member_id,
                value: decode_value("ConsumerGroupMemberMetadataValue", value)?,
            }
        }
        CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY => {
            let k: ConsumerGroupTargetAssignmentMetadataKey = decode_key(
                "ConsumerGroupTargetAssignmentMetadataKey",
                key_version,
                body,
            )?;
            R::ConsumerGroupTargetAssignmentMetadata {
                group_id: k.group_id,
                value: decode_value("ConsumerGroupTargetAssignmentMetadataValue", value)?,
            }
        }
        CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY => {
            let k: ConsumerGroupTargetAssignmentMemberKey =
                decode_key("ConsumerGroupTargetAssignmentMemberKey", key_version, body)?;
            R::ConsumerGroupTargetAssignmentMember {
                group_id: k.group_id,
                member_id: k.member_id,
                value: decode_value("ConsumerGroupTargetAssignmentMemberValue", value)?,
            }
        }
        CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY => {
            let k: ConsumerGroupCurrentMemberAssignmentKey =
                decode_key("ConsumerGroupCurrentMemberAssignmentKey", key_version, body)?;
            R::ConsumerGroupCurrentMemberAssignment {
                group_id: k.group_id,
                member_id: k.member_id,
                value: decode_value("ConsumerGroupCurrentMemberAssignmentValue", value)?,
            }
        }
        CONSUMER_GROUP_REGULAR_EXPRESSION_KEY => {
            let k: ConsumerGroupRegularExpressionKey =
                decode_key("ConsumerGroupRegularExpressionKey", key_version, body)?;
            R::ConsumerGroupRegularExpression {
                group_id: k.group_id,
                regex: k.regular_expression,
                value: decode_value("ConsumerGroupRegularExpressionValue", value)?,
            }
        }
        other => R::Unknown { key_version: other },
    })
}

/// The `__consumer_offsets` partition owning `group_id`, as Kafka computes it (see
/// [`coordinator_partition_for`]).
pub fn offsets_partition_for(group_id: &str, partitions: i32) -> i32 {
    coordinator_partition_for(group_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::Uuid;
    use arus_protocol::coordinator::consumer_group_current_member_assignment_value::TopicPartitions;
    use arus_protocol::coordinator::consumer_group_member_metadata_value::{
        ClassicMemberMetadata, ClassicProtocol,
    };
    use arus_protocol::coordinator::consumer_group_partition_metadata_value::{
        PartitionMetadata, TopicMetadata,
    };
    use arus_protocol::coordinator::consumer_group_target_assignment_member_value::TopicPartition;
    use arus_protocol::coordinator::group_metadata_value::MemberMetadata;
    use rand::{Rng, SeedableRng};

    fn all_variants() -> Vec<CoordinatorRecord> {
        use CoordinatorRecord as R;
        let uuid = Uuid::from_bytes([7; 16]);
        let tps = vec![TopicPartitions {
            topic_id: uuid,
            partitions: vec![0, 3],
            ..Default::default()
        }];
        let mut v = vec![
            R::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(OffsetCommitValue {
                    offset: 42,
                    leader_epoch: 5,
                    metadata: "m".into(),
                    commit_timestamp: 1_700_000_000_000,
                    expire_timestamp: -1,
                    ..Default::default()
                }),
            },
            R::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(OffsetCommitValue {
                    offset: 42,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: 1,
                    expire_timestamp: 99,
                    ..Default::default()
                }),
            },
            R::GroupMetadata {
                group: "g".into(),
                value: Some(GroupMetadataValue {
                    protocol_type: "consumer".into(),
                    generation: 4,
                    protocol: Some("range".into()),
                    leader: Some("m1".into()),
                    current_state_timestamp: 123,
                    members: vec![MemberMetadata {
                        member_id: "m1".into(),
                        group_instance_id: Some("i1".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        rebalance_timeout: 300_000,
                        session_timeout: 45_000,
                        subscription: Bytes::from_static(b"sub"),
                        assignment: Bytes::from_static(b"asg"),
                    }],
                }),
            },
            R::ConsumerGroupMetadata {
                group_id: "g".into(),
                value: Some(ConsumerGroupMetadataValue {
                    epoch: 9,
                    ..Default::default()
                }),
            },
            R::ConsumerGroupPartitionMetadata {
                group_id: "g".into(),
                value: Some(ConsumerGroupPartitionMetadataValue {
                    topics: vec![TopicMetadata {
                        topic_id: uuid,
                        topic_name: "t".into(),
                        num_partitions: 2,
                        partition_metadata: vec![PartitionMetadata {
                            partition: 1,
                            racks: vec!["r1".into()],
                        }],
                    }],
                }),
            },
            R::ConsumerGroupMemberMetadata {
                group_id: "g".into(),
                member_id: "m".into(),
                value: Some(ConsumerGroupMemberMetadataValue {
                    instance_id: None,
                    rack_id: Some("r".into()),
                    client_id: "c".into(),
                    client_host: "h".into(),
                    subscribed_topic_names: vec!["t".into()],
                    subscribed_topic_regex: None,
                    rebalance_timeout_ms: 1000,
                    server_assignor: Some("uniform".into()),
                    classic_member_metadata: Some(ClassicMemberMetadata {
                        session_timeout_ms: 10,
                        supported_protocols: vec![ClassicProtocol {
                            name: "range".into(),
                            metadata: Bytes::from_static(b"x"),
                        }],
                    }),
                }),
            },
            R::ConsumerGroupTargetAssignmentMetadata {
                group_id: "g".into(),
                value: Some(ConsumerGroupTargetAssignmentMetadataValue {
                    assignment_epoch: 3,
                    ..Default::default()
                }),
            },
            R::ConsumerGroupTargetAssignmentMember {
                group_id: "g".into(),
                member_id: "m".into(),
                value: Some(ConsumerGroupTargetAssignmentMemberValue {
                    topic_partitions: vec![TopicPartition {
                        topic_id: uuid,
                        partitions: vec![1, 2],
                    }],
                }),
            },
            R::ConsumerGroupCurrentMemberAssignment {
                group_id: "g".into(),
                member_id: "m".into(),
                value: Some(ConsumerGroupCurrentMemberAssignmentValue {
                    member_epoch: 3,
                    previous_member_epoch: 2,
                    state: 0,
                    assigned_partitions: tps.clone(),
                    partitions_pending_revocation: tps,
                }),
            },
            R::ConsumerGroupRegularExpression {
                group_id: "g".into(),
                regex: "rx-.*".into(),
                value: Some(ConsumerGroupRegularExpressionValue {
                    topics: vec!["rx-a".into(), "rx-b".into()],
                    version: 42,
                    timestamp: 1_700_000_000_000,
                }),
            },
        ];
        // The tombstone of every type.
        let tombstones: Vec<R> = v
            .iter()
            .map(|r| {
                let mut r = r.clone();
                match &mut r {
                    R::OffsetCommit { value, .. } => *value = None,
                    R::GroupMetadata { value, .. } => *value = None,
                    R::ConsumerGroupMetadata { value, .. } => *value = None,
                    R::ConsumerGroupPartitionMetadata { value, .. } => *value = None,
                    R::ConsumerGroupMemberMetadata { value, .. } => *value = None,
                    R::ConsumerGroupTargetAssignmentMetadata { value, .. } => *value = None,
                    R::ConsumerGroupTargetAssignmentMember { value, .. } => *value = None,
                    R::ConsumerGroupCurrentMemberAssignment { value, .. } => *value = None,
                    R::ConsumerGroupRegularExpression { value, .. } => *value = None,
                    R::Unknown { .. } => {}
                }
                r
            })
            .collect();
        v.extend(tombstones);
        v
    }

    #[test]
    fn round_trip_every_variant() {
        for r in all_variants() {
            let (k, v) = encode_record(&r).unwrap();
            let back = decode_record(&k, v.as_deref()).unwrap();
            // v3 has no expireTimestamp and v1 no leaderEpoch: the dropped one decodes to -1.
            let expected = match r.clone() {
                CoordinatorRecord::OffsetCommit {
                    group,
                    topic,
                    partition,
                    value: Some(mut val),
                } if val.expire_timestamp != -1 => {
                    val.leader_epoch = -1;
                    CoordinatorRecord::OffsetCommit {
                        group,
                        topic,
                        partition,
                        value: Some(val),
                    }
                }
                other => other,
            };
            assert_eq!(back, expected);
        }
    }

    /// Found by the coordinator_records fuzz target: a v4 commit carrying a topic id lost it
    /// when Arus rewrote the record at v3.
    #[test]
    fn an_offset_commit_keeps_its_topic_id_when_rewritten() {
        let record = CoordinatorRecord::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(OffsetCommitValue {
                offset: 42,
                leader_epoch: 7,
                metadata: "m".into(),
                commit_timestamp: 1_700_000_000_000,
                expire_timestamp: -1,
                topic_id: arus_protocol::Uuid([9; 16]),
            }),
        };
        let (k, v) = encode_record(&record).unwrap();
        let v = v.unwrap();
        assert_eq!(&v[..2], &4i16.to_be_bytes(), "written at v4");
        assert_eq!(decode_record(&k, Some(&v)).unwrap(), record);
    }

    /// The record types are on disk: they must stay Kafka's `CoordinatorRecordType` numbers.
    #[test]
    fn record_types_are_kafkas() {
        assert_eq!(
            [
                OFFSET_COMMIT_KEY_V0,
                OFFSET_COMMIT_KEY,
                GROUP_METADATA_KEY,
                CONSUMER_GROUP_METADATA_KEY,
                CONSUMER_GROUP_PARTITION_METADATA_KEY,
                CONSUMER_GROUP_MEMBER_METADATA_KEY,
                CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY,
                CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY,
                CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY,
            ],
            [0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn offset_commit_known_bytes() {
        let r = CoordinatorRecord::OffsetCommit {
            group: "g1".into(),
            topic: "t".into(),
            partition: 2,
            value: Some(OffsetCommitValue {
                offset: 5,
                leader_epoch: 1,
                metadata: String::new(),
                commit_timestamp: 0x0102,
                expire_timestamp: -1,
                ..Default::default()
            }),
        };
        let (k, v) = encode_record(&r).unwrap();
        #[rustfmt::skip]
        let key: &[u8] = &[
            0, 1,             // key version 1
            0, 2, b'g', b'1', // group
            0, 1, b't',       // topic
            0, 0, 0, 2,       // partition
        ];
        #[rustfmt::skip]
        let value: &[u8] = &[
            0, 4,                   // value version 4 (flexible)
            0, 0, 0, 0, 0, 0, 0, 5, // offset
            0, 0, 0, 1,             // leaderEpoch
            1,                      // metadata "" (compact string: length + 1)
            0, 0, 0, 0, 0, 0, 1, 2, // commitTimestamp
            0,                      // no tagged fields (topicId absent: zero)
        ];
        assert_eq!(&k[..], key);
        assert_eq!(v.as_deref(), Some(value));
        assert_eq!(decode_record(key, Some(value)).unwrap(), r);
        // Kafka 4.0 wrote v3; it still reads the same.
        #[rustfmt::skip]
        let value3: &[u8] = &[
            0, 3,                   // value version 3
            0, 0, 0, 0, 0, 0, 0, 5, // offset
            0, 0, 0, 1,             // leaderEpoch
            0, 0,                   // metadata ""
            0, 0, 0, 0, 0, 0, 1, 2, // commitTimestamp
        ];
        assert_eq!(decode_record(key, Some(value3)).unwrap(), r);

        // With an expire timestamp: version 1, no leaderEpoch, expireTimestamp last.
        let r1 = CoordinatorRecord::OffsetCommit {
            group: "g1".into(),
            topic: "t".into(),
            partition: 2,
            value: Some(OffsetCommitValue {
                offset: 5,
                leader_epoch: -1,
                metadata: "x".into(),
                commit_timestamp: 1,
                expire_timestamp: 2,
                ..Default::default()
            }),
        };
        let (_, v1) = encode_record(&r1).unwrap();
        #[rustfmt::skip]
        let value1: &[u8] = &[
            0, 1,
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 1, b'x',
            0, 0, 0, 0, 0, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 0, 2,
        ];
        assert_eq!(v1.as_deref(), Some(value1));

        // Legacy key version 0 and value version 0 (offset, metadata, commitTimestamp).
        #[rustfmt::skip]
        let value0: &[u8] = &[
            0, 0,
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 0,
            0, 0, 0, 0, 0, 0, 0, 9,
        ];
        let mut key0 = key.to_vec();
        key0[1] = 0;
        assert_eq!(
            decode_record(&key0, Some(value0)).unwrap(),
            CoordinatorRecord::OffsetCommit {
                group: "g1".into(),
                topic: "t".into(),
                partition: 2,
                value: Some(OffsetCommitValue {
                    offset: 5,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: 9,
                    expire_timestamp: -1,
                    ..Default::default()
                }),
            }
        );
        // Tombstone.
        assert_eq!(
            decode_record(key, None).unwrap(),
            CoordinatorRecord::OffsetCommit {
                group: "g1".into(),
                topic: "t".into(),
                partition: 2,
                value: None,
            }
        );
    }

    #[test]
    fn group_metadata_known_bytes() {
        let r = CoordinatorRecord::GroupMetadata {
            group: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 1,
                protocol: Some("range".into()),
                leader: None,
                current_state_timestamp: 7,
                members: vec![MemberMetadata {
                    member_id: "m".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "h".into(),
                    rebalance_timeout: 300,
                    session_timeout: 100,
                    subscription: Bytes::from_static(&[1]),
                    assignment: Bytes::new(),
                }],
            }),
        };
        let (k, v) = encode_record(&r).unwrap();
        assert_eq!(&k[..], &[0, 2, 0, 1, b'g']);
        #[rustfmt::skip]
        let value: &[u8] = &[
            0, 3,                                             // value version 3
            0, 8, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r', // protocolType
            0, 0, 0, 1,                                       // generation
            0, 5, b'r', b'a', b'n', b'g', b'e',               // protocol
            0xff, 0xff,                                       // leader null
            0, 0, 0, 0, 0, 0, 0, 7,                           // currentStateTimestamp
            0, 0, 0, 1,                                       // 1 member
            0, 1, b'm',                                       // memberId
            0xff, 0xff,                                       // groupInstanceId null
            0, 1, b'c',                                       // clientId
            0, 1, b'h',                                       // clientHost
            0, 0, 1, 44,                                      // rebalanceTimeout 300
            0, 0, 0, 100,                                     // sessionTimeout
            0, 0, 0, 1, 1,                                    // subscription
            0, 0, 0, 0,                                       // assignment (empty)
        ];
        assert_eq!(v.as_deref(), Some(value));
        assert_eq!(decode_record(&k, Some(value)).unwrap(), r);
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Bytes produced by Apache Kafka 4.1.1 itself (`GroupCoordinatorRecordHelpers` +
    /// `GroupCoordinatorRecordSerde.serializeKey/serializeValue`, run against the jars of
    /// compat/reference).
    #[test]
    fn kafka_4_1_1_reference_bytes() {
        let oc_key = unhex("00010002673100017400000002");
        // newOffsetCommitRecord("g1", "t", 2, offset 5, epoch 1, "", ts 0x102, no expire):
        // Kafka 4.1 writes v4 (flexible; Kafka 4.0 wrote v3, as Arus does). We read it.
        let oc_v4 = unhex("000400000000000000050000000101000000000000010200");
        let expected = CoordinatorRecord::OffsetCommit {
            group: "g1".into(),
            topic: "t".into(),
            partition: 2,
            value: Some(OffsetCommitValue {
                offset: 5,
                leader_epoch: 1,
                metadata: String::new(),
                commit_timestamp: 0x0102,
                expire_timestamp: -1,
                ..Default::default()
            }),
        };
        assert_eq!(decode_record(&oc_key, Some(&oc_v4)).unwrap(), expected);
        assert_eq!(&encode_record(&expected).unwrap().0[..], &oc_key[..]);

        // With an expire timestamp Kafka writes v1, as Arus does: byte-identical.
        let oc_v1 = unhex("0001000000000000000500017800000000000000010000000000000002");
        let r = decode_record(&oc_key, Some(&oc_v1)).unwrap();
        let (k, v) = encode_record(&r).unwrap();
        assert_eq!((&k[..], v.as_deref()), (&oc_key[..], Some(&oc_v1[..])));

        // Empty classic group (newEmptyGroupMetadataRecord): key v2, value v3.
        let gm_key = unhex("0002000167");
        let gm_v3 = unhex("0003000000000000ffffffff000001a201cded6400000000");
        let r = decode_record(&gm_key, Some(&gm_v3)).unwrap();
        assert_eq!(
            r,
            CoordinatorRecord::GroupMetadata {
                group: "g".into(),
                value: Some(GroupMetadataValue {
                    protocol_type: String::new(),
                    generation: 0,
                    protocol: None,
                    leader: None,
                    current_state_timestamp: 0x01a2_01cd_ed64,
                    members: vec![],
                }),
            }
        );
        let (k, v) = encode_record(&r).unwrap();
        assert_eq!((&k[..], v.as_deref()), (&gm_key[..], Some(&gm_v3[..])));

        // KIP-848 records: key versions 3, 6, 7 and value version 0, byte-identical.
        for (key, value) in [
            ("0003000167", "00000000000900"),
            ("0006000167", "00000000000300"),
            (
                "000700016700016d",
                "000002070707070707070707070707070707070300000001000000020000",
            ),
        ] {
            let (key, value) = (unhex(key), unhex(value));
            let r = decode_record(&key, Some(&value)).unwrap();
            assert!(!matches!(r, CoordinatorRecord::Unknown { .. }));
            let (k, v) = encode_record(&r).unwrap();
            assert_eq!((&k[..], v.as_deref()), (&key[..], Some(&value[..])));
            // Tombstone of the same key.
            let (_, none) = encode_record(&decode_record(&key, None).unwrap()).unwrap();
            assert_eq!(none, None);
        }
    }

    #[test]
    fn reads_flexible_value_versions() {
        // OffsetCommitValue v4 (flexible: compact string, tagged fields).
        #[rustfmt::skip]
        let value: &[u8] = &[
            0, 4,
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 0, 0, 1,
            2, b'x',
            0, 0, 0, 0, 0, 0, 0, 1,
            0,
        ];
        let key = [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 0];
        match decode_record(&key, Some(value)).unwrap() {
            CoordinatorRecord::OffsetCommit { value: Some(v), .. } => {
                assert_eq!((v.offset, v.leader_epoch, v.metadata.as_str()), (5, 1, "x"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_and_bad_input() {
        assert_eq!(
            decode_record(&[0, 9, 0, 1, b'g'], Some(&[0, 0])).unwrap(),
            CoordinatorRecord::Unknown { key_version: 9 }
        );
        assert_eq!(
            decode_record(&[-1i16 as u8, 0xff], None).unwrap(),
            CoordinatorRecord::Unknown { key_version: -1 }
        );
        assert!(matches!(
            encode_record(&CoordinatorRecord::Unknown { key_version: 9 }),
            Err(RecordCodecError::UnknownRecordType { key_version: 9 })
        ));
        assert!(matches!(
            decode_record(&[0], None),
            Err(RecordCodecError::KeyTooShort { len: 1 })
        ));
        let e = decode_record(&[0, 2, 0, 1, b'g'], Some(&[0, 9])).unwrap_err();
        assert!(matches!(
            e,
            RecordCodecError::UnsupportedValueVersion { version: 9, .. }
        ));
        assert!(e.to_string().contains("GroupMetadataValue value version 9"));
        assert!(matches!(
            decode_record(&[0, 2, 0, 5, b'g'], None),
            Err(RecordCodecError::BadKey { .. })
        ));
        assert!(matches!(
            decode_record(&[0, 2, 0, 1, b'g'], Some(&[0])),
            Err(RecordCodecError::ValueTooShort { .. })
        ));
    }

    #[test]
    fn partition_for_group() {
        // Spot check of the shared Java-compatible partitioning (fully tested in
        // arus-protocol's coordinator_key).
        assert_eq!(offsets_partition_for("console-consumer-12345", 50), 6);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let valid: Vec<(Bytes, Option<Bytes>)> = all_variants()
            .iter()
            .map(|r| encode_record(r).unwrap())
            .collect();
        for i in 0..50_000 {
            let (key, value) = if i % 2 == 0 {
                let kl = rng.gen_range(0..24);
                let key: Vec<u8> = (0..kl).map(|_| rng.r#gen()).collect();
                let mut key = key;
                if kl >= 2 && rng.gen_bool(0.8) {
                    key[0] = 0;
                    key[1] = rng.gen_range(0..10);
                }
                let value = if rng.gen_bool(0.1) {
                    None
                } else {
                    let vl = rng.gen_range(0..64);
                    let mut v: Vec<u8> = (0..vl).map(|_| rng.r#gen()).collect();
                    if vl >= 2 && rng.gen_bool(0.8) {
                        v[0] = 0;
                        v[1] = rng.gen_range(0..5);
                    }
                    Some(v)
                };
                (key, value)
            } else {
                // Mutate or truncate a valid record.
                let (k, v) = &valid[rng.gen_range(0..valid.len())];
                let mut k = k.to_vec();
                let mut v = v.as_ref().map(|v| v.to_vec());
                if let Some(v) = v.as_mut().filter(|v| !v.is_empty()) {
                    let n = rng.gen_range(1..4);
                    for _ in 0..n {
                        let at = rng.gen_range(0..v.len());
                        v[at] = rng.r#gen();
                    }
                    let cut = rng.gen_range(0..=v.len());
                    v.truncate(cut);
                }
                if rng.gen_bool(0.3) && !k.is_empty() {
                    let at = rng.gen_range(0..k.len());
                    k[at] = rng.r#gen();
                }
                (k, v)
            };
            let _ = decode_record(&key, value.as_deref());
        }
    }
}
