"""Level 2 (port 9200) messages and the per-symbol depth book behind them.

Owns the protocol 6.2 market-depth lines (`3`/`4`/`5`/`6` order rows, Nasdaq MMID rows with
empty order id and priority, `7`/`8`/`9` price levels; iqfeed-protocol.md §3.3), the <=6.1
market-maker lines (`Z`/`2`, `M`; §3.2), `q`/`n`, and `DepthBook`: MMID rows keyed by (MMID,
side), market-by-order rows keyed by order id, with aggregated price levels kept incrementally
so a `WPL` watch can be served from the same book.

Market by order (§3.3 behaviour notes): an order new to the book is sent as `3` (add), a
change to one it holds as `4` (update), its removal as `5`; every order carries an
OrderPriority, the book's own when the tape has none (`DepthBook.apply`). Nasdaq Level II has
no adds: its MMID rows are `6`/`4`/`5` only, with empty order id and priority.
"""

from __future__ import annotations

from dataclasses import dataclass

from feed_sim.protocol.system import render_clear_depth
from feed_sim.protocol.timefmt import hhmmss_micro, yyyy_mm_dd

__all__ = [
    "DepthBook",
    "DepthChange",
    "DepthRow",
    "PriceLevel",
    "render_clear_depth",
    "render_market_maker",
    "render_market_maker_name",
    "render_no_depth",
    "render_not_found",
    "render_order",
    "render_order_change",
    "render_order_delete",
    "render_price_level",
    "render_price_level_delete",
]

ORDER_ADD = "3"
ORDER_UPDATE = "4"
ORDER_DELETE = "5"
ORDER_SUMMARY = "6"
PRICE_LEVEL_SUMMARY = "7"
PRICE_LEVEL_UPDATE = "8"
PRICE_LEVEL_DELETE = "9"
MM_SUMMARY = "Z"
MM_UPDATE = "2"


