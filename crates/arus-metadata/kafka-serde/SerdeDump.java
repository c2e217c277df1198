// Prints Kafka 4.4's own framing of a fixed set of metadata records, one line per record:
// "<label> <hex>". `tests/kafka_serde.rs` builds the same records with arus-metadata and
// compares the bytes. Run with Java 11+ single-file launch:
//   java -cp "$(cat compat/work/reference-classpath.txt)" SerdeDump.java
import java.nio.ByteBuffer;
import java.util.List;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.metadata.*;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.metadata.MetadataRecordSerde;
import org.apache.kafka.server.common.ApiMessageAndVersion;

public class SerdeDump {
    static final Uuid A = new Uuid(0x0102030405060708L, 0x090a0b0c0d0e0f10L);
    static final Uuid B = new Uuid(0x1112131415161718L, 0x191a1b1c1d1e1f20L);

    static void emit(String label, ApiMessage message, int version) {
        ApiMessageAndVersion record = new ApiMessageAndVersion(message, (short) version);
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = MetadataRecordSerde.INSTANCE.recordSize(record, cache);
        ByteBuffer buf = ByteBuffer.allocate(size);
        MetadataRecordSerde.INSTANCE.write(record, cache, new ByteBufferAccessor(buf));
        StringBuilder hex = new StringBuilder();
        for (byte b : buf.array()) hex.append(String.format("%02x", b));
        System.out.println(label + " " + hex);
    }

    static RegisterBrokerRecord broker() {
        RegisterBrokerRecord r = new RegisterBrokerRecord()
            .setBrokerId(1).setIncarnationId(A).setBrokerEpoch(42L)
            .setRack(null).setFenced(true).setInControlledShutdown(false);
        r.endPoints().add(new RegisterBrokerRecord.BrokerEndpoint()
            .setName("PLAINTEXT").setHost("localhost").setPort(9092).setSecurityProtocol((short) 0));
        r.endPoints().add(new RegisterBrokerRecord.BrokerEndpoint()
            .setName("SSL").setHost("h\u00e9").setPort(65535).setSecurityProtocol((short) 1));
        r.features().add(new RegisterBrokerRecord.BrokerFeature()
            .setName("metadata.version").setMinSupportedVersion((short) 7).setMaxSupportedVersion((short) 30));
        return r;
    }

    static RegisterControllerRecord controller() {
        RegisterControllerRecord r = new RegisterControllerRecord()
            .setControllerId(3000).setIncarnationId(B).setZkMigrationReady(false);
        r.endPoints().add(new RegisterControllerRecord.ControllerEndpoint()
            .setName("CONTROLLER").setHost("10.0.0.1").setPort(9093).setSecurityProtocol((short) 0));
        r.features().add(new RegisterControllerRecord.ControllerFeature()
            .setName("kraft.version").setMinSupportedVersion((short) 0).setMaxSupportedVersion((short) 1));
        return r;
    }

