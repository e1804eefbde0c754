"""Level 1 updates are sent on change only (IQConnect's rule), on every replay path.

A quote that changes nothing on the top of book (bid, ask, their sizes and market centers) is
no update: `Level1Events` drops such rows when it is built (`unchanged_quotes`, checked against
`Level1State.apply_quote_wire` row by row), and the ones state can still make a no-op (the
tape's first quote onto the primed state, and again after the replay cursor wraps) are
skipped at runtime. So identical consecutive quotes send one update; every message sent, live,
from rings, flat out or at tape timing, has a trade (C/E/O) or bid/ask (b/a) code and a time
field carrying its intended time (contract 2); TickIDs stay consecutive per symbol and the
stage counters count what was sent, nothing else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from feed_sim.generate import venues
from feed_sim.generate.cache import GenerationInputs
from feed_sim.generate.universe import load_symbols, select_symbols
from feed_sim.protocol.fields import Fieldset
from feed_sim.protocol.level1 import Level1State
from feed_sim.protocol.timefmt import hhmmss_micro
from feed_sim.server import symbol_events
from feed_sim.server.engine import FeedEngine, RateSettings
from feed_sim.server.market import SymbolMarket
from feed_sim.server.symbol_events import Level1Events, TradeRow
from feed_sim.tape.model import Kind, TapeEvent

from .test_flatout import NOW, FakeSession

FIELDS = Fieldset(
    [
        "Symbol",
        "TickID",
        "Message Contents",
        "Most Recent Trade",
        "Most Recent Trade Time",
        "Bid",
        "Bid Size",
        "Bid Time",
        "Bid Market Center",
        "Ask",
        "Ask Size",
        "Ask Time",
        "Ask Market Center",
    ]
)
COLUMN = {name: position for position, name in enumerate(FIELDS.names, start=1)}
TRADE_CODES = set("CEO")
QUOTE_CODES = set("ba")
STEP_NS = 1_000_000
"""Between two slots: each message's intended time has its own microseconds."""


def _quote(i: int, bid: float, bid_size: int, ask: float, ask_size: int, **mc: int) -> TapeEvent:
    fields: dict[str, Any] = {"bid": bid, "bid_size": bid_size, "ask": ask, "ask_size": ask_size}
    fields.update(mc)
    return TapeEvent(NOW - 3_600_000_000_000 + i * 1_000_000, "SYM", Kind.QUOTE, fields)


def _trade(i: int, price: float, bid: float | None = None, ask: float | None = None) -> TapeEvent:
    fields: dict[str, Any] = {"price": price, "size": 100, "market_center": 19, "basis": "C"}
    if bid is not None:
        fields.update(bid=bid, ask=ask)
    return TapeEvent(NOW - 3_600_000_000_000 + i * 1_000_000, "SYM", Kind.TRADE, fields)


def _tape(*events: TapeEvent) -> list[TapeEvent]:
    """The events in this order, one ms apart."""
    start = NOW - 3_600_000_000_000
    return [
        TapeEvent(start + i * 1_000_000, e.symbol, e.kind, e.fields) for i, e in enumerate(events)
    ]


Q1 = _quote(0, 10.00, 100, 10.02, 200, bid_mc=5, ask_mc=11)
Q2 = _quote(0, 10.00, 300, 10.02, 200, bid_mc=5, ask_mc=11)  # Q1 with another bid size
T1 = _trade(0, 10.01, 10.00, 10.02)  # carries Q1's NBBO


def _check_line(line: bytes, intended_ns: int, *, ring: bool = False) -> str:
    """The line's Message Contents, after checking it names a trade or a bid/ask change and
    that the fields of what changed carry the message's intended time (a ring line carries it
    in every non-empty time field)."""
    values = line.decode("latin-1").split(",")
    contents = values[COLUMN["Message Contents"]]
    codes = set(contents)
    assert codes & (TRADE_CODES | QUOTE_CODES), f"no trade/bid/ask code: {line!r}"
    stamp = hhmmss_micro(intended_ns)
    if codes & TRADE_CODES:
        assert values[COLUMN["Most Recent Trade Time"]] == stamp, line
    if "b" in codes:
        assert values[COLUMN["Bid Time"]] == stamp, line
    if "a" in codes:
        assert values[COLUMN["Ask Time"]] == stamp, line
    if ring:
        times = [values[COLUMN[n]] for n in ("Most Recent Trade Time", "Bid Time", "Ask Time")]
        assert all(t in ("", stamp) for t in times), line
    return contents


