"""The 1 Hz resource sampler: SUT memory/CPU/threads, feed Mbps in, Kafka Mbps out.

Each sample (`ResourceSample`) reads:
- the SUT's usage from a `UsageSource`: `ProcessTreeUsage` (psutil: every root PID and all
  its descendants; RSS summed, CPU time user + system, threads; zombies skipped) for process SUTs,
  or `ContainerUsage` (docker SDK, `container.stats(stream=False)`: memory usage minus
  inactive file cache as `docker stats` shows it, cgroup CPU total_usage, pids) for container
  SUTs. CPU percent = CPU-time delta / wall delta * 100, so 100 = one core busy;
  `cpu_percent_host` divides by the host's core count (100 = every core busy);
- feed bytes/s to the SUT from feed_sim's control API (`FeedBytes`: the current stage's
  `bytes_written` counter, accumulated across stage switches) -> Mbps;
- Kafka bytes/s out of the SUT from a callable returning a cumulative byte count (the
  collector's consumed key + value bytes, `CollectorProcess.consumed_bytes`) -> Mbps;
- optionally the test bed (harness.testbed): the cores of each part (feed_sim, SUT, brokers,
  collector, Locust, the runner) and the host's busy cores, steal and run queue; and the SUT's
  Prometheus metrics (harness.sut_metrics), kept per sample.
A rate is None in the first sample and whenever its source failed (feed_sim unreachable).

Process-tree CPU is accumulated per (pid, create_time): a process seen in both samples adds
its delta, a process that started since the previous sample adds all its CPU time, a process
that exited between two samples loses its last partial second (psutil cannot read it any
more). RSS counts shared pages once per process (as `ps` does).

In a gevent-patched orchestrator the thread is a greenlet: the /proc reads are short
blocking syscalls and the feed_sim / collector calls go through patched sockets and pipes.

The sampler runs `sample_once()` on a daemon thread at 1 Hz on its own schedule (`clock`
and `sleep` are injected; tests call `sample_once()` directly). Its own cost is the CPU time
of that thread, `self_cpu_seconds`. Measured in a quick manual run here (60 s, a 3-process
python tree as the SUT, feed_sim's control API on loopback serving 50 symbols): 3.0 ms of
CPU per sample = 0.3 % of one core (psutil ~1.3 ms, feed_sim's `/counters` HTTP call the
rest; the tree is walked through /proc/PID/task/TID/children, not psutil's whole-host scan).
"""

from __future__ import annotations

import bisect
import functools
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One sample; rates are over the interval since the previous sample."""

    t_ns: int
    rss_bytes: int | None
    cpu_percent: float | None
    """CPU of the SUT, 100 = one core."""
    feed_mbps: float | None
    kafka_mbps: float | None
    threads: int | None
    cpu_percent_host: float | None = None
    """CPU of the SUT as a share of all host cores, 100 = all busy."""
    processes: int | None = None
    parts_cores: dict[str, float | None] | None = None
    """Cores used by each part of the test bed since the previous sample (harness.testbed)."""
    host_busy_cores: float | None = None
    host_steal_ratio: float | None = None
    run_queue: int | None = None
    """Runnable tasks on the host at the sample (/proc/stat procs_running)."""
    sut_metrics: dict[str, float] | None = None
    """The SUT's Prometheus samples at this second (None: no metrics_url, or no answer)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What a usage source read: memory, cumulative CPU seconds (monotonic), threads."""

    rss_bytes: int
    cpu_seconds: float
    threads: int
    processes: int


class UsageSource(Protocol):
    def read(self) -> Usage | None:
        """Current usage, or None if the SUT is not running."""


PidsArg = Callable[[], Iterable[int]] | Iterable[int]


class PartsReader(Protocol):
    def read(self) -> dict[str, float | None]:
        """Cores used by each part since the previous read."""


@dataclass(frozen=True, slots=True)
class HostReading:
    """The host's busy cores and stolen share since the previous read, and its run queue."""

    busy_cores: float | None
    steal_ratio: float | None
    run_queue: int


