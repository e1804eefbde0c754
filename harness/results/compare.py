"""`harness compare RUN BASELINE`: did the pipeline get slower, per stage and measure?

Reads two runs' summary.json and histograms (nothing else) and decides:

- comparable? Both runs must come from the same scenario (its SHA-256) and plan the same
  stages (labels and symbol counts); otherwise `NotComparable` says which differs (exit 5);
- per stage both ran (stage-N holds; verify holds are not compared): for every SUT lag measure
  (total, total_uncorrected, network, processing, kafka) the deltas of P50, P90, P95, P99,
  P99.9 and max, plus SUT RSS, achieved rate, loss and duplicates;
- a regression is (each names its stage and measure): a P99 worse than the baseline's by more
  than `tolerance` (10%) AND by more than `floor_ms` (2 ms, so 1 ms of noise never fails) AND,
  when both runs wrote lag.hlog, consistently so: the hold's per-second P99s (of the same
  measure; of the CO-corrected total for a hop, which has no interval log) are higher in the
  run than in the baseline by a one-sided Mann-Whitney U test at `alpha` (1%), and their
  median is higher by more than `floor_ms` too (a typical second got slower by more than the
  floor, not only the hold's worst ones: on a busy host a P99 of 1.2 -> 3.2 ms came with
  per-second medians of 1.18 -> 1.73 ms, consistent but under a millisecond). A hold's P99
  can move by a third between two runs of the same build on a shared 2-core host because of
  one bad second (a 76 ms second among thirty of 10 ms); a slower build shifts every second.
  Such a move is listed as noise, with its p-value, not as a regression;
  RSS up by more than `tolerance` and 50 MB; achieved rate down by more than `tolerance`;
  more loss or duplicates; a stage that passed in the baseline and not in the run; a stage the
  baseline ran that the run never reached. Other figures are reported, never judged.

`write_comparison` writes compare.md and compare.html (the two runs' percentile curves
overlaid per stage, embedded) into the run's folder.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram
from scipy.stats import mannwhitneyu

from harness.results.report import ReportError, load_summary
from harness.results.run_plots import UNCORRECTED_SUFFIX, MissingInput, RunFiles

COMPARED_MEASURES = ("total", "total_uncorrected", "network", "processing", "kafka")
"""The SUT's lag measures; the harness's own (delivery, generator lateness) are not judged."""
FIGURES = ("p50", "p90", "p95", "p99", "p99.9", "max")
DEFAULT_TOLERANCE = 0.10
DEFAULT_FLOOR_MS = 2.0
DEFAULT_ALPHA = 0.01
MIN_SECONDS = 5
"""Per-second P99s each run needs for the consistency test (8 s holds reach p < 1e-4)."""
RSS_FLOOR_BYTES = 50 * 2**20
COMPARE_MD = "compare.md"
COMPARE_HTML = "compare.html"
COMPARE_PLOTS = "compare"


class NotComparable(ValueError):
    """The two runs are not of the same scenario and stage plan; the message says how."""


@dataclass(frozen=True)
class Delta:
    """One figure of one measure of one stage in both runs (latency in ms)."""

    stage: str
    measure: str
    figure: str
    run: float | None
    baseline: float | None

    @property
    def change(self) -> float | None:
        if self.run is None or self.baseline is None:
            return None
        return self.run - self.baseline

    @property
    def ratio(self) -> float | None:
        if self.run is None or not self.baseline:
            return None
        return self.run / self.baseline - 1.0


@dataclass
class Comparison:
    run: Path
    baseline: Path
    tolerance: float
    floor_ms: float
    alpha: float = DEFAULT_ALPHA
    deltas: list[Delta] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)
    """P99s worse beyond tolerance and floor that the per-second test found inconsistent."""
    stages: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def _plan(document: Mapping[str, Any]) -> tuple[str, list[tuple[str, int]]]:
    scenario = ((document.get("run") or {}).get("scenario") or {}).get("sha256") or ""
    stages = [
        (str(s.get("label")), int(s.get("symbols") or 0))
        for s in document.get("stages") or []
        if str(s.get("label", "")).startswith("stage-")
    ]
    return str(scenario), stages


def check_comparable(run: Mapping[str, Any], baseline: Mapping[str, Any]) -> None:
    """NotComparable unless both runs are of the same scenario with the same stage plan.

    The run may have stopped earlier or later (a regression, not a different plan): the
    stages both ran must have the same symbol counts."""
    run_sha, run_stages = _plan(run)
    base_sha, base_stages = _plan(baseline)
    if run_sha != base_sha:
        raise NotComparable(
            f"different scenarios: SHA-256 {run_sha[:12] or '?'} vs {base_sha[:12] or '?'}"
            " (the scenario file changed, so the figures do not measure the same load)"
        )
    base = dict(base_stages)
    differing = [
        f"{label}: {n} vs {base[label]}" for label, n in run_stages if base.get(label, n) != n
    ]
    if differing:
        raise NotComparable(f"different stages (symbols): {'; '.join(differing)}")


def _stage_map(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        str(s["label"]): s
        for s in document.get("stages") or []
        if str(s.get("label", "")).startswith("stage-")
    }


def _ms(value: Any) -> float | None:
    return None if value is None else float(value) / 1000.0


def compare_runs(
    run_dir: Path,
    baseline_dir: Path,
    tolerance: float = DEFAULT_TOLERANCE,
    floor_ms: float = DEFAULT_FLOOR_MS,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """The deltas and regressions of `run_dir` against `baseline_dir` (NotComparable,
    ReportError for a folder without a readable summary)."""
    run, baseline = load_summary(run_dir), load_summary(baseline_dir)
    check_comparable(run, baseline)
    result = Comparison(run_dir, baseline_dir, tolerance, floor_ms, alpha)
    run_stages, base_stages = _stage_map(run), _stage_map(baseline)
    seconds = PerSecondP99(
        RunFiles(run_dir, run), RunFiles(baseline_dir, baseline), alpha, floor_ms
    )
    for label, base in base_stages.items():
        stage = run_stages.get(label)
        if stage is None:
            result.regressions.append(f"{label}: the baseline ran it, the run never reached it")
            continue
        result.stages.append(label)
        _compare_stage(result, label, stage, base, seconds)
    return result


@dataclass
class PerSecondP99:
    """The per-second P99s (ms) of both runs' holds, from their lag.hlog."""

    run: RunFiles
    baseline: RunFiles
    alpha: float = DEFAULT_ALPHA
    floor_ms: float = DEFAULT_FLOOR_MS

    @staticmethod
    def _p99s(files: RunFiles, tag: str) -> list[float] | None:
        try:
            intervals = files.intervals().get(tag) or []
        except MissingInput:
            return None
        return [h.get_value_at_percentile(99.0) / 1000.0 for _, h in intervals]

    def shifted(self, label: str, measure: str) -> tuple[bool, str]:
        """(is the run's per-second P99 consistently higher, its median by more than the
        floor?, the evidence in words). Without the interval logs (or too few seconds) the
        hold's P99 alone decides."""
        name = measure if measure in ("total", "total_uncorrected") else "total"
        tag = label + UNCORRECTED_SUFFIX if name == "total_uncorrected" else label
        run, base = self._p99s(self.run, tag), self._p99s(self.baseline, tag)
        if not run or not base or min(len(run), len(base)) < MIN_SECONDS:
            return True, "no per-second evidence (lag.hlog missing or too short)"
        test = mannwhitneyu(run, base, alternative="greater")
        p = float(test.pvalue)
        run_median, base_median = float(np.median(run)), float(np.median(base))
        words = (
            f"per-second {name} P99 median {run_median:.2f} vs "
            f"{base_median:.2f} ms over {len(run)} / {len(base)} s, "
            f"Mann-Whitney p = {p:.2g}"
        )
        return p < self.alpha and run_median - base_median > self.floor_ms, words


