#!/usr/bin/env python3
"""End-to-end scenarios for the analytics app against a running broker.

Sends a known random mix of events (single and batched) through the HTTP API plus some
deliberately bad records straight to the topics, then checks that every figure the API
reports EQUALS what is computed here from what was sent. Restarts the app (SIGTERM, then
SIGKILL mid-backlog) and checks the aggregates survive (rebuilt from the compacted topic)
and new events add on top exactly. Then loads the dashboard in headless Chromium and checks
it updates without a reload, and last freezes the broker to check the API's 503.

Usage: scenario.py --app target/release/analytics --bootstrap 127.0.0.1:9092 --workdir DIR
                   [--broker-pid PID] [--seed N] [--skip-dashboard]
Exit status is non-zero if any check fails.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

EVENT_TYPES = ["click", "signup", "purchase", "search", "share", "logout"]
PAGES = ["/", "/pricing", "/docs", "/docs/quickstart", "/blog", "/blog/kafka-101", "/about", "/careers", "/login"]
GROUPS = ["stats", "analytics"]


class Checks:
    """Records named pass/fail results; the run fails if any check fails."""

    def __init__(self):
        self.results = []

    def check(self, name, ok, detail=""):
        self.results.append((name, bool(ok)))
        print(f"[{'PASS' if ok else 'FAIL'}] {name}" + (f" -- {detail}" if detail and not ok else ""), flush=True)
        return ok

    def equal(self, name, actual, expected):
        return self.check(name, actual == expected, f"got {actual!r}, expected {expected!r}")

    def failed(self):
        return [n for n, ok in self.results if not ok]


class Ledger:
    """What the test sent and had acknowledged: the independent source of truth."""

    def __init__(self):
        self.event_types = collections.Counter()
        self.pages = collections.Counter()
        self.users = set()
        self.sources = collections.Counter()
        self.bad_records = 0

    def add(self, item, source="analytics-api"):
        self.users.add(item["user_id"])
        self.sources[source] += 1
        if item["kind"] == "user-event":
            self.event_types[item["event_type"]] += 1
        else:
            self.pages[item["page"]] += 1

    @property
    def user_events(self):
        return sum(self.event_types.values())

    @property
    def page_views(self):
        return sum(self.pages.values())


def http(method, url, body=None, headers=None, timeout=30):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """The app under test as a child process, stopped with SIGTERM like a service manager."""

    def __init__(self, binary, bootstrap, workdir):
        self.binary, self.bootstrap, self.workdir = binary, bootstrap, workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.workdir, f"app-{self.starts}.log"), "w")
        self.proc = subprocess.Popen(
            [self.binary, "--bootstrap", self.bootstrap, "--listen", f"127.0.0.1:{self.port}", "--delivery-timeout-ms", "4000"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn,analytics=info")},
        )
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode} during start-up; see {log.name}")
            try:
                if http("GET", self.base + "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("app did not start listening within 90 s")

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def random_item(rng, users):
    user = rng.choice(users)
    if rng.random() < 0.55:
        item = {"kind": "user-event", "user_id": user, "event_type": rng.choice(EVENT_TYPES)}
        if rng.random() < 0.3:
            item["properties"] = {"value": rng.randint(1, 100)}
        return item
    item = {"kind": "page-view", "user_id": user, "page": rng.choice(PAGES)}
    if rng.random() < 0.3:
        item["duration_ms"] = rng.randint(100, 60000)
    return item


def send_mix(app, ledger, rng, users, singles, batches, batch_size):
    """Sends `singles` events one per request and `batches` batch requests, concurrently;
    only acknowledged events are added to the ledger. Returns the number of failures."""
    work = [("single", random_item(rng, users)) for _ in range(singles)]
    work += [("batch", [random_item(rng, users) for _ in range(rng.randint(1, batch_size))]) for _ in range(batches)]
    rng.shuffle(work)

    def send(job):
        kind, payload = job
        if kind == "single":
            body = {k: v for k, v in payload.items() if k != "kind"}
            path = "/events/user-event" if payload["kind"] == "user-event" else "/events/page-view"
            status, res = http("POST", app.base + path, body)
            return (status == 201 and res.get("status") == "accepted"), [payload]
        status, res = http("POST", app.base + "/events/batch-events", {"events": payload})
        return (status == 201 and res.get("accepted") == len(payload)), payload

    failures = 0
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for ok, items in pool.map(send, work):
            if ok:
                for item in items:
                    ledger.add(item)
            else:
                failures += 1
    return failures


def produce_bad_records(bootstrap, ledger, rng, n):
    """Records the consumers must dead-letter: they bypass the API's validation."""
    bad = [
        ("user-events", b"u-bad-1", b"this is not json"),
        ("user-events", b"u-bad-2", json.dumps({"user_id": "someone-else", "event_type": "click"}).encode()),
        ("user-events", b"u-bad-3", json.dumps({"user_id": "u-bad-3"}).encode()),
        ("page-views", b"u-bad-4", json.dumps({"user_id": "u-bad-4", "page": "no-leading-slash"}).encode()),
        ("page-views", None, json.dumps({"user_id": "u-bad-5", "page": "/"}).encode()),
        ("page-views", b"u-bad-6", b"\xff\xfe binary"),
    ]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    sent = []
    for i in range(n):
        topic, key, value = bad[i % len(bad)] if i < len(bad) else rng.choice(bad)
        cid = f"bad-{uuid.uuid4()}"
        producer.produce(topic, key=key, value=value, headers=[("correlation-id", cid), ("source", "scenario-bad")],
                         on_delivery=lambda err, msg: errors.append(err) if err else None)
        sent.append(cid)
    producer.flush(30)
    if errors:
        raise RuntimeError(f"producing bad records failed: {errors}")
    ledger.bad_records += n
    return sent