class HostReader(Protocol):
    def read(self) -> HostReading:
        """The host's busy cores and steal since the previous read, and its run queue."""


class ProcessTreeUsage:
    """psutil usage of the process trees under the given root PIDs."""

    def __init__(
        self, pids: PidsArg, clock: Callable[[], int] = time.time_ns, *, descendants: bool = True
    ) -> None:
        """`descendants=False`: the root processes alone (e.g. the runner, whose children
        are the other parts)."""
        self._pids = pids
        self._clock = clock
        self._descendants = descendants
        self._cpu: dict[tuple[int, float], float] = {}
        self._cumulative = 0.0
        self._last_ns: int | None = None

    def roots(self) -> list[int]:
        pids = self._pids() if callable(self._pids) else self._pids
        return [int(p) for p in pids]

    def processes(self) -> list[psutil.Process]:
        """The roots and all their descendants (each once)."""
        seen: dict[int, psutil.Process] = {}
        for pid in self.roots():
            try:
                pids = _tree_pids(pid) if self._descendants else [pid]
                tree = [psutil.Process(p) for p in pids]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            for proc in tree:
                seen.setdefault(proc.pid, proc)
        return list(seen.values())

    def read(self) -> Usage | None:
        now_s = self._clock() / NS_PER_S
        rss = threads = 0
        cpu: dict[tuple[int, float], float] = {}
        for proc in self.processes():
            try:
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        continue
                    created = proc.create_time()
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            cpu[(proc.pid, created)] = times.user + times.system
        if not cpu:
            self._cpu = {}
            return None
        last_s = None if self._last_ns is None else self._last_ns / NS_PER_S
        for key, seconds in cpu.items():
            before = self._cpu.get(key)
            if before is not None:
                self._cumulative += max(0.0, seconds - before)
            elif last_s is not None and key[1] >= last_s - 0.01:
                self._cumulative += seconds  # started since the previous read
        self._cpu = cpu
        self._last_ns = int(now_s * NS_PER_S)
        return Usage(rss, self._cumulative, threads, len(cpu))


