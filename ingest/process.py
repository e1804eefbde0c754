"""Processing of one connection's lines: parse -> update shared state -> Kafka records.

Owns `Processor` (one per IQFeed connection: it holds that connection's `LineParser`, whose
fieldset is the connection's, and shares `SymbolStates` with the other processors) and
`ProcessStats`, its mergeable counters. Records follow ARCHITECTURE.md contract 4
(`ingest.records.FeedRecord`), one per event:

- `Q` with a trade code (C/E/O) in Message Contents -> "trade"; exchange_ns = Most Recent
  Trade Time + Date. Else with b/a -> "quote"; exchange_ns = the later of the Bid/Ask Time
  that changed, on the receive date. Else no record. seq = TickID.
- `P` (summary) updates state, no record.
- Level 2 rows and `S,CLEAR DEPTH` -> "depth"; seq = a per-symbol counter in arrival order;
  exchange_ns = the row time (0 when empty).

`recv_ns` comes from the caller (stamped at the socket read); `produced_ns` stays 0 for the
producer to stamp. TickID gaps (a jump > 1; across a reconnect too: the TickIDs sent while
the socket was down) and duplicates (TickID <= the last one, within a connection) are counted
per symbol; duplicates are still forwarded (the collector judges).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.feed.messages import (
    ClearDepth,
    CurrentProtocol,
    CustomerInfo,
    DepthRow,
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
from ingest.feed.parse import LineParser
from ingest.feed.state import SymbolStates
from ingest.records import FeedRecord

MAX_LISTED_SYMBOLS = 10_000
"""Cap on the symbol sets kept in the stats (not-found, limit-reached, no-depth)."""

_TRADE, _QUOTE, _NONE = 0, 1, 2


def _classify(contents: str) -> tuple[int, bool, bool]:
    """(kind, bid changed, ask changed) of a Message Contents code string (§2.4)."""
    has_bid = "b" in contents
    has_ask = "a" in contents
    if "C" in contents or "E" in contents or "O" in contents:
        return _TRADE, has_bid, has_ask
    return (_QUOTE if has_bid or has_ask else _NONE), has_bid, has_ask


_contents_cache: dict[str, tuple[int, bool, bool]] = {}


def _classify_and_remember(contents: str) -> tuple[int, bool, bool]:
    kind = _classify(contents)
    if len(_contents_cache) < 4_096:
        _contents_cache[contents] = kind
    return kind


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, value in dict(b).items():
        out[key] = out.get(key, 0) + value
    return out


def _metric_name(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower())


@dataclass
class ProcessStats:
    """Counters of one processor (or, merged with `+`, of several)."""

    lines: int = 0
    records: dict[str, int] = field(default_factory=lambda: {"trade": 0, "quote": 0, "depth": 0})
    malformed: dict[str, int] = field(default_factory=dict)
    system: dict[str, int] = field(default_factory=dict)
    """System messages by kind (`SERVER CONNECTED`, `CURRENT PROTOCOL`, ...)."""
    ignored: dict[str, int] = field(default_factory=dict)
    """Known message types the core does not use, by type."""
    summaries: int = 0
    fundamentals: int = 0
    timestamps: int = 0
    errors: int = 0
    level1_without_record: int = 0
    not_found: set[str] = field(default_factory=set)
    symbols_not_found: int = 0
    symbol_limit_reached: int = 0
    limit_reached_symbols: set[str] = field(default_factory=set)
    no_depth_symbols: set[str] = field(default_factory=set)
    server_disconnects: int = 0
    tickid_gaps: dict[str, int] = field(default_factory=dict)
    """Per symbol: how many TickID jumps > 1."""
    tickid_missing: dict[str, int] = field(default_factory=dict)
    """Per symbol: how many TickIDs those jumps skipped."""
    duplicates: dict[str, int] = field(default_factory=dict)
    """Per symbol: TickIDs <= the last one."""

    def __add__(self, other: ProcessStats) -> ProcessStats:
        return ProcessStats(
            lines=self.lines + other.lines,
            records=_add_counts(self.records, other.records),
            malformed=_add_counts(self.malformed, other.malformed),
            system=_add_counts(self.system, other.system),
            ignored=_add_counts(self.ignored, other.ignored),
            summaries=self.summaries + other.summaries,
            fundamentals=self.fundamentals + other.fundamentals,
            timestamps=self.timestamps + other.timestamps,
            errors=self.errors + other.errors,
            level1_without_record=self.level1_without_record + other.level1_without_record,
            not_found=set(self.not_found) | set(other.not_found),
            symbols_not_found=self.symbols_not_found + other.symbols_not_found,
            symbol_limit_reached=self.symbol_limit_reached + other.symbol_limit_reached,
            limit_reached_symbols=set(self.limit_reached_symbols)
            | set(other.limit_reached_symbols),
            no_depth_symbols=set(self.no_depth_symbols) | set(other.no_depth_symbols),
            server_disconnects=self.server_disconnects + other.server_disconnects,
            tickid_gaps=_add_counts(self.tickid_gaps, other.tickid_gaps),
            tickid_missing=_add_counts(self.tickid_missing, other.tickid_missing),
            duplicates=_add_counts(self.duplicates, other.duplicates),
        )

    @property
    def malformed_total(self) -> int:
        return sum(dict(self.malformed).values())

    @property
    def gaps_total(self) -> int:
        return sum(dict(self.tickid_gaps).values())

    @property
    def missing_total(self) -> int:
        return sum(dict(self.tickid_missing).values())

    @property
    def duplicates_total(self) -> int:
        return sum(dict(self.duplicates).values())

    def counters(self) -> dict[str, int]:
        """Flat, Prometheus-safe counter names -> values (totals only, no per-symbol keys)."""
        out = {
            "lines_total": self.lines,
            "summaries_total": self.summaries,
            "fundamentals_total": self.fundamentals,
            "timestamps_total": self.timestamps,
            "errors_total": self.errors,
            "level1_without_record_total": self.level1_without_record,
            "malformed_total": self.malformed_total,
            "symbols_not_found_total": self.symbols_not_found,
            "symbol_limit_reached_total": self.symbol_limit_reached,
            "no_depth_symbols": len(self.no_depth_symbols),
            "server_disconnects_total": self.server_disconnects,
            "tickid_gaps_total": self.gaps_total,
            "tickid_missing_total": self.missing_total,
            "duplicates_total": self.duplicates_total,
        }
        for kind, n in dict(self.records).items():
            out[f"records_{kind}_total"] = n
        for reason, n in dict(self.malformed).items():
            out[f"malformed_{_metric_name(reason)}_total"] = n
        for kind, n in dict(self.system).items():
            out[f"system_{_metric_name(kind)}_total"] = n
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view with the per-symbol details (for /admin/state and results)."""
        return {
            "lines": self.lines,
            "records": dict(self.records),
            "malformed": dict(self.malformed),
            "system": dict(self.system),
            "ignored": dict(self.ignored),
            "summaries": self.summaries,
            "fundamentals": self.fundamentals,
            "timestamps": self.timestamps,
            "errors": self.errors,
            "level1_without_record": self.level1_without_record,
            "symbols_not_found": self.symbols_not_found,
            "not_found": sorted(self.not_found),
            "symbol_limit_reached": self.symbol_limit_reached,
            "limit_reached_symbols": sorted(self.limit_reached_symbols),
            "no_depth_symbols": sorted(self.no_depth_symbols),
            "server_disconnects": self.server_disconnects,
            "tickid_gaps": {"count": self.gaps_total, "by_symbol": dict(self.tickid_gaps)},
            "tickid_missing": self.missing_total,
            "duplicates": {"count": self.duplicates_total, "by_symbol": dict(self.duplicates)},
        }


