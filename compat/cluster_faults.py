#!/usr/bin/env python3
"""Faults on a real cluster of N combined nodes (issue 14), through the cluster launcher contract
(compat/cluster-launcher.sh), so the same checks run on Apache Kafka 4.4 and on Arus:

    compat/.venv/bin/python compat/cluster_faults.py --launcher compat/reference/kafka-cluster.sh
    compat/.venv/bin/python compat/cluster_faults.py --launcher compat/arus-cluster.sh [--scenarios controller_kill]

- controller_kill: the active controller (DescribeQuorum's leader) gets SIGKILL. A new leader,
  another voter, must be named by every surviving node within --election-timeout s (default 30),
  and CreateTopics sent to a survivor must succeed within --admin-timeout s (default 60) of the
  kill; the new topic must be listed with a leader for each partition. The killed node restarts:
  it must rejoin as a voter (every voter's log end offset reaches the high watermark) and list
  the new topic in its own Metadata.
- broker_kill: a topic with 3 partitions per node (RF 1) gets 20 records per partition
  (confluent-kafka, acks=all), and a node that is not the active controller gets SIGKILL. The
  survivors' Metadata must stop listing it (fenced) and report every partition it led offline
  (leader -1) within broker.session.timeout.ms (+ --grace-ms for the poll and the metadata
  propagation, default 1000), while every other partition keeps its leader. After the restart
  every partition it led is online again, led by it, and holds exactly its 20 records.

Prints PASS/FAIL per scenario with the measured times; exit status 1 if any failed, 3 if the
launcher says the server cannot run a cluster yet.
"""
import argparse
import os
import sys
import time
import uuid

COMPAT = os.path.dirname(os.path.abspath(__file__))
VENV_PY = os.path.join(COMPAT, ".venv", "bin", "python")
try:
    import confluent_kafka  # noqa: F401
except ImportError:
    if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(COMPAT, ".venv")):
        os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])
    raise
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

sys.path.insert(0, COMPAT)
import kafka_wire  # noqa: E402
from cluster_control import ARUS_LAUNCHER, Cluster, LauncherError  # noqa: E402

SESSION_TIMEOUT_MS = 9000  # Kafka's broker.session.timeout.ms default (both servers get it explicitly)
HEARTBEAT_MS = 2000        # broker.heartbeat.interval.ms default


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def quorum_from(addrs, exclude=()):
    """DescribeQuorum through the first answering node of addrs: (leader, answer)."""
    last = None
    for a in addrs:
        try:
            q = kafka_wire.describe_quorum(a, timeout=3)
            if q["error"] == 0:
                return q["leader_id"], q
            last = "error %d from %s" % (q["error"], a)
        except (OSError, kafka_wire.WireError) as e:
            last = "%s: %s" % (a, e)
    raise Fail("no node answered DescribeQuorum: %s" % last)


def wait_for(fn, timeout, interval=0.02):
    """Polls fn() until it returns a true value; returns (value, seconds) or raises Fail."""
    t0 = time.time()
    while True:
        try:
            v = fn()
        except (OSError, kafka_wire.WireError):
            v = None
        if v:
            return v, time.time() - t0
        if time.time() - t0 > timeout:
            return None, time.time() - t0
        time.sleep(interval)


