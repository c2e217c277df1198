#!/usr/bin/env python3
"""Transactional produce throughput relative to plain idempotent produce (issue 4).

For each broker: one librdkafka producer writes N records of S bytes to a P-partition
topic, first idempotent (`enable.idempotence=true`, acks=all), then transactional with a
commit every T records (same settings plus `transactional.id`). Prints records/s and MB/s
of both and the transactional/idempotent ratio; with two brokers also Arus/Kafka ratios.
A read_committed consumer then counts what is visible, so a run that lost or duplicated
records cannot report a figure.

    compat/.venv/bin/python bench/txn_throughput.py [--records 200000] [--size 1024]
        [--partitions 8] [--txn-records 1000] [--broker PATH]...

Brokers are started with compat/'s CLI contract (serve --log-dirs --listeners
--ready-file), so `--broker compat/reference/kafka-broker.sh` measures Apache Kafka on the
same machine in the same run. Default: target/release/arus and the Kafka reference.
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
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def produce(bootstrap, topic, records, size, txn_records):
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1 << 20,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1 << 20,
    }
    if txn_records:
        conf["transactional.id"] = "bench-" + uuid.uuid4().hex
        conf["transaction.timeout.ms"] = 60000
    p = Producer(conf)
    value = b"x" * size
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    if txn_records:
        p.init_transactions(30)
    start = time.perf_counter()
    sent = 0
    while sent < records:
        chunk = min(txn_records or records, records - sent)
        if txn_records:
            p.begin_transaction()
        for i in range(chunk):
            while True:
                try:
                    p.produce(topic, value, key=str(sent + i).encode(), on_delivery=delivered)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        if txn_records:
            p.commit_transaction(60)
        sent += chunk
    p.flush(120)
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} delivery errors, first: {errors[0]}")
    return elapsed


def count_committed(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "count-" + uuid.uuid4().hex,
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    total = 0
    for p in range(partitions):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        # The high watermark counts markers too; count the records instead.
        tp = TopicPartition(topic, p, lo)
        c.assign([tp])
        while True:
            msgs = c.consume(10000, timeout=2)
            if not msgs:
                break
            total += sum(1 for m in msgs if m.error() is None)
    c.close()
    return total


def measure(binary, args):
    tmp = tempfile.mkdtemp(prefix="arus-txn-bench-")
    proc, bootstrap = start_broker(binary, tmp)
    out = {}
    try:
        for mode, txn in (("idempotent", 0), ("transactional", args.txn_records)):
            topic = f"{mode}-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic, args.partitions)
            elapsed = produce(bootstrap, topic, args.records, args.size, txn)
            visible = count_committed(bootstrap, topic, args.partitions)
            if visible != args.records:
                raise RuntimeError(f"{mode}: {visible} records visible to read_committed, expected {args.records}")
            out[mode] = (args.records / elapsed, args.records * args.size / elapsed / 1e6)
    finally:
        stop_broker(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--txn-records", type=int, default=1000, help="records per transaction")
    ap.add_argument("--broker", action="append")
    args = ap.parse_args()
    brokers = args.broker or [os.path.join(ROOT, "target", "release", "arus"),
                              os.path.join(ROOT, "compat", "reference", "kafka-broker.sh")]
    results = {}
    for b in brokers:
        name = "kafka" if "kafka-broker" in b else os.path.basename(b)
        print(f"measuring {name} ({b}) ...", file=sys.stderr, flush=True)
        results[name] = measure(b, args)
    print(f"\n{args.records} records x {args.size} B, {args.partitions} partitions, "
          f"{args.txn_records} records per transaction, librdkafka, acks=all\n")
    print(f"| broker | idempotent rec/s | idempotent MB/s | transactional rec/s | transactional MB/s | txn/idempotent |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        (ir, im), (tr, tm) = r["idempotent"], r["transactional"]
        print(f"| {name} | {ir:,.0f} | {im:.1f} | {tr:,.0f} | {tm:.1f} | {tr / ir:.2f} |")
    names = list(results)
    if len(names) == 2:
        a, b = (results[n] for n in names)
        print(f"\n{names[0]}/{names[1]}: idempotent {a['idempotent'][0] / b['idempotent'][0]:.2f}x, "
              f"transactional {a['transactional'][0] / b['transactional'][0]:.2f}x")


if __name__ == "__main__":
    main()
