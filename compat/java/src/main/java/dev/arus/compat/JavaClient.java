package dev.arus.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Arus conformance scenarios driven through the Apache Kafka Java client.
 *
 * <p>Usage: {@code java -cp ... dev.arus.compat.JavaClient --bootstrap HOST:PORT --scenarios a,b,c}.
 * Prints one JSON line per scenario.
 */
public final class JavaClient {
    static final String CLIENT = "java";
    static final long OP_S = 15;
    static final long SCENARIO_TIMEOUT_S = Long.parseLong(System.getenv().getOrDefault("COMPAT_SCENARIO_TIMEOUT", "45"));

    static String bootstrap;

    static final class Fail extends RuntimeException {
        Fail(String m) { super(m); }
    }

    static void check(boolean cond, String msg) {
        if (!cond) throw new Fail(msg);
    }

    interface Scenario { String run() throws Exception; }

    // ------------------------------------------------------------ records

    record Rec(byte[] key, byte[] value, List<Header> headers, long timestamp) {}

    record Got(long offset, byte[] key, byte[] value, List<Header> headers, long timestamp) {}

    static String uniqueTopic(String scenario) {
        return "compat-" + CLIENT + "-" + scenario.replace('_', '-') + "-" + UUID.randomUUID().toString().substring(0, 10);
    }

    static long baseTimestamp() { return (System.currentTimeMillis() / 1000 - 3600) * 1000; }

    static byte[] b(String s) { return s == null ? null : s.getBytes(StandardCharsets.UTF_8); }