def controller_kill(cluster, args):
    addrs = cluster.addresses()
    leader, q = quorum_from(addrs.values())
    check(leader in addrs, "DescribeQuorum leader %s is not a node (%s)" % (leader, sorted(addrs)))
    survivors = [a for n, a in addrs.items() if n != leader]
    t0 = cluster.sigkill(leader)

    def new_leader():
        seen = set()
        for a in survivors:
            q = kafka_wire.describe_quorum(a, timeout=2)
            if q["error"] != 0:
                return None
            seen.add(q["leader_id"])
        return seen.pop() if len(seen) == 1 and next(iter(seen)) not in (-1, leader) else None

    elected, _ = wait_for(new_leader, args.election_timeout)
    elect_s = time.time() - t0
    check(elected, "no surviving node names a new leader %d s after SIGKILL of controller %d" % (args.election_timeout, leader))
    topic = "fault-admin-" + uuid.uuid4().hex[:8]
    attempts = []

    def create():
        code, msg = kafka_wire.create_topic(survivors[0], topic, 2 * len(survivors), 1, timeout_ms=5000, timeout=10)
        attempts.append(code)
        if code == 36 and len(attempts) > 1:  # TOPIC_ALREADY_EXISTS after a retried timeout: it was created
            return True
        return code == 0

    created, _ = wait_for(create, args.admin_timeout, interval=0.1)
    admin_s = time.time() - t0
    check(created, "CreateTopics through %s never succeeded within %d s of the kill (errors %s)" % (survivors[0], args.admin_timeout, attempts[-5:]))

    def listed():
        md = kafka_wire.metadata(survivors[-1], [topic])["topics"].get(topic)
        return md and md["error"] == 0 and len(md["partitions"]) == 2 * len(survivors) and all(
            p["leader"] >= 0 for p in md["partitions"].values())

    ok, _ = wait_for(listed, 30)
    check(ok, "topic %s not listed with leaders by %s" % (topic, survivors[-1]))
    t1 = time.time()
    cluster.start_node(leader)
    restart_s = time.time() - t1

    def rejoined():
        _, q = quorum_from(addrs.values())
        voters = dict(q["voters"])
        return q if sorted(voters) == sorted(addrs) and all(leo >= q["high_watermark"] for leo in voters.values()) else None

    q, _ = wait_for(rejoined, 60, interval=0.2)
    check(q, "node %d did not catch up as a voter within 60 s of its restart" % leader)
    own = kafka_wire.metadata(addrs[leader], [topic])["topics"].get(topic)
    check(own and len(own["partitions"]) == 2 * len(survivors), "restarted node %d does not list %s" % (leader, topic))
    return ("controller %d SIGKILLed; new controller %s named by every survivor %.2f s after the kill; "
            "CreateTopics ok %.2f s after the kill (%d attempt(s)); node %d restarted in %.1f s and caught up "
            "(voters %s, new leader epoch %d)" % (leader, elected, elect_s, admin_s, len(attempts), leader,
                                                  restart_s, sorted(dict(q["voters"])), q["leader_epoch"]))


def produce_all(bootstrap, topic, partitions, per_partition):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    sent = {i: [] for i in range(partitions)}
    for part in range(partitions):
        for i in range(per_partition):
            v = b"%s-%d-%d" % (topic.encode(), part, i)
            sent[part].append(v)
            p.produce(topic, value=v, partition=part, on_delivery=lambda err, msg: err and errors.append(err))
    left = p.flush(30)
    check(left == 0 and not errors, "produce: %d undelivered, errors %s" % (left, errors[:3]))
    return sent


def read_partition(bootstrap, topic, part, count, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "fault-read-" + uuid.uuid4().hex[:6],
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    got = []
    try:
        c.assign([TopicPartition(topic, part, 0)])
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m.value())
    finally:
        c.close()
    return got


