#!/usr/bin/env python3
"""Internal topics follow Kafka 4's rules, checked through confluent-kafka (librdkafka).

    compat/.venv/bin/python compat/internal_topics.py [--broker PATH]

With `__consumer_offsets` in use (a committed offset):
  - a producer's record to it is refused with INVALID_TOPIC_EXCEPTION (only the coordinator
    writes it: a forged record would load as someone's committed offset);
  - IncrementalAlterConfigs on it (retention.ms) and CreatePartitions succeed, as on Kafka;
  - DeleteTopics succeeds, as on Kafka 4 (KRaft); the group's offsets are then gone, and the
    next commit creates the topic again.
With `__transaction_state` in use (a committed transaction), deleting it succeeds too, and a
transactional producer with the same transactional.id then initialises and commits again.
The same scenario passes against Apache Kafka (compat/reference/kafka-broker.sh). Exit 1 on
any difference.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, COMPAT)

from idempotence_proxy import Broker, default_broker, tail  # noqa: E402
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,  # noqa: E402
                                   ConfigResource, NewPartitions, NewTopic, ResourceType)

OFFSETS = "__consumer_offsets"


def outcome(future):
    try:
        future.result()
        return "OK"
    except KafkaException as e:
        return e.args[0].name()


def retrying(action):
    """`action()`, retried while the group's coordinator moves: Kafka answers NOT_COORDINATOR
    (retriable) for a while after its partition is deleted."""
    deadline = time.time() + 60
    while True:
        try:
            return action()
        except KafkaException as e:
            if not e.args[0].retriable() or time.time() > deadline:
                raise
            time.sleep(1)


def with_consumer(group, addr, use):
    c = Consumer({"bootstrap.servers": addr, "group.id": group})
    try:
        return use(c)
    finally:
        c.close()


def committed(addr, group):
    return retrying(lambda: with_consumer(
        group, addr, lambda c: c.committed([TopicPartition("t", 0)], timeout=20)[0].offset))


def commit(addr, group, offset):
    retrying(lambda: with_consumer(
        group, addr, lambda c: c.commit(offsets=[TopicPartition("t", 0, offset)], asynchronous=False)))


def scenario(addr):
    admin = AdminClient({"bootstrap.servers": addr})
    admin.create_topics([NewTopic("t", 1, 1)])["t"].result()
    commit(addr, "g", 5)
    results = []
    delivered = []
    p = Producer({"bootstrap.servers": addr, "retries": 0})
    p.produce(OFFSETS, b"forged", key=b"k", partition=0, on_delivery=lambda e, m: delivered.append(e))
    p.flush(30)
    results.append(("produce to __consumer_offsets", delivered[0].name() if delivered and delivered[0] else "OK",
                    "TOPIC_EXCEPTION"))
    res = ConfigResource(ResourceType.TOPIC, OFFSETS, incremental_configs=[
        ConfigEntry("retention.ms", "1000000", incremental_operation=AlterConfigOpType.SET)])
    results.append(("alter its retention.ms", outcome(admin.incremental_alter_configs([res])[res]), "OK"))
    partitions = admin.list_topics(OFFSETS, timeout=20).topics[OFFSETS].partitions
    results.append(("add a partition", outcome(
        admin.create_partitions([NewPartitions(OFFSETS, len(partitions) + 1)])[OFFSETS]), "OK"))
    results.append(("delete it", outcome(admin.delete_topics([OFFSETS])[OFFSETS]), "OK"))
    # The deletion completes asynchronously on Kafka; the group's offset goes with it.
    deadline = time.time() + 30
    offset = committed(addr, "g")
    while offset == 5 and time.time() < deadline:
        time.sleep(0.5)
        offset = committed(addr, "g")
    results.append(("committed offset after the delete", str(offset), str(-1001)))
    commit(addr, "g", 7)
    results.append(("committed offset after a new commit", str(committed(addr, "g")), "7"))

    def transaction(value):
        p = Producer({"bootstrap.servers": addr, "transactional.id": "txn-internal"})
        p.init_transactions(30)
        p.begin_transaction()
        p.produce("t", value)
        p.commit_transaction(30)
        p.flush(10)

    transaction(b"before")
    txn_state = "__transaction_state"
    results.append(("delete __transaction_state", outcome(admin.delete_topics([txn_state])[txn_state]), "OK"))
    try:
        deadline = time.time() + 60
        while True:
            try:
                transaction(b"after")
                break
            except KafkaException:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        after = "OK"
    except KafkaException as e:
        after = e.args[0].name()
    results.append(("a transaction after that delete", after, "OK"))
    c = Consumer({"bootstrap.servers": addr, "group.id": "reader", "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition("t", 0, 0)])
    values, deadline = [], time.time() + 20
    while len(values) < 2 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            values.append(m.value().decode())
    c.close()
    results.append(("committed values read", ",".join(values), "before,after"))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--broker", default=default_broker())
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="arus-internal-topics-")
    log = os.path.join(work, "broker.log")
    broker = Broker(os.path.abspath(args.broker), work, log, overrides=["offsets.topic.num.partitions=3"])
    failed = False
    try:
        addr = broker.start()
        for what, got, want in scenario(addr):
            ok = got == want
            failed |= not ok
            print("%-40s %-16s %s" % (what, got, "ok" if ok else "FAIL (Kafka: %s)" % want))
    except Exception as e:  # noqa: BLE001 - any failure is a failed scenario
        failed = True
        print("internal_topics: %s\n%s" % (e, tail(log)))
    finally:
        broker.stop()
    if failed:
        print("internal_topics: FAIL (broker log %s)" % log)
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("internal_topics: PASS")


if __name__ == "__main__":
    main()
