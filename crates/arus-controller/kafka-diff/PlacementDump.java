// Prints Kafka 4.4's own StripedReplicaPlacer placements for random clusters, one per line,
// for arus-controller's differential test (src/tests/placement_kafka.rs).
//
// Regenerate (from the repository root, with compat/work/reference-classpath.txt present):
//   java -cp "$(cat compat/work/reference-classpath.txt)" \
//     crates/arus-controller/kafka-diff/PlacementDump.java \
//     > crates/arus-controller/src/tests/fixtures/placement_kafka44.txt
//
// Line format: seed | brokers (id:rack:fenced, rack '-' for none, in iteration order) |
//   partitions | replicationFactor => the replica lists separated by ';', or ERR message
import java.util.*;
import java.util.stream.*;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.metadata.placement.*;

public class PlacementDump {
    public static void main(String[] args) {
        Random r = new Random(7L);
        String[] rackNames = {"a", "b", "c", "rack-1", "rack-2", "us-east-1a", "us-east-1b", "zone9"};
        for (int n = 0; n < 500; n++) {
            long seed = r.nextLong();
            int numBrokers = 1 + r.nextInt(12);
            int numRacks = r.nextInt(5);
            // Broker ids as a HashMap<Integer, ...> iterates them (ascending for small ids,
            // bucket order for larger ones): Kafka hands the placer that order.
            Set<Integer> idSet = new HashSet<>();
            while (idSet.size() < numBrokers) idSet.add(r.nextInt(40));
            List<Integer> ids = new ArrayList<>(new HashMap<Integer, Integer>() {{
                for (int id : idSet) put(id, id);
            }}.keySet());
            List<UsableBroker> brokers = new ArrayList<>();
            StringBuilder desc = new StringBuilder();
            for (int id : ids) {
                Optional<String> rack = numRacks == 0 || r.nextInt(8) == 0
                    ? Optional.empty() : Optional.of(rackNames[r.nextInt(Math.min(numRacks + 1, rackNames.length))]);
                boolean fenced = r.nextInt(5) == 0;
                brokers.add(new UsableBroker(id, rack, fenced));
                if (desc.length() > 0) desc.append(',');
                desc.append(id).append(':').append(rack.orElse("-")).append(':').append(fenced);
            }
            int parts = 1 + r.nextInt(20);
            short rf = (short) (1 + r.nextInt(4));
            ClusterDescriber cd = new ClusterDescriber() {
                public Iterator<UsableBroker> usableBrokers() { return brokers.iterator(); }
                public Uuid defaultDir(int id) { return Uuid.ZERO_UUID; }
            };
            String out;
            try {
                TopicAssignment ta = new StripedReplicaPlacer(new Random(seed)).place(new PlacementSpec(0, parts, rf), cd);
                out = ta.assignments().stream()
                    .map(pa -> pa.replicas().stream().map(String::valueOf).collect(Collectors.joining(",")))
                    .collect(Collectors.joining(";"));
            } catch (Exception e) {
                out = "ERR " + e.getMessage();
            }
            System.out.println(seed + " | " + desc + " | " + parts + " | " + rf + " => " + out);
        }
    }
}
