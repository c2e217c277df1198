package dev.arus.compat;

import static dev.arus.compat.JavaClient.OP_S;
import static dev.arus.compat.JavaClient.check;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TransactionalIdNotFoundException;

/**
 * txn_admin: Admin#listTransactions / describeTransactions / describeProducers (KIP-664) around one
 * transaction writing to two of three partitions.
 */
final class TxnAdminScenario {
    /** Distinctive transaction.timeout.ms that describeTransactions must echo. */
    static final int TIMEOUT_MS = 27000;

    static Map<String, TransactionListing> list(Admin a, Collection<Long> pids, Collection<TransactionState> states)
            throws Exception {
        ListTransactionsOptions o = new ListTransactionsOptions();
        if (pids != null) o.filterProducerIds(pids);
        if (states != null) o.filterStates(states);
        Map<String, TransactionListing> out = new java.util.HashMap<>();
        for (TransactionListing l : a.listTransactions(o).all().get(OP_S, TimeUnit.SECONDS)) out.put(l.transactionalId(), l);
        return out;
    }

    static TransactionDescription describe(Admin a, String tid) throws Exception {
        return a.describeTransactions(List.of(tid)).description(tid).get(OP_S, TimeUnit.SECONDS);
    }

    static Map<TopicPartition, PartitionProducerState> producers(Admin a, List<TopicPartition> tps) throws Exception {
        Map<TopicPartition, PartitionProducerState> m = a.describeProducers(tps).all().get(OP_S, TimeUnit.SECONDS);
        check(m.keySet().equals(Set.copyOf(tps)), "describeProducers(" + tps + ") answered for " + m.keySet());
        return m;
    }

    static Optional<ProducerState> find(PartitionProducerState s, long pid) {
        return s.activeProducers().stream().filter(p -> p.producerId() == pid).findFirst();
    }

    static long startOffset(ProducerState p) {
        OptionalLong o = p.currentTransactionStartOffset();
        return o.isPresent() ? o.getAsLong() : -1;
    }

    static String sorted(Set<TopicPartition> tps) {
        Set<String> s = new TreeSet<>();
        for (TopicPartition tp : tps) s.add(tp.toString());
        return s.toString();
    }

