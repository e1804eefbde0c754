"""Flat-out sending (rate mode `flat`): Level 1 `Q` lines as fast as the clients read them.

Live rendering (`Level1State.apply_*` + `Fieldset.render`) costs ~3 us per message, which caps
one process near 300k msg/s. Flat out instead replays pre-rendered lines:

- Ring. Per (symbol, fieldset) a ring of `RING_SIZE` consecutive `Q` lines is rendered once,
  by replaying the symbol's tape through a scratch copy of its live market (the same
  `SymbolMarket.next_level1` code as paced replay, from the live state and cursor at the
  moment flat out first sent for the symbol). Every time field (the 8 `HH:MM:SS.ffffff`
  fields) is written as a fixed-width SENTINEL; the TickID field as a one-byte SENTINEL
  followed by the id's low `RING_DIGITS` digits, zero-padded.
- TickID. A message's TickID `t` picks ring line `t % RING_SIZE`; ids continue from the live
  state's next TickID, one per message, so they stay consecutive and monotonic per symbol
  across ring wraps. For `t >= RING_SIZE`, `str(t) == str(t // RING_SIZE) + low digits`, so a
  whole ring "segment" of ids is made by ONE `bytes.replace` of the TickID sentinel with
  `str(t // RING_SIZE)` (once per `RING_SIZE` messages of the symbol); the first segment
  (ids below `RING_SIZE`, unpadded) is patched line by line, once.
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

import copy
import dataclasses
import logging
import time
from array import array
from collections.abc import Callable, Collection

from contracts.sent import StageCounters, SymbolCount
from feed_sim.protocol.fields import FIELD_INDEX, UPDATE_FIELDS, FieldKind, Fieldset
from feed_sim.protocol.level1 import I_TICK_ID, Level1State
from feed_sim.protocol.timefmt import hhmmss_micro, local_ns
from feed_sim.server.market import SymbolMarket, Watcher

log = logging.getLogger(__name__)

RING_DIGITS = 3
RING_SIZE = 10**RING_DIGITS
"""Lines per ring; a power of ten so TickIDs split into a per-segment prefix + fixed digits."""
BATCH_MESSAGES = 16_384
"""Messages per batch over all symbols (~2 MB, one transport write, with a 15-field fieldset)."""
HIGH_WATER_BYTES = 4 * 1024 * 1024
STUCK_CUTOFF_S = 5.0
BUILD_BUDGET_NS = 20_000_000

TIME_SENTINEL = "\x01" * len("HH:MM:SS.ffffff")
TIME_SENTINEL_BYTES = TIME_SENTINEL.encode("latin-1")
TICK_SENTINEL = "\x02"
TICK_SENTINEL_BYTES = TICK_SENTINEL.encode("latin-1")
TIME_SLOTS = tuple(FIELD_INDEX[name] for name, kind in UPDATE_FIELDS if kind == FieldKind.TIME_US)
_NS_PER_DAY = 86_400 * 1_000_000_000


def _clone_state(state: Level1State) -> Level1State:
    clone = copy.copy(state)
    clone.values = list(state.values)
    return clone


class Ring:
    """`size` pre-rendered `Q` lines of one symbol in one fieldset, indexed by TickID % size."""

    __slots__ = ("_segment", "_segment_q", "offsets", "size", "template", "tick_fields")

    def __init__(self, lines: list[bytes], tick_fields: int) -> None:
        self.size = len(lines)
        self.template = b"".join(lines)
        self.offsets = array("q", [0] * (self.size + 1))
        total = 0
        for j, line in enumerate(lines):
            total += len(line)
            self.offsets[j + 1] = total
        self.tick_fields = tick_fields
        """How many TickID fields a line carries (0: the fieldset has none)."""
        self._segment_q = -1
        self._segment: tuple[bytes, array[int] | None, int] = (self.template, None, 0)

    def segment(self, q: int) -> tuple[bytes, array[int] | None, int]:
        """(bytes, explicit offsets or None, extra bytes per line) of TickIDs q*size.."""
        if not self.tick_fields:
            return self._segment
        if q != self._segment_q:
            self._segment = self._first_segment() if q == 0 else self._patched(q)
            self._segment_q = q
        return self._segment

    def _patched(self, q: int) -> tuple[bytes, array[int] | None, int]:
        prefix = str(q).encode("ascii")
        delta = (len(prefix) - len(TICK_SENTINEL_BYTES)) * self.tick_fields
        return self.template.replace(TICK_SENTINEL_BYTES, prefix), None, delta

    def _first_segment(self) -> tuple[bytes, array[int] | None, int]:
        """TickIDs below `size` have no prefix and no zero padding: patched per line, once."""
        offsets = array("q", [0] * (self.size + 1))
        lines = []
        total = 0
        width = len(str(self.size - 1))
        for j in range(self.size):
            line = self.template[self.offsets[j] : self.offsets[j + 1]]
            line = line.replace(TICK_SENTINEL_BYTES + b"%0*d" % (width, j), b"%d" % j)
            lines.append(line)
            total += len(line)
            offsets[j + 1] = total
        return b"".join(lines), offsets, 0

    def line(self, tick: int) -> bytes:
        """The line of TickID `tick` (paced replay from rings, feed_sim/server/paced_rings.py)."""
        q, j = divmod(tick, self.size)
        blob, explicit, delta = self.segment(q)
        if explicit is None:
            offsets = self.offsets
            return blob[offsets[j] + j * delta : offsets[j + 1] + (j + 1) * delta]
        return blob[explicit[j] : explicit[j + 1]]

    def take(self, tick: int, count: int, out: list[bytes]) -> None:
        """Append the lines of TickIDs tick..tick+count-1 to `out` (one slice per segment)."""
        size = self.size
        while count > 0:
            q, j = divmod(tick, size)
            m = min(count, size - j)
            blob, explicit, delta = self.segment(q)
            if explicit is None:
                offsets = self.offsets
                out.append(blob[offsets[j] + j * delta : offsets[j + m] + (j + m) * delta])
            else:
                out.append(blob[explicit[j] : explicit[j + m]])
            tick += m
            count -= m


class SymbolRings:
    """Flat-out state of one symbol: the live snapshot its rings replay from, its rings and
    the next TickID to send."""

    __slots__ = ("_start_cursor", "_start_state", "_start_tick", "market", "next_tick", "rings")

    def __init__(self, market: SymbolMarket) -> None:
        self.market = market
        self._start_state = _clone_state(market.state)
        self._start_cursor = market.level1_cursor
        self._start_tick = market.state.next_tick_id
        """The TickID of the snapshot's first message: line `(_start_tick + k) % size` of every
        ring is the k-th message replayed from the snapshot, whenever the ring is built."""
        self.next_tick = self._start_tick
        self.rings: dict[Fieldset, Ring] = {}

    def build(self, fieldset: Fieldset, now_ns: int, size: int = RING_SIZE) -> Ring | None:
        """Render the ring of `fieldset`: the next `size` messages of the live replay from the
        snapshot, time fields as sentinels, line `j` carrying TickID = j (mod size).

        Messages are updates only (`SymbolMarket.next_level1` passes over events that change
        nothing). None when the replay has nothing to send (a tape whose every event leaves
        the snapshot as it is): then the symbol sends nothing, as it would live."""
        market = self.market
        scratch = dataclasses.replace(
            market,
            state=_clone_state(self._start_state),
            level1_cursor=self._start_cursor,
            level1_watchers={},
            level2_watchers=set(),
        )
        values = scratch.state.values
        width = len(str(size - 1))
        lines: list[bytes] = [b""] * size
        tick = self._start_tick  # not next_tick: a ring built later must line up too
        for _ in range(size):
            if scratch.next_level1(now_ns) is None:
                return None
            for slot in TIME_SLOTS:
                if values[slot]:
                    values[slot] = TIME_SENTINEL
            j = tick % size
            values[I_TICK_ID] = f"{TICK_SENTINEL}{j:0{width}d}"
            lines[j] = fieldset.render("Q", values)
            tick += 1
        ring = Ring(lines, fieldset.indexes.count(I_TICK_ID))
        self.rings[fieldset] = ring
        return ring


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


def patch_times(pieces: list[bytes], intended_ns: int) -> bytes:
    """The batch of one session: its slices joined, every time sentinel set to the batch's
    intended time (one `bytes.replace` over the batch)."""
    data = b"".join(pieces)
    return data.replace(TIME_SENTINEL_BYTES, hhmmss_micro(intended_ns).encode("ascii"))


__all__ = ["RING_SIZE", "FlatOut", "Ring", "SymbolRings", "patch_times"]
