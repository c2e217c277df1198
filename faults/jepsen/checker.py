"""The Jepsen-style checker: pure functions over a recorded history (no I/O, no clock), so each
anomaly class is tested with hand-made histories (test_checker.py).

The history is a dict:

    "sends":  [{"process", "value", "partition", "offset", "outcome", "t0", "t1", "error", "txn"}]
              outcome "ok" (acknowledged at partition/offset), "fail" (definitely not written) or
              "unknown" (timed out or cut off: may or may not have been written); "txn" is the
              id of the transaction the send belongs to, or None
    "polls":  [[consumer, epoch, partition, offset, value, t]]   in the order each consumer saw
              them; "epoch" counts the consumer's rebalances/seeks: offsets may go back (and
              jump) only from one epoch to the next
    "consumers": {consumer: {"isolation": "read_committed" | "read_uncommitted"}}
    "final":  {partition: [[offset, value]]}  the read of every partition from the log start to
              the high watermark once the faults are healed
    "final_isolation": isolation of the final read
    "txns":   [{"id", "outcome", "reads": [values], "writes": [values]}]  outcome "commit"
              (commit_transaction returned), "abort" (abort_transaction returned), "unknown"

Partitions are ints (JSON keys are converted by `normalise`). Values are unique strings
(producer id and sequence), so a value names one write.

`check(history)` returns {anomaly class: {"count": n, "examples": [...]}} for every class in
ANOMALIES (count 0 when none) plus informational figures under "stats".
"""
import bisect
from collections import defaultdict

ANOMALIES = ("lost_write", "duplicate", "inconsistent_offset", "offset_mismatch",
             "nonmonotonic_poll", "poll_skip", "aborted_read", "g1c")
EXAMPLES = 8


def normalise(history):
    """A history read back from JSON: partition keys as ints, lists as they are."""
    h = dict(history)
    h["final"] = {int(p): [tuple(r) for r in recs] for p, recs in history.get("final", {}).items()}
    h.setdefault("sends", [])
    h.setdefault("polls", [])
    h.setdefault("consumers", {})
    h.setdefault("txns", [])
    h.setdefault("final_isolation", "read_uncommitted")
    return h


def _result(items):
    return {"count": len(items), "examples": items[:EXAMPLES]}


def _txn_outcomes(history):
    return {t["id"]: t["outcome"] for t in history.get("txns", [])}


def _reads(history):
    """Every observed record as (reader, partition, offset, value); the final read is reader
    "final"."""
    for c, _epoch, p, o, v, _t in history.get("polls", []):
        yield c, p, o, v
    for p, recs in history.get("final", {}).items():
        for o, v in recs:
            yield "final", p, o, v


def _isolation(history, reader):
    if reader == "final":
        return history.get("final_isolation", "read_uncommitted")
    return history.get("consumers", {}).get(reader, {}).get("isolation", "read_uncommitted")


def acknowledged(history):
    """Values whose write the cluster confirmed: an ok send outside a transaction, or an ok send
    of a transaction whose commit returned. Returns {value: send}."""
    outcomes = _txn_outcomes(history)
    out = {}
    for s in history.get("sends", []):
        if s["outcome"] != "ok":
            continue
        if s.get("txn") is not None and outcomes.get(s["txn"]) != "commit":
            continue
        out[s["value"]] = s
    return out


def lost_writes(history):
    """Acknowledged values absent from the final read (which covers every partition from the log
    start to the end after the faults were healed)."""
    final_values = {v for recs in history.get("final", {}).values() for _o, v in recs}
    lost = [{"value": v, "partition": s["partition"], "offset": s["offset"], "acked_at": s.get("t1")}
            for v, s in acknowledged(history).items() if v not in final_values]
    lost.sort(key=lambda x: (x["partition"], x["offset"]))
    return lost


def duplicates(history):
    """One value stored at two or more positions (partition, offset)."""
    where = defaultdict(set)
    for _r, p, o, v in _reads(history):
        where[v].add((p, o))
    return [{"value": v, "positions": sorted(pos)} for v, pos in sorted(where.items()) if len(pos) > 1]


def inconsistent_offsets(history):
    """One (partition, offset) read with two or more different values (by any readers)."""
    seen = defaultdict(dict)
    for r, p, o, v in _reads(history):
        seen[(p, o)].setdefault(v, r)
    return [{"partition": p, "offset": o, "values": {v: r for v, r in vals.items()}}
            for (p, o), vals in sorted(seen.items()) if len(vals) > 1]