def _ticks(lines: list[bytes]) -> list[int]:
    return [int(line.split(b",")[COLUMN["TickID"]]) for line in lines]


def _engine(events: dict[str, list[TapeEvent]] | None, render: str = "live") -> FeedEngine:
    engine = FeedEngine(clock_ns=lambda: NOW)
    if events is not None:
        engine.load_events(events)
    engine.set_rate(RateSettings(mode="fixed", rate_hz=100.0, render=render))
    return engine


def _watch(engine: FeedEngine) -> FakeSession:
    session = FakeSession(FIELDS)
    for market in engine.markets.values():
        market.level1_watchers[session] = False  # type: ignore[index]
    return session


def _send(
    engine: FeedEngine, symbols: list[str], slots_per_symbol: int, batch: int = 16
) -> tuple[list[bytes], list[int]]:
    """Round-robin slots over `symbols` through the paced hot path, `batch` slots a call;
    (lines received, intended time of each message sent, in order)."""
    markets = [engine.markets[s] for s in symbols]
    slots = [
        (NOW + (k * len(symbols) + p) * STEP_NS, p)
        for k in range(slots_per_symbol)
        for p in range(len(symbols))
    ]
    intended: list[int] = []
    sessions = set()
    for start in range(0, len(slots), batch):
        dirty: set[Any] = set()
        engine._emit_level1_slots(slots[start : start + batch], markets, dirty, intended)
        for session in dirty:
            session.flush()
        sessions |= dirty
    lines = [line for s in sessions for line in s.lines()]
    return lines, intended


# ---- the state and the events -----------------------------------------------------------------


def test_a_quote_that_changes_nothing_is_no_update() -> None:
    state = Level1State("SYM")
    assert state.apply_quote(NOW, 10.00, 100, 10.02, 200, 5, 11) == "ba"
    tick, values = state.next_tick_id, list(state.values)
    assert state.apply_quote(NOW + 5, 10.00, 100, 10.02, 200, 5, 11) == ""
    assert state.apply_quote(NOW + 6, 10.00, 100, 10.02, 200) == ""  # centers kept
    assert state.next_tick_id == tick and state.values == values  # no TickID, nothing written
    assert state.apply_quote(NOW + 7, 10.00, 100, 10.02, 200, 5, 19) == "a"  # a center is one
    assert state.apply_quote(NOW + 8, 10.00, 200, 10.02, 200, 5, 19) == "b"  # so is a size
    assert state.next_tick_id == tick + 2
    state.apply_trade(NOW + 9, 10.01, 100, 19, "", bid=10.01, ask=10.02)
    assert state.apply_quote(NOW + 10, 10.01, 200, 10.02, 200, 5, 19) == ""  # the trade's NBBO


def test_unchanged_quote_rows_are_dropped_when_events_are_built() -> None:
    events = _tape(
        Q1,
        Q1,  # identical to the quote before: dropped
        T1,  # a trade carrying the same NBBO
        Q1,  # still nothing new: dropped
        _trade(0, 10.00, 9.99, 10.01),  # the trade moves the NBBO
        _quote(0, 9.99, 100, 10.01, 200, bid_mc=5, ask_mc=11),  # what that trade said: dropped
        _quote(0, 9.99, 300, 10.01, 200, bid_mc=5, ask_mc=11),  # bid size: kept
        _quote(0, 9.99, 300, 10.01, 200),  # no market centers (= unchanged): dropped
        _quote(0, 9.99, 300, 10.01, 200, bid_mc=5, ask_mc=19),  # ask market center: kept
        Q1,  # back to Q1: kept
    )
    level1 = Level1Events.from_tape(events)
    assert level1.unchanged_dropped == 4
    kept = [level1.row(i) for i in range(len(level1))]
    assert [isinstance(row, TradeRow) for row in kept] == [False, True, True, False, False, False]
    assert level1.ts_ns.tolist() == [events[i].ts_ns for i in (0, 2, 4, 6, 8, 9)]


@pytest.fixture(scope="module")
def generated() -> list[Any]:
    """A generated session: 10 symbols, 2 minutes (a few dozen unchanged quote rows)."""
    symbols = tuple(select_symbols(load_symbols(), 10))
    return list(GenerationInputs(symbols, dt.date(2025, 6, 17), 7, duration_s=120).generate())


