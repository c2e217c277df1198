#!/usr/bin/env python3
"""Arus conformance scenarios driven through kafka-python (pure-Python client).

Usage: kafka_python_client.py --bootstrap HOST:PORT --scenarios a,b,c
"""
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as Errors
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

import common
from common import Fail, NotApplicable, check

CLIENT = "kafkapy"
# kafka-python asserts header values are bytes: no null header values, so the
# second header carries an empty value instead.
NULL_HEADER = False
OP = common.OP_TIMEOUT_S
COMMON = {"request_timeout_ms": 15000, "api_version_auto_timeout_ms": 10000}


def admin(bs):
    return KafkaAdminClient(bootstrap_servers=bs, **COMMON)


def create_topic(bs, topic, partitions, configs=None):
    a = admin(bs)
    try:
        a.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})], timeout_ms=10000)
    finally:
        a.close()
    common.wait_topic_everywhere(bs, topic, partitions)


def producer(bs, **extra):
    conf = dict(bootstrap_servers=bs, linger_ms=20, retries=2, **COMMON)
    if not common.IDEMPOTENCE:
        conf["enable_idempotence"] = False
    conf.update(extra)
    return KafkaProducer(**conf)


def produce_all(p, topic, recs, partition=None):
    futs = [p.send(topic, key=r["key"], value=r["value"], headers=r["headers"], timestamp_ms=r["timestamp"],
                   partition=partition) for r in recs]
    p.flush(timeout=25)
    out = []
    for i, f in enumerate(futs):
        try:
            md = f.get(timeout=5)
        except Exception as e:  # noqa: BLE001
            raise Fail("record %d not delivered: %s: %s" % (i, type(e).__name__, e))
        out.append((md.partition, md.offset))
    return out


def consumer(bs):
    return KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False, **COMMON)


def read_all(bs, topic, expected, timeout=20.0):
    c = consumer(bs)
    try:
        parts = sorted(c.partitions_for_topic(topic) or [])
        check(parts, "no partitions known for %s" % topic)
        tps = [TopicPartition(topic, p) for p in parts]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        got = {p: [] for p in parts}
        n = 0
        deadline = time.time() + timeout
        while n < expected and time.time() < deadline:
            for tp, msgs in c.poll(timeout_ms=500).items():
                for m in msgs:
                    got[tp.partition].append({"offset": m.offset, "key": m.key, "value": m.value,
                                              "headers": list(m.headers or []), "timestamp": m.timestamp})
                    n += 1
        check(n >= expected, "read only %d of %d records within %.0fs" % (n, expected, timeout))
        high = sum(c.end_offsets(tps).values())
        check(high == n, "end offsets sum to %d but %d records read" % (high, n))
        return got
    finally:
        c.close()


def sc_roundtrip(bs):
    topic = common.unique_topic(CLIENT, "roundtrip")
    create_topic(bs, topic, 3)
    recs = common.make_records(50, null_header=NULL_HEADER)
    p = producer(bs)
    for part in range(3):
        produce_all(p, topic, recs[part::3], partition=part)
    p.close(timeout=5)
    got = read_all(bs, topic, len(recs))
    check(all(len(got[p]) > 0 for p in range(3)), "some partition got no records")
    return common.compare(recs, got)


def sc_key_order(bs):
    topic = common.unique_topic(CLIENT, "key-order")
    create_topic(bs, topic, 4)
    recs = common.make_records(200, nkeys=5, headers=False)
    p = producer(bs, max_in_flight_requests_per_connection=1)
    produce_all(p, topic, recs)
    p.close(timeout=5)
    got = read_all(bs, topic, len(recs))
    return common.compare(recs, got, check_headers=False, key_partition=True)


def compression(codec):
    def sc(bs):
        topic = common.unique_topic(CLIENT, "compression-" + codec)
        create_topic(bs, topic, 1)
        recs = common.make_records(100, value_pad=100, null_header=NULL_HEADER)
        p = producer(bs, compression_type=codec, linger_ms=50)
        produce_all(p, topic, recs)
        p.close(timeout=5)
        got = read_all(bs, topic, len(recs))
        return common.compare(recs, got) + " (compression_type=%s)" % codec
    return sc


