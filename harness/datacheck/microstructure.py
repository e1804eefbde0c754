"""The statistical fingerprints of real order flow (market-facts.md 4.2, 4.5, 4.6, 4.8).

A generator that draws sizes uniformly, arrivals as a Poisson process, activity flat over the
day and trade signs independently produces data that none of these checks accept. Each needs
enough trades to judge (a few hundred in the regular session); with fewer it says so (info).
"""

from __future__ import annotations

import numpy as np

from harness.datacheck.checks import (
    CLOSE_S,
    OPEN_S,
    Context,
    Eastern,
    Finding,
    Severity,
    _groups,
    _pct,
    split_by,
    too_few,
)
from harness.datacheck.dataset import Ints, MarketData, Trades

MIN_TRADES = 500
HALF_HOURS = 13


def round_lot(price: np.ndarray) -> np.ndarray:
    """MDI round lot by price (from 2025-11-03; 100 below $250.01)."""
    return np.select([price <= 250, price <= 1_000, price <= 10_000], [100, 40, 10], 1)


def lot_sizes(data: MarketData, ctx: Context) -> Finding:
    name, source = "lot_sizes", "market-facts.md 4.6 (45-64% odd lots, clustering at 100s)"
    trades = data.trades
    sized = trades.size > 0
    if sized.sum() < MIN_TRADES:
        return too_few(name, source, int(sized.sum()), "sized trades")
    size, lot = trades.size[sized], round_lot(trades.price[sized])
    round_share = float(((size % lot) == 0).mean())
    odd_share = float((size < lot).mean())
    evidence = {"trades": int(size.size), "round_lot_multiples": round(round_share, 4),
                "odd_lots": round(odd_share, 4), "median_size": float(np.median(size))}  # fmt: skip
    if round_share < 0.10:
        return Finding(name, Severity.SUSPICIOUS,
                       f"only {_pct(round_share)} of trades are round-lot multiples (real: ~50%)",
                       source, evidence)  # fmt: skip
    if odd_share < 0.05:
        return Finding(name, Severity.SUSPICIOUS,
                       f"only {_pct(odd_share)} odd-lot trades (real: 45-64%)",
                       source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO,
                   f"{_pct(round_share)} round-lot multiples, {_pct(odd_share)} odd lots",
                   source, evidence)  # fmt: skip


def _regular(trades: Trades) -> tuple[np.ndarray, Eastern]:
    et = Eastern.of(trades.ts_ns)
    return (et.second >= OPEN_S) & (et.second < CLOSE_S), et


def burstiness(data: MarketData, ctx: Context) -> Finding:
    name, source = "burstiness", "market-facts.md 4.2 / 4.8 (per-second variance/mean 16-20)"
    trades = data.trades
    regular, et = _regular(trades)
    if regular.sum() < MIN_TRADES:
        return too_few(name, source, int(regular.sum()), "regular-session trades")
    group, _ = _groups(trades.symbol[regular], et.day[regular])
    ratios = []
    seconds = et.second[regular] - OPEN_S
    for _, rows in split_by(group):
        if rows.size < 200:
            continue
        span = seconds[rows]
        counts = np.bincount(span - span.min(), minlength=int(span.max() - span.min()) + 1)
        if counts.mean() > 0:
            ratios.append(float(counts.var() / counts.mean()))
    if not ratios:
        return Finding(name, Severity.INFO, "no symbol-day with 200+ regular trades", source)
    median = float(np.median(ratios))
    evidence = {"symbol_days": len(ratios), "median_variance_to_mean": round(median, 2)}
    if median < 2.0:
        return Finding(name, Severity.SUSPICIOUS,
                       f"trades arrive like a Poisson process (per-second variance/mean "
                       f"{median:.2f}; real flow 16-20)", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO, f"per-second variance/mean {median:.1f} (bursty)", source,
                   evidence)  # fmt: skip