def test_unchanged_quotes_match_the_state_row_by_row(
    generated: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On generated tapes: the dropped rows are exactly those `apply_quote_wire` finds
    unchanged when the whole tape is replayed from its first row."""
    masks: list[np.ndarray[Any, Any]] = []
    real = symbol_events.unchanged_quotes

    def keep_all(columns: dict[str, Any]) -> np.ndarray[Any, Any]:
        masks.append(real(columns))
        return np.zeros(len(columns["is_trade"]), np.bool_)

    monkeypatch.setattr(symbol_events, "unchanged_quotes", keep_all)
    dropped = 0
    for day in generated:
        masks.clear()
        level1 = Level1Events.from_columns(day.trades, day.quotes, venues.CONDITIONS, venues.BASIS)
        (mask,) = masks
        state = Level1State(day.symbol, lazy=True)
        found = np.zeros(len(level1), np.bool_)
        for i in range(len(level1)):
            row = level1.wire_row(i, 4)
            if row[0]:
                state.apply_trade_wire(NOW, row)
            else:
                found[i] = state.apply_quote_wire(NOW, row) == ""
        assert (found == mask).all(), day.symbol
        dropped += int(mask.sum())
    assert dropped >= 10  # the generator does make them: the check above is not vacuous


# ---- the replay paths ---------------------------------------------------------------------------


def test_identical_consecutive_quotes_send_one_update() -> None:
    engine = _engine({"SYM": _tape(Q1, Q1, Q1, T1, Q1, Q2, Q2)})
    assert len(engine.markets["SYM"].level1_events) == 3  # Q1, T1, Q2
    _watch(engine)
    first_tick = engine.markets["SYM"].state.next_tick_id
    lines, intended = _send(engine, ["SYM"], 9)
    contents = [_check_line(line, t) for line, t in zip(lines, intended, strict=True)]
    # The primed state already holds Q1 (and T1): the replay's first message is T1, then Q2,
    # then Q1 again after the wrap (its bid size differs from Q2's), each once per pass.
    assert contents == ["Cv", "b", "b"] * 3
    assert _ticks(lines) == list(range(first_tick, first_tick + 9))
    count = engine.counters.level1["SYM"]
    assert (count.sent, count.first_seq, count.last_seq) == (9, first_tick, first_tick + 8)
    assert engine.counters.unwatched_slots == 0


def test_the_wrap_passes_over_a_first_quote_the_tape_end_repeats() -> None:
    market = SymbolMarket.from_events("SYM", 0, _tape(Q1, T1, Q2, Q1), prime_ns=NOW)
    assert len(market.level1_events) == 4  # the last Q1 follows Q2: a change, kept
    sent = []
    for k in range(10):
        cursor = market.level1_cursor
        applied = market.next_level1(NOW + k * STEP_NS)
        assert applied is not None
        sent.append((cursor, market.level1_cursor, applied[1], market.state.message_contents))
    # Row 0 (Q1) repeats the primed state and, after every wrap, the tape's last row (Q1):
    # each time the replay goes on to row 1 (T1) in the same call.
    assert [(a, b) for a, b, _, _ in sent[:4]] == [(0, 2), (2, 3), (3, 0), (0, 2)]
    assert [c for _, _, _, c in sent] == ["Cv", "b", "b"] * 3 + ["Cv"]
    ticks = [t for _, _, t, _ in sent]
    assert ticks == list(range(ticks[0], ticks[0] + 10))


@pytest.mark.parametrize("render", ["live", "ring", "flat"])
def test_a_tape_that_never_changes_sends_nothing(render: str) -> None:
    engine = _engine({"SYM": _tape(Q1, Q1, Q1)}, "live" if render == "flat" else render)
    assert len(engine.markets["SYM"].level1_events) == 1
    session = _watch(engine)
    if render == "flat":
        engine.set_rate(RateSettings(mode="flat"))
        for _ in range(3):
            engine._send_flat_out(NOW)
    else:
        assert _send(engine, ["SYM"], 20) == ([], [])  # the primed state holds Q1 already
    assert "SYM" not in engine.counters.level1 and engine.counters.messages == 0
    assert session.lines() == []


def test_tape_timing_sends_nothing_for_an_unchanged_event() -> None:
    clock = [NOW]
    engine = FeedEngine(clock_ns=lambda: clock[0])
    engine.load_events({"SYM": _tape(Q1, T1, Q2, Q1)})
    session = _watch(engine)
    first_tick = engine.markets["SYM"].state.next_tick_id
    engine.set_rate(RateSettings(mode="tape", speed=1.0))
    for _ in range(12):  # three passes of the 4 events, 1 ms apart
        clock[0] += STEP_NS
        engine._send_due(clock[0])
    lines = session.lines()
    contents = [line.decode().split(",")[COLUMN["Message Contents"]] for line in lines]
    # Each pass: Q1 unchanged (primed state, then the previous pass's end), T1, Q2, Q1.
    assert contents == ["Cv", "b", "b"] * 3
    assert _ticks(lines) == list(range(first_tick, first_tick + 9))
    assert engine.counters.level1["SYM"].sent == 9 == engine.counters.messages


@pytest.mark.parametrize("render", ["live", "ring"])
def test_a_generated_session_sends_only_updates(generated: list[Any], render: str) -> None:
    """Paced, live or from rings, over more than a whole pass of every symbol (the wrap):
    every message an update with its intended time, TickIDs consecutive, counts exact."""
    engine = FeedEngine(clock_ns=lambda: NOW)
    engine.load_generated(generated)
    engine.set_rate(RateSettings(mode="fixed", rate_hz=100.0, render=render))
    _watch(engine)
    symbols = list(engine.markets)
    firsts = {s: engine.markets[s].state.next_tick_id for s in symbols}
    passes = max(len(m.level1_events) for m in engine.markets.values()) + 20
    lines, intended = _send(engine, symbols, passes if render == "live" else 1_500)
    assert len(lines) == len(intended) == engine.counters.messages
    by_symbol: dict[str, list[bytes]] = {}
    for line, t in zip(lines, intended, strict=True):
        _check_line(line, t)
        by_symbol.setdefault(line.split(b",")[1].decode(), []).append(line)
    assert sorted(by_symbol) == sorted(symbols)
    for symbol, mine in by_symbol.items():
        ticks = _ticks(mine)
        assert ticks == list(range(firsts[symbol], firsts[symbol] + len(ticks))), symbol
        count = engine.counters.level1[symbol]
        assert (count.sent, count.first_seq, count.last_seq) == (len(mine), ticks[0], ticks[-1])
    if render == "ring":
        assert engine._rings is not None and len(engine._rings.symbols) == len(symbols)


def test_flat_out_sends_only_updates(generated: list[Any]) -> None:
    clock = [NOW]
    engine = FeedEngine(clock_ns=lambda: clock[0])
    engine.load_generated(generated)
    session = _watch(engine)
    engine.set_rate(RateSettings(mode="flat"))
    batches = []
    for _ in range(8):  # builds the rings, then a ring wrap or more per symbol and batch
        clock[0] += STEP_NS
        before = len(session.lines())
        engine._send_flat_out(clock[0])
        batches.append((clock[0], len(session.lines()) - before))
    lines = session.lines()
    assert len(lines) == engine.counters.messages > 20_000
    position = 0
    for now, sent in batches:
        for line in lines[position : position + sent]:
            _check_line(line, now, ring=True)
        position += sent
    for symbol, count in engine.counters.level1.items():
        ticks = _ticks([x for x in lines if x.startswith(f"Q,{symbol},".encode())])
        assert len(ticks) == count.sent
        assert ticks == list(range(count.first_seq, count.last_seq + 1)), symbol


def test_level2_weights_set_each_symbol_s_depth_rate_apart_from_level1() -> None:
    """`l2_weights` (the harness's per-tier Level 2 share) shape the depth schedule only; the
    mean depth rate stays `l2_rate_hz` and Level 1 keeps its own weights."""
    events = {s: [TapeEvent(e.ts_ns, s, e.kind, e.fields) for e in _tape(Q1, T1, Q2)]
              for s in ("A", "B", "C")}  # fmt: skip
    engine = _engine(events)
    engine.set_active(["A", "B", "C"])
    weights = {"A": 2.0, "B": 1.0, "C": 0.5}
    engine.set_rate(RateSettings(mode="fixed", rate_hz=60.0, l2_rate_hz=30.0, l2_weights=weights))
    depth = engine._depth_schedule
    level1 = engine._schedule
    assert depth is not None and level1 is not None
    assert depth.plan.rates_hz == pytest.approx(
        (2 * 30 / (3.5 / 3), 30 / (3.5 / 3), 15 / (3.5 / 3))
    )
    assert sum(depth.plan.rates_hz) == pytest.approx(90.0)
    assert level1.plan.rates_hz == (60.0, 60.0, 60.0)
