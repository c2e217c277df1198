"""Shared helpers for the Python conformance programs (data, comparison, runner).

Every scenario function takes the bootstrap address and returns a detail
string on success, raises Fail (or any exception) on failure, or raises
NotApplicable(reason).
"""
import argparse
import json
import os
import sys
import threading
import time
import traceback
import uuid

ALL_SCENARIOS = [
    "roundtrip",
    "key_order",
    "compression_gzip",
    "compression_snappy",
    "compression_lz4",
    "compression_zstd",
    "acks_0",
    "acks_1",
    "acks_all",
    "list_offsets_time",
    "topic_admin",
    "message_too_large",
    "group_split",
    "group_member_leaves",
    "two_groups",
    "commit_resume",
    "cooperative_sticky",
    "static_member",
    "offsets_admin",
    "txn_commit_abort",
    "txn_consume_transform_produce",
    "txn_fencing",
    "config_alter",
    "retention_reset",
    "compacted_topic",
]

# run.py sets COMPAT_IDEMPOTENCE=1 when the broker advertises InitProducerId: the
# producers then keep their client's default idempotence instead of forcing it off.
IDEMPOTENCE = os.environ.get("COMPAT_IDEMPOTENCE") == "1"

# Transaction scenarios: a transaction abandoned by a killed producer is aborted by the
# broker after this timeout (run.py lowers the broker's abort-check interval to 1 s).
TXN_TIMEOUT_MS = 5000

# Group scenarios (issue 3): session/heartbeat settings short enough for the
# scenario timeout; static members get a generous session timeout instead.
SESSION_TIMEOUT_MS = 10000
HEARTBEAT_MS = 1000
STATIC_SESSION_TIMEOUT_MS = 30000

SCENARIO_TIMEOUT_S = float(os.environ.get("COMPAT_SCENARIO_TIMEOUT", "45"))
OP_TIMEOUT_S = 15.0


class Fail(Exception):
    pass


