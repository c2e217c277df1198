#!/usr/bin/env python3
"""The fault suite with its Jepsen-style checker (issue 15): a three-node cluster through the
cluster launcher contract, idempotent acks=all producers and read-then-write transactions under a
schedule of faults, then the checker over the recorded history. See faults/jepsen/README.md.

    compat/.venv/bin/python faults/jepsen/run.py --ci                              # CI: fault run + self-test, Arus
    compat/.venv/bin/python faults/jepsen/run.py --launcher compat/reference/kafka-cluster.sh
    compat/.venv/bin/python faults/jepsen/run.py --duration 600                    # the soak
    compat/.venv/bin/python faults/jepsen/run.py --selftest                        # must find loss

Exit status: 0 when the checker finds no anomaly (or, with --selftest, finds lost writes), 1
otherwise, 3 when the launcher says the server cannot run a cluster.
"""
import argparse
import bisect
import gzip
import json
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COMPAT = os.path.join(ROOT, "compat")
VENV_PY = os.path.join(COMPAT, ".venv", "bin", "python")
try:
    import confluent_kafka  # noqa: F401
except ImportError:
    if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(COMPAT, ".venv")):
        os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])
    raise
from confluent_kafka import TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

sys.path.insert(0, COMPAT)
sys.path.insert(0, HERE)
import checker  # noqa: E402
import nemesis  # noqa: E402
import netns  # noqa: E402
import powercut  # noqa: E402
import workload  # noqa: E402
from cluster_control import ARUS_LAUNCHER, Cluster, LauncherError  # noqa: E402

# Short broker sessions so a killed node is fenced (and its leaderships moved) within seconds;
# internal topics replicated like the data, so group and transaction coordinators survive a kill.
OVERRIDES = ["broker.session.timeout.ms=6000", "broker.heartbeat.interval.ms=1000",
             "offsets.topic.replication.factor=3", "transaction.state.log.replication.factor=3",
             "transaction.state.log.min.isr=2"]

T0 = time.time()


def log(msg):
    print("[%6.1f] %s" % (time.time() - T0, msg), flush=True)


def create_topic(bootstrap, name, partitions=None, rf=None, assignment=None, config=None):
    admin = AdminClient(workload._c({"bootstrap.servers": bootstrap}))
    if assignment:
        # (confluent-kafka 2.16 refuses num_partitions -1 with an assignment, despite its docs)
        nt = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment, config=config or {})
    else:
        nt = NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config or {})
    admin.create_topics([nt], operation_timeout=30)[name].result(60)


def producer_conf(args):
    return {"acks": "all", "enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": args.message_timeout_ms,
            "request.timeout.ms": 10000, "retry.backoff.ms": 100, "retry.backoff.max.ms": 500}


# ------------------------------------------------------------------ figures

