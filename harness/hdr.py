"""HDR histograms of the project (contract 6): microseconds, 1 us .. 60 s, 3 significant digits.

`new_histogram()` makes one; `record_many()` records a numpy batch in one vectorised step
(hdrh's `record_value` costs about 2 us per call, too much for the 50k msg/s hot paths of
feed_sim, the reference core and the collector); `encode`/`decode`/`merged` move histograms
between processes, which are merged, never averaged.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3


def new_histogram() -> HdrHistogram:
    """An empty histogram with the project's range and precision."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


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


def record_many(hist: HdrHistogram, values_us: npt.ArrayLike) -> int:
    """Record a batch of values (us). Values above the range are clamped to its top, values
    below 1 us (including negative clock skew) to 0 us; returns how many were clamped."""
    values = np.asarray(values_us, dtype=np.int64)
    if values.size == 0:
        return 0
    clamped = int(np.count_nonzero((values < 0) | (values > HIGHEST_US)))
    values = np.clip(values, 0, HIGHEST_US)
    indices = _counts_indices(hist, values)
    counts = np.ctypeslib.as_array(hist.counts)
    counts += np.bincount(indices, minlength=hist.counts_len)[: hist.counts_len].astype(
        counts.dtype
    )
    hist.total_count += int(values.size)
    hist.min_value = min(hist.min_value, int(values.min()))
    hist.max_value = max(hist.max_value, int(values.max()))
    return clamped


def encode(hist: HdrHistogram) -> str:
    """Compressed, base64 text form (the standard HdrHistogram encoding)."""
    data: bytes = hist.encode()
    return data.decode("ascii")


def decode(text: str | bytes) -> HdrHistogram:
    """A histogram from `encode()` output (or any standard encoded histogram)."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    hist: HdrHistogram = HdrHistogram.decode(raw)
    return hist


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
