"""IQFeed line parser of one connection: one decoded line (no CRLF) -> one typed message.

Owns the wire layouts the core reads (iqfeed-protocol.md §1.2, §2, §3):

- Level 1 `Q`/`P` laid out by the connection's CURRENT fieldset. The fieldset belongs to the
  connection (gotcha 1): it starts as IQConnect's default and follows every
  `S,CURRENT UPDATE FIELDNAMES,...` the server sends.
- `F` (content ignored), `n`, `E`, `T`, `S,...` system messages (the symbol of `SYMBOL LIMIT
  REACHED` is at index 2, gotcha 26), `S,CLEAR DEPTH,<sym>,<A|B>` (gotcha 15).
- Level 2 protocol 6.2 rows (`ingest.feed.depth_rows`), `q`.

The messages are the types of `ingest.feed.messages`. `LineParser.parse` never raises:
malformed, truncated, over-long or binary lines give `Malformed(reason)` with a reason from
`MALFORMED_REASONS`. Times are converted to UTC ns
(timeparse); times without a date are placed near the receive time passed in.

`Q` lines, the hot path, go through the C extension `ingest.feed._fastparse` (built by
`pip install -e .`; `make` does it), which does exactly what `LineParser._level1` does and
falls back to the same Python functions for anything but plain digits and cached times.
`LineParser(accelerated=False)` keeps every line on the Python path, the reference the C path
is tested against line by line (tests/unit/ingest/test_fastparse.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import ingest.feed._fastparse as _fastparse
from ingest.feed.depth_rows import (
    LEVEL_ACTIONS,
    ORDER_ACTIONS,
    SIDES,
    level_delete,
    level_row,
    order_delete,
    order_row,
)
from ingest.feed.fieldset import DEFAULT_FIELDS
from ingest.feed.messages import (
    ClearDepth,
    CurrentProtocol,
    CustomerInfo,
    ErrorMessage,
    FieldsetChanged,
    Fundamental,
    Ignored,
    Level1Update,
    Malformed,
    Message,
    NoDepth,
    SymbolLimitReached,
    SymbolNotFound,
    SystemMessage,
    Timestamp,
)
from ingest.feed.timeparse import (
    DatedTimeCache,
    NearTimeCache,
    timestamp_message_ns,
)

MAX_LINE_CHARS = 16_384
"""Longer lines are `Malformed("too_long")` (the longest real lines, `S,WATCHES` with 500
symbols or `S,UPDATE FIELDNAMES`, stay well under 4 KB)."""

SYSTEM_KINDS = frozenset(
    {
        "KEY",
        "KEYOK",
        "SERVER CONNECTED",
        "SERVER DISCONNECTED",
        "SERVER RECONNECT FAILED",
        "SYMBOL LIMIT REACHED",
        "IP",
        "CUST",
        "STATS",
        "FUNDAMENTAL FIELDNAMES",
        "UPDATE FIELDNAMES",
        "CURRENT UPDATE FIELDNAMES",
        "CURRENT LOG LEVELS",
        "WATCHES",
        "CURRENT PROTOCOL",
        "CLEAR DEPTH",
    }
)
IGNORED_TYPES = frozenset({"R", "N", "C", "Z", "2", "M", "O"})

_CUST_MAX_SYMBOLS = 10  # index in the split line: 'S', 'CUST', then field 8 (§1.3)


LAYOUT_FIELDS = (
    "Symbol",
    "Most Recent Trade",
    "Most Recent Trade Size",
    "Most Recent Trade Time",
    "Most Recent Trade Date",
    "Most Recent Trade Market Center",
    "Most Recent Trade Conditions",
    "Total Volume",
    "Bid",
    "Bid Size",
    "Bid Time",
    "Bid Market Center",
    "Ask",
    "Ask Size",
    "Ask Time",
    "Ask Market Center",
    "Message Contents",
    "TickID",
)
"""The fields the core reads from a `Q`/`P`, in the order `Layout.pick` returns them."""


class Layout:
    """Where the fields the core reads sit in a `Q`/`P` line split on commas.

    `width` = 1 (type) + the fieldset + 1 (the trailing empty field). `pick` is one
    itemgetter returning LAYOUT_FIELDS in order; a field the fieldset lacks points at
    `width`, where the parser puts an extra empty string."""

    __slots__ = ("names", "pick", "positions", "width")

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.width = len(self.names) + 2
        position: dict[str, int] = {}
        for i, name in enumerate(self.names):
            position.setdefault(name, i + 1)
        self.positions = tuple(position.get(name, self.width) for name in LAYOUT_FIELDS)
        self.pick: Callable[[list[str]], tuple[str, ...]] = itemgetter(*self.positions)


MAX_ACCELERATED_WIDTH = 128
"""Layouts up to this many comma-separated fields go through the C parser (all 70 Level 1
fields make 72)."""

_MISS: Any = object()
_CACHE_LIMIT = 100_000
_new_update = tuple.__new__

_FLOATS: dict[str, Any] = {"": None}
"""Price text -> float (finite only); bounded. Prices repeat a lot (an unchanged bid)."""

_SMALL_INTS: dict[str, Any] = {"": None, **{str(i): i for i in range(10_000)}}
"""Text of 0..9999 -> int (sizes, market centers), plus texts seen since (short ones)."""


def _new_float(text: str) -> float:
    """float(text), finite, remembered; ValueError otherwise."""
    value = float(text)
    if value - value != 0.0:
        raise ValueError(f"non-finite number {text[:20]!r}")
    if len(_FLOATS) >= _CACHE_LIMIT:
        _FLOATS.clear()
        _FLOATS[""] = None
    _FLOATS[text] = value
    return value


def _new_int(text: str) -> int:
    """int(text) >= 0 (short texts remembered); ValueError otherwise."""
    value = int(text)
    if value < 0:
        raise ValueError(f"negative number {text[:20]!r}")
    if len(text) <= 6 and len(_SMALL_INTS) < 2 * _CACHE_LIMIT:
        _SMALL_INTS[text] = value
    return value


class LineParser:
    """Parses the lines of ONE connection (it holds that connection's fieldset)."""

    def __init__(
        self,
        fields: Sequence[str] = DEFAULT_FIELDS,
        *,
        max_line_chars: int = MAX_LINE_CHARS,
        clock_ns: Callable[[], int] = time.time_ns,
        accelerated: bool = True,
    ) -> None:
        self._near = NearTimeCache()
        self._dated = DatedTimeCache()
        self.accelerated = accelerated
        self.max_line_chars = max_line_chars
        self._fast: Any = None
        self.layout = Layout(fields)
        self.clock_ns = clock_ns
        """Receive time used when `parse` is not given one (dateless times need a date)."""

    @property
    def layout(self) -> Layout:
        """The connection's current `Q`/`P` layout (setting it re-makes the C parser)."""
        return self._layout

    @layout.setter
    def layout(self, layout: Layout) -> None:
        self._layout = layout
        self._fast = None
        if self.accelerated and layout.width <= MAX_ACCELERATED_WIDTH:
            self._fast = _fastparse.Level1Parser(
                positions=layout.positions,
                width=layout.width,
                near_second=self._near.by_second,
                near_ns=self._near.ns,
                dated_second=self._dated.by_second,
                dated_resolve=self._dated.resolve,
                new_float=_new_float,
                new_int=_new_int,
                update_type=Level1Update,
                max_line_chars=self.max_line_chars,
            )

    @property
    def fields(self) -> tuple[str, ...]:
        """The connection's current `P`/`Q` fieldset."""
        return self.layout.names

    def reset(self, fields: Sequence[str] = DEFAULT_FIELDS) -> None:
        """A new socket starts with IQConnect's default fieldset again."""
        self.layout = Layout(fields)

    def parse(self, line: str, recv_ns: int | None = None) -> Message:
        """One line without its CRLF -> a message; never raises."""
        fast = self._fast
        if fast is not None and recv_ns is not None and line[:2] == "Q,":
            # The hot path: the C parser answers NotImplemented for what it leaves to this
            # one (over-long or non-ASCII lines among them), so the order of checks holds.
            try:
                result = fast.parse(line, recv_ns)
            except (ValueError, OverflowError, IndexError) as exc:
                return Malformed("bad_number", str(exc)[:80])
            if type(result) is tuple:
                return Malformed(*result)
            if result is not NotImplemented:
                return result  # type: ignore[no-any-return]
        if len(line) > self.max_line_chars:
            return Malformed("too_long", f"{len(line)} chars")
        if not line.isascii():
            return Malformed("binary", "non-ASCII character")
        hint = self.clock_ns() if recv_ns is None else recv_ns
        try:
            if line[:2] == "Q,":  # text fields are checked for control characters
                return self._level1(line.split(","), False, hint)
            line = line.rstrip("\r\n")
            if not line.isprintable():
                return Malformed("binary", "control character")
            if not line:
                return Malformed("empty")
            return self._dispatch(line, hint)
        except (ValueError, OverflowError, IndexError) as exc:
            return Malformed("bad_number", str(exc)[:80])

    def _dispatch(self, line: str, hint: int) -> Message:
        parts = line.split(",")
        kind = parts[0]
        if kind in ORDER_ACTIONS:
            return order_row(parts, ORDER_ACTIONS[kind], hint)
        if kind == "5":
            return order_delete(parts, hint)
        if kind in LEVEL_ACTIONS:
            return level_row(parts, LEVEL_ACTIONS[kind], hint)
        if kind == "9":
            return level_delete(parts, hint)
        if kind in ("Q", "P"):
            return self._level1(parts, kind == "P", hint)
        if kind == "S":
            return self._system(parts)
        if kind == "T":
            stamp = timestamp_message_ns(line[2:]) if len(parts) == 2 else None
            return Malformed("bad_time") if stamp is None else Timestamp(stamp)
        if kind in ("F", "n", "q"):
            if len(parts) < 2 or not parts[1]:
                return Malformed("bad_symbol", kind)
            if kind == "F":
                return Fundamental(parts[1])
            return SymbolNotFound(parts[1]) if kind == "n" else NoDepth(parts[1])
        if kind == "E":
            return ErrorMessage(line[2:].rstrip(","))
        if kind in IGNORED_TYPES:
            return Ignored(kind)
        return Malformed("unknown_type", kind[:16])

    def _level1(self, parts: list[str], summary: bool, hint: int) -> Level1Update | Malformed:
        """`Q`/`P` in the current layout. The hot path: one itemgetter for all fields,
        cached conversions for repeated texts (prices, sizes, market centers, times)."""
        lay = self.layout
        n = len(parts)
        if n == lay.width:
            if parts[-1] and parts[-1].strip("\r\n"):
                return Malformed("bad_field_count", f"{n} fields, last not empty")
        elif n == lay.width - 1:
            parts.append("")
        else:
            return Malformed("bad_field_count", f"{n} fields, layout {lay.width}")
        parts.append("")
        (
            symbol,
            t_price,
            t_size,
            t_time,
            t_date,
            t_mc,
            conditions,
            t_volume,
            b_price,
            b_size,
            b_time,
            b_mc,
            a_price,
            a_size,
            a_time,
            a_mc,
            contents,
            t_tick,
        ) = lay.pick(parts)
        if not symbol:
            return Malformed("bad_symbol")
        if not (symbol + conditions + contents).isprintable():
            return Malformed("binary", "control character in a text field")
        floats = _FLOATS
        trade_price = floats.get(t_price, _MISS)
        if trade_price is _MISS:
            trade_price = _new_float(t_price)
        bid = floats.get(b_price, _MISS)
        if bid is _MISS:
            bid = _new_float(b_price)
        ask = floats.get(a_price, _MISS)
        if ask is _MISS:
            ask = _new_float(a_price)
        ints = _SMALL_INTS
        trade_size = ints.get(t_size, _MISS)
        if trade_size is _MISS:
            trade_size = _new_int(t_size)
        bid_size = ints.get(b_size, _MISS)
        if bid_size is _MISS:
            bid_size = _new_int(b_size)
        ask_size = ints.get(a_size, _MISS)
        if ask_size is _MISS:
            ask_size = _new_int(a_size)
        trade_mc = ints.get(t_mc, _MISS)
        if trade_mc is _MISS:
            trade_mc = _new_int(t_mc)
        bid_mc = ints.get(b_mc, _MISS)
        if bid_mc is _MISS:
            bid_mc = _new_int(b_mc)
        ask_mc = ints.get(a_mc, _MISS)
        if ask_mc is _MISS:
            ask_mc = _new_int(a_mc)
        total_volume = int(t_volume) if t_volume else None
        tick_id = int(t_tick) if t_tick else None
        if (total_volume is not None and total_volume < 0) or (tick_id is not None and tick_id < 0):
            return Malformed("bad_number", "negative volume or TickID")
        near = self._near
        trade_ns: int | None = None
        if t_time:
            if t_date:
                trade_ns = self._dated.resolve(t_date, t_time, hint)
            else:
                trade_ns = near.ns(t_time, hint)
            if trade_ns is None:
                return Malformed("bad_time", "Most Recent Trade Time/Date")
        bid_ns = near.ns(b_time, hint) if b_time else None
        if a_time == b_time:  # one conversion when both sides changed together
            ask_ns = bid_ns
        elif a_time:
            ask_ns = near.ns(a_time, hint)
        else:
            ask_ns = None
        if (b_time and bid_ns is None) or (a_time and ask_ns is None):
            return Malformed("bad_time", "Bid/Ask Time")
        return _new_update(
            Level1Update,
            (
                summary,
                symbol,
                trade_price,
                trade_size,
                trade_ns,
                trade_mc,
                conditions,
                total_volume,
                bid,
                bid_size,
                bid_ns,
                bid_mc,
                ask,
                ask_size,
                ask_ns,
                ask_mc,
                contents,
                tick_id,
            ),
        )

    def _system(self, parts: list[str]) -> Message:
        if len(parts) < 2:
            return Malformed("bad_field_count", "S without a kind")
        kind = parts[1]
        args = parts[2:]
        if args and not args[-1]:
            args.pop()
        if kind == "CURRENT UPDATE FIELDNAMES":
            if not args or args[0] != "Symbol" or not all(args):
                return Malformed("bad_fieldset", ",".join(args)[:80])
            self.layout = Layout(args)
            return FieldsetChanged(tuple(args))
        if kind == "SYMBOL LIMIT REACHED":
            return SymbolLimitReached(args[0] if args else "")
        if kind == "CLEAR DEPTH":
            if len(args) < 2 or not args[0]:
                return Malformed("bad_field_count", "CLEAR DEPTH")
            if args[1] not in SIDES:
                return Malformed("bad_side", args[1][:8])
            return ClearDepth(args[0], args[1])
        if kind == "CURRENT PROTOCOL":
            return CurrentProtocol(args[0] if args else "")
        if kind == "CUST":
            raw = parts[_CUST_MAX_SYMBOLS] if len(parts) > _CUST_MAX_SYMBOLS else ""
            max_symbols = int(raw) if raw.isdigit() else None
            version = parts[6] if len(parts) > 6 else ""
            return CustomerInfo(args[0] if args else "", max_symbols, version)
        if kind in SYSTEM_KINDS:
            return SystemMessage(kind, tuple(args))
        return SystemMessage("OTHER", (kind[:64],))
