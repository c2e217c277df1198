package dev.arus.compat;

import static dev.arus.compat.JavaClient.OP_S;
import static dev.arus.compat.JavaClient.admin;
import static dev.arus.compat.JavaClient.b;
import static dev.arus.compat.JavaClient.check;
import static dev.arus.compat.JavaClient.consumer;
import static dev.arus.compat.JavaClient.createTopic;
import static dev.arus.compat.JavaClient.producer;
import static dev.arus.compat.JavaClient.rootOf;
import static dev.arus.compat.JavaClient.uniqueTopic;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DeletedRecords;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/** Log-lifecycle scenarios (issue 5): config_alter, retention_reset, compacted_topic. */
final class LifecycleScenarios {
    private LifecycleScenarios() {}

    static ConfigEntry describe(Admin a, String topic, String key) throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return a.describeConfigs(List.of(res)).all().get(OP_S, TimeUnit.SECONDS).get(res).get(key);
    }

    static void alter(Admin a, ConfigResource.Type type, String name, String key, String value, AlterConfigOp.OpType op)
            throws Exception {
        ConfigResource res = new ConfigResource(type, name);
        a.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(new ConfigEntry(key, value), op))))
                .all().get(OP_S, TimeUnit.SECONDS);
    }

    /** KRaft applies config changes asynchronously: poll DescribeConfigs. */
    static void waitConfig(Admin a, String topic, String key, String value, ConfigEntry.ConfigSource source) throws Exception {
        ConfigEntry e = null;
        long deadline = System.currentTimeMillis() + 10000;
        while (System.currentTimeMillis() < deadline) {
            e = describe(a, topic, key);
            if (e != null && value.equals(e.value()) && e.source() == source) return;
            Thread.sleep(300);
        }
        throw new JavaClient.Fail(key + " of " + topic + " described as " + (e == null ? null : e.value() + " " + e.source())
                + ", want " + value + " " + source);
    }

    /** Sends one record; returns the error (null if accepted). */
    static Throwable send(KafkaProducer<byte[], byte[]> p, String topic, byte[] key, int size) throws Exception {
        try {
            p.send(new ProducerRecord<>(topic, key, new byte[size])).get(25, TimeUnit.SECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    /** The limit may reach the partition a moment after DescribeConfigs shows it: retry. */
    static void expectRefused(KafkaProducer<byte[], byte[]> p, String topic, int size, String what) throws Exception {
        long deadline = System.currentTimeMillis() + 8000;
        while (true) {
            Throwable err = send(p, topic, null, size);
            if (err != null) {
                check(err instanceof RecordTooLargeException, what + ": " + size + "-byte record: " + err + ", want MESSAGE_TOO_LARGE");
                return;
            }
            check(System.currentTimeMillis() < deadline, what + ": " + size + "-byte record accepted");
            Thread.sleep(500);
        }
    }

    static void expectAccepted(KafkaProducer<byte[], byte[]> p, String topic, int size, String what) throws Exception {
        Throwable err = send(p, topic, null, size);
        check(err == null, what + ": " + size + "-byte record refused: " + err);
    }

    /** A raised limit, like a lowered one, may reach the partition's leader a moment after
     *  DescribeConfigs (answered by any broker of a cluster) shows it: retry the size refusal. */
    static void expectAcceptedOnceRaised(KafkaProducer<byte[], byte[]> p, String topic, int size, String what) throws Exception {
        long deadline = System.currentTimeMillis() + 8000;
        while (true) {
            Throwable err = send(p, topic, null, size);
            if (!(err instanceof RecordTooLargeException) || System.currentTimeMillis() > deadline) {
                check(err == null, what + ": " + size + "-byte record refused: " + err);
                return;
            }
            Thread.sleep(500);
        }
    }

    static String configAlter() throws Exception {
        String topic = uniqueTopic("config_alter"), other = topic + "-nooverride";
        createTopic(topic, 1, Map.of());
        createTopic(other, 1, Map.of());
        try (Admin a = admin();
             KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 0,
                     ProducerConfig.COMPRESSION_TYPE_CONFIG, "none", ProducerConfig.RETRIES_CONFIG, 0,
                     ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false))) {
            expectAccepted(p, topic, 8000, "before alter");
            alter(a, ConfigResource.Type.TOPIC, topic, "max.message.bytes", "4096", AlterConfigOp.OpType.SET);
            waitConfig(a, topic, "max.message.bytes", "4096", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
            expectRefused(p, topic, 8000, "max.message.bytes=4096");
            expectAccepted(p, topic, 1000, "max.message.bytes=4096");

            for (String[] kv : List.of(new String[] {"max.message.bytes", "-5"}, new String[] {"cleanup.policy", "banana"})) {
                try {
                    alter(a, ConfigResource.Type.TOPIC, topic, kv[0], kv[1], AlterConfigOp.OpType.SET);
                    throw new JavaClient.Fail(kv[0] + "=" + kv[1] + " accepted");
                } catch (ExecutionException e) {
                    check(rootOf(e) instanceof InvalidConfigurationException, kv[0] + "=" + kv[1] + ": " + rootOf(e) + ", want INVALID_CONFIG");
                }
            }
            String mmb = describe(a, topic, "max.message.bytes").value(), cp = describe(a, topic, "cleanup.policy").value();
            check("4096".equals(mmb) && "delete".equals(cp), "after refused alters: max.message.bytes=" + mmb + " cleanup.policy=" + cp);

            // The cluster-wide default (broker resource ""): a topic without override follows it.
            try {
                alter(a, ConfigResource.Type.BROKER, "", "message.max.bytes", "6000", AlterConfigOp.OpType.SET);
                waitConfig(a, other, "max.message.bytes", "6000", ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);
                expectRefused(p, other, 9000, "cluster default message.max.bytes=6000");
                expectAccepted(p, other, 3000, "cluster default message.max.bytes=6000");
            } finally {
                alter(a, ConfigResource.Type.BROKER, "", "message.max.bytes", null, AlterConfigOp.OpType.DELETE);
            }
            waitConfig(a, other, "max.message.bytes", "1048588", ConfigEntry.ConfigSource.DEFAULT_CONFIG);
            expectAcceptedOnceRaised(p, other, 9000, "cluster default deleted");
        }
        return "topic max.message.bytes=4096 (DYNAMIC_TOPIC_CONFIG): 8000 B refused, 1000 B ok; -5 / banana -> "
                + "InvalidConfigurationException; cluster default message.max.bytes=6000 (DYNAMIC_DEFAULT_BROKER_CONFIG on a "
                + "topic without override): 9000 B refused, 3000 B ok; deleted -> DEFAULT_CONFIG 1048588";
    }

    static long[] watermarks(KafkaConsumer<byte[], byte[]> c, TopicPartition tp) {
        long lo = c.beginningOffsets(List.of(tp), Duration.ofSeconds(OP_S)).get(tp);
        long hi = c.endOffsets(List.of(tp), Duration.ofSeconds(OP_S)).get(tp);
        return new long[] {lo, hi};
    }

    static KafkaConsumer<byte[], byte[]> resetConsumer(String reset, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, JavaClient.bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, reset);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15000);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000);
        }
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** A consumer assigned at offset 0 (below the log start): the first record's offset. */
    static long firstRecord(String topic, String reset) {
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> c = resetConsumer(reset, null)) {
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long deadline = System.currentTimeMillis() + 15000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) return r.offset();
            }
        }
        throw new JavaClient.Fail(reset + " consumer assigned at 0 read nothing in 15s");
    }

    static String retentionReset() throws Exception {
        String topic = uniqueTopic("retention_reset");
        createTopic(topic, 1, Map.of("segment.ms", "300", "retention.ms", "2000"));
        TopicPartition tp = new TopicPartition(topic, 0);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong sent = new AtomicLong();
        AtomicReference<Throwable> perr = new AtomicReference<>();
        List<Long> lows = new ArrayList<>();
        List<Long> offs = new ArrayList<>();
        long early, late, lowBefore, lowAfter, hwBefore, hwAfter;
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 5));
             KafkaConsumer<byte[], byte[]> w = consumer();
             KafkaConsumer<byte[], byte[]> member = resetConsumer("earliest", GroupScenarios.uniqueGroup("retention_reset"))) {
            Thread t = new Thread(() -> {
                while (!stop.get()) {
                    p.send(new ProducerRecord<>(topic, b("k"), b("r-" + sent.getAndIncrement() + "x".repeat(200))),
                            (md, e) -> { if (e != null) perr.compareAndSet(null, e); });
                    try { Thread.sleep(20); } catch (InterruptedException e) { return; }
                }
                p.flush();
            });
            t.setDaemon(true);
            member.subscribe(List.of(topic));
            t.start();
            try {
                long deadline = System.currentTimeMillis() + 20000;
                while (System.currentTimeMillis() < deadline && lows.size() < 3) {
                    for (ConsumerRecord<byte[], byte[]> r : member.poll(Duration.ofMillis(500))) offs.add(r.offset());
                    long lo = watermarks(w, tp)[0];
                    if (lo > 0 && (lows.isEmpty() || lo > lows.get(lows.size() - 1))) lows.add(lo);
                }
                check(lows.size() >= 3, "log start offset did not advance 3 times while producing (segment.ms=300, retention.ms=2000) "
                        + "within 20s: low watermarks seen " + lows + ", " + sent.get() + " records sent");
                check(perr.get() == null, "produce error: " + perr.get());
                long[] wm = watermarks(w, tp);
                lowBefore = wm[0];
                early = firstRecord(topic, "earliest");
                lowAfter = watermarks(w, tp)[0];
                check(lowBefore <= early && early <= lowAfter && early > 0, "earliest reset from 0: first offset " + early
                        + ", want the log start (between " + lowBefore + " and " + lowAfter + ")");
                hwBefore = watermarks(w, tp)[1];
                late = firstRecord(topic, "latest");
                hwAfter = watermarks(w, tp)[1];
                check(hwBefore <= late && late <= hwAfter, "latest reset from 0: first offset " + late + ", want the end (between "
                        + hwBefore + " and " + hwAfter + "; log start then " + lowAfter + ")");
            } finally {
                stop.set(true);
                t.join(15000);
            }
            long hw = watermarks(w, tp)[1];
            long deadline = System.currentTimeMillis() + 10000;
            while (System.currentTimeMillis() < deadline && (offs.isEmpty() || offs.get(offs.size() - 1) < hw - 1)) {
                for (ConsumerRecord<byte[], byte[]> r : member.poll(Duration.ofMillis(200))) offs.add(r.offset());
            }
            check(!offs.isEmpty() && offs.get(offs.size() - 1) == hw - 1, "group member's last offset "
                    + (offs.isEmpty() ? null : offs.get(offs.size() - 1)) + ", end offset " + hw);
            for (int i = 1; i < offs.size(); i++) check(offs.get(i - 1) < offs.get(i), "group member's offsets not strictly increasing");
        }

        // DeleteRecords moves the low watermark to the requested offset.
        String dtopic = topic + "-delete";
        createTopic(dtopic, 1, Map.of());
        TopicPartition dtp = new TopicPartition(dtopic, 0);
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of());
             Admin a = admin();
             KafkaConsumer<byte[], byte[]> w = consumer()) {
            JavaClient.produceAll(p, dtopic, JavaClient.makeRecords(20, 0, false, 0), 0);
            DeletedRecords dr = a.deleteRecords(Map.of(dtp, RecordsToDelete.beforeOffset(7))).lowWatermarks().get(dtp)
                    .get(OP_S, TimeUnit.SECONDS);
            check(dr.lowWatermark() == 7, "deleteRecords(7): low watermark " + dr.lowWatermark());
            long[] wm = watermarks(w, dtp);
            check(wm[0] == 7 && wm[1] == 20, "after deleteRecords(7): watermarks (" + wm[0] + ", " + wm[1] + "), want (7, 20)");
        }
        long first = firstRecord(dtopic, "earliest");
        check(first == 7, "earliest consumer after deleteRecords(7) starts at " + first);
        return "log start advanced " + lows + " while producing; from 0: earliest -> " + early + " (log start " + lowBefore + ".."
                + lowAfter + "), latest -> " + late + " (end " + hwBefore + ".." + hwAfter + "); group member read " + offs.size()
                + " records in order to the end; deleteRecords(7) -> low watermark 7, earliest consumer starts at 7";
    }

    record Kv(long offset, String key, String value) {}

    static List<Kv> readFromStart(String topic) {
        TopicPartition tp = new TopicPartition(topic, 0);
        List<Kv> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long end = c.endOffsets(List.of(tp), Duration.ofSeconds(OP_S)).get(tp);
            long deadline = System.currentTimeMillis() + 10000;
            while (c.position(tp) < end) {
                check(System.currentTimeMillis() < deadline, "did not reach the end offset " + end + " within 10s");
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    out.add(new Kv(r.offset(), r.key() == null ? null : new String(r.key()), r.value() == null ? null : new String(r.value())));
                }
            }
        }
        return out;
    }

    static String compactedTopic() throws Exception {
        String topic = uniqueTopic("compacted_topic");
        createTopic(topic, 1, Map.of("cleanup.policy", "compact", "segment.ms", "100",
                "min.cleanable.dirty.ratio", "0.01", "delete.retention.ms", "100"));
        Map<String, Long> delivered = new HashMap<>();
        Map<String, String> last = new HashMap<>();
        List<Kv> seen;
        Throwable keyless;
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 5, ProducerConfig.RETRIES_CONFIG, 0,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false))) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            List<String> vals = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                String k = "key-" + (i % 5), v = k + "-update-" + i;
                last.put(k, v);
                vals.add(v);
                fs.add(p.send(new ProducerRecord<>(topic, b(k), b(v))));
            }
            fs.add(p.send(new ProducerRecord<>(topic, b("key-4"), null)));
            p.flush();
            for (int i = 0; i < 200; i++) delivered.put(vals.get(i), fs.get(i).get(OP_S, TimeUnit.SECONDS).offset());
            fs.get(200).get(OP_S, TimeUnit.SECONDS);

            keyless = send(p, topic, null, 10);
            check(keyless != null, "keyless record accepted on a compacted topic");
            check(keyless instanceof InvalidRecordException, "keyless record: " + keyless + ", want INVALID_RECORD (87)");

            // The cleaner never touches the active segment: keep rolling it (segment.ms=100).
            long deadline = System.currentTimeMillis() + 30000;
            while (true) {
                check(send(p, topic, b("roll"), 10) == null, "roll record refused");
                seen = readFromStart(topic);
                Map<String, Integer> counts = new HashMap<>();
                boolean tombOnly = true;
                for (Kv r : seen) {
                    counts.merge(String.valueOf(r.key()), 1, Integer::sum);
                    if ("key-4".equals(r.key()) && r.value() != null) tombOnly = false;
                }
                boolean ok = tombOnly;
                for (int i = 0; i < 4; i++) ok &= counts.getOrDefault("key-" + i, 0) <= 2;
                if (ok) break;
                check(System.currentTimeMillis() < deadline, "not compacted within 30s: " + seen.size() + " records remain, per key " + counts);
                Thread.sleep(1000);
            }
        }
        for (int i = 1; i < seen.size(); i++) check(seen.get(i - 1).offset() < seen.get(i).offset(), "offsets not strictly increasing");
        boolean tomb = false;
        for (Kv r : seen) {
            if ("key-4".equals(r.key())) tomb = true;
            if ("roll".equals(r.key()) || r.value() == null) continue;
            Long want = delivered.get(r.value());
            check(want != null && want == r.offset(), "record " + r.value() + " at offset " + r.offset() + ", produced at " + want);
        }
        for (int i = 0; i < 4; i++) {
            String k = "key-" + i;
            String lastSeen = null;
            for (Kv r : seen) if (k.equals(r.key())) lastSeen = r.value();
            check(last.get(k).equals(lastSeen), "key " + k + ": last value read " + lastSeen + ", last produced " + last.get(k));
        }
        return "201 records over 5 keys + tombstone; keyless -> " + keyless.getClass().getSimpleName() + "; compacted to " + seen.size()
                + " records (key-0..3 keep their last value at the original offset, key-4 " + (tomb ? "tombstone only" : "gone entirely")
                + "), offsets increasing";
    }
}
