#!/usr/bin/env python3
"""Kafka Streams 4.4 exactly-once across a SIGKILL, against Arus and Apache Kafka 4.4 side by side.

    compat/.venv/bin/python compat/streams_eos.py [--broker target/release/arus]
        [--reference compat/reference/kafka-broker.sh] [--only arus|kafka] [--records 20000] [--keys 100]

Per broker (both at once, each its own broker process):
  - topics `input` and `output` (3 partitions each); the application (compat/apps/StreamsCount.java,
    processing.guarantee=exactly_once_v2, record cache off) re-keys every input record by its value
    through a repartition topic and counts per value in a changelogged state store, writing each
    count update to `output`;
  - a separate idempotent confluent-kafka producer feeds a fixed input, 20,000 records, value
    `w00`..`w99` round robin (200 per word), in chunks over ~15 s;
  - once `output` has committed records (ListOffsets read_committed > 0) and the producer has
    written a quarter of its input (it pauses at half until the restart, so the kill is always
    mid-input), the application is SIGKILLed, then started again on the same state dir (same
    transactional ids: its open transaction is fenced and aborted) while the input goes on;
  - after the input is complete, `output` is read read_committed from offset 0 until every word's
    last count is 200 (≤ 90 s).
Checked: the input holds exactly 20,000 records (the feed itself is exact), and for every word the
committed count updates on `output`, in offset order, are exactly 1, 2, ..., 200 — a duplicate
update (work redone after the crash and committed twice) shows as a repeated or skipped count, a
lost one as a gap or a final count below 200; no other key appears. The state store's changelog
topic, read the same way, must show the same per word (1..200 exactly, or — where the log cleaner
already compacted it — strictly increasing counts ending at 200). Exit 1 on any violation on
either broker (a failure on Kafka means the scenario is wrong). `--guarantee at_least_once` is a
self-test of the checker: the same kill then commits count updates twice, and the run must fail.
"""
import argparse
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)
sys.path.insert(0, COMPAT)

from idempotence_proxy import Broker  # noqa: E402
from confluent_kafka import Consumer, IsolationLevel, OFFSET_BEGINNING, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # noqa: E402

APPS_POM = os.path.join(COMPAT, "apps", "pom.xml")
APPS_CLASSPATH = os.path.join(COMPAT, "work", "apps-classpath.txt")
BROKER_OVERRIDES = ["group.initial.rebalance.delay.ms=0",
                    "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000"]


class Failed(Exception):
    pass


def apps_classpath():
    if not os.path.exists(APPS_CLASSPATH) or os.path.getmtime(APPS_CLASSPATH) < os.path.getmtime(APPS_POM):
        os.makedirs(os.path.dirname(APPS_CLASSPATH), exist_ok=True)
        subprocess.run(["mvn", "-q", "-B", "-Dstyle.color=never", "dependency:build-classpath",
                        "-Dmdep.outputFile=" + APPS_CLASSPATH], cwd=os.path.dirname(APPS_POM), check=True)
    return open(APPS_CLASSPATH).read().strip()


def log(name, msg):
    print("[streams] %s: %s" % (name, msg), flush=True)


class App:
    """One StreamsCount JVM; `running` is set when it prints RUNNING."""

    def __init__(self, classpath, bootstrap, app_id, state_dir, log_path, guarantee):
        self.running = threading.Event()
        self.log = open(log_path, "a")
        src = os.path.join(COMPAT, "apps", "StreamsCount.java")
        self.proc = subprocess.Popen(["java", "-Xmx256m", "-Dorg.slf4j.simpleLogger.showDateTime=true",
                                      "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS", "-cp", classpath, src, bootstrap, app_id, "input", "output", state_dir, guarantee],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            if line.strip() == "RUNNING":
                self.running.set()

    def wait_running(self, timeout=90):
        deadline = time.time() + timeout
        while not self.running.wait(0.2):
            if self.proc.poll() is not None or time.time() > deadline:
                raise Failed("application not RUNNING (exit %s) — see its log" % self.proc.poll())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def committed_end(admin, topic, parts):
    req = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(parts)}
    res = admin.list_offsets(req, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=10)
    return {tp.partition: f.result().offset for tp, f in res.items()}


