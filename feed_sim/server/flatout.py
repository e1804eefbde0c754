"""Flat-out sending (rate mode `flat`): Level 1 `Q` lines as fast as the clients read them.

Live rendering (`Level1State.apply_*` + `Fieldset.render`) costs ~3 us per message, which caps
one process near 300k msg/s. Flat out instead replays pre-rendered lines:

- Ring (feed_sim.server.rings): per (symbol, fieldset) the symbol's next `RING_SIZE` `Q`
  lines, rendered once with sentinels for the times and the TickID.
- Batch. Each call composes one batch: every watched active symbol gets `per_symbol`
  consecutive lines (a slice of its segment), the slices of one session are joined and every
  time sentinel is replaced in ONE `bytes.replace` with the batch's intended time, which in
  flat out is the moment the batch is composed (contract 2; pacing.py). Lateness (write time
  - intended) is recorded once per batch for all its messages; the stage counters (sent,
  first/last TickID per symbol, lines and bytes written) are bulk-updated per batch, exact.
- Flow control. A batch is composed only when every watching session has less than
  `HIGH_WATER_BYTES` unsent, so flat out runs at the pace of the slowest reader instead of
  piling bytes up; a session stuck above the mark for `STUCK_CUTOFF_S` is cut off and counted
  as a slow client (the same rule as the engine's buffer bound), so it cannot stall the rest.

How flat out differs from paced replay (by design; say so when quoting its figures):

- the ring repeats every `RING_SIZE` messages of a symbol: cumulative fields (Total Volume,
  Number of Trades Today, VWAP, High/Low, ...) restart from the ring's first line on each
  wrap; prices and sizes repeat;
- every non-empty time field of a line carries the batch time, including fields the message
  did not update (Bid Time on a trade, ...): all lines of a batch share one intended time;
- the live per-symbol state is not advanced while flat out runs; when flat out ends its next
  TickID is moved past the last flat-out TickID, so ids stay monotonic, and paced replay
  resumes from the live state where it stopped;
- symbols with a trades-only (`t`) watcher are rendered live (the engine's paced path with
  intended = now), since a trades-only stream needs per-message filtering;
- rings are built lazily, `BUILD_BUDGET_NS` of rendering per batch, so the loop stays
  responsive; a symbol sends nothing until its rings are built (the first second or two
  for 495 symbols);
- date fields come from the day the rings were built; rings are rebuilt when the US/Eastern
  day changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from contracts.sent import StageCounters, SymbolCount
from feed_sim.protocol.timefmt import local_ns
from feed_sim.server.market import SymbolMarket, Watcher
from feed_sim.server.rings import RING_SIZE, SymbolRings

log = logging.getLogger(__name__)

BATCH_MESSAGES = 16_384
"""Messages per batch over all symbols (~2 MB, one transport write, with a 15-field fieldset)."""
HIGH_WATER_BYTES = 4 * 1024 * 1024
STUCK_CUTOFF_S = 5.0
BUILD_BUDGET_NS = 20_000_000

_NS_PER_DAY = 86_400 * 1_000_000_000


class FlatOut:
    """Composes flat-out batches for a `FeedEngine` (see the module docstring)."""

    def __init__(
        self,
        clock_ns: Callable[[], int],
        ring_size: int = RING_SIZE,
        batch_messages: int = BATCH_MESSAGES,
        high_water_bytes: int = HIGH_WATER_BYTES,
    ) -> None:
        if ring_size < 2 or len(str(ring_size)) != len(str(ring_size - 1)) + 1:
            raise ValueError("ring_size must be a power of ten >= 10")
        self.clock_ns = clock_ns
        self.ring_size = ring_size
        self.batch_messages = batch_messages
        self.high_water_bytes = high_water_bytes
        self.symbols: dict[str, SymbolRings] = {}
        self._day = -1
        self._stuck_since: dict[Watcher, int] = {}

    def finish(self) -> None:
        """Flat out ends: move each live state's next TickID past the last one sent."""
        for rings in self.symbols.values():
            state = rings.market.state
            state.next_tick_id = max(state.next_tick_id, rings.next_tick)
        self.symbols.clear()

    def blocked(self, sessions: Collection[Watcher], now_ns: int) -> tuple[bool, list[Watcher]]:
        """(any watching session over the high-water mark, sessions stuck too long to keep)."""
        blocked = False
        stuck: list[Watcher] = []
        still: dict[Watcher, int] = {}
        for session in sessions:
            transport = session.transport
            if transport is None or transport.get_write_buffer_size() <= self.high_water_bytes:
                continue
            since = self._stuck_since.get(session, now_ns)
            if now_ns - since > STUCK_CUTOFF_S * 1e9:
                stuck.append(session)
            else:
                blocked = True
                still[session] = since
        self._stuck_since = still
        return blocked, stuck

    def compose(
        self,
        markets: dict[str, SymbolMarket],
        watched: list[str],
        counters: StageCounters,
        now_ns: int,
        live: Callable[[str], bool],
    ) -> tuple[dict[Watcher, list[bytes]], int]:
        """One batch: per session the byte slices to send, and the messages it holds.

        `live(symbol)` renders and queues one message of a symbol the ring cannot serve
        (trades-only watchers) through the engine's paced path; True if it was sent."""
        day = local_ns(now_ns) // _NS_PER_DAY
        if day != self._day:
            for rings in self.symbols.values():
                rings.rings.clear()
            self._day = day
        per_symbol = max(1, self.batch_messages // max(1, len(watched)))
        build_deadline = time.perf_counter_ns() + BUILD_BUDGET_NS
        built = 0  # one ring is always built, however late: a stalled process still progresses
        pieces: dict[Watcher, list[bytes]] = {}
        level1 = counters.level1
        messages = 0
        for symbol in watched:
            market = markets[symbol]
            found = self.symbols.get(symbol)
            if found is None or found.market is not market:
                found = self.symbols[symbol] = SymbolRings(market)
            rings = found
            watchers = market.level1_watchers
            if any(watchers.values()):  # a trades-only watcher: live rendering
                state = market.state
                state.next_tick_id = max(state.next_tick_id, rings.next_tick)
                for _ in range(per_symbol):
                    messages += live(symbol)
                rings.next_tick = state.next_tick_id
                continue
            ready = True
            for session in watchers:
                if session.fieldset in rings.rings:
                    continue
                if (built and time.perf_counter_ns() > build_deadline) or (
                    rings.build(session.fieldset, now_ns, self.ring_size) is None
                ):
                    ready = False  # out of budget, or nothing to send
                    break
                built += 1
            if not ready:
                continue
            tick = rings.next_tick
            ring_of = rings.rings
            for session in watchers:
                out = pieces.get(session)
                if out is None:
                    out = pieces[session] = []
                ring_of[session.fieldset].take(tick, per_symbol, out)
            rings.next_tick = tick + per_symbol
            counts = level1.get(symbol)
            if counts is None:
                counts = level1[symbol] = SymbolCount()
            if counts.sent == 0:
                counts.first_seq = tick
            counts.sent += per_symbol
            counts.last_seq = tick + per_symbol - 1
            messages += per_symbol
        return pieces, messages


__all__ = ["FlatOut"]
