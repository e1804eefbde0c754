"""Convert an IQFeed tick-history reply (HTX/HTD/HTT, as csv or zip) into a tape of TRADE events.

Accepted row layouts (auto-detected per row; see FORMAT.md):
6.1 ``YYYY-MM-DD HH:MM:SS.ffffff,Last,LastSize,TotalVolume,Bid,Ask,TickID,BasisForLast,
TradeMarketCenter,TradeConditions,TradeAggressor,DayCode,``; 6.0 without the last two fields;
6.2 with ``[RequestID,]LH,`` in front. Times are US/Eastern wall clock, converted to UTC ns.
Malformed rows are counted and skipped, never fatal.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from feed_sim.tape.format import write_tape
from feed_sim.tape.model import Kind, TapeEvent, TapeHeader

EASTERN = ZoneInfo("America/New_York")
PROTOCOLS = ("6.0", "6.1", "6.2")
MAX_SKIP_REASONS = 10

_TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_HEX_PAIRS_RE = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_FIELDS_60 = 9
_FIELDS_61 = 11
"""Data fields after the timestamp: 6.0 stops at TradeConditions, 6.1+ adds aggressor and
day code."""


class ConvertError(ValueError):
    """The source as a whole cannot be read (not a csv/zip, empty zip, no rows)."""


class _SkipRow(ValueError):
    """A malformed row; the message is the skip reason."""


@dataclass
class HistoryParse:
    """Events parsed from a history reply, plus the bookkeeping that goes into the header."""

    events: list[TapeEvent]
    source_file: str = ""
    rows: int = 0
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)
    layouts: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    end_marker: bool = False
    source_order: str = "oldest_first"

    def meta(self) -> dict[str, Any]:
        """The header meta describing this conversion."""
        return {
            "source_file": self.source_file,
            "rows": self.rows,
            "skipped": self.skipped,
            "skip_reasons": self.skip_reasons,
            "layouts": dict(self.layouts),
            "server_errors": self.server_errors,
            "end_marker": self.end_marker,
            "source_order": self.source_order,
            "timezone": "America/New_York",
        }


def eastern_to_utc_ns(text: str) -> int:
    """``YYYY-MM-DD HH:MM:SS[.fraction]`` US/Eastern wall clock -> ns since the epoch (UTC).

    DST-aware via zoneinfo; an ambiguous fall-back time takes the first (daylight) instant.
    """
    m = _TS_RE.fullmatch(text)
    if m is None:
        raise _SkipRow(f"bad timestamp {text!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        local = datetime(y, mo, d, h, mi, s, tzinfo=EASTERN)
    except ValueError as exc:
        raise _SkipRow(f"bad timestamp {text!r} ({exc})") from None
    frac = m.group(7) or ""
    return int(local.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0") or "0")


def _price(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _SkipRow(f"{name} is not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise _SkipRow(f"{name} out of range: {text!r}")
    return value


def _int(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _SkipRow(f"{name} is not an integer: {text!r}") from None
    if value < 0:
        raise _SkipRow(f"{name} is negative: {text!r}")
    return value


def _timestamp_index(parts: list[str]) -> int | None:
    """Where the row's timestamp is: 0 (bare), 1 (request ID or LH), 2 (request ID + LH)."""
    return next((i for i in range(min(3, len(parts))) if _TS_RE.fullmatch(parts[i])), None)


def _parse_row(parts: list[str], symbol: str) -> tuple[TapeEvent, str]:
    """One data row (trailing empty field removed) -> (TRADE event, layout name)."""
    ts_at = _timestamp_index(parts)
    if ts_at is None:
        raise _SkipRow("no timestamp in the first 3 fields")
    prefix, data = parts[:ts_at], parts[ts_at + 1 :]
    if len(data) == _FIELDS_61:
        layout = "6.1"
    elif len(data) == _FIELDS_60:
        layout = "6.0"
    else:
        raise _SkipRow(
            f"expected {_FIELDS_60} or {_FIELDS_61} fields after the time, got {len(data)}"
        )
    if prefix and prefix[-1] == "LH":
        layout = "6.2"
    elif len(prefix) > 1:
        raise _SkipRow(f"unexpected leading fields {prefix!r}")
    price = _price(data[0], "Last")
    if price <= 0:
        raise _SkipRow(f"Last must be positive: {data[0]!r}")
    conditions = data[8]
    if not _HEX_PAIRS_RE.fullmatch(conditions):
        raise _SkipRow(f"TradeConditions is not hex pairs: {conditions!r}")
    if not data[6]:
        raise _SkipRow("empty BasisForLast")
    fields: dict[str, Any] = {
        "price": price,
        "size": _int(data[1], "LastSize"),
        "market_center": _int(data[7], "TradeMarketCenter"),
        "conditions": conditions,
        "basis": data[6],
        "aggressor": _int(data[9], "TradeAggressor") if len(data) == _FIELDS_61 else 0,
        "bid": _price(data[3], "Bid"),
        "ask": _price(data[4], "Ask"),
        "total_volume": _int(data[2], "TotalVolume"),
        "source_tick_id": _int(data[5], "TickID"),
    }
    return TapeEvent(eastern_to_utc_ns(parts[ts_at]), symbol, Kind.TRADE, fields), layout


