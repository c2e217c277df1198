#!/usr/bin/env python3
"""Arus conformance scenarios driven through confluent-kafka (librdkafka).

Usage: confluent_client.py --bootstrap HOST:PORT --scenarios a,b,c
       confluent_client.py --bootstrap HOST:PORT --verify FILE
The --verify mode reads back a topic written by another client (kafkajs) and
compares it to the records listed in FILE (JSON); it prints one JSON line.
"""
import base64
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic, OffsetSpec, ResourceType)

import common
from common import Fail, NotApplicable, check

CLIENT = "confluent"
OP = common.OP_TIMEOUT_S


def admin(bs):
    return AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": 10000})


def create_topic(bs, topic, partitions, config=None):
    a = admin(bs)  # keep a reference: a collected client destroys its pending futures
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                   config=config or {})], request_timeout=OP)
    fs[topic].result(timeout=OP + 5)
    common.wait_topic_everywhere(bs, topic, partitions)


def producer(bs, **extra):
    conf = {
        "bootstrap.servers": bs,
        "message.timeout.ms": 20000,
        "socket.timeout.ms": 10000,
        "linger.ms": 20,
    }
    if not common.IDEMPOTENCE:
        conf["enable.idempotence"] = False
    conf.update(extra)
    return Producer(conf)


def produce_all(p, topic, recs, partition=None):
    """Produce records in order; returns list of (partition, offset) or raises on any delivery error."""
    results = [None] * len(recs)
    errors = []

    def cb(i):
        def on_delivery(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results[i] = (msg.partition(), msg.offset())
        return on_delivery

    for i, r in enumerate(recs):
        kw = {}
        if partition is not None:
            kw["partition"] = partition
        p.produce(topic, key=r["key"], value=r["value"], headers=r["headers"] or None,
                  timestamp=r["timestamp"], on_delivery=cb(i), **kw)
        p.poll(0)
    left = p.flush(25)
    check(left == 0, "%d records still undelivered after flush(25s)" % left)
    if errors:
        i, err = errors[0]
        raise Fail("%d delivery errors; record %d: %s (code %s)" % (len(errors), i, err.str(), err.code()))
    return results


def partitions_of(bs, topic):
    md = admin(bs).list_topics(topic=topic, timeout=OP)
    t = md.topics.get(topic)
    check(t is not None and t.error is None, "metadata for %s: %s" % (topic, t.error if t else "missing"))
    return sorted(t.partitions)


def read_all(bs, topic, expected, timeout=20.0):
    """Assign every partition from offset 0 and read until `expected` records arrived."""
    parts = partitions_of(bs, topic)
    c = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "socket.timeout.ms": 10000})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        got = {p: [] for p in parts}
        n = 0
        deadline = time.time() + timeout
        while n < expected and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise Fail("consume error: %s" % m.error().str())
            ts_type, ts = m.timestamp()
            got[m.partition()].append({"offset": m.offset(), "key": m.key(), "value": m.value(),
                                       "headers": m.headers() or [], "timestamp": ts})
            n += 1
        check(n >= expected, "read only %d of %d records within %.0fs" % (n, expected, timeout))
        # No extra records beyond what was read: high watermarks add up.
        high = sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=OP)[1] for p in parts)
        check(high == n, "high watermarks sum to %d but %d records read" % (high, n))
        return got
    finally:
        c.close()


# ---------------------------------------------------------------- scenarios

def sc_roundtrip(bs):
    topic = common.unique_topic(CLIENT, "roundtrip")
    create_topic(bs, topic, 3)
    recs = common.make_records(50)
    p = producer(bs)
    # Spread explicitly over the 3 partitions so every partition is exercised.
    for part in range(3):
        produce_all(p, topic, recs[part::3], partition=part)
    got = read_all(bs, topic, len(recs))
    check(all(len(got[p]) > 0 for p in range(3)), "some partition got no records: %s" % {p: len(v) for p, v in got.items()})
    return common.compare(recs, got)


def sc_key_order(bs):
    topic = common.unique_topic(CLIENT, "key-order")
    create_topic(bs, topic, 4)
    recs = common.make_records(200, nkeys=5, headers=False)
    produce_all(producer(bs, **{"max.in.flight.requests.per.connection": 1}), topic, recs)
    got = read_all(bs, topic, len(recs))
    return common.compare(recs, got, check_headers=False, key_partition=True)


def compression(codec):
    def sc(bs):
        topic = common.unique_topic(CLIENT, "compression-" + codec)
        create_topic(bs, topic, 1)
        recs = common.make_records(100, value_pad=100)
        produce_all(producer(bs, **{"compression.type": codec, "linger.ms": 50}), topic, recs)
        got = read_all(bs, topic, len(recs))
        return common.compare(recs, got) + " (compression.type=%s)" % codec
    return sc


def acks(level):
    def sc(bs):
        topic = common.unique_topic(CLIENT, "acks-" + level)
        create_topic(bs, topic, 1)
        recs = common.make_records(100)
        produce_all(producer(bs, **{"acks": level}), topic, recs)
        got = read_all(bs, topic, len(recs), timeout=25 if level == "0" else 20)
        return common.compare(recs, got) + " (acks=%s)" % level
    return sc


