#!/usr/bin/env python3
"""Config changes made through real admin clients survive broker restarts (issue 5).

    compat/.venv/bin/python compat/config_restart.py [--broker PATH]

Starts the broker on a fixed port, then through confluent-kafka's (librdkafka) AdminClient:
  - creates a topic and sets `retention.ms` and `max.message.bytes` on it
    (IncrementalAlterConfigs);
  - sets the dynamic broker config `log.retention.bytes` on the cluster-default resource
    (broker "" through kafka-python, whose AlterConfigs accepts that name; librdkafka
    refuses it client-side) and `message.max.bytes` on broker "1" through librdkafka;
  - checks through kafka-python's DescribeConfigs that all of it is visible with Kafka's
    sources (DYNAMIC_TOPIC_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, DYNAMIC_BROKER_CONFIG)
    and takes effect (a record above the topic's new limit is refused);
then stops the broker cleanly, restarts it and checks everything again through both
clients; then SIGKILLs it, restarts and checks once more. Exit status 1 on any violation,
2 (n/a) if the broker does not advertise IncrementalAlterConfigs.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, COMPAT)

from idempotence_proxy import Broker, default_broker, free_port, tail  # noqa: E402

TOPIC = "config-restart"
TOPIC_CONFIGS = {"retention.ms": "123456789", "max.message.bytes": "2048"}
CLUSTER_DEFAULT = ("log.retention.bytes", "987654321")
PER_BROKER = ("message.max.bytes", "3000000")
# Topic config -> its broker-level synonym, for the cluster defaults a topic reveals.
BROKER_SYNONYM = {"min.insync.replicas": "min.insync.replicas", "retention.bytes": "log.retention.bytes",
                  "retention.ms": "log.retention.ms", "max.message.bytes": "message.max.bytes",
                  "cleanup.policy": "log.cleanup.policy", "segment.bytes": "log.segment.bytes"}
# Kafka's DescribeConfigs sources.
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT = 1, 2, 3


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def apply_changes(bs):
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, NewTopic)
    from kafka.admin import ConfigResource as KPResource, ConfigResourceType, KafkaAdminClient

    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(30)
    topic = ConfigResource(ConfigResource.Type.TOPIC, TOPIC, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in TOPIC_CONFIGS.items()])
    broker = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry(PER_BROKER[0], PER_BROKER[1], incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([topic, broker]).values():
        f.result(30)
    # The cluster-wide default: kafka-python's AlterConfigs on broker "". AlterConfigs
    # replaces the resource's whole dynamic set, so the existing defaults go back with it
    # (Kafka 4.1 keeps a cluster-level min.insync.replicas it refuses to drop).
    kp = KafkaAdminClient(bootstrap_servers=bs)
    try:
        # kafka-python (like librdkafka) will not describe broker "", so the cluster
        # defaults are read off the topic: its configs whose source is the dynamic default.
        current = {}
        for resp in kp.describe_configs([KPResource(ConfigResourceType.TOPIC, TOPIC)]):
            for r in resp.resources:
                for entry in r[4]:
                    if entry[3] == DYNAMIC_DEFAULT and entry[0] in BROKER_SYNONYM:
                        current[BROKER_SYNONYM[entry[0]]] = entry[1]
        current[CLUSTER_DEFAULT[0]] = CLUSTER_DEFAULT[1]
        resp = kp.alter_configs([KPResource(ConfigResourceType.BROKER, "", configs=current)])
        for r in resp.resources:
            check(r[0] == 0, "AlterConfigs on the cluster default failed: %s %s" % (r[0], r[1]))
    finally:
        kp.close()


def described_kafka_python(bs):
    """{(resource, key): (value, source)} through kafka-python's DescribeConfigs."""
    from kafka.admin import ConfigResource as KPResource, ConfigResourceType, KafkaAdminClient

    kp = KafkaAdminClient(bootstrap_servers=bs)
    out = {}
    try:
        for res in (KPResource(ConfigResourceType.TOPIC, TOPIC), KPResource(ConfigResourceType.BROKER, "1")):
            for resp in kp.describe_configs([res], include_synonyms=False):
                for r in resp.resources:
                    check(r[0] == 0, "DescribeConfigs %s: error %s %s" % (res.name, r[0], r[1]))
                    for entry in r[4]:
                        # (name, value, read_only, config_source, is_sensitive[, synonyms...])
                        out[(res.name, entry[0])] = (entry[1], entry[3])
    finally:
        kp.close()
    return out


