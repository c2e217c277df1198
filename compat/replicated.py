#!/usr/bin/env python3
"""Client libraries on a replicated cluster (issue 15): every client library produces and consumes
while the orchestrator kills the brokers under it, on Apache Kafka 4.4 and on Arus, through the
cluster launcher contract (compat/cluster-launcher.sh):

    python3 compat/replicated.py --launcher compat/reference/kafka-cluster.sh
    python3 compat/replicated.py [--launcher compat/arus-cluster.sh] [--clients confluent-kafka,java]
                                 [--scenarios replicated_failover,min_isr,coordinator_failover]

ONE cluster of --nodes (default 5) combined nodes is started per run, with three replicas for
every topic, the internal ones included (offsets.topic.replication.factor=3,
transaction.state.log.replication.factor=3, transaction.state.log.min.isr=2,
default.replication.factor=3, min.insync.replicas=2). Five nodes, not three, because `min_isr`
takes two of a partition's three replicas down: with three combined nodes that would also take
the metadata quorum down (on Kafka as on Arus) and the scenario would test the quorum, not
min.insync.replicas. Every data topic still has exactly three replicas.

Each client program (one process per client and scenario; see CLIENTS) runs the steps of one
scenario and asks the orchestrator for each fault with a line `FAULT <what>` on its stdout; it
waits for the answer line (`OK <detail>` or `ERR <reason>`) on its stdin, so a fault happens
exactly between two client steps. It ends with `RESULT <json>`: what it observed. The orchestrator
judges (the same checks for every client), restarts every killed node and waits until every
partition, the internal ones included, is fully replicated again before the next scenario.

Faults (`FAULT …`): `kill-leader` SIGKILLs the leader of the scenario topic's partition 0;
`kill-follower` SIGKILLs one in-sync follower of it and waits until the node's Metadata shows the
ISR without it (the broker is fenced after broker.session.timeout.ms=6000); `kill-group-coordinator`
and `kill-txn-coordinator` SIGKILL the node FindCoordinator names for the scenario's group or
transactional id; `restart` restarts every killed node and waits for full ISRs.

Scenarios (positional client arguments: SCENARIO BOOTSTRAP TOPIC TOPIC2 GROUP TXN_ID N):
- replicated_failover: TOPIC has 3 partitions. An idempotent acks=all producer sends N records
  (record i: partition i % 3, key k{i % 6}, value v{i}); FAULT kill-leader; N more (the client
  retries through the election); FAULT restart; everything is read back from the start. Must read
  exactly the 2N values, each once, every key's values in order.
- min_isr: TOPIC has 1 partition on 3 nodes. acks=all, no retries: 5 records (a0..a4) succeed;
  FAULT kill-follower; 5 more (b*) succeed with one replica down; FAULT kill-follower; one record
  (c0) must fail with NOT_ENOUGH_REPLICAS (the library's name for error 19, not a timeout, not
  NOT_ENOUGH_REPLICAS_AFTER_APPEND); FAULT restart; 5 more (d*) succeed; reading back gives exactly
  a*, b*, d*.
- coordinator_failover: 20 records g0..g19 in TOPIC (1 partition); a consumer of group GROUP
  reads 10 and commits offset 10, closes; FAULT kill-group-coordinator; a new consumer of GROUP
  must resume at g10 and read g10..g19 (through the new coordinator); FAULT restart. Then a
  transactional producer (TXN_ID) commits t0..t4 to TOPIC2; FAULT kill-txn-coordinator; it
  commits t5..t9 in a second transaction; FAULT restart; a read_committed consumer must read
  exactly t0..t9.

Prints one PASS/FAIL/n/a line per client and scenario and `N passed, M failed` last; exit status
1 if anything failed, 3 if the launcher says the server cannot run a cluster.
"""
import argparse
import json
import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
import time
import uuid

COMPAT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, COMPAT)
import kafka_wire  # noqa: E402
from cluster_control import ARUS_LAUNCHER, Cluster, LauncherError  # noqa: E402

VENV_PY = os.path.join(COMPAT, ".venv", "bin", "python")
WORK = os.path.join(COMPAT, "work")
N_RECORDS = 30
SCENARIO_TIMEOUT = 120  # seconds, per client process (the faults' waits included)

