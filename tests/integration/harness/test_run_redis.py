"""`harness run` with `infra.redis: true`: the run starts a real redis-server (AOF, fsync every
second), the reference core writes its books there, every hold reports Redis's memory, the
snapshot write lag and the core's book memory; redis-server killed during stage 2 is reported
(event and figures) and the Kafka path goes on: every hold still passes with nothing lost.
`harness infra up --redis` starts the same server and `infra down` stops it by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from harness.exit_codes import ExitCode
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.scenario import Scenario
from tests.integration.harness.test_run_thresholds import outline, stages_by_label, summary_of

pytestmark = pytest.mark.integration


def _kill_redis_in_stage_2(results: Path, done: threading.Event) -> None:
    """Once stage 2 holds (live.json), SIGKILL the run's redis-server."""
    while not done.is_set():
        for live in results.glob("*/live.json"):
            try:
                status = json.loads(live.read_text())
            except ValueError:
                continue
            state = live.parent / "redis-state" / "redis.json"
            if (
                status.get("label") == "stage-2"
                and status.get("phase") == "hold"
                and state.exists()
            ):
                time.sleep(2)
                os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)
                return
        time.sleep(0.2)


def test_a_run_with_redis_reports_it_and_survives_its_death(
    kafka_single: tuple[LocalKafka, ClusterState], tmp_path: Path
) -> None:
    from rich.console import Console

    from harness.run import HarnessRun

    _, state = kafka_single
    scen = Scenario.model_validate(
        {
            "name": "with-redis",
            "feed": {
                "source": "generated",
                "generated": {"minutes": 2},
                "rate": {"model": "fixed", "rate_per_symbol_hz": 40},
                "level2_rate_per_symbol_hz": 10,
            },
            "sut": {"kind": "reference", "connections": 1, "redis_interval_s": 0.5},
            "infra": {"mode": "external", "bootstrap": state.bootstrap, "redis": True},
            "stages": [
                {"symbols": 2, "warmup_s": 3, "hold_s": 8},
                {"symbols": 4, "warmup_s": 3, "hold_s": 8},
            ],
            "thresholds": {
                "total_lag_p95_ms": None,
                "total_lag_p99_ms": None,
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
    results = tmp_path / "results"
    done = threading.Event()
    killer = threading.Thread(target=_kill_redis_in_stage_2, args=(results, done), daemon=True)
    killer.start()
    try:
        harness_run = HarnessRun(scen, path, Console(width=120), results_root=results)
        code = harness_run.execute()
    finally:
        done.set()
        killer.join(5)
    summary = summary_of(harness_run.run_dir)
    assert code is ExitCode.PASSED, outline(summary)
    assert summary["run"]["redis"]["appendfsync"] == "everysec"
    stages = stages_by_label(summary)
    one, two = stages["stage-1"]["resources"], stages["stage-2"]["resources"]
    assert one["redis"]["alive"] and one["redis"]["used_memory_bytes"] > 0
    assert one["redis"]["snapshot_cycles"] >= 5 and one["redis"]["snapshot_errors"] == 0
    assert 0 < one["redis"]["snapshot_write_ms_max"] < 1000
    assert one["book_memory_bytes_max"] > 0
    assert not two["redis"]["alive"] and two["redis"]["snapshot_errors"] >= 1
    assert [e["label"] for e in summary["events"] if e["kind"] == "redis_died"] == ["stage-2"]
    for label in ("stage-1", "stage-2"):
        assert stages[label]["completeness"]["lost_beyond_tolerance"] == 0, label
    config = json.loads((harness_run.run_dir / "sut" / "ingest-config.json").read_text())
    assert config["redis"]["enabled"] and config["redis"]["interval_s"] == 0.5
    assert not (harness_run.run_dir / "redis-state" / "redis.json").exists()  # stopped
    report = (harness_run.run_dir / "report.md").read_text()
    resources = report[report.index("## Resources") :].splitlines()
    row = next(line for line in resources if line.startswith("| stage-1 |")).split("|")
    assert float(row[3]) > 0 and float(row[5]) > 0, row  # book memory, Redis used (MB)


def test_infra_up_with_redis_starts_it_as_reviewed_and_down_stops_it(tmp_path: Path) -> None:
    harness = str(Path(sys.executable).parent / "harness")
    up = subprocess.run(
        [harness, "infra", "up", "--redis", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        bootstrap, url = up.stdout.split()
        client = redis.Redis.from_url(url)
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
        pid = json.loads((tmp_path / "redis.json").read_text())["pid"]
    finally:
        down = subprocess.run(
            [harness, "infra", "down", "--state-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert down.returncode == 0 and f"stopped redis-server pid {pid}" in down.stderr
    assert bootstrap.startswith("127.0.0.1:")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
