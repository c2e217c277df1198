package dev.arus.compat;

import static dev.arus.compat.JavaClient.check;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** Transaction scenarios (issue 4): same checks as the confluent-kafka program. */
final class TxnScenarios {
    /** A transaction abandoned by its producer is aborted by the broker after this timeout. */
    static final int TXN_TIMEOUT_MS = 5000;

    record KV(String key, String value) {}

    static String s(byte[] v) { return v == null ? null : new String(v, StandardCharsets.UTF_8); }

    static List<KV> kvs(String prefix, int n, int nkeys) {
        String tag = java.util.UUID.randomUUID().toString().substring(0, 8);
        List<KV> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new KV("key-" + (i % nkeys), prefix + "-" + tag + "-" + i));
        return out;
    }

    static KafkaProducer<byte[], byte[]> txnProducer(String tid, int timeoutMs) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, JavaClient.bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, tid);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Math.max(timeoutMs, 15020));
        KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
        prod.initTransactions();
        return prod;
    }

    static void send(KafkaProducer<byte[], byte[]> p, String topic, List<KV> recs, Integer partition) {
        for (KV r : recs) p.send(new ProducerRecord<>(topic, partition, JavaClient.b(r.key()), JavaClient.b(r.value())));
    }

    static KafkaConsumer<byte[], byte[]> consumer(String isolation, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, JavaClient.bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15000);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000);
            p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 8); // several transactions, not one
        }
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Every partition from offset 0 with this isolation level, until `expected` records and then quietMs more. */
    static Map<Integer, List<JavaClient.Got>> readIsolated(String topic, String isolation, int expected, long quietMs) {
        try (KafkaConsumer<byte[], byte[]> c = consumer(isolation, null)) {
            List<TopicPartition> tps = c.partitionsFor(topic, Duration.ofSeconds(15)).stream()
                    .map(pi -> new TopicPartition(topic, pi.partition())).collect(Collectors.toList());
            c.assign(tps);
            for (TopicPartition tp : tps) c.seek(tp, 0);
            Map<Integer, List<JavaClient.Got>> got = new TreeMap<>();
            for (TopicPartition tp : tps) got.put(tp.partition(), new ArrayList<>());
            int n = 0;
            long deadline = System.currentTimeMillis() + 20000;
            long quietEnd = 0;
            while (System.currentTimeMillis() < (quietEnd > 0 ? quietEnd : deadline)) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    got.get(r.partition()).add(new JavaClient.Got(r.offset(), r.key(), r.value(), List.of(), r.timestamp()));
                    n++;
                }
                if (n >= expected && quietEnd == 0) quietEnd = System.currentTimeMillis() + quietMs;
            }
            return got;
        }
    }

    /** got holds exactly `expected` once each (nothing aborted, no control marker), in produce order per partition. */
    static int checkExact(List<KV> expected, Map<Integer, List<JavaClient.Got>> got, String what) {
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < expected.size(); i++) index.put(expected.get(i).value(), i);
        Set<Integer> seen = new HashSet<>();
        for (Map.Entry<Integer, List<JavaClient.Got>> e : got.entrySet()) {
            int last = -1;
            for (JavaClient.Got r : e.getValue()) {
                Integer i = index.get(s(r.value()));
                check(i != null, what + ": partition " + e.getKey() + " offset " + r.offset() + ": unexpected record "
                        + s(r.value()) + " (aborted, foreign or a control marker)");
                check(seen.add(i), what + ": partition " + e.getKey() + " offset " + r.offset() + ": record " + i + " read twice");
                check(expected.get(i).key().equals(s(r.key())), what + ": record " + i + ": key differs");
                check(i > last, what + ": partition " + e.getKey() + ": record " + i + " read after record " + last);
                last = i;
            }
        }
        check(seen.size() == expected.size(), what + ": read " + seen.size() + " of the " + expected.size() + " expected records");
        return seen.size();
    }

    static Map<Integer, Long> endOffsets(String topic, int partitions, IsolationLevel iso) throws Exception {
        try (Admin a = JavaClient.admin()) {
            Map<TopicPartition, OffsetSpec> q = new HashMap<>();
            for (int p = 0; p < partitions; p++) q.put(new TopicPartition(topic, p), OffsetSpec.latest());
            Map<Integer, Long> out = new TreeMap<>();
            a.listOffsets(q, new ListOffsetsOptions(iso)).all().get(15, TimeUnit.SECONDS)
                    .forEach((tp, info) -> out.put(tp.partition(), info.offset()));
            return out;
        }
    }

    static String commitAbort() throws Exception {
        String topic = JavaClient.uniqueTopic("txn_commit_abort");
        JavaClient.createTopic(topic, 3, Map.of());
        List<KV> recs = kvs("value", 90, 9);
        List<List<KV>> txns = List.of(recs.subList(0, 30), recs.subList(30, 60), recs.subList(60, 90));
        try (KafkaProducer<byte[], byte[]> p = txnProducer(GroupScenarios.uniqueGroup("txn_commit_abort") + "-txn", 30000)) {
            for (int t = 0; t < 3; t++) {
                p.beginTransaction();
                send(p, topic, txns.get(t), null);
                if (t == 1) {
                    p.flush(); // the aborted records really are in the log before the abort
                    p.abortTransaction();
                } else {
                    p.commitTransaction();
                }
            }
        }
        List<KV> committed = new ArrayList<>(txns.get(0));
        committed.addAll(txns.get(2));
        checkExact(committed, readIsolated(topic, "read_committed", committed.size(), 1500), "read_committed");
        Map<Integer, List<JavaClient.Got>> all = readIsolated(topic, "read_uncommitted", recs.size(), 1500);
        checkExact(recs, all, "read_uncommitted");
        // Each transaction leaves one control marker in every partition it wrote to.
        int markers = 0;
        for (List<KV> t : txns) {
            Set<String> vals = t.stream().map(KV::value).collect(Collectors.toSet());
            for (List<JavaClient.Got> l : all.values()) if (l.stream().anyMatch(g -> vals.contains(s(g.value())))) markers++;
        }
        Map<Integer, Long> high = endOffsets(topic, 3, IsolationLevel.READ_UNCOMMITTED);
        long sum = high.values().stream().mapToLong(Long::longValue).sum();
        check(sum == recs.size() + markers, "high watermarks " + high + " sum to " + sum + ", want 90 records + " + markers + " markers");
        return "commit 30 / abort 30 / commit 30 over 3 partitions: read_committed saw exactly the 60 committed in order, "
                + "read_uncommitted all 90, no marker surfaced; high watermarks " + high + " = 90 records + " + markers + " markers";
    }

    static String consumeTransformProduce() throws Exception {
        int n = 60;
        String src = JavaClient.uniqueTopic("ctp-in"), dst = JavaClient.uniqueTopic("ctp-out");
        String group = GroupScenarios.uniqueGroup("txn_ctp");
        JavaClient.createTopic(src, 3, Map.of());
        JavaClient.createTopic(dst, 3, Map.of());
        List<KV> recs = kvs("value", n, 12);
        try (KafkaProducer<byte[], byte[]> plain = JavaClient.producer(Map.of())) {
            send(plain, src, recs, null);
            plain.flush();
        }
        Map<Integer, Long> ends = endOffsets(src, 3, IsolationLevel.READ_UNCOMMITTED);
        check(ends.values().stream().mapToLong(Long::longValue).sum() == n, "input end offsets " + ends);
        int aborted = 0, batches = 0;
        Map<Integer, Long> committed = new TreeMap<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer("read_committed", group);
             KafkaProducer<byte[], byte[]> p = txnProducer(group + "-txn", 30000)) {
            c.subscribe(List.of(src));
            long deadline = System.currentTimeMillis() + 30000;
            while (true) {
                check(System.currentTimeMillis() < deadline, "input not consumed within 30s");
                if (c.assignment().size() == 3 && c.assignment().stream().allMatch(tp -> c.position(tp) == ends.get(tp.partition()))) break;
                ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(300));
                if (rs.isEmpty()) continue;
                p.beginTransaction();
                for (ConsumerRecord<byte[], byte[]> r : rs) {
                    p.send(new ProducerRecord<>(dst, r.key(), JavaClient.b("out-" + s(r.value()))));
                }
                if (batches == 1 && aborted == 0) {
                    // Abort this attempt midway and reprocess from the committed position.
                    p.flush();
                    p.abortTransaction();
                    aborted = rs.count();
                    Map<TopicPartition, OffsetAndMetadata> com = c.committed(c.assignment());
                    for (TopicPartition tp : c.assignment()) {
                        OffsetAndMetadata om = com.get(tp);
                        c.seek(tp, om == null ? 0 : om.offset());
                    }
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                for (TopicPartition tp : rs.partitions()) {
                    List<ConsumerRecord<byte[], byte[]>> l = rs.records(tp);
                    offs.put(tp, new OffsetAndMetadata(l.get(l.size() - 1).offset() + 1));
                }
                p.sendOffsetsToTransaction(offs, c.groupMetadata());
                p.commitTransaction();
                batches++;
            }
            for (int i = 0; i < 3; i++) {
                OffsetAndMetadata om = c.committed(Set.of(new TopicPartition(src, i))).get(new TopicPartition(src, i));
                committed.put(i, om == null ? -1 : om.offset());
            }
        }
        check(aborted > 0, "no aborted attempt happened");
        check(committed.equals(ends), "group committed offsets " + committed + " != input end offsets " + ends);
        List<KV> want = recs.stream().map(r -> new KV(r.key(), "out-" + r.value())).collect(Collectors.toList());
        checkExact(want, readIsolated(dst, "read_committed", n, 1500), "output read_committed");
        int totalU = readIsolated(dst, "read_uncommitted", n + aborted, 1500).values().stream().mapToInt(List::size).sum();
        check(totalU == n + aborted, "output read_uncommitted has " + totalU + " records, want " + n + " + " + aborted + " aborted");
        return n + " input records -> " + batches + " committed transactions (+1 aborted attempt of " + aborted
                + " records, reprocessed); output read_committed has each exactly once in order; group committed "
                + committed + " = input ends";
    }

    static String fencing() throws Exception {
        String topic = JavaClient.uniqueTopic("txn_fencing");
        JavaClient.createTopic(topic, 1, Map.of());
        // (a) a producer abandoned inside its transaction (never used or closed again): the LSO
        // stays at its first record until the broker aborts it after transaction.timeout.ms.
        KafkaProducer<byte[], byte[]> abandoned = txnProducer(GroupScenarios.uniqueGroup("abandon"), TXN_TIMEOUT_MS);
        abandoned.beginTransaction();
        List<KV> dead = kvs("abandoned", 10, 1);
        send(abandoned, topic, dead, 0);
        abandoned.flush();
        long startedAt = System.currentTimeMillis();
        List<KV> later = kvs("later", 5, 5);
        try (KafkaProducer<byte[], byte[]> plain = JavaClient.producer(Map.of())) {
            send(plain, topic, later, 0);
            plain.flush();
        }
        long lsoOpen = endOffsets(topic, 1, IsolationLevel.READ_COMMITTED).get(0);
        check(lsoOpen == 0, "last stable offset " + lsoOpen + " while the abandoned transaction (offsets 0-9) is open, want 0");
        List<JavaClient.Got> got = new ArrayList<>();
        long firstAt = -1;
        try (KafkaConsumer<byte[], byte[]> c = consumer("read_committed", null)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long deadline = startedAt + TXN_TIMEOUT_MS + 15000;
            long quietEnd = 0;
            while (System.currentTimeMillis() < (quietEnd > 0 ? quietEnd : deadline)) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    if (firstAt < 0) firstAt = System.currentTimeMillis();
                    got.add(new JavaClient.Got(r.offset(), r.key(), r.value(), List.of(), r.timestamp()));
                }
                if (got.size() >= 5 && quietEnd == 0) quietEnd = System.currentTimeMillis() + 1000;
            }
        }
        checkExact(later, Map.of(0, got), "read_committed after the abandoned transaction");
        double blocked = (firstAt - startedAt) / 1000.0;
        check(firstAt > 0 && blocked >= 1.0, "read_committed consumer got records " + blocked + "s after the abandon: the open transaction did not block it");
        long lsoEnd = endOffsets(topic, 1, IsolationLevel.READ_COMMITTED).get(0);
        check(lsoEnd == 16, "last stable offset " + lsoEnd + " after the timeout abort, want 16 (10 aborted + marker + 5)");
        abandoned.close(Duration.ZERO);
        // (b) a new producer with the same transactional.id fences the live old one.
        String tid = GroupScenarios.uniqueGroup("fence");
        List<KV> newRecs = kvs("new", 3, 1);
        String fencedBy;
        try (KafkaProducer<byte[], byte[]> old = txnProducer(tid, 30000)) {
            old.beginTransaction();
            send(old, topic, kvs("old", 1, 1), 0);
            old.flush();
            try (KafkaProducer<byte[], byte[]> nw = txnProducer(tid, 30000)) {
                nw.beginTransaction();
                send(nw, topic, newRecs, 0);
                nw.commitTransaction();
            }
            Throwable err = null;
            try {
                old.send(new ProducerRecord<>(topic, 0, JavaClient.b("old"), JavaClient.b("old-2")));
                old.commitTransaction();
            } catch (Exception e) {
                err = e;
            }
            check(err != null, "the fenced producer committed");
            Throwable root = err;
            while (root.getCause() != null && !(root instanceof ProducerFencedException) && !(root instanceof InvalidProducerEpochException)) {
                root = root.getCause();
            }
            check(root instanceof ProducerFencedException || root instanceof InvalidProducerEpochException,
                    "fenced producer failed with " + err + ", not ProducerFencedException");
            fencedBy = root.getClass().getSimpleName();
            old.close(Duration.ZERO);
        }
        List<KV> want = new ArrayList<>(later);
        want.addAll(newRecs);
        checkExact(want, readIsolated(topic, "read_committed", want.size(), 1500), "read_committed after the fencing");
        return "(a) abandoned producer's open transaction held the LSO at 0; read_committed got the 5 later records "
                + blocked + "s after the abandon, none of the 10 abandoned; LSO then " + lsoEnd + "; (b) new producer fenced the old one ("
                + fencedBy + "), its 3 records committed, the old one's never visible";
    }

    private TxnScenarios() {}
}
