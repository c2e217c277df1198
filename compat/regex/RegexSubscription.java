// KIP-848 regex subscription check with the real Java consumer (kafka-clients 4.4):
// a consumer subscribed with SubscriptionPattern("rx-.*") (group.protocol=consumer, so the
// broker resolves the regex) must consume from a matching topic created before it
// subscribed and from one created after, and nothing from a topic that does not match.
// Run by compat/regex_subscription.sh: java -cp CLASSPATH RegexSubscription.java HOST:PORT
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.*;

public class RegexSubscription {
    static void produce(String bs, String topic, int n) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bs);
        try (Producer<String, String> pr = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < n; i++) pr.send(new ProducerRecord<>(topic, "k" + i, topic + "-" + i)).get();
        }
    }

    static void create(Admin admin, String topic, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
    }

    /** Polls until `want` records of `topic` were seen; fails after `timeoutMs`. */
    static long pollUntil(Consumer<String, String> c, Map<String, Integer> seen, String topic, int want, long timeoutMs) {
        long start = System.currentTimeMillis();
        while (seen.getOrDefault(topic, 0) < want) {
            if (System.currentTimeMillis() - start > timeoutMs)
                throw new AssertionError("only " + seen + " after " + timeoutMs + " ms waiting for " + want + " from " + topic
                        + "; assignment " + c.assignment());
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) seen.merge(r.topic(), 1, Integer::sum);
        }
        return System.currentTimeMillis() - start;
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String suffix = Long.toHexString(System.nanoTime());
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            create(admin, "rx-before-" + suffix, 2);
            create(admin, "other-" + suffix, 1);
            produce(bs, "rx-before-" + suffix, 5);
            produce(bs, "other-" + suffix, 5);

            Properties cp = new Properties();
            cp.put("bootstrap.servers", bs);
            cp.put("group.id", "regex-" + suffix);
            cp.put("group.protocol", "consumer");
            cp.put("auto.offset.reset", "earliest");
            Map<String, Integer> seen = new TreeMap<>();
            try (Consumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
                c.subscribe(new SubscriptionPattern("rx-.*"));
                long t1 = pollUntil(c, seen, "rx-before-" + suffix, 5, Long.getLong("firstTimeoutMs", 60_000));
                System.out.println("consumed 5 from the topic created before subscribing in " + t1 + " ms");
                create(admin, "rx-after-" + suffix, 1);
                produce(bs, "rx-after-" + suffix, 3);
                long t2 = pollUntil(c, seen, "rx-after-" + suffix, 3, 90_000);
                System.out.println("consumed 3 from the topic created after subscribing in " + t2 + " ms");
                if (seen.containsKey("other-" + suffix))
                    throw new AssertionError("consumed from a topic the regex does not match: " + seen);
                System.out.println("OK " + seen);
            }
        }
    }
}
