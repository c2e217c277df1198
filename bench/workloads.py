"""Client-side workloads for bench/run.py, one per subcommand; each prints one JSON line.

Runs in its own process (under compat/.venv's Python, which has confluent-kafka) so that the
parent can sample the broker's memory and CPU without competing for this process's GIL.

  workloads.py create  --bootstrap B --topic T --partitions P [--config k=v ...]
  workloads.py produce --bootstrap B --topic T --records N --acks 1|all
  workloads.py consume --bootstrap B --topic T --partitions P --records N
  workloads.py latency --bootstrap B --topic T --rate R --seconds S
  workloads.py metadata --bootstrap B --topic T --partitions P --calls N
"""
import argparse
import json
import os
import struct
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from params import RECORD_BYTES, WORKLOADS  # noqa: E402

PRODUCER_SETTINGS = {  # the throughput producer; reported verbatim in RESULTS.md
    **WORKLOADS["W1"]["producer"],
    "queue.buffering.max.kbytes": 1048576,
    "queue.buffering.max.messages": 1000000,
}
CONSUMER_SETTINGS = {  # assign() only: the group id is never used for a group
    "group.id": "bench-unused",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    # librdkafka stops fetching for fetch.queue.backoff.ms (default 1 s) whenever its local
    # queue (queued.max.messages.kbytes, 64 MiB) is full. A broker that serves faster than
    # Python drains fills it within ~50 ms, and the read then idles a whole second — a lottery
    # seen with both brokers (e.g. Kafka 588 vs 242 MB/s in back-to-back runs). 20 ms keeps
    # the figure about the broker; both brokers get it.
    "fetch.queue.backoff.ms": 20,
}
LATENCY_PRODUCER_SETTINGS = {"acks": "1", "linger.ms": 0, "enable.idempotence": False}
LATENCY_CONSUMER_SETTINGS = {**CONSUMER_SETTINGS, "fetch.wait.max.ms": 100, "fetch.min.bytes": 1}
LATENCY_WARMUP_S = WORKLOADS["W2"]["warmup_s"]


def create_topic(bootstrap, topic, partitions, configs):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.list_topics(timeout=30)  # connected before the clock starts
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=configs)
    start = time.perf_counter()
    for future in admin.create_topics([new], operation_timeout=30).values():
        future.result(timeout=60)
    # Kafka answers CreateTopics (and lists a leader in Metadata) before every partition is ready on
    # the broker (NOT_LEADER_OR_FOLLOWER for a while on a 1,000-partition topic), so wait until one
    # ListOffsets round for all partitions succeeds: from then on the topic is usable.
    deadline = time.monotonic() + 120
    while True:
        t = admin.list_topics(topic=topic, timeout=30).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                                         request_timeout=30)
            try:
                for f in futures.values():
                    f.result()
                break
            except KafkaException:
                pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{topic}: not every partition answers ListOffsets after 120 s")
        time.sleep(0.05)
    led_s = time.perf_counter() - start
    return {"topic": topic, "partitions": partitions, "config": configs, "seconds_to_ready": led_s}


def end_offsets_total(bootstrap, topic, partitions, retry_s=60):
    """Sum of the partitions' high watermarks; retries a partition whose leader is not yet in place."""
    consumer = Consumer({"bootstrap.servers": bootstrap, **CONSUMER_SETTINGS})
    total = 0
    try:
        for p in range(partitions):
            deadline = time.monotonic() + retry_s
            while True:
                try:
                    total += consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                    break
                except KafkaException:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
        return total
    finally:
        consumer.close()


def produce(bootstrap, topic, records, acks, partitions):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, **PRODUCER_SETTINGS})
    value = b"x" * RECORD_BYTES
    start = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:  # local queue full: let librdkafka drain it
                producer.poll(0.005)
    left = producer.flush(300)
    seconds = time.perf_counter() - start
    stored = end_offsets_total(bootstrap, topic, partitions)
    return {"records": records, "seconds": seconds, "mb_per_s": records * RECORD_BYTES / seconds / 1e6,
            "records_per_s": records / seconds, "unflushed": left, "stored": stored,
            "ok": left == 0 and stored == records}


