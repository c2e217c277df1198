// Log-lifecycle scenarios (issue 5): config_alter, retention_reset, compacted_topic.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func sp(v string) *string { return &v }

func describeEntry(adm *kadm.Client, topic, key string) (string, kmsg.ConfigSource) {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	must(err, "DescribeTopicConfigs")
	check(len(rcs) == 1, "DescribeTopicConfigs returned %d resources", len(rcs))
	must(rcs[0].Err, "DescribeTopicConfigs")
	for _, c := range rcs[0].Configs {
		if c.Key == key {
			v := "<null>"
			if c.Value != nil {
				v = *c.Value
			}
			return v, c.Source
		}
	}
	return "<missing>", kmsg.ConfigSourceUnknown
}

// waitConfig polls DescribeConfigs: KRaft applies config changes asynchronously.
func waitConfig(adm *kadm.Client, topic, key, value string, source kmsg.ConfigSource) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, s := describeEntry(adm, topic, key)
		if v == value && s == source {
			return
		}
		check(time.Now().Before(deadline), "%s of %s described as %s %s, want %s %s", key, topic, v, s, value, source)
		time.Sleep(300 * time.Millisecond)
	}
}

func alterErr(rs kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func sendSize(cl *kgo.Client, topic string, key []byte, size int) (*kgo.Record, error) {
	ctx, cancel := ctxT(25 * time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: bytes.Repeat([]byte("v"), size)}).First()
}

// expectRefused retries: the limit may reach the partition a moment after DescribeConfigs shows it.
func expectRefused(cl *kgo.Client, topic string, size int, what string) {
	deadline := time.Now().Add(8 * time.Second)
	for {
		r, err := sendSize(cl, topic, nil, size)
		if err != nil {
			check(errors.Is(err, kerr.MessageTooLarge), "%s: %d-byte record: %v, want MESSAGE_TOO_LARGE", what, size, err)
			return
		}
		check(time.Now().Before(deadline), "%s: %d-byte record accepted at offset %d", what, size, r.Offset)
		time.Sleep(500 * time.Millisecond)
	}
}

func expectAccepted(cl *kgo.Client, topic string, size int, what string) {
	_, err := sendSize(cl, topic, nil, size)
	check(err == nil, "%s: %d-byte record refused: %v", what, size, err)
}

// expectAcceptedOnceRaised retries the size refusal: a raised limit, like a lowered one, may
// reach the partition's leader a moment after DescribeConfigs (answered by any broker of a
// cluster) shows it.
func expectAcceptedOnceRaised(cl *kgo.Client, topic string, size int, what string) {
	deadline := time.Now().Add(8 * time.Second)
	for {
		_, err := sendSize(cl, topic, nil, size)
		if !errors.Is(err, kerr.MessageTooLarge) || time.Now().After(deadline) {
			check(err == nil, "%s: %d-byte record refused: %v", what, size, err)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func configAlter() string {
	topic := uniqueTopic("config_alter")
	other := topic + "-nooverride"
	createTopic(topic, 1, nil)
	createTopic(other, 1, nil)
	cl := newClient(kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := ctxT(40 * time.Second)
	defer cancel()

	expectAccepted(cl, topic, 8000, "before alter")
	must(alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: sp("4096")}}, topic)),
		"AlterTopicConfigs max.message.bytes=4096")
	waitConfig(adm, topic, "max.message.bytes", "4096", kmsg.ConfigSourceDynamicTopicConfig)
	expectRefused(cl, topic, 8000, "max.message.bytes=4096")
	expectAccepted(cl, topic, 1000, "max.message.bytes=4096")

	for _, kv := range [][2]string{{"max.message.bytes", "-5"}, {"cleanup.policy", "banana"}} {
		err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: kv[0], Value: sp(kv[1])}}, topic))
		check(err != nil, "%s=%s accepted", kv[0], kv[1])
		check(errors.Is(err, kerr.InvalidConfig), "%s=%s: %v, want INVALID_CONFIG", kv[0], kv[1], err)
	}
	mmb, _ := describeEntry(adm, topic, "max.message.bytes")
	cp, _ := describeEntry(adm, topic, "cleanup.policy")
	check(mmb == "4096" && cp == "delete", "after refused alters: max.message.bytes=%s cleanup.policy=%s", mmb, cp)

	// The cluster-wide default (broker resource ""): a topic without override follows it.
	func() {
		defer func() {
			_ = alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "message.max.bytes"}}))
		}()
		must(alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.max.bytes", Value: sp("6000")}})),
			"AlterBrokerConfigs (cluster default) message.max.bytes=6000")
		waitConfig(adm, other, "max.message.bytes", "6000", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
		expectRefused(cl, other, 9000, "cluster default message.max.bytes=6000")
		expectAccepted(cl, other, 3000, "cluster default message.max.bytes=6000")
	}()
	waitConfig(adm, other, "max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
	expectAcceptedOnceRaised(cl, other, 9000, "cluster default deleted")
	return "topic max.message.bytes=4096 (DYNAMIC_TOPIC_CONFIG): 8000 B refused, 1000 B ok; -5 / banana -> INVALID_CONFIG; " +
		"cluster default message.max.bytes=6000 (DYNAMIC_DEFAULT_BROKER_CONFIG on a topic without override): 9000 B refused, " +
		"3000 B ok; deleted -> DEFAULT_CONFIG 1048588"
}