def acks(level):
    def sc(bs):
        topic = common.unique_topic(CLIENT, "acks-" + level)
        create_topic(bs, topic, 1)
        recs = common.make_records(100, null_header=NULL_HEADER)
        p = producer(bs, acks=int(level) if level != "all" else "all")
        produce_all(p, topic, recs)
        p.close(timeout=5)
        if level == "0":
            # kafka-python (2.2.15 and 2.3.3 checked) never puts acks=0 Produce
            # requests on the wire: against Apache Kafka 4.1.1 the broker's
            # request log shows no Produce at all, while librdkafka's acks=0
            # Produce is logged and stored. So nothing arriving is that client
            # bug, reported n/a; a partial arrival is still a failure.
            c = consumer(bs)
            try:
                tp = TopicPartition(topic, 0)
                arrived = common.wait_until(lambda: c.end_offsets([tp])[tp], 10, 0.5)
            finally:
                c.close()
            if not arrived:
                raise NotApplicable("kafka-python bug: acks=0 Produce requests are never sent (0 of 100 records "
                                    "arrived; same with Apache Kafka 4.1.1, whose request log shows no Produce)")
        got = read_all(bs, topic, len(recs), timeout=25 if level == "0" else 20)
        return common.compare(recs, got) + " (acks=%s)" % level
    return sc


def sc_list_offsets_time(bs):
    topic = common.unique_topic(CLIENT, "list-offsets-time")
    create_topic(bs, topic, 1)
    t0 = common.base_timestamp()
    recs = [{"key": b"k%d" % i, "value": b"v%d" % i, "headers": [], "timestamp": t0 + 1000 * i} for i in range(10)]
    p = producer(bs)
    produce_all(p, topic, recs, partition=0)
    p.close(timeout=5)
    c = consumer(bs)
    try:
        tp = TopicPartition(topic, 0)
        r = c.offsets_for_times({tp: t0 + 3500})[tp]
        got = {"ts(T0+3500)": r.offset if r else None}
        r = c.offsets_for_times({tp: t0 + 9001})[tp]
        got["ts(after last)"] = r.offset if r else None
        got["earliest"] = c.beginning_offsets([tp])[tp]
        got["latest"] = c.end_offsets([tp])[tp]
    finally:
        c.close()
    want = {"ts(T0+3500)": 4, "ts(after last)": None, "earliest": 0, "latest": 10}
    check(got == want, "got %s, want %s" % (got, want))
    return "offsets %s" % got


def expect_error(fn, err_cls, what):
    try:
        fn()
    except err_cls:
        return
    except Exception as e:  # noqa: BLE001
        raise Fail("%s: %s: %s, want %s" % (what, type(e).__name__, e, err_cls.__name__))
    raise Fail("%s succeeded, want %s" % (what, err_cls.__name__))


def describe_config(a, topic):
    resps = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    out = {}
    for resp in resps:
        for res in resp.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            check(res[0] == 0, "describe_configs error %s %s" % (res[0], res[1]))
            for entry in res[4]:
                out[entry[0]] = entry[1]
    return out


def sc_topic_admin(bs):
    topic = common.unique_topic(CLIENT, "topic-admin")
    a = admin(bs)
    try:
        a.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "3600000", "cleanup.policy": "delete"})],
                        timeout_ms=10000)
        common.wait_topic_everywhere(bs, topic, 2)
        desc = a.describe_topics([topic])
        check(len(desc) == 1 and desc[0]["error_code"] == 0, "describe_topics: %s" % desc)
        parts = desc[0]["partitions"]
        check(sorted(p["partition"] for p in parts) == [0, 1], "partitions %s" % parts)
        # Leaders: any registered broker (one node, or a cluster: compat/run.py --cluster N).
        brokers = sorted(b["node_id"] for b in a.describe_cluster()["brokers"])
        check(all(p["leader"] in brokers for p in parts),
              "leaders %s, want brokers %s" % ([p["leader"] for p in parts], brokers))

        cfg = describe_config(a, topic)
        check(cfg.get("retention.ms") == "3600000", "retention.ms described as %r" % cfg.get("retention.ms"))
        check(cfg.get("cleanup.policy") == "delete", "cleanup.policy described as %r" % cfg.get("cleanup.policy"))

        # kafka-python has no IncrementalAlterConfigs: use AlterConfigs (full replace of the set).
        resp = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                               configs={"retention.ms": "7200000", "cleanup.policy": "delete"})])
        for res in resp.resources:
            check(res[0] == 0, "alter_configs error %s %s" % (res[0], res[1]))
        # KRaft applies it asynchronously; in a cluster the describe may reach a broker behind.
        common.wait_until(lambda: describe_config(a, topic).get("retention.ms") == "7200000", 5)
        v = describe_config(a, topic).get("retention.ms")
        check(v == "7200000", "after alter retention.ms = %r, want 7200000" % v)

        a.create_partitions({topic: NewPartitions(4)}, timeout_ms=10000)
        n = common.wait_until(lambda: len(a.describe_topics([topic])[0]["partitions"]) == 4, 5)
        check(n, "after create_partitions(4): %d partitions" % len(a.describe_topics([topic])[0]["partitions"]))

        expect_error(lambda: a.create_topics([NewTopic(topic, 1, 1)], timeout_ms=10000),
                     Errors.TopicAlreadyExistsError, "create again")
        too_many = len(brokers) + 1  # one replica more than there are brokers
        expect_error(lambda: a.create_topics([NewTopic(topic + "-rf3", 1, too_many)], timeout_ms=10000),
                     Errors.InvalidReplicationFactorError, "replication factor %d" % too_many)

        a.delete_topics([topic], timeout_ms=10000)
        gone = common.wait_until(lambda: topic not in a.list_topics(), 10)
        check(gone, "topic still listed after delete")
    finally:
        a.close()
    return "create/describe/configs/alter/partitions/errors/delete ok"