def _note_symbol(symbols: set[str], symbol: str) -> None:
    if len(symbols) < MAX_LISTED_SYMBOLS:
        symbols.add(symbol)


class Processor:
    """Parse + process for one connection: `handle(line, recv_ns)` -> records."""

    def __init__(self, states: SymbolStates, parser: LineParser | None = None) -> None:
        self.states = states
        self.parser = parser if parser is not None else LineParser()
        self.stats = ProcessStats()
        self.server_time_ns = 0
        """Last `T` message time (UTC ns), 0 before the first."""
        self._last_tick: dict[str, int] = {}
        self._carried: set[str] = set()
        """Symbols whose TickID baseline comes from a previous socket (see reset_connection)."""
        self._quotes = states.level1
        self._handlers: dict[type, Callable[[Any, int], list[FeedRecord]]] = {
            Level1Update: self._level1,
            DepthRow: self._depth,
            Malformed: self._malformed,
            ClearDepth: self._clear_depth,
            Timestamp: self._timestamp,
            SystemMessage: self._system,
            SymbolLimitReached: self._symbol_limit,
            FieldsetChanged: self._system_only,
            CurrentProtocol: self._system_only,
            CustomerInfo: self._system_only,
            Fundamental: self._fundamental,
            SymbolNotFound: self._not_found,
            NoDepth: self._no_depth,
            ErrorMessage: self._error,
            Ignored: self._ignored,
        }

    def reset_connection(self) -> None:
        """A new socket: default fieldset again. TickID baselines are kept but marked carried
        over: the first TickID of a symbol on the new socket reports what was missed while
        disconnected (a gap), or silently starts a new baseline if the feed's counter went
        back (a restarted server: no false duplicates)."""
        self.parser.reset()
        self._carried = set(self._last_tick)

    def handle(self, line: str, recv_ns: int) -> list[FeedRecord]:
        """One decoded line (no CRLF) received at `recv_ns` -> its records (often none)."""
        self.stats.lines += 1
        message: Message = self.parser.parse(line, recv_ns)
        if type(message) is Level1Update:
            return self._level1(message, recv_ns)
        return self._handlers[type(message)](message, recv_ns)

    def _level1(self, m: Level1Update, recv_ns: int) -> list[FeedRecord]:
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
            tick,
        ) = m  # one unpack: the hot path reads most fields
        state = self._quotes.get(symbol) or self.states.quote(symbol)
        state.update = m
        state.updates += 1
        if tick is not None:
            last_ticks = self._last_tick
            last = last_ticks.get(symbol)
            if self._carried and symbol in self._carried and last is not None:
                # First TickID since a reconnect. A summary carries the TickID of the latest
                # update, which itself was missed; an update's own TickID was received.
                self._carried.discard(symbol)
                missed = tick - last - (0 if summary else 1)
                if missed > 0:
                    self._note_gap(symbol, missed)
                last_ticks[symbol] = tick
            elif last is None or tick == last + 1 or summary:
                last_ticks[symbol] = tick
            elif tick > last:
                self._note_gap(symbol, tick - last - 1)
                last_ticks[symbol] = tick
            else:
                dup = self.stats.duplicates
                dup[symbol] = dup.get(symbol, 0) + 1
        if summary:
            self.stats.summaries += 1
            return []
        kind = _contents_cache.get(contents) or _classify_and_remember(contents)
        if kind[0] == _TRADE:
            self.stats.records["trade"] += 1
            return [
                FeedRecord(
                    symbol,
                    "trade",
                    tick or 0,
                    trade_ns or 0,
                    recv_ns,
                    0,
                    {
                        "price": trade_price,
                        "size": trade_size,
                        "market_center": trade_mc,
                        "conditions": conditions,
                        "total_volume": total_volume,
                        "bid": bid,
                        "ask": ask,
                        "contents": contents,
                    },
                )
            ]
        if kind[0] == _QUOTE:
            bid_ns = (bid_ns or 0) if kind[1] else 0
            ask_ns = (ask_ns or 0) if kind[2] else 0
            self.stats.records["quote"] += 1
            return [
                FeedRecord(
                    symbol,
                    "quote",
                    tick or 0,
                    bid_ns if bid_ns > ask_ns else ask_ns,
                    recv_ns,
                    0,
                    {
                        "bid": bid,
                        "bid_size": bid_size,
                        "ask": ask,
                        "ask_size": ask_size,
                        "bid_mc": bid_mc,
                        "ask_mc": ask_mc,
                    },
                )
            ]
        self.stats.level1_without_record += 1
        return []

    def _note_gap(self, symbol: str, missing: int) -> None:
        stats = self.stats
        stats.tickid_gaps[symbol] = stats.tickid_gaps.get(symbol, 0) + 1
        stats.tickid_missing[symbol] = stats.tickid_missing.get(symbol, 0) + missing

    def _depth(self, row: DepthRow, recv_ns: int) -> list[FeedRecord]:
        book = self.states.book(row.symbol)
        price = row.price
        if row.level_kind == "price":
            if row.action == "delete":
                book.remove_level(row.side, price or 0.0)
            else:
                book.put_level(row.side, price or 0.0, row.size, row.order_count, row.time_ns)
        elif row.action == "delete":
            removed = book.remove_row(row.order_id, row.mmid, row.side)
            if removed is not None:
                price = removed.price
        else:
            book.put_row(
                row.order_id,
                row.mmid,
                row.side,
                price or 0.0,
                row.size,
                row.time_ns,
                row.priority,
            )
        self.stats.records["depth"] += 1
        return [
            FeedRecord(
                row.symbol,
                "depth",
                book.next_seq(),
                row.time_ns,
                recv_ns,
                0,
                {
                    "action": row.action,
                    "side": row.side,
                    "mmid": row.mmid,
                    "order_id": row.order_id,
                    "price": price,
                    "size": row.size,
                    "order_count": row.order_count,
                    "level_kind": row.level_kind,
                },
            )
        ]

    def _clear_depth(self, m: ClearDepth, recv_ns: int) -> list[FeedRecord]:
        self._count_system("CLEAR DEPTH")
        book = self.states.book(m.symbol)
        level_kind = book.clear(m.side)
        self.stats.records["depth"] += 1
        payload = {
            "action": "clear",
            "side": m.side,
            "mmid": "",
            "order_id": 0,
            "price": None,
            "size": 0,
            "order_count": 0,
            "level_kind": level_kind,
        }
        return [FeedRecord(m.symbol, "depth", book.next_seq(), 0, recv_ns, 0, payload)]

    def _count_system(self, kind: str) -> None:
        self.stats.system[kind] = self.stats.system.get(kind, 0) + 1

    def _system(self, m: SystemMessage, recv_ns: int) -> list[FeedRecord]:
        self._count_system(m.kind)
        if m.kind == "SERVER DISCONNECTED":
            self.stats.server_disconnects += 1
        return []

    def _system_only(
        self, m: FieldsetChanged | CurrentProtocol | CustomerInfo, recv_ns: int
    ) -> list[FeedRecord]:
        kind = {
            FieldsetChanged: "CURRENT UPDATE FIELDNAMES",
            CurrentProtocol: "CURRENT PROTOCOL",
            CustomerInfo: "CUST",
        }[type(m)]
        self._count_system(kind)
        return []

    def _symbol_limit(self, m: SymbolLimitReached, recv_ns: int) -> list[FeedRecord]:
        self._count_system("SYMBOL LIMIT REACHED")
        self.stats.symbol_limit_reached += 1
        _note_symbol(self.stats.limit_reached_symbols, m.symbol)
        return []

    def _timestamp(self, m: Timestamp, recv_ns: int) -> list[FeedRecord]:
        self.stats.timestamps += 1
        self.server_time_ns = m.time_ns
        return []

    def _fundamental(self, m: Fundamental, recv_ns: int) -> list[FeedRecord]:
        self.stats.fundamentals += 1
        return []

    def _not_found(self, m: SymbolNotFound, recv_ns: int) -> list[FeedRecord]:
        self.stats.symbols_not_found += 1
        _note_symbol(self.stats.not_found, m.symbol)
        return []

    def _no_depth(self, m: NoDepth, recv_ns: int) -> list[FeedRecord]:
        _note_symbol(self.stats.no_depth_symbols, m.symbol)
        return []

    def _error(self, m: ErrorMessage, recv_ns: int) -> list[FeedRecord]:
        self.stats.errors += 1
        return []

    def _ignored(self, m: Ignored, recv_ns: int) -> list[FeedRecord]:
        self.stats.ignored[m.kind] = self.stats.ignored.get(m.kind, 0) + 1
        return []

    def _malformed(self, m: Malformed, recv_ns: int) -> list[FeedRecord]:
        self.stats.malformed[m.reason] = self.stats.malformed.get(m.reason, 0) + 1
        return []
