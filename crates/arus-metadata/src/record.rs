//! [`MetadataRecord`]: one record of the metadata log, and its framing.
//!
//! On-disk / on-wire format (Kafka's `MetadataRecordSerde`, i.e. `AbstractApiMessageSerde`
//! writing an `ApiMessageAndVersion`), the value of every record in `__cluster_metadata`:
//!
//! ```text
//! unsigned varint  frame version   always 1 (0 was KRaft's 2.8 preview, rejected)
//! unsigned varint  record type     the spec's apiKey (TopicRecord = 2, ...)
//! unsigned varint  record version  within the spec's validVersions
//! ...              the record      the generated codec's encoding at that version
//! ```
//!
//! Nothing may follow the record: trailing bytes are an error, as in Kafka.

use arus_protocol::codec::{read_uvarint, write_uvarint};
use arus_protocol::metadata::*;
use arus_protocol::{Bytes, BytesMut, DecodeError, EncodeError, Message};

/// The only frame version Kafka writes and reads.
pub const FRAME_VERSION: u32 = 1;

/// A failure to encode or decode a framed metadata record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The frame header (frame version, type or version varint) is truncated or malformed.
    #[error("malformed metadata record frame header")]
    Header(#[source] DecodeError),
    /// Frame version 0 (KRaft's 2.8 preview) or a version from the future.
    #[error("unsupported metadata record frame version {0} (only frame version 1 is supported)")]
    UnsupportedFrameVersion(u32),
    /// A record type (apiKey) that no metadata record spec defines.
    #[error("unknown metadata record type {0}")]
    UnknownType(u32),
    /// A version outside the record's validVersions.
    #[error("unsupported version {version} of {record} (valid: {min}-{max})")]
    UnsupportedVersion {
        record: &'static str,
        version: u32,
        min: i16,
        max: i16,
    },
    /// The record body does not decode at its version (truncated, bad length, ...).
    #[error("failed to decode {record} v{version}")]
    Body {
        record: &'static str,
        version: i16,
        #[source]
        source: DecodeError,
    },
    /// Bytes left after the record body.
    #[error("found {count} byte(s) of garbage after {record}")]
    TrailingBytes { record: &'static str, count: usize },
    /// The record cannot be written at this version (a field the version lacks, a string
    /// longer than 32767 bytes, ...).
    #[error("failed to encode {record} v{version}")]
    Encode {
        record: &'static str,
        version: i16,
        #[source]
        source: EncodeError,
    },
}

macro_rules! metadata_records {
    ($($variant:ident($ty:ident),)*) => {
        /// One metadata record: every record type of Kafka's `metadata-records` specs.
        #[derive(Debug, Clone, PartialEq)]
        pub enum MetadataRecord {
            $(#[doc = concat!("`", stringify!($ty), "`.")] $variant($ty),)*
        }

        $(impl From<$ty> for MetadataRecord {
            fn from(r: $ty) -> Self {
                MetadataRecord::$variant(r)
            }
        })*

        impl MetadataRecord {
            /// The record type written in the frame (the spec's `apiKey`).
            pub fn record_type(&self) -> i16 {
                match self {
                    $(MetadataRecord::$variant(_) => $ty::RECORD_TYPE,)*
                }
            }

            /// The spec's name, e.g. `"TopicRecord"`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(MetadataRecord::$variant(_) => stringify!($ty),)*
                }
            }

            /// The spec's validVersions as (min, max).
            pub fn valid_versions(&self) -> (i16, i16) {
                match self {
                    $(MetadataRecord::$variant(_) => <$ty as Message>::VERSIONS,)*
                }
            }

            fn encode_body(&self, out: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
                match self {
                    $(MetadataRecord::$variant(r) => r.encode(out, version),)*
                }
            }

            /// Decodes the body of a record of type `record_type` at `version`, after
            /// checking the version against the spec.
            fn decode_body(
                record_type: u32,
                version: u32,
                buf: &mut Bytes,
            ) -> Result<(MetadataRecord, i16), RecordError> {
                $(if record_type == $ty::RECORD_TYPE as u32 {
                    let (min, max) = <$ty as Message>::VERSIONS;
                    let record = stringify!($ty);
                    let v = i16::try_from(version)
                        .ok()
                        .filter(|v| (min..=max).contains(v))
                        .ok_or(RecordError::UnsupportedVersion { record, version, min, max })?;
                    let body = <$ty as Message>::decode(buf, v)
                        .map_err(|source| RecordError::Body { record, version: v, source })?;
                    return Ok((MetadataRecord::$variant(body), v));
                })*
                Err(RecordError::UnknownType(record_type))
            }
        }
    };
}

