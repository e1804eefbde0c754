"""The legitimacy checks: does this market data look like a real US equities feed?

Each check reads `MarketData` and returns one `Finding`: a severity (info: nothing wrong, or
not enough data to say; suspicious; synthetic), a one-line summary, its evidence (figures and
examples) and the source of its threshold (a section of ../shared/market-facts.md). The
readiness review found data with market makers MM1..MM5, trades at 1-4 AM UTC, 65% daily
moves, every trade on one venue and identical spreads across symbols; each of those trips its
own check here. Thresholds sit well outside what the real samples of market-facts.md show, so a
real feed passes and a generator that ignores the facts does not.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import numpy as np

from harness.datacheck.dataset import Floats, Ints, MarketData, Quotes, Strings

EASTERN = ZoneInfo("America/New_York")
NS_PER_S = 1_000_000_000
DAY_S = 86_400
TICK = 0.01
PRE_OPEN_S, OPEN_S, CLOSE_S, POST_CLOSE_S = 4 * 3600, 9 * 3600 + 1800, 16 * 3600, 20 * 3600
FORM_T_CONDITIONS = ("17", "3A")
"""Form-T (extended hours) and Form-T sold out of sequence (data/iqfeed_trade_conditions.tsv)."""
OUT_OF_SESSION_OK = ("40", "42", "2E", "1E", "1F", "12", "10", "19")
"""Closing prints and crosses (the 16:00 auction), official close, late opening reports, sold
last / out of sequence: may print outside 09:30-16:00 without Form-T."""


class Severity(IntEnum):
    INFO = 0
    SUSPICIOUS = 1
    SYNTHETIC = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """What one check found."""

    check: str
    severity: Severity
    summary: str
    source: str
    """Where the threshold comes from (market-facts.md section, or the rule it enforces)."""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": str(self.severity),
            "summary": self.summary,
            "source": self.source,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class Context:
    """What the checks compare against besides the data."""

    mpids: frozenset[str]
    """The Nasdaq Trader market participant directory."""
    universe: frozenset[str] | None = None
    """The configured symbol universe (None: not checked)."""
    sp500: frozenset[str] = frozenset()
    """Tier 1 of the LULD plan (S&P 500 names): narrower bands."""


def too_few(name: str, source: str, count: int, what: str = "trades") -> Finding:
    """The finding of a check without enough data to judge (info, said so)."""
    return Finding(name, Severity.INFO, f"{count:,} {what}: too few to judge", source)


def _pct(share: float) -> str:
    return f"{100 * share:.2f}%"


def _utc(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / NS_PER_S, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Eastern:
    """Each timestamp's US/Eastern calendar day (ordinal) and second of that day."""

    day: Ints
    second: Ints

    @classmethod
    def of(cls, ts_ns: Ints) -> Eastern:
        hours, index = np.unique(ts_ns // (3600 * NS_PER_S), return_inverse=True)
        offsets = np.asarray(
            [
                dt.datetime.fromtimestamp(int(h) * 3600, dt.UTC)
                .astimezone(EASTERN)
                .utcoffset()
                .total_seconds()  # type: ignore[union-attr]
                for h in hours
            ],
            dtype=np.int64,
        )
        local_s = ts_ns // NS_PER_S + offsets[index.ravel()]
        epoch_ordinal = dt.date(1970, 1, 1).toordinal()
        return cls(local_s // DAY_S + epoch_ordinal, local_s % DAY_S)


def split_by(keys: Strings | Ints) -> list[tuple[Any, Ints]]:
    """(key, the row indices holding it) for each distinct key, rows in their original order."""
    if not keys.size:
        return []
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return [(ordered[a], idx) for a, idx in zip(starts, np.split(order, starts[1:]), strict=True)]


@cache
def _nyse_holidays(years: tuple[int, ...]) -> dict[dt.date, str]:
    return dict(holidays.financial_holidays("NYSE", years=years))


def _groups(*keys: Strings | Ints) -> tuple[Ints, int]:
    """A group index per row for the combination of `keys`, and the number of groups."""
    stacked = np.rec.fromarrays(keys)
    _, index = np.unique(stacked, return_inverse=True)
    return index.ravel().astype(np.int64), int(index.max()) + 1 if index.size else 0


# --- the review's five findings -----------------------------------------------------------------


def market_makers(data: MarketData, ctx: Context) -> Finding:
    name, source = "market_maker_ids", "market-facts.md 3 (Nasdaq Trader mpidlist)"
    total = sum(data.market_makers.values())
    if not total:
        return Finding(name, Severity.INFO, "no Level 2 market-maker rows to check", source)
    unknown = Counter({m: n for m, n in data.market_makers.items() if m not in ctx.mpids})
    share = sum(unknown.values()) / total
    evidence = {"rows": total, "unknown_rows": sum(unknown.values()),
                "unknown_ids": dict(unknown.most_common(10))}  # fmt: skip
    if share > 0.01:
        ids = ", ".join(f"{m} ({n:,})" for m, n in unknown.most_common(5))
        return Finding(name, Severity.SYNTHETIC,
                       f"{_pct(share)} of Level 2 rows come from ids that are not Nasdaq market "
                       f"participants: {ids}", source, evidence)  # fmt: skip
    detail = f"; {sum(unknown.values())} rows from unlisted ids" if unknown else ""
    return Finding(name, Severity.INFO,
                   f"{len(data.market_makers)} market-maker ids, all in the directory{detail}",
                   source, evidence)  # fmt: skip


def session_hours(data: MarketData, ctx: Context) -> Finding:
    name, source = "session_hours", "market-facts.md 4.1 (04:00-20:00 ET, DST-aware)"
    trades = data.trades
    if not len(trades):
        return too_few(name, source, 0)
    et = Eastern.of(trades.ts_ns)
    outside = (et.second < PRE_OPEN_S) | (et.second >= POST_CLOSE_S)
    share = float(outside.mean())
    hours = Counter(int(h) for h in (trades.ts_ns[outside] // (3600 * NS_PER_S)) % 24)
    evidence: dict[str, Any] = {
        "trades": len(trades),
        "outside_sessions": int(outside.sum()),
        "utc_hours_outside": {f"{h:02d}": n for h, n in sorted(hours.items())},
    }
    if outside.any():
        evidence["example"] = _utc(int(trades.ts_ns[outside][0]))
    if share > 0.001:
        return Finding(name, Severity.SYNTHETIC,
                       f"{_pct(share)} of trades print while every US equity session is closed "
                       f"(UTC hours {', '.join(evidence['utc_hours_outside'])})",
                       source, evidence)  # fmt: skip
    extended = ~outside & ((et.second < OPEN_S) | (et.second >= CLOSE_S))
    marked = trades.basis == "E"
    for code in (*FORM_T_CONDITIONS, *OUT_OF_SESSION_OK):
        marked |= _has_condition(trades.conditions, code)
    unmarked = extended & ~marked
    evidence["extended_hours"] = int(extended.sum())
    evidence["extended_without_form_t"] = int(unmarked.sum())
    if extended.sum() >= 20 and unmarked.sum() / extended.sum() > 0.10:
        return Finding(name, Severity.SUSPICIOUS,
                       f"{_pct(unmarked.sum() / extended.sum())} of extended-hours trades carry "
                       "no Form-T condition (17) or basis E", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO,
                   f"every trade within 04:00-20:00 ET; {int(extended.sum()):,} in extended "
                   "hours, marked as such", source, evidence)  # fmt: skip


def _has_condition(conditions: Strings, code: str) -> np.ndarray:
    """Whether the hex-pair string holds `code` as one of its pairs (not across a boundary)."""
    out = np.zeros(conditions.size, dtype=bool)
    for offset in range(0, int(np.char.str_len(conditions).max(initial=0)), 2):
        out |= np.char.startswith(conditions, code, start=offset)
    return out


def calendar(data: MarketData, ctx: Context) -> Finding:
    name, source = "trading_calendar", "market-facts.md 4.1 (weekends, NYSE holidays)"
    trades = data.trades
    if not len(trades):
        return too_few(name, source, 0)
    days = Counter(int(d) for d in Eastern.of(trades.ts_ns).day)
    dates = {dt.date.fromordinal(d): n for d, n in days.items()}
    closed = _nyse_holidays(tuple(sorted({d.year for d in dates})))
    bad = {d: n for d, n in dates.items() if d.weekday() >= 5 or d in closed}
    evidence = {
        "days": len(dates),
        "closed_days": {
            d.isoformat(): f"{n:,} trades ({closed.get(d) or d.strftime('%A')})"
            for d, n in sorted(bad.items())
        },
    }
    share = sum(bad.values()) / len(trades)
    if share > 0.001:
        return Finding(name, Severity.SYNTHETIC,
                       f"{_pct(share)} of trades on {len(bad)} day(s) the exchanges were closed",
                       source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO, f"{len(dates)} trading day(s), none a weekend or holiday",
                   source, evidence)  # fmt: skip


def daily_moves(data: MarketData, ctx: Context) -> Finding:
    name, source = "daily_moves", "market-facts.md 4.4 (largest plausible daily move 20-35%)"
    trades = data.trades
    if not len(trades):
        return too_few(name, source, 0)
    group, n = _groups(trades.symbol, Eastern.of(trades.ts_ns).day)
    high = np.full(n, -np.inf)
    low = np.full(n, np.inf)
    np.maximum.at(high, group, trades.price)
    np.minimum.at(low, group, trades.price)
    ranges = high / low - 1.0
    first = np.zeros(n, dtype=np.int64)
    first[group[::-1]] = np.arange(len(trades))[::-1]
    symbols = trades.symbol[first]
    in_index = np.asarray([s in ctx.sp500 for s in symbols.tolist()], dtype=bool)
    limits = np.where(in_index, 0.35, 1.0), np.where(in_index, 0.50, 2.0)
    worst = np.argsort(ranges)[::-1][:5]
    days = Eastern.of(trades.ts_ns[first]).day
    evidence = {
        "symbol_days": n,
        "median_range": round(float(np.median(ranges)), 4),
        "worst": [f"{symbols[i]} {dt.date.fromordinal(int(days[i]))}: {_pct(ranges[i])}"
                  for i in worst],
        "limits": "S&P 500 names: suspicious above 35%, synthetic above 50%; others 100% / 200%",
    }  # fmt: skip
    impossible = ranges > limits[1]
    if impossible.any():
        return Finding(name, Severity.SYNTHETIC,
                       f"{int(impossible.sum())} of {n} symbol-days move more than is plausible "
                       f"(median high/low range {_pct(float(np.median(ranges)))})",
                       source, evidence)  # fmt: skip
    if (ranges > limits[0]).any():
        return Finding(name, Severity.SUSPICIOUS,
                       f"{int((ranges > limits[0]).sum())} symbol-days beyond the largest "
                       "plausible move", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO,
                   f"median daily high/low range {_pct(float(np.median(ranges)))} over {n} "
                   "symbol-days", source, evidence)  # fmt: skip


def venue_concentration(data: MarketData, ctx: Context) -> Finding:
    name, source = "venue_concentration", "market-facts.md 4.7 (TRF ~40-50%, exchanges share)"
    centers = data.trades.market_center
    known = centers[centers > 0]
    if known.size < 200:
        return too_few(name, source, int(known.size), "trades with a market center")
    counts = Counter(int(c) for c in known)
    top, top_n = counts.most_common(1)[0]
    share = top_n / known.size
    evidence = {"trades": int(known.size), "venues": len(counts),
                "top": {str(c): n for c, n in counts.most_common(5)}}  # fmt: skip
    if share >= 0.95:
        return Finding(name, Severity.SYNTHETIC,
                       f"{_pct(share)} of trades print on one market center ({top}); real "
                       "flow splits over a dozen venues and the TRFs",
                       source, evidence)  # fmt: skip
    if share >= 0.80:
        return Finding(name, Severity.SUSPICIOUS,
                       f"{_pct(share)} of trades on market center {top}",
                       source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO,
                   f"{len(counts)} market centers, the busiest ({top}) {_pct(share)}",
                   source, evidence)  # fmt: skip


def _spreads(quotes: Quotes) -> tuple[Strings, Floats, Floats]:
    ok = (quotes.bid > 0) & (quotes.ask >= quotes.bid)
    mid = (quotes.bid[ok] + quotes.ask[ok]) / 2
    return quotes.symbol[ok], np.round(quotes.ask[ok] - quotes.bid[ok], 4), mid


def spreads_across_symbols(data: MarketData, ctx: Context) -> Finding:
    name, source = "spreads_across_symbols", "market-facts.md 4.3 (spreads by tier and price)"
    symbols, spread, mid = _spreads(data.quote_columns())
    per: dict[str, tuple[float, float, float]] = {}
    for sym, rows in split_by(symbols):
        if rows.size < 30:
            continue
        values, counts = np.unique(spread[rows], return_counts=True)
        relative = float(np.median(spread[rows] / mid[rows])) * 1e4
        per[str(sym)] = (float(values[np.argmax(counts)]), relative, float(np.median(mid[rows])))
    if len(per) < 3:
        return too_few(name, source, len(per), "symbol(s) with 30+ quotes")
    modal = {round(v[0], 4) for v in per.values()}
    bps = {round(v[1], 1) for v in per.values()}
    prices = [v[2] for v in per.values()]
    evidence = {"symbols": len(per),
                "modal_spread_usd": dict(Counter(round(v[0], 4) for v in per.values())
                                         .most_common(5)),
                "price_range_usd": [round(min(prices), 2), round(max(prices), 2)]}  # fmt: skip
    if len(modal) == 1 and next(iter(modal)) > TICK + 1e-9 and max(prices) > 2 * min(prices):
        return Finding(name, Severity.SYNTHETIC,
                       f"all {len(per)} symbols quote the same spread (${next(iter(modal)):.4g}) "
                       f"at prices from ${min(prices):,.2f} to ${max(prices):,.2f}",
                       source, evidence)  # fmt: skip
    if len(bps) == 1 and max(prices) > 2 * min(prices):
        return Finding(name, Severity.SYNTHETIC,
                       f"all {len(per)} symbols quote the same relative spread "
                       f"({next(iter(bps))} bps)", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO,
                   f"{len(modal)} distinct modal spreads over {len(per)} symbols", source,
                   evidence)  # fmt: skip


def spreads_over_time(data: MarketData, ctx: Context) -> Finding:
    name, source = "spreads_over_time", "market-facts.md 4.3 (spreads vary, wider at the open)"
    symbols, spread, _ = _spreads(data.quote_columns())
    constant = []
    judged = 0
    for sym, rows in split_by(symbols):
        values = spread[rows]
        if values.size < 100:
            continue
        judged += 1
        uniq, counts = np.unique(values, return_counts=True)
        modal, share = float(uniq[np.argmax(counts)]), counts.max() / values.size
        # A tick-constrained name legitimately sits at one tick almost all the time.
        if share >= 0.99 and modal > TICK + 1e-9:
            constant.append(f"{sym} ${modal:.4g} ({_pct(share)})")
    evidence = {"symbols_judged": judged, "constant": constant[:10]}
    if constant:
        return Finding(name, Severity.SUSPICIOUS,
                       f"{len(constant)} of {judged} symbols quote one spread wider than a tick "
                       "all the time", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO, f"spreads vary in all {judged} symbols judged", source,
                   evidence)  # fmt: skip


def price_grid(data: MarketData, ctx: Context) -> Finding:
    name, source = "price_grid", "market-facts.md 4.3 / 4.8 (quotes on $0.01 ticks above $1)"
    quotes = data.quote_columns()
    prices = np.concatenate([quotes.bid, quotes.ask])
    prices = prices[np.isfinite(prices) & (prices >= 1.0)]
    if not prices.size:
        return Finding(name, Severity.INFO, "no quotes at or above $1", source)
    cents = prices * 100
    off = np.abs(cents - np.round(cents)) > 1e-6
    share = float(off.mean())
    evidence = {"quote_prices": int(prices.size), "off_grid": int(off.sum()),
                "examples": [float(p) for p in prices[off][:5]]}  # fmt: skip
    if share > 0.001:
        return Finding(name, Severity.SUSPICIOUS,
                       f"{_pct(share)} of quote prices at or above $1 are off the $0.01 grid",
                       source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO, f"{prices.size:,} quote prices on the $0.01 grid", source,
                   evidence)  # fmt: skip


def universe(data: MarketData, ctx: Context) -> Finding:
    name, source = "universe", "config/production_symbols.json (the configured universe)"
    if ctx.universe is None:
        return Finding(name, Severity.INFO, "no universe given (not checked)", source)
    outside = [s for s in data.symbols if s not in ctx.universe]
    evidence = {"symbols": len(data.symbols), "outside": outside[:20]}
    if outside:
        return Finding(name, Severity.SUSPICIOUS,
                       f"{len(outside)} of {len(data.symbols)} symbols are not in the universe: "
                       f"{', '.join(outside[:5])}", source, evidence)  # fmt: skip
    return Finding(name, Severity.INFO, f"all {len(data.symbols)} symbols in the universe", source,
                   evidence)  # fmt: skip


Check = Callable[[MarketData, Context], Finding]
CHECKS: tuple[Check, ...] = (
    market_makers,
    session_hours,
    calendar,
    daily_moves,
    venue_concentration,
    spreads_across_symbols,
    spreads_over_time,
    price_grid,
    universe,
)


def run_checks(data: MarketData, ctx: Context, checks: Collection[Check] = CHECKS) -> list[Finding]:
    """Every check's finding, in order."""
    return [check(data, ctx) for check in checks]
