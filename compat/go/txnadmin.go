// txn_admin: the transaction admin APIs (ListTransactions, DescribeTransactions,
// DescribeProducers) through kadm, around one transaction writing to two partitions.
package main

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnAdminTimeout: a distinctive transaction.timeout.ms that DescribeTransactions must echo.
const txnAdminTimeout = 27000 * time.Millisecond

func listTxn(adm *kadm.Client, pids []int64, states []string) kadm.ListedTransactions {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	l, err := adm.ListTransactions(ctx, pids, states)
	must(err, fmt.Sprintf("ListTransactions(producers %v, states %v)", pids, states))
	return l
}

func describeTxn(adm *kadm.Client, tid string) kadm.DescribedTransaction {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	d, err := adm.DescribeTransactions(ctx, tid)
	must(err, "DescribeTransactions "+tid)
	t, ok := d[tid]
	check(ok, "DescribeTransactions(%s): no entry for it (got %v)", tid, d)
	return t
}

// describeProducers returns partition -> described partition of topic, for exactly the partitions asked.
func describeProducers(adm *kadm.Client, topic string, parts ...int32) map[int32]kadm.DescribedProducersPartition {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	var s kadm.TopicsSet
	s.Add(topic, parts...)
	d, err := adm.DescribeProducers(ctx, s)
	must(err, "DescribeProducers")
	out := map[int32]kadm.DescribedProducersPartition{}
	for _, p := range d[topic].Partitions {
		must(p.Err, fmt.Sprintf("DescribeProducers %s-%d", topic, p.Partition))
		out[p.Partition] = p
	}
	check(len(out) == len(parts), "DescribeProducers(%s %v) answered for partitions %v", topic, parts, keysOf(out))
	return out
}

