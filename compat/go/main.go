// Arus conformance scenarios driven through franz-go (kgo + kadm).
//
// Usage: franzgo --bootstrap HOST:PORT --scenarios a,b,c
// Prints one JSON line per scenario.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const client = "franzgo"

var (
	bootstrap       string
	scenarioTimeout = 45 * time.Second
	opTimeout       = 15 * time.Second
)

type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

type notApplicable struct{ msg string }

func (n notApplicable) Error() string { return n.msg }

func check(cond bool, format string, a ...any) {
	if !cond {
		panic(failure{fmt.Sprintf(format, a...)})
	}
}

func must(err error, what string) {
	if err != nil {
		panic(failure{fmt.Sprintf("%s: %v", what, err)})
	}
}

func uniqueTopic(scenario string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return fmt.Sprintf("compat-%s-%s-%s", client, strings.ReplaceAll(scenario, "_", "-"), hex.EncodeToString(b))
}

func baseTimestamp() int64 { return (time.Now().Unix() - 3600) * 1000 }

func makeRecords(n, nkeys int, headers bool, valuePad int) []*kgo.Record {
	ts0 := baseTimestamp()
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	out := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		k := i
		if nkeys > 0 {
			k = i % nkeys
		}
		r := &kgo.Record{
			Key:       []byte(fmt.Sprintf("key-%d", k)),
			Value:     []byte(fmt.Sprintf("value-%x-%d-%s", tag, i, strings.Repeat("x", valuePad))),
			Timestamp: time.UnixMilli(ts0 + int64(i)*7),
		}
		if headers {
			// nil Value is encoded as a null header value (length -1).
			r.Headers = []kgo.RecordHeader{{Key: "h-index", Value: []byte(strconv.Itoa(i))}, {Key: "h-null", Value: nil}}
		}
		out = append(out, r)
	}
	return out
}

// idempotence: run.py sets COMPAT_IDEMPOTENCE=1 when the broker advertises
// InitProducerId; franz-go then keeps its default (idempotent writes), else
// newClient disables them.
var idempotence = os.Getenv("COMPAT_IDEMPOTENCE") == "1"

