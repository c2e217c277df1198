#!/usr/bin/env python3
"""Arus Kafka-client conformance runner.

Starts ONE Arus broker (or, with --cluster N, an N-node cluster through a cluster launcher),
runs every client library x scenario against it, stops the broker, writes compat/REPORT.md and
prints `N passed, M failed`.
Exit status is non-zero if anything failed.

    bash compat/install.sh          # once (idempotent)
    python3 compat/run.py [--clients a,b] [--scenarios x,y] [--broker PATH] [--build] [--keep-logs]
    python3 compat/run.py --cluster 3 --launcher compat/reference/kafka-cluster.sh --report compat/work/REPORT-cluster.md
"""
import argparse
import datetime as dt
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)
WORK = os.path.join(COMPAT, "work")
VENV_PY = os.path.join(COMPAT, ".venv", "bin", "python")

SCENARIOS = [
    "roundtrip", "key_order",
    "compression_gzip", "compression_snappy", "compression_lz4", "compression_zstd",
    "acks_0", "acks_1", "acks_all",
    "list_offsets_time", "topic_admin", "message_too_large",
    "group_split", "group_member_leaves", "two_groups", "commit_resume",
    "cooperative_sticky", "static_member", "offsets_admin", "kip848_group",
    "txn_commit_abort", "txn_consume_transform_produce", "txn_fencing", "txn_admin",
    "config_alter", "retention_reset", "compacted_topic",
]
SCENARIO_TIMEOUT = int(os.environ.get("COMPAT_SCENARIO_TIMEOUT", "45"))

# Kafka API keys the scenarios need beyond produce/fetch/admin basics. Before the
# clients run, run.py asks the broker for its ApiVersions; a scenario needing an
# API the broker does not advertise is reported `n/a (broker does not advertise
# X yet)` for every client instead of being run (so a broker whose group
# coordinator is not built yet does not fail CI, and it starts counting as soon
# as the broker advertises the APIs). If ApiVersions cannot be read, everything runs.
API_NAMES = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
             13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
             68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
             22: "InitProducerId", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn",
             28: "TxnOffsetCommit", 61: "DescribeProducers", 65: "DescribeTransactions", 66: "ListTransactions",
             21: "DeleteRecords", 32: "DescribeConfigs", 33: "AlterConfigs", 44: "IncrementalAlterConfigs"}
GROUP_APIS = [10, 11, 14, 12, 13, 8, 9]
# FindCoordinator (key type TRANSACTION) + the transaction APIs.
TXN_APIS = [10, 22, 24, 26]
INIT_PRODUCER_ID = 22
NEEDS = {
    "group_split": GROUP_APIS,
    "group_member_leaves": GROUP_APIS,
    "two_groups": GROUP_APIS,
    "commit_resume": GROUP_APIS,
    "cooperative_sticky": GROUP_APIS,
    "static_member": GROUP_APIS + [15],
    "offsets_admin": GROUP_APIS + [15, 16],
    "kip848_group": [10, 8, 9, 68],
    "txn_commit_abort": TXN_APIS,
    # (kafkajs reads back through a consumer group: without --groups it reports its txn scenarios n/a itself)
    "txn_consume_transform_produce": TXN_APIS + [25, 28] + GROUP_APIS,
    "txn_fencing": TXN_APIS,
    # the transaction admin APIs (KIP-664) around one transaction
    "txn_admin": TXN_APIS + [61, 65, 66],
    # log lifecycle (issue 5): dynamic topic/broker configs; retention and compaction ship with
    # DeleteRecords, so a broker without it has no log-lifecycle support yet.
    "config_alter": [32, 44],
    "retention_reset": [21] + GROUP_APIS,
    "compacted_topic": [21],
}

