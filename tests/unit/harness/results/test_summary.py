"""summary.json: metadata, stage entries, histogram files, and survival of an interrupted run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from contracts.hdr import decode, new_histogram, record_many
from harness.collector.measure import NS_PER_S, Recorder, StageMeasure
from harness.results.summary import SummaryWriter, run_metadata, stage_entry

T0 = 1_750_000_000 * NS_PER_S


def _measure(label: str, lag_us: int) -> StageMeasure:
    recorder = Recorder(label)
    exchange = T0 + np.arange(1000, dtype=np.int64) * 1_000_000
    recv = exchange + 100_000
    produced = recv + 10_000
    recorder.record(exchange, recv, produced, exchange + lag_us * 1000)
    return recorder.take()


def _stage(index: int, lag_us: int) -> tuple[dict[str, Any], dict[str, HdrHistogram]]:
    measure = _measure(f"stage-{index}", lag_us)
    lateness = new_histogram()
    record_many(lateness, np.array([10, 20, 900]))
    verdicts = [
        {"name": "total_p99", "verdict": "pass", "measured": 12.0, "limit": 100.0, "unit": "ms"},
        {"name": "loss", "verdict": "fail", "measured": 0.02, "limit": 0.0, "unit": "ratio"},
    ]
    entry = stage_entry(
        index,
        f"stage-{index}",
        50 * index,
        measure=measure,
        extra_histograms={"generator_lateness": lateness},
        verdict="fail",
        verdicts=verdicts,
        resources={"rss_bytes_max": 123, "feed_mbps": 4.5},
        completeness={"sent": 10, "lost": 0},
        rollback_events=[{"kind": "step_back", "to": "stage-1"}],
        started_ns=T0,
        ended_ns=T0 + 30 * NS_PER_S,
    )
    histograms = dict(measure.histograms)
    histograms["generator_lateness"] = lateness
    return entry, histograms


def test_metadata_names_scenario_git_packages_and_host() -> None:
    meta = run_metadata("ramp_495", "stages: [50]\n", started_ns=T0, scenario_path="x.yaml")
    assert meta["scenario"]["name"] == "ramp_495" and len(meta["scenario"]["sha256"]) == 64
    assert meta["packages"]["hdrhistogram"] is not None
    assert meta["host"]["cpu_logical"] >= 1 and meta["host"]["memory_bytes"] > 0
    assert meta["started_utc"] == "2025-06-15T15:06:40.000Z"
    assert set(meta["git"]) == {"sha", "dirty"}


def test_interrupted_run_keeps_finished_stages(tmp_path: Path) -> None:
    meta = run_metadata("smoke", b"x", started_ns=T0)
    writer = SummaryWriter(tmp_path, meta, clock=lambda: T0 + 60 * NS_PER_S)
    entry, histograms = _stage(1, 5_000)
    files = writer.add_stage(entry, histograms)
    del writer  # the run "crashes" here: no finish()

    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["status"] == "running" and doc["result"] is None
    (stage,) = doc["stages"]
    assert stage["label"] == "stage-1" and stage["symbols"] == 50
    assert set(stage["latency_us"]) >= {"total", "total_uncorrected", "network", "kafka"}
    assert 4990 <= stage["latency_us"]["total"]["p99"] <= 5010
    assert stage["latency_us"]["generator_lateness"]["max"] >= 900
    assert stage["thresholds"][1]["verdict"] == "fail"
    assert stage["duration_s"] == 30.0 and stage["messages"] == 1000
    text = (tmp_path / files["total"]).read_text().strip()
    assert decode(text).get_total_count() == 1000
    assert files["total"] == "histograms/stage-1-total.hgrm.b64"
    assert not list(tmp_path.glob(".*.tmp"))


def test_finished_run(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, {"scenario": {"name": "s"}}, clock=lambda: T0)
    for index in (1, 2):
        writer.add_stage(*_stage(index, 1000 * index))
    writer.add_event("rollback", from_stage="stage-2", to_stage="stage-1")
    writer.finish(1, "rolled_back", recovery_s=12.5)
    doc = json.loads(writer.path.read_text())
    assert doc["status"] == "finished" and doc["result"]["exit_code"] == 1
    assert [s["index"] for s in doc["stages"]] == [1, 2]
    assert doc["events"][0]["kind"] == "rollback"
    assert doc["run"]["ended_utc"] == "2025-06-15T15:06:40.000Z"


def test_verify_hold_keeps_its_own_histogram_files(tmp_path: Path) -> None:
    """The verify hold after a rollback re-uses the good stage's index: its histograms must
    not overwrite that stage's (files are named by label)."""
    writer = SummaryWriter(tmp_path, run_metadata("ramp", "name: ramp\n", started_ns=T0))
    stage = stage_entry(0, "stage-1", 50, measure=_measure("stage-1", 1_000))
    verify = stage_entry(0, "verify-1", 50, measure=_measure("verify-1", 9_000))
    stage_files = writer.add_stage(stage, _measure("stage-1", 1_000).histograms)
    verify_files = writer.add_stage(verify, _measure("verify-1", 9_000).histograms)
    assert stage_files["total"] == "histograms/stage-1-total.hgrm.b64"
    assert verify_files["total"] == "histograms/verify-1-total.hgrm.b64"
    first = decode((tmp_path / stage_files["total"]).read_text())
    assert first.get_max_value() < 2_000  # still stage-1's 1 ms lags
    figures = json.loads((tmp_path / "summary.json").read_text())["stages"][0]["latency_us"]
    assert set(figures["total"]) >= {"p50", "p90", "p95", "p99", "p99.5", "p99.9", "p99.99"}


def test_each_histogram_also_as_hdrhistogram_percentile_distribution_text(
    tmp_path: Path,
) -> None:
    """The `.hgrm` text follows HdrHistogram's outputPercentileDistribution layout line by
    line: header, rows of value (ms) / percentile / total count / 1/(1-p), the summary."""
    writer = SummaryWriter(tmp_path, {"scenario": {"name": "s"}}, clock=lambda: T0)
    entry, histograms = _stage(1, 5_000)
    files = writer.add_stage(entry, histograms)
    lines = (tmp_path / files["total"].removesuffix(".b64")).read_text().splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    assert lines[1] == ""
    rows = [line.split() for line in lines[2:] if line and not line.startswith("#")]
    assert all(len(row) in (3, 4) for row in rows)  # the 100% row has no 1/(1-p)
    values = [float(row[0]) for row in rows]
    percentiles = [float(row[1]) for row in rows]
    counts = [int(row[2]) for row in rows]
    assert values == sorted(values) and percentiles == sorted(percentiles)
    assert percentiles[-1] == 1.0 and counts[-1] == histograms["total"].get_total_count()
    p99_row = next(row for row in rows if float(row[1]) >= 0.99)
    assert abs(float(p99_row[0]) - entry["latency_us"]["total"]["p99"] / 1000) < 0.05
    footer = [line for line in lines if line.startswith("#[")]
    assert footer[0].startswith("#[Mean") and footer[1].startswith("#[Max")
    hist = histograms["total"]
    mean, stddev = (float(part.split("=")[1].strip(" ]")) for part in footer[0].split(","))
    assert mean == round(hist.get_mean_value() / 1000, 3)
    assert stddev == round(hist.get_stddev() / 1000, 3)  # in ms like the mean (hdrh forgets)
    assert footer[2].startswith("#[Buckets")