def sc_list_offsets_time(bs):
    topic = common.unique_topic(CLIENT, "list-offsets-time")
    create_topic(bs, topic, 1)
    t0 = common.base_timestamp()
    recs = [{"key": b"k%d" % i, "value": b"v%d" % i, "headers": [], "timestamp": t0 + 1000 * i} for i in range(10)]
    produce_all(producer(bs), topic, recs, partition=0)
    tp = TopicPartition(topic, 0)
    a = admin(bs)

    def lookup(spec):
        fs = a.list_offsets({tp: spec}, request_timeout=OP)
        return fs[tp].result(timeout=OP + 5).offset

    got = {
        "ts(T0+3500)": lookup(OffsetSpec.for_timestamp(t0 + 3500)),
        "ts(after last)": lookup(OffsetSpec.for_timestamp(t0 + 1000 * 9 + 1)),
        "earliest": lookup(OffsetSpec.earliest()),
        "latest": lookup(OffsetSpec.latest()),
    }
    want = {"ts(T0+3500)": 4, "ts(after last)": -1, "earliest": 0, "latest": 10}
    check(got == want, "admin list_offsets: got %s, want %s" % (got, want))
    # The classic consumer API (offsets_for_times) must agree.
    c = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "enable.auto.commit": False})
    try:
        r = c.offsets_for_times([TopicPartition(topic, 0, t0 + 3500)], timeout=OP)
        check(r[0].offset == 4, "consumer offsets_for_times(T0+3500) = %s, want 4" % r[0].offset)
        r = c.offsets_for_times([TopicPartition(topic, 0, t0 + 9001)], timeout=OP)
        check(r[0].offset == -1, "consumer offsets_for_times(after last) = %s, want -1 (end)" % r[0].offset)
        lo, hi = c.get_watermark_offsets(tp, timeout=OP)
        check((lo, hi) == (0, 10), "watermarks (%d,%d), want (0,10)" % (lo, hi))
    finally:
        c.close()
    return "offsets %s" % got


def kafka_error_code(exc):
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code()
    return None


def sc_topic_admin(bs):
    topic = common.unique_topic(CLIENT, "topic-admin")
    a = admin(bs)
    fs = a.create_topics([NewTopic(topic, 2, 1, config={"retention.ms": "3600000", "cleanup.policy": "delete"})],
                         request_timeout=OP)
    fs[topic].result(timeout=OP + 5)
    common.wait_topic_everywhere(bs, topic, 2)

    md = a.list_topics(topic=topic, timeout=OP).topics[topic]
    check(md.error is None, "describe: %s" % md.error)
    check(sorted(md.partitions) == [0, 1], "partitions %s, want [0, 1]" % sorted(md.partitions))
    # Leaders: any registered broker (one node, or a cluster: compat/run.py --cluster N).
    brokers = sorted(a.list_topics(timeout=OP).brokers)
    leaders = {p: pm.leader for p, pm in md.partitions.items()}
    check(all(l in brokers for l in leaders.values()), "leaders %s, want brokers %s" % (leaders, brokers))

    def describe():
        res = ConfigResource(ResourceType.TOPIC, topic)
        return a.describe_configs([res], request_timeout=OP)[res].result(timeout=OP + 5)

    cfg = describe()
    check("retention.ms" in cfg and cfg["retention.ms"].value == "3600000",
          "retention.ms described as %r" % (cfg.get("retention.ms") and cfg["retention.ms"].value))
    check(cfg.get("cleanup.policy") is not None and cfg["cleanup.policy"].value == "delete",
          "cleanup.policy described as %r" % (cfg.get("cleanup.policy") and cfg["cleanup.policy"].value))

    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], request_timeout=OP)[res].result(timeout=OP + 5)
    # KRaft applies it asynchronously; in a cluster the describe may reach a broker behind.
    common.wait_until(lambda: describe()["retention.ms"].value == "7200000", 5)
    v = describe()["retention.ms"].value
    check(v == "7200000", "after incremental alter retention.ms = %r, want 7200000" % v)

    a.create_partitions([NewPartitions(topic, 4)], request_timeout=OP)[topic].result(timeout=OP + 5)
    # Brokers apply the new partitions asynchronously: in a cluster the listing may reach a
    # broker that has not replayed them yet, so re-list for up to 5 s.
    common.wait_until(lambda: len(a.list_topics(topic=topic, timeout=OP).topics[topic].partitions) == 4, 5)
    n = len(a.list_topics(topic=topic, timeout=OP).topics[topic].partitions)
    check(n == 4, "after create_partitions(4): %d partitions" % n)

    try:
        a.create_topics([NewTopic(topic, 1, 1)], request_timeout=OP)[topic].result(timeout=OP + 5)
        raise Fail("creating the topic again succeeded")
    except KafkaException as e:
        check(kafka_error_code(e) == KafkaError.TOPIC_ALREADY_EXISTS, "create again: %s, want TOPIC_ALREADY_EXISTS" % e)

    bad = topic + "-rf3"
    too_many = len(brokers) + 1  # one replica more than there are brokers
    try:
        a.create_topics([NewTopic(bad, 1, too_many)], request_timeout=OP)[bad].result(timeout=OP + 5)
        raise Fail("replication factor %d accepted on a %d-broker cluster" % (too_many, len(brokers)))
    except KafkaException as e:
        check(kafka_error_code(e) == KafkaError.INVALID_REPLICATION_FACTOR,
              "rf=%d: %s, want INVALID_REPLICATION_FACTOR" % (too_many, e))

    a.delete_topics([topic], request_timeout=OP)[topic].result(timeout=OP + 5)
    gone = common.wait_until(lambda: topic not in a.list_topics(timeout=OP).topics, 10)
    check(gone, "topic still listed after delete")
    return "create/describe/configs/incremental-alter/partitions/errors/delete ok"


