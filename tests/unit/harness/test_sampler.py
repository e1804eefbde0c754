"""The resource sampler: a real process tree through psutil, fake feed/Kafka byte sources, the
docker stats adapter with stats dicts shaped like the Engine API's, windows of samples.

Clocks are injected (no timing assertions); every process started here is killed by PID.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from harness.sampler import (
    NS_PER_S,
    ContainerUsage,
    FeedBytes,
    ProcessTreeUsage,
    ResourceSample,
    ResourceSampler,
    container_usage_from_stats,
)

MB = 1 << 20
T0 = 1_750_000_000 * NS_PER_S

CHILD = """
import subprocess, sys
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
block = b"x" * (64 << 20)  # written, so resident
print(grandchild.pid, flush=True)
while True:
    sum(range(10_000))
"""


class FakeClock:
    def __init__(self, start_ns: int = T0) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += int(seconds * NS_PER_S)


@pytest.fixture
def busy_tree() -> Iterator[tuple[int, int]]:
    """A python child holding 64 MB and spinning, with a sleeping grandchild: (pid, pid)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    grandchild = 0
    try:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        yield child.pid, grandchild
    finally:
        if grandchild:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(grandchild).kill()
        child.kill()
        child.wait(timeout=10)
        assert not psutil.pid_exists(child.pid)
        if grandchild:
            wait_until(lambda: gone(grandchild))


