"""The ClickHouse sink of a run (scenario `storage`): `ingest clickhouse-writer` as a process.

`StorageWriter.start()` runs `python -m ingest.cli clickhouse-writer` on the SUT's topics in
a consumer group of its own (from the topics' beginning), ClickHouse embedded in
`<run>/clickhouse` or a server URL, its metrics and control routes on a free loopback port,
logging to `<run>/logs/clickhouse-writer.log`; `stop()` ends it by PID (SIGTERM: it writes
what is pending first).

Per hold: `open_window` / `close_window` bracket the records appended during the hold (the
writer measures their storage hop); `reconcile` waits until the writer has consumed up to the
offsets Kafka holds now, and returns `StorageHold`: the hold's storage-hop and insert
histograms and the row counts against Kafka's records (`Reconciliation`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]
from hdrh.histogram import HdrHistogram

from contracts import hdr
from harness.infra.errors import InfraError
from harness.infra.kafka_clients import admin_client
from harness.infra.ports import LOOPBACK, free_ports
from harness.infra.topics import offsets_when_served
from harness.processes import (
    ProcessError,
    post_json,
    start_process,
    stop_process,
    wait_for_http,
)
from harness.scenario import StorageConfig


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Rows in ClickHouse after FINAL against the records Kafka holds, at one cut."""

    caught_up: bool
    """The writer had consumed every partition up to Kafka's end offsets in time."""
    kafka_records: int
    """Records in the topics up to the writer's positions (from each partition's start)."""
    malformed: int
    rows_raw: int
    rows_final: int
    behind: dict[str, int]
    count_s: float

    @property
    def expected_rows(self) -> int:
        return self.kafka_records - self.malformed

    @property
    def mismatch(self) -> int:
        """Rows after FINAL minus the rows Kafka's records should give (0: reconciled;
        below 0: rows missing; above 0: duplicates that FINAL did not collapse)."""
        return self.rows_final - self.expected_rows

    def to_json(self) -> dict[str, Any]:
        return {
            "caught_up": self.caught_up,
            "kafka_records": self.kafka_records,
            "malformed": self.malformed,
            "expected_rows": self.expected_rows,
            "rows_raw": self.rows_raw,
            "rows_final": self.rows_final,
            "duplicates_collapsed": self.rows_raw - self.rows_final,
            "mismatch": self.mismatch,
            "behind": self.behind,
            "count_s": self.count_s,
        }


@dataclass(frozen=True, slots=True)
class StorageHold:
    """What the writer measured of one hold."""

    storage: HdrHistogram
    """Kafka append -> row visible, per record appended during the hold (us)."""
    wait: HdrHistogram
    """Kafka append -> its batch's insert started, per record (us): the fetch and the batch."""
    insert: HdrHistogram
    """Each insert's duration (us), per batch holding such records."""
    batches: int
    reconciliation: Reconciliation
    rows_per_table: dict[str, dict[str, int]]
    writer_stats: dict[str, Any]


