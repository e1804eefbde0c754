"""The collector's replies as typed values (the protocol of `harness.collector.process`).

Each reply type reads and writes its JSON line (`from_json` / `to_json`) and adds up with `+`:
the replies of N collector shards (`harness.distributed_collector`) to one command sum to the
reply a single collector would have given, `sum_replies(cmd, replies)`. HDR histograms are
added (`StageMeasure + StageMeasure`; interval histograms of the same second and tag added,
each shard's decoded once and the sum encoded once), completeness states are added per key,
counters are summed. The one figure that cannot be added exactly is the live last-second P99:
a sum carries the largest part's, an upper bound of the P99 of all parts together (a quantile
of a union never exceeds the largest of the parts' quantiles). It feeds only the progress line
and the Locust charts; verdicts come from the added histograms.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, Self

from contracts.hdr import PackedHistogram
from harness.collector.completeness import Completeness
from harness.collector.measure import INTERVAL_MEASURES, StageMeasure

Interval = tuple[int, str, PackedHistogram]
"""(epoch second, tag = stage label, its interval histogram)."""


def _intervals_from_json(rows: Sequence[Sequence[Any]]) -> list[Interval]:
    return [(int(s), str(tag), PackedHistogram(str(code))) for s, tag, code in rows]


def _intervals_to_json(intervals: Sequence[Interval]) -> list[list[Any]]:
    return [[s, tag, packed.code] for s, tag, packed in intervals]


def _add_intervals(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """One entry per (second, tag), added where both have it."""
    added: dict[tuple[int, str], PackedHistogram] = {}
    for second, tag, packed in (*a, *b):
        key = (second, tag)
        found = added.get(key)
        added[key] = packed if found is None else found + packed
    return [(second, tag, packed) for (second, tag), packed in sorted(added.items())]


def _larger(a: int | None, b: int | None) -> int | None:
    known = [v for v in (a, b) if v is not None]
    return max(known) if known else None


class Reply(Protocol):
    """A reply type: read from and written to its JSON object, added to another."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self: ...

    def to_json(self) -> dict[str, Any]: ...

    def __add__(self, other: Self) -> Self: ...


@dataclass(frozen=True)
class StageSwitched:
    """`stage`: measuring into `stage` now; `closed` the stage this closed, if any."""

    stage: str | None
    closed: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageSwitched:
        return cls(data.get("stage"), data.get("closed"))

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "stage": self.stage, "closed": self.closed}

    def __add__(self, other: StageSwitched) -> StageSwitched:
        return StageSwitched(self.stage, self.closed or other.closed)


@dataclass(frozen=True)
class Assigned:
    """`assign`: partition numbers added now, and read in all."""

    added: int
    partitions: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assigned:
        return cls(int(data["added"]), int(data["partitions"]))

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "added": self.added, "partitions": self.partitions}

    def __add__(self, other: Assigned) -> Assigned:
        return Assigned(self.added + other.added, self.partitions + other.partitions)


@dataclass(frozen=True)
class Above:
    """`above`: samples of the open stage's CO-corrected total surely above each limit."""

    stage: str | None
    messages: int
    above: tuple[int, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Above:
        return cls(data["stage"], int(data["messages"]), tuple(int(n) for n in data["above"]))

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "messages": self.messages, "above": list(self.above)}

    def __add__(self, other: Above) -> Above:
        return Above(
            self.stage or other.stage,
            self.messages + other.messages,
            tuple(a + b for a, b in zip(self.above, other.above, strict=True)),
        )


@dataclass(frozen=True)
class Drained:
    """`drain`: whether every partition was read up to its end offset at the given time."""

    drained: bool
    behind: int
    """Partitions short."""
    waited_s: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Drained:
        return cls(bool(data["drained"]), int(data["behind"]), float(data["waited_s"]))

    def to_json(self) -> dict[str, Any]:
        return {"drained": self.drained, "behind": self.behind, "waited_s": self.waited_s}

    def __add__(self, other: Drained) -> Drained:
        return Drained(
            self.drained and other.drained,
            self.behind + other.behind,
            max(self.waited_s, other.waited_s),
        )