OVERRIDES = [
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "offsets.topic.num.partitions=5",
    "transaction.state.log.replication.factor=3",
    "transaction.state.log.min.isr=2",
    "transaction.state.log.num.partitions=5",
    "broker.session.timeout.ms=6000",
    "broker.heartbeat.interval.ms=1000",
    "group.initial.rebalance.delay.ms=0",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
]


def _java_classpath():
    here = os.path.join(COMPAT, "java", "target", "classpath.txt")
    with open(here) as f:
        return f.read().strip()


def _go_binary():
    """Builds compat/go/replicated into work/bin/franzgo-replicated when missing or older than its source."""
    out = os.path.join(WORK, "bin", "franzgo-replicated")
    src = os.path.join(COMPAT, "go", "replicated", "main.go")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.run(["go", "build", "-o", out, "./replicated"], cwd=os.path.join(COMPAT, "go"), check=True)
    return [out]


CLIENTS = {
    "confluent-kafka": lambda: [VENV_PY, os.path.join(COMPAT, "python", "replicated_confluent.py")],
    "java": lambda: ["java", "-cp", _java_classpath(), os.path.join(COMPAT, "java", "replicated", "Replicated.java")],
    "franz-go": _go_binary,
    "kafkajs": lambda: ["node", os.path.join(COMPAT, "node", "replicated_kafkajs.js")],
    "kafka-python": lambda: [VENV_PY, os.path.join(COMPAT, "python", "replicated_kafka_python.py")],
}


class Fail(Exception):
    pass


