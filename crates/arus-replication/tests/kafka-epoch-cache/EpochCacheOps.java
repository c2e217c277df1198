// Runs leader epoch cache operations, one per line on standard input, through Apache Kafka's
// own LeaderEpochFileCache and LeaderEpochCheckpointFile, printing one answer line per
// operation. Driven by ../kafka_epoch_cache.rs, which runs the same operations on
// arus-replication and compares the answers. Run as a single-file program:
//   java -cp "$(cat compat/work/reference-classpath.txt)" EpochCacheOps.java < ops
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.server.util.KafkaScheduler;
import org.apache.kafka.storage.internals.checkpoint.LeaderEpochCheckpointFile;
import org.apache.kafka.storage.internals.epoch.LeaderEpochFileCache;
import org.apache.kafka.storage.internals.log.EpochEntry;
import org.apache.kafka.storage.internals.log.LogDirFailureChannel;

public class EpochCacheOps {
    private static int files = 0;
    private static Path partitionDir;

    private static File newFile() {
        return partitionDir.resolve("leader-epoch-checkpoint-" + (files++)).toFile();
    }

    private static String opt(OptionalInt v) {
        return v.isPresent() ? Integer.toString(v.getAsInt()) : "none";
    }

    private static String entries(List<EpochEntry> entries) {
        StringBuilder sb = new StringBuilder("entries");
        for (EpochEntry e : entries) sb.append(' ').append(e.epoch()).append(':').append(e.startOffset());
        return sb.toString();
    }

    private static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) sb.append(String.format("%02x", b));
        return sb.toString();
    }

    public static void main(String[] args) throws Exception {
        KafkaScheduler scheduler = new KafkaScheduler(1);
        scheduler.startup();
        partitionDir = Files.createTempDirectory("arus-epoch-cache").resolve("t-0");
        Files.createDirectories(partitionDir);
        LogDirFailureChannel failures = new LogDirFailureChannel(1);
        TopicPartition tp = new TopicPartition("t", 0);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out), false, "UTF-8");
        LeaderEpochFileCache cache = null;
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            switch (f[0]) {
                case "reset":
                    cache = new LeaderEpochFileCache(tp, new LeaderEpochCheckpointFile(newFile(), failures), scheduler);
                    out.println("ok");
                    break;
                case "assign":
                    try {
                        cache.assign(Integer.parseInt(f[1]), Long.parseLong(f[2]));
                        out.println("ok");
                    } catch (IllegalArgumentException e) {
                        out.println("invalid");
                    }
                    break;
                case "tend":
                    cache.truncateFromEndAsyncFlush(Long.parseLong(f[1]));
                    out.println("ok");
                    break;
                case "tstart":
                    cache.truncateFromStartAsyncFlush(Long.parseLong(f[1]));
                    out.println("ok");
                    break;
                case "end": {
                    Map.Entry<Integer, Long> e = cache.endOffsetFor(Integer.parseInt(f[1]), Long.parseLong(f[2]));
                    out.println(e.getKey() + " " + e.getValue());
                    break;
                }
                case "latest": {
                    Optional<Integer> v = cache.latestEpoch();
                    out.println(v.isPresent() ? v.get().toString() : "none");
                    break;
                }
                case "previous":
                    out.println(opt(cache.previousEpoch()));
                    break;
                case "epochfor":
                    out.println(opt(cache.epochForOffset(Long.parseLong(f[1]))));
                    break;
                case "entries":
                    out.println(entries(cache.epochEntries()));
                    break;
                case "file": {
                    // The checkpoint Kafka would write for the current entries, written
                    // synchronously to a fresh file (the cache's own flushes after truncation
                    // are asynchronous).
                    File file = newFile();
                    new LeaderEpochCheckpointFile(file, failures).write(cache.epochEntries());
                    out.println(hex(Files.readAllBytes(file.toPath())));
                    break;
                }
                case "load": {
                    // A checkpoint holding these entries as written, loaded by a new cache.
                    List<EpochEntry> list = new ArrayList<>();
                    for (int i = 1; i < f.length; i++) {
                        String[] eo = f[i].split(":");
                        list.add(new EpochEntry(Integer.parseInt(eo[0]), Long.parseLong(eo[1])));
                    }
                    File file = newFile();
                    new LeaderEpochCheckpointFile(file, failures).write(list);
                    try {
                        cache = new LeaderEpochFileCache(tp, new LeaderEpochCheckpointFile(file, failures), scheduler);
                        out.println(entries(cache.epochEntries()));
                    } catch (IllegalArgumentException e) {
                        cache = new LeaderEpochFileCache(tp, new LeaderEpochCheckpointFile(newFile(), failures), scheduler);
                        out.println("invalid");
                    }
                    break;
                }
                case "parse": {
                    // Kafka reading a checkpoint file holding these bytes (hex): its entries,
                    // or "error" when it refuses the file.
                    String h = f.length > 1 ? f[1] : "";
                    byte[] bytes = new byte[h.length() / 2];
                    for (int i = 0; i < bytes.length; i++)
                        bytes[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
                    File file = newFile();
                    Files.write(file.toPath(), bytes);
                    try {
                        out.println(entries(new LeaderEpochCheckpointFile(file, new LogDirFailureChannel(1)).read()));
                    } catch (RuntimeException e) {
                        out.println("error");
                    }
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown operation " + line);
            }
        }
        out.flush();
        scheduler.shutdown();
    }
}
