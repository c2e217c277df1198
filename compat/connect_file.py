#!/usr/bin/env python3
"""Kafka Connect 4.4 (FileStreamSource → broker → FileStreamSink), standalone and distributed,
against Arus and Apache Kafka 4.4 side by side.

    compat/.venv/bin/python compat/connect_file.py [--broker target/release/arus]
        [--reference compat/reference/kafka-broker.sh] [--only arus|kafka] [--modes standalone,distributed] [--lines 10000]

Per broker (both brokers at once), one broker process serving both modes in turn; workers are
connect-runtime 4.4.0 (`ConnectStandalone` / `ConnectDistributed`, classpath compat/work/apps-classpath.txt,
connect-file 4.3.1's FileStreamSource / FileStreamSink: 4.4.0 is not on Maven Central; a one-class
shim, compat/apps/shim, gives them the AppInfoParser.getVersion() that kafka-clients 4.4 moved), String
converters, each mode with its own 1-partition topic (one partition keeps the lines in order):
  - the script appends 10,000 lines to the source file in chunks of 500 over ~6 s while the
    worker runs; the sink file must end byte-identical to the source file (≤ 90 s);
  - standalone: source and sink connectors from properties files, offsets in a local file;
  - distributed: connectors created through the REST API; Connect creates its config / offset /
    status topics itself, which must exist afterwards with cleanup.policy=compact (config: 1
    partition); once the sink file holds ≥ 3,000 lines (the feed pauses at 5,000 until then), the
    worker is stopped (SIGTERM) and started again on the same topics while the rest of the
    lines are appended: it must find its connectors in the config topic and its positions in the
    offset topic / group.
What is checked: the sink file is identical to the source file — no line lost, none duplicated,
order kept. The restart is graceful, so Connect commits source offsets (offset topic) and sink
offsets (consumer group) while stopping, and at-least-once delivery leaves no duplicate to excuse:
a duplicated line fails on both brokers. Exit 1 on any failure on either broker.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)
sys.path.insert(0, COMPAT)

from idempotence_proxy import Broker  # noqa: E402
from streams_eos import apps_classpath  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType  # noqa: E402

BROKER_OVERRIDES = ["group.initial.rebalance.delay.ms=0"]
SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


class Failed(Exception):
    pass


SHIM_SRC = os.path.join(COMPAT, "apps", "shim", "org", "apache", "kafka", "common", "utils", "AppInfoParser.java")
SHIM_OUT = os.path.join(COMPAT, "work", "connect-shim")


def connect_classpath():
    """The apps classpath with the AppInfoParser shim first (see the shim's header)."""
    cp = apps_classpath()
    out_class = os.path.join(SHIM_OUT, "org", "apache", "kafka", "common", "utils", "AppInfoParser.class")
    if not os.path.exists(out_class) or os.path.getmtime(out_class) < os.path.getmtime(SHIM_SRC):
        subprocess.run(["javac", "-cp", cp, "-d", SHIM_OUT, SHIM_SRC], check=True)
    return SHIM_OUT + os.pathsep + cp


def log(name, msg):
    print("[connect] %s: %s" % (name, msg), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_props(path, props):
    with open(path, "w") as f:
        for k, v in props.items():
            f.write("%s=%s\n" % (k, v))
    return path


class Worker:
    def __init__(self, classpath, main, args, log_path):
        self.cmd = ["java", "-Xmx384m", "-Dorg.slf4j.simpleLogger.showDateTime=true",
                    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS", "-cp", classpath, main] + args
        self.log = open(log_path, "a")
        self.proc = None

    def start(self):
        self.log.write("$ %s\n" % " ".join(self.cmd[6:]))
        self.log.flush()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def rest(port, method, path, body=None, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def wait_rest(port, worker, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if worker.proc.poll() is not None:
            raise Failed("worker exited with %s (see its log)" % worker.proc.returncode)
        try:
            rest(port, "GET", "/connectors")
            return
        except Exception:  # noqa: BLE001
            time.sleep(0.5)
    raise Failed("worker REST not up within %d s" % timeout)


def line_count(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


class Feeder(threading.Thread):
    """Appends `lines` lines to the source file in chunks while the workers run. With `hold_at`,
    it stops after that many lines until `resume` is set (so a restart is always mid-stream,
    however slowly the pipeline starts on a loaded machine)."""

    def __init__(self, path, lines, chunk=500, pause=0.3, hold_at=None):
        super().__init__(daemon=True)
        self.path, self.lines, self.chunk, self.pause, self.hold_at = path, lines, chunk, pause, hold_at
        self.written = 0
        self.resume = threading.Event()

    def run(self):
        with open(self.path, "a") as f:
            for start in range(0, self.lines, self.chunk):
                if self.hold_at is not None and start >= self.hold_at:
                    self.resume.wait(120)
                f.write("".join("line-%05d %s\n" % (i, "abcdefghij" * (i % 7)) for i in range(start, min(self.lines, start + self.chunk))))
                f.flush()
                self.written = min(self.lines, start + self.chunk)
                time.sleep(self.pause)


def wait_identical(src, dst, lines, timeout=90):
    """Returns the seconds it took the sink file to reach `lines` lines."""
    t0 = time.time()
    deadline = t0 + timeout
    while line_count(dst) < lines and time.time() < deadline:
        time.sleep(0.2)
    took = time.time() - t0
    time.sleep(2)  # a duplicate arriving late must still be seen
    a, b = open(src, "rb").read(), open(dst, "rb").read() if os.path.exists(dst) else b""
    if a == b:
        return took
    la, lb = a.splitlines(), b.splitlines()
    dups = len(lb) - len(set(lb))
    missing = len(set(la) - set(lb))
    first = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
    raise Failed("sink file differs: %d lines (source %d), %d duplicated, %d missing, first difference at line %d" % (
        len(lb), len(la), dups, missing, first + 1))


def standalone(name, bootstrap, classpath, work, logs, lines):
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    admin.create_topics([NewTopic("connect-standalone", 1, 1)])["connect-standalone"].result(30)
    src, dst = os.path.join(work, "sa-source.txt"), os.path.join(work, "sa-sink.txt")
    open(src, "w").close()
    port = free_port()
    wp = write_props(os.path.join(work, "sa-worker.properties"), {
        "bootstrap.servers": bootstrap, "listeners": "http://127.0.0.1:%d" % port,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": os.path.join(work, "sa-offsets"), "offset.flush.interval.ms": 1000,
        "plugin.discovery": "service_load"})
    sp = write_props(os.path.join(work, "sa-source.properties"), {
        "name": "file-source", "connector.class": SOURCE, "tasks.max": 1, "file": src, "topic": "connect-standalone"})
    kp = write_props(os.path.join(work, "sa-sink.properties"), {
        "name": "file-sink", "connector.class": SINK, "tasks.max": 1, "file": dst, "topics": "connect-standalone"})
    w = Worker(classpath, "org.apache.kafka.connect.cli.ConnectStandalone", [wp, sp, kp], os.path.join(logs, "%s-standalone.log" % name))
    try:
        t0 = time.time()
        w.start()
        wait_rest(port, w)
        up = time.time() - t0
        feeder = Feeder(src, lines)
        feeder.start()
        feeder.join()
        lag = wait_identical(src, dst, lines)
    finally:
        w.stop()
    return "%d lines, sink file identical (worker REST up after %.1f s; sink complete %.1f s after the last source line)" % (lines, up, lag)


def distributed(name, bootstrap, classpath, work, logs, lines):
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    admin.create_topics([NewTopic("connect-distributed", 1, 1)])["connect-distributed"].result(30)
    src, dst = os.path.join(work, "d-source.txt"), os.path.join(work, "d-sink.txt")
    open(src, "w").close()
    port = free_port()
    internal = {"config.storage.topic": "connect-configs", "offset.storage.topic": "connect-offsets",
                "status.storage.topic": "connect-status"}
    wp = write_props(os.path.join(work, "d-worker.properties"), dict(internal, **{
        "bootstrap.servers": bootstrap, "listeners": "http://127.0.0.1:%d" % port, "group.id": "connect-file-cluster",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "config.storage.replication.factor": 1, "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1, "offset.flush.interval.ms": 1000,
        # every plugin on the classpath has ServiceLoader manifests: skips the ~10 s reflection scan
        "plugin.discovery": "service_load",
        # a restarted worker must not wait out its predecessor's session / scheduled rebalance delay
        "scheduled.rebalance.max.delay.ms": 0, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1500}))
    w = Worker(classpath, "org.apache.kafka.connect.cli.ConnectDistributed", [wp], os.path.join(logs, "%s-distributed.log" % name))
    try:
        w.start()
        wait_rest(port, w)
        rest(port, "POST", "/connectors", {"name": "file-source", "config": {
            "connector.class": SOURCE, "tasks.max": "1", "file": src, "topic": "connect-distributed"}})
        rest(port, "POST", "/connectors", {"name": "file-sink", "config": {
            "connector.class": SINK, "tasks.max": "1", "file": dst, "topics": "connect-distributed"}})
        feeder = Feeder(src, lines, chunk=250, pause=0.3, hold_at=lines // 2)
        feeder.start()
        deadline = time.time() + 60
        while line_count(dst) < 3 * lines // 10:
            if time.time() > deadline:
                raise Failed("sink file has %d lines after 60 s" % line_count(dst))
            time.sleep(0.2)
        at, fed = line_count(dst), feeder.written
        w.stop()
        log(name, "distributed worker stopped with %d lines in the sink, %d in the source; restarting" % (at, fed))
        w.start()
        feeder.resume.set()
        wait_rest(port, w)
        names = sorted(rest(port, "GET", "/connectors"))
        if names != ["file-sink", "file-source"]:
            raise Failed("connectors after restart: %s" % names)
        feeder.join()
        lag = wait_identical(src, dst, lines)
        res = {t: ConfigResource(ResourceType.TOPIC, t) for t in internal.values()}
        policies = {}
        for r, f in admin.describe_configs(list(res.values())).items():
            policies[r.name] = f.result(20)["cleanup.policy"].value
        if any(v != "compact" for v in policies.values()):
            raise Failed("internal topics' cleanup.policy %s" % policies)
        md = admin.list_topics(timeout=20).topics
        if len(md["connect-configs"].partitions) != 1:
            raise Failed("connect-configs has %d partitions" % len(md["connect-configs"].partitions))
    finally:
        w.stop()
    return "%d lines, restarted at %d sink lines, sink file identical (complete %.1f s after the last source line); config/offset/status topics compacted (%s partitions)" % (
        lines, at, lag, "/".join(str(len(md[t].partitions)) for t in internal.values()))


def per_broker(name, binary, classpath, tmp, logs, modes, lines, results):
    data = os.path.join(tmp, name)
    os.makedirs(data)
    broker = Broker(binary, data, os.path.join(logs, "%s-broker.log" % name), overrides=BROKER_OVERRIDES)
    try:
        bootstrap = broker.start(timeout=90)
        for mode in modes:
            t = time.time()
            try:
                detail = {"standalone": standalone, "distributed": distributed}[mode](name, bootstrap, classpath, data, logs, lines)
                results[(name, mode)] = (True, detail)
            except Exception as e:  # noqa: BLE001
                results[(name, mode)] = (False, "%s: %s" % (type(e).__name__, e))
            ok, detail = results[(name, mode)]
            log(name, "%s %s in %.0f s: %s" % (mode, "PASS" if ok else "FAIL", time.time() - t, detail))
    except Exception as e:  # noqa: BLE001
        for mode in modes:
            results.setdefault((name, mode), (False, "broker: %r" % e))
    finally:
        broker.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=os.path.join(ROOT, "target", "release", "arus"))
    ap.add_argument("--reference", default=os.path.join(COMPAT, "reference", "kafka-broker.sh"))
    ap.add_argument("--only", choices=["arus", "kafka"])
    ap.add_argument("--modes", default="standalone,distributed")
    ap.add_argument("--lines", type=int, default=10000)
    ap.add_argument("--keep-logs", action="store_true", help="keep the logs also after a clean run")
    a = ap.parse_args()
    t0 = time.time()
    classpath = connect_classpath()
    tmp = tempfile.mkdtemp(prefix="arus-connect-")
    logs = os.path.join(COMPAT, "work", "logs", "connect-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(logs)
    which = {"arus": os.path.abspath(a.broker), "kafka": os.path.abspath(a.reference)}
    if a.only:
        which = {a.only: which[a.only]}
    modes = a.modes.split(",")
    results = {}
    threads = [threading.Thread(target=per_broker, args=(n, b, classpath, tmp, logs, modes, a.lines, results)) for n, b in which.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shutil.rmtree(tmp, ignore_errors=True)
    ok = all(r[0] for r in results.values()) and len(results) == len(which) * len(modes)
    if ok and not a.keep_logs:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print("[connect] logs: %s" % os.path.relpath(logs, ROOT))
    print("connect_file: %s (%.0f s)" % (", ".join("%s/%s %s" % (n, m, "PASS" if r[0] else "FAIL") for (n, m), r in sorted(results.items())), time.time() - t0))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
