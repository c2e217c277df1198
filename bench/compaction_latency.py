#!/usr/bin/env python3
"""Does compaction stall produce? Produce latency with and without the log cleaner (issue 5).

For each broker, two runs on a fresh log dir: `log.cleaner.enable=true` (with a short
`log.cleaner.backoff.ms`) and `false`. Each run preloads a compacted topic (1 MiB
segments, `min.cleanable.dirty.ratio=0.01`) with N updates over K keys so the cleaner has
real work, then measures acks=1 produce latency (send → delivery report) of a second
producer at a fixed rate to a compacted topic while the cleaner works, and prints
p50/p99/p99.9 for both runs side by side (after a 2 s unmeasured warm-up). With the cleaner on, it also reports how many
records the topic held afterwards (the cleaner really ran during the measurement).

    compat/.venv/bin/python bench/compaction_latency.py [--updates 2000000] [--keys 10000]
        [--rate 2000] [--seconds 20] [--broker PATH]...

Brokers are started with compat/'s CLI contract, so `--broker compat/reference/kafka-broker.sh`
measures Apache Kafka the same way. Default: target/release/arus only.
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from brokers import start_broker, stop_broker  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "1048576",
             "min.cleanable.dirty.ratio": "0.01", "segment.ms": "5000"}


def create_topic(bootstrap, name):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=COMPACTED)])[name].result(30)


def preload(bootstrap, topic, updates, keys):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                  "queue.buffering.max.messages": 1_000_000, "acks": 1})
    value = b"v" * 100
    for i in range(updates):
        while True:
            try:
                p.produce(topic, value, key=b"k%d" % (i % keys))
                break
            except BufferError:
                p.poll(0.01)
        if i % 10000 == 0:
            p.poll(0)
    p.flush(120)


def measure(bootstrap, topic, rate, seconds):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": 1})
    latencies = []
    lock = threading.Lock()

    def report(sent):
        def cb(err, _msg):
            if err is None:
                with lock:
                    latencies.append(time.perf_counter() - sent)
        return cb

    # Warm-up (metadata, connections, leader lookups) is not measured.
    warm_end = time.perf_counter() + 2
    while time.perf_counter() < warm_end:
        p.produce(topic, b"w", key=b"warm")
        p.poll(0.001)
    p.flush(30)
    n = rate * seconds
    start = time.perf_counter()
    for i in range(n):
        target = start + i / rate
        while time.perf_counter() < target:
            p.poll(0)
        p.produce(topic, b"x" * 100, key=b"m%d" % (i % 1000), on_delivery=report(time.perf_counter()))
        p.poll(0)
    p.flush(60)
    latencies.sort()

    def pct(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return len(latencies), pct(0.5), pct(0.99), pct(0.999)


def count(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "count-" + uuid.uuid4().hex,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    total = 0
    while True:
        msgs = c.consume(10000, timeout=3)
        if not msgs:
            break
        total += sum(1 for m in msgs if m.error() is None)
    c.close()
    return total


def run(binary, cleaner, args):
    tmp = tempfile.mkdtemp(prefix="arus-compaction-bench-")
    overrides = ["log.cleaner.enable=%s" % ("true" if cleaner else "false"),
                 "log.cleaner.backoff.ms=200"]
    proc, bootstrap = start_broker(binary, tmp, overrides)
    try:
        topic = "preload-" + uuid.uuid4().hex[:6]
        create_topic(bootstrap, topic)
        preload(bootstrap, topic, args.updates, args.keys)
        probe = "probe-" + uuid.uuid4().hex[:6]
        create_topic(bootstrap, probe)
        result = measure(bootstrap, probe, args.rate, args.seconds)
        remaining = count(bootstrap, topic) if cleaner else None
    finally:
        stop_broker(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return result, remaining


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=2_000_000)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--broker", action="append")
    args = ap.parse_args()
    brokers = args.broker or [os.path.join(ROOT, "target", "release", "arus")]
    print(f"preload {args.updates} updates over {args.keys} keys (100 B values, 1 MiB segments); "
          f"probe {args.rate} msg/s for {args.seconds} s, acks=1, librdkafka\n")
    print("| broker | cleaner | acked | p50 ms | p99 ms | p99.9 ms | preload records left |")
    print("|---|---|---|---|---|---|---|")
    for b in brokers:
        name = "kafka" if "kafka-broker" in b else os.path.basename(b)
        for cleaner in (True, False):
            print(f"measuring {name} cleaner={cleaner} ...", file=sys.stderr, flush=True)
            (n, p50, p99, p999), left = run(b, cleaner, args)
            print(f"| {name} | {'on' if cleaner else 'off'} | {n} | {p50:.2f} | {p99:.2f} | {p999:.2f} | "
                  f"{left if left is not None else '-'} |", flush=True)


if __name__ == "__main__":
    main()
