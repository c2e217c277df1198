#!/usr/bin/env python3
"""Idempotent produce through a connection-cutting proxy: no duplicates, no gaps.

    compat/.venv/bin/python compat/idempotence_proxy.py [--broker PATH] [--records 20000]

Starts the broker itself (`<broker> serve --log-dirs D --listeners PLAINTEXT://127.0.0.1:<free port>
--ready-file F --override advertised.listeners=PLAINTEXT://127.0.0.1:<proxy port>`),
with a small asyncio TCP proxy in this process in front of it: the proxy listens on
that advertised port (chosen before the broker starts), forwards to the broker's
real port, and every 300-700 ms cuts every connection it holds: in half of the rounds a connection is cut inside the next chunk it
forwards (a random prefix of a request or response gets through), in the other
half requests pass whole and the connection is cut inside the next response (the
broker has stored the batch, the producer never hears so and retries); a
connection without traffic within 250 ms is cut outright. An idempotent confluent-kafka producer
(enable.idempotence=true, acks=all, unlimited retries) sends sequenced records to
a 3-partition topic (record i -> partition i % 3) through the proxy. Then the
cuts stop and a consumer reads every partition from offset 0: each partition
must hold exactly its records, in order, once (duplicates=0, gaps=0, reorders=0).
(The consumer still goes through the proxy -- the broker advertises only the
proxy's address -- but with the cuts stopped it is a plain pass-through.)

Exit status 0 only if no violation was found and the connections really were
cut while records flowed through the proxy; 2 (n/a) if the broker does not
advertise InitProducerId.
"""
import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

COMPAT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COMPAT)


# ----------------------------------------------------------------- broker

class Broker:
    """One broker process on a fixed data dir; restartable (txn_crash.py uses that too)."""

    def __init__(self, binary, data_dir, log_path, overrides=()):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        self.overrides = list(overrides)
        self.ready_file = os.path.join(data_dir, "ready")
        self.proc = None
        self.address = None
        self.log = open(log_path, "a")

    def start(self, port=0, timeout=60):
        try:
            os.unlink(self.ready_file)
        except FileNotFoundError:
            pass
        cmd = [self.binary, "serve", "--log-dirs", os.path.join(self.data_dir, "logs"),
               "--listeners", "PLAINTEXT://127.0.0.1:%d" % port, "--ready-file", self.ready_file]
        for o in self.overrides:
            cmd += ["--override", o]
        self.log.write("$ %s\n" % " ".join(cmd))
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited with code %s before it was ready (log %s)" % (self.proc.returncode, self.log_path))
            try:
                with open(self.ready_file) as f:
                    content = f.read()
                if content.endswith("\n") and content.strip():
                    self.address = content.strip()
                    return self.address
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("broker wrote no ready file within %ds (log %s)" % (timeout, self.log_path))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def default_broker():
    return os.path.join(ROOT, "target", "release", "arus")


def missing_apis(address, keys):
    """Names of the API keys the broker at `address` does not advertise ([] if ApiVersions fails)."""
    sys.path.insert(0, COMPAT)
    import run
    apis = run.advertised_apis(address)
    names = {22: "InitProducerId", 24: "AddPartitionsToTxn", 26: "EndTxn", 10: "FindCoordinator"}
    return [] if apis is None else [names.get(k, str(k)) for k in keys if k not in apis]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


# ----------------------------------------------------------------- proxy

