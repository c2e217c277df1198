#!/usr/bin/env python3
"""Arus vs Apache Kafka (and optionally a third broker), measured side by side in one run.

    python3 bench/run.py [--workload W1,W5] [--scale F] [--arus PATH] [--no-java] [--results PATH]

See bench/README.md for what is measured and how. Every figure comes from this run.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def repo_relative(arg):
    """An argument as the report shows it: paths inside the repository relative to it, paths
    elsewhere (one machine's) by their file name only."""
    if not os.path.isabs(arg):
        return arg
    rel = os.path.relpath(arg, ROOT)
    return rel if not rel.startswith("..") else "<" + os.path.basename(arg) + " outside the repository>"
VENV_PYTHON = os.path.join(ROOT, "compat", ".venv", "bin", "python")
ARUS = os.path.join(ROOT, "target", "release", "arus")
KAFKA_WRAPPER = os.path.join(ROOT, "compat", "reference", "kafka-broker.sh")
KAFKA_POM = os.path.join(ROOT, "compat", "reference", "pom.xml")
TOOLS_CLASSPATH = os.path.join(HERE, "work", "tools-classpath.txt")
WORKLOADS = os.path.join(HERE, "workloads.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, HERE)
from params import RECORD_BYTES, WORKLOADS as WORKLOAD_PARAMS  # noqa: E402

PARTITIONS = WORKLOAD_PARAMS["W1"]["partitions"]
START_TIMEOUT_S = 120
WORKLOAD_TIMEOUT_S = 300
# Passed to every broker (see Broker.start).
BROKER_OVERRIDES = ["group.initial.rebalance.delay.ms=0"]


def ensure_venv():
    """Re-run under compat/.venv's Python if confluent-kafka is not importable here."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        in_venv = os.path.realpath(sys.prefix) == os.path.realpath(os.path.dirname(os.path.dirname(VENV_PYTHON)))
        if in_venv or not os.path.exists(VENV_PYTHON):
            sys.exit("confluent-kafka missing: run `bash compat/install.sh` first")
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])


def sh(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def log(msg):
    print(f"[{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes (/proc)

def proc_stat(pid):
    """(ppid, utime+stime ticks, starttime ticks) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def process_tree(root):
    """root and all its live descendants."""
    children = {}
    for path in glob.glob("/proc/[0-9]*"):
        pid = int(path.rsplit("/", 1)[1])
        st = proc_stat(pid)
        if st:
            children.setdefault(st[0], []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root):
    return sum(rss_kib(p) for p in process_tree(root)) / 1024


def tree_cpu_s(root):
    return sum((proc_stat(p) or (0, 0, 0))[1] for p in process_tree(root)) / CLK_TCK


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def boottime_s():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def cpu_by_process():
    """{pid: (command name, CPU ticks)} for every live process."""
    out = {}
    for path in glob.glob("/proc/[0-9]*"):
        try:
            with open(f"{path}/stat") as f:
                text = f.read()
            fields = text.rsplit(")", 1)[1].split()
            out[int(path[6:])] = (text[text.index("(") + 1:text.rindex(")")], int(fields[11]) + int(fields[12]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def top_foreign(before, after, ours, wall, n=3):
    """The n busiest processes outside `ours` between two cpu_by_process() snapshots, as 'name NN%'."""
    use = {}
    for pid, (name, ticks) in after.items():
        if pid not in ours:
            delta = ticks - before.get(pid, (name, 0))[1]
            key = re.sub(r"[/:].*$", "", name)  # kworker/1:1H-kblockd -> kworker
            use[key] = use.get(key, 0) + delta
    top = sorted(use.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {100 * ticks / CLK_TCK / wall:.0f}%" for name, ticks in top if ticks > 0)


def machine_busy_s():
    """CPU seconds the whole machine has been busy (all cores; iowait counts as idle)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def wait_for_quiet(max_wait_s, threshold_pct=25.0):
    """Wait (bounded) until other processes leave the machine mostly idle; returns last busy % of all cores."""
    end = time.monotonic() + max_wait_s
    while True:
        b0 = machine_busy_s()
        time.sleep(1)
        busy_pct = 100 * (machine_busy_s() - b0) / os.cpu_count()
        if busy_pct < threshold_pct or time.monotonic() >= end:
            return busy_pct
        log(f"machine busy ({busy_pct:.0f} % of all cores), waiting for it to quiet down")


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- brokers

class Broker:
    """One broker process started with the Arus CLI contract, in its own process group."""

    def __init__(self, name, command, workdir, overrides=()):
        self.name, self.command, self.workdir = name, command, workdir
        self.overrides = list(overrides)
        self.data_dir = os.path.join(workdir, "data")
        self.ready_file = os.path.join(workdir, "ready")
        self.log_path = os.path.join(workdir, "broker.log")
        self.proc = None
        self.spawned_boot_s = None
        self.bootstrap = None
        self.server_exec = None

    def start(self):
        args = [self.command, "serve", "--log-dirs", self.data_dir,
                "--listeners", "PLAINTEXT://127.0.0.1:0", "--ready-file", self.ready_file]
        # Same group settings for every broker: the Kafka wrapper runs with
        # group.initial.rebalance.delay.ms=0, so Arus (default 3 s, Kafka's default) gets 0 too;
        # otherwise every group join (W3's ConsumerPerformance) would compare unequal settings.
        for o in BROKER_OVERRIDES + self.overrides:
            args += ["--override", o]
        self.log_file = open(self.log_path, "w")
        self.spawned_boot_s = boottime_s()
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, deadline):
        while time.perf_counter() < deadline:
            # The Kafka wrapper formats storage (child JVMs), then execs kafka.Kafka in its own pid:
            # /proc's start time is the fork, so note when the exec shows in the cmdline instead.
            if self.server_exec is None and "kafka.Kafka " in cmdline(self.proc.pid):
                self.server_exec = time.perf_counter()
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            if os.path.exists(self.ready_file):
                text = open(self.ready_file).read().strip()
                if text:
                    self.bootstrap = text
                    return
            time.sleep(0.005)
        raise RuntimeError(f"{self.name}: no ready file within {START_TIMEOUT_S} s")

    def server_process_start_s(self):
        """Seconds from spawn to the exec of a `kafka.Kafka` JVM (seen within 5 ms), if there was one."""
        return None if self.server_exec is None else self.server_exec - self.spawned

    def stop(self):
        if not self.proc or not self._group_alive():
            return
        for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait_s
            while time.monotonic() < end and self._group_alive():
                self.proc.poll()
                time.sleep(0.1)
            if not self._group_alive():
                break
        self.proc.poll()
        self.log_file.close()

    def _group_alive(self):
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False


def first_ack_s(broker, deadline, topic="bench-startup", partition=-1):
    """Poll with acks=all produces until one is acknowledged; seconds since spawn."""
    from confluent_kafka import Producer
    broker.wait_ready(deadline)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": False,
                         "log_level": 3, "message.timeout.ms": 5000, "retry.backoff.ms": 10, "reconnect.backoff.ms": 10,
                         "topic.metadata.refresh.fast.interval.ms": 10})
    acked = []
    while not acked and time.perf_counter() < deadline:
        outcome = []
        producer.produce(topic, b"hello", partition=partition, on_delivery=lambda err, msg: outcome.append(err))
        while not outcome and time.perf_counter() < deadline:
            producer.poll(0.005)
        if outcome and outcome[0] is None:
            acked.append(time.perf_counter())
    if not acked:
        raise RuntimeError(f"{broker.name}: no acknowledged produce within {START_TIMEOUT_S} s")
    return acked[0] - broker.spawned


# ---------------------------------------------------------------- workloads

def run_workload(broker, args, timeout=WORKLOAD_TIMEOUT_S, command=None):
    """Run a client process; sample the broker's RSS (peak) and CPU meanwhile."""
    cmd = command or [sys.executable, WORKLOADS, *args, "--bootstrap", broker.bootstrap]
    cpu0, client0, busy0 = tree_cpu_s(broker.proc.pid), children_cpu_s(), machine_busy_s()
    procs0, self0 = cpu_by_process(), self_cpu_s()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None and time.perf_counter() - t0 < timeout:
        peak = max(peak, tree_rss_mib(broker.proc.pid))
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    broker_s, client_s = tree_cpu_s(broker.proc.pid) - cpu0, children_cpu_s() - client0
    ours_s = broker_s + client_s + self_cpu_s() - self0  # this process samples /proc meanwhile
    result = {"exit": proc.returncode, "peak_rss_mib": peak, "broker_cpu_pct": 100 * broker_s / wall,
              "client_cpu_pct": 100 * client_s / wall,
              "other_cpu_pct": max(0.0, 100 * (machine_busy_s() - busy0 - ours_s) / wall),
              "other_top": top_foreign(procs0, cpu_by_process(),
                                       set(process_tree(broker.proc.pid)) | {proc.pid, os.getpid()}, wall)}
    lines = [line for line in out.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        result.update(ok=False, error=(err.strip().splitlines() or ["timeout" if wall >= timeout else "no output"])[-1])
        return result
    if command is None:
        result.update(json.loads(lines[-1]))
    else:
        result["output"] = lines
    return result


def create_topic(broker, topic, partitions=PARTITIONS, configs=()):
    r = run_workload(broker, ["create", "--topic", topic, "--partitions", str(partitions),
                              *[x for c in configs for x in ("--config", c)]], timeout=90)
    if r.get("exit") != 0:
        raise RuntimeError(f"{broker.name}: create {topic} failed: {r.get('error')}")
    return r


def java_producer_perf(broker, topic, records, acks):
    """Kafka's own ProducerPerformance (Java client), same producer settings as the Python one."""
    classpath = open(TOOLS_CLASSPATH).read().strip()
    cmd = ["java", "-Xmx512m", "-cp", classpath, "org.apache.kafka.tools.ProducerPerformance",
           "--topic", topic, "--num-records", str(records), "--record-size", "1024", "--throughput", "-1",
           "--producer-props", f"bootstrap.servers={broker.bootstrap}", f"acks={acks}", "linger.ms=5",
           "batch.size=262144", "compression.type=none", "enable.idempotence=false"]
    r = run_workload(broker, [], command=cmd)
    summary = [line for line in r.pop("output", []) if "records sent" in line]
    m = re.match(r"(\d+) records sent, ([\d.]+) records/sec", summary[-1]) if summary else None
    if not m:
        r.update(ok=False, error=r.get("error", "no summary line"))
        return r
    sent, per_s = int(m.group(1)), float(m.group(2))
    r.update(records=sent, records_per_s=per_s, mb_per_s=per_s * 1024 / 1e6, ok=sent == records,
             summary=summary[-1])
    return r


def java_tool(broker, cls, tool_args, timeout=WORKLOAD_TIMEOUT_S):
    classpath = open(TOOLS_CLASSPATH).read().strip()
    return run_workload(broker, [], timeout=timeout,
                        command=["java", "-Xmx512m", "-cp", classpath, f"org.apache.kafka.tools.{cls}", *tool_args])


def java_consumer_perf(broker, topic, records, timeout):
    """Kafka's ConsumerPerformance: subscribes with a fresh group from the earliest offset."""
    r = java_tool(broker, "ConsumerPerformance",
                  ["--bootstrap-server", broker.bootstrap, "--topic", topic, "--num-records", str(records),
                   "--group", f"bench-cperf-{int(time.time() * 1000)}", "--timeout", "30000", "--hide-header"],
                  timeout=timeout)
    rows_ = [line for line in r.pop("output", []) if line.count(",") >= 9 and line[:1].isdigit()]
    if not rows_:
        r.update(ok=False, error=r.get("error", "no result line"))
        return r
    # start, end, MB (2^20), MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s
    f = [x.strip() for x in rows_[-1].split(",")]
    mib, n, rebalance_ms, fetch_ms = float(f[2]), int(float(f[4])), float(f[6]), float(f[7])
    r.update(records=n, rebalance_ms=rebalance_ms, fetch_s=fetch_ms / 1000,
             mb_per_s=mib * 2**20 / 1e6 / (fetch_ms / 1000) if fetch_ms > 0 else None,
             ok=n >= records, summary=rows_[-1])
    return r


def java_end_to_end(broker, topic, records):
    """Kafka's EndToEndLatency: one record at a time, sent with acks=1, the next after it is consumed."""
    r = java_tool(broker, "EndToEndLatency", [broker.bootstrap, topic, str(records), "1", str(RECORD_BYTES)])
    out = r.pop("output", [])
    pct = [line for line in out if line.startswith("Percentiles")]
    avg = [line for line in out if line.startswith("Avg latency")]
    m = re.search(r"50th = ([\d.]+), 99th = ([\d.]+), 99\.9th = ([\d.]+)", pct[-1]) if pct else None
    if not m:
        r.update(ok=False, error=r.get("error", "no percentiles line"))
        return r
    r.update(p50_ms=float(m.group(1)), p99_ms=float(m.group(2)), p999_ms=float(m.group(3)),
             avg_ms=float(re.search(r"([\d.]+)", avg[-1]).group(1)) if avg else None, ok=True,
             summary=" / ".join(avg + pct))
    return r


def fill(broker, topic, nbytes, partitions):
    """Untimed acks=1 produce of `nbytes` of 1 KiB records; returns the record count."""
    records = max(1, nbytes // RECORD_BYTES)
    create_topic(broker, topic, partitions=partitions)
    r = run_workload(broker, ["produce", "--topic", topic, "--records", str(records), "--acks", "1",
                              "--partitions", str(partitions)], timeout=max(WORKLOAD_TIMEOUT_S, nbytes / 10e6))
    if not r.get("ok"):
        raise RuntimeError(f"{broker.name}: filling {topic} failed: {r.get('error') or r}")
    log(f"{broker.name}: wrote {nbytes / 1e6:.0f} MB to {topic} at {r['mb_per_s']:.0f} MB/s")
    return records, r


def w1(broker, res, p, with_java):
    if p["warmup_records"]:
        create_topic(broker, "bench-warmup")
        run_workload(broker, ["produce", "--topic", "bench-warmup", "--records", str(p["warmup_records"]),
                              "--acks", "1", "--partitions", str(p["partitions"])])
    records = p["records"]
    for key, acks, configs in p["runs"]:
        topic = f"bench-{key}"
        create_topic(broker, topic, partitions=p["partitions"], configs=configs)
        settle()
        res[f"produce_{key}"] = run_workload(broker, ["produce", "--topic", topic, "--records", str(records),
                                                      "--acks", acks, "--partitions", str(p["partitions"])])
        log(f"{broker.name}: W1 produce {key}: {summarize(res[f'produce_{key}'])}")
    res["consume"] = run_workload(broker, ["consume", "--topic", "bench-acks1", "--records", str(records),
                                           "--partitions", str(p["partitions"])])
    log(f"{broker.name}: W1 consume: {summarize(res['consume'])}")
    if with_java:
        for acks in p["java_runs"]:
            key = "acks1" if acks == "1" else f"acks{acks}"
            topic = f"bench-java-{key}"
            create_topic(broker, topic, partitions=p["partitions"])
            settle()
            res[f"java_{key}"] = java_producer_perf(broker, topic, records, acks)
            log(f"{broker.name}: W1 java produce {key}: {summarize(res[f'java_{key}'])}")


# Arus with Apache Kafka's durability: acks=all is answered once the batch is in the page cache.
ARUS_KAFKA_DURABILITY = ["arus.acks.all.fsync=false"]


def w1_kafka_durability(broker, res, p):
    """W1's acks=1 and acks=all runs again on an Arus started with ARUS_KAFKA_DURABILITY."""
    records = p["records"]
    if p["warmup_records"]:
        create_topic(broker, "bench-warmup")
        run_workload(broker, ["produce", "--topic", "bench-warmup", "--records", str(p["warmup_records"]),
                              "--acks", "1", "--partitions", str(p["partitions"])])
    for key, acks in (("acks1", "1"), ("acksall", "all")):
        topic = f"bench-kd-{key}"
        create_topic(broker, topic, partitions=p["partitions"])
        settle()
        res[f"kd_{key}"] = run_workload(broker, ["produce", "--topic", topic, "--records", str(records),
                                                 "--acks", acks, "--partitions", str(p["partitions"])])
        log(f"{broker.name}: W1 produce {key}, Kafka-equal durability: {summarize(res[f'kd_{key}'])}")


def settle():
    """Writes dirty pages back before a measured step, so that the kernel's writeback of the
    previous step's data (gigabytes, for a fast broker only seconds old) does not run during
    this one and land on whichever broker happens to be measured then."""
    sh(["sync"], timeout=600)


def w2(broker, res, p, with_java):
    create_topic(broker, "bench-latency", partitions=p["partitions"])
    settle()
    res["latency"] = run_workload(broker, ["latency", "--topic", "bench-latency", "--rate", str(p["rate"]),
                                           "--seconds", str(p["seconds"])])
    log(f"{broker.name}: W2 latency: {summarize(res['latency'])}")
    if with_java:
        create_topic(broker, "bench-e2e-java", partitions=1)
        settle()
        res["latency_java"] = java_end_to_end(broker, "bench-e2e-java", p["java_records"])
        log(f"{broker.name}: W2 java EndToEndLatency: {summarize(res['latency_java'])}")


def w3(broker, res, p, with_java):
    records, _ = fill(broker, "bench-w3", p["bytes"], p["partitions"])
    settle()
    timeout = max(WORKLOAD_TIMEOUT_S, p["bytes"] / 10e6)
    res["w3_consume"] = run_workload(broker, ["consume", "--topic", "bench-w3", "--records", str(records),
                                              "--partitions", str(p["partitions"]), "--timeout", str(timeout)],
                                     timeout=timeout + 30)
    log(f"{broker.name}: W3 catch-up [py]: {summarize(res['w3_consume'])}")
    raw = run_workload(broker, [], timeout=timeout + 30,
                       command=[FETCH_RATE, "--bootstrap", broker.bootstrap, "--topic", "bench-w3",
                                "--partitions", str(p["partitions"]), "--bytes", str(int(p["bytes"] * 0.98))])
    if raw.get("output"):
        raw.update(json.loads(raw["output"][-1]))
    res["w3_raw"] = raw
    log(f"{broker.name}: W3 catch-up [raw fetch]: {summarize(raw)}")
    if with_java:
        res["w3_java"] = java_consumer_perf(broker, "bench-w3", records, timeout)
        log(f"{broker.name}: W3 catch-up [java]: {summarize(res['w3_java'])}")


def w5(broker, res, p, with_java):
    # CreateTopics sent → one ListOffsets round succeeds on every partition (Kafka answers CreateTopics earlier)
    settle()
    res["w5_create_s"] = create_topic(broker, "bench-w5", partitions=p["partitions"]).get("seconds_to_ready")
    res["w5_produce"] = run_workload(broker, ["produce", "--topic", "bench-w5", "--records", str(p["records"]),
                                              "--acks", p["acks"], "--partitions", str(p["partitions"])])
    log(f"{broker.name}: W5 produce over {p['partitions']} partitions: {summarize(res['w5_produce'])}")
    res["w5_metadata"] = run_workload(broker, ["metadata", "--topic", "bench-w5", "--partitions",
                                               str(p["partitions"]), "--calls", str(p["metadata_calls"])])
    log(f"{broker.name}: W5 metadata: {summarize(res['w5_metadata'])}")


def w6(broker, res, p, with_java):
    """Fill, write a marker with acks=all, SIGKILL, restart on the same data; time until the broker is usable."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    fill(broker, "bench-w6", p["bytes"], p["partitions"])
    marker = f"w6-marker-{time.time_ns()}".encode()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": False})
    got = []
    producer.produce("bench-w6", marker, partition=0, on_delivery=lambda err, msg: got.append((err, msg.offset())))
    producer.flush(60)
    if not got or got[0][0] is not None:
        raise RuntimeError(f"{broker.name}: W6 marker not acknowledged: {got}")
    marker_offset = got[0][1]
    del producer
    os.killpg(broker.proc.pid, signal.SIGKILL)
    broker.proc.wait(timeout=30)
    broker.log_file.close()
    os.remove(broker.ready_file)
    broker.log_path = os.path.join(broker.workdir, "broker-restart.log")
    broker.bootstrap = broker.server_exec = None
    log(f"{broker.name}: W6 SIGKILLed with {p['bytes'] / 1e6:.0f} MB + marker at offset {marker_offset}; restarting")
    broker.start()
    deadline = time.perf_counter() + START_TIMEOUT_S + p["bytes"] / 20e6
    res["w6_ready_s"] = None
    broker.wait_ready(deadline)
    res["w6_ready_s"] = time.perf_counter() - broker.spawned
    res["w6_produce_s"] = first_ack_s(broker, deadline, topic="bench-w6", partition=0)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-unused",
                         "enable.auto.commit": False, "reconnect.backoff.ms": 10, "log_level": 3})
    consumer.assign([TopicPartition("bench-w6", 0, marker_offset)])
    value = None
    try:
        while value is None and time.perf_counter() < deadline:
            msg = consumer.poll(0.05)
            if msg is not None and not msg.error():
                value = msg.value()
    finally:
        consumer.close()
    if value != marker:
        raise RuntimeError(f"{broker.name}: W6 read {value!r} at offset {marker_offset}, wanted {marker!r}")
    res["w6_recovered_s"] = time.perf_counter() - broker.spawned
    log(f"{broker.name}: W6 restart: ready file {res['w6_ready_s']:.2f} s, acks=all ack {res['w6_produce_s']:.2f} s, "
        f"marker read {res['w6_recovered_s']:.2f} s after exec")


STEPS = {"W1": w1, "W2": w2, "W3": w3, "W5": w5, "W6": w6}  # W4 is taken on every start (and from W1's RSS)


def bench_broker(name, command, params, selected, tmp_root, with_java, quiet_wait_s):
    workdir = tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_root)
    broker = Broker(name, command, workdir)
    res = {"name": name, "command": command, "busy_before_pct": wait_for_quiet(quiet_wait_s)}
    try:
        broker.start()
        deadline = time.perf_counter() + START_TIMEOUT_S
        res["startup_s"] = first_ack_s(broker, deadline)
        res["server_exec_s"] = broker.server_process_start_s()
        log(f"{name}: first acks=all ack after {res['startup_s']:.2f} s at {broker.bootstrap}")
        time.sleep(params["W4"]["idle_wait_s"])
        res["idle_rss_mib"] = tree_rss_mib(broker.proc.pid)
        for w in selected:
            if w in STEPS and w != "W6":
                STEPS[w](broker, res, params[w], with_java)
        if "W1" in selected and name == "arus":
            # Kafka-equal durability: acks=all answered from the page cache, as Kafka does with
            # its default flush settings. A fresh broker, so that it starts from the same state.
            broker.stop()
            shutil.rmtree(workdir, ignore_errors=True)
            workdir = tempfile.mkdtemp(prefix=f"{name}-nofsync-", dir=tmp_root)
            broker = Broker(name, command, workdir, overrides=ARUS_KAFKA_DURABILITY)
            broker.start()
            first_ack_s(broker, time.perf_counter() + START_TIMEOUT_S)
            w1_kafka_durability(broker, res, params["W1"])
        if "W6" in selected:  # a fresh broker, so that the data it recovers is W6's alone
            broker.stop()
            shutil.rmtree(workdir, ignore_errors=True)
            workdir = tempfile.mkdtemp(prefix=f"{name}-w6-", dir=tmp_root)
            broker = Broker(name, command, workdir)
            broker.start()
            first_ack_s(broker, time.perf_counter() + START_TIMEOUT_S)
            w6(broker, res, params["W6"], with_java)
    except Exception as e:  # keep the other brokers' figures; report what failed
        res["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        log(f"{name}: FAILED: {res['error']}")
    finally:
        broker.stop()
        res["log_tail"] = tail(broker.log_path) if "error" in res else None
        shutil.rmtree(workdir, ignore_errors=True)
    others = [v["other_cpu_pct"] for v in res.values() if isinstance(v, dict) and "other_cpu_pct" in v]
    res["max_other_cpu_pct"] = max(others) if others else None
    return res


def summarize(r):
    keys = ("mb_per_s", "p50_ms", "p99_ms", "peak_rss_mib", "broker_cpu_pct", "client_cpu_pct", "other_cpu_pct",
            "other_top", "ok", "error")
    return ", ".join(f"{k}={r[k]:.1f}" if isinstance(r.get(k), float) else f"{k}={r[k]}" for k in keys if k in r)


def tail(path, n=15):
    try:
        return open(path, errors="replace").read().splitlines()[-n:]
    except OSError:
        return []


# ---------------------------------------------------------------- machine limits

def dd_write(tmp_root, extra, count, bs="1M"):
    path = os.path.join(tmp_root, "dd.bin")
    sh(["sync"])
    t0 = time.perf_counter()
    r = sh(["dd", "if=/dev/zero", f"of={path}", f"bs={bs}", f"count={count}", *extra], timeout=300)
    seconds = time.perf_counter() - t0
    os.remove(path)
    sh(["sync"])
    if r.returncode != 0:
        return {"error": r.stderr.strip()}
    return {"command": " ".join(["dd", "if=/dev/zero", "of=TMP/dd.bin", f"bs={bs}", f"count={count}", *extra]),
            "seconds": seconds, "dd_says": r.stderr.strip().splitlines()[-1]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iperf3_loopback():
    if not shutil.which("iperf3"):
        return {"error": "iperf3 not installed"}
    port = str(free_port())
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", port],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(20):
            time.sleep(0.25)
            r = sh(["iperf3", "-c", "127.0.0.1", "-p", port, "-t", "3", "-J"], timeout=30)
            if r.returncode == 0:
                gbit = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
                return {"command": f"iperf3 -c 127.0.0.1 -t 3 (1 stream)", "gbit_per_s": gbit}
        return {"error": "iperf3 client failed"}
    finally:
        server.kill()
        server.wait()


def dd_twice(tmp_root, extra, count, bs, per_unit):
    """Two dd runs (the first can differ, e.g. block allocation); figure per run via per_unit(seconds)."""
    runs = [dd_write(tmp_root, extra, count, bs) for _ in range(2)]
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    return {"command": runs[0]["command"], "figures": [per_unit(r["seconds"]) for r in runs]}


def machine_ceiling_mb_s(limits):
    """What W3 can reach at most: the lower of the page-cache read rate and loopback TCP."""
    cache = limits.get("page_cache_read", {}).get("figures")
    gbit = limits.get("iperf3", {}).get("gbit_per_s")
    if not cache or not gbit:
        return None
    return min(max(cache), gbit * 1e9 / 8 / 1e6)


def page_cache_read(tmp_root, count=1024):
    """Read bandwidth of a file that is in the page cache (written, then read twice; the
    second read is reported)."""
    path = os.path.join(tmp_root, "dd-read.bin")
    w = sh(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}"], timeout=300)
    if w.returncode != 0:
        return {"error": w.stderr.strip()}
    figures = []
    try:
        for _ in range(2):
            t0 = time.perf_counter()
            r = sh(["dd", f"if={path}", "of=/dev/null", "bs=1M"], timeout=300)
            if r.returncode != 0:
                return {"error": r.stderr.strip()}
            figures.append(count * 2**20 / 1e6 / (time.perf_counter() - t0))
    finally:
        os.remove(path)
    return {"command": f"dd if=TMP/dd-read.bin of=/dev/null bs=1M (1 GiB, cached)", "figures": figures}


def machine_limits(tmp_root):
    gib_mb = 2**30 / 1e6
    return {"page_cache_read": page_cache_read(tmp_root),"dd_plain": dd_twice(tmp_root, [], 1024, "1M", lambda s: gib_mb / s),
            "dd_fdatasync": dd_twice(tmp_root, ["conv=fdatasync"], 1024, "1M", lambda s: gib_mb / s),
            "dd_dsync_4k": dd_twice(tmp_root, ["oflag=dsync"], 500, "4k", lambda s: s / 500 * 1000),
            "iperf3": iperf3_loopback()}


# ---------------------------------------------------------------- environment

def read_first(path, pattern):
    try:
        m = re.search(pattern, open(path).read(), re.M)
        return m.group(1).strip() if m else "?"
    except OSError:
        return "?"


def machine_info(tmp_root):
    src = sh(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", tmp_root]).stdout.split()
    dev = os.path.basename(src[0]) if src else "?"
    rotational = read_first(f"/sys/block/{dev}/queue/rotational", r"(\d)")
    mem_kib = int(read_first("/proc/meminfo", r"^MemTotal:\s+(\d+)"))
    return {"nproc": os.cpu_count(), "cpu": read_first("/proc/cpuinfo", r"^model name\s*:\s*(.*)$"),
            "memory_gib": round(mem_kib / 2**20, 1), "kernel": platform.release(),
            "disk": f"{' '.join(src)} (rotational={rotational}) for {tmp_root}"}


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def version_string(v):
    """confluent-kafka's version()/libversion() give (str, int) or, in some builds, a plain str."""
    return v[0] if isinstance(v, tuple) else str(v)


def versions():
    import confluent_kafka
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--", ".", ":!bench"]).stdout.strip()
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(ARUS), datetime.timezone.utc)
    java = sh(["java", "-version"]).stderr.splitlines()
    return {"arus": f"{sh([ARUS, '--version']).stdout.strip()}, git {commit}{' (+uncommitted changes)' if dirty else ''}, "
                    f"binary built {mtime:%Y-%m-%d %H:%M} UTC, sha256 {file_sha256(ARUS)}",
            "kafka": read_first(KAFKA_POM, r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)"),
            "confluent_kafka": f"confluent-kafka {version_string(confluent_kafka.version())}, "
                               f"librdkafka {version_string(confluent_kafka.libversion())}",
            "java": java[0] if java else "?",
            "kafka_tools": read_first(os.path.join(HERE, "pom.xml"),
                                      r"<artifactId>kafka-tools</artifactId>\s*<version>([^<]+)"),
            "python": platform.python_version()}


def resolve_tools_classpath():
    pom = os.path.join(HERE, "pom.xml")
    if os.path.exists(TOOLS_CLASSPATH) and os.path.getmtime(TOOLS_CLASSPATH) >= os.path.getmtime(pom):
        return True
    os.makedirs(os.path.dirname(TOOLS_CLASSPATH), exist_ok=True)
    r = sh(["mvn", "-q", "-B", "-Dstyle.color=never", "dependency:build-classpath",
            f"-Dmdep.outputFile={TOOLS_CLASSPATH}"], timeout=600, cwd=HERE)
    return r.returncode == 0


FETCH_RATE_DIR = os.path.join(HERE, "fetch-rate")
FETCH_RATE = os.path.join(HERE, "work", "target", "release", "fetch-rate")


def build_fetch_rate():
    """bench/fetch-rate, the raw Fetch load generator of W3 (a Rust package of its own)."""
    log("building bench/fetch-rate")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=FETCH_RATE_DIR, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": os.path.join(HERE, "work", "target")})


def brokers_to_run():
    brokers = [("arus", ARUS), ("kafka", KAFKA_WRAPPER)]
    other = os.environ.get("BENCH_OTHER_BROKER")
    if other:
        brokers.append((os.path.basename(other).split(".")[0] or "other", os.path.abspath(other)))
    return brokers


# ---------------------------------------------------------------- report

def fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def cell(r, key, sub, digits=1):
    """A figure from results r, or why it is missing; '(!)' marks a run whose own check failed."""
    if key not in r:
        return "failed" if "error" in r else "n/a"
    part = r[key]
    if sub is None:
        return fmt(part, digits)
    if part.get(sub) is None:
        return "failed" if part.get("ok") is False else "–"
    return fmt(part[sub], digits) + (" (!)" if part.get("ok") is False else "")


def rows(with_java, params, selected):
    w2, w5 = params["W2"], params["W5"]
    r = [("other processes' CPU before start (% of all cores)", "busy_before_pct", None, 0),
         ("other processes' CPU, worst step (% of 1 core)", "max_other_cpu_pct", None, 0),
         ("W4 start-up: spawn → first acked acks=all produce (s, lower better)", "startup_s", None, 2),
         ("W4 start-up: server JVM exec → first ack (s; Kafka: excludes `storage format`)", "server_exec_s", None, 2),
         (f"W4 idle RSS {params['W4']['idle_wait_s']:.0f} s after start-up (MiB)", "idle_rss_mib", None, 0)]
    if "W1" in selected:
        r.append(("W4 RSS under W1 acks=1 [py], peak (MiB)", "produce_acks1", "peak_rss_mib", 0))
        for key, label in (("produce_acks1", "W1 produce acks=1 [py]"), ("produce_acksall", "W1 produce acks=all [py]"),
                           ("produce_acksall_flush", "W1 produce acks=all, topic flush.messages=1 [py]")):
            r += [(f"{label} (MB/s)", key, "mb_per_s", 1),
                  (f"{label}: peak broker RSS (MiB)", key, "peak_rss_mib", 0),
                  (f"{label}: broker CPU (% of 1 core)", key, "broker_cpu_pct", 0),
                  (f"{label}: client CPU (% of 1 core)", key, "client_cpu_pct", 0)]
        for key, label in (("kd_acks1", "W1 produce acks=1 [py], Arus with Kafka-equal durability†"),
                           ("kd_acksall", "W1 produce acks=all [py], Arus with Kafka-equal durability†")):
            r += [(f"{label} (MB/s)", key, "mb_per_s", 1),
                  (f"{label}: broker CPU (% of 1 core)", key, "broker_cpu_pct", 0)]
        if with_java:
            for key, label in (("java_acks1", "W1 produce acks=1 [java]"), ("java_acksall", "W1 produce acks=all [java]")):
                r += [(f"{label} (MB/s)", key, "mb_per_s", 1),
                      (f"{label}: peak broker RSS (MiB)", key, "peak_rss_mib", 0),
                      (f"{label}: broker CPU (% of 1 core)", key, "broker_cpu_pct", 0)]
        r += [("W1 consume the acks=1 topic from the beginning [py] (MB/s)", "consume", "mb_per_s", 1),
              ("W1 consume: broker CPU (% of 1 core)", "consume", "broker_cpu_pct", 0)]
    if "W2" in selected:
        for sub, q in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")):
            r.append((f"W2 end-to-end latency {q} (ms) @ {w2['rate']}/s [py]", "latency", sub, 2))
        if with_java:
            for sub, q in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
                r.append((f"W2 EndToEndLatency {q} (ms), one record at a time [java]", "latency_java", sub, 2))
    if "W3" in selected:
        gb = params["W3"]["bytes"] / 1e9
        r += [(f"W3 catch-up read of {gb:.3g} GB from offset 0 [py] (MB/s)", "w3_consume", "mb_per_s", 1),
              ("W3 catch-up [py]: broker CPU (% of 1 core)", "w3_consume", "broker_cpu_pct", 0),
              ("W3 catch-up [py]: client CPU (% of 1 core)", "w3_consume", "client_cpu_pct", 0),
              ("W3 catch-up, raw Fetch v12 without record decoding [bench/fetch-rate] (MB/s)", "w3_raw", "mb_per_s", 1),
              ("W3 raw fetch as % of the machine ceiling (min of page-cache read, loopback TCP)", "w3_raw_pct", None, 0),
              ("W3 raw fetch: broker CPU (% of 1 core)", "w3_raw", "broker_cpu_pct", 0)]
        if with_java:
            r += [(f"W3 catch-up ConsumerPerformance, fetch time only [java] (MB/s)", "w3_java", "mb_per_s", 1),
                  ("W3 catch-up ConsumerPerformance: group join (ms)", "w3_java", "rebalance_ms", 0)]
    if "W5" in selected:
        r += [(f"W5 create a {w5['partitions']}-partition topic, until ListOffsets answers on all (s)", "w5_create_s", None, 2),
              (f"W5 produce acks={w5['acks']} over {w5['partitions']} partitions [py] (MB/s)", "w5_produce", "mb_per_s", 1),
              ("W5 produce: broker CPU (% of 1 core)", "w5_produce", "broker_cpu_pct", 0),
              ("W5 produce: peak broker RSS (MiB)", "w5_produce", "peak_rss_mib", 0),
              (f"W5 Metadata request for the topic, p50 of {w5['metadata_calls']} (ms)", "w5_metadata", "p50_ms", 2),
              (f"W5 Metadata request for the topic, p99 of {w5['metadata_calls']} (ms)", "w5_metadata", "p99_ms", 2)]
    if "W6" in selected:
        gb = params["W6"]["bytes"] / 1e9
        r += [(f"W6 restart after SIGKILL with {gb:.3g} GB: exec → ready file (s)", "w6_ready_s", None, 2),
              ("W6 restart: exec → acks=all produce acknowledged (s)", "w6_produce_s", None, 2),
              ("W6 restart: exec → last pre-kill record read (s)", "w6_recovered_s", None, 2)]
    return r


# Arus-only rows whose ratio is taken against another of Kafka's figures.
KAFKA_COUNTERPART = {"kd_acks1": "produce_acks1", "kd_acksall": "produce_acksall"}


def ratio(results, key, sub):
    by = {r["name"]: r for r in results}
    if "arus" not in by or "kafka" not in by:
        return "–"
    try:
        a = by["arus"][key][sub] if sub else by["arus"][key]
        kkey = KAFKA_COUNTERPART.get(key, key)
        k = by["kafka"][kkey][sub] if sub else by["kafka"][kkey]
        return f"{a / k:.3g}" if a is not None and k else "–"
    except (KeyError, TypeError):
        return "–"


def results_table(results, with_java, params, selected):
    head = ["figure", *[r["name"] for r in results], "Arus/Kafka"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key, sub, digits in rows(with_java, params, selected):
        cells = [cell(r, key, sub, digits) for r in results]
        shown_ratio = "–" if label.startswith("other") else ratio(results, key, sub)
        lines.append("| " + " | ".join([label, *cells, shown_ratio]) + " |")
    return "\n".join(lines)


def limits_table(limits):
    def line(label, d, unit, digits=1):
        if "error" in d:
            return f"| {label} | {d['error']} | |"
        figures = d["figures"] if "figures" in d else [d["gbit_per_s"]]
        return f"| {label} | {' / '.join(fmt(x, digits) for x in figures)} {unit} | `{d['command']}` |"
    return "\n".join([
        "| machine limit (dd: run 1 / run 2) | figure | command |", "|---|---|---|",
        line("read from the page cache", limits["page_cache_read"], "MB/s"),
        line("disk write, page cache (no sync)", limits["dd_plain"], "MB/s"),
        line("disk write + fdatasync at end", limits["dd_fdatasync"], "MB/s"),
        line("4 KiB synchronous writes (O_DSYNC)", limits["dd_dsync_4k"], "ms per write", 3),
        line("loopback TCP", limits["iperf3"], "Gbit/s")])


def report(meta, limits, results, with_java, params, selected):
    records, warmup = params["W1"]["records"], params["W1"]["warmup_records"]
    w2 = params["W2"]
    from workloads import LATENCY_CONSUMER_SETTINGS, LATENCY_PRODUCER_SETTINGS, PRODUCER_SETTINGS
    m, v = meta["machine"], meta["versions"]
    brokers = "\n".join(f"- **{r['name']}**: `{os.path.relpath(r['command'], ROOT)} serve --log-dirs TMP/data "
                        f"--listeners PLAINTEXT://127.0.0.1:0 --ready-file TMP/ready`" for r in results)
    failures = "\n".join(f"- **{r['name']}** failed: {r['error']}\n\n```\n" + "\n".join(r.get("log_tail") or [])
                         + "\n```" for r in results if r.get("error")) or "- none"
    checks = "\n".join(f"- {r['name']} {key}: {r[key].get('error') or r[key]}" for r in results
                       for key in r if isinstance(r[key], dict) and r[key].get("ok") is False) or "- none"
    return f"""# Arus benchmark results

Generated by `{meta['command']}` on {meta['date']} (total {meta['duration_s']:.0f} s). Every figure
below was measured in that run; see `bench/README.md` for the method.

## Machine

- {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB memory, kernel {m['kernel']}
- disk: {m['disk']}

{limits_table(limits)}

## Versions

- Arus: {v['arus']}
- Apache Kafka: {v['kafka']} (`compat/reference/kafka-broker.sh`, KRaft single node, `-Xmx1g`, defaults otherwise)
- Python client: {v['confluent_kafka']} (Python {v['python']})
- Java client / ProducerPerformance: kafka-tools {v['kafka_tools']} on {v['java']}

## Workloads

Run: {", ".join(selected)} at `--scale {meta['scale']}` (parameters from `bench/params.py`{"; figures at a scale below 1 are a harness check, not a result" if meta['scale'] < 1 else ""}):

{workloads_list(params, selected)}

## Brokers and settings

{brokers}

- Each broker gets a fresh temp data dir and is stopped (SIGTERM, then SIGKILL) at the end.
- Throughput: {records} records of 1024 bytes per run, {PARTITIONS}-partition topic, one producer.
  `[py]` = confluent-kafka (librdkafka) producer in Python: `{json.dumps(PRODUCER_SETTINGS)}` plus the acks shown.
  `[java]` = `org.apache.kafka.tools.ProducerPerformance --record-size 1024 --throughput -1` with
  `linger.ms=5 batch.size=262144 compression.type=none enable.idempotence=false` (other Java producer defaults,
  e.g. `buffer.memory=32 MiB`). MB = 10^6 bytes of record values.
- Warm-up: after the idle-RSS reading, {warmup} untimed acks=1 records (Python producer) go to a separate
  topic so that the measured runs see a warmed-up broker (JIT for Kafka).
- A produce figure is checked afterwards: the topic's end offsets must sum to the record count.
- Consume: a confluent-kafka consumer `assign()`s all {PARTITIONS} partitions of the acks=1 topic from offset 0
  (no group, librdkafka fetch defaults) and reads all {records} records.
- Latency: one partition, confluent-kafka producer `{json.dumps(LATENCY_PRODUCER_SETTINGS)}` paced at
  {w2['rate']} records/s (1 KiB) for {w2['seconds']} s, a consumer thread in the same process
  `{json.dumps({k: LATENCY_CONSUMER_SETTINGS[k] for k in ('fetch.wait.max.ms', 'fetch.min.bytes')})}`;
  latency = receive wall time − send wall time carried in the value; the first 1 s is dropped as warm-up.
- RSS = VmRSS summed over the broker's process tree (for Kafka: the wrapper shell + the JVM);
  peak RSS is sampled every 100 ms during the run. CPU % = CPU time / wall time of that step (200 % = both cores).
- The machine is shared: before each broker the run waits (bounded) for other processes to drop below 25 % of
  all cores, and for every step it records the CPU used by processes other than broker and client
  (`/proc/stat` busy time minus both, so kernel threads such as writeback count as "other"); the two
  "other processes" rows show it. High values there mean the
  figures of that broker are depressed by foreign load.

## Results

{results_table(results, with_java, params, selected)}

`(!)` = the run's own check failed (see below); ratios are Arus ÷ Kafka (throughput: > 1 means Arus faster;
times, latency and memory: < 1 means Arus better).

## Durability (read before comparing acks=all)

- **Arus** answers `acks=all` only after the batch is fsynced (group commit). `acks=1` returns after the page cache.
- **Kafka** (defaults: `log.flush.interval.messages` unset) never fsyncs before answering, for any acks; on a single
  node `acks=all` is therefore as durable as `acks=1` (ISR = 1). So "produce acks=all" compares Arus-with-fsync
  against Kafka-without-fsync.
- **Equal durability, fsync on both**: the `flush.messages=1` row creates the topic with `flush.messages=1`, which
  makes Kafka flush the log on every append before answering and Arus flush per its `flush.messages` handling
  (plus its acks=all fsync).
- **Equal durability, fsync on neither** (†): Arus restarted on a fresh data dir with `arus.acks.all.fsync=false`
  (acks=all answered once the batch is in the page cache, Kafka's default behaviour) runs W1's acks=1 and acks=all
  again; its ratio is taken against Kafka's default acks=1 / acks=all figures.

- **W3, W5, W6** write their data with `acks=1` (untimed for W3/W6). W6's marker record is written with `acks=all`
  (Arus: fsynced; Kafka: not), then the broker's process group gets SIGKILL; the page cache survives a process kill,
  so W6 measures log recovery and start-up, not data loss. The restart is timed from the exec of the new broker
  process until (1) an `acks=all` produce to partition 0 of the existing topic is acknowledged and then (2) a
  consumer `assign()`ed at the marker's offset reads the marker.

## Foreign load per step

CPU used by everything except broker, client and this script during each step (% of 1 core), with the
busiest other processes seen (short-lived processes that ended during the step are not named).

{foreign_load(results)}

## Checks that failed

{checks}

## Broker failures

{failures}
"""


def workloads_list(params, selected):
    lines = []
    for w in selected:
        shown = {k: v for k, v in params[w].items() if k != "title"}
        lines.append(f"- **{w}** {params[w]['title']}: `{json.dumps(shown)}`")
    return "\n".join(lines)


def foreign_load(results):
    lines = ["| broker | step | other CPU % | busiest others |", "|---|---|---|---|"]
    for r in results:
        for key, v in r.items():
            if isinstance(v, dict) and "other_cpu_pct" in v:
                lines.append(f"| {r['name']} | {key} | {v['other_cpu_pct']:.0f} | {v.get('other_top') or '–'} |")
    return "\n".join(lines)


def print_summary(limits, results, with_java, params, selected):
    print(limits_table(limits))
    print()
    print(results_table(results, with_java, params, selected))


def exit_on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")  # unwinds through the finally blocks that stop brokers


def main():
    global ARUS
    ensure_venv()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    import params as params_module
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="all",
                    help="comma-separated workloads of bench/params.py to run, e.g. W5 or W1,W3 (default: all)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the workload sizes (records, bytes, seconds) by this factor (default 1)")
    ap.add_argument("--arus", default=os.environ.get("BENCH_ARUS", ARUS),
                    help="Arus binary (default: env BENCH_ARUS or target/release/arus, built if missing)")
    ap.add_argument("--records", type=int, default=None, help="W1 records per throughput run (overrides params.py)")
    ap.add_argument("--warmup-records", type=int, default=None,
                    help="W1 untimed acks=1 produce before the measured runs (overrides params.py)")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="before each broker, wait up to this many seconds for other load to drop (default 30)")
    ap.add_argument("--no-java", action="store_true", help="skip the Java kafka-tools runs")
    ap.add_argument("--tmp", default=tempfile.gettempdir(), help="where the temp data dirs go (default %(default)s)")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    a = ap.parse_args()
    names = list(WORKLOAD_PARAMS)
    wanted = names if a.workload == "all" else [w.strip().upper() for w in a.workload.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in WORKLOAD_PARAMS]
    if unknown or not wanted:
        ap.error(f"unknown workload {unknown}; choose from {', '.join(names)} or all")
    selected = [w for w in names if w in wanted]  # params.py order: W6 (which kills the broker) last
    params = params_module.effective(a.scale, a.records, a.warmup_records)
    started = time.perf_counter()
    ARUS = os.path.abspath(a.arus)
    if not os.path.exists(ARUS):
        if ARUS != os.path.join(ROOT, "target", "release", "arus"):
            sys.exit(f"no Arus binary at {ARUS}")
        log("building target/release/arus")
        subprocess.run(["cargo", "build", "--release", "-p", "arus"], cwd=ROOT, check=True)
    with_java = not a.no_java and resolve_tools_classpath()
    if "W3" in selected:
        build_fetch_rate()
    tmp_root = tempfile.mkdtemp(prefix="arus-bench-", dir=a.tmp)
    try:
        meta = {"date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
                "command": "python3 bench/run.py " + " ".join(map(repo_relative, sys.argv[1:])) +
                           (f" (BENCH_OTHER_BROKER={os.environ['BENCH_OTHER_BROKER']})"
                            if os.environ.get("BENCH_OTHER_BROKER") else ""),
                "scale": a.scale, "machine": machine_info(tmp_root), "versions": versions()}
        wait_for_quiet(a.quiet_wait)
        log("measuring machine limits (dd, iperf3)")
        limits = machine_limits(tmp_root)
        results = []
        for name, command in brokers_to_run():
            log(f"benchmarking {name}: {', '.join(selected)}")
            results.append(bench_broker(name, command, params, selected, tmp_root, with_java, a.quiet_wait))
            sh(["sync"], timeout=300)
        ceiling = machine_ceiling_mb_s(limits)
        for r in results:
            mb = (r.get("w3_raw") or {}).get("mb_per_s")
            if ceiling and mb:
                r["w3_raw_pct"] = 100 * mb / ceiling
        meta["duration_s"] = time.perf_counter() - started
        with open(a.results, "w") as f:
            f.write(report(meta, limits, results, with_java, params, selected))
        print_summary(limits, results, with_java, params, selected)
        log(f"wrote {os.path.relpath(a.results)}")
        return 1 if any(r.get("error") for r in results) else 0
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
