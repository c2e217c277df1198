// Runs one scripted cluster scenario through Kafka 4.4.0's own control managers
// (ClusterControlManager, ReplicationControlManager, FeatureControlManager,
// ConfigurationControlManager, ProducerIdControlManager, wired and replayed as
// QuorumController wires them) and prints every record batch in a compact form, for
// arus-controller's differential test (src/tests/scenario_kafka.rs), which runs the same
// script through arus-controller and compares the text.
//
// It lives in Kafka's package to reach the package-private managers, so it must be
// compiled, not run as a single source file. From the repository root:
//   CP="$(cat compat/work/reference-classpath.txt)"
//   javac -cp "$CP" -d /tmp/scenario-dump crates/arus-controller/kafka-diff/org/apache/kafka/controller/ScenarioDump.java
//   java -cp "$CP:/tmp/scenario-dump" org.apache.kafka.controller.ScenarioDump \
//     > crates/arus-controller/src/tests/fixtures/scenario_kafka44.txt
package org.apache.kafka.controller;

import java.util.*;
import java.util.stream.*;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.*;
import org.apache.kafka.common.metadata.*;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.common.utils.internals.LogContext;
import org.apache.kafka.metadata.FinalizedControllerFeatures;
import org.apache.kafka.metadata.KafkaConfigSchema;
import org.apache.kafka.metadata.PartitionRegistration;
import org.apache.kafka.metadata.VersionRange;
import org.apache.kafka.metadata.placement.StripedReplicaPlacer;
import org.apache.kafka.server.common.ApiMessageAndVersion;
import org.apache.kafka.server.common.KRaftVersion;
import org.apache.kafka.timeline.SnapshotRegistry;

public class ScenarioDump {
    static long nowMs = 1_000;
    static long nextOffset = 0;
    static final Map<Uuid, String> topicNames = new HashMap<>();
    static int topicCount = 0;

    static Time time = new Time() {
        public long milliseconds() { return nowMs; }
        public long nanoseconds() { return nowMs * 1_000_000L; }
        public void sleep(long ms) { nowMs += ms; }
    };

    static ClusterControlManager cluster;
    static ReplicationControlManager replication;
    static FeatureControlManager features;
    static ConfigurationControlManager configs;
    static ProducerIdControlManager producerIds;
    static Map<Integer, Long> epochs = new TreeMap<>();

    static String list(List<Integer> l) {
        return l == null ? "-" : l.stream().map(String::valueOf).collect(Collectors.joining(",", "[", "]"));
    }
    static String t(Uuid id) {
        return topicNames.computeIfAbsent(id, x -> "T" + (topicCount++));
    }

    static String show(ApiMessage m) {
        if (m instanceof RegisterBrokerRecord r)
            return "REG " + r.brokerId() + " epoch=" + r.brokerEpoch() + " fenced=" + r.fenced() + " ics=" + r.inControlledShutdown() + " rack=" + r.rack();
        if (m instanceof BrokerRegistrationChangeRecord r)
            return "BRC " + r.brokerId() + " epoch=" + r.brokerEpoch() + " fenced=" + r.fenced() + " ics=" + r.inControlledShutdown();
        if (m instanceof TopicRecord r) return "TOPIC " + r.name() + " " + t(r.topicId());
        if (m instanceof PartitionRecord r)
            return "PART " + t(r.topicId()) + "-" + r.partitionId() + " replicas=" + list(r.replicas()) + " isr=" + list(r.isr()) + " leader=" + r.leader()
                + " le=" + r.leaderEpoch() + " pe=" + r.partitionEpoch();
        if (m instanceof PartitionChangeRecord r)
            return "PCH " + t(r.topicId()) + "-" + r.partitionId() + " leader=" + r.leader() + " isr=" + list(r.isr()) + " elr=" + list(r.eligibleLeaderReplicas())
                + " lke=" + list(r.lastKnownElr()) + " lrs=" + r.leaderRecoveryState();
        if (m instanceof RemoveTopicRecord r) return "RMT " + t(r.topicId());
        if (m instanceof ProducerIdsRecord r) return "PID " + r.brokerId() + " epoch=" + r.brokerEpoch() + " next=" + r.nextProducerId();
        if (m instanceof ConfigRecord r) return "CFG " + r.resourceType() + " " + r.resourceName() + " " + r.name() + "=" + r.value();
        if (m instanceof UnregisterBrokerRecord r) return "UNREG " + r.brokerId() + " epoch=" + r.brokerEpoch();
        if (m instanceof FeatureLevelRecord r) return "FEAT " + r.name() + "=" + r.featureLevel();
        if (m instanceof ClearElrRecord r) return "CLEAR " + r.topicName();
        if (m instanceof BeginTransactionRecord r) return "BEGIN " + r.name();
        if (m instanceof EndTransactionRecord r) return "END";
        return "OTHER " + m.getClass().getSimpleName();
    }