class CuttingProxy:
    """asyncio TCP proxy on a background thread; cuts all connections every 300-700 ms while enabled."""

    def __init__(self, listen_sock, upstream):
        self.sock, self.upstream = listen_sock, upstream
        self.cutting = False
        self.conns = {}  # id -> connection
        self.stats = {"connections": 0, "cut_rounds": 0, "connections_cut": 0, "cut_mid_chunk": 0, "responses_cut": 0,
                      "bytes_up": 0, "bytes_down": 0}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self):
        self.server = await asyncio.start_server(self._handle, sock=self.sock)
        asyncio.ensure_future(self._cutter())
        await asyncio.Event().wait()

    async def _handle(self, creader, cwriter):
        host, port = self.upstream.rsplit(":", 1)
        try:
            breader, bwriter = await asyncio.open_connection(host, int(port))
        except OSError:
            cwriter.transport.abort()
            return
        self.stats["connections"] += 1
        conn = {"writers": (cwriter, bwriter), "cut": False}
        self.conns[id(conn)] = conn
        await asyncio.gather(self._pump(conn, creader, bwriter, "bytes_up"), self._pump(conn, breader, cwriter, "bytes_down"),
                             return_exceptions=True)
        self._abort(conn)

    def _abort(self, conn):
        for w in conn["writers"]:
            w.transport.abort()
        self.conns.pop(id(conn), None)

    async def _pump(self, conn, reader, writer, counter):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if conn["cut"] and (counter == "bytes_down" or conn["cut"] == "request"):
                # Cut inside this chunk: forward a random prefix, then drop the connection.
                # In "response" rounds requests pass whole and the first response is cut:
                # the broker has written the batch, the client never hears it and retries.
                k = random.randrange(0, len(data))
                if k:
                    writer.write(data[:k])
                    self.stats["cut_mid_chunk"] += 1
                if counter == "bytes_down":
                    self.stats["responses_cut"] += 1
                    self.stats[counter] += k
                self.stats["connections_cut"] += 1
                self._abort(conn)
                return
            writer.write(data)
            self.stats[counter] += len(data)
            await writer.drain()

    async def _cutter(self):
        while True:
            await asyncio.sleep(random.uniform(0.3, 0.7))
            victims = list(self.conns.values())
            if not self.cutting or not victims:
                continue
            self.stats["cut_rounds"] += 1
            mode = random.choice(("request", "response"))
            for c in victims:
                c["cut"] = mode
            # A connection with traffic in the next few ms is cut mid-chunk by its pump;
            # one without is cut here (between requests, or mid-request while the client waits).
            await asyncio.sleep(random.uniform(0.0, 0.25))
            for c in victims:
                if id(c) in self.conns:
                    self.stats["connections_cut"] += 1
                    self._abort(c)