def sc_message_too_large(bs):
    topic = common.unique_topic(CLIENT, "message-too-large")
    create_topic(bs, topic, 1, {"max.message.bytes": "2048"})
    p = producer(bs, **{"compression.type": "none", "linger.ms": 0})
    errors = []
    p.produce(topic, value=b"x" * 4000, on_delivery=lambda err, msg: errors.append(err))
    check(p.flush(25) == 0, "4000-byte record: no delivery report")
    err = errors[0]
    check(err is not None, "4000-byte record was accepted (max.message.bytes=2048)")
    check(err.code() == KafkaError.MSG_SIZE_TOO_LARGE, "4000-byte record: %s (code %d), want MESSAGE_TOO_LARGE (10)"
          % (err.str(), err.code()))
    errors.clear()
    p.produce(topic, value=b"y" * 500, on_delivery=lambda err, msg: errors.append((err, msg.offset())))
    check(p.flush(25) == 0, "500-byte record: no delivery report")
    check(errors[0][0] is None, "500-byte record failed: %s" % (errors[0][0] and errors[0][0].str()))
    return "4000 B -> %s (code %d); 500 B -> offset %d" % (err.name(), err.code(), errors[0][1])


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

def group_consumer(bs, group, **extra):
    conf = {"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "socket.timeout.ms": 10000,
            "session.timeout.ms": common.SESSION_TIMEOUT_MS, "heartbeat.interval.ms": common.HEARTBEAT_MS}
    conf.update(extra)
    return Consumer(conf)


class Member:
    """One group member: subscribe, poll, keep what it read and its rebalance callbacks."""

    def __init__(self, bs, group, topic, **extra):
        self.c = group_consumer(bs, group, **extra)
        self.got = {}
        self.assigned, self.revoked = [], []
        self.events = []
        self.closed = False
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, c, parts):
        self.assigned.append(sorted(p.partition for p in parts))
        self.events.append(("assign", sorted(p.partition for p in parts)))

    def _on_revoke(self, c, parts):
        self.revoked.append(sorted(p.partition for p in parts))
        self.events.append(("revoke", sorted(p.partition for p in parts)))

    def poll(self, t=0.1):
        m = self.c.poll(t)
        if m is None:
            return 0
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                return 0
            raise Fail("consume error: %s" % m.error().str())
        self.got.setdefault(m.partition(), []).append({"offset": m.offset(), "key": m.key(), "value": m.value(),
                                                       "headers": m.headers() or [], "timestamp": m.timestamp()[1]})
        return 1

    def parts(self):
        return sorted(tp.partition for tp in self.c.assignment())

    def count(self):
        return sum(len(v) for v in self.got.values())

    def close(self):
        if not self.closed:
            self.closed = True
            self.c.close()


