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
    p99 = next(
        d for d in result.deltas if (d.stage, d.measure, d.figure) == ("stage-2", "total", "p99")
    )
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
    assert (
        runner.invoke(cli, ["compare", str(baseline), str(baseline), "--no-plots"]).exit_code == 0
    )
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


def _seconds(folder: Path, label: str, p99_ms: list[float]) -> None:
    """lag.hlog intervals of one hold: one second per value, each second's P99 near it."""
    from contracts.hdr import new_histogram
    from harness.results.hlog import append_intervals

    rows = []
    for i, top in enumerate(p99_ms):
        hist = new_histogram()
        hist.record_value(1_000, 98)
        hist.record_value(int(top * 1000), 2)
        rows.append((T0 // 1_000_000_000 + 10 + i, hist))
    for tag in (label, f"{label}-uncorrected"):
        append_intervals(folder / "lag.hlog", T0, tag, rows)


def test_a_p99_moved_by_a_few_bad_seconds_is_noise_a_shifted_one_a_regression(
    tmp_path: Path,
) -> None:
    """Both runs' hold P99 differ beyond tolerance and floor; the per-second P99s decide."""
    calm = [10.0 + (i % 3) for i in range(30)]
    baseline = _run(tmp_path / "base", [5_000, 10_000])
    _seconds(baseline, "stage-2", calm)
    spiky = _run(tmp_path / "spiky", [5_000, 30_000])
    _seconds(spiky, "stage-2", [76.0 if i == 12 else v for i, v in enumerate(calm)])
    result = compare_runs(spiky, baseline)
    assert not result.regressed, result.regressions
    assert any(
        n.startswith("stage-2 total P99 30.") and "Mann-Whitney p = " in n for n in result.noise
    )
    slower = _run(tmp_path / "slower", [5_000, 30_000])
    _seconds(slower, "stage-2", [v + 20.0 for v in calm])
    result = compare_runs(slower, baseline)
    assert any(r.startswith("stage-2 total P99 30.") for r in result.regressions), result
    assert "per-second total P99 median 31.0" in result.regressions[0]
    assert "vs 11.0" in result.regressions[0] and "over 30 / 30 s" in result.regressions[0]


def test_a_consistent_shift_of_the_typical_second_under_the_floor_is_noise(
    tmp_path: Path,
) -> None:
    """What CI once met on a busy host: the hold's P99 1.2 -> 3.2 ms (over tolerance and floor)
    and every second a little slower (Mann-Whitney significant), but the per-second median
    only 0.55 ms higher. Under the floor: noise, not a regression."""
    calm = [1.1 + 0.02 * (i % 5) for i in range(10)]
    baseline = _run(tmp_path / "base", [1_000, 1_200])
    _seconds(baseline, "stage-2", calm)
    busier = _run(tmp_path / "busier", [1_000, 3_230])
    _seconds(busier, "stage-2", [v + 0.55 for v in calm])
    result = compare_runs(busier, baseline)
    assert not result.regressed, result.regressions
    noted = [n for n in result.noise if n.startswith("stage-2 total P99 3.23")]
    assert noted and "Mann-Whitney p = " in noted[0], result.noise
