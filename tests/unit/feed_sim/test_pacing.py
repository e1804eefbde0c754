"""Open-model schedules, driven by an injected clock: rates, phases, no drift, tape timing."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from feed_sim.pacing import NS_PER_S, FixedRateSchedule, RatePlan, TapeTimingSchedule


def _drain(
    schedule: FixedRateSchedule | TapeTimingSchedule, until_ns: int
) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    while True:
        batch = schedule.due(until_ns, 1000)
        if not batch:
            return out
        out += batch


def test_uniform_rate_gives_exact_counts_per_symbol() -> None:
    plan = RatePlan.uniform([f"S{i}" for i in range(495)], 100.0)
    assert plan.total_rate_hz == pytest.approx(49_500)
    schedule = FixedRateSchedule(plan, start_ns=0)
    slots = _drain(schedule, until_ns=10 * NS_PER_S - 1)
    per_symbol = Counter(index for _, index in slots)
    assert set(per_symbol.values()) == {1000}
    times = [t for t, _ in slots]
    assert times == sorted(times)


def test_slots_are_spread_not_bunched() -> None:
    schedule = FixedRateSchedule(RatePlan.uniform(["A", "B", "C", "D"], 10.0), start_ns=0)
    slots = _drain(schedule, until_ns=NS_PER_S - 1)
    gaps = {b - a for (a, _), (b, _) in itertools.pairwise(slots)}
    assert gaps == {25_000_000}  # 40 msg/s over 4 symbols: one slot every 25 ms


def test_open_model_keeps_intended_times_when_the_sender_is_late() -> None:
    schedule = FixedRateSchedule(RatePlan.uniform(["A"], 1000.0), start_ns=0)
    late = schedule.due(now_ns=50_000_000, limit=10_000)  # woke 50 ms late
    assert len(late) == 51
    assert [t for t, _ in late[:3]] == [0, 1_000_000, 2_000_000]


def test_limit_bounds_a_batch_and_the_rest_stays_due() -> None:
    schedule = FixedRateSchedule(RatePlan.uniform(["A"], 1000.0), start_ns=0)
    assert len(schedule.due(100_000_000, 10)) == 10
    assert schedule.next_due_ns() == 10_000_000


def test_no_rounding_drift_over_long_runs() -> None:
    schedule = FixedRateSchedule(RatePlan.uniform(["A"], 3.0), start_ns=0)  # period 333.33 ms
    slots = _drain(schedule, until_ns=3600 * NS_PER_S)
    assert len(slots) == 3 * 3600 + 1
    assert slots[-1][0] == 3600 * NS_PER_S


def test_weighted_rates_keep_the_mean() -> None:
    plan = RatePlan.weighted(["A", "B", "C"], [1.0, 2.0, 3.0], mean_rate_hz=100.0)
    assert plan.rates_hz == pytest.approx((50.0, 100.0, 150.0))
    counts = Counter(i for _, i in _drain(FixedRateSchedule(plan, 0), 2 * NS_PER_S - 1))
    assert counts == {0: 100, 1: 200, 2: 300}


def test_zero_rate_symbol_never_sends() -> None:
    schedule = FixedRateSchedule(RatePlan(("A", "B"), (0.0, 10.0)), start_ns=0)
    assert {i for _, i in _drain(schedule, NS_PER_S)} == {1}


def test_tape_timing_scales_inter_arrivals_by_speed() -> None:
    tape = [0, 100, 400, 1000]
    schedule = TapeTimingSchedule(tape, [0, 1, 0, 1], start_ns=5_000, speed=2.0, loop=False)
    slots = _drain(schedule, until_ns=10**9)
    assert slots == [(5_000, 0), (5_050, 1), (5_200, 0), (5_500, 1)]
    assert schedule.next_due_ns() is None


def test_tape_timing_loops_with_one_mean_gap_between_passes() -> None:
    schedule = TapeTimingSchedule([0, 300], [0, 0], start_ns=0, speed=1.0, loop=True)
    slots = schedule.due_events(now_ns=1_500, limit=10)
    assert [(t, e) for t, _, e in slots] == [
        (0, 0),
        (300, 1),
        (600, 0),
        (900, 1),
        (1200, 0),
        (1500, 1),
    ]


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        TapeTimingSchedule([0], [0], 0, speed=0)
    with pytest.raises(ValueError):
        RatePlan.weighted(["A"], [0.0], 10)
