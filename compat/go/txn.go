// Transaction scenarios (issue 4): same checks as the Python programs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnTimeout: a transaction abandoned by its producer is aborted by the broker after this.
const txnTimeout = 5 * time.Second

type kv struct{ key, value string }

func kvs(prefix string, n, nkeys int) []kv {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	out := make([]kv, n)
	for i := range out {
		out[i] = kv{fmt.Sprintf("key-%d", i%nkeys), fmt.Sprintf("%s-%s-%d", prefix, hex.EncodeToString(b), i)}
	}
	return out
}

func toRecords(topic string, partition int32, in []kv) []*kgo.Record {
	out := make([]*kgo.Record, len(in))
	for i, r := range in {
		out[i] = &kgo.Record{Topic: topic, Partition: partition, Key: []byte(r.key), Value: []byte(r.value)}
	}
	return out
}

// newTxnClient: transactional clients are always idempotent.
func newTxnClient(tid string, timeout time.Duration, opts ...kgo.Opt) *kgo.Client {
	base := append(baseOpts(), kgo.TransactionalID(tid), kgo.TransactionTimeout(timeout))
	cl, err := kgo.NewClient(append(base, opts...)...)
	must(err, "kgo.NewClient (transactional)")
	return cl
}

func endTxn(cl *kgo.Client, commit kgo.TransactionEndTry) error {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	return cl.EndTransaction(ctx, commit)
}

func produceTxn(cl *kgo.Client, recs []*kgo.Record) error {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// readIsolated reads every partition from offset 0 until `expected` records arrived, then `quiet` more.
func readIsolated(topic string, committed bool, expected int, quiet time.Duration) map[int32][]got {
	adm := newClient()
	defer adm.Close()
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	tds, err := kadm.NewClient(adm).ListTopics(ctx, topic)
	must(err, "ListTopics")
	offsets := map[int32]kgo.Offset{}
	out := map[int32][]got{}
	for p := range tds[topic].Partitions {
		offsets[p] = kgo.NewOffset().At(0)
		out[p] = nil
	}
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	cl := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchIsolationLevel(level))
	defer cl.Close()
	n := 0
	end := time.Now().Add(20 * time.Second)
	quietSet := false
	for time.Now().Before(end) {
		pctx, pcancel := ctxT(200 * time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				panic(failure{fmt.Sprintf("fetch error partition %d: %v", fe.Partition, fe.Err)})
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], got{offset: r.Offset, key: r.Key, value: r.Value})
			n++
		})
		if n >= expected && !quietSet {
			quietSet = true
			end = time.Now().Add(quiet)
		}
	}
	return out
}

// checkExact: got holds exactly `expected` once each (nothing aborted, no control marker), in produce order per partition.
func checkExact(expected []kv, gotp map[int32][]got, what string) int {
	index := map[string]int{}
	for i, r := range expected {
		index[r.value] = i
	}
	seen := map[int]bool{}
	parts := make([]int, 0, len(gotp))
	for p := range gotp {
		parts = append(parts, int(p))
	}
	sort.Ints(parts)
	for _, p := range parts {
		last := -1
		for _, r := range gotp[int32(p)] {
			i, ok := index[string(r.value)]
			check(ok, "%s: partition %d offset %d: unexpected record %q (aborted, foreign or a control marker)", what, p, r.offset, r.value)
			check(!seen[i], "%s: partition %d offset %d: record %d read twice", what, p, r.offset, i)
			seen[i] = true
			check(string(r.key) == expected[i].key, "%s: record %d: key differs", what, i)
			check(i > last, "%s: partition %d: record %d read after record %d", what, p, i, last)
			last = i
		}
	}
	check(len(seen) == len(expected), "%s: read %d of the %d expected records", what, len(seen), len(expected))
	return len(seen)
}

func endOffsets(topic string, committed bool) map[int32]int64 {
	adm := newClient()
	defer adm.Close()
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	var lo kadm.ListedOffsets
	var err error
	if committed {
		lo, err = kadm.NewClient(adm).ListCommittedOffsets(ctx, topic) // the last stable offsets
	} else {
		lo, err = kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	}
	must(err, "ListOffsets")
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		must(o.Err, "ListOffsets partition")
		out[o.Partition] = o.Offset
	})
	return out
}