def read_committed(bootstrap, topic, parts, ends, value_tail=False):
    """Every record of `topic` below the committed ends, read read_committed: [(partition, offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "streams-eos-reader", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
        out, pos = [], {p: 0 for p in range(parts)}
        deadline = time.time() + 30
        while any(pos[p] < ends[p] for p in range(parts)):
            if time.time() > deadline:
                raise Failed("read_committed reached %s of %s" % (pos, ends))
            for m in c.consume(500, 0.5):
                if m.error():
                    continue
                # the changelog of a (timestamped) count store holds an 8-byte timestamp, then the count
                v = m.value()[-8:] if value_tail else m.value()
                out.append((m.partition(), m.offset(), m.key().decode(), struct.unpack(">q", v)[0]))
                pos[m.partition()] = m.offset() + 1
            # transaction markers occupy offsets but are never delivered: ask for the position
            for tp in c.position([TopicPartition(topic, p) for p in range(parts)]):
                if tp.offset >= 0:
                    pos[tp.partition] = max(pos[tp.partition], tp.offset)
        return out
    finally:
        c.close()


def feed(bootstrap, records, keys, progress, errors, resume):
    """Produces the input; pauses at half of it until `resume` is set (after the kill and
    restart), so the kill is always mid-input, however slowly the application starts."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})

    def report(err, _msg):
        if err is not None:
            errors.append(str(err))
        else:
            progress[0] += 1

    chunk = 400
    for start in range(0, records, chunk):
        if start >= records // 2:
            resume.wait(180)
        for i in range(start, min(records, start + chunk)):
            p.produce("input", key=b"id-%d" % i, value=b"w%02d" % (i % keys), on_delivery=report)
            p.poll(0)
        p.flush(30)
        time.sleep(0.3)
    p.flush(60)


