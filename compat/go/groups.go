// Consumer-group scenarios (issue 3): same checks as the Python programs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	sessionTimeout       = 10 * time.Second
	staticSessionTimeout = 30 * time.Second
)

func uniqueGroup(scenario string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return fmt.Sprintf("compat-%s-%s-group-%s", client, strings.ReplaceAll(scenario, "_", "-"), hex.EncodeToString(b))
}

// member is one group member: a kgo client polling in its own goroutine.
type member struct {
	cl      *kgo.Client
	mu      sync.Mutex
	got     map[int32][]got
	owned   map[int32]bool
	events  []string
	revoked []int32
	err     error
	cancel  context.CancelFunc
	done    chan struct{}
	closed  bool
}

func newMember(group, topic string, opts ...kgo.Opt) *member {
	return newMemberC(group, topic, false, opts...)
}

// newMemberC: with commitEach, rebalances are blocked while a polled batch is
// processed (kgo.BlockRebalanceOnPoll) and the batch is committed before the
// next poll, so a partition never moves with read-but-uncommitted records.
func newMemberC(group, topic string, commitEach bool, opts ...kgo.Opt) *member {
	m := &member{got: map[int32][]got{}, owned: map[int32]bool{}, done: make(chan struct{})}
	parts := func(ps map[string][]int32) []int32 {
		out := append([]int32(nil), ps[topic]...)
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	base := []kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(sessionTimeout), kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.events = append(m.events, fmt.Sprintf("assign%v", parts(a)))
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.events = append(m.events, fmt.Sprintf("revoke%v", parts(r)))
			for _, p := range r[topic] {
				delete(m.owned, p)
				m.revoked = append(m.revoked, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.events = append(m.events, fmt.Sprintf("lost%v", parts(l)))
			for _, p := range l[topic] {
				delete(m.owned, p)
			}
		}),
	}
	if commitEach {
		base = append(base, kgo.BlockRebalanceOnPoll())
	}
	m.cl = newClient(append(base, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		if commitEach {
			// Close (LeaveGroup) must not wait for a rebalance this loop blocks.
			defer m.cl.AllowRebalance()
		}
		for ctx.Err() == nil {
			fs := m.cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			for _, fe := range fs.Errors() {
				if errors.Is(fe.Err, context.Canceled) {
					return
				}
				m.mu.Lock()
				m.err = fmt.Errorf("fetch error partition %d: %w", fe.Partition, fe.Err)
				m.mu.Unlock()
			}
			m.mu.Lock()
			n := 0
			fs.EachRecord(func(r *kgo.Record) {
				m.got[r.Partition] = append(m.got[r.Partition], got{r.Offset, r.Key, r.Value, r.Headers, r.Timestamp.UnixMilli()})
				n++
			})
			m.mu.Unlock()
			if commitEach {
				if n > 0 {
					if err := m.cl.CommitUncommittedOffsets(ctx); err != nil && !errors.Is(err, context.Canceled) {
						m.mu.Lock()
						m.err = fmt.Errorf("commit: %w", err)
						m.mu.Unlock()
					}
				}
				m.cl.AllowRebalance()
			}
		}
	}()
	return m
}

func (m *member) parts() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		panic(failure{"consumer: " + m.err.Error()})
	}
	out := []int32{}
	for p := range m.owned {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, g := range m.got {
		n += len(g)
	}
	return n
}

func (m *member) snapshot() map[int32][]got {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32][]got{}
	for p, g := range m.got {
		out[p] = append([]got(nil), g...)
	}
	return out
}

func (m *member) eventList() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.events...)
}

// close stops polling and closes the client: a dynamic member leaves the
// group; a member with an instance ID does not (franz-go sends no LeaveGroup).
func (m *member) close() {
	if m.closed {
		return
	}
	m.closed = true
	m.cancel()
	<-m.done
	m.cl.Close()
}