    static String run() throws Exception {
        String topic = JavaClient.uniqueTopic("txn_admin");
        JavaClient.createTopic(topic, 3, Map.of());
        String tid = topic + "-txn";
        TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1), p2 = new TopicPartition(topic, 2);
        try (Admin a = JavaClient.admin();
                KafkaProducer<byte[], byte[]> prod = TxnScenarios.txnProducer(tid, TIMEOUT_MS)) {
            long before = System.currentTimeMillis();
            prod.beginTransaction();
            // Partitions 0 and 2 only: the transaction must name exactly these two, not partition 1.
            TxnScenarios.send(prod, topic, TxnScenarios.kvs("p0", 3, 1), 0);
            TxnScenarios.send(prod, topic, TxnScenarios.kvs("p2", 2, 1), 2);
            prod.flush();
            long after = System.currentTimeMillis();

            // --- transaction open. The Java producer does not expose its producer id: take it from
            // the listing and require describeTransactions and describeProducers to agree with it.
            TransactionListing lt = list(a, null, null).get(tid);
            check(lt != null, "listTransactions: " + tid + " not listed while its transaction is open");
            check(lt.state() == TransactionState.ONGOING, "listTransactions: " + tid + " in state " + lt.state() + ", want Ongoing");
            long pid = lt.producerId();
            check(pid >= 0, "listTransactions: producer id " + pid);
            check(list(a, null, List.of(TransactionState.ONGOING)).containsKey(tid), "listTransactions(state Ongoing) does not list " + tid);
            check(!list(a, null, List.of(TransactionState.COMPLETE_COMMIT)).containsKey(tid),
                    "listTransactions(state CompleteCommit) lists " + tid + " while it is Ongoing");
            check(list(a, List.of(pid), null).containsKey(tid), "listTransactions(producer id " + pid + ") does not list " + tid);
            check(!list(a, List.of(pid + 1000003), null).containsKey(tid),
                    "listTransactions(producer id " + (pid + 1000003) + ") lists " + tid + " (producer id " + pid + ")");

            TransactionDescription dt = describe(a, tid);
            check(dt.state() == TransactionState.ONGOING, "describeTransactions: state " + dt.state() + ", want Ongoing");
            check(dt.transactionTimeoutMs() == TIMEOUT_MS,
                    "describeTransactions: timeout " + dt.transactionTimeoutMs() + " ms, the producer set " + TIMEOUT_MS);
            check(dt.transactionStartTimeMs().isPresent(), "describeTransactions: no start timestamp while Ongoing");
            long start = dt.transactionStartTimeMs().getAsLong();
            check(start >= before - 5000 && start <= after + 5000, "describeTransactions: start timestamp " + start
                    + " outside the transaction's first write [" + before + ", " + after + "] (±5 s)");
            check(dt.producerId() == pid, "describeTransactions: producer id " + dt.producerId() + ", listed " + pid);
            int epoch = dt.producerEpoch();
            check(dt.topicPartitions().equals(Set.of(p0, p2)),
                    "describeTransactions: partitions " + sorted(dt.topicPartitions()) + ", want exactly " + sorted(Set.of(p0, p2)));

            Map<TopicPartition, PartitionProducerState> open = producers(a, List.of(p0, p1, p2));
            for (TopicPartition tp : List.of(p0, p2)) {
                Optional<ProducerState> ps = find(open.get(tp), pid);
                check(ps.isPresent(), "describeProducers " + tp + ": producer " + pid + " not active (" + open.get(tp).activeProducers() + ")");
                check(ps.get().producerEpoch() == epoch, "describeProducers " + tp + ": epoch " + ps.get().producerEpoch()
                        + ", describeTransactions says " + epoch);
                check(startOffset(ps.get()) == 0, "describeProducers " + tp + ": current transaction start offset "
                        + startOffset(ps.get()) + ", want 0 (its first record)");
            }
            check(find(open.get(p1), pid).isEmpty(), "describeProducers " + p1 + ": producer " + pid + " listed on a partition it never wrote");

            // --- commit. EndTxn answers once the commit is decided; markers and the final state may
            // follow, so wait (bounded) for the coordinator to settle.
            prod.commitTransaction();
            long deadline = System.currentTimeMillis() + 10000;
            TransactionDescription done;
            while (true) {
                done = describe(a, tid);
                if (done.state() != TransactionState.PREPARE_COMMIT || System.currentTimeMillis() > deadline) break;
                Thread.sleep(100);
            }
            check(done.state() == TransactionState.COMPLETE_COMMIT || done.state() == TransactionState.EMPTY,
                    "describeTransactions after commit: state " + done.state() + ", want CompleteCommit or Empty");
            check(done.topicPartitions().isEmpty(), "describeTransactions after commit: partitions " + sorted(done.topicPartitions()) + ", want none");
            check(done.producerId() == pid, "describeTransactions after commit: producer id " + done.producerId() + ", want " + pid);
            TransactionListing lt2 = list(a, List.of(pid), null).get(tid);
            check(lt2 != null && lt2.state() == done.state(), "listTransactions after commit: " + tid + " -> " + lt2
                    + ", describeTransactions says " + done.state());
            check(!list(a, null, List.of(TransactionState.ONGOING)).containsKey(tid), "listTransactions(state Ongoing) still lists " + tid + " after the commit");

            Map<TopicPartition, PartitionProducerState> closed;
            while (true) {
                closed = producers(a, List.of(p0, p2));
                boolean settled = true;
                for (TopicPartition tp : List.of(p0, p2)) {
                    Optional<ProducerState> ps = find(closed.get(tp), pid);
                    if (ps.isPresent() && startOffset(ps.get()) != -1) settled = false;
                }
                if (settled || System.currentTimeMillis() > deadline) break;
                Thread.sleep(100);
            }
            for (TopicPartition tp : List.of(p0, p2)) {
                Optional<ProducerState> ps = find(closed.get(tp), pid);
                check(ps.isPresent(), "describeProducers " + tp + " after commit: producer " + pid + " gone (" + closed.get(tp).activeProducers() + ")");
                check(startOffset(ps.get()) == -1, "describeProducers " + tp + " after commit: current transaction start offset "
                        + startOffset(ps.get()) + ", want none (-1)");
            }

            // --- a transactional id nobody used
            String unknown = tid + "-never-used";
            String unknownErr;
            try {
                TransactionDescription u = describe(a, unknown);
                throw new JavaClient.Fail("describeTransactions(" + unknown + ") succeeded: " + u);
            } catch (ExecutionException e) {
                check(e.getCause() instanceof TransactionalIdNotFoundException, "describeTransactions(" + unknown + "): "
                        + e.getCause() + ", want TransactionalIdNotFoundException");
                unknownErr = e.getCause().getClass().getSimpleName();
            }
            return "open: listed Ongoing with producer id " + pid + " (state/producer-id filters honoured), described Ongoing timeout "
                    + dt.transactionTimeoutMs() + " ms start " + start + " epoch " + epoch + " partitions " + sorted(dt.topicPartitions())
                    + ", describeProducers start offset 0 on both, partition 1 without it; after commit: " + done.state()
                    + ", no partitions, start offset -1; unknown id -> " + unknownErr;
        }
    }

    private TxnAdminScenario() {}
}
