"""Pre-rendered Level 1 lines: the rings both the flat-out and the paced ring paths send from.

Per (symbol, fieldset) a ring of `RING_SIZE` consecutive `Q` lines is rendered once,
by replaying the symbol's tape through a scratch copy of its live market (the same
`SymbolMarket.next_level1` code as paced replay, from the live state and cursor at the
moment flat out first sent for the symbol). Every time field (the 8 `HH:MM:SS.ffffff`
fields) is written as a fixed-width SENTINEL; the TickID field as a one-byte SENTINEL
followed by the id's low `RING_DIGITS` digits, zero-padded.

A message's TickID `t` picks ring line `t % RING_SIZE`; ids continue from the live
state's next TickID, one per message, so they stay consecutive and monotonic per symbol
across ring wraps. For `t >= RING_SIZE`, `str(t) == str(t // RING_SIZE) + low digits`, so a
whole ring "segment" of ids is made by ONE `bytes.replace` of the TickID sentinel with
`str(t // RING_SIZE)` (once per `RING_SIZE` messages of the symbol); the first segment
(ids below `RING_SIZE`, unpadded) is patched line by line, once.

`patch_times` sets every time sentinel of a batch to the batch's intended time in one
`bytes.replace`.
"""

from __future__ import annotations

import copy
import dataclasses
from array import array

from feed_sim.protocol.fields import FIELD_INDEX, UPDATE_FIELDS, FieldKind, Fieldset
from feed_sim.protocol.level1 import I_TICK_ID, Level1State
from feed_sim.protocol.timefmt import hhmmss_micro
from feed_sim.server.market import SymbolMarket

RING_DIGITS = 3
RING_SIZE = 10**RING_DIGITS
"""Lines per ring; a power of ten so TickIDs split into a per-segment prefix + fixed digits."""
TIME_SENTINEL = "\x01" * len("HH:MM:SS.ffffff")
TIME_SENTINEL_BYTES = TIME_SENTINEL.encode("latin-1")
TICK_SENTINEL = "\x02"
TICK_SENTINEL_BYTES = TICK_SENTINEL.encode("latin-1")
TIME_SLOTS = tuple(FIELD_INDEX[name] for name, kind in UPDATE_FIELDS if kind == FieldKind.TIME_US)


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


def patch_times(pieces: list[bytes], intended_ns: int) -> bytes:
    """The batch of one session: its slices joined, every time sentinel set to the batch's
    intended time (one `bytes.replace` over the batch)."""
    data = b"".join(pieces)
    return data.replace(TIME_SENTINEL_BYTES, hhmmss_micro(intended_ns).encode("ascii"))