def _encode(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def _price(price: float, precision: int, trim_zeros: bool = False) -> str:
    text = f"{price:.{precision}f}"
    return text.rstrip("0") if trim_zeros and "." in text else text


def render_order(
    msg_type: str,
    symbol: str,
    order_id: int | None,
    mmid: str,
    side: str,
    price: float,
    size: int,
    priority: int | None,
    precision: int,
    ts_ns: int,
) -> bytes:
    """`<3|4|6|0>,<sym>,<order id>,<MMID>,<A|B>,<price>,<size>,<priority>,<precision>,
    <HH:MM:SS.ffffff>,<YYYY-MM-DD>,`. Nasdaq Level II rows pass order_id/priority None."""
    oid = "" if order_id is None else str(order_id)
    prio = "" if priority is None else str(priority)
    return _encode(
        f"{msg_type},{symbol},{oid},{mmid},{side},{price:.{precision}f},{size},{prio},"
        f"{precision},{hhmmss_micro(ts_ns)},{yyyy_mm_dd(ts_ns)},\r\n"
    )


def render_order_change(
    symbol: str, change: DepthChange, precision: int, ts_ns: int
) -> bytes | None:
    """The line of a market-by-order add or update the book applied: `3` for an order new to
    the book, `4` for one it changed, with the order's book priority. None for deletes and
    for Nasdaq MMID rows, whose `4`/`5` lines need nothing from the book."""
    row = change.row
    if change.deleted or row is None or row.order_id is None:
        return None
    return render_order(
        ORDER_ADD if change.is_new else ORDER_UPDATE,
        symbol,
        row.order_id,
        row.mmid,
        row.side,
        row.price,
        row.size,
        row.priority,
        precision,
        ts_ns,
    )


def render_order_delete(
    symbol: str,
    order_id: int | None,
    mmid: str,
    side: str,
    time_ns: int | None,
    date_ns: int | None = None,
) -> bytes:
    """`5,<sym>,<order id>,<MMID>,<A|B>,<time>,<date>,`. Nasdaq MMID deletes pass
    `time_ns=None` (empty time, SEEN) and the date in `date_ns`; the date defaults to
    `time_ns`'s."""
    day_ns = time_ns if date_ns is None else date_ns
    if day_ns is None:
        raise ValueError("render_order_delete needs time_ns or date_ns")
    oid = "" if order_id is None else str(order_id)
    time_text = "" if time_ns is None else hhmmss_micro(time_ns)
    return _encode(f"5,{symbol},{oid},{mmid},{side},{time_text},{yyyy_mm_dd(day_ns)},\r\n")


def render_price_level(
    msg_type: str,
    symbol: str,
    side: str,
    price: float,
    size: int,
    order_count: int,
    precision: int,
    ts_ns: int,
) -> bytes:
    """`<7|8>,<sym>,<A|B>,<price>,<size>,<order count>,<precision>,<time>,<date>,`."""
    return _encode(
        f"{msg_type},{symbol},{side},{price:.{precision}f},{size},{order_count},{precision},"
        f"{hhmmss_micro(ts_ns)},{yyyy_mm_dd(ts_ns)},\r\n"
    )


def render_price_level_delete(
    symbol: str, side: str, price: float, precision: int, ts_ns: int
) -> bytes:
    """`9,<sym>,<A|B>,<price>,<time>,<date>,`."""
    return _encode(
        f"9,{symbol},{side},{price:.{precision}f},{hhmmss_micro(ts_ns)},{yyyy_mm_dd(ts_ns)},\r\n"
    )


def render_market_maker(
    msg_type: str,
    symbol: str,
    mmid: str,
    bid: float,
    ask: float,
    bid_size: int,
    ask_size: int,
    bid_ns: int,
    ask_ns: int,
    *,
    precision: int = 4,
    trim_zeros: bool = False,
    condition: str = "52",
    bid_valid: bool = True,
    ask_valid: bool = True,
    end_of_group: bool = False,
) -> bytes:
    """<=6.1 `Z` (summary) / `2` (update): `<Z|2>,<sym>,<MMID>,<bid>,<ask>,<bidsize>,<asksize>,
    <bid time>,<date>,<condition>,<ask time>,<bid valid>,<ask valid>,<end of group>,`.

    Equities use `precision` decimals; futures fixtures are unpadded (`trim_zeros`, e.g.
    '2982.5', '2938.'). Condition 52 is what every fixture carries (meaning unverified)."""

    def flag(value: bool) -> str:
        return "T" if value else "F"

    return _encode(
        f"{msg_type},{symbol},{mmid},{_price(bid, precision, trim_zeros)},"
        f"{_price(ask, precision, trim_zeros)},{bid_size},{ask_size},{hhmmss_micro(bid_ns)},"
        f"{yyyy_mm_dd(bid_ns)},{condition},{hhmmss_micro(ask_ns)},{flag(bid_valid)},"
        f"{flag(ask_valid)},{flag(end_of_group)},\r\n"
    )


def render_market_maker_name(mmid: str, description: str) -> bytes:
    """<=6.1 reply to `m<MMID>`: `M,<MMID>,<description>` (no trailing comma, as the fixture)."""
    return _encode(f"M,{mmid},{description}\r\n")


def render_no_depth(symbol: str) -> bytes:
    """`q,<SYMBOL>`: the symbol has no depth."""
    return _encode(f"q,{symbol}\r\n")


def render_not_found(symbol: str) -> bytes:
    """`n,<SYMBOL>`: unknown symbol."""
    return _encode(f"n,{symbol}\r\n")


@dataclass(slots=True)
class DepthRow:
    """One book row: a Nasdaq MMID quote on one side (order_id None) or one MBO order."""

    side: str
    price: float
    size: int
    ts_ns: int
    mmid: str = ""
    order_id: int | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class PriceLevel:
    """Aggregated size and order count at one price; size 0 means the level is gone."""

    side: str
    price: float
    size: int
    order_count: int


@dataclass(frozen=True, slots=True)
class DepthChange:
    """What one `DepthBook.apply` did: the row after (or, for deletes, before) the change,
    whether it was new (MBO `3` vs `4`), whether it was deleted, and changed price levels."""

    row: DepthRow | None
    is_new: bool
    deleted: bool
    levels: tuple[PriceLevel, ...]


class DepthBook:
    """Level 2 book of one symbol: MMID rows by (mmid, side), MBO orders by order id."""

    __slots__ = ("_last_priority", "_levels", "_mmid_rows", "_orders", "precision", "symbol")

    def __init__(self, symbol: str, precision: int = 4) -> None:
        self.symbol = symbol
        self.precision = precision
        self._mmid_rows: dict[tuple[str, str], DepthRow] = {}
        self._orders: dict[int, DepthRow] = {}
        self._levels: dict[str, dict[float, list[int]]] = {"A": {}, "B": {}}
        self._last_priority = 0

    def __len__(self) -> int:
        return len(self._mmid_rows) + len(self._orders)

    def _level_key(self, price: float) -> float:
        return round(price, self.precision + 2)

    def _add_to_level(self, side: str, price: float, size: int, count: int) -> PriceLevel:
        key = self._level_key(price)
        levels = self._levels[side]
        level = levels.get(key)
        if level is None:
            level = levels[key] = [0, 0]
        level[0] += size
        level[1] += count
        if level[1] <= 0:
            del levels[key]
            return PriceLevel(side, key, 0, 0)
        return PriceLevel(side, key, level[0], level[1])

    def apply(
        self,
        side: str,
        action: str,
        price: float,
        size: int,
        ts_ns: int,
        *,
        mmid: str = "",
        order_id: int = 0,
        priority: int | None = None,
    ) -> DepthChange:
        """Apply a tape DEPTH event (action 'update' | 'delete'; order_id 0 = MMID row).

        An order given no priority gets the book's: the next one when it is new, or when it
        moves to another price or grows (it joins the back of the queue, INFERRED from the
        usual time priority); it keeps its own when only its size shrinks."""
        key: tuple[str, str] | int = (mmid, side) if order_id == 0 else order_id
        old = self._mmid_rows.get(key) if isinstance(key, tuple) else self._orders.get(key)
        if order_id and priority is None and action != "delete":
            priority = self._order_priority(old, price, size)
        changes: list[PriceLevel] = []
        if old is not None:
            changes.append(self._add_to_level(old.side, old.price, -old.size, -1))
        if action == "delete":
            if isinstance(key, tuple):
                self._mmid_rows.pop(key, None)
            else:
                self._orders.pop(key, None)
            return DepthChange(old, False, old is not None, tuple(changes))
        row = DepthRow(
            side, price, size, ts_ns, mmid, None if order_id == 0 else order_id, priority
        )
        if isinstance(key, tuple):
            self._mmid_rows[key] = row
        else:
            self._orders[key] = row
        new_level = self._add_to_level(side, price, size, 1)
        if changes and changes[0].price == new_level.price and changes[0].side == side:
            changes = [new_level]
        else:
            changes.append(new_level)
        return DepthChange(row, old is None, False, tuple(changes))

    def _order_priority(self, old: DepthRow | None, price: float, size: int) -> int:
        same_place = old is not None and self._level_key(old.price) == self._level_key(price)
        if old is not None and old.priority is not None and same_place and size <= old.size:
            return old.priority
        self._last_priority += 1
        return self._last_priority

    def clear(self, side: str | None = None) -> None:
        """Drop one side (or the whole book), as after `S,CLEAR DEPTH`."""
        sides = ("A", "B") if side is None else (side,)
        self._mmid_rows = {k: r for k, r in self._mmid_rows.items() if r.side not in sides}
        self._orders = {k: r for k, r in self._orders.items() if r.side not in sides}
        for s in sides:
            self._levels[s] = {}

    def snapshot_rows(self) -> list[DepthRow]:
        """All rows for a summary after a new watch: bids best first, then asks best first
        (MBO ties by priority)."""
        rows = [*self._mmid_rows.values(), *self._orders.values()]

        def order(row: DepthRow) -> tuple[int, float, int]:
            best_first = -row.price if row.side == "B" else row.price
            return (0 if row.side == "B" else 1, best_first, row.priority or 0)

        return sorted(rows, key=order)

    def price_levels(self, side: str, max_levels: int | None = None) -> list[PriceLevel]:
        """Aggregated levels of one side, best first (for `7` summaries)."""
        levels = self._levels[side]
        prices = sorted(levels, reverse=(side == "B"))
        if max_levels is not None:
            prices = prices[:max_levels]
        return [PriceLevel(side, p, levels[p][0], levels[p][1]) for p in prices]

    def market_maker_quote(self, mmid: str) -> tuple[DepthRow | None, DepthRow | None]:
        """(bid row, ask row) of one MMID, for the <=6.1 `Z`/`2` two-sided format."""
        return self._mmid_rows.get((mmid, "B")), self._mmid_rows.get((mmid, "A"))

    def market_makers(self) -> list[str]:
        """MMIDs with at least one side in the book, sorted."""
        return sorted({mmid for mmid, _ in self._mmid_rows})

    def render_snapshot(self) -> bytes:
        """The 6.2 `6` summary rows of the whole book (empty when the book is empty)."""
        out = []
        for row in self.snapshot_rows():
            out.append(
                render_order(
                    ORDER_SUMMARY,
                    self.symbol,
                    row.order_id,
                    row.mmid,
                    row.side,
                    row.price,
                    row.size,
                    row.priority,
                    self.precision,
                    row.ts_ns,
                )
            )
        return b"".join(out)
