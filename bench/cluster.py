#!/usr/bin/env python3
"""Cluster benchmark (issue 14): Arus and Apache Kafka 4.4 as N-node clusters in combined mode on
this machine, side by side, through the cluster launcher contract (compat/cluster-launcher.sh):

    python3 bench/cluster.py                        # Arus (compat/arus-cluster.sh), then Kafka
    python3 bench/cluster.py --launcher compat/reference/kafka-cluster.sh   # one side only
    python3 bench/cluster.py --results bench/CLUSTER-RESULTS.md

Per cluster (fresh temp directory each):
- start-up: `LAUNCHER format` (timed on its own: Kafka's kafka-storage format is a JVM per node),
  then `LAUNCHER start` → returns when every node's own Metadata lists all N brokers
  (registered, unfenced): launch of the processes → cluster ready. --startups times (default 3),
  each on a fresh directory.
- idle RSS per node: VmRSS of each node's process (the pid the launcher reports: the JVM for
  Kafka, the arus process for Arus) --idle-wait s (default 5) after the cluster is ready.
- topic usable on every broker: CreateTopics (3 partitions per node, RF 1, sent to node 1, raw
  CreateTopics v4) → every node's OWN Metadata lists the topic with a leader on every partition;
  --topics times (default 10), each a new topic. Also reported: the CreateTopics answer alone.
- controller failover: the active controller (DescribeQuorum's leader) gets SIGKILL (sent by this
  script to the pid from `status`, so the clock starts at the signal) → every surviving node names
  one new leader (DescribeQuorum through each survivor, polled every 20 ms), and → a CreateTopics
  through a survivor succeeds; the killed node is restarted and rejoins before the next round;
  --failovers times (default 3).
- replicated produce (issue 15): a topic with replication factor 3 and min.insync.replicas=2
  (--rf3-partitions partitions, default 6), Kafka's own ProducerPerformance (Java client, acks=all,
  1 KiB records, linger.ms=5, batch.size=256 KiB, idempotent, --rf3-records records, default
  200000, as fast as it goes) → records/s, MB/s, average and p99 latency. Arus runs it twice: at
  its default durability (a follower fsyncs before it fetches past a batch, so acks=all counts
  only copies on disk) and with `arus.acks.all.fsync=false` (Kafka's durability: copies in the
  page cache); Kafka once, at its own.
- leader failover under load: the leader of partition 0 of that topic gets SIGKILL while a
  producer (acks=all) sends to that partition → time from the signal to the next acknowledged
  record (--leader-failovers times, default 3; the node restarts and catches up between rounds).

Figures: median and max over the repetitions; ratios Arus/Kafka (lower is better for every row).
All processes are on 127.0.0.1 and share 2 cores with this script; other processes' CPU during
each cluster's run is reported, as in bench/run.py. A cluster whose launcher exits 3 (the server
cannot run a cluster yet) is reported as n/a with the launcher's reason.
"""
import argparse
import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COMPAT = os.path.join(ROOT, "compat")
sys.path.insert(0, COMPAT)
sys.path.insert(0, HERE)
import kafka_wire  # noqa: E402
from cluster_control import ARUS_LAUNCHER, KAFKA_LAUNCHER, Cluster, LauncherError  # noqa: E402

