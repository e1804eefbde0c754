"""Per-stage lag histograms of the collector (contracts 3 and 6) and their batch recorder.

All values are microseconds (ns differences floor-divided by 1000) in `contracts.hdr` histograms.
For one record: intended = the exchange time feed_sim stamped (contract 2), recv = the SUT's
socket-read stamp, produced = the SUT's hand-over to the Kafka producer, append = the broker's
append time (the record's timestamp on a `message.timestamp.type=LogAppendTime` topic; whole
milliseconds), observed = when the collector saw the record.

The SUT's figures END at the broker's append time when the record has one, so how fast the
harness reads does not enter them; on a CreateTime topic (a user's own topic) they end when the
collector saw the record, and the run says so (`basis` counts the records of each kind):

- `total`: end - intended. CO-corrected: measured from when the message was SCHEDULED, so time
  a message waited anywhere (generator, socket buffer, SUT queues, producer queue) counts.
- `total_uncorrected`: end - recv. The number a system measuring from its own reception
  would report: it starts the clock when the SUT read the message, so time the message spent
  queued BEFORE the read (a stalled reader, a full socket buffer) is invisible -- coordinated
  omission. Unavailable (not recorded, counted in `unavailable`) when the record has no recv_ns.
- per hop: `network` = recv - intended, `processing` = produced - recv, `kafka` = end -
  produced (the SUT's producer queue, the network and the append); each recorded only for
  records carrying both of its stamps.
- `delivery` = observed - append: the harness's own consumer (fetch wait, its batching). It is
  the harness's cost, never part of the SUT's figures; unavailable without an append time.

A stamp of 0 means "absent" (e.g. a Nasdaq Level 2 delete has no exchange time). Negative
values (clock skew between hosts or stamps) are clamped to 0 and counted in `negative`; values
above 60 s are clamped to 60 s and counted in `overflow`. The append time is the start of its
millisecond, so a figure ending at it reads up to 1 ms low, and a `kafka` hop inside the same
millisecond as the produce call can come out up to 1 ms below 0: such values are recorded as 0
without counting as negative (they are within the stamp's resolution, not skew).

`StageMeasure` is pure data: it merges (`a + b`, histograms added, never percentiles averaged)
and round-trips through JSON (`to_json` / `from_json`) to move between processes. It also
holds 1 s interval histograms of `total` and `total_uncorrected`, keyed by the second of the
record's end time and kept packed (`contracts.hdr.PackedHistogram`: encoded once when the
second is sealed, about 1 KB each, decoded when read) for the .hlog.

`Recorder` fills a StageMeasure from numpy batches with `contracts.hdr.prepare` and
`record_prepared`, one vectorised step per histogram and batch (an interval histogram reuses
its measure's bucket indices); it keeps the current interval seconds open and seals
older ones, and answers the live "last second p99" for progress output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

from contracts.hdr import (
    PackedHistogram,
    PreparedBatch,
    decode,
    encode,
    new_histogram,
    percentiles,
    prepare,
    record_prepared,
)
from harness.collector.batching import PendingColumns

MEASURES: tuple[str, ...] = (
    "total",
    "total_uncorrected",
    "network",
    "processing",
    "kafka",
    "delivery",
)
SUT_HOPS: tuple[str, ...] = ("network", "processing", "kafka")
"""The hops of the SUT's total lag (contract 3); `delivery` is the harness's own."""
BASES: tuple[str, ...] = ("append", "observed")
"""What a record's figures end at: the broker's append time, or the collector's observation."""
APPEND_RESOLUTION_NS = 1_000_000
"""The broker's append time is whole milliseconds."""
INTERVAL_MEASURES: tuple[str, ...] = ("total", "total_uncorrected")
NS_PER_S = 1_000_000_000
OPEN_SECONDS = 2
"""Interval seconds kept open behind the newest observed second before they are sealed."""

I64 = npt.NDArray[np.int64]


def _zeros() -> dict[str, int]:
    return dict.fromkeys(MEASURES, 0)


def _histograms() -> dict[str, HdrHistogram]:
    return {m: new_histogram() for m in MEASURES}


def _intervals() -> dict[str, dict[int, PackedHistogram]]:
    return {m: {} for m in INTERVAL_MEASURES}


def _bases() -> dict[str, int]:
    return dict.fromkeys(BASES, 0)