class NotApplicable(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# ------------------------------------------------------------------ wire requests the clients hide

def create_topic(addr, name, partitions, rf, assignment=None, configs=None, timeout=30.0):
    """CreateTopics v4 with an optional manual assignment ({partition: [brokers]}) and configs."""
    b = name.encode()
    if assignment:
        body = struct.pack(">i", 1) + struct.pack(">h", len(b)) + b + struct.pack(">ih", -1, -1)
        body += struct.pack(">i", len(assignment))
        for p, brokers in sorted(assignment.items()):
            body += struct.pack(">ii", p, len(brokers)) + b"".join(struct.pack(">i", x) for x in brokers)
    else:
        body = struct.pack(">i", 1) + struct.pack(">h", len(b)) + b + struct.pack(">ih", partitions, rf)
        body += struct.pack(">i", 0)
    configs = configs or {}
    body += struct.pack(">i", len(configs))
    for k, v in configs.items():
        kb, vb = k.encode(), v.encode()
        body += struct.pack(">h", len(kb)) + kb + struct.pack(">h", len(vb)) + vb
    body += struct.pack(">ib", 20000, 0)
    r = kafka_wire.request(addr, 19, 4, body, timeout=timeout)
    r.i32()
    results = r.array(lambda: (r.string(), r.i16(), r.string()))
    return results[0][1], results[0][2]


def find_coordinator(addr, key, key_type):
    """FindCoordinator v1: (error, node id)."""
    kb = key.encode()
    body = struct.pack(">h", len(kb)) + kb + struct.pack(">b", key_type)
    r = kafka_wire.request(addr, 10, 1, body, timeout=5)
    r.i32()
    err = r.i16()
    r.string()
    return err, r.i32()


def wait_for(fn, timeout, interval=0.1):
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
        except (OSError, kafka_wire.WireError, struct.error):
            v = None
        if v:
            return v
        if time.time() > deadline:
            return None
        time.sleep(interval)


# ------------------------------------------------------------------ the orchestrator's side

class Run:
    """One client process running one scenario on the shared cluster."""

    def __init__(self, cluster, client, scenario, logdir):
        self.cluster, self.client, self.scenario = cluster, client, scenario
        tag = uuid.uuid4().hex[:6]
        self.topic = "rep-%s-%s" % (scenario.replace("_", "-"), tag)
        self.topic2 = self.topic + "-txn"
        self.group = "rep-group-" + tag
        self.txn_id = "rep-txn-" + tag
        self.killed = []
        self.faults = []
        self.unhealed = ""
        self.log = open(os.path.join(logdir, "%s.%s.log" % (client, scenario)), "w")

    def live_addrs(self):
        st = self.cluster.status()
        return [("127.0.0.1:%d" % s["port"]) for n, s in sorted(st.items()) if s["alive"]]

    def partition0(self, topic=None):
        for a in self.live_addrs():
            try:
                p = kafka_wire.metadata(a, [topic or self.topic], timeout=3)["topics"][topic or self.topic]["partitions"].get(0)
            except (OSError, kafka_wire.WireError, KeyError, struct.error):
                continue
            if p and p["error"] == 0 and p["leader"] >= 0:
                return p
        return None

    def setup(self):
        addr = self.live_addrs()[0]
        nodes = sorted(self.cluster.status())
        if self.scenario == "replicated_failover":
            topics = [(self.topic, 3, None)]
        elif self.scenario == "min_isr":
            # Three replicas on three of the nodes, so two of them can go while the quorum stays.
            topics = [(self.topic, 1, {0: nodes[-3:]})]
        else:
            topics = [(self.topic, 1, None), (self.topic2, 1, None)]
        for name, parts, assignment in topics:
            code, msg = create_topic(addr, name, parts, 3, assignment, {"min.insync.replicas": "2"})
            check(code == 0, "CreateTopics %s: error %d %s" % (name, code, msg))
            check(wait_for(lambda: self.healed([name]), 30), "topic %s not fully replicated 30 s after creation" % name)

    def healed(self, topics=None):
        """Every listed partition (every topic, the internal ones included, when topics is None)
        has a leader and its whole replica set in the ISR, as every live node sees it."""
        for a in self.live_addrs():
            md = kafka_wire.metadata(a, topics, timeout=3)
            if len(md["brokers"]) != len(self.cluster.status()):
                self.unhealed = "%s lists brokers %s" % (a, sorted(md["brokers"]))
                return False
            for name, t in md["topics"].items():
                if t["error"] != 0:
                    self.unhealed = "%s: topic %s error %d" % (a, name, t["error"])
                    return False
                for i, p in t["partitions"].items():
                    if p["leader"] < 0 or sorted(p["isr"]) != sorted(p["replicas"]):
                        self.unhealed = "%s: %s-%d leader %d replicas %s isr %s" % (a, name, i, p["leader"], p["replicas"], p["isr"])
                        return False
        return True

    def fault(self, what):
        t0 = time.time()
        if what == "kill-leader":
            p = self.partition0()
            check(p, "no leader for %s-0" % self.topic)
            victim = p["leader"]
            self.cluster.sigkill(victim)
            self.killed.append(victim)
            return "leader %d of %s-0 SIGKILLed (isr was %s)" % (victim, self.topic, p["isr"])
        if what == "kill-follower":
            p = self.partition0()
            check(p, "no leader for %s-0" % self.topic)
            followers = [r for r in p["isr"] if r != p["leader"]]
            check(followers, "no in-sync follower left in %s" % p)
            victim = followers[0]
            self.cluster.sigkill(victim)
            self.killed.append(victim)
            shrunk = wait_for(lambda: (lambda q: q and victim not in q["isr"] and q)(self.partition0()), 40)
            check(shrunk, "the ISR of %s-0 still lists node %d 40 s after its SIGKILL" % (self.topic, victim))
            return "follower %d SIGKILLed; isr %s after %.1f s" % (victim, shrunk["isr"], time.time() - t0)
        if what in ("kill-group-coordinator", "kill-txn-coordinator"):
            key, kind = (self.group, 0) if what == "kill-group-coordinator" else (self.txn_id, 1)
            found = wait_for(lambda: next((n for e, n in [find_coordinator(a, key, kind) for a in self.live_addrs()[:1]] if e == 0), None), 30)
            check(found, "FindCoordinator %s found no coordinator" % key)
            self.cluster.sigkill(found)
            self.killed.append(found)
            return "coordinator %d of %s SIGKILLed" % (found, key)
        if what == "restart":
            self.restart_killed()
            return "restarted %s, every partition fully replicated after %.1f s" % (self.faults_restarted, time.time() - t0)
        raise Fail("unknown fault %r" % what)

    def restart_killed(self):
        self.faults_restarted = list(self.killed)
        for n in self.killed:
            self.cluster.start_node(n)
        self.killed = []
        check(wait_for(lambda: self.healed(None), 90, 0.3),
              "the cluster is not fully replicated 90 s after restarting nodes %s: %s" % (self.faults_restarted, self.unhealed))

    def run(self, argv):
        args = argv + [self.scenario, self.cluster.bootstrap, self.topic, self.topic2, self.group, self.txn_id, str(N_RECORDS)]
        self.log.write("$ %s\n" % " ".join(args))
        self.log.flush()
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        lines = queue.Queue()
        threading.Thread(target=lambda: ([lines.put(l) for l in proc.stdout], lines.put(None)), daemon=True).start()
        deadline = time.time() + SCENARIO_TIMEOUT
        result = None
        try:
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.time()))
                except queue.Empty:
                    raise Fail("client did not finish within %d s (faults so far: %s)" % (SCENARIO_TIMEOUT, self.faults))
                if line is None:
                    break
                self.log.write(line)
                self.log.flush()
                line = line.strip()
                if line.startswith("FAULT "):
                    what = line[6:].strip()
                    try:
                        detail = self.fault(what)
                        self.faults.append("%s: %s" % (what, detail))
                        proc.stdin.write("OK %s\n" % detail)
                    except Fail as e:
                        proc.stdin.write("ERR %s\n" % e)
                        proc.stdin.flush()
                        raise
                    proc.stdin.flush()
                elif line.startswith("RESULT "):
                    result = json.loads(line[7:])
                elif line.startswith("NA "):
                    raise NotApplicable(line[3:])
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        check(result is not None, "client exited %s without a RESULT line (log %s)" % (proc.returncode, self.log.name))
        self.log.write("RESULT parsed; faults: %s\n" % self.faults)
        return result

    def close(self):
        if self.killed:
            try:
                self.restart_killed()
            except (Fail, LauncherError) as e:
                self.log.write("restart after the scenario failed: %s\n" % e)
        self.log.close()


