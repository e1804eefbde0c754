"""`summary.json` of a run, written incrementally, and the encoded histograms beside it.

Layout of results/<run>/ owned here:

    summary.json                          run metadata, one entry per finished stage, events
    histograms/<label>-<measure>.hgrm.b64 each hold's histogram (label stage-N or verify-N),
                                          standard compressed base64
    histograms/<label>-<measure>.hgrm     the same as HdrHistogram's percentile distribution
                                          text (outputPercentileDistribution, values in ms),
                                          for the usual HdrHistogram plotters
    resources.jsonl                       every sampler row of the run (RSS, Mbps, CPU by
                                          part), written by the run at its end

`SummaryWriter` rewrites summary.json after every stage (and event) by writing a temporary
file in the same directory, fsync and `os.replace`: the file on disk is always a complete,
valid JSON document, so an interrupted run keeps every stage it finished (`"status":
"running"` tells it did not end). `finish()` stamps the end time and the exit code.

`run_metadata()` collects the scenario name and SHA-256, the git SHA of the checkout,
package versions (importlib.metadata) and the host (CPU model, cores, memory via psutil).
`stage_entry()` builds one stage's entry: P50/P90/P95/P99/P99.5/P99.9/P99.99/max/count (us)
of every histogram (CO-corrected and uncorrected total, per hop, and any extra such as
generator lateness), threshold verdicts (plain dicts, e.g. `dataclasses.asdict(ThresholdResult)`),
resource figures, completeness and rollback events, all as given.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

from contracts.hdr import encode, percentiles
from harness.collector.measure import StageMeasure

SUMMARY = "summary.json"
HISTOGRAM_DIR = "histograms"
RESOURCES_JSONL = "resources.jsonl"
US_PER_MS = 1000.0
FORMAT = 1
PACKAGES: tuple[str, ...] = (
    "iqfeed-load-harness",
    "hdrhistogram",
    "numpy",
    "orjson",
    "confluent-kafka",
    "locust",
    "psutil",
    "matplotlib",
    "chdb",
    "clickhouse-connect",
)
REPO = Path(__file__).resolve().parents[2]


def utc(ns: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2025-06-15T15:06:40.123Z."""
    when = dt.datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _git_sha(repo: Path) -> dict[str, Any]:
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}
    return {"sha": sha, "dirty": bool(dirty)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> dict[str, Any]:
    """CPU model, cores, memory and OS of this machine."""
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_logical": psutil.cpu_count(logical=True),
        "cpu_physical": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None if not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_metadata(
    scenario_name: str,
    scenario_text: str | bytes,
    *,
    started_ns: int,
    scenario_path: str | None = None,
    command: str | None = None,
    repo: Path = REPO,
) -> dict[str, Any]:
    """The run's metadata block (`command`: the command line that started the run)."""
    raw = scenario_text.encode() if isinstance(scenario_text, str) else scenario_text
    return {
        "scenario": {
            "name": scenario_name,
            "path": scenario_path,
            "sha256": hashlib.sha256(raw).hexdigest(),
        },
        "git": _git_sha(repo),
        "packages": package_versions(),
        "host": host_info(),
        "command": command,
        "started_ns": started_ns,
        "started_utc": utc(started_ns),
    }


FIGURE_PERCENTILES = (50, 90, 95, 99, 99.5, 99.9, 99.99)
"""Percentiles of every histogram in summary.json (the tail points a sign-off reads)."""


def histogram_figures(hist: HdrHistogram) -> dict[str, int]:
    """P50/P90/P95/P99/P99.5/P99.9/P99.99/max/count in us."""
    return percentiles(hist, FIGURE_PERCENTILES)


def stage_entry(
    index: int,
    label: str,
    symbols: int,
    *,
    measure: StageMeasure | None = None,
    extra_histograms: Mapping[str, HdrHistogram] | None = None,
    verdict: str | None = None,
    verdicts: Sequence[Mapping[str, Any]] = (),
    resources: Mapping[str, Any] | None = None,
    completeness: Mapping[str, Any] | None = None,
    rollback_events: Sequence[Mapping[str, Any]] = (),
    started_ns: int = 0,
    ended_ns: int = 0,
    rate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One stage's entry of summary.json (values in us; verdicts and figures as given;
    `rate`: the hold's scheduled and sent messages and rates)."""
    histograms: dict[str, HdrHistogram] = dict(measure.histograms) if measure else {}
    histograms.update(extra_histograms or {})
    entry: dict[str, Any] = {
        "index": index,
        "label": label,
        "symbols": symbols,
        "started_utc": utc(started_ns) if started_ns else None,
        "ended_utc": utc(ended_ns) if ended_ns else None,
        "started_ns": started_ns or None,
        "ended_ns": ended_ns or None,
        "duration_s": (ended_ns - started_ns) / 1e9 if started_ns and ended_ns else None,
        "verdict": None if verdict is None else str(verdict),
        "latency_us": {name: histogram_figures(h) for name, h in histograms.items()},
        "thresholds": [_plain(v) for v in verdicts],
        "resources": _plain(resources or {}),
        "completeness": _plain(completeness or {}),
        "rollback_events": [_plain(e) for e in rollback_events],
        "rate": _plain(rate or {}),
    }
    if measure is not None:
        entry["messages"] = measure.messages
        entry["clamped"] = {"negative": measure.negative, "overflow": measure.overflow}
        entry["unavailable"] = measure.unavailable
    return entry


def distribution_text(hist: HdrHistogram) -> str:
    """HdrHistogram's percentile distribution text (`.hgrm`) of `hist`, values in ms (the
    histogram holds us; 5 ticks per half distance, as HdrHistogram's own default)."""
    out = io.BytesIO()
    hist.output_percentile_distribution(out, US_PER_MS)
    lines = out.getvalue().decode("ascii").splitlines(keepends=True)
    # hdrh 0.10 scales the mean but not the standard deviation (Java scales both).
    digits = hist.significant_figures
    mean = hist.get_mean_value() / US_PER_MS
    stddev = hist.get_stddev() / US_PER_MS
    fixed = f"#[Mean    = {mean:12.{digits}f}, StdDeviation   = {stddev:12.{digits}f}]\n"
    return "".join(fixed if line.startswith("#[Mean") else line for line in lines)


def _plain(value: Any) -> Any:
    """JSON-ready copy (enums and other str subclasses as plain str, tuples as lists)."""
    return json.loads(json.dumps(value, default=str))


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old or the new file, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


class SummaryWriter:
    """Keeps summary.json of one run up to date on disk."""

    def __init__(
        self, run_dir: Path, metadata: Mapping[str, Any], clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.run_dir = run_dir
        self.clock = clock
        run_dir.mkdir(parents=True, exist_ok=True)
        self.document: dict[str, Any] = {
            "format": FORMAT,
            "status": "running",
            "run": _plain(dict(metadata)),
            "stages": [],
            "events": [],
            "result": None,
        }
        self._write()

    @property
    def path(self) -> Path:
        return self.run_dir / SUMMARY

    def add_stage(
        self, entry: Mapping[str, Any], histograms: Mapping[str, HdrHistogram] | None = None
    ) -> dict[str, str]:
        """Append a finished stage, write its encoded histograms, rewrite summary.json.

        Returns the histogram files written (measure -> path relative to the run dir).
        """
        files: dict[str, str] = {}
        if histograms:
            folder = self.run_dir / HISTOGRAM_DIR
            folder.mkdir(exist_ok=True)
            for name, hist in histograms.items():
                label = entry.get("label") or f"stage-{entry['index']}"
                relative = f"{HISTOGRAM_DIR}/{label}-{name}.hgrm.b64"
                write_atomic(self.run_dir / relative, encode(hist) + "\n")
                write_atomic(self.run_dir / relative.removesuffix(".b64"), distribution_text(hist))
                files[name] = relative
        stage = _plain(dict(entry))
        stage["histogram_files"] = files
        self.document["stages"].append(stage)
        self._write()
        return files

    def set_run_field(self, key: str, value: Any) -> None:
        """Add (or replace) a field of the run block, e.g. where the lag ends."""
        self.document["run"][key] = _plain(value)
        self._write()

    def add_event(self, kind: str, at_ns: int | None = None, **details: Any) -> None:
        """Record a run-level event (rollback started / verified, hook run, SUT died...) that
        happened now or at `at_ns` (epoch ns)."""
        now = self.clock() if at_ns is None else at_ns
        self.document["events"].append(
            _plain({"kind": kind, "at_ns": now, "at_utc": utc(now), **details})
        )
        self._write()

    def finish(self, exit_code: int, verdict: str, **details: Any) -> None:
        """Stamp the end of the run."""
        now = self.clock()
        self.document["status"] = "finished"
        self.document["run"]["ended_ns"] = now
        self.document["run"]["ended_utc"] = utc(now)
        self.document["result"] = _plain({"exit_code": exit_code, "verdict": verdict, **details})
        self._write()

    def _write(self) -> None:
        write_atomic(self.path, json.dumps(self.document, indent=2, sort_keys=False) + "\n")