func closeAll(ms ...*member) {
	for _, m := range ms {
		if m != nil {
			func() {
				defer func() { _ = recover() }()
				m.close()
			}()
		}
	}
}

func waitFor(ms []*member, cond func() bool, timeout time.Duration, what string) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, m := range ms {
			m.parts()
		}
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	var as []string
	var ns []int
	for _, m := range ms {
		as = append(as, fmt.Sprint(m.parts()))
		ns = append(ns, m.count())
	}
	panic(failure{fmt.Sprintf("%s not reached within %s (assignments %v, read %v)", what, timeout, as, ns)})
}

func mergeMembers(ms []*member) map[int32][]got {
	out := map[int32][]got{}
	owner := map[int32]int{}
	for i, m := range ms {
		for p, g := range m.snapshot() {
			if len(g) == 0 {
				continue
			}
			o, dup := owner[p]
			check(!dup, "partition %d read by members %d and %d", p, o, i)
			owner[p] = i
			out[p] = g
		}
	}
	return out
}

// checkOnly: gotp holds exactly the records of sent, each once (any offsets).
func checkOnly(sent []*kgo.Record, gotp map[int32][]got, what string) {
	values := map[string]bool{}
	for _, r := range sent {
		values[string(r.Value)] = true
	}
	seen := map[string]bool{}
	for p, g := range gotp {
		for _, r := range g {
			check(values[string(r.value)], "%s: partition %d offset %d: record not in the expected set", what, p, r.offset)
			check(!seen[string(r.value)], "%s: partition %d offset %d read twice", what, p, r.offset)
			seen[string(r.value)] = true
		}
	}
	check(len(seen) == len(values), "%s: read %d of %d expected records", what, len(seen), len(values))
}

func produceTo(topic string, recs []*kgo.Record) {
	cl := newClient(kgo.DefaultProduceTopic(topic))
	defer cl.Close()
	produceAll(cl, recs)
}

func ints(ps ...int32) []int32 { return ps }