def sc_message_too_large(bs):
    topic = common.unique_topic(CLIENT, "message-too-large")
    create_topic(bs, topic, 1, {"max.message.bytes": "2048"})
    p = producer(bs, linger_ms=0)
    try:
        f = p.send(topic, value=b"x" * 4000)
        try:
            md = f.get(timeout=20)
            raise Fail("4000-byte record accepted at offset %d (max.message.bytes=2048)" % md.offset)
        except Errors.MessageSizeTooLargeError as e:
            err = e
        except Errors.KafkaError as e:
            raise Fail("4000-byte record: %s (errno %s), want MESSAGE_TOO_LARGE (10)" % (e, getattr(e, "errno", None)))
        check(err.errno == 10, "errno %s" % err.errno)
        md = p.send(topic, value=b"y" * 500).get(timeout=20)
    finally:
        p.close(timeout=5)
    return "4000 B -> %s; 500 B -> offset %d" % (type(err).__name__, md.offset)


SCENARIOS = {
    "roundtrip": sc_roundtrip,
    "key_order": sc_key_order,
    "compression_gzip": compression("gzip"),
    "compression_snappy": compression("snappy"),
    "compression_lz4": compression("lz4"),
    "compression_zstd": compression("zstd"),
    "acks_0": acks("0"),
    "acks_1": acks("1"),
    "acks_all": acks("all"),
    "list_offsets_time": sc_list_offsets_time,
    "topic_admin": sc_topic_admin,
    "message_too_large": sc_message_too_large,
}

# ---------------------------------------------------------------- consumer groups (issue 3)

import threading

from kafka import ConsumerRebalanceListener, OffsetAndMetadata


class Member(ConsumerRebalanceListener):
    """One group member polling in its own thread (kafka-python joins inside poll(), so
    members of one group must not share a thread)."""

    def __init__(self, bs, group, topic, **extra):
        conf = dict(COMMON, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                    session_timeout_ms=common.SESSION_TIMEOUT_MS, heartbeat_interval_ms=common.HEARTBEAT_MS)
        conf.update(extra)
        self.c = KafkaConsumer(**conf)
        self.got, self.events = {}, []
        self.lock = threading.Lock()
        self.jobs = []
        self.error = None
        self.stop = False
        self.closed = False
        self._parts = []
        self.c.subscribe([topic], listener=self)
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def on_partitions_revoked(self, revoked):
        self.events.append(("revoke", sorted(tp.partition for tp in revoked)))

    def on_partitions_assigned(self, assigned):
        self.events.append(("assign", sorted(tp.partition for tp in assigned)))

    def _loop(self):
        try:
            while not self.stop:
                with self.lock:
                    jobs, self.jobs = self.jobs, []
                for fn, done in jobs:
                    try:
                        done.append(("ok", fn(self.c)))
                    except Exception as e:  # noqa: BLE001
                        done.append(("err", e))
                for tp, msgs in self.c.poll(timeout_ms=100).items():
                    with self.lock:
                        for m in msgs:
                            self.got.setdefault(tp.partition, []).append(
                                {"offset": m.offset, "key": m.key, "value": m.value,
                                 "headers": list(m.headers or []), "timestamp": m.timestamp})
                self._parts = sorted(tp.partition for tp in self.c.assignment())
        except Exception as e:  # noqa: BLE001
            self.error = e

    def call(self, fn, timeout=15):
        """Runs fn(consumer) on the polling thread (KafkaConsumer is not thread-safe)."""
        done = []
        with self.lock:
            self.jobs.append((fn, done))
        check(common.wait_until(lambda: done or self.error, timeout, 0.05), "consumer call timed out")
        if self.error:
            raise self.error
        kind, v = done[0]
        if kind == "err":
            raise v
        return v

    def parts(self):
        if self.error:
            raise Fail("consumer thread: %s: %s" % (type(self.error).__name__, self.error))
        return self._parts

    def count(self):
        with self.lock:
            return sum(len(v) for v in self.got.values())

    def snapshot(self):
        with self.lock:
            return {p: list(v) for p, v in self.got.items()}

    def close(self):
        if not self.closed:
            self.closed = True
            self.stop = True
            self.t.join(10)
            self.c.close()


