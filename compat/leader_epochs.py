#!/usr/bin/env python3
"""Leader epochs above 0 on a three-node cluster, the same steps against Apache Kafka 4.4 and
Arus (issue 15, KIP-101/320): a one-replica partition gets 3 records at its first leader
epoch, its leader is SIGKILLed (the partition goes leaderless) and restarted (elected again
at a higher epoch), 2 more records are written; then OffsetForLeaderEpoch v3 is asked for
every epoch from 0 to one past the current, with no, the current, an old and a newer
`current_leader_epoch`, ListOffsets v5 for the latest offset, and the leader's
`leader-epoch-checkpoint` is read. Prints one JSON document; with --expect FILE compares it
with a previous run's (e.g. Kafka's) and exits 1 on a difference.

    python3 compat/leader_epochs.py --launcher compat/reference/kafka-cluster.sh [--dir /tmp/le-kafka]
    python3 compat/leader_epochs.py --launcher compat/arus-cluster.sh \
        --expect compat/reference/leader_epochs-kafka-4.4.json

Produce goes through confluent-kafka (compat/.venv); everything else is spoken on one node's
socket with compat/kafka_wire.py, so the answers are that node's, not a client's retries.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_wire  # noqa: E402

TOPIC = "epochs"


def launcher(args, *cmd):
    out = subprocess.run([args.launcher, *cmd, "--dir", args.dir], check=True,
                         stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


def status(args):
    """{node id: "127.0.0.1:port"} of every node."""
    nodes = {}
    for line in launcher(args, "status").splitlines():
        fields = dict(f.split("=", 1) for f in line.split())
        nodes[int(fields["node"])] = "127.0.0.1:%s" % fields["port"]
    return nodes


def partition(addr):
    p = kafka_wire.metadata(addr, [TOPIC])["topics"].get(TOPIC, {}).get("partitions", {}).get(0)
    return (p["leader"], p["leader_epoch"]) if p else None


def led(addr):
    """(leader, epoch) once the node names a leader."""
    p = partition(addr)
    return p if p and p[0] >= 0 else None


def wait(what, f, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = f()
        except (OSError, kafka_wire.WireError):
            v = None
        if v is not None:
            return v
        time.sleep(0.1)
    raise SystemExit("timed out waiting for " + what)


def produce(bootstrap, n, tag):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                  "linger.ms": 0, "message.timeout.ms": 30000})
    for i in range(n):
        p.produce(TOPIC, value=("%s-%d" % (tag, i)).encode(), partition=0)
        # One batch per record, so the offsets are the same on both brokers.
        if p.flush(30) != 0:
            raise SystemExit("produce did not complete")


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def offset_for_leader_epoch(addr, current, epochs):
    """OffsetForLeaderEpoch v3 from a consumer: [(error, epoch, end offset)] per epoch."""
    body = struct.pack(">i", -1) + struct.pack(">i", 1) + string(TOPIC) + struct.pack(">i", len(epochs))
    for e in epochs:
        body += struct.pack(">iii", 0, current, e)
    r = kafka_wire.request(addr, 23, 3, body)
    r.i32()  # throttle
    out = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            err, _partition, epoch, end = r.i16(), r.i32(), r.i32(), r.i64()
            out.append([err, epoch, end])
    return out


def list_latest(addr, current):
    """ListOffsets v5 latest: [error, offset, leader epoch]."""
    body = struct.pack(">ib", -1, 0) + struct.pack(">i", 1) + string(TOPIC)
    body += struct.pack(">i", 1) + struct.pack(">iiq", 0, current, -1)
    r = kafka_wire.request(addr, 2, 5, body)
    r.i32()
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            _p, err, _ts, offset, epoch = r.i32(), r.i16(), r.i64(), r.i64(), r.i32()
            return [err, offset, epoch]
    raise SystemExit("ListOffsets answered no partition")


def compact_string(s):
    b = s.encode()
    return kafka_wire._uvarint(len(b) + 1) + b


def fetch(addr, current, offset, last_fetched_epoch):
    """Fetch v12 (a consumer, read_uncommitted, no session) of partition 0 from `offset` with
    `last_fetched_epoch`: [error, high watermark, diverging epoch, diverging end offset,
    record bytes returned > 0]."""
    body = struct.pack(">iiiibii", -1, 0, 1, 1 << 20, 0, 0, -1)
    body += kafka_wire._uvarint(2) + compact_string(TOPIC) + kafka_wire._uvarint(2)
    body += struct.pack(">iiqiqi", 0, current, offset, last_fetched_epoch, -1, 1 << 20) + b"\x00"
    body += b"\x00"  # topic tagged fields
    body += kafka_wire._uvarint(1)  # no forgotten topics
    body += kafka_wire._uvarint(1)  # rack_id ""
    body += b"\x00"  # tagged fields
    r = kafka_wire.request(addr, 1, 12, body, flexible=True)
    r.i32(), r.i16(), r.i32()  # throttle, error, session id
    for _ in range(r.uvarint() - 1):
        r.compact_string()
        for _ in range(r.uvarint() - 1):
            _p, err, hw, _lso, _start = r.i32(), r.i16(), r.i64(), r.i64(), r.i64()
            n = r.uvarint() - 1
            for _ in range(max(n, 0)):
                r.i64(), r.i64()
                r.tagged_fields()
            r.i32()  # preferred read replica
            n = r.uvarint() - 1
            records = r.take(n) if n > 0 else b""
            diverging = [-1, -1]
            for _ in range(r.uvarint()):
                tag, size = r.uvarint(), r.uvarint()
                field = kafka_wire.Reader(r.take(size))
                if tag == 0:
                    diverging = [field.i32(), field.i64()]
            return [err, hw] + diverging + [len(records) > 0]
    raise SystemExit("Fetch answered no partition")


def checkpoint(args, node):
    for sub in ("data", "logs", ""):
        path = os.path.join(args.dir, "node-%d" % node, sub, TOPIC + "-0", "leader-epoch-checkpoint")
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--launcher", required=True)
    ap.add_argument("--dir", help="the cluster's directory (default: a temporary one, removed after)")
    ap.add_argument("--expect", help="a previous run's JSON to compare with")
    args = ap.parse_args()
    temporary = args.dir is None
    if temporary:
        args.dir = tempfile.mkdtemp(prefix="leader-epochs-")
    try:
        return run(args)
    finally:
        if temporary:
            shutil.rmtree(args.dir, ignore_errors=True)


def run(args):
    launcher(args, "start", "--nodes", "3",
             "--override", "broker.session.timeout.ms=3000",
             "--override", "broker.heartbeat.interval.ms=300")
    try:
        nodes = status(args)
        bootstrap = ",".join(nodes.values())
        first = nodes[1]
        err, msg = kafka_wire.create_topic(first, TOPIC, 1, 1)
        if err:
            raise SystemExit("CreateTopics: %s %s" % (err, msg))
        leader, epoch0 = wait("a leader", lambda: led(first))
        produce(bootstrap, 3, "a")
        out = {"first_epoch": epoch0,
               "before": offset_for_leader_epoch(nodes[leader], epoch0, [epoch0])}
        other = next(a for n, a in nodes.items() if n != leader)
        launcher(args, "kill", str(leader))
        out["leaderless_epoch"] = wait("the partition leaderless",
                                       lambda: partition(other)[1] if partition(other)[0] == -1 else None)
        launcher(args, "start", str(leader))
        addr = nodes[leader]
        epoch = wait("the leader back", lambda: partition(addr)[1] if partition(addr)[0] == leader else None)
        out["epoch"] = epoch
        wait("the leader serving its epoch",
             lambda: True if offset_for_leader_epoch(addr, epoch, [epoch])[0][0] == 0 else None)
        produce(bootstrap, 2, "b")
        asked = list(range(0, epoch + 2))
        out["asked"] = asked
        for name, current in (("no_current", -1), ("current", epoch), ("old_current", 0),
                              ("newer_current", epoch + 1)):
            out[name] = offset_for_leader_epoch(addr, current, asked)
        out["other_node"] = offset_for_leader_epoch(other, epoch, [0])
        out["list_latest"] = list_latest(addr, epoch)
        # (current epoch, fetch offset, last fetched epoch) → the Fetch v12 answer.
        out["fetch"] = {"%d/%d/%d" % f: fetch(addr, *f) for f in
                        ((epoch, 3, 0), (epoch, 4, 0), (epoch, 3, 1), (epoch, 5, epoch), (epoch, 4, -1),
                         (epoch, 5, epoch + 1), (0, 4, 0))}
        out["checkpoint"] = checkpoint(args, leader)
    finally:
        launcher(args, "stop")
    print(json.dumps(out, indent=1))
    if args.expect:
        with open(args.expect) as f:
            expected = json.load(f)
        diff = {k: (expected.get(k), out.get(k)) for k in set(expected) | set(out) if expected.get(k) != out.get(k)}
        if diff:
            print("differs from %s: %s" % (args.expect, json.dumps(diff)), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
