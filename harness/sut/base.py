"""The driver interface of a system under test (SUT) and the helpers its adapters share.

In the spirit of OpenMessaging Benchmark's drivers: the stage runner talks to every SUT kind
(reference core, a user's command, a container, an already running core) through the small
`SystemUnderTest` interface below and never through anything kind-specific:

    start(symbols, feed, kafka)   bring it up, ingesting `symbols` from `feed` into `kafka`
    set_symbols(symbols)          grow (or shrink) its symbol set: live reload or restart
    alive() / pids() / usage_source()   for the runner's liveness check and the sampler
    metrics_url()                 its Prometheus endpoint, if any (producer evidence)
    topics() / record_mapping()   what the collector reads, and how
    stop(timeout_s)               SIGTERM-like stop, then kill; the exit code if there is one
    describe()                    JSON-ready facts for the run metadata

Failures to start or reload raise `SutError` (an `InfraError`: exit code 4 of `harness run`).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from harness.processes import ProcessError
from harness.symbols import load_universe
from ingest.kafka_settings import fold_partition

if TYPE_CHECKING:
    from contracts.records import FieldMapping
    from harness.sampler import UsageSource
    from harness.scenario import RecordMapping


class SutError(ProcessError):
    """The SUT could not be started, reloaded or reached; the message says what and why."""


@dataclass(frozen=True, slots=True)
class FeedEndpoints:
    """Where feed_sim serves: its interface, the four IQConnect ports and the control port."""

    host: str
    level1_port: int
    level2_port: int
    admin_port: int
    lookup_port: int
    control_port: int

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}"


@dataclass(frozen=True, slots=True)
class KafkaEndpoints:
    """The Kafka cluster the SUT produces to."""

    bootstrap: str


class SystemUnderTest(ABC):
    """One system under test, driven by the stage runner (see the module docstring)."""

    kind: ClassVar[str]

    def __init__(self, mapping: RecordMapping) -> None:
        self.mapping = mapping
        self.universe_file: Path | None = None
        """The scenario's symbols file, where the adapter knows it."""
        self.redis_url: str | None = None
        """The run's redis-server (`infra.redis`), set before `start`; None without one."""
        self._partition_of: dict[str, int] | None = None
        self.symbols: list[str] = []
        self.warnings: list[str] = []
        """Things the run metadata should mention (e.g. a reload that could not happen)."""
        self.configured_metrics_url: str | None = None
        """The scenario's `sut.metrics_url`, where the adapter has one."""

    @abstractmethod
    def start(self, symbols: list[str], feed: FeedEndpoints, kafka: KafkaEndpoints) -> None:
        """Start ingesting `symbols`; returns once the SUT is up. Raises SutError."""

    @abstractmethod
    def set_symbols(self, symbols: list[str]) -> None:
        """Make `symbols` the SUT's symbol set (live reload or restart). Raises SutError."""

    @abstractmethod
    def alive(self) -> bool:
        """True while the SUT is running (as far as the harness can tell)."""

    @abstractmethod
    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Stop gracefully, kill after `timeout_s`; the exit code (None: none known)."""

    def pids(self) -> list[int]:
        """PIDs whose process trees the sampler measures ([] when not on this host)."""
        return []

    def container_id(self) -> str | None:
        """The SUT's current container, for container SUTs."""
        return None

    def usage_source(self) -> UsageSource | None:
        """What the sampler reads the SUT's memory and CPU from; None: the process trees of
        `pids()`."""
        return None

    def partitions_for(self, symbols: Sequence[str]) -> list[int] | None:
        """The partitions the SUT writes `symbols` to, when known (then the collector reads
        only those): the symbols file's partitions if `record_mapping.partitions` is
        "universe"; None = unknown, read every partition."""
        if self.mapping.partitions != "universe" or self.universe_file is None:
            return None
        return self.universe_partitions(symbols)

    def universe_partitions(self, symbols: Sequence[str]) -> list[int]:
        """The symbols file's partitions of `symbols` (symbols not in it are skipped), folded
        onto `topic_partitions()` when the topics have fewer partitions than the file."""
        partition_of = self._universe_table()
        count = self.topic_partitions()
        folded = {fold_partition(partition_of[s], count) for s in symbols if s in partition_of}
        return sorted(folded)

    def topic_partitions(self) -> int:
        """Partitions of each topic: `record_mapping.topic_partitions`, else one per symbol
        of the universe (the readiness review's layout)."""
        return self.mapping.topic_partitions or len(self._universe_table())

    def _universe_table(self) -> dict[str, int]:
        if self._partition_of is None:
            if self.universe_file is None:
                raise SutError("no symbols file: the SUT's partitions are unknown")
            universe = load_universe(self.universe_file, check=False)
            self._partition_of = {info.symbol: info.partition for info in universe.symbols}
        return self._partition_of

    def topics(self) -> list[str]:
        """The Kafka topics the collector reads."""
        return list(self.mapping.topics)

    def metrics_url(self) -> str | None:
        """The SUT's Prometheus text endpoint (scraped once a second), None if it has none."""
        return self.configured_metrics_url

    def record_mapping(self) -> FieldMapping:
        """Where the collector finds symbol, sequence and times in the record values."""
        mapping: FieldMapping = self.mapping.field_mapping()
        return mapping

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts about the SUT for the run metadata."""
        return {
            "kind": self.kind,
            "symbols": len(self.symbols),
            "topics": self.topics(),
            "pids": self.pids(),
            "container_id": self.container_id(),
            "warnings": list(self.warnings),
        }

    def warn(self, message: str) -> None:
        """Record a warning once (the run metadata lists it)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def __enter__(self) -> SystemUnderTest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- helpers shared by the adapters -------------------------------------------------------


def write_symbols_file(path: Path, symbols: Sequence[str]) -> Path:
    """Write `symbols` as a JSON list, atomically (a reloading core never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(list(symbols)) + "\n")
    os.replace(tmp, path)
    return path
