"""Flat out (feed_sim/server/flatout.py): pre-rendered rings against live rendering.

Lines must be byte-identical to live rendering apart from the time fields, which carry the
batch's intended time; TickIDs stay consecutive per symbol across ring wraps (including the
unpadded first segment and prefix width changes); stage counters stay exact; a client over
the high-water mark holds the batch back, and one stuck too long is cut off.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from contracts.sent import StageCounters
from feed_sim.protocol.fields import (
    DEFAULT_FIELDSET_NAMES,
    UPDATE_FIELD_KINDS,
    UPDATE_FIELD_NAMES,
    FieldKind,
    Fieldset,
)
from feed_sim.protocol.level1_render import render_update
from feed_sim.protocol.timefmt import et_wall_ns, hhmmss_micro
from feed_sim.server.engine import FeedEngine, RateSettings
from feed_sim.server.flatout import FlatOut
from feed_sim.server.market import SymbolMarket
from feed_sim.server.rings import patch_times
from feed_sim.tape.model import Kind, TapeEvent

NOW = et_wall_ns(2025, 11, 24, 10, 30, 0, 123_456)
ALL_FIELDS = Fieldset(UPDATE_FIELD_NAMES)
WITH_TICKS = Fieldset([*DEFAULT_FIELDSET_NAMES, "TickID", "Bid Time", "Ask Time"])


def _events(symbol: str, count: int, seed: int = 1) -> list[TapeEvent]:
    rng = random.Random(seed)
    price = 100.0
    out = []
    for i in range(count):
        ts = NOW - 3_600_000_000_000 + i * 1_000_000
        price = round(price + rng.choice((-0.01, 0.0, 0.01)), 2)
        if rng.random() < 0.4:
            fields = {
                "price": price,
                "size": rng.randint(1, 500),
                "market_center": rng.choice((5, 11, 19)),
                "conditions": rng.choice(("", "3D", "87")),
                "basis": rng.choice(("C", "C", "E", "O")),
                "aggressor": rng.randint(0, 2),
                "bid": round(price - 0.01, 2),
                "ask": round(price + 0.01, 2),
            }
            out.append(TapeEvent(ts, symbol, Kind.TRADE, fields))
        else:
            fields = {
                "bid": round(price - 0.01 * rng.randint(1, 2), 2),
                "ask": round(price + 0.01 * rng.randint(1, 2), 2),
                "bid_size": rng.randint(1, 9) * 100,
                "ask_size": rng.randint(1, 9) * 100,
                "bid_mc": rng.choice((5, 11)),
                "ask_mc": rng.choice((5, 11)),
            }
            out.append(TapeEvent(ts, symbol, Kind.QUOTE, fields))
    return out


def _market(symbol: str = "AAPL", count: int = 37, seed: int = 1) -> SymbolMarket:
    return SymbolMarket.from_events(symbol, 0, _events(symbol, count, seed), prime_ns=NOW)


@dataclass(eq=False)
class FakeTransport:
    buffered: int = 0
    aborted: bool = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def abort(self) -> None:
        self.aborted = True


@dataclass(eq=False)
class FakeSession:
    """What the engine uses of a Level 1 session."""

    fieldset: Fieldset
    port_name: str = "level1"
    client_id: int = 1
    transport: FakeTransport = field(default_factory=FakeTransport)
    received: list[bytes] = field(default_factory=list)
    _pending: list[bytes] = field(default_factory=list)

    def queue(self, data: bytes) -> None:
        self._pending.append(data)

    def flush(self) -> int:
        data = b"".join(self._pending)
        self._pending.clear()
        self.received.append(data)
        return len(data)

    def abort(self) -> None:
        self.transport.abort()

    def lines(self) -> list[bytes]:
        return [line + b"\r\n" for line in b"".join(self.received).split(b"\r\n") if line]


def _compose(
    flat: FlatOut,
    markets: dict[str, SymbolMarket],
    counters: StageCounters,
    now: int,
) -> int:
    pieces, messages = flat.compose(markets, list(markets), counters, now, lambda s: False)
    for session, parts in pieces.items():
        session.queue(patch_times(parts, now))
        session.flush()
    return messages


def _mask_times(line: bytes, fieldset: Fieldset, replacement: bytes | None = None) -> list[bytes]:
    values = line.split(b",")
    for position, name in enumerate(fieldset.names, start=1):
        if UPDATE_FIELD_KINDS[name] == FieldKind.TIME_US and values[position]:
            values[position] = replacement if replacement is not None else b"<time>"
    return values


def _tick_ids(lines: list[bytes], fieldset: Fieldset) -> list[int]:
    position = 1 + fieldset.names.index("TickID")
    return [int(line.split(b",")[position]) for line in lines]


@pytest.mark.parametrize("fieldset", [ALL_FIELDS, WITH_TICKS, Fieldset(DEFAULT_FIELDSET_NAMES)])
def test_lines_match_live_rendering_apart_from_time_fields(fieldset: Fieldset) -> None:
    ring = 100
    live_market, flat_market = _market(), _market()
    live = []
    for i in range(ring):
        live_market.next_level1(NOW + i * 1_000)
        live.append(render_update(live_market.state, fieldset))

    session = FakeSession(fieldset)
    flat_market.level1_watchers[session] = False  # type: ignore[index]
    flat = FlatOut(lambda: NOW, ring_size=ring, batch_messages=7)
    counters = StageCounters("s")
    sent = 0
    while sent < ring:
        sent += _compose(flat, {"AAPL": flat_market}, counters, NOW)
    lines = session.lines()[:ring]

    assert [_mask_times(x, fieldset) for x in lines] == [_mask_times(x, fieldset) for x in live]
    batch_time = hhmmss_micro(NOW).encode()
    for line in lines:
        assert _mask_times(line, fieldset, batch_time) == line.split(b",")


def test_time_fields_carry_each_batch_time() -> None:
    market = _market()
    session = FakeSession(ALL_FIELDS)
    market.level1_watchers[session] = False  # type: ignore[index]
    flat = FlatOut(lambda: NOW, ring_size=10, batch_messages=4)
    counters = StageCounters("s")
    times = [NOW + i * 1_234_567 for i in range(6)]
    for now in times:
        session.received.clear()
        assert _compose(flat, {"AAPL": market}, counters, now) == 4
        expected = hhmmss_micro(now).encode()
        for line in session.lines():
            values = line.split(b",")
            stamped = [
                values[p]
                for p, name in enumerate(ALL_FIELDS.names, start=1)
                if UPDATE_FIELD_KINDS[name] == FieldKind.TIME_US and values[p]
            ]
            assert stamped and set(stamped) == {expected}
            assert b"\x01" not in line and b"\x02" not in line


def test_tick_ids_monotonic_across_ring_wraps_and_counts_exact() -> None:
    markets = {s: _market(s, 5 + i, seed=i) for i, s in enumerate(("AAA", "BBB", "CCC"))}
    markets["BBB"].state.next_tick_id = 95  # a symbol that starts near a prefix width change
    starts = {s: m.state.next_tick_id for s, m in markets.items()}
    a, b = FakeSession(WITH_TICKS, client_id=1), FakeSession(ALL_FIELDS, client_id=2)
    for market in markets.values():
        market.level1_watchers[a] = False  # type: ignore[index]
        market.level1_watchers[b] = False  # type: ignore[index]
    flat = FlatOut(lambda: NOW, ring_size=10, batch_messages=3 * 13)
    counters = StageCounters("s")
    total = sum(_compose(flat, markets, counters, NOW + i) for i in range(100))
    assert total == 3 * 13 * 100

    for session in (a, b):
        lines = session.lines()
        assert len(lines) == total
        for symbol, start in starts.items():
            mine = [x for x in lines if x.startswith(f"Q,{symbol},".encode())]
            assert _tick_ids(mine, session.fieldset) == list(range(start, start + 1300))
            count = counters.level1[symbol]
            assert (count.sent, count.first_seq, count.last_seq) == (1300, start, start + 1299)
    assert counters.messages == total

    # A wrap repeats the ring's content (only times and TickIDs differ).
    lines = [x for x in a.lines() if x.startswith(b"Q,AAA,")]
    position = 1 + WITH_TICKS.names.index("TickID")

    def content(line: bytes) -> list[bytes]:
        values = _mask_times(line, WITH_TICKS)
        del values[position]
        return values

    assert [content(x) for x in lines[:10]] == [content(x) for x in lines[1000:1010]]

    flat.finish()
    assert all(m.state.next_tick_id == starts[s] + 1300 for s, m in markets.items())


def test_engine_flat_out_counts_lateness_and_flow_control() -> None:
    clock = [NOW]
    engine = FeedEngine(clock_ns=lambda: clock[0])
    engine.load_events({"AAA": _events("AAA", 20), "BBB": _events("BBB", 30, seed=2)})
    session = FakeSession(WITH_TICKS)
    for market in engine.markets.values():
        market.level1_watchers[session] = False  # type: ignore[index]
    engine.set_rate(RateSettings(mode="flat"))

    assert engine._send_flat_out(clock[0])
    sent = engine.counters.messages
    assert sent > 0 and engine.counters.lines_written == sent
    assert engine.counters.lateness_us.get_total_count() == sent
    assert engine.counters.bytes_written == sum(len(x) for x in session.received)
    assert len(session.lines()) == sent

    session.transport.buffered = 64 * 1024 * 1024  # not reading: batches are held back
    assert not engine._send_flat_out(clock[0])
    assert engine.counters.messages == sent
    clock[0] += 6_000_000_000
    assert not engine._send_flat_out(clock[0])  # stuck past the cutoff: cut off, counted
    assert session.transport.aborted and engine.slow_client_cutoffs == 1

    ticks = {s: engine.counters.level1[s].last_seq for s in engine.markets}
    engine.set_rate(RateSettings(mode="fixed"))  # leaving flat out keeps TickIDs monotonic
    assert all(m.state.next_tick_id == ticks[s] + 1 for s, m in engine.markets.items())


def test_trades_only_watchers_are_rendered_live() -> None:
    clock = [NOW]
    engine = FeedEngine(clock_ns=lambda: clock[0])
    engine.load_events({"AAA": _events("AAA", 50)})
    session = FakeSession(WITH_TICKS)
    engine.markets["AAA"].level1_watchers[session] = True  # type: ignore[index]
    engine.set_rate(RateSettings(mode="flat"))
    assert engine._send_flat_out(clock[0])
    lines = session.lines()
    contents = 1 + WITH_TICKS.names.index("Message Contents")
    assert lines and all(x.split(b",")[contents][:1] in (b"C", b"E", b"O") for x in lines)
    count = engine.counters.level1["AAA"]
    assert count.sent == len(lines) == engine.counters.lateness_us.get_total_count()
    assert _tick_ids(lines, WITH_TICKS)[-1] == count.last_seq
