"""Sequence tracking (gaps, duplicates, reordering), merging, loss against feed_sim counters."""

from __future__ import annotations

import random

import numpy as np
import pytest

from contracts.sent import StageCounters, SymbolCount
from harness.collector.completeness import (
    MAX_HOLES,
    Completeness,
    KeyState,
    SequenceTracker,
)
from harness.collector.loss import compare


def _feed(tracker: SequenceTracker, records: list[tuple[str, str, int]], batch: int = 7) -> None:
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        tracker.update([r[0] for r in chunk], [r[1] for r in chunk], [r[2] for r in chunk])


def _reference(seqs: list[int]) -> dict[str, int]:
    """Brute force: what the tracker must report for one key."""
    seen: set[int] = set()
    high = None
    dup = ooo = 0
    for s in seqs:
        if s in seen:
            dup += 1
            continue
        if high is not None and s < high:
            ooo += 1
        seen.add(s)
        high = s if high is None else max(high, s)
    gaps = max(seen) - min(seen) + 1 - len(seen)
    return {
        "received": len(seqs),
        "unique": len(seen),
        "duplicates": dup,
        "out_of_order": ooo,
        "gaps": gaps,
    }


def _state(c: Completeness, key: tuple[str, str]) -> dict[str, int]:
    s = c.keys[key]
    return {
        "received": s.received,
        "unique": s.unique,
        "duplicates": s.duplicates,
        "out_of_order": s.out_of_order,
        "gaps": s.gaps,
    }


def test_in_order_stream_uses_no_holes() -> None:
    tracker = SequenceTracker()
    records = [("AAPL", "trade" if i % 3 else "quote", i) for i in range(100, 400)]
    records += [("AAPL", "depth", i) for i in range(1, 51)]
    _feed(tracker, records, batch=64)
    c = tracker.snapshot()
    l1, l2 = c.keys[("AAPL", "l1")], c.keys[("AAPL", "l2")]
    assert (l1.unique, l1.low, l1.high, l1.holes) == (300, 100, 399, [])
    assert (l2.unique, l2.gaps, l2.duplicates) == (50, 0, 0)


def test_gap_duplicate_and_reorder() -> None:
    tracker = SequenceTracker()
    seqs = [1, 2, 3, 6, 7, 5, 7, 8, 12, 2, 11]
    _feed(tracker, [("MSFT", "quote", s) for s in seqs], batch=4)
    got = _state(tracker.snapshot(), ("MSFT", "l1"))
    assert got == _reference(seqs)
    assert got["gaps"] == 3  # 4, 9, 10


@pytest.mark.parametrize("flush_at", [1, 13, 4096])
def test_random_streams_match_brute_force(flush_at: int) -> None:
    """Also across buffered batches: flushed after every batch, every few, or at the end."""
    rng = random.Random(3)
    for trial in range(30):
        seqs = list(range(rng.randrange(50, 300)))
        rng.shuffle(seqs[: rng.randrange(0, 40)])  # a disordered head
        for _ in range(rng.randrange(0, 10)):
            seqs.pop(rng.randrange(len(seqs)))  # losses
        for _ in range(rng.randrange(0, 10)):
            seqs.insert(rng.randrange(len(seqs)), rng.choice(seqs))  # duplicates
        for _ in range(rng.randrange(0, 10)):  # local swaps
            j = rng.randrange(len(seqs) - 1)
            seqs[j], seqs[j + 1] = seqs[j + 1], seqs[j]
        tracker = SequenceTracker(flush_at=flush_at)
        records = [("S", "trade", s) for s in seqs] + [("T", "trade", s) for s in range(20)]
        _feed(tracker, records, batch=rng.randrange(1, 50))
        c = tracker.snapshot()
        assert _state(c, ("S", "l1")) == _reference(seqs), trial
        assert _state(c, ("T", "l1"))["unique"] == 20


