"""harness.testbed: CPU by part, the host's load from /proc/stat, and the test-bed verdict."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.sampler import ResourceSample
from harness.scenario import TestBedConfig
from harness.testbed import (
    TEST_BED,
    CpuTicks,
    HostLoad,
    Part,
    PartsCpu,
    TestBedLoad,
    apply,
    judge,
    read_proc_stat,
)
from harness.thresholds import StageEvaluation, ThresholdResult, Verdict

CONFIG = TestBedConfig()


def load(busy: float, parts: dict[str, float], steal: float = 0.0) -> TestBedLoad:
    harness = tuple(p for p in parts if p != "sut")
    return TestBedLoad(2, busy, busy, steal, 3.0, 5, parts, harness, 10)


def failing() -> StageEvaluation:
    broken = ThresholdResult("total_lag_p99_ms", Verdict.FAIL, 272.0, 100.0, "ms", "P99 272 ms")
    return StageEvaluation("stage-1", Verdict.FAIL, (broken,), False)


def test_a_saturated_bed_mostly_the_harness_s_makes_a_failure_inconclusive() -> None:
    bed = load(1.9, {"broker-1": 0.86, "feed_sim": 0.41, "collector": 0.2, "sut": 0.4})
    judgement = judge(bed, CONFIG)
    assert judgement.saturated and judgement.blames_test_bed
    assert judgement.message.startswith("test bed saturated: broker-1 0.86, feed_sim 0.41")
    assert "of 2 cores" in judgement.message
    judged = apply(failing(), judgement, CONFIG)
    assert judged.verdict is Verdict.INCONCLUSIVE
    assert judged.inconclusive == (TEST_BED,)
    assert judged.results[-1].message == judgement.message


def test_a_pass_stays_a_pass_on_a_saturated_bed() -> None:
    bed = load(1.95, {"broker-1": 1.2, "sut": 0.5})
    passed = StageEvaluation("stage-1", Verdict.PASS, (), False)
    judged = apply(passed, judge(bed, CONFIG), CONFIG)
    assert judged.verdict is Verdict.PASS
    assert judged.results[-1].name == TEST_BED and judged.results[-1].verdict is Verdict.PASS


def test_a_bed_saturated_by_the_sut_keeps_the_failure() -> None:
    judgement = judge(load(1.9, {"broker-1": 0.3, "feed_sim": 0.1, "sut": 1.4}), CONFIG)
    assert judgement.saturated and not judgement.blames_test_bed
    assert "mostly by the SUT" in judgement.message
    assert apply(failing(), judgement, CONFIG).verdict is Verdict.FAIL


def test_an_idle_bed_keeps_the_failure() -> None:
    judgement = judge(load(0.6, {"broker-1": 0.4, "sut": 0.1}), CONFIG)
    assert not judgement.saturated
    assert apply(failing(), judgement, CONFIG).verdict is Verdict.FAIL


def test_steal_alone_saturates_and_the_rule_can_be_turned_off() -> None:
    bed = load(1.0, {"broker-1": 0.6, "sut": 0.3}, steal=0.08)
    judgement = judge(bed, CONFIG)
    assert judgement.saturated and judgement.blames_test_bed
    off = TestBedConfig(enabled=False)
    assert apply(failing(), judgement, off).verdict is Verdict.FAIL


def test_limits_are_the_scenario_s() -> None:
    bed = load(1.5, {"broker-1": 1.0, "sut": 0.5})  # 75% busy
    assert not judge(bed, CONFIG).saturated
    assert judge(bed, TestBedConfig(busy_ratio=0.7)).blames_test_bed
    assert not judge(bed, TestBedConfig(busy_ratio=0.7, harness_share=0.8)).blames_test_bed


def test_load_from_samples_takes_means_and_names_the_harness_parts() -> None:
    rows = [
        ResourceSample(
            t_ns=i,
            rss_bytes=None,
            cpu_percent=None,
            feed_mbps=None,
            kafka_mbps=None,
            threads=None,
            parts_cores={"sut": 0.2 * i, "feed_sim": 0.1, "broker-1": None if i == 1 else 0.5},
            host_busy_cores=1.0 + i,
            host_steal_ratio=0.0,
            run_queue=i,
        )
        for i in (1, 2, 3)
    ]
    bed = TestBedLoad.from_samples(rows, 4, ("feed_sim", "broker-1", "locust"))
    assert bed.busy_cores == pytest.approx(3.0) and bed.busy_cores_max == 4.0
    assert bed.parts == pytest.approx({"broker-1": 0.5, "feed_sim": 0.1, "sut": 0.4})
    assert bed.harness_parts == ("feed_sim", "broker-1")  # locust never sampled
    assert bed.harness_cores == pytest.approx(0.6)
    assert bed.run_queue_max == 3
    assert "host busy 3.00 of 4 cores" in bed.describe()


def test_host_load_from_proc_stat_ticks() -> None:
    ticks = iter(
        [
            CpuTicks(busy=1000, steal=0, total=4000, procs_running=2),
            # 2 cores x 1 s at 100 ticks/s = 200 ticks: 150 busy, 10 stolen
            CpuTicks(busy=1150, steal=10, total=4200, procs_running=5),
        ]
    )
    host = HostLoad(read=lambda: next(ticks), ticks_per_s=100, cores=2)
    first = host.read()
    assert first.busy_cores is None and first.run_queue == 2
    second = host.read()
    assert second.busy_cores == pytest.approx(1.5)
    assert second.steal_ratio == pytest.approx(0.05) and second.run_queue == 5


def test_proc_stat_parses_this_host(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  100 5 50 800 10 1 2 3 7 0\ncpu0 1 2 3 4\nprocs_running 4\nprocs_blocked 0\n"
    )
    ticks = read_proc_stat(str(stat))
    assert ticks == CpuTicks(busy=158, steal=3, total=971, procs_running=4)
    assert read_proc_stat().total > 0


def test_parts_cpu_reads_a_busy_process_and_a_single_process_part() -> None:
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        parts = PartsCpu(
            {
                "burner": Part([burner.pid]),
                "me": Part([os.getpid()], tree=False, harness=False),
                "gone": Part([2**22 + 12345]),
            },
            time.time_ns,
        )
        assert parts.read()["burner"] is None  # the first read has no interval
        time.sleep(1.0)
        cores = parts.read()
        assert cores["burner"] is not None and cores["burner"] > 0.3
        assert cores["me"] is not None and cores["me"] < cores["burner"]
        assert cores["gone"] is None
        assert parts.harness_parts == ("burner", "gone")
    finally:
        burner.kill()
        burner.wait()