def consume(bootstrap, topic, partitions, records, timeout_s):
    consumer = Consumer({"bootstrap.servers": bootstrap, **CONSUMER_SETTINGS})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    count = nbytes = errors = 0
    start = time.perf_counter()
    while count < records and time.perf_counter() - start < timeout_s:
        for msg in consumer.consume(10000, 1.0):
            if msg.error():
                errors += msg.error().code() != KafkaError._PARTITION_EOF
                continue
            count += 1
            nbytes += len(msg.value())
    seconds = time.perf_counter() - start
    consumer.close()
    return {"records": count, "bytes": nbytes, "seconds": seconds, "mb_per_s": nbytes / seconds / 1e6,
            "errors": errors, "ok": count == records and errors == 0}


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def latency(bootstrap, topic, rate, seconds):
    """Producer paced at `rate` msg/s, consumer in a thread; value starts with the send time."""
    total = int(rate * seconds)
    received = []  # (send_ns, receive_ns)
    done = threading.Event()

    def read():
        consumer = Consumer({"bootstrap.servers": bootstrap, **LATENCY_CONSUMER_SETTINGS})
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + seconds + 30
        while len(received) < total and time.monotonic() < deadline and not done.is_set():
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                received.append((struct.unpack_from(">q", msg.value())[0], time.time_ns()))
        consumer.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, **LATENCY_PRODUCER_SETTINGS})
    pad = b"x" * (RECORD_BYTES - 8)
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.produce(topic, struct.pack(">q", time.time_ns()) + pad, partition=0)
        producer.poll(0)
    producer.flush(30)
    reader.join(timeout=seconds + 35)
    done.set()
    first_ns = received[0][0] if received else 0
    measured = sorted((r - s) / 1e6 for s, r in received if s - first_ns >= LATENCY_WARMUP_S * 1e9)
    return {"sent": total, "received": len(received), "measured": len(measured),
            "p50_ms": percentile(measured, 0.50), "p99_ms": percentile(measured, 0.99),
            "p999_ms": percentile(measured, 0.999), "max_ms": measured[-1] if measured else None, "ok": len(received) == total}


def metadata(bootstrap, topic, partitions, calls):
    """Times `calls` Metadata requests for one topic (librdkafka list_topics sends one per call)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.list_topics(topic=topic, timeout=30)  # connect first: not part of any sample
    samples, seen = [], 0
    for _ in range(calls):
        t0 = time.perf_counter()
        md = admin.list_topics(topic=topic, timeout=30)
        samples.append((time.perf_counter() - t0) * 1000)
        t = md.topics.get(topic)
        seen = len(t.partitions) if t is not None and t.error is None else 0
    samples.sort()
    return {"calls": calls, "partitions_seen": seen, "p50_ms": percentile(samples, 0.50),
            "p99_ms": percentile(samples, 0.99), "max_ms": samples[-1] if samples else None,
            "ok": seen == partitions}


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["create", "produce", "consume", "latency", "metadata"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--config", action="append", default=[])
    ap.add_argument("--records", type=int, default=0)
    ap.add_argument("--acks", default="1")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=120, help="consume: give up after this many seconds")
    a = ap.parse_args(argv)
    if a.command == "create":
        out = create_topic(a.bootstrap, a.topic, a.partitions, dict(c.split("=", 1) for c in a.config))
    elif a.command == "produce":
        out = produce(a.bootstrap, a.topic, a.records, a.acks, a.partitions)
    elif a.command == "consume":
        out = consume(a.bootstrap, a.topic, a.partitions, a.records, a.timeout)
    elif a.command == "metadata":
        out = metadata(a.bootstrap, a.topic, a.partitions, a.calls)
    else:
        out = latency(a.bootstrap, a.topic, a.rate, a.seconds)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
