#!/usr/bin/env python3
"""Apache Kafka 4.4's own command-line tools against Arus and, in the same run, against Apache
Kafka 4.4 (compat/reference/kafka-broker.sh): a side-by-side report, compat/KAFKA_TOOLS.md.

    python3 compat/kafka_tools.py [--broker target/release/arus] [--reference compat/reference/kafka-broker.sh]
                                  [--only arus|kafka] [--report compat/KAFKA_TOOLS.md]

Both brokers start at once; each gets one long-lived JVM (compat/tools/ToolRunner.java, the tool
classes of kafka-tools 4.4.0 from compat/work/reference-classpath.txt) that runs every step's tool
in turn, intercepting Kafka's Exit.exit. The same steps with the same checks run on both brokers:
a step passes when the tool exits 0 and its output carries what the step checks (parsed: the
partition count, the offsets, the lag, ...). Nothing depends on which broker is under test (the
broker id comes from kafka-broker-api-versions, the segment files are found under the broker's
--log-dirs by Kafka's naming).

Exit status 1 when a step that passes on Kafka fails on Arus, and when any step fails on Kafka
(every step is built to Kafka's behaviour, so a Kafka failure means the harness is broken — or the
reference did not run, which must not let Arus's failures pass unnoticed); with --only, when any
step fails.
"""
import argparse
import datetime as dt
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)
sys.path.insert(0, COMPAT)

from idempotence_proxy import Broker  # noqa: E402

CLASSPATH_FILE = os.path.join(COMPAT, "work", "reference-classpath.txt")
RUNNER_SRC = os.path.join(COMPAT, "tools", "ToolRunner.java")

TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-groups": "org.apache.kafka.tools.GroupsCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-client-metrics": "org.apache.kafka.tools.ClientMetricsCommand",
    "kafka-dump-log": "org.apache.kafka.tools.DumpLogSegments",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
}

# Broker properties for both runs (Arus ignores those it does not have): a console consumer's
# group must not wait 3 s for the initial rebalance.
BROKER_OVERRIDES = ["group.initial.rebalance.delay.ms=0"]


def resolve_classpath():
    pom = os.path.join(COMPAT, "reference", "pom.xml")
    if not os.path.exists(CLASSPATH_FILE) or os.path.getmtime(CLASSPATH_FILE) < os.path.getmtime(pom):
        os.makedirs(os.path.dirname(CLASSPATH_FILE), exist_ok=True)
        subprocess.run(["mvn", "-q", "-B", "-Dstyle.color=never", "dependency:build-classpath",
                        "-Dmdep.outputFile=" + CLASSPATH_FILE], cwd=os.path.dirname(pom), check=True)
    return open(CLASSPATH_FILE).read().strip()


class StepFailed(Exception):
    pass


class Runner:
    """One ToolRunner JVM; `tool()` runs one tool invocation in it."""

    def __init__(self, classpath, log):
        self.log = log
        self.proc = subprocess.Popen(["java", "-Xmx384m", "-XX:TieredStopAtLevel=1", "-cp", classpath, RUNNER_SRC],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.n = 0

    def call(self, cls, args, stdin="", timeout=40):
        self.n += 1
        req = {"id": str(self.n), "class": cls, "args": [str(a) for a in args], "stdin": stdin, "timeout": timeout}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        # ToolRunner answers within `timeout` (it abandons a tool that takes longer); a JVM that
        # does not answer at all is not waited for forever.
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout + 60)
        if not ready:
            self.proc.kill()
            raise StepFailed("ToolRunner JVM did not answer within %d s" % (timeout + 60))
        line = self.proc.stdout.readline()
        if not line:
            raise StepFailed("ToolRunner JVM exited (see its log)")
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(15)
        except Exception:  # noqa: BLE001
            self.proc.kill()


class Ctx:
    """Per-broker state of one run: its bootstrap, data dir, tool runner and what earlier steps learned."""

    def __init__(self, name, bootstrap, data_root, runner, tmp):
        self.name, self.bootstrap, self.data_root, self.runner, self.tmp = name, bootstrap, data_root, runner, tmp
        self.broker_id = None
        self.results = {}   # step id -> (ok, detail)
        self.commands = {}  # step id -> displayed command
        self.transcript = []
        self.produced = []
        self.end_offsets = {}

    def display(self, tool, args):
        shown = []
        for a in args:
            a = str(a).replace(self.bootstrap, "$BOOTSTRAP").replace(self.data_root, "$LOG_DIRS").replace(self.tmp, "$TMP")
            shown.append(a if re.fullmatch(r"[\w@%+=:,./$-]+", a) else "'%s'" % a)
        return " ".join([tool] + shown)

    def run(self, tool, args, stdin="", timeout=40, step=None):
        cls = TOOLS.get(tool, tool)
        r = self.runner.call(cls, args, stdin=stdin, timeout=timeout)
        cmd = self.display(tool, args)
        if step is not None and step not in self.commands and not tool.startswith("@"):
            self.commands[step] = cmd
        self.transcript.append("$ %s\n[exit %s, %s ms]\n%s%s" % (cmd, r["exit"], r["ms"], r["out"], r["err"]))
        return r

    def bs(self):
        return ["--bootstrap-server", self.bootstrap]

    def file(self, name, content):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path


def first_lines(r, n=6):
    text = (r["out"] + r["err"]).strip().splitlines()
    keep = [l for l in text if not l.startswith("\tat ")][:n]
    # (each line cut, so that a long first line, e.g. the echoed arguments, leaves room for the cause)
    return " / ".join(l.strip()[:170] for l in keep)[:700]


def ok_exit(r, what=""):
    if r["exit"] != 0:
        raise StepFailed("exit %s%s: %s" % (r["exit"], what, first_lines(r)))
    return r["out"]


def poll(check, timeout=10.0):
    """check() until it returns without StepFailed, at most `timeout` s (KRaft applies metadata asynchronously)."""
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except StepFailed:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


