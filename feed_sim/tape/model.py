"""The tape event model shared by the tape format, converters, generator and pacing engine.

A tape is an ordered stream of `TapeEvent`s. Times are integer nanoseconds since the Unix epoch
(UTC), the project's time contract; the wire formats (US/Eastern) are produced only when a
message is rendered. `fields` holds the kind's payload, with the keys documented below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What an event is. Values are the one-letter codes stored in tape files."""

    TRADE = "T"
    """price: float, size: int, market_center: int (listed-market id), conditions: str (hex
    pairs, e.g. "873D"), basis: str ("C" last-qualified | "E" Form T | "O" other),
    aggressor: int (0 n/a, 1 buy, 2 sell, 3 neither); optional bid: float, ask: float (the NBBO
    at the trade), source_tick_id: int (TickID in the source, not unique, see gotcha 16)."""

    QUOTE = "Q"
    """bid: float, bid_size: int, ask: float, ask_size: int; optional bid_mc: int, ask_mc: int."""

    DEPTH = "D"
    """Level 2 row: side: "A" | "B", action: "update" | "delete", mmid: str (Nasdaq market
    maker, "" for order-by-order), order_id: int (0 for MMID rows), price: float, size: int."""

    RAW = "R"
    """A line recorded verbatim from a real IQConnect: port: "level1" | "level2" | "admin" |
    "lookup", line: str (without the line ending)."""


@dataclass(frozen=True, slots=True)
class TapeEvent:
    """One event of a tape: when (ns, UTC), which symbol, what kind, and its payload."""

    ts_ns: int
    symbol: str
    kind: Kind
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TapeHeader:
    """Metadata at the start of every tape file."""

    format_version: int
    created_ns: int
    source: str
    """Where the events came from: "generated", "converted:<file>", "recorded:<host>"."""
    symbols: tuple[str, ...]
    start_ns: int
    end_ns: int
    event_count: int
    amplified: bool = False
    """True when symbols were derived from fewer source tapes (time offsets, price rescaling)."""
    meta: Mapping[str, Any] = field(default_factory=dict)