func txnCommitAbort() string {
	topic := uniqueTopic("txn_commit_abort")
	createTopic(topic, 3, nil)
	recs := kvs("value", 90, 9)
	txns := [][]kv{recs[:30], recs[30:60], recs[60:]}
	cl := newTxnClient(uniqueGroup("txn_commit_abort")+"-txn", 30*time.Second)
	defer cl.Close()
	for t, batch := range txns {
		must(cl.BeginTransaction(), "BeginTransaction")
		// ProduceSync: the records (also the aborted ones) really are in the log before the end.
		must(produceTxn(cl, toRecords(topic, -1, batch)), "produce")
		must(endTxn(cl, t != 1), "EndTransaction")
	}
	committed := append(append([]kv{}, txns[0]...), txns[2]...)
	checkExact(committed, readIsolated(topic, true, len(committed), 1500*time.Millisecond), "read_committed")
	all := readIsolated(topic, false, len(recs), 1500*time.Millisecond)
	checkExact(recs, all, "read_uncommitted")
	// Each transaction leaves one control marker in every partition it wrote to.
	markers := 0
	for _, t := range txns {
		vals := map[string]bool{}
		for _, r := range t {
			vals[r.value] = true
		}
		for _, l := range all {
			for _, g := range l {
				if vals[string(g.value)] {
					markers++
					break
				}
			}
		}
	}
	high := endOffsets(topic, false)
	var sum int64
	for _, o := range high {
		sum += o
	}
	check(sum == int64(len(recs)+markers), "high watermarks %v sum to %d, want 90 records + %d markers", high, sum, markers)
	return fmt.Sprintf("commit 30 / abort 30 / commit 30 over 3 partitions: read_committed saw exactly the 60 committed in order, "+
		"read_uncommitted all 90, no marker surfaced; high watermarks %v = 90 records + %d markers", high, markers)
}

func txnConsumeTransformProduce() string {
	const n = 60
	src, dst := uniqueTopic("ctp-in"), uniqueTopic("ctp-out")
	group := uniqueGroup("txn_ctp")
	createTopic(src, 3, nil)
	createTopic(dst, 3, nil)
	recs := kvs("value", n, 12)
	plain := newClient()
	produceAll(plain, toRecords(src, -1, recs))
	plain.Close()
	ends := endOffsets(src, false)
	opts := append(baseOpts(), kgo.TransactionalID(group+"-txn"), kgo.TransactionTimeout(30*time.Second),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(src), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(sessionTimeout),
		kgo.HeartbeatInterval(time.Second), kgo.DefaultProduceTopic(dst))
	sess, err := kgo.NewGroupTransactSession(opts...)
	must(err, "NewGroupTransactSession")
	defer sess.Close()
	aborted, batches := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	done := func() bool {
		co := sess.Client().CommittedOffsets()[src]
		for p, e := range ends {
			if co[p].Offset != e {
				return false
			}
		}
		return true
	}
	for !done() {
		check(time.Now().Before(deadline), "input not consumed within 30s (committed %v, ends %v)", sess.Client().CommittedOffsets()[src], ends)
		pctx, pcancel := ctxT(300 * time.Millisecond)
		fs := sess.PollRecords(pctx, 8)
		pcancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				panic(failure{fmt.Sprintf("fetch error partition %d: %v", fe.Partition, fe.Err)})
			}
		}
		var out []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...)})
		})
		if len(out) == 0 {
			continue
		}
		must(sess.Begin(), "Begin")
		ctx, cancel := ctxT(opTimeout)
		must(sess.ProduceSync(ctx, out...).FirstErr(), "produce")
		cancel()
		ectx, ecancel := ctxT(opTimeout)
		if batches == 1 && aborted == 0 {
			// Abort this attempt midway: the session rewinds to the committed offsets, so the batch is reprocessed.
			_, err := sess.End(ectx, kgo.TryAbort)
			ecancel()
			must(err, "End(TryAbort)")
			aborted = len(out)
			continue
		}
		committed, err := sess.End(ectx, kgo.TryCommit)
		ecancel()
		must(err, "End(TryCommit)")
		check(committed, "End(TryCommit) did not commit (a rebalance?)")
		batches++
	}
	adm := newClient()
	defer adm.Close()
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	fo, err := kadm.NewClient(adm).FetchOffsets(ctx, group)
	must(err, "FetchOffsets")
	committed := map[int32]int64{}
	fo.Each(func(o kadm.OffsetResponse) { committed[o.Partition] = o.At })
	check(aborted > 0, "no aborted attempt happened")
	check(fmt.Sprint(committed) == fmt.Sprint(ends), "group committed offsets %v != input end offsets %v", committed, ends)
	want := make([]kv, n)
	for i, r := range recs {
		want[i] = kv{r.key, "out-" + r.value}
	}
	checkExact(want, readIsolated(dst, true, n, 1500*time.Millisecond), "output read_committed")
	totalU := 0
	for _, l := range readIsolated(dst, false, n+aborted, 1500*time.Millisecond) {
		totalU += len(l)
	}
	check(totalU == n+aborted, "output read_uncommitted has %d records, want %d + %d aborted", totalU, n, aborted)
	return fmt.Sprintf("%d input records -> %d committed transactions (GroupTransactSession; +1 aborted attempt of %d records, "+
		"reprocessed); output read_committed has each exactly once in order; group committed %v = input ends", n, batches, aborted, committed)
}

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

