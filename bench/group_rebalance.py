#!/usr/bin/env python3
"""Consumer-group rebalance timing: N librdkafka consumers join one group on a topic of P
partitions (issue 3: 100 members on 1,000 partitions), then one member leaves.

Prints two figures per broker: how long until every partition is assigned to exactly one
member (group formation, which includes the broker's `group.initial.rebalance.delay.ms`,
reported separately), and how long the rebalance after one member's departure takes until
the remaining members own every partition again.

    compat/.venv/bin/python bench/group_rebalance.py [--members 100] [--partitions 1000] [--broker PATH]...

The broker is started with the same CLI contract as compat/ (serve --log-dirs --listeners
--ready-file), so `--broker compat/reference/kafka-broker.sh` measures Apache Kafka.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from brokers import start_broker, stop_broker  # noqa: E402
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic


class Member:
    def __init__(self, bootstrap, group, topic, index):
        self.owned = set()
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "member-%d" % index,
            "enable.auto.commit": False,
            "session.timeout.ms": 45000,
            "heartbeat.interval.ms": 1000,
            "partition.assignment.strategy": "range",
        })
        self.consumer.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)

    def _assign(self, _c, parts):
        self.owned = {p.partition for p in parts}

    def _revoke(self, _c, _parts):
        self.owned = set()

    def poll(self):
        self.consumer.poll(0)


def wait_until_complete(members, partitions, timeout):
    """Polls every member until each partition is owned by exactly one member."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in members:
            m.poll()
        owned = [p for m in members for p in m.owned]
        if len(owned) == partitions and len(set(owned)) == partitions:
            return True
        time.sleep(0.005)
    return False


def measure(binary, members_n, partitions, timeout):
    tmp = tempfile.mkdtemp(prefix="arus-rebalance-")
    proc = None
    members = []
    try:
        proc, bootstrap = start_broker(binary, tmp)
        topic = "rebalance-" + uuid.uuid4().hex[:8]
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(60)
        del admin  # its background connections would only log noise when the broker stops
        group = "rebalance-" + uuid.uuid4().hex[:8]
        start = time.time()
        members = [Member(bootstrap, group, topic, i) for i in range(members_n)]
        if not wait_until_complete(members, partitions, timeout):
            return {"error": "group did not form within %d s" % timeout}
        formed = time.time() - start
        leaver = members.pop()
        start = time.time()
        leaver.consumer.close()
        # The remaining members must first lose their old assignment, then get the new one.
        for m in members:
            m.owned = set()
        if not wait_until_complete(members, partitions, timeout):
            return {"formed_s": formed, "error": "no rebalance within %d s" % timeout}
        return {"formed_s": formed, "rebalance_s": time.time() - start}
    finally:
        for m in members:
            try:
                m.consumer.close()
            except Exception:
                pass
        if proc:
            stop_broker(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--broker", action="append",
                    help="broker command (repeatable); default: target/release/arus")
    args = ap.parse_args()
    brokers = args.broker or [os.path.join(ROOT, "target", "release", "arus")]
    print("| broker | members | partitions | group formed (s) | rebalance after one leaves (s) |")
    print("|---|---|---|---|---|")
    failed = False
    for b in brokers:
        r = measure(b, args.members, args.partitions, args.timeout)
        failed |= "error" in r
        print("| %s | %d | %d | %s | %s |" % (
            os.path.basename(b), args.members, args.partitions,
            "%.2f" % r["formed_s"] if "formed_s" in r else "-",
            "%.2f" % r["rebalance_s"] if "rebalance_s" in r else r.get("error", "-")))
    print("(group formation includes the broker's group.initial.rebalance.delay.ms, 3 s by default)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