func newClient(opts ...kgo.Opt) *kgo.Client {
	base := baseOpts()
	if !idempotence {
		base = append(base, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	must(err, "kgo.NewClient")
	return cl
}

func baseOpts() []kgo.Opt {
	return []kgo.Opt{
		// --bootstrap may list several brokers (compat/run.py --cluster N): host:port,host:port
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.DialTimeout(5 * time.Second),
		kgo.RequestRetries(3),
		kgo.RetryTimeout(15 * time.Second),
		// No RecordDeliveryTimeout: franz-go measures it from the record's
		// Timestamp, and the scenarios use explicit timestamps an hour old.
		// ProduceSync's context bounds delivery instead.
		kgo.ProducerLinger(20 * time.Millisecond),
		kgo.AllowAutoTopicCreation(),
	}
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func createTopic(topic string, partitions int32, configs map[string]*string) {
	cl := newClient()
	defer cl.Close()
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	must(err, "CreateTopic "+topic)
	must(resp.Err, "CreateTopic "+topic)
	waitTopicEverywhere(ctx, cl, adm, topic, partitions)
}

// waitTopicEverywhere waits (up to 10 s) until every broker lists the topic with a leader on
// each partition in its own Metadata. Brokers replay a created topic asynchronously, so on a
// cluster (compat/run.py --cluster N) a client asking another broker right after CreateTopics
// may still hear UNKNOWN_TOPIC_OR_PARTITION (Kafka's own test utilities wait the same way).
func waitTopicEverywhere(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, partitions int32) {
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) < 2 {
		return
	}
	known := func(id int32) bool {
		req := kmsg.NewPtrMetadataRequest()
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || int32(len(resp.Topics[0].Partitions)) != partitions {
			return false
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, b := range brokers {
			if !known(b.NodeID) {
				all = false
				break
			}
		}
		if all {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func produceAll(cl *kgo.Client, recs []*kgo.Record) {
	ctx, cancel := ctxT(25 * time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, recs...)
	for i, r := range res {
		if r.Err != nil {
			panic(failure{fmt.Sprintf("record %d not delivered: %v", i, r.Err)})
		}
	}
}

type got struct {
	offset    int64
	key       []byte
	value     []byte
	headers   []kgo.RecordHeader
	timestamp int64
}

func readAll(topic string, expected int, timeout time.Duration) map[int32][]got {
	adm := newClient()
	defer adm.Close()
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	tds, err := kadm.NewClient(adm).ListTopics(ctx, topic)
	must(err, "ListTopics")
	td := tds[topic]
	must(td.Err, "ListTopics "+topic)
	offsets := map[int32]kgo.Offset{}
	out := map[int32][]got{}
	for p := range td.Partitions {
		offsets[p] = kgo.NewOffset().At(0)
		out[p] = nil
	}
	check(len(offsets) > 0, "no partitions for %s", topic)
	cl := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	defer cl.Close()
	n := 0
	deadline := time.Now().Add(timeout)
	for n < expected && time.Now().Before(deadline) {
		pctx, pcancel := ctxT(time.Until(deadline))
		fs := cl.PollFetches(pctx)
		pcancel()
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			panic(failure{fmt.Sprintf("fetch error partition %d: %v", fe.Partition, fe.Err)})
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], got{r.Offset, r.Key, r.Value, r.Headers, r.Timestamp.UnixMilli()})
			n++
		})
	}
	check(n >= expected, "read only %d of %d records within %s", n, expected, timeout)
	ctx2, cancel2 := ctxT(opTimeout)
	defer cancel2()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx2, topic)
	must(err, "ListEndOffsets")
	var high int64
	ends.Each(func(o kadm.ListedOffset) { high += o.Offset })
	check(high == int64(n), "end offsets sum to %d but %d records read", high, n)
	return out
}

func hdrString(hs []kgo.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		v := "null"
		if h.Value != nil {
			v = strconv.Quote(string(h.Value))
		}
		parts[i] = h.Key + "=" + v
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// compare applies the same checks as python/common.py compare().
func compare(sent []*kgo.Record, gotp map[int32][]got, checkHeaders, keyPartition bool) string {
	total := 0
	for _, g := range gotp {
		total += len(g)
	}
	check(total == len(sent), "read %d records, sent %d", total, len(sent))
	index := map[string]int{}
	for i, r := range sent {
		index[string(r.Value)] = i
	}
	seen := map[int]bool{}
	keyParts := map[string]int32{}
	parts := make([]int, 0, len(gotp))
	for p := range gotp {
		parts = append(parts, int(p))
	}
	sort.Ints(parts)
	nonEmpty := 0
	for _, pi := range parts {
		p := int32(pi)
		last := -1
		if len(gotp[p]) > 0 {
			nonEmpty++
		}
		for n, r := range gotp[p] {
			check(r.offset == int64(n), "partition %d: offset %d at position %d (not contiguous from 0)", p, r.offset, n)
			i, ok := index[string(r.value)]
			check(ok, "partition %d offset %d: unexpected value", p, r.offset)
			check(!seen[i], "record %d read twice", i)
			seen[i] = true
			s := sent[i]
			check(bytes.Equal(r.key, s.Key), "record %d: key %q != sent %q", i, r.key, s.Key)
			if checkHeaders {
				check(hdrString(r.headers) == hdrString(s.Headers), "record %d: headers %s != sent %s", i, hdrString(r.headers), hdrString(s.Headers))
			}
			check(r.timestamp == s.Timestamp.UnixMilli(), "record %d: timestamp %d != sent %d", i, r.timestamp, s.Timestamp.UnixMilli())
			check(i > last, "partition %d: record %d read after record %d (produce order broken)", p, i, last)
			last = i
			if keyPartition {
				if prev, ok := keyParts[string(s.Key)]; ok {
					check(prev == p, "key %s found in partitions %d and %d", s.Key, prev, p)
				}
				keyParts[string(s.Key)] = p
			}
		}
	}
	return fmt.Sprintf("%d records over %d partitions verified", total, nonEmpty)
}

func clone(recs []*kgo.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		c := *r
		out[i] = &c
	}
	return out
}

// ------------------------------------------------------------- scenarios

func roundtrip() string {
	topic := uniqueTopic("roundtrip")
	createTopic(topic, 3, nil)
	recs := makeRecords(50, 0, true, 0)
	toSend := clone(recs)
	for i, r := range toSend {
		r.Topic = topic
		r.Partition = int32(i % 3)
	}
	cl := newClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceAll(cl, toSend)
	cl.Close()
	g := readAll(topic, len(recs), 20*time.Second)
	for p, l := range g {
		check(len(l) > 0, "partition %d got no records", p)
	}
	return compare(recs, g, true, false)
}

func keyOrder() string {
	topic := uniqueTopic("key_order")
	createTopic(topic, 4, nil)
	recs := makeRecords(200, 5, false, 0)
	toSend := clone(recs)
	for _, r := range toSend {
		r.Topic = topic
	}
	// One produce request in flight keeps the order without idempotence; franz-go
	// refuses the option with idempotent writes, which keep the order anyway.
	var opts []kgo.Opt
	if !idempotence {
		opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(1))
	}
	cl := newClient(opts...)
	produceAll(cl, toSend)
	cl.Close()
	return compare(recs, readAll(topic, len(recs), 20*time.Second), false, true)
}

