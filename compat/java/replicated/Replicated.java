// kafka-clients (Java) side of compat/replicated.py: runs one scenario's client steps, asks the
// orchestrator for each fault (`FAULT x` on stdout, the answer on stdin) and ends with
// `RESULT <json>`. Arguments: SCENARIO BOOTSTRAP TOPIC TOPIC2 GROUP TXN_ID N (see replicated.py).
// Run as a single source file: java -cp "$(cat compat/java/target/classpath.txt)" Replicated.java …
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Replicated {
    static String bootstrap, topic, topic2, group, txnId;
    static int n;
    static final BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in));

    static void fault(String what) throws Exception {
        System.out.println("FAULT " + what);
        System.out.flush();
        String answer = stdin.readLine();
        if (answer == null || !answer.startsWith("OK")) {
            System.err.println("fault " + what + " refused: " + answer);
            System.exit(1);
        }
    }

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static String list(List<String> items) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < items.size(); i++) b.append(i > 0 ? "," : "").append(items.get(i));
        return b.append("]").toString();
    }

    static List<String> quoted(List<String> items) {
        List<String> out = new ArrayList<>();
        for (String s : items) out.add(q(s));
        return out;
    }

    static Properties producerProps() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "all");
        return p;
    }

    static Properties consumerProps(String groupId, String isolation) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", groupId);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("isolation.level", isolation);
        return p;
    }

    /** Sends the records ({partition, key, value}; key may be null) and waits for every ack; returns the errors. */
    static List<String> send(KafkaProducer<String, String> p, String t, List<Object[]> recs) {
        List<Future<?>> fs = new ArrayList<>();
        List<String> errors = new ArrayList<>();
        for (Object[] r : recs) fs.add(p.send(new ProducerRecord<>(t, (Integer) r[0], (String) r[1], (String) r[2])));
        for (int i = 0; i < fs.size(); i++) {
            try {
                fs.get(i).get(90, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                errors.add(recs.get(i)[2] + ": " + e.getCause());
            } catch (Exception e) {
                errors.add(recs.get(i)[2] + ": " + e);
            }
        }
        return errors;
    }

    /** Reads partitions 0..parts-1 of t from the start (assign, no group): [partition, key, value]. */
    static List<String[]> read(String t, int parts, int count, String isolation) {
        List<String[]> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps("rep-read-" + UUID.randomUUID(), isolation))) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < parts; i++) tps.add(new TopicPartition(t, i));
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 30000, extra = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(deadline, extra)) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) {
                    out.add(new String[] {String.valueOf(r.partition()), r.key() == null ? "" : r.key(), r.value()});
                }
                // Keep polling a moment after the last expected record: a duplicate would show here.
                if (out.size() >= count && extra == Long.MAX_VALUE) extra = System.currentTimeMillis() + 1500;
            }
        }
        return out;
    }

    static List<String> values(List<String[]> recs) {
        List<String> out = new ArrayList<>();
        for (String[] r : recs) out.add(r[2]);
        return out;
    }

    static String replicatedFailover() throws Exception {
        Properties props = producerProps();
        props.put("enable.idempotence", "true");
        props.put("linger.ms", "5");
        props.put("delivery.timeout.ms", "90000");
        List<String> errors = new ArrayList<>();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props)) {
            List<Object[]> first = new ArrayList<>(), second = new ArrayList<>();
            for (int i = 0; i < 2 * n; i++) (i < n ? first : second).add(new Object[] {i % 3, "k" + (i % 6), "v" + i});
            errors.addAll(send(p, topic, first));
            fault("kill-leader");
            errors.addAll(send(p, topic, second));
        }
        fault("restart");
        List<String> consumed = new ArrayList<>();
        for (String[] r : read(topic, 3, 2 * n, "read_uncommitted")) consumed.add("[" + r[0] + "," + q(r[1]) + "," + q(r[2]) + "]");
        return "{\"send_errors\":" + list(quoted(errors)) + ",\"consumed\":" + list(consumed) + "}";
    }

    static String minIsr() throws Exception {
        Properties props = producerProps();
        // No retries, so the broker's answer reaches the application as it is.
        props.put("enable.idempotence", "false");
        props.put("retries", "0");
        props.put("delivery.timeout.ms", "30000");
        props.put("request.timeout.ms", "20000");
        StringBuilder steps = new StringBuilder("{");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props)) {
            String[][] plan = {{"a", "5", ""}, {"b", "5", "kill-follower"}, {"c", "1", "kill-follower"}, {"d", "5", "restart"}};
            for (String[] s : plan) {
                if (!s[2].isEmpty()) fault(s[2]);
                List<Object[]> recs = new ArrayList<>();
                for (int i = 0; i < Integer.parseInt(s[1]); i++) recs.add(new Object[] {0, null, s[0] + i});
                steps.append(steps.length() > 1 ? "," : "").append(q(s[0])).append(":").append(list(quoted(send(p, topic, recs))));
            }
        }
        steps.append("}");
        return "{\"steps\":" + steps + ",\"consumed\":" + list(quoted(values(read(topic, 1, 15, "read_uncommitted")))) + "}";
    }

    static List<String> take(KafkaConsumer<String, String> c, int count, List<String> errors) {
        List<String> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 30000;
        while (got.size() < count && System.currentTimeMillis() < deadline) {
            try {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    if (got.size() < count) got.add(r.value());
                }
            } catch (Exception e) {
                errors.add("poll: " + e);
            }
        }
        return got;
    }

    static String coordinatorFailover() throws Exception {
        List<String> errors = new ArrayList<>();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps())) {
            List<Object[]> recs = new ArrayList<>();
            for (int i = 0; i < 20; i++) recs.add(new Object[] {0, null, "g" + i});
            errors.addAll(send(p, topic, recs));
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        List<String> first, second;
        try (KafkaConsumer<String, String> c1 = new KafkaConsumer<>(consumerProps(group, "read_uncommitted"))) {
            c1.subscribe(Collections.singletonList(topic));
            first = take(c1, 10, errors);
            c1.commitSync(Map.of(tp, new OffsetAndMetadata(10)));
        }
        fault("kill-group-coordinator");
        try (KafkaConsumer<String, String> c2 = new KafkaConsumer<>(consumerProps(group, "read_uncommitted"))) {
            c2.subscribe(Collections.singletonList(topic));
            second = take(c2, 10, errors);
        }
        fault("restart");
        Properties tprops = producerProps();
        tprops.put("transactional.id", txnId);
        tprops.put("max.block.ms", "30000");
        try (KafkaProducer<String, String> t = new KafkaProducer<>(tprops)) {
            t.initTransactions();
            for (int start = 0; start < 10; start += 5) {
                if (start == 5) fault("kill-txn-coordinator");
                try {
                    t.beginTransaction();
                    for (int i = start; i < start + 5; i++) t.send(new ProducerRecord<>(topic2, 0, null, "t" + i));
                    t.commitTransaction();
                } catch (Exception e) {
                    errors.add("transaction t" + start + "..: " + e);
                }
            }
        }
        fault("restart");
        List<String> txn = values(read(topic2, 1, 10, "read_committed"));
        return "{\"errors\":" + list(quoted(errors)) + ",\"group_first\":" + list(quoted(first)) + ",\"group_second\":"
                + list(quoted(second)) + ",\"txn_consumed\":" + list(quoted(txn)) + "}";
    }

    public static void main(String[] args) throws Exception {
        String scenario = args[0];
        bootstrap = args[1];
        topic = args[2];
        topic2 = args[3];
        group = args[4];
        txnId = args[5];
        n = Integer.parseInt(args[6]);
        String result;
        switch (scenario) {
            case "replicated_failover": result = replicatedFailover(); break;
            case "min_isr": result = minIsr(); break;
            case "coordinator_failover": result = coordinatorFailover(); break;
            default: throw new IllegalArgumentException("unknown scenario " + scenario);
        }
        System.out.println("RESULT " + result);
        System.out.flush();
        System.exit(0);
    }
}