def produce_direct(bootstrap, ledger, rng, users, n):
    """Valid events written straight to the topics (as another producer would), so their
    count is known from the broker's acknowledgements alone, whatever happens to the app."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 20})
    acked, errors = [], []
    for _ in range(n):
        item = random_item(rng, users)
        body = {k: v for k, v in item.items() if k != "kind"}
        body.update(event_id=str(uuid.uuid4()), timestamp=int(time.time() * 1000))
        topic = "user-events" if item["kind"] == "user-event" else "page-views"

        def on_delivery(err, _msg, item=item):
            (errors if err else acked).append(err or item)

        while True:
            try:
                producer.produce(topic, key=item["user_id"], value=json.dumps(body),
                                 headers=[("correlation-id", str(uuid.uuid4())), ("source", "scenario-direct")], on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    for item in acked:
        ledger.add(item, "scenario-direct")
    return len(errors)


def lag_of(app, group):
    status, body = http("GET", app.base + "/events/analytics/lag", timeout=10)
    if status != 200:
        return None
    return next((g["total_lag"] for g in body["groups"] if g["group"] == group), None)


def crash_mid_stream(checks, app, ledger, rng, users, bootstrap):
    """SIGKILL the app while both groups work through a backlog, restart, and check nothing
    was lost or counted twice: state, dead letters and offsets commit in one transaction."""
    failures = produce_direct(bootstrap, ledger, rng, users, 20000)
    checks.equal("crash: backlog produced straight to the topics", failures, 0)
    bad = produce_bad_records(bootstrap, ledger, rng, 5)
    backlog = lag_of(app, "analytics")
    killed_at = None
    deadline = time.time() + 60
    while time.time() < deadline:
        lag = lag_of(app, "analytics")
        if lag is not None and 0 < lag < backlog:
            app.proc.kill()  # SIGKILL: no flush, no commit, no LeaveGroup
            app.proc.wait()
            killed_at = lag
            break
        time.sleep(0.02)
    checks.check("crash: app killed while the backlog was being processed", killed_at is not None, f"backlog {backlog}")
    print(f"killed with analytics lag {killed_at} of {backlog}", flush=True)
    app.start()
    # The dead member's partitions are handed over once its session (10 s) expires.
    ok, lag = wait_for_zero_lag(app, timeout=90)
    checks.check("crash: lag reaches 0 after the restart", ok, json.dumps(lag)[:500])
    return bad


def high_watermark(bootstrap, topic, partition=0):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"scenario-hw-{uuid.uuid4()}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()


def wait_for_compaction(bootstrap, poke, timeout=60):
    """Waits until the broker's cleaner has visibly compacted analytics-events (one partition).
    Every pipeline transaction writes at least one state record before its commit marker, so
    an uncompacted log holds at least half its offsets as readable records (less only the
    few records of the transactions the crash phase left to be aborted); fewer than that
    means superseded records were removed. `poke` sends an event meanwhile: the broker only
    rolls (and so can only clean) a segment when something is appended after its roll time.
    Returns (readable records, offsets)."""
    deadline = time.time() + timeout
    while True:
        hw = high_watermark(bootstrap, "analytics-events")
        readable = len(read_topic(bootstrap, "analytics-events"))
        if readable < hw / 2 or time.time() > deadline:
            return readable, hw
        poke()
        time.sleep(1)


def wait_for_zero_lag(app, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        status, body = http("GET", app.base + "/events/analytics/lag")
        if status == 200:
            last = body
            groups = {g["group"]: g for g in body["groups"]}
            if set(groups) == set(GROUPS) and all(g["total_lag"] == 0 and all(p["committed"] is not None or p["high_watermark"] == 0
                                                                               for p in g["partitions"]) for g in groups.values()):
                return True, body
        time.sleep(0.3)
    return False, last


def check_figures(checks, app, ledger, phase):
    """Every figure from the API against the ledger."""
    _, analytics = http("GET", app.base + "/events/analytics?limit=1000")
    checks.equal(f"{phase}: event counts per type (/events/analytics)", analytics["event_counts"], dict(ledger.event_types))
    _, counts = http("GET", app.base + "/events/analytics/event-counts")
    checks.equal(f"{phase}: /events/analytics/event-counts", counts["event_counts"], dict(ledger.event_types))
    _, top = http("GET", app.base + "/events/analytics/top-pages?limit=1000")
    checks.equal(f"{phase}: views per page (/top-pages)", {p["page"]: p["views"] for p in top["top_pages"]}, dict(ledger.pages))
    views = [p["views"] for p in top["top_pages"]]
    checks.check(f"{phase}: top pages sorted by views", views == sorted(views, reverse=True), str(views))
    _, top3 = http("GET", app.base + "/events/analytics/top-pages?limit=3")
    expected_top3 = [v for _, v in ledger.pages.most_common()][:3]
    checks.equal(f"{phase}: top-pages?limit=3", [p["views"] for p in top3["top_pages"]], expected_top3)
    _, active = http("GET", app.base + "/events/analytics/active-users")
    checks.equal(f"{phase}: distinct active users", active["active_users"], len(ledger.users))
    checks.equal(f"{phase}: active user ids", {u["user_id"] for u in active["users"]}, ledger.users)
    checks.equal(f"{phase}: total user events", analytics["total_user_events"], ledger.user_events)
    checks.equal(f"{phase}: total page views", analytics["total_page_views"], ledger.page_views)
    checks.equal(f"{phase}: analytics group dead letters", analytics["dead_letters"], ledger.bad_records)
    _, stats = http("GET", app.base + "/events/stats")
    checks.equal(f"{phase}: stats user-events messages", stats["topics"].get("user-events", {}).get("messages", 0), ledger.user_events)
    checks.equal(f"{phase}: stats page-views messages", stats["topics"].get("page-views", {}).get("messages", 0), ledger.page_views)
    part_sum = sum(sum(t["partitions"].values()) for t in stats["topics"].values())
    checks.equal(f"{phase}: stats per-partition counts add up", part_sum, ledger.user_events + ledger.page_views)
    checks.equal(f"{phase}: stats per-source counts", stats["sources"], dict(ledger.sources))
    checks.equal(f"{phase}: stats group dead letters", stats["dead_letters"], ledger.bad_records)


def read_topic(bootstrap, topic, timeout=20):
    """Every record of a topic from the beginning to its current end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"scenario-reader-{uuid.uuid4()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": True})
    meta = consumer.list_topics(topic, timeout=10)
    parts = list(meta.topics[topic].partitions)
    ends = {}
    for p in parts:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    records = []
    if ends:
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.time() + timeout
        while ends and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    ends.pop(msg.partition(), None)
                continue
            records.append(msg)
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
    consumer.close()
    return records