metadata_records! {
    RegisterBroker(RegisterBrokerRecord),
    UnregisterBroker(UnregisterBrokerRecord),
    Topic(TopicRecord),
    Partition(PartitionRecord),
    Config(ConfigRecord),
    PartitionChange(PartitionChangeRecord),
    FenceBroker(FenceBrokerRecord),
    UnfenceBroker(UnfenceBrokerRecord),
    RemoveTopic(RemoveTopicRecord),
    DelegationToken(DelegationTokenRecord),
    UserScramCredential(UserScramCredentialRecord),
    FeatureLevel(FeatureLevelRecord),
    ClientQuota(ClientQuotaRecord),
    ProducerIds(ProducerIdsRecord),
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    AccessControlEntry(AccessControlEntryRecord),
    RemoveAccessControlEntry(RemoveAccessControlEntryRecord),
    NoOp(NoOpRecord),
    ZkMigrationState(ZkMigrationStateRecord),
    RemoveUserScramCredential(RemoveUserScramCredentialRecord),
    BeginTransaction(BeginTransactionRecord),
    EndTransaction(EndTransactionRecord),
    AbortTransaction(AbortTransactionRecord),
    RemoveDelegationToken(RemoveDelegationTokenRecord),
    RegisterController(RegisterControllerRecord),
    ClearElr(ClearElrRecord),
    UnregisterController(UnregisterControllerRecord),
}

impl MetadataRecord {
    /// The highest version the spec defines: what [`MetadataRecord::encode`] writes. Every
    /// later version of a metadata record is a superset of the earlier ones, so any record
    /// can be written at it.
    pub fn latest_version(&self) -> i16 {
        self.valid_versions().1
    }

    /// Frames the record at its latest version.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        self.encode_at(self.latest_version())
    }

    /// Frames the record at `version` (an `ApiMessageAndVersion` with that version).
    pub fn encode_at(&self, version: i16) -> Result<Bytes, RecordError> {
        let (min, max) = self.valid_versions();
        let record = self.name();
        if !(min..=max).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                record,
                version: version as u16 as u32,
                min,
                max,
            });
        }
        let mut out = BytesMut::with_capacity(64);
        write_uvarint(&mut out, FRAME_VERSION);
        write_uvarint(&mut out, self.record_type() as u16 as u32);
        write_uvarint(&mut out, version as u16 as u32);
        self.encode_body(&mut out, version)
            .map_err(|source| RecordError::Encode {
                record,
                version,
                source,
            })?;
        Ok(out.freeze())
    }

    /// Decodes one framed record (the whole of `frame`), dropping the version it was
    /// written at; [`VersionedRecord::decode`] keeps it.
    pub fn decode(frame: Bytes) -> Result<MetadataRecord, RecordError> {
        VersionedRecord::decode(frame).map(|v| v.record)
    }
}

/// A record with the version it is (or was) written at: Kafka's `ApiMessageAndVersion`.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedRecord {
    pub record: MetadataRecord,
    pub version: i16,
}

impl VersionedRecord {
    /// Pairs a record with its latest version.
    pub fn latest(record: impl Into<MetadataRecord>) -> VersionedRecord {
        let record = record.into();
        let version = record.latest_version();
        VersionedRecord { record, version }
    }

