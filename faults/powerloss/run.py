#!/usr/bin/env python3
"""Power-loss test: the real broker on plfs (a FUSE filesystem that drops unsynced state).

    compat/.venv/bin/python faults/powerloss/run.py [--broker target/release/arus]
        [--cycles 5] [--control-cycles 3] [--seed N] [--no-control] [--keep]

Each cycle: run a workload against `arus serve` whose --log-dirs is on the plfs mount,
SIGKILL the broker at a random moment, cut the power (unmount plfs: every write not
fsynced and every directory entry not made durable by an fsync of its directory is
rolled back, the newest unsynced write of each file torn at a random byte), remount,
restart the broker and check everything the clients were told is durable:

  * idempotent producer (acks=all): every acknowledged (partition, offset, value) is read
    back at that offset with that value, across all cycles so far;
  * consumer-group offsets committed synchronously (OffsetCommit answered): the committed
    offset is at least the acknowledged one;
  * transactions: every transaction whose commit_transaction returned is fully visible to a
    read_committed consumer, no record of an aborted or never-committed transaction is,
    and one whose commit was in flight at the kill is all or nothing.

Then the same run again with `--override arus.acks.all.fsync=false` as a negative control:
there acknowledged records are only in the page cache, so the cut must lose some. If the
control detects no loss, the test itself is broken and the run fails.

Workers (producer, offset committer, transactional producer) are subprocesses of this
script (`--worker KIND`) that journal every acknowledgement to a file (the journal is on
the real disk, not on plfs). Exit status 0 only if the main run found no violation and the
control found one.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOPIC = "pl"
TXN_TOPIC = "pltx"
LOG_DIR = "arus/data"  # under the mount point; the broker creates both levels on its first start
RE_TOPIC = "plre"  # deleted and created again every cycle
RET_TOPIC = "plret"
FLUSH_TOPIC = "plflush"  # flush.messages=1: an acks=1 answer comes after the fsync (Kafka)  # small retention.bytes: old segments are deleted during the load
# Broker settings for both runs: retention and compaction work often enough to be cut.
BROKER_OVERRIDES = ["log.retention.check.interval.ms=1000", "log.segment.delete.delay.ms=500",
                    ]
PARTITIONS = 3
GROUP = "pl-offsets"
TXN_ID = "pl-txn"
TXN_RECORDS = 10
VALUE_PAD = 400  # bytes of padding per produced value


def log(msg):
    print("[powerloss %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ----------------------------------------------------------------------------- workers

def journal_open(path):
    return open(path, "a", buffering=1)


def worker_produce(bs, journal, cycle, rate_mb, topic):
    """cycle 0: the long-lived producer of TOPIC, alive across every cut (its retries after a
    restart test idempotence against the recovered producer state); cycle N: a producer of
    the topic created just before cycle N, killed with the broker."""
    from confluent_kafka import Producer

    j = journal_open(journal)
    # cycle -2: acks=1 (not idempotent) into FLUSH_TOPIC, durable through flush.messages=1
    acks1 = cycle == -2
    p = Producer({
        "bootstrap.servers": bs, "enable.idempotence": not acks1, "acks": "1" if acks1 else "all",
        "linger.ms": 2, "batch.num.messages": 200, "queue.buffering.max.messages": 20000,
        "message.timeout.ms": 300000, "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500,
    })

    def cb(err, msg):
        if err is None:
            j.write("%s %d %d %s\n" % (msg.topic(), msg.partition(), msg.offset(), msg.value()[:40].decode()))

    pad = b"x" * VALUE_PAD
    seq = 0
    t0 = time.time()
    per_sec = rate_mb * 1e6 / (40 + VALUE_PAD)
    while True:
        ahead = seq / per_sec - (time.time() - t0)
        if ahead > 0.005:
            p.poll(ahead)
            continue
        if ahead < -1.0:  # the broker was down: no burst to catch up
            t0 = time.time() - seq / per_sec
        v = b"c%d-%d|" % (cycle, seq)
        v = v + b" " * (40 - len(v)) + pad
        try:
            t = topic
            if t == "fresh":  # a per-cycle producer: this cycle's new topic and the re-created one
                t = new_topic(cycle) if seq % 2 else RE_TOPIC
            p.produce(t, value=v, key=b"%d" % seq, on_delivery=cb)
            seq += 1
        except BufferError:
            p.poll(0.01)
            continue
        p.poll(0)


def worker_offsets(bs, journal, cycle):
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    j = journal_open(journal)
    c = Consumer({"bootstrap.servers": bs, "group.id": GROUP, "enable.auto.commit": False,
                  "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500})
    i = 0
    while True:
        i += 1
        off = cycle * 1_000_000 + i
        tps = [TopicPartition(TOPIC, p, off) for p in range(PARTITIONS)]
        try:
            res = c.commit(offsets=tps, asynchronous=False)
            if all(tp.error is None for tp in res):
                j.write("%d\n" % off)
        except KafkaException:
            time.sleep(0.05)
        time.sleep(0.02)


def worker_txn(bs, journal, cycle):
    from confluent_kafka import KafkaException, Producer

    j = journal_open(journal)
    p = Producer({"bootstrap.servers": bs, "transactional.id": TXN_ID, "transaction.timeout.ms": 60000,
                  "linger.ms": 2, "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500})
    for attempt in range(6):
        try:
            p.init_transactions(30)
            break
        except KafkaException as e:
            # e.g. the coordinator still loading right after a restart
            if attempt == 5 or not (e.args and e.args[0].retriable()):
                raise
            time.sleep(1)
    n = 0
    while True:
        n += 1
        t = "t%d-%d" % (cycle, n)
        p.begin_transaction()
        j.write("begin %s\n" % t)
        for k in range(TXN_RECORDS):
            p.produce(TXN_TOPIC, value=("%s-%d" % (t, k)).encode(), partition=k % PARTITIONS)
        p.flush(30)
        if n % 5 == 0:
            j.write("abort %s\n" % t)
            p.abort_transaction(30)
            j.write("aborted %s\n" % t)
            continue
        j.write("commit %s\n" % t)
        try:
            p.commit_transaction(30)
        except KafkaException:
            # Broker gone: the outcome is unknown (all or nothing); stop here.
            time.sleep(3600)
        j.write("committed %s\n" % t)


def new_topic(cycle):
    return "plnew-%d" % cycle


WORKERS = {"produce": worker_produce, "offsets": worker_offsets, "txn": worker_txn}


# ----------------------------------------------------------------------------- harness

class Failure(Exception):
    pass


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise Failure("timed out after %.0fs waiting for %s" % (timeout, what))


def read_lines(path):
    """Complete lines only (a worker killed mid-write leaves a partial last line)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        data = f.read()
    lines = data.split("\n")
    return [l for l in lines[:-1] if l]