func compression(name string, codec kgo.CompressionCodec) func() string {
	return func() string {
		topic := uniqueTopic("compression_" + name)
		createTopic(topic, 1, nil)
		recs := makeRecords(100, 0, true, 100)
		toSend := clone(recs)
		for _, r := range toSend {
			r.Topic = topic
		}
		cl := newClient(kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(50*time.Millisecond))
		produceAll(cl, toSend)
		cl.Close()
		return compare(recs, readAll(topic, len(recs), 20*time.Second), true, false) + " (compression=" + name + ")"
	}
}

func acks(name string, a kgo.Acks) func() string {
	return func() string {
		topic := uniqueTopic("acks_" + name)
		createTopic(topic, 1, nil)
		recs := makeRecords(100, 0, true, 0)
		toSend := clone(recs)
		for _, r := range toSend {
			r.Topic = topic
		}
		opts := []kgo.Opt{kgo.RequiredAcks(a)}
		if name != "all" {
			// franz-go: "idempotency requires acks=all" (Java likewise drops it for acks 0/1).
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl := newClient(opts...)
		produceAll(cl, toSend)
		cl.Close()
		wait := 20 * time.Second
		if name == "0" {
			wait = 25 * time.Second
		}
		return compare(recs, readAll(topic, len(recs), wait), true, false) + " (acks=" + name + ")"
	}
}

func listOffsetsTime() string {
	topic := uniqueTopic("list_offsets_time")
	createTopic(topic, 1, nil)
	t0 := baseTimestamp()
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)),
			Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: time.UnixMilli(t0 + 1000*int64(i))})
	}
	cl := newClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	produceAll(cl, recs)
	adm := kadm.NewClient(cl)
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	const what = "kadm list offsets"
	one := func(lo kadm.ListedOffsets, err error) int64 {
		must(err, what)
		o, ok := lo.Lookup(topic, 0)
		check(ok, "%s: partition 0 missing", what)
		must(o.Err, what)
		return o.Offset
	}
	gotAt := one(adm.ListOffsetsAfterMilli(ctx, t0+3500))
	start := one(adm.ListStartOffsets(ctx, topic))
	end := one(adm.ListEndOffsets(ctx, topic))
	// kadm maps "no offset after this time" to the end offset, so check the
	// protocol answer (-1) with a raw ListOffsets request as well.
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.Timestamp = t0 + 9001
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	must(err, "ListOffsets(after last)")
	check(len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1, "ListOffsets response shape %+v", resp)
	rpp := resp.Topics[0].Partitions[0]
	must(kerr.ErrorForCode(rpp.ErrorCode), "ListOffsets(after last)")
	after := rpp.Offset
	afterKadm := one(adm.ListOffsetsAfterMilli(ctx, t0+9001))
	got := fmt.Sprintf("ts(T0+3500)=%d ts(after last)=%d (kadm: %d) earliest=%d latest=%d", gotAt, after, afterKadm, start, end)
	check(gotAt == 4 && after == -1 && afterKadm == 10 && start == 0 && end == 10,
		"got %s, want ts(T0+3500)=4 ts(after last)=-1 (kadm: 10) earliest=0 latest=10", got)
	return "offsets " + got
}

func configValue(rcs kadm.ResourceConfigs, err error, key string) string {
	must(err, "DescribeTopicConfigs")
	check(len(rcs) == 1, "DescribeTopicConfigs returned %d resources", len(rcs))
	must(rcs[0].Err, "DescribeTopicConfigs")
	for _, c := range rcs[0].Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value
		}
	}
	return "<missing>"
}

