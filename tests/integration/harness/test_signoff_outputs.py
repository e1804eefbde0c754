"""The sign-off outputs of real runs: every plot drawn from a short run's files, the report
opened in headless Chromium, and `harness compare` on two runs of the same scenario.

Two real runs (feed_sim, the test core, a real Kafka broker, the collector) of one scenario, 2
then 4 symbols. The second run's core is "rebuilt" with 25 ms of processing delay above 2
symbols (DELAY_CORE_EXTRA_ARGS; the scenario file and its hash stay the same): compare finds
the regression in stage-2's processing and total lag, not in stage-1, exit 1; a run compared
with itself exits 0.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure
from matplotlib.image import imread

from harness.cli import cli
from harness.exit_codes import ExitCode
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.results.compare import compare_runs
from harness.results.run_plots import RUN_PLOTS, RunFiles, run_figures
from tests.integration.harness.test_run_diagnosis import two_stages
from tests.integration.harness.test_run_thresholds import core_command, outline, run, summary_of

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "test-output" / "report-screenshot.png"
"""Kept after the test (CI uploads test-output/) so a person can look at what was checked."""
EXTRA_DELAY_MS = 25


def _scenario(bootstrap: str) -> Any:
    return two_stages(
        "signoff",
        {
            "kind": "command",
            "command": core_command(""),
            "reload": {"method": "signal"},
            "record_mapping": {"topics": ["iqfeed.quotes"], "partitions": "universe"},
        },
        infra={"mode": "external", "bootstrap": bootstrap},
        outputs={"plots": True, "locust": False, "hlog": True, "junit": True},
    )


@pytest.fixture(scope="module")
def runs(
    kafka_single: tuple[LocalKafka, ClusterState], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """{"baseline": run folder, "slower": run folder} of the same scenario."""
    _, state = kafka_single
    scenario = _scenario(state.bootstrap)
    folders = {}
    for name, extra in (("baseline", ""), ("slower", f"--slow-above 2 --slow-ms {EXTRA_DELAY_MS}")):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DELAY_CORE_EXTRA_ARGS", extra)
            code, run_dir = run(scenario, tmp_path_factory.mktemp(name))
        assert code is ExitCode.PASSED, outline(summary_of(run_dir))
        folders[name] = run_dir
    yield folders


def _curves(figure: Figure) -> list[str]:
    """Labels of the drawn curves (matplotlib names helper lines such as axhline "_child")."""
    return [
        str(line.get_label())
        for axes in figure.axes
        for line in axes.get_lines()
        if not str(line.get_label()).startswith("_")
    ]


def test_every_plot_is_drawn_from_the_run_s_files(runs: dict[str, Path]) -> None:
    run_dir = runs["baseline"]
    files = RunFiles(run_dir, summary_of(run_dir))
    holds = [str(h["label"]) for h in files.holds]
    assert holds == ["stage-1", "stage-2"]
    figures = {name: build() for name, build in run_figures(files)}
    assert set(figures) == {name for name, _ in RUN_PLOTS} | {f"{h}-percentiles.png" for h in holds}
    for name, figure in figures.items():
        labelled = [a for a in figure.axes if a.get_ylabel()]
        assert labelled and any(a.get_xlabel() for a in figure.axes), name
        assert figure.axes[0].get_title(), name
    # One curve per hold, on the percentile axis, with the P95/P99 limit lines.
    spectra = figures["percentiles-by-hold.png"]
    assert _curves(spectra) == holds
    assert spectra.axes[0].get_xlabel() == "percentile"
    assert {t.get_text() for t in spectra.axes[0].texts} >= {"P95 limit 50 ms", "P99 limit 100 ms"}
    # Lag over time: one band per hold, P50 and P99 of the corrected and uncorrected total.
    over_time = figures["lag-over-time.png"].axes[0]
    assert len(over_time.patches) == len(holds)
    assert set(_curves(figures["lag-over-time.png"])) == {
        "total P50",
        "total P99",
        "total_uncorrected P50",
        "total_uncorrected P99",
    }
    # Rate: received per second, and each hold's scheduled and sent rate.
    rate_lines = figures["rate.png"].axes[0].get_lines()
    scheduled = [line for line in rate_lines if line.get_linestyle() == "--"]
    assert len(scheduled) == len(holds)
    assert {tuple(line.get_ydata()) for line in scheduled} == {(100.0, 100.0), (200.0, 200.0)}
    # Hops: 3 hops + 2 totals, one bar each per hold.
    assert len(figures["hops-by-hold.png"].axes[0].patches) == 5 * len(holds)
    # Resources and CPU from resources.jsonl, with the RSS limit and the cores ceiling.
    assert "SUT RSS (MB)" in _curves(figures["resources.png"])
    assert any(c.startswith("limit ") for c in _curves(figures["resources.png"]))
    assert "host busy" in _curves(figures["cpu-by-part.png"])
    # The hold's own spectrum: CO-corrected, uncorrected and every hop.
    assert {"total", "total_uncorrected", "network", "processing", "kafka"} <= set(
        _curves(figures["stage-2-percentiles.png"])
    )
    # What the run itself wrote: the same plots as PNG, not blank.
    written = {p.name: p for p in (run_dir / "plots").glob("*.png")}
    assert set(written) == set(figures)
    for name, path in written.items():
        pixels = imread(path)
        assert pixels.shape[0] >= 400 and pixels.shape[1] >= 800, name
        colours = {tuple(p) for p in pixels.reshape(-1, pixels.shape[-1])[::53]}
        assert len(colours) > 20, f"{name} looks blank ({len(colours)} colours)"


def _colour_pixels(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 6) -> int:
    diff = np.abs(pixels[..., :3].astype(int) - np.asarray(rgb))
    return int(np.count_nonzero(diff.max(axis=-1) <= tolerance))


def test_the_report_opens_in_headless_chromium_with_verdict_and_plots(
    runs: dict[str, Path],
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed: make deps installs it"
    report = runs["baseline"] / "report.html"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2400",
            f"--screenshot={SCREENSHOT}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = (imread(SCREENSHOT) * 255).round().astype(np.uint8)
    assert pixels.shape[:2] == (2400, 1280)
    # The verdict: the PASS badge's green (#2e7d32) in the first rows of the page.
    assert _colour_pixels(pixels[:160], (0x2E, 0x7D, 0x32)) > 200
    # The plots: matplotlib's curve colours (tab:blue, tab:orange) drawn below the tables;
    # the page's own styles use neither.
    plots_area = pixels[160:]
    assert _colour_pixels(plots_area, (31, 119, 180)) > 500  # tab:blue
    assert _colour_pixels(plots_area, (255, 127, 14)) > 200  # tab:orange
    print(f"\nscreenshot: {SCREENSHOT}")


def test_compare_finds_the_injected_delay_at_its_stage_and_measure(
    runs: dict[str, Path],
) -> None:
    result = compare_runs(runs["slower"], runs["baseline"])
    assert result.regressed, result.regressions
    assert any(r.startswith("stage-2 processing P99") for r in result.regressions), result
    assert any(r.startswith("stage-2 total P99") for r in result.regressions), result
    assert not any(r.startswith("stage-1") for r in result.regressions), result.regressions
    p99 = next(
        d
        for d in result.deltas
        if (d.stage, d.measure, d.figure) == ("stage-2", "processing", "p99")
    )
    assert p99.change is not None and p99.change >= EXTRA_DELAY_MS * 0.8, p99
    runner = CliRunner()
    slower = runner.invoke(cli, ["compare", str(runs["slower"]), str(runs["baseline"])])
    assert slower.exit_code == 1, slower.output
    html = (runs["slower"] / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # one overlay per stage
    same = runner.invoke(cli, ["compare", str(runs["baseline"]), str(runs["baseline"])])
    assert same.exit_code == 0, same.output


def test_hgrm_files_of_a_real_run_match_its_histograms(runs: dict[str, Path]) -> None:
    summary: dict[str, Any] = json.loads((runs["baseline"] / "summary.json").read_text())
    stage = summary["stages"][1]
    text = (runs["baseline"] / "histograms" / "stage-2-total.hgrm").read_text().splitlines()
    assert text[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    stats = dict(
        (key.strip("#[ "), float(value.strip(" ]")))
        for line in text
        if line.startswith("#[Mean") or line.startswith("#[Max")
        for key, value in (part.split("=") for part in line.split(","))
    )
    figures = stage["latency_us"]["total"]
    assert stats["TotalCount"] == figures["count"]
    assert stats["Max"] == pytest.approx(figures["max"] / 1000, abs=0.01)
    assert stats["StdDeviation"] <= stats["Max"]  # in ms, like every value of the file


def test_the_run_checks_its_feed_and_the_report_says_so(runs: dict[str, Path]) -> None:
    feed = summary_of(runs["baseline"])["run"]["feed_data"]
    assert feed["verdict"] == "plausible" and feed["source"].startswith("generated session")
    assert {f["check"] for f in feed["findings"]} >= {"session_hours", "venue_concentration"}
    assert "## Feed data legitimacy" in (runs["baseline"] / "report.md").read_text()


def test_require_real_data_refuses_a_generated_feed(
    kafka_single: tuple[LocalKafka, ClusterState], tmp_path: Path
) -> None:
    from rich.console import Console

    from harness.run import HarnessRun

    _, state = kafka_single
    path = tmp_path / "scenario.yaml"
    path.write_text("{}")
    harness_run = HarnessRun(
        _scenario(state.bootstrap), path, Console(width=120), tmp_path / "results",
        require_real_data=True,
    )  # fmt: skip
    assert harness_run.execute() is ExitCode.INVALID_INPUT
    summary = summary_of(harness_run.run_dir)
    refused = [e for e in summary["events"] if e["kind"] == "feed_refused"]
    assert refused and "generated by feed_sim" in refused[0]["reason"]
    assert summary["stages"] == [] and summary["run"]["feed_data"]["verdict"] == "plausible"
