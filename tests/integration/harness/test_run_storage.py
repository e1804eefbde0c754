"""`harness run` with `storage.clickhouse: embedded`: the run starts the real
`ingest clickhouse-writer` (chdb in the run folder) on the reference core's topics, each hold
records the storage hop (Kafka append -> row visible) with its wait (fetch and batch) and
insert parts, and reconciles the rows after FINAL with the records Kafka holds. After the run
the test counts both sides itself: the chdb folder's rows after FINAL against Kafka's end
offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.exit_codes import ExitCode
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.scenario import Scenario
from harness.storage_writer import end_offsets
from ingest.storage import open_store
from tests.integration.harness.test_run_thresholds import outline, stages_by_label, summary_of

pytestmark = pytest.mark.integration


def test_a_run_with_storage_measures_the_hop_and_reconciles_rows(
    kafka_single: tuple[LocalKafka, ClusterState], tmp_path: Path
) -> None:
    from rich.console import Console

    from harness.run import HarnessRun

    _, state = kafka_single
    scen = Scenario.model_validate(
        {
            "name": "with-storage",
            "feed": {
                "source": "generated",
                "generated": {"minutes": 2},
                "rate": {"model": "fixed", "rate_per_symbol_hz": 40},
                "level2_rate_per_symbol_hz": 10,
            },
            "sut": {"kind": "reference", "connections": 1},
            "infra": {"mode": "external", "bootstrap": state.bootstrap},
            "storage": {"clickhouse": "embedded", "batch_ms": 100},
            "stages": [
                {"symbols": 2, "warmup_s": 3, "hold_s": 8},
                {"symbols": 4, "warmup_s": 3, "hold_s": 8},
            ],
            "thresholds": {
                "total_lag_p95_ms": None,
                "total_lag_p99_ms": None,
                "storage_lag_p99_ms": 30_000,
                "generator_lateness_p99_ms_max": 1000,
                "achieved_rate_ratio_min": 0.5,
            },
            "rollback": {"policy": "step_back", "settle_s": 2, "verify_s": 6},
            "early_abort": {"enabled": False},
            "outputs": {"plots": False, "locust": False},
        }
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(json.dumps(scen.model_dump(mode="json")))
    harness_run = HarnessRun(scen, path, Console(width=120), results_root=tmp_path / "results")
    code = harness_run.execute()
    summary = summary_of(harness_run.run_dir)
    assert code is ExitCode.PASSED, outline(summary)
    run_dir = harness_run.run_dir
    assert summary["run"]["storage"]["clickhouse"] == str(run_dir / "clickhouse")
    topics = summary["run"]["storage"]["topics"]
    previous_rows = 0
    for label, stage in stages_by_label(summary).items():
        block = stage["storage"]
        rec = block["reconciliation"]
        assert rec["caught_up"] and rec["mismatch"] == 0, (label, rec)
        assert rec["malformed"] == 0 and rec["rows_final"] == rec["kafka_records"] > previous_rows
        previous_rows = rec["rows_final"]
        assert set(block["rows"]) == {"ticks", "depth"} and block["rows"]["depth"]["final"] > 0
        lag, wait = block["lag_us"], block["wait_us"]
        # Every Level 1 and Level 2 record of the hold reached ClickHouse and was measured.
        assert lag["count"] == wait["count"] >= stage["completeness"]["received"] * 0.9, label
        assert 0 < wait["p99"] <= lag["p99"] < 30_000_000 and block["batches"] >= 2
        assert block["insert_us"]["count"] >= 2
        checks = {t["name"]: t["verdict"] for t in stage["thresholds"]}
        for name in ("storage_lag_p99_ms", "storage_caught_up", "storage_rows_mismatch_max"):
            assert checks[name] == "pass", (label, name)
        for name in ("storage", "storage_wait", "storage_insert"):
            assert (run_dir / "histograms" / f"{label}-{name}.hgrm").is_file()
        assert "storage hop (Kafka append -> row visible) P99" in stage["diagnosis"]["line"]
    # The writer was stopped after the SUT, having written the last records: both sides agree.
    assert [e for e in summary["events"] if e["kind"] == "storage_failed"] == []
    in_kafka = sum(high - low for low, high in end_offsets(state.bootstrap, topics).values())
    with open_store(run_dir / "clickhouse") as store:
        rows = store.count("ticks", final=True) + store.count("depth", final=True)
    assert rows == in_kafka >= previous_rows
    report = (run_dir / "report.md").read_text()
    storage = report[report.index("## Storage") :].splitlines()
    assert next(line for line in storage if line.startswith("| stage-2 |")).endswith(
        "| reconciled |"
    )
