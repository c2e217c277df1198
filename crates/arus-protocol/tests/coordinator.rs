//! Coordinator record types (`arus_protocol::coordinator`): random values of every type at
//! every version round-trip (encode → decode → equal, identical re-encoding), and truncated or
//! corrupted encodings decode to an error or a value, never a panic.

use arus_protocol::coordinator::*;
use arus_protocol::testing::Rng;
use arus_protocol::{Bytes, BytesMut, Message};

fn check<M: Message + PartialEq + std::fmt::Debug>(
    name: &str,
    random: impl Fn(&mut Rng, i16) -> M,
) {
    let (lo, hi) = M::VERSIONS;
    for version in lo..=hi {
        for i in 0..25u64 {
            let mut rng = Rng::new(((version as u64) << 16) ^ i ^ (name.len() as u64) << 40);
            let m = random(&mut rng, version);
            let mut out = BytesMut::new();
            m.encode(&mut out, version)
                .unwrap_or_else(|e| panic!("{name} v{version}: encode: {e}"));
            let bytes = out.freeze();
            let mut buf = bytes.clone();
            let back = M::decode(&mut buf, version)
                .unwrap_or_else(|e| panic!("{name} v{version}: decode: {e}"));
            assert!(buf.is_empty(), "{name} v{version}: bytes left");
            assert_eq!(back, m, "{name} v{version}");
            let mut again = BytesMut::new();
            back.encode(&mut again, version).unwrap();
            assert_eq!(
                again.freeze(),
                bytes,
                "{name} v{version}: re-encoding differs"
            );
            // Truncations and byte flips must not panic.
            for cut in 0..bytes.len() {
                let _ = M::decode(&mut bytes.slice(..cut), version);
                let mut v = bytes.to_vec();
                v[cut] ^= (rng.next_u64() as u8) | 1;
                let _ = M::decode(&mut Bytes::from(v), version);
            }
        }
    }
}

macro_rules! check_all {
    ($($t:ident),* $(,)?) => {
        $( check::<$t>(stringify!($t), $t::random); )*
    };
}

#[test]
fn every_coordinator_record_type_roundtrips() {
    check_all!(
        ConsumerGroupCurrentMemberAssignmentKey,
        ConsumerGroupCurrentMemberAssignmentValue,
        ConsumerGroupMemberMetadataKey,
        ConsumerGroupMemberMetadataValue,
        ConsumerGroupMetadataKey,
        ConsumerGroupMetadataValue,
        ConsumerGroupPartitionMetadataKey,
        ConsumerGroupPartitionMetadataValue,
        ConsumerGroupRegularExpressionKey,
        ConsumerGroupRegularExpressionValue,
        ConsumerGroupTargetAssignmentMemberKey,
        ConsumerGroupTargetAssignmentMemberValue,
        ConsumerGroupTargetAssignmentMetadataKey,
        ConsumerGroupTargetAssignmentMetadataValue,
        GroupMetadataKey,
        GroupMetadataValue,
        LegacyOffsetCommitKey,
        LegacyOffsetCommitValue,
        OffsetCommitKey,
        OffsetCommitValue,
        ShareGroupCurrentMemberAssignmentKey,
        ShareGroupCurrentMemberAssignmentValue,
        ShareGroupMemberMetadataKey,
        ShareGroupMemberMetadataValue,
        ShareGroupMetadataKey,
        ShareGroupMetadataValue,
        ShareGroupStatePartitionMetadataKey,
        ShareGroupStatePartitionMetadataValue,
        ShareGroupTargetAssignmentMemberKey,
        ShareGroupTargetAssignmentMemberValue,
        ShareGroupTargetAssignmentMetadataKey,
        ShareGroupTargetAssignmentMetadataValue,
        ShareSnapshotKey,
        ShareSnapshotValue,
        ShareUpdateKey,
        ShareUpdateValue,
        StreamsGroupCurrentMemberAssignmentKey,
        StreamsGroupCurrentMemberAssignmentValue,
        StreamsGroupMemberMetadataKey,
        StreamsGroupMemberMetadataValue,
        StreamsGroupMetadataKey,
        StreamsGroupMetadataValue,
        StreamsGroupTargetAssignmentMemberKey,
        StreamsGroupTargetAssignmentMemberValue,
        StreamsGroupTargetAssignmentMetadataKey,
        StreamsGroupTargetAssignmentMetadataValue,
        StreamsGroupTopologyKey,
        StreamsGroupTopologyValue,
        TransactionLogKey,
        TransactionLogValue,
    );
}

#[test]
fn every_metadata_and_raft_record_type_roundtrips() {
    use arus_protocol::metadata::*;
    use arus_protocol::raft::*;
    check_all!(
        AbortTransactionRecord,
        AccessControlEntryRecord,
        BeginTransactionRecord,
        BrokerRegistrationChangeRecord,
        ClearElrRecord,
        ClientQuotaRecord,
        ConfigRecord,
        DelegationTokenRecord,
        EndTransactionRecord,
        FeatureLevelRecord,
        FenceBrokerRecord,
        NoOpRecord,
        PartitionChangeRecord,
        PartitionRecord,
        ProducerIdsRecord,
        RegisterBrokerRecord,
        RegisterControllerRecord,
        RemoveAccessControlEntryRecord,
        RemoveDelegationTokenRecord,
        RemoveTopicRecord,
        RemoveUserScramCredentialRecord,
        TopicRecord,
        UnfenceBrokerRecord,
        UnregisterBrokerRecord,
        UnregisterControllerRecord,
        UserScramCredentialRecord,
        ZkMigrationStateRecord,
        QuorumStateData,
    );
}

/// Record types are Kafka's `CoordinatorRecordType` / `MetadataRecordType` numbers: they are
/// written to disk, so a change would make old data unreadable.
#[test]
fn record_types_are_kafkas() {
    assert_eq!(LegacyOffsetCommitKey::RECORD_TYPE, 0);
    assert_eq!(OffsetCommitKey::RECORD_TYPE, 1);
    assert_eq!(GroupMetadataKey::RECORD_TYPE, 2);
    assert_eq!(ConsumerGroupMetadataKey::RECORD_TYPE, 3);
    assert_eq!(ConsumerGroupCurrentMemberAssignmentKey::RECORD_TYPE, 8);
    assert_eq!(ConsumerGroupRegularExpressionKey::RECORD_TYPE, 16);
    assert_eq!(ShareSnapshotKey::RECORD_TYPE, 0);
    assert_eq!(ShareUpdateKey::RECORD_TYPE, 1);
    assert_eq!(TransactionLogKey::RECORD_TYPE, 0);
    assert_eq!(arus_protocol::metadata::TopicRecord::RECORD_TYPE, 2);
    assert_eq!(arus_protocol::metadata::PartitionRecord::RECORD_TYPE, 3);
    assert_eq!(arus_protocol::metadata::FeatureLevelRecord::RECORD_TYPE, 12);
}
