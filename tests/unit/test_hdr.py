"""The vectorised HDR recorder agrees with hdrh's own record_value, value for value; packed
histograms keep their encoding and add up."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.hdr import (
    HIGHEST_US,
    PackedHistogram,
    count_above,
    decode,
    encode,
    merged,
    new_histogram,
    percentiles,
    record_many,
)


def _reference(values: list[int]) -> object:
    hist = new_histogram()
    for value in values:
        hist.record_value(value)
    return hist


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=HIGHEST_US), min_size=1, max_size=300))
def test_record_many_matches_record_value(values: list[int]) -> None:
    fast = new_histogram()
    assert record_many(fast, np.array(values)) == 0
    slow = _reference(values)
    assert fast.equals(slow)
    assert fast.get_total_count() == len(values)
    for p in (0, 50, 90, 99, 99.9, 100):
        assert fast.get_value_at_percentile(p) == slow.get_value_at_percentile(p)  # type: ignore[attr-defined]


def test_out_of_range_values_are_clamped_and_counted() -> None:
    hist = new_histogram()
    assert record_many(hist, [-5, 10, HIGHEST_US * 3]) == 2
    assert hist.get_total_count() == 3
    assert hist.get_max_value() >= HIGHEST_US


def test_encode_decode_and_merge_keep_counts() -> None:
    a, b = new_histogram(), new_histogram()
    record_many(a, np.arange(1, 1001))
    record_many(b, np.full(1000, 20_000))
    both = merged([decode(encode(a)), decode(encode(b))])
    assert both.get_total_count() == 2000
    summary = percentiles(both)
    assert summary["count"] == 2000
    assert both.values_are_equivalent(summary["p99"], 20_000)
    assert summary["p50"] <= 1001


def test_count_above_counts_only_buckets_wholly_above_the_value() -> None:
    hist = new_histogram()
    record_many(hist, np.array([10, 99_000, 100_000, 100_010, 150_000, 2_000_000]))
    # 100_000 and 100_010 share a bucket at 3 significant digits: neither is "above" 100 ms.
    assert count_above(hist, 100_000) == 2
    assert count_above(hist, 5) == 6
    assert count_above(hist, 60_000_000) == 0
    assert count_above(new_histogram(), 1) == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=200))
def test_record_many_into_another_layout_uses_its_buckets(values: list[int]) -> None:
    from hdrh.histogram import HdrHistogram

    fast, slow = HdrHistogram(1, 10_000_000, 2), HdrHistogram(1, 10_000_000, 2)
    record_many(fast, np.array(values))
    for value in values:
        slow.record_value(value)
    assert fast.equals(slow)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(min_value=-5, max_value=HIGHEST_US + 5), min_size=1, max_size=200),
    st.integers(min_value=0, max_value=2**32),
)
def test_a_prepared_subset_records_as_its_values_would(values: list[int], seed: int) -> None:
    from contracts.hdr import prepare, record_prepared

    mask = np.random.default_rng(seed).random(len(values)) < 0.5
    batch = prepare(np.array(values))
    via_subset, direct = new_histogram(), new_histogram()
    record_prepared(via_subset, batch.subset(mask))
    record_many(direct, np.clip(np.array(values), 0, HIGHEST_US)[mask])
    assert via_subset.equals(direct)
    assert via_subset.get_total_count() == int(mask.sum())
    assert via_subset.get_max_value() == direct.get_max_value()


def test_a_packed_histogram_keeps_its_code_and_a_sum_is_encoded_once() -> None:
    parts = []
    for shift in (0, 1_000, 50_000):
        hist = new_histogram()
        record_many(hist, np.arange(1, 501) + shift)
        parts.append(PackedHistogram.pack(hist))
    first = parts[0]
    assert first.code == encode(first.histogram())  # packed as it was given
    total = parts[0] + parts[1] + parts[2]
    assert total.histogram().get_total_count() == 1_500
    assert total.histogram().get_max_value() >= 50_500
    again = PackedHistogram(total.code)  # the sum's one encoding reads back the same
    assert again == total and again.histogram().get_total_count() == 1_500
    assert first != total
    with pytest.raises(ValueError):
        PackedHistogram()
