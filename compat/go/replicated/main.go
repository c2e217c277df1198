// franz-go side of compat/replicated.py: runs one scenario's client steps, asks the orchestrator
// for each fault (`FAULT x` on stdout, the answer on stdin) and ends with `RESULT <json>`.
// Arguments: SCENARIO BOOTSTRAP TOPIC TOPIC2 GROUP TXN_ID N (see replicated.py).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	bootstrap, topic, topic2, group, txnID string
	n                                      int
	stdin                                  = bufio.NewReader(os.Stdin)
)

func fault(what string) {
	fmt.Println("FAULT " + what)
	answer, _ := stdin.ReadString('\n')
	if !strings.HasPrefix(answer, "OK") {
		fmt.Fprintf(os.Stderr, "fault %s refused: %s\n", what, answer)
		os.Exit(1)
	}
}

func client(opts ...kgo.Opt) *kgo.Client {
	// The manual partitioner: every record goes to the partition it names.
	base := []kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		panic(err)
	}
	return cl
}

type rec struct {
	partition int32
	key       string
	value     string
}

// send produces the records (each to its partition; the manual partitioner) and returns the errors.
func send(cl *kgo.Client, t string, recs []rec) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for _, r := range recs {
		kr := &kgo.Record{Topic: t, Partition: r.partition, Value: []byte(r.value)}
		if r.key != "" {
			kr.Key = []byte(r.key)
		}
		rs = append(rs, kr)
	}
	errors := []string{}
	for _, res := range cl.ProduceSync(ctx, rs...) {
		if res.Err != nil {
			errors = append(errors, fmt.Sprintf("%s: %v", res.Record.Value, res.Err))
		}
	}
	return errors
}

// read consumes partitions 0..parts-1 of t from the start, no group.
func read(t string, parts int, count int, committed bool) []rec {
	offsets := map[int32]kgo.Offset{}
	for i := 0; i < parts; i++ {
		offsets[int32(i)] = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: offsets})}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := client(opts...)
	defer cl.Close()
	out := []rec{}
	deadline := time.Now().Add(30 * time.Second)
	var extra time.Time
	for time.Now().Before(deadline) && (extra.IsZero() || time.Now().Before(extra)) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, rec{r.Partition, string(r.Key), string(r.Value)}) })
		// Keep polling a moment after the last expected record: a duplicate would show here.
		if len(out) >= count && extra.IsZero() {
			extra = time.Now().Add(1500 * time.Millisecond)
		}
	}
	return out
}

func values(rs []rec) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.value)
	}
	return out
}

func replicatedFailover() any {
	// Idempotent by default (acks=all, unlimited retries).
	p := client(kgo.ProducerLinger(5*time.Millisecond), kgo.RecordDeliveryTimeout(90*time.Second))
	var first, second []rec
	for i := 0; i < 2*n; i++ {
		r := rec{int32(i % 3), fmt.Sprintf("k%d", i%6), fmt.Sprintf("v%d", i)}
		if i < n {
			first = append(first, r)
		} else {
			second = append(second, r)
		}
	}
	errors := send(p, topic, first)
	fault("kill-leader")
	errors = append(errors, send(p, topic, second)...)
	p.Close()
	fault("restart")
	consumed := [][]any{}
	for _, r := range read(topic, 3, 2*n, false) {
		consumed = append(consumed, []any{r.partition, r.key, r.value})
	}
	return map[string]any{"send_errors": errors, "consumed": consumed}
}

func minIsr() any {
	// No retries (and so no idempotence, which franz-go ties to retries), so the broker's answer
	// reaches the application as it is.
	p := client(kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second))
	defer p.Close()
	steps := map[string][]string{}
	plan := []struct {
		name  string
		count int
		fault string
	}{{"a", 5, ""}, {"b", 5, "kill-follower"}, {"c", 1, "kill-follower"}, {"d", 5, "restart"}}
	for _, s := range plan {
		if s.fault != "" {
			fault(s.fault)
		}
		var recs []rec
		for i := 0; i < s.count; i++ {
			recs = append(recs, rec{0, "", fmt.Sprintf("%s%d", s.name, i)})
		}
		steps[s.name] = send(p, topic, recs)
	}
	return map[string]any{"steps": steps, "consumed": values(read(topic, 1, 15, false))}
}

func take(cl *kgo.Client, count int, errors *[]string) []string {
	got := []string{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < count && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollRecords(ctx, count-len(got))
		cancel()
		fs.EachError(func(t string, p int32, err error) {
			if err != context.DeadlineExceeded {
				*errors = append(*errors, fmt.Sprintf("poll %s-%d: %v", t, p, err))
			}
		})
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func coordinatorFailover() any {
	errors := []string{}
	p := client()
	var recs []rec
	for i := 0; i < 20; i++ {
		recs = append(recs, rec{0, "", fmt.Sprintf("g%d", i)})
	}
	errors = append(errors, send(p, topic, recs)...)
	p.Close()
	member := func() *kgo.Client {
		return client(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	c1 := member()
	first := take(c1, 10, &errors)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	offsets := map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 10}}}
	c1.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errors = append(errors, fmt.Sprintf("commit: %v", err))
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					errors = append(errors, fmt.Sprintf("commit %s-%d: %v", t.Topic, p.Partition, e))
				}
			}
		}
	})
	cancel()
	c1.Close()
	fault("kill-group-coordinator")
	c2 := member()
	second := take(c2, 10, &errors)
	c2.Close()
	fault("restart")
	t := client(kgo.TransactionalID(txnID), kgo.TransactionTimeout(30*time.Second))
	for start := 0; start < 10; start += 5 {
		if start == 5 {
			fault("kill-txn-coordinator")
		}
		err := func() error {
			if err := t.BeginTransaction(); err != nil {
				return err
			}
			var rs []rec
			for i := start; i < start+5; i++ {
				rs = append(rs, rec{0, "", fmt.Sprintf("t%d", i)})
			}
			if es := send(t, topic2, rs); len(es) > 0 {
				return fmt.Errorf("%v", es)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			return t.EndTransaction(ctx, kgo.TryCommit)
		}()
		if err != nil {
			errors = append(errors, fmt.Sprintf("transaction t%d..: %v", start, err))
		}
	}
	t.Close()
	fault("restart")
	return map[string]any{"errors": errors, "group_first": first, "group_second": second,
		"txn_consumed": values(read(topic2, 1, 10, true))}
}

func main() {
	a := os.Args[1:]
	bootstrap, topic, topic2, group, txnID = a[1], a[2], a[3], a[4], a[5]
	n, _ = strconv.Atoi(a[6])
	var result any
	switch a[0] {
	case "replicated_failover":
		result = replicatedFailover()
	case "min_isr":
		result = minIsr()
	case "coordinator_failover":
		result = coordinatorFailover()
	default:
		panic("unknown scenario " + a[0])
	}
	b, _ := json.Marshal(result)
	fmt.Println("RESULT " + string(b))
}
