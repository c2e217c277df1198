#!/usr/bin/env python3
"""Feature flags against Arus and Apache Kafka 4.4: `kafka-features` (FeatureCommand)
describe / upgrade / downgrade / disable, the same steps on both brokers, outputs compared.

    python3 compat/features.py [--broker target/release/arus] [--reference compat/reference/kafka-broker.sh]

Each broker starts on a fresh data directory. Outputs are compared after two documented
normalisations: the `Epoch: N` of describe (Kafka's is its metadata log offset, Arus's
counts changes: both only increase) and the features Arus does not support (kraft.version,
eligible.leader.replicas.version, share.version, streams.version: not advertised by Arus,
see README). Exit status 1 if any step differs.

Also importable: `set_feature(bootstrap, name, level)` sends UpdateFeatures (v1) itself, so
compat/run.py can run scenarios at a chosen `transaction.version` on either broker.
"""
import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)
UNSUPPORTED_BY_ARUS = ("kraft.version", "eligible.leader.replicas.version", "share.version", "streams.version")


def _uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _compact_str(s):
    b = s.encode()
    return _uvarint(len(b) + 1) + b


def set_feature(bootstrap, name, level, timeout=10):
    """UpdateFeatures v1 for one feature (upgrade when raising, safe downgrade when
    lowering; the same level is a no-op on both brokers). Returns (error_code, message)."""
    host, port = bootstrap.rsplit(":", 1)
    results = []
    for upgrade_type in (1, 2):
        client_id = b"arus-compat-features"
        header = struct.pack(">hhih", 57, 1, 7, len(client_id)) + client_id + b"\x00"
        body = struct.pack(">i", 60000) + _uvarint(2) + _compact_str(name) + struct.pack(">hb", level, upgrade_type) \
            + b"\x00" + b"\x00" + b"\x00"
        req = header + body
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(req)) + req)
            buf = b""
            while len(buf) < 4:
                buf += s.recv(4 - len(buf))
            (size,) = struct.unpack(">i", buf)
            data = b""
            while len(data) < size:
                chunk = s.recv(size - len(data))
                if not chunk:
                    raise OSError("connection closed")
                data += chunk
        # header v1: correlation id + tagged fields (empty); then throttle, error code, message.
        pos = 4 + 1
        _throttle, code = struct.unpack(">ih", data[pos:pos + 6])
        pos += 6
        n = data[pos]
        msg = data[pos + 1:pos + n].decode() if n else None
        if code == 0:
            return 0, None
        results.append((code, msg))
    return results[-1]


def feature_command(classpath, bootstrap, args):
    cmd = ["java", "-cp", classpath, "org.apache.kafka.tools.FeatureCommand", "--bootstrap-server", bootstrap] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    lines = [l for l in (p.stdout + p.stderr).splitlines() if not l.startswith("SLF4J")]
    return "\n".join(lines)


def normalise(out):
    keep = []
    for line in out.splitlines():
        if any(f in line for f in UNSUPPORTED_BY_ARUS):
            continue
        keep.append(re.sub(r"Epoch: \d+", "Epoch: N", line))
    return "\n".join(keep)


# (FeatureCommand arguments) in order, each run on both brokers.
STEPS = [
    ["describe"],
    ["upgrade", "--feature", "transaction.version=3"],
    ["upgrade", "--feature", "transaction.version=1"],
    ["downgrade", "--feature", "transaction.version=1", "--dry-run"],
    ["describe"],
    ["downgrade", "--feature", "transaction.version=1"],
    ["describe"],
    ["downgrade", "--feature", "transaction.version=3"],
    ["upgrade", "--feature", "transaction.version=2", "--dry-run"],
    ["upgrade", "--feature", "transaction.version=2"],
    ["upgrade", "--feature", "foo.bar=1"],
    ["downgrade", "--feature", "metadata.version=30"],
    ["downgrade", "--unsafe", "--feature", "metadata.version=30"],
    ["upgrade", "--feature", "metadata.version=34"],
    ["downgrade", "--feature", "group.version=0"],
    ["describe"],
    ["upgrade", "--feature", "group.version=1"],
    ["disable", "--feature", "transaction.version", "--dry-run"],
    ["describe"],
]


def start(broker, data_dir):
    ready = os.path.join(data_dir, "ready")
    log = open(os.path.join(data_dir, "broker.log"), "w")
    proc = subprocess.Popen([broker, "serve", "--log-dirs", os.path.join(data_dir, "d"), "--listeners",
                             "PLAINTEXT://127.0.0.1:0", "--ready-file", ready], stdout=log, stderr=log)
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (broker, proc.returncode))
        if os.path.exists(ready) and open(ready).read().strip():
            return proc, open(ready).read().strip()
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("%s not ready in 120 s" % broker)


def run_all(broker, classpath):
    with tempfile.TemporaryDirectory(prefix="arus-features-") as d:
        proc, bootstrap = start(broker, d)
        try:
            epochs, outs = [], []
            for step in STEPS:
                out = feature_command(classpath, bootstrap, step)
                outs.append(out)
                epochs += [int(e) for e in re.findall(r"Epoch: (\d+)", out)[:1]]
            return outs, epochs
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=os.path.join(ROOT, "target", "release", "arus"))
    ap.add_argument("--reference", default=os.path.join(COMPAT, "reference", "kafka-broker.sh"))
    args = ap.parse_args()
    cp_file = os.path.join(COMPAT, "work", "reference-classpath.txt")
    if not os.path.exists(cp_file):
        subprocess.run(["mvn", "-q", "-B", "dependency:build-classpath", "-Dmdep.outputFile=" + cp_file],
                       cwd=os.path.join(COMPAT, "reference"), check=True)
    classpath = open(cp_file).read().strip()
    arus, arus_epochs = run_all(args.broker, classpath)
    kafka, kafka_epochs = run_all(args.reference, classpath)
    failed = 0
    for step, a, k in zip(STEPS, arus, kafka):
        same = normalise(a) == normalise(k)
        print("%s kafka-features %s" % ("same" if same else "DIFF", " ".join(step)))
        if not same:
            failed += 1
            print("  kafka:\n    " + normalise(k).replace("\n", "\n    "))
            print("  arus:\n    " + normalise(a).replace("\n", "\n    "))
    for name, epochs in (("arus", arus_epochs), ("kafka", kafka_epochs)):
        if epochs != sorted(epochs) or len(set(epochs)) < 3:
            failed += 1
            print("DIFF %s: describe epochs do not increase with each change: %s" % (name, epochs))
    print("%d steps, %d differ" % (len(STEPS), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
