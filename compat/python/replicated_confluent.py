#!/usr/bin/env python3
"""confluent-kafka (librdkafka) side of compat/replicated.py: runs one scenario's client steps and
asks the orchestrator for each fault (`FAULT x` on stdout, answer on stdin); ends with
`RESULT <json>`. Arguments: SCENARIO BOOTSTRAP TOPIC TOPIC2 GROUP TXN_ID N (see replicated.py)."""
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def fault(what):
    print("FAULT " + what, flush=True)
    answer = sys.stdin.readline().strip()
    if not answer.startswith("OK"):
        print("fault %s refused: %s" % (what, answer), file=sys.stderr)
        sys.exit(1)


def send(producer, records, timeout=60):
    """records: [(partition or None, key, value)]; returns the delivery errors (strings)."""
    errors = []
    for p, k, v in records:
        kw = {"partition": p} if p is not None else {}
        producer.produce(TOPIC, key=k, value=v,
                         on_delivery=lambda err, msg, v=v: err and errors.append("%s: %s" % (v, err)), **kw)
    left = producer.flush(timeout)
    if left:
        errors.append("%d records undelivered after %d s" % (left, timeout))
    return errors


def read(topic, partitions, count, isolation="read_uncommitted", timeout=30):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "rep-read-" + uuid.uuid4().hex[:6],
                  "enable.auto.commit": False, "isolation.level": isolation})
    out = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.time() + timeout
        extra = None
        while time.time() < deadline and (extra is None or time.time() < extra):
            m = c.poll(0.3)
            if m is None or m.error():
                continue
            out.append((m.partition(), (m.key() or b"").decode(), m.value().decode()))
            if len(out) >= count and extra is None:
                extra = time.time() + 1.5  # keep polling a moment: a duplicate would show here
    finally:
        c.close()
    return out


def replicated_failover():
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 60000})
    recs = [(i % 3, "k%d" % (i % 6), "v%d" % i) for i in range(2 * N)]
    errors = send(p, recs[:N])
    fault("kill-leader")
    errors += send(p, recs[N:], timeout=70)
    fault("restart")
    return {"send_errors": errors, "consumed": read(TOPIC, 3, 2 * N)}


def min_isr():
    # No retries, so the broker's answer reaches the application as it is.
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": False, "retries": 0,
                  "message.timeout.ms": 20000})
    steps = {}

    def step(name, count):
        steps[name] = send(p, [(0, None, "%s%d" % (name, i)) for i in range(count)], timeout=30)

    step("a", 5)
    fault("kill-follower")
    step("b", 5)
    fault("kill-follower")
    step("c", 1)
    fault("restart")
    step("d", 5)
    return {"steps": steps, "consumed": [v for _, _, v in read(TOPIC, 1, 15)]}


def coordinator_failover():
    errors = []
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    errors += send(p, [(0, None, "g%d" % i) for i in range(20)])

    def group_consumer():
        return Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": GROUP, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 10000})

    def take(c, count, timeout=30):
        got, deadline = [], time.time() + timeout
        while len(got) < count and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    errors.append("poll: %s" % m.error())
                continue
            got.append(m.value().decode())
        return got

    c1 = group_consumer()
    c1.subscribe([TOPIC])
    first = take(c1, 10)
    c1.commit(offsets=[TopicPartition(TOPIC, 0, 10)], asynchronous=False)
    c1.close()
    fault("kill-group-coordinator")
    c2 = group_consumer()
    c2.subscribe([TOPIC])
    second = take(c2, 10)
    c2.close()
    fault("restart")

    t = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": TXN_ID})
    t.init_transactions(30)
    for batch in (range(0, 5), range(5, 10)):
        if batch.start == 5:
            fault("kill-txn-coordinator")
        try:
            t.begin_transaction()
            for i in batch:
                t.produce(TOPIC2, value="t%d" % i, partition=0)
            t.commit_transaction(30)
        except Exception as e:  # noqa: BLE001 - reported, judged by the orchestrator
            errors.append("transaction t%d..: %s" % (batch.start, e))
    fault("restart")
    txn = [v for _, _, v in read(TOPIC2, 1, 10, isolation="read_committed")]
    return {"errors": errors, "group_first": first, "group_second": second, "txn_consumed": txn}


if __name__ == "__main__":
    SCENARIO, BOOTSTRAP, TOPIC, TOPIC2, GROUP, TXN_ID, N = sys.argv[1:8]
    N = int(N)
    result = {"replicated_failover": replicated_failover, "min_isr": min_isr,
              "coordinator_failover": coordinator_failover}[SCENARIO]()
    print("RESULT " + json.dumps(result), flush=True)
