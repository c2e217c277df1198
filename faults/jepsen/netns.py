"""Network namespaces for the fault suite's network partitions (run.py --netns; needs root, `ip`
from iproute2 and `iptables-legacy`, e.g. `apt-get install -y iptables`).

Node I runs in namespace PREFIX<I> (the cluster launcher enters it when CLUSTER_NETNS=PREFIX) on
10.77.0.I/24, its end of a veth pair whose other end is on the bridge PREFIXbr in this (the
clients') namespace, which holds 10.77.0.254. All traffic stays on this machine.

A cut is a pair of iptables DROP rules (INPUT from, OUTPUT to the other address) in a node's
namespace: packets vanish silently, as on a real partition (a blackhole route would fail the
sender's own sends at once with EINVAL instead). `heal()` flushes every node's rules.
"""
import subprocess

NET = "10.77.0"
CLIENT_IP = NET + ".254"
IPTABLES = "iptables-legacy"


class NetnsError(Exception):
    pass


def _run(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise NetnsError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


class Netns:
    def __init__(self, nodes, prefix="jep"):
        self.nodes, self.prefix = nodes, prefix
        self.bridge = prefix + "br"
        self.cuts = []

    def ns(self, node):
        return "%s%d" % (self.prefix, node)

    @staticmethod
    def ip(node):
        return "%s.%d" % (NET, node)

    def setup(self):
        self.teardown()
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", CLIENT_IP + "/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for n in range(1, self.nodes + 1):
            ns, veth = self.ns(n), "%sv%d" % (self.prefix, n)
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "link", "set", veth, "master", self.bridge, "up")
            _run("ip", "-n", ns, "addr", "add", self.ip(n) + "/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "netns", "exec", ns, IPTABLES, "-F")

    def teardown(self):
        for n in range(1, self.nodes + 1):
            _run("ip", "netns", "del", self.ns(n), check=False)
        _run("ip", "link", "del", self.bridge, check=False)

    def _drop(self, node, other_ip):
        ns = self.ns(node)
        _run("ip", "netns", "exec", ns, IPTABLES, "-A", "INPUT", "-s", other_ip, "-j", "DROP")
        _run("ip", "netns", "exec", ns, IPTABLES, "-A", "OUTPUT", "-d", other_ip, "-j", "DROP")

    def cut(self, a, b):
        """No packet between nodes a and b, either way."""
        self._drop(a, self.ip(b))
        self._drop(b, self.ip(a))
        self.cuts.append((a, b))

    def isolate(self, node):
        """Node cut from every other node (clients still reach it)."""
        for other in range(1, self.nodes + 1):
            if other != node:
                self.cut(node, other)

    def cut_clients(self, node):
        """The clients (this namespace) cut from node; the nodes still talk to each other."""
        self._drop(node, CLIENT_IP)
        self.cuts.append((node, "clients"))

    def heal(self):
        for n in range(1, self.nodes + 1):
            _run("ip", "netns", "exec", self.ns(n), IPTABLES, "-F")
        self.cuts = []