def poll_until(members, cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in members:
            m.poll(0.05)
        if cond():
            return
    raise Fail("%s not reached within %.0fs (assignments %s, read %s)" % (
        what, timeout, [m.parts() for m in members], [m.count() for m in members]))


def poll_quiet(members, seconds):
    end = time.time() + seconds
    while time.time() < end:
        for m in members:
            m.poll(0.05)


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
        poll_until(members, lambda: all(len(m.parts()) == 2 for m in members), 30, "3 members x 2 partitions")
        recs = common.make_records(600, nkeys=60, headers=False)
        produce_all(producer(bs), topic, recs)
        poll_until(members, lambda: sum(m.count() for m in members) >= 600, 20, "600 records read")
        poll_quiet(members, 1.0)
        split = [m.parts() for m in members]
        check(sorted(p for s in split for p in s) == list(range(6)), "assignments %s do not cover 0..5 once" % split)
        got = common.merge_members([m.got for m in members])
        detail = common.compare(recs, got, check_headers=False, key_partition=True)
        return "%s; read by 3 members %s (assignments %s)" % (detail, [m.count() for m in members], split)
    finally:
        close_all(members)


def sc_group_member_leaves(bs):
    topic, group = common.unique_topic(CLIENT, "group_member_leaves"), common.unique_group(CLIENT, "group_member_leaves")
    create_topic(bs, topic, 4)
    a, b = Member(bs, group, topic), Member(bs, group, topic)
    try:
        poll_until([a, b], lambda: len(a.parts()) == 2 and len(b.parts()) == 2, 30, "2 members x 2 partitions")
        b_parts = b.parts()
        first = common.make_records(100, nkeys=20, headers=False)
        p = producer(bs)
        produce_all(p, topic, first)
        poll_until([a, b], lambda: a.count() + b.count() >= 100, 20, "first 100 records read")
        for m in (a, b):
            m.c.commit(asynchronous=False)
        b.close()  # sends LeaveGroup
        poll_until([a], lambda: a.parts() == [0, 1, 2, 3], 20, "survivor owns all 4 partitions")
        before = {pp: len(v) for pp, v in a.got.items()}
        second = common.make_records(100, nkeys=20, headers=False)
        produce_all(p, topic, second)
        poll_until([a], lambda: a.count() - sum(before.values()) >= 100, 20, "second 100 records read by the survivor")
        poll_quiet([a], 1.0)
        after = {pp: recs[before.get(pp, 0):] for pp, recs in a.got.items()}
        common.check_only(second, after, "survivor after the leave")
        moved = sum(len(after.get(pp, [])) for pp in b_parts)
        check(moved > 0, "no post-leave record came from the leaver's partitions %s" % b_parts)
        return "member left; its partitions %s moved to the survivor, which read all 100 later records (%d from moved partitions), none twice" % (b_parts, moved)
    finally:
        close_all([a, b])


def sc_two_groups(bs):
    topic = common.unique_topic(CLIENT, "two_groups")
    create_topic(bs, topic, 3)
    recs = common.make_records(150, nkeys=30, headers=False)
    produce_all(producer(bs), topic, recs)
    g1, g2 = common.unique_group(CLIENT, "two_groups", 1), common.unique_group(CLIENT, "two_groups", 2)
    members = [Member(bs, g1, topic), Member(bs, g2, topic)]
    try:
        poll_until(members, lambda: all(m.count() >= 150 for m in members), 30, "each group read 150 records")
        poll_quiet(members, 1.0)
        details = [common.compare(recs, m.got, check_headers=False, key_partition=True) for m in members]
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
        poll_until([m1], lambda: m1.count() >= 100, 30, "first half read")
        poll_quiet([m1], 0.5)
        common.check_only(first, m1.got, "first member")
        m1.c.commit(asynchronous=False)
        committed = {tp.partition: tp.offset for tp in m1.c.committed([TopicPartition(topic, pp) for pp in range(3)], timeout=OP)}
        want = {pp: len(m1.got.get(pp, [])) for pp in range(3)}
        check(committed == want, "committed %s, want %s (records read per partition)" % (committed, want))
    finally:
        m1.close()
    produce_all(p, topic, second)
    m2 = Member(bs, group, topic)
    try:
        poll_until([m2], lambda: m2.count() >= 100, 30, "second half read")
        poll_quiet([m2], 1.0)
        common.check_only(second, m2.got, "new member")
        starts = {pp: v[0]["offset"] for pp, v in m2.got.items() if v}
        check(all(starts[pp] == committed[pp] for pp in starts), "new member started at %s, committed %s" % (starts, committed))
        return "committed %s after 100 records; new member resumed there and read exactly the other 100" % committed
    finally:
        m2.close()


def sc_cooperative_sticky(bs):
    topic, group = common.unique_topic(CLIENT, "cooperative_sticky"), common.unique_group(CLIENT, "cooperative_sticky")
    create_topic(bs, topic, 6)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = Member(bs, group, topic, **conf)
    b = None
    try:
        poll_until([a], lambda: a.parts() == list(range(6)), 30, "first member owns all 6 partitions")
        check(a.revoked == [] or all(r == [] for r in a.revoked), "revocations before the second member: %s" % a.revoked)
        b = Member(bs, group, topic, **conf)
        poll_until([a, b], lambda: len(a.parts()) == 3 and len(b.parts()) == 3, 30, "3 + 3 partitions")
        poll_quiet([a, b], 1.0)
        revoked = sorted(p for r in a.revoked for p in r)
        check(revoked == b.parts(), "first member revoked %s, but only the moved partitions %s may be revoked (events %s)"
              % (revoked, b.parts(), a.events))
        check(not set(revoked) & set(a.parts()), "kept partitions %s were revoked (%s)" % (a.parts(), a.events))
        return "first member kept %s (never revoked), revoked only %s which moved to the second (events %s)" % (
            a.parts(), revoked, a.events)
    finally:
        close_all([m for m in (a, b) if m])


def describe_group(bs, group):
    a = admin(bs)
    return a.describe_consumer_groups([group], request_timeout=OP)[group].result(timeout=OP + 5)


def sc_static_member(bs):
    topic, group = common.unique_topic(CLIENT, "static_member"), common.unique_group(CLIENT, "static_member")
    create_topic(bs, topic, 4)
    stat = {"session.timeout.ms": common.STATIC_SESSION_TIMEOUT_MS}
    a = Member(bs, group, topic, **{"group.instance.id": "static-a", **stat})
    b = Member(bs, group, topic, **{"group.instance.id": "static-b", **stat})
    a2 = None
    try:
        poll_until([a, b], lambda: len(a.parts()) == 2 and len(b.parts()) == 2, 30, "2 static members x 2 partitions")
        poll_quiet([a, b], 1.0)
        a_parts, b_events = a.parts(), list(b.events)
        d = describe_group(bs, group)
        before = sorted((m.group_instance_id, m.member_id) for m in d.members)
        check(len(before) == 2, "describe: %d members before the restart" % len(before))
        a.close()  # static member: no LeaveGroup
        poll_quiet([b], 1.0)
        a2 = Member(bs, group, topic, **{"group.instance.id": "static-a", **stat})
        poll_until([a2, b], lambda: len(a2.parts()) == 2, 20, "restarted static member assigned")
        poll_quiet([a2, b], 2.0)
        check(a2.parts() == a_parts, "restarted member got %s, had %s" % (a2.parts(), a_parts))
        check(b.events == b_events, "the other member saw a rebalance: %s" % b.events[len(b_events):])
        d = describe_group(bs, group)
        after = sorted((m.group_instance_id, m.member_id) for m in d.members)
        check(str(d.state).endswith("STABLE"), "group state %s after the restart" % d.state)
        check([i for i, _ in after] == ["static-a", "static-b"], "describe: members %s" % after)
        return ("restarted static member got %s back; other member saw no rebalance (no revoke/assign); group %s "
                "with instances %s" % (a2.parts(), d.state, [i for i, _ in after]))
    finally:
        close_all([m for m in (a, b, a2) if m])


def sc_offsets_admin(bs):
    from confluent_kafka import ConsumerGroupTopicPartitions
    topic, group = common.unique_topic(CLIENT, "offsets_admin"), common.unique_group(CLIENT, "offsets_admin")
    create_topic(bs, topic, 3)
    recs = common.make_records(30, headers=False)
    p = producer(bs)
    for part in range(3):
        produce_all(p, topic, recs[part::3], partition=part)
    a = admin(bs)
    m = Member(bs, group, topic)
    try:
        poll_until([m], lambda: m.count() >= 30, 30, "30 records read")
        m.c.commit(offsets=[TopicPartition(topic, pp, 4) for pp in range(3)], asynchronous=False)
        listed = a.list_consumer_groups(request_timeout=OP).result(timeout=OP + 5)
        check(group in [g.group_id for g in listed.valid], "list_consumer_groups does not show %s" % group)
        d = describe_group(bs, group)
        check(len(d.members) == 1, "describe: %d members, want 1" % len(d.members))
        mparts = sorted(tp.partition for tp in d.members[0].assignment.topic_partitions)
        check(mparts == [0, 1, 2], "describe: member assignment %s" % mparts)
    finally:
        m.close()

    def committed():
        fs = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=OP)
        r = fs[group].result(timeout=OP + 5)
        return {tp.partition: tp.offset for tp in r.topic_partitions if tp.topic == topic}

    ends = {}
    for pp in range(3):
        tp = TopicPartition(topic, pp)
        ends[pp] = a.list_offsets({tp: OffsetSpec.latest()}, request_timeout=OP)[tp].result(timeout=OP + 5).offset
    c = committed()
    lag = {pp: ends[pp] - c[pp] for pp in c}
    check(c == {0: 4, 1: 4, 2: 4}, "committed %s, want 4 each" % c)
    check(lag == {0: 6, 1: 6, 2: 6}, "lag %s, want 6 each (end %s)" % (lag, ends))
    d = describe_group(bs, group)
    check(str(d.state).endswith("EMPTY"), "group state %s after its only member closed, want EMPTY" % d.state)
    fs = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, pp, 7) for pp in range(3)])],
                                        request_timeout=OP)
    fs[group].result(timeout=OP + 5)
    c2 = committed()
    check(c2 == {0: 7, 1: 7, 2: 7}, "after alter: committed %s, want 7 each" % c2)
    m2 = Member(bs, group, topic)
    try:
        poll_until([m2], lambda: m2.count() >= 9, 30, "9 records after the reset")
        poll_quiet([m2], 1.0)
        starts = {pp: v[0]["offset"] for pp, v in m2.got.items()}
        check(starts == {0: 7, 1: 7, 2: 7} and m2.count() == 9, "after reset read from %s, %d records" % (starts, m2.count()))
    finally:
        m2.close()
    return "committed 4/partition, end 10 -> lag 6 each; listed + described (1 member, 3 partitions, then EMPTY); " \
           "alter_consumer_group_offsets -> 7; new member read offsets 7..9 of each partition"