# ------------------------------------------------------------------ parsers

def describe_topic(c, topic, step):
    out = ok_exit(c.run("kafka-topics", c.bs() + ["--describe", "--topic", topic], step=step))
    m = re.search(r"Topic: %s\s+TopicId: \S+\s+PartitionCount: (\d+)\s+ReplicationFactor: (\d+)" % re.escape(topic), out)
    if not m:
        raise StepFailed("no topic header line: %s" % out[:300])
    parts = {}
    for pm in re.finditer(r"Topic: %s\s+Partition: (\d+)\s+Leader: (\S+)\s+Replicas: (\S+)\s+Isr: (\S*)" % re.escape(topic), out):
        parts[int(pm.group(1))] = (pm.group(2), pm.group(3), pm.group(4))
    return int(m.group(1)), int(m.group(2)), parts


def config_lines(out):
    """{key: (value, rest)} from kafka-configs --describe output (`  key=value sensitive=... synonyms={...}`)."""
    res = {}
    for line in out.splitlines():
        m = re.match(r"\s+([\w.\-]+)=(.*?) sensitive=(\w+) synonyms=\{(.*)\}\s*$", line)
        if m:
            res[m.group(1)] = (m.group(2), m.group(4))
    return res


def offsets_lines(out, topic):
    res = {}
    for line in out.splitlines():
        m = re.fullmatch(r"%s:(\d+):(-?\d*)" % re.escape(topic), line.strip())
        if m:
            res[int(m.group(1))] = int(m.group(2)) if m.group(2) else None
    return res


def group_rows(out, group, topic):
    """{partition: (current, log_end, lag)} from kafka-consumer-groups --describe ('-' → None)."""
    res = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] == group and f[1] == topic and f[2].isdigit():
            conv = [None if x == "-" else int(x) for x in f[3:6]]
            res[int(f[2])] = tuple(conv)
    return res


