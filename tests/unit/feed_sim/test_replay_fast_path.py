"""The paced replay hot path against the reference Level 1 path.

Markets apply precomputed wire tuples (`Level1Events.wire_row`) to a lazy `Level1State`; the
lines must be byte-identical to an eager state fed the same events through the public
`apply_trade` / `apply_quote` (which format every field at once), whatever fieldsets are
rendered in between. The round-robin fixed-rate schedule must give exactly the slots of
`FixedRateSchedule`, and the per-second time cache exactly `level1_trade_texts`.
"""

from __future__ import annotations

import copy
import random

import pytest

from feed_sim.pacing import FixedRateSchedule, RatePlan, RoundRobinSchedule, round_robin_applies
from feed_sim.protocol.fields import DEFAULT_FIELDSET, UPDATE_FIELD_NAMES, Fieldset
from feed_sim.protocol.level1 import Level1State
from feed_sim.protocol.level1_render import render_summary, render_update
from feed_sim.protocol.timefmt import (
    et_wall_ns,
    hhmmss_micro,
    level1_trade_texts,
    wire_time,
    wire_time_texts,
)
from feed_sim.server.market import SymbolMarket
from feed_sim.server.symbol_events import TradeRow
from feed_sim.tape.model import Kind, TapeEvent

NOW = et_wall_ns(2025, 11, 24, 10, 30, 0, 123_456)
ALL_FIELDS = Fieldset(UPDATE_FIELD_NAMES)
FEW = Fieldset(["Symbol", "Bid", "Ask", "TickID", "Message Contents"])


def _events(count: int, seed: int) -> list[TapeEvent]:
    rng = random.Random(seed)
    price = 50.0
    out = []
    for i in range(count):
        ts = NOW - 3_600_000_000_000 + i * 1_000_000
        price = round(price + rng.choice((-0.01, 0.0, 0.01, 0.005)), 3)
        if rng.random() < 0.4:
            fields: dict[str, object] = {
                "price": price,
                "size": rng.choice((0, 1, 100, 250, 1_392_820)),
                "market_center": rng.choice((5, 11, 19)),
                "conditions": rng.choice(("", "3D", "87")),
                "basis": rng.choice(("C", "C", "E", "O")),
                "aggressor": rng.randint(0, 2),
            }
            if rng.random() < 0.7:
                fields["bid"] = round(price - 0.01, 2)
                fields["ask"] = round(price + 0.01, 2)
            out.append(TapeEvent(ts, "SYM", Kind.TRADE, fields))
        else:
            fields = {
                "bid": round(price - 0.01 * rng.randint(1, 2), 2),
                "ask": round(price + 0.01 * rng.randint(1, 2), 2),
                "bid_size": rng.randint(1, 9) * 100,
                "ask_size": rng.randint(1, 9) * 100,
            }
            if rng.random() < 0.8:
                fields["bid_mc"] = rng.choice((5, 11))
                fields["ask_mc"] = rng.choice((5, 19))
            out.append(TapeEvent(ts, "SYM", Kind.QUOTE, fields))
    return out


def _reference_apply(state: Level1State, market: SymbolMarket, index: int, ts: int) -> None:
    row = market.level1_events.row(index)
    if isinstance(row, TradeRow):
        state.apply_trade(
            ts,
            row.price,
            row.size,
            row.market_center,
            row.conditions,
            row.basis,
            row.aggressor,
            bid=row.bid,
            ask=row.ask,
        )
    else:
        state.apply_quote(ts, row.bid, row.bid_size, row.ask, row.ask_size, row.bid_mc, row.ask_mc)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lazy_wire_replay_renders_like_the_eager_reference(seed: int) -> None:
    market = SymbolMarket.from_events("SYM", 0, _events(700, seed), prime_ns=NOW)
    assert market.state.lazy
    reference = copy.copy(market.state)  # an eager snapshot of the primed state
    assert not reference.lazy
    rng = random.Random(seed)
    ts = NOW
    for i in range(1_500):  # more than two passes over the tape, across chunk boundaries
        ts += rng.choice((1_000, 999_999_999, 7))
        index = market.level1_cursor
        assert market.next_level1(ts) is not None
        # Every row the market took: it passes over a quote that changes nothing (to the
        # reference too: no TickID, no field written).
        while True:
            _reference_apply(reference, market, index, ts)
            index = (index + 1) % len(market.level1_events)
            if index == market.level1_cursor:
                break
        fieldset = rng.choice((ALL_FIELDS, FEW, DEFAULT_FIELDSET, FEW))
        assert render_update(market.state, fieldset) == render_update(reference, fieldset)
        if i == 700:
            assert market.state.set_close(49.5) == reference.set_close(49.5)
        if i % 97 == 0:
            assert render_summary(market.state, FEW) == render_summary(reference, FEW)
            assert render_update(market.state, ALL_FIELDS) == render_update(reference, ALL_FIELDS)
    market.state.sync()
    assert market.state.values == reference.values


def test_copy_of_a_lazy_state_is_a_synced_eager_snapshot() -> None:
    market = SymbolMarket.from_events("SYM", 0, _events(50, 9), prime_ns=NOW)
    for i in range(30):
        market.next_level1(NOW + i)
    clone = copy.copy(market.state)
    assert not clone.lazy and market.state.lazy
    assert clone._stale == 0
    assert render_update(clone, ALL_FIELDS) == render_update(market.state, ALL_FIELDS)


def test_wire_time_cache_matches_timefmt() -> None:
    rng = random.Random(5)
    starts = (NOW, et_wall_ns(2025, 3, 9, 1, 59, 59), et_wall_ns(2025, 11, 2, 1, 59, 59))
    for start in starts:  # incl. both DST switches
        ts = start
        for _ in range(3_000):
            ts += rng.choice((1, 999, 1_000_000, 999_999_999, 3_600_000_000_000))
            assert wire_time_texts(ts) == level1_trade_texts(ts)
            assert wire_time(ts) == hhmmss_micro(ts)


@pytest.mark.parametrize("total", [10.0, 3_333.3, 50_000.0, 500_000.0])
@pytest.mark.parametrize("count", [1, 7, 495])
def test_round_robin_gives_the_fixed_rate_slots(total: float, count: int) -> None:
    plan = RatePlan.uniform([f"S{i}" for i in range(count)], total / count)
    assert round_robin_applies(plan)
    rng = random.Random(int(total) + count)
    start = NOW + rng.randrange(10**9)
    heap, rr = FixedRateSchedule(plan, start), RoundRobinSchedule(plan, start)
    now = start
    for _ in range(400):
        now += rng.randrange(0, 3_000_000)
        limit = rng.choice((1, 5, 20_000))
        assert rr.due(now, limit) == heap.due(now, limit)
        assert rr.next_due_ns() == heap.next_due_ns()


def test_round_robin_only_for_equal_rates_with_room_between_slots() -> None:
    symbols = ["A", "B", "C"]
    assert not round_robin_applies(RatePlan.weighted(symbols, [1.0, 2.0, 1.0], 100.0))
    assert not round_robin_applies(RatePlan.uniform(symbols, 0.0))
    assert not round_robin_applies(RatePlan.uniform(symbols, 1e9))
    with pytest.raises(ValueError):
        RoundRobinSchedule(RatePlan.uniform(symbols, 0.0), NOW)
