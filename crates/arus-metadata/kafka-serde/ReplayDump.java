// Replays metadata record sequences in Kafka 4.4's own MetadataDelta and prints the image
// Kafka's image writer makes of the result, for `tests/kafka_replay.rs`.
//
// Input (stdin): for each sequence, "BEGIN", then one hex-framed record per line (Kafka's
// MetadataRecordSerde framing), then "END". Each record is applied in a delta of its own
// (image -> delta -> image), the way a broker applies committed batches.
// Output (stdout), per sequence: "ERR <index> <exception>" for a record Kafka refuses,
// "LC <index> <node> <changes>" for each node 0-4 whose LocalReplicaChanges (of the delta of
// record <index>) are not empty (format: see localChanges below),
// "LOSS <message>" for anything the writer cannot write, one "REC <hex>" per record of the
// final image (MetadataImage.write), then "DONE".
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.image.LocalReplicaChanges;
import org.apache.kafka.image.MetadataDelta;
import org.apache.kafka.image.MetadataImage;
import org.apache.kafka.image.MetadataProvenance;
import org.apache.kafka.image.writer.ImageWriter;
import org.apache.kafka.image.writer.ImageWriterOptions;
import org.apache.kafka.metadata.MetadataRecordSerde;
import org.apache.kafka.server.common.ApiMessageAndVersion;

public class ReplayDump {
    static byte[] unhex(String s) {
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        return out;
    }

    static String hex(ApiMessageAndVersion record) {
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = MetadataRecordSerde.INSTANCE.recordSize(record, cache);
        ByteBuffer buf = ByteBuffer.allocate(size);
        MetadataRecordSerde.INSTANCE.write(record, cache, new ByteBufferAccessor(buf));
        StringBuilder hex = new StringBuilder();
        for (byte b : buf.array()) hex.append(String.format("%02x", b));
        return hex.toString();
    }

    static String sorted(List<String> items) {
        Collections.sort(items);
        return String.join(",", items);
    }

    // "leaders=<id>:<p>:<elected>,... followers=<id>:<p>,... deletes=<name>:<p>,...
    // dirs=<id>:<p>=<dir>,...", each list sorted.
    static String localChanges(LocalReplicaChanges c) {
        List<String> leaders = new ArrayList<>();
        for (Map.Entry<TopicPartition, LocalReplicaChanges.PartitionInfo> e : c.leaders().entrySet()) {
            boolean elected = c.electedLeaders().containsKey(e.getKey());
            leaders.add(e.getValue().topicId() + ":" + e.getKey().partition() + ":" + elected);
        }
        List<String> followers = new ArrayList<>();
        for (Map.Entry<TopicPartition, LocalReplicaChanges.PartitionInfo> e : c.followers().entrySet()) {
            followers.add(e.getValue().topicId() + ":" + e.getKey().partition());
        }
        List<String> deletes = new ArrayList<>();
        for (TopicPartition tp : c.deletes()) deletes.add(tp.topic() + ":" + tp.partition());
        List<String> dirs = new ArrayList<>();
        for (Map.Entry<TopicIdPartition, Uuid> e : c.directoryIds().entrySet()) {
            dirs.add(e.getKey().topicId() + ":" + e.getKey().partition() + "=" + e.getValue());
        }
        return "leaders=" + sorted(leaders) + " followers=" + sorted(followers)
            + " deletes=" + sorted(deletes) + " dirs=" + sorted(dirs);
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        MetadataImage image = MetadataImage.EMPTY;
        int index = 0;
        String line;
        while ((line = in.readLine()) != null) {
            if (line.equals("BEGIN")) {
                image = MetadataImage.EMPTY;
                index = 0;
            } else if (line.equals("END")) {
                ImageWriterOptions options = new ImageWriterOptions.Builder(image)
                    .setLossHandler(e -> out.append("LOSS ").append(e.getMessage()).append('\n'))
                    .build();
                image.write(new ImageWriter() {
                    public void write(ApiMessageAndVersion record) {
                        out.append("REC ").append(hex(record)).append('\n');
                    }
                    public void close(boolean complete) {}
                }, options);
                out.append("DONE\n");
            } else {
                byte[] bytes = unhex(line);
                ApiMessageAndVersion record = MetadataRecordSerde.INSTANCE.read(
                    new ByteBufferAccessor(ByteBuffer.wrap(bytes)), bytes.length);
                MetadataDelta delta = new MetadataDelta.Builder().setImage(image).build();
                try {
                    delta.replay(record.message());
                    image = delta.apply(new MetadataProvenance(index, 1, 0L, true));
                    if (delta.topicsDelta() != null) {
                        for (int node = 0; node < 5; node++) {
                            LocalReplicaChanges changes = delta.topicsDelta().localChanges(node);
                            String line2 = localChanges(changes);
                            if (!line2.equals("leaders= followers= deletes= dirs=")) {
                                out.append("LC ").append(index).append(' ').append(node).append(' ')
                                    .append(line2).append('\n');
                            }
                        }
                    }
                } catch (Exception e) {
                    out.append("ERR ").append(index).append(' ').append(e).append('\n');
                }
                index++;
            }
        }
        System.out.print(out);
    }
}