func groupSplit() string {
	topic, group := uniqueTopic("group_split"), uniqueGroup("group_split")
	createTopic(topic, 6, nil)
	ms := []*member{newMember(group, topic), newMember(group, topic), newMember(group, topic)}
	defer closeAll(ms...)
	waitFor(ms, func() bool {
		for _, m := range ms {
			if len(m.parts()) != 2 {
				return false
			}
		}
		return true
	}, 30*time.Second, "3 members x 2 partitions")
	recs := makeRecords(600, 60, false, 0)
	produceTo(topic, clone(recs))
	waitFor(ms, func() bool { return ms[0].count()+ms[1].count()+ms[2].count() >= 600 }, 20*time.Second, "600 records read")
	time.Sleep(time.Second)
	var all []int32
	var split [][]int32
	for _, m := range ms {
		split = append(split, m.parts())
		all = append(all, m.parts()...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	check(reflect.DeepEqual(all, ints(0, 1, 2, 3, 4, 5)), "assignments %v do not cover 0..5 once", split)
	d := compare(recs, mergeMembers(ms), false, true)
	return fmt.Sprintf("%s; read by 3 members [%d %d %d] (assignments %v, default cooperative-sticky balancer)",
		d, ms[0].count(), ms[1].count(), ms[2].count(), split)
}

func groupMemberLeaves() string {
	topic, group := uniqueTopic("group_member_leaves"), uniqueGroup("group_member_leaves")
	createTopic(topic, 4, nil)
	a, b := newMember(group, topic), newMember(group, topic)
	defer closeAll(a, b)
	waitFor([]*member{a, b}, func() bool { return len(a.parts()) == 2 && len(b.parts()) == 2 }, 30*time.Second, "2 members x 2 partitions")
	bParts := b.parts()
	first := makeRecords(100, 20, false, 0)
	produceTo(topic, clone(first))
	waitFor([]*member{a, b}, func() bool { return a.count()+b.count() >= 100 }, 20*time.Second, "first 100 records read")
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	must(a.cl.CommitUncommittedOffsets(ctx), "commit (a)")
	must(b.cl.CommitUncommittedOffsets(ctx), "commit (b)")
	b.close() // leaves the group
	waitFor([]*member{a}, func() bool { return reflect.DeepEqual(a.parts(), ints(0, 1, 2, 3)) }, 20*time.Second, "survivor owns all 4 partitions")
	before := map[int32]int{}
	for p, g := range a.snapshot() {
		before[p] = len(g)
	}
	n0 := a.count()
	second := makeRecords(100, 20, false, 0)
	produceTo(topic, clone(second))
	waitFor([]*member{a}, func() bool { return a.count()-n0 >= 100 }, 20*time.Second, "second 100 records read by the survivor")
	time.Sleep(time.Second)
	after := map[int32][]got{}
	for p, g := range a.snapshot() {
		after[p] = g[before[p]:]
	}
	checkOnly(second, after, "survivor after the leave")
	moved := 0
	for _, p := range bParts {
		moved += len(after[p])
	}
	check(moved > 0, "no post-leave record came from the leaver's partitions %v", bParts)
	return fmt.Sprintf("member left; its partitions %v moved to the survivor, which read all 100 later records (%d from moved partitions), none twice", bParts, moved)
}

func twoGroups() string {
	topic := uniqueTopic("two_groups")
	createTopic(topic, 3, nil)
	recs := makeRecords(150, 30, false, 0)
	produceTo(topic, clone(recs))
	g1, g2 := newMember(uniqueGroup("two_groups"), topic), newMember(uniqueGroup("two_groups"), topic)
	defer closeAll(g1, g2)
	waitFor([]*member{g1, g2}, func() bool { return g1.count() >= 150 && g2.count() >= 150 }, 30*time.Second, "each group read 150 records")
	time.Sleep(time.Second)
	return "group 1: " + compare(recs, g1.snapshot(), false, true) + "; group 2: " + compare(recs, g2.snapshot(), false, true)
}

func commitResume() string {
	topic, group := uniqueTopic("commit_resume"), uniqueGroup("commit_resume")
	createTopic(topic, 3, nil)
	recs := makeRecords(200, 30, false, 0)
	first, second := recs[:100], recs[100:]
	produceTo(topic, clone(first))
	m1 := newMember(group, topic)
	committed := map[int32]int64{}
	func() {
		defer closeAll(m1)
		waitFor([]*member{m1}, func() bool { return m1.count() >= 100 }, 30*time.Second, "first half read")
		time.Sleep(500 * time.Millisecond)
		got1 := m1.snapshot()
		checkOnly(first, got1, "first member")
		ctx, cancel := ctxT(opTimeout)
		defer cancel()
		must(m1.cl.CommitUncommittedOffsets(ctx), "CommitUncommittedOffsets")
		adm := kadm.NewClient(m1.cl)
		fo, err := adm.FetchOffsets(ctx, group)
		must(err, "FetchOffsets")
		fo.Each(func(o kadm.OffsetResponse) { committed[o.Partition] = o.At })
		want := map[int32]int64{}
		for p := int32(0); p < 3; p++ {
			if len(got1[p]) > 0 {
				want[p] = int64(len(got1[p]))
			}
		}
		check(reflect.DeepEqual(committed, want), "committed %v, want %v", committed, want)
	}()
	produceTo(topic, clone(second))
	m2 := newMember(group, topic)
	defer closeAll(m2)
	waitFor([]*member{m2}, func() bool { return m2.count() >= 100 }, 30*time.Second, "second half read")
	time.Sleep(time.Second)
	got2 := m2.snapshot()
	checkOnly(second, got2, "new member")
	for p, g := range got2 {
		if len(g) > 0 {
			check(g[0].offset == committed[p], "new member started partition %d at %d, committed %d", p, g[0].offset, committed[p])
		}
	}
	return fmt.Sprintf("committed %v after 100 records; new member resumed there and read exactly the other 100", committed)
}

func cooperativeSticky() string {
	topic, group := uniqueTopic("cooperative_sticky"), uniqueGroup("cooperative_sticky")
	createTopic(topic, 6, nil)
	bal := kgo.Balancers(kgo.CooperativeStickyBalancer())
	a := newMember(group, topic, bal)
	var b *member
	defer func() { closeAll(a, b) }()
	waitFor([]*member{a}, func() bool { return reflect.DeepEqual(a.parts(), ints(0, 1, 2, 3, 4, 5)) }, 30*time.Second, "first member owns all 6 partitions")
	b = newMember(group, topic, bal)
	waitFor([]*member{a, b}, func() bool { return len(a.parts()) == 3 && len(b.parts()) == 3 }, 30*time.Second, "3 + 3 partitions")
	time.Sleep(time.Second)
	a.mu.Lock()
	revoked := append([]int32(nil), a.revoked...)
	a.mu.Unlock()
	sort.Slice(revoked, func(i, j int) bool { return revoked[i] < revoked[j] })
	check(reflect.DeepEqual(revoked, b.parts()), "first member revoked %v, but only the moved partitions %v may be revoked (events %v)",
		revoked, b.parts(), a.eventList())
	return fmt.Sprintf("first member kept %v (never revoked), revoked only %v which moved to the second (events %v)", a.parts(), revoked, a.eventList())
}

func describeGroup(adm *kadm.Client, group string) kadm.DescribedGroup {
	ctx, cancel := ctxT(opTimeout)
	defer cancel()
	ds, err := adm.DescribeGroups(ctx, group)
	must(err, "DescribeGroups")
	d := ds[group]
	must(d.Err, "DescribeGroups "+group)
	return d
}

func staticMember() string {
	topic, group := uniqueTopic("static_member"), uniqueGroup("static_member")
	createTopic(topic, 4, nil)
	st := kgo.SessionTimeout(staticSessionTimeout)
	// b joins first and leads the group; a (restarted below) is a follower:
	// franz-go deliberately forces a rebalance when a static *leader* restarts
	// (see kgo.InstanceID), which is not the case checked here.
	b := newMember(group, topic, kgo.InstanceID("static-b"), st)
	var a, a2 *member
	defer func() { closeAll(a, b, a2) }()
	waitFor([]*member{b}, func() bool { return len(b.parts()) == 4 }, 30*time.Second, "first static member owns 4 partitions")
	a = newMember(group, topic, kgo.InstanceID("static-a"), st)
	admCl := newClient()
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	waitFor([]*member{a, b}, func() bool { return len(a.parts()) == 2 && len(b.parts()) == 2 }, 30*time.Second, "2 static members x 2 partitions")
	time.Sleep(time.Second)
	aParts, bEvents := a.parts(), b.eventList()
	_, gen := b.cl.GroupMetadata()
	check(len(describeGroup(adm, group).Members) == 2, "describe: not 2 members before the restart")
	a.close() // instance ID: no LeaveGroup
	time.Sleep(time.Second)
	a2 = newMember(group, topic, kgo.InstanceID("static-a"), st)
	waitFor([]*member{a2, b}, func() bool { return len(a2.parts()) == 2 }, 20*time.Second, "restarted static member assigned")
	time.Sleep(2 * time.Second)
	check(reflect.DeepEqual(a2.parts(), aParts), "restarted member got %v, had %v", a2.parts(), aParts)
	check(reflect.DeepEqual(b.eventList(), bEvents), "the other member saw a rebalance: %v", b.eventList()[len(bEvents):])
	_, gen2 := b.cl.GroupMetadata()
	_, genA := a2.cl.GroupMetadata()
	check(gen2 == gen && genA == gen, "generation %d -> %d (restarted member sees %d)", gen, gen2, genA)
	d := describeGroup(adm, group)
	check(d.State == "Stable", "group state %s", d.State)
	var inst []string
	for _, m := range d.Members {
		if m.InstanceID != nil {
			inst = append(inst, *m.InstanceID)
		}
	}
	sort.Strings(inst)
	check(reflect.DeepEqual(inst, []string{"static-a", "static-b"}), "describe: instances %v", inst)
	return fmt.Sprintf("restarted static member (a follower) got %v back; generation stayed %d; no rebalance seen by the other member; described %s with %v",
		aParts, gen, d.State, inst)
}

func offsetsAdmin() string {
	topic, group := uniqueTopic("offsets_admin"), uniqueGroup("offsets_admin")
	createTopic(topic, 3, nil)
	recs := makeRecords(30, 0, false, 0)
	for i, r := range recs {
		r.Partition = int32(i % 3)
	}
	pcl := newClient(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceAll(pcl, clone(recs))
	pcl.Close()
	admCl := newClient()
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ctx, cancel := ctxT(40 * time.Second)
	defer cancel()
	at := func(o int64) kadm.Offsets {
		os := kadm.Offsets{}
		for p := int32(0); p < 3; p++ {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
		}
		return os
	}
	m := newMember(group, topic)
	func() {
		defer closeAll(m)
		waitFor([]*member{m}, func() bool { return m.count() >= 30 }, 30*time.Second, "30 records read")
		four := map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 4}, 1: {Epoch: -1, Offset: 4}, 2: {Epoch: -1, Offset: 4}}}
		var commitErr error
		m.cl.CommitOffsetsSync(ctx, four, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			if err == nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if e := kerr.ErrorForCode(p.ErrorCode); e != nil && commitErr == nil {
							commitErr = e
						}
					}
				}
			}
		})
		must(commitErr, "CommitOffsetsSync")
		lg, err := adm.ListGroups(ctx)
		must(err, "ListGroups")
		_, listed := lg[group]
		check(listed, "ListGroups does not show %s", group)
		d := describeGroup(adm, group)
		check(d.State == "Stable" && len(d.Members) == 1, "describe: %s with %d members", d.State, len(d.Members))
		ca, ok := d.Members[0].Assigned.AsConsumer()
		check(ok, "describe: member assignment is not a consumer assignment")
		var mp []int32
		for _, t := range ca.Topics {
			if t.Topic == topic {
				mp = append(mp, t.Partitions...)
			}
		}
		sort.Slice(mp, func(i, j int) bool { return mp[i] < mp[j] })
		check(reflect.DeepEqual(mp, ints(0, 1, 2)), "describe: member assignment %v", mp)
	}()
	committed := func() map[int32]int64 {
		fo, err := adm.FetchOffsets(ctx, group)
		must(err, "FetchOffsets")
		out := map[int32]int64{}
		fo.Each(func(o kadm.OffsetResponse) {
			must(o.Err, "FetchOffsets")
			if o.Topic == topic {
				out[o.Partition] = o.At
			}
		})
		return out
	}
	c := committed()
	ends, err := adm.ListEndOffsets(ctx, topic)
	must(err, "ListEndOffsets")
	lag := map[int32]int64{}
	for p, o := range c {
		e, _ := ends.Lookup(topic, p)
		lag[p] = e.Offset - o
	}
	check(reflect.DeepEqual(c, map[int32]int64{0: 4, 1: 4, 2: 4}), "committed %v, want 4 each", c)
	check(reflect.DeepEqual(lag, map[int32]int64{0: 6, 1: 6, 2: 6}), "lag %v, want 6 each", lag)
	// kadm's own lag calculation must agree.
	lags, err := adm.Lag(ctx, group)
	must(err, "Lag")
	kl := lags[group]
	must(kl.Error(), "Lag")
	check(kl.Lag.Total() == 18, "kadm Lag total %d, want 18", kl.Lag.Total())
	check(describeGroup(adm, group).State == "Empty", "group not Empty after its member closed")
	cr, err := adm.CommitOffsets(ctx, group, at(7))
	must(err, "CommitOffsets")
	must(cr.Error(), "CommitOffsets")
	c2 := committed()
	check(reflect.DeepEqual(c2, map[int32]int64{0: 7, 1: 7, 2: 7}), "after CommitOffsets: committed %v, want 7 each", c2)
	m2 := newMember(group, topic)
	defer closeAll(m2)
	waitFor([]*member{m2}, func() bool { return m2.count() >= 9 }, 30*time.Second, "9 records after the reset")
	time.Sleep(time.Second)
	starts := map[int32]int64{}
	for p, g := range m2.snapshot() {
		starts[p] = g[0].offset
	}
	check(reflect.DeepEqual(starts, map[int32]int64{0: 7, 1: 7, 2: 7}) && m2.count() == 9, "after reset read from %v, %d records", starts, m2.count())
	return "committed 4/partition, end 10 -> lag 6 each (FetchOffsets, ListEndOffsets; kadm Lag total 18); ListGroups + " +
		"DescribeGroups (1 member, 3 partitions, then Empty); CommitOffsets -> 7; new member read offsets 7..9 of each partition"
}

