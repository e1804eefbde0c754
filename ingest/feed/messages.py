"""The typed messages `ingest.feed.parse.LineParser` turns IQFeed lines into (one per line),
and `Malformed` with its reasons for the lines it cannot read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

MALFORMED_REASONS = (
    "empty",
    "too_long",
    "binary",
    "unknown_type",
    "bad_field_count",
    "bad_number",
    "bad_time",
    "bad_side",
    "bad_symbol",
    "bad_key",
    "bad_fieldset",
)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line the parser could not read; `reason` is one of MALFORMED_REASONS."""

    reason: str
    detail: str = ""


class Level1Update(NamedTuple):
    """A Level 1 `Q` (update) or `P` (summary, `summary=True`). Fields missing from the
    connection's fieldset, or empty on the wire, are None. Times are UTC ns.

    A NamedTuple because it is built once per line on the hot path (tuple construction is
    several times cheaper than setting 18 attributes)."""

    summary: bool
    symbol: str
    trade_price: float | None
    trade_size: int | None
    trade_ns: int | None
    trade_mc: int | None
    conditions: str
    total_volume: int | None
    bid: float | None
    bid_size: int | None
    bid_ns: int | None
    bid_mc: int | None
    ask: float | None
    ask_size: int | None
    ask_ns: int | None
    ask_mc: int | None
    contents: str
    tick_id: int | None


@dataclass(frozen=True, slots=True)
class DepthRow:
    """One Level 2 row. action: summary/add/update/delete; level_kind: order (MBO, order id),
    mmid (Nasdaq Level II, order_id 0) or price (7/8/9). time_ns 0 when the time is empty."""

    action: str
    level_kind: str
    symbol: str
    side: str
    mmid: str
    order_id: int
    price: float | None
    size: int
    order_count: int
    priority: int | None
    time_ns: int


@dataclass(frozen=True, slots=True)
class Fundamental:
    """An `F` message (content not read)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class SymbolNotFound:
    """`n,<SYMBOL>`."""

    symbol: str


@dataclass(frozen=True, slots=True)
class NoDepth:
    """`q,<SYMBOL>`: the symbol has no Level 2 depth."""

    symbol: str


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """`E,<text>,`."""

    text: str


@dataclass(frozen=True, slots=True)
class Timestamp:
    """`T,YYYYMMDD HH:MM:SS` (server time, Eastern) as UTC ns."""

    time_ns: int


@dataclass(frozen=True, slots=True)
class SystemMessage:
    """`S,<KIND>,...`: kind is one of SYSTEM_KINDS (unknown kinds are 'OTHER')."""

    kind: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SymbolLimitReached:
    """`S,SYMBOL LIMIT REACHED,<sym>` (symbol at index 2)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class ClearDepth:
    """`S,CLEAR DEPTH,<sym>,<A|B>,`: one side of a book is wiped."""

    symbol: str
    side: str


@dataclass(frozen=True, slots=True)
class FieldsetChanged:
    """`S,CURRENT UPDATE FIELDNAMES,...`: the connection's new `P`/`Q` layout."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CurrentProtocol:
    """`S,CURRENT PROTOCOL,<v>`."""

    version: str


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    """`S,CUST,...`: the service type and the Level 1 symbol limit (None if unreadable)."""

    service: str
    max_symbols: int | None
    version: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A known message type the core does not use (`R`, `N`, `C`, <=6.1 `Z`/`2`/`M`, `O`)."""

    kind: str


Message = (
    Level1Update
    | DepthRow
    | Fundamental
    | SymbolNotFound
    | NoDepth
    | ErrorMessage
    | Timestamp
    | SystemMessage
    | SymbolLimitReached
    | ClearDepth
    | FieldsetChanged
    | CurrentProtocol
    | CustomerInfo
    | Ignored
    | Malformed
)