class Member848(Member):
    """A member with group.protocol=consumer (KIP-848) that commits after every batch it read.

    librdkafka refuses session.timeout.ms / heartbeat.interval.ms with this protocol (the
    broker decides them), and serves revocations inside poll/consume, so a batch committed
    before the next consume is committed before its partitions can move."""

    def __init__(self, bs, group, topic):
        conf = {"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "socket.timeout.ms": 10000, "group.protocol": "consumer"}
        self.c = Consumer(conf)
        self.got = {}
        self.assigned, self.revoked, self.events = [], [], []
        self.closed = False
        self.c.subscribe([topic])

    def poll(self, t=0.1):
        msgs = self.c.consume(num_messages=100, timeout=t)
        n = 0
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise Fail("consume error: %s" % m.error().str())
            self.got.setdefault(m.partition(), []).append({"offset": m.offset(), "key": m.key(), "value": m.value(),
                                                           "headers": m.headers() or [], "timestamp": m.timestamp()[1]})
            n += 1
        if n:
            self.c.commit(asynchronous=False)
        return n


def sc_kip848_group(bs):
    """3 members split 6 partitions, one leaves, a fourth joins; every record read once overall."""
    topic, group = common.unique_topic(CLIENT, "kip848_group"), common.unique_group(CLIENT, "kip848_group")
    create_topic(bs, topic, 6)
    recs = common.make_records(360, nkeys=36, headers=False)
    p = producer(bs)
    a, b, c = (Member848(bs, group, topic) for _ in range(3))
    d = None
    members = [a, b, c]
    try:
        produce_all(p, topic, recs[:120])
        poll_until([a, b, c], lambda: all(len(m.parts()) == 2 for m in (a, b, c))
                   and sum(m.count() for m in (a, b, c)) >= 120, 30, "3 members x 2 partitions, 120 records read")
        split3 = [m.parts() for m in (a, b, c)]
        c.close()  # leaves the group
        poll_until([a, b], lambda: len(a.parts()) == 3 and len(b.parts()) == 3, 30, "2 members x 3 partitions")
        produce_all(p, topic, recs[120:240])
        poll_until([a, b], lambda: sum(m.count() for m in members) >= 240, 20, "240 records read")
        split2 = [m.parts() for m in (a, b)]
        d = Member848(bs, group, topic)
        members.append(d)
        poll_until([a, b, d], lambda: all(len(m.parts()) == 2 for m in (a, b, d)), 30,
                   "3 members x 2 partitions after a join")
        produce_all(p, topic, recs[240:])
        poll_until([a, b, d], lambda: sum(m.count() for m in members) >= 360, 20, "360 records read")
        check(d.count() > 0, "the member that joined last read nothing")
        poll_quiet([a, b, d], 1.0)
        split3b = [m.parts() for m in (a, b, d)]
        union = {}
        for m in members:
            for part, got in m.got.items():
                union.setdefault(part, []).extend(got)
        for got in union.values():
            got.sort(key=lambda r: r["offset"])
        detail = common.compare(recs, union, check_headers=False, key_partition=True)
        return "%s; assignments %s -> leave %s -> join %s, read %s" % (
            detail, split3, split2, split3b, [m.count() for m in members])
    finally:
        close_all(members)


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

def txn_producer(bs, tid, **extra):
    conf = {"bootstrap.servers": bs, "transactional.id": tid, "socket.timeout.ms": 10000, "linger.ms": 5,
            "transaction.timeout.ms": 30000}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(OP)
    return p


def txn_send(p, topic, recs, errors=None):
    """Produce inside the open transaction (the commit flushes); delivery errors are collected."""
    errs = errors if errors is not None else []

    def cb(err, msg):
        if err is not None:
            errs.append(err)

    for r in recs:
        p.produce(topic, key=r["key"], value=r["value"], on_delivery=cb)
        p.poll(0)
    return errs


def read_isolated(bs, topic, isolation, expected, timeout=20.0, quiet=1.5, parts=None):
    """Assign every partition from the beginning with this isolation.level; read until
    `expected` records arrived and then `quiet` seconds more (so extra records show up)."""
    parts = parts if parts is not None else partitions_of(bs, topic)
    c = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "enable.auto.commit": False,
                  "isolation.level": isolation, "socket.timeout.ms": 10000})
    try:
        c.assign([TopicPartition(topic, pp, 0) for pp in parts])
        got = {pp: [] for pp in parts}
        n = 0
        deadline = time.time() + timeout
        quiet_end = None
        while time.time() < (quiet_end or deadline):
            m = c.poll(0.2)
            if m is not None:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise Fail("consume error (%s): %s" % (isolation, m.error().str()))
                else:
                    got[m.partition()].append({"offset": m.offset(), "key": m.key(), "value": m.value()})
                    n += 1
            if n >= expected and quiet_end is None:
                quiet_end = time.time() + quiet
        return got
    finally:
        c.close()