def test_merge_of_shards_equals_one_tracker() -> None:
    rng = random.Random(5)
    seqs = [s for s in range(500) if rng.random() > 0.02]
    seqs += rng.sample(seqs, 10)  # duplicates across the shards
    rng.shuffle(seqs)
    whole, a, b = SequenceTracker(), SequenceTracker(), SequenceTracker()
    _feed(whole, [("X", "trade", s) for s in seqs])
    _feed(a, [("X", "trade", s) for s in seqs[:300]])
    _feed(b, [("X", "trade", s) for s in seqs[300:]])
    merged = a.snapshot() + b.snapshot()
    one = whole.snapshot()
    for name in ("received", "unique", "duplicates", "gaps"):
        assert _state(merged, ("X", "l1"))[name] == _state(one, ("X", "l1"))[name]
    assert merged.keys[("X", "l1")].holes == one.keys[("X", "l1")].holes


def test_json_round_trip() -> None:
    tracker = SequenceTracker()
    _feed(tracker, [("A|B", "trade", s) for s in (1, 2, 5, 4, 4)])
    c = tracker.snapshot()
    back = Completeness.from_json(c.to_json())
    assert back.keys == c.keys and back.totals() == c.totals()


def test_holes_are_bounded() -> None:
    state = KeyState()
    for seq in range(0, 4 * MAX_HOLES * 2, 2):  # every other seq lost
        state.note(seq)
    assert len(state.holes) <= MAX_HOLES
    assert state.gaps == 4 * MAX_HOLES - 1
    state.note(1)  # a late fill of a forgotten hole: ambiguous
    assert state.ambiguous == 1


def test_forgotten_holes_follow_the_one_record_rule() -> None:
    """Past MAX_HOLES holes a key forgets the lowest: record by record exactly as
    KeyState.note(); over wider windows (holes are bounded at the end of each window, so which
    are forgotten can differ) within the same bounds."""
    seqs = [*range(0, 4 * MAX_HOLES * 2, 2), 1, 3, 4 * MAX_HOLES * 2 - 3, 7]
    reference = KeyState()
    for seq in seqs:
        reference.note(seq)
    one_by_one = SequenceTracker(flush_at=1)
    _feed(one_by_one, [("Z", "trade", s) for s in seqs], batch=1)
    assert one_by_one.snapshot().keys[("Z", "l1")] == reference
    missing = 4 * MAX_HOLES - 1 - 4  # odd seqs below the top, but the four that came late
    for flush_at in (50, 4096):
        tracker = SequenceTracker(flush_at=flush_at)
        _feed(tracker, [("Z", "trade", s) for s in seqs], batch=37)
        state = tracker.snapshot().keys[("Z", "l1")]
        assert len(state.holes) <= MAX_HOLES
        assert state.unique + state.ambiguous == len(seqs)
        assert missing <= state.gaps <= missing + state.ambiguous


def test_interleaved_topics_of_one_family_are_not_loss() -> None:
    """Trades and quotes share the TickID and come from two topics, read in turns: each
    window leaves holes that the other topic's records fill."""
    tracker = SequenceTracker(flush_at=100)
    ticks = list(range(1, 2001))
    trades = [("AAPL", "trade", t) for t in ticks if t % 3 == 0]
    quotes = [("AAPL", "quote", t) for t in ticks if t % 3 != 0]
    for i in range(0, 700, 70):
        _feed(tracker, trades[i : i + 70], batch=70)
        _feed(tracker, quotes[2 * i : 2 * i + 140], batch=140)
    state = tracker.snapshot().keys[("AAPL", "l1")]
    assert (state.unique, state.gaps, state.duplicates, state.holes) == (2000, 0, 0, [])
    assert state.out_of_order > 0  # the later topic's records arrive below the high


def test_untrackable_seqs_are_malformed() -> None:
    tracker = SequenceTracker()
    tracker.update(["A", "A", "A"], ["trade"] * 3, [5, -1, 2**50])
    c = tracker.snapshot()
    assert c.malformed == 2 and c.keys[("A", "l1")].unique == 1