def wait_for(members, cond, timeout, what):
    if not common.wait_until(lambda: [m.parts() for m in members] and cond(), timeout, 0.1):
        raise Fail("%s not reached within %.0fs (assignments %s, read %s)" % (
            what, timeout, [m.parts() for m in members], [m.count() for m in members]))


def close_all(members):
    for m in members:
        try:
            m.close()
        except Exception:  # noqa: BLE001
            pass


def sc_group_split(bs):
    topic, group = common.unique_topic(CLIENT, "group_split"), common.unique_group(CLIENT, "group_split")
    create_topic(bs, topic, 6)
    members = [Member(bs, group, topic) for _ in range(3)]
    try:
        wait_for(members, lambda: all(len(m.parts()) == 2 for m in members), 30, "3 members x 2 partitions")
        recs = common.make_records(600, nkeys=60, headers=False)
        p = producer(bs)
        produce_all(p, topic, recs)
        p.close(timeout=5)
        wait_for(members, lambda: sum(m.count() for m in members) >= 600, 20, "600 records read")
        time.sleep(1)
        split = [m.parts() for m in members]
        check(sorted(x for s in split for x in s) == list(range(6)), "assignments %s do not cover 0..5 once" % split)
        detail = common.compare(recs, common.merge_members([m.snapshot() for m in members]), check_headers=False,
                                key_partition=True)
        return "%s; read by 3 members %s (assignments %s)" % (detail, [m.count() for m in members], split)
    finally:
        close_all(members)


def commit_sync(c):
    c.commit()


def sc_group_member_leaves(bs):
    topic, group = common.unique_topic(CLIENT, "group_member_leaves"), common.unique_group(CLIENT, "group_member_leaves")
    create_topic(bs, topic, 4)
    a, b = Member(bs, group, topic), Member(bs, group, topic)
    p = producer(bs)
    try:
        wait_for([a, b], lambda: len(a.parts()) == 2 and len(b.parts()) == 2, 30, "2 members x 2 partitions")
        b_parts = b.parts()
        first = common.make_records(100, nkeys=20, headers=False)
        produce_all(p, topic, first)
        wait_for([a, b], lambda: a.count() + b.count() >= 100, 20, "first 100 records read")
        a.call(commit_sync)
        b.call(commit_sync)
        b.close()  # sends LeaveGroup
        wait_for([a], lambda: a.parts() == [0, 1, 2, 3], 20, "survivor owns all 4 partitions")
        before = {pp: len(v) for pp, v in a.snapshot().items()}
        second = common.make_records(100, nkeys=20, headers=False)
        produce_all(p, topic, second)
        wait_for([a], lambda: a.count() - sum(before.values()) >= 100, 20, "second 100 records read by the survivor")
        time.sleep(1)
        after = {pp: recs[before.get(pp, 0):] for pp, recs in a.snapshot().items()}
        common.check_only(second, after, "survivor after the leave")
        moved = sum(len(after.get(pp, [])) for pp in b_parts)
        check(moved > 0, "no post-leave record came from the leaver's partitions %s" % b_parts)
        return "member left; its partitions %s moved to the survivor, which read all 100 later records (%d from moved partitions), none twice" % (b_parts, moved)
    finally:
        p.close(timeout=5)
        close_all([a, b])


def sc_two_groups(bs):
    topic = common.unique_topic(CLIENT, "two_groups")
    create_topic(bs, topic, 3)
    recs = common.make_records(150, nkeys=30, headers=False)
    p = producer(bs)
    produce_all(p, topic, recs)
    p.close(timeout=5)
    members = [Member(bs, common.unique_group(CLIENT, "two_groups", i), topic) for i in (1, 2)]
    try:
        wait_for(members, lambda: all(m.count() >= 150 for m in members), 30, "each group read 150 records")
        time.sleep(1)
        details = [common.compare(recs, m.snapshot(), check_headers=False, key_partition=True) for m in members]
        return "group 1: %s; group 2: %s" % tuple(details)
    finally:
        close_all(members)


