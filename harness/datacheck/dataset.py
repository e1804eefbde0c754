"""Market data in columns, whatever it came from: what the legitimacy checks read.

A source (a feed_sim tape, an IQFeed tick-history reply, the ClickHouse writer's tables) is
turned into `MarketData`: trades, quotes and Level 2 market-maker rows as numpy columns, times
in UTC nanoseconds (the project's time contract). Quotes are optional: a tick-history reply has
the NBBO at each trade instead (`Trades.bid` / `Trades.ask`), which the quote checks use when
there are no quote rows.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from feed_sim.tape.model import Kind, TapeEvent

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Strings = npt.NDArray[np.str_]


def _floats(values: Iterable[Any]) -> Floats:
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)


class DataSourceError(ValueError):
    """The source cannot be read as market data; the message says which and why."""


@dataclass(frozen=True)
class Trades:
    """One row per trade."""

    ts_ns: Ints
    symbol: Strings
    price: Floats
    size: Ints
    market_center: Ints
    """IQFeed listed-market id of the market center that printed the trade (0 unknown)."""
    conditions: Strings
    """IQFeed trade-condition hex pairs, e.g. "873D" (data/iqfeed_trade_conditions.tsv)."""
    basis: Strings
    """BasisForLast: "C" last-qualified, "E" extended hours (Form T), "O" other."""
    aggressor: Ints
    """1 buy, 2 sell, 0 or 3 not known."""
    bid: Floats
    """The NBBO at the trade when the source carries it, else NaN."""
    ask: Floats

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]]) -> Trades:
        """From dicts with the column names as keys (missing optional keys: empty values)."""
        return cls(
            ts_ns=np.asarray([int(r["ts_ns"]) for r in rows], dtype=np.int64),
            symbol=np.asarray([str(r["symbol"]) for r in rows], dtype=np.str_),
            price=_floats(r["price"] for r in rows),
            size=np.asarray([int(r.get("size") or 0) for r in rows], dtype=np.int64),
            market_center=np.asarray(
                [int(r.get("market_center") or 0) for r in rows], dtype=np.int64
            ),
            conditions=np.asarray([str(r.get("conditions") or "") for r in rows], dtype=np.str_),
            basis=np.asarray([str(r.get("basis") or "") for r in rows], dtype=np.str_),
            aggressor=np.asarray([int(r.get("aggressor") or 0) for r in rows], dtype=np.int64),
            bid=_floats(r.get("bid") for r in rows),
            ask=_floats(r.get("ask") for r in rows),
        )


@dataclass(frozen=True)
class Quotes:
    """One row per top-of-book quote."""

    ts_ns: Ints
    symbol: Strings
    bid: Floats
    ask: Floats

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]]) -> Quotes:
        return cls(
            ts_ns=np.asarray([int(r["ts_ns"]) for r in rows], dtype=np.int64),
            symbol=np.asarray([str(r["symbol"]) for r in rows], dtype=np.str_),
            bid=_floats(r.get("bid") for r in rows),
            ask=_floats(r.get("ask") for r in rows),
        )


@dataclass(frozen=True)
class MarketData:
    """Everything the checks look at, and where it came from."""

    source: str
    trades: Trades
    quotes: Quotes
    market_makers: Counter[str] = field(default_factory=Counter)
    """Level 2 rows per market-maker id (order-by-order rows, which have none, not counted)."""
    notes: tuple[str, ...] = ()
    """What the loader wants said (rows skipped, fields missing)."""

    @property
    def symbols(self) -> list[str]:
        seen = set(self.trades.symbol.tolist()) | set(self.quotes.symbol.tolist())
        return sorted(seen)

    def quote_columns(self) -> Quotes:
        """The quotes, or the NBBO carried by the trades when the source has no quote rows."""
        if len(self.quotes) or not len(self.trades):
            return self.quotes
        known = ~(np.isnan(self.trades.bid) | np.isnan(self.trades.ask))
        return Quotes(
            self.trades.ts_ns[known],
            self.trades.symbol[known],
            self.trades.bid[known],
            self.trades.ask[known],
        )


def from_events(events: Iterable[TapeEvent], source: str) -> MarketData:
    """MarketData of tape events (trades, quotes, Level 2 rows; raw lines are ignored)."""
    trades: list[dict[str, Any]] = []
    quotes: list[dict[str, Any]] = []
    makers: Counter[str] = Counter()
    for event in events:
        if event.kind is Kind.TRADE:
            trades.append({"ts_ns": event.ts_ns, "symbol": event.symbol, **event.fields})
        elif event.kind is Kind.QUOTE:
            quotes.append({"ts_ns": event.ts_ns, "symbol": event.symbol, **event.fields})
        elif event.kind is Kind.DEPTH and event.fields.get("mmid"):
            makers[str(event.fields["mmid"])] += 1
    return MarketData(source, Trades.from_rows(trades), Quotes.from_rows(quotes), makers)


def merge(parts: Sequence[MarketData], source: str) -> MarketData:
    """One MarketData of several (columns concatenated, market makers added)."""

    def cat(arrays: list[Any]) -> Any:
        return np.concatenate(arrays) if arrays else np.zeros(0)

    trades = Trades(*(cat([getattr(p.trades, f.name) for p in parts])
                      for f in dataclasses.fields(Trades)))  # fmt: skip
    quotes = Quotes(*(cat([getattr(p.quotes, f.name) for p in parts])
                      for f in dataclasses.fields(Quotes)))  # fmt: skip
    makers: Counter[str] = Counter()
    for p in parts:
        makers.update(p.market_makers)
    return MarketData(source, trades, quotes, makers, tuple(n for p in parts for n in p.notes))