# Broker properties every run starts with (before --override): KIP-848 members heartbeat
# at the interval the broker gives them (Kafka's default 5 s, with a 5 s minimum); 1 s
# keeps each reconciliation step of `kip848_group` short, on Kafka and Arus alike.
# `txn_fencing` abandons a transaction with transaction.timeout.ms=5000: checking for timed-out
# transactions every second (Kafka's default: 10 s) lets the broker abort it soon after.
# The log-lifecycle scenarios (retention_reset, compacted_topic) need retention and the cleaner
# to act within seconds: Kafka checks retention every 5 min and backs the cleaner off 15 s by
# default, and starts its retention task only 30 s after startup (log.initial.task.delay.ms).
BROKER_DEFAULTS = ["group.consumer.heartbeat.interval.ms=1000", "group.consumer.min.heartbeat.interval.ms=1000",
                   "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
                   "log.retention.check.interval.ms=1000", "log.cleaner.backoff.ms=1000", "log.initial.task.delay.ms=1000"]


# --------------------------------------------------------------- ApiVersions probe

def advertised_apis(bootstrap, timeout=10):
    """{api_key: (min, max)} from an ApiVersions v0 request, or None if it cannot be read."""
    import socket
    import struct
    try:
        host, port = bootstrap.rsplit(":", 1)
        client_id = b"arus-compat-run"
        body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(body)) + body)

            def read(n):
                buf = b""
                while len(buf) < n:
                    chunk = s.recv(n - len(buf))
                    if not chunk:
                        raise OSError("connection closed")
                    buf += chunk
                return buf

            (size,) = struct.unpack(">i", read(4))
            data = read(size)
        corr, err, n = struct.unpack(">ihi", data[:10])
        if corr != 1 or err != 0:
            return None
        out = {}
        for i in range(n):
            key, lo, hi = struct.unpack(">hhh", data[10 + 6 * i:16 + 6 * i])
            out[key] = (lo, hi)
        return out
    except Exception:  # noqa: BLE001
        return None


def missing_apis(apis, scenario):
    if apis is None:
        return []
    return [API_NAMES.get(k, str(k)) for k in NEEDS.get(scenario, []) if k not in apis]


# --------------------------------------------------------------- clients

