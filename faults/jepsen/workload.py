"""The clients of the fault suite, each a thread recording what it did and saw into a History
(checker.py describes the shape): idempotent producers, assign-based and group readers,
transactional read-then-write workers, and the final read of every partition.

Values are unique: "<process>-<sequence>", so a value names one write. Times are time.time().
"""
import random
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition


# librdkafka's own log lines (connection refused while a node is down, ...) go to this
# logging.Logger when set (run.py points it at a file in the run's directory), not to stderr.
CLIENT_LOGGER = None


def _c(conf):
    return dict(conf, logger=CLIENT_LOGGER) if CLIENT_LOGGER is not None else conf


class History:
    """One workload's history (one topic). Appends under a lock: clients run in threads."""

    def __init__(self, topic, partitions):
        self.topic, self.partitions = topic, partitions
        self.lock = threading.Lock()
        self.sends, self.polls, self.txns, self.errors = [], [], [], []
        self.consumers, self.final, self.final_isolation = {}, {}, "read_uncommitted"
        self.final_complete = True

    def add_consumer(self, name, isolation):
        with self.lock:
            self.consumers[name] = {"isolation": isolation}

    def error(self, who, err):
        with self.lock:
            self.errors.append({"who": who, "t": time.time(), "error": str(err)})

    def to_dict(self):
        with self.lock:
            return {"topic": self.topic, "partitions": self.partitions, "sends": list(self.sends),
                    "polls": list(self.polls), "txns": list(self.txns), "consumers": dict(self.consumers),
                    "final": {p: list(r) for p, r in self.final.items()}, "final_isolation": self.final_isolation,
                    "final_complete": self.final_complete, "client_errors": list(self.errors)}


# Errors after which a record is certainly not in the log: it never left the client.
DEFINITE_FAILURES = {KafkaError._PURGE_QUEUE, KafkaError.MSG_SIZE_TOO_LARGE,
                     KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}


def classify(err):
    if err is None:
        return "ok"
    return "fail" if err.code() in DEFINITE_FAILURES else "unknown"


class ProducerWorker(threading.Thread):
    """Sends unique values at `rate` records/s (keys spread over the partitions) and records each
    send's outcome from its delivery report."""

    def __init__(self, name, bootstrap, history, rate, conf, max_in_flight=2000):
        super().__init__(name=name, daemon=True)
        self.proc, self.history, self.rate, self.max_in_flight = name, history, rate, max_in_flight
        self.conf = dict(conf, **{"bootstrap.servers": bootstrap, "client.id": name})
        self.stop_event = threading.Event()
        self.abandon = False
        self.pending = {}

    def _report(self, err, msg, value, t0):
        t1 = time.time()
        self.pending.pop(value, None)
        outcome = classify(err)
        rec = {"process": self.proc, "value": value, "partition": msg.partition() if outcome == "ok" else None,
               "offset": msg.offset() if outcome == "ok" else None, "outcome": outcome, "t0": t0, "t1": t1,
               "error": None if err is None else err.str(), "txn": None}
        with self.history.lock:
            self.history.sends.append(rec)

    def _poll(self, p, timeout):
        """poll, turning a fatal producer error (the idempotent producer gives up) into a new
        producer: its outstanding records are recorded as unknown."""
        try:
            p.poll(timeout)
            return p
        except KafkaException as e:
            self.history.error(self.proc, e)
            if not e.args[0].fatal():
                return p
        self._abandon(p)
        return Producer(_c(self.conf))

    def _abandon(self, p):
        try:
            p.purge()
            p.flush(5)
        except KafkaException as e:
            self.history.error(self.proc, e)
        t = time.time()
        with self.history.lock:
            for value, t0 in list(self.pending.items()):
                self.history.sends.append({"process": self.proc, "value": value, "partition": None, "offset": None,
                                           "outcome": "unknown", "t0": t0, "t1": t, "error": "no delivery report",
                                           "txn": None})
        self.pending.clear()

    def run(self):
        p = Producer(_c(self.conf))
        seq, start = 0, time.time()
        try:
            while not self.stop_event.is_set():
                due = start + seq / self.rate
                now = time.time()
                if now < due or len(p) >= self.max_in_flight:
                    p = self._poll(p, min(0.05, max(0.0, due - now)) or 0.01)
                    continue
                value = "%s-%d" % (self.proc, seq)
                t0 = time.time()
                self.pending[value] = t0
                try:
                    p.produce(self.history.topic, key=str(seq).encode(), value=value.encode(),
                              on_delivery=lambda err, msg, v=value, t=t0: self._report(err, msg, v, t))
                except BufferError:
                    self.pending.pop(value, None)
                    p = self._poll(p, 0.05)
                    continue
                except KafkaException as e:
                    self.pending.pop(value, None)
                    self.history.error(self.proc, e)
                    if e.args[0].fatal():
                        self._abandon(p)
                        p = Producer(_c(self.conf))
                    time.sleep(0.1)
                    continue
                seq += 1
                p = self._poll(p, 0)
            # Every outstanding record gets its delivery report (ok, or the message timeout),
            # unless the run gave up on the cluster (abandon).
            if not self.abandon:
                try:
                    p.flush(float(self.conf.get("message.timeout.ms", 30000)) / 1000.0 + 10)
                except KafkaException as e:
                    self.history.error(self.proc, e)
        finally:
            self._abandon(p)