func topicAdmin() string {
	topic := uniqueTopic("topic_admin")
	cl := newClient()
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := ctxT(40 * time.Second)
	defer cancel()
	s := func(v string) *string { return &v }
	resp, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": s("3600000"), "cleanup.policy": s("delete")}, topic)
	must(err, "CreateTopic")
	must(resp.Err, "CreateTopic")

	tds, err := adm.ListTopics(ctx, topic)
	must(err, "ListTopics")
	td := tds[topic]
	must(td.Err, "ListTopics")
	check(len(td.Partitions) == 2, "described %d partitions, want 2", len(td.Partitions))
	// Leaders: any registered broker (one node, or a cluster of several: compat/run.py --cluster N).
	brokers, err := adm.ListBrokers(ctx)
	must(err, "ListBrokers")
	ids := map[int32]bool{}
	for _, b := range brokers {
		ids[b.NodeID] = true
	}
	for p, pd := range td.Partitions {
		check(ids[pd.Leader], "partition %d leader %d, want one of the brokers %v", p, pd.Leader, ids)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	check(configValue(rcs, err, "retention.ms") == "3600000", "retention.ms described as %s", configValue(rcs, err, "retention.ms"))
	check(configValue(rcs, err, "cleanup.policy") == "delete", "cleanup.policy described as %s", configValue(rcs, err, "cleanup.policy"))

	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: s("7200000")}}, topic)
	must(err, "AlterTopicConfigs (incremental)")
	for _, r := range ar {
		must(r.Err, "AlterTopicConfigs (incremental)")
	}
	// Kafka (KRaft) applies the change asynchronously: give it a few seconds to show.
	v := ""
	for i := 0; i < 20 && v != "7200000"; i++ {
		if i > 0 {
			time.Sleep(250 * time.Millisecond)
		}
		rcs, err = adm.DescribeTopicConfigs(ctx, topic)
		v = configValue(rcs, err, "retention.ms")
	}
	check(v == "7200000", "after incremental alter retention.ms = %s", v)

	pr, err := adm.UpdatePartitions(ctx, 4, topic)
	must(err, "UpdatePartitions")
	for _, r := range pr {
		must(r.Err, "UpdatePartitions")
	}
	// Brokers apply the new partitions asynchronously: in a cluster the listing may reach a broker
	// that has not replayed them yet (and kadm answers from the client's metadata cache, refreshed
	// at most every MetadataMinAge, 5 s by default), so wait until every broker lists them and
	// re-list for up to 10 s.
	waitTopicEverywhere(ctx, cl, adm, topic, 4)
	for i := 0; i < 40; i++ {
		if i > 0 {
			time.Sleep(250 * time.Millisecond)
		}
		tds, err = adm.ListTopics(ctx, topic)
		must(err, "ListTopics")
		if len(tds[topic].Partitions) == 4 {
			break
		}
	}
	check(len(tds[topic].Partitions) == 4, "after UpdatePartitions(4): %d partitions", len(tds[topic].Partitions))

	again, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = again.Err
	}
	check(errors.Is(err, kerr.TopicAlreadyExists), "create again: %v, want TOPIC_ALREADY_EXISTS", err)

	// One replica more than there are brokers.
	tooMany := int16(len(brokers) + 1)
	rf3, err := adm.CreateTopic(ctx, 1, tooMany, nil, topic+"-rf3")
	if err == nil {
		err = rf3.Err
	}
	check(errors.Is(err, kerr.InvalidReplicationFactor), "rf=%d on %d brokers: %v, want INVALID_REPLICATION_FACTOR", tooMany, len(brokers), err)

	dr, err := adm.DeleteTopics(ctx, topic)
	must(err, "DeleteTopics")
	for _, r := range dr {
		must(r.Err, "DeleteTopics")
	}
	gone := false
	for i := 0; i < 20 && !gone; i++ {
		all, err := adm.ListTopics(ctx)
		must(err, "ListTopics")
		gone = !all.Has(topic)
		if !gone {
			time.Sleep(500 * time.Millisecond)
		}
	}
	check(gone, "topic still listed after delete")
	return "create/describe/configs/incremental-alter/partitions/errors/delete ok"
}

