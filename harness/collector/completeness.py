"""Completeness by sequence (contract 5): received, gaps, duplicates, reordering; loss vs sent.

Sequences are tracked per key (symbol, family). The family of a record comes from its type
through a configurable table (the scenario's `record_mapping.families`); by default the
reference core's trade and quote records share one family ("l1", both carry the symbol's
IQFeed TickID) and depth has its own ("l2", the core's per-symbol Level 2 counter). A record
without a type (a core that stamps none) is "l1".

Per key the state is exact and compact: lowest and highest seq seen, counters, and the HOLES
-- missing seq ranges inside [low, high] as sorted, disjoint (first, last) intervals -- rather
than the seqs seen. An in-order stream (the normal case) has no holes; a gap is one interval
whatever its size; a late arrival fills or splits one. Memory bound: at most `MAX_HOLES`
intervals per key (about 100 bytes each, so <= ~25 KB per key and ~25 MB for 990 keys in the
worst case, 0 when nothing is lost or reordered). Past the bound the lowest holes are
forgotten: their seqs stay counted as gaps (`forgotten`), and a later arrival at or below the
highest forgotten seq is counted `ambiguous` (a late fill or a duplicate; it cannot tell).

`SequenceTracker.update()` is vectorised per window of records, whatever their order: the
state of all keys is numpy arrays (counters, highest seq, and the seqs seen as spans), and
gaps, duplicates and late arrivals are found with a fixed number of array steps (records of a
key arrive from several topics, so out of order is the normal case). `KeyState.note()` is the
same rule one record at a time (the reference of the tests). `snapshot()` gives `Completeness`,
pure data that merges (`a + b`, exact unless holes were forgotten) and serialises to JSON.

What arrived is set against what feed_sim says it sent in harness.collector.loss.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise, repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from contracts.records import REFERENCE_FAMILIES, UNTYPED_FAMILY
from harness.collector.batching import PendingColumns

MAX_HOLES = 256
FAMILY_SLOTS = 16
"""Families a tracker keeps apart; types beyond that share the family OTHER_FAMILY."""
OTHER_FAMILY = "other"

Key = tuple[str, str]
Span = tuple[int, int]
_FRESH = np.iinfo(np.int64).min


@dataclass
class KeyState:
    """What arrived for one (symbol, family) key."""

    received: int = 0
    """Records, duplicates included."""
    unique: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    """Unique records that arrived after a higher seq of their key (late fills)."""
    low: int = 0
    high: int = -1
    holes: list[Span] = field(default_factory=list)
    forgotten: int = 0
    forgotten_upto: int = _FRESH
    ambiguous: int = 0

    @property
    def gaps(self) -> int:
        """Seqs missing inside [low, high]."""
        return sum(b - a + 1 for a, b in self.holes) + self.forgotten

    def seen_spans(self) -> list[Span]:
        """Seq ranges received (forgotten holes count as received here)."""
        if self.received == 0:
            return []
        spans, cur = [], self.low
        for a, b in self.holes:
            if a > cur:
                spans.append((cur, a - 1))
            cur = b + 1
        if cur <= self.high:
            spans.append((cur, self.high))
        return spans

    def received_within(self, first: int, last: int) -> int:
        """Distinct seqs received inside [first, last]."""
        return sum(max(0, min(b, last) - max(a, first) + 1) for a, b in self.seen_spans())

    def note(self, seq: int) -> None:
        """Apply one arrival (the per-record path)."""
        self.received += 1
        if self.received == 1:
            self.low = self.high = seq
            self.unique = 1
            return
        if seq > self.high:
            if seq > self.high + 1:
                self.holes.append((self.high + 1, seq - 1))
            self.high = seq
        elif seq < self.low:
            if seq < self.low - 1:
                self.holes.insert(0, (seq + 1, self.low - 1))
            self.low = seq
            self.out_of_order += 1
        else:
            i = bisect_right(self.holes, (seq, math.inf)) - 1
            if i >= 0 and self.holes[i][0] <= seq <= self.holes[i][1]:
                a, b = self.holes[i]
                self.holes[i : i + 1] = [s for s in ((a, seq - 1), (seq + 1, b)) if s[0] <= s[1]]
                self.out_of_order += 1
            elif seq <= self.forgotten_upto:
                self.ambiguous += 1
                return
            else:
                self.duplicates += 1
                return
        self.unique += 1
        self._cap()

    def _cap(self) -> None:
        while len(self.holes) > MAX_HOLES:
            a, b = self.holes.pop(0)
            self.forgotten += b - a + 1
            self.forgotten_upto = max(self.forgotten_upto, b)

    def __add__(self, other: KeyState) -> KeyState:
        if other.received == 0:
            return _copy(self)
        if self.received == 0:
            return _copy(other)
        mine, theirs = self.seen_spans(), other.seen_spans()
        union = _union(mine + theirs)
        size = sum(b - a + 1 for a, b in union)
        overlap = _size(mine) + _size(theirs) - size
        low, high = min(self.low, other.low), max(self.high, other.high)
        total = KeyState(
            received=self.received + other.received,
            unique=self.unique + other.unique - overlap,
            duplicates=self.duplicates + other.duplicates + overlap,
            out_of_order=self.out_of_order + other.out_of_order,
            low=low,
            high=high,
            holes=_complement(union, low, high),
            forgotten=self.forgotten + other.forgotten,
            forgotten_upto=max(self.forgotten_upto, other.forgotten_upto),
            ambiguous=self.ambiguous + other.ambiguous,
        )
        total._cap()
        return total

    def to_json(self) -> list[Any]:
        return [
            self.received,
            self.unique,
            self.duplicates,
            self.out_of_order,
            self.low,
            self.high,
            [list(h) for h in self.holes],
            self.forgotten,
            self.forgotten_upto,
            self.ambiguous,
        ]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> KeyState:
        rec, uniq, dup, ooo, low, high, holes, forgotten, upto, amb = data
        return cls(rec, uniq, dup, ooo, low, high, [(a, b) for a, b in holes], forgotten, upto, amb)


def _copy(state: KeyState) -> KeyState:
    return KeyState.from_json(state.to_json())


def _size(spans: Iterable[Span]) -> int:
    return sum(b - a + 1 for a, b in spans)


def _union(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _complement(spans: list[Span], low: int, high: int) -> list[Span]:
    holes, cur = [], low
    for a, b in spans:
        if a > cur:
            holes.append((cur, a - 1))
        cur = b + 1
    if cur <= high:
        holes.append((cur, high))
    return holes


@dataclass
class Completeness:
    """Per-key sequence states of a stage; pure data, merges with `+`."""

    keys: dict[Key, KeyState] = field(default_factory=dict)
    malformed: int = 0

    def __add__(self, other: Completeness) -> Completeness:
        total = Completeness(malformed=self.malformed + other.malformed)
        for key in self.keys.keys() | other.keys.keys():
            total.keys[key] = self.keys.get(key, KeyState()) + other.keys.get(key, KeyState())
        return total

    def totals(self) -> dict[str, int]:
        """Sums over all keys."""
        names = ("received", "unique", "duplicates", "out_of_order", "gaps", "ambiguous")
        sums = {n: sum(int(getattr(s, n)) for s in self.keys.values()) for n in names}
        sums["keys"] = len(self.keys)
        sums["malformed"] = self.malformed
        return sums

    def to_json(self) -> dict[str, Any]:
        return {
            "malformed": self.malformed,
            "keys": {f"{s}|{f}": state.to_json() for (s, f), state in sorted(self.keys.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Completeness:
        keys: dict[Key, KeyState] = {}
        for name, state in data["keys"].items():
            symbol, _, family = name.rpartition("|")
            keys[(symbol, family)] = KeyState.from_json(state)
        return cls(keys, int(data["malformed"]))


SEQ_BITS = 43
"""Tracked sequence numbers are 0 .. 2**43 - 2: a key id (symbol x family slot, < 2**20) and a
sequence number pack into one int64 that orders by (key, seq)."""
SEQ_LIMIT = (1 << SEQ_BITS) - 1
KEY_LIMIT = 1 << (63 - SEQ_BITS)
I64 = npt.NDArray[np.int64]


def _segment_starts(keys: I64) -> npt.NDArray[np.bool_]:
    starts = np.empty(keys.size, dtype=bool)
    if keys.size:
        starts[0] = True
        np.not_equal(keys[1:], keys[:-1], out=starts[1:])
    return starts


class SequenceTracker:
    """Tracks per-key sequences from decoded batches; `snapshot()` gives Completeness.

    The state is held in numpy arrays for all keys at once, and every buffered window of
    records is applied with a fixed number of vectorised steps whatever its order: records of
    one key arrive from several topics (trades and quotes share the TickID) and partitions, so
    arrivals out of order are the normal case, not an exception to fall back from. Per key:
    counters (received, unique, duplicates, out_of_order, ambiguous, forgotten), the highest
    seq, and the seqs seen as sorted, disjoint spans (the holes are the gaps between them; at
    most MAX_HOLES, the lowest forgotten beyond that, as `KeyState` does). A seq outside
    0 .. 2**43 - 2 cannot be tracked and counts as malformed.
    """

    def __init__(
        self, families: Mapping[str, str] = REFERENCE_FAMILIES, flush_at: int = 4096
    ) -> None:
        self.families = dict(families)
        self._symbol_ids: dict[str, int] = {}
        self._symbols: list[str] = []
        self._family_ids: dict[str, int] = {}
        """Record type -> family slot."""
        self._family_names: list[str] = []
        self._counts = {name: np.zeros(0, dtype=np.int64) for name in self.COUNTERS}
        self._high = np.zeros(0, dtype=np.int64)
        self._forgotten_upto = np.zeros(0, dtype=np.int64)
        self._span_start = np.zeros(0, dtype=np.int64)
        """Packed (key << SEQ_BITS | first seq) of each span of seqs seen, sorted."""
        self._span_end = np.zeros(0, dtype=np.int64)
        """Packed (key << SEQ_BITS | last seq) of the same spans."""
        self.malformed = 0
        self._pending = PendingColumns(flush_at)

    COUNTERS = ("received", "unique", "duplicates", "out_of_order", "ambiguous", "forgotten")

    def _symbol_id(self, symbol: str) -> int:
        known = self._symbol_ids.get(symbol)
        if known is not None:
            return known
        sid = self._symbol_ids[symbol] = len(self._symbols)
        self._symbols.append(symbol)
        if sid * FAMILY_SLOTS >= self._high.size:
            grow = max(64, len(self._symbols)) * FAMILY_SLOTS
            if self._high.size + grow > KEY_LIMIT:
                raise ValueError(f"more than {KEY_LIMIT // FAMILY_SLOTS} symbols to track")
            for name, counts in self._counts.items():
                self._counts[name] = np.concatenate([counts, np.zeros(grow, np.int64)])
            self._high = np.concatenate([self._high, np.full(grow, _FRESH, np.int64)])
            self._forgotten_upto = np.concatenate(
                [self._forgotten_upto, np.full(grow, _FRESH, np.int64)]
            )
        return sid

    def _family_id(self, type_: str) -> int:
        known = self._family_ids.get(type_)
        if known is not None:
            return known
        family = self.families.get(type_) or (type_ or UNTYPED_FAMILY)
        if family not in self._family_names:
            if len(self._family_names) == FAMILY_SLOTS - 1:
                family = OTHER_FAMILY
            if family not in self._family_names:
                self._family_names.append(family)
        fid = self._family_ids[type_] = self._family_names.index(family)
        return fid

    def key_ids(self, symbols: Sequence[str], types: Sequence[str]) -> I64:
        """Key id of each record: symbol id * FAMILY_SLOTS + family slot (registering new ones)."""
        n = len(symbols)
        sids = np.fromiter(map(self._symbol_ids.get, symbols, repeat(-1)), np.int64, n)
        if n and sids.min() < 0:
            sids = np.fromiter(map(self._symbol_id, symbols), np.int64, n)
        fids = np.fromiter(map(self._family_ids.get, types, repeat(-1)), np.int64, n)
        if n and fids.min() < 0:
            fids = np.fromiter(map(self._family_id, types), np.int64, n)
        kid: I64 = sids * FAMILY_SLOTS + fids
        return kid

    def _key(self, kid: int) -> Key:
        return self._symbols[kid // FAMILY_SLOTS], self._family_names[kid % FAMILY_SLOTS]

    def update(
        self, symbols: Sequence[str], types: Sequence[str], seq: npt.ArrayLike, malformed: int = 0
    ) -> None:
        """Apply one batch of records (arrival order).

        Batches are buffered up to `flush_at` records (numpy's per-call cost dominates below
        that; the arrays are kept, not copied, until then); `snapshot()` flushes first."""
        self.malformed += malformed
        seqs = np.asarray(seq, dtype=np.int64)
        if seqs.size == 0:
            return
        kid = self.key_ids(symbols, types)
        trackable = (seqs >= 0) & (seqs < SEQ_LIMIT)
        if not trackable.all():
            self.malformed += int(seqs.size - np.count_nonzero(trackable))
            kid, seqs = kid[trackable], seqs[trackable]
        if self._pending.add((kid, seqs), seqs.size):
            self.flush()

    def flush(self) -> None:
        """Apply the buffered batches now, in arrival order."""
        joined = self._pending.take()
        if joined is not None:
            self._apply(*joined)

    def _apply(self, kid: I64, seqs: I64) -> None:
        """One window of records in arrival order (the class docstring), with one sort: by
        (key, seq), stable, so each (key, seq)'s first arrival leads its group."""
        n = kid.size
        if n == 0:
            return
        order = np.argsort((kid << SEQ_BITS) | seqs, kind="stable")
        keys, seq = kid[order], seqs[order]
        packed = (keys << SEQ_BITS) | seq
        # Seen before this window: inside a span of the key.
        seen = np.zeros(n, dtype=bool)
        if self._span_start.size:
            at = np.searchsorted(self._span_start, packed, side="right") - 1
            inside = at >= 0
            seen[inside] = packed[inside] <= self._span_end[at[inside]]
        first = np.ones(n, dtype=bool)  # the first arrival of its (key, seq) in the window
        np.not_equal(packed[1:], packed[:-1], out=first[1:])
        new = first & ~seen
        ambiguous = seen & (seq <= self._forgotten_upto[keys])
        duplicate = ~new & ~ambiguous
        # Late: a higher seq of the key arrived before it (earlier in the window: the least
        # arrival index among the key's higher seqs, a suffix minimum; or in a past window).
        by_key = (keys << 32) | order
        after = np.minimum.accumulate(by_key[::-1])[::-1]  # keys ascend: no carry across keys
        later = np.full(n, np.iinfo(np.int64).max)
        later[:-1] = after[1:]
        same_key = (later >> 32) == keys
        late = (same_key & ((later & 0xFFFFFFFF) < order)) | (seq < self._high[keys])
        counts, size = self._counts, self._high.size
        for name, mask in (
            ("received", None),
            ("unique", new),
            ("duplicates", duplicate),
            ("ambiguous", ambiguous),
            ("out_of_order", new & late),
        ):
            chosen = keys if mask is None else keys[mask]
            if chosen.size:
                counts[name] += np.bincount(chosen, minlength=size)[:size]
        last = np.ones(n, dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=last[:-1])
        self._high[keys[last]] = np.maximum(self._high[keys[last]], seq[last])
        self._add_spans(packed[new])

    def _add_spans(self, points: I64) -> None:
        """Merge sorted new packed seqs into the spans (runs, then overlapping / adjacent)."""
        if points.size == 0:
            return
        breaks = np.flatnonzero(np.diff(points) != 1) + 1
        run_start = points[np.concatenate(([0], breaks))]
        run_end = points[np.concatenate((breaks - 1, [points.size - 1]))]
        at = np.searchsorted(self._span_start, run_start)  # both sorted: merge, not sort
        start = np.insert(self._span_start, at, run_start)
        end = np.insert(self._span_end, at, run_end)
        reach = np.maximum.accumulate(end)  # keys ascend: a key's spans never reach the next
        begins = np.ones(start.size, dtype=bool)
        begins[1:] = start[1:] > reach[:-1] + 1
        heads = np.flatnonzero(begins)
        self._span_start = start[heads]
        self._span_end = np.maximum.reduceat(end, heads)
        self._bound_holes()

    def _bound_holes(self) -> None:
        """At most MAX_HOLES holes a key: the lowest beyond that are forgotten (KeyState's
        rule): their seqs count as gaps (`forgotten`), a later arrival in them as ambiguous."""
        span_keys = self._span_start >> SEQ_BITS
        per_key = np.bincount(span_keys)
        crowded = np.flatnonzero(per_key > MAX_HOLES + 1)
        if crowded.size == 0:
            return
        keep = np.ones(self._span_start.size, dtype=bool)
        firsts = np.searchsorted(span_keys, crowded)
        for key, first in zip(crowded.tolist(), firsts.tolist(), strict=True):
            excess = int(per_key[key]) - 1 - MAX_HOLES
            last = first + excess  # spans first..last become one
            gaps = self._span_start[first + 1 : last + 1] - self._span_end[first:last] - 1
            self._counts["forgotten"][key] += int(gaps.sum())
            upto = int(self._span_start[last] & SEQ_LIMIT) - 1
            self._forgotten_upto[key] = max(int(self._forgotten_upto[key]), upto)
            self._span_end[first] = self._span_end[last]
            keep[first + 1 : last + 1] = False
        self._span_start, self._span_end = self._span_start[keep], self._span_end[keep]

    def snapshot(self) -> Completeness:
        """Pure-data copy of the state so far (buffered batches applied first)."""
        self.flush()
        keys: dict[Key, KeyState] = {}
        span_keys = self._span_start >> SEQ_BITS
        bounds = [*np.flatnonzero(_segment_starts(span_keys)).tolist(), span_keys.size]
        counts = {name: values.tolist() for name, values in self._counts.items()}
        starts = (self._span_start & SEQ_LIMIT).tolist()
        ends = (self._span_end & SEQ_LIMIT).tolist()
        for first, stop in pairwise(bounds):
            kid = int(span_keys[first])
            keys[self._key(kid)] = KeyState(
                received=counts["received"][kid],
                unique=counts["unique"][kid],
                duplicates=counts["duplicates"][kid],
                out_of_order=counts["out_of_order"][kid],
                low=starts[first],
                high=ends[stop - 1],
                holes=[(ends[i] + 1, starts[i + 1] - 1) for i in range(first, stop - 1)],
                forgotten=counts["forgotten"][kid],
                forgotten_upto=int(self._forgotten_upto[kid]),
                ambiguous=counts["ambiguous"][kid],
            )
        return Completeness(dict(sorted(keys.items())), self.malformed)
