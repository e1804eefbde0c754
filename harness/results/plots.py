"""PNG plots of a run (matplotlib, Agg canvas; no pyplot, so no global backend state).

- `plot_percentile_spectrum`: a stage's latency by percentile, CO-corrected vs uncorrected
  (and per hop), on the HdrHistogram plotter's x axis: 1 / (1 - percentile), log scale,
  labelled 0%, 90%, 99%, 99.9% ... so the tail gets the room it deserves.
- `plot_lag_over_time`: per-second P50 / P99 of the total lag from the 1 s interval
  histograms, corrected and uncorrected, stage boundaries marked, threshold lines.
- `plot_resources`: SUT RSS and network Mbps over time from the sampler's rows.
- `plot_cpu_by_part`: the test bed's CPU by part over time, stacked, against the host's
  busy cores and its core count (harness.testbed).
- `plot_hop_breakdown`: P99 of each hop per hold, and the total CO-corrected against
  uncorrected (from summary.json; `harness report` draws it).
- `plot_compare_spectrum`: two runs' percentile curves of one stage overlaid (`harness
  compare`): the run solid, the baseline dashed, per measure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from hdrh.histogram import HdrHistogram
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.collector.measure import NS_PER_S, StageMeasure

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


def _save(figure: Figure, path: Path) -> Path:
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


Curve = tuple[str, HdrHistogram, str | None, str]
"""(label, histogram, color, line style) of one percentile curve."""


def _spectrum_figure(
    path: Path, curves: Sequence[Curve], title: str, thresholds_ms: Mapping[str, float] | None
) -> Path:
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
    return _save(figure, path)


def plot_percentile_spectrum(
    path: Path,
    histograms: Mapping[str, HdrHistogram],
    title: str,
    thresholds_ms: Mapping[str, float] | None = None,
) -> Path:
    """Latency by percentile of each histogram (ms, log x axis of 1 / (1 - p))."""
    curves = [(name, hist, *STYLES.get(name, (None, "-"))) for name, hist in histograms.items()]
    return _spectrum_figure(path, curves, title, thresholds_ms)


def plot_lag_over_time(
    path: Path,
    stages: Sequence[StageMeasure],
    thresholds_ms: Mapping[str, float] | None = None,
    title: str = "total lag per second",
) -> Path:
    """Per-second P50/P99 (ms) of the total lag, corrected and uncorrected, over the run."""
    figure = Figure(figsize=(11, 5))
    axes = figure.add_subplot()
    start = min((min(m.intervals["total"]) for m in stages if m.intervals["total"]), default=0)
    series: dict[tuple[str, float], tuple[list[float], list[float]]] = {}
    for measure in stages:
        for name in ("total", "total_uncorrected"):
            for second, hist in measure.interval_histograms(name):
                for p in (50.0, 99.0):
                    xs, ys = series.setdefault((name, p), ([], []))
                    xs.append(second - start)
                    ys.append(hist.get_value_at_percentile(p) / US_PER_MS)
        if measure.intervals["total"]:
            first = min(measure.intervals["total"]) - start
            axes.axvline(first, color="gray", linewidth=0.8)
            axes.annotate(
                measure.label,
                (first, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                va="top",
                rotation=90,
            )
    for (name, p), (xs, ys) in sorted(series.items()):
        color, style = STYLES[name]
        order = np.argsort(xs)
        axes.plot(
            np.asarray(xs)[order],
            np.asarray(ys)[order],
            color=color,
            linestyle=style,
            alpha=1.0 if p == 99.0 else 0.45,
            label=f"{name} P{p:g}",
            linewidth=1.0,
        )
    _threshold_lines(axes, thresholds_ms)
    axes.set_yscale("log")
    axes.set_xlabel("time since run start (s)")
    axes.set_ylabel("lag (ms)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    _legend(axes, "upper right")
    return _save(figure, path)


def plot_resources(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    time_key: str = "t_ns",
    rss_key: str = "rss_bytes",
    mbps_keys: Sequence[str] = ("feed_mbps", "kafka_mbps"),
    boundaries: Sequence[tuple[str, int]] = (),
    limits: Mapping[str, float] | None = None,
    title: str = "SUT resources",
) -> Path:
    """RSS (MB) and network (Mbps) over time from sampler rows (dicts keyed as given).

    `boundaries` are (stage label, epoch ns) marks; `limits` may hold "rss_mb" / "mbps".
    """
    figure = Figure(figsize=(11, 6))
    rss_axes, net_axes = figure.subplots(2, 1, sharex=True)
    start = min((int(r[time_key]) for r in rows), default=0)
    t = [(int(r[time_key]) - start) / NS_PER_S for r in rows]
    rss = [float(r.get(rss_key) or 0) / 1e6 for r in rows]
    rss_axes.plot(t, rss, color="tab:red", label=f"{rss_key} (MB)")
    rss_axes.set_ylabel("RSS (MB)")
    for key in mbps_keys:
        values = [r.get(key) for r in rows]
        if any(v is not None for v in values):
            net_axes.plot(t, [float(v or 0) for v in values], label=key)
    net_axes.set_ylabel("Mbps")
    net_axes.set_xlabel("time since first sample (s)")
    limits = limits or {}
    if "rss_mb" in limits:
        rss_axes.axhline(limits["rss_mb"], color="black", linestyle="--", linewidth=0.9)
    if "mbps" in limits:
        net_axes.axhline(limits["mbps"], color="black", linestyle="--", linewidth=0.9)
    for label, at_ns in boundaries:
        for axes in (rss_axes, net_axes):
            axes.axvline((at_ns - start) / NS_PER_S, color="gray", linewidth=0.8)
        rss_axes.annotate(
            label,
            ((at_ns - start) / NS_PER_S, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            va="top",
            rotation=90,
        )
    for axes in (rss_axes, net_axes):
        axes.grid(True, alpha=0.3)
        _legend(axes, "upper left")
    rss_axes.set_title(title)
    return _save(figure, path)


def plot_cpu_by_part(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    cores: int,
    boundaries: Sequence[tuple[str, int]] = (),
    title: str = "CPU by part of the test bed",
) -> Path:
    """Stacked cores of each part (`parts_cores` of the sampler rows) over time, the host's
    busy cores (`host_busy_cores`) as a line and its core count as the ceiling."""
    figure = Figure(figsize=(11, 5))
    axes = figure.subplots()
    start = min((int(r["t_ns"]) for r in rows), default=0)
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
    for label, at_ns in boundaries:
        x = (at_ns - start) / NS_PER_S
        axes.axvline(x, color="gray", linewidth=0.8)
        axes.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                      va="top", rotation=90)  # fmt: skip
    axes.set_ylabel("cores")
    axes.set_xlabel("time since first sample (s)")
    axes.set_ylim(0, cores * 1.1)
    axes.grid(True, alpha=0.3)
    _legend(axes, "upper left")
    axes.set_title(title)
    return _save(figure, path)


def plot_compare_spectrum(
    path: Path,
    run: Mapping[str, HdrHistogram],
    baseline: Mapping[str, HdrHistogram],
    title: str,
    thresholds_ms: Mapping[str, float] | None = None,
) -> Path:
    """Each measure's percentile curve of the run (solid) over the baseline's (dashed)."""
    curves: list[Curve] = []
    for name in [n for n in run if n in baseline]:
        color = STYLES.get(name, (None, "-"))[0]
        curves.append((f"{name} (run)", run[name], color, "-"))
        curves.append((f"{name} (baseline)", baseline[name], color, "--"))
    return _spectrum_figure(path, curves, title, thresholds_ms)


HOP_MEASURES = ("network", "processing", "kafka")


def plot_hop_breakdown(
    path: Path,
    stages: Sequence[Mapping[str, Any]],
    title: str = "P99 by hop per hold",
) -> Path:
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
    return _save(figure, path)