def _compare_stage(
    result: Comparison,
    label: str,
    stage: Mapping[str, Any],
    base: Mapping[str, Any],
    seconds: PerSecondP99,
) -> None:
    latency, base_latency = stage.get("latency_us") or {}, base.get("latency_us") or {}
    for measure in COMPARED_MEASURES:
        if measure not in latency or measure not in base_latency:
            continue
        for figure in FIGURES:
            delta = Delta(
                label,
                measure,
                figure,
                _ms(latency[measure].get(figure)),
                _ms(base_latency[measure].get(figure)),
            )
            result.deltas.append(delta)
            change, ratio = delta.change, delta.ratio
            if (
                figure == "p99"
                and change is not None
                and ratio is not None
                and change > result.floor_ms
                and ratio > result.tolerance
            ):
                shifted, evidence = seconds.shifted(label, measure)
                line = (
                    f"{label} {measure} P99 {delta.run:.2f} ms vs {delta.baseline:.2f} ms "
                    f"(+{change:.2f} ms, +{100 * ratio:.0f}%; {evidence})"
                )
                (result.regressions if shifted else result.noise).append(line)
    if base.get("verdict") == "pass" and stage.get("verdict") != "pass":
        result.regressions.append(f"{label}: {stage.get('verdict')} (the baseline passed)")
    res, base_res = stage.get("resources") or {}, base.get("resources") or {}
    rss, base_rss = res.get("rss_bytes_max"), base_res.get("rss_bytes_max")
    if (
        rss
        and base_rss
        and rss - base_rss > RSS_FLOOR_BYTES
        and rss / base_rss - 1 > result.tolerance
    ):
        result.regressions.append(
            f"{label} SUT RSS {rss / 2**20:.0f} MB vs {base_rss / 2**20:.0f} MB"
        )
    rate, base_rate = _achieved(stage), _achieved(base)
    if rate is not None and base_rate and rate / base_rate - 1 < -result.tolerance:
        result.regressions.append(
            f"{label} achieved rate {rate:.3f} vs {base_rate:.3f} of schedule"
        )
    completeness, base_completeness = (
        stage.get("completeness") or {},
        base.get("completeness") or {},
    )
    for key in ("lost", "duplicates"):
        now, before = completeness.get(key) or 0, base_completeness.get(key) or 0
        if now > before:
            result.regressions.append(f"{label} {key} {now:,} vs {before:,}")