    public static void main(String[] args) {
        for (int v = 0; v <= 4; v++) {
            RegisterBrokerRecord r = broker();
            if (v >= 1) r.setInControlledShutdown(true);
            if (v >= 2) r.setRack("rack-1");
            if (v >= 3) r.setLogDirs(List.of(A, B));
            if (v >= 4) r.setCordonedLogDirs(List.of(B));
            emit("RegisterBroker.v" + v, r, v);
        }
        emit("UnregisterBroker.v0", new UnregisterBrokerRecord().setBrokerId(2).setBrokerEpoch(-1L), 0);
        emit("Topic.v0", new TopicRecord().setName("orders").setTopicId(A), 0);
        for (int v = 0; v <= 2; v++) {
            PartitionRecord r = new PartitionRecord().setPartitionId(3).setTopicId(A)
                .setReplicas(List.of(1, 2, 3)).setIsr(List.of(1, 2)).setRemovingReplicas(List.of(3))
                .setAddingReplicas(List.of()).setLeader(1).setLeaderRecoveryState((byte) 0)
                .setLeaderEpoch(5).setPartitionEpoch(9);
            if (v >= 1) r.setDirectories(List.of(A, B, Uuid.ZERO_UUID));
            if (v >= 2) r.setEligibleLeaderReplicas(List.of(2)).setLastKnownElr(List.of(3));
            emit("Partition.v" + v, r, v);
        }
        emit("Config.v0", new ConfigRecord().setResourceType((byte) 2).setResourceName("orders")
            .setName("retention.ms").setValue("86400000"), 0);
        emit("ConfigNull.v0", new ConfigRecord().setResourceType((byte) 4).setResourceName("")
            .setName("log.retention.ms").setValue(null), 0);
        for (int v = 0; v <= 2; v++) {
            PartitionChangeRecord r = new PartitionChangeRecord().setPartitionId(0).setTopicId(B)
                .setIsr(List.of(1)).setLeader(-1).setReplicas(List.of(1, 2))
                .setRemovingReplicas(List.of()).setAddingReplicas(List.of(2)).setLeaderRecoveryState((byte) 1);
            if (v >= 1) r.setDirectories(List.of(A, B));
            if (v >= 2) r.setEligibleLeaderReplicas(List.of()).setLastKnownElr(List.of(2));
            emit("PartitionChange.v" + v, r, v);
        }
        emit("PartitionChangeEmpty.v0", new PartitionChangeRecord().setPartitionId(7).setTopicId(A), 0);
        emit("FenceBroker.v0", new FenceBrokerRecord().setId(1).setEpoch(42L), 0);
        emit("UnfenceBroker.v0", new UnfenceBrokerRecord().setId(1).setEpoch(42L), 0);
        emit("RemoveTopic.v0", new RemoveTopicRecord().setTopicId(A), 0);
        emit("DelegationToken.v0", new DelegationTokenRecord().setOwner("User:alice").setRequester("User:bob")
            .setRenewers(List.of("User:carol", "User:dave")).setIssueTimestamp(1L).setMaxTimestamp(2L)
            .setExpirationTimestamp(3L).setTokenId("token-1"), 0);
        emit("UserScramCredential.v0", new UserScramCredentialRecord().setName("alice").setMechanism((byte) 1)
            .setSalt(new byte[] {1, 2, 3}).setStoredKey(new byte[] {4, 5}).setServerKey(new byte[] {})
            .setIterations(4096), 0);
        emit("FeatureLevel.v0", new FeatureLevelRecord().setName("metadata.version").setFeatureLevel((short) 30), 0);
        emit("ClientQuota.v0", new ClientQuotaRecord().setEntity(List.of(
                new ClientQuotaRecord.EntityData().setEntityType("user").setEntityName("alice"),
                new ClientQuotaRecord.EntityData().setEntityType("client-id").setEntityName(null)))
            .setKey("producer_byte_rate").setValue(1048576.5).setRemove(false), 0);
        emit("ProducerIds.v0", new ProducerIdsRecord().setBrokerId(1).setBrokerEpoch(42L).setNextProducerId(5000L), 0);
        for (int v = 0; v <= 3; v++) {
            BrokerRegistrationChangeRecord r = new BrokerRegistrationChangeRecord().setBrokerId(1)
                .setBrokerEpoch(42L).setFenced((byte) -1);
            if (v >= 1) r.setInControlledShutdown((byte) 1);
            if (v >= 2) r.setLogDirs(List.of(A));
            if (v >= 3) r.setCordonedLogDirs(List.of());
            emit("BrokerRegistrationChange.v" + v, r, v);
        }
        emit("AccessControlEntry.v0", new AccessControlEntryRecord().setId(B).setResourceType((byte) 2)
            .setResourceName("orders").setPatternType((byte) 3).setPrincipal("User:alice").setHost("*")
            .setOperation((byte) 3).setPermissionType((byte) 3), 0);
        emit("RemoveAccessControlEntry.v0", new RemoveAccessControlEntryRecord().setId(B), 0);
        emit("NoOp.v0", new NoOpRecord(), 0);
        emit("ZkMigrationState.v0", new ZkMigrationStateRecord().setZkMigrationState((byte) 0), 0);
        emit("RemoveUserScramCredential.v0", new RemoveUserScramCredentialRecord().setName("alice").setMechanism((byte) 2), 0);
        emit("BeginTransaction.v0", new BeginTransactionRecord().setName("bulk create"), 0);
        emit("BeginTransactionNull.v0", new BeginTransactionRecord().setName(null), 0);
        emit("EndTransaction.v0", new EndTransactionRecord(), 0);
        emit("AbortTransaction.v0", new AbortTransactionRecord().setReason("controller failover"), 0);
        emit("RemoveDelegationToken.v0", new RemoveDelegationTokenRecord().setTokenId("token-1"), 0);
        emit("RegisterController.v0", controller(), 0);
        emit("ClearElr.v0", new ClearElrRecord().setTopicName("orders"), 0);
        emit("UnregisterController.v0", new UnregisterControllerRecord().setControllerId(3000), 0);
    }
}