    static void replay(ApiMessage m, long offset) {
        if (m instanceof RegisterBrokerRecord r) cluster.replay(r, offset);
        else if (m instanceof BrokerRegistrationChangeRecord r) cluster.replay(r);
        else if (m instanceof UnregisterBrokerRecord r) cluster.replay(r);
        else if (m instanceof TopicRecord r) replication.replay(r);
        else if (m instanceof PartitionRecord r) replication.replay(r);
        else if (m instanceof PartitionChangeRecord r) replication.replay(r);
        else if (m instanceof RemoveTopicRecord r) { replication.replay(r); }
        else if (m instanceof ConfigRecord r) configs.replay(r);
        else if (m instanceof FeatureLevelRecord r) features.replay(r);
        else if (m instanceof ProducerIdsRecord r) producerIds.replay(r);
        else if (m instanceof ClearElrRecord r) replication.replay(r);
        else if (m instanceof BeginTransactionRecord || m instanceof EndTransactionRecord) { }
        else throw new RuntimeException("unexpected " + m);
    }

    static void apply(String step, List<ApiMessageAndVersion> records) {
        System.out.println("# " + step);
        for (ApiMessageAndVersion r : records) {
            System.out.println(show(r.message()));
            replay(r.message(), nextOffset++);
        }
    }

    static BrokerRegistrationRequestData registration(int id, String rack, int generation) {
        BrokerRegistrationRequestData.FeatureCollection fs = new BrokerRegistrationRequestData.FeatureCollection();
        Object[][] ranges = {{"eligible.leader.replicas.version", 0, 1}, {"group.version", 0, 1}, {"kraft.version", 0, 1},
            {"metadata.version", 7, 33}, {"share.version", 0, 2}, {"streams.version", 0, 1}, {"transaction.version", 0, 2}};
        for (Object[] f : ranges)
            fs.add(new BrokerRegistrationRequestData.Feature().setName((String) f[0])
                .setMinSupportedVersion(((Integer) f[1]).shortValue()).setMaxSupportedVersion(((Integer) f[2]).shortValue()));
        BrokerRegistrationRequestData.ListenerCollection ls = new BrokerRegistrationRequestData.ListenerCollection();
        ls.add(new BrokerRegistrationRequestData.Listener().setName("PLAINTEXT").setHost("127.0.0.1").setPort(9092 + id).setSecurityProtocol((short) 0));
        return new BrokerRegistrationRequestData().setBrokerId(id).setClusterId("MkU3OEVBNTcwNTJENDM2Qg")
            .setIncarnationId(new Uuid(0x1111111100000000L | id, generation)).setFeatures(fs).setListeners(ls).setRack(rack)
            .setLogDirs(List.of(new Uuid(0xAAAAAAAA00000000L | id, 0xAAAAAAAAAAAAAAAAL))).setPreviousBrokerEpoch(-1);
    }

