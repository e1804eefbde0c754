"""Compact, columnar storage of one symbol's tape events, replayed in a cycle.

A full generated session for 495 symbols is tens of millions of events; as Python objects that
would be gigabytes. Events are held in numpy columns (~60 bytes each) and materialised as
small tuples a chunk at a time while the pacing engine walks through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from feed_sim.tape.model import Kind, TapeEvent

CHUNK = 256
BASIS_CODES = ("C", "E", "O")
NAN = float("nan")


@dataclass(frozen=True, slots=True)
class TradeRow:
    ts_ns: int
    price: float
    size: int
    market_center: int
    conditions: str
    basis: str
    aggressor: int
    bid: float | None
    ask: float | None


@dataclass(frozen=True, slots=True)
class QuoteRow:
    ts_ns: int
    bid: float
    bid_size: int
    ask: float
    ask_size: int
    bid_mc: int | None
    ask_mc: int | None


@dataclass(frozen=True, slots=True)
class DepthEventRow:
    ts_ns: int
    side: str
    action: str
    mmid: str
    order_id: int
    price: float
    size: int


Level1Row = TradeRow | QuoteRow


class _Strings:
    """Interning table: column of small ints, one list of distinct strings."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def code(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.values)
            self.values.append(text)
        return found


class Level1Events:
    """One symbol's TRADE and QUOTE events in time order, as numpy columns."""

    def __init__(self, events: Sequence[TapeEvent]) -> None:
        l1 = [e for e in events if e.kind in (Kind.TRADE, Kind.QUOTE)]
        n = len(l1)
        self.ts_ns: npt.NDArray[np.int64] = np.fromiter((e.ts_ns for e in l1), np.int64, n)
        self.is_trade = np.fromiter((e.kind == Kind.TRADE for e in l1), np.bool_, n)
        self._conditions = _Strings()
        price, size, mc, cond, basis, aggr = ([] for _ in range(6))
        bid, bsize, ask, asize, bmc, amc = ([] for _ in range(6))
        for e in l1:
            f = e.fields
            if e.kind == Kind.TRADE:
                price.append(float(f["price"]))
                size.append(int(f["size"]))
                mc.append(int(f.get("market_center", 0)))
                cond.append(self._conditions.code(str(f.get("conditions", ""))))
                basis.append(
                    BASIS_CODES.index(f.get("basis", "C"))
                    if f.get("basis", "C") in BASIS_CODES
                    else 2
                )
                aggr.append(int(f.get("aggressor", 0)))
                bid.append(float(f.get("bid") or NAN))
                ask.append(float(f.get("ask") or NAN))
                bsize.append(0)
                asize.append(0)
                bmc.append(-1)
                amc.append(-1)
            else:
                price.append(NAN)
                size.append(0)
                mc.append(0)
                cond.append(0)
                basis.append(0)
                aggr.append(0)
                bid.append(float(f["bid"]))
                ask.append(float(f["ask"]))
                bsize.append(int(f["bid_size"]))
                asize.append(int(f["ask_size"]))
                bmc.append(int(f.get("bid_mc", -1)))
                amc.append(int(f.get("ask_mc", -1)))
        self.price = np.array(price, np.float64)
        self.size = np.array(size, np.int32)
        self.market_center = np.array(mc, np.int16)
        self.conditions = np.array(cond, np.int32)
        self.basis = np.array(basis, np.int8)
        self.aggressor = np.array(aggr, np.int8)
        self.bid = np.array(bid, np.float64)
        self.ask = np.array(ask, np.float64)
        self.bid_size = np.array(bsize, np.int32)
        self.ask_size = np.array(asize, np.int32)
        self.bid_mc = np.array(bmc, np.int16)
        self.ask_mc = np.array(amc, np.int16)
        self._chunk_start = -1
        self._chunk: list[Level1Row] = []

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def first_price(self) -> float | None:
        """First trade price, else first mid quote, else None."""
        trades = np.flatnonzero(self.is_trade)
        if trades.size:
            return float(self.price[trades[0]])
        if len(self):
            return float((self.bid[0] + self.ask[0]) / 2)
        return None

    def row(self, index: int) -> Level1Row:
        """Event `index` as a row object (materialised a chunk at a time)."""
        start = index - index % CHUNK
        if start != self._chunk_start:
            self._chunk = self._materialise(start, min(start + CHUNK, len(self)))
            self._chunk_start = start
        return self._chunk[index - start]

    def _materialise(self, start: int, stop: int) -> list[Level1Row]:
        sl = slice(start, stop)
        rows: list[Level1Row] = []
        conditions = self._conditions.values
        for ts, trade, price, size, mc, cond, basis, aggr, bid, ask, bs, as_, bmc, amc in zip(
            self.ts_ns[sl].tolist(),
            self.is_trade[sl].tolist(),
            self.price[sl].tolist(),
            self.size[sl].tolist(),
            self.market_center[sl].tolist(),
            self.conditions[sl].tolist(),
            self.basis[sl].tolist(),
            self.aggressor[sl].tolist(),
            self.bid[sl].tolist(),
            self.ask[sl].tolist(),
            self.bid_size[sl].tolist(),
            self.ask_size[sl].tolist(),
            self.bid_mc[sl].tolist(),
            self.ask_mc[sl].tolist(),
            strict=True,
        ):
            if trade:
                rows.append(
                    TradeRow(
                        ts,
                        price,
                        size,
                        mc,
                        conditions[cond],
                        BASIS_CODES[basis],
                        aggr,
                        None if bid != bid else bid,
                        None if ask != ask else ask,
                    )
                )
            else:
                rows.append(
                    QuoteRow(
                        ts, bid, bs, ask, as_, None if bmc < 0 else bmc, None if amc < 0 else amc
                    )
                )
        return rows

    def nbytes(self) -> int:
        return sum(
            int(getattr(self, name).nbytes)
            for name in (
                "ts_ns",
                "is_trade",
                "price",
                "size",
                "market_center",
                "conditions",
                "basis",
                "aggressor",
                "bid",
                "ask",
                "bid_size",
                "ask_size",
                "bid_mc",
                "ask_mc",
            )
        )


