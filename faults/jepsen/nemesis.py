"""The nemesis: faults on a running cluster (through compat/cluster_control.Cluster), each applied,
held for a few seconds and healed, then the cluster is waited on until every node is back and
every partition of the watched topics has its full ISR again, so faults never stack.

Kinds (FAULTS): kill_leader (SIGKILL of a partition's leader, restart), kill_follower (SIGKILL
of a node that is in a partition's ISR but does not lead it, restart), kill_controller (SIGKILL
of the active controller, DescribeQuorum's leader, restart), pause (SIGSTOP of a partition's
leader, SIGCONT). Each fault is recorded as a dict: kind, node, partitions the node led, start
(the signal), heal (the restart or SIGCONT done), healthy (full ISR again).
"""
import os
import signal
import time

import kafka_wire

FAULTS = ("kill_leader", "kill_follower", "kill_controller", "pause")
# With network namespaces (run.py --netns, netns.py):
NET_FAULTS = ("isolate_leader", "leader_from_controller", "clients_from_leader")
# With one node on plfs (run.py --powercut NODE, powercut.py):
POWER_FAULTS = ("power_cut",)


class NemesisError(Exception):
    pass


class Nemesis:
    def __init__(self, cluster, topics, hold_s=4.0, heal_timeout=60.0, log=print, net=None, net_hold_s=10.0, power=None):
        self.cluster, self.topics, self.hold_s, self.heal_timeout, self.log = cluster, topics, hold_s, heal_timeout, log
        self.net, self.net_hold_s, self.power = net, net_hold_s, power
        self.addrs = cluster.addresses()
        self.turn = 0

    # ------------------------------------------------------------ what the cluster says

    def metadata(self, exclude=()):
        last = None
        for n, a in sorted(self.addrs.items()):
            if n in exclude:
                continue
            try:
                return kafka_wire.metadata(a, list(self.topics), timeout=3)
            except (OSError, kafka_wire.WireError) as e:
                last = e
        raise NemesisError("no node answered Metadata: %s" % last)

    def controller(self, exclude=()):
        last = None
        for n, a in sorted(self.addrs.items()):
            if n in exclude:
                continue
            try:
                q = kafka_wire.describe_quorum(a, timeout=3)
                if q["error"] == 0 and q["leader_id"] >= 0:
                    return q["leader_id"]
                last = "error %d" % q["error"]
            except (OSError, kafka_wire.WireError) as e:
                last = e
        raise NemesisError("no node answered DescribeQuorum: %s" % last)

    def partitions(self):
        """[(topic, partition, leader, isr)] over the watched topics."""
        md = self.metadata()
        out = []
        for t in self.topics:
            for i, p in sorted(md["topics"].get(t, {"partitions": {}})["partitions"].items()):
                out.append((t, i, p["leader"], p["isr"]))
        return out

    def led_by(self, node):
        return ["%s-%d" % (t, i) for t, i, leader, _isr in self.partitions() if leader == node]

    def healthy(self):
        """Every node registered and every watched partition led with all its replicas in the ISR."""
        for a in self.addrs.values():
            if len(kafka_wire.metadata(a, [], timeout=2)["brokers"]) < len(self.addrs):
                return False
        md = self.metadata()
        parts = [p for t in self.topics for p in md["topics"].get(t, {"partitions": {}})["partitions"].values()]
        return bool(parts) and all(p["leader"] >= 0 and sorted(p["isr"]) == sorted(p["replicas"]) for p in parts)

    def describe(self):
        """Each node's own view (registered brokers; leader and ISR of each watched partition),
        for the log when the cluster does not recover."""
        out = {}
        for n, a in sorted(self.addrs.items()):
            try:
                md = kafka_wire.metadata(a, list(self.topics), timeout=3)
                out[n] = {"brokers": sorted(md["brokers"]), "partitions": {
                    "%s-%d" % (t, i): "leader %d isr %s" % (p["leader"], p["isr"])
                    for t in self.topics for i, p in sorted(md["topics"].get(t, {"partitions": {}})["partitions"].items())}}
            except (OSError, kafka_wire.WireError) as e:
                out[n] = "no answer: %s" % e
        return out

    def wait_healthy(self, timeout=None):
        t0 = time.time()
        deadline = t0 + (timeout or self.heal_timeout)
        while time.time() < deadline:
            try:
                if self.healthy():
                    return time.time() - t0
            except (OSError, kafka_wire.WireError, NemesisError):
                pass
            time.sleep(0.1)
        return None

    # ------------------------------------------------------------ faults

    def _pick_partition(self):
        parts = [p for p in self.partitions() if p[2] >= 0]
        if not parts:
            raise NemesisError("no watched partition has a leader")
        p = parts[self.turn % len(parts)]
        self.turn += 1
        return p

    def _kill_restart(self, kind, node, detail):
        led = self.led_by(node)
        t0 = self.cluster.sigkill(node)
        self.log("  %s: SIGKILL node %d (led %s) %s" % (kind, node, led, detail))
        time.sleep(self.hold_s)
        self.cluster.start_node(node)
        return {"kind": kind, "node": node, "led": led, "detail": detail, "start": t0, "heal": time.time()}

    def kill_leader(self):
        t, i, leader, _isr = self._pick_partition()
        return self._kill_restart("kill_leader", leader, "leader of %s-%d" % (t, i))

    def kill_follower(self):
        controller = self.controller()
        for _ in range(len(self.partitions())):
            t, i, leader, isr = self._pick_partition()
            followers = [n for n in isr if n != leader]
            if followers:
                node = next((n for n in followers if n != controller), followers[0])
                return self._kill_restart("kill_follower", node, "follower of %s-%d" % (t, i))
        raise NemesisError("no partition has a follower in its ISR")

    def kill_controller(self):
        node = self.controller()
        return self._kill_restart("kill_controller", node, "active controller")

    def pause(self):
        t, i, leader, _isr = self._pick_partition()
        led = self.led_by(leader)
        pid = self.cluster.status()[leader]["pid"]
        t0 = time.time()
        os.kill(pid, signal.SIGSTOP)
        self.log("  pause: SIGSTOP node %d (leader of %s-%d, led %s)" % (leader, t, i, led))
        try:
            time.sleep(self.hold_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        return {"kind": "pause", "node": leader, "led": led, "detail": "leader of %s-%d" % (t, i), "start": t0, "heal": time.time()}

    def _net_fault(self, kind, node, detail, apply):
        if self.net is None:
            raise NemesisError("%s needs network namespaces (--netns)" % kind)
        led = self.led_by(node)
        t0 = time.time()
        apply()
        self.log("  %s: node %d (led %s) %s" % (kind, node, led, detail))
        try:
            time.sleep(self.net_hold_s)
        finally:
            self.net.heal()
        return {"kind": kind, "node": node, "led": led, "detail": detail, "start": t0, "heal": time.time()}

    def isolate_leader(self):
        t, i, leader, _isr = self._pick_partition()
        return self._net_fault("isolate_leader", leader, "leader of %s-%d cut from the other nodes" % (t, i),
                               lambda: self.net.isolate(leader))

    def leader_from_controller(self):
        controller = self.controller()
        for _ in range(len(self.partitions())):
            t, i, leader, _isr = self._pick_partition()
            if leader != controller:
                return self._net_fault("leader_from_controller", leader,
                                       "leader of %s-%d cut from the active controller %d only" % (t, i, controller),
                                       lambda: self.net.cut(leader, controller))
        raise NemesisError("every partition is led by the active controller")

    def clients_from_leader(self):
        t, i, leader, _isr = self._pick_partition()
        return self._net_fault("clients_from_leader", leader, "clients cut from the leader of %s-%d" % (t, i),
                               lambda: self.net.cut_clients(leader))

    def power_cut(self):
        if self.power is None:
            raise NemesisError("power_cut needs a node on plfs (--powercut NODE)")
        node = self.power.node
        led = self.led_by(node)
        t0 = self.cluster.sigkill(node)
        rep = self.power.cut()
        summary = {k: rep.get(k) for k in ("files_rolled_back", "bytes_dropped", "torn_files")}
        self.log("  power_cut: SIGKILL node %d (led %s), power cut: %s" % (node, led, summary))
        self.power.mount()
        time.sleep(max(0.0, self.hold_s - (time.time() - t0)))
        self.cluster.start_node(node)
        return {"kind": "power_cut", "node": node, "led": led, "detail": "power cut %s" % summary, "start": t0,
                "heal": time.time(), "cut": summary}

    def run_one(self, kind):
        fault = getattr(self, kind)()
        took = self.wait_healthy()
        fault["healthy"] = None if took is None else time.time()
        fault["healthy_after_heal_s"] = took
        return fault