    static List<Rec> makeRecords(int n, int nkeys, boolean headers, int valuePad) {
        long ts0 = baseTimestamp();
        String tag = UUID.randomUUID().toString().substring(0, 8);
        List<Rec> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String key = "key-" + (nkeys > 0 ? i % nkeys : i);
            String value = "value-" + tag + "-" + i + "-" + "x".repeat(valuePad);
            List<Header> hs = new ArrayList<>();
            if (headers) {
                hs.add(new RecordHeader("h-index", b(Integer.toString(i))));
                hs.add(new RecordHeader("h-null", (byte[]) null));
            }
            out.add(new Rec(b(key), b(value), hs, ts0 + i * 7L));
        }
        return out;
    }

    static String hdrString(List<Header> hs) {
        return hs.stream().map(h -> h.key() + "=" + (h.value() == null ? "null" : new String(h.value(), StandardCharsets.UTF_8)))
                .collect(Collectors.joining(",", "[", "]"));
    }

    /** Same checks as python/common.py compare(). */
    static String compare(List<Rec> sent, Map<Integer, List<Got>> got, boolean checkHeaders, boolean keyPartition) {
        int total = got.values().stream().mapToInt(List::size).sum();
        check(total == sent.size(), "read " + total + " records, sent " + sent.size());
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < sent.size(); i++) index.put(new String(sent.get(i).value(), StandardCharsets.UTF_8), i);
        Set<Integer> seen = new java.util.HashSet<>();
        Map<String, Integer> keyParts = new HashMap<>();
        for (Map.Entry<Integer, List<Got>> e : got.entrySet()) {
            int p = e.getKey();
            int last = -1;
            List<Got> recs = e.getValue();
            for (int n = 0; n < recs.size(); n++) {
                Got r = recs.get(n);
                check(r.offset() == n, "partition " + p + ": offset " + r.offset() + " at position " + n + " (not contiguous from 0)");
                Integer i = index.get(new String(r.value(), StandardCharsets.UTF_8));
                check(i != null, "partition " + p + " offset " + r.offset() + ": unexpected value");
                check(seen.add(i), "record " + i + " read twice");
                Rec s = sent.get(i);
                check(Arrays.equals(r.key(), s.key()), "record " + i + ": key differs");
                if (checkHeaders) {
                    check(hdrString(r.headers()).equals(hdrString(s.headers())),
                            "record " + i + ": headers " + hdrString(r.headers()) + " != sent " + hdrString(s.headers()));
                }
                check(r.timestamp() == s.timestamp(), "record " + i + ": timestamp " + r.timestamp() + " != sent " + s.timestamp());
                check(i > last, "partition " + p + ": record " + i + " read after record " + last + " (produce order broken)");
                last = i;
                if (keyPartition) {
                    String k = new String(s.key(), StandardCharsets.UTF_8);
                    Integer prev = keyParts.putIfAbsent(k, p);
                    check(prev == null || prev == p, "key " + k + " found in partitions " + prev + " and " + p);
                }
            }
        }
        long nonEmpty = got.values().stream().filter(l -> !l.isEmpty()).count();
        return total + " records over " + nonEmpty + " partitions verified";
    }

    // ------------------------------------------------------------ clients

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20000);
        return Admin.create(p);
    }

    static void createTopic(String topic, int partitions, Map<String, String> configs) throws Exception {
        try (Admin a = admin()) {
            a.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs))).all().get(OP_S, TimeUnit.SECONDS);
        }
        TopicPropagation.awaitEveryBroker(bootstrap, topic, partitions, 10000);
    }

    static KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        // run.py sets COMPAT_IDEMPOTENCE=1 when the broker advertises InitProducerId; then the
        // client's default (idempotent) is kept, else idempotence is forced off.
        if (!"1".equals(System.getenv("COMPAT_IDEMPOTENCE"))) p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 20);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 20000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15000);
        p.putAll(extra);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static List<RecordMetadata> produceAll(KafkaProducer<byte[], byte[]> p, String topic, List<Rec> recs, Integer partition)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (Rec r : recs) {
            fs.add(p.send(new ProducerRecord<>(topic, partition, r.timestamp(), r.key(), r.value(), r.headers())));
        }
        p.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (int i = 0; i < fs.size(); i++) {
            try {
                out.add(fs.get(i).get(OP_S, TimeUnit.SECONDS));
            } catch (ExecutionException e) {
                throw new Fail("record " + i + " not delivered: " + e.getCause());
            }
        }
        return out;
    }

    static KafkaConsumer<byte[], byte[]> consumer() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15000);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static Map<Integer, List<Got>> readAll(String topic, int expected, long timeoutMs) {
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            List<TopicPartition> tps = c.partitionsFor(topic, Duration.ofSeconds(OP_S)).stream()
                    .map(pi -> new TopicPartition(topic, pi.partition())).sorted((x, y) -> x.partition() - y.partition())
                    .collect(Collectors.toList());
            check(!tps.isEmpty(), "no partitions for " + topic);
            c.assign(tps);
            for (TopicPartition tp : tps) c.seek(tp, 0);
            Map<Integer, List<Got>> got = new LinkedHashMap<>();
            for (TopicPartition tp : tps) got.put(tp.partition(), new ArrayList<>());
            int n = 0;
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (n < expected && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    got.get(r.partition()).add(new Got(r.offset(), r.key(), r.value(), Arrays.asList(r.headers().toArray()), r.timestamp()));
                    n++;
                }
            }
            check(n >= expected, "read only " + n + " of " + expected + " records within " + timeoutMs / 1000 + "s");
            long high = c.endOffsets(tps, Duration.ofSeconds(OP_S)).values().stream().mapToLong(Long::longValue).sum();
            check(high == n, "end offsets sum to " + high + " but " + n + " records read");
            return got;
        }
    }

    // ------------------------------------------------------------ scenarios

    static String roundtrip() throws Exception {
        String topic = uniqueTopic("roundtrip");
        createTopic(topic, 3, Map.of());
        List<Rec> recs = makeRecords(50, 0, true, 0);
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            for (int part = 0; part < 3; part++) {
                List<Rec> slice = new ArrayList<>();
                for (int i = part; i < recs.size(); i += 3) slice.add(recs.get(i));
                produceAll(p, topic, slice, part);
            }
        }
        Map<Integer, List<Got>> got = readAll(topic, recs.size(), 20000);
        check(got.values().stream().noneMatch(List::isEmpty), "some partition got no records");
        return compare(recs, got, true, false);
    }

    static String keyOrder() throws Exception {
        String topic = uniqueTopic("key_order");
        createTopic(topic, 4, Map.of());
        List<Rec> recs = makeRecords(200, 5, false, 0);
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 1))) {
            produceAll(p, topic, recs, null);
        }
        return compare(recs, readAll(topic, recs.size(), 20000), false, true);
    }

    static Scenario compression(String codec) {
        return () -> {
            String topic = uniqueTopic("compression_" + codec);
            createTopic(topic, 1, Map.of());
            List<Rec> recs = makeRecords(100, 0, true, 100);
            try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                    ProducerConfig.LINGER_MS_CONFIG, 50))) {
                produceAll(p, topic, recs, null);
            }
            return compare(recs, readAll(topic, recs.size(), 20000), true, false) + " (compression.type=" + codec + ")";
        };
    }

    static Scenario acks(String level) {
        return () -> {
            String topic = uniqueTopic("acks_" + level);
            createTopic(topic, 1, Map.of());
            List<Rec> recs = makeRecords(100, 0, true, 0);
            try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.ACKS_CONFIG, level))) {
                produceAll(p, topic, recs, null);
            }
            return compare(recs, readAll(topic, recs.size(), level.equals("0") ? 25000 : 20000), true, false) + " (acks=" + level + ")";
        };
    }

    static String listOffsetsTime() throws Exception {
        String topic = uniqueTopic("list_offsets_time");
        createTopic(topic, 1, Map.of());
        long t0 = baseTimestamp();
        List<Rec> recs = new ArrayList<>();
        for (int i = 0; i < 10; i++) recs.add(new Rec(b("k" + i), b("v" + i), List.of(), t0 + 1000L * i));
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            produceAll(p, topic, recs, 0);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        Map<String, Long> got = new LinkedHashMap<>();
        try (Admin a = admin()) {
            for (Map.Entry<String, OffsetSpec> e : Map.of(
                    "ts(T0+3500)", OffsetSpec.forTimestamp(t0 + 3500),
                    "ts(after last)", OffsetSpec.forTimestamp(t0 + 9001),
                    "earliest", OffsetSpec.earliest(),
                    "latest", OffsetSpec.latest()).entrySet()) {
                ListOffsetsResult.ListOffsetsResultInfo info =
                        a.listOffsets(Map.of(tp, e.getValue())).partitionResult(tp).get(OP_S, TimeUnit.SECONDS);
                got.put(e.getKey(), info.offset());
            }
        }
        Map<String, Long> want = Map.of("ts(T0+3500)", 4L, "ts(after last)", -1L, "earliest", 0L, "latest", 10L);
        check(got.equals(want), "Admin.listOffsets: got " + got + ", want " + want);
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            OffsetAndTimestamp o = c.offsetsForTimes(Map.of(tp, t0 + 3500)).get(tp);
            check(o != null && o.offset() == 4, "consumer offsetsForTimes(T0+3500) = " + o + ", want 4");
            check(o.timestamp() == t0 + 4000, "offsetsForTimes timestamp " + o.timestamp() + ", want T0+4000");
            OffsetAndTimestamp after = c.offsetsForTimes(Map.of(tp, t0 + 9001)).get(tp);
            check(after == null, "consumer offsetsForTimes(after last) = " + after + ", want null");
            check(c.beginningOffsets(List.of(tp)).get(tp) == 0L, "beginningOffsets != 0");
            check(c.endOffsets(List.of(tp)).get(tp) == 10L, "endOffsets != 10");
        }
        return "offsets " + new java.util.TreeMap<>(got);
    }

    static Throwable rootOf(Throwable e) {
        return e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
    }

    static String topicAdmin() throws Exception {
        String topic = uniqueTopic("topic_admin");
        try (Admin a = admin()) {
            a.createTopics(List.of(new NewTopic(topic, 2, (short) 1)
                    .configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete")))).all().get(OP_S, TimeUnit.SECONDS);

            TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get(OP_S, TimeUnit.SECONDS).get(topic);
            check(d.partitions().size() == 2, "described " + d.partitions().size() + " partitions, want 2");
            // Leaders: any registered broker (one node, or a cluster: compat/run.py --cluster N).
            Set<Integer> brokers = new HashSet<>();
            for (Node n : a.describeCluster().nodes().get(OP_S, TimeUnit.SECONDS)) brokers.add(n.id());
            for (TopicPartitionInfo pi : d.partitions()) {
                check(pi.leader() != null && brokers.contains(pi.leader().id()),
                        "partition " + pi.partition() + " leader " + pi.leader() + ", want one of the brokers " + brokers);
            }

            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config cfg = a.describeConfigs(List.of(res)).all().get(OP_S, TimeUnit.SECONDS).get(res);
            ConfigEntry ret = cfg.get("retention.ms");
            check(ret != null && "3600000".equals(ret.value()), "retention.ms described as " + (ret == null ? null : ret.value()));
            ConfigEntry cp = cfg.get("cleanup.policy");
            check(cp != null && "delete".equals(cp.value()), "cleanup.policy described as " + (cp == null ? null : cp.value()));

            a.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"),
                    AlterConfigOp.OpType.SET)))).all().get(OP_S, TimeUnit.SECONDS);
            // KRaft applies the change asynchronously, and in a cluster the describe may reach a broker
            // that has not replayed it yet: re-describe for up to 5 s.
            String v = null;
            for (int i = 0; i < 20 && !"7200000".equals(v); i++) {
                if (i > 0) Thread.sleep(250);
                v = a.describeConfigs(List.of(res)).all().get(OP_S, TimeUnit.SECONDS).get(res).get("retention.ms").value();
            }
            check("7200000".equals(v), "after incrementalAlterConfigs retention.ms = " + v);

            a.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get(OP_S, TimeUnit.SECONDS);
            // Brokers apply the new partitions asynchronously: in a cluster the describe may reach a
            // broker that has not replayed them yet, so re-describe for up to 5 s.
            int n = 0;
            for (int i = 0; i < 20 && n != 4; i++) {
                if (i > 0) Thread.sleep(250);
                n = a.describeTopics(List.of(topic)).allTopicNames().get(OP_S, TimeUnit.SECONDS).get(topic).partitions().size();
            }
            check(n == 4, "after createPartitions(4): " + n + " partitions");

            try {
                a.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(OP_S, TimeUnit.SECONDS);
                throw new Fail("creating the topic again succeeded");
            } catch (ExecutionException e) {
                check(rootOf(e) instanceof TopicExistsException, "create again: " + rootOf(e) + ", want TOPIC_ALREADY_EXISTS");
            }
            // One replica more than there are brokers.
            short tooMany = (short) (brokers.size() + 1);
            try {
                a.createTopics(List.of(new NewTopic(topic + "-rf3", 1, tooMany))).all().get(OP_S, TimeUnit.SECONDS);
                throw new Fail("replication factor " + tooMany + " accepted on a " + brokers.size() + "-broker cluster");
            } catch (ExecutionException e) {
                check(rootOf(e) instanceof InvalidReplicationFactorException, "rf=" + tooMany + ": " + rootOf(e) + ", want INVALID_REPLICATION_FACTOR");
            }

            a.deleteTopics(List.of(topic)).all().get(OP_S, TimeUnit.SECONDS);
            boolean gone = false;
            for (int i = 0; i < 20 && !gone; i++) {
                gone = !a.listTopics().names().get(OP_S, TimeUnit.SECONDS).contains(topic);
                if (!gone) Thread.sleep(500);
            }
            check(gone, "topic still listed after delete");
        }
        return "create/describe/configs/incremental-alter/partitions/errors/delete ok";
    }

    static String messageTooLarge() throws Exception {
        String topic = uniqueTopic("message_too_large");
        createTopic(topic, 1, Map.of("max.message.bytes", "2048"));
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 0,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "none"))) {
            Throwable err = null;
            try {
                RecordMetadata md = p.send(new ProducerRecord<>(topic, new byte[4000])).get(25, TimeUnit.SECONDS);
                throw new Fail("4000-byte record accepted at offset " + md.offset() + " (max.message.bytes=2048)");
            } catch (ExecutionException e) {
                err = e.getCause();
            }
            check(err instanceof RecordTooLargeException, "4000-byte record: " + err + ", want MESSAGE_TOO_LARGE (10)");
            check(Errors.forException(err).code() == 10, "error code " + Errors.forException(err).code());
            RecordMetadata md = p.send(new ProducerRecord<>(topic, new byte[500])).get(25, TimeUnit.SECONDS);
            return "4000 B -> " + Errors.forException(err) + " (code 10); 500 B -> offset " + md.offset();
        }
    }

    /** Exception class, message and the harness line it surfaced at (e.g. a bounded get() that timed out). */
    static String describe(Throwable c) {
        String where = "";
        for (StackTraceElement el : c.getStackTrace()) {
            if (el.getClassName().startsWith("dev.arus.compat")) {
                where = " (at " + el.getMethodName() + ":" + el.getLineNumber() + ")";
                break;
            }
        }
        String msg = c.getMessage();
        if (c instanceof TimeoutException && msg == null) msg = "no response within " + OP_S + "s";
        return c.getClass().getName() + ": " + msg + where;
    }

    static final Map<String, Scenario> SCENARIOS = new LinkedHashMap<>();

    static {
        SCENARIOS.put("roundtrip", JavaClient::roundtrip);
        SCENARIOS.put("key_order", JavaClient::keyOrder);
        for (String c : List.of("gzip", "snappy", "lz4", "zstd")) SCENARIOS.put("compression_" + c, compression(c));
        SCENARIOS.put("acks_0", acks("0"));
        SCENARIOS.put("acks_1", acks("1"));
        SCENARIOS.put("acks_all", acks("all"));
        SCENARIOS.put("list_offsets_time", JavaClient::listOffsetsTime);
        SCENARIOS.put("topic_admin", JavaClient::topicAdmin);
        SCENARIOS.put("message_too_large", JavaClient::messageTooLarge);
        SCENARIOS.put("group_split", GroupScenarios::groupSplit);
        SCENARIOS.put("group_member_leaves", GroupScenarios::groupMemberLeaves);
        SCENARIOS.put("two_groups", GroupScenarios::twoGroups);
        SCENARIOS.put("commit_resume", GroupScenarios::commitResume);
        SCENARIOS.put("cooperative_sticky", GroupScenarios::cooperativeSticky);
        SCENARIOS.put("static_member", GroupScenarios::staticMember);
        SCENARIOS.put("offsets_admin", GroupScenarios::offsetsAdmin);
        SCENARIOS.put("txn_commit_abort", TxnScenarios::commitAbort);
        SCENARIOS.put("txn_consume_transform_produce", TxnScenarios::consumeTransformProduce);
        SCENARIOS.put("txn_fencing", TxnScenarios::fencing);
        SCENARIOS.put("txn_admin", TxnAdminScenario::run);
        SCENARIOS.put("kip848_group", GroupScenarios::kip848Group);
        SCENARIOS.put("config_alter", LifecycleScenarios::configAlter);
        SCENARIOS.put("retention_reset", LifecycleScenarios::retentionReset);
        SCENARIOS.put("compacted_topic", LifecycleScenarios::compactedTopic);
    }

    static String json(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
                    else sb.append(ch);
                }
            }
        }
        return sb.append('"').toString();
    }

    static void emit(String scenario, String status, String detail) {
        System.out.println("{\"scenario\": " + json(scenario) + ", \"status\": " + json(status) + ", \"detail\": " + json(detail) + "}");
        System.out.flush();
    }

    public static void main(String[] args) {
        String scenarios = String.join(",", SCENARIOS.keySet());
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--bootstrap")) bootstrap = args[++i];
            else if (args[i].equals("--scenarios")) scenarios = args[++i];
        }
        if (bootstrap == null) {
            System.err.println("--bootstrap required");
            System.exit(2);
        }
        ExecutorService ex = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        for (String name : scenarios.split(",")) {
            if (name.isEmpty()) continue;
            Scenario sc = SCENARIOS.get(name);
            if (sc == null) {
                emit(name, "fail", "unknown scenario");
                continue;
            }
            Future<String> f = ex.submit(sc::run);
            try {
                emit(name, "pass", f.get(SCENARIO_TIMEOUT_S, TimeUnit.SECONDS));
            } catch (TimeoutException e) {
                f.cancel(true);
                emit(name, "fail", "timed out after " + SCENARIO_TIMEOUT_S + "s");
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof ExecutionException && c.getCause() != null) c = c.getCause();
                emit(name, "fail", c instanceof Fail ? c.getMessage() : describe(c));
            } catch (InterruptedException e) {
                emit(name, "fail", "interrupted");
            }
        }
        System.exit(0);
    }

    private JavaClient() {}
}
