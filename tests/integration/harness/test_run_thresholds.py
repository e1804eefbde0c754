"""`harness run` end to end on broken SUTs: thresholds, rollback, exit codes, results on disk.

Each test runs a whole HarnessRun (the composition root of `harness run`): a real feed_sim
process, the test core `delay_core.py` as a command SUT (reloaded by SIGHUP), the collector
process and a real 1-broker Kafka (external mode: one broker for the module). Two stages (2
then 4 symbols); the core turns slow (every message held 300 ms) or dies once it watches more
than 2 symbols.

- slow above 2 symbols: stage-2 breaks P99 -> step back to stage-1's symbols, the verify hold
  passes, the hook runs with the stage labels, exit 1; summary.json, junit.xml and lag.hlog
  hold every hold, and hdrh's own log reader reads lag.hlog back with the counts and
  percentiles of the stage histograms the harness wrote;
- slow for good once slow (`--sticky`): the verify hold fails too, exit 2;
- killed mid-stage (SIGKILL, 4 s into stage-2): detected, stage-2 fails, nothing restarts it,
  exit 2, and the results on disk are complete up to that point.

The generator-lateness limit is relaxed: these tests judge the SUT, on a shared 2-core VM.
"""

from __future__ import annotations

import csv
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psutil
import pytest
from hdrh.log import HistogramLogReader
from rich.console import Console

from contracts.hdr import decode, new_histogram
from harness.exit_codes import ExitCode
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.run import HarnessRun
from harness.scenario import Scenario

pytestmark = pytest.mark.integration

DELAY_CORE = Path(__file__).with_name("delay_core.py")
TOPIC = "iqfeed.quotes"
HOOK = """import sys, json
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(sys.argv[2:]) + "\\n")
"""


def core_command(behaviour: str, topic: str = TOPIC) -> str:
    """The command template of the test core `delay_core.py` writing `topic`."""
    return (
        f"{sys.executable} {DELAY_CORE} --feed-host {{feed_host}} --level1-port {{level1_port}}"
        " --bootstrap {bootstrap} --symbols-file {symbols_file} --universe-file {universe_file}"
        f" --topic {topic} {behaviour}"
    )


def scenario(
    bootstrap: str,
    behaviour: str,
    hook: str | None = None,
    collector: dict[str, Any] | None = None,
) -> Scenario:
    rollback: dict[str, Any] = {"policy": "step_back", "settle_s": 2, "verify_s": 6}
    if hook is not None:
        rollback["hook"] = hook
    return Scenario.model_validate(
        {
            "name": "thresholds",
            "feed": {
                "source": "generated",
                "generated": {"minutes": 2},
                "rate": {"model": "fixed", "rate_per_symbol_hz": 50},
            },
            "sut": {
                "kind": "command",
                "command": core_command(behaviour),
                "reload": {"method": "signal"},
                "record_mapping": {"topics": [TOPIC], "partitions": "universe"},
            },
            "infra": {"mode": "external", "bootstrap": bootstrap},
            "stages": [
                {"symbols": 2, "warmup_s": 3, "hold_s": 8},
                {"symbols": 4, "warmup_s": 3, "hold_s": 8},
            ],
            "thresholds": {
                "total_lag_p95_ms": 50,
                "total_lag_p99_ms": 100,
                "generator_lateness_p99_ms_max": 200,
                "achieved_rate_ratio_min": 0.5,
                "loss_ratio_max": 0.05,
                "min_samples": 100,
            },
            "rollback": rollback,
            "early_abort": {"enabled": False},
            "collector": collector or {},
            "outputs": {"plots": False},
        }
    )


