// Prints Kafka 4.4's own PartitionChangeBuilder decisions for random cases, one per line,
// for arus-controller's differential test (src/tests/partition_change_kafka.rs).
//
// Regenerate (from the repository root, with compat/work/reference-classpath.txt present):
//   java -cp "$(cat compat/work/reference-classpath.txt)" \
//     crates/arus-controller/kafka-diff/PartitionChangeDump.java \
//     > crates/arus-controller/src/tests/fixtures/partition_change_kafka44.txt
//
// Line format (fields separated by ' | '):
//   replicas | isr | elr | lastKnownElr | leader | recoveryState | acceptable | targetIsr |
//   election | elrEnabled | minIsr | uncleanShutdown | targetRecovery =>
//   NOOP, or leader isr elr lastKnownElr recoveryState (each '-' when absent from the record)
import java.util.*;
import java.util.stream.*;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.DirectoryId;
import org.apache.kafka.common.metadata.PartitionChangeRecord;
import org.apache.kafka.controller.PartitionChangeBuilder;
import org.apache.kafka.metadata.LeaderRecoveryState;
import org.apache.kafka.metadata.PartitionRegistration;
import org.apache.kafka.server.common.ApiMessageAndVersion;
import org.apache.kafka.server.common.MetadataVersion;

public class PartitionChangeDump {
    static String list(Collection<Integer> l) {
        return l == null ? "-" : "[" + l.stream().map(String::valueOf).collect(Collectors.joining(",")) + "]";
    }
    static String arr(int[] a) {
        return list(Arrays.stream(a).boxed().collect(Collectors.toList()));
    }
    static List<Integer> subset(Random r, List<Integer> from) {
        List<Integer> out = new ArrayList<>();
        for (int x : from) if (r.nextBoolean()) out.add(x);
        return out;
    }
    public static void main(String[] args) {
        Random r = new Random(20261207L);
        MetadataVersion mv = MetadataVersion.fromFeatureLevel((short) 33);
        int printed = 0;
        while (printed < 1500) {
            int rf = 1 + r.nextInt(4);
            List<Integer> all = new ArrayList<>(List.of(0, 1, 2, 3, 4, 5));
            Collections.shuffle(all, r);
            List<Integer> replicas = all.subList(0, rf);
            List<Integer> isr = subset(r, replicas);
            List<Integer> rest = replicas.stream().filter(x -> !isr.contains(x)).collect(Collectors.toList());
            List<Integer> elr = subset(r, rest);
            List<Integer> lke = r.nextInt(3) == 0 ? List.of(replicas.get(r.nextInt(rf))) : subset(r, rest);
            int leader = isr.isEmpty() || r.nextInt(5) == 0 ? -1 : isr.get(r.nextInt(isr.size()));
            if (leader == -1 && !isr.isEmpty() && r.nextBoolean()) continue;
            LeaderRecoveryState recovery = r.nextInt(6) == 0 ? LeaderRecoveryState.RECOVERING : LeaderRecoveryState.RECOVERED;
            Set<Integer> acceptable = new TreeSet<>(subset(r, List.of(0, 1, 2, 3, 4, 5)));
            List<Integer> targetIsr = r.nextInt(3) == 0 ? null : subset(r, isr);
            PartitionChangeBuilder.Election election = PartitionChangeBuilder.Election.values()[r.nextInt(3)];
            boolean elrEnabled = r.nextBoolean();
            int minIsr = 1 + r.nextInt(3);
            Integer unclean = r.nextInt(4) == 0 ? replicas.get(r.nextInt(rf)) : null;
            LeaderRecoveryState targetRecovery = r.nextInt(5) == 0 ? LeaderRecoveryState.RECOVERED : null;
            PartitionRegistration part;
            try {
                Uuid[] dirs = new Uuid[rf];
                Arrays.fill(dirs, DirectoryId.MIGRATING);
                part = new PartitionRegistration.Builder()
                    .setReplicas(replicas.stream().mapToInt(i -> i).toArray())
                    .setDirectories(dirs)
                    .setIsr(isr.stream().mapToInt(i -> i).toArray())
                    .setElr(elr.stream().mapToInt(i -> i).toArray())
                    .setLastKnownElr(lke.stream().mapToInt(i -> i).toArray())
                    .setLeader(leader)
                    .setLeaderRecoveryState(recovery)
                    .setLeaderEpoch(3)
                    .setPartitionEpoch(5)
                    .build();
            } catch (Exception e) {
                continue;
            }
            PartitionChangeBuilder b = new PartitionChangeBuilder(part, Uuid.fromString("AAAAAAAAAAAAAAAAAAAAAQ"), 0,
                acceptable::contains, mv, minIsr, elrEnabled)
                .setElection(election)
                .setDefaultDirProvider(x -> DirectoryId.MIGRATING);
            if (targetIsr != null) b.setTargetIsr(targetIsr);
            if (unclean != null) b.setUncleanShutdownReplicas(List.of(unclean));
            if (targetRecovery != null) b.setTargetLeaderRecoveryState(targetRecovery);
            Optional<ApiMessageAndVersion> out;
            try {
                out = b.build();
            } catch (Exception e) {
                continue;
            }
            String in = String.join(" | ", list(replicas), list(isr), list(elr), list(lke), String.valueOf(leader),
                String.valueOf(recovery.value()), list(acceptable), list(targetIsr), election.name(),
                String.valueOf(elrEnabled), String.valueOf(minIsr), unclean == null ? "-" : String.valueOf(unclean),
                targetRecovery == null ? "-" : String.valueOf(targetRecovery.value()));
            String res;
            if (out.isEmpty()) {
                res = "NOOP";
            } else {
                PartitionChangeRecord c = (PartitionChangeRecord) out.get().message();
                res = String.join(" ", String.valueOf(c.leader()), list(c.isr()), list(c.eligibleLeaderReplicas()),
                    list(c.lastKnownElr()), String.valueOf(c.leaderRecoveryState()));
            }
            System.out.println(in + " => " + res);
            printed++;
        }
    }
}