def sc_commit_resume(bs):
    topic, group = common.unique_topic(CLIENT, "commit_resume"), common.unique_group(CLIENT, "commit_resume")
    create_topic(bs, topic, 3)
    recs = common.make_records(200, nkeys=30, headers=False)
    first, second = recs[:100], recs[100:]
    p = producer(bs)
    produce_all(p, topic, first)
    m1 = Member(bs, group, topic)
    try:
        wait_for([m1], lambda: m1.count() >= 100, 30, "first half read")
        time.sleep(0.5)
        got1 = m1.snapshot()
        common.check_only(first, got1, "first member")
        m1.call(commit_sync)
        tps = [TopicPartition(topic, pp) for pp in range(3)]
        committed = m1.call(lambda c: {tp.partition: c.committed(tp) for tp in tps})
        want = {pp: len(got1.get(pp, [])) for pp in range(3)}
        check(committed == want, "committed %s, want %s (records read per partition)" % (committed, want))
    finally:
        m1.close()
    produce_all(p, topic, second)
    p.close(timeout=5)
    m2 = Member(bs, group, topic)
    try:
        wait_for([m2], lambda: m2.count() >= 100, 30, "second half read")
        time.sleep(1)
        got2 = m2.snapshot()
        common.check_only(second, got2, "new member")
        starts = {pp: v[0]["offset"] for pp, v in got2.items() if v}
        check(all(starts[pp] == committed[pp] for pp in starts), "new member started at %s, committed %s" % (starts, committed))
        return "committed %s after 100 records; new member resumed there and read exactly the other 100" % committed
    finally:
        m2.close()


def sc_cooperative_sticky(bs):
    raise NotApplicable("kafka-python has only eager assignors (range, roundrobin, sticky); it does not implement "
                        "the cooperative rebalance protocol")


def group_info(a, group):
    (info,) = a.describe_consumer_groups([group])
    check(info.error_code == 0, "describe_consumer_groups error %s" % info.error_code)
    return info


def sc_static_member(bs):
    topic, group = common.unique_topic(CLIENT, "static_member"), common.unique_group(CLIENT, "static_member")
    create_topic(bs, topic, 4)
    # kafka-python insists request_timeout_ms > session_timeout_ms.
    stat = {"session_timeout_ms": common.STATIC_SESSION_TIMEOUT_MS,
            "request_timeout_ms": common.STATIC_SESSION_TIMEOUT_MS + 5000}
    a = Member(bs, group, topic, group_instance_id="static-a", **stat)
    b = Member(bs, group, topic, group_instance_id="static-b", **stat)
    a2 = None
    adm = admin(bs)
    try:
        wait_for([a, b], lambda: len(a.parts()) == 2 and len(b.parts()) == 2, 30, "2 static members x 2 partitions")
        time.sleep(1)
        a_parts, b_events = a.parts(), list(b.events)
        gen = b.call(lambda c: c._coordinator.generation_if_stable())
        check(gen is not None, "member b not stable")
        a.close()  # static member: kafka-python sends no LeaveGroup
        time.sleep(1)
        a2 = Member(bs, group, topic, group_instance_id="static-a", **stat)
        wait_for([a2, b], lambda: len(a2.parts()) == 2, 20, "restarted static member assigned")
        time.sleep(2)
        check(a2.parts() == a_parts, "restarted member got %s, had %s" % (a2.parts(), a_parts))
        check(b.events == b_events, "the other member saw a rebalance: %s" % b.events[len(b_events):])
        gen2 = b.call(lambda c: c._coordinator.generation_if_stable())
        check(gen2 is not None and gen2.generation_id == gen.generation_id,
              "generation %s -> %s" % (gen.generation_id, gen2 and gen2.generation_id))
        info = group_info(adm, group)
        check(info.state == "Stable", "group state %s" % info.state)
        # (kafka-python's MemberInformation has no group_instance_id field.)
        check(len(info.members) == 2, "describe: %d members" % len(info.members))
        return "restarted static member got %s back; generation stayed %d; no rebalance seen by the other member; " \
               "described Stable with 2 members" % (a2.parts(), gen.generation_id)
    finally:
        adm.close()
        close_all([m for m in (a, b, a2) if m])