def high_watermarks(bs, topic, parts):
    c = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "socket.timeout.ms": 10000})
    try:
        return {pp: c.get_watermark_offsets(TopicPartition(topic, pp), timeout=OP)[1] for pp in parts}
    finally:
        c.close()


def sc_txn_commit_abort(bs):
    topic = common.unique_topic(CLIENT, "txn_commit_abort")
    create_topic(bs, topic, 3)
    recs = common.make_records(90, nkeys=9, headers=False)
    t1, t2, t3 = recs[:30], recs[30:60], recs[60:]
    p = txn_producer(bs, common.unique_group(CLIENT, "txn_commit_abort", "-txn"))
    errs = []
    for batch, commit in ((t1, True), (t2, False), (t3, True)):
        p.begin_transaction()
        txn_send(p, topic, batch, errs)
        if commit:
            p.commit_transaction(OP)
        else:
            p.flush(OP)  # the aborted records really are in the log before the abort
            p.abort_transaction(OP)
    check(not errs, "delivery errors: %s" % errs[:3])
    committed = t1 + t3
    got_c = read_isolated(bs, topic, "read_committed", len(committed))
    common.check_exact(committed, got_c, "read_committed")
    got_u = read_isolated(bs, topic, "read_uncommitted", len(recs))
    common.check_exact(recs, got_u, "read_uncommitted")
    # Each transaction leaves one control marker in every partition it wrote to.
    parts = sorted(got_u)
    touched = sum(len({pp for pp in parts if any(r["value"] in {x["value"] for x in b} for r in got_u[pp])})
                  for b in (t1, t2, t3))
    high = high_watermarks(bs, topic, parts)
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
    produce_all(producer(bs), src, recs)
    ends = high_watermarks(bs, src, [0, 1, 2])
    c = group_consumer(bs, group, **{"isolation.level": "read_committed"})
    c.subscribe([src])
    p = txn_producer(bs, group + "-txn")
    out_of = lambda v: b"out-" + v  # noqa: E731
    aborted = 0
    batches = 0
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            assignment = c.assignment()
            if len(assignment) == 3:
                pos = c.position(assignment)
                if all(tp.offset == ends[tp.partition] for tp in pos):
                    break
            msgs = [m for m in c.consume(num_messages=8, timeout=0.5)
                    if not m.error() or m.error().code() != KafkaError._PARTITION_EOF]
            if not msgs:
                continue
            for m in msgs:
                if m.error():
                    raise Fail("consume error: %s" % m.error().str())
            p.begin_transaction()
            errs = []
            for m in msgs:
                p.produce(dst, key=m.key(), value=out_of(m.value()), on_delivery=lambda e, _m: e and errs.append(e))
            if batches == 1 and not aborted:
                # Abort this attempt midway and reprocess from the committed position.
                p.flush(OP)
                p.abort_transaction(OP)
                aborted = len(msgs)
                committed = c.committed(c.assignment(), timeout=OP)
                for tp in committed:
                    c.seek(TopicPartition(src, tp.partition, tp.offset if tp.offset >= 0 else 0))
                continue
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), OP)
            p.commit_transaction(OP)
            check(not errs, "delivery errors: %s" % errs[:3])
            batches += 1
        else:
            raise Fail("input not consumed within 30s (positions %s, ends %s)" % (c.position(c.assignment()), ends))
        committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition(src, pp) for pp in range(3)], timeout=OP)}
    finally:
        c.close()
    check(aborted > 0, "no aborted attempt happened")
    check(committed == ends, "group committed offsets %s != input end offsets %s" % (committed, ends))
    want = [{"key": r["key"], "value": out_of(r["value"])} for r in recs]
    got = read_isolated(bs, dst, "read_committed", n)
    common.check_exact(want, got, "output read_committed")
    got_u = read_isolated(bs, dst, "read_uncommitted", n + aborted)
    total_u = sum(len(v) for v in got_u.values())
    check(total_u == n + aborted, "output read_uncommitted has %d records, want %d + %d aborted" % (total_u, n, aborted))
    return ("%d input records -> %d committed transactions (+1 aborted attempt of %d records, reprocessed); output "
            "read_committed has each exactly once in order; group committed %s = input ends" % (n, batches, aborted, committed))