def end_offsets(
    bootstrap: str, topics: list[str], timeout_s: float = 30.0
) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (first offset, end offset) now, for every partition of `topics`."""
    admin = admin_client(bootstrap)
    metadata = admin.list_topics(timeout=timeout_s).topics
    partitions = [
        TopicPartition(topic, p) for topic in topics for p in sorted(metadata[topic].partitions)
    ]
    deadline = time.monotonic() + timeout_s
    try:
        earliest = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        low = offsets_when_served(admin, dict.fromkeys(partitions, earliest), deadline)
        high = offsets_when_served(admin, dict.fromkeys(partitions, latest), deadline)
    except Exception as exc:  # KafkaException: the cluster did not answer in time
        raise InfraError(f"cannot read the end offsets of {topics}: {exc}") from exc
    return {(tp.topic, tp.partition): (low[tp], high[tp]) for tp in partitions}


class StorageWriter:
    """`ingest clickhouse-writer` beside the SUT, started and stopped by the harness."""

    def __init__(
        self,
        config: StorageConfig,
        run_dir: Path,
        *,
        startup_timeout_s: float = 60.0,
        python: str = sys.executable,
    ) -> None:
        if config.clickhouse is None:
            raise ValueError("storage.clickhouse is not set")
        self.config = config
        self.run_dir = run_dir
        self.startup_timeout_s = startup_timeout_s
        self.python = python
        self.log = run_dir / "logs" / "clickhouse-writer.log"
        self.target = (
            str(run_dir / "clickhouse") if config.clickhouse == "embedded" else config.clickhouse
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.bootstrap = ""
        self.topics: list[str] = []

    @property
    def url(self) -> str:
        if self.port is None:
            raise ProcessError("the ClickHouse writer is not started")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def command(self, bootstrap: str, topics: list[str], port: int) -> list[str]:
        """The writer's command line."""
        argv = [
            self.python, "-m", "ingest.cli", "clickhouse-writer",
            "--bootstrap", bootstrap,
            "--clickhouse", self.target,
            "--database", self.config.database,
            "--group", f"harness-storage-{self.run_dir.name}",
            "--batch-size", str(self.config.batch_size),
            "--batch-ms", str(self.config.batch_ms),
            "--metrics-host", LOOPBACK,
            "--metrics-port", str(port),
        ]  # fmt: skip
        for topic in topics:
            argv += ["--topic", topic]
        return argv

    def start(self, bootstrap: str, topics: list[str]) -> None:
        """Start the writer and wait for its /healthz; ProcessError if it does not come up."""
        self.bootstrap, self.topics = bootstrap, list(topics)
        (self.port,) = free_ports(1)
        self.process = start_process(self.command(bootstrap, self.topics, self.port), self.log)
        process = self.process
        wait_for_http(
            f"{self.url}/healthz",
            self.startup_timeout_s,
            ok_only=True,
            still_running=lambda: process.poll() is None,
            what="the ClickHouse writer",
            log=self.log,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def open_window(self, label: str, start_ns: int) -> None:
        post_json(f"{self.url}/admin/window", {"label": label, "start_ns": start_ns}, 10.0)

    def close_window(self, label: str, end_ns: int) -> None:
        post_json(f"{self.url}/admin/window", {"label": label, "end_ns": end_ns}, 10.0)

    def reconcile(self, label: str) -> StorageHold:
        """Kafka's offsets now; the writer's cut once it reached them (or its time ran out)."""
        offsets = end_offsets(self.bootstrap, self.topics)
        targets: dict[str, dict[str, int]] = {}
        for (topic, partition), (low, high) in offsets.items():
            if high > low:
                targets.setdefault(topic, {})[str(partition)] = high
        timeout_s = self.config.reconcile_timeout_s
        reply = post_json(
            f"{self.url}/admin/reconcile",
            {"offsets": targets, "timeout_s": timeout_s, "label": label},
            timeout_s + 360.0,
        )
        return _storage_hold(reply, offsets)

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (it writes its last batch), KILL after `timeout_s`; the exit code."""
        if self.process is None:
            return None
        return stop_process(self.process, timeout_s)


def _storage_hold(reply: Any, offsets: dict[tuple[str, int], tuple[int, int]]) -> StorageHold:
    """The writer's reconcile reply, with Kafka's first offsets, as a `StorageHold`."""
    if not isinstance(reply, dict):
        raise ProcessError(f"the ClickHouse writer's reconcile reply is not JSON: {reply!r}")
    positions = reply.get("positions") or {}
    kafka_records = sum(
        max(0, int(positions.get(topic, {}).get(str(partition), low)) - low)
        for (topic, partition), (low, _high) in offsets.items()
    )
    rows = reply.get("rows") or {}
    stats = reply.get("stats") or {}
    window = reply.get("window") or {}

    def histogram(name: str) -> HdrHistogram:
        return hdr.decode(window[name]) if window.get(name) else hdr.new_histogram()

    return StorageHold(
        storage=histogram("storage"),
        wait=histogram("wait"),
        insert=histogram("insert"),
        batches=int(window.get("batches") or 0),
        reconciliation=Reconciliation(
            caught_up=bool(reply.get("caught_up")),
            kafka_records=kafka_records,
            malformed=int(stats.get("malformed") or 0),
            rows_raw=sum(int(t.get("raw") or 0) for t in rows.values()),
            rows_final=sum(int(t.get("final") or 0) for t in rows.values()),
            behind={str(k): int(v) for k, v in (reply.get("behind") or {}).items()},
            count_s=float(reply.get("count_s") or 0.0),
        ),
        rows_per_table={str(k): dict(v) for k, v in rows.items()},
        writer_stats=dict(stats),
    )


def storage_json(hold: StorageHold, batch_ms: int | None = None) -> dict[str, Any]:
    """The hold's storage block of summary.json (percentiles in us, as `latency_us`)."""
    return {
        "hop": "kafka append -> row visible in ClickHouse",
        "batch_ms": batch_ms,
        "lag_us": hdr.percentiles(hold.storage),
        "wait_us": hdr.percentiles(hold.wait),
        "insert_us": hdr.percentiles(hold.insert),
        "batches": hold.batches,
        "records_per_batch": hold.storage.get_total_count() / hold.batches
        if hold.batches
        else None,
        "reconciliation": hold.reconciliation.to_json(),
        "rows": hold.rows_per_table,
        "writer": {
            k: hold.writer_stats.get(k)
            for k in ("consumed", "batches", "malformed", "insert_failures", "commit_failures")
        },
    }
