// Driven by crates/arus/tests/java_client_reroute.rs over stdin/stdout: a Kafka 4.4
// producer and consumer, bootstrapped on node 1 only, that must follow partition 0 of topic
// `reroute` when the test moves its leadership to node 2 (KIP-951: the refused request
// names the new leader and its endpoint).
//
// Protocol: prints "SENT <offset>" after each acknowledged send and "GOT <value>" for each
// record consumed; reads a line ("produce <value>", "consume <n>", "quit") per step.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Reroute {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "1");
        p.put("linger.ms", "0");
        // A metadata refresh would also find the new leader: make it rare, so that following
        // the leader rests on the NOT_LEADER_OR_FOLLOWER answer's CurrentLeader.
        p.put("metadata.max.age.ms", "600000");
        p.put("delivery.timeout.ms", "20000");
        p.put("request.timeout.ms", "5000");
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("metadata.max.age.ms", "600000");
        c.put("enable.auto.commit", "false");
        TopicPartition tp = new TopicPartition("reroute", 0);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p);
             KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            System.out.println("READY");
            System.out.flush();
            String line;
            while ((line = in.readLine()) != null) {
                String[] cmd = line.split(" ", 2);
                if (cmd[0].equals("produce")) {
                    RecordMetadata m = producer.send(new ProducerRecord<>("reroute", 0, null, cmd[1])).get();
                    System.out.println("SENT " + m.offset());
                } else if (cmd[0].equals("consume")) {
                    int want = Integer.parseInt(cmd[1]);
                    int got = 0;
                    long deadline = System.currentTimeMillis() + 20000;
                    while (got < want && System.currentTimeMillis() < deadline) {
                        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                            System.out.println("GOT " + r.value());
                            got++;
                        }
                    }
                    if (got < want) {
                        System.out.println("TIMEOUT");
                    }
                } else {
                    break;
                }
                System.out.flush();
            }
        }
    }
}