def offset_mismatches(history):
    """A value read at a position other than the one its acknowledgement named."""
    acked = {s["value"]: (s["partition"], s["offset"]) for s in history.get("sends", [])
             if s["outcome"] == "ok" and s.get("offset") is not None and s["offset"] >= 0}
    out, reported = [], set()
    for r, p, o, v in _reads(history):
        want = acked.get(v)
        if want is not None and want != (p, o) and (v, p, o) not in reported:
            reported.add((v, p, o))
            out.append({"value": v, "acked": list(want), "read": [p, o], "reader": r})
    return out


def _consumer_sequences(history):
    """{(consumer, partition): [(epoch, offset, value, t)]} in poll order."""
    seqs = defaultdict(list)
    for c, epoch, p, o, v, t in history.get("polls", []):
        seqs[(c, p)].append((epoch, o, v, t))
    return seqs


def nonmonotonic_polls(history):
    """A consumer's offsets in one partition not strictly increasing within one epoch (no
    rebalance or seek between the two polls)."""
    out = []
    for (c, p), seq in sorted(_consumer_sequences(history).items()):
        for (e0, o0, _v0, _t0), (e1, o1, v1, t1) in zip(seq, seq[1:]):
            if e0 == e1 and o1 <= o0:
                out.append({"consumer": c, "partition": p, "epoch": e1, "from": o0, "to": o1, "value": v1, "t": t1})
    return out


def poll_skips(history):
    """A consumer jumping, within one epoch, over offsets of a partition that another reader of
    the same isolation level saw holding a record. Gaps nobody saw filled (transaction markers,
    aborted records for read_committed readers) are not skips."""
    observed = {}  # (isolation, partition) -> sorted offsets
    by_key = defaultdict(set)
    for r, p, o, _v in _reads(history):
        by_key[(_isolation(history, r), p)].add(o)
    for k, offs in by_key.items():
        observed[k] = sorted(offs)
    out = []
    for (c, p), seq in sorted(_consumer_sequences(history).items()):
        offs = observed.get((_isolation(history, c), p), [])
        for (e0, o0, _v0, _t0), (e1, o1, _v1, t1) in zip(seq, seq[1:]):
            if e0 != e1 or o1 <= o0 + 1:
                continue
            lo, hi = bisect.bisect_right(offs, o0), bisect.bisect_left(offs, o1)
            if hi > lo:
                out.append({"consumer": c, "partition": p, "epoch": e1, "from": o0, "to": o1,
                            "skipped": offs[lo:min(hi, lo + 5)], "skipped_count": hi - lo, "t": t1})
    return out


def aborted_reads(history):
    """A read_committed reader (a consumer, or the final read) seeing a value of a transaction
    whose abort_transaction returned."""
    outcomes = _txn_outcomes(history)
    txn_of = {s["value"]: s["txn"] for s in history.get("sends", []) if s.get("txn") is not None}
    for t in history.get("txns", []):
        for v in t.get("writes", []):
            txn_of[v] = t["id"]
    out = []
    for r, p, o, v in _reads(history):
        if _isolation(history, r) != "read_committed":
            continue
        tid = txn_of.get(v)
        if tid is not None and outcomes.get(tid) == "abort":
            out.append({"reader": r, "partition": p, "offset": o, "value": v, "txn": tid})
    return out


def dependency_graph(history):
    """Write-read dependencies between committed transactions (Adya): wr T1 -> T2 when T2 read a
    value T1 wrote; ww T1 -> T2 when T2's write follows T1's directly in a partition's log (the
    final read's order is the version order) and T1's commit returned before T2 began (t1 < t0).

    Why ww only between transactions ordered in real time: Kafka lets the writes of concurrent
    transactions interleave, in one order in one partition and the other order in another, which
    is legal and would make every such pair a ww cycle. With that restriction, and with the
    workload's transactions reading before they write, every edge T1 -> T2 means T1's first write
    happened before T2's (wr: T1 committed before T2's read ended, which precedes T2's writes), so
    no legal history has a cycle. A transaction with unknown outcome whose writes the final read
    shows counts as committed. Returns {txn: {txn: "ww"|"wr"|"ww+wr"}}."""
    outcomes = _txn_outcomes(history)
    times = {t["id"]: (t.get("t0"), t.get("t1")) for t in history.get("txns", [])}

    def before(a, b):
        a1, b0 = times.get(a, (None, None))[1], times.get(b, (None, None))[0]
        return a1 is not None and b0 is not None and a1 < b0

    writer = {}
    for t in history.get("txns", []):
        for v in t.get("writes", []):
            writer[v] = t["id"]
    for s in history.get("sends", []):
        if s.get("txn") is not None:
            writer[s["value"]] = s["txn"]
    visible = set()
    for recs in history.get("final", {}).values():
        for _o, v in recs:
            if v in writer:
                visible.add(writer[v])
    committed = {tid for tid, out in outcomes.items() if out == "commit" or (out == "unknown" and tid in visible)}
    graph = defaultdict(dict)
    for p, recs in sorted(history.get("final", {}).items()):
        prev = None
        for _o, v in sorted(recs):
            tid = writer.get(v)
            if tid is None or tid not in committed:
                continue
            if prev is not None and prev != tid and before(prev, tid):
                graph[prev].setdefault(tid, "ww")
            prev = tid
    for t in history.get("txns", []):
        if t["id"] not in committed:
            continue
        for v in t.get("reads", []):
            src = writer.get(v)
            if src is not None and src != t["id"] and src in committed:
                graph[src][t["id"]] = "wr" if graph[src].get(t["id"]) in (None, "wr") else "ww+wr"
    return graph


