"""Compact, columnar storage of one symbol's tape events, replayed in a cycle.

A full generated session for 495 symbols is tens of millions of events; as Python objects that
would be gigabytes. Events are held in numpy columns (~60 bytes each) and materialised a chunk
at a time while the pacing engine walks through them: as row objects (`row`, for history and
priming) or, on the replay hot path, as "wire" tuples carrying the wire texts of the event's
prices, sizes, market centers, conditions and aggressor in the symbol's precision
(`wire_row`, the tuples `Level1State.apply_trade_wire` / `apply_quote_wire` take). The texts
of a chunk are formatted vectorised: each distinct value once (`np.unique`), then gathered.

A quote row that changes nothing on the top of book (bid, ask, their sizes and market centers
all as the rows before it left them) is no Level 1 update: IQConnect sends on change, and
`Level1State.apply_quote_wire` would return '' for it. Generated tapes hold such rows (a
size-only NBBO update that drew the same sizes and market centers, a quote repeating the NBBO
a trade just carried), ~0.1% of a session's rows. `Level1Events` drops them once, vectorised,
when it is built (`unchanged_quotes`), so replay never schedules them; the first quote of the
tape can still repeat the state the replay starts from (the primed state, or the end of the
previous pass after the cursor wraps), which `SymbolMarket.next_level1` skips at runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from feed_sim.protocol.level1 import Level1Wire
from feed_sim.tape.model import Kind, TapeEvent

CHUNK = 256
WIRE_CHUNK = 256
"""Wire tuples materialised at a time per symbol (~60 KB per symbol at 256)."""
BASIS_CODES = ("C", "E", "O")
NAN = float("nan")
LEVEL1_COLUMNS = (
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


def _coded(columns: list[npt.NDArray[Any]]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(distinct values, codes of shape (len(columns), n)) of same-length columns."""
    distinct, inverse = np.unique(np.concatenate(columns), return_inverse=True)
    dtype = np.int16 if distinct.size < 2**15 else np.int32
    return distinct, inverse.reshape(len(columns), -1).astype(dtype)