def sc_offsets_admin(bs):
    topic, group = common.unique_topic(CLIENT, "offsets_admin"), common.unique_group(CLIENT, "offsets_admin")
    create_topic(bs, topic, 3)
    recs = common.make_records(30, headers=False, null_header=False)
    p = producer(bs)
    for part in range(3):
        produce_all(p, topic, recs[part::3], partition=part)
    p.close(timeout=5)
    adm = admin(bs)
    tps = [TopicPartition(topic, pp) for pp in range(3)]
    try:
        m = Member(bs, group, topic)
        try:
            wait_for([m], lambda: m.count() >= 30, 30, "30 records read")
            m.call(lambda c: c.commit({tp: OffsetAndMetadata(4, "", -1) for tp in tps}))
            groups = [g[0] if isinstance(g, tuple) else g.group for g in adm.list_consumer_groups()]
            check(group in groups, "list_consumer_groups does not show %s" % group)
            info = group_info(adm, group)
            check(info.state == "Stable" and len(info.members) == 1, "describe: %s with %d members" % (info.state, len(info.members)))
            asg = info.members[0].member_assignment
            mparts = sorted(pp for t, ps in asg.assignment for pp in ps if t == topic)
            check(mparts == [0, 1, 2], "describe: member assignment %s" % mparts)
        finally:
            m.close()
        c = {tp.partition: om.offset for tp, om in adm.list_consumer_group_offsets(group).items() if tp.topic == topic}
        cons = consumer(bs)
        try:
            ends = {tp.partition: o for tp, o in cons.end_offsets(tps).items()}
        finally:
            cons.close()
        lag = {pp: ends[pp] - c[pp] for pp in c}
        check(c == {0: 4, 1: 4, 2: 4}, "committed %s, want 4 each" % c)
        check(lag == {0: 6, 1: 6, 2: 6}, "lag %s, want 6 each (end %s)" % (lag, ends))
        check(group_info(adm, group).state == "Empty", "group not Empty after its member closed")
        # kafka-python's admin has no alter_consumer_group_offsets: reset by committing
        # from a consumer with the group id that does not join it (assign + commit:
        # generation -1, as Kafka's reset tool does).
        r = KafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False, **COMMON)
        try:
            r.assign(tps)
            r.commit({tp: OffsetAndMetadata(7, "", -1) for tp in tps})
        finally:
            r.close()
        c2 = {tp.partition: om.offset for tp, om in adm.list_consumer_group_offsets(group).items() if tp.topic == topic}
        check(c2 == {0: 7, 1: 7, 2: 7}, "after reset: committed %s, want 7 each" % c2)
    finally:
        adm.close()
    m2 = Member(bs, group, topic)
    try:
        wait_for([m2], lambda: m2.count() >= 9, 30, "9 records after the reset")
        time.sleep(1)
        got = m2.snapshot()
        starts = {pp: v[0]["offset"] for pp, v in got.items()}
        check(starts == {0: 7, 1: 7, 2: 7} and m2.count() == 9, "after reset read from %s, %d records" % (starts, m2.count()))
    finally:
        m2.close()
    return "committed 4/partition, end 10 -> lag 6 each (list_consumer_group_offsets); listed + described " \
           "(1 member, 3 partitions, then Empty); reset to 7 by a commit from an assign()ed consumer (kafka-python " \
           "admin has no alter offsets); new member read offsets 7..9 of each partition"


def sc_kip848_group(bs):
    raise common.NotApplicable("kafka-python has no KIP-848 consumer group protocol (no group.protocol option; "
                               "JoinGroup/SyncGroup only)")


SCENARIOS.update({
    "kip848_group": sc_kip848_group,
    "group_split": sc_group_split,
    "group_member_leaves": sc_group_member_leaves,
    "two_groups": sc_two_groups,
    "commit_resume": sc_commit_resume,
    "cooperative_sticky": sc_cooperative_sticky,
    "static_member": sc_static_member,
    "offsets_admin": sc_offsets_admin,
})

# ---------------------------------------------------------------- transactions (issue 4)

def txn_producer(bs, tid, timeout_ms=30000):
    p = KafkaProducer(bootstrap_servers=bs, transactional_id=tid, transaction_timeout_ms=timeout_ms, linger_ms=5, **COMMON)
    p.init_transactions()
    return p


def txn_send(p, topic, recs, partition=None):
    return [p.send(topic, key=r["key"], value=r["value"], partition=partition) for r in recs]


def iso_consumer(bs, isolation, **extra):
    return KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False, isolation_level=isolation,
                         **dict(COMMON, **extra))


def read_isolated(bs, topic, isolation, expected, quiet=1.5):
    c = iso_consumer(bs, isolation, group_id=None)
    try:
        parts = sorted(c.partitions_for_topic(topic) or [])
        tps = [TopicPartition(topic, pp) for pp in parts]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        got = {pp: [] for pp in parts}
        n = 0
        end = time.time() + 20
        quiet_set = False
        while time.time() < end:
            for tp, msgs in c.poll(timeout_ms=200).items():
                for m in msgs:
                    got[tp.partition].append({"offset": m.offset, "key": m.key, "value": m.value})
                    n += 1
            if n >= expected and not quiet_set:
                quiet_set, end = True, time.time() + quiet
        return got
    finally:
        c.close()


def end_offsets(bs, topic, parts, isolation):
    c = iso_consumer(bs, isolation, group_id=None)
    try:
        return {tp.partition: o for tp, o in c.end_offsets([TopicPartition(topic, pp) for pp in parts]).items()}
    finally:
        c.close()


