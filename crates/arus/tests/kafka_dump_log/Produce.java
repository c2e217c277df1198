// Writes the workload of crates/arus-log/tests/fixtures/kafka-4.4 through Kafka 4.4.0's own
// clients: topic `fx` (index.interval.bytes=150), an idempotent producer, four transactions
// of which two abort, a gzip batch, then a consumer group commit. Run with
// `java -cp <reference classpath> Produce.java HOST:PORT`.
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class Produce {
  public static void main(String[] a) throws Exception {
    String bs = a[0];
    Properties ap = new Properties();
    ap.put("bootstrap.servers", bs);
    try (Admin admin = Admin.create(ap)) {
      admin.createTopics(List.of(new NewTopic("fx", 1, (short) 1)
          .configs(Map.of("index.interval.bytes", "150")))).all().get();
    }
    Properties pp = new Properties();
    pp.put("bootstrap.servers", bs);
    pp.put("key.serializer", ByteArraySerializer.class.getName());
    pp.put("value.serializer", ByteArraySerializer.class.getName());
    pp.put("linger.ms", "50");
    long t0 = 1700000000000L;
    try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
      for (int round = 0; round < 6; round++) {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
          long ts = t0 + round * 100 + ((i * 37) % 5) * 10;
          fs.add(p.send(new ProducerRecord<>("fx", 0, ts, ("k" + i).getBytes(),
              ("value-" + round + "-" + i + "-padding-padding").getBytes())));
        }
        for (var f : fs) f.get();
      }
    }
    Properties tp = new Properties();
    tp.putAll(pp);
    tp.put("transactional.id", "fx-txn");
    try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(tp)) {
      p.initTransactions();
      for (int txn = 0; txn < 4; txn++) {
        p.beginTransaction();
        for (int i = 0; i < 3; i++)
          p.send(new ProducerRecord<>("fx", 0, t0 + 1000 + txn * 10 + i,
              ("t" + txn).getBytes(), ("txn-" + txn + "-" + i).getBytes())).get();
        if (txn % 2 == 1) p.abortTransaction(); else p.commitTransaction();
      }
    }
    Properties cp = new Properties();
    cp.putAll(pp);
    cp.put("compression.type", "gzip");
    try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(cp)) {
      List<Future<RecordMetadata>> fs = new ArrayList<>();
      for (int i = 0; i < 4; i++)
        fs.add(p.send(new ProducerRecord<>("fx", 0, t0 + 2000 - i, null, ("gz-" + i).getBytes())));
      for (var f : fs) f.get();
    }
    Properties kp = new Properties();
    kp.put("bootstrap.servers", bs);
    kp.put("group.id", "fx-group");
    kp.put("key.deserializer", ByteArrayDeserializer.class.getName());
    kp.put("value.deserializer", ByteArrayDeserializer.class.getName());
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(kp)) {
      TopicPartition tp0 = new TopicPartition("fx", 0);
      c.assign(List.of(tp0));
      c.commitSync(Map.of(tp0, new OffsetAndMetadata(17, "fx-meta")));
    }
    System.out.println("done");
  }
}
