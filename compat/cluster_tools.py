#!/usr/bin/env python3
"""Apache Kafka 4.4's own tools against a cluster (issue 14): kafka-topics --describe,
kafka-metadata-quorum describe --status and --replication, kafka-features describe,
kafka-broker-api-versions, kafka-cluster cluster-id and (3 nodes or more) kafka-reassign-partitions
moving a partition's data and raising its replication factor, with checks of what they print; with
--quorum dynamic also kafka-metadata-quorum remove-controller / add-controller (KIP-853).

    python3 compat/cluster_tools.py --launcher compat/reference/kafka-cluster.sh [--nodes 3]
    python3 compat/cluster_tools.py --launcher compat/arus-cluster.sh   # ARUS_BIN or target/release/arus
    python3 compat/cluster_tools.py --bootstrap HOST:PORT,...            # a cluster already running

The cluster is started through the launcher contract (compat/cluster-launcher.sh), unless
--bootstrap names one. The tools run in one JVM (compat/tools/ToolRunner.java, as
compat/kafka_tools.py), with the classes of kafka-tools 4.4.0 (compat/work/reference-classpath.txt).
What every step checks is Kafka's behaviour on a cluster of N combined nodes (node ids 1..N), and
is compared with what each node says on its own (compat/kafka_wire.py: Metadata, DescribeQuorum).
Prints PASS/FAIL per step; exit status 1 if any step failed, 3 if the launcher says the server
cannot run a cluster yet.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid

COMPAT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, COMPAT)
import kafka_wire  # noqa: E402
from cluster_control import ARUS_LAUNCHER, Cluster, LauncherError  # noqa: E402
from kafka_tools import TOOLS, Runner, StepFailed, resolve_classpath  # noqa: E402

TOOLS = dict(TOOLS, **{"kafka-cluster": "org.apache.kafka.tools.ClusterTool"})


class Checks:
    def __init__(self, runner):
        self.runner, self.results = runner, []

    def tool(self, name, args):
        r = self.runner.call(TOOLS[name], args, timeout=60)
        if r["exit"] != 0:
            raise StepFailed("%s %s: exit %s: %s" % (name, " ".join(args), r["exit"], (r["out"] + r["err"]).strip()[-600:]))
        return r["out"]

    def step(self, name, fn):
        t = time.time()
        try:
            detail = fn()
            self.results.append((name, True, detail))
            print("PASS %-45s %s (%.1f s)" % (name, detail, time.time() - t), flush=True)
        except (StepFailed, AssertionError, kafka_wire.WireError, OSError, KeyError, ValueError) as e:
            self.results.append((name, False, str(e)))
            print("FAIL %-45s %s" % (name, e), flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def parse_topic_describe(out, topic):
    """{partition: (leader, replicas, isr)} from kafka-topics --describe."""
    parts = {}
    for line in out.splitlines():
        m = re.search(r"Topic: %s\tPartition: (\d+)\tLeader: (-?\d+|none)\tReplicas: ([\d,]*)\tIsr: ([\d,]*)" % re.escape(topic), line)
        if m:
            leader = -1 if m.group(2) == "none" else int(m.group(2))
            parts[int(m.group(1))] = (leader, [int(x) for x in m.group(3).split(",") if x],
                                      [int(x) for x in m.group(4).split(",") if x])
    return parts


def run_checks(runner, bootstrap, nodes, cluster=None, quorum="static"):
    c = Checks(runner)
    addrs = bootstrap.split(",")
    ids = list(range(1, nodes + 1))
    state = {}

    def cluster_id():
        out = c.tool("kafka-cluster", ["cluster-id", "--bootstrap-server", bootstrap])
        m = re.search(r"Cluster ID: (\S+)", out)
        check(m, "no 'Cluster ID:' in %r" % out)
        state["cluster_id"] = m.group(1)
        # Every node reports the same id in its own Metadata, and the tool agrees through each.
        for a in addrs:
            md = kafka_wire.metadata(a, topics=[])
            check(md["cluster_id"] == state["cluster_id"], "node %s: Metadata cluster id %s, tool %s" % (a, md["cluster_id"], state["cluster_id"]))
            one = re.search(r"Cluster ID: (\S+)", c.tool("kafka-cluster", ["cluster-id", "--bootstrap-server", a]))
            check(one and one.group(1) == state["cluster_id"], "kafka-cluster cluster-id via %s: %s" % (a, one and one.group(1)))
        return "Cluster ID %s, the same through every node and in every node's Metadata" % state["cluster_id"]

    def api_versions():
        out = c.tool("kafka-broker-api-versions", ["--bootstrap-server", bootstrap])
        heads = re.findall(r"^(\S+) \(id: (\d+) rack: (\S+) isFenced: (\w+)\) -> \($", out, re.M)
        got = sorted(int(h[1]) for h in heads)
        check(got == ids, "brokers listed %s, want %s" % (got, ids))
        check(all(h[3] == "false" for h in heads), "fenced brokers listed: %s" % heads)
        for h in heads:
            check(h[0] == addrs[int(h[1]) - 1], "broker %s at %s, want %s" % (h[1], h[0], addrs[int(h[1]) - 1]))
        blocks = re.split(r"^\S+ \(id: \d+ .*\) -> \($", out, flags=re.M)[1:]
        apis = [sorted(re.findall(r"^\t(\w+)\((\d+)\): ([^\[\n]+)", b, re.M)) for b in blocks]
        check(all(a == apis[0] for a in apis), "the brokers advertise different API versions")
        names = {a[0] for a in apis[0]}
        for need in ("Produce", "Fetch", "Metadata", "CreateTopics", "DescribeQuorum", "DescribeCluster"):
            check(need in names, "%s not advertised" % need)
        return "%d brokers (ids %s, none fenced, each at its own address), the same %d APIs on each" % (len(heads), got, len(names))

    def topics_describe():
        topic = "cluster-tools-" + uuid.uuid4().hex[:8]
        parts_n = 3 * nodes
        c.tool("kafka-topics", ["--bootstrap-server", bootstrap, "--create", "--topic", topic,
                                "--partitions", str(parts_n), "--replication-factor", "1"])
        state["topic"] = topic
        # Every node lists the topic with a leader for each partition (metadata propagates).
        deadline = time.time() + 30
        while True:
            mds = [kafka_wire.metadata(a, [topic])["topics"].get(topic, {"partitions": {}}) for a in addrs]
            if all(len(m["partitions"]) == parts_n and all(p["leader"] >= 0 for p in m["partitions"].values()) for m in mds):
                break
            check(time.time() < deadline, "not every node lists %s with leaders within 30 s" % topic)
            time.sleep(0.1)
        out = c.tool("kafka-topics", ["--bootstrap-server", bootstrap, "--describe", "--topic", topic])
        head = re.search(r"Topic: %s\tTopicId: (\S+)\tPartitionCount: (\d+)\tReplicationFactor: (\d+)" % re.escape(topic), out)
        check(head and int(head.group(2)) == parts_n and head.group(3) == "1", "header: %r" % out.splitlines()[:1])
        parts = parse_topic_describe(out, topic)
        check(sorted(parts) == list(range(parts_n)), "partitions described: %s" % sorted(parts))
        leaders = {}
        for p, (leader, replicas, isr) in parts.items():
            check(replicas == [leader] and isr == [leader], "partition %d: leader %d replicas %s isr %s" % (p, leader, replicas, isr))
            leaders[leader] = leaders.get(leader, 0) + 1
        check(sorted(leaders) == ids, "leaders on brokers %s, want every broker %s" % (sorted(leaders), ids))
        for a in addrs:
            md = kafka_wire.metadata(a, [topic])["topics"][topic]["partitions"]
            same = {p: md[p]["leader"] for p in md} == {p: parts[p][0] for p in parts}
            check(same, "node %s's Metadata leaders differ from kafka-topics" % a)
        return "%d partitions, RF 1, leaders per broker %s (every broker leads; every node's Metadata agrees)" % (
            parts_n, dict(sorted(leaders.items())))

    def quorum_status():
        out = c.tool("kafka-metadata-quorum", ["--bootstrap-server", bootstrap, "describe", "--status"])
        f = dict(re.findall(r"^(\w+):\s+(.*)$", out, re.M))
        check(f.get("ClusterId") == state.get("cluster_id"), "ClusterId %s, kafka-cluster said %s" % (f.get("ClusterId"), state.get("cluster_id")))
        leader = int(f["LeaderId"])
        voters = json.loads(f["CurrentVoters"])
        voter_ids = sorted(v["id"] for v in voters)
        check(voter_ids == ids, "CurrentVoters %s, want %s" % (voter_ids, ids))
        check(leader in ids, "LeaderId %d not a voter" % leader)
        check(int(f["LeaderEpoch"]) >= 1 and int(f["HighWatermark"]) > 0, "LeaderEpoch %s HighWatermark %s" % (f["LeaderEpoch"], f["HighWatermark"]))
        check(json.loads(f["CurrentObservers"]) == [], "observers %s (combined nodes are all voters)" % f["CurrentObservers"])
        for v in voters:
            want = "CONTROLLER://127.0.0.1:"
            check(any(e.startswith(want) for e in v.get("endpoints", [])), "voter %s endpoints %s" % (v["id"], v.get("endpoints")))
        # Every node names the same leader (DescribeQuorum through each node).
        seen = {a: kafka_wire.describe_quorum(a)["leader_id"] for a in addrs}
        check(set(seen.values()) == {leader}, "leader seen by each node %s, tool %d" % (seen, leader))
        state["leader"] = leader
        return "LeaderId %d, voters %s, no observers, HighWatermark %s, MaxFollowerLag %s; every node names leader %d" % (
            leader, voter_ids, f["HighWatermark"], f.get("MaxFollowerLag"), leader)

    def quorum_replication():
        out = c.tool("kafka-metadata-quorum", ["--bootstrap-server", bootstrap, "describe", "--replication"])
        lines = out.strip().splitlines()
        header = [h.strip() for h in lines[0].split("\t") if h.strip()]
        check(header[:2] == ["NodeId", "DirectoryId"] and "Status" in header and "Lag" in header, "header %s" % header)
        rows = [dict(zip(header, [x.strip() for x in l.split("\t")])) for l in lines[1:] if l.strip()]
        by_node = {int(r["NodeId"]): r for r in rows}
        check(sorted(by_node) == ids, "rows for nodes %s, want %s" % (sorted(by_node), ids))
        leaders = [n for n, r in by_node.items() if r["Status"] == "Leader"]
        check(leaders == [state.get("leader", leaders[0] if leaders else -1)], "Leader rows %s, --status said %s" % (leaders, state.get("leader")))
        check(all(r["Status"] == "Follower" for n, r in by_node.items() if n not in leaders), "statuses %s" % {n: r["Status"] for n, r in by_node.items()})
        # Followers catch up within seconds on an idle cluster: re-read until every lag is 0.
        deadline = time.time() + 15
        while any(int(r["Lag"]) != 0 for r in by_node.values()) and time.time() < deadline:
            time.sleep(0.5)
            out = c.tool("kafka-metadata-quorum", ["--bootstrap-server", bootstrap, "describe", "--replication"])
            rows = [dict(zip(header, [x.strip() for x in l.split("\t")])) for l in out.strip().splitlines()[1:] if l.strip()]
            by_node = {int(r["NodeId"]): r for r in rows}
        check(all(int(r["Lag"]) == 0 for r in by_node.values()), "lags %s" % {n: r["Lag"] for n, r in by_node.items()})
        leos = {int(r["LogEndOffset"]) for r in by_node.values()}
        return "%d rows: node %d Leader, the others Follower, every Lag 0, LogEndOffset %s" % (len(rows), leaders[0], sorted(leos))

    def features():
        outs = {a: c.tool("kafka-features", ["--bootstrap-server", a, "describe"]) for a in addrs}
        parsed = {}
        for a, out in outs.items():
            parsed[a] = {m[0]: m[1:] for m in re.findall(
                r"^Feature: (\S+)\s+SupportedMinVersion: (\S+)\s+SupportedMaxVersion: (\S+)\s+FinalizedVersionLevel: (\S+)\s+Epoch: (\d+)", out, re.M)}
        first = parsed[addrs[0]]
        for need in ("metadata.version", "kraft.version"):
            check(need in first, "%s missing from kafka-features describe" % need)
        check(first["metadata.version"][2] not in ("-", "0"), "metadata.version not finalized: %s" % (first["metadata.version"],))
        for a, p in parsed.items():
            # The levels (not the epoch, which each broker reports from its own metadata offset) agree.
            check({k: v[:3] for k, v in p.items()} == {k: v[:3] for k, v in first.items()}, "node %s's features differ: %s vs %s" % (a, p, first))
        return "every node: %s" % ", ".join("%s=%s" % (k, v[2]) for k, v in sorted(first.items()))

    def voter_changes():
        """KIP-853 with Kafka's tool: remove-controller of a follower voter, which goes on as an
        observer, add-controller of it again from its own server.properties, and the refusals
        of a duplicate voter and of a wrong directory id."""
        st = cluster.status()
        leader = state.get("leader") or kafka_wire.describe_quorum(addrs[0])["leader_id"]
        controller = "127.0.0.1:%d" % st[leader]["controller_port"]
        victim = max(n for n in ids if n != leader)

        def replication():
            out = c.tool("kafka-metadata-quorum", ["--bootstrap-controller", controller, "describe", "--replication"])
            lines = out.strip().splitlines()
            header = [h.strip() for h in lines[0].split("\t") if h.strip()]
            return {int(r["NodeId"]): r for r in (dict(zip(header, [x.strip() for x in l.split("\t")])) for l in lines[1:] if l.strip())}

        def wait_status(node, want):
            deadline = time.time() + 30
            while True:
                rows = replication()
                if rows.get(node, {}).get("Status") in want:
                    return rows
                check(time.time() < deadline, "node %d: %s, want %s" % (node, rows.get(node), want))
                time.sleep(0.5)

        directory = replication()[victim]["DirectoryId"]
        # Through a broker (forwarded to the active controller, as Kafka's brokers do).
        wrong = c.runner.call(TOOLS["kafka-metadata-quorum"], ["--bootstrap-server", bootstrap, "remove-controller",
                                                               "--controller-id", victim, "--controller-directory-id", "AAAAAAAAAAAAAAAAAAAAAQ"], timeout=60)
        check(wrong["exit"] != 0 and "VoterNotFoundException" in wrong["out"] + wrong["err"],
              "remove-controller with a wrong directory id: exit %s %s" % (wrong["exit"], (wrong["out"] + wrong["err"]).strip()[-300:]))
        out = c.tool("kafka-metadata-quorum", ["--bootstrap-controller", controller, "remove-controller",
                                               "--controller-id", victim, "--controller-directory-id", directory])
        check("Removed KRaft controller %d" % victim in out, "remove-controller said %r" % out)
        wait_status(victim, ("Observer",))
        props = os.path.join(cluster.dir, "node-%d" % victim, "server.properties")
        out = c.tool("kafka-metadata-quorum", ["--bootstrap-controller", controller, "--command-config", props, "add-controller"])
        check("Added controller %d" % victim in out, "add-controller said %r" % out)
        rows = wait_status(victim, ("Follower", "Leader"))
        check(rows[victim]["DirectoryId"] == directory, "directory id %s, want %s" % (rows[victim]["DirectoryId"], directory))
        dup = c.runner.call(TOOLS["kafka-metadata-quorum"], ["--bootstrap-controller", controller, "--command-config", props, "add-controller"], timeout=60)
        check(dup["exit"] != 0 and "DuplicateVoterException" in dup["out"] + dup["err"],
              "add-controller of a voter: exit %s %s" % (dup["exit"], (dup["out"] + dup["err"]).strip()[-300:]))
        return "removed node %d (VOTER_NOT_FOUND first with a wrong directory id, through a broker), an observer then, added back with directory id %s; adding it again: DUPLICATE_VOTER" % (victim, directory)

    def reassign_partitions():
        """kafka-reassign-partitions moving data (issue 15): a one-replica partition with
        records moved to another broker, its replication factor raised to 3, then the leading
        replica dropped; --verify until each completes; every record read back (console
        consumer, from the new leader)."""
        topic = "reassign-" + uuid.uuid4().hex[:8]
        c.tool("kafka-topics", ["--bootstrap-server", bootstrap, "--create", "--topic", topic,
                                "--partitions", "1", "--replication-factor", "1"])
        lines = ["line-%03d" % i for i in range(50)]
        r = c.runner.call(TOOLS["kafka-console-producer"], ["--bootstrap-server", bootstrap, "--topic", topic],
                          stdin="\n".join(lines) + "\n", timeout=60)
        check(r["exit"] == 0, "console-producer: exit %s %s" % (r["exit"], (r["out"] + r["err"]).strip()[-300:]))
        first = parse_topic_describe(c.tool("kafka-topics", ["--bootstrap-server", bootstrap, "--describe", "--topic", topic]), topic)[0][0]
        others = [n for n in ids if n != first]
        tmp = tempfile.mkdtemp(prefix="reassign-")

        def reassign(replicas):
            f = os.path.join(tmp, "r-%s.json" % "-".join(map(str, replicas)))
            with open(f, "w") as fh:
                json.dump({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": replicas}]}, fh)
            out = c.tool("kafka-reassign-partitions", ["--bootstrap-server", bootstrap, "--reassignment-json-file", f, "--execute"])
            check("Successfully started partition reassignment for %s-0" % topic in out, "--execute said %r" % out[-400:])
            deadline = time.time() + 60
            while True:
                v = c.tool("kafka-reassign-partitions", ["--bootstrap-server", bootstrap, "--reassignment-json-file", f, "--verify"])
                if "Reassignment of partition %s-0 is completed." % topic in v:
                    break
                check("is still in progress" in v, "--verify said %r" % v[-400:])
                check(time.time() < deadline, "%s-0 to %s not completed within 60 s" % (topic, replicas))
                time.sleep(0.5)
            # The brokers' metadata follows the controller's: wait for the ISR to match too.
            deadline = time.time() + 30
            while True:
                leader, got, isr = parse_topic_describe(c.tool("kafka-topics", ["--bootstrap-server", bootstrap, "--describe", "--topic", topic]), topic)[0]
                if got == replicas and sorted(isr) == sorted(replicas) and leader in replicas:
                    return leader
                check(time.time() < deadline, "described %s %s %s, want replicas and ISR %s" % (leader, got, isr, replicas))
                time.sleep(0.2)

        moved = reassign([others[0]])
        three = reassign([others[0], others[1], first])
        check(three == others[0], "leader %d after raising the replication factor, want %d" % (three, others[0]))
        final = reassign([others[1], first])
        check(final == others[1], "leader %d after dropping %d, want %d" % (final, others[0], others[1]))
        lst = c.tool("kafka-reassign-partitions", ["--bootstrap-server", bootstrap, "--list"])
        check("No partition reassignments found." in lst, "--list said %r" % lst[-300:])
        r = c.runner.call(TOOLS["kafka-console-consumer"], ["--bootstrap-server", bootstrap, "--topic", topic, "--from-beginning",
                                                            "--max-messages", str(len(lines)), "--timeout-ms", "20000"], timeout=60)
        got = [l for l in r["out"].splitlines() if l.startswith("line-")]
        check(got == lines, "console-consumer read %d of %d records (%s)" % (len(got), len(lines), (r["out"] + r["err"]).strip()[-300:]))
        return "%s-0: [%d] -> [%d] -> %s -> %s (leader %d), --verify completed each time, --list empty, all %d records read back" % (
            topic, first, moved, [others[0], others[1], first], [others[1], first], final, len(lines))

    c.step("kafka-cluster cluster-id", cluster_id)
    c.step("kafka-broker-api-versions", api_versions)
    c.step("kafka-topics --create / --describe", topics_describe)
    c.step("kafka-metadata-quorum describe --status", quorum_status)
    c.step("kafka-metadata-quorum describe --replication", quorum_replication)
    c.step("kafka-features describe (through each node)", features)
    if nodes >= 3:
        c.step("kafka-reassign-partitions move and RF 1 -> 3", reassign_partitions)
    if cluster is not None and quorum == "dynamic":
        c.step("kafka-metadata-quorum remove-controller / add-controller", voter_changes)
    return c.results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launcher", default=ARUS_LAUNCHER)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--quorum", choices=["static", "dynamic"], default="static",
                    help="controller.quorum.voters (static) or controller.quorum.bootstrap.servers + --initial-controllers (KIP-853)")
    ap.add_argument("--bootstrap", help="use this running cluster (node ids 1..--nodes) instead of starting one")
    ap.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    args = ap.parse_args()
    classpath = resolve_classpath()
    cluster = None
    log = tempfile.NamedTemporaryFile("w", prefix="cluster-tools-runner-", suffix=".log", delete=False)
    runner = None
    try:
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            cluster = Cluster(args.launcher, args.nodes, overrides=["group.initial.rebalance.delay.ms=0"], quorum=args.quorum)
            t = time.time()
            bootstrap = cluster.start()
            print("[cluster_tools] %s: %d nodes ready in %.1f s, bootstrap %s" % (cluster.name, args.nodes, time.time() - t, bootstrap), flush=True)
        runner = Runner(classpath, log)
        results = run_checks(runner, bootstrap, args.nodes, cluster=cluster, quorum=args.quorum)
    except LauncherError as e:
        print("FAIL the cluster did not start: %s" % e, flush=True)
        return 3 if e.code == 3 else 1
    except Exception as e:  # noqa: BLE001
        print("FAIL cluster did not start or the tools did not run: %s" % e, flush=True)
        return 1
    finally:
        if runner:
            runner.close()
        if cluster:
            cluster.destroy(keep=args.keep)
    failed = [r for r in results if not r[1]]
    print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
