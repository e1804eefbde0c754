"""Every plot of a run, drawn from the files the run wrote, so `harness report` draws them for
any run folder, finished or interrupted.

Reads summary.json (the holds, their spans, rates, thresholds; the events), histograms/ (each
hold's histograms), lag.hlog (the per-second interval histograms) and resources.jsonl (the
sampler's rows). Writes into plots/, in the order the report shows them:

    percentiles-by-hold.png   total lag by percentile, one curve per hold, threshold lines
    lag-over-time.png         per-second P50/P99, holds as bands, rollback/abort events marked
    hops-by-hold.png          P99 of each hop per hold, total CO-corrected vs uncorrected
    rate.png                  received per second against each hold's scheduled and sent rate
    resources.png             SUT RSS and Mbps over time against their limits
    cpu-by-part.png           CPU of each part of the test bed over time, stacked
    <label>-percentiles.png   each hold: CO-corrected, uncorrected and every hop by percentile

A plot whose input the run did not write (no lag.hlog with `outputs.hlog: false`, no sampler
rows) is not drawn and the reason is returned, for the report to say so.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from matplotlib.figure import Figure

from contracts.hdr import decode, new_histogram
from harness.defaults import TARGET_NETWORK_MBPS
from harness.results import plots
from harness.results.summary import RESOURCES_JSONL

log = logging.getLogger(__name__)

PLOTS_DIR = "plots"
HLOG = "lag.hlog"
UNCORRECTED_SUFFIX = "-uncorrected"
NS_PER_S = 1_000_000_000
MARKED_EVENTS = {
    "early_abort": "early abort",
    "threshold_broken": "threshold broken",
    "rollback_started": "rollback",
    "verify_started": "verify",
    "rollback_ended": "rollback ended",
    "sut_died": "SUT died",
    "sut_not_reloaded": "SUT not reloaded",
    "hook_failed": "hook failed",
    "interrupted": "interrupted",
}
"""Events marked on the lag-over-time plot (the holds themselves are bands)."""


class MissingInput(Exception):
    """A plot's input is not in the run folder; the message says which."""


def _utc_ns(text: Any) -> int | None:
    if not text:
        return None
    return int(dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * NS_PER_S)


@dataclass
class RunFiles:
    """What the plots read from one run folder (summary.json already loaded)."""

    run_dir: Path
    summary: Mapping[str, Any]
    _intervals: dict[str, list[tuple[float, HdrHistogram]]] | None = field(default=None)

    @property
    def holds(self) -> list[Mapping[str, Any]]:
        return list(self.summary.get("stages") or [])

    @property
    def start_ns(self) -> int:
        run = self.summary.get("run") or {}
        return int(run.get("started_ns") or _utc_ns(run.get("started_utc")) or 0)

    def seconds(self, at_ns: int) -> float:
        """Seconds since the run's start."""
        return (at_ns - self.start_ns) / NS_PER_S

    def bands(self) -> list[plots.Band]:
        """Each hold's measured span on the run's time axis."""
        bands = []
        for hold in self.holds:
            start = hold.get("started_ns") or _utc_ns(hold.get("started_utc"))
            end = hold.get("ended_ns") or _utc_ns(hold.get("ended_utc"))
            if start and end:
                bands.append(plots.Band(str(hold["label"]), self.seconds(start), self.seconds(end)))
        return bands

    def events(self) -> list[tuple[float, str]]:
        marks = []
        for event in self.summary.get("events") or []:
            name = MARKED_EVENTS.get(str(event.get("kind")))
            if name and event.get("at_ns"):
                label = f"{name} ({event['label']})" if event.get("label") else name
                marks.append((self.seconds(int(event["at_ns"])), label))
        return marks

    def limits_ms(self) -> dict[str, float]:
        """The P95 / P99 limits the holds were judged against."""
        names = {"total_lag_p95_ms": "P95 limit", "total_lag_p99_ms": "P99 limit"}
        return {names[k]: v for k, v in self._limits().items() if k in names}

    def _limits(self) -> dict[str, float]:
        for hold in self.holds:
            found = {
                str(t["name"]): float(t["limit"])
                for t in hold.get("thresholds") or []
                if t.get("limit") is not None
            }
            if found:
                return found
        return {}

    def histograms(self, hold: Mapping[str, Any], required: bool = True) -> dict[str, HdrHistogram]:
        """measure -> histogram of one hold, from histograms/*.hgrm.b64 (a missing file:
        MissingInput, or left out when not `required`)."""
        out = {}
        for name, relative in (hold.get("histogram_files") or {}).items():
            path = self.run_dir / relative
            if not path.is_file():
                if required:
                    raise MissingInput(f"{relative} is missing")
                continue
            out[name] = decode(path.read_text().strip())
        return out

    def intervals(self) -> dict[str, list[tuple[float, HdrHistogram]]]:
        """lag.hlog's intervals by tag: (seconds since the run's start, histogram)."""
        if self._intervals is None:
            path = self.run_dir / HLOG
            if not path.is_file():
                raise MissingInput(f"{HLOG} was not written (outputs.hlog: false?)")
            reader = HistogramLogReader(str(path), new_histogram())
            found: dict[str, list[tuple[float, HdrHistogram]]] = {}
            while (hist := reader.get_next_interval_histogram()) is not None:
                at_ns = int(hist.get_start_time_stamp()) * 1_000_000
                found.setdefault(str(hist.get_tag()), []).append((self.seconds(at_ns), hist))
            reader.close()
            self._intervals = found
        return self._intervals

    def interval_series(self) -> dict[str, list[tuple[float, HdrHistogram]]]:
        """ "total" and "total_uncorrected" -> every hold's intervals."""
        series: dict[str, list[tuple[float, HdrHistogram]]] = {}
        for tag, rows in self.intervals().items():
            name = "total_uncorrected" if tag.endswith(UNCORRECTED_SUFFIX) else "total"
            series.setdefault(name, []).extend(rows)
        return series

    def resource_rows(self) -> list[dict[str, Any]]:
        path = self.run_dir / RESOURCES_JSONL
        if not path.is_file():
            raise MissingInput(f"{RESOURCES_JSONL} was not written (no sampler rows)")
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not rows:
            raise MissingInput(f"{RESOURCES_JSONL} is empty")
        return rows

    @property
    def name(self) -> str:
        return str(((self.summary.get("run") or {}).get("scenario") or {}).get("name") or "")