def _achieved(stage: Mapping[str, Any]) -> float | None:
    for check in stage.get("thresholds") or []:
        if check.get("name") == "achieved_rate_ratio_min":
            value = check.get("measured")
            return None if value is None else float(value)
    return None


def stage_histograms(run_dir: Path, stage: Mapping[str, Any]) -> dict[str, HdrHistogram]:
    """The stage's decoded histograms of the compared measures (those whose files exist)."""
    found = RunFiles(run_dir, {}).histograms(stage, required=False)
    return {measure: hist for measure, hist in found.items() if measure in COMPARED_MEASURES}


def render_markdown(result: Comparison) -> str:
    verdict = "REGRESSION" if result.regressed else "NO REGRESSION"
    lines = [
        f"# {result.run.name} vs {result.baseline.name}",
        "",
        f"**{verdict}** (P99 tolerance {100 * result.tolerance:g}% and {result.floor_ms:g} ms)",
        "",
        *(f"- {line}" for line in result.regressions),
        *(f"- noise, not a regression: {line}" for line in result.noise),
        "",
        "| stage | measure | figure | run ms | baseline ms | change ms | change % |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in result.deltas:
        change = "" if d.change is None else f"{d.change:+.2f}"
        ratio = "" if d.ratio is None else f"{100 * d.ratio:+.0f}%"
        lines.append(
            f"| {d.stage} | {d.measure} | {d.figure} | {_f(d.run)} | {_f(d.baseline)} | "
            f"{change} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def write_comparison(result: Comparison, plots: bool = True) -> tuple[Path, Path]:
    """compare.md and compare.html in the run's folder (overlay plots under compare/)."""
    import html as htmllib

    from harness.results.plots import compare_spectrum_figure, save

    images: list[tuple[str, str]] = []
    if plots:
        run_doc, base_doc = load_summary(result.run), load_summary(result.baseline)
        run_stages, base_stages = _stage_map(run_doc), _stage_map(base_doc)
        for label in result.stages:
            figure = compare_spectrum_figure(
                stage_histograms(result.run, run_stages[label]),
                stage_histograms(result.baseline, base_stages[label]),
                f"{label}: {result.run.name} (solid) vs {result.baseline.name} (dashed)",
            )
            path = save(figure, result.run / COMPARE_PLOTS / f"{label}-percentiles.png")
            images.append((label, base64.b64encode(path.read_bytes()).decode()))
    markdown = render_markdown(result)
    md_path = result.run / COMPARE_MD
    md_path.write_text(markdown)
    body = "".join(
        f'<figure><img alt="{htmllib.escape(label)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{htmllib.escape(label)}</figcaption></figure>"
        for label, data in images
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{htmllib.escape(result.run.name)} vs {htmllib.escape(result.baseline.name)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}img{max-width:100%}"
        "pre{white-space:pre-wrap}</style></head><body>"
        f"<pre>{htmllib.escape(markdown)}</pre>{body}</body></html>\n"
    )
    html_path = result.run / COMPARE_HTML
    html_path.write_text(page)
    return md_path, html_path


__all__ = [
    "Comparison",
    "Delta",
    "NotComparable",
    "ReportError",
    "accept_baseline",
    "check_comparable",
    "compare_runs",
    "write_comparison",
]


BASELINE_FILES = ("summary.json", "report.md", "junit.xml", "lag.hlog")


def accept_baseline(run_dir: Path, baselines_root: Path) -> Path:
    """Make `run_dir` the stored baseline of its scenario: summary.json, the encoded
    histograms and the report copied to `<baselines_root>/<scenario name>/` (replacing the
    previous one); the baseline's folder."""
    import shutil

    document = load_summary(run_dir)
    if document.get("status") != "finished":
        raise ReportError(f"{run_dir}: the run did not finish; only a finished run can be one")
    name = ((document.get("run") or {}).get("scenario") or {}).get("name") or run_dir.name
    target = baselines_root / str(name)
    staging = baselines_root / f".{name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "histograms").mkdir(parents=True)
    for file in BASELINE_FILES:
        if (run_dir / file).exists():
            shutil.copy2(run_dir / file, staging / file)
    for histogram in (run_dir / "histograms").glob("*.hgrm.b64"):
        shutil.copy2(histogram, staging / "histograms" / histogram.name)
    (staging / "ACCEPTED_FROM").write_text(f"{run_dir.resolve()}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