def intraday_shape(data: MarketData, ctx: Context) -> Finding:
    name, source = "intraday_u_shape", "market-facts.md 4.5 (open and close busiest)"
    trades = data.trades
    regular, et = _regular(trades)
    if regular.sum() < 4 * MIN_TRADES:
        return too_few(name, source, int(regular.sum()), "regular-session trades")
    buckets = np.bincount((et.second[regular] - OPEN_S) // 1800, minlength=HALF_HOURS)
    if np.count_nonzero(buckets) < HALF_HOURS - 1:
        return Finding(name, Severity.INFO,
                       f"trades in {np.count_nonzero(buckets)} of the session's 13 half hours: "
                       "not a whole session", source)  # fmt: skip
    share = buckets / buckets.sum()
    midday = float(np.median(share[1:-1]))
    edges = (float(share[0]), float(share[-1]))
    evidence = {"half_hour_shares": [round(float(s), 4) for s in share]}
    if max(edges) <= midday * 1.1:
        return Finding(name, Severity.SUSPICIOUS,
                       f"no intraday U-shape: first/last half hour {_pct(edges[0])} / "
                       f"{_pct(edges[1])} vs midday {_pct(midday)}", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO,
                   f"first/last half hour {_pct(edges[0])} / {_pct(edges[1])} vs midday "
                   f"{_pct(midday)}", source, evidence)  # fmt: skip


def trade_signs(trades: Trades) -> Ints:
    """+1 buyer-initiated, -1 seller-initiated, 0 unknown: the aggressor when the source has
    it, else the quote rule (above / below the NBBO mid at the trade), else the tick rule."""
    signs = np.where(trades.aggressor == 1, 1, np.where(trades.aggressor == 2, -1, 0))
    mid = (trades.bid + trades.ask) / 2
    quoted = (signs == 0) & np.isfinite(mid) & (trades.bid > 0)
    signs = np.where(quoted & (trades.price > mid), 1, signs)
    signs = np.where(quoted & (trades.price < mid), -1, signs)
    order = np.lexsort((trades.ts_ns, trades.symbol))
    price, symbol = trades.price[order], trades.symbol[order]
    starts = np.ones(price.size, dtype=bool)
    starts[1:] = symbol[1:] != symbol[:-1]
    tick = np.zeros(price.size, dtype=np.int64)
    tick[1:] = np.sign(np.diff(price)).astype(np.int64)
    tick[starts] = 0
    # A zero tick keeps the direction of the last nonzero one of the same symbol.
    last = np.maximum.accumulate(np.where((tick != 0) | starts, np.arange(price.size), 0))
    tick = tick[last]
    by_tick = np.empty_like(tick)
    by_tick[order] = tick
    return np.where(signs == 0, by_tick, signs).astype(np.int64)


def sign_autocorrelation(data: MarketData, ctx: Context) -> Finding:
    name, source = "trade_sign_autocorrelation", "market-facts.md 4.8 (lag-1 ACF 0.6-0.7)"
    trades = data.trades
    if len(trades) < MIN_TRADES:
        return too_few(name, source, len(trades))
    signs = trade_signs(trades)
    values = []
    for _, rows in split_by(trades.symbol):
        s = signs[rows][np.argsort(trades.ts_ns[rows], kind="stable")]
        s = s[s != 0].astype(float)
        if s.size >= MIN_TRADES and s.std() > 0:
            values.append(float(np.corrcoef(s[:-1], s[1:])[0, 1]))
    if not values:
        return Finding(name, Severity.INFO, f"no symbol with {MIN_TRADES}+ signed trades", source)
    median = float(np.median(values))
    evidence = {"symbols": len(values), "median_lag1_acf": round(median, 3)}
    if median < 0.05:
        return Finding(name, Severity.SUSPICIOUS,
                       f"trade signs are independent (lag-1 autocorrelation {median:.3f}; "
                       "real order flow 0.6-0.7)", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO, f"trade-sign lag-1 autocorrelation {median:.2f}", source,
                   evidence)  # fmt: skip


def luld_band(reference: np.ndarray, tier1: np.ndarray, doubled: np.ndarray) -> np.ndarray:
    """The Limit Up-Limit Down band as a share of the reference price: 5% (tier 1, S&P 500)
    or 10% above $3, 20% from $0.75 to $3, 75% below; doubled at the open and the close."""
    band = np.select(
        [reference > 3.0, reference >= 0.75], [np.where(tier1, 0.05, 0.10), 0.20], 0.75
    )
    return np.where(doubled, 2 * band, band)


def intraday_moves(data: MarketData, ctx: Context) -> Finding:
    name, source = "intraday_moves", "market-facts.md 4.1 (LULD bands: 5% tier 1, 10% tier 2)"
    trades = data.trades
    regular, et = _regular(trades)
    if regular.sum() < MIN_TRADES:
        return too_few(name, source, int(regular.sum()), "regular-session trades")
    seconds = et.second[regular]
    window = (seconds - OPEN_S) // 300
    group, n = _groups(trades.symbol[regular], et.day[regular], window)
    price = trades.price[regular]
    reference = np.zeros(n)
    for g, rows in split_by(group):
        reference[g] = np.median(price[rows])
    high, low = np.full(n, -np.inf), np.full(n, np.inf)
    np.maximum.at(high, group, price)
    np.minimum.at(low, group, price)
    # Each window against the previous window's median of the same symbol and day.
    first = np.zeros(n, dtype=np.int64)
    first[group[::-1]] = np.arange(group.size)[::-1]
    symbol, day, win = trades.symbol[regular][first], et.day[regular][first], window[first]
    order = np.lexsort((win, day, symbol))
    prev = np.full(n, -1)
    same = (symbol[order][1:] == symbol[order][:-1]) & (day[order][1:] == day[order][:-1])
    same &= win[order][1:] == win[order][:-1] + 1
    prev[order[1:][same]] = order[:-1][same]
    judged = prev >= 0
    ref = reference[prev[judged]]
    move = np.maximum(high[judged] / ref - 1, 1 - low[judged] / ref)
    start = OPEN_S + win[judged] * 300
    doubled = (start < OPEN_S + 900) | (start >= CLOSE_S - 1500)
    tier1 = np.asarray([s in ctx.sp500 for s in symbol[judged].tolist()], dtype=bool)
    beyond = move > luld_band(ref, tier1, doubled)
    share = float(beyond.mean()) if beyond.size else 0.0
    largest = [f"{symbol[judged][i]}: {_pct(move[i])}" for i in np.argsort(move)[::-1][:3]]
    evidence = {"windows": int(beyond.size), "beyond_band": int(beyond.sum()),
                "largest_moves": largest}  # fmt: skip
    if share > 0.005:
        return Finding(name, Severity.SUSPICIOUS,
                       f"{_pct(share)} of 5-minute windows move beyond the LULD band (a real "
                       "market halts trading there)", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO,
                   f"{int(beyond.sum())} of {beyond.size} 5-minute windows beyond the LULD band",
                   source, evidence)  # fmt: skip
