"""Interval histograms to `.hlog` files in the standard HdrHistogram log format (contract 6).

Written the way the Java `HistogramLogWriter` (format version 1.3) writes them, so the Java
`HistogramLogReader` / HistogramLogProcessor and hdrh's `HistogramLogReader` both read them:

    #[Histogram log format version 1.3]
    #[StartTime: 1750000000.000 (seconds since epoch), 2025-06-15T15:06:40.000Z]
    #[BaseTime: 1750000000.000 (seconds since epoch)]
    "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
    Tag=stage-1,0.000,1.000,12.345,HISTFAAAA...

Timestamps are seconds relative to BaseTime, with 3 decimals; StartTime = BaseTime = the
run's start rounded down to the whole second (see `HlogWriter`); Interval_Max is
the interval's max value divided by the max-value unit ratio (1000: our histograms are in us,
so the column is in ms, as Java's default ratio turns ns into ms), 3 decimals.

Why not hdrh's own `hdrh.log.HistogramLogWriter` (0.10.8):
- `output_start_time` crashes: it passes milliseconds to `datetime.fromtimestamp` (ValueError,
  year out of range) and calls a non-existent `.iso_format` (AttributeError).
- Interval_Max is `get_max_value() // ratio`: floor division, so the max loses its fraction
  (123.519 ms is logged as 123.000) and, with the default ratio 1e6 meant for ns histograms,
  every interval of our us histograms under 1 s logs a max of 0.000. Java divides in floating
  point and prints `%.3f`.
- It never writes `Tag=`: the histogram's tag (`set_tag`) is ignored, so stage tags are lost
  (its reader does parse `Tag=`).
- A start timestamp of 0.0 (the first interval of a log relative to its BaseTime) is taken
  as "not given" (`if not start_time_stamp_sec`) and replaced by the histogram's own start
  stamp, which is 0 for histograms never stamped or sys.maxsize after `reset()`.
- It writes `%f` (6 decimals) and format version 1.2; harmless, but not what Java writes.
Reader note: hdrh's `HistogramLogReader` returns every interval whatever its tag (it sets the
tag on the histogram); select a stage with `get_tag()`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from hdrh.histogram import HdrHistogram

from contracts.hdr import PackedHistogram, encode

FORMAT_VERSION = "1.3"
LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
MAX_VALUE_UNIT_RATIO = 1000.0
"""Our histograms are in us: Interval_Max is written in ms."""
NS_PER_S = 1_000_000_000
_BAD_TAG = re.compile(r"[,\s]")


def header_lines(start_ns: int, base_ns: int | None = None) -> list[str]:
    """Version, StartTime, BaseTime (default: StartTime) and legend lines."""
    seconds = start_ns / NS_PER_S
    base_s = seconds if base_ns is None else base_ns / NS_PER_S
    when = dt.datetime.fromtimestamp(start_ns // 1_000_000 / 1000, tz=dt.UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return [
        f"#[Histogram log format version {FORMAT_VERSION}]",
        f"#[StartTime: {seconds:.3f} (seconds since epoch), {stamp}]",
        f"#[BaseTime: {base_s:.3f} (seconds since epoch)]",
        LEGEND,
    ]


def interval_line(
    tag: str | None,
    start_ns: int,
    length_ns: int,
    hist: HdrHistogram | PackedHistogram,
    base_ns: int,
    max_value_unit_ratio: float = MAX_VALUE_UNIT_RATIO,
) -> str:
    """One interval line, as Java's `outputIntervalHistogram` writes it. A packed histogram is
    written in the encoding it has (decoded once, for its max), not encoded again."""
    if isinstance(hist, PackedHistogram):
        code, hist = hist.code, hist.histogram()
    else:
        code = encode(hist)
    start_s = max(0, start_ns - base_ns) / NS_PER_S  # hdrh's reader skips negative stamps
    max_value = hist.get_max_value() if hist.get_total_count() else 0
    body = f"{start_s:.3f},{length_ns / NS_PER_S:.3f},{max_value / max_value_unit_ratio:.3f}"
    if tag is None:
        return f"{body},{code}"
    if not tag or _BAD_TAG.search(tag):
        raise ValueError(f"an hlog tag cannot be empty or contain commas or spaces: {tag!r}")
    return f"Tag={tag},{body},{code}"


class HlogWriter:
    """Appends interval lines to a text stream after one header.

    StartTime = BaseTime = the run's start rounded down to the whole second: the 1 s
    intervals are keyed by epoch second, and both readers skip intervals that start before
    StartTime (relative range check) and hdrh's cannot parse a negative stamp.
    """

    def __init__(
        self,
        stream: TextIO,
        start_ns: int,
        *,
        write_header: bool = True,
        base_ns: int | None = None,
    ) -> None:
        self.stream = stream
        self.base_ns = start_ns - start_ns % NS_PER_S if base_ns is None else base_ns
        if write_header:
            self.stream.write("\n".join(header_lines(self.base_ns)) + "\n")

    def write(
        self, tag: str | None, start_ns: int, length_ns: int, hist: HdrHistogram | PackedHistogram
    ) -> None:
        self.stream.write(interval_line(tag, start_ns, length_ns, hist, self.base_ns) + "\n")


def append_intervals(
    path: Path,
    start_ns: int,
    tag: str,
    intervals: Iterable[tuple[int, HdrHistogram | PackedHistogram]],
    length_ns: int = NS_PER_S,
) -> int:
    """Append (epoch second, histogram) intervals under `tag` to the log at `path`.

    The header is written when the file is new, with StartTime `start_ns` (the run's start);
    an existing log keeps its own header, so stages append as they finish. Returns the
    number of lines written.
    """
    new = not path.exists() or path.stat().st_size == 0
    lines = 0
    with path.open("a", encoding="utf-8") as stream:
        base = None if new else _base_ns(path)
        writer = HlogWriter(stream, start_ns, write_header=new, base_ns=base)
        for second, hist in intervals:
            writer.write(tag, second * NS_PER_S, length_ns, hist)
            lines += 1
        stream.flush()
    return lines


def _base_ns(path: Path) -> int:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("#[BaseTime:"):
                return round(float(line.split()[1]) * NS_PER_S)
    raise ValueError(f"{path}: no #[BaseTime: ...] header")
