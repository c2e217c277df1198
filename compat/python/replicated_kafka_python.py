#!/usr/bin/env python3
"""kafka-python side of compat/replicated.py: runs one scenario's client steps and asks the
orchestrator for each fault (`FAULT x` on stdout, answer on stdin); ends with `RESULT <json>`.
Arguments: SCENARIO BOOTSTRAP TOPIC TOPIC2 GROUP TXN_ID N (see replicated.py)."""
import json
import os
import sys
import threading
import time

import kafka

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

COMMON = {"request_timeout_ms": 20000, "api_version_auto_timeout_ms": 10000}


def fault(what):
    print("FAULT " + what, flush=True)
    answer = sys.stdin.readline().strip()
    if not answer.startswith("OK"):
        print("fault %s refused: %s" % (what, answer), file=sys.stderr)
        sys.exit(1)


def send(producer, topic, records):
    """records: [(partition, key, value)]; waits for every ack; returns the errors (strings)."""
    futures = [(v, producer.send(topic, key=k.encode() if k else None, value=v.encode(), partition=p)) for p, k, v in records]
    producer.flush(90)
    errors = []
    for v, f in futures:
        try:
            f.get(timeout=1)
        except Exception as e:  # noqa: BLE001 - reported, judged by the orchestrator
            errors.append("%s: %s: %s" % (v, type(e).__name__, e))
    return errors


def read(topic, partitions, count, isolation="read_uncommitted", timeout=30):
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False,
                      isolation_level=isolation, **COMMON)
    out = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        deadline, extra = time.time() + timeout, None
        while time.time() < deadline and (extra is None or time.time() < extra):
            for recs in c.poll(timeout_ms=300).values():
                for m in recs:
                    out.append((m.partition, (m.key or b"").decode(), m.value.decode()))
            if len(out) >= count and extra is None:
                extra = time.time() + 1.5  # keep polling a moment: a duplicate would show here
    finally:
        c.close()
    return out


def replicated_failover():
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=5,
                      retries=2**31 - 1, delivery_timeout_ms=90000, **COMMON)
    recs = [(i % 3, "k%d" % (i % 6), "v%d" % i) for i in range(2 * N)]
    errors = send(p, TOPIC, recs[:N])
    fault("kill-leader")
    errors += send(p, TOPIC, recs[N:])
    p.close()
    fault("restart")
    return {"send_errors": errors, "consumed": read(TOPIC, 3, 2 * N)}


def min_isr():
    # No retries, so the broker's answer reaches the application as it is.
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=False, retries=0, **COMMON)
    steps = {}
    for name, count, f in (("a", 5, None), ("b", 5, "kill-follower"), ("c", 1, "kill-follower"), ("d", 5, "restart")):
        if f:
            fault(f)
        steps[name] = send(p, TOPIC, [(0, None, "%s%d" % (name, i)) for i in range(count)])
    p.close()
    return {"steps": steps, "consumed": [v for _, _, v in read(TOPIC, 1, 15)]}


def coordinator_failover():
    errors = []
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", **COMMON)
    errors += send(p, TOPIC, [(0, None, "g%d" % i) for i in range(20)])
    p.close()

    def take(count, commit_at=None, timeout=30):
        c = KafkaConsumer(TOPIC, bootstrap_servers=BOOTSTRAP, group_id=GROUP, enable_auto_commit=False,
                          auto_offset_reset="earliest", **COMMON)
        got, deadline = [], time.time() + timeout
        try:
            while len(got) < count and time.time() < deadline:
                for recs in c.poll(timeout_ms=500).values():
                    got += [m.value.decode() for m in recs][:count - len(got)]
            if commit_at is not None:
                c.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(commit_at, "", -1)})
        except Exception as e:  # noqa: BLE001 - reported, judged by the orchestrator
            errors.append("group: %s: %s" % (type(e).__name__, e))
        finally:
            c.close()
        return got

    first = take(10, commit_at=10)
    fault("kill-group-coordinator")
    second = take(10)
    fault("restart")
    t = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=TXN_ID, **COMMON)
    t.init_transactions()
    txn_na = None

    def transaction(start):
        try:
            t.begin_transaction()
            for i in range(start, start + 5):
                t.send(TOPIC2, value=b"t%d" % i, partition=0)
            t.commit_transaction()
        except Exception as e:  # noqa: BLE001 - reported, judged by the orchestrator
            errors.append("transaction t%d..: %s: %s" % (start, type(e).__name__, e))

    for start in (0, 5):
        if start == 5:
            fault("kill-txn-coordinator")
        # commit_transaction has no timeout in kafka-python 2.3.3 (it waits on its result forever).
        worker = threading.Thread(target=transaction, args=(start,), daemon=True)
        worker.start()
        worker.join(45)
        if worker.is_alive():
            txn_na = ("kafka-python %s: the transaction t%d.. did not complete within 45 s (commit_transaction "
                      "never returns after its transaction coordinator's SIGKILL)" % (kafka.__version__, start))
            break
    if txn_na is None:
        t.close()
    fault("restart")
    txn = [v for _, _, v in read(TOPIC2, 1, 10, isolation="read_committed")]
    return {"errors": errors, "group_first": first, "group_second": second, "txn_consumed": txn, "txn_na": txn_na}


if __name__ == "__main__":
    SCENARIO, BOOTSTRAP, TOPIC, TOPIC2, GROUP, TXN_ID, N = sys.argv[1:8]
    N = int(N)
    result = {"replicated_failover": replicated_failover, "min_isr": min_isr,
              "coordinator_failover": coordinator_failover}[SCENARIO]()
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # a transaction thread may still wait on a result that never comes