def fault_figures(sends, faults, partitions):
    """For each fault: seconds from the fault to the first acknowledged record sent after it
    (any partition; each partition the victim led; every partition), and acknowledged records/s
    from the fault until the cluster was healthy again. Plus records/s outside faults."""
    ok = sorted((s["t0"], s["t1"], s["partition"]) for s in sends if s["outcome"] == "ok")
    t0s = [x[0] for x in ok]
    acks_t1 = sorted(x[1] for x in ok)
    out = []
    for f in faults:
        start = f["start"]
        end = f.get("healthy") or f["heal"]
        first = {}
        for _t0, t1, p in ok[bisect.bisect_left(t0s, start):]:
            if len(first) == partitions and _t0 - start > max(first.values()):
                break  # sends invoked later complete later still
            if p not in first or t1 - start < first[p]:
                first[p] = t1 - start
        led = [int(x.rsplit("-", 1)[1]) for x in f.get("led", []) if x.rsplit("-", 1)[0] == "jepsen-idem"]
        n_acks = bisect.bisect_right(acks_t1, end) - bisect.bisect_left(acks_t1, start)
        out.append({
            "kind": f["kind"], "node": f["node"], "detail": f["detail"], "led": f.get("led", []),
            "held_s": round(f["heal"] - start, 2),
            "healthy_after_heal_s": None if f.get("healthy_after_heal_s") is None else round(f["healthy_after_heal_s"], 2),
            "first_ok_after_s": round(min(first.values()), 3) if first else None,
            "led_partitions_ok_after_s": (round(max(first.get(p, float("inf")) for p in led), 3)
                                          if led and all(p in first for p in led) else (None if led else "-")),
            "all_partitions_ok_after_s": round(max(first.values()), 3) if len(first) == partitions else None,
            "acks_per_s_during": round(n_acks / max(end - start, 0.001), 1),
        })
    windows = [(f["start"], f.get("healthy") or f["heal"]) for f in faults]
    if acks_t1:
        span = acks_t1[-1] - acks_t1[0]
        in_faults = sum(e - s for s, e in windows)
        n_in = sum(bisect.bisect_right(acks_t1, e) - bisect.bisect_left(acks_t1, s) for s, e in windows)
        calm = (len(acks_t1) - n_in) / max(span - in_faults, 0.001)
        during = n_in / max(in_faults, 0.001) if windows else None
    else:
        calm = during = 0.0
    return out, {"acks_per_s_outside_faults": round(calm, 1),
                 "acks_per_s_during_faults": None if during is None else round(during, 1),
                 "per_kind": per_kind(out)}