# ----------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default=default_broker(), help="broker binary (default target/release/arus)")
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--spread", type=float, default=20, help="seconds over which the records are handed to the producer")
    ap.add_argument("--timeout", type=float, default=240, help="seconds allowed for producing everything")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and broker log")
    ap.add_argument("--no-idempotence", action="store_true",
                    help="self-test of the checker: a non-idempotent retrying producer, which should show duplicates")
    args = ap.parse_args()
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    work = tempfile.mkdtemp(prefix="arus-idem-proxy-")
    log_path = os.path.join(work, "broker.log")
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    proxy_port = lsock.getsockname()[1]
    broker = Broker(os.path.abspath(args.broker), work, log_path,
                    ["advertised.listeners=PLAINTEXT://127.0.0.1:%d" % proxy_port])
    violations = []
    ok = False
    try:
        # The broker listens on a port chosen here too: its ready file may name the
        # advertised address (the proxy's), not the one it is bound to.
        broker_port = free_port()
        broker.start(broker_port)
        real = "127.0.0.1:%d" % broker_port
        missing = [] if args.no_idempotence else missing_apis(real, [22])
        if missing:
            print("[idem] n/a: the broker does not advertise %s" % ", ".join(missing), flush=True)
            broker.stop()
            shutil.rmtree(work, ignore_errors=True)
            os._exit(2)
        proxy = CuttingProxy(lsock, real)
        proxy.start()
        bs = "127.0.0.1:%d" % proxy_port
        print("[idem] broker %s at %s, proxy at %s (log %s)" % (args.broker, real, bs, log_path), flush=True)
        topic = "idem-proxy-%d" % int(time.time())
        a = AdminClient({"bootstrap.servers": bs})
        a.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)])[topic].result(30)
        time.sleep(0.5)

        errors, acked = [], [0]

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)
            else:
                acked[0] += 1

        p = Producer({"bootstrap.servers": bs, "enable.idempotence": not args.no_idempotence, "acks": "all",
                      "retries": 2147483647, "message.timeout.ms": int(args.timeout * 1000), "linger.ms": 5,
                      "batch.num.messages": 200, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                      "socket.timeout.ms": 5000, "request.timeout.ms": 5000, "max.in.flight.requests.per.connection": 5})
        proxy.cutting = True
        t0 = time.time()
        for i in range(args.records):
            while True:
                try:
                    p.produce(topic, key=b"k%d" % i, value=b"seq-%08d" % i, partition=i % args.partitions,
                              on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
            if i % 500 == 499:
                time.sleep(args.spread * 500 / args.records)  # spread the records over many cut rounds
        left = p.flush(args.timeout)
        proxy.cutting = False
        produce_s = time.time() - t0
        fatal = p.fatal_error() if hasattr(p, "fatal_error") else None
        if left:
            violations.append("%d records still undelivered after %.0fs" % (left, args.timeout))
        if errors:
            violations.append("%d delivery errors, first: %s" % (len(errors), errors[0]))
        if fatal:
            violations.append("producer fatal error: %s" % fatal)
        stats = dict(proxy.stats)
        print("[idem] produced %d records (%d acked) in %.1fs; proxy: %s" % (args.records, acked[0], produce_s, stats), flush=True)
        if stats["cut_rounds"] < 3 or stats["connections_cut"] < 3:
            violations.append("the proxy cut too little (%d rounds, %d connections): the test proves nothing"
                              % (stats["cut_rounds"], stats["connections_cut"]))
        if stats["bytes_up"] < args.records * 12:
            violations.append("only %d bytes went through the proxy for %d records: does the broker honour "
                              "advertised.listeners?" % (stats["bytes_up"], args.records))

        # Verify: every partition from 0 to its end, exactly its records, in order.
        time.sleep(1)
        c = Consumer({"bootstrap.servers": bs, "group.id": "idem-verify", "enable.auto.commit": False,
                      "enable.partition.eof": True})
        parts = list(range(args.partitions))
        highs = {pp: c.get_watermark_offsets(TopicPartition(topic, pp), timeout=15)[1] for pp in parts}
        c.assign([TopicPartition(topic, pp, 0) for pp in parts])
        got = {pp: [] for pp in parts}
        eof = set()
        deadline = time.time() + 60
        while len(eof) < len(parts) and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= highs[m.partition()]:
                        eof.add(m.partition())
                    continue
                violations.append("consume error: %s" % m.error())
                break
            got[m.partition()].append(int(m.value()[4:]))
        c.close()
        dups = gaps = reorders = wrong = 0
        for pp in parts:
            want = list(range(pp, args.records, args.partitions))
            seq = got[pp]
            seen = set()
            last = -1
            for v in seq:
                if v in seen:
                    dups += 1
                    continue
                seen.add(v)
                if v % args.partitions != pp:
                    wrong += 1
                if v < last:
                    reorders += 1
                last = max(last, v)
            gaps += len(set(want) - seen)
            if seq != want and not (dups or gaps or reorders or wrong):
                violations.append("partition %d: content differs from what was sent" % pp)
        total = sum(len(v) for v in got.values())
        print("[idem] read back %d records (high watermarks %s): duplicates=%d gaps=%d reorders=%d wrong_partition=%d"
              % (total, highs, dups, gaps, reorders, wrong), flush=True)
        if dups or gaps or reorders or wrong:
            violations.append("duplicates=%d gaps=%d reorders=%d wrong_partition=%d" % (dups, gaps, reorders, wrong))
        if len(eof) < len(parts):
            violations.append("read back did not reach the end of partitions %s" % sorted(set(parts) - eof))
        if broker.proc.poll() is not None:
            violations.append("broker died (exit %s)" % broker.proc.returncode)
        ok = not violations
    except Exception as e:  # noqa: BLE001
        violations.append("%s: %s" % (type(e).__name__, e))
    finally:
        broker.stop()
    for v in violations:
        print("VIOLATION: %s" % v, flush=True)
    if not ok:
        print("[idem] broker log tail (%s):\n%s" % (log_path, tail(log_path)), flush=True)
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print("[idem] %s" % ("PASS" if ok else "FAIL"), flush=True)
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