def _sccs(graph):
    """Tarjan's strongly connected components, iteratively (histories hold thousands of
    transactions)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    nodes = set(graph) | {d for ds in graph.values() for d in ds}
    for root in sorted(nodes, key=str):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}), key=str)))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, {}), key=str))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    comp.append(n)
                    if n == node:
                        break
                out.append(comp)
    return out


def _cycle_in(graph, comp):
    """One cycle through the component's members, as [(from, to, kind)]."""
    members = set(comp)
    start = min(comp, key=str)
    parent = {start: None}
    queue = [start]
    while queue:
        n = queue.pop(0)
        for d in sorted(graph.get(n, {}), key=str):
            if d == start:
                path, cur = [(n, start, graph[n][start])], n
                while parent[cur] is not None:
                    path.append((parent[cur], cur, graph[parent[cur]][cur]))
                    cur = parent[cur]
                return list(reversed(path))
            if d in members and d not in parent:
                parent[d] = n
                queue.append(d)
    return []


def g1c(history):
    """Cycles of ww/wr dependencies among committed transactions (G1c; with ww edges only between
    transactions ordered in real time, every cycle has a wr edge). One example cycle per strongly
    connected component."""
    graph = dependency_graph(history)
    out = []
    for comp in _sccs(graph):
        if len(comp) > 1:
            out.append({"transactions": sorted(comp, key=str), "cycle": _cycle_in(graph, comp)})
    return out


def check(history):
    h = normalise(history)
    res = {
        "lost_write": _result(lost_writes(h)),
        "duplicate": _result(duplicates(h)),
        "inconsistent_offset": _result(inconsistent_offsets(h)),
        "offset_mismatch": _result(offset_mismatches(h)),
        "nonmonotonic_poll": _result(nonmonotonic_polls(h)),
        "poll_skip": _result(poll_skips(h)),
        "aborted_read": _result(aborted_reads(h)),
        "g1c": _result(g1c(h)),
    }
    sends = h["sends"]
    res["stats"] = {
        "sends": len(sends),
        "ok": sum(1 for s in sends if s["outcome"] == "ok"),
        "fail": sum(1 for s in sends if s["outcome"] == "fail"),
        "unknown": sum(1 for s in sends if s["outcome"] == "unknown"),
        "acknowledged": len(acknowledged(h)),
        "polls": len(h["polls"]),
        "final_records": sum(len(r) for r in h["final"].values()),
        "txns": {k: sum(1 for t in h["txns"] if t["outcome"] == k) for k in ("commit", "abort", "unknown")},
        "unknown_written": _unknown_written(h),
    }
    return res


def _unknown_written(h):
    """Sends with an unknown outcome that the final read shows were written (informational)."""
    final_values = {v for recs in h["final"].values() for _o, v in recs}
    return sum(1 for s in h["sends"] if s["outcome"] == "unknown" and s["value"] in final_values)


def anomaly_total(result):
    return sum(result[k]["count"] for k in ANOMALIES)


def main(paths):
    """python3 faults/jepsen/checker.py HISTORY.json[.gz]...: re-checks saved histories; exit 1
    if any has an anomaly."""
    import gzip
    import json
    bad = 0
    for path in paths:
        with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as fh:
            res = check(json.load(fh))
        total = anomaly_total(res)
        bad += total > 0
        print("%s: %s" % (path, "no anomaly" if total == 0 else "%d anomalies" % total))
        for k in ANOMALIES:
            if res[k]["count"]:
                print("  %-20s %6d   e.g. %s" % (k, res[k]["count"], json.dumps(res[k]["examples"][:2])[:400]))
        print("  stats: %s" % json.dumps(res["stats"]))
    return 1 if bad else 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
