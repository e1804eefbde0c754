"""HDR histograms of the project (contract 6): microseconds, 1 us .. 60 s, 3 significant digits.

`new_histogram()` makes one; `record_many()` records a numpy batch in one vectorised step
(hdrh's `record_value` costs about 2 us per call, too much for the 50k msg/s hot paths of
feed_sim, the reference core and the collector); `encode`/`decode`/`merged` move histograms
between processes, which are merged, never averaged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3


def new_histogram() -> HdrHistogram:
    """An empty histogram with the project's range and precision."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


_LAYOUT = new_histogram()
"""A histogram of the project's layout, for its bucket arithmetic only."""


def _counts_indices(hist: HdrHistogram, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """hdrh's `_counts_index_for`, vectorised (same bucket arithmetic as the Java original)."""
    masked = values | np.int64(hist.sub_bucket_mask)
    _, bit_length = np.frexp(masked.astype(np.float64))
    bucket = bit_length.astype(np.int64) - (
        hist.unit_magnitude + hist.sub_bucket_half_count_magnitude + 1
    )
    sub_bucket = values >> (bucket + hist.unit_magnitude)
    base = (bucket + 1) << hist.sub_bucket_half_count_magnitude
    indices: npt.NDArray[np.int64] = base + (sub_bucket - hist.sub_bucket_half_count)
    return indices


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch of values (us) clamped to the range with their bucket indices: `record_many`'s
    work before the counts change, reusable for every histogram of the same layout (every
    `new_histogram()` has the same buckets)."""

    values: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    low: int
    high: int
    clamped: int
    """How many values were clamped (negative, or above HIGHEST_US)."""

    def subset(self, mask: npt.NDArray[np.bool_]) -> PreparedBatch:
        values = self.values[mask]
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        return PreparedBatch(values, self.indices[mask], low, high, 0)


def prepare(values_us: npt.ArrayLike, layout: HdrHistogram = _LAYOUT) -> PreparedBatch:
    """Clamp a batch to the range and compute its bucket indices in `layout`'s buckets (the
    project's by default; see `record_many`)."""
    values = np.asarray(values_us, dtype=np.int64)
    if values.size == 0:
        return PreparedBatch(values, values, 0, 0, 0)
    low, high = int(values.min()), int(values.max())
    clamped = 0
    if low < 0 or high > HIGHEST_US:
        clamped = int(np.count_nonzero((values < 0) | (values > HIGHEST_US)))
        values = np.clip(values, 0, HIGHEST_US)
        low, high = max(low, 0), min(high, HIGHEST_US)
    return PreparedBatch(values, _counts_indices(layout, values), low, high, clamped)


def record_prepared(hist: HdrHistogram, batch: PreparedBatch) -> None:
    """Add a prepared batch to `hist` (a histogram of the layout it was prepared for)."""
    if batch.values.size == 0:
        return
    _add_counts(np.ctypeslib.as_array(hist.counts), batch.indices)
    hist.total_count += int(batch.values.size)
    hist.min_value = min(hist.min_value, batch.low)
    hist.max_value = max(hist.max_value, batch.high)


def record_many(hist: HdrHistogram, values_us: npt.ArrayLike) -> int:
    """Record a batch of values (us). Values above the range are clamped to its top, values
    below 1 us (including negative clock skew) to 0 us; returns how many were clamped."""
    batch = prepare(values_us, hist)
    record_prepared(hist, batch)
    return batch.clamped


def _add_counts(counts: npt.NDArray[np.uint64], indices: npt.NDArray[np.int64]) -> None:
    """counts[i] += 1 for each index: a bincount over the indices' span only (np.add.at is
    slow on the ctypes-backed counts of hdrh, ~20x here)."""
    first = int(indices.min())
    tally = np.bincount(indices - first)
    counts[first : first + tally.size] += tally.astype(counts.dtype)


def encode(hist: HdrHistogram) -> str:
    """Compressed, base64 text form (the standard HdrHistogram encoding)."""
    data: bytes = hist.encode()
    return data.decode("ascii")


def decode(text: str | bytes) -> HdrHistogram:
    """A histogram from `encode()` output (or any standard encoded histogram)."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    hist: HdrHistogram = HdrHistogram.decode(raw)
    return hist


class PackedHistogram:
    """A histogram kept in its encoded form (a few hundred bytes, where the counts of one of
    the project's layout take 139 KB) and decoded when read: what a run keeps of each 1 s
    interval. A sum (`+`) holds the added counts and is encoded once, when its `code` is
    first asked for, so merging N parts decodes each part once and encodes nothing between."""

    __slots__ = ("_code", "_hist")

    def __init__(self, code: str | None = None, hist: HdrHistogram | None = None) -> None:
        if code is None and hist is None:
            raise ValueError("a packed histogram needs its code or its histogram")
        self._code = code
        self._hist = hist

    @classmethod
    def pack(cls, hist: HdrHistogram) -> PackedHistogram:
        """Encode `hist` now and keep only the code."""
        return cls(code=encode(hist))

    @property
    def code(self) -> str:
        """The encoded form (encoded at most once)."""
        if self._code is None:
            assert self._hist is not None
            self._code = encode(self._hist)
        return self._code

    def histogram(self) -> HdrHistogram:
        """The histogram: decoded from the code on every call (kept only for a sum), so
        hold the result while reading it."""
        return self._hist if self._hist is not None else decode(self.code)

    def __add__(self, other: PackedHistogram) -> PackedHistogram:
        total = new_histogram()
        total.add(self.histogram())
        total.add(other.histogram())
        return PackedHistogram(hist=total)

    def __eq__(self, other: object) -> bool:
        """Same counts (compared decoded: two encodings of one histogram may differ)."""
        if not isinstance(other, PackedHistogram):
            return NotImplemented
        if self._code is not None and self._code == other._code:
            return True
        mine, theirs = self.histogram(), other.histogram()
        return bool(
            mine.get_total_count() == theirs.get_total_count()
            and np.array_equal(
                np.ctypeslib.as_array(mine.counts), np.ctypeslib.as_array(theirs.counts)
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedHistogram({self.histogram().get_total_count()} values)"


def merged(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    """One histogram holding the counts of all `histograms`."""
    total = new_histogram()
    for hist in histograms:
        total.add(hist)
    return total


def percentiles(hist: HdrHistogram, points: Iterable[float] = (50, 95, 99, 99.9)) -> dict[str, int]:
    """Values (us) at the given percentiles plus max and count, keyed like "p99" / "p99.9"."""
    result = {f"p{p:g}": int(hist.get_value_at_percentile(p)) for p in points}
    result["max"] = int(hist.get_max_value()) if hist.get_total_count() else 0
    result["count"] = int(hist.get_total_count())
    return result


def count_above(hist: HdrHistogram, value_us: int) -> int:
    """Samples in buckets wholly above `value_us`'s bucket (a lower bound of the samples >
    value_us: samples equivalent to it within the histogram's precision are not counted)."""
    clipped = np.array([min(max(value_us, 0), HIGHEST_US)], dtype=np.int64)
    index = int(_counts_indices(hist, clipped)[0])
    counts = np.ctypeslib.as_array(hist.counts)
    return int(counts[index + 1 : hist.counts_len].sum())
