"""Collector shards: partition routing, and the shards' replies add up (`+`, and
`sum_replies` over their JSON) to the reply of one collector reading every partition."""

from __future__ import annotations

import functools
import operator
import random

import pytest

from harness.collector.kafka_read import ReadBatch
from harness.collector.process import Collector
from harness.collector.replies import CollectorSnapshot, sum_replies
from harness.collector.shards import parse_shard, shard_of, split_partitions
from ingest.records import FeedRecord

SHARDS = 3
PARTITIONS = 12


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        return self.now


Record = tuple[int, bytes]
"""(partition, value)."""


def _traffic(seed: int = 3) -> list[tuple[int, list[Record]]]:
    """Batches (observed ns, records) over 40 symbols in 12 partitions, 6 s, with lag modes,
    a gap and a duplicate."""
    rng = random.Random(seed)
    symbols = [f"S{i:02d}" for i in range(40)]
    tick = dict.fromkeys(symbols, 100)
    t0 = 1_700_000_000_000_000_000
    batches = []
    for b in range(300):
        observed = t0 + b * 20_000_000
        messages = []
        for _ in range(rng.randrange(20, 60)):
            symbol = rng.choice(symbols)
            tick[symbol] += 2 if rng.random() < 0.01 else 1  # an occasional gap
            lag = rng.choice((300_000, 2_000_000, 40_000_000))
            exchange = observed - lag - rng.randrange(1_000_000)
            value = FeedRecord(
                symbol, "trade", tick[symbol], exchange, exchange + 1000, exchange + 5000, {}
            ).to_value()
            part = symbols.index(symbol) % PARTITIONS
            messages.append((part, value))
            if rng.random() < 0.005:
                messages.append((part, value))  # a duplicate
        batches.append((observed, messages))
    return batches


def _snapshots() -> tuple[list[CollectorSnapshot], CollectorSnapshot]:
    """Shard snapshots (intervals sent in two snapshots) and the one collector's snapshot."""
    clock = Clock()
    shards = [Collector(clock=clock) for _ in range(SHARDS)]
    whole = Collector(clock=clock)
    for collector in [*shards, whole]:
        collector.set_stage("stage-1")
    early: list[CollectorSnapshot] = []
    batches = _traffic()
    for index, (observed, messages) in enumerate(batches):
        clock.now = observed
        whole.on_batch(ReadBatch.of_values([v for _, v in messages]), observed)
        for shard, collector in enumerate(shards):
            mine = [v for part, v in messages if shard_of(part, SHARDS) == shard]
            collector.on_batch(ReadBatch.of_values(mine), observed)
        if index == len(batches) // 2:
            early = [c.snapshot() for c in shards]
    for collector in [*shards, whole]:
        collector.set_stage(None)
    late = [c.snapshot() for c in shards]
    for part, first in zip(late, early, strict=True):
        assert first.intervals and first.intervals_uncorrected, "the early one sent some seconds"
        part.intervals = first.intervals + part.intervals
        part.intervals_uncorrected = first.intervals_uncorrected + part.intervals_uncorrected
    return late, whole.snapshot()


def test_partitions_split_by_shard_in_order() -> None:
    assert split_partitions([7, 0, 3, 4, 5, 1], 3) == [[0, 3], [7, 4, 1], [5]]
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def _assert_same(got: CollectorSnapshot, want: CollectorSnapshot) -> None:
    assert got.stage_messages == want.stage_messages
    assert got.consumed_messages == want.consumed_messages
    assert got.consumed_bytes == want.consumed_bytes
    assert got.label == "stage-1" and got.active is False
    assert got.measure.percentiles() == want.measure.percentiles()
    assert got.measure.messages == want.measure.messages
    assert got.measure.unavailable == want.measure.unavailable
    assert (got.measure.first_observed_ns, got.measure.last_observed_ns) == (
        want.measure.first_observed_ns,
        want.measure.last_observed_ns,
    )
    totals = got.completeness.totals()
    assert totals == want.completeness.totals() and totals["gaps"] > 0
    assert totals["duplicates"] > 0
    assert got.completeness.keys == want.completeness.keys
    for name in ("total", "total_uncorrected"):
        mine, theirs = got.new_intervals(name), want.new_intervals(name)
        seconds = [s for s, _tag, _packed in mine]
        assert seconds == sorted(set(seconds)) == [s for s, _t, _p in theirs]
        for (_, tag, packed), (_, want_tag, want_packed) in zip(mine, theirs, strict=True):
            assert tag == want_tag == "stage-1"
            assert packed == want_packed  # the same counts in every bucket


def test_shard_snapshots_add_up_to_one_collector_over_all_partitions() -> None:
    parts, whole = _snapshots()
    assert all(p.stage_messages > 0 for p in parts)
    _assert_same(functools.reduce(operator.add, parts), whole)


def test_shard_replies_sum_over_json_as_the_master_sums_them() -> None:
    parts, whole = _snapshots()
    wire = sum_replies("snapshot", [p.to_json() for p in parts])
    _assert_same(CollectorSnapshot.from_json(wire), CollectorSnapshot.from_json(whole.to_json()))


def test_counters_above_and_assign_are_summed_and_live_p99_is_the_largest() -> None:
    counters = sum_replies(
        "counters",
        [
            {"stage": "s", "consumed_messages": 5, "consumed_bytes": 50, "kafka_errors": 0,
             "last_error": "", "live_p99_us": 900, "t_ns": 2, "cpu_ns": 4_000},
            {"stage": "s", "consumed_messages": 7, "consumed_bytes": 70, "kafka_errors": 1,
             "last_error": "broker down", "live_p99_us": None, "t_ns": 3, "cpu_ns": 6_000},
            {"stage": "s", "consumed_messages": 0, "consumed_bytes": 0, "kafka_errors": 0,
             "last_error": "", "live_p99_us": None, "t_ns": 1, "cpu_ns": 1_000},
        ],
    )  # fmt: skip
    assert counters == {
        "consumed_messages": 12,
        "consumed_bytes": 120,
        "kafka_errors": 1,
        "cpu_ns": 11_000,
        "stage": "s",
        "last_error": "broker down",
        "live_p99_us": 900,
        "t_ns": 3,
    }
    drain = sum_replies(
        "drain",
        [
            {"drained": True, "behind": 0, "waited_s": 0.2},
            {"drained": False, "behind": 3, "waited_s": 5.0},
        ],
    )
    assert drain == {"drained": False, "behind": 3, "waited_s": 5.0}
    above = sum_replies(
        "above",
        [
            {"stage": "s", "messages": 10, "above": [3, 1]},
            {"stage": "s", "messages": 20, "above": [4, 0]},
        ],
    )
    assert above == {"stage": "s", "messages": 30, "above": [7, 1]}
    assign = sum_replies(
        "assign",
        [{"ok": True, "added": 2, "partitions": 3}, {"ok": True, "added": 1, "partitions": 1}],
    )
    assert assign == {"ok": True, "added": 3, "partitions": 4}


def test_an_error_of_one_shard_is_the_merged_reply_and_names_the_shard() -> None:
    reply = sum_replies("counters", [{"stage": None}, {"error": "no stage 'x'"}])
    assert reply == {"error": "collector shard 1: no stage 'x'"}
    assert "error" in sum_replies("snapshot", [])
