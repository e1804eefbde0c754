"""Paced replay from rings (feed_sim/server/paced_rings.py), with the flat-out test fakes.

A ring line is the live rendering of the same message apart from the time fields, which carry
the message's own intended time; TickIDs continue from the live state and stay consecutive
across ring wraps; rings are built only where the budget allows (dense batches, long idle
windows); a trades-only watcher keeps a symbol live; `finish()` moves the live TickID past
the rings'.
"""

from __future__ import annotations

import time

from feed_sim.protocol.fields import Fieldset
from feed_sim.protocol.level1_render import render_update
from feed_sim.protocol.timefmt import hhmmss_micro
from feed_sim.server.market import SymbolMarket
from feed_sim.server.paced_rings import DENSE_BATCH, MIN_BUILD_ESTIMATE_NS, PacedRings

from .test_flatout import (
    ALL_FIELDS,
    NOW,
    WITH_TICKS,
    FakeSession,
    _market,
    _mask_times,
    _tick_ids,
)


def _watched(symbol: str = "AAPL", trades_only: bool = False) -> tuple[SymbolMarket, FakeSession]:
    market = _market(symbol)
    session = FakeSession(WITH_TICKS)
    market.level1_watchers[session] = trades_only  # type: ignore[index]
    return market, session


def test_time_bytes_is_the_eastern_time_of_day_with_micros() -> None:
    rings = PacedRings()
    for offset_ns in (0, 1_000, 999_999_000, 1_000_000_000, 3_600_000_000_123):
        t = NOW + offset_ns
        assert rings.time_bytes(t) == hhmmss_micro(t).encode("ascii")


def test_ring_lines_are_live_lines_with_each_message_time_and_consecutive_ticks() -> None:
    live_market, _ = _watched()
    market, session = _watched()
    rings = PacedRings(ring_size=10)
    rings.begin_batch(NOW, DENSE_BATCH)
    ready = rings.ready(market, market.level1_watchers, NOW)
    assert ready is not None
    lines, expected = [], []
    first_tick = ready.next_tick
    for k in range(25):  # two and a half ring wraps
        t = NOW + k * 1_000_000
        tick = ready.next_tick
        ready.next_tick += 1
        lines.append(PacedRings.line(ready, WITH_TICKS, tick, rings.time_bytes(t)))
        live_market.next_level1(t)
        expected.append(render_update(live_market.state, WITH_TICKS))
    ticks = _tick_ids(lines, WITH_TICKS)
    assert ticks == list(range(first_tick, first_tick + 25))
    for line, live, k in zip(lines[:10], expected[:10], range(10), strict=True):
        # Within the first ring the content is the live replay's (times aside).
        assert _mask_times(line, WITH_TICKS) == _mask_times(live, WITH_TICKS)
        stamp = hhmmss_micro(NOW + k * 1_000_000).encode("ascii")
        assert _mask_times(line, WITH_TICKS, stamp) == line.split(b",")  # every time = t
        assert stamp in line.split(b",")
    assert session.received == []  # the rings never touch a session


def test_builds_only_within_the_budget() -> None:
    market, _ = _watched()
    rings = PacedRings(ring_size=10)
    rings.begin_batch(NOW, slots=1)  # sparse: no inline build
    assert rings.ready(market, market.level1_watchers, NOW) is None
    rings.begin_batch(NOW + 1_000_000, slots=DENSE_BATCH)
    assert rings.ready(market, market.level1_watchers, NOW) is not None
    assert rings.build_estimate_ns > 0


def test_idle_windows_build_ahead_when_long_enough() -> None:
    market, _ = _watched()
    rings = PacedRings(ring_size=10)
    markets = {"AAPL": market}
    assert rings.build_pending(markets, ["AAPL"], until_ns=0, now_ns=NOW) == 0  # no time
    far = 10**30
    assert rings.build_pending(markets, ["AAPL"], until_ns=far, now_ns=NOW) == 1
    assert "AAPL" in rings.symbols
    assert rings.build_pending(markets, ["AAPL"], until_ns=far, now_ns=NOW) == 0


def test_a_slow_build_does_not_keep_a_sparse_schedule_live_for_good() -> None:
    """One slow build (a busy host) raised the estimate above every idle window: missed
    windows lower it until a window fits again, then the symbol gets its rings."""
    market, _ = _watched()
    rings = PacedRings(ring_size=10)
    rings.build_estimate_ns = 60_000_000  # what one 60 ms build leaves
    window_ns = 10_000_000
    missed = 0
    while rings.build_estimate_ns + 3_000_000 >= window_ns:
        rings.missed_window()
        missed += 1
    assert 10 < missed < 30 and rings.build_estimate_ns >= MIN_BUILD_ESTIMATE_NS
    until = time.perf_counter_ns() + 10**12
    assert rings.build_pending({"AAPL": market}, ["AAPL"], until_ns=until, now_ns=NOW) == 1
    for _ in range(100):
        rings.missed_window()
    assert rings.build_estimate_ns == MIN_BUILD_ESTIMATE_NS


def test_trades_only_watcher_keeps_the_symbol_live_and_finish_moves_ticks() -> None:
    market, _ = _watched(trades_only=True)
    rings = PacedRings(ring_size=10)
    rings.begin_batch(NOW, DENSE_BATCH)
    assert rings.ready(market, market.level1_watchers, NOW) is None

    market, session = _watched()
    rings.begin_batch(NOW, DENSE_BATCH)
    ready = rings.ready(market, market.level1_watchers, NOW)
    assert ready is not None
    ready.next_tick += 7
    last = ready.next_tick
    rings.finish()
    assert rings.symbols == {}
    assert market.state.next_tick_id >= last
    assert session.received == []


def test_a_fieldset_that_joins_later_gets_lines_of_the_same_messages() -> None:
    """Every ring of a symbol replays the same snapshot: a ring built later (a client with
    another fieldset watches after messages were sent from the first) gives, per TickID,
    the same message as the first ring."""
    market, _ = _watched()
    rings = PacedRings(ring_size=10)
    rings.begin_batch(NOW, DENSE_BATCH)
    ready = rings.ready(market, market.level1_watchers, NOW)
    assert ready is not None
    ready.next_tick += 7  # sent from the first ring meanwhile
    market.level1_watchers[FakeSession(ALL_FIELDS, client_id=2)] = False  # type: ignore[index]
    assert rings.ready(market, market.level1_watchers, NOW) is ready
    assert set(ready.rings) == {WITH_TICKS, ALL_FIELDS}
    common = [name for name in WITH_TICKS.names if name in ALL_FIELDS.names]

    def shown(fieldset: Fieldset, tick: int) -> list[bytes]:
        line = PacedRings.line(ready, fieldset, tick, b"<time>")
        values = dict(zip(fieldset.names, line.split(b",")[1:], strict=False))
        return [values[name] for name in common]

    for tick in range(ready.next_tick, ready.next_tick + 25):  # across ring wraps
        assert shown(WITH_TICKS, tick) == shown(ALL_FIELDS, tick), tick