# ------------------------------------------------------------------ judging what the client saw

def judge_failover(res, n):
    check(not res.get("send_errors"), "send errors: %s" % res.get("send_errors", [])[:5])
    got = [tuple(x) for x in res["consumed"]]
    values = [v for _, _, v in got]
    want = ["v%d" % i for i in range(2 * n)]
    dups = sorted({v for v in values if values.count(v) > 1})
    lost = sorted(set(want) - set(values), key=lambda v: int(v[1:]))
    extra = sorted(set(values) - set(want))
    check(not dups and not lost and not extra,
          "read %d records: duplicated %s, lost %s, unexpected %s" % (len(values), dups[:10], lost[:10], extra[:10]))
    for p, k, v in got:
        i = int(v[1:])
        check(p == i % 3 and k == "k%d" % (i % 6), "record %s read from partition %d with key %s" % (v, p, k))
    by_key = {}
    for _, k, v in got:
        by_key.setdefault(k, []).append(int(v[1:]))
    for k, seq in by_key.items():
        check(seq == sorted(seq), "key %s read out of order: %s" % (k, seq))
    return "%d records read back exactly once, per-key order kept" % len(values)


def _is_ner(err):
    e = err.upper().replace("_", "").replace(" ", "")
    return "NOTENOUGHREPLICAS" in e and "AFTERAPPEND" not in e


def judge_min_isr(res, n):
    steps = res["steps"]
    for s in ("a", "b", "d"):
        check(not steps[s], "step %s (%s) failed: %s" % (s, {"a": "all replicas up", "b": "one replica down",
                                                          "d": "after the restart"}[s], steps[s]))
    c = steps["c"]
    check(len(c) == 1 and _is_ner(c[0]), "with two of three replicas down (min.insync.replicas=2) the send must fail with "
          "NOT_ENOUGH_REPLICAS; the client saw: %s" % (c or "success"))
    want = ["a%d" % i for i in range(5)] + ["b%d" % i for i in range(5)] + ["d%d" % i for i in range(5)]
    check(res["consumed"] == want, "read back %s, want %s" % (res["consumed"], want))
    return "one replica down: acked; two down: %s; after the restart: acked; read back exactly the 15 acked" % c[0][:120]


