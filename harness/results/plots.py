"""Figures of a run (matplotlib, Agg canvas; no pyplot, so no global backend state).

Each `*_figure` function builds one matplotlib Figure from plain data; `save` writes it as a
PNG. harness.results.run_plots feeds them from a run folder; tests inspect the figures.

- `percentile_spectrum_figure`: one hold's lag by percentile, CO-corrected vs uncorrected and
  per hop, on the HdrHistogram plotter's x axis: 1 / (1 - percentile), log scale, labelled
  0%, 90%, 99%, 99.9% ... so the tail gets the room it deserves.
- `stage_spectra_figure`: the total lag by percentile of every hold in one chart.
- `lag_over_time_figure`: per-second P50 / P99 of the total lag, corrected and uncorrected,
  holds as shaded bands, events (rollback, early abort, SUT died...) as marked lines.
- `rate_figure`: records received per second against the scheduled and sent rate of each hold.
- `resources_figure`: SUT RSS and network Mbps over time against their limits.
- `cpu_by_part_figure`: the test bed's CPU by part over time, stacked, against the host's busy
  cores and its core count (harness.testbed).
- `hop_breakdown_figure`: P99 of each hop per hold, and the total CO-corrected against
  uncorrected.
- `compare_spectrum_figure`: two runs' percentile curves of one hold overlaid (`harness
  compare`): the run solid, the baseline dashed, per measure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from hdrh.histogram import HdrHistogram
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

NS_PER_S = 1_000_000_000
US_PER_MS = 1000.0
STYLES = {
    "total": ("tab:red", "-"),
    "total_uncorrected": ("tab:blue", "--"),
    "network": ("tab:green", ":"),
    "processing": ("tab:purple", ":"),
    "kafka": ("tab:orange", ":"),
    "delivery": ("tab:brown", "-."),
    "generator_lateness": ("tab:gray", "-."),
}
HOP_MEASURES = ("network", "processing", "kafka")


def save(figure: Figure, path: Path) -> Path:
    """Write `figure` as a PNG at `path` (folders made); the path."""
    FigureCanvasAgg(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def spectrum(hist: HdrHistogram, points: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """(1 / (1 - p), value in ms) from P0 up to the histogram's last distinct rank."""
    count = hist.get_total_count()
    if count == 0:
        return np.zeros(0), np.zeros(0)
    top = max(1.0, math.log10(count))
    nines = np.linspace(0.0, top, points)
    xs = 10.0**nines
    values = [hist.get_value_at_percentile(100.0 * (1.0 - 1.0 / x)) for x in xs]
    return xs, np.asarray(values, dtype=float) / US_PER_MS


def _legend(axes: Axes, where: Literal["upper left", "upper right"]) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc=where, fontsize=8)


def _percentile_axis(axes: Axes, top: float) -> None:
    axes.set_xscale("log")
    ticks = [10.0**k for k in range(math.ceil(math.log10(max(top, 10.0))) + 1)]
    labels = [f"{100.0 * (1.0 - 1.0 / t):.10g}%" for t in ticks]
    axes.set_xticks(ticks, labels)
    axes.set_xlabel("percentile")


def _threshold_lines(axes: Axes, thresholds_ms: Mapping[str, float] | None) -> None:
    for i, (name, limit) in enumerate((thresholds_ms or {}).items()):
        axes.axhline(limit, color="black", linestyle=(0, (4, 2 + i)), linewidth=0.9)
        axes.annotate(
            f"{name} {limit:g} ms",
            (0.5, limit),
            xycoords=("axes fraction", "data"),
            fontsize=8,
            va="bottom",
            ha="center",
        )


def _mark(axes: Axes, x: float, label: str, color: str = "gray") -> None:
    """A vertical line at `x` with its label written along it at the top."""
    axes.axvline(x, color=color, linewidth=0.8)
    axes.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                  va="top", rotation=90, color=color)  # fmt: skip