def table(out, header_first):
    """Rows (lists of whitespace-split fields) after the header line starting with `header_first`."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:1] == [header_first]:
            return [l.split() for l in lines[i + 1:] if l.strip()]
    raise StepFailed("no table with header %s: %s" % (header_first, out[:300]))


# ------------------------------------------------------------------ steps

STEPS = []


def step(sid):
    def deco(fn):
        STEPS.append((sid, fn))
        return fn
    return deco


T = "tools-t"       # the main topic: 3 partitions, then 5
D = "tools-dump"    # 1 partition, for kafka-dump-log
X = "tools-x"       # created to be deleted
GROUP = "tools-group"
CFG_GROUP = "tools-cfg-group"
MEMBER_GROUP = "tools-member-group"
TXN_ID = "tools-txn"
N_RECORDS = 50


@step("broker-api-versions")
def s_api_versions(c):
    out = ok_exit(c.run("kafka-broker-api-versions", c.bs(), step="broker-api-versions"))
    m = re.search(r"\(id: (\d+) rack: \S+ isFenced: \w+\) -> \(", out)
    if not m:
        raise StepFailed("no '(id: N rack: ...) -> (' line: %s" % out[:200])
    c.broker_id = m.group(1)
    for api in ("Produce(0)", "Fetch(1)", "ListOffsets(2)", "Metadata(3)", "ApiVersions(18)", "CreateTopics(19)"):
        if not re.search(r"%s: \d+ to \d+ \[usable: \d+\]" % re.escape(api), out):
            raise StepFailed("%s not listed as usable" % api)
    n = len(re.findall(r"\[usable: \d+\]", out))
    return "broker id %s, %d APIs usable" % (c.broker_id, n)


@step("topics-create")
def s_create(c):
    for topic, parts in ((T, 3), (D, 1), (X, 2)):
        out = ok_exit(c.run("kafka-topics", c.bs() + ["--create", "--topic", topic, "--partitions", parts,
                                                      "--replication-factor", 1], step="topics-create"))
        if "Created topic %s." % topic not in out:
            raise StepFailed("no 'Created topic %s.': %s" % (topic, out[:200]))
    return "created %s (3), %s (1), %s (2)" % (T, D, X)


@step("topics-list")
def s_list(c):
    def check():
        names = ok_exit(c.run("kafka-topics", c.bs() + ["--list"], step="topics-list")).split()
        missing = [t for t in (T, D, X) if t not in names]
        if missing:
            raise StepFailed("missing %s in %s" % (missing, names))
        return "%d topics listed" % len(names)
    return poll(check)


@step("topics-describe")
def s_describe(c):
    count, rf, parts = describe_topic(c, T, "topics-describe")
    if count != 3 or rf != 1 or sorted(parts) != [0, 1, 2]:
        raise StepFailed("PartitionCount %s ReplicationFactor %s partitions %s" % (count, rf, sorted(parts)))
    bid = c.broker_id or parts[0][0]
    bad = {p: v for p, v in parts.items() if v != (bid, bid, bid)}
    if bad:
        raise StepFailed("leader/replicas/isr not broker %s: %s" % (bid, bad))
    return "PartitionCount 3, leader/replicas/isr %s" % bid


@step("topics-alter-partitions")
def s_alter_partitions(c):
    ok_exit(c.run("kafka-topics", c.bs() + ["--alter", "--topic", T, "--partitions", 5], step="topics-alter-partitions"))

    def check():
        count, _, parts = describe_topic(c, T, None)
        if count != 5 or sorted(parts) != list(range(5)):
            raise StepFailed("after --partitions 5: PartitionCount %s, partitions %s" % (count, sorted(parts)))
        return "PartitionCount 5"
    return poll(check)


@step("topics-delete")
def s_delete_topic(c):
    ok_exit(c.run("kafka-topics", c.bs() + ["--delete", "--topic", X], step="topics-delete"))

    def check():
        names = ok_exit(c.run("kafka-topics", c.bs() + ["--list"])).split()
        if X in names:
            raise StepFailed("%s still listed" % X)
        return "%s gone from --list" % X
    return poll(check)


@step("configs-topic-alter-describe")
def s_cfg_topic(c):
    out = ok_exit(c.run("kafka-configs", c.bs() + ["--entity-type", "topics", "--entity-name", T, "--alter",
                                                   "--add-config", "retention.ms=7200000,max.message.bytes=200000"],
                        step="configs-topic-alter-describe"))
    if "Completed updating config for topic %s." % T not in out:
        raise StepFailed("no 'Completed updating config': %s" % out[:200])

    def check():
        cfg = config_lines(ok_exit(c.run("kafka-configs", c.bs() + ["--entity-type", "topics", "--entity-name", T, "--describe"])))
        for k, v in (("retention.ms", "7200000"), ("max.message.bytes", "200000")):
            if k not in cfg or cfg[k][0] != v or "DYNAMIC_TOPIC_CONFIG:%s=%s" % (k, v) not in cfg[k][1]:
                raise StepFailed("%s: %s" % (k, cfg.get(k)))
        return "retention.ms=7200000, max.message.bytes=200000 (DYNAMIC_TOPIC_CONFIG)"
    return poll(check)


@step("configs-topic-delete-config")
def s_cfg_topic_delete(c):
    ok_exit(c.run("kafka-configs", c.bs() + ["--entity-type", "topics", "--entity-name", T, "--alter",
                                             "--delete-config", "max.message.bytes"], step="configs-topic-delete-config"))

    def check():
        cfg = config_lines(ok_exit(c.run("kafka-configs", c.bs() + ["--entity-type", "topics", "--entity-name", T, "--describe"])))
        if "max.message.bytes" in cfg or "retention.ms" not in cfg:
            raise StepFailed("dynamic configs now %s" % sorted(cfg))
        return "max.message.bytes gone, retention.ms kept"
    return poll(check)


@step("configs-broker-describe-all")
def s_cfg_broker_all(c):
    out = ok_exit(c.run("kafka-configs", c.bs() + ["--entity-type", "brokers", "--entity-name", c.broker_id or "1",
                                                   "--describe", "--all"], step="configs-broker-describe-all"))
    if "All configs for broker %s are:" % (c.broker_id or "1") not in out:
        raise StepFailed("no 'All configs for broker N are:': %s" % out[:200])
    cfg = config_lines(out)
    want = ["message.max.bytes", "num.partitions", "log.retention.hours", "log.segment.bytes",
            "auto.create.topics.enable", "offsets.topic.replication.factor"]
    missing = [k for k in want if k not in cfg]
    if missing:
        raise StepFailed("missing %s among %d configs" % (missing, len(cfg)))
    return "%d configs" % len(cfg)


@step("configs-broker-alter-delete")
def s_cfg_broker_alter(c):
    bid = c.broker_id or "1"
    base = c.bs() + ["--entity-type", "brokers", "--entity-name", bid]
    ok_exit(c.run("kafka-configs", base + ["--alter", "--add-config", "message.max.bytes=2000000"],
                  step="configs-broker-alter-delete"))

    def set_check():
        cfg = config_lines(ok_exit(c.run("kafka-configs", base + ["--describe"])))
        v = cfg.get("message.max.bytes")
        if not v or v[0] != "2000000" or "DYNAMIC_BROKER_CONFIG:message.max.bytes=2000000" not in v[1]:
            raise StepFailed("message.max.bytes: %s" % (v,))
    poll(set_check)
    ok_exit(c.run("kafka-configs", base + ["--alter", "--delete-config", "message.max.bytes"]))

    def del_check():
        cfg = config_lines(ok_exit(c.run("kafka-configs", base + ["--describe"])))
        if "message.max.bytes" in cfg:
            raise StepFailed("still dynamic after --delete-config: %s" % (cfg["message.max.bytes"],))
    poll(del_check)
    return "message.max.bytes=2000000 shown as DYNAMIC_BROKER_CONFIG, then removed"


@step("configs-broker-default-alter-delete")
def s_cfg_broker_default(c):
    base = c.bs() + ["--entity-type", "brokers", "--entity-default"]
    ok_exit(c.run("kafka-configs", base + ["--alter", "--add-config", "log.cleaner.delete.retention.ms=86400001"],
                  step="configs-broker-default-alter-delete"))

    def set_check():
        out = ok_exit(c.run("kafka-configs", base + ["--describe"]))
        v = config_lines(out).get("log.cleaner.delete.retention.ms")
        if not v or v[0] != "86400001" or "DYNAMIC_DEFAULT_BROKER_CONFIG" not in v[1]:
            raise StepFailed("log.cleaner.delete.retention.ms: %s (%s)" % (v, out[:200]))
    poll(set_check)
    ok_exit(c.run("kafka-configs", base + ["--alter", "--delete-config", "log.cleaner.delete.retention.ms"]))

    def del_check():
        if "log.cleaner.delete.retention.ms" in config_lines(ok_exit(c.run("kafka-configs", base + ["--describe"]))):
            raise StepFailed("still set after --delete-config")
    poll(del_check)
    return "cluster default set (DYNAMIC_DEFAULT_BROKER_CONFIG), then removed"


LEVELS = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"}


@step("configs-broker-loggers")
def s_loggers(c):
    bid = c.broker_id or "1"
    base = c.bs() + ["--entity-type", "broker-loggers", "--entity-name", bid]
    out = ok_exit(c.run("kafka-configs", base + ["--describe"], step="configs-broker-loggers"))
    loggers = {k: v[0] for k, v in config_lines(out).items()}
    if not loggers or any(v not in LEVELS for v in loggers.values()):
        raise StepFailed("loggers %s" % list(loggers.items())[:5])
    name = next((k for k in sorted(loggers) if k != "root"), "root")
    old = loggers[name]
    new = "DEBUG" if old != "DEBUG" else "TRACE"
    ok_exit(c.run("kafka-configs", base + ["--alter", "--add-config", "%s=%s" % (name, new)]))

    def check():
        now = {k: v[0] for k, v in config_lines(ok_exit(c.run("kafka-configs", base + ["--describe"]))).items()}
        if now.get(name) != new:
            raise StepFailed("%s is %s after setting %s" % (name, now.get(name), new))
    poll(check)
    ok_exit(c.run("kafka-configs", base + ["--alter", "--add-config", "%s=%s" % (name, old)]))
    return "%d loggers; %s %s -> %s -> %s" % (len(loggers), name, old, new, old)


@step("configs-groups")
def s_cfg_groups(c):
    base = c.bs() + ["--entity-type", "groups", "--entity-name", CFG_GROUP]
    ok_exit(c.run("kafka-configs", base + ["--alter", "--add-config", "consumer.session.timeout.ms=50000"], step="configs-groups"))

    def check():
        v = config_lines(ok_exit(c.run("kafka-configs", base + ["--describe"]))).get("consumer.session.timeout.ms")
        if not v or v[0] != "50000":
            raise StepFailed("consumer.session.timeout.ms: %s" % (v,))
    poll(check)
    ok_exit(c.run("kafka-configs", base + ["--alter", "--delete-config", "consumer.session.timeout.ms"]))
    return "consumer.session.timeout.ms=50000 on group %s, then removed" % CFG_GROUP


@step("configs-client-metrics")
def s_cfg_cm(c):
    base = c.bs() + ["--entity-type", "client-metrics", "--entity-name", "tools-cm-configs"]
    ok_exit(c.run("kafka-configs", base + ["--alter", "--add-config", "metrics=[org.apache.kafka.producer.],interval.ms=5000"],
                  step="configs-client-metrics"))

    def check():
        cfg = config_lines(ok_exit(c.run("kafka-configs", base + ["--describe"])))
        if cfg.get("interval.ms", ("",))[0] != "5000" or "org.apache.kafka.producer." not in cfg.get("metrics", ("",))[0]:
            raise StepFailed("configs %s" % cfg)
    poll(check)
    return "interval.ms=5000, metrics=org.apache.kafka.producer."


@step("console-producer")
def s_console_producer(c):
    lines = ["k%d:v%d" % (i % 7, i) for i in range(N_RECORDS)]
    ok_exit(c.run("kafka-console-producer", c.bs() + ["--topic", T, "--reader-property", "parse.key=true",
                                                      "--reader-property", "key.separator=:"],
                  stdin="\n".join(lines) + "\n", step="console-producer"))
    c.produced = lines
    return "%d keyed lines" % len(lines)


@step("get-offsets")
def s_get_offsets(c):
    def check():
        latest = offsets_lines(ok_exit(c.run("kafka-get-offsets", c.bs() + ["--topic", T], step="get-offsets")), T)
        if sorted(latest) != list(range(5)) or sum(v or 0 for v in latest.values()) != N_RECORDS:
            raise StepFailed("latest %s (want 5 partitions summing to %d)" % (latest, N_RECORDS))
        return latest
    latest = poll(check)
    earliest = offsets_lines(ok_exit(c.run("kafka-get-offsets", c.bs() + ["--topic", T, "--time", "-2"])), T)
    if earliest != {p: 0 for p in range(5)}:
        raise StepFailed("earliest %s" % earliest)
    c.end_offsets = latest
    return "latest %s, earliest all 0" % ",".join(str(latest[p]) for p in range(5))


@step("console-consumer")
def s_console_consumer(c):
    r = c.run("kafka-console-consumer", c.bs() + ["--topic", T, "--from-beginning", "--max-messages", N_RECORDS,
                                                  "--group", GROUP, "--timeout-ms", 20000,
                                                  "--formatter-property", "print.key=true",
                                                  "--formatter-property", "key.separator=:"],
              timeout=45, step="console-consumer")
    out = ok_exit(r)
    got = [l for l in out.splitlines() if l.strip()]
    if sorted(got) != sorted(c.produced):
        raise StepFailed("read %d lines, %d expected; first differences %s" % (
            len(got), len(c.produced), sorted(set(got) ^ set(c.produced))[:4]))
    return "read back all %d key:value lines (group %s)" % (len(got), GROUP)


@step("consumer-groups-list")
def s_cg_list(c):
    def check():
        names = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--list"], step="consumer-groups-list")).split()
        if GROUP not in names:
            raise StepFailed("%s not in %s" % (GROUP, names))
        return "%s listed" % GROUP
    return poll(check)


def describe_group(c, extra=(), step=None):
    out = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--describe", "--group", GROUP] + list(extra), step=step))
    return group_rows(out, GROUP, T), out


@step("consumer-groups-describe")
def s_cg_describe(c):
    rows, _ = describe_group(c, step="consumer-groups-describe")
    want = {p: (c.end_offsets.get(p), c.end_offsets.get(p), 0) for p in range(5)}
    if rows != want:
        raise StepFailed("rows %s, want (current, log-end, lag) %s" % (rows, want))
    return "5 partitions, current = log-end, lag 0"


@step("consumer-groups-describe-offsets")
def s_cg_describe_offsets(c):
    rows, _ = describe_group(c, ["--offsets"], step="consumer-groups-describe-offsets")
    if sum(r[0] or 0 for r in rows.values()) != N_RECORDS or any(r[2] != 0 for r in rows.values()):
        raise StepFailed("rows %s" % rows)
    return "committed offsets sum %d, lag 0" % N_RECORDS


@step("consumer-groups-describe-members-state")
def s_cg_members(c):
    r = c.run("kafka-consumer-groups", c.bs() + ["--describe", "--group", GROUP, "--members"],
              step="consumer-groups-describe-members-state")
    ok_exit(r)
    if "Consumer group '%s' has no active members." % GROUP not in r["out"] + r["err"]:
        raise StepFailed("empty group: %s" % first_lines(r))
    ok_exit(c.run("@member-start", [c.bootstrap, MEMBER_GROUP, T], timeout=40))
    try:
        def check():
            out = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--describe", "--group", MEMBER_GROUP, "--members"]))
            rows = [f for f in table(out, "GROUP") if f and f[0] == MEMBER_GROUP]
            if len(rows) != 1 or rows[0][-1] != "5":
                raise StepFailed("members %s" % rows)
            out = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--describe", "--group", MEMBER_GROUP, "--state"]))
            st = [f for f in table(out, "GROUP") if f and f[0] == MEMBER_GROUP]
            if not st or "Stable" not in st[0]:
                raise StepFailed("state %s" % st)
        poll(check)
    finally:
        c.run("@member-stop", [MEMBER_GROUP])
    return "%s: no active members; live member: 1 member with 5 partitions, Stable" % GROUP


@step("consumer-groups-reset-dry-run")
def s_cg_reset_dry(c):
    out = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--reset-offsets", "--group", GROUP, "--topic", T,
                                                           "--to-earliest", "--dry-run"], step="consumer-groups-reset-dry-run"))
    new = {int(f[2]): int(f[3]) for f in table(out, "GROUP") if len(f) == 4 and f[0] == GROUP}
    if new != {p: 0 for p in range(5)}:
        raise StepFailed("NEW-OFFSET rows %s" % new)
    rows, _ = describe_group(c)
    if any(r[2] != 0 for r in rows.values()):
        raise StepFailed("dry run changed the offsets: %s" % rows)
    return "NEW-OFFSET 0 on 5 partitions, committed offsets unchanged"


@step("consumer-groups-reset-execute")
def s_cg_reset_exec(c):
    ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--reset-offsets", "--group", GROUP, "--topic", T,
                                                     "--to-earliest", "--execute"], step="consumer-groups-reset-execute"))
    rows, _ = describe_group(c)
    lag = sum(r[2] or 0 for r in rows.values())
    if lag != N_RECORDS or any(r[0] != 0 for r in rows.values()):
        raise StepFailed("after reset: %s" % rows)
    return "current 0 everywhere, total lag %d" % lag


@step("consumer-groups-delete-offsets")
def s_cg_delete_offsets(c):
    out = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--delete-offsets", "--group", GROUP, "--topic", T],
                        step="consumer-groups-delete-offsets"))
    rows = [f for f in table(out, "TOPIC") if len(f) >= 3 and f[0] == T]
    if len(rows) != 5 or any(f[2] != "Successful" for f in rows):
        raise StepFailed("rows %s" % rows)
    left, _ = describe_group(c)
    if any(r[0] is not None for r in left.values()):
        raise StepFailed("offsets still committed: %s" % left)
    return "5 partitions Successful; none committed afterwards"


@step("consumer-groups-delete")
def s_cg_delete(c):
    out = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--delete", "--group", GROUP], step="consumer-groups-delete"))
    if "Deletion of requested consumer groups ('%s') was successful." % GROUP not in out:
        raise StepFailed(out[:200])
    names = ok_exit(c.run("kafka-consumer-groups", c.bs() + ["--list"])).split()
    if GROUP in names:
        raise StepFailed("still listed")
    return "deleted, gone from --list"


@step("delete-records")
def s_delete_records(c):
    p = max(range(5), key=lambda q: c.end_offsets.get(q) or 0)
    f = c.file("delete-records.json", {"partitions": [{"topic": T, "partition": p, "offset": 1}], "version": 1})
    out = ok_exit(c.run("kafka-delete-records", c.bs() + ["--offset-json-file", f], step="delete-records"))
    if not re.search(r"partition: %s-%d\s+low_watermark: 1\b" % (re.escape(T), p), out):
        raise StepFailed("no 'low_watermark: 1' for %s-%d: %s" % (T, p, out[:200]))
    earliest = offsets_lines(ok_exit(c.run("kafka-get-offsets", c.bs() + ["--topic", T, "--partitions", p, "--time", "-2"])), T)
    if earliest != {p: 1}:
        raise StepFailed("earliest afterwards %s" % earliest)
    return "%s-%d low_watermark 1 (kafka-get-offsets --time -2 agrees)" % (T, p)


@step("log-dirs-describe")
def s_log_dirs(c):
    out = ok_exit(c.run("kafka-log-dirs", c.bs() + ["--describe", "--topic-list", T], step="log-dirs-describe"))
    js = [l for l in out.splitlines() if l.startswith("{")]
    if not js:
        raise StepFailed("no JSON line: %s" % out[:200])
    doc = json.loads(js[-1])
    brokers = doc.get("brokers", [])
    if len(brokers) != 1 or str(brokers[0].get("broker")) != (c.broker_id or "1"):
        raise StepFailed("brokers %s" % [b.get("broker") for b in brokers])
    parts = {}
    for d in brokers[0].get("logDirs", []):
        if d.get("error"):
            raise StepFailed("log dir %s error %s" % (d.get("logDir"), d.get("error")))
        for pt in d.get("partitions", []):
            parts[pt["partition"]] = pt["size"]
    want = {"%s-%d" % (T, p) for p in range(5)}
    if set(parts) != want:
        raise StepFailed("partitions %s" % sorted(parts))
    nonempty = [k for k in want if c.end_offsets.get(int(k.rsplit("-", 1)[1]))]
    if any(parts[k] <= 0 for k in nonempty):
        raise StepFailed("sizes %s" % parts)
    return "5 partitions, %d bytes in all" % sum(parts.values())


@step("leader-election-preferred-all")
def s_elect_all(c):
    # With every replica already the preferred leader Kafka answers no partition at all, and the
    # tool prints nothing; an election error would be listed ("Error completing leader election").
    r = c.run("kafka-leader-election", c.bs() + ["--election-type", "preferred", "--all-topic-partitions"],
              step="leader-election-preferred-all")
    out = ok_exit(r)
    if "Error" in r["out"] + r["err"] or "failed" in r["out"] + r["err"]:
        raise StepFailed(first_lines(r))
    return "exit 0: %s" % (first_lines(r, 1)[:120] or "no election needed (no output)")


@step("leader-election-preferred-partition")
def s_elect_one(c):
    out = ok_exit(c.run("kafka-leader-election", c.bs() + ["--election-type", "preferred", "--topic", T, "--partition", 0],
                        step="leader-election-preferred-partition"))
    if not re.search(r"(Valid replica already elected|Successfully completed leader election) for partitions %s-0\b" % re.escape(T), out):
        raise StepFailed(out[:200])
    return "%s-0: %s" % (T, out.strip()[:60])


@step("reassign-generate")
def s_reassign_generate(c):
    bid = c.broker_id or "1"
    f = c.file("topics-to-move.json", {"topics": [{"topic": T}], "version": 1})
    out = ok_exit(c.run("kafka-reassign-partitions", c.bs() + ["--topics-to-move-json-file", f, "--broker-list", bid, "--generate"],
                        step="reassign-generate"))
    docs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    if len(docs) != 2 or "Proposed partition reassignment configuration" not in out:
        raise StepFailed(out[:300])
    for doc in docs:
        got = {(x["topic"], x["partition"]): x["replicas"] for x in doc["partitions"]}
        if got != {(T, p): [int(bid)] for p in range(5)}:
            raise StepFailed("assignment %s" % got)
    return "current and proposed: 5 partitions on [%s]" % bid


@step("reassign-execute-verify")
def s_reassign_exec(c):
    bid = int(c.broker_id or "1")
    f = c.file("reassign.json", {"version": 1, "partitions": [{"topic": T, "partition": 0, "replicas": [bid], "log_dirs": ["any"]}]})
    out = ok_exit(c.run("kafka-reassign-partitions", c.bs() + ["--reassignment-json-file", f, "--execute"], step="reassign-execute-verify"))
    if "Successfully started partition reassignment for %s-0" % T not in out:
        raise StepFailed(out[:300])

    def check():
        v = ok_exit(c.run("kafka-reassign-partitions", c.bs() + ["--reassignment-json-file", f, "--verify"]))
        if "Reassignment of partition %s-0 is completed." % T not in v:
            raise StepFailed(v[:300])
    poll(check)
    lst = ok_exit(c.run("kafka-reassign-partitions", c.bs() + ["--list"]))
    if "No partition reassignments found." not in lst:
        raise StepFailed("--list: %s" % lst[:200])
    return "started, verified completed, --list shows none in progress"


@step("metadata-quorum-status")
def s_quorum_status(c):
    out = ok_exit(c.run("kafka-metadata-quorum", c.bs() + ["describe", "--status"], step="metadata-quorum-status"))
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", out, re.M))
    for k in ("ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "CurrentVoters"):
        if k not in fields:
            raise StepFailed("no %s: %s" % (k, out[:300]))
    try:
        voters = [str(v["id"]) for v in json.loads(fields["CurrentVoters"])]
    except (ValueError, KeyError, TypeError):
        raise StepFailed("CurrentVoters is not a JSON list of voters: %s" % fields["CurrentVoters"][:200])
    if fields["LeaderId"] not in voters:
        raise StepFailed("LeaderId %s not among CurrentVoters %s" % (fields["LeaderId"], voters))
    return "LeaderId %s, HighWatermark %s" % (fields["LeaderId"], fields["HighWatermark"])


@step("metadata-quorum-replication")
def s_quorum_repl(c):
    out = ok_exit(c.run("kafka-metadata-quorum", c.bs() + ["describe", "--replication"], step="metadata-quorum-replication"))
    rows = table(out, "NodeId")
    leaders = [r for r in rows if r and r[-1] == "Leader"]
    if len(leaders) != 1:
        raise StepFailed("rows %s" % rows)
    return "%d row(s), leader node %s" % (len(rows), leaders[0][0])


@step("features-describe")
def s_features(c):
    out = ok_exit(c.run("kafka-features", c.bs() + ["describe"], step="features-describe"))
    feats = {m.group(1): m.group(2) for m in re.finditer(r"Feature: (\S+)\s+SupportedMinVersion: \S+\s+SupportedMaxVersion: \S+\s+FinalizedVersionLevel: (\S+)", out)}
    # kraft.version is not required: Arus has no KRaft quorum yet and does not offer it
    # (README, UpdateFeatures row); the features both brokers implement must be there.
    for k in ("metadata.version", "transaction.version", "group.version"):
        if k not in feats:
            raise StepFailed("no %s among %s" % (k, sorted(feats)))
    if feats["transaction.version"] != "2" or feats["group.version"] != "1":
        raise StepFailed("finalized transaction.version %s, group.version %s (Kafka 4.4: 2, 1)" % (feats["transaction.version"], feats["group.version"]))
    return ", ".join("%s=%s" % kv for kv in sorted(feats.items()))


@step("transactions")
def s_transactions(c):
    ok_exit(c.run("@txn-open", [c.bootstrap, TXN_ID, T, 1], timeout=40))
    committed = False
    try:
        def listed():
            rows = table(ok_exit(c.run("kafka-transactions", c.bs() + ["list"], step="transactions")), "TransactionalId")
            mine = [r for r in rows if r and r[0] == TXN_ID]
            if not mine or mine[0][3] != "Ongoing":
                raise StepFailed("list rows %s" % rows)
            return mine[0]
        row = poll(listed)
        pid = row[2]
        rows = table(ok_exit(c.run("kafka-transactions", c.bs() + ["describe", "--transactional-id", TXN_ID])), "CoordinatorId")
        if not rows or "Ongoing" not in rows[0] or "%s-1" % T not in " ".join(rows[0]) or pid not in rows[0]:
            raise StepFailed("describe %s" % rows)
        prod = table(ok_exit(c.run("kafka-transactions", c.bs() + ["describe-producers", "--topic", T, "--partition", 1])), "ProducerId")
        mine = [r for r in prod if r and r[0] == pid]
        if not mine or not mine[0][-1].lstrip("-").isdigit() or int(mine[0][-1]) < 0:
            raise StepFailed("describe-producers %s (pid %s)" % (prod, pid))
        hang = ok_exit(c.run("kafka-transactions", c.bs() + ["find-hanging", "--broker-id", c.broker_id or "1"]))
        if TXN_ID in hang or re.search(r"^\s*%s-\d" % re.escape(T), hang, re.M):
            raise StepFailed("find-hanging reports the live transaction: %s" % hang[:200])
        ok_exit(c.run("@txn-commit", [TXN_ID], timeout=40))
        committed = True

        def done():
            rows = table(ok_exit(c.run("kafka-transactions", c.bs() + ["describe", "--transactional-id", TXN_ID])), "CoordinatorId")
            if not rows or "CompleteCommit" not in rows[0]:
                raise StepFailed("after commit: %s" % rows)
        poll(done)
    finally:
        if not committed:
            c.run("@txn-commit", [TXN_ID], timeout=40)
    return "list/describe Ongoing (producer %s, %s-1), describe-producers open txn, find-hanging none, CompleteCommit after commit" % (pid, T)


@step("client-metrics")
def s_client_metrics(c):
    name = "tools-cm"
    out = ok_exit(c.run("kafka-client-metrics", c.bs() + ["--alter", "--name", name, "--metrics", "org.apache.kafka.producer.",
                                                          "--interval", 5000], step="client-metrics"))
    if name not in out:
        raise StepFailed("alter: %s" % out[:200])

    def described():
        d = ok_exit(c.run("kafka-client-metrics", c.bs() + ["--describe", "--name", name]))
        if "interval.ms=5000" not in d or "org.apache.kafka.producer." not in d:
            raise StepFailed("describe: %s" % d[:300])
        names = ok_exit(c.run("kafka-client-metrics", c.bs() + ["--list"])).split()
        if name not in names:
            raise StepFailed("list: %s" % names)
    poll(described)
    ok_exit(c.run("kafka-client-metrics", c.bs() + ["--delete", "--name", name]))

    def gone():
        names = ok_exit(c.run("kafka-client-metrics", c.bs() + ["--list"])).split()
        if name in names:
            raise StepFailed("still listed after --delete")
    poll(gone)
    return "alter, describe (interval.ms=5000), list, delete"


def find_partition_dir(root, topic, partition):
    for dirpath, dirnames, _ in os.walk(root):
        if os.path.basename(dirpath) == "%s-%d" % (topic, partition):
            return dirpath
    return None


@step("dump-log-segment")
def s_dump_log(c):
    n = 300
    lines = ["dump-%04d-%s" % (i, "x" * 100) for i in range(n)]
    ok_exit(c.run("kafka-console-producer", c.bs() + ["--topic", D, "--command-property", "batch.size=2048",
                                                      "--command-property", "linger.ms=0"],
                  stdin="\n".join(lines) + "\n"))
    d = find_partition_dir(c.data_root, D, 0)
    if not d:
        raise StepFailed("no %s-0 directory under the log dirs" % D)
    c.segment = os.path.join(d, "%020d" % 0)
    for ext in ("log", "index", "timeindex"):
        if not os.path.exists(c.segment + "." + ext):
            raise StepFailed("no %s.%s in %s (%s)" % (os.path.basename(c.segment), ext, d, sorted(os.listdir(d))))
    out = ok_exit(c.run("kafka-dump-log", ["--files", c.segment + ".log", "--print-data-log"], step="dump-log-segment"))
    offsets = [int(x) for x in re.findall(r"\| offset: (\d+) ", out)]
    payloads = re.findall(r" payload: (\S+)", out)
    if offsets != list(range(n)) or payloads != lines:
        raise StepFailed(".log: %d records, offsets %s..., payloads equal %s" % (len(offsets), offsets[:3], payloads == lines))
    batches = len(re.findall(r"^baseOffset: \d+ lastOffset: \d+", out, re.M))
    return "%d records with their payloads in %d batches" % (n, batches)


@step("dump-log-index")
def s_dump_index(c):
    if not getattr(c, "segment", None):
        raise StepFailed("no segment (dump-log-segment failed)")
    r = c.run("kafka-dump-log", ["--files", c.segment + ".index"], step="dump-log-index")
    out = ok_exit(r)
    idx = [(int(a), int(b)) for a, b in re.findall(r"^offset: (\d+) position: (\d+)", out, re.M)]
    if not idx or any(b2 <= b1 or a2 <= a1 for (a1, b1), (a2, b2) in zip(idx, idx[1:])) or idx[-1][0] >= 300:
        raise StepFailed(".index entries %s: %s" % (idx[:5], first_lines(r)))
    return "%d offset index entries, increasing" % len(idx)


@step("dump-log-timeindex")
def s_dump_timeindex(c):
    if not getattr(c, "segment", None):
        raise StepFailed("no segment (dump-log-segment failed)")
    r = c.run("kafka-dump-log", ["--files", c.segment + ".timeindex"], step="dump-log-timeindex")
    out = ok_exit(r)
    tidx = [(int(a), int(b)) for a, b in re.findall(r"^timestamp: (\d+) offset: (\d+)", out, re.M)]
    if not tidx or any(o >= 300 for _, o in tidx) or any(t2 < t1 for (t1, _), (t2, _) in zip(tidx, tidx[1:])):
        raise StepFailed(".timeindex entries %s: %s" % (tidx[:5], first_lines(r)))
    return "%d time index entries" % len(tidx)


# ------------------------------------------------------------------ driver

def run_broker(name, binary, classpath, tmp_root, log_dir, out):
    """Start one broker, run every step against it; fills out[name] = Ctx."""
    data = os.path.join(tmp_root, name)
    os.makedirs(data)
    broker = Broker(binary, data, os.path.join(log_dir, "%s-broker.log" % name), overrides=BROKER_OVERRIDES)
    runner = None
    c = None
    try:
        started = time.time()
        bootstrap = broker.start(timeout=90)
        print("[tools] %s: broker on %s after %.1f s" % (name, bootstrap, time.time() - started), flush=True)
        runner = Runner(classpath, open(os.path.join(log_dir, "%s-toolrunner.log" % name), "w"))
        tmp = os.path.join(data, "files")
        os.makedirs(tmp)
        c = Ctx(name, bootstrap, os.path.join(data, "logs"), runner, tmp)
        for sid, fn in STEPS:
            t0 = time.time()
            try:
                detail = fn(c)
                c.results[sid] = (True, detail)
            except StepFailed as e:
                c.results[sid] = (False, str(e))
            except Exception as e:  # noqa: BLE001
                c.results[sid] = (False, "harness error: %r" % e)
            ok, detail = c.results[sid]
            detail = detail.replace(c.bootstrap, "$BOOTSTRAP").replace(c.data_root, "$LOG_DIRS").replace(c.tmp, "$TMP")
            c.results[sid] = (ok, detail)
            print("[tools] %s: %-40s %s %5.1fs  %s" % (name, sid, "PASS" if ok else "FAIL", time.time() - t0, detail[:160]), flush=True)
    except Exception as e:  # noqa: BLE001
        print("[tools] %s: could not run: %r" % (name, e), flush=True)
        if c is None:
            c = Ctx(name, "?", data, None, data)
        for sid, _ in STEPS:
            c.results.setdefault(sid, (False, "not run: %r" % e))
    finally:
        if runner:
            runner.close()
        broker.stop()
        if c is not None:
            with open(os.path.join(log_dir, "%s-transcript.txt" % name), "w") as f:
                f.write("\n".join(c.transcript))
        out[name] = c


def cell(res):
    ok, detail = res
    if ok:
        return "PASS"
    return "**FAIL** " + detail.replace("|", "\\|").replace("\n", " ")[:400]


def write_report(path, ctxs, meta):
    names = [n for n in ("arus", "kafka") if n in ctxs]
    lines = ["# Kafka 4.4 command-line tools: Arus vs Apache Kafka", "",
             "Generated by `compat/kafka_tools.py` (%s). Each step runs the same tool invocations with the same "
             "checks against both brokers (see compat/README.md, \"Kafka's command-line tools\"). "
             "`$BOOTSTRAP` is the broker's address, `$LOG_DIRS` its --log-dirs, `$TMP` a scratch dir; "
             "the command shown is the step's first invocation (the full transcript is in the run's logs)." % meta, ""]
    for n in names:
        c = ctxs[n]
        p = sum(1 for ok, _ in c.results.values() if ok)
        lines.append("- %s: %d of %d steps pass" % (n, p, len(STEPS)))
    lines += ["", "| step | command | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for sid, _ in STEPS:
        cmd = next((ctxs[n].commands.get(sid) for n in names if ctxs[n].commands.get(sid)), "")
        lines.append("| %s | `%s` | %s |" % (sid, cmd.replace("|", "\\|"), " | ".join(cell(ctxs[n].results.get(sid, (False, "not run"))) for n in names)))
    lines += ["", "Details of the passing runs (what was checked and seen):", ""]
    for sid, _ in STEPS:
        for n in names:
            ok, detail = ctxs[n].results.get(sid, (False, ""))
            if ok:
                lines.append("- %s (%s): %s" % (sid, n, detail))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=os.path.join(ROOT, "target", "release", "arus"))
    ap.add_argument("--reference", default=os.path.join(COMPAT, "reference", "kafka-broker.sh"))
    ap.add_argument("--only", choices=["arus", "kafka"])
    ap.add_argument("--report", default=os.path.join(COMPAT, "KAFKA_TOOLS.md"))
    ap.add_argument("--keep-logs", action="store_true")
    a = ap.parse_args()
    started = time.time()
    classpath = resolve_classpath()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_dir = os.path.join(COMPAT, "work", "logs", "kafka-tools-" + stamp)
    os.makedirs(log_dir)
    tmp_root = tempfile.mkdtemp(prefix="arus-kafka-tools-")
    which = {"arus": os.path.abspath(a.broker), "kafka": os.path.abspath(a.reference)}
    if a.only:
        which = {a.only: which[a.only]}
    ctxs = {}
    threads = [threading.Thread(target=run_broker, args=(n, b, classpath, tmp_root, log_dir, ctxs)) for n, b in which.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    meta = "%s UTC, %.0f s" % (dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"), elapsed)
    write_report(a.report, ctxs, meta)
    bad = []
    for sid, _ in STEPS:
        res = {n: ctxs[n].results.get(sid, (False, ""))[0] for n in ctxs}
        if a.only:
            if not all(res.values()):
                bad.append(sid)
        elif res.get("kafka") and not res.get("arus"):
            bad.append(sid)
    kafka_fail = [sid for sid, _ in STEPS if "kafka" in ctxs and not ctxs["kafka"].results.get(sid, (False,))[0]]
    if kafka_fail:
        print("[tools] failing on Apache Kafka (harness or reference problem): %s" % ", ".join(kafka_fail))
    shutil.rmtree(tmp_root, ignore_errors=True)
    failed = bool(bad) or (bool(kafka_fail) and not a.only)
    if not failed and not a.keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print("[tools] logs and transcripts: %s" % os.path.relpath(log_dir, ROOT))
    summary = ", ".join("%s %d/%d" % (n, sum(1 for ok, _ in ctxs[n].results.values() if ok), len(STEPS)) for n in ctxs)
    print("[tools] report %s; %s; %.0f s" % (os.path.relpath(a.report, ROOT), summary, elapsed))
    if bad:
        print("%d steps fail on %s: %s" % (len(bad), a.only or "Arus while passing on Kafka", ", ".join(bad)))
    if failed:
        sys.exit(1)
    print("every step passes on %s" % " and ".join(sorted(ctxs)))


if __name__ == "__main__":
    main()
