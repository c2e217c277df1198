"""Driving a cluster through a launcher of the cluster contract (compat/cluster-launcher.sh:
compat/arus-cluster.sh for Arus, compat/reference/kafka-cluster.sh for Apache Kafka 4.4), for the
cluster scripts (cluster_tools.py, cluster_faults.py, bench/cluster.py). Standard library only."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)
KAFKA_LAUNCHER = os.path.join(COMPAT, "reference", "kafka-cluster.sh")
ARUS_LAUNCHER = os.path.join(COMPAT, "arus-cluster.sh")


class LauncherError(Exception):
    def __init__(self, args, code, stderr):
        super().__init__("%s exited %d: %s" % (" ".join(args), code, stderr.strip()[-1500:]))
        self.code = code


def launcher_name(path):
    return {"kafka-cluster.sh": "kafka", "arus-cluster.sh": "arus"}.get(os.path.basename(path), os.path.basename(path))


class Cluster:
    """One cluster in its own temp directory. `start()` returns the bootstrap string; node ids
    are 1..N; `status()` gives {id: {"pid", "port", "controller_port", "alive"}}."""

    def __init__(self, launcher, nodes=3, overrides=(), env=None, tmp=None, quorum="static"):
        self.launcher, self.nodes, self.overrides, self.quorum = os.path.abspath(launcher), nodes, list(overrides), quorum
        self.env = dict(os.environ, **(env or {}))
        self.dir = tempfile.mkdtemp(prefix="arus-cluster-", dir=tmp)
        self.bootstrap = None
        self.name = launcher_name(launcher)

    def run(self, *args, timeout=300):
        cmd = [self.launcher] + [str(a) for a in args] + ["--dir", self.dir]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        if p.returncode != 0:
            raise LauncherError(cmd, p.returncode, p.stderr)
        return p.stdout

    def format(self):
        self.run("format", *self._start_args())

    def _start_args(self):
        args = ["--nodes", self.nodes, "--quorum", self.quorum]
        for o in self.overrides:
            args += ["--override", o]
        return args

    def start(self):
        self.bootstrap = self.run("start", *self._start_args()).strip().splitlines()[-1]
        return self.bootstrap

    def start_node(self, node):
        self.run("start", node)

    def kill(self, node):
        self.run("kill", node)

    def sigkill(self, node):
        """SIGKILL to the node's pid from `status` (the contract: the server's own pid), sent from
        this process so a measurement starts at the signal, not at the launcher's start-up.
        Returns the time.time() just before the signal; waits until the process is gone."""
        pid = self.status()[node]["pid"]
        t = time.time()
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        return t

    def stop(self, node=None):
        self.run("stop", *([node] if node else []), timeout=180)

    def status(self):
        out = {}
        for line in self.run("status", timeout=30).splitlines():
            if line.startswith("node="):
                kv = dict(f.split("=", 1) for f in line.split())
                out[int(kv["node"])] = {"pid": int(kv["pid"]) if kv["pid"] else None, "port": int(kv["port"]),
                                        "controller_port": int(kv["controller_port"]), "alive": kv["alive"] == "1",
                                        "host": kv.get("host", "127.0.0.1")}
        return out

    def address(self, node):
        s = self.status()[node]
        return "%s:%d" % (s["host"], s["port"])

    def addresses(self):
        return {n: "%s:%d" % (s["host"], s["port"]) for n, s in self.status().items()}

    def log(self, node):
        return os.path.join(self.dir, "node-%d" % node, "out.log")

    def destroy(self, keep=False):
        try:
            self.stop()
        except Exception:  # noqa: BLE001
            pass
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