def described_confluent(bs):
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": bs})
    out = {}
    for res in (ConfigResource(ConfigResource.Type.TOPIC, TOPIC), ConfigResource(ConfigResource.Type.BROKER, "1")):
        for name, entry in admin.describe_configs([res])[res].result(30).items():
            out[(res.name, name)] = (entry.value, int(entry.source))
    return out


def verify(bs, when):
    for client, described in (("kafka-python", described_kafka_python(bs)), ("confluent-kafka", described_confluent(bs))):
        for k, v in TOPIC_CONFIGS.items():
            check(described.get((TOPIC, k)) == (v, DYNAMIC_TOPIC),
                  "%s, %s: topic %s = %s, want (%s, DYNAMIC_TOPIC_CONFIG)" % (when, client, k, described.get((TOPIC, k)), v))
        # The topic has no retention.bytes override: it shows the dynamic cluster default.
        check(described.get((TOPIC, "retention.bytes")) == (CLUSTER_DEFAULT[1], DYNAMIC_DEFAULT),
              "%s, %s: topic retention.bytes = %s, want (%s, DYNAMIC_DEFAULT_BROKER_CONFIG)"
              % (when, client, described.get((TOPIC, "retention.bytes")), CLUSTER_DEFAULT[1]))
        check(described.get(("1", PER_BROKER[0])) == (PER_BROKER[1], DYNAMIC_BROKER),
              "%s, %s: broker %s = %s, want (%s, DYNAMIC_BROKER_CONFIG)"
              % (when, client, PER_BROKER[0], described.get(("1", PER_BROKER[0])), PER_BROKER[1]))
    # In effect, not only described: the topic's 2048-byte limit refuses a 4 KB record.
    from confluent_kafka import KafkaException, Producer

    # One record per batch: the limit applies to a whole batch.
    p = Producer({"bootstrap.servers": bs, "message.max.bytes": 10_000_000, "enable.idempotence": False,
                  "linger.ms": 0, "batch.num.messages": 1, "retries": 0})
    errors = []
    for value in (b"x" * 4096, b"y" * 100):
        p.produce(TOPIC, value, on_delivery=lambda err, _m: errors.append(err))
        try:
            p.flush(30)
        except KafkaException as e:
            errors.append(e)
    codes = [e.name() if e is not None else None for e in errors]
    check(codes == ["MSG_SIZE_TOO_LARGE", None],
          "%s: produce of 4096 and 100 bytes gave %s, want [MSG_SIZE_TOO_LARGE, None]" % (when, codes))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=None, help="broker binary (default target/release/arus)")
    args = ap.parse_args()
    binary = os.path.abspath(args.broker or default_broker())
    work = tempfile.mkdtemp(prefix="arus-config-restart-")
    log_path = os.path.join(work, "broker.log")
    broker = Broker(binary, work, log_path)
    port = free_port()
    ok = False
    try:
        bs = broker.start(port)
        sys.path.insert(0, COMPAT)
        import run
        apis = run.advertised_apis(bs)
        if apis is not None and 44 not in apis:
            print("[config] n/a: the broker does not advertise IncrementalAlterConfigs", flush=True)
            broker.stop()
            shutil.rmtree(work, ignore_errors=True)
            os._exit(2)
        apply_changes(bs)
        verify(bs, "before restart")
        broker.stop()
        t = time.time()
        bs = broker.start(port)
        verify(bs, "after a clean restart")
        broker.kill9()
        bs = broker.start(port)
        verify(bs, "after SIGKILL and restart")
        print("[config] topic configs %s, cluster default %s=%s, broker 1 %s=%s: described with Kafka's "
              "sources and in effect through confluent-kafka and kafka-python, before and after a clean "
              "restart (%.1f s) and a SIGKILL restart" % (TOPIC_CONFIGS, CLUSTER_DEFAULT[0], CLUSTER_DEFAULT[1],
                                                         PER_BROKER[0], PER_BROKER[1], time.time() - t), flush=True)
        ok = True
    except Failed as e:
        print("[config] FAIL: %s" % e, flush=True)
        print(tail(log_path), flush=True)
    finally:
        broker.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
    print("[config] %s" % ("PASS" if ok else "FAIL (data kept in %s)" % work), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
