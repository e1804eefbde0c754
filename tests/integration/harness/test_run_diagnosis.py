"""`harness run` says why a stage fails: test-bed verdict, diagnosis, producer evidence, and
users' own cores (real feed_sim, real Kafka, real processes).

- A failing SUT (the test core turns slow above 2 symbols) on a host saturated by CPU burners
  declared as parts of the test bed (`test_bed.parts`): the failing stage is INCONCLUSIVE,
  naming the burners, exit 5. The same scenario without the burners: the stage FAILS, the
  rollback holds, exit 1, and every hold has a diagnosis line naming its hop.
- A core of one's own through `sut: kind: command`, writing its own topic with no type field,
  in local mode: the harness creates the topic (LogAppendTime), completeness is exact (0 lost)
  and the breach rolls back.
- The reference core: its /metrics carries librdkafka's producer statistics, and each hold in
  summary.json has the producer figures, the CPU of every part and the diagnosis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.exit_codes import ExitCode
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.scenario import Scenario
from tests.integration.harness.test_run_thresholds import (
    core_command,
    outline,
    run,
    stages_by_label,
    summary_of,
)

pytestmark = pytest.mark.integration

BURNER_MARK = "harness-test-cpu-burner"


def two_stages(name: str, sut: dict[str, Any], **sections: Any) -> Scenario:
    """2 then 4 symbols at 50 msg/s, 3 s warm-ups, 8 s holds, a quick step back; thresholds
    relaxed for the generator on a shared 2-core VM; `sections` add or replace keys."""
    return Scenario.model_validate(
        {
            "name": name,
            "feed": {
                "source": "generated",
                "generated": {"minutes": 2},
                "rate": {"model": "fixed", "rate_per_symbol_hz": 50},
            },
            "sut": sut,
            "stages": [
                {"symbols": 2, "warmup_s": 3, "hold_s": 8},
                {"symbols": 4, "warmup_s": 3, "hold_s": 8},
            ],
            "thresholds": {"generator_lateness_p99_ms_max": 1000, "achieved_rate_ratio_min": 0.5},
            "rollback": {"policy": "step_back", "settle_s": 2, "verify_s": 6},
            "early_abort": {"enabled": False},
            "outputs": {"plots": False, "locust": False},
            **sections,
        }
    )


def failing_scenario(bootstrap: str) -> Scenario:
    """The core holds every message 300 ms above 2 symbols; the scenario declares the burners
    (when running) as part of the test bed."""
    return two_stages(
        "testbed",
        {
            "kind": "command",
            "command": core_command("--slow-above 2 --slow-ms 300"),
            "reload": {"method": "signal"},
            "record_mapping": {"topics": ["iqfeed.quotes"], "partitions": "universe"},
        },
        infra={"mode": "external", "bootstrap": bootstrap},
        thresholds={
            "generator_lateness_p99_ms_max": 1000,
            "achieved_rate_ratio_min": 0.5,
            "loss_ratio_max": 0.05,
        },
        test_bed={"parts": {"burners": {"match": BURNER_MARK}}},
    )


@pytest.fixture(scope="module")
def bootstrap(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    _, state = kafka_single
    return state.bootstrap


@pytest.fixture
def burners() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One busy process per core, stopped by PID."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass", BURNER_MARK])
        for _ in range(max(2, len(os.sched_getaffinity(0))))
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def bed_result(stage: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in stage["thresholds"] if t["name"] == "test_bed")


def test_a_failing_sut_on_a_bed_saturated_by_its_own_parts_is_inconclusive(
    bootstrap: str, tmp_path: Path, burners: list[subprocess.Popen[bytes]]
) -> None:
    code, run_dir = run(failing_scenario(bootstrap), tmp_path)
    summary = summary_of(run_dir)
    judged = summary["stages"]
    assert code is ExitCode.INCONCLUSIVE, outline(summary)
    assert "the test bed was saturated" in summary["result"]["verdict"]
    assert all(s["verdict"] != "fail" for s in judged), outline(summary)
    inconclusive = [s for s in judged if s["verdict"] == "inconclusive"]
    assert inconclusive, outline(summary)
    bed = bed_result(inconclusive[0])
    assert bed["verdict"] == "inconclusive"
    assert bed["message"].startswith("test bed saturated: burners ")
    load = inconclusive[0]["resources"]["test_bed"]
    assert load["parts_cores"]["burners"] > 0.5
    assert "burners" in load["harness_parts"]
    assert load["busy_cores"] >= 0.9 * load["cores"]
    print(f"\n{inconclusive[0]['label']}: {bed['message']}")


def test_the_same_failing_sut_on_an_idle_bed_fails_and_is_diagnosed(
    bootstrap: str, tmp_path: Path
) -> None:
    code, run_dir = run(failing_scenario(bootstrap), tmp_path)
    summary = summary_of(run_dir)
    stages = stages_by_label(summary)
    assert code is ExitCode.ROLLED_BACK, outline(summary)
    assert stages["stage-2"]["verdict"] == "fail", outline(summary)
    bed = bed_result(stages["stage-2"])
    assert (
        bed["verdict"] == "pass"
        and "burners" not in stages["stage-2"]["resources"]["test_bed"]["parts_cores"]
    )
    # The core holds messages before producing them: processing holds the tail.
    diagnosis = stages["stage-2"]["diagnosis"]
    assert diagnosis["hop"] == "processing", diagnosis
    assert diagnosis["line"].startswith("processing hop ")
    assert "harness consumer (delivery, not in the SUT's figures)" in diagnosis["line"]
    for label in ("stage-1", "verify-1"):
        assert stages[label]["diagnosis"]["line"], label
    assert summary["run"]["lag_basis"]["ends_at"] == "broker_append_time"
    parts = stages["stage-2"]["resources"]["test_bed"]["parts_cores"]
    assert {"sut", "feed_sim", "collector", "runner"} <= set(parts)
    root = ET.parse(run_dir / "junit.xml").getroot()
    failures = [f.get("message", "") for f in root.iter("failure")]
    assert any("diagnosis: processing hop" in m for m in failures), failures
    print(f"\nstage-2 diagnosis: {diagnosis['line']}")


def test_a_users_core_with_its_own_topic_and_no_type(tmp_path: Path) -> None:
    topic = "user.ticks"
    scen = two_stages(
        "own-core",
        {
            "kind": "command",
            "command": core_command("--slow-above 2 --slow-ms 300 --no-type", topic),
            "reload": {"method": "signal"},
            "record_mapping": {"topics": [topic], "type": None, "partitions": "universe"},
        },
        infra={"mode": "local"},
    )
    code, run_dir = run(scen, tmp_path)
    summary = summary_of(run_dir)
    stages = stages_by_label(summary)
    assert code is ExitCode.ROLLED_BACK, outline(summary)
    assert summary["run"]["lag_basis"]["topics"] == {topic: "LogAppendTime"}
    for label in ("stage-1", "verify-1"):
        completeness = stages[label]["completeness"]
        assert completeness["received"] > 0, (label, completeness)
        assert completeness["lost"] == 0, (label, completeness)
        assert completeness["missing_keys"] == [] and completeness["unexpected_keys"] == []
    assert stages["stage-2"]["verdict"] == "fail"
    assert "broker-1" in stages["stage-1"]["resources"]["test_bed"]["parts_cores"]


def test_the_reference_core_s_producer_evidence_per_hold(bootstrap: str, tmp_path: Path) -> None:
    scen = Scenario.model_validate(
        {
            "name": "reference-evidence",
            "feed": {
                "source": "generated",
                "generated": {"minutes": 2},
                "rate": {"model": "fixed", "rate_per_symbol_hz": 50},
            },
            "sut": {"kind": "reference", "connections": 1},
            "infra": {"mode": "external", "bootstrap": bootstrap},
            "stages": [{"symbols": 3, "warmup_s": 3, "hold_s": 6}],
            "thresholds": {
                "total_lag_p95_ms": None,
                "total_lag_p99_ms": None,
                "generator_lateness_p99_ms_max": 1000,
                "achieved_rate_ratio_min": 0.5,
                "loss_ratio_max": 0.05,
            },
            "outputs": {"plots": True, "locust": False},
        }
    )
    code, run_dir = run(scen, tmp_path)
    summary = summary_of(run_dir)
    stage = stages_by_label(summary)["stage-1"]
    assert code is ExitCode.PASSED, outline(summary)
    producer = stage["resources"]["producer"]
    assert producer is not None, stage["resources"]
    assert producer["produce_requests_per_s"] > 0 and producer["records_per_request"] >= 1
    assert producer["queue_time_p99_ms"] is not None and producer["rtt_p99_ms"] is not None
    diagnosis = stage["diagnosis"]
    if diagnosis["hop"] == "kafka":  # the producer evidence is what explains that hop
        assert "ProduceRequests/s" in diagnosis["line"], diagnosis
    lines = [json.loads(line) for line in (run_dir / "sut-metrics.jsonl").read_text().splitlines()]
    assert lines and all(line["label"] == "stage-1" for line in lines)
    assert "kafka_producer_produce_requests_total" in lines[-1]["samples"]
    assert (run_dir / "plots" / "cpu-by-part.png").stat().st_size > 0
    assert stage["resources"]["test_bed"]["parts_cores"]["sut"] > 0
    # The run ends with its report: every plot embedded, the .hgrm text beside each histogram.
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list((run_dir / "plots").glob("*.png")))
    assert "PASS" in (run_dir / "report.md").read_text().splitlines()[2]
    assert (run_dir / "histograms" / "stage-1-total.hgrm").read_text().startswith("       Value")


def test_the_reference_core_on_fewer_partitions_than_symbols(tmp_path: Path) -> None:
    """The layout option: 8 symbols on topics of 3 partitions, the harness's own broker with a
    named profile; the core folds its partitions, the collector reads them, nothing is lost."""
    scen = Scenario.model_validate(
        {
            "name": "folded-layout",
            "feed": {
                "source": "generated",
                "generated": {"minutes": 2},
                "rate": {"model": "fixed", "rate_per_symbol_hz": 50},
            },
            "sut": {
                "kind": "reference",
                "connections": 2,
                "record_mapping": {"topic_partitions": 3},
            },
            "infra": {"mode": "local", "broker_profile": "small-host"},
            "stages": [{"symbols": 8, "warmup_s": 3, "hold_s": 6}],
            "thresholds": {
                "total_lag_p95_ms": None,
                "total_lag_p99_ms": None,
                "generator_lateness_p99_ms_max": 1000,
                "achieved_rate_ratio_min": 0.5,
                "loss_ratio_max": 0,
            },
            "outputs": {"plots": False, "locust": False},
        }
    )
    code, run_dir = run(scen, tmp_path)
    summary = summary_of(run_dir)
    stage = stages_by_label(summary)["stage-1"]
    assert code is ExitCode.PASSED, outline(summary)
    assert summary["run"]["broker_profile"] == "small-host"
    assert set(summary["run"]["topic_partitions"].values()) == {3}
    completeness = stage["completeness"]
    # Nothing lost beyond the in-flight tolerance at the hold's edges (what loss_ratio_max
    # judges: a record sent in the hold's last second may arrive after it closes).
    assert completeness["received"] >= 8 * 50 * 6 * 0.5
    assert completeness["lost_beyond_tolerance"] == 0, completeness
    assert completeness["missing_keys"] == [] and completeness["unexpected_keys"] == []
    config = json.loads((run_dir / "sut" / "ingest-config.json").read_text())
    assert config["kafka"]["partitions"] == 3
