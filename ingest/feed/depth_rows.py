"""Level 2 rows of protocol 6.2 (iqfeed-protocol.md §3): `0`/`3`/`4`/`6` orders (an empty
order id is a Nasdaq market-maker row, gotcha 13), `5` deletes (the time may be empty), `7`/`8`
price levels and `9` their deletes (their own columns, gotcha 14); sides `A`/`B` only. Each
function takes the line split on commas and gives a `DepthRow` or `Malformed`."""

from __future__ import annotations

from ingest.feed.messages import DepthRow, Malformed
from ingest.feed.timeparse import (
    l2_datetime_ns,
    time_near_ns,
    time_of_day_us,
    ymd_day,
)

ORDER_ACTIONS = {"6": "summary", "3": "add", "4": "update", "0": "update"}
LEVEL_ACTIONS = {"7": "summary", "8": "update"}
SIDES = frozenset({"A", "B"})


def _side(text: str) -> str | None:
    return text if text in SIDES else None


def _row_time(time_text: str, date_text: str, hint: int) -> int | None:
    """UTC ns of a Level 2 row time; 0 when the time is empty, None when invalid."""
    if not time_text:
        return 0 if not date_text or ymd_day(date_text) is not None else None
    if date_text:
        return l2_datetime_ns(date_text, time_text, hint)
    tod = time_of_day_us(time_text)
    return None if tod is None else time_near_ns(tod, hint)


def _fields(parts: list[str], count: int) -> bool:
    """True when the row has `count` fields after the type (+ the trailing empty one)."""
    n = len(parts)
    return n == count + 1 or (n == count + 2 and not parts[-1])


def _order_key(symbol: str, side: str, oid: str, mmid: str) -> int | Malformed:
    """The order id of an order row or delete (0: a Nasdaq MMID row), after the checks both
    share: a symbol, a side, and an order id or an MMID."""
    if not symbol:
        return Malformed("bad_symbol")
    if _side(side) is None:
        return Malformed("bad_side", side[:8])
    order_id = int(oid) if oid else 0
    if order_id < 0 or (order_id == 0 and not mmid):
        return Malformed("bad_key", "neither order id nor MMID")
    return order_id


def order_row(parts: list[str], action: str, hint: int) -> DepthRow | Malformed:
    """`3/4/6/0,Symbol,OrderID,MMID,Side,Price,Size,Priority,Precision,Time,Date,`."""
    if not _fields(parts, 10):
        return Malformed("bad_field_count", f"order row with {len(parts)} fields")
    _, symbol, oid, mmid, side, price_text, size_text, prio, _prec, time_text, date_text = parts[
        :11
    ]
    order_id = _order_key(symbol, side, oid, mmid)
    if isinstance(order_id, Malformed):
        return order_id
    price = float(price_text)
    size = int(size_text) if size_text else 0
    if price - price != 0.0 or size < 0:
        return Malformed("bad_number", "price or size")
    time_ns = _row_time(time_text, date_text, hint)
    if time_ns is None:
        return Malformed("bad_time", "order row")
    return DepthRow(
        action,
        "order" if order_id else "mmid",
        symbol,
        side,
        mmid,
        order_id,
        price,
        size,
        1,
        int(prio) if prio else None,
        time_ns,
    )


def order_delete(parts: list[str], hint: int) -> DepthRow | Malformed:
    """`5,Symbol,OrderID,MMID,Side,Time,Date,` (time empty for Nasdaq MMID rows)."""
    if not _fields(parts, 6):
        return Malformed("bad_field_count", f"order delete with {len(parts)} fields")
    _, symbol, oid, mmid, side, time_text, date_text = parts[:7]
    order_id = _order_key(symbol, side, oid, mmid)
    if isinstance(order_id, Malformed):
        return order_id
    time_ns = _row_time(time_text, date_text, hint)
    if time_ns is None:
        return Malformed("bad_time", "order delete")
    kind = "order" if order_id else "mmid"
    return DepthRow("delete", kind, symbol, side, mmid, order_id, None, 0, 0, None, time_ns)


def level_row(parts: list[str], action: str, hint: int) -> DepthRow | Malformed:
    """`7/8,Symbol,Side,Price,Size,OrderCount,Precision,Time,Date,`."""
    if not _fields(parts, 8):
        return Malformed("bad_field_count", f"price level with {len(parts)} fields")
    _, symbol, side, price_text, size_text, count_text, _prec, time_text, date_text = parts[:9]
    if not symbol:
        return Malformed("bad_symbol")
    if _side(side) is None:
        return Malformed("bad_side", side[:8])
    price = float(price_text)
    size = int(size_text) if size_text else 0
    count = int(count_text) if count_text else 0
    if price - price != 0.0 or size < 0 or count < 0:
        return Malformed("bad_number", "price, size or order count")
    time_ns = _row_time(time_text, date_text, hint)
    if time_ns is None:
        return Malformed("bad_time", "price level")
    return DepthRow(action, "price", symbol, side, "", 0, price, size, count, None, time_ns)


def level_delete(parts: list[str], hint: int) -> DepthRow | Malformed:
    """`9,Symbol,Side,Price,Time,Date,`."""
    if not _fields(parts, 5):
        return Malformed("bad_field_count", f"price level delete with {len(parts)} fields")
    _, symbol, side, price_text, time_text, date_text = parts[:6]
    if not symbol:
        return Malformed("bad_symbol")
    if _side(side) is None:
        return Malformed("bad_side", side[:8])
    price = float(price_text)
    if price - price != 0.0:
        return Malformed("bad_number", "price")
    time_ns = _row_time(time_text, date_text, hint)
    if time_ns is None:
        return Malformed("bad_time", "price level delete")
    return DepthRow("delete", "price", symbol, side, "", 0, price, 0, 0, None, time_ns)
