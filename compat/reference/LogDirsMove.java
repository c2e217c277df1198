import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.TopicPartitionReplica;

/**
 * Admin.alterReplicaLogDirs as kafka-reassign-partitions uses it, for compat/log_dirs_tools.py:
 * java -cp CLASSPATH LogDirsMove.java HOST:PORT TOPIC PARTITION DEST_DIR
 * Moves TOPIC-PARTITION to DEST_DIR and asks for two refused moves (a directory not in the
 * config, an unknown topic), printing one line per replica: "topic-p-broker -> OK" or the
 * exception; then waits for the move and prints describeReplicaLogDirs' current and future.
 */
public class LogDirsMove {
    public static void main(String[] a) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", a[0]);
        try (Admin admin = Admin.create(p)) {
            Map<TopicPartitionReplica, String> m = new LinkedHashMap<>();
            String topic = a[1];
            int partition = Integer.parseInt(a[2]);
            TopicPartitionReplica moved = new TopicPartitionReplica(topic, partition, 1);
            m.put(moved, a[3]);
            m.put(new TopicPartitionReplica(topic, partition + 1, 1), "/no/such/dir");
            m.put(new TopicPartitionReplica("no-such-topic", 0, 1), a[3]);
            for (var e : admin.alterReplicaLogDirs(m).values().entrySet()) {
                try { e.getValue().get(); System.out.println(e.getKey() + " -> OK"); }
                catch (Exception ex) { System.out.println(e.getKey() + " -> " + ex.getCause().getClass().getSimpleName() + ": " + ex.getCause().getMessage()); }
            }
            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {
                var info = admin.describeReplicaLogDirs(List.of(moved)).all().get().get(moved);
                boolean done = a[3].equals(info.getCurrentReplicaLogDir()) && info.getFutureReplicaLogDir() == null;
                if (done || System.currentTimeMillis() > deadline) {
                    System.out.println(moved + " current=" + info.getCurrentReplicaLogDir() + " future=" + info.getFutureReplicaLogDir());
                    break;
                }
                Thread.sleep(100);
            }
        }
    }
}