def test_vectorised_path_handles_many_keys() -> None:
    tracker = SequenceTracker()
    symbols = [f"S{i}" for i in range(495)]
    rng = np.random.default_rng(1)
    next_seq = dict.fromkeys(symbols, 1)
    for _ in range(20):
        picks = rng.choice(495, size=1000)
        syms = [symbols[i] for i in picks]
        seqs = []
        for s in syms:
            seqs.append(next_seq[s])
            next_seq[s] += 1
        tracker.update(syms, ["quote"] * 1000, seqs)
    totals = tracker.snapshot().totals()
    assert totals["unique"] == 20_000 and totals["gaps"] == 0 and totals["duplicates"] == 0


def _counters(sent: dict[str, tuple[int, int, int]], seconds: float = 10.0) -> StageCounters:
    counters = StageCounters("stage-1")
    counters.level1 = {s: SymbolCount(*v) for s, v in sent.items()}
    counters.started_ns, counters.ended_ns = 0, int(seconds * 1e9)
    return counters


def test_compare_with_sent_counters() -> None:
    tracker = SequenceTracker()
    records = [("AAPL", "trade", s) for s in range(1, 1001) if s not in (500, 501)]
    records += [("MSFT", "quote", s) for s in range(11, 996)]  # last 5 still in flight
    records += [("MSFT", "quote", s) for s in range(5, 11)]  # previous stage's spill
    _feed(tracker, records, batch=100)
    sent = _counters({"AAPL": (1000, 1, 1000), "MSFT": (990, 11, 1000), "IBM": (10, 1, 10)})
    report = compare(tracker.snapshot(), sent, in_flight_s=0.01)  # 1 msg at 100 msg/s
    rows = {r.symbol: r for r in report.rows}
    assert (rows["AAPL"].received, rows["AAPL"].lost, rows["AAPL"].tolerance) == (998, 2, 1)
    assert (rows["MSFT"].received, rows["MSFT"].lost) == (985, 5)  # spill not counted
    assert rows["IBM"].lost == 10
    assert report.lost == 17 and report.lost_beyond_tolerance == 2 - 1 + 5 - 1 + 10 - 1
    assert abs(report.loss_ratio - 17 / 2000) < 1e-12
    js = report.to_json()
    assert js["missing_keys"] == ["IBM|l1"] and js["worst"][0]["symbol"] == "IBM"


def test_compare_counts_families_without_aligned_seq() -> None:
    tracker = SequenceTracker()
    _feed(tracker, [("AAPL", "depth", s) for s in range(1, 96)])
    counters = StageCounters("stage-1")
    counters.level2 = {"AAPL": SymbolCount(100, 7_000, 7_099)}  # feed_sim's own numbering
    report = compare(tracker.snapshot(), counters)
    assert report.rows[0].received == 95 and report.lost == 5
    assert report.unexpected == []


def test_in_flight_window_follows_the_measured_lag() -> None:
    from harness.collector.loss import in_flight_window_s

    assert in_flight_window_s(None) == 1.0
    assert in_flight_window_s(250_000) == 1.0  # 250 ms: the 1 s floor
    assert in_flight_window_s(2_339_000) == pytest.approx(2.339)


def test_a_slow_pipeline_gets_its_lag_as_allowance_but_drops_still_count() -> None:
    """100 msg/s for 10 s; the last 2 s are still in flight (lag ~2 s): within the allowance
    of a 2 s window, beyond the default 1 s one. Dropping every 10th message is loss either
    way."""
    counters = StageCounters("stage-1", started_ns=0, ended_ns=10_000_000_000)
    counters.level1["AAPL"] = SymbolCount(1000, 1, 1000)
    arrived = SequenceTracker()
    arrived.update(["AAPL"] * 800, ["trade"] * 800, list(range(1, 801)))
    in_flight = arrived.snapshot()
    assert compare(in_flight, counters, in_flight_s=1.0).lost_beyond_tolerance == 100
    report = compare(in_flight, counters, in_flight_s=2.0)
    assert report.lost == 200 and report.lost_beyond_tolerance == 0
    assert report.to_json()["in_flight_s"] == 2.0
    dropping = SequenceTracker()
    kept = [s for s in range(1, 801) if s % 10]
    dropping.update(["AAPL"] * len(kept), ["trade"] * len(kept), kept)
    assert compare(dropping.snapshot(), counters, in_flight_s=2.0).lost_beyond_tolerance == 80