    static void register(int id, String rack, int generation) {
        Map<String, Short> finalized = new HashMap<>(features.finalizedFeatures(Long.MAX_VALUE).featureMap());
        ControllerResult<org.apache.kafka.metadata.BrokerRegistrationReply> res;
        try {
            res = cluster.registerBroker(registration(id, rack, generation), nextOffset,
                new FinalizedControllerFeatures(finalized, Long.MAX_VALUE), true);
        } catch (org.apache.kafka.common.errors.ApiException e) {
            System.out.println("# register " + id + " gen " + generation + " -> "
                + org.apache.kafka.common.protocol.Errors.forException(e).name() + ": " + e.getMessage());
            return;
        }
        epochs.put(id, res.response().epoch());
        apply("register " + id + " gen " + generation, res.records());
    }

    static void heartbeat(int id, boolean shutdown) {
        // QuorumController records the contact time when a heartbeat arrives.
        cluster.trackBrokerHeartbeat(id, epochs.get(id));
        BrokerHeartbeatRequestData req = new BrokerHeartbeatRequestData().setBrokerId(id).setBrokerEpoch(epochs.get(id))
            .setCurrentMetadataOffset(nextOffset - 1).setWantShutDown(shutdown);
        ControllerResult<org.apache.kafka.metadata.BrokerHeartbeatReply> res =
            replication.processBrokerHeartbeat(req, cluster.registerBrokerRecordOffset(id).getAsLong());
        List<ApiMessageAndVersion> recs = res.records();
        boolean ics = res.response().inControlledShutdown();
        long batchEnd = nextOffset + recs.size() - 1;
        apply("heartbeat " + id + (shutdown ? " shutdown" : "") + " -> fenced=" + res.response().isFenced()
            + " ics=" + ics + " stop=" + res.response().shouldShutDown(), recs);
        if (ics) cluster.heartbeatManager().maybeUpdateControlledShutdownOffset(id, batchEnd);
    }

    static void advance(long ms, int... alive) {
        long end = nowMs + ms;
        while (nowMs < end) {
            nowMs = Math.min(nowMs + 1_000, end);
            for (int id : alive) heartbeat(id, false);
            // QuorumController runs the task again at once while it reports more to do.
            while (true) {
                ControllerResult<Boolean> r = replication.maybeFenceOneStaleBroker();
                if (!r.records().isEmpty()) apply("session expiry at " + nowMs, r.records());
                if (!r.response()) break;
            }
        }
    }

    /** The two topic configs the controller's decisions read, with Kafka's defaults. */
    static KafkaConfigSchema schema() {
        org.apache.kafka.common.config.ConfigDef def = new org.apache.kafka.common.config.ConfigDef()
            .define("min.insync.replicas", org.apache.kafka.common.config.ConfigDef.Type.INT, 1,
                org.apache.kafka.common.config.ConfigDef.Importance.HIGH, "")
            .define("unclean.leader.election.enable", org.apache.kafka.common.config.ConfigDef.Type.BOOLEAN, false,
                org.apache.kafka.common.config.ConfigDef.Importance.HIGH, "");
        Map<org.apache.kafka.common.config.ConfigResource.Type, org.apache.kafka.common.config.ConfigDef> defs = Map.of(
            org.apache.kafka.common.config.ConfigResource.Type.TOPIC, def,
            org.apache.kafka.common.config.ConfigResource.Type.BROKER, def);
        Map<String, List<org.apache.kafka.server.config.ConfigSynonym>> synonyms = Map.of(
            "min.insync.replicas", List.of(new org.apache.kafka.server.config.ConfigSynonym("min.insync.replicas")),
            "unclean.leader.election.enable", List.of(new org.apache.kafka.server.config.ConfigSynonym("unclean.leader.election.enable")));
        return new KafkaConfigSchema(defs, synonyms);
    }

    static ControllerRequestContext ctx() {
        return new ControllerRequestContext(new RequestHeaderData().setRequestApiVersion((short) 7),
            KafkaPrincipal.ANONYMOUS, OptionalLong.empty());
    }