@dataclass(frozen=True)
class CollectorCounters:
    """`counters`: what the collector consumed so far and its live last-second P99."""

    stage: str | None
    consumed_messages: int
    consumed_bytes: int
    kafka_errors: int
    live_p99_us: int | None
    t_ns: int
    cpu_ns: int = 0
    """The collector processes' CPU time (summed over shards); 0 if not reported."""
    last_error: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectorCounters:
        p99 = data.get("live_p99_us")
        return cls(
            data.get("stage"),
            int(data["consumed_messages"]),
            int(data["consumed_bytes"]),
            int(data["kafka_errors"]),
            None if p99 is None else int(p99),
            int(data["t_ns"]),
            int(data.get("cpu_ns", 0)),
            str(data.get("last_error") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "consumed_messages": self.consumed_messages,
            "consumed_bytes": self.consumed_bytes,
            "kafka_errors": self.kafka_errors,
            "last_error": self.last_error,
            "live_p99_us": self.live_p99_us,
            "t_ns": self.t_ns,
            "cpu_ns": self.cpu_ns,
        }

    def __add__(self, other: CollectorCounters) -> CollectorCounters:
        return CollectorCounters(
            self.stage if self.stage is not None else other.stage,
            self.consumed_messages + other.consumed_messages,
            self.consumed_bytes + other.consumed_bytes,
            self.kafka_errors + other.kafka_errors,
            _larger(self.live_p99_us, other.live_p99_us),
            max(self.t_ns, other.t_ns),
            self.cpu_ns + other.cpu_ns,
            "; ".join(e for e in (self.last_error, other.last_error) if e),
        )


@dataclass
class CollectorSnapshot:
    """`snapshot` / `stop`: one stage as the collector measured it so far (pure data).

    On the wire `measure` carries no intervals: `intervals` / `intervals_uncorrected` are the
    `total` / `total_uncorrected` interval histograms sealed since the previous snapshot of
    the stage (each second sent once). `CollectorProcess` keeps them per stage and puts every
    interval received so far into the `measure` it hands out."""

    label: str | None
    active: bool
    measure: StageMeasure
    completeness: Completeness
    stage_messages: int
    counters: CollectorCounters
    intervals: list[Interval] = field(default_factory=list)
    intervals_uncorrected: list[Interval] = field(default_factory=list)
    final: bool = False
    """The reply to `stop`: the process exits after it."""

    INTERVAL_KEYS: ClassVar[dict[str, str]] = {
        "total": "intervals",
        "total_uncorrected": "intervals_uncorrected",
    }

    @property
    def consumed_messages(self) -> int:
        return self.counters.consumed_messages

    @property
    def consumed_bytes(self) -> int:
        return self.counters.consumed_bytes

    @property
    def kafka_errors(self) -> int:
        return self.counters.kafka_errors

    @property
    def last_error(self) -> str:
        return self.counters.last_error

    @property
    def live_p99_us(self) -> int | None:
        return self.counters.live_p99_us

    @property
    def t_ns(self) -> int:
        return self.counters.t_ns

    def new_intervals(self, name: str) -> list[Interval]:
        """The intervals of measure `name` ("total" or "total_uncorrected") in this reply."""
        return self.intervals if name == "total" else self.intervals_uncorrected

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectorSnapshot:
        return cls(
            label=data["label"],
            active=bool(data["active"]),
            measure=StageMeasure.from_json(data["measure"]),
            completeness=Completeness.from_json(data["completeness"]),
            stage_messages=int(data["stage_messages"]),
            counters=CollectorCounters.from_json(data),
            intervals=_intervals_from_json(data["intervals"]),
            intervals_uncorrected=_intervals_from_json(data["intervals_uncorrected"]),
            final=bool(data.get("final")),
        )

    def to_json(self) -> dict[str, Any]:
        measure = self.measure.to_json()
        measure["intervals"] = {name: {} for name in INTERVAL_MEASURES}
        data = self.counters.to_json()
        data.update(
            label=self.label,
            active=self.active,
            measure=measure,
            completeness=self.completeness.to_json(),
            stage_messages=self.stage_messages,
            intervals=_intervals_to_json(self.intervals),
            intervals_uncorrected=_intervals_to_json(self.intervals_uncorrected),
        )
        if self.final:
            data["final"] = True
        return data

    def __add__(self, other: CollectorSnapshot) -> CollectorSnapshot:
        return CollectorSnapshot(
            label=self.label if self.label is not None else other.label,
            active=self.active or other.active,
            measure=self.measure + other.measure,
            completeness=self.completeness + other.completeness,
            stage_messages=self.stage_messages + other.stage_messages,
            counters=self.counters + other.counters,
            intervals=_add_intervals(self.intervals, other.intervals),
            intervals_uncorrected=_add_intervals(
                self.intervals_uncorrected, other.intervals_uncorrected
            ),
            final=self.final or other.final,
        )

    def with_measure(self, measure: StageMeasure) -> CollectorSnapshot:
        return replace(self, measure=measure)


REPLY_TYPES: dict[str, type[Reply]] = {
    "stage": StageSwitched,
    "assign": Assigned,
    "above": Above,
    "counters": CollectorCounters,
    "drain": Drained,
    "snapshot": CollectorSnapshot,
    "stop": CollectorSnapshot,
}


def sum_replies(cmd: str, replies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON reply to `cmd` that the shards' replies (shard order) add up to; an error
    reply names its shard."""
    for shard, reply in enumerate(replies):
        if "error" in reply:
            return {"error": f"collector shard {shard}: {reply['error']}"}
    if not replies:
        return {"error": "no collector shard answered"}
    kind = REPLY_TYPES.get(cmd)
    if kind is None:
        return {"error": f"unknown command {cmd!r}"}
    typed = [kind.from_json(reply) for reply in replies]
    return functools.reduce(operator.add, typed).to_json()


__all__ = [
    "REPLY_TYPES",
    "Above",
    "Assigned",
    "CollectorCounters",
    "CollectorSnapshot",
    "Drained",
    "Interval",
    "StageSwitched",
    "sum_replies",
]
