"""A power cut of one node (run.py --powercut NODE): that node's data directory is a plfs mount
(faults/powerloss/plfs.py, a FUSE pass-through that forgets whatever was not fsynced when it is
unmounted), so the nemesis's power_cut fault loses the node's page cache, not just its process.
Needs /dev/fuse, fusermount and fusepy (bash faults/powerloss/install.sh).

The node is formatted on the real disk first, then its data directory becomes plfs's backing
directory (what is already there counts as durable) and plfs is mounted in its place.
"""
import os
import shutil
import subprocess
import sys
import time

PLFS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "powerloss", "plfs.py")


class PowerCutError(Exception):
    pass


class PowerCut:
    def __init__(self, cluster, node, seed=1):
        self.cluster, self.node, self.seed = cluster, node, seed
        nd = os.path.join(cluster.dir, "node-%d" % node)
        self.mnt, self.backing = os.path.join(nd, "data"), os.path.join(nd, "plfs-backing")
        self.log = os.path.join(nd, "plfs.log")
        self.fs, self.cuts = None, 0

    def setup(self):
        """After cluster.format(), before cluster.start()."""
        if not os.path.exists("/dev/fuse") or shutil.which("fusermount") is None:
            raise PowerCutError("needs /dev/fuse and fusermount (bash faults/powerloss/install.sh)")
        os.rename(self.mnt, self.backing)
        os.mkdir(self.mnt)
        self.mount()

    def mount(self):
        self.cuts += 1
        cmd = [sys.executable, PLFS, self.backing, self.mnt, "--tear", "--seed", str(self.seed + self.cuts),
               "--report", os.path.join(os.path.dirname(self.mnt), "cut-%d.json" % self.cuts)]
        self.fs = subprocess.Popen(cmd, stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not os.path.ismount(self.mnt):
            if self.fs.poll() is not None or time.time() > deadline:
                raise PowerCutError("plfs did not mount (see %s)" % self.log)
            time.sleep(0.05)

    def cut(self):
        """The power cut, the node's process already dead: unmount, plfs rolls back everything not
        durable and exits. Returns the cut's report (bytes and files dropped)."""
        for _ in range(100):
            if subprocess.run(["fusermount", "-u", self.mnt], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["fusermount", "-uz", self.mnt], capture_output=True)
        try:
            self.fs.wait(60)
        except subprocess.TimeoutExpired:
            raise PowerCutError("plfs did not finish the cut within 60 s")
        if self.fs.returncode != 0:
            raise PowerCutError("plfs failed (exit %s), see %s" % (self.fs.returncode, self.log))
        report = os.path.join(os.path.dirname(self.mnt), "cut-%d.json" % self.cuts)
        try:
            import json
            with open(report) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def teardown(self):
        if self.fs is not None and self.fs.poll() is None:
            subprocess.run(["fusermount", "-u", self.mnt], capture_output=True)
            try:
                self.fs.wait(30)
            except subprocess.TimeoutExpired:
                self.fs.kill()