def check_dead_letters(checks, bootstrap, ledger, bad_cids, phase):
    records = read_topic(bootstrap, "error-events")
    per_group = collections.Counter()
    cids = collections.defaultdict(set)
    complete = True
    for r in records:
        h = {k: (v.decode() if v else "") for k, v in (r.headers() or [])}
        per_group[h.get("consumer-group")] += 1
        cids[h.get("consumer-group")].add(h.get("correlation-id"))
        complete &= all(k in h for k in ("error", "source-topic", "source-partition", "source-offset", "source"))
    checks.equal(f"{phase}: error-events records per group", dict(per_group), {g: ledger.bad_records for g in GROUPS})
    checks.check(f"{phase}: dead letters carry error + origin + original headers", complete and len(records) > 0)
    checks.check(f"{phase}: dead letters keep the original correlation ids",
                 all(set(bad_cids) <= cids[g] for g in GROUPS), f"{dict(cids)}")


def check_topics(checks, bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(timeout=10)
    want = {"user-events": (3, {"retention.ms": "604800000", "compression.type": "gzip"}),
            "page-views": (3, {"retention.ms": "86400000"}),
            "analytics-events": (1, {"cleanup.policy": "compact"}),
            "error-events": (1, {})}
    for topic, (parts, configs) in want.items():
        t = meta.topics.get(topic)
        checks.equal(f"topic {topic} partitions", len(t.partitions) if t else None, parts)
        if configs:
            res = ConfigResource(ConfigResource.Type.TOPIC, topic)
            described = admin.describe_configs([res])[res].result(timeout=10)
            checks.equal(f"topic {topic} configs", {k: described[k].value for k in configs if k in described}, configs)


def check_keys_and_headers(checks, app, bootstrap):
    cid = f"scenario-{uuid.uuid4()}"
    user = f"u-header-{uuid.uuid4().hex[:8]}"
    status, res = http("POST", app.base + "/events/user-event", {"user_id": user, "event_type": "click"}, {"x-correlation-id": cid})
    if not checks.equal("single event acknowledged with 201", status, 201):
        return None
    records = [r for r in read_topic(bootstrap, "user-events") if r.partition() == res["partition"] and r.offset() == res["offset"]]
    ok = len(records) == 1
    if ok:
        r = records[0]
        h = {k: v.decode() for k, v in (r.headers() or [])}
        body = json.loads(r.value())
        ok = r.key() == user.encode() and h.get("correlation-id") == cid and h.get("source") == "analytics-api" and body["event_id"] == res["event_id"]
    checks.check("record keyed by user id with correlation-id and source headers", ok)
    return {"kind": "user-event", "user_id": user, "event_type": "click"}


def check_validation(checks, app):
    cases = [
        ("/events/user-event", b"", "empty body"),
        ("/events/user-event", b"{not json", "malformed JSON"),
        ("/events/user-event", {"event_type": "click"}, "missing user_id"),
        ("/events/user-event", {"user_id": "u1", "event_type": "click", "extra": 1}, "unknown field"),
        ("/events/user-event", {"user_id": "u1", "event_type": "has space"}, "bad event_type"),
        ("/events/user-event", {"user_id": "", "event_type": "click"}, "empty user_id"),
        ("/events/page-view", {"user_id": "u1", "page": "relative"}, "page without leading slash"),
        ("/events/page-view", {"user_id": "u1", "page": "/", "duration_ms": -5}, "negative duration"),
        ("/events/batch-events", {"events": []}, "empty batch"),
        ("/events/batch-events", {"events": [{"kind": "nope", "user_id": "u1"}]}, "unknown kind"),
        ("/events/batch-events", {"events": [{"kind": "user-event", "user_id": "u-val", "event_type": "click"},
                                             {"kind": "page-view", "user_id": "u-val", "page": "bad"}]}, "batch with one bad item"),
    ]
    for path, body, what in cases:
        status, res = http("POST", app.base + path, body)
        checks.check(f"400 JSON error: {what}", status == 400 and isinstance(res, dict) and res.get("error"), f"{status} {res!r}")


def check_unavailable(checks, app, broker_pid):
    """With the broker frozen, the API must answer 503 rather than pretend success."""
    os.kill(broker_pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        status, res = http("POST", app.base + "/events/page-view", {"user_id": "u-503", "page": "/frozen"}, timeout=30)
        checks.check("503 when the broker does not acknowledge", status == 503 and "error" in res, f"{status} {res!r}")
        checks.check("503 arrives within the delivery timeout", time.time() - t0 < 15, f"{time.time() - t0:.1f}s")
    finally:
        os.kill(broker_pid, signal.SIGCONT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--broker-pid", type=int)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--skip-dashboard", action="store_true")
    ap.add_argument("--expect-compaction", action="store_true",
                    help="the broker rolls segments fast enough for analytics-events to be compacted during the run")
    ap.add_argument("--screenshot", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboard.png"))
    args = ap.parse_args()
    # SIGTERM (ci.sh's cleanup) unwinds through the `finally` below, which stops the app.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"seed {args.seed}", flush=True)
    rng = random.Random(args.seed)
    users = [f"u-{i:03d}" for i in range(rng.randint(30, 60))]
    checks, ledger = Checks(), Ledger()
    app = App(args.app, args.bootstrap, args.workdir)
    try:
        # Phase 1: a fresh app on a fresh broker (the expected figures count from zero).
        existing = set(AdminClient({"bootstrap.servers": args.bootstrap}).list_topics(timeout=10).topics)
        if not checks.check("broker is fresh (none of the app's topics exist yet)",
                            not existing & {"user-events", "page-views", "analytics-events", "error-events"}, str(existing)):
            return 1
        t = time.time()
        app.start()
        print(f"app up in {time.time() - t:.1f}s", flush=True)
        check_topics(checks, args.bootstrap)
        check_validation(checks, app)
        item = check_keys_and_headers(checks, app, args.bootstrap)
        if item:
            ledger.add(item)
        failures = send_mix(app, ledger, rng, users, singles=300, batches=30, batch_size=40)
        checks.equal("phase 1: every request acknowledged", failures, 0)
        bad_cids = produce_bad_records(args.bootstrap, ledger, rng, 9)
        ok, lag = wait_for_zero_lag(app)
        checks.check("phase 1: lag reaches 0 for both groups", ok, json.dumps(lag)[:500])
        check_figures(checks, app, ledger, "phase 1")
        check_dead_letters(checks, args.bootstrap, ledger, bad_cids, "phase 1")

        # Phase 2: graceful restart; state must come back from analytics-events exactly.
        code = app.stop()
        checks.equal("graceful shutdown exits 0", code, 0)
        app.start()
        check_figures(checks, app, ledger, "after restart (before new events)")
        ok, _ = wait_for_zero_lag(app, timeout=20)
        checks.check("after restart: nothing left to reprocess (lag 0)", ok)
        failures = send_mix(app, ledger, rng, users + [f"u-new-{i}" for i in range(10)], singles=150, batches=15, batch_size=30)
        checks.equal("phase 2: every request acknowledged", failures, 0)
        bad_cids += produce_bad_records(args.bootstrap, ledger, rng, 4)
        ok, lag = wait_for_zero_lag(app)
        checks.check("phase 2: lag reaches 0 for both groups", ok, json.dumps(lag)[:500])
        check_figures(checks, app, ledger, "phase 2")
        check_dead_letters(checks, args.bootstrap, ledger, bad_cids, "phase 2")

        # Phase 3: a crash (SIGKILL) in the middle of processing.
        bad_cids += crash_mid_stream(checks, app, ledger, rng, users, args.bootstrap)
        check_figures(checks, app, ledger, "after crash")
        check_dead_letters(checks, args.bootstrap, ledger, bad_cids, "after crash")

        # Phase 3b: once the broker has compacted the state topic, a restart must rebuild the
        # same figures from what compaction kept (ci.sh runs Arus with a short segment roll).
        if args.expect_compaction:
            readable, offsets = wait_for_compaction(
                args.bootstrap, lambda: send_mix(app, ledger, rng, users, singles=3, batches=0, batch_size=0))
            ok, _ = wait_for_zero_lag(app)
            checks.check("compaction phase: lag reaches 0", ok)
            checks.check("analytics-events compacted by the broker", readable < offsets / 2, f"{readable} records in {offsets} offsets")
            print(f"analytics-events: {readable} records left in {offsets} offsets", flush=True)
            checks.equal("graceful shutdown exits 0 (after compaction)", app.stop(), 0)
            app.start()
            check_figures(checks, app, ledger, "restart after compaction")

        # Phase 4: the dashboard updates live.
        if not args.skip_dashboard:
            import dashboard_test
            dashboard_test.run(checks, app, ledger, lambda n: send_mix(app, ledger, rng, users, singles=n, batches=5, batch_size=20),
                               lambda: wait_for_zero_lag(app), args.workdir, os.path.abspath(args.screenshot))

        # Last, as it disturbs the broker: the 503 path.
        if args.broker_pid:
            check_unavailable(checks, app, args.broker_pid)
    except Exception as e:  # a crash of the scenario itself is a failure too
        checks.check(f"scenario ran to completion ({type(e).__name__}: {e})", False)
    finally:
        app.stop()
    failed = checks.failed()
    print(f"\n{len(checks.results) - len(failed)}/{len(checks.results)} checks passed (seed {args.seed})")
    for name in failed:
        print(f"  FAILED: {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
