#!/usr/bin/env python3
"""Kafka's own JBOD tools against a broker with two log directories (issue 13, item 4).

    python3 compat/log_dirs_tools.py [--broker PATH]      # default target/release/arus
    python3 compat/log_dirs_tools.py --broker compat/reference/kafka-broker.sh

Starts the broker with `log.dirs=<tmp>/a,<tmp>/b` (`--log-dirs` for arus, `--override
log.dirs=...` for the Kafka wrapper), then with Kafka 4.4's tools (classpath from
compat/work/reference-classpath.txt, made by compat/reference/kafka-broker.sh):
  - TopicCommand creates a 4-partition topic;
  - LogDirsCommand --describe: both directories, no error, 4 partitions spread 2/2, size 0,
    offsetLag 0, not future; a topic that does not exist: both directories, no partitions;
  - Admin.alterReplicaLogDirs (compat/reference/LogDirsMove.java, the call
    kafka-reassign-partitions makes for `log_dirs`) moves partition 0 to the other directory
    (OK, then describeReplicaLogDirs shows it there with no future), and is refused with
    LogDirNotFoundException for a directory not in the config and
    UnknownTopicOrPartitionException for an unknown topic;
  - ReassignPartitionsCommand --execute with a log_dirs field moves partition 1 (n/a if the
    broker does not serve ListPartitionReassignments / AlterPartitionReassignments, which the
    tool calls first).
Prints every invocation and its output; exit status 1 on any violation.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)
CP_FILE = os.path.join(COMPAT, "work", "reference-classpath.txt")
TOPIC = "jbod"


def java(cp, *args):
    out = subprocess.run(["java", "-cp", cp, *args], capture_output=True, text=True, timeout=120)
    text = "\n".join(line for line in (out.stdout + out.stderr).splitlines()
                     if not line.startswith(("SLF4J", "log4j")) and " WARN " not in line)
    print("$ java", " ".join(a for a in args))
    print(text)
    return text


def log_dirs(cp, bs, topics):
    text = java(cp, "org.apache.kafka.tools.LogDirsCommand", "--bootstrap-server", bs,
                "--describe", "--topic-list", topics)
    doc = json.loads(text.strip().splitlines()[-1])
    return {d["logDir"]: d for d in doc["brokers"][0]["logDirs"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(ROOT, "target", "release", "arus"))
    args = ap.parse_args()
    if not os.path.exists(CP_FILE):
        subprocess.run(["mvn", "-q", "dependency:build-classpath",
                        f"-Dmdep.outputFile={CP_FILE}"], cwd=os.path.join(COMPAT, "reference"),
                       check=True)
    cp = open(CP_FILE).read().strip()
    tmp = tempfile.mkdtemp(prefix="log-dirs-tools-")
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    ready = os.path.join(tmp, "ready")
    cmd = [args.broker, "serve", "--listeners", "PLAINTEXT://127.0.0.1:0", "--ready-file", ready]
    if args.broker.endswith(".sh"):
        cmd += ["--log-dirs", os.path.join(tmp, "k"), "--override", f"log.dirs={a},{b}"]
    else:
        cmd += ["--log-dirs", f"{a},{b}"]
    log = open(os.path.join(tmp, "broker.log"), "w")
    broker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAILED:", what)

    try:
        deadline = time.time() + 120
        while not (os.path.exists(ready) and open(ready).read().endswith("\n")):
            if time.time() > deadline or broker.poll() is not None:
                raise SystemExit("broker did not start; see " + log.name)
            time.sleep(0.1)
        bs = open(ready).read().strip()
        java(cp, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bs, "--create",
             "--topic", TOPIC, "--partitions", "4", "--replication-factor", "1")
        time.sleep(1)
        dirs = log_dirs(cp, bs, TOPIC)
        check(sorted(dirs) == sorted([a, b]), "both log directories are described")
        check(all(d["error"] is None for d in dirs.values()), "no directory error")
        where = {}
        for path, d in dirs.items():
            for p in d["partitions"]:
                where[p["partition"]] = path
                check(p["size"] == 0 and p["offsetLag"] == 0 and not p["isFuture"],
                      f"fresh partition {p}")
        check(sorted(where) == [f"{TOPIC}-{i}" for i in range(4)], "every partition once")
        check(sorted(list(where.values()).count(x) for x in (a, b)) == [2, 2],
              "partitions spread 2/2 (Kafka's nextLogDirs)")
        none = log_dirs(cp, bs, "no-such-topic")
        check(all(d["partitions"] == [] and d["error"] is None for d in none.values()),
              "an unknown topic lists no partitions")

        dest0 = b if where[f"{TOPIC}-0"] == a else a
        text = java(cp, os.path.join(COMPAT, "reference", "LogDirsMove.java"), bs, TOPIC, "0", dest0)
        check(f"{TOPIC}-0-1 -> OK" in text, "the move is accepted")
        check(f"{TOPIC}-1-1 -> LogDirNotFoundException" in text, "LOG_DIR_NOT_FOUND")
        check("no-such-topic-0-1 -> UnknownTopicOrPartitionException" in text,
              "UNKNOWN_TOPIC_OR_PARTITION")
        check(f"{TOPIC}-0-1 current={dest0} future=null" in text, "the move completes")

        dest1 = b if where[f"{TOPIC}-1"] == a else a
        plan = os.path.join(tmp, "reassign.json")
        with open(plan, "w") as f:
            json.dump({"version": 1, "partitions": [
                {"topic": TOPIC, "partition": 1, "replicas": [1], "log_dirs": [dest1]}]}, f)
        print(open(plan).read())
        text = java(cp, "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                    "--bootstrap-server", bs, "--execute", "--reassignment-json-file", plan)
        if "does not support LIST_PARTITION_REASSIGNMENTS" in text or \
                "does not support ALTER_PARTITION_REASSIGNMENTS" in text:
            print("n/a: kafka-reassign-partitions --execute needs List/AlterPartitionReassignments")
        else:
            check(f"Successfully started moving log directory to {dest1}" in text,
                  "kafka-reassign-partitions starts the move")
            deadline = time.time() + 30
            while time.time() < deadline:
                moved = log_dirs(cp, bs, TOPIC)
                if any(p["partition"] == f"{TOPIC}-1" and not p["isFuture"]
                       for p in moved[dest1]["partitions"]):
                    break
                time.sleep(0.5)
            else:
                check(False, "kafka-reassign-partitions moves the partition")
        final = log_dirs(cp, bs, TOPIC)
        check(any(p["partition"] == f"{TOPIC}-0" for p in final[dest0]["partitions"]),
              "partition 0 is in its new directory")
    finally:
        broker.terminate()
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
    if failures:
        print(f"{len(failures)} check(s) failed; broker log: {log.name}")
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("log_dirs_tools: all checks passed")


if __name__ == "__main__":
    main()