def _is_end(parts: list[str]) -> bool:
    return "!ENDMSG!" in parts[:3]


def parse_history_lines(lines: Iterator[str], symbol: str) -> HistoryParse:
    """Parse reply lines into TRADE events sorted oldest first (stable for equal times)."""
    result = HistoryParse(events=[])
    parsed: list[TapeEvent] = []
    for lineno, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        parts = text.split(",")
        if parts and parts[-1] == "":
            parts.pop()
        if _is_end(parts):
            result.end_marker = True
            continue
        if "E" in parts[:2] and _timestamp_index(parts) is None:
            result.server_errors.append(f"line {lineno}: {text}")
            continue
        result.rows += 1
        try:
            if result.end_marker:
                raise _SkipRow("row after !ENDMSG!")
            event, layout = _parse_row(parts, symbol)
        except _SkipRow as exc:
            result.skipped += 1
            if len(result.skip_reasons) < MAX_SKIP_REASONS:
                result.skip_reasons.append(f"line {lineno}: {exc}")
            continue
        result.layouts[layout] += 1
        parsed.append(event)
    descending = sum(1 for a, b in itertools.pairwise(parsed) if b.ts_ns < a.ts_ns)
    ascending = sum(1 for a, b in itertools.pairwise(parsed) if b.ts_ns > a.ts_ns)
    if descending > ascending:
        result.source_order = "newest_first"
        parsed.reverse()
    parsed.sort(key=lambda e: e.ts_ns)
    result.events = parsed
    return result


def _read_text(source: Path) -> tuple[str, str]:
    """The reply text and a description of where it came from (zip member or file name)."""
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                names = [m.filename for m in members]
                raise ConvertError(f"{source}: expected one file in the zip, found {names}")
            return zf.read(members[0]).decode("latin-1"), f"{source.name}:{members[0].filename}"
    try:
        return source.read_bytes().decode("latin-1"), source.name
    except OSError as exc:
        raise ConvertError(f"{source}: cannot read ({exc})") from exc


def parse_history(source: Path | str, symbol: str) -> HistoryParse:
    """Parse a history reply file (csv or a zip holding one csv)."""
    source = Path(source)
    text, where = _read_text(source)
    result = parse_history_lines(iter(io.StringIO(text, newline="\n")), symbol)
    result.source_file = where
    if not result.events:
        raise ConvertError(
            f"{source}: no valid tick rows ({result.rows} rows, {result.skipped} skipped; "
            f"first reasons: {result.skip_reasons[:3]})"
        )
    return result


def convert_history(
    source: Path | str,
    out: Path | str,
    symbol: str,
    protocol_hint: str = "6.1",
    meta: Mapping[str, Any] | None = None,
) -> TapeHeader:
    """Convert a tick-history reply into a tape at ``out``; returns the written header.

    ``protocol_hint`` is recorded in the header; layouts are detected per row, so a reply of
    any of 6.0/6.1/6.2 converts whatever the hint. ``meta`` is merged into the header meta
    (e.g. attribution of the source data).
    """
    if protocol_hint not in PROTOCOLS:
        raise ValueError(f"protocol_hint must be one of {PROTOCOLS}, got {protocol_hint!r}")
    if not symbol or "," in symbol:
        raise ValueError(f"invalid symbol {symbol!r}")
    source = Path(source)
    result = parse_history(source, symbol)
    header_meta = {"protocol_hint": protocol_hint, **result.meta()}
    header_meta.update(meta or {})
    return write_tape(out, result.events, source=f"converted:{source.name}", meta=header_meta)