Curve = tuple[str, HdrHistogram, str | None, str]
"""(label, histogram, color, line style) of one percentile curve."""


def _spectrum_figure(
    curves: Sequence[Curve], title: str, thresholds_ms: Mapping[str, float] | None
) -> Figure:
    """Percentile curves on the HdrHistogram plotter's axis (ms, log 1 / (1 - p))."""
    figure = Figure(figsize=(9, 5))
    axes = figure.add_subplot()
    top = 10.0
    for label, hist, color, style in curves:
        xs, values = spectrum(hist)
        if xs.size == 0:
            continue
        axes.plot(xs, values, label=label, color=color, linestyle=style)
        top = max(top, float(xs[-1]))
    _percentile_axis(axes, top)
    _threshold_lines(axes, thresholds_ms)
    axes.set_ylabel("lag (ms)")
    axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    _legend(axes, "upper left")
    return figure


def percentile_spectrum_figure(
    histograms: Mapping[str, HdrHistogram],
    title: str,
    thresholds_ms: Mapping[str, float] | None = None,
) -> Figure:
    """Latency by percentile of each histogram of one hold (total, uncorrected, hops)."""
    curves = [(name, hist, *STYLES.get(name, (None, "-"))) for name, hist in histograms.items()]
    return _spectrum_figure(curves, title, thresholds_ms)