def _capture(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return "unknown (%s)" % e


def _java_classpath():
    jars = glob.glob(os.path.join(COMPAT, "java", "target", "arus-compat-java-*.jar"))
    cp_file = os.path.join(COMPAT, "java", "target", "classpath.txt")
    if not jars or not os.path.exists(cp_file):
        return None
    with open(cp_file) as f:
        return jars[0] + os.pathsep + f.read().strip()


def _go_version(module):
    with open(os.path.join(COMPAT, "go", "go.mod")) as f:
        m = re.search(r"^\s*(?:require\s+)?%s\s+(\S+)" % re.escape(module), f.read(), re.M)
    return m.group(1) if m else "?"


class Client:
    def __init__(self, name, command, version, installed):
        self.name, self._command, self._version, self._installed = name, command, version, installed

    def installed(self):
        return self._installed()

    def command(self, bootstrap, scenarios, verify_dir, groups=False):
        cmd = self._command(bootstrap, ",".join(scenarios), verify_dir)
        if groups and self.name == "kafkajs":
            cmd.append("--groups")
        return cmd

    def version(self):
        return self._version()


CLIENTS = [
    Client(
        "confluent-kafka",
        lambda bs, sc, vd: [VENV_PY, os.path.join(COMPAT, "python", "confluent_client.py"), "--bootstrap", bs, "--scenarios", sc],
        lambda: _capture([VENV_PY, "-c", "import confluent_kafka as c; print('confluent-kafka %s (librdkafka %s)' % (c.__version__, c.libversion()[0]))"]),
        lambda: os.path.exists(VENV_PY),
    ),
    Client(
        "kafka-python",
        lambda bs, sc, vd: [VENV_PY, os.path.join(COMPAT, "python", "kafka_python_client.py"), "--bootstrap", bs, "--scenarios", sc],
        lambda: _capture([VENV_PY, "-c", "import kafka; print('kafka-python %s' % kafka.__version__)"]),
        lambda: os.path.exists(VENV_PY),
    ),
    Client(
        "kafkajs",
        lambda bs, sc, vd: ["node", os.path.join(COMPAT, "node", "kafkajs_client.js"), "--bootstrap", bs, "--scenarios", sc, "--verify-dir", vd],
        lambda: "kafkajs " + _capture(["node", "-p", "require('kafkajs/package.json').version"], cwd=os.path.join(COMPAT, "node")),
        lambda: os.path.isdir(os.path.join(COMPAT, "node", "node_modules", "kafkajs")),
    ),
    Client(
        "java",
        lambda bs, sc, vd: ["java", "-cp", _java_classpath(), "dev.arus.compat.JavaClient", "--bootstrap", bs, "--scenarios", sc],
        lambda: "kafka-clients " + (re.search(r"kafka-clients-([^/]+)\.jar", _java_classpath() or "") or [None, "?"])[1],
        lambda: _java_classpath() is not None,
    ),
    Client(
        "franz-go",
        lambda bs, sc, vd: [os.path.join(WORK, "bin", "franzgo"), "--bootstrap", bs, "--scenarios", sc],
        lambda: "franz-go %s (kadm %s)" % (_go_version("github.com/twmb/franz-go"), _go_version("github.com/twmb/franz-go/pkg/kadm")),
        lambda: os.path.exists(os.path.join(WORK, "bin", "franzgo")),
    ),
]
CLIENT_NAMES = [c.name for c in CLIENTS]


# --------------------------------------------------------------- broker

def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


class Broker:
    def __init__(self, binary, log_dir, keep):
        self.binary, self.keep = binary, keep
        self.data_dir = tempfile.mkdtemp(prefix="arus-compat-")
        self.ready_file = os.path.join(self.data_dir, "ready")
        self.log_path = os.path.join(log_dir, "broker.log")
        self.proc = None
        self.bootstrap = None

    def start(self, overrides):
        cmd = [self.binary, "serve", "--log-dirs", os.path.join(self.data_dir, "logs"),
               "--listeners", "PLAINTEXT://127.0.0.1:0", "--ready-file", self.ready_file]
        for o in overrides:
            cmd += ["--override", o]
        self.log = open(self.log_path, "w")
        self.log.write("$ %s\n" % " ".join(cmd))
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited with code %s before it was ready" % self.proc.returncode)
            try:
                with open(self.ready_file) as f:
                    content = f.read()
                if content.endswith("\n") and content.strip():
                    self.bootstrap = content.strip()
                    return self.bootstrap
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("broker wrote no ready file within 30s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class Cluster:
    """A cluster started through a launcher of the cluster contract (compat/cluster-launcher.sh:
    compat/arus-cluster.sh, compat/reference/kafka-cluster.sh); the same interface as Broker."""

    def __init__(self, launcher, nodes, log_dir, keep, env=None):
        self.launcher, self.nodes, self.keep = launcher, nodes, keep
        self.env = dict(os.environ, **(env or {}))
        self.data_dir = tempfile.mkdtemp(prefix="arus-compat-cluster-")
        self.log_path = os.path.join(log_dir, "cluster.log")
        self.bootstrap = None
        self.exit_note = None

    def _run(self, *args, timeout=300):
        cmd = [self.launcher] + list(args) + ["--dir", self.data_dir]
        with open(self.log_path, "a") as log:
            log.write("$ %s\n" % " ".join(cmd))
            log.flush()
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout, env=self.env)
        return p

    def start(self, overrides):
        args = ["start", "--nodes", str(self.nodes)]
        for o in overrides:
            args += ["--override", o]
        p = self._run(*args)
        if p.returncode != 0:
            raise RuntimeError("cluster launcher exited %d: %s" % (p.returncode, tail(self.log_path, 8).strip()))
        self.bootstrap = p.stdout.strip().splitlines()[-1]
        return self.bootstrap

    def status(self):
        p = self._run("status", timeout=30)
        return [dict(kv.split("=", 1) for kv in line.split()) for line in p.stdout.splitlines() if line.startswith("node=")]

    def alive(self):
        dead = [n["node"] for n in self.status() if n.get("alive") != "1"]
        self.exit_note = "node(s) %s not running" % ",".join(dead) if dead else None
        return not dead

    def node_logs(self):
        return sorted(glob.glob(os.path.join(self.data_dir, "node-*", "out.log")))

    def stop(self):
        try:
            self._run("stop", timeout=120)
        except Exception as e:  # noqa: BLE001
            print("[run] cluster stop: %s" % e, flush=True)
        with open(self.log_path, "a") as log:
            for path in self.node_logs():
                log.write("\n==== %s (tail) ====\n%s" % (path, tail(path, 200)))
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def find_launcher(args):
    """--launcher, else the Kafka launcher when --broker is the Kafka wrapper, else Arus's."""
    if args.launcher:
        return os.path.abspath(args.launcher)
    if args.broker and os.path.basename(args.broker) == "kafka-broker.sh":
        return os.path.join(COMPAT, "reference", "kafka-cluster.sh")
    return os.path.join(COMPAT, "arus-cluster.sh")


def leaders_check(bootstrap, nodes):
    """Partition leaders per broker over the topics the scenarios left, as the first node's own
    Metadata reports them: every broker must lead some (placement spreads partitions)."""
    sys.path.insert(0, COMPAT)
    import kafka_wire
    counts = kafka_wire.leaders_per_broker(bootstrap.split(",")[0])
    brokers = sorted(b for b in counts if b >= 0)
    total = sum(counts.values())
    if total < 3 * nodes and len(brokers) == nodes and counts.get(-1, 0) == 0:
        # (a narrow --scenarios run that deleted its topics: too few partitions to judge placement)
        return True, "%d partition(s) left, too few to judge the spread" % total
    ok = len(brokers) == nodes and all(counts[b] > 0 for b in brokers) and counts.get(-1, 0) == 0
    text = ", ".join("broker %d: %d" % (b, counts[b]) for b in brokers)
    if counts.get(-1):
        text += ", offline: %d" % counts[-1]
    if len(brokers) != nodes:
        text += " (%d brokers registered, want %d)" % (len(brokers), nodes)
    return ok, text


def find_broker(args):
    if args.broker:
        return os.path.abspath(args.broker)
    path = os.path.join(ROOT, "target", "release", "arus")
    if args.build or not os.path.exists(path):
        print("[run] building broker: cargo build --release -p arus", flush=True)
        r = subprocess.run(["cargo", "build", "--release", "-p", "arus"], cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError("cargo build --release -p arus failed (exit %d)" % r.returncode)
    if not os.path.exists(path):
        raise RuntimeError("%s does not exist after build" % path)
    return path


# --------------------------------------------------------------- running

def run_client(client, bootstrap, scenarios, log_dir, verify_dir, groups=False, idempotence=False):
    """Runs one client program; returns {scenario: {status, detail, verify?}}."""
    results = {}
    if not scenarios:
        return results
    if not client.installed():
        for s in scenarios:
            results[s] = {"status": "fail", "detail": "client not installed: run bash compat/install.sh"}
        return results
    cmd = client.command(bootstrap, scenarios, verify_dir, groups)
    err_path = os.path.join(log_dir, "%s.stderr.log" % client.name)
    budget = SCENARIO_TIMEOUT * len(scenarios) + 60
    env = dict(os.environ, COMPAT_SCENARIO_TIMEOUT=str(SCENARIO_TIMEOUT), COMPAT_IDEMPOTENCE="1" if idempotence else "0")
    rc = None
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=budget)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            rc = "killed after %ds" % budget
    with open(os.path.join(log_dir, "%s.stdout.log" % client.name), "w") as f:
        f.write(out)
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("scenario") in scenarios:
            results[obj["scenario"]] = obj
    for s in scenarios:
        if s not in results:
            results[s] = {"status": "fail", "detail": "no result line (client exit %s; see %s)" % (rc, os.path.relpath(err_path, ROOT))}
    return results


def cross_verify(results, bootstrap, log_dir):
    """kafkajs cannot consume without a group: read its topics back with confluent-kafka."""
    verifier = os.path.join(COMPAT, "python", "confluent_client.py")
    for scenario, r in results.items():
        vf = r.get("verify")
        if r.get("status") != "pass" or not vf:
            continue
        try:
            p = subprocess.run([VENV_PY, verifier, "--bootstrap", bootstrap, "--verify", vf],
                               capture_output=True, text=True, timeout=90)
            with open(os.path.join(log_dir, "kafkajs-verify.stderr.log"), "a") as f:
                f.write(p.stderr)
            line = [l for l in p.stdout.splitlines() if l.startswith("{")]
            v = json.loads(line[-1]) if line else {"status": "fail", "detail": "verifier printed nothing (exit %d)" % p.returncode}
        except Exception as e:  # noqa: BLE001
            v = {"status": "fail", "detail": "verifier: %s" % e}
        r["status"] = v["status"]
        r["detail"] = "%s; read back by confluent-kafka: %s" % (r["detail"], v["detail"])
        r["cross"] = True


# --------------------------------------------------------------- report

def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def write_report(path, matrix, clients, scenarios, versions, meta):
    sym = {"pass": "pass", "fail": "**FAIL**", "n/a": "n/a"}
    lines = ["# Arus client conformance report", ""]
    lines.append("- Date: %s" % meta["date"])
    lines.append("- Broker commit: `%s`" % meta["commit"])
    lines.append("- Broker: `%s` (%s)" % (meta["broker"], meta["broker_state"]))
    lines.append("- Command: `%s`" % meta["command"])
    lines.append("- Result: %d passed, %d failed, %d n/a" % (meta["passed"], meta["failed"], meta["na"]))
    if meta.get("cluster_check"):
        lines.append("- Partition leaders per broker (topics left by the scenarios, Metadata of node 1): %s (%s)"
                     % (meta["cluster_check"]["text"], "spread over every broker" if meta["cluster_check"]["ok"]
                        else "**FAIL**: a broker leads nothing, or partitions are offline"))
    lines.append("")
    lines.append("## Client libraries")
    lines.append("")
    for c in clients:
        lines.append("- %s: %s" % (c, versions.get(c, "?")))
    lines.append("")
    lines.append("## Matrix")
    lines.append("")
    lines.append("| scenario | " + " | ".join(clients) + " |")
    lines.append("|---|" + "---|" * len(clients))
    for s in scenarios:
        cells = []
        for c in clients:
            r = matrix[c][s]
            cell = sym.get(r["status"], r["status"])
            if r.get("cross"):
                cell += " \u2020"
            cells.append(cell)
        lines.append("| %s | %s |" % (s, " | ".join(cells)))
    lines.append("")
    if any(r.get("cross") or r.get("verify") for c in clients for r in matrix[c].values()):
        lines.append("\u2020 kafkajs has no consumer without a consumer group and this broker does not advertise the "
                     "group APIs, so kafkajs consume-side checks are n/a (needs consumer groups, issue 3); what kafkajs "
                     "produced was read back and compared by the confluent-kafka program (cross-client check).")
        lines.append("")
    if meta.get("skipped"):
        lines.append("Scenarios not run because the broker's ApiVersions lacks APIs they need (reported n/a): "
                     + "; ".join("%s (missing %s)" % (s, ", ".join(m)) for s, m in meta["skipped"].items()) + ".")
        lines.append("")
    lines.append("## Details")
    lines.append("")
    for c in clients:
        for s in scenarios:
            r = matrix[c][s]
            lines.append("- %s / %s: %s \u2014 %s" % (c, s, r["status"], str(r.get("detail", "")).replace("\n", " ")))
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default=",".join(CLIENT_NAMES), help="comma-separated: " + ",".join(CLIENT_NAMES))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    ap.add_argument("--broker", help="broker binary (default: target/release/arus, built if missing)")
    ap.add_argument("--build", action="store_true", help="run cargo build --release -p arus first")
    ap.add_argument("--keep-logs", action="store_true", help="keep the broker data dir and print log paths")
    ap.add_argument("--override", action="append", default=[], help="extra broker property key=value (repeatable)")
    ap.add_argument("--report", default=os.path.join(COMPAT, "REPORT.md"))
    ap.add_argument("--cluster", type=int, metavar="N",
                    help="run every scenario against an N-node cluster started by --launcher")
    ap.add_argument("--launcher", help="cluster launcher (default compat/arus-cluster.sh; "
                    "compat/reference/kafka-cluster.sh when --broker is kafka-broker.sh)")
    ap.add_argument("--transaction-version", type=int, choices=[0, 1, 2],
                    help="finalize transaction.version at this level (UpdateFeatures) before the clients run")
    args = ap.parse_args()

    clients = [c for c in args.clients.split(",") if c]
    scenarios = [s for s in args.scenarios.split(",") if s]
    bad = [c for c in clients if c not in CLIENT_NAMES] + [s for s in scenarios if s not in SCENARIOS]
    if bad:
        ap.error("unknown client/scenario: %s" % ", ".join(bad))

    stamp = dt.datetime.now(dt.timezone.utc)
    log_dir = os.path.join(WORK, "logs", stamp.strftime("%Y%m%dT%H%M%SZ"))
    os.makedirs(log_dir, exist_ok=True)
    verify_dir = os.path.join(log_dir, "verify")
    by_name = {c.name: c for c in CLIENTS}
    matrix = {c: {} for c in clients}
    broker = None
    broker_state = "not started"
    broker_path = args.broker or os.path.join(ROOT, "target", "release", "arus")
    try:
        if args.cluster:
            launcher = find_launcher(args)
            env = {}
            if os.path.basename(launcher) == "arus-cluster.sh":
                broker_path = find_broker(args)
                env["ARUS_BIN"] = broker_path
            else:
                broker_path = launcher
            broker = Cluster(launcher, args.cluster, log_dir, args.keep_logs, env)
            bootstrap = broker.start(BROKER_DEFAULTS + args.override)
            broker_state = "%d-node cluster (%s), bootstrap %s" % (args.cluster, os.path.basename(launcher), bootstrap)
        else:
            broker_path = find_broker(args)
            broker = Broker(broker_path, log_dir, args.keep_logs)
            bootstrap = broker.start(BROKER_DEFAULTS + args.override)
            broker_state = "listening on %s" % bootstrap
        if args.transaction_version is not None:
            from features import set_feature
            code, msg = set_feature(bootstrap.split(",")[0], "transaction.version", args.transaction_version)
            if code:
                raise RuntimeError("cannot finalize transaction.version=%d: error %d %s" % (args.transaction_version, code, msg))
            broker_state += ", transaction.version %d" % args.transaction_version
        print("[run] broker %s listening on %s (log %s)" % (broker_path, bootstrap, os.path.relpath(broker.log_path, ROOT)), flush=True)
    except Exception as e:  # noqa: BLE001
        broker_state = "FAILED TO START: %s" % e
        print("[run] broker failed to start: %s" % e, flush=True)
        if broker is not None:
            print("[run] broker log tail:\n" + tail(broker.log_path), flush=True)
        for c in clients:
            for s in scenarios:
                matrix[c][s] = {"status": "fail", "detail": "broker did not start: %s" % e}
        bootstrap = None

    skipped = {}
    cluster_check = None
    try:
        if bootstrap:
            apis = advertised_apis(bootstrap.split(",")[0])
            if apis is None:
                print("[run] could not read the broker's ApiVersions: running every scenario", flush=True)
            for s in scenarios:
                m = missing_apis(apis, s)
                if m:
                    skipped[s] = m
            if skipped:
                print("[run] n/a, broker does not advertise what they need: %s" % ", ".join(
                    "%s (%s)" % (s, ", ".join(m)) for s, m in skipped.items()), flush=True)
            groups = apis is None or not [k for k in GROUP_APIS if k not in apis]
            # Producers keep their client's default idempotence (Java, franz-go: on) only
            # when the broker advertises InitProducerId; otherwise they force it off.
            idempotence = apis is not None and INIT_PRODUCER_ID in apis
            print("[run] idempotence: %s" % ("client defaults (broker advertises InitProducerId)" if idempotence
                                             else "forced off (no InitProducerId)"), flush=True)
            to_run = [s for s in scenarios if s not in skipped]
            for name in clients:
                t = time.time()
                print("[run] %s: %d scenarios ..." % (name, len(to_run)), flush=True)
                res = run_client(by_name[name], bootstrap, to_run, log_dir, verify_dir, groups, idempotence)
                if name == "kafkajs":
                    cross_verify(res, bootstrap, log_dir)
                for s, m in skipped.items():
                    res[s] = {"status": "n/a", "detail": "broker does not advertise %s yet" % ", ".join(m)}
                matrix[name] = res
                summary = ", ".join("%s=%s" % (s, res[s]["status"]) for s in scenarios)
                print("[run] %s done in %.0fs: %s" % (name, time.time() - t, summary), flush=True)
                if not broker.alive():
                    note = broker.exit_note if args.cluster else "exit %s" % broker.proc.returncode
                    print("[run] broker died during %s (%s)" % (name, note), flush=True)
                    broker_state = "DIED during %s run (%s)" % (name, note)
            if args.cluster:
                try:
                    leaders_ok, leaders_text = leaders_check(bootstrap, args.cluster)
                except Exception as e:  # noqa: BLE001
                    leaders_ok, leaders_text = False, "could not read Metadata: %s" % e
                print("[run] partition leaders per broker (topics left by the scenarios): %s — %s"
                      % (leaders_text, "spread over every broker" if leaders_ok else "FAIL"), flush=True)
                cluster_check = {"ok": leaders_ok, "text": leaders_text}
    finally:
        if broker is not None:
            broker.stop()

    versions = {c: by_name[c].version() if by_name[c].installed() else "not installed" for c in clients}
    passed = sum(1 for c in clients for s in scenarios if matrix[c][s]["status"] == "pass")
    failed = sum(1 for c in clients for s in scenarios if matrix[c][s]["status"] == "fail")
    if cluster_check is not None and not cluster_check["ok"]:
        failed += 1
    na = sum(1 for c in clients for s in scenarios if matrix[c][s]["status"] == "n/a")
    meta = {
        "date": stamp.strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(), "broker": broker_path if not broker_path.startswith(ROOT + os.sep) else os.path.relpath(broker_path, ROOT),
        "broker_state": broker_state, "passed": passed, "failed": failed, "na": na,
        "command": "python3 compat/run.py" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:])),
        "skipped": skipped, "cluster_check": cluster_check,
    }
    write_report(args.report, matrix, clients, scenarios, versions, meta)

    if bootstrap:
        for c in clients:
            for s in scenarios:
                r = matrix[c][s]
                if r["status"] == "fail":
                    print("FAIL %s / %s: %s" % (c, s, r.get("detail", "")))
    else:
        print("FAIL all %d client x scenario runs: broker did not start (%s)" % (failed, broker_state))
    if failed and broker is not None and bootstrap:
        if args.cluster:
            for path in broker.node_logs() if args.keep_logs else []:
                print("[run] node log tail (%s):\n%s" % (path, tail(path)), flush=True)
        print("[run] broker log tail (%s):\n%s" % (broker.log_path, tail(broker.log_path)), flush=True)
    if not args.keep_logs and failed == 0:
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir = "(removed: all passed; use --keep-logs)"
    else:
        log_dir = os.path.relpath(log_dir, ROOT)
    print("[run] report: %s; logs: %s%s" % (os.path.relpath(args.report, ROOT), log_dir,
                                            "; broker data: %s" % broker.data_dir if args.keep_logs and broker else ""))
    print("[run] %d n/a" % na)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
