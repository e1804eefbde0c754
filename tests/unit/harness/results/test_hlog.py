"""The .hlog writer: golden text, and read back by hdrh's HistogramLogReader with tags."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from contracts.hdr import new_histogram, record_many
from harness.results.hlog import HlogWriter, append_intervals, header_lines, interval_line

START_NS = 1_750_000_000_123_456_789
SECOND = START_NS // 1_000_000_000


def _hist(seed: int, n: int = 2000) -> HdrHistogram:
    hist = new_histogram()
    rng = np.random.default_rng(seed)
    record_many(hist, rng.lognormal(7 + seed % 3, 1.0, n).astype(np.int64))
    return hist


def test_golden_header_and_line() -> None:
    hist = new_histogram()
    record_many(hist, np.array([1000, 2000, 123_456]))
    assert header_lines(1_750_000_000_000_000_000) == [
        "#[Histogram log format version 1.3]",
        "#[StartTime: 1750000000.000 (seconds since epoch), 2025-06-15T15:06:40.000Z]",
        "#[BaseTime: 1750000000.000 (seconds since epoch)]",
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"',
    ]
    line = interval_line("stage-1", 1_750_000_002_000_000_000, 10**9, hist, 1_750_000_000 * 10**9)
    head, payload = line.rsplit(",", 1)
    assert head == "Tag=stage-1,2.000,1.000,123.519"  # max: 123,456 us -> bucket top, in ms
    assert payload.startswith("HISTF")


def test_bad_tags_are_rejected() -> None:
    stream = io.StringIO()
    writer = HlogWriter(stream, START_NS)
    for tag in ("", "stage 1", "a,b"):
        try:
            writer.write(tag, START_NS, 10**9, new_histogram())
        except ValueError:
            continue
        raise AssertionError(tag)


def test_two_tags_read_back_with_hdrh(tmp_path: Path) -> None:
    path = tmp_path / "lag.hlog"
    originals = {
        "stage-1": [(SECOND + i, _hist(i)) for i in range(3)],
        "stage-2": [(SECOND + 3 + i, _hist(10 + i, 5000)) for i in range(4)],
    }
    for tag, intervals in originals.items():  # appended stage by stage
        append_intervals(path, START_NS, tag, intervals)
    text = path.read_text()
    assert text.count("#[StartTime:") == 1 and text.count("Tag=stage-2,") == 4

    reader = HistogramLogReader(str(path), new_histogram())
    got: dict[str, list[HdrHistogram]] = {"stage-1": [], "stage-2": []}
    while (hist := reader.get_next_interval_histogram()) is not None:
        got[hist.get_tag()].append(hist)
    reader.close()
    assert reader.get_start_time_sec() == SECOND
    for tag, intervals in originals.items():
        assert len(got[tag]) == len(intervals)
        for (second, original), back in zip(intervals, got[tag], strict=True):
            assert back.get_total_count() == original.get_total_count()
            for p in (50, 90, 99, 99.9, 100):
                assert back.get_value_at_percentile(p) == original.get_value_at_percentile(p)
            assert abs(back.get_start_time_stamp() / 1000 - second) < 0.002  # absolute ms
        total_back, total_orig = new_histogram(), new_histogram()
        for (_, original), back in zip(intervals, got[tag], strict=True):
            total_back.add(back)
            total_orig.add(original)
        assert total_back.get_value_at_percentile(99) == total_orig.get_value_at_percentile(99)