class ReaderWorker(threading.Thread):
    """Polls the topic and records every record in the order it was seen. `group` None: assigns
    every partition from the log start (no group, never seeks: one epoch); else subscribes in
    that consumer group and starts a new epoch at every assignment or revocation."""

    def __init__(self, name, bootstrap, history, isolation="read_uncommitted", group=None, start=OFFSET_BEGINNING):
        super().__init__(name=name, daemon=True)
        self.cname, self.history, self.group, self.start_offset = name, history, group, start
        self.epoch = 0
        self.conf = {"bootstrap.servers": bootstrap, "client.id": name, "isolation.level": isolation,
                     "group.id": group or "jepsen-assign-" + uuid.uuid4().hex[:8], "auto.offset.reset": "earliest",
                     "enable.auto.commit": group is not None, "auto.commit.interval.ms": 1000,
                     "enable.partition.eof": False, "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000}
        history.add_consumer(name, isolation)
        self.stop_event = threading.Event()

    def _rebalanced(self, _consumer, _partitions):
        self.epoch += 1

    def run(self):
        c = Consumer(_c(self.conf))
        try:
            if self.group is None:
                c.assign([TopicPartition(self.history.topic, p, self.start_offset) for p in range(self.history.partitions)])
            else:
                c.subscribe([self.history.topic], on_assign=self._rebalanced, on_revoke=self._rebalanced,
                            on_lost=self._rebalanced)
            while not self.stop_event.is_set():
                msgs = c.consume(500, 0.2)
                t = time.time()
                batch = []
                for m in msgs:
                    if m.error():
                        self.history.error(self.cname, m.error())
                        continue
                    batch.append([self.cname, self.epoch, m.partition(), m.offset(), m.value().decode(), t])
                if batch:
                    with self.history.lock:
                        self.history.polls.extend(batch)
        finally:
            c.close()


class TxnWorker(threading.Thread):
    """Read-then-write transactions: each reads what its read_committed consumer returns in one
    short poll, then writes 1-3 values to random partitions, then commits (or, one in four,
    aborts). Reads strictly before writes, so a cycle of ww/wr dependencies is an anomaly, not
    an artefact of the workload. A commit or abort that does not return leaves the outcome
    unknown; the producer is then replaced (init_transactions fences the old one)."""

    def __init__(self, name, bootstrap, history, conf, abort_ratio=0.25, seed=None):
        super().__init__(name=name, daemon=True)
        self.proc, self.history, self.bootstrap, self.abort_ratio = name, history, bootstrap, abort_ratio
        self.pconf = dict(conf, **{"bootstrap.servers": bootstrap, "client.id": name, "transactional.id": "jepsen-" + name})
        self.rng = random.Random(seed)
        self.reader = name + "-r"
        history.add_consumer(self.reader, "read_committed")
        self.stop_event = threading.Event()
        self.seq = 0

    def _producer(self):
        while not self.stop_event.is_set():
            p = Producer(_c(self.pconf))
            try:
                p.init_transactions(30)
                return p
            except KafkaException as e:
                self.history.error(self.proc, e)
                time.sleep(0.5)
        return None

    def run(self):
        c = Consumer(_c({"bootstrap.servers": self.bootstrap, "client.id": self.reader, "group.id": "jepsen-txn-" + uuid.uuid4().hex[:6],
                      "isolation.level": "read_committed", "enable.auto.commit": False, "enable.partition.eof": False,
                      "auto.offset.reset": "earliest"}))
        c.assign([TopicPartition(self.history.topic, p, OFFSET_END) for p in range(self.history.partitions)])
        p = self._producer()
        n = 0
        try:
            while p is not None and not self.stop_event.is_set():
                tid = "%s-T%d" % (self.proc, n)
                n += 1
                txn = {"id": tid, "process": self.proc, "outcome": "unknown", "reads": [], "writes": [], "t0": time.time()}
                with self.history.lock:
                    self.history.txns.append(txn)
                sends = []
                try:
                    p.begin_transaction()
                    t = time.time()
                    batch = []
                    for m in c.consume(100, 0.05):
                        if m.error():
                            continue
                        v = m.value().decode()
                        batch.append([self.reader, 0, m.partition(), m.offset(), v, t])
                        txn["reads"].append(v)
                    if batch:
                        with self.history.lock:
                            self.history.polls.extend(batch)
                    for _ in range(self.rng.randint(1, 3)):
                        value = "%s-%d" % (self.proc, self.seq)
                        self.seq += 1
                        txn["writes"].append(value)
                        rec = {"process": self.proc, "value": value, "partition": None, "offset": None, "outcome": "unknown",
                               "t0": time.time(), "t1": None, "error": None, "txn": tid}
                        sends.append(rec)

                        def report(err, msg, rec=rec):
                            rec["t1"] = time.time()
                            rec["outcome"] = classify(err)
                            if err is None:
                                rec["partition"], rec["offset"] = msg.partition(), msg.offset()
                            else:
                                rec["error"] = err.str()
                        p.produce(self.history.topic, value=value.encode(),
                                  partition=self.rng.randrange(self.history.partitions), on_delivery=report)
                    if self.rng.random() < self.abort_ratio:
                        p.abort_transaction(30)
                        txn["outcome"] = "abort"
                    else:
                        self._commit(p, txn)
                except KafkaException as e:
                    err = e.args[0]
                    self.history.error(self.proc, err)
                    if txn["outcome"] == "unknown" and err.txn_requires_abort():
                        try:
                            p.abort_transaction(30)
                            txn["outcome"] = "abort"
                        except KafkaException as e2:
                            self.history.error(self.proc, e2)
                    if txn["outcome"] == "unknown":
                        p.flush(1)
                        p = self._producer()
                finally:
                    txn["t1"] = time.time()
                    with self.history.lock:
                        self.history.sends.extend(sends)
        finally:
            c.close()
            if p is not None:
                p.flush(5)

    def _commit(self, p, txn):
        for attempt in range(3):
            try:
                p.commit_transaction(30)
                txn["outcome"] = "commit"
                return
            except KafkaException as e:
                err = e.args[0]
                if err.retriable() and attempt < 2:
                    self.history.error(self.proc, err)
                    continue
                raise


def final_read(bootstrap, history, isolation="read_uncommitted", timeout=90):
    """Reads every partition from the log start to its end (the high watermark; the last stable
    offset for read_committed), with a fresh consumer per partition, after the faults are healed
    and the writers have stopped. Sets history.final and history.final_complete."""
    history.final_isolation = isolation
    deadline = time.time() + timeout
    for part in range(history.partitions):
        recs = []
        c = Consumer(_c({"bootstrap.servers": bootstrap, "group.id": "jepsen-final-" + uuid.uuid4().hex[:6],
                         "isolation.level": isolation, "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": "earliest"}))
        tp = TopicPartition(history.topic, part)
        try:
            end = None
            while end is None and time.time() < deadline:
                try:
                    _low, end = c.get_watermark_offsets(tp, timeout=5)
                except KafkaException as e:
                    history.error("final", e)
                    time.sleep(0.5)
            if end is None:
                history.final_complete = False
                history.final[part] = recs
                continue
            c.assign([TopicPartition(history.topic, part, OFFSET_BEGINNING)])
            pos = -1
            while time.time() < deadline:
                done = False
                for m in c.consume(1000, 0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            done = m.offset() >= end
                        else:
                            history.error("final", m.error())
                        continue
                    recs.append((m.offset(), m.value().decode()))
                    pos = m.offset()
                if done or pos >= end - 1:
                    break
                got = c.position([tp])[0].offset
                if got >= end:
                    break
            else:
                history.final_complete = False
        finally:
            c.close()
        history.final[part] = recs
