#!/usr/bin/env python3
"""A few Kafka requests spoken directly on one node's socket, with the standard library only,
for the cluster harness: the cluster launchers' readiness wait, the compat runner's
leaders-per-broker check, the fault scenarios and the cluster benchmark all need to ask ONE
given node what IT believes (its own Metadata, the quorum leader it sees), which a client
library hides behind its own routing and retries.

    python3 compat/kafka_wire.py ready HOST:PORT[,HOST:PORT...] --brokers N [--timeout S]
    python3 compat/kafka_wire.py metadata HOST:PORT [--topic T]     # JSON
    python3 compat/kafka_wire.py quorum HOST:PORT                   # JSON (DescribeQuorum v0)
    python3 compat/kafka_wire.py leaders HOST:PORT                  # JSON {broker: partitions led}

Requests: Metadata v8 (non-flexible; every Kafka 2.x-4.x broker and Arus serve it),
DescribeQuorum v0 (flexible; a broker forwards it to the active controller), CreateTopics v4
(non-flexible). Only the fields the harness reads are decoded.
"""
import json
import socket
import struct
import sys
import time

CLIENT_ID = b"arus-cluster-harness"


class WireError(Exception):
    pass


# ------------------------------------------------------------------ framing

def _uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise WireError("response truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def compact_string(self):
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def array(self, item):
        n = self.i32()
        return [] if n < 0 else [item() for _ in range(n)]

    def compact_array(self, item):
        n = self.uvarint() - 1
        return [] if n < 0 else [item() for _ in range(n)]

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def _address(addr):
    host, port = addr.strip().rsplit(":", 1)
    return host, int(port)


def request(addr, api_key, version, body, flexible=False, timeout=5.0):
    """Sends one request to addr ("host:port") on a fresh connection; returns a Reader
    positioned at the response body."""
    header = struct.pack(">hhih", api_key, version, 1, len(CLIENT_ID)) + CLIENT_ID
    if flexible:
        header += b"\x00"
    frame = header + body
    with socket.create_connection(_address(addr), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(frame)) + frame)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise WireError("connection closed by %s" % addr)
                buf += chunk
            return buf

        (size,) = struct.unpack(">i", read(4))
        r = Reader(read(size))
    if r.i32() != 1:
        raise WireError("correlation id mismatch")
    if flexible:
        r.tagged_fields()
    return r


# ------------------------------------------------------------------ Metadata v8