    static void createTopic(String name, int partitions, short rf) {
        CreateTopicsRequestData.CreatableTopicCollection topics = new CreateTopicsRequestData.CreatableTopicCollection();
        topics.add(new CreateTopicsRequestData.CreatableTopic().setName(name).setNumPartitions(partitions).setReplicationFactor(rf));
        ControllerResult<CreateTopicsResponseData> res = replication.createTopics(ctx(),
            new CreateTopicsRequestData().setTopics(topics), Set.of(name), false);
        CreateTopicsResponseData.CreatableTopicResult r = res.response().topics().find(name);
        apply("create " + name + " -> " + r.errorCode() + " " + r.errorMessage(), res.records());
    }

    public static void main(String[] args) {
        LogContext lc = new LogContext();
        SnapshotRegistry reg = new SnapshotRegistry(lc);
        Map<String, VersionRange> local = new HashMap<>();
        local.put("metadata.version", VersionRange.of((short) 7, (short) 33));
        local.put("eligible.leader.replicas.version", VersionRange.of((short) 0, (short) 1));
        local.put("group.version", VersionRange.of((short) 0, (short) 1));
        local.put("transaction.version", VersionRange.of((short) 0, (short) 2));
        local.put("kraft.version", VersionRange.of((short) 0, (short) 1));
        local.put("share.version", VersionRange.of((short) 0, (short) 2));
        local.put("streams.version", VersionRange.of((short) 0, (short) 1));
        features = new FeatureControlManager.Builder().setLogContext(lc).setSnapshotRegistry(reg)
            .setQuorumFeatures(new QuorumFeatures(3000, local, List.of(3000)))
            .setClusterFeatureSupportDescriber(new ClusterFeatureSupportDescriber() {
                public Iterator<Map.Entry<Integer, Map<String, VersionRange>>> brokerSupported() { return cluster.brokerSupportedFeatures(); }
                public Iterator<Map.Entry<Integer, Map<String, VersionRange>>> controllerSupported() { return Collections.emptyIterator(); }
            })
            .setKRaftVersionAccessor(new KRaftVersionAccessor() {
                public KRaftVersion kraftVersion() { return KRaftVersion.KRAFT_VERSION_1; }
                public void upgradeKRaftVersion(int epoch, KRaftVersion v, boolean validateOnly) { }
            }).build();
        ReplicationControlManager[] holder = new ReplicationControlManager[1];
        cluster = new ClusterControlManager.Builder().setLogContext(lc).setClusterId("MkU3OEVBNTcwNTJENDM2Qg").setTime(time)
            .setSnapshotRegistry(reg).setSessionTimeoutNs(9_000_000_000L).setReplicaPlacer(new StripedReplicaPlacer(new Random(42)))
            .setFeatureControlManager(features)
            .setBrokerShutdownHandler((id, clean, records) -> holder[0].handleBrokerShutdown(id, clean, records)).build();
        configs = new ConfigurationControlManager.Builder().setLogContext(lc).setSnapshotRegistry(reg)
            .setKafkaConfigSchema(schema()).setFeatureControl(features).setNodeId(3000)
            .setValidator(ConfigurationValidator.NO_OP).build();
        replication = new ReplicationControlManager.Builder().setSnapshotRegistry(reg).setLogContext(lc)
            .setDefaultReplicationFactor((short) 1).setDefaultNumPartitions(1).setConfigurationControl(configs)
            .setClusterControl(cluster).setFeatureControl(features).build();
        holder[0] = replication;
        producerIds = new ProducerIdControlManager.Builder().setLogContext(lc).setSnapshotRegistry(reg).setClusterControlManager(cluster).build();

        // What ActivationRecordsGenerator.recordsForEmptyLog appends for this bootstrap
        // (metadata.version first, then the other features; with ELR the cluster-level
        // min.insync.replicas; all in a metadata transaction).
        apply("bootstrap", List.of(
            new ApiMessageAndVersion(new BeginTransactionRecord().setName("Bootstrap records"), (short) 0),
            new ApiMessageAndVersion(new FeatureLevelRecord().setName("metadata.version").setFeatureLevel((short) 33), (short) 0),
            new ApiMessageAndVersion(new FeatureLevelRecord().setName("eligible.leader.replicas.version").setFeatureLevel((short) 1), (short) 0),
            new ApiMessageAndVersion(new FeatureLevelRecord().setName("group.version").setFeatureLevel((short) 1), (short) 0),
            new ApiMessageAndVersion(new FeatureLevelRecord().setName("transaction.version").setFeatureLevel((short) 2), (short) 0),
            new ApiMessageAndVersion(new ConfigRecord().setResourceType((byte) 4).setResourceName("").setName("min.insync.replicas").setValue("1"), (short) 0),
            new ApiMessageAndVersion(new EndTransactionRecord(), (short) 0)));
        cluster.activate();
        Scenario.run();
    }