def percentiles_by_hold(files: RunFiles) -> Figure:
    totals = {str(h["label"]): files.histograms(h)["total"] for h in files.holds}
    return plots.stage_spectra_figure(
        totals, f"{files.name}: total lag by percentile, every hold", files.limits_ms()
    )


def lag_over_time(files: RunFiles) -> Figure:
    return plots.lag_over_time_figure(
        files.interval_series(),
        files.bands(),
        files.events(),
        files.limits_ms(),
        title=f"{files.name}: total lag per second (P50, P99)",
    )


def hops_by_hold(files: RunFiles) -> Figure:
    return plots.hop_breakdown_figure(files.holds, title=f"{files.name}: P99 by hop per hold")


def rate(files: RunFiles) -> Figure:
    received: dict[float, int] = {}
    for at_s, hist in files.interval_series().get("total", []):
        received[at_s] = received.get(at_s, 0) + hist.get_total_count()
    bands = {b.label: b for b in files.bands()}
    holds = [
        plots.HoldRate(
            bands[str(h["label"])],
            (h.get("rate") or {}).get("scheduled_msg_s"),
            (h.get("rate") or {}).get("sent_msg_s"),
        )
        for h in files.holds
        if str(h["label"]) in bands
    ]
    return plots.rate_figure(
        sorted(received.items()), holds, title=f"{files.name}: achieved vs scheduled rate"
    )


def resources(files: RunFiles) -> Figure:
    limits = files._limits()
    shown: dict[str, float] = {}
    if "sut_rss_gb" in limits:
        shown["rss_mb"] = limits["sut_rss_gb"] * 1024
    shown["mbps"] = limits.get("network_mbps_max", TARGET_NETWORK_MBPS)
    return plots.resources_figure(
        files.resource_rows(),
        start_ns=files.start_ns,
        bands=files.bands(),
        limits=shown,
        title=f"{files.name}: SUT memory and network",
    )


def cpu_by_part(files: RunFiles) -> Figure:
    host = (files.summary.get("run") or {}).get("host") or {}
    return plots.cpu_by_part_figure(
        files.resource_rows(),
        cores=int(host.get("cpu_logical") or 1),
        start_ns=files.start_ns,
        bands=files.bands(),
        title=f"{files.name}: CPU by part of the test bed",
    )


RUN_PLOTS: tuple[tuple[str, Callable[[RunFiles], Figure]], ...] = (
    ("percentiles-by-hold.png", percentiles_by_hold),
    ("lag-over-time.png", lag_over_time),
    ("hops-by-hold.png", hops_by_hold),
    ("rate.png", rate),
    ("resources.png", resources),
    ("cpu-by-part.png", cpu_by_part),
)


def hold_spectrum(files: RunFiles, hold: Mapping[str, Any]) -> Figure:
    return plots.percentile_spectrum_figure(
        files.histograms(hold),
        f"{files.name} {hold['label']} ({hold.get('symbols')} symbols): lag by percentile",
        files.limits_ms(),
    )


def run_figures(files: RunFiles) -> list[tuple[str, Callable[[], Figure]]]:
    """(file name, figure builder) of every plot of the run, in the report's order."""
    figures: list[tuple[str, Callable[[], Figure]]] = [
        (name, partial(build, files)) for name, build in RUN_PLOTS
    ]
    for hold in files.holds:
        figures.append((f"{hold['label']}-percentiles.png", partial(hold_spectrum, files, hold)))
    return figures


def draw_plots(run_dir: Path, summary: Mapping[str, Any]) -> tuple[list[Path], list[str]]:
    """Draw every plot of the run into plots/: the paths drawn, and why any was not."""
    files = RunFiles(run_dir, summary)
    drawn: list[Path] = []
    problems: list[str] = []
    if not files.holds:
        return drawn, ["no hold finished: nothing to plot"]
    for name, build in run_figures(files):
        try:
            drawn.append(plots.save(build(), run_dir / PLOTS_DIR / name))
        except MissingInput as exc:
            problems.append(f"{name}: {exc}")
        except Exception as exc:  # matplotlib raises many kinds; one plot must not stop the rest
            log.exception("plot %s failed", name)
            problems.append(f"{name}: failed: {exc!r}")
    return drawn, problems


def plot_order(path: Path) -> tuple[int, str]:
    """Sort key of a plot file: the report's order, other files after, by name."""
    names = [name for name, _ in RUN_PLOTS]
    return (names.index(path.name), "") if path.name in names else (len(names), path.name)