    /// Frames the record at the version carried.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        self.record.encode_at(self.version)
    }

    /// Decodes one framed record; `frame` must hold exactly one record.
    pub fn decode(mut frame: Bytes) -> Result<VersionedRecord, RecordError> {
        let frame_version =
            read_uvarint(&mut frame, "MetadataRecord.FrameVersion").map_err(RecordError::Header)?;
        if frame_version != FRAME_VERSION {
            return Err(RecordError::UnsupportedFrameVersion(frame_version));
        }
        let record_type =
            read_uvarint(&mut frame, "MetadataRecord.Type").map_err(RecordError::Header)?;
        let version =
            read_uvarint(&mut frame, "MetadataRecord.Version").map_err(RecordError::Header)?;
        let (record, version) = MetadataRecord::decode_body(record_type, version, &mut frame)?;
        if !frame.is_empty() {
            return Err(RecordError::TrailingBytes {
                record: record.name(),
                count: frame.len(),
            });
        }
        Ok(VersionedRecord { record, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::Uuid;

    fn topic() -> MetadataRecord {
        TopicRecord {
            name: "orders".into(),
            topic_id: Uuid([7; 16]),
        }
        .into()
    }

    #[test]
    fn frame_header_is_frame_version_type_version() {
        let bytes = topic().encode().unwrap();
        assert_eq!(&bytes[..3], &[1, 2, 0]);
        assert_eq!(MetadataRecord::decode(bytes).unwrap(), topic());
    }

    #[test]
    fn versions_round_trip_and_are_kept() {
        let change = MetadataRecord::from(PartitionChangeRecord {
            partition_id: 3,
            topic_id: Uuid([1; 16]),
            leader: 2,
            isr: Some(vec![2, 3]),
            ..Default::default()
        });
        for v in 0..=2 {
            let bytes = change.encode_at(v).unwrap();
            let decoded = VersionedRecord::decode(bytes).unwrap();
            assert_eq!(decoded.version, v);
            assert_eq!(decoded.record, change);
        }
        assert_eq!(change.latest_version(), 2);
    }

    #[test]
    fn every_record_type_round_trips_at_every_version() {
        let mut rng = arus_protocol::testing::Rng::new(42);
        let mut types = 0;
        for record_type in 0..64u32 {
            let Some(sample) = random_record(&mut rng, record_type, 0) else {
                continue;
            };
            types += 1;
            let (min, max) = sample.valid_versions();
            for v in min..=max {
                for _ in 0..20 {
                    let random = random_record(&mut rng, record_type, v).unwrap();
                    let bytes = random.encode_at(v).unwrap();
                    let back = VersionedRecord::decode(bytes).unwrap();
                    assert_eq!((back.record, back.version), (random, v));
                }
            }
        }
        assert_eq!(types, 27);
    }

    pub(crate) fn random_record(
        rng: &mut arus_protocol::testing::Rng,
        record_type: u32,
        v: i16,
    ) -> Option<MetadataRecord> {
        macro_rules! pick {
            ($($ty:ident),*) => {
                $(if record_type == $ty::RECORD_TYPE as u32 {
                    return Some($ty::random(rng, v).into());
                })*
            };
        }
        pick!(
            RegisterBrokerRecord,
            UnregisterBrokerRecord,
            TopicRecord,
            PartitionRecord,
            ConfigRecord,
            PartitionChangeRecord,
            FenceBrokerRecord,
            UnfenceBrokerRecord,
            RemoveTopicRecord,
            DelegationTokenRecord,
            UserScramCredentialRecord,
            FeatureLevelRecord,
            ClientQuotaRecord,
            ProducerIdsRecord,
            BrokerRegistrationChangeRecord,
            AccessControlEntryRecord,
            RemoveAccessControlEntryRecord,
            NoOpRecord,
            ZkMigrationStateRecord,
            RemoveUserScramCredentialRecord,
            BeginTransactionRecord,
            EndTransactionRecord,
            AbortTransactionRecord,
            RemoveDelegationTokenRecord,
            RegisterControllerRecord,
            ClearElrRecord,
            UnregisterControllerRecord
        );
        None
    }

    #[test]
    fn all_27_record_types_are_known() {
        let known = (0..64u32)
            .filter(|t| {
                !matches!(
                    MetadataRecord::decode_body(*t, 0, &mut Bytes::new()),
                    Err(RecordError::UnknownType(_))
                )
            })
            .count();
        assert_eq!(known, 27);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let good = topic().encode().unwrap();
        // Every strict prefix fails without panicking.
        for n in 0..good.len() {
            assert!(
                MetadataRecord::decode(good.slice(..n)).is_err(),
                "prefix {n}"
            );
        }
        let mut trailing = BytesMut::from(&good[..]);
        trailing.extend_from_slice(&[0, 0]);
        assert_eq!(
            MetadataRecord::decode(trailing.freeze()),
            Err(RecordError::TrailingBytes {
                record: "TopicRecord",
                count: 2
            })
        );
        let mut frame0 = BytesMut::from(&good[..]);
        frame0[0] = 0;
        assert_eq!(
            MetadataRecord::decode(frame0.freeze()),
            Err(RecordError::UnsupportedFrameVersion(0))
        );
        assert_eq!(
            MetadataRecord::decode(Bytes::from_static(&[1, 99, 0])),
            Err(RecordError::UnknownType(99))
        );
        assert!(matches!(
            MetadataRecord::decode(Bytes::from_static(&[1, 2, 1, 0])),
            Err(RecordError::UnsupportedVersion { version: 1, .. })
        ));
        // A version varint too large for an i16 (Kafka: "was too large").
        assert!(matches!(
            MetadataRecord::decode(Bytes::from_static(&[1, 2, 0xff, 0xff, 0x03])),
            Err(RecordError::UnsupportedVersion { .. })
        ));
        // A varint that never ends.
        assert!(matches!(
            MetadataRecord::decode(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
            Err(RecordError::Header(_))
        ));
    }

    #[test]
    fn encoding_an_unsupported_version_is_an_error() {
        assert!(matches!(
            topic().encode_at(1),
            Err(RecordError::UnsupportedVersion { .. })
        ));
        let long = MetadataRecord::from(ConfigRecord {
            resource_type: 2,
            resource_name: "t".into(),
            name: "k".into(),
            value: Some("x".repeat(40_000)),
        });
        assert!(matches!(long.encode(), Err(RecordError::Encode { .. })));
    }
}