def _last_before(flags: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """Per row, the index of the last earlier row where `flags` holds (-1: none)."""
    marked = np.where(flags, np.arange(flags.size), -1)
    last = np.empty(flags.size, np.intp)
    last[:1] = -1
    np.maximum.accumulate(marked[:-1], out=last[1:])
    return last


def unchanged_quotes(columns: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.bool_]:
    """The quote rows that change nothing on the top of book, given the rows before them in
    the tape: bid, ask, bid/ask size and bid/ask market center all equal to what the earlier
    rows left (a trade's carried bid/ask sets those prices, a quote's market center -1 keeps
    the previous one, NaN prices compare equal as `None` does). Exactly the rows
    `Level1State.apply_quote_wire` returns '' for when the tape is replayed from its first
    row; the first quote of the tape (nothing known before it) is never one. Dropping them
    all at once leaves every other row's state unchanged: each of them changed nothing."""
    is_trade = np.asarray(columns["is_trade"], np.bool_)
    n = is_trade.size
    if n < 2:
        return np.zeros(n, np.bool_)
    quote = ~is_trade
    prev_quote = _last_before(quote)
    unchanged = quote & (prev_quote >= 0)
    at_quote = np.maximum(prev_quote, 0)
    for name in ("bid", "ask"):
        price = np.asarray(columns[name], np.float64)
        prev = np.maximum(_last_before(quote | ~np.isnan(price)), 0)  # >= 0 where a quote was
        before = price[prev]
        unchanged &= (price == before) | (np.isnan(price) & np.isnan(before))
        sizes = np.asarray(columns[f"{name}_size"])
        unchanged &= sizes == sizes[at_quote]
        centers = np.asarray(columns[f"{name}_mc"])
        prev_center = _last_before(quote & (centers >= 0))
        unchanged &= (centers < 0) | (
            (prev_center >= 0) & (centers == centers[np.maximum(prev_center, 0)])
        )
    return unchanged


def _objects(values: Sequence[Any]) -> npt.NDArray[np.object_]:
    out = np.empty(len(values), np.object_)
    out[:] = values
    return out


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
    """One symbol's TRADE and QUOTE events in time order, as numpy columns, without the quote
    rows that change nothing (`unchanged_quotes`)."""

    def __init__(self, columns: dict[str, npt.NDArray[Any]], conditions: list[str]) -> None:
        unchanged = unchanged_quotes(columns)
        self.unchanged_dropped = int(np.count_nonzero(unchanged))
        """Quote rows of the tape dropped as no update (`unchanged_quotes`)."""
        if self.unchanged_dropped:
            keep = ~unchanged
            columns = {name: np.asarray(values)[keep] for name, values in columns.items()}
        self.ts_ns: npt.NDArray[np.int64] = columns["ts_ns"].astype(np.int64)
        self._count = int(self.ts_ns.size)  # len() is on the paced hot path
        self.is_trade = columns["is_trade"].astype(np.bool_)
        self.price = columns["price"].astype(np.float64)
        self.size = columns["size"].astype(np.int32)
        self.market_center = columns["market_center"].astype(np.int16)
        self.conditions = columns["conditions"].astype(np.int32)
        self.basis = columns["basis"].astype(np.int8)
        self.aggressor = columns["aggressor"].astype(np.int8)
        self.bid = columns["bid"].astype(np.float64)
        self.ask = columns["ask"].astype(np.float64)
        self.bid_size = columns["bid_size"].astype(np.int32)
        self.ask_size = columns["ask_size"].astype(np.int32)
        self.bid_mc = columns["bid_mc"].astype(np.int16)
        self.ask_mc = columns["ask_mc"].astype(np.int16)
        self._condition_texts = conditions
        self._chunk_start = -1
        self._chunk: list[Level1Row] = []
        self._wire_start = -1
        self._wire_precision = -1
        self._wire: list[Level1Wire] = []
        self._code_wire_columns()

    def _code_wire_columns(self) -> None:
        """Code the columns a wire tuple carries as small ints into tables of distinct values
        and their texts (vectorised, once at load), so a chunk is only gathers."""
        prices, self._price_codes = _coded([self.price, self.bid, self.ask])
        self._price_values = _objects([None if x != x else x for x in prices.tolist()])
        self._price_floats = prices
        self._price_texts: dict[int, npt.NDArray[np.object_]] = {}
        self._texts_for(4)  # the usual precision, before the first message
        sizes, self._size_codes = _coded([self.size, self.bid_size, self.ask_size])
        self._size_values = _objects(sizes.tolist())
        self._size_texts = _objects([str(x) for x in sizes.tolist()])
        centers, self._mc_codes = _coded([self.market_center, self.bid_mc, self.ask_mc])
        self._mc_values = _objects([None if x < 0 else x for x in centers.tolist()])
        self._mc_texts = _objects([str(x) for x in centers.tolist()])
        aggressors, aggressor_codes = _coded([self.aggressor])
        self._aggressor_codes = aggressor_codes[0]
        self._aggressor_texts = _objects([str(x) for x in aggressors.tolist()])
        # A quote row's condition code is 0: a tape without trades still needs a text there.
        self._condition_objects = _objects(self._condition_texts or [""])
        self._basis_objects = _objects(BASIS_CODES)

    def _texts_for(self, precision: int) -> npt.NDArray[np.object_]:
        texts = self._price_texts.get(precision)
        if texts is None:
            fmt = f"%.{precision}f"
            texts = self._price_texts[precision] = _objects(
                [fmt % x for x in self._price_floats.tolist()]
            )
        return texts

    @classmethod
    def from_tape(cls, events: Sequence[TapeEvent]) -> Level1Events:
        """From tape events (other kinds are ignored)."""
        l1 = [e for e in events if e.kind in (Kind.TRADE, Kind.QUOTE)]
        strings = _Strings()
        cols: dict[str, list[Any]] = {name: [] for name in LEVEL1_COLUMNS}
        for e in l1:
            f = e.fields
            trade = e.kind == Kind.TRADE
            basis = str(f.get("basis", "C"))
            row = {
                "ts_ns": e.ts_ns,
                "is_trade": trade,
                "price": float(f["price"]) if trade else NAN,
                "size": int(f["size"]) if trade else 0,
                "market_center": int(f.get("market_center", 0)) if trade else 0,
                "conditions": strings.code(str(f.get("conditions", ""))) if trade else 0,
                "basis": BASIS_CODES.index(basis) if trade and basis in BASIS_CODES else 2,
                "aggressor": int(f.get("aggressor", 0)) if trade else 0,
                "bid": float(f.get("bid") or NAN),
                "ask": float(f.get("ask") or NAN),
                "bid_size": 0 if trade else int(f["bid_size"]),
                "ask_size": 0 if trade else int(f["ask_size"]),
                "bid_mc": -1 if trade else int(f.get("bid_mc", -1)),
                "ask_mc": -1 if trade else int(f.get("ask_mc", -1)),
            }
            for name, value in row.items():
                cols[name].append(value)
        return cls({k: np.array(v) for k, v in cols.items()}, strings.values)

    @classmethod
    def from_columns(
        cls, trades: Any, quotes: Any, conditions: Sequence[str], basis: Sequence[str]
    ) -> Level1Events:
        """From the generator's trade and quote columns (feed_sim.generate), merged by time
        without building per-event objects."""
        nt, nq = len(trades.ts), len(quotes.ts)
        ts = np.concatenate([trades.ts, quotes.ts]).astype(np.int64)
        order = np.argsort(ts, kind="stable")

        def merged(trade_col: Any, quote_col: Any) -> npt.NDArray[Any]:
            return np.concatenate([np.asarray(trade_col), np.asarray(quote_col)])[order]

        basis_codes = np.array(
            [BASIS_CODES.index(b) if b in BASIS_CODES else 2 for b in basis], np.int8
        )
        cols = {
            "ts_ns": ts[order],
            "is_trade": merged(np.ones(nt, np.bool_), np.zeros(nq, np.bool_)),
            "price": merged(trades.price, np.full(nq, NAN)),
            "size": merged(trades.size, np.zeros(nq, np.int32)),
            "market_center": merged(trades.center, np.zeros(nq, np.int16)),
            "conditions": merged(trades.condition, np.zeros(nq, np.int32)),
            "basis": merged(basis_codes[np.asarray(trades.condition)], np.zeros(nq, np.int8)),
            "aggressor": merged(trades.aggressor, np.zeros(nq, np.int8)),
            "bid": merged(trades.bid, quotes.bid),
            "ask": merged(trades.ask, quotes.ask),
            "bid_size": merged(np.zeros(nt, np.int32), quotes.bid_size),
            "ask_size": merged(np.zeros(nt, np.int32), quotes.ask_size),
            "bid_mc": merged(np.full(nt, -1, np.int16), quotes.bid_mc),
            "ask_mc": merged(np.full(nt, -1, np.int16), quotes.ask_mc),
        }
        return cls(cols, list(conditions))

    def __len__(self) -> int:
        return self._count

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
        conditions = self._condition_texts
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

    def wire_row(self, index: int, precision: int) -> Level1Wire:
        """Event `index` as a wire tuple with prices in `precision` decimals (materialised a
        chunk at a time)."""
        start = index - index % WIRE_CHUNK
        if start != self._wire_start or precision != self._wire_precision:
            self._wire = self._materialise_wire(
                start, min(start + WIRE_CHUNK, len(self)), precision
            )
            self._wire_start = start
            self._wire_precision = precision
        return self._wire[index - start]

    def _materialise_wire(self, start: int, stop: int, precision: int) -> list[Level1Wire]:
        sl = slice(start, stop)
        prices = self._price_codes[:, sl]
        sizes = self._size_codes[:, sl]
        centers = self._mc_codes[:, sl]
        return list(
            zip(
                self.is_trade[sl].tolist(),
                *self._price_values[prices].tolist(),
                *self._texts_for(precision)[prices].tolist(),
                *self._size_values[sizes].tolist(),
                *self._size_texts[sizes].tolist(),
                *self._mc_values[centers].tolist(),
                *self._mc_texts[centers].tolist(),
                self._condition_objects[self.conditions[sl]].tolist(),
                self._basis_objects[self.basis[sl]].tolist(),
                self._aggressor_texts[self._aggressor_codes[sl]].tolist(),
                strict=True,
            )
        )

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
                "_price_codes",
                "_size_codes",
                "_mc_codes",
                "_aggressor_codes",
            )
        )