func watermarks(adm *kadm.Client, topic string) (int64, int64) {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	s, err := adm.ListStartOffsets(ctx, topic)
	must(err, "ListStartOffsets")
	e, err := adm.ListEndOffsets(ctx, topic)
	must(err, "ListEndOffsets")
	so, _ := s.Lookup(topic, 0)
	eo, _ := e.Lookup(topic, 0)
	must(so.Err, "ListStartOffsets")
	must(eo.Err, "ListEndOffsets")
	return so.Offset, eo.Offset
}

// firstRecord: a consumer assigned at offset 0 (below the log start) with this reset policy.
func firstRecord(topic string, reset kgo.Offset, what string) int64 {
	cl := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.ConsumeResetOffset(reset))
	defer cl.Close()
	ctx, cancel := ctxT(15 * time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, r := range fs.Records() {
			return r.Offset
		}
	}
	panic(failure{what + " consumer assigned at 0 read nothing in 15s"})
}

func retentionReset() string {
	topic := uniqueTopic("retention_reset")
	createTopic(topic, 1, map[string]*string{"segment.ms": sp("300"), "retention.ms": sp("2000")})
	adm0 := newClient()
	defer adm0.Close()
	adm := kadm.NewClient(adm0)
	p := newClient(kgo.ProducerLinger(5 * time.Millisecond))
	defer p.Close()
	group := fmt.Sprintf("compat-%s-retention-reset-group-%d", client, time.Now().UnixNano())
	member := newClient(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(time.Second))
	defer member.Close()

	var stop atomic.Bool
	var sent atomic.Int64
	var perr atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			n := sent.Add(1)
			p.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte("k"),
				Value: []byte(fmt.Sprintf("r-%d%s", n, bytes.Repeat([]byte("x"), 200)))},
				func(_ *kgo.Record, err error) {
					if err != nil {
						perr.Store(err)
					}
				})
			time.Sleep(20 * time.Millisecond)
		}
		ctx, cancel := ctxT(10 * time.Second)
		defer cancel()
		_ = p.Flush(ctx)
	}()
	stopped := false
	stopProducer := func() {
		if !stopped {
			stopped = true
			stop.Store(true)
			wg.Wait()
		}
	}
	defer stopProducer()

	var offs []int64
	pollMember := func(d time.Duration) {
		ctx, cancel := ctxT(d)
		defer cancel()
		for _, r := range member.PollFetches(ctx).Records() {
			offs = append(offs, r.Offset)
		}
	}
	var lows []int64
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(lows) < 3 {
		pollMember(500 * time.Millisecond)
		lo, _ := watermarks(adm, topic)
		if lo > 0 && (len(lows) == 0 || lo > lows[len(lows)-1]) {
			lows = append(lows, lo)
		}
	}
	check(len(lows) >= 3, "log start offset did not advance 3 times while producing (segment.ms=300, retention.ms=2000) "+
		"within 20s: low watermarks seen %v, %d records sent", lows, sent.Load())
	if e, ok := perr.Load().(error); ok {
		panic(failure{fmt.Sprintf("produce error: %v", e)})
	}
	lowBefore, _ := watermarks(adm, topic)
	early := firstRecord(topic, kgo.NewOffset().AtStart(), "earliest")
	lowAfter, _ := watermarks(adm, topic)
	check(lowBefore <= early && early <= lowAfter && early > 0,
		"earliest reset from 0: first offset %d, want the log start (between %d and %d)", early, lowBefore, lowAfter)
	_, hwBefore := watermarks(adm, topic)
	late := firstRecord(topic, kgo.NewOffset().AtEnd(), "latest")
	_, hwAfter := watermarks(adm, topic)
	check(hwBefore <= late && late <= hwAfter, "latest reset from 0: first offset %d, want the end (between %d and %d; log start then %d)",
		late, hwBefore, hwAfter, lowAfter)
	stopProducer()

	_, hw := watermarks(adm, topic)
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (len(offs) == 0 || offs[len(offs)-1] < hw-1) {
		pollMember(200 * time.Millisecond)
	}
	check(len(offs) > 0 && offs[len(offs)-1] == hw-1, "group member read %d records, end offset %d", len(offs), hw)
	for i := 1; i < len(offs); i++ {
		check(offs[i-1] < offs[i], "group member's offsets not strictly increasing at %d", i)
	}

	// DeleteRecords moves the low watermark to the requested offset.
	dtopic := topic + "-delete"
	createTopic(dtopic, 1, nil)
	recs := makeRecords(20, 0, false, 0)
	for _, r := range recs {
		r.Topic = dtopic
		r.Partition = 0
	}
	produceAll(p, recs)
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: dtopic, Partition: 0, At: 7})
	dr, err := adm.DeleteRecords(ctx, os)
	must(err, "DeleteRecords")
	d, ok := dr.Lookup(dtopic, 0)
	check(ok, "DeleteRecords: no response for partition 0")
	must(d.Err, "DeleteRecords")
	check(d.LowWatermark == 7, "DeleteRecords(7): low watermark %d", d.LowWatermark)
	lo, hi := watermarks(adm, dtopic)
	check(lo == 7 && hi == 20, "after DeleteRecords(7): watermarks (%d, %d), want (7, 20)", lo, hi)
	first := firstRecord(dtopic, kgo.NewOffset().AtStart(), "earliest")
	check(first == 7, "earliest consumer after DeleteRecords(7) starts at %d", first)
	return fmt.Sprintf("log start advanced %v while producing; from 0: earliest -> %d (log start %d..%d), latest -> %d (end %d..%d); "+
		"group member read %d records in order to the end; DeleteRecords(7) -> low watermark 7, earliest consumer starts at 7",
		lows, early, lowBefore, lowAfter, late, hwBefore, hwAfter, len(offs))
}

