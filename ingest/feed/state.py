"""Per-symbol state of the reference core: Level 1 top of book and Level 2 books.

Owns `Level1Quote` (last trade price/size/time/market center, NBBO with sizes, times and
market centers, total volume, last TickID: the latest `Q`/`P` of the symbol), `DepthBook`
(Nasdaq market-maker rows keyed by (MMID, side), market-by-order rows keyed by order id,
price levels keyed by (side, price), `S,CLEAR DEPTH` per side, and the per-symbol Level 2
sequence counter) and `SymbolStates`,
the registry shared by every connection's processor.

Memory (`memory_bytes`) is an estimate in O(1): `sys.getsizeof` of the containers plus the
number of rows times the per-row cost MEASURED at import with `sys.getsizeof` on a
representative row (its key, its row object and the boxed floats/ints it holds). Strings
shared between rows (MMIDs, sides) are not counted again. It never iterates a book, so the
metrics thread can call it while the ingest loop writes.
"""

from __future__ import annotations

import sys
from typing import Any, cast

from ingest.feed.messages import Level1Update


class Level1Quote:
    """Level 1 state of one symbol: the latest `Q`/`P` of the symbol (IQConnect sends every
    field of the fieldset on every update, so the latest message is the current state), plus
    the update count. Values are None until seen (or when the fieldset lacks them)."""

    __slots__ = ("symbol", "update", "updates")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.update: Level1Update | None = None
        self.updates = 0

    def _get(self, name: str) -> Any:
        return None if self.update is None else getattr(self.update, name)

    @property
    def trade_price(self) -> float | None:
        return cast("float | None", self._get("trade_price"))

    @property
    def trade_size(self) -> int | None:
        return cast("int | None", self._get("trade_size"))

    @property
    def trade_ns(self) -> int:
        return cast("int | None", self._get("trade_ns")) or 0

    @property
    def trade_mc(self) -> int | None:
        return cast("int | None", self._get("trade_mc"))

    @property
    def total_volume(self) -> int | None:
        return cast("int | None", self._get("total_volume"))

    @property
    def bid(self) -> float | None:
        return cast("float | None", self._get("bid"))

    @property
    def bid_size(self) -> int | None:
        return cast("int | None", self._get("bid_size"))

    @property
    def bid_ns(self) -> int:
        return cast("int | None", self._get("bid_ns")) or 0

    @property
    def bid_mc(self) -> int | None:
        return cast("int | None", self._get("bid_mc"))

    @property
    def ask(self) -> float | None:
        return cast("float | None", self._get("ask"))

    @property
    def ask_size(self) -> int | None:
        return cast("int | None", self._get("ask_size"))

    @property
    def ask_ns(self) -> int:
        return cast("int | None", self._get("ask_ns")) or 0

    @property
    def ask_mc(self) -> int | None:
        return cast("int | None", self._get("ask_mc"))

    @property
    def tick_id(self) -> int | None:
        return cast("int | None", self._get("tick_id"))

    def memory_bytes(self) -> int:
        """The object, the retained message and its boxed values (shared small ints and
        cached floats counted anyway: an upper bound)."""
        size = sys.getsizeof(self)
        if self.update is not None:
            size += sys.getsizeof(self.update) + sum(
                sys.getsizeof(v) for v in self.update[2:] if v is not None
            )
        return size

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view (for Redis snapshots and the admin state)."""
        out: dict[str, Any] = {"symbol": self.symbol, "updates": self.updates}
        if self.update is not None:
            out.update(self.update._asdict())
            del out["summary"]
        return out


class BookRow:
    """One market-maker quote on one side, or one order (MBO)."""

    __slots__ = ("price", "priority", "side", "size", "time_ns")

    def __init__(
        self, side: str, price: float, size: int, time_ns: int, priority: int | None
    ) -> None:
        self.side = side
        self.price = price
        self.size = size
        self.time_ns = time_ns
        self.priority = priority


class LevelRow:
    """Aggregated size and order count at one price (market-by-price watch)."""

    __slots__ = ("order_count", "size", "time_ns")

    def __init__(self, size: int, order_count: int, time_ns: int) -> None:
        self.size = size
        self.order_count = order_count
        self.time_ns = time_ns


def _measure_row_bytes() -> tuple[int, int, int]:
    """Measured per-entry costs (bytes) of (MMID row, order row, price level), each with its
    key and boxed values; dict slots are counted separately through the dicts' getsizeof."""
    price, size, time_ns, order_id = 412.3456, 1_234, 1_700_000_000_123_456_000, 649948133402
    row = BookRow("B", price, size, time_ns, None)
    row_values = sys.getsizeof(price) + sys.getsizeof(size) + sys.getsizeof(time_ns)
    mmid_key = ("NSDQ", "B")
    mmid_row = sys.getsizeof(row) + row_values + sys.getsizeof(mmid_key)
    order_row = sys.getsizeof(row) + row_values + sys.getsizeof(order_id) + sys.getsizeof(1)
    level = LevelRow(size, 3, time_ns)
    level_key = ("B", price)
    level_row = (
        sys.getsizeof(level)
        + sys.getsizeof(size)
        + sys.getsizeof(3)
        + sys.getsizeof(time_ns)
        + sys.getsizeof(level_key)
        + sys.getsizeof(price)
    )
    return mmid_row, order_row, level_row


