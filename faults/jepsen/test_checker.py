"""Unit tests of checker.py on hand-made histories: each anomaly class has a history that shows
it (the check must count it) and a near-identical clean one (it must not).

    python3 -m unittest faults/jepsen/test_checker.py      (standard library only)
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


def send(value, partition, offset, outcome="ok", txn=None):
    return {"process": value.split("-")[0], "value": value, "partition": partition, "offset": offset,
            "outcome": outcome, "t0": 0.0, "t1": 0.1, "error": None, "txn": txn}


def poll(consumer, partition, offset, value, epoch=0):
    return [consumer, epoch, partition, offset, value, 0.0]


def history(sends=(), polls=(), final=None, txns=(), consumers=None, final_isolation="read_uncommitted"):
    return {"sends": list(sends), "polls": list(polls), "final": final or {}, "txns": list(txns),
            "consumers": consumers or {}, "final_isolation": final_isolation}


def counts(h):
    r = checker.check(h)
    return {k: r[k]["count"] for k in checker.ANOMALIES}


CLEAN = history(
    sends=[send("p0-0", 0, 0), send("p0-1", 1, 0), send("p1-0", 0, 1), send("p1-1", 1, 1, outcome="unknown")],
    polls=[poll("c0", 0, 0, "p0-0"), poll("c0", 0, 1, "p1-0"), poll("c0", 1, 0, "p0-1"), poll("c0", 1, 1, "p1-1")],
    final={0: [(0, "p0-0"), (1, "p1-0")], 1: [(0, "p0-1"), (1, "p1-1")]},
)


class CleanHistory(unittest.TestCase):
    def test_no_anomaly(self):
        self.assertEqual(checker.anomaly_total(checker.check(CLEAN)), 0)
        self.assertEqual(checker.check(CLEAN)["stats"]["unknown_written"], 1)


class LostWrite(unittest.TestCase):
    def test_acknowledged_but_absent_from_final_read(self):
        h = history(sends=[send("p0-0", 0, 0), send("p0-1", 0, 1)], final={0: [(0, "p0-0")]})
        r = checker.check(h)
        self.assertEqual(r["lost_write"]["count"], 1)
        self.assertEqual(r["lost_write"]["examples"][0]["value"], "p0-1")

    def test_unknown_or_failed_send_absent_is_not_lost(self):
        h = history(sends=[send("p0-0", 0, 0), send("p0-1", None, None, "unknown"), send("p0-2", None, None, "fail")],
                    final={0: [(0, "p0-0")]})
        self.assertEqual(counts(h)["lost_write"], 0)

    def test_seen_by_a_consumer_but_not_finally_is_lost(self):
        h = history(sends=[send("p0-0", 0, 0)], polls=[poll("c0", 0, 0, "p0-0")], final={0: []})
        self.assertEqual(counts(h)["lost_write"], 1)

    def test_write_of_a_committed_transaction_counts_aborted_does_not(self):
        h = history(sends=[send("t0-0", 0, 0, txn="T0"), send("t1-0", 0, 1, txn="T1")],
                    txns=[{"id": "T0", "outcome": "commit", "reads": [], "writes": ["t0-0"]},
                          {"id": "T1", "outcome": "abort", "reads": [], "writes": ["t1-0"]}],
                    final={0: []}, final_isolation="read_committed")
        lost = checker.check(h)["lost_write"]
        self.assertEqual([x["value"] for x in lost["examples"]], ["t0-0"])


class Duplicate(unittest.TestCase):
    def test_value_at_two_offsets(self):
        h = history(sends=[send("p0-0", 0, 0)], final={0: [(0, "p0-0"), (1, "p0-0")]})
        r = checker.check(h)
        self.assertEqual(r["duplicate"]["count"], 1)
        self.assertEqual(r["duplicate"]["examples"][0]["positions"], [(0, 0), (0, 1)])

    def test_value_in_two_partitions_seen_by_different_readers(self):
        h = history(polls=[poll("c0", 0, 0, "p0-0")], final={1: [(0, "p0-0")]})
        self.assertEqual(counts(h)["duplicate"], 1)

    def test_same_position_read_twice_is_not_a_duplicate(self):
        h = history(polls=[poll("c0", 0, 0, "p0-0"), poll("c1", 0, 0, "p0-0")], final={0: [(0, "p0-0")]})
        self.assertEqual(counts(h)["duplicate"], 0)


class InconsistentOffset(unittest.TestCase):
    def test_offset_with_two_values(self):
        h = history(polls=[poll("c0", 0, 5, "p0-0")], final={0: [(5, "p1-0")]})
        r = checker.check(h)
        self.assertEqual(r["inconsistent_offset"]["count"], 1)
        self.assertEqual(r["inconsistent_offset"]["examples"][0]["offset"], 5)

    def test_same_offset_other_partition_is_fine(self):
        h = history(polls=[poll("c0", 0, 5, "p0-0")], final={0: [(5, "p0-0")], 1: [(5, "p1-0")]})
        self.assertEqual(counts(h)["inconsistent_offset"], 0)


class OffsetMismatch(unittest.TestCase):
    def test_read_elsewhere_than_acknowledged(self):
        h = history(sends=[send("p0-0", 0, 3)], final={0: [(4, "p0-0")]})
        r = checker.check(h)
        self.assertEqual(r["offset_mismatch"]["count"], 1)
        self.assertEqual(r["offset_mismatch"]["examples"][0]["acked"], [0, 3])

    def test_unacknowledged_value_has_no_expected_offset(self):
        h = history(sends=[send("p0-0", None, None, "unknown")], final={0: [(4, "p0-0")]})
        self.assertEqual(counts(h)["offset_mismatch"], 0)


class NonMonotonicPoll(unittest.TestCase):
    def test_offset_goes_back_without_rebalance(self):
        h = history(polls=[poll("c0", 0, 0, "a"), poll("c0", 0, 1, "b"), poll("c0", 0, 0, "a")],
                    final={0: [(0, "a"), (1, "b")]})
        r = checker.check(h)
        self.assertEqual(r["nonmonotonic_poll"]["count"], 1)
        self.assertEqual((r["nonmonotonic_poll"]["examples"][0]["from"], r["nonmonotonic_poll"]["examples"][0]["to"]), (1, 0))

    def test_same_offset_twice_counts(self):
        h = history(polls=[poll("c0", 0, 1, "b"), poll("c0", 0, 1, "b")], final={0: [(0, "a"), (1, "b")]})
        self.assertEqual(counts(h)["nonmonotonic_poll"], 1)

    def test_back_after_rebalance_is_fine(self):
        h = history(polls=[poll("c0", 0, 0, "a"), poll("c0", 0, 1, "b"), poll("c0", 0, 0, "a", epoch=1)],
                    final={0: [(0, "a"), (1, "b")]})
        self.assertEqual(counts(h)["nonmonotonic_poll"], 0)

    def test_other_partition_interleaved_is_fine(self):
        h = history(polls=[poll("c0", 0, 5, "a"), poll("c0", 1, 0, "b"), poll("c0", 0, 6, "c")],
                    final={0: [(5, "a"), (6, "c")], 1: [(0, "b")]})
        self.assertEqual(counts(h)["nonmonotonic_poll"], 0)


class PollSkip(unittest.TestCase):
    FINAL = {0: [(0, "a"), (1, "b"), (2, "c")]}

    def test_jump_over_an_offset_others_read(self):
        h = history(polls=[poll("c0", 0, 0, "a"), poll("c0", 0, 2, "c")], final=self.FINAL)
        r = checker.check(h)
        self.assertEqual(r["poll_skip"]["count"], 1)
        self.assertEqual(r["poll_skip"]["examples"][0]["skipped"], [1])

    def test_gap_nobody_saw_filled_is_not_a_skip(self):
        # e.g. a transaction marker at offset 1
        h = history(polls=[poll("c0", 0, 0, "a"), poll("c0", 0, 2, "c")], final={0: [(0, "a"), (2, "c")]})
        self.assertEqual(counts(h)["poll_skip"], 0)

    def test_jump_across_a_rebalance_is_fine(self):
        h = history(polls=[poll("c0", 0, 0, "a"), poll("c0", 0, 2, "c", epoch=1)], final=self.FINAL)
        self.assertEqual(counts(h)["poll_skip"], 0)

    def test_read_committed_reader_skipping_what_only_an_uncommitted_reader_saw_is_fine(self):
        h = history(polls=[poll("rc", 0, 0, "a"), poll("rc", 0, 2, "c"), poll("ru", 0, 1, "x")],
                    consumers={"rc": {"isolation": "read_committed"}, "ru": {"isolation": "read_uncommitted"}},
                    final={0: [(0, "a"), (2, "c")]}, final_isolation="read_committed")
        self.assertEqual(counts(h)["poll_skip"], 0)


class AbortedRead(unittest.TestCase):
    TXNS = [{"id": "T0", "outcome": "abort", "reads": [], "writes": ["t0-0"]},
            {"id": "T1", "outcome": "commit", "reads": [], "writes": ["t1-0"]}]
    RC = {"c0": {"isolation": "read_committed"}}

    def test_read_committed_consumer_sees_aborted_value(self):
        h = history(sends=[send("t0-0", 0, 0, txn="T0"), send("t1-0", 0, 1, txn="T1")], txns=self.TXNS,
                    polls=[poll("c0", 0, 0, "t0-0")], consumers=self.RC,
                    final={0: [(1, "t1-0")]}, final_isolation="read_committed")
        r = checker.check(h)
        self.assertEqual(r["aborted_read"]["count"], 1)
        self.assertEqual(r["aborted_read"]["examples"][0]["txn"], "T0")

    def test_final_read_committed_sees_aborted_value(self):
        h = history(txns=self.TXNS, final={0: [(0, "t0-0"), (1, "t1-0")]}, final_isolation="read_committed")
        self.assertEqual(counts(h)["aborted_read"], 1)

    def test_read_uncommitted_reader_may_see_it(self):
        h = history(txns=self.TXNS, polls=[poll("c0", 0, 0, "t0-0")], consumers={"c0": {"isolation": "read_uncommitted"}},
                    final={0: [(1, "t1-0")]}, final_isolation="read_committed")
        self.assertEqual(counts(h)["aborted_read"], 0)


class G1c(unittest.TestCase):
    def test_write_read_cycle(self):
        # T1 read T2's write and T2 read T1's write: each depends on the other.
        txns = [{"id": "T1", "outcome": "commit", "reads": ["t2-0"], "writes": ["t1-0"]},
                {"id": "T2", "outcome": "commit", "reads": ["t1-0"], "writes": ["t2-0"]}]
        h = history(txns=txns, final={0: [(0, "t1-0")], 1: [(0, "t2-0")]}, final_isolation="read_committed")
        r = checker.check(h)
        self.assertEqual(r["g1c"]["count"], 1)
        self.assertEqual(r["g1c"]["examples"][0]["transactions"], ["T1", "T2"])
        self.assertEqual({k for _a, _b, k in r["g1c"]["examples"][0]["cycle"]}, {"wr"})

    def test_ww_then_wr_cycle(self):
        # T1 committed before T2 began and T2's write follows T1's in partition 0 (ww T1->T2), yet
        # T1 read T2's other write (wr T2->T1).
        txns = [{"id": "T1", "outcome": "commit", "reads": ["t2-1"], "writes": ["t1-0"], "t0": 0.0, "t1": 1.0},
                {"id": "T2", "outcome": "commit", "reads": [], "writes": ["t2-0", "t2-1"], "t0": 2.0, "t1": 3.0}]
        h = history(txns=txns, final={0: [(0, "t1-0"), (1, "t2-0")], 1: [(0, "t2-1")]}, final_isolation="read_committed")
        r = checker.check(h)
        self.assertEqual(r["g1c"]["count"], 1)
        self.assertEqual(sorted(k for _a, _b, k in r["g1c"]["examples"][0]["cycle"]), ["wr", "ww"])

    def test_concurrent_transactions_interleaving_is_legal(self):
        # T1 before T2 in partition 0, T2 before T1 in partition 1: both ran at once, so the log
        # order between them is no dependency.
        txns = [{"id": "T1", "outcome": "commit", "reads": [], "writes": ["t1-0", "t1-1"], "t0": 0.0, "t1": 2.0},
                {"id": "T2", "outcome": "commit", "reads": [], "writes": ["t2-0", "t2-1"], "t0": 1.0, "t1": 3.0}]
        h = history(txns=txns, final={0: [(0, "t1-0"), (1, "t2-0")], 1: [(0, "t2-1"), (1, "t1-1")]})
        self.assertEqual(counts(h)["g1c"], 0)
        # The same two orders between transactions one after the other in time are a cycle.
        txns[1]["t0"] = 2.5
        txns[0]["reads"] = ["t2-1"]
        self.assertEqual(counts(h)["g1c"], 1)

    def test_chain_is_acyclic(self):
        txns = [{"id": "T1", "outcome": "commit", "reads": [], "writes": ["t1-0"]},
                {"id": "T2", "outcome": "commit", "reads": ["t1-0"], "writes": ["t2-0"]},
                {"id": "T3", "outcome": "commit", "reads": ["t2-0", "t1-0"], "writes": ["t3-0"]}]
        h = history(txns=txns, final={0: [(0, "t1-0"), (1, "t2-0"), (2, "t3-0")]}, final_isolation="read_committed")
        self.assertEqual(counts(h)["g1c"], 0)

    def test_aborted_transaction_is_not_in_the_graph(self):
        txns = [{"id": "T1", "outcome": "commit", "reads": ["t2-0"], "writes": ["t1-0"]},
                {"id": "T2", "outcome": "abort", "reads": ["t1-0"], "writes": ["t2-0"]}]
        h = history(txns=txns, final={0: [(0, "t1-0")], 1: [(0, "t2-0")]})
        self.assertEqual(counts(h)["g1c"], 0)

    def test_long_cycle(self):
        n = 50
        txns = [{"id": "T%d" % i, "outcome": "commit", "reads": ["v%d" % ((i - 1) % n)], "writes": ["v%d" % i]}
                for i in range(n)]
        h = history(txns=txns, final={i: [(0, "v%d" % i)] for i in range(n)})
        r = checker.check(h)
        self.assertEqual(r["g1c"]["count"], 1)
        self.assertEqual(len(r["g1c"]["examples"][0]["cycle"]), n)


class JsonRoundTrip(unittest.TestCase):
    def test_partition_keys_from_json(self):
        import json
        h = json.loads(json.dumps(history(sends=[send("p0-0", 0, 0)], final={0: [(0, "p0-0")]})))
        self.assertEqual(checker.anomaly_total(checker.check(h)), 0)


if __name__ == "__main__":
    unittest.main()