    static ControllerRequestContext ctx(short version) {
        return new ControllerRequestContext(new RequestHeaderData().setRequestApiVersion(version),
            KafkaPrincipal.ANONYMOUS, OptionalLong.empty());
    }

    /** Every led partition of `topic`: its leader proposes the ISR of all active replicas. */
    static void expandIsrs(String topic) {
        Uuid id = replication.getTopicId(topic);
        for (int p = 0; ; p++) {
            PartitionRegistration part = replication.getPartition(id, p);
            if (part == null) break;
            if (part.leader < 0) continue;
            List<AlterPartitionRequestData.BrokerState> isr = new ArrayList<>();
            for (int r : part.replicas)
                if (cluster.isActive(r)) isr.add(new AlterPartitionRequestData.BrokerState().setBrokerId(r).setBrokerEpoch(epochs.get(r)));
            AlterPartitionRequestData req = new AlterPartitionRequestData().setBrokerId(part.leader).setBrokerEpoch(epochs.get(part.leader));
            req.topics().add(new AlterPartitionRequestData.TopicData().setTopicId(id).setPartitions(List.of(
                new AlterPartitionRequestData.PartitionData().setPartitionIndex(p).setLeaderEpoch(part.leaderEpoch)
                    .setPartitionEpoch(part.partitionEpoch).setNewIsrWithEpochs(isr)
                    .setLeaderRecoveryState(part.leaderRecoveryState.value()))));
            ControllerResult<AlterPartitionResponseData> res = replication.alterPartition(ctx((short) 3), req);
            AlterPartitionResponseData.PartitionData r = res.response().topics().get(0).partitions().get(0);
            apply("alter " + topic + "-" + p + " -> " + r.errorCode() + " isr=" + list(r.isr()) + " le=" + r.leaderEpoch() + " pe=" + r.partitionEpoch(), res.records());
        }
    }

    static void alterConfig(org.apache.kafka.common.config.ConfigResource.Type type, String name, String key,
                            org.apache.kafka.clients.admin.AlterConfigOp.OpType op, String value) {
        org.apache.kafka.common.config.ConfigResource res = new org.apache.kafka.common.config.ConfigResource(type, name);
        Map<String, Map.Entry<org.apache.kafka.clients.admin.AlterConfigOp.OpType, String>> ops = new HashMap<>();
        ops.put(key, new AbstractMap.SimpleImmutableEntry<>(op, value));
        ControllerResult<Map<org.apache.kafka.common.config.ConfigResource, org.apache.kafka.common.requests.ApiError>> r =
            configs.incrementalAlterConfigs(Map.of(res, ops), false, false);
        org.apache.kafka.common.requests.ApiError e = r.response().get(res);
        apply("alter config " + type.name() + " '" + name + "' " + key + " " + op.name() + " " + value + " -> "
            + e.error().name() + ": " + e.message(), r.records());
    }

    static void updateFeature(String name, int level, org.apache.kafka.clients.admin.FeatureUpdate.UpgradeType type) {
        // QuorumController goes through ConfigurationControlManager, which adds the ELR
        // safety records when ELR is being enabled.
        ControllerResult<org.apache.kafka.common.requests.ApiError> res = configs.updateFeatures(
            Map.of(name, (short) level), Map.of(name, type), false, 1);
        org.apache.kafka.common.requests.ApiError e = res.response();
        apply("update " + name + " " + level + " " + type.name() + " -> " + e.error().name() + ": " + e.message(), res.records());
    }