@functools.cache
def _children_lists() -> bool:
    """Whether the kernel has /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _tree_pids(root: int) -> list[int]:
    """`root` and its descendants from Linux's /proc/PID/task/TID/children lists (~20 us per
    process); psutil's `children(recursive=True)` reads /proc/*/stat of EVERY process on the
    host (~4 ms here), which alone would cost the sampler 0.4 % of a core."""
    if not _children_lists():
        return [root, *(c.pid for c in psutil.Process(root).children(recursive=True))]
    pids, todo = [root], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            if pid == root:
                raise psutil.NoSuchProcess(pid) from None
            continue  # exited while walking
        kids: list[int] = []
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as listing:
                    kids += [int(k) for k in listing.read().split()]
            except FileNotFoundError:
                continue  # the thread (or process) exited while walking
        pids += kids
        todo += kids
    return pids


def container_usage_from_stats(stats: dict[str, Any]) -> Usage:
    """Usage from one `container.stats(stream=False)` dict (cgroup v1 or v2 layout).

    Memory = usage minus the inactive file cache (cgroup v2 `inactive_file`, v1
    `total_inactive_file`), which is what `docker stats` reports; CPU = cgroup
    `cpu_usage.total_usage` (ns, cumulative); threads = `pids_stats.current` (tasks).
    """
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    usage = int(memory.get("usage") or 0)
    rss = max(0, usage - int(cache or 0))
    cpu_ns = int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)
    tasks = int((stats.get("pids_stats") or {}).get("current") or 0)
    return Usage(rss, cpu_ns / NS_PER_S, tasks, 1)


class ContainerUsage:
    """Usage of the SUT's current container through the docker SDK: `container_id()` names
    it at every read (a `restart` reload runs a new one); `lookup(id)` returns its
    `docker.models.containers.Container` (the local engine's `containers.get` by default)."""

    def __init__(
        self,
        container_id: Callable[[], str | None],
        lookup: Callable[[str], Any] | None = None,
    ) -> None:
        self.container_id = container_id
        self._lookup = lookup
        self._current: tuple[str, Any] | None = None

    def _container(self) -> Any:
        wanted = self.container_id()
        if wanted is None:
            return None
        if self._current is None or self._current[0] != wanted:
            if self._lookup is None:
                import docker  # only container SUTs need the engine

                self._lookup = docker.from_env().containers.get
            self._current = (wanted, self._lookup(wanted))
        return self._current[1]

    def read(self) -> Usage | None:
        try:
            container = self._container()
            if container is None:
                return None
            stats = container.stats(stream=False)
        except Exception:  # docker.errors.* (container gone, engine down)
            return None
        if not stats or not (stats.get("memory_stats") or {}).get("usage"):
            return None  # a stopped container reports empty stats
        return container_usage_from_stats(stats)


class FeedBytes:
    """Cumulative bytes feed_sim wrote to its clients, from the control API's stage counters.

    `counters()` gives the current stage's `bytes_written`; when the stage label changes the
    counter restarts, so the new stage's count is added to what the previous ones wrote.
    """

    def __init__(self, control: Any) -> None:
        self.control = control
        self._label: str | None = None
        self._last = 0
        self._total = 0

    def __call__(self) -> int:
        counters = self.control.counters()
        label, written = counters.label, int(counters.bytes_written)
        if label != self._label or written < self._last:
            self._total += written
        else:
            self._total += written - self._last
        self._label, self._last = label, written
        return self._total


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


class ResourceSampler:
    """Samples the SUT and the traffic at 1 Hz on a thread; windows of samples for a stage."""

    def __init__(
        self,
        sut_pids: PidsArg | None = None,
        *,
        usage: UsageSource | None = None,
        feed: Any = None,
        kafka_bytes: Callable[[], int] | None = None,
        interval_s: float = 1.0,
        clock: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], Any] | None = None,
        cpu_count: int | None = None,
        parts: PartsReader | None = None,
        host: HostReader | None = None,
        sut_metrics: Callable[[], dict[str, float] | None] | None = None,
    ) -> None:
        """`parts` / `host`: the test bed's CPU by part and the host's load
        (harness.testbed.PartsCpu / HostLoad); `sut_metrics`: a scraper of the SUT's
        Prometheus endpoint (harness.sut_metrics.MetricsScraper)."""
        if usage is None and sut_pids is not None:
            usage = ProcessTreeUsage(sut_pids, clock)
        self.usage = usage
        self.feed_bytes: Callable[[], int] | None = (
            feed if feed is None or _is_byte_source(feed) else FeedBytes(feed)
        )
        self.kafka_bytes = kafka_bytes
        self.parts = parts
        self.host = host
        self.sut_metrics = sut_metrics
        self.interval_s = interval_s
        self.clock = clock
        self._stop = threading.Event()
        self.sleep = sleep or self._stop.wait
        self.cpu_count = cpu_count or os.cpu_count() or 1
        self.self_cpu_seconds = 0.0
        """CPU time the sampler's thread spent sampling."""
        self.errors = 0
        self._samples: list[ResourceSample] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._prev: dict[str, tuple[int, float]] = {}

    # -- sampling -------------------------------------------------------------------------------

    def _rate(self, name: str, value: float | None, t_ns: int) -> float | None:
        """Per-second rate of a cumulative `value` since its previous reading."""
        if value is None:
            self._prev.pop(name, None)
            return None
        before = self._prev.get(name)
        self._prev[name] = (t_ns, value)
        if before is None or t_ns <= before[0]:
            return None
        return max(0.0, value - before[1]) / ((t_ns - before[0]) / NS_PER_S)

    def _read(self, source: Callable[[], int] | None) -> float | None:
        if source is None:
            return None
        try:
            return float(source())
        except Exception:  # a source that failed this second (feed_sim, collector)
            self.errors += 1
            return None

    def sample_once(self) -> ResourceSample:
        """Take one sample now and keep it."""
        t_ns = self.clock()
        usage = self.usage.read() if self.usage is not None else None
        cpu = self._rate("cpu", None if usage is None else usage.cpu_seconds, t_ns)
        feed = self._rate("feed", self._read(self.feed_bytes), t_ns)
        kafka = self._rate("kafka", self._read(self.kafka_bytes), t_ns)
        host = self.host.read() if self.host is not None else None
        sample = ResourceSample(
            t_ns=t_ns,
            rss_bytes=None if usage is None else usage.rss_bytes,
            cpu_percent=None if cpu is None else cpu * 100,
            feed_mbps=None if feed is None else feed * 8 / 1e6,
            kafka_mbps=None if kafka is None else kafka * 8 / 1e6,
            threads=None if usage is None else usage.threads,
            cpu_percent_host=None if cpu is None else cpu * 100 / self.cpu_count,
            processes=None if usage is None else usage.processes,
            parts_cores=self.parts.read() if self.parts is not None else None,
            host_busy_cores=None if host is None else host.busy_cores,
            host_steal_ratio=None if host is None else host.steal_ratio,
            run_queue=None if host is None else host.run_queue,
            sut_metrics=self.sut_metrics() if self.sut_metrics is not None else None,
        )
        with self._lock:
            self._samples.append(sample)
        return sample

    def _run(self) -> None:
        next_ns = self.clock()
        while not self._stop.is_set():
            started = time.thread_time()
            self.sample_once()
            self.self_cpu_seconds += time.thread_time() - started
            next_ns += int(self.interval_s * NS_PER_S)
            now = self.clock()
            if next_ns < now:  # fell behind (suspended): skip the missed seconds
                next_ns = now
            self.sleep((next_ns - now) / NS_PER_S)

    def start(self) -> ResourceSampler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # -- reading --------------------------------------------------------------------------------

    @property
    def samples(self) -> list[ResourceSample]:
        with self._lock:
            return list(self._samples)

    def samples_since(self, t_ns: int, until_ns: int | None = None) -> list[ResourceSample]:
        """Samples taken at or after `t_ns` (and at or before `until_ns`)."""
        with self._lock:
            rows = self._samples[bisect.bisect_left(self._samples, t_ns, key=lambda s: s.t_ns) :]
        return rows if until_ns is None else [s for s in rows if s.t_ns <= until_ns]

    def max_rss(self, since_ns: int = 0, until_ns: int | None = None) -> int | None:
        values = [s.rss_bytes for s in self.samples_since(since_ns, until_ns) if s.rss_bytes]
        return max(values) if values else None

    def window(self, start_ns: int, end_ns: int | None = None) -> dict[str, Any]:
        """Figures over the samples of [start_ns, end_ns]: max RSS, mean/max CPU and Mbps."""
        rows = self.samples_since(start_ns, end_ns)

        def column(name: str) -> list[float]:
            return [float(v) for s in rows if (v := getattr(s, name)) is not None]

        cpu, feed, kafka = column("cpu_percent"), column("feed_mbps"), column("kafka_mbps")
        threads = column("threads")
        return {
            "samples": len(rows),
            "rss_bytes_max": self.max_rss(start_ns, end_ns),
            "rss_bytes_mean": _mean(column("rss_bytes")),
            "cpu_percent_mean": _mean(cpu),
            "cpu_percent_max": max(cpu) if cpu else None,
            "cpu_percent_host_mean": _mean(column("cpu_percent_host")),
            "feed_mbps_mean": _mean(feed),
            "feed_mbps_max": max(feed) if feed else None,
            "kafka_mbps_mean": _mean(kafka),
            "kafka_mbps_max": max(kafka) if kafka else None,
            "threads_max": int(max(threads)) if threads else None,
            "sampler_cpu_seconds": self.self_cpu_seconds,
        }


def _is_byte_source(feed: Any) -> bool:
    """A plain callable returning bytes, rather than a FeedSimControl-like object."""
    return callable(feed) and not hasattr(feed, "counters")
