package dev.arus.compat;

import static dev.arus.compat.JavaClient.admin;
import static dev.arus.compat.JavaClient.check;
import static dev.arus.compat.JavaClient.compare;
import static dev.arus.compat.JavaClient.createTopic;
import static dev.arus.compat.JavaClient.makeRecords;
import static dev.arus.compat.JavaClient.produceAll;
import static dev.arus.compat.JavaClient.producer;
import static dev.arus.compat.JavaClient.uniqueTopic;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/** Consumer-group scenarios (issue 3), same checks as the Python programs. */
final class GroupScenarios {
    static final long OP_S = JavaClient.OP_S;
    static final int SESSION_TIMEOUT_MS = 10000;
    static final int STATIC_SESSION_TIMEOUT_MS = 30000;

    static String uniqueGroup(String scenario) {
        return "compat-java-" + scenario.replace('_', '-') + "-group-" + UUID.randomUUID().toString().substring(0, 10);
    }

    /** One member polling in its own thread; other threads talk to it through call(). */
    static final class Member implements ConsumerRebalanceListener {
        final KafkaConsumer<byte[], byte[]> c;
        final Map<Integer, List<JavaClient.Got>> got = new TreeMap<>();
        final List<String> events = new ArrayList<>();
        final List<Integer> revoked = new ArrayList<>();
        final ConcurrentLinkedQueue<Runnable> jobs = new ConcurrentLinkedQueue<>();
        volatile List<Integer> parts = List.of();
        volatile boolean stop;
        volatile Throwable error;
        final Thread t;
        boolean closed;

        /** Commit synchronously after every poll that returned records (kip848_group). */
        final boolean commitEachPoll;

        Member(String group, String topic, Map<String, Object> extra) {
            this(group, topic, extra, false);
        }