def metadata(addr, topics=None, timeout=5.0):
    """The node's own Metadata answer: {"brokers": {id: "host:port"}, "cluster_id",
    "controller_id", "topics": {name: {"error": code, "partitions": {index: {"leader",
    "leader_epoch", "replicas", "isr", "offline", "error"}}}}}. topics=None asks for all."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics))
        for t in topics:
            b = t.encode()
            body += struct.pack(">h", len(b)) + b
    # allow_auto_topic_creation=false, include_cluster/topic_authorized_operations=false
    body += b"\x00\x00\x00"
    r = request(addr, 3, 8, body, timeout=timeout)
    r.i32()  # throttle
    brokers = {}
    for _ in range(r.i32()):
        node, host, port = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers[node] = "%s:%d" % (host, port)
    cluster_id = r.string()
    controller_id = r.i32()
    out_topics = {}
    for _ in range(r.i32()):
        err, name = r.i16(), r.string()
        r.i8()  # is_internal
        parts = {}
        for _ in range(r.i32()):
            perr, idx, leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
            replicas, isr, offline = r.array(r.i32), r.array(r.i32), r.array(r.i32)
            parts[idx] = {"error": perr, "leader": leader, "leader_epoch": epoch,
                          "replicas": replicas, "isr": isr, "offline": offline}
        r.i32()  # topic authorized operations
        out_topics[name] = {"error": err, "partitions": parts}
    return {"brokers": brokers, "cluster_id": cluster_id, "controller_id": controller_id, "topics": out_topics}


def leaders_per_broker(addr, include_internal=False):
    """{broker id: number of partitions it leads} over every topic the node lists (every
    registered broker appears, with 0 if it leads nothing); -1 counts offline partitions."""
    md = metadata(addr)
    counts = {b: 0 for b in md["brokers"]}
    for name, t in md["topics"].items():
        if name.startswith("__") and not include_internal:
            continue
        for p in t["partitions"].values():
            counts[p["leader"]] = counts.get(p["leader"], 0) + 1
    return counts


# ------------------------------------------------------------------ DescribeQuorum v0

def describe_quorum(addr, timeout=5.0):
    """{"error", "leader_id", "leader_epoch", "high_watermark", "voters": [(id, leo)],
    "observers": [(id, leo)]} for __cluster_metadata-0, as the node (forwarding to the
    active controller when it is a broker) reports it."""
    topic = b"__cluster_metadata"
    body = _uvarint(2) + _uvarint(len(topic) + 1) + topic + _uvarint(2) + struct.pack(">i", 0) + b"\x00" + b"\x00" + b"\x00"
    r = request(addr, 55, 0, body, flexible=True, timeout=timeout)
    err = r.i16()
    out = {"error": err, "leader_id": -1, "leader_epoch": -1, "high_watermark": -1, "voters": [], "observers": []}

    def replica():
        rid, leo = r.i32(), r.i64()
        r.tagged_fields()
        return (rid, leo)

    for _ in range(r.uvarint() - 1):
        r.compact_string()
        for _ in range(r.uvarint() - 1):
            r.i32()
            perr, leader, epoch, hw = r.i16(), r.i32(), r.i32(), r.i64()
            voters, observers = r.compact_array(replica), r.compact_array(replica)
            r.tagged_fields()
            out.update(error=err or perr, leader_id=leader, leader_epoch=epoch, high_watermark=hw,
                       voters=voters, observers=observers)
        r.tagged_fields()
    return out


# ------------------------------------------------------------------ CreateTopics v4

def create_topic(addr, name, partitions, replication_factor=1, timeout_ms=30000, timeout=40.0):
    """CreateTopics v4 for one topic; returns (error_code, error_message)."""
    b = name.encode()
    body = struct.pack(">i", 1) + struct.pack(">h", len(b)) + b + struct.pack(">ih", partitions, replication_factor)
    body += struct.pack(">i", 0) + struct.pack(">i", 0)  # assignments, configs
    body += struct.pack(">ib", timeout_ms, 0)  # timeout, validate_only
    r = request(addr, 19, 4, body, timeout=timeout)
    r.i32()  # throttle
    results = r.array(lambda: (r.string(), r.i16(), r.string()))
    if not results:
        raise WireError("CreateTopics answered no topic")
    return results[0][1], results[0][2]


# ------------------------------------------------------------------ readiness

def registered_everywhere(addrs, brokers):
    """True when every node in addrs answers Metadata listing `brokers` brokers (Kafka lists
    only registered, unfenced brokers)."""
    for a in addrs:
        try:
            if len(metadata(a, topics=[], timeout=2.0)["brokers"]) < brokers:
                return False
        except (OSError, WireError, struct.error):
            return False
    return True


def wait_ready(addrs, brokers, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if registered_everywhere(addrs, brokers):
            return True
        time.sleep(0.05)
    return False


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, addr, rest = argv[0], argv[1], argv[2:]
    opts = dict(zip(rest[::2], rest[1::2]))
    if cmd == "ready":
        addrs = addr.split(",")
        ok = wait_ready(addrs, int(opts.get("--brokers", len(addrs))), float(opts.get("--timeout", "120")))
        return 0 if ok else 1
    first = addr.split(",")[0]
    if cmd == "metadata":
        topics = [opts["--topic"]] if "--topic" in opts else None
        print(json.dumps(metadata(first, topics), sort_keys=True))
    elif cmd == "quorum":
        print(json.dumps(describe_quorum(first)))
    elif cmd == "leaders":
        print(json.dumps(leaders_per_broker(first, "--internal" in rest)))
    else:
        print("unknown command %s" % cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