    /** The script; src/tests/scenario_kafka.rs runs the same steps. */
    static class Scenario {
        static void run() {
            register(0, "a", 0);
            register(1, "b", 0);
            register(2, "c", 0);
            heartbeat(0, false);
            heartbeat(1, false);
            heartbeat(2, false);
            createTopic("t", 6, (short) 3);
            createTopic("u", 3, (short) 1);
            createTopic("v", 2, (short) 4);
            advance(10_000, 0, 1);
            register(2, "c", 1);
            heartbeat(2, false);
            expandIsrs("t");
            ControllerResult<ElectLeadersResponseData> el = replication.electLeaders(
                new ElectLeadersRequestData().setElectionType((byte) 0).setTopicPartitions(null));
            apply("elect preferred leaders", el.records());
            heartbeat(0, true);
            heartbeat(1, false);
            heartbeat(2, false);
            heartbeat(0, true);
            ControllerResult<?> pid = producerIds.generateNextProducerId(1, epochs.get(1));
            apply("allocate producer ids 1", pid.records());
            ControllerResult<?> del = replication.deleteTopics(ctx(), List.of(replication.getTopicId("u")));
            apply("delete u", del.records());
            register(0, "a", 1);
            advance(10_000, 1, 2);
            register(0, "a", 1);
            heartbeat(0, false);
            advance(10_000, 0, 2);
            Map<org.apache.kafka.common.config.ConfigResource, Map<String, Map.Entry<org.apache.kafka.clients.admin.AlterConfigOp.OpType, String>>> changes = Map.of(
                new org.apache.kafka.common.config.ConfigResource(org.apache.kafka.common.config.ConfigResource.Type.TOPIC, "t"),
                Map.of("min.insync.replicas", Map.entry(org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET, "2")));
            ControllerResult<?> cfg = configs.incrementalAlterConfigs(changes, false, false);
            apply("alter configs t min.insync.replicas=2", cfg.records());
            ControllerResult<?> cp = replication.createPartitions(ctx(), List.of(
                new CreatePartitionsRequestData.CreatePartitionsTopic().setName("t").setCount(8).setAssignments(null)));
            apply("create partitions t 8", cp.records());
            ControllerResult<?> un = replication.unregisterBroker(1);
            apply("unregister 1", un.records());
            heartbeat(0, false);
            heartbeat(2, false);
            org.apache.kafka.clients.admin.FeatureUpdate.UpgradeType up = org.apache.kafka.clients.admin.FeatureUpdate.UpgradeType.UPGRADE;
            org.apache.kafka.clients.admin.FeatureUpdate.UpgradeType safe = org.apache.kafka.clients.admin.FeatureUpdate.UpgradeType.SAFE_DOWNGRADE;
            updateFeature("metadata.version", 33, up);
            updateFeature("metadata.version", 29, safe);
            updateFeature("group.version", 0, up);
            updateFeature("group.version", 0, safe);
            updateFeature("share.version", 1, up);
            updateFeature("share.version", 3, up);
            updateFeature("streams.version", 1, up);
            updateFeature("no.such.feature", 1, up);
            updateFeature("eligible.leader.replicas.version", 0, safe);
            alterConfig(org.apache.kafka.common.config.ConfigResource.Type.BROKER, "0", "min.insync.replicas",
                org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET, "2");
            alterConfig(org.apache.kafka.common.config.ConfigResource.Type.BROKER, "", "min.insync.replicas",
                org.apache.kafka.clients.admin.AlterConfigOp.OpType.DELETE, null);
            updateFeature("eligible.leader.replicas.version", 1, up);
            alterConfig(org.apache.kafka.common.config.ConfigResource.Type.BROKER, "", "min.insync.replicas",
                org.apache.kafka.clients.admin.AlterConfigOp.OpType.DELETE, null);
            alterConfig(org.apache.kafka.common.config.ConfigResource.Type.BROKER, "2", "min.insync.replicas",
                org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET, "2");
        }
    }
}
