#!/usr/bin/env python3
"""Transactions across broker crashes: SIGKILL the broker mid-transaction, restart it, check.

    compat/.venv/bin/python compat/txn_crash.py [--broker PATH] [--kills 3]

Starts the broker (`<broker> serve --log-dirs D --listeners PLAINTEXT://127.0.0.1:<port>
--ready-file F`, a fixed free port so a restart keeps the address), creates a
3-partition topic and runs a transactional confluent-kafka producer in a
subprocess (this script with --producer). The producer loops: begin, produce K
sequenced records ("<attempt>-<j>", record j to partition j % 3), commit (every
7th attempt: abort instead); it
appends to a journal "commit N" before calling commit_transaction and
"committed N" only after it returned. Errors are handled as librdkafka documents:
retriable -> call commit/abort again, txn_requires_abort -> abort_transaction,
fatal (e.g. fenced after the broker timed the transaction out) -> a new producer
with the same transactional.id and init_transactions (which completes or aborts
what the old one left). Meanwhile this script SIGKILLs the broker at random
moments (the producer is almost always inside a transaction), restarts it on the
same data dir and port, and waits for the producer to commit again.

At the end a read_committed consumer checks:
  - every attempt journalled "committed" is present entirely (K records), once, in order;
  - no record of an attempt that never reached commit is visible;
  - an attempt whose commit call failed (the broker died around it) is all or nothing;
  - per partition, records come in attempt/sequence order, no duplicates;
  - the last stable offset reaches the high watermark of every partition (no
    hanging transaction) within the transaction timeout + 10 s.
Prints the figures; exit status 1 on any violation, 2 (n/a) if the broker does not
advertise FindCoordinator, InitProducerId, AddPartitionsToTxn and EndTxn.

The reference Kafka (compat/reference/kafka-broker.sh) `exec`s the JVM, so
SIGKILL of the wrapper's pid kills Kafka itself, and a restart on the same
--log-dirs reuses the data and the controller port.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, COMPAT)

TXN_TIMEOUT_MS = 10000


# ----------------------------------------------------------------- producer subprocess

def producer_main(bs, topic, tid, journal_path, stop_path, k, partitions):
    from confluent_kafka import KafkaException, Producer

    journal = open(journal_path, "a", buffering=1)

    def log(line):
        journal.write(line + "\n")
        journal.flush()
        os.fsync(journal.fileno())

    def new_producer():
        while True:
            p = Producer({"bootstrap.servers": bs, "transactional.id": tid, "transaction.timeout.ms": TXN_TIMEOUT_MS,
                          "linger.ms": 5, "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000,
                          "socket.timeout.ms": 5000})
            try:
                p.init_transactions(30)
                log("init")
                return p
            except KafkaException as e:
                log("init-error %s" % e.args[0].name())
                time.sleep(0.5)

    def err_of(e):
        return e.args[0] if e.args else None

    p = new_producer()
    attempt = 0
    while not os.path.exists(stop_path):
        attempt += 1
        n = attempt
        stage = "produce"
        try:
            p.begin_transaction()
            log("begin %d" % n)
            for j in range(k):
                while True:
                    try:
                        p.produce(topic, key=b"%d" % j, value=b"%d-%d" % (n, j), partition=j % partitions)
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
                if j % 10 == 9:
                    time.sleep(0.01)  # keep transactions open for a while: the kill lands inside one
            # Records in the log, then a pause: a kill also lands between produce and commit.
            p.flush(30)
            time.sleep(random.uniform(0, 0.3))
            if n % 7 == 0:
                # A deliberate abort now and then: its records are in the log and must never be visible.
                stage = "abort"
                p.abort_transaction(30)
                log("aborted %d" % n)
                continue
            stage = "commit"
            log("commit %d" % n)
            while True:
                try:
                    p.commit_transaction(30)
                    break
                except KafkaException as e:
                    if err_of(e) is not None and err_of(e).retriable():
                        log("commit-retry %d %s" % (n, err_of(e).name()))
                        continue
                    raise
            log("committed %d" % n)
        except KafkaException as e:
            err = err_of(e)
            log("error %d %s %s fatal=%s abortable=%s" % (n, stage, err.name() if err else e, err and err.fatal(),
                                                           err and err.txn_requires_abort()))
            if err is not None and err.txn_requires_abort():
                try:
                    while True:
                        try:
                            p.abort_transaction(30)
                            log("aborted %d" % n)
                            break
                        except KafkaException as e2:
                            if err_of(e2) is not None and err_of(e2).retriable():
                                continue
                            raise
                    continue
                except KafkaException as e2:
                    log("abort-error %d %s" % (n, err_of(e2).name() if err_of(e2) else e2))
            # Fatal (or abort impossible): a new instance; its InitProducerId ends what this one left open.
            try:
                p.flush(0)
            except Exception:  # noqa: BLE001
                pass
            p = new_producer()
    log("stopped")
    os._exit(0)


# ----------------------------------------------------------------- checks

def read_journal(path):
    committed, commit_called, begun = set(), set(), set()
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 2 and w[1].isdigit():
                n = int(w[1])
                if w[0] == "begin":
                    begun.add(n)
                elif w[0] == "commit":
                    commit_called.add(n)
                elif w[0] == "committed":
                    committed.add(n)
    return committed, commit_called, begun


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=None, help="broker binary (default target/release/arus)")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--records-per-txn", type=int, default=30)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--isolation", default="read_committed",
                    help="self-test of the checker: read_uncommitted should report aborted records as visible")
    ap.add_argument("--producer", nargs=7, metavar=("BS", "TOPIC", "TID", "JOURNAL", "STOP", "K", "P"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.producer:
        bs, topic, tid, journal, stop, k, parts = args.producer
        producer_main(bs, topic, tid, journal, stop, int(k), int(parts))
        return

    from confluent_kafka import Consumer, IsolationLevel, KafkaError, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
    from idempotence_proxy import Broker, default_broker, free_port, missing_apis, tail

    binary = os.path.abspath(args.broker or default_broker())
    work = tempfile.mkdtemp(prefix="arus-txn-crash-")
    log_path = os.path.join(work, "broker.log")
    journal = os.path.join(work, "journal.txt")
    stop = os.path.join(work, "stop")
    port = free_port()
    broker = Broker(binary, work, log_path, ["transaction.abort.timed.out.transaction.cleanup.interval.ms=1000"])
    violations = []
    figures = {}
    child = None
    k, parts = args.records_per_txn, 3

    def wait_committed(more, timeout):
        base = len(read_journal(journal)[0])
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(read_journal(journal)[0]) >= base + more:
                return True
            if child.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    try:
        broker.start(port)
        bs = "127.0.0.1:%d" % port
        missing = missing_apis(bs, [10, 22, 24, 26])
        if missing:
            print("[crash] n/a: the broker does not advertise %s" % ", ".join(missing), flush=True)
            broker.stop()
            shutil.rmtree(work, ignore_errors=True)
            os._exit(2)
        print("[crash] broker %s at %s (data %s)" % (binary, bs, work), flush=True)
        topic = "txn-crash-%d" % int(time.time())
        a = AdminClient({"bootstrap.servers": bs})
        a.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=1)])[topic].result(30)
        open(journal, "w").close()
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--producer", bs, topic, "txn-crash-producer",
                                  journal, stop, str(k), str(parts)],
                                 stdout=open(os.path.join(work, "producer.log"), "w"), stderr=subprocess.STDOUT)
        if not wait_committed(5, 60):
            raise RuntimeError("producer did not commit 5 transactions at the start (see %s)" % journal)
        restarts = []
        for i in range(args.kills):
            time.sleep(random.uniform(0.5, 2.0))
            before = read_journal(journal)
            broker.kill9()
            t_kill = time.time()
            print("[crash] kill %d: SIGKILLed the broker after %d committed / %d begun transactions"
                  % (i + 1, len(before[0]), len(before[2])), flush=True)
            time.sleep(random.uniform(0.2, 1.5))
            broker.start(port)
            restarts.append(round(time.time() - t_kill, 1))
            if not wait_committed(3, 90):
                raise RuntimeError("producer committed nothing within 90s after restart %d (journal tail: %s)"
                                   % (i + 1, open(journal).read()[-600:]))
        open(stop, "w").close()
        child.wait(120)
        committed, commit_called, begun = read_journal(journal)
        ambiguous = commit_called - committed
        never = begun - commit_called
        with open(journal) as f:
            jtext = f.read()
        figures.update(kills=args.kills, restart_s=restarts, attempts=len(begun), committed=len(committed),
                       commit_failed=len(ambiguous), never_committed=len(never),
                       aborted=jtext.count("\naborted "), reinits=jtext.splitlines().count("init") - 1)

        # LSO reaches the end of every partition: no hanging transaction.
        tps = [TopicPartition(topic, pp) for pp in range(parts)]

        def offsets(iso):
            fs = a.list_offsets({tp: OffsetSpec.latest() for tp in tps}, isolation_level=iso, request_timeout=15)
            return {tp.partition: f.result(20).offset for tp, f in fs.items()}

        deadline = time.time() + TXN_TIMEOUT_MS / 1000 + 10
        while True:
            high, lso = offsets(IsolationLevel.READ_UNCOMMITTED), offsets(IsolationLevel.READ_COMMITTED)
            if lso == high or time.time() > deadline:
                break
            time.sleep(0.5)
        figures.update(high_watermarks=high, lso=lso)
        if lso != high:
            violations.append("last stable offsets %s never reached the high watermarks %s (hanging transaction)" % (lso, high))

        c = Consumer({"bootstrap.servers": bs, "group.id": "txn-crash-verify", "isolation.level": args.isolation,
                      "enable.auto.commit": False, "enable.partition.eof": True})
        c.assign([TopicPartition(topic, pp, 0) for pp in range(parts)])
        got = {pp: [] for pp in range(parts)}
        eof = set()
        deadline = time.time() + 60
        while len(eof) < parts and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= (lso if args.isolation == "read_committed" else high)[m.partition()]:
                        eof.add(m.partition())
                    continue
                violations.append("consume error: %s" % m.error())
                break
            n, j = (int(x) for x in m.value().split(b"-"))
            got[m.partition()].append((n, j))
        c.close()
        if len(eof) < parts:
            violations.append("read_committed did not reach the LSO of partitions %s" % sorted(set(range(parts)) - eof))
        per_attempt = {}
        dups = disorder = 0
        for pp, recs in got.items():
            last = (-1, -1)
            seen = set()
            for nj in recs:
                if nj in seen:
                    dups += 1
                seen.add(nj)
                if nj <= last:
                    disorder += 1
                last = max(last, nj)
                if nj[1] % parts != pp:
                    violations.append("record %d-%d in partition %d" % (nj[0], nj[1], pp))
                per_attempt.setdefault(nj[0], set()).add(nj[1])
        full = set(range(k))
        missing = [n for n in committed if per_attempt.get(n) != full]
        leaked = [n for n in per_attempt if n in never or n not in begun]
        partial = [n for n in ambiguous if n in per_attempt and per_attempt[n] != full]
        resolved_committed = [n for n in ambiguous if per_attempt.get(n) == full]
        figures.update(visible_transactions=len(per_attempt), commit_failed_but_visible=len(resolved_committed),
                       duplicates=dups, out_of_order=disorder, records=sum(len(v) for v in got.values()))
        if missing:
            violations.append("%d committed transactions not entirely visible, e.g. %s: %s" % (
                len(missing), missing[0], sorted(per_attempt.get(missing[0], set()))[:10]))
        if leaked:
            violations.append("%d transactions that never reached commit are visible, e.g. %s" % (len(leaked), sorted(leaked)[:5]))
        if partial:
            violations.append("%d transactions partially visible, e.g. %s" % (len(partial), partial[:5]))
        if dups or disorder:
            violations.append("duplicates=%d out_of_order=%d" % (dups, disorder))
        if len(committed) < 5 + 3 * args.kills:
            violations.append("only %d transactions committed" % len(committed))
    except Exception as e:  # noqa: BLE001
        violations.append("%s: %s" % (type(e).__name__, e))
    finally:
        if child is not None and child.poll() is None:
            child.kill()
        broker.stop()
    print("[crash] figures: %s" % ", ".join("%s=%s" % kv for kv in figures.items()), flush=True)
    for v in violations:
        print("VIOLATION: %s" % v, flush=True)
    if violations:
        print("[crash] broker log tail (%s):\n%s" % (log_path, tail(log_path)), flush=True)
        print("[crash] journal and producer log kept in %s" % work, flush=True)
    elif not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print("[crash] %s" % ("FAIL" if violations else "PASS"), flush=True)
    os._exit(1 if violations else 0)


if __name__ == "__main__":
    main()
