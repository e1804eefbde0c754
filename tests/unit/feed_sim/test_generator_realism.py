"""Statistical realism checks of the synthetic tape generator (feed_sim.generate).

Thresholds come from ../shared/market-facts.md, and the tape must not show the fingerprints the
readiness review rejected (MM1..MM5, 1-4 AM UTC, 65% daily moves, one venue, identical spreads).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from feed_sim.generate import (
    SymbolSpec,
    generate_events,
    generate_tape,
    load_symbols,
    select_symbols,
)
from feed_sim.generate.depth import MPIDLIST_FILE
from feed_sim.tape.model import Kind, TapeEvent

DST_DAY = dt.date(2025, 6, 17)
WINTER_DAY = dt.date(2025, 1, 15)
NS = 1_000_000_000
TRF_IDS = {19, 24}
CROSS_CONDITIONS = {"8A42", "4042"}


def _utc_ns(day: dt.date, hour: int, minute: int) -> int:
    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
    return int(moment.timestamp()) * NS


@pytest.fixture(scope="module")
def specs() -> list[SymbolSpec]:
    return select_symbols(load_symbols(), 20)


@pytest.fixture(scope="module")
def tape(specs: list[SymbolSpec]) -> list[TapeEvent]:
    """A full regular session on a DST date, 20 symbols, 5% of the real rates."""
    return generate_events(specs, DST_DAY, seed=20260717, rate_scale=0.05)


def _of(events: Sequence[TapeEvent], kind: Kind) -> list[TapeEvent]:
    return [e for e in events if e.kind == kind]


def _by_symbol(events: Sequence[TapeEvent]) -> dict[str, list[TapeEvent]]:
    out: dict[str, list[TapeEvent]] = defaultdict(list)
    for e in events:
        out[e.symbol].append(e)
    return out


def _continuous(trades: Sequence[TapeEvent]) -> list[TapeEvent]:
    return [t for t in trades if t.fields["conditions"] not in CROSS_CONDITIONS]


def _mid_series(quotes: Sequence[TapeEvent], grid: np.ndarray) -> np.ndarray:
    ts = np.array([q.ts_ns for q in quotes])
    mid = np.array([(q.fields["bid"] + q.fields["ask"]) / 2.0 for q in quotes])
    return mid[np.clip(np.searchsorted(ts, grid, side="right") - 1, 0, None)]


def _liquid(specs: Sequence[SymbolSpec], tape: Sequence[TapeEvent]) -> list[str]:
    counts = Counter(t.symbol for t in _of(tape, Kind.TRADE))
    return [s.symbol for s in specs if counts[s.symbol] >= 2_000]


def test_universe_mix_and_event_mix(specs: list[SymbolSpec], tape: list[TapeEvent]) -> None:
    assert {s.tier for s in specs} == {1, 2, 3}
    kinds = Counter(e.kind for e in tape)
    assert 1.5 <= kinds[Kind.QUOTE] / kinds[Kind.TRADE] <= 6.0
    assert kinds[Kind.DEPTH] > 0
    assert all(a.ts_ns <= b.ts_ns for a, b in pairwise(tape))
    assert {e.symbol for e in tape} == {s.symbol for s in specs}


def test_activity_proportional_to_expected_trades(
    specs: list[SymbolSpec], tape: list[TapeEvent]
) -> None:
    counts = Counter(t.symbol for t in _of(tape, Kind.TRADE))
    expected = np.log([s.adv_shares / 130.0 for s in specs])
    actual = np.log([counts[s.symbol] for s in specs])
    assert np.corrcoef(expected, actual)[0, 1] > 0.9


def test_regular_session_in_et_with_dst(tape: list[TapeEvent]) -> None:
    ts = np.array([e.ts_ns for e in tape])
    assert ts.min() >= _utc_ns(DST_DAY, 13, 30)
    assert ts.max() <= _utc_ns(DST_DAY, 20, 0)
    hours = (ts // NS // 3600) % 24
    assert not np.any((hours >= 1) & (hours < 4))


def test_regular_session_on_a_winter_date() -> None:
    winter = select_symbols(load_symbols(), 3)
    events = generate_events(winter, WINTER_DAY, seed=3, include_depth=False, rate_scale=0.01)
    ts = np.array([e.ts_ns for e in events])
    assert ts.min() >= _utc_ns(WINTER_DAY, 14, 30)
    assert ts.max() <= _utc_ns(WINTER_DAY, 21, 0)
    assert ts.max() - ts.min() > 6 * 3600 * NS


def test_extended_session_flags_form_t() -> None:
    few = select_symbols(load_symbols(), 3)
    events = generate_events(
        few, DST_DAY, seed=5, session="extended", include_depth=False, rate_scale=0.02
    )
    ts = np.array([e.ts_ns for e in events])
    assert ts.min() >= _utc_ns(DST_DAY, 8, 0)
    assert ts.max() < _utc_ns(DST_DAY + dt.timedelta(days=1), 0, 0)
    open_ns, close_ns = _utc_ns(DST_DAY, 13, 30), _utc_ns(DST_DAY, 20, 0)
    trades = _continuous(_of(events, Kind.TRADE))
    outside = [t for t in trades if not open_ns <= t.ts_ns < close_ns]
    inside = [t for t in trades if open_ns <= t.ts_ns < close_ns]
    assert len(outside) > 50
    assert 0.02 < len(outside) / (len(outside) + len(inside)) < 0.2
    assert all("17" in _pairs(t.fields["conditions"]) for t in outside)
    assert all(t.fields["basis"] in {"E", "O"} for t in outside)
    assert not any("17" in _pairs(t.fields["conditions"]) for t in inside)


def _pairs(conditions: str) -> list[str]:
    return [conditions[i : i + 2] for i in range(0, len(conditions), 2)]


def test_u_shaped_activity(tape: list[TapeEvent]) -> None:
    open_ns = _utc_ns(DST_DAY, 13, 30)
    t = (np.array([e.ts_ns for e in _continuous(_of(tape, Kind.TRADE))]) - open_ns) / NS
    first = np.sum(t < 1800)
    last = np.sum((t >= 21_600) & (t < 23_400))
    trough = np.sum((t >= 3 * 3600) & (t < 4 * 3600)) / 2.0
    assert first > 1.4 * trough
    assert last > 1.4 * trough


def test_bursty_arrivals(specs: list[SymbolSpec], tape: list[TapeEvent]) -> None:
    trades = _by_symbol(_continuous(_of(tape, Kind.TRADE)))
    open_ns = _utc_ns(DST_DAY, 13, 30)
    liquid = _liquid(specs, tape)
    assert len(liquid) >= 2
    for symbol in liquid:
        ts = np.array([t.ts_ns for t in trades[symbol]])
        per_second = np.bincount((ts - open_ns) // NS, minlength=23_400)
        assert per_second.var() / per_second.mean() > 5.0, symbol
        assert np.mean(per_second == 0) > 0.5, symbol
        gaps = np.diff(ts).astype(np.float64)
        assert gaps.std() / gaps.mean() > 2.0, symbol
        same_ms = np.mean(np.diff(ts // 1_000_000) == 0)
        assert 0.35 < same_ms < 0.75, symbol


def test_trade_sizes_cluster(specs: list[SymbolSpec], tape: list[TapeEvent]) -> None:
    lot = {s.symbol: s.round_lot for s in specs}
    trades = _continuous(_of(tape, Kind.TRADE))
    size = np.array([t.fields["size"] for t in trades])
    lots = np.array([lot[t.symbol] for t in trades])
    assert 0.35 <= np.mean(size < lots) <= 0.70
    hundred = size[lots == 100]
    assert np.mean(hundred == 100) >= 0.2
    assert np.mean(hundred % 100 == 0) >= 0.3
    assert np.mean(hundred == 1) > 0.02
    assert np.mean(hundred == 5) > 0.01
    assert np.percentile(hundred, 99) >= 5 * np.median(hundred)
    odd = [t for t in trades if t.fields["size"] < lot[t.symbol]]
    assert all("87" in _pairs(t.fields["conditions"]) and t.fields["basis"] == "O" for t in odd)


def test_spreads_tiered_and_distinct(specs: list[SymbolSpec], tape: list[TapeEvent]) -> None:
    quotes = _by_symbol(_of(tape, Kind.QUOTE))
    bps: dict[str, float] = {}
    for symbol, qs in quotes.items():
        bid = np.array([q.fields["bid"] for q in qs])
        ask = np.array([q.fields["ask"] for q in qs])
        bps[symbol] = float(np.median((ask - bid) / ((ask + bid) / 2.0)) * 1e4)
    by_tier = {t: [bps[s.symbol] for s in specs if s.tier == t] for t in (1, 2, 3)}
    assert np.median(by_tier[3]) > np.median(by_tier[1])
    assert 2.0 <= np.median(by_tier[3]) <= 20.0
    assert len({round(v, 2) for v in bps.values()}) > len(bps) // 2
    assert all(v < 50.0 for v in bps.values())


def test_first_half_hour_spreads_wider(tape: list[TapeEvent]) -> None:
    open_ns = _utc_ns(DST_DAY, 13, 30)
    early, midday = [], []
    for q in _of(tape, Kind.QUOTE):
        rel = (q.fields["ask"] - q.fields["bid"]) / q.fields["ask"]
        minute = (q.ts_ns - open_ns) / NS / 60
        if minute < 30:
            early.append(rel)
        elif 150 <= minute < 240:
            midday.append(rel)
    assert np.mean(early) > 1.2 * np.mean(midday)


def test_venue_mix(tape: list[TapeEvent]) -> None:
    trades = _continuous(_of(tape, Kind.TRADE))
    centers = Counter(t.fields["market_center"] for t in trades)
    total = sum(centers.values())
    assert len(centers) >= 8
    trf = sum(centers[i] for i in TRF_IDS) / total
    assert 0.35 <= trf <= 0.65
    assert max(n for c, n in centers.items() if c not in TRF_IDS) / total <= 0.25
    sweeps = [t for t in trades if "3D" in _pairs(t.fields["conditions"])]
    assert sweeps
    assert all(t.fields["market_center"] not in TRF_IDS for t in sweeps)
    assert {t.fields["basis"] for t in trades} <= {"C", "E", "O"}


def test_market_makers_are_real_mpids(specs: list[SymbolSpec], tape: list[TapeEvent]) -> None:
    with Path(MPIDLIST_FILE).open(encoding="utf-8") as fh:
        directory = {line.split("|", 1)[0] for line in fh if "|" in line}
    depth = _of(tape, Kind.DEPTH)
    mmids = {d.fields["mmid"] for d in depth}
    assert mmids <= directory
    assert not any(re.fullmatch(r"MM\d+", m) for m in mmids)
    assert "NSDQ" in mmids
    assert len(mmids) >= 30
    per_symbol = {s: {d.fields["mmid"] for d in ds} for s, ds in _by_symbol(depth).items()}
    for s in specs:
        if s.tier == 1:
            assert len(per_symbol[s.symbol]) >= 10, s.symbol
    assert {d.fields["action"] for d in depth} == {"update", "delete"}
    assert {d.fields["side"] for d in depth} == {"A", "B"}


def test_prices_on_grid_and_depth_behind_nbbo(tape: list[TapeEvent]) -> None:
    def on_grid(x: float) -> bool:
        return abs(x * 100 - round(x * 100)) < 1e-6

    nbbo: dict[str, tuple[float, float]] = {}
    for e in tape:
        if e.kind == Kind.QUOTE:
            bid, ask = e.fields["bid"], e.fields["ask"]
            assert on_grid(bid) and on_grid(ask) and 0 < bid < ask, e
            nbbo[e.symbol] = (bid, ask)
        elif e.kind == Kind.DEPTH and e.fields["action"] == "update":
            price = e.fields["price"]
            assert on_grid(price) and e.fields["size"] > 0, e
            bid, ask = nbbo[e.symbol]
            assert price <= bid + 1e-9 if e.fields["side"] == "B" else price >= ask - 1e-9, e


def test_daily_moves_and_returns(specs: list[SymbolSpec], tape: list[TapeEvent]) -> None:
    quotes = _by_symbol(_of(tape, Kind.QUOTE))
    open_ns = _utc_ns(DST_DAY, 13, 30)
    five = open_ns + np.arange(0, 23_401, 300) * NS
    one = open_ns + np.arange(0, 23_401, 60) * NS
    moves, ranges, kurtosis, r5 = [], [], [], []
    for s in specs:
        qs = quotes[s.symbol]
        mids = np.array([(q.fields["bid"] + q.fields["ask"]) / 2 for q in qs])
        moves.append(abs(mids[-1] / mids[0] - 1.0))
        ranges.append((mids.max() - mids.min()) / mids[0])
        r1 = np.diff(np.log(_mid_series(qs, one)))
        kurtosis.append(np.mean((r1 - r1.mean()) ** 4) / r1.var() ** 2 - 3.0)
        r5.append(np.diff(np.log(_mid_series(qs, five))))
    assert max(moves) < 0.2
    assert np.median(ranges) < 0.05
    assert np.median(ranges) > 0.003
    assert np.median(kurtosis) > 0.0
    corr = np.corrcoef(np.array(r5))
    mean_corr = corr[np.triu_indices(len(specs), 1)].mean()
    assert 0.15 < mean_corr < 0.6


def test_deterministic_per_seed(specs: list[SymbolSpec]) -> None:
    few = specs[:5]
    a = generate_events(few, DST_DAY, seed=11, duration_s=600, rate_scale=0.2)
    b = generate_events(few, DST_DAY, seed=11, duration_s=600, rate_scale=0.2)
    c = generate_events(few, DST_DAY, seed=12, duration_s=600, rate_scale=0.2)
    assert a == b
    assert a != c
    assert len(a) > 100


def test_window_offset_and_duration(specs: list[SymbolSpec]) -> None:
    events = generate_events(
        specs[:4], DST_DAY, seed=1, duration_s=120.0, start_offset_s=3600.0, rate_scale=0.5
    )
    start = _utc_ns(DST_DAY, 14, 30)
    assert events
    assert all(start <= e.ts_ns < start + 120 * NS for e in events)


def test_generate_tape_writes_a_readable_tape(tmp_path: Path) -> None:
    from feed_sim.tape.format import read_events, read_header

    out = tmp_path / "gen.tape"
    header = generate_tape(out, 6, DST_DAY, seed=2, duration_s=300, rate_scale=0.2)
    assert read_header(out).event_count == header.event_count > 0
    assert header.source == "generated"
    events = list(read_events(out))
    assert len(events) == header.event_count
    assert {e.kind for e in events} == {Kind.TRADE, Kind.QUOTE, Kind.DEPTH}
