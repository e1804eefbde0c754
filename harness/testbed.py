"""The test bed's own load: CPU by part, the host's busy cores, steal and run queue, and the
test-bed verdict (contract 7: a test bed too busy to judge gives INCONCLUSIVE, never a FAIL).

- `PartsCpu` reads the CPU time of each named part of the test bed (feed_sim, the SUT's
  process tree, each local broker JVM, the collector processes, Locust, the runner itself)
  by PID, and gives each part's cores (CPU seconds per second) since the previous read.
- `HostLoad` reads /proc/stat: busy cores (user, nice, system, irq, softirq), the share of
  time stolen by the hypervisor, and the run queue (`procs_running`) at the read.
- `TestBedLoad` is a hold's means of both; `judge()` applies the rule: a stage that FAILED
  while the host was saturated (busy >= `busy_ratio` of its cores, or steal >= `steal_ratio`)
  and the parts the harness provides (`harness: True`: feed_sim, the collector, local brokers,
  Locust, the runner) took at least `harness_share` of the busy CPU is INCONCLUSIVE, naming
  the parts and their shares. A pass stays a pass: a SUT that met its targets on a busy bed
  met them. `apply()` puts the judgement into a stage's evaluation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import psutil

from harness.sampler import HostReading, PidsArg, ProcessTreeUsage
from harness.scenario import TestBedConfig, TestBedPart
from harness.thresholds import StageEvaluation, ThresholdResult, Verdict

NS_PER_S = 1_000_000_000
TEST_BED = "test_bed"
"""The name of the test-bed result among a stage's threshold results (junit, summary)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part of the test bed: its root PIDs, whether their descendants count, and whether
    the harness provides it (the SUT is the only part that is not the harness's)."""

    pids: PidsArg
    tree: bool = True
    harness: bool = True


class CommandLineMatch:
    """The PIDs of processes whose command line contains `text` (not this process), looked
    up again every `every_s` (a scan of /proc costs milliseconds)."""

    def __init__(
        self, text: str, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.text = text
        self.every_s = every_s
        self._clock = clock
        self._found: list[int] = []
        self._at: float | None = None

    def __call__(self) -> list[int]:
        now = self._clock()
        if self._at is None or now - self._at >= self.every_s:
            self._at = now
            me = os.getpid()
            self._found = [
                proc.pid
                for proc in psutil.process_iter(["cmdline"])
                if proc.pid != me and self.text in " ".join(proc.info["cmdline"] or ())
            ]
        return list(self._found)


def _pids_of(declared: TestBedPart) -> PidsArg:
    if declared.match is None:
        return list(declared.pids)
    matcher = CommandLineMatch(declared.match)
    return lambda: [*declared.pids, *matcher()]


def declared_parts(config: TestBedConfig) -> dict[str, Part]:
    """The scenario's `test_bed.parts` as parts (by PID, or by command line)."""
    return {
        name: Part(_pids_of(declared), harness=not declared.sut)
        for name, declared in config.parts.items()
    }


class PartsCpu:
    """Cores used by each part between two reads (None for a part not running)."""

    def __init__(self, parts: Mapping[str, Part], clock: Callable[[], int]) -> None:
        self.parts = dict(parts)
        self._clock = clock
        self._usage = {
            name: ProcessTreeUsage(part.pids, clock, descendants=part.tree)
            for name, part in self.parts.items()
        }
        self._last: dict[str, tuple[int, float]] = {}

    def add(self, name: str, part: Part) -> None:
        """A part that started after the sampler (e.g. the SUT)."""
        self.parts[name] = part
        self._usage[name] = ProcessTreeUsage(part.pids, self._clock, descendants=part.tree)

    @property
    def harness_parts(self) -> tuple[str, ...]:
        return tuple(name for name, part in self.parts.items() if part.harness)

    def read(self) -> dict[str, float | None]:
        now = self._clock()
        cores: dict[str, float | None] = {}
        for name, usage in self._usage.items():
            reading = usage.read()
            if reading is None:
                self._last.pop(name, None)
                cores[name] = None
                continue
            before = self._last.get(name)
            self._last[name] = (now, reading.cpu_seconds)
            if before is None or now <= before[0]:
                cores[name] = None
            else:
                cores[name] = (reading.cpu_seconds - before[1]) * NS_PER_S / (now - before[0])
        return cores


@dataclass(frozen=True, slots=True)
class CpuTicks:
    """The host's cumulative CPU time from /proc/stat's `cpu` line, in clock ticks."""

    busy: int
    steal: int
    total: int
    procs_running: int


def read_proc_stat(path: str = "/proc/stat") -> CpuTicks:
    """The `cpu` line (user nice system idle iowait irq softirq steal guest guest_nice; guest
    time is already inside user) and `procs_running`."""
    busy = steal = total = running = 0
    with open(path, encoding="ascii") as stat:
        for line in stat:
            if line.startswith("cpu "):
                ticks = [int(v) for v in line.split()[1:]]
                ticks += [0] * (8 - len(ticks))
                user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
                busy = user + nice + system + irq + softirq
                total = sum(ticks[:8])
            elif line.startswith("procs_running "):
                running = int(line.split()[1])
    return CpuTicks(busy, steal, total, running)


class HostLoad:
    """Busy cores and steal between two reads of /proc/stat, and the run queue at the read."""

    def __init__(
        self,
        read: Callable[[], CpuTicks] = read_proc_stat,
        ticks_per_s: int | None = None,
        cores: int | None = None,
    ) -> None:
        self._read = read
        self.ticks_per_s = ticks_per_s or os.sysconf("SC_CLK_TCK")
        self.cores = cores or os.cpu_count() or 1
        self._last: CpuTicks | None = None

    def read(self) -> HostReading:
        now = self._read()
        before, self._last = self._last, now
        if before is None or now.total <= before.total:
            return HostReading(None, None, now.procs_running)
        elapsed = now.total - before.total  # ticks of all cores together
        seconds = elapsed / self.ticks_per_s / self.cores
        busy = (now.busy - before.busy) / self.ticks_per_s / seconds
        return HostReading(busy, (now.steal - before.steal) / elapsed, now.procs_running)


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True, slots=True)
class TestBedLoad:
    """A hold's test-bed figures: means over its samples (cores: CPU seconds per second)."""

    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name

    cores: int
    busy_cores: float | None
    busy_cores_max: float | None
    steal_ratio: float | None
    run_queue_mean: float | None
    run_queue_max: int | None
    parts: dict[str, float] = field(default_factory=dict)
    harness_parts: tuple[str, ...] = ()
    samples: int = 0

    @classmethod
    def from_samples(
        cls, rows: Iterable[Any], cores: int, harness_parts: Iterable[str]
    ) -> TestBedLoad:
        """From the sampler's samples (`host_busy_cores`, `host_steal_ratio`, `run_queue`,
        `parts_cores`)."""
        rows = list(rows)
        busy = [r.host_busy_cores for r in rows if r.host_busy_cores is not None]
        queue = [r.run_queue for r in rows if r.run_queue is not None]
        names = sorted({name for r in rows for name in (r.parts_cores or {})})
        parts = {
            name: mean
            for name in names
            if (mean := _mean((r.parts_cores or {}).get(name) for r in rows)) is not None
        }
        return cls(
            cores=cores,
            busy_cores=_mean(busy),
            busy_cores_max=max(busy) if busy else None,
            steal_ratio=_mean(r.host_steal_ratio for r in rows),
            run_queue_mean=_mean(queue),
            run_queue_max=max(queue) if queue else None,
            parts=parts,
            harness_parts=tuple(p for p in harness_parts if p in parts),
            samples=len(rows),
        )

    @property
    def harness_cores(self) -> float:
        return sum(self.parts[p] for p in self.harness_parts)

    def describe(self) -> str:
        """One line: the host's load and the CPU of every part, largest first."""
        if self.busy_cores is None:
            return "test bed: no host samples"
        parts = ", ".join(
            f"{name} {cores:.2f}"
            for name, cores in sorted(self.parts.items(), key=lambda kv: -kv[1])
        )
        queue = (
            f", run queue {self.run_queue_mean:.1f} (max {self.run_queue_max})"
            if self.run_queue_mean is not None
            else ""
        )
        other = self.busy_cores - sum(self.parts.values())
        return (
            f"test bed: host busy {self.busy_cores:.2f} of {self.cores} cores "
            f"({self.busy_cores / self.cores:.0%}), steal {self.steal_ratio or 0:.1%}{queue}; "
            f"cores by part: {parts or 'none sampled'}"
            + (f"; other processes {other:.2f}" if other >= 0.005 else "")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cores": self.cores,
            "busy_cores": self.busy_cores,
            "busy_cores_max": self.busy_cores_max,
            "steal_ratio": self.steal_ratio,
            "run_queue_mean": self.run_queue_mean,
            "run_queue_max": self.run_queue_max,
            "parts_cores": dict(self.parts),
            "harness_parts": list(self.harness_parts),
            "harness_cores": self.harness_cores,
            "samples": self.samples,
        }


@dataclass(frozen=True, slots=True)
class TestBedJudgement:
    __test__: ClassVar[bool] = False
    saturated: bool
    harness_share: float | None
    """The harness's parts' share of the host's busy CPU."""
    blames_test_bed: bool
    """Saturated, and the harness's parts took at least the configured share."""
    message: str


def judge(load: TestBedLoad, config: TestBedConfig) -> TestBedJudgement:
    """Whether the test bed was saturated during the hold, and by whom (module docstring)."""
    if load.busy_cores is None:
        return TestBedJudgement(False, None, False, "test bed not sampled")
    busy_ratio = load.busy_cores / load.cores
    steal = load.steal_ratio or 0.0
    saturated = busy_ratio >= config.busy_ratio or steal >= config.steal_ratio
    share = load.harness_cores / load.busy_cores if load.busy_cores > 0 else None
    blames = saturated and share is not None and share >= config.harness_share
    mine = sorted(((p, load.parts[p]) for p in load.harness_parts), key=lambda kv: -kv[1])
    named = ", ".join(f"{name} {cores:.2f}" for name, cores in mine if cores >= 0.005)
    share_text = "unknown" if share is None else f"{share:.0%}"
    why = f"busy {load.busy_cores:.2f} of {load.cores} cores ({busy_ratio:.0%}), steal {steal:.1%}"
    if blames:
        message = (
            f"test bed saturated: {named} of {load.cores} cores ({why}; the harness's parts "
            f"took {share_text} of the busy CPU): the SUT cannot be judged on this bed"
        )
    elif saturated:
        message = (
            f"test bed saturated ({why}) but mostly by the SUT (the harness's parts took "
            f"{share_text}): the SUT's verdict stands"
        )
    else:
        message = f"test bed not saturated ({why})"
    return TestBedJudgement(saturated, share, blames, message)


def apply(
    evaluation: StageEvaluation, judgement: TestBedJudgement, config: TestBedConfig
) -> StageEvaluation:
    """The evaluation with the test-bed result added; a FAIL becomes INCONCLUSIVE when the
    judgement blames the test bed (and the rule is enabled)."""
    inconclusive = (
        config.enabled and judgement.blames_test_bed and evaluation.verdict is Verdict.FAIL
    )
    result = ThresholdResult(
        TEST_BED,
        Verdict.INCONCLUSIVE if inconclusive else Verdict.PASS,
        judgement.harness_share,
        config.harness_share,
        "share",
        judgement.message,
    )
    verdict = Verdict.INCONCLUSIVE if inconclusive else evaluation.verdict
    return replace(evaluation, verdict=verdict, results=(*evaluation.results, result))