// kip848Group: KIP-848 (kgo.ServerSideBalancer): 3 members split 6 partitions,
// one leaves, a fourth joins; every member commits after each poll, and the
// union of everything read is every record exactly once.
func kip848Group() string {
	topic, group := uniqueTopic("kip848_group"), uniqueGroup("kip848_group")
	createTopic(topic, 6, nil)
	all := makeRecords(360, 36, false, 0)
	mk := func() *member { return newMemberC(group, topic, true, kgo.ServerSideBalancer()) }
	a, b, c := mk(), mk(), mk()
	var d *member
	defer func() { closeAll(a, b, c, d) }()
	total := func(ms ...*member) int {
		n := 0
		for _, m := range ms {
			if m != nil {
				n += m.count()
			}
		}
		return n
	}
	produceTo(topic, clone(all[:120]))
	waitFor([]*member{a, b, c}, func() bool {
		return len(a.parts()) == 2 && len(b.parts()) == 2 && len(c.parts()) == 2 && total(a, b, c) >= 120
	}, 30*time.Second, "3 members x 2 partitions, 120 records read")
	split3 := fmt.Sprint(a.parts(), b.parts(), c.parts())
	c.close() // leaves the group
	waitFor([]*member{a, b}, func() bool { return len(a.parts()) == 3 && len(b.parts()) == 3 },
		30*time.Second, "2 members x 3 partitions")
	produceTo(topic, clone(all[120:240]))
	waitFor([]*member{a, b}, func() bool { return total(a, b, c) >= 240 }, 20*time.Second, "240 records read")
	split2 := fmt.Sprint(a.parts(), b.parts())
	d = mk()
	waitFor([]*member{a, b, d}, func() bool { return len(a.parts()) == 2 && len(b.parts()) == 2 && len(d.parts()) == 2 },
		30*time.Second, "3 members x 2 partitions after a join")
	produceTo(topic, clone(all[240:]))
	waitFor([]*member{a, b, d}, func() bool { return total(a, b, c, d) >= 360 }, 20*time.Second, "360 records read")
	check(d.count() > 0, "the member that joined last read nothing")
	time.Sleep(time.Second)
	split3b := fmt.Sprint(a.parts(), b.parts(), d.parts())
	union := map[int32][]got{}
	for _, m := range []*member{a, b, c, d} {
		for p, g := range m.snapshot() {
			union[p] = append(union[p], g...)
		}
	}
	for _, g := range union {
		sort.Slice(g, func(i, j int) bool { return g[i].offset < g[j].offset })
	}
	detail := compare(all, union, false, true)
	return fmt.Sprintf("%s; assignments %s -> leave %s -> join %s, read %v", detail, split3, split2, split3b,
		[]int{a.count(), b.count(), c.count(), d.count()})
}