type lkv struct {
	offset int64
	key    []byte
	value  []byte
}

func readFromStart(adm *kadm.Client, topic string) []lkv {
	_, end := watermarks(adm, topic)
	cl := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	defer cl.Close()
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	var out []lkv
	for {
		fs := cl.PollFetches(ctx)
		check(ctx.Err() == nil, "did not reach the end offset %d within 10s", end)
		for _, r := range fs.Records() {
			out = append(out, lkv{r.Offset, r.Key, r.Value})
			if r.Offset >= end-1 {
				return out
			}
		}
	}
}

func compactedTopic() string {
	topic := uniqueTopic("compacted_topic")
	createTopic(topic, 1, map[string]*string{"cleanup.policy": sp("compact"), "segment.ms": sp("100"),
		"min.cleanable.dirty.ratio": sp("0.01"), "delete.retention.ms": sp("100")})
	cl := newClient(kgo.ProducerLinger(5*time.Millisecond), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	delivered := map[string]int64{}
	last := map[string]string{}
	var recs []*kgo.Record
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("key-%d", i%5)
		v := fmt.Sprintf("%s-update-%d", k, i)
		last[k] = v
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)})
	}
	recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("key-4"), Value: nil})
	produceAll(cl, recs)
	for _, r := range recs[:200] {
		delivered[string(r.Value)] = r.Offset
	}
	// A record without a key is refused by a compacted topic.
	_, kerrv := sendSize(cl, topic, nil, 10)
	check(kerrv != nil, "keyless record accepted on a compacted topic")
	check(errors.Is(kerrv, kerr.InvalidRecord), "keyless record: %v, want INVALID_RECORD (87)", kerrv)

	// The cleaner never touches the active segment: keep rolling it (segment.ms=100).
	var seen []lkv
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := sendSize(cl, topic, []byte("roll"), 10)
		must(err, "roll record")
		seen = readFromStart(adm, topic)
		counts := map[string]int{}
		ok := true
		for _, r := range seen {
			counts[string(r.key)]++
			if string(r.key) == "key-4" && r.value != nil {
				ok = false
			}
		}
		for i := 0; i < 4; i++ {
			ok = ok && counts[fmt.Sprintf("key-%d", i)] <= 2
		}
		if ok {
			break
		}
		check(time.Now().Before(deadline), "not compacted within 30s: %d records remain, per key %v", len(seen), counts)
		time.Sleep(time.Second)
	}
	tomb := false
	for i, r := range seen {
		check(i == 0 || seen[i-1].offset < r.offset, "offsets not strictly increasing at %d", r.offset)
		if string(r.key) == "key-4" {
			tomb = true
		}
		if string(r.key) == "roll" || r.value == nil {
			continue
		}
		want, ok := delivered[string(r.value)]
		check(ok && want == r.offset, "record %s at offset %d, produced at %d", r.value, r.offset, want)
	}
	for i := 0; i < 4; i++ {
		k := fmt.Sprintf("key-%d", i)
		lastSeen := ""
		for _, r := range seen {
			if string(r.key) == k {
				lastSeen = string(r.value)
			}
		}
		check(lastSeen == last[k], "key %s: last value read %q, last produced %q", k, lastSeen, last[k])
	}
	state := "gone entirely"
	if tomb {
		state = "tombstone only"
	}
	return fmt.Sprintf("201 records over 5 keys + tombstone; keyless -> %v; compacted to %d records (key-0..3 keep their last "+
		"value at the original offset, key-4 %s), offsets increasing", kerrv, len(seen), state)
}
