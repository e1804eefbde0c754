"""harness compare: regressions found at the right stage and measure, noise tolerated, runs of
different scenarios refused, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.results.compare import NotComparable, compare_runs, write_comparison
from harness.results.summary import SummaryWriter, run_metadata
from tests.unit.harness.results.test_summary import T0, _stage


def _run(folder: Path, lags_us: list[int], scenario: str = "stages: [50, 100]\n") -> Path:
    folder.mkdir()
    writer = SummaryWriter(folder, run_metadata("ramp", scenario, started_ns=T0))
    for index, lag in enumerate(lags_us, start=1):
        entry, histograms = _stage(index, lag)
        entry["verdict"] = "pass"
        entry["completeness"] = {"sent": 1000, "received": 1000, "lost": 0, "duplicates": 0}
        writer.add_stage(entry, histograms)
    writer.finish(0, "all stages passed")
    return folder


def test_a_slower_stage_is_a_regression_named_by_stage_and_measure(tmp_path: Path) -> None:
    baseline = _run(tmp_path / "base", [5_000, 10_000])
    slower = _run(tmp_path / "slow", [5_000, 30_000])
    result = compare_runs(slower, baseline)
    assert result.regressed and result.stages == ["stage-1", "stage-2"]
    assert any(r.startswith("stage-2 total P99 30.") for r in result.regressions)
    assert not any(r.startswith("stage-1") for r in result.regressions)
    p99 = next(d for d in result.deltas if (d.stage, d.measure, d.figure) == ("stage-2", "total", "p99"))
    assert p99.change is not None and 19.5 < p99.change < 20.5
    markdown, html = write_comparison(result)
    assert "**REGRESSION**" in markdown.read_text()
    assert html.read_text().count("data:image/png;base64,") == 2
    assert (slower / "compare" / "stage-2-percentiles.png").stat().st_size > 0


def test_a_run_against_itself_and_noise_under_the_floor_pass(tmp_path: Path) -> None:
    baseline = _run(tmp_path / "base", [5_000, 10_000])
    assert not compare_runs(baseline, baseline).regressed
    noisy = _run(tmp_path / "noisy", [6_500, 11_500])  # +30% at stage 1 but only 1.5 ms
    assert not compare_runs(noisy, baseline).regressed


def test_a_stage_not_reached_or_failed_is_a_regression(tmp_path: Path) -> None:
    baseline = _run(tmp_path / "base", [5_000, 10_000])
    short = _run(tmp_path / "short", [5_000])
    assert compare_runs(short, baseline).regressions == [
        "stage-2: the baseline ran it, the run never reached it"
    ]


def test_runs_of_different_scenarios_are_not_comparable(tmp_path: Path) -> None:
    baseline = _run(tmp_path / "base", [5_000])
    other = _run(tmp_path / "other", [5_000], scenario="stages: [60]\n")
    with pytest.raises(NotComparable, match="different scenarios"):
        compare_runs(other, baseline)


def test_exit_codes(tmp_path: Path) -> None:
    baseline = _run(tmp_path / "base", [5_000, 10_000])
    slower = _run(tmp_path / "slow", [5_000, 30_000])
    other = _run(tmp_path / "other", [5_000], scenario="x: 1\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["compare", str(baseline), str(baseline), "--no-plots"]).exit_code == 0
    assert runner.invoke(cli, ["compare", str(slower), str(baseline), "--no-plots"]).exit_code == 1
    assert runner.invoke(cli, ["compare", str(other), str(baseline)]).exit_code == 5
    assert runner.invoke(cli, ["compare", str(tmp_path / "none"), str(baseline)]).exit_code == 3


def test_accepting_a_baseline_stores_what_compare_needs(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", [5_000, 10_000])
    runner = CliRunner()
    into = tmp_path / "baselines"
    result = runner.invoke(cli, ["baseline", "accept", str(run), "--into", str(into)])
    assert result.exit_code == 0, result.output
    stored = into / "ramp"
    assert (stored / "summary.json").exists() and list((stored / "histograms").glob("*.b64"))
    assert not compare_runs(run, stored).regressed  # the copy compares like the original
    slower = _run(tmp_path / "slow", [5_000, 30_000])
    assert compare_runs(slower, stored).regressed
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    SummaryWriter(unfinished, run_metadata("ramp", "x", started_ns=T0))
    result = runner.invoke(cli, ["baseline", "accept", str(unfinished), "--into", str(into)])
    assert result.exit_code == 3