def scenario(name, binary, classpath, tmp, logs, records, keys, guarantee):
    data = os.path.join(tmp, name)
    os.makedirs(data)
    broker = Broker(binary, data, os.path.join(logs, "%s-broker.log" % name), overrides=BROKER_OVERRIDES)
    apps = []
    try:
        bootstrap = broker.start(timeout=90)
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        for f in admin.create_topics([NewTopic(t, 3, 1) for t in ("input", "output")]).values():
            f.result(30)
        state = os.path.join(data, "streams-state")
        app_log = os.path.join(logs, "%s-streams.log" % name)
        started = time.time()
        app = App(classpath, bootstrap, "eos-count", state, app_log, guarantee)
        apps.append(app)
        app.wait_running()
        log(name, "application RUNNING after %.1f s" % (time.time() - started))
        progress, errors, resume = [0], [], threading.Event()
        feeder = threading.Thread(target=feed, args=(bootstrap, records, keys, progress, errors, resume))
        feeder.start()
        deadline = time.time() + 60
        while True:
            done = progress[0]
            committed = sum(committed_end(admin, "output", 3).values())
            if committed > 0 and done >= records // 4:
                break
            if time.time() > deadline:
                raise Failed("no committed output within 60 s (produced %d, output LSO sum %d)" % (done, committed))
            time.sleep(0.2)
        app.kill9()
        log(name, "SIGKILLed the application with %d of %d input records produced, output committed end offsets sum %d" % (done, records, committed))
        app = App(classpath, bootstrap, "eos-count", state, app_log, guarantee)
        apps.append(app)
        resume.set()
        app.wait_running()
        log(name, "restarted application RUNNING")
        feeder.join(120)
        if errors or progress[0] != records:
            raise Failed("producer: %d delivered, errors %s" % (progress[0], errors[:3]))
        ends = committed_end(admin, "input", 3)
        if sum(ends.values()) != records:
            raise Failed("input holds %d records, %d sent" % (sum(ends.values()), records))
        deadline = time.time() + 90
        while True:
            ends = committed_end(admin, "output", 3)
            rows = read_committed(bootstrap, "output", 3, ends)
            last = {}
            for _, _, k, v in rows:
                last[k] = v
            if len(last) == keys and all(v >= records // keys for v in last.values()):
                break
            if time.time() > deadline:
                short = sorted((k, v) for k, v in last.items() if v < records // keys)[:5]
                raise Failed("after 90 s: %d words seen, below %d: %s" % (len(last), records // keys, short))
            time.sleep(1)
        per_key = {}
        for part, off, k, v in sorted(rows, key=lambda r: (r[0], r[1])):
            per_key.setdefault(k, []).append(v)
        want = list(range(1, records // keys + 1))
        bad = {k: v for k, v in per_key.items() if v != want}
        if set(per_key) != {"w%02d" % i for i in range(keys)} or bad:
            k = next(iter(bad), None)
            detail = ""
            if k:
                seq = bad[k]
                dup = len(seq) - len(set(seq))
                detail = "; %s: %d updates, %d repeated, last %s, first difference at index %d" % (
                    k, len(seq), dup, seq[-1], next((i for i, (x, y) in enumerate(zip(seq, want)) if x != y), min(len(seq), len(want))))
            raise Failed("%d of %d words with a wrong update sequence%s" % (len(bad), keys, detail))
        # The store's changelog, read the same way: Streams commits it in the same transactions.
        # It is compacted, so a cleaner may have dropped old counts: exact 1..n when all are there,
        # otherwise strictly increasing and ending at n (never a repeated or excess count).
        topics = admin.list_topics(timeout=20).topics
        changelog = [t for t in topics if t.startswith("eos-count-") and t.endswith("-changelog")]
        if len(changelog) != 1:
            raise Failed("changelog topics %s" % changelog)
        cparts = len(topics[changelog[0]].partitions)
        crows = read_committed(bootstrap, changelog[0], cparts, committed_end(admin, changelog[0], cparts), value_tail=True)
        cseq = {}
        for part, off, k, v in sorted(crows, key=lambda r: (r[0], r[1])):
            cseq.setdefault(k, []).append(v)
        n = records // keys
        cbad = {k: v for k, v in cseq.items() if v != want and not (all(a < b for a, b in zip(v, v[1:])) and v[-1] == n)}
        if set(cseq) != set(per_key) or cbad:
            k = next(iter(cbad), None)
            raise Failed("changelog %s: %d words, %d with a wrong sequence%s" % (
                changelog[0], len(cseq), len(cbad), "" if not k else " (%s: %s...%s)" % (k, cbad[k][:5], cbad[k][-3:])))
        exact = sum(1 for v in cseq.values() if v == want)
        return ("%d committed count updates: every word 1..%d exactly once, in order (killed at %d/%d input); "
                "changelog: %d words exact 1..%d, %d compacted but increasing to %d") % (
            len(rows), n, done, records, exact, n, len(cseq) - exact, n)
    finally:
        for a in apps:
            a.stop()
        broker.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=os.path.join(ROOT, "target", "release", "arus"))
    ap.add_argument("--reference", default=os.path.join(COMPAT, "reference", "kafka-broker.sh"))
    ap.add_argument("--only", choices=["arus", "kafka"])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--guarantee", default="exactly_once_v2",
                    help="processing.guarantee; at_least_once is a self-test of the checker (it must fail)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the logs also after a clean run")
    a = ap.parse_args()
    t0 = time.time()
    classpath = apps_classpath()
    tmp = tempfile.mkdtemp(prefix="arus-streams-eos-")
    logs = os.path.join(COMPAT, "work", "logs", "streams-eos-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(logs)
    which = {"arus": os.path.abspath(a.broker), "kafka": os.path.abspath(a.reference)}
    if a.only:
        which = {a.only: which[a.only]}
    results = {}

    def run(name, binary):
        t = time.time()
        try:
            results[name] = (True, scenario(name, binary, classpath, tmp, logs, a.records, a.keys, a.guarantee))
        except Exception as e:  # noqa: BLE001
            results[name] = (False, "%s: %s" % (type(e).__name__, e))
        log(name, "%s in %.0f s: %s" % ("PASS" if results[name][0] else "FAIL", time.time() - t, results[name][1]))

    threads = [threading.Thread(target=run, args=kv) for kv in which.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shutil.rmtree(tmp, ignore_errors=True)
    ok = all(r[0] for r in results.values())
    if ok and not a.keep_logs:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print("[streams] logs: %s" % os.path.relpath(logs, ROOT))
    print("streams_eos: %s (%.0f s)" % (", ".join("%s %s" % (n, "PASS" if r[0] else "FAIL") for n, r in sorted(results.items())), time.time() - t0))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