def gone(pid: int) -> bool:
    """Exited (a zombie until whoever adopted it reaps it)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_process_tree_rss_threads_and_cpu(busy_tree: tuple[int, int]) -> None:
    pid, grandchild = busy_tree
    clock = FakeClock()
    sampler = ResourceSampler(sut_pids=lambda: [pid], clock=clock, cpu_count=2)
    first = sampler.sample_once()
    assert first.rss_bytes is not None and first.rss_bytes >= 64 * MB
    assert first.processes == 2
    assert first.threads is not None and first.threads >= 2
    assert first.cpu_percent is None  # no interval yet

    cpu_then = psutil.Process(pid).cpu_times().user
    wait_until(lambda: psutil.Process(pid).cpu_times().user > cpu_then)
    clock.tick()
    second = sampler.sample_once()
    assert second.cpu_percent is not None and second.cpu_percent > 0
    assert second.cpu_percent_host == pytest.approx(second.cpu_percent / 2)
    assert sampler.max_rss() == max(first.rss_bytes, second.rss_bytes or 0)

    psutil.Process(grandchild).kill()
    wait_until(lambda: gone(grandchild))  # a zombie: its parent spins and never reaps it
    clock.tick()
    assert sampler.sample_once().processes == 1


def test_tree_gone_gives_empty_sample() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    usage = ProcessTreeUsage([proc.pid])
    assert usage.read() is None
    sample = ResourceSampler(usage=usage, clock=FakeClock()).sample_once()
    assert sample.rss_bytes is None and sample.cpu_percent is None and sample.threads is None


@dataclass
class Counters:
    label: str
    bytes_written: int


class FakeControl:
    """Answers `counters()` like FeedSimControl, from a script; raises where the script does."""

    def __init__(self, script: list[Counters | Exception]) -> None:
        self.script = script

    def counters(self) -> Counters:
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def test_feed_bytes_accumulate_across_stages() -> None:
    control = FakeControl(
        [Counters("warmup", 100), Counters("warmup", 1_100), Counters("stage-1", 500)]
    )
    feed = FeedBytes(control)
    assert [feed(), feed(), feed()] == [100, 1_100, 1_600]


def test_rates_in_mbps_and_failed_sources() -> None:
    clock = FakeClock()
    control = FakeControl(
        [
            Counters("stage-1", 0),
            Counters("stage-1", 125_000),  # 1 Mbit in 1 s
            ConnectionError("feed_sim down"),
            Counters("stage-1", 375_000),
        ]
    )
    kafka = iter([0, 250_000, 500_000, 750_000])
    sampler = ResourceSampler(feed=control, kafka_bytes=lambda: next(kafka), clock=clock)
    rows = []
    for _ in range(4):
        rows.append(sampler.sample_once())
        clock.tick()
    assert [r.feed_mbps for r in rows] == [None, pytest.approx(1.0), None, None]
    assert [r.kafka_mbps for r in rows] == [None] + [pytest.approx(2.0)] * 3
    assert sampler.errors == 1
    assert rows[0].rss_bytes is None  # no SUT given


class FakeContainer:
    def __init__(self, stats: list[dict[str, Any] | Exception]) -> None:
        self.stats_list = stats

    def stats(self, stream: bool = True) -> dict[str, Any]:
        assert stream is False
        item = self.stats_list.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def docker_stats_v2(usage: int, inactive: int, cpu_ns: int, pids: int) -> dict[str, Any]:
    """Shaped like GET /containers/{id}/stats?stream=false on a cgroup v2 host."""
    return {
        "read": "2025-06-15T15:06:41.000000000Z",
        "preread": "2025-06-15T15:06:40.000000000Z",
        "pids_stats": {"current": pids, "limit": 4096},
        "blkio_stats": {"io_service_bytes_recursive": None},
        "cpu_stats": {
            "cpu_usage": {"total_usage": cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": 9_000_000_000_000,
            "online_cpus": 2,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": {
            "usage": usage,
            "stats": {"anon": usage - inactive, "file": inactive, "inactive_file": inactive},
            "limit": 8 * 1024 * MB,
        },
        "name": "/sut",
        "id": "0123456789ab",
        "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
    }


def test_container_stats_v2_v1_and_cpu_rate() -> None:
    v1 = docker_stats_v2(500 * MB, 0, 0, 3)
    v1["memory_stats"]["stats"] = {"cache": 50 * MB, "total_inactive_file": 40 * MB}
    assert container_usage_from_stats(v1).rss_bytes == 460 * MB

    clock = FakeClock()
    container = FakeContainer(
        [
            docker_stats_v2(300 * MB, 100 * MB, 5 * NS_PER_S, 12),
            docker_stats_v2(310 * MB, 100 * MB, 6_500_000_000, 13),
            {"read": "0001-01-01T00:00:00Z", "memory_stats": {}, "cpu_stats": {}},  # stopped
            RuntimeError("engine gone"),
        ]
    )
    current = ["c1"]
    looked_up: list[str] = []

    def lookup(container_id: str) -> FakeContainer:
        looked_up.append(container_id)
        return container

    usage = ContainerUsage(lambda: current[0], lookup)
    sampler = ResourceSampler(usage=usage, clock=clock, cpu_count=2)
    first = sampler.sample_once()
    assert (first.rss_bytes, first.threads, first.cpu_percent) == (200 * MB, 12, None)
    clock.tick(2)
    second = sampler.sample_once()
    assert second.rss_bytes == 210 * MB
    assert second.cpu_percent == pytest.approx(75.0)  # 1.5 s of CPU in 2 s
    assert second.cpu_percent_host == pytest.approx(37.5)
    assert looked_up == ["c1"]  # looked up once while the id stays
    current[0] = "c2"  # a restart reload ran a new container
    clock.tick()
    assert sampler.sample_once().rss_bytes is None
    assert looked_up == ["c1", "c2"]
    clock.tick()
    assert sampler.sample_once().rss_bytes is None


def test_window_and_samples_since() -> None:
    sampler = ResourceSampler()
    rows = [
        ResourceSample(T0, 100, None, None, None, 4),
        ResourceSample(T0 + NS_PER_S, 300, 50.0, 10.0, 20.0, 6),
        ResourceSample(T0 + 2 * NS_PER_S, 200, 150.0, 30.0, None, 5),
        ResourceSample(T0 + 3 * NS_PER_S, 900, 10.0, 1.0, 1.0, 9),
    ]
    sampler._samples.extend(rows)
    assert sampler.samples_since(T0 + NS_PER_S) == rows[1:]
    assert sampler.samples_since(T0 + 1, T0 + 2 * NS_PER_S) == rows[1:3]
    window = sampler.window(T0 + NS_PER_S, T0 + 2 * NS_PER_S)
    assert window["samples"] == 2
    assert window["rss_bytes_max"] == 300
    assert window["cpu_percent_mean"] == pytest.approx(100.0)
    assert window["cpu_percent_max"] == pytest.approx(150.0)
    assert window["feed_mbps_mean"] == pytest.approx(20.0)
    assert window["kafka_mbps_mean"] == pytest.approx(20.0)
    assert window["threads_max"] == 6
    empty = sampler.window(T0 + 10 * NS_PER_S)
    assert empty["samples"] == 0 and empty["rss_bytes_max"] is None
    assert sampler.max_rss() == 900


def test_thread_samples_on_its_schedule_and_stops() -> None:
    clock = FakeClock()
    sleeps: list[float] = []
    reached = threading.Event()
    release = threading.Event()

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.tick(seconds)
        if len(sleeps) >= 3:
            reached.set()
            release.wait(10)

    def kafka_bytes() -> int:
        clock.tick(0.25)  # the time a sample takes, as the clock sees it
        return 1000

    sampler = ResourceSampler(kafka_bytes=kafka_bytes, clock=clock, sleep=sleep)
    sampler.start()
    try:
        assert reached.wait(10)
    finally:
        release.set()
        sampler.stop()
    assert len(sampler.samples) >= 3
    assert sleeps[:3] == [0.75, 0.75, 0.75]
    steps = [b.t_ns - a.t_ns for a, b in zip(sampler.samples, sampler.samples[1:], strict=False)]
    assert steps[:2] == [NS_PER_S, NS_PER_S]  # 1 Hz on the clock, whatever a sample took
    assert sampler.self_cpu_seconds >= 0