class DepthEvents:
    """One symbol's Level 2 DEPTH events in time order, as numpy columns."""

    def __init__(self, events: Sequence[TapeEvent]) -> None:
        depth = [e for e in events if e.kind == Kind.DEPTH]
        n = len(depth)
        self._mmids = _Strings()
        self.ts_ns: npt.NDArray[np.int64] = np.fromiter((e.ts_ns for e in depth), np.int64, n)
        self.is_ask = np.fromiter((e.fields["side"] == "A" for e in depth), np.bool_, n)
        self.is_delete = np.fromiter((e.fields["action"] == "delete" for e in depth), np.bool_, n)
        self.mmid = np.fromiter(
            (self._mmids.code(str(e.fields.get("mmid", ""))) for e in depth), np.int32, n
        )
        self.order_id = np.fromiter((int(e.fields.get("order_id", 0)) for e in depth), np.int64, n)
        self.price = np.fromiter(
            (float(e.fields.get("price") or 0.0) for e in depth), np.float64, n
        )
        self.size = np.fromiter((int(e.fields.get("size") or 0) for e in depth), np.int32, n)
        self._chunk_start = -1
        self._chunk: list[DepthEventRow] = []

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def row(self, index: int) -> DepthEventRow:
        start = index - index % CHUNK
        if start != self._chunk_start:
            sl = slice(start, min(start + CHUNK, len(self)))
            names = self._mmids.values
            self._chunk = [
                DepthEventRow(
                    ts,
                    "A" if ask else "B",
                    "delete" if delete else "update",
                    names[mmid],
                    oid,
                    price,
                    size,
                )
                for ts, ask, delete, mmid, oid, price, size in zip(
                    self.ts_ns[sl].tolist(),
                    self.is_ask[sl].tolist(),
                    self.is_delete[sl].tolist(),
                    self.mmid[sl].tolist(),
                    self.order_id[sl].tolist(),
                    self.price[sl].tolist(),
                    self.size[sl].tolist(),
                    strict=True,
                )
            ]
            self._chunk_start = start
        return self._chunk[index - start]

    def nbytes(self) -> int:
        return sum(
            int(getattr(self, name).nbytes)
            for name in ("ts_ns", "is_ask", "is_delete", "mmid", "order_id", "price", "size")
        )