func txnFencing() string {
	topic := uniqueTopic("txn_fencing")
	createTopic(topic, 1, nil)
	manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
	// (a) a producer abandoned inside its transaction (never used again until the end):
	// the LSO stays at its first record until the broker aborts it after the timeout.
	abandoned := newTxnClient(uniqueGroup("abandon"), txnTimeout, manual)
	must(abandoned.BeginTransaction(), "BeginTransaction")
	must(produceTxn(abandoned, toRecords(topic, 0, kvs("abandoned", 10, 1))), "produce (abandoned)")
	started := time.Now()
	later := kvs("later", 5, 5)
	plain := newClient(manual)
	produceAll(plain, toRecords(topic, 0, later))
	plain.Close()
	lsoOpen := endOffsets(topic, true)[0]
	check(lsoOpen == 0, "last stable offset %d while the abandoned transaction (offsets 0-9) is open, want 0", lsoOpen)
	c := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var read []got
	var firstAt time.Time
	end := started.Add(txnTimeout + 15*time.Second)
	quietSet := false
	for time.Now().Before(end) {
		pctx, pcancel := ctxT(200 * time.Millisecond)
		fs := c.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			if firstAt.IsZero() {
				firstAt = time.Now()
			}
			read = append(read, got{offset: r.Offset, key: r.Key, value: r.Value})
		})
		if len(read) >= 5 && !quietSet {
			quietSet = true
			end = time.Now().Add(time.Second)
		}
	}
	c.Close()
	checkExact(later, map[int32][]got{0: read}, "read_committed after the abandoned transaction")
	blocked := firstAt.Sub(started).Seconds()
	check(!firstAt.IsZero() && blocked >= 1.0, "read_committed consumer got records %.1fs after the abandon: the open transaction did not block it", blocked)
	lsoEnd := endOffsets(topic, true)[0]
	check(lsoEnd == 16, "last stable offset %d after the timeout abort, want 16 (10 aborted + marker + 5)", lsoEnd)
	abandoned.Close()
	// (b) a new producer with the same transactional.id fences the live old one.
	tid := uniqueGroup("fence")
	old := newTxnClient(tid, 30*time.Second, manual)
	defer old.Close()
	must(old.BeginTransaction(), "BeginTransaction (old)")
	must(produceTxn(old, toRecords(topic, 0, kvs("old", 1, 1))), "produce (old)")
	nw := newTxnClient(tid, 30*time.Second, manual)
	newRecs := kvs("new", 3, 1)
	must(nw.BeginTransaction(), "BeginTransaction (new)")
	must(produceTxn(nw, toRecords(topic, 0, newRecs)), "produce (new)")
	must(endTxn(nw, kgo.TryCommit), "EndTransaction (new)")
	nw.Close()
	perr := produceTxn(old, toRecords(topic, 0, kvs("old2", 1, 1)))
	eerr := endTxn(old, kgo.TryCommit)
	check(perr != nil || eerr != nil, "the fenced producer committed")
	check(isFenced(perr) || isFenced(eerr), "fenced producer failed with produce: %v / end: %v, not a fenced error", perr, eerr)
	checkExact(append(append([]kv{}, later...), newRecs...), readIsolated(topic, true, 8, 1500*time.Millisecond), "read_committed after the fencing")
	return fmt.Sprintf("(a) abandoned producer's open transaction held the LSO at 0; read_committed got the 5 later records %.1fs "+
		"after the abandon, none of the 10 abandoned; LSO then %d; (b) new producer fenced the old one (produce: %v; end: %v), "+
		"its 3 records committed, the old one's never visible", blocked, lsoEnd, perr, eerr)
}