class NotApplicable(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def unique_topic(client, scenario):
    return "compat-%s-%s-%s" % (client, scenario.replace("_", "-"), uuid.uuid4().hex[:10])


def unique_group(client, scenario, n=""):
    return "compat-%s-%s-group%s-%s" % (client, scenario.replace("_", "-"), n, uuid.uuid4().hex[:10])


def merge_members(reads):
    """Union of what several members of one group read: list of {partition: [recs]}.

    Fails if a partition was read by more than one member (each partition has one
    owner per group, and nobody re-read anything after a rebalance)."""
    out, owner = {}, {}
    for m, got in enumerate(reads):
        for p, recs in got.items():
            if not recs:
                continue
            check(p not in owner, "partition %d read by members %d and %d" % (p, owner.get(p, -1), m))
            owner[p] = m
            out[p] = list(recs)
    return out


def check_only(sent, got, what):
    """got (partition -> recs, any offsets) holds exactly the records of `sent`, each once."""
    values = {r["value"] for r in sent}
    seen = set()
    for p, recs in got.items():
        for r in recs:
            check(r["value"] in values, "%s: partition %d offset %d: record not in the expected set" % (what, p, r["offset"]))
            check(r["value"] not in seen, "%s: partition %d offset %d read twice" % (what, p, r["offset"]))
            seen.add(r["value"])
    check(len(seen) == len(values), "%s: read %d of %d expected records" % (what, len(seen), len(values)))


def check_exact(expected, got, what, order=True):
    """got (partition -> recs read, in read order) holds exactly `expected` (produce order), each once.

    Nothing else may appear (an aborted record or a control marker surfacing as a record
    fails), and within each partition the records come in produce order."""
    index = {r["value"]: i for i, r in enumerate(expected)}
    seen = set()
    for p, recs in sorted(got.items()):
        last = -1
        for r in recs:
            i = index.get(r["value"])
            check(i is not None, "%s: partition %d offset %d: unexpected record %r (aborted, foreign or a control "
                  "marker)" % (what, p, r["offset"], (r["value"] or b"")[:60]))
            check(i not in seen, "%s: partition %d offset %d: record %d read twice" % (what, p, r["offset"], i))
            seen.add(i)
            check(r["key"] == expected[i]["key"], "%s: record %d: key %r != %r" % (what, i, r["key"], expected[i]["key"]))
            check(not order or i > last, "%s: partition %d: record %d read after record %d (order broken)" % (what, p, i, last))
            last = i
    check(len(seen) == len(expected), "%s: read %d of the %d expected records" % (what, len(seen), len(expected)))
    return len(seen)


def base_timestamp():
    # One hour ago, whole second: clearly an explicit create time, not "now".
    return (int(time.time()) - 3600) * 1000


def make_records(n, nkeys=None, headers=True, null_header=True, value_pad=0):
    """Records in produce order: dicts with bytes key/value, headers list, timestamp."""
    ts0 = base_timestamp()
    tag = uuid.uuid4().hex[:8]
    recs = []
    for i in range(n):
        key = ("key-%d" % (i % nkeys if nkeys else i)).encode()
        value = ("value-%s-%d-" % (tag, i)).encode() + b"x" * value_pad
        hdrs = []
        if headers:
            hdrs.append(("h-index", ("%d" % i).encode()))
            hdrs.append(("h-null", None) if null_header else ("h-empty", b""))
        recs.append({"key": key, "value": value, "headers": hdrs, "timestamp": ts0 + i * 7})
    return recs


def norm_headers(hdrs):
    out = []
    for k, v in hdrs or []:
        if isinstance(k, bytes):
            k = k.decode()
        if isinstance(v, str):
            v = v.encode()
        out.append((k, v))
    return out


def compare(sent, got, check_headers=True, check_ts=True, key_partition=False):
    """Compare records sent (produce order) to records read.

    got: {partition: [ {offset, key, value, headers, timestamp}, ... ]} in read order.
    Checks: same count, every sent record read exactly once with equal
    key/value/headers/timestamp, offsets contiguous from 0 per partition,
    per-partition order == produce order, and optionally one partition per key.
    """
    total = sum(len(v) for v in got.values())
    check(total == len(sent), "read %d records, sent %d" % (total, len(sent)))
    index = {r["value"]: i for i, r in enumerate(sent)}
    seen = set()
    key_parts = {}
    for p, recs in sorted(got.items()):
        last_idx = -1
        for n, r in enumerate(recs):
            check(r["offset"] == n, "partition %d: offset %s at position %d (not contiguous from 0)" % (p, r["offset"], n))
            i = index.get(r["value"])
            check(i is not None, "partition %d offset %d: unexpected value %r" % (p, r["offset"], r["value"][:60]))
            check(i not in seen, "record %d read twice" % i)
            seen.add(i)
            s = sent[i]
            check(r["key"] == s["key"], "record %d: key %r != sent %r" % (i, r["key"], s["key"]))
            if check_headers:
                check(norm_headers(r["headers"]) == norm_headers(s["headers"]),
                      "record %d: headers %r != sent %r" % (i, r["headers"], s["headers"]))
            if check_ts:
                check(r["timestamp"] == s["timestamp"],
                      "record %d: timestamp %r != sent %r" % (i, r["timestamp"], s["timestamp"]))
            check(i > last_idx, "partition %d: record %d read after record %d (produce order broken)" % (p, i, last_idx))
            last_idx = i
            if key_partition:
                prev = key_parts.setdefault(s["key"], p)
                check(prev == p, "key %r found in partitions %d and %d" % (s["key"], prev, p))
    return "%d records over %d partitions verified" % (total, len([p for p in got if got[p]]))


def emit(scenario, status, detail):
    print(json.dumps({"scenario": scenario, "status": status, "detail": detail}), flush=True)


def run_scenarios(table, argv=None, extra_args=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS))
    if extra_args:
        extra_args(ap)
    args = ap.parse_args(argv)
    if getattr(args, "verify", None):
        return args
    names = [s for s in args.scenarios.split(",") if s]
    for name in names:
        fn = table.get(name)
        if fn is None:
            emit(name, "fail", "unknown scenario")
            continue
        result = {}

        def target():
            try:
                result["detail"] = fn(args.bootstrap)
                result["status"] = "pass"
            except NotApplicable as e:
                result["status"], result["detail"] = "n/a", str(e)
            except Fail as e:
                result["status"], result["detail"] = "fail", str(e)
            except BaseException as e:  # noqa: BLE001 - report everything
                here = os.path.dirname(os.path.abspath(__file__))
                frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(here)]
                where = " (at %s:%d)" % (os.path.basename(frames[-1].filename), frames[-1].lineno) if frames else ""
                result["status"] = "fail"
                result["detail"] = "%s: %s%s" % (type(e).__name__, e, where)

        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(SCENARIO_TIMEOUT_S)
        if t.is_alive():
            emit(name, "fail", "timed out after %.0fs" % SCENARIO_TIMEOUT_S)
        else:
            emit(name, result["status"], result["detail"])
    sys.stdout.flush()
    sys.stderr.flush()
    # Stuck client threads must not keep the process alive.
    os._exit(0)


def wait_until(fn, timeout, interval=0.2):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(interval)


def wait_topic_everywhere(bs, topic, partitions, timeout=10):
    """Waits until every broker of the bootstrap string lists `topic` with `partitions` led
    partitions in its own Metadata. Brokers replay a created topic asynchronously, so on a
    cluster (compat/run.py --cluster N) a client asking another broker right after CreateTopics
    may still hear UNKNOWN_TOPIC_OR_PARTITION (Kafka's own test utilities wait the same way:
    TestUtils.waitForAllPartitionsMetadata). One node: returns at once."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import kafka_wire
    addrs = [a for a in bs.split(",") if a]
    if len(addrs) < 2:
        return

    def known(a):
        try:
            t = kafka_wire.metadata(a, [topic], timeout=2)["topics"].get(topic)
        except (OSError, kafka_wire.WireError):
            return False
        return bool(t) and t["error"] == 0 and len(t["partitions"]) == partitions and all(
            p["leader"] >= 0 for p in t["partitions"].values())

    wait_until(lambda: all(known(a) for a in addrs), timeout, interval=0.05)
