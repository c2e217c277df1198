"""Log-lifecycle scenarios (issue 5) for kafka-python: config_alter, retention_reset,
compacted_topic. `scenarios(kp)` takes the kafka_python_client module and returns the
scenario table. kafka-python has only the non-incremental AlterConfigs (the whole set of a
resource's dynamic configs is replaced) and DescribeConfigs up to v2 (with config sources)."""
import threading
import time

from kafka import KafkaConsumer, TopicPartition
from kafka import errors as Errors
from kafka.admin import ConfigResource, ConfigResourceType

import common
from common import Fail, check

CLIENT = "kafkapy"
# DescribeConfigs v1+ config_source values (Kafka's DescribeConfigsResponse.ConfigSource).
SOURCES = {1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
           4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG"}


def scenarios(kp):
    def describe(a, topic):
        """{name: (value, source name)} of a topic."""
        out = {}
        for resp in a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]):
            for res in resp.resources:
                check(res[0] == 0, "describe_configs error %s %s" % (res[0], res[1]))
                for e in res[4]:
                    # v1+: (name, value, read_only, config_source, is_sensitive, synonyms)
                    out[e[0]] = (e[1], SOURCES.get(e[3], e[3]))
        return out

    def alter(a, rtype, name, configs):
        """AlterConfigs (whole set); returns the error code."""
        resp = a.alter_configs([ConfigResource(rtype, name, configs=configs)])
        codes = [res[0] for res in resp.resources]
        return codes[0] if codes else -1

    def cluster_defaults(a):
        bid = a.describe_cluster()["brokers"][0]["node_id"]
        out = {}
        for resp in a.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(bid))], include_synonyms=True):
            for res in resp.resources:
                check(res[0] == 0, "describe_configs broker %s: error %s %s" % (bid, res[0], res[1]))
                for e in res[4]:
                    for syn in e[5]:
                        if syn[2] == 3 and syn[1] is not None:
                            out[syn[0]] = syn[1]
        return out

    def wait_config(a, topic, key, value, source, timeout=10):
        last = [None]

        def ok():
            last[0] = describe(a, topic).get(key)
            return last[0] == (value, source)
        check(common.wait_until(ok, timeout, 0.3), "%s of %s described as %r, want (%r, %s)" % (
            key, topic, last[0], value, source))

    def send(p, topic, size, key=None):
        try:
            md = p.send(topic, key=key, value=b"v" * size).get(timeout=20)
            return None, md.offset
        except Errors.KafkaError as e:
            return e, None

    def expect_refused(p, topic, size, what, timeout=8):
        deadline = time.time() + timeout
        while True:
            err, off = send(p, topic, size)
            if err is not None:
                check(isinstance(err, Errors.MessageSizeTooLargeError), "%s: %d-byte record: %s: %s, want "
                      "MessageSizeTooLargeError" % (what, size, type(err).__name__, err))
                return
            if time.time() > deadline:
                raise Fail("%s: %d-byte record accepted at offset %s" % (what, size, off))
            time.sleep(0.5)

    def expect_accepted(p, topic, size, what):
        err, off = send(p, topic, size)
        check(err is None, "%s: %d-byte record refused: %s: %s" % (what, size, type(err).__name__, err))

    def expect_accepted_once_raised(p, topic, size, what, timeout=8):
        # A raised limit, like a lowered one, may reach the partition's leader a moment after
        # DescribeConfigs (answered by any broker of a cluster) shows it: retry the size refusal.
        deadline = time.time() + timeout
        while True:
            err, off = send(p, topic, size)
            if not isinstance(err, Errors.MessageSizeTooLargeError) or time.time() > deadline:
                check(err is None, "%s: %d-byte record refused: %s: %s" % (what, size, type(err).__name__, err))
                return
            time.sleep(0.5)

    def sc_config_alter(bs):
        topic = common.unique_topic(CLIENT, "config_alter")
        other = topic + "-nooverride"
        kp.create_topic(bs, topic, 1)
        kp.create_topic(bs, other, 1)
        a = kp.admin(bs)
        p = kp.producer(bs, linger_ms=0, retries=0, enable_idempotence=False)
        try:
            expect_accepted(p, topic, 8000, "before alter")
            code = alter(a, ConfigResourceType.TOPIC, topic, {"max.message.bytes": "4096"})
            check(code == 0, "alter_configs max.message.bytes=4096: error %s" % code)
            wait_config(a, topic, "max.message.bytes", "4096", "DYNAMIC_TOPIC_CONFIG")
            expect_refused(p, topic, 8000, "max.message.bytes=4096")
            expect_accepted(p, topic, 1000, "max.message.bytes=4096")
            for key, bad in (("max.message.bytes", "-5"), ("cleanup.policy", "banana")):
                code = alter(a, ConfigResourceType.TOPIC, topic, {"max.message.bytes": "4096", key: bad})
                check(code == Errors.InvalidConfigurationError.errno, "%s=%s: error code %s, want INVALID_CONFIG (40)" % (
                    key, bad, code))
            cfg = describe(a, topic)
            check(cfg["max.message.bytes"][0] == "4096" and cfg["cleanup.policy"][0] == "delete",
                  "after refused alters: %s %s" % (cfg["max.message.bytes"], cfg["cleanup.policy"]))

            # Cluster-wide default (broker resource ""). AlterConfigs replaces the resource's whole
            # dynamic set (Kafka 4.1 refuses to drop its cluster-level min.insync.replicas while ELR
            # is enabled), so the current cluster defaults are read first (the DYNAMIC_DEFAULT_BROKER_CONFIG
            # synonyms of the broker's configs: kafka-python describes only numbered brokers) and kept.
            before = cluster_defaults(a)
            try:
                code = alter(a, ConfigResourceType.BROKER, "", dict(before, **{"message.max.bytes": "6000"}))
                check(code == 0, "alter_configs BROKER \"\" message.max.bytes=6000: error %s" % code)
                wait_config(a, other, "max.message.bytes", "6000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
                expect_refused(p, other, 9000, "cluster default message.max.bytes=6000")
                expect_accepted(p, other, 3000, "cluster default message.max.bytes=6000")
            finally:
                code = alter(a, ConfigResourceType.BROKER, "", before)
            check(code == 0, "restoring the cluster defaults %s: error %s" % (before, code))
            wait_config(a, other, "max.message.bytes", "1048588", "DEFAULT_CONFIG")
            expect_accepted_once_raised(p, other, 9000, "cluster default removed")
        finally:
            p.close(timeout=5)
            a.close()
        return ("topic max.message.bytes=4096 (DYNAMIC_TOPIC_CONFIG, AlterConfigs): 8000 B refused, 1000 B ok; -5 / "
                "banana -> INVALID_CONFIG; cluster default message.max.bytes=6000 (DYNAMIC_DEFAULT_BROKER_CONFIG on a "
                "topic without override): 9000 B refused, 3000 B ok; removed -> DEFAULT_CONFIG 1048588")

    def first_record(bs, topic, reset, timeout=15):
        c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False, auto_offset_reset=reset,
                          **kp.COMMON)
        try:
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            c.seek(tp, 0)
            deadline = time.time() + timeout
            while time.time() < deadline:
                for _, msgs in c.poll(timeout_ms=200).items():
                    for m in msgs:
                        return m.offset
            raise Fail("%s consumer assigned at 0 read nothing in %ds" % (reset, timeout))
        finally:
            c.close()

    def sc_retention_reset(bs):
        topic = common.unique_topic(CLIENT, "retention_reset")
        kp.create_topic(bs, topic, 1, {"segment.ms": "300", "retention.ms": "2000"})
        tp = TopicPartition(topic, 0)
        p = kp.producer(bs, linger_ms=5)
        w = kp.consumer(bs)
        member = KafkaConsumer(topic, bootstrap_servers=bs, group_id=common.unique_group(CLIENT, "retention_reset"),
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               session_timeout_ms=common.SESSION_TIMEOUT_MS, heartbeat_interval_ms=common.HEARTBEAT_MS,
                               **kp.COMMON)

        def wm():
            return w.beginning_offsets([tp])[tp], w.end_offsets([tp])[tp]

        stop = threading.Event()
        sent = [0]
        errors = []

        def produce():
            while not stop.is_set():
                f = p.send(topic, key=b"k", value=b"r-%d" % sent[0] + b"x" * 200)
                f.add_errback(errors.append)
                sent[0] += 1
                time.sleep(0.02)
            p.flush(timeout=10)

        offs = []

        def poll_member(ms):
            for _, msgs in member.poll(timeout_ms=ms).items():
                offs.extend(m.offset for m in msgs)

        t = threading.Thread(target=produce, daemon=True)
        t.start()
        try:
            lows = []
            deadline = time.time() + 20
            while time.time() < deadline and len(lows) < 3:
                poll_member(500)
                low = wm()[0]
                if low > 0 and (not lows or low > lows[-1]):
                    lows.append(low)
            check(len(lows) >= 3, "log start offset did not advance 3 times while producing (segment.ms=300, "
                  "retention.ms=2000) within 20s: low watermarks seen %s, %d records sent" % (lows, sent[0]))
            check(not errors, "produce errors: %s" % errors[:3])
            low_before = wm()[0]
            early = first_record(bs, topic, "earliest")
            low_after = wm()[0]
            check(low_before <= early <= low_after and early > 0,
                  "earliest reset from 0: first offset %d, want the log start (between %d and %d)" % (
                      early, low_before, low_after))
            hw_before = wm()[1]
            late = first_record(bs, topic, "latest")
            hw_after = wm()[1]
            check(hw_before <= late <= hw_after, "latest reset from 0: first offset %d, want the end (between %d and "
                  "%d; log start then %d)" % (late, hw_before, hw_after, low_after))
        finally:
            stop.set()
            t.join(15)
        try:
            hw = wm()[1]
            deadline = time.time() + 10
            while time.time() < deadline and (not offs or offs[-1] < hw - 1):
                poll_member(200)
            check(offs and offs[-1] == hw - 1, "group member's last offset %s, end offset %d" % (offs[-1:] or None, hw))
            check(all(x < y for x, y in zip(offs, offs[1:])), "group member's offsets not strictly increasing")
        finally:
            member.close()

        dtopic = topic + "-delete"
        kp.create_topic(bs, dtopic, 1)
        dtp = TopicPartition(dtopic, 0)
        kp.produce_all(p, dtopic, common.make_records(20, headers=False), partition=0)
        p.close(timeout=5)
        a = kp.admin(bs)
        try:
            res = a.delete_records({dtp: 7})
        finally:
            a.close()
        low_wm = res[dtp]["low_watermark"]
        check(low_wm == 7, "delete_records(7): low watermark %s" % low_wm)
        lo, hi = w.beginning_offsets([dtp])[dtp], w.end_offsets([dtp])[dtp]
        w.close()
        check((lo, hi) == (7, 20), "after delete_records(7): watermarks (%d, %d), want (7, 20)" % (lo, hi))
        first = first_record(bs, dtopic, "earliest")
        check(first == 7, "earliest consumer after delete_records(7) starts at %d" % first)
        return ("log start advanced %s while producing; from 0: earliest -> %d (log start %d..%d), latest -> %d "
                "(end %d..%d); group member read %d records in order to the end; delete_records(7) -> low watermark "
                "7, earliest consumer starts at 7" % (lows, early, low_before, low_after, late, hw_before, hw_after,
                                                      len(offs)))

    def read_from_start(bs, topic):
        c = kp.consumer(bs)
        try:
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            c.seek(tp, 0)
            end = c.end_offsets([tp])[tp]
            out = []
            deadline = time.time() + 10
            while c.position(tp) < end:
                check(time.time() < deadline, "did not reach the end offset %d within 10s" % end)
                for _, msgs in c.poll(timeout_ms=200).items():
                    out.extend((m.offset, m.key, m.value) for m in msgs)
            return out
        finally:
            c.close()

    def sc_compacted_topic(bs):
        topic = common.unique_topic(CLIENT, "compacted_topic")
        kp.create_topic(bs, topic, 1, {"cleanup.policy": "compact", "segment.ms": "100",
                                       "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"})
        p = kp.producer(bs, linger_ms=5, retries=0, enable_idempotence=False)
        try:
            keys = [b"key-%d" % i for i in range(5)]
            last, futs = {}, []
            for i in range(200):
                k = keys[i % 5]
                v = b"%s-update-%d" % (k, i)
                last[k] = v
                futs.append((v, p.send(topic, key=k, value=v)))
            tomb_f = p.send(topic, key=keys[4], value=None)
            p.flush(timeout=20)
            delivered = {v: f.get(timeout=5).offset for v, f in futs}
            tomb_f.get(timeout=5)
            err, off = send(p, topic, 10)
            check(err is not None, "keyless record accepted at offset %s on a compacted topic" % off)
            check(getattr(err, "errno", None) == 87, "keyless record: %s: %s, want INVALID_RECORD (87)" % (
                type(err).__name__, err))

            seen = []
            deadline = time.time() + 30
            while True:
                check(send(p, topic, 10, key=b"roll")[0] is None, "roll record refused")
                seen = read_from_start(bs, topic)
                counts = {}
                for o, k, v in seen:
                    counts[k] = counts.get(k, 0) + 1
                if all(counts.get(k, 0) <= 2 for k in keys[:4]) and all(v is None for o, k, v in seen if k == keys[4]):
                    break
                check(time.time() < deadline, "not compacted within 30s: %d records remain, per key %s" % (
                    len(seen), counts))
                time.sleep(1)
        finally:
            p.close(timeout=5)
        offs = [o for o, k, v in seen]
        check(all(x < y for x, y in zip(offs, offs[1:])), "offsets not strictly increasing: %s" % offs[:20])
        for o, k, v in seen:
            if k == b"roll" or v is None:
                continue
            check(delivered.get(v) == o, "record %r at offset %d, produced at %s" % (v, o, delivered.get(v)))
        for k in keys[:4]:
            vals = [v for o, kk, v in seen if kk == k]
            check(vals and vals[-1] == last[k], "key %r: values %r, last produced %r" % (k, vals, last[k]))
        tomb = any(k == keys[4] for o, k, v in seen)
        return ("201 records over 5 keys + tombstone; keyless -> %s; compacted to %d records (key-0..3 keep their last "
                "value at the original offset, key-4 %s), offsets increasing" % (
                    type(err).__name__, len(seen), "tombstone only" if tomb else "gone entirely"))

    return {"config_alter": sc_config_alter, "retention_reset": sc_retention_reset,
            "compacted_topic": sc_compacted_topic}
