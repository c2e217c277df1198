// The Kafka Streams 4.4 application of compat/streams_eos.py (run in source-file mode on
// compat/work/apps-classpath.txt):
//
//   java -cp "$(cat compat/work/apps-classpath.txt)" compat/apps/StreamsCount.java BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR [GUARANTEE]
//
// Input records are keyed by a record id and carry the word to count as value; the app re-keys
// each record by its value (groupBy → a repartition topic), counts per word in a state store
// (changelogged) and writes every count update to OUTPUT. processing.guarantee=exactly_once_v2;
// the record cache is off (statestore.cache.max.bytes=0) so every update reaches OUTPUT: with
// exactly-once the committed OUTPUT holds, per word, exactly the counts 1, 2, ..., n in order.
// GUARANTEE (default exactly_once_v2) is at_least_once only for the checker's self-test.
// Prints RUNNING once the instance runs; runs until SIGTERM (closes) or SIGKILL.
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Produced;

public class StreamsCount {
    public static void main(String[] a) throws Exception {
        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a[0]);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, a[1]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, a[4]);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a.length > 5 ? a[5] : StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        // The restarted instance must not wait for the killed member's session to expire
        // (Kafka's default 45 s): the broker's minimum, 6 s.
        p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 6000);
        p.put(StreamsConfig.consumerPrefix("heartbeat.interval.ms"), 1500);
        StreamsBuilder b = new StreamsBuilder();
        b.stream(a[2], Consumed.with(Serdes.String(), Serdes.String()))
            .groupBy((id, word) -> word, Grouped.with("by-word", Serdes.String(), Serdes.String()))
            .count()
            .toStream()
            .to(a[3], Produced.with(Serdes.String(), Serdes.Long()));
        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("STATE " + now);
            if (now == KafkaStreams.State.RUNNING) System.out.println("RUNNING");
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) done.countDown();
            System.out.flush();
        });
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(20))));
        streams.start();
        done.await();
    }
}