MMID_ROW_BYTES, ORDER_ROW_BYTES, LEVEL_ROW_BYTES = _measure_row_bytes()


class DepthBook:
    """Level 2 book of one symbol, in the three keyings IQFeed uses (gotchas 13-15)."""

    __slots__ = ("levels", "mmid_rows", "orders", "seq", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.mmid_rows: dict[tuple[str, str], BookRow] = {}
        self.orders: dict[int, BookRow] = {}
        self.levels: dict[tuple[str, float], LevelRow] = {}
        self.seq = 0
        """Sequence of the last depth record (Level 2 has no sequence on the wire)."""

    def __len__(self) -> int:
        return len(self.mmid_rows) + len(self.orders) + len(self.levels)

    def next_seq(self) -> int:
        """The next per-symbol depth sequence number (arrival order, from 1)."""
        self.seq += 1
        return self.seq

    def put_row(
        self,
        order_id: int,
        mmid: str,
        side: str,
        price: float,
        size: int,
        time_ns: int,
        priority: int | None = None,
    ) -> None:
        """Add or replace an order (order_id > 0) or a market-maker quote (order_id 0)."""
        row = BookRow(side, price, size, time_ns, priority)
        if order_id:
            self.orders[order_id] = row
        else:
            self.mmid_rows[(mmid, side)] = row

    def remove_row(self, order_id: int, mmid: str, side: str) -> BookRow | None:
        """Remove an order or a market-maker quote; the removed row, or None if unknown."""
        if order_id:
            return self.orders.pop(order_id, None)
        return self.mmid_rows.pop((mmid, side), None)

    def put_level(self, side: str, price: float, size: int, order_count: int, time_ns: int) -> None:
        """Set a price level's aggregate."""
        self.levels[(side, price)] = LevelRow(size, order_count, time_ns)

    def remove_level(self, side: str, price: float) -> LevelRow | None:
        """Remove a price level; the removed level, or None if unknown."""
        return self.levels.pop((side, price), None)

    def clear(self, side: str) -> str:
        """Wipe one side (`S,CLEAR DEPTH,<sym>,<side>`); returns the kind of rows that side
        held ('mmid', 'order' or 'price'; 'mmid' for an empty side)."""
        had_orders = any(r.side == side for r in self.orders.values())
        had_levels = any(s == side for s, _ in self.levels)
        had_mmid = any(s == side for _, s in self.mmid_rows)
        self.mmid_rows = {k: r for k, r in self.mmid_rows.items() if k[1] != side}
        self.orders = {k: r for k, r in self.orders.items() if r.side != side}
        self.levels = {k: r for k, r in self.levels.items() if k[0] != side}
        if had_mmid or not (had_orders or had_levels):
            return "mmid"
        return "order" if had_orders else "price"

    def memory_bytes(self) -> int:
        """Estimated bytes of this book (see the module docstring); O(1)."""
        return (
            sys.getsizeof(self)
            + sys.getsizeof(self.mmid_rows)
            + sys.getsizeof(self.orders)
            + sys.getsizeof(self.levels)
            + len(self.mmid_rows) * MMID_ROW_BYTES
            + len(self.orders) * ORDER_ROW_BYTES
            + len(self.levels) * LEVEL_ROW_BYTES
        )

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view: rows per side, best price first."""
        out: dict[str, Any] = {"seq": self.seq}
        for side, best_first in (("B", True), ("A", False)):
            mm: list[dict[str, Any]] = [
                {"mmid": k[0], "price": r.price, "size": r.size, "time_ns": r.time_ns}
                for k, r in list(self.mmid_rows.items())
                if k[1] == side
            ]
            orders: list[dict[str, Any]] = [
                {"order_id": k, "price": r.price, "size": r.size, "priority": r.priority}
                for k, r in list(self.orders.items())
                if r.side == side
            ]
            levels: list[dict[str, Any]] = [
                {"price": k[1], "size": r.size, "order_count": r.order_count}
                for k, r in list(self.levels.items())
                if k[0] == side
            ]
            for rows in (mm, orders, levels):
                rows.sort(key=lambda r: r["price"], reverse=best_first)
            out[side] = {"mmid": mm, "orders": orders, "levels": levels}
        return out


class SymbolStates:
    """Every symbol's Level 1 quote and Level 2 book, shared by the connections' processors."""

    def __init__(self) -> None:
        self.level1: dict[str, Level1Quote] = {}
        self.books: dict[str, DepthBook] = {}

    def quote(self, symbol: str) -> Level1Quote:
        """The symbol's Level 1 state (created on first use)."""
        state = self.level1.get(symbol)
        if state is None:
            state = self.level1[symbol] = Level1Quote(symbol)
        return state

    def book(self, symbol: str) -> DepthBook:
        """The symbol's Level 2 book (created on first use)."""
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = DepthBook(symbol)
        return book

    def symbols(self) -> list[str]:
        """Symbols with any state, sorted."""
        return sorted(set(self.level1) | set(self.books))

    def memory_bytes(self, symbol: str) -> int:
        """Estimated bytes of one symbol's state (Level 1 + book)."""
        quote = self.level1.get(symbol)
        book = self.books.get(symbol)
        return (quote.memory_bytes() if quote else 0) + (book.memory_bytes() if book else 0)

    def memory_report(self) -> dict[str, int]:
        """symbol -> estimated bytes, for every symbol with state."""
        return {symbol: self.memory_bytes(symbol) for symbol in self.symbols()}

    def book_memory_bytes(self) -> int:
        """Estimated bytes of every Level 2 book (the order-book state the review sizes)."""
        return sys.getsizeof(self.books) + sum(
            book.memory_bytes() for book in list(self.books.values())
        )

    def total_memory_bytes(self) -> int:
        """Estimated bytes of all state, including the registry's dicts."""
        return (
            sys.getsizeof(self.level1)
            + sys.getsizeof(self.books)
            + sum(self.memory_report().values())
        )

    def snapshots(self) -> dict[str, dict[str, Any]]:
        """symbol -> {"level1": ..., "book": ...} (the Redis snapshotter's input)."""
        out: dict[str, dict[str, Any]] = {}
        for symbol in self.symbols():
            quote = self.level1.get(symbol)
            book = self.books.get(symbol)
            out[symbol] = {
                "level1": quote.snapshot() if quote else None,
                "book": book.snapshot() if book else None,
            }
        return out