def judge_coordinator(res, n):
    # Errors a poll reports while the coordinator is down are the client telling the application
    # it is retrying (franz-go: "unable to join group session"); only the outcome counts for them.
    polls = [e for e in res.get("errors", []) if e.startswith("poll")]
    hard = [e for e in res.get("errors", []) if not e.startswith("poll")]
    check(not hard, "errors: %s (while polling: %s)" % (hard, polls[:3]))
    check(res["group_second"] == ["g%d" % i for i in range(10, 20)] or not polls,
          "after the group coordinator's SIGKILL the group's new consumer read %s, want g10..g19 (while polling: %s)"
          % (res["group_second"], polls[:3]))
    check(res["group_first"] == ["g%d" % i for i in range(10)], "first consumer read %s" % res["group_first"])
    want = ["g%d" % i for i in range(10, 20)]
    check(res["group_second"] == want, "after the group coordinator's SIGKILL the group's new consumer read %s, want %s "
          "(resuming at the committed offset 10)" % (res["group_second"], want))
    if res.get("txn_na"):
        # The client cannot finish a transaction across its coordinator's failover on either server
        # (kafka-python 2.3.3 on Kafka 4.4 as on Arus): that part is n/a, the first transaction still counts.
        check(res["txn_consumed"] in (["t%d" % i for i in range(5)], ["t%d" % i for i in range(10)]),
              "read_committed: %s, want t0..t4 (or t0..t9)" % res["txn_consumed"])
        return "group resumed at its committed offset through the new coordinator; transaction part n/a: %s" % res["txn_na"]
    want = ["t%d" % i for i in range(10)]
    check(res["txn_consumed"] == want, "read_committed after the transaction coordinator's SIGKILL: %s, want %s" % (res["txn_consumed"], want))
    return "group resumed at its committed offset through the new coordinator; second transaction committed through the new coordinator"


SCENARIOS = {"replicated_failover": judge_failover, "min_isr": judge_min_isr, "coordinator_failover": judge_coordinator}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launcher", default=ARUS_LAUNCHER)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory and the logs")
    args = ap.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    logdir = os.path.join(WORK, "logs", "replicated-" + stamp)
    os.makedirs(logdir, exist_ok=True)
    cluster = Cluster(args.launcher, args.nodes, overrides=OVERRIDES)
    passed = failed = na = 0
    t_all = time.time()
    try:
        try:
            cluster.start()
        except LauncherError as e:
            print("FAIL cluster start [%s]: %s" % (cluster.name, e), flush=True)
            return 3 if e.code == 3 else 1
        print("[replicated] %s cluster of %d nodes: %s (dir %s, logs %s)" % (cluster.name, args.nodes, cluster.bootstrap, cluster.dir, logdir), flush=True)
        for client in args.clients.split(","):
            for scenario in args.scenarios.split(","):
                run = Run(cluster, client, scenario, logdir)
                t = time.time()
                try:
                    run.setup()
                    detail = SCENARIOS[scenario](run.run(CLIENTS[client]()), N_RECORDS)
                    print("PASS %s %s [%s]: %s; faults: %s (%.0f s)" % (client, scenario, cluster.name, detail, "; ".join(run.faults), time.time() - t), flush=True)
                    passed += 1
                except NotApplicable as e:
                    print("n/a  %s %s: %s" % (client, scenario, e), flush=True)
                    na += 1
                except (Fail, LauncherError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                    print("FAIL %s %s [%s]: %s; faults: %s (%.0f s, log %s)" % (client, scenario, cluster.name, e, "; ".join(run.faults), time.time() - t, run.log.name), flush=True)
                    failed += 1
                finally:
                    run.close()
    finally:
        keep = args.keep or failed > 0
        if keep:
            for n in sorted(cluster.status()):
                shutil.copy(cluster.log(n), os.path.join(logdir, "node-%d.out.log" % n))
        cluster.destroy(keep=args.keep)
        if not keep:
            shutil.rmtree(logdir, ignore_errors=True)
    print("[replicated] %d passed, %d failed, %d n/a in %.0f s" % (passed, failed, na, time.time() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