ABANDON = r"""
import sys, time
from confluent_kafka import Producer
bs, topic, tid, timeout_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = Producer({"bootstrap.servers": bs, "transactional.id": tid, "transaction.timeout.ms": timeout_ms,
              "message.timeout.ms": timeout_ms, "linger.ms": 0})
p.init_transactions(15)
p.begin_transaction()
for i in range(10):
    p.produce(topic, key=b"abandoned", value=b"abandoned-%d" % i, partition=0)
p.flush(15)
print("ready", flush=True)
time.sleep(3600)
"""


def fenced(e):
    err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
    return err is not None and err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


def sc_txn_fencing(bs):
    import subprocess
    import signal
    from confluent_kafka import IsolationLevel
    topic = common.unique_topic(CLIENT, "txn_fencing")
    create_topic(bs, topic, 1)
    tp = TopicPartition(topic, 0)
    # (a) a producer killed inside its transaction: the LSO stays at its first record
    # until the broker aborts it after transaction.timeout.ms.
    child = subprocess.Popen([sys.executable, "-c", ABANDON, bs, topic, common.unique_group(CLIENT, "abandon"),
                              str(common.TXN_TIMEOUT_MS)], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        check(line.strip() == "ready", "abandoned producer did not start (%r)" % line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed_at = time.time()
    later = common.make_records(5, headers=False)
    produce_all(producer(bs), topic, later, partition=0)
    a = admin(bs)

    def lso():
        fs = a.list_offsets({tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=OP)
        return fs[tp].result(timeout=OP + 5).offset

    lso_open = lso()
    check(lso_open == 0, "last stable offset %d while the abandoned transaction (offsets 0-9) is open, want 0" % lso_open)
    c = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    got, blocked_s = [], None
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = killed_at + common.TXN_TIMEOUT_MS / 1000 + 15
        while len(got) < 5 and time.time() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                if not got:
                    blocked_s = time.time() - killed_at
                got.append({"offset": m.offset(), "key": m.key(), "value": m.value()})
        end_quiet = time.time() + 1
        while time.time() < end_quiet:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append({"offset": m.offset(), "key": m.key(), "value": m.value()})
    finally:
        c.close()
    common.check_exact(later, {0: got}, "read_committed after the abandoned transaction")
    check(blocked_s is not None and blocked_s >= 1.0,
          "read_committed consumer got records %.1fs after the kill: the open transaction did not block it" % (blocked_s or -1))
    lso_end = lso()
    check(lso_end == 16, "last stable offset %d after the timeout abort, want 16 (10 aborted + marker + 5)" % lso_end)
    # (b) a new producer with the same transactional.id fences the live old one.
    tid = common.unique_group(CLIENT, "fence")
    old = txn_producer(bs, tid)
    old.begin_transaction()
    old_errs = txn_send(old, topic, [{"key": b"old", "value": b"old-1"}])
    old.flush(OP)
    new = txn_producer(bs, tid)
    new.begin_transaction()
    new_recs = [{"key": b"new", "value": b"new-%d" % i} for i in range(3)]
    new_errs = txn_send(new, topic, new_recs)
    new.commit_transaction(OP)
    check(not new_errs, "new producer delivery errors: %s" % new_errs)
    old_error = None
    try:
        txn_send(old, topic, [{"key": b"old", "value": b"old-2"}], old_errs)
        old.commit_transaction(OP)
    except KafkaException as e:
        old_error = e
    check(old_error is not None, "the fenced producer committed (delivery errors %s)" % old_errs)
    check(fenced(old_error), "fenced producer failed with %s, not a fenced error" % old_error)
    got = read_isolated(bs, topic, "read_committed", 8)
    common.check_exact(later + new_recs, got, "read_committed after the fencing")
    return ("(a) killed producer's open transaction held the LSO at 0; read_committed got the 5 later records %.1fs "
            "after the kill, none of the 10 abandoned; LSO then %d; (b) new producer fenced the old one (%s), its "
            "3 records committed, the old one's never visible" % (blocked_s, lso_end, old_error.args[0].name()))


def sc_txn_admin(bs):
    raise NotApplicable("confluent-kafka's AdminClient has no ListTransactions / DescribeTransactions / "
                        "DescribeProducers (librdkafka does not implement them)")


SCENARIOS.update({
    "txn_commit_abort": sc_txn_commit_abort,
    "txn_consume_transform_produce": sc_txn_consume_transform_produce,
    "txn_fencing": sc_txn_fencing,
    "txn_admin": sc_txn_admin,
})

# Log lifecycle (issue 5): config_alter, retention_reset, compacted_topic.
import lifecycle_confluent  # noqa: E402

SCENARIOS.update(lifecycle_confluent.scenarios(sys.modules[__name__]))


def verify(bs, path):
    """Read back a topic written by another client and compare it to the expected records."""
    with open(path) as f:
        spec = json.load(f)

    def dec(v):
        if v is None:
            return None
        return base64.b64decode(v) if spec.get("base64") else v.encode()

    sent = [{"key": dec(r["key"]), "value": dec(r["value"]),
             "headers": [(k, dec(v)) for k, v in r.get("headers", [])], "timestamp": r.get("timestamp")}
            for r in spec["records"]]
    got = read_all(bs, spec["topic"], len(sent), timeout=spec.get("wait_s", 20))
    return common.compare(sent, got, check_headers=spec.get("check_headers", True),
                          check_ts=spec.get("check_ts", True), key_partition=spec.get("key_partition", False))


if __name__ == "__main__":
    if "--verify" in sys.argv:
        import argparse
        ap = argparse.ArgumentParser()
        ap.add_argument("--bootstrap", required=True)
        ap.add_argument("--verify", required=True)
        args = ap.parse_args()
        try:
            common.emit("verify", "pass", verify(args.bootstrap, args.verify))
        except Exception as e:  # noqa: BLE001
            common.emit("verify", "fail", "%s: %s" % (type(e).__name__, e))
        sys.stdout.flush()
        import os
        os._exit(0)
    common.run_scenarios(SCENARIOS)