class DepthEvents:
    """One symbol's Level 2 DEPTH events in time order, as numpy columns."""

    def __init__(self, columns: dict[str, npt.NDArray[Any]], mmids: list[str]) -> None:
        self.ts_ns: npt.NDArray[np.int64] = columns["ts_ns"].astype(np.int64)
        self.is_ask = columns["is_ask"].astype(np.bool_)
        self.is_delete = columns["is_delete"].astype(np.bool_)
        self.mmid = columns["mmid"].astype(np.int32)
        self.order_id = columns["order_id"].astype(np.int64)
        self.price = columns["price"].astype(np.float64)
        self.size = columns["size"].astype(np.int32)
        self._mmid_texts = mmids
        self._chunk_start = -1
        self._chunk: list[DepthEventRow] = []

    @classmethod
    def from_tape(cls, events: Sequence[TapeEvent]) -> DepthEvents:
        depth = [e for e in events if e.kind == Kind.DEPTH]
        strings = _Strings()
        cols = {
            "ts_ns": np.array([e.ts_ns for e in depth], np.int64),
            "is_ask": np.array([e.fields["side"] == "A" for e in depth], np.bool_),
            "is_delete": np.array([e.fields["action"] == "delete" for e in depth], np.bool_),
            "mmid": np.array(
                [strings.code(str(e.fields.get("mmid", ""))) for e in depth], np.int32
            ),
            "order_id": np.array([int(e.fields.get("order_id", 0)) for e in depth], np.int64),
            "price": np.array([float(e.fields.get("price") or 0.0) for e in depth], np.float64),
            "size": np.array([int(e.fields.get("size") or 0) for e in depth], np.int32),
        }
        return cls(cols, strings.values)

    @classmethod
    def from_columns(cls, depth: Any) -> DepthEvents:
        """From the generator's depth columns (Nasdaq MMID rows: no order ids)."""
        if depth is None:
            return cls.empty()
        n = len(depth.ts)
        cols = {
            "ts_ns": np.asarray(depth.ts),
            "is_ask": np.asarray(depth.side) == 1,
            "is_delete": np.asarray(depth.delete),
            "mmid": np.asarray(depth.row),
            "order_id": np.zeros(n, np.int64),
            "price": np.asarray(depth.price),
            "size": np.asarray(depth.size),
        }
        return cls(cols, list(depth.mmids))

    @classmethod
    def empty(cls) -> DepthEvents:
        cols = {
            name: np.zeros(0)
            for name in ("ts_ns", "is_ask", "is_delete", "mmid", "order_id", "price", "size")
        }
        return cls(cols, [])

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def row(self, index: int) -> DepthEventRow:
        start = index - index % CHUNK
        if start != self._chunk_start:
            sl = slice(start, min(start + CHUNK, len(self)))
            names = self._mmid_texts
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