class Run:
    def __init__(self, args, label, overrides, cycles, work):
        self.args = args
        self.label = label
        self.overrides = overrides
        self.cycles = cycles
        self.work = work
        self.backing = os.path.join(work, "backing")
        self.mnt = os.path.join(work, "mnt")
        os.makedirs(self.backing)
        os.makedirs(self.mnt)
        self.fs = None
        self.broker = None
        self.workers = []
        self.rng = random.Random(args.seed * 7 + len(label))
        self.acked = {}  # (p, off) -> value prefix
        self.offsets_acked = 0
        self.txn_committed = set()
        self.txn_aborted = set()
        self.txn_uncertain = set()  # commit called, not confirmed
        self.txn_open = set()  # begun, commit never called
        self.violations = []
        self.cut_reports = []
        self.bs = None
        self.port = None
        self.producers = []  # the long-lived producer workers
        self.topics = []
        self.hw_history = []
        self.verified_records = 0
        self.deleted = set()  # topics whose DeleteTopics was acknowledged
        self.tuned = False
        self.mounts = 0
        self.bytes_produced = 0
        self.workload_seconds = 0.0

    # ---- filesystem
    def mount(self):
        self.mounts += 1
        report = os.path.join(self.work, "cut-%d.json" % self.mounts)
        cmd = [sys.executable, os.path.join(HERE, "plfs.py"), self.backing, self.mnt,
               "--on-unmount", "cut", "--seed", str(self.rng.randrange(1 << 30)), "--report", report]
        if not self.args.no_tear:
            cmd.append("--tear")
        if not self.args.no_partial:
            cmd.append("--partial")
        self.fs = subprocess.Popen(cmd, stdout=open(os.path.join(self.work, "plfs.log"), "a"),
                                   stderr=subprocess.STDOUT)
        self.fs.report = report
        wait_for(lambda: os.path.ismount(self.mnt) or self.fs.poll() is not None, 20, "plfs mount")
        if not os.path.ismount(self.mnt):
            raise Failure("plfs exited with %s (see %s/plfs.log)" % (self.fs.returncode, self.work))

    def unmount_cut(self):
        """The power cut: unmount; plfs rolls back everything not durable and exits."""
        for _ in range(100):
            if subprocess.run(["fusermount", "-u", self.mnt], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["fusermount", "-uz", self.mnt], capture_output=True)
        try:
            self.fs.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise Failure("plfs did not finish the cut within 60s")
        fs, self.fs = self.fs, None
        if fs.returncode != 0 or not os.path.exists(fs.report):
            raise Failure("plfs failed (exit %s), see %s/plfs.log" % (fs.returncode, self.work))
        with open(fs.report) as f:
            rep = json.load(f)
        self.cut_reports.append(rep)
        return rep

    # ---- broker
    def start_broker(self, wait=True):
        ready = os.path.join(self.work, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        # One port for the whole run: the long-lived producer reconnects to the restarted broker.
        cmd = [self.args.broker, "serve", "--listeners", "PLAINTEXT://127.0.0.1:%d" % self.port, "--ready-file", ready,
               "--log-dirs", os.path.join(self.mnt, LOG_DIR)]
        for o in BROKER_OVERRIDES + self.overrides:
            cmd += ["--override", o]
        self.broker = subprocess.Popen(cmd, stdout=open(os.path.join(self.work, "broker.log"), "a"),
                                       stderr=subprocess.STDOUT)
        if not wait:
            return
        try:
            wait_for(lambda: os.path.exists(ready) and open(ready).read().strip() != "" or self.broker.poll() is not None,
                     120, "broker ready file")
        except Failure:
            raise Failure("broker not ready within 120s (see %s/broker.log)" % self.work)
        if self.broker.poll() is not None:
            raise Failure("broker exited with %s at start (see %s/broker.log)" % (self.broker.returncode, self.work))
        self.bs = open(ready).read().strip()

    def kill_broker(self, clean=False):
        if self.broker and self.broker.poll() is None:
            if clean:
                self.broker.send_signal(signal.SIGTERM)
                try:
                    self.broker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    raise Failure("broker did not shut down within 60s of SIGTERM")
            else:
                self.broker.send_signal(signal.SIGKILL)
                self.broker.wait(timeout=30)
        self.broker = None

    # ---- workers
    def start_worker(self, kind, cycle):
        jpath = os.path.join(self.work, "journal-%s-%d" % (kind, cycle))
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", kind,
                              "--bootstrap", self.bs, "--journal", jpath, "--cycle", str(cycle),
                              "--rate-mb", str(self.args.rate_mb)],
                             stdout=open(os.path.join(self.work, "workers.log"), "a"), stderr=subprocess.STDOUT)
        p.kind, p.journal = kind, jpath
        return p

    def start_workers(self, cycle):
        for kind in ("produce", "offsets", "txn"):
            self.workers.append(self.start_worker(kind, cycle))

    def stop_workers(self):
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        ws, self.workers = self.workers, []
        return ws

    def collect(self, ws):
        for p in ws:
            lines = read_lines(p.journal)
            if p.kind == "produce":
                for l in lines:
                    topic, part, off, val = l.split(" ", 3)
                    self.acked[(topic, int(part), int(off))] = val.split("|", 1)[0]
                self.bytes_produced += len(lines) * (40 + VALUE_PAD)
                p.counted = len(lines)
            elif p.kind == "offsets":
                if lines:
                    self.offsets_acked = max(self.offsets_acked, int(lines[-1]))
            else:
                state = {}
                for l in lines:
                    what, t = l.split(" ")
                    state[t] = what
                for t, what in state.items():
                    # "abort" (abort called, not confirmed) was never committed: like "begin".
                    {"begin": self.txn_open, "abort": self.txn_open, "aborted": self.txn_aborted,
                     "commit": self.txn_uncertain, "committed": self.txn_committed}[what].add(t)

    # ---- verification
    def create_topics(self, names):
        from confluent_kafka.admin import AdminClient, NewTopic

        a = AdminClient({"bootstrap.servers": self.bs})

        def cfg(t):
            c = {"segment.bytes": str(self.args.segment_bytes)}
            if t == RET_TOPIC:
                c = {"segment.bytes": str(1 << 20), "retention.bytes": str(3 << 20)}
            if t == FLUSH_TOPIC:
                c["flush.messages"] = "1"
            return c

        fs = a.create_topics([NewTopic(t, PARTITIONS, 1, config=cfg(t)) for t in names],
                             operation_timeout=30, request_timeout=30)
        for t, f in fs.items():
            f.result(30)
        self.topics += [t for t in names if t != TXN_TOPIC]

    def delete_topics(self, names):
        from confluent_kafka.admin import AdminClient

        a = AdminClient({"bootstrap.servers": self.bs})
        for t, f in a.delete_topics(names, operation_timeout=30, request_timeout=30).items():
            f.result(30)
        self.deleted |= set(names)
        self.topics = [t for t in self.topics if t not in names]
        self.acked = {k: v for k, v in self.acked.items() if k[0] not in names}

    def tune_internal_topics(self):
        """Small segments and an eager cleaner on __consumer_offsets / __transaction_state, so
        that compaction (swap files, renames, deletes) runs during the load and gets cut."""
        from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

        a = AdminClient({"bootstrap.servers": self.bs})
        cfg = {"segment.ms": "2000", "min.cleanable.dirty.ratio": "0.01"}
        for t in ("__consumer_offsets", "__transaction_state"):
            res = ConfigResource("topic", t, incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in cfg.items()])
            try:
                for f in a.incremental_alter_configs([res], request_timeout=30).values():
                    f.result(30)
            except Exception as e:  # noqa: BLE001 - tuning only
                log("  could not tune %s: %s" % (t, e))

    def verify(self, cycle, full):
        from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING

        found = []
        # 1. acknowledged records. The long-lived producer's journal is read before the high
        # watermarks are: everything it lists was acknowledged below them.
        for p in self.producers:
            self.bytes_produced -= getattr(p, "counted", 0) * (40 + VALUE_PAD)
        self.collect(self.producers)
        c = Consumer({"bootstrap.servers": self.bs, "group.id": "pl-verify", "enable.auto.commit": False,
                      "fetch.max.bytes": 16 << 20, "max.partition.fetch.bytes": 8 << 20})
        hw = {}
        low = {}
        tps = [(t, p) for t in self.topics for p in range(PARTITIONS)]
        for t, p in tps:
            try:
                lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=30, cached=False)
            except Exception as e:  # noqa: BLE001 - a lost partition is a finding, not a crash
                found.append("partition %s-%d unreadable after the cut: %s" % (t, p, e))
                lo = hi = 0
            hw[(t, p)] = hi
            low[(t, p)] = lo if t == RET_TOPIC else 0  # retention may delete acknowledged records
        # Records below the high watermark of two verifications ago were read back twice
        # already: between full verifications only the tail is read again (every
        # acknowledged offset must still be below the high watermark, see below).
        start = dict(low)
        if not full and len(self.hw_history) >= 2:
            for tp, h in self.hw_history[-2].items():
                if tp in start:
                    start[tp] = max(start[tp], h)
        self.hw_history.append(hw)
        c.assign([TopicPartition(t, p, start[(t, p)] if start[(t, p)] > 0 else OFFSET_BEGINNING) for t, p in tps])
        got = {}
        seen = {}  # value -> copies in TOPIC (every value is produced once: a copy more is a duplicate)
        done = {tp for tp in tps if hw[tp] <= start[tp]}
        end = time.time() + 120
        while len(done) < len(tps) and time.time() < end:
            for m in c.consume(1000, 1.0):
                if m.error():
                    continue
                v = m.value()[:40].decode().split("|", 1)[0]
                got[(m.topic(), m.partition(), m.offset())] = v
                if m.topic() in (TOPIC, RET_TOPIC):
                    seen[v] = seen.get(v, 0) + 1
                if m.offset() + 1 >= hw[(m.topic(), m.partition())]:
                    done.add((m.topic(), m.partition()))
        c.close()
        if len(done) < len(tps):
            found.append("could not read to the high watermarks %s within 120s"
                         % {"%s-%d" % tp: hw[tp] for tp in tps if tp not in done})
        missing = [(k, v) for k, v in self.acked.items()
                   if k not in got and (k[2] >= start[(k[0], k[1])] or k[2] >= hw[(k[0], k[1])])
                   and k[2] >= low[(k[0], k[1])]]
        wrong = [(k, v, got[k]) for k, v in self.acked.items() if k in got and got[k] != v]
        if missing:
            found.append("%d acknowledged records missing (high watermarks %s), e.g. %s"
                         % (len(missing), {"%s-%d" % tp: h for tp, h in hw.items()}, sorted(missing)[:3]))
        if wrong:
            found.append("%d acknowledged records with another value at their offset, e.g. %s"
                         % (len(wrong), sorted(wrong)[:3]))
        stale = sorted(v for (t, _, _), v in got.items() if t == RE_TOPIC and not v.startswith("c%d-" % cycle))
        if stale:
            found.append("%d records of deleted incarnations of %s visible after re-creating it, e.g. %s"
                         % (len(stale), RE_TOPIC, stale[:3]))
        self.lost_records = len(missing) + len(wrong)
        self.verified_records += len(got)
        dups = sorted(v for v, n in seen.items() if n > 1)
        if dups:
            found.append("%d values of the idempotent producer written more than once, e.g. %s" % (len(dups), dups[:3]))

        # 2. topics and configs: deleted ones stay deleted, altered configs stay altered
        from confluent_kafka.admin import AdminClient, ConfigResource

        a = AdminClient({"bootstrap.servers": self.bs})
        present = set(a.list_topics(timeout=30).topics)
        back = sorted((self.deleted - set(self.topics)) & present)
        if back:
            found.append("deleted topics came back: %s" % back)
        if self.tuned:
            res = ConfigResource("topic", "__consumer_offsets")
            cfg = list(a.describe_configs([res], request_timeout=30).values())[0].result(30)
            if cfg["segment.ms"].value != "2000":
                found.append("__consumer_offsets segment.ms is %s after the cut, altered to 2000"
                             % cfg["segment.ms"].value)

        # 3. committed offsets
        c = Consumer({"bootstrap.servers": self.bs, "group.id": GROUP, "enable.auto.commit": False})
        committed = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=30)
        c.close()
        for tp in committed:
            if self.offsets_acked > 0 and tp.offset < self.offsets_acked:
                found.append("committed offset of %s-%d is %d < acknowledged %d"
                             % (TOPIC, tp.partition, tp.offset, self.offsets_acked))

        # 4. transactions: first let init_transactions finish/abort what the crash left open
        p = Producer({"bootstrap.servers": self.bs, "transactional.id": TXN_ID})
        p.init_transactions(60)
        del p
        c = Consumer({"bootstrap.servers": self.bs, "group.id": "pl-verify-txn", "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
        hw = {}
        for q in range(PARTITIONS):
            try:
                lo, hi = c.get_watermark_offsets(TopicPartition(TXN_TOPIC, q), timeout=30, cached=False)
            except Exception as e:  # noqa: BLE001 - a lost partition is a finding, not a crash
                found.append("partition %s-%d unreadable after the cut: %s" % (TXN_TOPIC, q, e))
                hi = 0
            hw[q] = hi
        c.assign([TopicPartition(TXN_TOPIC, q, OFFSET_BEGINNING) for q in range(PARTITIONS)])
        vis = {}
        end = time.time() + 60
        while time.time() < end:
            for m in c.consume(1000, 0.5):
                if m.error():
                    continue
                t, k = m.value().decode().rsplit("-", 1)
                vis.setdefault(t, []).append(int(k))
            pos = c.position([TopicPartition(TXN_TOPIC, q) for q in range(PARTITIONS)])
            if all(tp.offset >= hw[tp.partition] or hw[tp.partition] == 0 for tp in pos):
                break
        else:
            found.append("read_committed consumer did not reach the high watermarks %s of %s within 60s "
                         "(a transaction left hanging?)" % (hw, TXN_TOPIC))
        c.close()
        self.lost_txns = 0
        for t in self.txn_committed:
            if sorted(vis.get(t, [])) != list(range(TXN_RECORDS)):
                self.lost_txns += 1
                found.append("committed transaction %s not fully visible: %s" % (t, sorted(vis.get(t, []))))
        for t in self.txn_aborted | self.txn_open:
            if t in vis:
                found.append("aborted/unfinished transaction %s visible: %s" % (t, sorted(vis[t])))
        for t in self.txn_uncertain:
            if t in vis and sorted(vis[t]) != list(range(TXN_RECORDS)):
                found.append("transaction %s (commit in flight at the kill) partly visible: %s" % (t, sorted(vis[t])))
        for t, ks in vis.items():
            if sorted(ks) != sorted(set(ks)):
                found.append("transaction %s has duplicate records: %s" % (t, sorted(ks)))
        return found

    # ---- the run
    def run(self):
        t0 = time.time()
        self.port = free_port()
        self.mount()
        self.start_broker()
        self.create_topics([TOPIC, TXN_TOPIC, RET_TOPIC, RE_TOPIC, FLUSH_TOPIC])
        self.producers = [self.start_worker("produce", 0), self.start_worker("produce", -1),
                          self.start_worker("produce", -2)]
        for cycle in range(1, self.cycles + 1):
            if time.time() - t0 > self.args.deadline:
                raise Failure("run exceeded --deadline %ds after %d cycles" % (self.args.deadline, cycle - 1))
            if cycle > 1:
                self.delete_topics([new_topic(cycle - 1), RE_TOPIC])
                self.create_topics([new_topic(cycle), RE_TOPIC])
            else:
                self.create_topics([new_topic(cycle)])
            self.start_workers(cycle)
            if self.label == "main" and self.rng.random() < 0.2:
                dur = self.rng.uniform(0.0, 0.3)  # right after the topic was created
            else:
                dur = self.rng.uniform(self.args.min_run, self.args.max_run)
            ts = time.time()
            end = ts + dur
            while time.time() < end:
                time.sleep(0.05)
                for w in self.workers + self.producers:
                    if w.poll() is not None:
                        raise Failure("worker %s exited early with %s (see %s/workers.log)"
                                      % (w.kind, w.returncode, self.work))
            # One cycle in five: a clean shutdown (SIGTERM), then the power cut before the
            # page cache was written back; the restart trusts the clean-shutdown marker.
            clean = self.label == "main" and self.rng.random() < 0.2
            self.kill_broker(clean=clean)
            if clean:
                log("%s cycle %d: clean shutdown (SIGTERM) before the cut" % (self.label, cycle))
            time.sleep(1.0)  # acknowledgements already received reach the journals
            self.collect(self.stop_workers())
            self.workload_seconds += time.time() - ts
            rep = self.unmount_cut()
            self.mount()
            if self.label == "main" and self.rng.random() < 0.25:
                # A second cut while the restarted broker is still recovering (or just up).
                self.start_broker(wait=False)
                time.sleep(self.rng.uniform(0.1, 1.5))
                self.kill_broker()
                r2 = self.unmount_cut()
                log("%s cycle %d: second cut during the restart dropped %d bytes in %d files, reversed %d dir ops"
                    % (self.label, cycle, r2["bytes_dropped"], r2["files_rolled_back"], len(r2["namespace_reversed"])))
                self.mount()
            self.start_broker()
            full = cycle == self.cycles or cycle % self.args.full_verify_every == 0
            found = self.verify(cycle, full)
            if cycle == 1:
                self.tune_internal_topics()
                self.tuned = True
            log("%s cycle %d/%d: %.1fs of load; acked so far: %d records, offsets up to %d, %d txns "
                "committed (%d aborted, %d in flight); cut dropped %d bytes in %d files (%d torn, %d partly kept), "
                "reversed %d dir ops (%d kept); %s"
                % (self.label, cycle, self.cycles, dur, len(self.acked), self.offsets_acked,
                   len(self.txn_committed), len(self.txn_aborted), len(self.txn_uncertain),
                   rep["bytes_dropped"], rep["files_rolled_back"], rep["torn_files"], rep.get("files_partly_kept", 0),
                   len(rep["namespace_reversed"]), rep.get("namespace_kept", 0),
                   "OK" if not found else "%d VIOLATIONS" % len(found)))
            for f in rep.get("namespace_errors", []):
                log("  plfs could not reverse: %s" % f)
            for f in found[:10]:
                log("  VIOLATION: %s" % f)
            self.violations += ["cycle %d: %s" % (cycle, f) for f in found]
            if found and self.args.stop_on_violation:
                break
        for p in self.producers:
            p.kill()
            p.wait(timeout=30)
        self.kill_broker()
        self.unmount_cut()
        self.elapsed = time.time() - t0
        self.cycles_done = cycle

    def cleanup(self):
        for p in self.workers + self.producers:
            if p.poll() is None:
                p.kill()
        self.kill_broker()
        if self.fs is not None:
            subprocess.run(["fusermount", "-uz", self.mnt], capture_output=True)
            try:
                self.fs.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.fs.kill()
            self.fs = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(REPO, "target/release/arus"))
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--control-cycles", type=int, default=3, help="at most; stops at the first loss")
    ap.add_argument("--no-control", action="store_true")
    ap.add_argument("--min-run", type=float, default=1.0, help="seconds of load before a cut, at least")
    ap.add_argument("--max-run", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-tear", action="store_true")
    ap.add_argument("--no-partial", action="store_true",
                    help="every cut drops all unsynced state (no surviving prefixes)")
    ap.add_argument("--full-verify-every", type=int, default=10,
                    help="read every topic from the start after every N-th cut (and the last); "
                         "otherwise from the high watermark two cuts back")
    ap.add_argument("--deadline", type=int, default=900, help="seconds per run (main, control) before giving up")
    ap.add_argument("--stop-on-violation", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--worker", choices=sorted(WORKERS))
    ap.add_argument("--bootstrap")
    ap.add_argument("--journal")
    ap.add_argument("--cycle", type=int)
    ap.add_argument("--rate-mb", type=float, default=4.0, help="produce rate, MB/s (default 4)")
    ap.add_argument("--segment-bytes", type=int, default=1 << 20,
                    help="segment.bytes of the test topics (small: segments roll during the load)")
    args = ap.parse_args()
    if args.worker:
        if args.worker == "produce":
            topic = {0: TOPIC, -1: RET_TOPIC, -2: FLUSH_TOPIC}.get(args.cycle) or "fresh"
            rate = {0: args.rate_mb, -1: args.rate_mb / 4, -2: args.rate_mb / 10}.get(args.cycle, args.rate_mb / 10)
            worker_produce(args.bootstrap, args.journal, args.cycle, rate, topic)
        else:
            WORKERS[args.worker](args.bootstrap, args.journal, args.cycle)
        return 0
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    args.broker = os.path.abspath(args.broker)
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount") is None:
        log("needs /dev/fuse and fusermount (bash faults/powerloss/install.sh)")
        return 2
    log("seed %d, broker %s" % (args.seed, args.broker))
    # First the filesystem's own model (a broken plfs would make every result meaningless).
    st = subprocess.run([sys.executable, os.path.join(HERE, "selftest.py")], capture_output=True, text=True)
    print(st.stdout, end="", flush=True)
    if st.returncode != 0:
        log("FAIL: plfs selftest")
        return 1

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.time()
    results = []
    plan = [("main", [], args.cycles)]
    if not args.no_control:
        plan.append(("control(arus.acks.all.fsync=false)", ["arus.acks.all.fsync=false"], args.control_cycles))
    ok = True
    for label, overrides, cycles in plan:
        work = tempfile.mkdtemp(prefix="arus-powerloss-")
        r = Run(args, label, overrides, cycles, work)
        if label != "main":
            args.stop_on_violation = True
        error = None
        try:
            r.run()
        except Failure as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001 - report anything, clean up below
            error = "%s: %s" % (type(e).__name__, e)
        except KeyboardInterrupt as e:
            r.cleanup()
            log("interrupted (%s); cleaned up, work dir %s kept" % (e, work))
            return 130
        finally:
            r.cleanup()
        results.append((label, r, error))
        if error:
            log("%s: ERROR %s (work dir %s kept)" % (label, error, work))
        elif not args.keep and (label != "main" or not r.violations):
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("%s: work dir kept: %s" % (label, work))

    log("==== summary (%.0fs, seed %d)" % (time.time() - t0, args.seed))
    for label, r, error in results:
        mb = r.bytes_produced / 1e6
        line = ("%s: %s cycles in %.0fs, %d acknowledged records (%.1f MB) checked after every cut "
                "(%d record reads), "
                "offsets committed up to %d, %d committed / %d aborted transactions; %d violations"
                % (label, getattr(r, "cycles_done", "?"), getattr(r, "elapsed", 0), len(r.acked), mb,
                   r.verified_records,
                   r.offsets_acked, len(r.txn_committed), len(r.txn_aborted), len(r.violations)))
        log(line)
        if label == "main":
            if error or r.violations:
                ok = False
                log("FAIL: main run: %s" % (error or "%d violations" % len(r.violations)))
        else:
            if error:
                ok = False
                log("FAIL: control run: %s" % error)
            elif not r.violations:
                ok = False
                log("FAIL: the control run (no fsync before acks=all) lost nothing: the test cannot detect loss")
            else:
                log("control detected loss as it must: %s" % r.violations[0])
    log("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