def stage_spectra_figure(
    totals: Mapping[str, HdrHistogram],
    title: str,
    thresholds_ms: Mapping[str, float] | None = None,
) -> Figure:
    """One percentile curve per hold (label -> its CO-corrected total lag) in one chart."""
    styles = ("-", "--", "-.", ":")
    curves = [
        (label, hist, None, styles[(i // 10) % len(styles)])
        for i, (label, hist) in enumerate(totals.items())
    ]
    return _spectrum_figure(curves, title, thresholds_ms)


@dataclass(frozen=True)
class Band:
    """A hold on the time axis: seconds since the run's start."""

    label: str
    start_s: float
    end_s: float


def _bands(axes: Axes, bands: Sequence[Band]) -> None:
    for i, band in enumerate(bands):
        color = "tab:orange" if band.label.startswith("verify") else ("0.85", "0.93")[i % 2]
        axes.axvspan(band.start_s, band.end_s, color=color, alpha=0.35, linewidth=0)
        axes.annotate(band.label, (band.start_s, 0.02), xycoords=("data", "axes fraction"),
                      fontsize=7, va="bottom")  # fmt: skip


def lag_over_time_figure(
    series: Mapping[str, Sequence[tuple[float, HdrHistogram]]],
    bands: Sequence[Band] = (),
    events: Sequence[tuple[float, str]] = (),
    thresholds_ms: Mapping[str, float] | None = None,
    title: str = "total lag per second",
) -> Figure:
    """Per-second P50/P99 (ms) of "total" and "total_uncorrected" (measure -> (second since
    the run's start, interval histogram)), holds as bands, events as marked lines."""
    figure = Figure(figsize=(11, 5))
    axes = figure.add_subplot()
    _bands(axes, bands)
    for name in ("total", "total_uncorrected"):
        points = sorted(series.get(name) or (), key=lambda p: p[0])
        if not points:
            continue
        xs = np.asarray([t for t, _ in points])
        color, style = STYLES[name]
        for p in (50.0, 99.0):
            ys = np.asarray([h.get_value_at_percentile(p) / US_PER_MS for _, h in points])
            # No line across the gaps between holds (settling, warm-up of the next stage).
            breaks = np.flatnonzero(np.diff(xs) > 1.5) + 1
            pieces = zip(np.split(xs, breaks), np.split(ys, breaks), strict=True)
            for i, (x, y) in enumerate(pieces):
                axes.plot(x, y, color=color, linestyle=style, linewidth=1.0,
                          alpha=1.0 if p == 99.0 else 0.45,
                          label=f"{name} P{p:g}" if i == 0 else None)  # fmt: skip
    for at_s, label in events:
        _mark(axes, at_s, label, color="tab:red")
    _threshold_lines(axes, thresholds_ms)
    axes.set_yscale("log")
    axes.set_xlabel("time since run start (s)")
    axes.set_ylabel("lag (ms)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    _legend(axes, "upper right")
    return figure


@dataclass(frozen=True)
class HoldRate:
    """A hold's scheduled and sent rate (msg/s) over its span (seconds since run start)."""

    band: Band
    scheduled_msg_s: float | None
    sent_msg_s: float | None


def rate_figure(
    received: Sequence[tuple[float, int]],
    holds: Sequence[HoldRate],
    title: str = "achieved vs scheduled rate",
) -> Figure:
    """Records received per second (the collector's observations) against each hold's scheduled
    rate (what the plan asked feed_sim for) and sent rate (what feed_sim reports it sent)."""
    figure = Figure(figsize=(11, 4.5))
    axes = figure.add_subplot()
    _bands(axes, [h.band for h in holds])
    points = sorted(received)
    if points:
        xs = np.asarray([t for t, _ in points])
        ys = np.asarray([n for _, n in points], dtype=float)
        breaks = np.flatnonzero(np.diff(xs) > 1.5) + 1
        for i, (x, y) in enumerate(zip(np.split(xs, breaks), np.split(ys, breaks), strict=True)):
            axes.plot(x, y, color="tab:blue", linewidth=1.0,
                      label="received per second" if i == 0 else None)  # fmt: skip
    for i, hold in enumerate(holds):
        span = (hold.band.start_s, hold.band.end_s)
        if hold.scheduled_msg_s is not None:
            axes.plot(span, (hold.scheduled_msg_s,) * 2, color="black", linestyle="--",
                      linewidth=1.2, label="scheduled" if i == 0 else None)  # fmt: skip
        if hold.sent_msg_s is not None:
            axes.plot(span, (hold.sent_msg_s,) * 2, color="tab:green", linestyle=":",
                      linewidth=1.6, label="sent (feed_sim)" if i == 0 else None)  # fmt: skip
    axes.set_xlabel("time since run start (s)")
    axes.set_ylabel("messages per second")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    _legend(axes, "upper left")
    return figure


def resources_figure(
    rows: Sequence[Mapping[str, Any]],
    *,
    start_ns: int | None = None,
    mbps_keys: Sequence[str] = ("feed_mbps", "kafka_mbps"),
    bands: Sequence[Band] = (),
    limits: Mapping[str, float] | None = None,
    title: str = "SUT resources",
) -> Figure:
    """RSS (MB) and network (Mbps) over time from sampler rows (t_ns, rss_bytes, *mbps_keys);
    `limits` may hold "rss_mb" / "mbps"; time counts from `start_ns` (default: first row)."""
    figure = Figure(figsize=(11, 6))
    rss_axes, net_axes = figure.subplots(2, 1, sharex=True)
    start = start_ns if start_ns is not None else min((int(r["t_ns"]) for r in rows), default=0)
    t = [(int(r["t_ns"]) - start) / NS_PER_S for r in rows]
    rss = [float(r.get("rss_bytes") or 0) / 1e6 for r in rows]
    rss_axes.plot(t, rss, color="tab:red", label="SUT RSS (MB)")
    rss_axes.set_ylabel("RSS (MB)")
    for key in mbps_keys:
        values = [r.get(key) for r in rows]
        if any(v is not None for v in values):
            net_axes.plot(t, [float(v or 0) for v in values], label=key)
    net_axes.set_ylabel("Mbps")
    net_axes.set_xlabel("time since run start (s)")
    limits = limits or {}
    if "rss_mb" in limits:
        rss_axes.axhline(limits["rss_mb"], color="black", linestyle="--", linewidth=0.9,
                         label=f"limit {limits['rss_mb']:,.0f} MB")  # fmt: skip
    if "mbps" in limits:
        net_axes.axhline(limits["mbps"], color="black", linestyle="--", linewidth=0.9,
                         label=f"target {limits['mbps']:g} Mbps")  # fmt: skip
    for axes in (rss_axes, net_axes):
        _bands(axes, bands)
        axes.grid(True, alpha=0.3)
        _legend(axes, "upper left")
    rss_axes.set_title(title)
    return figure


def cpu_by_part_figure(
    rows: Sequence[Mapping[str, Any]],
    *,
    cores: int,
    start_ns: int | None = None,
    bands: Sequence[Band] = (),
    title: str = "CPU by part of the test bed",
) -> Figure:
    """Stacked cores of each part (`parts_cores` of the sampler rows) over time, the host's
    busy cores (`host_busy_cores`) as a line and its core count as the ceiling."""
    figure = Figure(figsize=(11, 5))
    axes = figure.subplots()
    start = start_ns if start_ns is not None else min((int(r["t_ns"]) for r in rows), default=0)
    t = [(int(r["t_ns"]) - start) / NS_PER_S for r in rows]
    names = sorted({name for r in rows for name in (r.get("parts_cores") or {})})
    stacks = [[float((r.get("parts_cores") or {}).get(n) or 0.0) for r in rows] for n in names]
    if names:
        axes.stackplot(t, stacks, labels=names, alpha=0.8)
    busy = [r.get("host_busy_cores") for r in rows]
    if any(v is not None for v in busy):
        axes.plot(t, [float(v) if v is not None else np.nan for v in busy], color="black",
                  linewidth=1.0, label="host busy")  # fmt: skip
    axes.axhline(cores, color="red", linestyle="--", linewidth=0.9, label=f"{cores} cores")
    for band in bands:
        _mark(axes, band.start_s, band.label)
    axes.set_ylabel("cores")
    axes.set_xlabel("time since run start (s)")
    axes.set_ylim(0, cores * 1.1)
    axes.grid(True, alpha=0.3)
    _legend(axes, "upper left")
    axes.set_title(title)
    return figure


def compare_spectrum_figure(
    run: Mapping[str, HdrHistogram],
    baseline: Mapping[str, HdrHistogram],
    title: str,
    thresholds_ms: Mapping[str, float] | None = None,
) -> Figure:
    """Each measure's percentile curve of the run (solid) over the baseline's (dashed)."""
    curves: list[Curve] = []
    for name in [n for n in run if n in baseline]:
        color = STYLES.get(name, (None, "-"))[0]
        curves.append((f"{name} (run)", run[name], color, "-"))
        curves.append((f"{name} (baseline)", baseline[name], color, "--"))
    return _spectrum_figure(curves, title, thresholds_ms)


def hop_breakdown_figure(
    stages: Sequence[Mapping[str, Any]],
    title: str = "P99 by hop per hold",
) -> Figure:
    """Per hold (summary.json stage entries): P99 of each hop (network, processing, kafka) side
    by side, and the total's P99 CO-corrected (from the intended time) against uncorrected
    (from the actual send time), in ms, log scale."""
    figure = Figure(figsize=(11, 5))
    axes = figure.add_subplot()
    labels = [str(s.get("label")) for s in stages]
    names = [*HOP_MEASURES, "total_uncorrected", "total"]
    width = 0.8 / len(names)
    x = np.arange(len(stages))
    for i, name in enumerate(names):
        values = [
            ((s.get("latency_us") or {}).get(name) or {}).get("p99", np.nan) / US_PER_MS
            for s in stages
        ]
        color, _ = STYLES.get(name, (None, "-"))
        axes.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name, color=color)
    axes.set_xticks(x, labels)
    axes.set_yscale("log")
    axes.set_ylabel("P99 (ms)")
    axes.set_xlabel("hold")
    axes.set_title(title)
    axes.grid(True, axis="y", alpha=0.3)
    _legend(axes, "upper left")
    return figure