def sc_txn_commit_abort(bs):
    topic = common.unique_topic(CLIENT, "txn_commit_abort")
    create_topic(bs, topic, 3)
    recs = common.make_records(90, nkeys=9, headers=False)
    txns = [recs[:30], recs[30:60], recs[60:]]
    p = txn_producer(bs, common.unique_group(CLIENT, "txn_commit_abort", "-txn"))
    try:
        for t, batch in enumerate(txns):
            p.begin_transaction()
            futs = txn_send(p, topic, batch)
            if t == 1:
                p.flush()  # the aborted records really are in the log before the abort
                p.abort_transaction()
            else:
                p.commit_transaction()
                for f in futs:
                    f.get(timeout=5)
    finally:
        p.close(timeout=5)
    committed = txns[0] + txns[2]
    common.check_exact(committed, read_isolated(bs, topic, "read_committed", len(committed)), "read_committed")
    got_u = read_isolated(bs, topic, "read_uncommitted", len(recs))
    common.check_exact(recs, got_u, "read_uncommitted")
    parts = sorted(got_u)
    touched = sum(len({pp for pp in parts if any(r["value"] in {x["value"] for x in b} for r in got_u[pp])}) for b in txns)
    high = end_offsets(bs, topic, parts, "read_uncommitted")
    check(sum(high.values()) == len(recs) + touched,
          "high watermarks %s sum to %d, want %d records + %d markers" % (high, sum(high.values()), len(recs), touched))
    return ("commit 30 / abort 30 / commit 30 over 3 partitions: read_committed saw exactly the 60 committed in order, "
            "read_uncommitted all 90, no marker surfaced; high watermarks %s = 90 records + %d markers" % (high, touched))


def sc_txn_consume_transform_produce(bs):
    n = 60
    src, dst = common.unique_topic(CLIENT, "ctp-in"), common.unique_topic(CLIENT, "ctp-out")
    group = common.unique_group(CLIENT, "txn_ctp")
    create_topic(bs, src, 3)
    create_topic(bs, dst, 3)
    recs = common.make_records(n, nkeys=12, headers=False)
    pp_ = producer(bs)
    produce_all(pp_, src, recs)
    pp_.close()
    ends = end_offsets(bs, src, [0, 1, 2], "read_uncommitted")
    c = iso_consumer(bs, "read_committed", group_id=group, auto_offset_reset="earliest", max_poll_records=8,
                     session_timeout_ms=common.SESSION_TIMEOUT_MS, heartbeat_interval_ms=common.HEARTBEAT_MS)
    c.subscribe([src])
    p = txn_producer(bs, group + "-txn")
    aborted = batches = 0
    try:
        deadline = time.time() + 30
        while True:
            check(time.time() < deadline, "input not consumed within 30s")
            asg = c.assignment()
            if len(asg) == 3 and all(c.position(tp) == ends[tp.partition] for tp in asg):
                break
            polled = c.poll(timeout_ms=300, max_records=8)
            msgs = [(tp, m) for tp, ms in polled.items() for m in ms]
            if not msgs:
                continue
            p.begin_transaction()
            futs = [p.send(dst, key=m.key, value=b"out-" + m.value) for _, m in msgs]
            if batches == 1 and not aborted:
                # Abort this attempt midway and reprocess from the committed position.
                p.flush()
                p.abort_transaction()
                aborted = len(msgs)
                for tp in c.assignment():
                    com = c.committed(tp)
                    c.seek(tp, com if com is not None and com >= 0 else 0)
                continue
            offsets = {}
            for tp, m in msgs:
                offsets[tp] = OffsetAndMetadata(m.offset + 1, "", -1)
            p.send_offsets_to_transaction(offsets, group)
            p.commit_transaction()
            for f in futs:
                f.get(timeout=5)
            batches += 1
        # Kafka answers EndTxn before its markers are written, so the last transactional
        # offsets may still be pending for a moment (kafka-python's committed() does not ask
        # for require_stable): wait for them rather than race the broker.
        settle = time.time() + 10
        while True:
            committed = {pp: c.committed(TopicPartition(src, pp)) for pp in range(3)}
            if committed == ends or time.time() > settle:
                break
            time.sleep(0.2)
    finally:
        c.close()
        p.close(timeout=5)
    check(aborted > 0, "no aborted attempt happened")
    check(committed == ends, "group committed offsets %s != input end offsets %s" % (committed, ends))
    want = [{"key": r["key"], "value": b"out-" + r["value"]} for r in recs]
    common.check_exact(want, read_isolated(bs, dst, "read_committed", n), "output read_committed")
    total_u = sum(len(v) for v in read_isolated(bs, dst, "read_uncommitted", n + aborted).values())
    check(total_u == n + aborted, "output read_uncommitted has %d records, want %d + %d aborted" % (total_u, n, aborted))
    return ("%d input records -> %d committed transactions (+1 aborted attempt of %d records, reprocessed); output "
            "read_committed has each exactly once in order; group committed %s = input ends (kafka-python "
            "send_offsets_to_transaction takes the group id only)" % (n, batches, aborted, committed))