        Member(String group, String topic, Map<String, Object> extra, boolean commitEachPoll) {
            this.commitEachPoll = commitEachPoll;
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, JavaClient.bootstrap);
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            // With group.protocol=consumer the broker decides both (the client refuses them).
            if (!"consumer".equals(extra.get(ConsumerConfig.GROUP_PROTOCOL_CONFIG))) {
                p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, SESSION_TIMEOUT_MS);
                p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000);
            }
            p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
            p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15000);
            p.putAll(extra);
            c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
            c.subscribe(List.of(topic), this);
            t = new Thread(this::loop, "member-" + group);
            t.setDaemon(true);
            t.start();
        }

        @Override public void onPartitionsRevoked(Collection<TopicPartition> ps) {
            List<Integer> l = ps.stream().map(TopicPartition::partition).sorted().collect(Collectors.toList());
            synchronized (this) {
                events.add("revoke" + l);
                revoked.addAll(l);
            }
        }

        @Override public void onPartitionsAssigned(Collection<TopicPartition> ps) {
            List<Integer> l = ps.stream().map(TopicPartition::partition).sorted().collect(Collectors.toList());
            synchronized (this) {
                events.add("assign" + l);
            }
        }

        void loop() {
            try {
                while (!stop) {
                    Runnable r;
                    while ((r = jobs.poll()) != null) r.run();
                    var recs = c.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<byte[], byte[]> rec : recs) {
                        synchronized (this) {
                            got.computeIfAbsent(rec.partition(), k -> new ArrayList<>()).add(new JavaClient.Got(rec.offset(),
                                    rec.key(), rec.value(), Arrays.asList(rec.headers().toArray()), rec.timestamp()));
                        }
                    }
                    // Committed before the next poll, where a revocation could hand them over.
                    if (commitEachPoll && !recs.isEmpty()) c.commitSync();
                    parts = c.assignment().stream().map(TopicPartition::partition).sorted().collect(Collectors.toList());
                }
            } catch (Throwable e) {
                error = e;
            }
        }

        <T> T call(Function<KafkaConsumer<byte[], byte[]>, T> fn) throws Exception {
            CompletableFuture<T> f = new CompletableFuture<>();
            jobs.add(() -> {
                try {
                    f.complete(fn.apply(c));
                } catch (Throwable e) {
                    f.completeExceptionally(e);
                }
            });
            return f.get(OP_S + 5, TimeUnit.SECONDS);
        }

        List<Integer> parts() {
            if (error != null) throw new JavaClient.Fail("consumer thread: " + error);
            return parts;
        }

        synchronized int count() { return got.values().stream().mapToInt(List::size).sum(); }

        synchronized Map<Integer, List<JavaClient.Got>> snapshot() {
            Map<Integer, List<JavaClient.Got>> m = new TreeMap<>();
            got.forEach((k, v) -> m.put(k, new ArrayList<>(v)));
            return m;
        }

        synchronized List<String> events() { return new ArrayList<>(events); }

        void close(CloseOptions opts) throws InterruptedException {
            if (closed) return;
            closed = true;
            stop = true;
            t.join(10000);
            if (opts == null) c.close(Duration.ofSeconds(10));
            else c.close(opts.withTimeout(Duration.ofSeconds(10)));
        }

        void close() throws InterruptedException { close(null); }
    }

    static Member member(String group, String topic) { return new Member(group, topic, Map.of()); }

    static void waitFor(List<Member> ms, BooleanSupplier cond, long timeoutS, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutS * 1000;
        while (System.currentTimeMillis() < deadline) {
            for (Member m : ms) m.parts();
            if (cond.getAsBoolean()) return;
            Thread.sleep(100);
        }
        throw new JavaClient.Fail(what + " not reached within " + timeoutS + "s (assignments "
                + ms.stream().map(m -> m.parts().toString()).collect(Collectors.joining(", ")) + ", read "
                + ms.stream().map(m -> Integer.toString(m.count())).collect(Collectors.joining(", ")) + ")");
    }

    static void closeAll(Member... ms) {
        for (Member m : ms) {
            if (m == null) continue;
            try {
                m.close();
            } catch (Throwable ignored) {
                // best effort
            }
        }
    }

    static Map<Integer, List<JavaClient.Got>> merge(List<Member> ms) {
        Map<Integer, List<JavaClient.Got>> out = new TreeMap<>();
        Map<Integer, Integer> owner = new HashMap<>();
        for (int i = 0; i < ms.size(); i++) {
            for (Map.Entry<Integer, List<JavaClient.Got>> e : ms.get(i).snapshot().entrySet()) {
                if (e.getValue().isEmpty()) continue;
                check(!owner.containsKey(e.getKey()), "partition " + e.getKey() + " read by members " + owner.get(e.getKey()) + " and " + i);
                owner.put(e.getKey(), i);
                out.put(e.getKey(), e.getValue());
            }
        }
        return out;
    }

    static String val(byte[] v) { return new String(v, StandardCharsets.UTF_8); }

    /** got holds exactly the records of sent, each once (any offsets). */
    static void checkOnly(List<JavaClient.Rec> sent, Map<Integer, List<JavaClient.Got>> got, String what) {
        Set<String> values = sent.stream().map(r -> val(r.value())).collect(Collectors.toSet());
        Set<String> seen = new HashSet<>();
        got.forEach((p, recs) -> {
            for (JavaClient.Got r : recs) {
                check(values.contains(val(r.value())), what + ": partition " + p + " offset " + r.offset() + ": record not in the expected set");
                check(seen.add(val(r.value())), what + ": partition " + p + " offset " + r.offset() + " read twice");
            }
        });
        check(seen.size() == values.size(), what + ": read " + seen.size() + " of " + values.size() + " expected records");
    }

    static void produce(String topic, List<JavaClient.Rec> recs) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            produceAll(p, topic, recs, null);
        }
    }

    // ------------------------------------------------------------ scenarios

    static String groupSplit() throws Exception {
        String topic = uniqueTopic("group_split"), group = uniqueGroup("group_split");
        createTopic(topic, 6, Map.of());
        List<Member> ms = List.of(member(group, topic), member(group, topic), member(group, topic));
        try {
            waitFor(ms, () -> ms.stream().allMatch(m -> m.parts().size() == 2), 30, "3 members x 2 partitions");
            List<JavaClient.Rec> recs = makeRecords(600, 60, false, 0);
            produce(topic, recs);
            waitFor(ms, () -> ms.stream().mapToInt(Member::count).sum() >= 600, 20, "600 records read");
            Thread.sleep(1000);
            List<List<Integer>> split = ms.stream().map(Member::parts).collect(Collectors.toList());
            check(split.stream().flatMap(List::stream).sorted().collect(Collectors.toList()).equals(List.of(0, 1, 2, 3, 4, 5)),
                    "assignments " + split + " do not cover 0..5 once");
            String d = compare(recs, merge(ms), false, true);
            return d + "; read by 3 members " + ms.stream().map(Member::count).collect(Collectors.toList()) + " (assignments " + split + ")";
        } finally {
            closeAll(ms.toArray(new Member[0]));
        }
    }

    static String groupMemberLeaves() throws Exception {
        String topic = uniqueTopic("group_member_leaves"), group = uniqueGroup("group_member_leaves");
        createTopic(topic, 4, Map.of());
        Member a = member(group, topic), b = member(group, topic);
        try {
            waitFor(List.of(a, b), () -> a.parts().size() == 2 && b.parts().size() == 2, 30, "2 members x 2 partitions");
            List<Integer> bParts = b.parts();
            List<JavaClient.Rec> first = makeRecords(100, 20, false, 0);
            produce(topic, first);
            waitFor(List.of(a, b), () -> a.count() + b.count() >= 100, 20, "first 100 records read");
            a.call(c -> { c.commitSync(); return null; });
            b.call(c -> { c.commitSync(); return null; });
            b.close();  // LeaveGroup
            waitFor(List.of(a), () -> a.parts().equals(List.of(0, 1, 2, 3)), 20, "survivor owns all 4 partitions");
            Map<Integer, Integer> before = new HashMap<>();
            a.snapshot().forEach((p, l) -> before.put(p, l.size()));
            int beforeN = a.count();
            List<JavaClient.Rec> second = makeRecords(100, 20, false, 0);
            produce(topic, second);
            waitFor(List.of(a), () -> a.count() - beforeN >= 100, 20, "second 100 records read by the survivor");
            Thread.sleep(1000);
            Map<Integer, List<JavaClient.Got>> after = new TreeMap<>();
            a.snapshot().forEach((p, l) -> after.put(p, l.subList(before.getOrDefault(p, 0), l.size())));
            checkOnly(second, after, "survivor after the leave");
            int moved = bParts.stream().mapToInt(p -> after.getOrDefault(p, List.of()).size()).sum();
            check(moved > 0, "no post-leave record came from the leaver's partitions " + bParts);
            return "member left; its partitions " + bParts + " moved to the survivor, which read all 100 later records ("
                    + moved + " from moved partitions), none twice";
        } finally {
            closeAll(a, b);
        }
    }

    /**
     * KIP-848 (group.protocol=consumer): 3 members split 6 partitions, one leaves, a fourth
     * joins; records produced in each phase, every member commits after each poll, and the
     * union of everything read is every record exactly once.
     */
    static String kip848Group() throws Exception {
        String topic = uniqueTopic("kip848_group"), group = uniqueGroup("kip848_group");
        createTopic(topic, 6, Map.of());
        Map<String, Object> conf = Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        List<JavaClient.Rec> all = makeRecords(360, 36, false, 0);
        Member a = new Member(group, topic, conf, true), b = new Member(group, topic, conf, true),
                c = new Member(group, topic, conf, true);
        Member d = null;
        try {
            produce(topic, all.subList(0, 120));
            waitFor(List.of(a, b, c), () -> a.parts().size() == 2 && b.parts().size() == 2 && c.parts().size() == 2
                    && a.count() + b.count() + c.count() >= 120, 30, "3 members x 2 partitions, 120 records read");
            String split3 = List.of(a.parts(), b.parts(), c.parts()).toString();
            c.close();  // leaves the group (heartbeat with epoch -1)
            waitFor(List.of(a, b), () -> a.parts().size() == 3 && b.parts().size() == 3, 30, "2 members x 3 partitions");
            produce(topic, all.subList(120, 240));
            waitFor(List.of(a, b), () -> a.count() + b.count() + c.count() >= 240, 20, "240 records read");
            String split2 = List.of(a.parts(), b.parts()).toString();
            Member d2 = d = new Member(group, topic, conf, true);
            waitFor(List.of(a, b, d2), () -> a.parts().size() == 2 && b.parts().size() == 2 && d2.parts().size() == 2,
                    30, "3 members x 2 partitions after a join");
            produce(topic, all.subList(240, 360));
            waitFor(List.of(a, b, d2), () -> a.count() + b.count() + c.count() + d2.count() >= 360, 20, "360 records read");
            check(d2.count() > 0, "the member that joined last read nothing");
            Thread.sleep(1000);
            String split3b = List.of(a.parts(), b.parts(), d2.parts()).toString();
            Map<Integer, List<JavaClient.Got>> union = new TreeMap<>();
            for (Member m : List.of(a, b, c, d2)) {
                m.snapshot().forEach((p, l) -> union.computeIfAbsent(p, k -> new ArrayList<>()).addAll(l));
            }
            union.values().forEach(l -> l.sort(Comparator.comparingLong(JavaClient.Got::offset)));
            String detail = compare(all, union, false, true);
            return detail + "; assignments " + split3 + " -> leave " + split2 + " -> join " + split3b
                    + ", read " + List.of(a.count(), b.count(), c.count(), d2.count());
        } finally {
            closeAll(a, b, c, d);
        }
    }

    static String twoGroups() throws Exception {
        String topic = uniqueTopic("two_groups");
        createTopic(topic, 3, Map.of());
        List<JavaClient.Rec> recs = makeRecords(150, 30, false, 0);
        produce(topic, recs);
        Member g1 = member(uniqueGroup("two_groups"), topic), g2 = member(uniqueGroup("two_groups"), topic);
        try {
            waitFor(List.of(g1, g2), () -> g1.count() >= 150 && g2.count() >= 150, 30, "each group read 150 records");
            Thread.sleep(1000);
            return "group 1: " + compare(recs, g1.snapshot(), false, true) + "; group 2: " + compare(recs, g2.snapshot(), false, true);
        } finally {
            closeAll(g1, g2);
        }
    }

    static String commitResume() throws Exception {
        String topic = uniqueTopic("commit_resume"), group = uniqueGroup("commit_resume");
        createTopic(topic, 3, Map.of());
        List<JavaClient.Rec> recs = makeRecords(200, 30, false, 0);
        List<JavaClient.Rec> first = recs.subList(0, 100), second = recs.subList(100, 200);
        produce(topic, first);
        Map<Integer, Long> committed = new TreeMap<>();
        Member m1 = member(group, topic);
        try {
            waitFor(List.of(m1), () -> m1.count() >= 100, 30, "first half read");
            Thread.sleep(500);
            Map<Integer, List<JavaClient.Got>> got1 = m1.snapshot();
            checkOnly(first, got1, "first member");
            Set<TopicPartition> tps = Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2));
            Map<TopicPartition, OffsetAndMetadata> c = m1.call(k -> { k.commitSync(); return k.committed(tps); });
            c.forEach((tp, om) -> committed.put(tp.partition(), om == null ? -1 : om.offset()));
            Map<Integer, Long> want = new TreeMap<>();
            for (int p = 0; p < 3; p++) want.put(p, (long) got1.getOrDefault(p, List.of()).size());
            check(committed.equals(want), "committed " + committed + ", want " + want);
        } finally {
            closeAll(m1);
        }
        produce(topic, second);
        Member m2 = member(group, topic);
        try {
            waitFor(List.of(m2), () -> m2.count() >= 100, 30, "second half read");
            Thread.sleep(1000);
            Map<Integer, List<JavaClient.Got>> got2 = m2.snapshot();
            checkOnly(second, got2, "new member");
            got2.forEach((p, l) -> check(l.isEmpty() || l.get(0).offset() == committed.get(p),
                    "new member started partition " + p + " at " + l.get(0).offset() + ", committed " + committed.get(p)));
            return "committed " + committed + " after 100 records; new member resumed there and read exactly the other 100";
        } finally {
            closeAll(m2);
        }
    }

    static String cooperativeSticky() throws Exception {
        String topic = uniqueTopic("cooperative_sticky"), group = uniqueGroup("cooperative_sticky");
        createTopic(topic, 6, Map.of());
        Map<String, Object> conf = Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
        Member a = new Member(group, topic, conf);
        Member b = null;
        try {
            waitFor(List.of(a), () -> a.parts().equals(List.of(0, 1, 2, 3, 4, 5)), 30, "first member owns all 6 partitions");
            Member bb = b = new Member(group, topic, conf);
            waitFor(List.of(a, bb), () -> a.parts().size() == 3 && bb.parts().size() == 3, 30, "3 + 3 partitions");
            Thread.sleep(1000);
            List<Integer> revoked;
            synchronized (a) {
                revoked = new ArrayList<>(new TreeSet<>(a.revoked));
            }
            check(revoked.equals(bb.parts()), "first member revoked " + revoked + ", but only the moved partitions "
                    + bb.parts() + " may be revoked (events " + a.events() + ")");
            return "first member kept " + a.parts() + " (never revoked), revoked only " + revoked
                    + " which moved to the second (events " + a.events() + ")";
        } finally {
            closeAll(a, b);
        }
    }

    static ConsumerGroupDescription describe(Admin adm, String group) throws Exception {
        return adm.describeConsumerGroups(List.of(group)).all().get(OP_S, TimeUnit.SECONDS).get(group);
    }

    static String staticMember() throws Exception {
        String topic = uniqueTopic("static_member"), group = uniqueGroup("static_member");
        createTopic(topic, 4, Map.of());
        Map<String, Object> sa = Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-a",
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, STATIC_SESSION_TIMEOUT_MS);
        Map<String, Object> sb = Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-b",
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, STATIC_SESSION_TIMEOUT_MS);
        Member a = new Member(group, topic, sa), b = new Member(group, topic, sb);
        Member a2 = null;
        try (Admin adm = admin()) {
            waitFor(List.of(a, b), () -> a.parts().size() == 2 && b.parts().size() == 2, 30, "2 static members x 2 partitions");
            Thread.sleep(1000);
            List<Integer> aParts = a.parts();
            List<String> bEvents = b.events();
            int gen = b.call(c -> c.groupMetadata().generationId());
            check(describe(adm, group).members().size() == 2, "describe: not 2 members before the restart");
            a.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.REMAIN_IN_GROUP));
            Thread.sleep(1000);
            Member aa = a2 = new Member(group, topic, sa);
            waitFor(List.of(aa, b), () -> aa.parts().size() == 2, 20, "restarted static member assigned");
            Thread.sleep(2000);
            check(aa.parts().equals(aParts), "restarted member got " + aa.parts() + ", had " + aParts);
            check(b.events().equals(bEvents), "the other member saw a rebalance: " + b.events().subList(bEvents.size(), b.events().size()));
            int gen2 = b.call(c -> c.groupMetadata().generationId());
            int genA = aa.call(c -> c.groupMetadata().generationId());
            check(gen2 == gen && genA == gen, "generation " + gen + " -> " + gen2 + " (restarted member sees " + genA + ")");
            ConsumerGroupDescription d = describe(adm, group);
            check(d.groupState() == GroupState.STABLE, "group state " + d.groupState());
            List<String> inst = d.members().stream().map(m -> m.groupInstanceId().orElse("-")).sorted().collect(Collectors.toList());
            check(inst.equals(List.of("static-a", "static-b")), "describe: instances " + inst);
            return "closed with REMAIN_IN_GROUP and restarted: same partitions " + aParts + ", generation stayed " + gen
                    + ", no rebalance seen by the other member; described " + d.groupState() + " with " + inst;
        } finally {
            closeAll(a, b, a2);
        }
    }

    static String offsetsAdmin() throws Exception {
        String topic = uniqueTopic("offsets_admin"), group = uniqueGroup("offsets_admin");
        createTopic(topic, 3, Map.of());
        List<JavaClient.Rec> recs = makeRecords(30, 0, false, 0);
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            for (int part = 0; part < 3; part++) {
                List<JavaClient.Rec> slice = new ArrayList<>();
                for (int i = part; i < recs.size(); i += 3) slice.add(recs.get(i));
                produceAll(p, topic, slice, part);
            }
        }
        List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2));
        try (Admin adm = admin()) {
            Member m = member(group, topic);
            try {
                waitFor(List.of(m), () -> m.count() >= 30, 30, "30 records read");
                m.call(c -> {
                    c.commitSync(tps.stream().collect(Collectors.toMap(tp -> tp, tp -> new OffsetAndMetadata(4))));
                    return null;
                });
                Collection<GroupListing> listed = adm.listGroups().all().get(OP_S, TimeUnit.SECONDS);
                check(listed.stream().anyMatch(g -> g.groupId().equals(group)), "listGroups does not show " + group);
                ConsumerGroupDescription d = describe(adm, group);
                check(d.groupState() == GroupState.STABLE && d.members().size() == 1,
                        "describe: " + d.groupState() + " with " + d.members().size() + " members");
                MemberDescription md = d.members().iterator().next();
                List<Integer> mp = md.assignment().topicPartitions().stream().map(TopicPartition::partition).sorted().collect(Collectors.toList());
                check(mp.equals(List.of(0, 1, 2)), "describe: member assignment " + mp);
            } finally {
                closeAll(m);
            }
            Map<Integer, Long> c = committed(adm, group, topic);
            Map<Integer, Long> ends = new TreeMap<>();
            adm.listOffsets(tps.stream().collect(Collectors.toMap(tp -> tp, tp -> OffsetSpec.latest()))).all()
                    .get(OP_S, TimeUnit.SECONDS).forEach((tp, info) -> ends.put(tp.partition(), info.offset()));
            Map<Integer, Long> lag = new TreeMap<>();
            c.forEach((p, o) -> lag.put(p, ends.get(p) - o));
            check(c.equals(Map.of(0, 4L, 1, 4L, 2, 4L)), "committed " + c + ", want 4 each");
            check(lag.equals(Map.of(0, 6L, 1, 6L, 2, 6L)), "lag " + lag + ", want 6 each (end " + ends + ")");
            check(describe(adm, group).groupState() == GroupState.EMPTY, "group not EMPTY after its member closed");
            adm.alterConsumerGroupOffsets(group, tps.stream().collect(Collectors.toMap(tp -> tp, tp -> new OffsetAndMetadata(7))))
                    .all().get(OP_S, TimeUnit.SECONDS);
            Map<Integer, Long> c2 = committed(adm, group, topic);
            check(c2.equals(Map.of(0, 7L, 1, 7L, 2, 7L)), "after alterConsumerGroupOffsets: committed " + c2 + ", want 7 each");
        }
        Member m2 = member(group, topic);
        try {
            waitFor(List.of(m2), () -> m2.count() >= 9, 30, "9 records after the reset");
            Thread.sleep(1000);
            Map<Integer, Long> starts = new TreeMap<>();
            m2.snapshot().forEach((p, l) -> starts.put(p, l.get(0).offset()));
            check(starts.equals(Map.of(0, 7L, 1, 7L, 2, 7L)) && m2.count() == 9, "after reset read from " + starts + ", " + m2.count() + " records");
        } finally {
            closeAll(m2);
        }
        return "committed 4/partition, end 10 -> lag 6 each (listConsumerGroupOffsets); listGroups + describe (1 member, "
                + "3 partitions, then EMPTY); alterConsumerGroupOffsets -> 7; new member read offsets 7..9 of each partition";
    }

    static Map<Integer, Long> committed(Admin adm, String group, String topic) throws Exception {
        Map<Integer, Long> out = new TreeMap<>();
        adm.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(OP_S, TimeUnit.SECONDS).forEach((tp, om) -> {
            if (tp.topic().equals(topic) && om != null) out.put(tp.partition(), om.offset());
        });
        return out;
    }

    private GroupScenarios() {}
}