TOOLS_CLASSPATH = os.path.join(HERE, "work", "tools-classpath.txt")  # bench/run.py makes it

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def proc_cpu_s(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return total


def poll(fn, timeout, interval=0.02):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            v = fn()
        except (OSError, kafka_wire.WireError):
            v = None
        if v:
            return v
        time.sleep(interval)
    return None


def measure_startup(launcher, nodes, env, tmp):
    c = Cluster(launcher, nodes, env=env, tmp=tmp)
    try:
        t = time.time()
        c.format()
        fmt = time.time() - t
        t = time.time()
        c.start()
        start = time.time() - t
        cpu = proc_cpu_s([s["pid"] for s in c.status().values()])
        return {"format_s": fmt, "start_s": start, "server_cpu_s": cpu}
    finally:
        c.destroy()


def measure_topics(c, count):
    addrs = c.addresses()
    n = len(addrs)
    usable, answered = [], []
    for _ in range(count):
        topic = "bench-usable-" + uuid.uuid4().hex[:8]
        t0 = time.time()
        code, msg = kafka_wire.create_topic(addrs[1], topic, 3 * n, 1)
        answered.append(time.time() - t0)
        if code != 0:
            raise RuntimeError("CreateTopics %s: %d %s" % (topic, code, msg))
        pending = set(addrs.values())

        def everywhere():
            for a in list(pending):
                t = kafka_wire.metadata(a, [topic], timeout=2)["topics"].get(topic)
                if t and t["error"] == 0 and len(t["partitions"]) == 3 * n and all(p["leader"] >= 0 for p in t["partitions"].values()):
                    pending.discard(a)
            return not pending

        if not poll(everywhere, 60, interval=0.005):
            raise RuntimeError("topic %s not usable on %s within 60 s" % (topic, sorted(pending)))
        usable.append(time.time() - t0)
    return usable, answered


def quorum_leader(addrs):
    for a in addrs:
        try:
            q = kafka_wire.describe_quorum(a, timeout=3)
            if q["error"] == 0 and q["leader_id"] >= 0:
                return q["leader_id"]
        except (OSError, kafka_wire.WireError):
            pass
    return None


def measure_failovers(c, count):
    elect, admin = [], []
    for _ in range(count):
        addrs = c.addresses()
        leader = poll(lambda: quorum_leader(addrs.values()), 30)
        if leader is None:
            raise RuntimeError("no quorum leader")
        survivors = [a for n, a in addrs.items() if n != leader]
        t0 = c.sigkill(leader)

        def named():
            seen = {kafka_wire.describe_quorum(a, timeout=2)["leader_id"] for a in survivors}
            return len(seen) == 1 and next(iter(seen)) not in (-1, leader)

        if not poll(named, 60):
            raise RuntimeError("no new controller within 60 s of SIGKILL of %d" % leader)
        elect.append(time.time() - t0)
        topic = "bench-failover-" + uuid.uuid4().hex[:8]
        tries = []

        def created():
            code, _ = kafka_wire.create_topic(survivors[0], topic, 2, 1, timeout_ms=5000, timeout=10)
            tries.append(code)
            return code == 0 or (code == 36 and len(tries) > 1)

        if not poll(created, 60, interval=0.05):
            raise RuntimeError("CreateTopics failed for 60 s after the failover: %s" % tries[-3:])
        admin.append(time.time() - t0)
        c.start_node(leader)
        # The restarted node must have rejoined the quorum (all voters caught up) before the next round.
        def caught_up():
            q = kafka_wire.describe_quorum(addrs[leader], timeout=3)
            v = dict(q["voters"])
            return q["error"] == 0 and len(v) == len(addrs) and all(leo >= q["high_watermark"] for leo in v.values())
        poll(caught_up, 60, interval=0.2)
    return elect, admin


def replicated_topic(c, partitions):
    addrs = list(c.addresses().values())
    topic = "bench-rf3-" + uuid.uuid4().hex[:8]
    code, msg = kafka_wire.create_topic(addrs[0], topic, partitions, 3)
    if code != 0:
        raise RuntimeError("CreateTopics %s (RF 3): %d %s" % (topic, code, msg))

    def led_everywhere():
        for a in addrs:
            t = kafka_wire.metadata(a, [topic], timeout=2)["topics"].get(topic)
            if not (t and t["error"] == 0 and len(t["partitions"]) == partitions
                    and all(p["leader"] >= 0 and len(p["isr"]) == 3 for p in t["partitions"].values())):
                return False
        return True

    if not poll(led_everywhere, 60, interval=0.05):
        raise RuntimeError("RF 3 topic %s not led with a full ISR on every node within 60 s" % topic)
    return topic


PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                       r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th")


def producer_perf(bootstrap, topic, records, timeout=600):
    """Kafka's ProducerPerformance against the cluster; its summary line parsed."""
    classpath = open(TOOLS_CLASSPATH).read().strip()
    cmd = ["java", "-Xmx512m", "-cp", classpath, "org.apache.kafka.tools.ProducerPerformance",
           "--topic", topic, "--num-records", str(records), "--record-size", "1024", "--throughput", "-1",
           "--producer-props", "bootstrap.servers=%s" % bootstrap, "acks=all", "linger.ms=5",
           "batch.size=262144", "compression.type=none", "enable.idempotence=true"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if PERF_LINE.search(l) and "99th" in l]
    m = PERF_LINE.search(lines[-1]) if lines else None
    if p.returncode != 0 or not m or int(m.group(1)) != records:
        raise RuntimeError("ProducerPerformance failed (exit %d): %s" % (p.returncode, (p.stdout + p.stderr)[-600:]))
    return {"records_per_s": float(m.group(2)), "mb_per_s": float(m.group(3)), "avg_ms": float(m.group(4)),
            "p99_ms": float(m.group(8))}


def partition_leader(addrs, topic, index):
    for a in addrs:
        try:
            t = kafka_wire.metadata(a, [topic], timeout=2)["topics"].get(topic)
            if t and t["error"] == 0 and t["partitions"][index]["leader"] >= 0:
                return t["partitions"][index]["leader"]
        except (OSError, kafka_wire.WireError, KeyError):
            pass
    return None


def measure_leader_failovers(c, topic, count):
    """SIGKILL of a partition's leader while Kafka's VerifiableProducer (acks=all, 100 records/s,
    one key, so one partition) sends to it → the first record acknowledged after the signal."""
    import json
    classpath = open(TOOLS_CLASSPATH).read().strip()
    out = []
    for _ in range(count):
        addrs = c.addresses()
        prod = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", classpath, "org.apache.kafka.tools.VerifiableProducer",
             "--bootstrap-server", c.bootstrap, "--topic", topic, "--throughput", "100", "--max-messages", "-1",
             "--acks", "-1", "--repeating-keys", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            def next_ack():
                while True:
                    line = prod.stdout.readline()
                    if not line:
                        return None, None
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if ev.get("name") == "producer_send_success":
                        return time.time(), ev.get("partition")

            partition = None
            for _ in range(5):
                _, partition = next_ack()
            if partition is None:
                raise RuntimeError("the producer acknowledged nothing before the failover")
            leader = poll(lambda: partition_leader(addrs.values(), topic, partition), 30)
            if leader is None:
                raise RuntimeError("no leader for %s-%d" % (topic, partition))
            t0 = c.sigkill(leader)
            while True:
                t1, _ = next_ack()
                if t1 is None:
                    raise RuntimeError("no acknowledgement after SIGKILL of leader %d" % leader)
                if t1 > t0:
                    break
            out.append(t1 - t0)
        finally:
            prod.kill()
            prod.wait()
        c.start_node(leader)

        def isr_full():
            t = kafka_wire.metadata(addrs[leader], [topic], timeout=2)["topics"].get(topic)
            return t and all(len(p["isr"]) == 3 for p in t["partitions"].values())

        if not poll(isr_full, 120, interval=0.2):
            raise RuntimeError("node %d did not rejoin every ISR of %s within 120 s" % (leader, topic))
    return out


def measure_replication(launcher, args, env, overrides):
    c = Cluster(launcher, args.nodes, env=env, tmp=args.tmp,
                overrides=["min.insync.replicas=2"] + overrides)
    try:
        c.start()
        topic = replicated_topic(c, args.rf3_partitions)
        perf = producer_perf(c.bootstrap, topic, args.rf3_records)
        if args.leader_failovers:
            perf["leader_failover_s"] = measure_leader_failovers(c, topic, args.leader_failovers)
        return perf
    finally:
        c.destroy()


def run_side(launcher, args):
    env = {"ARUS_BIN": os.path.abspath(args.arus)} if args.arus else {}
    name = os.path.basename(launcher).replace("-cluster.sh", "")
    r = {"name": name, "launcher": os.path.relpath(launcher, ROOT)}
    b0, own0 = machine_busy_s(), os.times()
    t_all = time.time()
    pids = []
    try:
        starts = [measure_startup(launcher, args.nodes, env, args.tmp) for _ in range(args.startups)]
        r["start_s"] = [s["start_s"] for s in starts]
        r["format_s"] = [s["format_s"] for s in starts]
        c = Cluster(launcher, args.nodes, env=env, tmp=args.tmp)
        try:
            c.start()
            time.sleep(args.idle_wait)
            st = c.status()
            pids = [s["pid"] for s in st.values()]
            r["idle_rss_mib"] = [rss_mib(p) for p in pids]
            r["usable_s"], r["create_answer_s"] = measure_topics(c, args.topics)
            r["elect_s"], r["admin_after_kill_s"] = measure_failovers(c, args.failovers)
            pids = [s["pid"] for s in c.status().values()]
        finally:
            r["server_cpu_s"] = proc_cpu_s(pids) + sum(s["server_cpu_s"] for s in starts)
            c.destroy()
        if args.rf3_records:
            r["rf3"] = measure_replication(launcher, args, env, [])
            if name == "arus":
                r["rf3_kafka_durability"] = measure_replication(
                    launcher, args, env, ["arus.acks.all.fsync=false"])
    except LauncherError as e:
        lines = str(e).splitlines()
        why = next((l for l in lines if "cannot run a cluster yet" in l), lines[-1])
        r["error"] = ("n/a: " if e.code == 3 else "failed: ") + why.split("exited %d: " % e.code)[-1][:300]
    except Exception as e:  # noqa: BLE001
        r["error"] = "failed: %s" % e
    wall = time.time() - t_all
    own = os.times()
    own_s = (own.user - own0.user) + (own.system - own0.system) + (own.children_user - own0.children_user) + (own.children_system - own0.children_system)
    r["wall_s"] = wall
    r["loadavg"] = open("/proc/loadavg").read().split()[:3]
    # Other processes' CPU: the machine's busy time minus this script and its launchers (the
    # servers' own CPU is not subtracted: they run during the whole span, and count as "ours").
    r["foreign_pct"] = max(0.0, 100 * (machine_busy_s() - b0 - own_s - r.get("server_cpu_s", 0)) / wall)
    return r


ROWS = [
    ("cluster start-up: launch → every node ready (s)", "start_s"),
    ("storage format before start-up, all nodes in parallel (s)", "format_s"),
    ("idle RSS per node (MiB)", "idle_rss_mib"),
    ("CreateTopics → topic with leaders in every node's own Metadata (s)", "usable_s"),
    ("CreateTopics answered (s)", "create_answer_s"),
    ("SIGKILL of the active controller → new controller named by every survivor (s)", "elect_s"),
    ("SIGKILL of the active controller → CreateTopics through a survivor succeeds (s)", "admin_after_kill_s"),
]


def stat(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), max(vals)


def render(results, args, started):
    out = ["# Cluster benchmark: Arus vs Apache Kafka 4.4, %d nodes in combined mode" % args.nodes, ""]
    out.append("Generated by `python3 bench/cluster.py%s` on %s. Method: `bench/README.md` (\"Cluster benchmark\") "
               "and the header of `bench/cluster.py`." % (
                   "" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:]), started.strftime("%Y-%m-%d %H:%M UTC")))
    out.append("")
    out.append("- Machine: %d CPUs, %s, Python %s" % (os.cpu_count(), platform.platform(), platform.python_version()))
    for r in results:
        out.append("- **%s**: `%s` — %s; other processes' CPU during the run: ~%.0f %% of one core (servers killed in the failovers count as other), load average at the end %s; wall %.0f s%s" % (
            r["name"], r["launcher"], "%d nodes, process.roles=broker,controller, static controller.quorum.voters" % args.nodes,
            r.get("foreign_pct", 0), " ".join(r.get("loadavg", [])), r.get("wall_s", 0), ("; **%s**" % r["error"]) if "error" in r else ""))
    out.append("- Repetitions: start-up %d, topics %d, failovers %d; figures are median / max" % (args.startups, args.topics, args.failovers))
    out.append("")
    names = [r["name"] for r in results]
    out.append("| figure | " + " | ".join(names) + (" | Arus/Kafka (median) |" if {"arus", "kafka"} <= set(names) else " |"))
    out.append("|---|" + "---|" * len(names) + ("---|" if {"arus", "kafka"} <= set(names) else ""))
    by = {r["name"]: r for r in results}
    for label, key in ROWS:
        cells = []
        for r in results:
            s = stat(r.get(key, []))
            digits = 0 if key == "idle_rss_mib" else 2
            cells.append("%.*f / %.*f" % (digits, s[0], digits, s[1]) if s else ("n/a" if "error" in r else "–"))
        line = "| %s | %s |" % (label, " | ".join(cells))
        if {"arus", "kafka"} <= set(names):
            a, k = stat(by["arus"].get(key, [])), stat(by["kafka"].get(key, []))
            line += " %s |" % ("%.3g" % (a[0] / k[0]) if a and k and k[0] else "–")
        out.append(line)
    out.append("")
    rf3 = [(r["name"], r.get("rf3"), r.get("rf3_kafka_durability")) for r in results if r.get("rf3")]
    if rf3:
        out.append("Replicated produce: RF 3, min.insync.replicas=2, acks=all, idempotent, 1 KiB records "
                   "(Kafka's ProducerPerformance), %d records over %d partitions; leader failover: SIGKILL of "
                   "a partition leader under acks=all load → next acknowledged record, median / max of %d." % (
                       args.rf3_records, args.rf3_partitions, args.leader_failovers))
        out.append("")
        out.append("| server | durability | records/s | MB/s | avg latency (ms) | p99 latency (ms) | leader failover (s) |")
        out.append("|---|---|---|---|---|---|---|")
        for name, own, kafka_like in rf3:
            rows = [(("fsync before acks=all (Arus default)" if name == "arus" else "page cache (Kafka default)"), own)]
            if kafka_like:
                rows.append(("page cache (arus.acks.all.fsync=false)", kafka_like))
            for label, f in rows:
                fo = stat(f.get("leader_failover_s", []))
                out.append("| %s | %s | %.0f | %.1f | %.1f | %.0f | %s |" % (
                    name, label, f["records_per_s"], f["mb_per_s"], f["avg_ms"], f["p99_ms"],
                    "%.2f / %.2f" % fo if fo else "–"))
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launcher", action="append", help="cluster launcher (repeatable); default: Arus's, then Kafka's")
    ap.add_argument("--arus", help="Arus binary for compat/arus-cluster.sh (default target/release/arus)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--startups", type=int, default=3)
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--failovers", type=int, default=3)
    ap.add_argument("--idle-wait", type=float, default=5.0)
    ap.add_argument("--rf3-records", type=int, default=200000, help="replicated produce records (0: skip)")
    ap.add_argument("--rf3-partitions", type=int, default=6)
    ap.add_argument("--leader-failovers", type=int, default=3)
    ap.add_argument("--tmp", help="directory for the clusters' data (default: the system temp dir)")
    ap.add_argument("--results", help="also write the markdown table to this file")
    args = ap.parse_args()
    launchers = [os.path.abspath(l) for l in (args.launcher or [ARUS_LAUNCHER, KAFKA_LAUNCHER])]
    started = dt.datetime.now(dt.timezone.utc)
    results = []
    for l in launchers:
        print("[cluster-bench] %s ..." % os.path.relpath(l, ROOT), flush=True)
        r = run_side(l, args)
        print("[cluster-bench] %s: %s" % (r["name"], r.get("error", "done in %.0f s" % r["wall_s"])), flush=True)
        results.append(r)
    text = render(results, args, started)
    print(text)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text)
    return 1 if any("error" in r and not r["error"].startswith("n/a") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
