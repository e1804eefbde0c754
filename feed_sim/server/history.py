"""Answers to lookup-port (9100) requests, served from the loaded tapes and the code tables.

History rows carry the tape's own timestamps (the recorded or generated session), not the
replay's: history is what happened, streaming is what is happening. Every reply ends with
`[RequestID,]!ENDMSG!,`; errors are followed by it too (gotcha 7).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from feed_sim.protocol import lookup as lk
from feed_sim.protocol.codes import (
    listed_markets,
    naics_codes,
    security_types,
    sic_codes,
    trade_conditions,
)
from feed_sim.protocol.fundamentals import FundamentalInfo
from feed_sim.protocol.system import Protocol
from feed_sim.protocol.timefmt import day_of_month, local_ns

if TYPE_CHECKING:
    from feed_sim.server.market import SymbolMarket

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
LookupCommand = lk.HistoryRequest | lk.TableRequest | lk.SymbolSearchRequest | lk.LookupFailure


def answer_lookup(
    command: object, protocol: Protocol, markets: Mapping[str, SymbolMarket]
) -> Iterator[bytes]:
    """The reply lines to one parsed lookup command."""
    if isinstance(command, lk.LookupFailure):
        yield command.render()
    elif isinstance(command, lk.HistoryRequest):
        yield from _history(command, protocol, markets)
    elif isinstance(command, lk.TableRequest):
        yield from _table(command, protocol)
    elif isinstance(command, lk.SymbolSearchRequest):
        yield from _search(command, protocol, markets)
    else:
        yield lk.render_error(lk.SYNTAX_ERROR)


def _table(command: lk.TableRequest, protocol: Protocol) -> Iterator[bytes]:
    prefix = lk.reply_prefix(protocol, command.request_id, lk.TAG_SYMBOLS)
    if command.command == "SLM":
        for market in sorted(listed_markets().values(), key=lambda m: m.market_id):
            yield lk.render_listed_market_row(prefix, market)
    elif command.command == "STC":
        for condition in trade_conditions().values():
            yield lk.render_trade_condition_row(prefix, condition)
    elif command.command == "SST":
        for security_type in security_types().values():
            yield lk.render_security_type_row(prefix, security_type)
    else:  # SSC / SNC
        table = sic_codes() if command.command == "SSC" else naics_codes()
        for code, description in table.items():
            yield lk.render_code_row(prefix, code, description)
    yield lk.render_end(command.request_id)


def _search(
    command: lk.SymbolSearchRequest, protocol: Protocol, markets: Mapping[str, SymbolMarket]
) -> Iterator[bytes]:
    """`SBF` rows (`Symbol,ListedMarketID,SecurityTypeID,Description,`) or `SBS`/`SBN` rows,
    which carry the matched SIC/NAICS code first."""
    prefix = lk.reply_prefix(protocol, command.request_id, lk.TAG_SYMBOLS)
    needle = command.search.upper()
    found = 0
    for symbol, market in sorted(markets.items()):
        info = market.fundamentals
        if command.command == "SBF":
            if not _filter_matches(command, needle, symbol, info):
                continue
            row = lk.render_symbol_row(
                prefix, symbol, info.listed_market, info.security_type, info.company_name
            )
        else:
            code = info.sic if command.command == "SBS" else info.naics
            if code is None or not str(code).startswith(needle):
                continue
            row = lk.render_symbol_by_code_row(
                prefix, code, symbol, info.listed_market, info.security_type, info.company_name
            )
        found += 1
        yield row
    if not found:
        yield lk.render_error(lk.NO_DATA, command.request_id)
        return
    yield lk.render_end(command.request_id)


def _filter_matches(
    command: lk.SymbolSearchRequest, needle: str, symbol: str, info: FundamentalInfo
) -> bool:
    """Whether a symbol answers an `SBF` search: symbol or description, then its filter."""
    haystack = symbol if command.field == "s" else info.company_name.upper()
    wanted = set(command.filter_values)
    if needle not in haystack:
        return False
    if command.filter_type == "e" and wanted:
        return str(info.listed_market) in wanted
    if command.filter_type == "t" and wanted:
        return str(info.security_type) in wanted
    return True


def _trade_columns(market: SymbolMarket) -> dict[str, npt.NDArray[np.float64 | np.int64]]:
    events = market.level1_events
    trades = np.flatnonzero(events.is_trade)
    return {
        "index": trades,
        "ts": events.ts_ns[trades],
        "price": events.price[trades],
        "size": events.size[trades].astype(np.int64),
    }


def _history(
    req: lk.HistoryRequest, protocol: Protocol, markets: Mapping[str, SymbolMarket]
) -> Iterator[bytes]:
    market = markets.get(req.symbol)
    if market is None:
        yield lk.render_error(lk.INVALID_SYMBOL, req.request_id)
        return
    cols = _trade_columns(market)
    ts = cols["ts"].astype(np.int64)
    if ts.size == 0:
        yield lk.render_error(lk.NO_DATA, req.request_id)
        return
    local = np.array([local_ns(int(t)) for t in ts], dtype=np.int64)
    day = local // NS_PER_DAY
    keep = np.ones(ts.size, dtype=bool)
    if req.days is not None:
        days = np.unique(day)[-req.days :]
        keep &= np.isin(day, days)
    if req.begin_ns is not None:
        keep &= ts >= req.begin_ns
    if req.end_ns is not None:
        keep &= ts <= req.end_ns
    second_of_day = (local % NS_PER_DAY) // NS_PER_S
    if req.begin_filter_s is not None:
        keep &= second_of_day >= req.begin_filter_s
    if req.end_filter_s is not None:
        keep &= second_of_day <= req.end_filter_s
    rows = np.flatnonzero(keep)
    prefix = lk.reply_prefix(protocol, req.request_id, lk.TAG_HISTORY)
    if req.kind == lk.HistoryKind.TICK:
        lines = _tick_rows(market, cols, rows, day, prefix, protocol)
    elif req.kind == lk.HistoryKind.INTERVAL:
        lines = _interval_rows(req, cols, rows, local, day, prefix)
    else:
        lines = _period_rows(req.kind, cols, rows, local, prefix)
    if req.max_datapoints:
        lines = lines[-req.max_datapoints :]  # the newest N
    if not lines:
        yield lk.render_error(lk.NO_DATA, req.request_id)
        return
    yield from (lines if req.oldest_first else lines[::-1])
    yield lk.render_end(req.request_id)


def _tick_rows(
    market: SymbolMarket,
    cols: dict[str, npt.NDArray[np.float64 | np.int64]],
    rows: npt.NDArray[np.int64],
    day: npt.NDArray[np.int64],
    prefix: str,
    protocol: Protocol,
) -> list[bytes]:
    events = market.level1_events
    out = []
    volume = 0
    current_day = None
    tick_id = 0
    for r in rows.tolist():
        if day[r] != current_day:
            current_day, volume, tick_id = day[r], 0, 0
        row = events.row(int(cols["index"][r]))
        size = int(cols["size"][r])
        volume += size
        tick_id += 1
        bid = getattr(row, "bid", None) or 0.0
        ask = getattr(row, "ask", None) or 0.0
        ts = int(cols["ts"][r])
        out.append(
            lk.render_tick_row(
                prefix,
                protocol,
                ts,
                float(cols["price"][r]),
                size,
                volume,
                bid,
                ask,
                tick_id,
                getattr(row, "basis", "C"),
                getattr(row, "market_center", 0),
                getattr(row, "conditions", ""),
                getattr(row, "aggressor", 0),
                day_of_month(ts),
            )
        )
    return out


def _bars(
    group: npt.NDArray[np.int64], price: npt.NDArray[np.float64], size: npt.NDArray[np.int64]
) -> list[tuple[int, float, float, float, float, int, int]]:
    """(group, high, low, open, close, volume, trades) per consecutive group value."""
    if group.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], group.size]
    return [
        (
            int(group[s]),
            float(price[s:e].max()),
            float(price[s:e].min()),
            float(price[s]),
            float(price[e - 1]),
            int(size[s:e].sum()),
            int(e - s),
        )
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


def _interval_rows(
    req: lk.HistoryRequest,
    cols: dict[str, npt.NDArray[np.float64 | np.int64]],
    rows: npt.NDArray[np.int64],
    local: npt.NDArray[np.int64],
    day: npt.NDArray[np.int64],
    prefix: str,
) -> list[bytes]:
    interval = max(1, req.interval or 60)
    price = cols["price"][rows].astype(np.float64)
    size = cols["size"][rows].astype(np.int64)
    ts = cols["ts"][rows].astype(np.int64)
    if req.interval_type == "s":
        group = (local[rows] // NS_PER_S) // interval
    elif req.interval_type == "t":
        group = np.arange(rows.size, dtype=np.int64) // interval
    else:  # "v": a new bar each time `interval` shares have traded
        group = (np.cumsum(size) - 1) // interval
    out = []
    day_volume: dict[int, int] = {}
    for g, high, low, open_, close, volume, trades in _bars(group, price, size):
        members = np.flatnonzero(group == g)
        first, last = int(members[0]), int(members[-1])
        trade_day = int(day[rows[first]])
        day_volume[trade_day] = day_volume.get(trade_day, 0) + volume
        if req.interval_type == "s":
            offset = ts[first] - local[rows[first]]  # UTC - local, to label in local time
            label_local = g * interval * NS_PER_S + (
                0 if req.label_at_beginning else interval * NS_PER_S
            )
            label = int(label_local + offset)
        else:
            label = int(ts[first] if req.label_at_beginning else ts[last])
        out.append(
            lk.render_interval_row(
                prefix,
                label,
                high,
                low,
                open_,
                close,
                day_volume[trade_day],
                volume,
                trades if req.interval_type == "t" else 0,
            )
        )
    return out


def _period_rows(
    kind: lk.HistoryKind,
    cols: dict[str, npt.NDArray[np.float64 | np.int64]],
    rows: npt.NDArray[np.int64],
    local: npt.NDArray[np.int64],
    prefix: str,
) -> list[bytes]:
    day = local[rows] // NS_PER_DAY
    if kind == lk.HistoryKind.WEEKLY:
        group = (day + 3) // 7  # weeks starting on Monday (1970-01-01 was a Thursday)
    elif kind == lk.HistoryKind.MONTHLY:
        dates = day.astype("datetime64[D]")
        group = dates.astype("datetime64[M]").astype(np.int64)
    else:
        group = day
    price = cols["price"][rows].astype(np.float64)
    size = cols["size"][rows].astype(np.int64)
    out = []
    for _, high, low, open_, close, volume, _trades in _bars(group, price, size):
        members = np.flatnonzero(group == _)
        label_day = int(day[members[-1]])
        out.append(
            lk.render_daily_row(
                prefix,
                label_day * NS_PER_DAY + 12 * 3600 * NS_PER_S,
                high,
                low,
                open_,
                close,
                volume,
            )
        )
    return out
