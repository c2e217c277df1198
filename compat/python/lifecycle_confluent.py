"""Log-lifecycle scenarios (issue 5) for confluent-kafka (librdkafka): config_alter,
retention_reset, compacted_topic. `scenarios(cc)` takes the confluent_client module
(its admin/producer helpers) and returns the scenario table."""
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType

import common
from common import Fail, check

CLIENT = "confluent"
OP = common.OP_TIMEOUT_S


def scenarios(cc):
    def describe(a, rtype, name):
        res = ConfigResource(rtype, name)
        return a.describe_configs([res], request_timeout=OP)[res].result(timeout=OP + 5)

    def alter(a, rtype, name, key, value, op=AlterConfigOpType.SET):
        res = ConfigResource(rtype, name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=op)])
        a.incremental_alter_configs([res], request_timeout=OP)[res].result(timeout=OP + 5)

    def wait_config(a, topic, key, value, source, timeout=10):
        """KRaft applies config changes asynchronously: poll DescribeConfigs."""
        last = [None]

        def ok():
            e = describe(a, ResourceType.TOPIC, topic).get(key)
            last[0] = e and (e.value, ConfigSource(e.source).name)
            return e is not None and e.value == value and e.source == source.value
        check(common.wait_until(ok, timeout, 0.3), "%s of %s described as %r, want (%r, %s)" % (
            key, topic, last[0], value, source.name))

    def send(p, topic, size, key=None):
        """Produce one record of `size` bytes and wait for it: returns (error or None, offset)."""
        out = []
        p.produce(topic, key=key, value=b"v" * size, on_delivery=lambda err, msg: out.append((err, msg.offset())))
        check(p.flush(20) == 0, "%d-byte record: no delivery report" % size)
        return out[0]

    def expect_refused(p, topic, size, what, timeout=8):
        """The limit may reach the partition a moment after DescribeConfigs shows it: retry."""
        deadline = time.time() + timeout
        while True:
            err, off = send(p, topic, size)
            if err is not None:
                check(err.code() == KafkaError.MSG_SIZE_TOO_LARGE, "%s: %d-byte record: %s (code %d), want "
                      "MESSAGE_TOO_LARGE (10)" % (what, size, err.str(), err.code()))
                return
            if time.time() > deadline:
                raise Fail("%s: %d-byte record accepted at offset %d" % (what, size, off))
            time.sleep(0.5)

    def expect_accepted(p, topic, size, what):
        err, off = send(p, topic, size)
        check(err is None, "%s: %d-byte record refused: %s" % (what, size, err and err.str()))
        return off

    def expect_accepted_once_raised(p, topic, size, what, timeout=8):
        # A raised limit, like a lowered one, may reach the partition's leader a moment after
        # DescribeConfigs (answered by any broker of a cluster) shows it: retry the size refusal.
        deadline = time.time() + timeout
        while True:
            err, off = send(p, topic, size)
            if err is None or err.code() != KafkaError.MSG_SIZE_TOO_LARGE or time.time() > deadline:
                check(err is None, "%s: %d-byte record refused: %s" % (what, size, err and err.str()))
                return off
            time.sleep(0.5)

    def sc_config_alter(bs):
        a = cc.admin(bs)
        topic = common.unique_topic(CLIENT, "config_alter")
        other = topic + "-nooverride"
        cc.create_topic(bs, topic, 1)
        cc.create_topic(bs, other, 1)
        p = cc.producer(bs, **{"compression.type": "none", "linger.ms": 0, "retries": 0})
        expect_accepted(p, topic, 8000, "before alter")
        alter(a, ResourceType.TOPIC, topic, "max.message.bytes", "4096")
        wait_config(a, topic, "max.message.bytes", "4096", ConfigSource.DYNAMIC_TOPIC_CONFIG)
        expect_refused(p, topic, 8000, "max.message.bytes=4096")
        expect_accepted(p, topic, 1000, "max.message.bytes=4096")

        for key, bad in (("max.message.bytes", "-5"), ("cleanup.policy", "banana")):
            try:
                alter(a, ResourceType.TOPIC, topic, key, bad)
                raise Fail("%s=%s accepted" % (key, bad))
            except KafkaException as e:
                check(cc.kafka_error_code(e) == KafkaError.INVALID_CONFIG, "%s=%s: %s, want INVALID_CONFIG" % (key, bad, e))
        cfg = describe(a, ResourceType.TOPIC, topic)
        check(cfg["max.message.bytes"].value == "4096" and cfg["cleanup.policy"].value == "delete",
              "after refused alters: max.message.bytes=%s cleanup.policy=%s" % (
                  cfg["max.message.bytes"].value, cfg["cleanup.policy"].value))

        # librdkafka refuses a BROKER resource without a broker id (the cluster-default
        # resource ""), so the per-broker resource is altered instead, on every broker: in a
        # cluster (compat/run.py --cluster N) the topic's leader and the broker answering the
        # describe may be any of them.
        brokers = [str(b) for b in sorted(a.list_topics(timeout=OP).brokers)]
        names = ",".join(brokers)
        try:
            for broker in brokers:
                alter(a, ResourceType.BROKER, broker, "message.max.bytes", "6000")
            wait_config(a, other, "max.message.bytes", "6000", ConfigSource.DYNAMIC_BROKER_CONFIG)
            expect_refused(p, other, 9000, "broker(s) %s message.max.bytes=6000" % names)
            expect_accepted(p, other, 3000, "broker(s) %s message.max.bytes=6000" % names)
        finally:
            for broker in brokers:
                alter(a, ResourceType.BROKER, broker, "message.max.bytes", None, AlterConfigOpType.DELETE)
        wait_config(a, other, "max.message.bytes", "1048588", ConfigSource.DEFAULT_CONFIG)
        expect_accepted_once_raised(p, other, 9000, "broker override deleted")
        return ("topic max.message.bytes=4096 (DYNAMIC_TOPIC_CONFIG): 8000 B refused, 1000 B ok; -5 / banana -> "
                "INVALID_CONFIG; broker(s) %s message.max.bytes=6000 (DYNAMIC_BROKER_CONFIG on a topic without "
                "override): 9000 B refused, 3000 B ok; deleted -> default again (cluster default \"\" not "
                "addressable from librdkafka)" % names)

    def watermarks(c, topic):
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=OP)

    def first_record(bs, topic, reset, timeout=15):
        """A consumer assigned at offset 0 (below the log start): returns the first record's offset."""
        c = Consumer({"bootstrap.servers": bs, "group.id": common.unique_group(CLIENT, "retention_reset"),
                      "enable.auto.commit": False, "auto.offset.reset": reset, "socket.timeout.ms": 10000})
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            deadline = time.time() + timeout
            while time.time() < deadline:
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    raise Fail("%s consumer: %s" % (reset, m.error().str()))
                return m.offset()
            raise Fail("%s consumer assigned at 0 read nothing in %ds" % (reset, timeout))
        finally:
            c.close()

    def sc_retention_reset(bs):
        topic = common.unique_topic(CLIENT, "retention_reset")
        cc.create_topic(bs, topic, 1, {"segment.ms": "300", "retention.ms": "2000"})
        p = cc.producer(bs, **{"linger.ms": 5})
        stop = threading.Event()
        sent = [0]
        errors = []

        def produce():
            while not stop.is_set():
                p.produce(topic, key=b"k", value=b"r-%d" % sent[0] + b"x" * 200,
                          on_delivery=lambda err, msg: err and errors.append(err))
                sent[0] += 1
                p.poll(0.02)
            p.flush(10)

        member = cc.Member(bs, common.unique_group(CLIENT, "retention_reset"), topic, **{"auto.offset.reset": "earliest"})
        w = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "socket.timeout.ms": 10000})
        t = threading.Thread(target=produce, daemon=True)
        t.start()
        try:
            lows = []
            deadline = time.time() + 20
            while time.time() < deadline:
                end = time.time() + 0.5
                while time.time() < end:
                    member.poll(0.05)
                low = watermarks(w, topic)[0]
                if low > 0 and (not lows or low > lows[-1]):
                    lows.append(low)
                if len(lows) >= 3:
                    break
            check(len(lows) >= 3, "log start offset did not advance 3 times while producing (segment.ms=300, "
                  "retention.ms=2000) within 20s: low watermarks seen %s, %d records sent" % (lows, sent[0]))
            check(not errors, "produce errors: %s" % errors[:3])

            low_before, hw_before = watermarks(w, topic)
            early = first_record(bs, topic, "earliest")
            low_after = watermarks(w, topic)[0]
            check(low_before <= early <= low_after and early > 0,
                  "earliest reset from 0: first offset %d, want the log start (between %d and %d)" % (
                      early, low_before, low_after))
            hw_before2 = watermarks(w, topic)[1]
            late = first_record(bs, topic, "latest")
            hw_after = watermarks(w, topic)[1]
            check(hw_before2 <= late <= hw_after, "latest reset from 0: first offset %d, want the end (between %d and "
                  "%d; log start then %d)" % (late, hw_before2, hw_after, low_after))
        finally:
            stop.set()
            t.join(15)
        try:
            # The group member consumed along: offsets strictly increasing, caught up to the end.
            hw = watermarks(w, topic)[1]
            deadline = time.time() + 10
            while time.time() < deadline and (member.got.get(0) or [{"offset": -1}])[-1]["offset"] < hw - 1:
                member.poll(0.1)
            offs = [r["offset"] for r in member.got.get(0, [])]
            check(offs and offs[-1] == hw - 1, "group member's last offset %s, end offset %d" % (offs[-1:] or None, hw))
            check(all(a < b for a, b in zip(offs, offs[1:])), "group member's offsets not strictly increasing")
        finally:
            member.close()
            w.close()

        # DeleteRecords: the low watermark moves to the requested offset.
        dtopic = topic + "-delete"
        cc.create_topic(bs, dtopic, 1)
        recs = common.make_records(20, headers=False)
        cc.produce_all(p, dtopic, recs, partition=0)
        a = cc.admin(bs)
        fs = a.delete_records([TopicPartition(dtopic, 0, 7)], request_timeout=OP)
        res = list(fs.values())[0].result(timeout=OP + 5)
        check(res.low_watermark == 7, "delete_records(7): low watermark %d" % res.low_watermark)
        c = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "socket.timeout.ms": 10000})
        try:
            low, high = watermarks(c, dtopic)
        finally:
            c.close()
        check((low, high) == (7, 20), "after delete_records(7): watermarks (%d, %d), want (7, 20)" % (low, high))
        first = first_record(bs, dtopic, "earliest")
        check(first == 7, "earliest consumer after delete_records(7) starts at %d" % first)
        return ("log start advanced %s while producing; from 0: earliest -> %d (log start %d..%d), latest -> %d "
                "(end %d..%d); group member read %d records in order to the end; delete_records(7) -> low watermark "
                "7, earliest consumer starts at 7" % (lows, early, low_before, low_after, late, hw_before2, hw_after,
                                                      len(offs)))

    def read_from_start(bs, topic):
        c = Consumer({"bootstrap.servers": bs, "group.id": "compat-unused", "enable.auto.commit": False,
                      "enable.partition.eof": True, "socket.timeout.ms": 10000})
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            out = []
            deadline = time.time() + 10
            while time.time() < deadline:
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        return out
                    raise Fail("consume error: %s" % m.error().str())
                out.append((m.offset(), m.key(), m.value()))
            raise Fail("no end of partition within 10s")
        finally:
            c.close()

    def sc_compacted_topic(bs):
        topic = common.unique_topic(CLIENT, "compacted_topic")
        cc.create_topic(bs, topic, 1, {"cleanup.policy": "compact", "segment.ms": "100",
                                       "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"})
        p = cc.producer(bs, **{"linger.ms": 5, "retries": 0})
        keys = [b"key-%d" % i for i in range(5)]
        delivered = {}
        errors = []

        def cb(err, msg):
            if err is not None:
                errors.append(err)
            else:
                delivered[msg.value()] = msg.offset()

        last = {}
        for i in range(200):
            k = keys[i % 5]
            v = b"%s-update-%d" % (k, i)
            last[k] = v
            p.produce(topic, key=k, value=v, on_delivery=cb)
            p.poll(0)
        p.produce(topic, key=keys[4], value=None, on_delivery=cb)
        check(p.flush(20) == 0 and not errors, "produce: %s" % errors[:3])
        # A record without a key is refused by a compacted topic.
        err, off = send(p, topic, 10)
        check(err is not None, "keyless record accepted at offset %s on a compacted topic" % off)
        check(err.code() == KafkaError.INVALID_RECORD, "keyless record: %s (code %d), want INVALID_RECORD (87)" % (
            err.str(), err.code()))

        # The cleaner never touches the active segment: keep rolling it (segment.ms=100).
        seen = []
        deadline = time.time() + 30
        n = 0
        while time.time() < deadline:
            n += 1
            check(send(p, topic, 10, key=b"roll")[0] is None, "roll record refused")
            recs = read_from_start(bs, topic)
            counts = {}
            for o, k, v in recs:
                counts[k] = counts.get(k, 0) + 1
            seen = recs
            if all(counts.get(k, 0) <= 2 for k in keys[:4]) and all(
                    v is None for o, k, v in recs if k == keys[4]):
                break
            time.sleep(1)
        else:
            raise Fail("not compacted within 30s: %d records remain, per key %s" % (
                len(seen), {k: sum(1 for r in seen if r[1] == k) for k in keys}))
        offs = [o for o, k, v in seen]
        check(all(a < b for a, b in zip(offs, offs[1:])), "offsets not strictly increasing: %s" % offs[:20])
        for o, k, v in seen:
            if k == b"roll" or v is None:
                continue
            check(delivered.get(v) == o, "record %r at offset %d, was produced at offset %s (renumbered?)" % (
                v, o, delivered.get(v)))
        for k in keys[:4]:
            vals = [v for o, kk, v in seen if kk == k]
            check(vals and vals[-1] == last[k], "key %r: values %r, last produced %r" % (k, vals, last[k]))
        tomb = [o for o, k, v in seen if k == keys[4]]
        return ("201 records over 5 keys + tombstone; keyless -> %s; compacted to %d records (key-0..3 keep their "
                "last value at the original offset, key-4 %s), offsets increasing" % (
                    err.name(), len(seen), "tombstone only" if tomb else "gone entirely"))

    return {"config_alter": sc_config_alter, "retention_reset": sc_retention_reset,
            "compacted_topic": sc_compacted_topic}
