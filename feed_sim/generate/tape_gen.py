"""The `feed-sim generate` core: a realistic synthetic tape for N symbols.

Owns the orchestration: one day's session window, the shared market state (correlated price
paths, activity modulation, spread noise), then per symbol the trades, NBBO quotes and Level II
rows as numpy columns (`SymbolDay`), and finally their conversion into time-ordered
`TapeEvent`s, in memory (`generate_events`) or streamed into a tape file (`generate_tape`).
Every symbol's activity is proportional to its expected trades per day (ADV / average print
size) times the intraday U-shape; `rate_scale` shrinks everything for quick tapes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from feed_sim.generate import arrivals, depth, prices, sizes, spreads, venues
from feed_sim.generate.session import NS, Session, activity_profile, session_window
from feed_sim.generate.universe import SymbolSpec, load_symbols, select_symbols
from feed_sim.tape.model import Kind, TapeEvent, TapeHeader

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TICK = 0.01
AVERAGE_TRADE_SIZE = 130.0
"""Shares per print (market-facts 4.2: 100-160), the same rule as the symbol weights."""
QUOTES_PER_TRADE = 3.0
"""NBBO updates per print (market-facts 4.2: NBBO changes are 1.5-6x trades)."""
DEPTH_PER_TRADE = 1.5
"""Random Level II row updates per print (NSDQ following the NBBO comes on top)."""
SIZE_ONLY_SHARE = 0.4
"""NBBO updates that change only sizes (mid changes on ~half of L1 events, market-facts 4.2)."""
SIGN_FLIP_PROB = 0.15
"""Aggressor side persistence between clusters (trade-sign ACF, market-facts 4.8)."""
SWEEP_PROB = 0.45
"""Share of multi-print clusters that are intermarket sweeps."""
OPEN_CROSS_SHARE = 0.015
CLOSE_CROSS_SHARE = 0.07
"""Auction prints as a share of ADV (market-facts 4.5: open ~2%, close 6-10%)."""
SPREAD_NOISE_TAU_S = 30.0
CHUNK_NS = 60 * NS
MEAN_CLUSTER = arrivals.mean_cluster_size()


@dataclass(frozen=True, slots=True)
class TradeColumns:
    """Prints of one symbol, sorted by time."""

    ts: IntArray
    price: FloatArray
    size: IntArray
    center: IntArray
    condition: IntArray
    """Index into venues.CONDITIONS / venues.BASIS."""
    aggressor: IntArray
    bid: FloatArray
    ask: FloatArray


@dataclass(frozen=True, slots=True)
class QuoteColumns:
    """NBBO updates of one symbol, sorted by time."""

    ts: IntArray
    bid: FloatArray
    bid_size: IntArray
    ask: FloatArray
    ask_size: IntArray
    bid_mc: IntArray
    ask_mc: IntArray


@dataclass(frozen=True, slots=True)
class SymbolDay:
    """Everything generated for one symbol, as columns."""

    symbol: str
    trades: TradeColumns
    quotes: QuoteColumns
    depth: depth.DepthColumns | None

    def event_count(self) -> int:
        """Trades + quotes + depth rows."""
        n_depth = 0 if self.depth is None else len(self.depth.ts)
        return len(self.trades.ts) + len(self.quotes.ts) + n_depth


@dataclass(frozen=True, slots=True)
class _Market:
    """Shared state of the generated window."""

    start_ns: int
    end_ns: int
    grid0_ns: int
    open_ns: int
    close_ns: int
    profile: FloatArray
    modulation: FloatArray
    spread_noise: FloatArray
    spread_factor: FloatArray
    """Time-of-day spread factor per grid second."""
    paths: prices.PricePaths

    def seconds(self, ts: IntArray) -> FloatArray:
        """Grid seconds of times."""
        return np.asarray((ts - self.grid0_ns) / NS, dtype=np.float64)

    def extended(self, ts: IntArray) -> BoolArray:
        """True for times outside 09:30-16:00 ET."""
        return np.asarray((ts < self.open_ns) | (ts >= self.close_ns), dtype=np.bool_)

    def times(self, rng: np.random.Generator, per_day: float, column: int) -> IntArray:
        """Cox-process times with `per_day` expected events over the whole session."""
        rate = per_day * self.profile * self.modulation[:, column]
        ts = arrivals.poisson_times(rng, rate, self.grid0_ns)
        return ts[(ts >= self.start_ns) & (ts < self.end_ns)]


def _market(
    seed_seq: np.random.SeedSequence,
    symbols: Sequence[SymbolSpec],
    day: dt.date,
    session: Session,
    duration_s: float | None,
    start_offset_s: float,
) -> _Market:
    window = session_window(day, session)
    full_profile = activity_profile(window)
    var_w = prices.variance_weights(full_profile, window.regular_mask())
    if start_offset_s < 0:
        raise ValueError("start_offset_s must not be negative")
    start_ns = window.start_ns + round(start_offset_s * NS)
    end_ns = window.end_ns if duration_s is None else start_ns + round(duration_s * NS)
    end_ns = min(end_ns, window.end_ns)
    if end_ns <= start_ns:
        raise ValueError("the requested window is empty")
    s0 = (start_ns - window.start_ns) // NS
    s1 = min(window.n_seconds, -(-(end_ns - window.start_ns) // NS))
    rng_mod, rng_px, rng_sp = (np.random.default_rng(s) for s in seed_seq.spawn(3))
    n = len(symbols)
    grid_from_open = (window.start_ns - window.open_ns) / NS + np.arange(s0, s1, dtype=np.float64)
    session_s = (window.close_ns - window.open_ns) / NS
    return _Market(
        start_ns=start_ns,
        end_ns=end_ns,
        grid0_ns=window.start_ns + s0 * NS,
        open_ns=window.open_ns,
        close_ns=window.close_ns,
        profile=full_profile[s0:s1],
        modulation=arrivals.intensity_modulation(rng_mod, s1 - s0, n),
        spread_noise=arrivals.ar1_paths(rng_sp, s1 - s0, n, SPREAD_NOISE_TAU_S),
        spread_factor=spreads.intraday_factor(grid_from_open + 0.5, session_s),
        paths=prices.generate_paths(rng_px, symbols, var_w[s0:s1]),
    )


def _quotes(
    rng: np.random.Generator,
    m: _Market,
    i: int,
    spec: SymbolSpec,
    parent_ns: IntArray,
    rate_scale: float,
) -> tuple[QuoteColumns, IntArray, IntArray, float]:
    """NBBO updates: independent ones plus one shortly after every trade cluster."""
    per_day = spec.adv_shares / AVERAGE_TRADE_SIZE * rate_scale
    extra = max(QUOTES_PER_TRADE * MEAN_CLUSTER - 1.0, 0.0) / MEAN_CLUSTER
    independent = m.times(rng, per_day * extra, i)
    post = parent_ns + rng.integers(20_000, 500_000, len(parent_ns))
    ts = np.concatenate([np.array([m.start_ns], dtype=np.int64), independent, post])
    ts = np.sort(ts[ts < m.end_ns], kind="stable")
    sec = m.seconds(ts)
    mid_ticks = prices.mid_at(m.paths, i, sec) / TICK
    base = spreads.base_spread_ticks(rng, spec)
    grid = spreads.spread_multiplier(m.spread_factor, m.spread_noise[:, i])
    width = spreads.spread_ticks(rng, base, grid[np.clip(sec.astype(np.int64), 0, len(grid) - 1)])
    bid_t = np.maximum(np.round(mid_ticks - width / 2.0).astype(np.int64), 1)
    ask_t = bid_t + width
    size_only = rng.random(len(ts)) < SIZE_ONLY_SHARE
    size_only[0] = False
    last_priced = np.maximum.accumulate(np.where(size_only, 0, np.arange(len(ts))))
    bid_t, ask_t = bid_t[last_priced], ask_t[last_priced]
    mean_lots = float(np.clip(spec.adv_shares / 2e6, 1.0, 40.0))
    n = len(ts)
    extended = m.extended(ts)
    quotes = QuoteColumns(
        ts=ts,
        bid=np.round(bid_t * TICK, 2),
        bid_size=sizes.quote_sizes(rng, n, spec.round_lot, mean_lots),
        ask=np.round(ask_t * TICK, 2),
        ask_size=sizes.quote_sizes(rng, n, spec.round_lot, mean_lots),
        bid_mc=venues.exchange_centers(rng, n, extended),
        ask_mc=venues.exchange_centers(rng, n, extended),
    )
    return quotes, bid_t, ask_t, base


def _trades(
    rng: np.random.Generator,
    m: _Market,
    spec: SymbolSpec,
    parent_ns: IntArray,
    quotes: QuoteColumns,
    auctions: bool,
) -> TradeColumns:
    """Prints: clusters expanded into children, priced against the NBBO, plus the crosses."""
    cluster_n = arrivals.cluster_sizes(rng, len(parent_ns))
    ts, cluster, position = arrivals.expand_clusters(rng, parent_ns, cluster_n)
    buy_parent = np.cumsum(rng.random(len(parent_ns)) < SIGN_FLIP_PROB) % 2 == 0
    sweep_parent = (cluster_n >= 2) & (rng.random(len(parent_ns)) < SWEEP_PROB)
    keep = ts < m.end_ns
    ts, cluster, position = ts[keep], cluster[keep], position[keep]
    buy, sweep = buy_parent[cluster], sweep_parent[cluster]
    extended = m.extended(ts)
    at = np.clip(np.searchsorted(quotes.ts, ts, side="right") - 1, 0, None)
    bid, ask = quotes.bid[at], quotes.ask[at]
    level = np.where(sweep, np.minimum(position // 3, 4), 0)
    centers, trf = venues.trade_centers(rng, sweep, extended)
    price, aggressor = venues.trade_prices(rng, buy, bid, ask, trf, level, TICK)
    size = sizes.trade_sizes(rng, len(ts), spec.price, spec.round_lot)
    condition = venues.condition_index(size < spec.round_lot, sweep, extended)
    cols = [ts, price, size, centers, condition, aggressor, bid, ask]
    if auctions:
        cols = _with_crosses(rng, m, spec, quotes, cols)
    order = np.argsort(cols[0], kind="stable")
    t, p, s, c, k, a, b, q = (np.asarray(col)[order] for col in cols)
    return TradeColumns(t, p, s, c, k, a, b, q)


def _with_crosses(
    rng: np.random.Generator,
    m: _Market,
    spec: SymbolSpec,
    quotes: QuoteColumns,
    cols: list[Any],
) -> list[Any]:
    """Append the opening cross (just after 09:30) and the closing cross (stamped 16:00:00)
    on the listing market when they fall inside the window."""
    crosses: list[tuple[int, float, int]] = []
    open_ts = m.open_ns + int(rng.integers(20_000_000, 400_000_000))
    if m.start_ns <= open_ts < m.end_ns:
        crosses.append((open_ts, OPEN_CROSS_SHARE, venues.OPEN_CROSS))
    if m.start_ns <= m.close_ns <= m.end_ns:
        crosses.append((m.close_ns, CLOSE_CROSS_SHARE, venues.CLOSE_CROSS))
    lot = spec.round_lot
    for ts, share, condition in crosses:
        at = max(int(np.searchsorted(quotes.ts, ts, side="right")) - 1, 0)
        bid, ask = float(quotes.bid[at]), float(quotes.ask[at])
        price = round(round((bid + ask) / 2.0 / TICK) * TICK, 2)
        shares = spec.adv_shares * share * float(np.exp(0.3 * rng.standard_normal()))
        size = max(lot, int(shares // lot) * lot)
        row = (ts, price, size, venues.listing_market(spec.symbol), condition, 3, bid, ask)
        cols = [np.append(col, value) for col, value in zip(cols, row, strict=True)]
    return cols


def _symbol_day(
    rng: np.random.Generator,
    m: _Market,
    i: int,
    spec: SymbolSpec,
    include_depth: bool,
    auctions: bool,
    rate_scale: float,
) -> SymbolDay:
    per_day = spec.adv_shares / AVERAGE_TRADE_SIZE * rate_scale
    parent_ns = m.times(rng, per_day / MEAN_CLUSTER, i)
    quotes, bid_t, ask_t, base = _quotes(rng, m, i, spec, parent_ns, rate_scale)
    trades = _trades(rng, m, spec, parent_ns, quotes, auctions)
    book = None
    if include_depth:
        rows = depth.choose_rows(rng, spec.tier)
        random_ts = m.times(rng, per_day * DEPTH_PER_TRADE, i)
        book = depth.depth_updates(
            rng, rows, random_ts, quotes.ts, bid_t, ask_t, max(1.0, base / 2.0), spec.round_lot
        )
    return SymbolDay(spec.symbol, trades, quotes, book)


def generate_days(
    symbols: Sequence[SymbolSpec],
    day: dt.date,
    seed: int,
    session: Session = "regular",
    include_depth: bool = True,
    duration_s: float | None = None,
    start_offset_s: float = 0.0,
    rate_scale: float = 1.0,
    auctions: bool = True,
    workers: int = 2,
) -> Iterator[SymbolDay]:
    """Generate each symbol's columns (in `symbols` order); deterministic in (seed, day).

    Symbols are generated on `workers` threads (numpy releases the GIL); every symbol has its own
    random stream, so the result does not depend on the number of workers.
    """
    if rate_scale <= 0:
        raise ValueError("rate_scale must be positive")
    root = np.random.SeedSequence(entropy=seed, spawn_key=(day.toordinal(),))
    market_seq, symbols_seq = root.spawn(2)
    m = _market(market_seq, symbols, day, session, duration_s, start_offset_s)
    seqs = symbols_seq.spawn(len(symbols))

    def one(i: int) -> SymbolDay:
        rng = np.random.default_rng(seqs[i])
        return _symbol_day(rng, m, i, symbols[i], include_depth, auctions, rate_scale)

    if workers <= 1:
        yield from map(one, range(len(symbols)))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(one, range(len(symbols)))


def _events_between(d: SymbolDay, lo: int, hi: int) -> tuple[list[TapeEvent], IntArray, IntArray]:
    """One symbol's events with lo <= ts < hi (trades, then quotes, then depth rows), with
    their times and kind ranks (0 trade, 1 quote, 2 depth) for ordering."""
    sym = d.symbol
    tr, qu = d.trades, d.quotes
    a, b = np.searchsorted(tr.ts, [lo, hi])
    events: list[TapeEvent] = [
        TapeEvent(
            ts,
            sym,
            Kind.TRADE,
            {
                "price": p,
                "size": s,
                "market_center": c,
                "conditions": venues.CONDITIONS[k],
                "basis": venues.BASIS[k],
                "aggressor": g,
                "bid": bid,
                "ask": ask,
            },
        )
        for ts, p, s, c, k, g, bid, ask in zip(
            tr.ts[a:b].tolist(),
            tr.price[a:b].tolist(),
            tr.size[a:b].tolist(),
            tr.center[a:b].tolist(),
            tr.condition[a:b].tolist(),
            tr.aggressor[a:b].tolist(),
            tr.bid[a:b].tolist(),
            tr.ask[a:b].tolist(),
            strict=True,
        )
    ]
    stamps = [tr.ts[a:b]]
    a, b = np.searchsorted(qu.ts, [lo, hi])
    events.extend(
        TapeEvent(
            ts,
            sym,
            Kind.QUOTE,
            {"bid": bp, "bid_size": bs, "ask": ap, "ask_size": az, "bid_mc": bm, "ask_mc": am},
        )
        for ts, bp, bs, ap, az, bm, am in zip(
            qu.ts[a:b].tolist(),
            qu.bid[a:b].tolist(),
            qu.bid_size[a:b].tolist(),
            qu.ask[a:b].tolist(),
            qu.ask_size[a:b].tolist(),
            qu.bid_mc[a:b].tolist(),
            qu.ask_mc[a:b].tolist(),
            strict=True,
        )
    )
    stamps.append(qu.ts[a:b])
    if d.depth is not None:
        dp = d.depth
        a, b = np.searchsorted(dp.ts, [lo, hi])
        events.extend(
            TapeEvent(
                ts,
                sym,
                Kind.DEPTH,
                {
                    "side": "A" if side else "B",
                    "action": "delete" if gone else "update",
                    "mmid": dp.mmids[row],
                    "order_id": 0,
                    "price": p,
                    "size": s,
                },
            )
            for ts, side, gone, row, p, s in zip(
                dp.ts[a:b].tolist(),
                dp.side[a:b].tolist(),
                dp.delete[a:b].tolist(),
                dp.row[a:b].tolist(),
                dp.price[a:b].tolist(),
                dp.size[a:b].tolist(),
                strict=True,
            )
        )
        stamps.append(dp.ts[a:b])
    ranks = [np.full(len(s), k, dtype=np.int64) for k, s in enumerate(stamps)]
    return events, np.concatenate(stamps), np.concatenate(ranks)


def iter_events(days: Sequence[SymbolDay], chunk_ns: int = CHUNK_NS) -> Iterator[TapeEvent]:
    """All events of `days` in time order (ties: symbol order, then trade, quote, depth),
    materialised chunk by chunk so memory holds one chunk of TapeEvent objects at a time."""
    columns = [d.trades.ts for d in days] + [d.quotes.ts for d in days]
    columns += [d.depth.ts for d in days if d.depth is not None]
    columns = [ts for ts in columns if len(ts)]
    if not columns:
        return
    lo = min(int(ts[0]) for ts in columns)
    hi_all = max(int(ts[-1]) for ts in columns) + 1
    while lo < hi_all:
        hi = min(lo + chunk_ns, hi_all)
        pool: list[TapeEvent] = []
        stamps, symbols, ranks = [], [], []
        for index, d in enumerate(days):
            events, ts, rank = _events_between(d, lo, hi)
            pool.extend(events)
            stamps.append(ts)
            ranks.append(rank)
            symbols.append(np.full(len(ts), index, dtype=np.int64))
        if pool:
            keys = (np.concatenate(ranks), np.concatenate(symbols), np.concatenate(stamps))
            order = np.lexsort(keys)
            yield from map(pool.__getitem__, order.tolist())
        lo = hi


def generate_events(
    symbols: Sequence[SymbolSpec],
    day: dt.date,
    seed: int,
    session: Session = "regular",
    include_depth: bool = True,
    duration_s: float | None = None,
    start_offset_s: float = 0.0,
    rate_scale: float = 1.0,
    auctions: bool = True,
) -> list[TapeEvent]:
    """A synthetic tape in memory: TRADE, QUOTE and DEPTH events of `symbols` in time order.

    For full-rate, many-symbol days prefer generate_tape (streams) or generate_days (columns).
    """
    days = list(
        generate_days(
            symbols,
            day,
            seed,
            session,
            include_depth,
            duration_s,
            start_offset_s,
            rate_scale,
            auctions,
        )
    )
    return list(iter_events(days))


def generate_tape(
    out_path: Path | str,
    n_symbols: int,
    day: dt.date,
    seed: int,
    session: Session = "regular",
    include_depth: bool = True,
    duration_s: float | None = None,
    start_offset_s: float = 0.0,
    rate_scale: float = 1.0,
    symbols_file: Path | None = None,
) -> TapeHeader:
    """Generate a tape for a stratified subset of n_symbols and write it to out_path."""
    from feed_sim.tape.format import TapeWriter

    specs = select_symbols(load_symbols(symbols_file), n_symbols)
    days = list(
        generate_days(
            specs, day, seed, session, include_depth, duration_s, start_offset_s, rate_scale
        )
    )
    meta = {
        "generator": "feed_sim.generate",
        "seed": seed,
        "day": day.isoformat(),
        "session": session,
        "rate_scale": rate_scale,
        "include_depth": include_depth,
        "duration_s": duration_s,
        "start_offset_s": start_offset_s,
    }
    with TapeWriter(
        out_path, source="generated", meta=meta, symbols=[s.symbol for s in specs]
    ) as writer:
        writer.write_all(iter_events(days))
    assert writer.header is not None
    return writer.header