def per_kind(figs):
    """Median and worst of each figure per fault kind."""
    out = {}
    for kind in sorted({f["kind"] for f in figs}):
        fs = [f for f in figs if f["kind"] == kind]
        row = {"faults": len(fs)}
        for key in ("first_ok_after_s", "all_partitions_ok_after_s", "acks_per_s_during"):
            vals = sorted(f[key] for f in fs if isinstance(f[key], (int, float)))
            row[key] = {"median": vals[len(vals) // 2], "max": vals[-1]} if vals else None
            row[key + "_missing"] = len(fs) - len(vals)
        out[kind] = row
    return out


def print_result(name, res):
    total = checker.anomaly_total(res)
    log("checker [%s]: %s" % (name, "no anomaly" if total == 0 else "%d anomalies" % total))
    for k in checker.ANOMALIES:
        r = res[k]
        log("  %-20s %6d%s" % (k, r["count"], ("   e.g. " + json.dumps(r["examples"][:2])[:400]) if r["count"] else ""))
    log("  stats: %s" % json.dumps(res["stats"]))


# ------------------------------------------------------------------ the main run

def main_run(cluster, args, out_dir):
    bootstrap = cluster.bootstrap
    histories = {"idempotent": workload.History("jepsen-idem", args.partitions)}
    create_topic(bootstrap, "jepsen-idem", args.partitions, 3, config={"min.insync.replicas": "2"})
    if args.txn_workers:
        histories["transactional"] = workload.History("jepsen-txn", args.partitions)
        create_topic(bootstrap, "jepsen-txn", args.partitions, 3, config={"min.insync.replicas": "2"})
    nem = nemesis.Nemesis(cluster, [h.topic for h in histories.values()], hold_s=args.hold, heal_timeout=args.heal_timeout,
                          log=log, net=getattr(args, "net", None), net_hold_s=args.net_hold,
                          power=getattr(args, "power", None))
    took = nem.wait_healthy(60)
    if took is None:
        raise nemesis.NemesisError("topics never fully replicated (every partition led, ISR = replicas) within 60 s: %s"
                                   % nem.partitions())
    log("topics %s: RF 3, min.insync.replicas=2, %d partitions each, ISR full (%s)"
        % ([h.topic for h in histories.values()], args.partitions, nem.partitions()))
    idem = histories["idempotent"]
    workers = [workload.ReaderWorker("reader%d" % i, bootstrap, idem) for i in range(args.readers)]
    workers += [workload.ReaderWorker("group%d" % i, bootstrap, idem, group="jepsen-group") for i in range(args.group_readers)]
    if args.txn_workers:
        tx = histories["transactional"]
        workers += [workload.ReaderWorker("txreader0", bootstrap, tx, isolation="read_committed")]
        workers += [workload.TxnWorker("tx%d" % i, bootstrap, tx, producer_conf(args), seed=args.seed + i)
                    for i in range(args.txn_workers)]
    producers = [workload.ProducerWorker("p%d" % i, bootstrap, idem, args.rate, producer_conf(args)) for i in range(args.producers)]
    for w in workers + producers:
        w.start()
    # No fault before every partition has acknowledged an acks=all write: a cluster that cannot
    # replicate at all fails here, plainly, instead of after a schedule of faults.
    def acked_everywhere():
        with idem.lock:
            return len({s["partition"] for s in idem.sends if s["outcome"] == "ok"}) == args.partitions
    ok, took = wait_for(acked_everywhere, args.warmup_timeout)
    if not ok:
        for w in producers:
            w.abandon = True
        stop_all(producers, workers, args)
        raise nemesis.NemesisError("no acks=all write acknowledged in every partition within %d s of the start, before "
                                   "any fault (%d sends, outcomes %s): the cluster does not replicate"
                                   % (args.warmup_timeout, len(idem.sends),
                                      {o: sum(1 for s in idem.sends if s["outcome"] == o) for o in ("ok", "unknown", "fail")}))
    log("every partition acknowledged acks=all writes %.1f s after the start; faults begin" % took)
    time.sleep(args.quiet)
    faults, unhealed = [], []
    kinds = (args.faults or ",".join(nemesis.FAULTS + (nemesis.NET_FAULTS if args.netns else ())
                                     + (nemesis.POWER_FAULTS if args.powercut else ()))).split(",")
    t_end = time.time() + args.duration
    i = 0
    while time.time() < t_end:
        kind = kinds[i % len(kinds)]
        i += 1
        try:
            f = nem.run_one(kind)
        except nemesis.NemesisError as e:
            log("  %s: skipped (%s)" % (kind, e))
            time.sleep(1)
            continue
        faults.append(f)
        log("  %s node %d: held %.1f s, healthy %s s after the heal" % (
            kind, f["node"], f["heal"] - f["start"],
            "never" if f["healthy_after_heal_s"] is None else "%.1f" % f["healthy_after_heal_s"]))
        if f["healthy_after_heal_s"] is None:
            log("  the cluster did not recover within %d s: no more faults; what each node says: %s"
                % (args.heal_timeout, nem.describe()))
            unhealed.append(f)
            break
        time.sleep(args.quiet)
    log("faults over (%d); writers stop" % len(faults))
    stop_all(producers, workers, args)
    log("final read of every partition from the log start")
    workload.final_read(bootstrap, idem, "read_uncommitted")
    if args.txn_workers:
        workload.final_read(bootstrap, histories["transactional"], "read_committed")
    results, report = {}, {"faults": [], "workloads": {}}
    for name, h in histories.items():
        d = h.to_dict()
        with gzip.open(os.path.join(out_dir, "history-%s.json.gz" % name), "wt") as fh:
            json.dump(d, fh)
        res = checker.check(d)
        results[name] = res
        report["workloads"][name] = {"result": res, "final_read_complete": d["final_complete"],
                                     "client_errors": len(d["client_errors"]),
                                     "client_error_examples": d["client_errors"][:10]}
    figs, rates = fault_figures(idem.sends, faults, args.partitions)
    report["faults"], report["throughput"] = figs, rates
    report["unhealed"] = [{"kind": f["kind"], "node": f["node"], "detail": f["detail"]} for f in unhealed]
    return results, report


def stop_all(producers, workers, args):
    writers = producers + [w for w in workers if isinstance(w, workload.TxnWorker)]
    for w in writers:
        w.stop_event.set()
    for w in writers:
        w.join(args.message_timeout_ms / 1000.0 + 60)
    time.sleep(2)
    for w in workers:
        w.stop_event.set()
    for w in workers:
        w.join(30)


def summarize(results, report):
    for name, res in results.items():
        print_result(name, res)
        w = report["workloads"][name]
        if not w["final_read_complete"]:
            log("  FINAL READ INCOMPLETE for %s: the lost-write check is not conclusive" % name)
        if w["client_errors"]:
            log("  client errors: %d, e.g. %s" % (w["client_errors"], [e["error"][:100] for e in w["client_error_examples"][:3]]))
    if report.get("faults"):
        log("faults: kind node | first ok acks=all produce after | the victim's partitions | every partition | acks/s during")
    for f in report.get("faults", []):
        log("  %-16s %d  %7s s  %7s s  %7s s  %8s/s   (%s, led %s)" % (
            f["kind"], f["node"], f["first_ok_after_s"], f["led_partitions_ok_after_s"], f["all_partitions_ok_after_s"],
            f["acks_per_s_during"], f["detail"], f["led"]))
    if "throughput" in report:
        t = report["throughput"]
        log("acknowledged records/s: outside faults %s, during faults %s" % (t["acks_per_s_outside_faults"], t["acks_per_s_during_faults"]))
        for kind, row in t["per_kind"].items():
            log("  %-22s x%-3d first ok after %s s, every partition ok after %s s, acks/s during %s (median / max)" % (
                kind, row["faults"], *("%s / %s" % (row[k]["median"], row[k]["max"]) if row[k] else "none"
                                       for k in ("first_ok_after_s", "all_partitions_ok_after_s", "acks_per_s_during"))))


# ------------------------------------------------------------------ self-test

def selftest(cluster, args, out_dir):
    """Unclean election forced on, acks=1: a follower paused until fenced (out of the ISR), the
    leader SIGKILLed, the follower resumed and elected uncleanly; the old leader truncates when it
    comes back. The checker must report the lost acknowledged writes."""
    bootstrap = cluster.bootstrap
    nem = nemesis.Nemesis(cluster, ["jepsen-selftest"], hold_s=args.hold, log=log)
    ctrl = nem.controller()
    leader, follower = [n for n in sorted(cluster.addresses()) if n != ctrl][:2]
    create_topic(bootstrap, "jepsen-selftest", assignment=[[leader, follower]],
                 config={"min.insync.replicas": "1", "unclean.leader.election.enable": "true"})
    if nem.wait_healthy(60) is None:
        raise nemesis.NemesisError("self-test topic never fully replicated: %s" % nem.partitions())
    h = workload.History("jepsen-selftest", 1)
    conf = {"acks": "1", "enable.idempotence": False, "linger.ms": 5, "message.timeout.ms": 15000, "request.timeout.ms": 5000}
    prod = workload.ProducerWorker("p0", bootstrap, h, args.rate, conf)
    reader = workload.ReaderWorker("reader0", bootstrap, h)
    prod.start()
    reader.start()
    time.sleep(3)
    steps = {}
    fpid = cluster.status()[follower]["pid"]
    steps["pause_follower"] = time.time()
    os.kill(fpid, 19)  # SIGSTOP
    log("self-test: controller %d, partition replicas [%d, %d]; SIGSTOP follower %d" % (ctrl, leader, follower, follower))

    def isr_only_leader():
        p = nem.metadata(exclude=(follower,))["topics"]["jepsen-selftest"]["partitions"][0]
        return p["isr"] == [leader]
    ok, _ = wait_for(isr_only_leader, 40)
    steps["follower_out_of_isr"] = time.time() if ok else None
    log("self-test: follower %s the ISR" % ("out of" if ok else "STILL IN"))
    time.sleep(3)
    steps["kill_leader"] = cluster.sigkill(leader)
    os.kill(fpid, 18)  # SIGCONT
    log("self-test: SIGKILL leader %d, SIGCONT follower %d" % (leader, follower))

    def follower_leads():
        return nem.metadata(exclude=(leader,))["topics"]["jepsen-selftest"]["partitions"][0]["leader"] == follower
    ok, took = wait_for(follower_leads, 25)
    how = "by the controller" if ok else None
    if not ok:
        log("self-test: no automatic unclean election within 25 s; ElectLeaders UNCLEAN")
        from confluent_kafka import ElectionType
        try:
            AdminClient(workload._c({"bootstrap.servers": bootstrap})).elect_leaders(
                ElectionType.UNCLEAN, [TopicPartition("jepsen-selftest", 0)]).result(30)
        except Exception as e:  # noqa: BLE001
            log("self-test: ElectLeaders UNCLEAN failed: %s" % e)
        ok, _ = wait_for(follower_leads, 20)
        how = "by ElectLeaders UNCLEAN" if ok else "not elected"
    steps["unclean_leader"] = how
    log("self-test: follower %d %s" % (follower, "leads (%s)" % how if ok else "does NOT lead"))
    time.sleep(3)
    cluster.start_node(leader)
    nem.wait_healthy(60)
    prod.stop_event.set()
    prod.join(60)
    time.sleep(1)
    reader.stop_event.set()
    reader.join(30)
    workload.final_read(bootstrap, h)
    d = h.to_dict()
    with gzip.open(os.path.join(out_dir, "history-selftest.json.gz"), "wt") as fh:
        json.dump(d, fh)
    res = checker.check(d)
    return {"selftest": res}, {"selftest_steps": steps, "workloads": {"selftest": {
        "result": res, "final_read_complete": d["final_complete"], "client_errors": len(d["client_errors"]),
        "client_error_examples": d["client_errors"][:10]}}}


def wait_for(fn, timeout, interval=0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if fn():
                return True, time.time() - t0
        except (OSError, nemesis.NemesisError, KeyError, nemesis.kafka_wire.WireError):
            pass
        time.sleep(interval)
    return False, time.time() - t0


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launcher", default=ARUS_LAUNCHER)
    ap.add_argument("--duration", type=float, default=75, help="seconds of faults (CI default 75; the soak: 600)")
    ap.add_argument("--faults", help="fault kinds, in turn (default: %s, and with --netns %s)"
                    % (",".join(nemesis.FAULTS), ",".join(nemesis.NET_FAULTS)))
    ap.add_argument("--netns", action="store_true", help="run the nodes in network namespaces and add network partitions")
    ap.add_argument("--net-hold", type=float, default=10.0, help="seconds each network partition lasts")
    ap.add_argument("--powercut", type=int, metavar="NODE", help="put NODE's data on plfs and add power cuts of it")
    ap.add_argument("--hold", type=float, default=4.0, help="seconds each fault lasts before it is healed")
    ap.add_argument("--quiet", type=float, default=3.0, help="seconds between a healthy cluster and the next fault")
    ap.add_argument("--heal-timeout", type=float, default=60.0)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--rate", type=float, default=150.0, help="records/s per producer")
    ap.add_argument("--readers", type=int, default=2, help="assign-based readers")
    ap.add_argument("--group-readers", type=int, default=1)
    ap.add_argument("--txn-workers", type=int, default=2, help="0: no transactional workload")
    ap.add_argument("--warmup-timeout", type=float, default=30.0,
                    help="seconds for every partition to acknowledge a write before the faults begin")
    ap.add_argument("--message-timeout-ms", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--selftest", action="store_true", help="unclean election and acks=1: must report lost writes")
    ap.add_argument("--out", help="directory under which each run writes NAME-TIME/ (report.json, histories; default faults/jepsen/work)")
    ap.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    ap.add_argument("--ci", action="store_true", help="the CI command: the fault run, then the self-test")
    args = ap.parse_args()
    if args.ci:
        code = run_once(args, selftest_mode=False)
        code2 = run_once(args, selftest_mode=True)
        log("CI: fault run %s, self-test %s" % ("PASS" if code == 0 else "FAIL", "PASS" if code2 == 0 else "FAIL"))
        return code or code2
    return run_once(args, selftest_mode=args.selftest)


def run_once(args, selftest_mode):
    t_start = time.time()
    env = None
    if args.netns:
        args.net = netns.Netns(3)
        args.net.setup()
        env = {"CLUSTER_NETNS": args.net.prefix}
    cluster = Cluster(args.launcher, 3, overrides=OVERRIDES, env=env)
    out_dir = os.path.join(args.out or os.path.join(HERE, "work"), "%s-%s%s" % (
        cluster.name, time.strftime("%Y%m%d-%H%M%S"), "-selftest" if selftest_mode else ""))
    os.makedirs(out_dir, exist_ok=True)
    client_log = logging.getLogger("librdkafka")
    client_log.propagate = False
    for h in list(client_log.handlers):
        client_log.removeHandler(h)
    handler = logging.FileHandler(os.path.join(out_dir, "clients.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    client_log.addHandler(handler)
    client_log.setLevel(logging.DEBUG)
    workload.CLIENT_LOGGER = client_log
    log("%s: 3 nodes via %s (%s)" % ("self-test" if selftest_mode else "fault run", cluster.name, cluster.dir))
    code, verdict, detail = 1, "FAIL", "?"
    report = {"launcher": cluster.name, "selftest": selftest_mode,
              "args": {k: v for k, v in vars(args).items() if k not in ("net", "power")},
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.power = None
    try:
        if args.powercut and not selftest_mode:
            cluster.format()
            args.power = powercut.PowerCut(cluster, args.powercut, seed=args.seed)
            args.power.setup()
            log("node %d's data directory is on plfs (%s)" % (args.powercut, args.power.mnt))
        cluster.start()
        log("cluster up: %s" % cluster.bootstrap)
        if selftest_mode:
            results, rep = selftest(cluster, args, out_dir)
            lost = results["selftest"]["lost_write"]["count"]
            verdict = "PASS" if lost > 0 else "FAIL"
            detail = "the checker reports %d lost writes, as it must" % lost if lost else "the checker found no lost write: it could not fail"
            code = 0 if lost else 1
        else:
            results, rep = main_run(cluster, args, out_dir)
            total = sum(checker.anomaly_total(r) for r in results.values())
            acked = results["idempotent"]["stats"]["acknowledged"]
            complete = all(w["final_read_complete"] for w in rep["workloads"].values())
            unhealed = rep["unhealed"]
            code = 0 if total == 0 and acked > 0 and complete and not unhealed else 1
            verdict = "PASS" if code == 0 else "FAIL"
            detail = "%d anomalies, %d acknowledged writes, final read %s%s" % (
                total, acked, "complete" if complete else "INCOMPLETE",
                "; the cluster did not recover from %s" % unhealed if unhealed else "")
        report.update(rep)
        summarize(results, rep)
    except LauncherError as e:
        log("launcher: %s" % e)
        detail = str(e)
        code = 3 if e.code == 3 else 1
    except (nemesis.NemesisError, netns.NetnsError, powercut.PowerCutError, confluent_kafka.KafkaException) as e:
        log("error: %s" % e)
        detail = str(e)
    except Exception as e:  # noqa: BLE001  (a bug of the harness: still a FAIL with the cluster stopped)
        import traceback
        traceback.print_exc()
        detail = "harness error: %r" % e
    finally:
        report["wall_s"] = round(time.time() - t_start, 1)
        if args.power is not None:
            # Stopped before its directory goes: plfs unmounts only once nothing holds a file.
            try:
                cluster.stop()
            except LauncherError:
                pass
            args.power.teardown()
        cluster.destroy(keep=args.keep or code != 0)
        if args.netns:
            args.net.teardown()
    report["verdict"], report["detail"] = verdict, detail
    with open(os.path.join(out_dir, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1, default=str)
    log("%s [%s%s] %s (%.0f s; report %s%s)" % (verdict, cluster.name, ", self-test" if selftest_mode else "", detail,
                                                 time.time() - t_start, os.path.join(out_dir, "report.json"),
                                                 "; cluster kept in %s" % cluster.dir if (args.keep or code != 0) else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
