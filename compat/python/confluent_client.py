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


def producer(bs, **extra):
    conf = {
        "bootstrap.servers": bs,
        "enable.idempotence": False,
        "message.timeout.ms": 20000,
        "socket.timeout.ms": 10000,
        "linger.ms": 20,
    }
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

    md = a.list_topics(topic=topic, timeout=OP).topics[topic]
    check(md.error is None, "describe: %s" % md.error)
    check(sorted(md.partitions) == [0, 1], "partitions %s, want [0, 1]" % sorted(md.partitions))
    leaders = {p: pm.leader for p, pm in md.partitions.items()}
    check(all(l == 1 for l in leaders.values()), "leaders %s, want 1" % leaders)

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
    v = describe()["retention.ms"].value
    check(v == "7200000", "after incremental alter retention.ms = %r, want 7200000" % v)

    a.create_partitions([NewPartitions(topic, 4)], request_timeout=OP)[topic].result(timeout=OP + 5)
    n = len(a.list_topics(topic=topic, timeout=OP).topics[topic].partitions)
    check(n == 4, "after create_partitions(4): %d partitions" % n)

    try:
        a.create_topics([NewTopic(topic, 1, 1)], request_timeout=OP)[topic].result(timeout=OP + 5)
        raise Fail("creating the topic again succeeded")
    except KafkaException as e:
        check(kafka_error_code(e) == KafkaError.TOPIC_ALREADY_EXISTS, "create again: %s, want TOPIC_ALREADY_EXISTS" % e)

    bad = topic + "-rf3"
    try:
        a.create_topics([NewTopic(bad, 1, 3)], request_timeout=OP)[bad].result(timeout=OP + 5)
        raise Fail("replication factor 3 accepted on a 1-node cluster")
    except KafkaException as e:
        check(kafka_error_code(e) == KafkaError.INVALID_REPLICATION_FACTOR,
              "rf=3: %s, want INVALID_REPLICATION_FACTOR" % e)

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