func keysOf(m map[int32]kadm.DescribedProducersPartition) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func txnPartitions(t kadm.DescribedTransaction) string {
	var out []string
	for _, tp := range t.Topics.Sorted() {
		for _, p := range tp.Partitions {
			out = append(out, fmt.Sprintf("%s-%d", tp.Topic, p))
		}
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

func txnAdmin() string {
	topic := uniqueTopic("txn_admin")
	createTopic(topic, 3, nil)
	tid := uniqueGroup("txn_admin") + "-txn"
	acl := newClient()
	defer acl.Close()
	adm := kadm.NewClient(acl)

	cl := newTxnClient(tid, txnAdminTimeout, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	pctx, pcancel := ctxT(opTimeout)
	pid, epoch, err := cl.ProducerID(pctx)
	pcancel()
	must(err, "ProducerID (InitProducerId)")
	before := time.Now().UnixMilli()
	must(cl.BeginTransaction(), "BeginTransaction")
	// Partitions 0 and 2 only: the transaction must list exactly these two, not partition 1.
	recs := append(toRecords(topic, 0, kvs("p0", 3, 1)), toRecords(topic, 2, kvs("p2", 2, 1))...)
	must(produceTxn(cl, recs), "produce")
	after := time.Now().UnixMilli()

	// --- transaction open
	all := listTxn(adm, nil, nil)
	lt, ok := all[tid]
	check(ok, "ListTransactions: %s not listed while its transaction is open (%d listed)", tid, len(all))
	check(lt.State == "Ongoing", "ListTransactions: %s in state %q, want Ongoing", tid, lt.State)
	check(lt.ProducerID == pid, "ListTransactions: %s has producer id %d, the producer's is %d", tid, lt.ProducerID, pid)
	_, ok = listTxn(adm, nil, []string{"Ongoing"})[tid]
	check(ok, "ListTransactions(state Ongoing) does not list %s", tid)
	_, ok = listTxn(adm, nil, []string{"CompleteCommit"})[tid]
	check(!ok, "ListTransactions(state CompleteCommit) lists %s while it is Ongoing", tid)
	_, ok = listTxn(adm, []int64{pid}, nil)[tid]
	check(ok, "ListTransactions(producer id %d) does not list %s", pid, tid)
	_, ok = listTxn(adm, []int64{pid + 1000003}, nil)[tid]
	check(!ok, "ListTransactions(producer id %d) lists %s (producer id %d)", pid+1000003, tid, pid)

	dt := describeTxn(adm, tid)
	must(dt.Err, "DescribeTransactions "+tid)
	check(dt.State == "Ongoing", "DescribeTransactions: state %q, want Ongoing", dt.State)
	check(dt.TimeoutMillis == int32(txnAdminTimeout.Milliseconds()), "DescribeTransactions: timeout %d ms, the producer set %d",
		dt.TimeoutMillis, txnAdminTimeout.Milliseconds())
	check(dt.StartTimestamp >= before-5000 && dt.StartTimestamp <= after+5000,
		"DescribeTransactions: start timestamp %d outside the transaction's first write [%d, %d] (±5 s)", dt.StartTimestamp, before, after)
	check(dt.ProducerID == pid && dt.ProducerEpoch == epoch, "DescribeTransactions: producer %d/%d, the producer's is %d/%d",
		dt.ProducerID, dt.ProducerEpoch, pid, epoch)
	want := fmt.Sprint([]string{topic + "-0", topic + "-2"})
	check(txnPartitions(dt) == want, "DescribeTransactions: partitions %s, want exactly %s", txnPartitions(dt), want)

	open := describeProducers(adm, topic, 0, 1, 2)
	for _, p := range []int32{0, 2} {
		ap, ok := open[p].ActiveProducers[pid]
		check(ok, "DescribeProducers %s-%d: producer %d not active (active: %v)", topic, p, pid, open[p].ActiveProducers)
		check(ap.ProducerEpoch == epoch, "DescribeProducers %s-%d: epoch %d, want %d", topic, p, ap.ProducerEpoch, epoch)
		check(ap.CurrentTxnStartOffset == 0, "DescribeProducers %s-%d: current transaction start offset %d, want 0 (its first record)",
			topic, p, ap.CurrentTxnStartOffset)
	}
	_, ok = open[1].ActiveProducers[pid]
	check(!ok, "DescribeProducers %s-1: producer %d listed on a partition it never wrote", topic, pid)

	// --- commit. EndTxn answers once the commit is decided; the markers and the final
	// state may follow, so wait (bounded) for the coordinator to settle.
	must(endTxn(cl, kgo.TryCommit), "EndTransaction(commit)")
	var done kadm.DescribedTransaction
	deadline := time.Now().Add(10 * time.Second)
	for {
		done = describeTxn(adm, tid)
		must(done.Err, "DescribeTransactions after commit")
		if done.State != "PrepareCommit" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	check(done.State == "CompleteCommit" || done.State == "Empty", "DescribeTransactions after commit: state %q, want CompleteCommit or Empty", done.State)
	check(len(done.Topics) == 0, "DescribeTransactions after commit: partitions %s, want none", txnPartitions(done))
	check(done.ProducerID == pid, "DescribeTransactions after commit: producer id %d, want %d", done.ProducerID, pid)
	lt2, ok := listTxn(adm, []int64{pid}, nil)[tid]
	check(ok && lt2.State == done.State, "ListTransactions after commit: %s listed=%v state %q, DescribeTransactions says %q", tid, ok, lt2.State, done.State)
	_, ok = listTxn(adm, nil, []string{"Ongoing"})[tid]
	check(!ok, "ListTransactions(state Ongoing) still lists %s after the commit", tid)

	var closed map[int32]kadm.DescribedProducersPartition
	for {
		closed = describeProducers(adm, topic, 0, 2)
		settled := true
		for _, p := range []int32{0, 2} {
			if ap, ok := closed[p].ActiveProducers[pid]; ok && ap.CurrentTxnStartOffset != -1 {
				settled = false
			}
		}
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []int32{0, 2} {
		ap, ok := closed[p].ActiveProducers[pid]
		check(ok, "DescribeProducers %s-%d after commit: producer %d gone (active: %v)", topic, p, pid, closed[p].ActiveProducers)
		check(ap.CurrentTxnStartOffset == -1, "DescribeProducers %s-%d after commit: current transaction start offset %d, want -1",
			topic, p, ap.CurrentTxnStartOffset)
	}

	// --- a transactional id nobody used
	unknown := uniqueGroup("txn_admin") + "-never-used"
	ut := describeTxn(adm, unknown)
	check(errors.Is(ut.Err, kerr.TransactionalIDNotFound), "DescribeTransactions(%s): error %v, want TRANSACTIONAL_ID_NOT_FOUND", unknown, ut.Err)

	return fmt.Sprintf("open: listed Ongoing with producer id %d (state/producer-id filters honoured), described Ongoing timeout %d ms "+
		"start %d epoch %d partitions %s, DescribeProducers start offset 0 on both, partition 1 without it; after commit: %s, no partitions, "+
		"start offset -1; unknown id -> %v", pid, dt.TimeoutMillis, dt.StartTimestamp, epoch, txnPartitions(dt), done.State, ut.Err)
}