def broker_kill(cluster, args):
    addrs = cluster.addresses()
    bootstrap = ",".join(addrs.values())
    n = len(addrs)
    topic = "fault-broker-" + uuid.uuid4().hex[:8]
    code, msg = kafka_wire.create_topic(addrs[1], topic, 3 * n, 1)
    check(code == 0, "CreateTopics: %d %s" % (code, msg))

    def led():
        md = kafka_wire.metadata(addrs[1], [topic])["topics"].get(topic)
        if not md or len(md["partitions"]) != 3 * n or any(p["leader"] < 0 for p in md["partitions"].values()):
            return None
        return {i: p["leader"] for i, p in md["partitions"].items()}

    leaders, _ = wait_for(led, 30)
    check(leaders, "topic %s never listed with leaders" % topic)
    sent = produce_all(bootstrap, topic, 3 * n, args.records)
    controller, _ = quorum_from(addrs.values())
    victim = next((b for b in sorted(addrs, reverse=True) if b != controller and b in leaders.values()), None)
    check(victim, "no non-controller node leads a partition (leaders %s, controller %d)" % (leaders, controller))
    victim_parts = sorted(p for p, l in leaders.items() if l == victim)
    survivor = addrs[next(b for b in addrs if b != victim)]
    t0 = cluster.sigkill(victim)

    def fenced():
        md = kafka_wire.metadata(survivor, [topic], timeout=2)
        parts = md["topics"][topic]["partitions"]
        return md if victim not in md["brokers"] and all(parts[p]["leader"] == -1 for p in victim_parts) else None

    md, _ = wait_for(fenced, (SESSION_TIMEOUT_MS + 30000) / 1000.0)
    fenced_s = time.time() - t0
    check(md, "node %d still listed or its partitions still led %.0f s after SIGKILL" % (victim, fenced_s))
    bound = (SESSION_TIMEOUT_MS + args.grace_ms) / 1000.0
    check(fenced_s <= bound, "fenced and partitions offline only %.2f s after SIGKILL (broker.session.timeout.ms %d + %d ms grace)"
          % (fenced_s, SESSION_TIMEOUT_MS, args.grace_ms))
    parts = md["topics"][topic]["partitions"]
    moved = {p: parts[p]["leader"] for p in parts if p not in victim_parts and parts[p]["leader"] != leaders[p]}
    check(not moved, "partitions of other brokers changed leader: %s" % moved)
    offline_listed = all(victim in parts[p]["offline"] for p in victim_parts)
    # Still offline a moment later (RF 1: nobody else can lead them).
    time.sleep(1.0)
    parts = kafka_wire.metadata(survivor, [topic])["topics"][topic]["partitions"]
    check(all(parts[p]["leader"] == -1 for p in victim_parts), "an offline partition got a leader while node %d was down" % victim)
    t1 = time.time()
    cluster.start_node(victim)

    def online():
        md = kafka_wire.metadata(survivor, [topic], timeout=2)
        ps = md["topics"][topic]["partitions"]
        return victim in md["brokers"] and all(ps[p]["leader"] == victim for p in victim_parts)

    ok, _ = wait_for(online, 60)
    online_s = time.time() - t1
    check(ok, "node %d's partitions not online again within 60 s of its restart" % victim)
    bad = {}
    for p in range(3 * n):
        got = read_partition(bootstrap, topic, p, args.records)
        if got != sent[p]:
            bad[p] = "%d records, want %d" % (len(got), len(sent[p]))
    check(not bad, "data after the restart differs: %s" % bad)
    return ("node %d (not the controller, led partitions %s) SIGKILLed; fenced and its partitions leader -1 %.2f s later "
            "(bound %.1f s = broker.session.timeout.ms + grace; offline_replicas lists it: %s), the other partitions kept "
            "their leaders; restarted: partitions led by it again %.1f s after the restart, all %d partitions hold their "
            "%d records" % (victim, victim_parts, fenced_s, bound, offline_listed, online_s, 3 * n, args.records))


SCENARIOS = {"controller_kill": controller_kill, "broker_kill": broker_kill}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launcher", default=ARUS_LAUNCHER)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--records", type=int, default=20, help="records per partition in broker_kill")
    ap.add_argument("--election-timeout", type=int, default=30)
    ap.add_argument("--admin-timeout", type=int, default=60)
    ap.add_argument("--grace-ms", type=int, default=1000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    failed = 0
    overrides = ["broker.session.timeout.ms=%d" % SESSION_TIMEOUT_MS, "broker.heartbeat.interval.ms=%d" % HEARTBEAT_MS]
    for name in args.scenarios.split(","):
        cluster = Cluster(args.launcher, args.nodes, overrides=overrides)
        t = time.time()
        try:
            cluster.start()
            detail = SCENARIOS[name](cluster, args)
            print("PASS %s [%s, %d nodes] %s (%.0f s)" % (name, cluster.name, args.nodes, detail, time.time() - t), flush=True)
        except LauncherError as e:
            print("FAIL %s [%s]: %s" % (name, cluster.name, e), flush=True)
            if e.code == 3:
                cluster.destroy()
                return 3
            failed += 1
        except Fail as e:
            print("FAIL %s [%s, %d nodes]: %s (logs: %s)" % (name, cluster.name, args.nodes, e, cluster.dir), flush=True)
            failed += 1
            args.keep = True
        finally:
            cluster.destroy(keep=args.keep)
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