func messageTooLarge() string {
	topic := uniqueTopic("message_too_large")
	createTopic(topic, 1, map[string]*string{"max.message.bytes": func(v string) *string { return &v }("2048")})
	cl := newClient(kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	defer cl.Close()
	ctx, cancel := ctxT(25 * time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte("x"), 4000)})
	err := res.FirstErr()
	check(err != nil, "4000-byte record accepted (max.message.bytes=2048)")
	var ke *kerr.Error
	check(errors.As(err, &ke) && ke.Code == 10, "4000-byte record: %v, want MESSAGE_TOO_LARGE (10)", err)
	r, err2 := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte("y"), 500)}).First()
	must(err2, "500-byte record")
	return fmt.Sprintf("4000 B -> %s (code %d); 500 B -> offset %d", ke.Message, ke.Code, r.Offset)
}

var scenarios = map[string]func() string{
	"roundtrip":                     roundtrip,
	"key_order":                     keyOrder,
	"compression_gzip":              compression("gzip", kgo.GzipCompression()),
	"compression_snappy":            compression("snappy", kgo.SnappyCompression()),
	"compression_lz4":               compression("lz4", kgo.Lz4Compression()),
	"compression_zstd":              compression("zstd", kgo.ZstdCompression()),
	"acks_0":                        acks("0", kgo.NoAck()),
	"acks_1":                        acks("1", kgo.LeaderAck()),
	"acks_all":                      acks("all", kgo.AllISRAcks()),
	"list_offsets_time":             listOffsetsTime,
	"topic_admin":                   topicAdmin,
	"message_too_large":             messageTooLarge,
	"group_split":                   groupSplit,
	"group_member_leaves":           groupMemberLeaves,
	"two_groups":                    twoGroups,
	"commit_resume":                 commitResume,
	"cooperative_sticky":            cooperativeSticky,
	"static_member":                 staticMember,
	"offsets_admin":                 offsetsAdmin,
	"kip848_group":                  kip848Group,
	"txn_commit_abort":              txnCommitAbort,
	"txn_consume_transform_produce": txnConsumeTransformProduce,
	"txn_fencing":                   txnFencing,
	"txn_admin":                     txnAdmin,
	"config_alter":                  configAlter,
	"retention_reset":               retentionReset,
	"compacted_topic":               compactedTopic,
}

var order = []string{"roundtrip", "key_order", "compression_gzip", "compression_snappy", "compression_lz4",
	"compression_zstd", "acks_0", "acks_1", "acks_all", "list_offsets_time", "topic_admin", "message_too_large",
	"group_split", "group_member_leaves", "two_groups", "commit_resume", "cooperative_sticky", "static_member", "offsets_admin", "kip848_group",
	"txn_commit_abort", "txn_consume_transform_produce", "txn_fencing", "txn_admin",
	"config_alter", "retention_reset", "compacted_topic"}

func emit(scenario, status, detail string) {
	b, _ := json.Marshal(map[string]string{"scenario": scenario, "status": status, "detail": detail})
	fmt.Println(string(b))
}

func run(fn func() string) (status, detail string) {
	done := make(chan [2]string, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				switch e := r.(type) {
				case failure:
					done <- [2]string{"fail", e.msg}
				case notApplicable:
					done <- [2]string{"n/a", e.msg}
				default:
					done <- [2]string{"fail", fmt.Sprintf("panic: %v", r)}
				}
			}
		}()
		d := fn()
		done <- [2]string{"pass", d}
	}()
	select {
	case r := <-done:
		return r[0], r[1]
	case <-time.After(scenarioTimeout):
		return "fail", fmt.Sprintf("timed out after %s", scenarioTimeout)
	}
}

func main() {
	flag.StringVar(&bootstrap, "bootstrap", "", "broker host:port")
	list := flag.String("scenarios", strings.Join(order, ","), "comma-separated scenarios")
	flag.Parse()
	if bootstrap == "" {
		fmt.Fprintln(os.Stderr, "--bootstrap required")
		os.Exit(2)
	}
	if s := os.Getenv("COMPAT_SCENARIO_TIMEOUT"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			scenarioTimeout = time.Duration(n) * time.Second
		}
	}
	for _, name := range strings.Split(*list, ",") {
		if name == "" {
			continue
		}
		fn, ok := scenarios[name]
		if !ok {
			emit(name, "fail", "unknown scenario")
			continue
		}
		status, detail := run(fn)
		emit(name, status, detail)
	}
	os.Exit(0)
}
