"""The storage hop's pure parts: the writer's reconcile reply read against Kafka's offsets,
the storage thresholds, the diagnosis and report wording, the scenario key."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import hdr
from harness.diagnosis import HoldEvidence, diagnose
from harness.results.report import _storage_row
from harness.scenario import Scenario, Thresholds
from harness.scenario_loading import ScenarioError, load_scenario
from harness.storage_writer import _storage_hold, storage_json
from harness.thresholds import LagPercentiles, StageMeasurement, StorageFigures, evaluate

TOTAL = LagPercentiles(p50=5_000, p95=9_000, p99=12_000, p999=15_000, max=20_000, count=1_000)


def _reply(positions: dict[str, dict[str, int]], final: int, raw: int, **extra: object) -> dict:
    storage = hdr.new_histogram()
    hdr.record_many(storage, [300_000] * 99 + [900_000])
    wait = hdr.new_histogram()
    hdr.record_many(wait, [100_000] * 100)
    insert = hdr.new_histogram()
    hdr.record_many(insert, [50_000] * 4)
    return {
        "caught_up": True,
        "behind": {},
        "positions": positions,
        "rows": {"ticks": {"raw": raw, "final": final}, "depth": {"raw": 0, "final": 0}},
        "count_s": 0.2,
        "stats": {"malformed": 2, "consumed": 100},
        "window": {
            "storage": hdr.encode(storage),
            "wait": hdr.encode(wait),
            "insert": hdr.encode(insert),
            "batches": 4,
        },
    } | extra


def test_kafka_records_count_from_each_partition_s_first_offset() -> None:
    offsets = {("t", 0): (10, 60), ("t", 1): (0, 0), ("u", 0): (0, 50)}
    hold = _storage_hold(_reply({"t": {"0": 60}, "u": {"0": 50}}, final=98, raw=101), offsets)
    rec = hold.reconciliation
    assert rec.kafka_records == 100 and rec.expected_rows == 98 and rec.mismatch == 0
    block = storage_json(hold)
    assert block["reconciliation"]["duplicates_collapsed"] == 3
    assert block["lag_us"]["count"] == 100 and block["records_per_batch"] == 25


def test_missing_rows_fail_the_hold_and_lead_the_diagnosis() -> None:
    offsets = {("t", 0): (0, 100)}
    hold = _storage_hold(_reply({"t": {"0": 100}}, final=90, raw=90), offsets)
    assert hold.reconciliation.mismatch == -8
    lag = LagPercentiles.from_dict(hdr.percentiles(hold.storage))
    figures = StorageFigures(lag=lag, caught_up=True, mismatch=-8)
    evaluation = evaluate(
        StageMeasurement("stage-1", TOTAL, loss_ratio=0.0, storage=figures),
        Thresholds(storage_lag_p99_ms=1000, sut_rss_gb=None, total_lag_p95_ms=None),
    )
    assert evaluation.broken == ("storage_rows_mismatch_max",)
    message = next(r.message for r in evaluation.results if r.name == "storage_rows_mismatch_max")
    assert "8 rows missing after FINAL" in message
    line = diagnose(
        HoldEvidence(
            total=TOTAL,
            hops={"kafka": TOTAL},
            storage=storage_json(hold, batch_ms=200),
            storage_broken=evaluation.broken,
        )
    ).line
    assert line.startswith("storage hop (Kafka append -> row visible) P99 ")
    assert "most of it waiting before the insert" in line
    assert "(P99s: wait 100 ms; the batch waits 200 ms at most, insert 50" in line
    assert "90 rows after FINAL for 100 Kafka records (8 rows missing" in line


def test_a_writer_that_fell_behind_or_failed_is_a_failure_not_a_pass() -> None:
    t = Thresholds(sut_rss_gb=None, total_lag_p95_ms=None)
    lagging = StorageFigures(None, caught_up=False, mismatch=-5)
    behind = evaluate(StageMeasurement("s", TOTAL, loss_ratio=0.0, storage=lagging), t)
    assert set(behind.broken) == {"storage_caught_up", "storage_rows_mismatch_max"}
    failed = evaluate(StageMeasurement("s", TOTAL, storage=StorageFigures(None, None, None)), t)
    messages = {r.name: r.message for r in failed.results}
    assert "did not answer" in messages["storage_caught_up"]
    assert "not measured" in messages["storage_rows_mismatch_max"]
    off = evaluate(StageMeasurement("s", TOTAL), t)
    assert not [r for r in off.results if r.name.startswith("storage")]


def test_the_report_row_says_how_the_rows_reconciled() -> None:
    offsets = {("t", 0): (0, 100)}
    ok = storage_json(_storage_hold(_reply({"t": {"0": 100}}, final=98, raw=98), offsets))
    assert _storage_row({"label": "stage-1", "storage": ok}).state == "reconciled"  # type: ignore[union-attr]
    extra = storage_json(_storage_hold(_reply({"t": {"0": 100}}, final=99, raw=99), offsets))
    assert _storage_row({"label": "s", "storage": extra}).state == "1 rows too many"  # type: ignore[union-attr]
    assert _storage_row({"label": "s", "storage": None}).state.startswith("no figures")  # type: ignore[union-attr]
    assert _storage_row({"label": "s"}) is None


def test_the_scenario_key_names_the_bad_target(tmp_path: Path) -> None:
    scen = Scenario.model_validate({"name": "x", "storage": {"clickhouse": "embedded"}})
    assert scen.storage.enabled and not Scenario.model_validate({"name": "x"}).storage.enabled
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstorage:\n  clickhouse: mysql://db\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    text = str(info.value)
    assert "bad.yaml:3" in text and "storage.clickhouse" in text and "mysql://db" in text
