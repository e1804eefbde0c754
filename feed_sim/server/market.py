"""Per-symbol market of the simulator: Level 1 state, Level 2 book, fundamentals and watchers.

`SymbolMarket.next_level1()` / `next_depth()` advance through the symbol's tape in a cycle and
apply the event to the state with the message's intended send time (contract 2), so every
time field written afterwards carries that time, rebased to now. Level 1 events are applied
with their wire texts precomputed (`Level1Events.wire_row`) to a lazy `Level1State`: derived
fields are formatted only when a fieldset that shows them is rendered.

Only updates are sent (IQConnect sends Level 1 updates on change): a quote that changes nothing
on the top of book takes no TickID and is skipped. `Level1Events` drops such rows when it is
built; the one left that state can make a no-op is the tape's first quote, replayed onto the
primed state or, after the cursor wraps, onto the state the tape's end left.
`next_level1` then takes the next event instead, so every message sent has a trade (C/E/O)
or bid/ask (b/a) code and a time field with its intended time, and TickIDs stay consecutive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from feed_sim.protocol.fields import Fieldset
from feed_sim.protocol.fundamentals import FundamentalInfo
from feed_sim.protocol.level1 import Level1State
from feed_sim.protocol.level2 import DepthBook, DepthChange
from feed_sim.server.symbol_events import DepthEventRow, DepthEvents, Level1Events, TradeRow
from feed_sim.tape.model import TapeEvent


class Watcher(Protocol):
    """A client session as the engine and a market see it (`feed_sim.server.sessions`): it
    takes queued lines, flushes them to its socket, can be cut off."""

    port_name: str
    client_id: int
    fieldset: Fieldset
    transport: asyncio.Transport | None

    def __hash__(self) -> int: ...

    def queue(self, data: bytes) -> None: ...

    def flush(self) -> int: ...

    def abort(self) -> None: ...


class DepthWatcher(Watcher, Protocol):
    """A Level 2 session: book changes in the form its watch asked for."""

    def queue_depth(
        self,
        line: bytes,
        row: DepthEventRow,
        market: SymbolMarket,
        intended_ns: int | None = None,
        change: DepthChange | None = None,
    ) -> None: ...

    def resend_snapshot(self, market: SymbolMarket) -> None: ...


@dataclass
class SymbolMarket:
    """Everything the simulator knows and serves about one symbol."""

    symbol: str
    index: int
    level1_events: Level1Events
    depth_events: DepthEvents
    fundamentals: FundamentalInfo
    state: Level1State
    book: DepthBook
    level1_cursor: int = 0
    depth_cursor: int = 0
    depth_seq: int = 0
    level1_watchers: dict[Watcher, bool] = field(default_factory=dict)
    """Session -> trades only (`t` watch)."""
    level2_watchers: set[DepthWatcher] = field(default_factory=set)

    @classmethod
    def from_events(
        cls, symbol: str, index: int, events: list[TapeEvent], name: str = "", prime_ns: int = 0
    ) -> SymbolMarket:
        return cls.from_parts(
            symbol,
            index,
            Level1Events.from_tape(events),
            DepthEvents.from_tape(events),
            name,
            prime_ns,
        )

    @classmethod
    def from_parts(
        cls,
        symbol: str,
        index: int,
        level1: Level1Events,
        depth: DepthEvents,
        name: str = "",
        prime_ns: int = 0,
    ) -> SymbolMarket:
        first = level1.first_price()
        fundamentals = FundamentalInfo(
            symbol=symbol, company_name=name.upper(), exchange_id=5, listed_market=5
        )
        market = cls(
            symbol,
            index,
            level1,
            depth,
            fundamentals,
            Level1State(symbol, close=first, lazy=True),
            DepthBook(symbol),
        )
        market._prime(prime_ns)
        return market

    def _prime(self, now_ns: int) -> None:
        """Give the state a quote and a last trade, and the book its first rows, so the
        summary after a watch shows a live market (nothing is sent or counted here)."""
        have_quote = have_trade = False
        for i in range(min(len(self.level1_events), 2000)):
            row = self.level1_events.row(i)
            if isinstance(row, TradeRow) and not have_trade:
                self.state.apply_trade(
                    now_ns,
                    row.price,
                    row.size,
                    row.market_center,
                    row.conditions,
                    row.basis,
                    row.aggressor,
                )
                have_trade = True
            elif not isinstance(row, TradeRow) and not have_quote:
                self.state.apply_quote(
                    now_ns, row.bid, row.bid_size, row.ask, row.ask_size, row.bid_mc, row.ask_mc
                )
                have_quote = True
            if have_quote and have_trade:
                break
        self.state.message_contents = ""
        seen: set[tuple[str, str]] = set()
        for i in range(min(len(self.depth_events), 400)):
            depth = self.depth_events.row(i)
            if depth.action == "update" and (depth.mmid, depth.side) not in seen:
                self.book.apply(
                    depth.side,
                    "update",
                    depth.price,
                    depth.size,
                    now_ns,
                    mmid=depth.mmid,
                    order_id=depth.order_id,
                )
                seen.add((depth.mmid, depth.side))

    @property
    def watched(self) -> bool:
        return bool(self.level1_watchers or self.level2_watchers)

    def next_level1(self, intended_ns: int, skip_unchanged: bool = True) -> tuple[bool, int] | None:
        """Apply the next Level 1 update at `intended_ns`; (is_trade, tick_id), or None when
        there is nothing to send: no Level 1 events, or the event changed nothing and
        `skip_unchanged` is False (tape timing: each slot is its own event), or a whole
        cycle of events changed nothing. With `skip_unchanged` (fixed rates, rings, flat out)
        an event that changes nothing is passed over for the next one."""
        events = self.level1_events
        count = len(events)
        if not count:
            return None
        cursor = self.level1_cursor
        state = self.state
        row = events.wire_row(cursor, state.precision)
        self.level1_cursor = cursor + 1 if cursor + 1 < count else 0
        if row[0]:
            state.apply_trade_wire(intended_ns, row)
            return True, state.next_tick_id - 1
        if state.apply_quote_wire(intended_ns, row):
            return False, state.next_tick_id - 1
        if not skip_unchanged:
            return None
        return self._next_changed_level1(intended_ns, count)

    def _next_changed_level1(self, intended_ns: int, count: int) -> tuple[bool, int] | None:
        """`next_level1` after a quote that changed nothing: the following events up to a
        whole cycle, until one is an update (rare: see the module docstring)."""
        events = self.level1_events
        state = self.state
        for _ in range(count - 1):
            cursor = self.level1_cursor
            row = events.wire_row(cursor, state.precision)
            self.level1_cursor = cursor + 1 if cursor + 1 < count else 0
            if row[0]:
                state.apply_trade_wire(intended_ns, row)
                return True, state.next_tick_id - 1
            if state.apply_quote_wire(intended_ns, row):
                return False, state.next_tick_id - 1
        return None

    def next_depth(self, intended_ns: int) -> tuple[DepthEventRow, DepthChange] | None:
        """Apply the next Level 2 event at `intended_ns` to the book."""
        events = self.depth_events
        if not len(events):
            return None
        row = events.row(self.depth_cursor)
        self.depth_cursor = (self.depth_cursor + 1) % len(events)
        change = self.book.apply(
            row.side,
            row.action,
            row.price,
            row.size,
            intended_ns,
            mmid=row.mmid,
            order_id=row.order_id,
        )
        self.depth_seq += 1
        return row, change