def _sum(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


@dataclass
class StageMeasure:
    """Lag histograms of one stage (or a part of one, from one collector process)."""

    label: str = ""
    histograms: dict[str, HdrHistogram] = field(default_factory=_histograms)
    intervals: dict[str, dict[int, PackedHistogram]] = field(default_factory=_intervals)
    """measure -> epoch second of the record's end time -> its interval histogram."""
    messages: int = 0
    negative: dict[str, int] = field(default_factory=_zeros)
    overflow: dict[str, int] = field(default_factory=_zeros)
    unavailable: dict[str, int] = field(default_factory=_zeros)
    basis: dict[str, int] = field(default_factory=_bases)
    """Records whose figures end at the broker's append time / at the collector's observation."""
    first_observed_ns: int = 0
    last_observed_ns: int = 0

    def __add__(self, other: StageMeasure) -> StageMeasure:
        total = StageMeasure(self.label or other.label)
        for name in MEASURES:
            total.histograms[name].add(self.histograms[name])
            total.histograms[name].add(other.histograms[name])
        for name in INTERVAL_MEASURES:
            mine, theirs = self.intervals[name], other.intervals[name]
            for second in sorted(mine.keys() | theirs.keys()):
                a, b = mine.get(second), theirs.get(second)
                added = a + b if a is not None and b is not None else a or b
                assert added is not None
                total.intervals[name][second] = added
        total.messages = self.messages + other.messages
        total.negative = _sum(self.negative, other.negative)
        total.overflow = _sum(self.overflow, other.overflow)
        total.unavailable = _sum(self.unavailable, other.unavailable)
        total.basis = _sum(self.basis, other.basis)
        firsts = [t for t in (self.first_observed_ns, other.first_observed_ns) if t]
        total.first_observed_ns = min(firsts) if firsts else 0
        total.last_observed_ns = max(self.last_observed_ns, other.last_observed_ns)
        return total

    def interval_histograms(self, name: str = "total") -> list[tuple[int, HdrHistogram]]:
        """(epoch second, histogram) of one interval measure, in time order."""
        return [(s, packed.histogram()) for s, packed in sorted(self.intervals[name].items())]

    def percentiles(self) -> dict[str, dict[str, int]]:
        """P50/P95/P99/P99.9/max/count (us) of every measure."""
        return {name: percentiles(hist) for name, hist in self.histograms.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "messages": self.messages,
            "histograms": {name: encode(hist) for name, hist in self.histograms.items()},
            "intervals": {
                name: {str(s): packed.code for s, packed in sorted(table.items())}
                for name, table in self.intervals.items()
            },
            "negative": dict(self.negative),
            "overflow": dict(self.overflow),
            "unavailable": dict(self.unavailable),
            "basis": dict(self.basis),
            "first_observed_ns": self.first_observed_ns,
            "last_observed_ns": self.last_observed_ns,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageMeasure:
        intervals = _intervals()
        for name, table in data["intervals"].items():
            intervals[name] = {int(s): PackedHistogram(code) for s, code in table.items()}
        return cls(
            label=data["label"],
            histograms={name: decode(code) for name, code in data["histograms"].items()},
            intervals=intervals,
            messages=data["messages"],
            negative={**_zeros(), **data["negative"]},
            overflow={**_zeros(), **data["overflow"]},
            unavailable={**_zeros(), **data["unavailable"]},
            basis={**_bases(), **data.get("basis", {})},
            first_observed_ns=data["first_observed_ns"],
            last_observed_ns=data["last_observed_ns"],
        )


class Recorder:
    """Records batches of stamps into a StageMeasure; `take()` hands it over and starts anew."""

    def __init__(
        self, label: str = "", clock: Callable[[], int] = time.time_ns, flush_at: int = 4096
    ) -> None:
        self._measure = StageMeasure(label)
        self._clock = clock
        self._open: dict[str, dict[int, HdrHistogram]] = {m: {} for m in INTERVAL_MEASURES}
        self._pending = PendingColumns(flush_at)

    @property
    def measure(self) -> StageMeasure:
        """The measure so far (pending records flushed; open intervals not yet sealed)."""
        self.flush()
        return self._measure

    def record(
        self,
        exchange_ns: npt.ArrayLike,
        recv_ns: npt.ArrayLike,
        produced_ns: npt.ArrayLike,
        observed_ns: npt.ArrayLike,
        append_ns: npt.ArrayLike = 0,
    ) -> None:
        """Record one batch of records' stamps (ns since the epoch; 0 = absent; `append_ns` 0 =
        the record has no broker append time: its figures end at `observed_ns`).

        Small batches are buffered up to `flush_at` records (numpy's per-call cost dominates
        below that); `measure`, `take()` and `live_p99_us()` flush first.
        """
        stamps = (exchange_ns, recv_ns, produced_ns, observed_ns, append_ns)
        n = max(np.size(a) for a in stamps)
        if n == 0:
            return
        columns = tuple(np.broadcast_to(np.asarray(a, dtype=np.int64), (n,)) for a in stamps)
        if self._pending.add(columns, n):
            self.flush()

    def flush(self) -> None:
        """Record the buffered batches now."""
        joined = self._pending.take()
        if joined is not None:
            self._record(*joined)

    def _record(self, exchange: I64, recv: I64, produced: I64, observed: I64, append: I64) -> None:
        n = observed.size
        measure = self._measure
        measure.messages += n
        if not measure.first_observed_ns:
            measure.first_observed_ns = int(observed.min())
        measure.last_observed_ns = max(measure.last_observed_ns, int(observed.max()))

        has_ex, has_recv, has_prod, has_append = (
            exchange != 0,
            recv != 0,
            produced != 0,
            append != 0,
        )
        appended = int(np.count_nonzero(has_append))
        measure.basis["append"] += appended
        measure.basis["observed"] += n - appended
        end = observed if appended == 0 else np.where(has_append, append, observed)
        # Values ending at a whole-ms append time may be up to 1 ms below their true value.
        tolerance = None if appended == 0 else has_append
        total = self._values("total", end - exchange, has_ex, tolerance)
        uncorrected = self._values("total_uncorrected", end - recv, has_recv, tolerance)
        self._values("network", recv - exchange, has_ex & has_recv)
        self._values("processing", produced - recv, has_recv & has_prod)
        self._values("kafka", end - produced, has_prod, tolerance)
        self._values("delivery", observed - append, has_append, tolerance)
        seconds = end // NS_PER_S
        self._interval("total", total, seconds, has_ex)
        self._interval("total_uncorrected", uncorrected, seconds, has_recv)
        self._seal(int(seconds.max()) - OPEN_SECONDS)

    def _values(
        self,
        name: str,
        diff_ns: I64,
        present: npt.NDArray[np.bool_],
        coarse: npt.NDArray[np.bool_] | None = None,
    ) -> PreparedBatch:
        """Record diff_ns (where present) as us; returns the recorded batch (for intervals).
        `coarse`: records whose value ends at a whole-ms append time; their values in
        (-1 ms, 0) are within the stamp's resolution and recorded as 0, not as negative."""
        if coarse is not None:
            within = coarse & (diff_ns < 0) & (diff_ns > -APPEND_RESOLUTION_NS)
            if within.any():
                diff_ns = np.where(within, 0, diff_ns)
        all_present = bool(present.all())
        values: I64 = (diff_ns if all_present else diff_ns[present]) // 1000
        if not all_present:
            self._measure.unavailable[name] += int(present.size - values.size)
        batch = prepare(values)
        if values.size == 0:
            return batch
        record_prepared(self._measure.histograms[name], batch)
        negative = int(np.count_nonzero(values < 0)) if batch.clamped else 0
        self._measure.negative[name] += negative
        self._measure.overflow[name] += batch.clamped - negative
        return batch

    def _interval(
        self, name: str, batch: PreparedBatch, seconds: I64, present: npt.NDArray[np.bool_]
    ) -> None:
        if batch.values.size == 0:
            return
        secs = seconds if batch.values.size == seconds.size else seconds[present]
        first, last = int(secs.min()), int(secs.max())
        if first == last:
            record_prepared(self._open_histogram(name, first), batch)
            return
        for second in np.unique(secs):
            record_prepared(self._open_histogram(name, int(second)), batch.subset(secs == second))

    def _open_histogram(self, name: str, second: int) -> HdrHistogram:
        table = self._open[name]
        hist = table.get(second)
        if hist is None:
            sealed = self._measure.intervals[name].pop(second, None)
            hist = new_histogram()
            if sealed is not None:  # a straggler for a sealed second: reopen it
                hist.add(sealed.histogram())
            table[second] = hist
        return hist

    def _seal(self, before: int | None = None) -> None:
        """Encode open interval histograms of seconds <= `before` (all if None)."""
        for name, table in self._open.items():
            for second in [s for s in table if before is None or s <= before]:
                self._measure.intervals[name][second] = PackedHistogram.pack(table.pop(second))

    def live_p99_us(self) -> int | None:
        """P99 (us) of `total` over the last completed second of the clock, if any arrived."""
        self.flush()
        second = self._clock() // NS_PER_S - 1
        hist = self._open["total"].get(second)
        if hist is not None:
            return int(hist.get_value_at_percentile(99))
        sealed = self._measure.intervals["total"].get(second)
        return None if sealed is None else int(sealed.histogram().get_value_at_percentile(99))

    def take(self, label: str | None = None) -> StageMeasure:
        """The measure recorded so far (intervals sealed); recording continues in a new one."""
        self.flush()
        self._seal()
        done = self._measure
        self._measure = StageMeasure(done.label if label is None else label)
        return done