@pytest.fixture(scope="module")
def bootstrap(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    _, state = kafka_single
    return state.bootstrap


def run(scen: Scenario, tmp_path: Path) -> tuple[ExitCode, Path]:
    path = tmp_path / "scenario.yaml"
    path.write_text(json.dumps(scen.model_dump(mode="json")))
    harness_run = HarnessRun(scen, path, Console(width=120), results_root=tmp_path / "results")
    code = harness_run.execute()
    return code, harness_run.run_dir


def summary_of(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


def outline(summary: dict[str, Any]) -> str:
    """The result and each hold's verdict and figures, for assertion messages."""
    rows = [str(summary["result"])]
    for s in summary["stages"]:
        total = s["latency_us"].get("total", {})
        bad = [t["message"] for t in s["thresholds"] if t["verdict"] != "pass"]
        rows.append(f"{s['label']}: {s['verdict']} P99 {total.get('p99')} us {bad}")
    return "\n".join(rows)


def stages_by_label(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["label"]: s for s in summary["stages"]}


def events(summary: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in summary["events"] if e["kind"] == kind]


def junit_cases(run_dir: Path) -> dict[str, str]:
    """`<label>.<threshold>` -> "passed" / "failed" / "skipped"."""
    root = ET.parse(run_dir / "junit.xml").getroot()
    cases = {}
    for case in root.iter("testcase"):
        outcome = "passed"
        if case.find("failure") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        label, _, rest = str(case.get("name")).partition(" (")
        cases[f"{label}.{rest.rsplit(' ', 1)[-1]}"] = outcome
    return cases


def hlog_intervals(path: Path) -> dict[str, list[Any]]:
    """Every interval of the .hlog, read by hdrh's own HistogramLogReader, by tag."""
    reader = HistogramLogReader(str(path), new_histogram())
    by_tag: dict[str, list[Any]] = {}
    while (hist := reader.get_next_interval_histogram()) is not None:
        by_tag.setdefault(hist.get_tag() or "", []).append(hist)
    return by_tag


def test_broken_stage_steps_back_verify_holds_hook_runs_exit_1(
    bootstrap: str, tmp_path: Path
) -> None:
    marker = tmp_path / "hook.log"
    hook_py = tmp_path / "hook.py"
    hook_py.write_text(HOOK)
    hook = f"{sys.executable} {hook_py} {marker} {{failed_stage}} {{good_stage}} {{outcome}}"
    code, run_dir = run(scenario(bootstrap, "--slow-above 2 --slow-ms 300", hook), tmp_path)
    summary = summary_of(run_dir)
    stages = stages_by_label(summary)
    assert code is ExitCode.ROLLED_BACK, outline(summary)
    assert summary["result"]["exit_code"] == 1
    assert stages["stage-1"]["verdict"] == "pass", outline(summary)
    assert stages["stage-2"]["verdict"] == "fail", outline(summary)
    assert stages["verify-1"]["verdict"] == "pass", outline(summary)
    assert stages["stage-2"]["latency_us"]["total"]["p99"] > 100_000
    broken = {v["name"] for v in stages["stage-2"]["thresholds"] if v["verdict"] == "fail"}
    assert "total_lag_p99_ms" in broken
    # The hook ran once, at the rollback, with the stage labels.
    assert [json.loads(line) for line in marker.read_text().splitlines()] == [
        ["stage-2", "stage-1", "pending"]
    ]
    assert events(summary, "hook_ran")[0]["exit_code"] == 0
    rollback = events(summary, "rollback_ended")[0]
    assert rollback["outcome"] == "held" and rollback["recovery_s"] > 0
    cases = junit_cases(run_dir)
    assert cases["stage-2.total_lag_p99_ms"] == "failed"
    assert cases["verify-1.total_lag_p99_ms"] == "passed"
    # The harness's own cost per hold: the collector process's CPU over what it consumed
    # between two counter reads at the hold's edges (each within a poll batch of the edge).
    for label in ("stage-1", "stage-2", "verify-1"):
        cost = stages[label]["resources"]
        assert abs(cost["collector_messages"] - stages[label]["messages"]) <= 1_000
        assert cost["collector_cpu_seconds"] > 0 and cost["collector_cpu_us_per_message"] > 0
        assert cost["collector_cpu_cores"] > 0

    # Locust ran headless beside the run: its shape's users followed the stages (2 symbols,
    # then 4, then back to 2 for the verify hold).
    with (run_dir / "locust" / "locust_stats_history.csv").open() as f:
        users = [int(r["User Count"]) for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    steps = [u for i, u in enumerate(users) if u and (i == 0 or u != users[i - 1])]
    assert steps[:3] == [2, 4, 2], users

    # lag.hlog, read back by hdrh's log reader: per tag, the intervals add up to the
    # stage histogram the harness wrote (same count, same percentiles).
    intervals = hlog_intervals(run_dir / "lag.hlog")
    for label in ("stage-1", "stage-2", "verify-1"):
        for tag, measure in ((label, "total"), (f"{label}-uncorrected", "total_uncorrected")):
            assert tag in intervals, f"no interval tagged {tag} in lag.hlog"
            merged = new_histogram()
            for hist in intervals[tag]:
                merged.add(hist)
            stage_file = run_dir / stages[label]["histogram_files"][measure]
            stage_hist = decode(stage_file.read_text())
            figures = stages[label]["latency_us"][measure]
            assert merged.get_total_count() == stage_hist.get_total_count() == figures["count"]
            for p in (50, 99, 99.9):
                assert merged.get_value_at_percentile(p) == figures[f"p{p:g}"], (tag, p)


def test_distributed_collector_run_steps_back_like_the_single_collector(
    bootstrap: str, tmp_path: Path
) -> None:
    """The same broken stage measured by two collector shards on local Locust workers behind
    the Locust master: the same verdicts and exit code; workers and shards stopped by PID."""
    scen = scenario(bootstrap, "--slow-above 2 --slow-ms 300", collector={"workers": 2})
    code, run_dir = run(scen, tmp_path)
    summary = summary_of(run_dir)
    stages = stages_by_label(summary)
    assert code is ExitCode.ROLLED_BACK, outline(summary)
    assert [stages[label]["verdict"] for label in ("stage-1", "stage-2", "verify-1")] == [
        "pass",
        "fail",
        "pass",
    ], outline(summary)
    assert stages["stage-2"]["latency_us"]["total"]["p99"] > 100_000
    started = events(summary, "collector_started")[0]
    assert started["master"].startswith("127.0.0.1:")
    assert len(started["local_worker_pids"]) == 2
    assert started["partitions"] == 0  # universe partitions: assigned per stage, by shard
    for pid in [started["collector_pid"], *started["local_worker_pids"]]:
        assert not psutil.pid_exists(pid), f"process {pid} left behind"
    for i in range(2):
        assert (run_dir / "logs" / f"locust-worker-{i}.log").exists()
    completeness = stages["stage-1"]["completeness"]
    assert completeness["received"] > 0 and completeness["lost_beyond_tolerance"] == 0
    assert stages["stage-1"]["resources"]["collector_cpu_seconds"] > 0  # both shards' CPU


def test_sut_that_stays_broken_gives_exit_2(bootstrap: str, tmp_path: Path) -> None:
    code, run_dir = run(scenario(bootstrap, "--slow-above 2 --slow-ms 300 --sticky"), tmp_path)
    summary = summary_of(run_dir)
    stages = stages_by_label(summary)
    assert code is ExitCode.ROLLBACK_FAILED, outline(summary)
    assert stages["stage-2"]["verdict"] == "fail", outline(summary)
    assert stages["verify-1"]["verdict"] == "fail", outline(summary)
    assert events(summary, "rollback_ended")[0]["outcome"] == "not_restored"


def test_sut_killed_mid_stage_fails_the_stage_and_keeps_results(
    bootstrap: str, tmp_path: Path
) -> None:
    code, run_dir = run(scenario(bootstrap, "--die-above 2 --die-after-s 7"), tmp_path)
    summary = summary_of(run_dir)
    stages = stages_by_label(summary)
    assert code is ExitCode.ROLLBACK_FAILED, outline(summary)
    assert summary["status"] == "finished"
    assert events(summary, "sut_died")[0]["label"] == "stage-2"
    assert stages["stage-1"]["verdict"] == "pass"
    assert stages["stage-2"]["verdict"] == "fail"
    assert stages["stage-2"]["latency_us"]["total"]["count"] > 0  # measured until it died
    ended = [e for e in events(summary, "stage_ended") if e["label"] == "stage-2"]
    assert ended and ended[0]["verdict"] == "fail"
    aborted = events(summary, "early_abort")
    assert aborted and "exited" in aborted[0]["reason"]
    # Results on disk up to that point: both stages in junit.xml, stage-1 in lag.hlog.
    cases = junit_cases(run_dir)
    assert cases["stage-1.total_lag_p99_ms"] == "passed"
    assert cases["stage-2.sut_alive"] == "failed"
    assert "stage-1" in hlog_intervals(run_dir / "lag.hlog")
    assert (run_dir / "histograms" / "stage-1-total.hgrm.b64").exists()