def sc_txn_fencing(bs):
    topic = common.unique_topic(CLIENT, "txn_fencing")
    create_topic(bs, topic, 1)
    # (a) a producer abandoned inside its transaction (never used or closed until the end).
    abandoned = txn_producer(bs, common.unique_group(CLIENT, "abandon"), common.TXN_TIMEOUT_MS)
    abandoned.begin_transaction()
    txn_send(abandoned, topic, [{"key": b"abandoned", "value": b"abandoned-%d" % i} for i in range(10)], partition=0)
    abandoned.flush()
    started = time.time()
    later = common.make_records(5, headers=False)
    pl = producer(bs)
    produce_all(pl, topic, later, partition=0)
    pl.close()
    lso_open = end_offsets(bs, topic, [0], "read_committed")[0]
    check(lso_open == 0, "last stable offset %d while the abandoned transaction (offsets 0-9) is open, want 0" % lso_open)
    c = iso_consumer(bs, "read_committed", group_id=None)
    got, first_at = [], None
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        end = started + common.TXN_TIMEOUT_MS / 1000 + 15
        quiet_set = False
        while time.time() < end:
            for _, ms in c.poll(timeout_ms=200).items():
                for m in ms:
                    first_at = first_at or time.time()
                    got.append({"offset": m.offset, "key": m.key, "value": m.value})
            if len(got) >= 5 and not quiet_set:
                quiet_set, end = True, time.time() + 1
    finally:
        c.close()
    common.check_exact(later, {0: got}, "read_committed after the abandoned transaction")
    blocked = (first_at or 0) - started
    check(first_at is not None and blocked >= 1.0,
          "read_committed consumer got records %.1fs after the abandon: the open transaction did not block it" % blocked)
    lso_end = end_offsets(bs, topic, [0], "read_committed")[0]
    check(lso_end == 16, "last stable offset %d after the timeout abort, want 16 (10 aborted + marker + 5)" % lso_end)
    abandoned.close(timeout=0)
    # (b) a new producer with the same transactional.id fences the live old one.
    tid = common.unique_group(CLIENT, "fence")
    old = txn_producer(bs, tid)
    old.begin_transaction()
    txn_send(old, topic, [{"key": b"old", "value": b"old-1"}], partition=0)
    old.flush()
    new = txn_producer(bs, tid)
    new.begin_transaction()
    new_recs = [{"key": b"new", "value": b"new-%d" % i} for i in range(3)]
    futs = txn_send(new, topic, new_recs, partition=0)
    new.commit_transaction()
    for f in futs:
        f.get(timeout=5)
    new.close(timeout=5)
    err = None
    try:
        f = txn_send(old, topic, [{"key": b"old", "value": b"old-2"}], partition=0)[0]
        old.commit_transaction()
        f.get(timeout=5)
    except Exception as e:  # noqa: BLE001
        err = e
    finally:
        old.close(timeout=0)
    check(err is not None, "the fenced producer committed")
    check(isinstance(err, (Errors.ProducerFencedError, Errors.InvalidProducerEpochError)) or
          isinstance(getattr(err, "__cause__", None), (Errors.ProducerFencedError, Errors.InvalidProducerEpochError)),
          "fenced producer failed with %s: %s, not a fenced error" % (type(err).__name__, err))
    common.check_exact(later + new_recs, read_isolated(bs, topic, "read_committed", 8), "read_committed after the fencing")
    return ("(a) abandoned producer's open transaction held the LSO at 0; read_committed got the 5 later records %.1fs "
            "after the abandon, none of the 10 abandoned; LSO then %d; (b) new producer fenced the old one (%s), its "
            "3 records committed, the old one's never visible" % (blocked, lso_end, type(err).__name__))


def sc_txn_admin(bs):
    raise NotApplicable("kafka-python's KafkaAdminClient has no list/describe transactions or describe producers")


SCENARIOS.update({
    "txn_commit_abort": sc_txn_commit_abort,
    "txn_consume_transform_produce": sc_txn_consume_transform_produce,
    "txn_fencing": sc_txn_fencing,
    "txn_admin": sc_txn_admin,
})

# Log lifecycle (issue 5): config_alter, retention_reset, compacted_topic.
import lifecycle_kafka_python  # noqa: E402

SCENARIOS.update(lifecycle_kafka_python.scenarios(sys.modules[__name__]))


if __name__ == "__main__":
    common.run_scenarios(SCENARIOS)
