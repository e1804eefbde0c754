"""The ClickHouse writer: Kafka (three feed topics) -> batches -> `ticks` / `depth` tables.

Owns the consumer loop that runs beside the core (its own process, its own consumer group),
the mapping of a `FeedRecord` to a table row, and the delivery guarantee:

- records are batched (`batch_size` records or `batch_ms` after the first one was appended to
  Kafka, whichever comes first) and inserted through `ingest.storage`; `written_ns` is stamped
  at insert;
- offsets are committed only after the batch's inserts succeeded (at-least-once). A crash
  between insert and commit re-delivers the batch; the tables' `ReplacingMergeTree` key
  (symbol, time, sequence) collapses those duplicates on merge (`OPTIMIZE ... FINAL`/`FINAL`);
- a failed insert is retried (after `retry_backoff_s`) and nothing is committed meanwhile;
- on a rebalance the pending batch is written and committed before partitions are revoked.

It also measures itself (`ingest.storage_lag`): the storage hop of every record (Kafka append
-> its batch's insert returned, i.e. the row is visible) and each insert's duration, since
start and per window a caller opens. `reconcile()` (POST /admin/reconcile of `main`'s metrics
server) is the cut a load test needs: once the writer has consumed up to given offsets, it
writes what is pending and answers with its positions, its counters and the tables' row counts
before and after ReplacingMergeTree's FINAL.

Rows keep the record's stamps (contract 3); `time` and the lag columns are derived by
ClickHouse. A record without an exchange time (`exchange_ns == 0`, e.g. a Nasdaq Level 2
delete) is keyed and dated by its `recv_ns` instead, so it does not land in 1970 (and expire at
once under the 90-day TTL); its network lag reads 0.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from ingest.kafka_out import DEFAULT_TOPIC_PREFIX, topic_names
from ingest.metrics import MetricsServer
from ingest.records import FeedRecord
from ingest.signals import SignalRelay
from ingest.storage import open_store
from ingest.storage_lag import StorageLag
from ingest.writer_control import WriterMetrics, control_routes

log = logging.getLogger(__name__)
KAFKA_LOGGER = logging.getLogger("ingest.kafka")

DEFAULT_GROUP = "ingest-clickhouse-writer"
DEPTH_ACTIONS = {"summary", "add", "update", "delete", "clear"}
# Level 2 message codes (iqfeed-protocol.md section 3) -> depth action.
L2_CODE_ACTIONS = {
    "3": "add",
    "4": "update",
    "5": "delete",
    "6": "summary",
    "7": "summary",
    "8": "update",
    "9": "delete",
    "Z": "summary",
    "2": "update",
}
PRICE_LEVEL_CODES = {"7", "8", "9"}


TABLES = ("ticks", "depth")


class RowStore(Protocol):
    """Where batches go: `ingest.storage.ClickHouseStore` (or anything with its inserts)."""

    def insert_ticks(self, rows: Iterable[Mapping[str, Any]]) -> int: ...

    def insert_depth(self, rows: Iterable[Mapping[str, Any]]) -> int: ...

    def count(self, table: str, *, final: bool = False) -> int: ...


class MalformedRecordError(ValueError):
    """A Kafka value that cannot become a row; counted and skipped (its offset is committed)."""


def _first(payload: Mapping[str, Any], *keys: str, default: Any = 0) -> Any:
    for key in keys:
        value = payload.get(key)
        if value is not None and value != "":
            return value
    return default


def _stamps(record: FeedRecord, written_ns: int) -> dict[str, Any]:
    if record.seq < 0:
        raise MalformedRecordError(f"negative sequence {record.seq}")
    return {
        "symbol": record.symbol,
        "sequence": record.seq,
        "exchange_ns": record.exchange_ns or record.recv_ns,
        "recv_ns": record.recv_ns,
        "produced_ns": record.produced_ns,
        "written_ns": written_ns,
    }


def tick_row(record: FeedRecord, written_ns: int) -> dict[str, Any]:
    """A `ticks` row for a trade or quote record."""
    p = record.payload
    return {
        **_stamps(record, written_ns),
        "event_type": record.type,
        "price": float(_first(p, "price", "last", default=0.0)),
        "size": int(_first(p, "size", "last_size")),
        "total_volume": int(_first(p, "total_volume")),
        "bid": float(_first(p, "bid", default=0.0)),
        "bid_size": int(_first(p, "bid_size")),
        "ask": float(_first(p, "ask", default=0.0)),
        "ask_size": int(_first(p, "ask_size")),
        "market_center": int(_first(p, "market_center")),
        "conditions": str(_first(p, "conditions", default="")),
    }


def depth_row(record: FeedRecord, written_ns: int) -> dict[str, Any]:
    """A `depth` row; the action comes from `action` or the Level 2 code in `op`/`msg_type`."""
    p = record.payload
    code = str(_first(p, "op", "msg_type", "code", default=""))
    action = str(p.get("action") or L2_CODE_ACTIONS.get(code, ""))
    if action not in DEPTH_ACTIONS:
        raise MalformedRecordError(f"depth record without a known action: {p!r}")
    side = str(_first(p, "side", default="B"))[:1].upper()
    if side not in {"B", "A"}:
        raise MalformedRecordError(f"depth side {p.get('side')!r} is neither B nor A")
    order_id = int(_first(p, "order_id"))
    kind = p.get("level_kind") or (
        "price" if code in PRICE_LEVEL_CODES else "order" if order_id else "mmid"
    )
    return {
        **_stamps(record, written_ns),
        "action": action,
        "side": side,
        "mmid": str(_first(p, "mmid", default="")),
        "order_id": order_id,
        "price": float(_first(p, "price", default=0.0)),
        "size": int(_first(p, "size")),
        "order_count": int(_first(p, "order_count")),
        "level_kind": str(kind),
    }


def record_row(record: FeedRecord, written_ns: int) -> tuple[str, dict[str, Any]]:
    """(table, row) for one record; MalformedRecordError for an unknown type or bad fields."""
    try:
        if record.type in ("trade", "quote"):
            return "ticks", tick_row(record, written_ns)
        if record.type == "depth":
            return "depth", depth_row(record, written_ns)
    except (TypeError, ValueError) as exc:
        raise MalformedRecordError(str(exc)) from exc
    raise MalformedRecordError(f"unknown record type {record.type!r}")


def consumer_config(bootstrap: str, group_id: str = DEFAULT_GROUP) -> dict[str, Any]:
    """The writer's consumer: manual commits, from the earliest offset for a new group.

    A fetch returns at 64 KiB or after 100 ms: rows wait for their batch (`batch_ms`, 200 ms)
    anyway, and on the 2-core machine at 5,000 msg/s over 3 x 495 partitions the writer took
    47 us of CPU a message so against 83 us with fetches of any size every 50 ms (the storage
    hop's P99 the same, 0.5-0.6 s; 2026-12-07, one run each).
    """
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "fetch.min.bytes": 64 << 10,
        "logger": KAFKA_LOGGER,
    }


RECONCILE_COUNT_ALLOWANCE_S = 300.0
"""How long a reconcile may take beyond its wait: writing the last batch and counting rows
(FINAL merges at read time)."""


@dataclass
class ReconcileRequest:
    """A cut asked for from another thread; the consume loop answers it."""

    targets: dict[tuple[str, int], int]
    deadline: float
    label: str | None
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class WriterStats:
    """What the writer did since it started."""

    consumed: int = 0
    ticks_written: int = 0
    depth_written: int = 0
    batches: int = 0
    commits: int = 0
    malformed: int = 0
    insert_failures: int = 0
    commit_failures: int = 0
    consumer_errors: dict[str, int] = field(default_factory=dict)


class ClickHouseWriter:
    """Consumes the feed topics and writes batches; `run(stop_event)` until stopped."""

    def __init__(
        self,
        consumer: Any,
        store: RowStore,
        topics: Sequence[str],
        *,
        batch_size: int = 5000,
        batch_ms: int = 200,
        retry_backoff_s: float = 1.0,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1 or batch_ms < 1:
            raise ValueError("batch_size and batch_ms must be positive")
        self.consumer = consumer
        self.store = store
        self.topics = list(topics)
        self.batch_size = batch_size
        self.batch_s = batch_ms / 1000.0
        self.retry_backoff_s = retry_backoff_s
        self.clock_ns = clock_ns
        self.monotonic = monotonic
        self.stats = WriterStats()
        self.lag = StorageLag()
        self.positions: dict[tuple[str, int], int] = {}
        """(topic, partition) -> the next offset after the last record consumed."""
        self._pending: list[Message] = []
        self._deadline = 0.0
        self._requests: queue.Queue[ReconcileRequest] = queue.Queue()
        self._waiting: list[ReconcileRequest] = []
        self.consumer.subscribe(self.topics, on_revoke=self._on_revoke)

    @classmethod
    def connect(
        cls,
        bootstrap: str,
        store: RowStore,
        *,
        group_id: str = DEFAULT_GROUP,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        topics: Sequence[str] = (),
        **kwargs: Any,
    ) -> ClickHouseWriter:
        """A writer with its own consumer in `group_id` on `topics` (default: the three feed
        topics of `topic_prefix`)."""
        consumer = Consumer(consumer_config(bootstrap, group_id))
        names = list(topics) or list(topic_names(topic_prefix).values())
        return cls(consumer, store, names, **kwargs)

    def run(self, stop_event: threading.Event) -> None:
        """Consume and write until `stop_event` is set; then write what is pending and close."""
        try:
            while not stop_event.is_set():
                if not self.step() and self._pending:
                    stop_event.wait(self.retry_backoff_s)
                self.serve_requests()
            self.write_pending()
        finally:
            self._refuse_waiting("the writer is stopping")
            self.consumer.close()

    def step(self) -> bool:
        """Fetch what is available (up to the batch deadline); write a due batch.

        Returns False when a due batch could not be written (the caller backs off).
        """
        now = self.monotonic()
        # Idle, poll often enough that a batch's first record is taken soon after it arrives.
        wait = max(0.0, self._deadline - now) if self._pending else min(0.1, self.batch_s / 4)
        want = self.batch_size - len(self._pending)
        if want > 0:
            for msg in self.consumer.consume(num_messages=want, timeout=wait):
                self._take(msg)
        due = len(self._pending) >= self.batch_size or (
            self._pending and self.monotonic() >= self._deadline
        )
        return self.write_pending() if due else True

    def _take(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                name = str(err.name())
                self.stats.consumer_errors[name] = self.stats.consumer_errors.get(name, 0) + 1
                log.warning("consumer error: %s", err)
            return
        if not self._pending:
            # The batch is due `batch_ms` after its first record was appended (not taken).
            kind, ms = msg.timestamp()
            age_s = 0.0
            if kind != TIMESTAMP_NOT_AVAILABLE and ms > 0:
                age_s = min(self.batch_s, max(0.0, self.clock_ns() / 1e9 - ms / 1e3))
            self._deadline = self.monotonic() + self.batch_s - age_s
        self._pending.append(msg)
        self.stats.consumed += 1
        self.positions[(str(msg.topic()), int(msg.partition() or 0))] = int(msg.offset() or 0) + 1

    def write_pending(self) -> bool:
        """Insert the pending batch, then commit its offsets; False if the insert failed."""
        if not self._pending:
            return True
        written_ns = self.clock_ns()
        rows: dict[str, list[dict[str, Any]]] = {"ticks": [], "depth": []}
        offsets: dict[tuple[str, int], int] = {}
        landed: list[int] = []
        for index, msg in enumerate(self._pending):
            key = (str(msg.topic()), int(msg.partition() or 0))
            offset = int(msg.offset() or 0)
            offsets[key] = max(offsets.get(key, -1), offset)
            try:
                table, row = record_row(FeedRecord.from_value(msg.value() or b""), written_ns)
            except (MalformedRecordError, ValueError, KeyError, TypeError) as exc:
                self.stats.malformed += 1
                log.warning("skipping malformed record at %s[%d]@%d: %s", *key, offset, exc)
                continue
            rows[table].append(row)
            landed.append(index)
        started_ns = self.clock_ns()
        try:
            self.stats.ticks_written += self.store.insert_ticks(rows["ticks"])
            self.stats.depth_written += self.store.insert_depth(rows["depth"])
        except Exception:  # any backend failure: keep the batch, commit nothing, retry
            self.stats.insert_failures += 1
            log.exception("insert of %d records failed; will retry", len(self._pending))
            return False
        visible_ns = self.clock_ns()
        self.lag.observe_batch(self._append_times_ns(landed), started_ns, visible_ns)
        self.stats.batches += 1
        self._pending.clear()
        self._commit(offsets)
        return True

    def _append_times_ns(self, landed: Sequence[int]) -> npt.NDArray[np.int64]:
        """Kafka append times (ns, whole ms) of the pending messages at `landed` that carry
        a timestamp."""
        stamps = []
        for index in landed:
            kind, ms = self._pending[index].timestamp()
            if kind != TIMESTAMP_NOT_AVAILABLE and ms > 0:
                stamps.append(ms)
        return np.asarray(stamps, dtype=np.int64) * 1_000_000

    # -- reconciliation (served from the consume loop) -------------------------------------

    def reconcile(
        self, targets: Mapping[tuple[str, int], int], timeout_s: float, label: str | None = None
    ) -> dict[str, Any]:
        """From any thread: wait (up to `timeout_s`) until the writer has consumed every
        partition up to its target offset, then write what is pending and answer with the
        cut's figures (`_cut`); `label` also hands over that storage window's figures."""
        request = ReconcileRequest(dict(targets), self.monotonic() + timeout_s, label)
        self._requests.put(request)
        # The loop answers at the deadline at the latest; the counts themselves take a while.
        if not request.done.wait(timeout_s + RECONCILE_COUNT_ALLOWANCE_S):
            raise TimeoutError(f"the writer's loop did not answer within {timeout_s:g} s")
        if request.error is not None:
            raise RuntimeError(request.error)
        assert request.reply is not None
        return request.reply

    def serve_requests(self) -> None:
        """Answer the reconcile requests whose offsets are reached or whose time is up."""
        while True:
            try:
                self._waiting.append(self._requests.get_nowait())
            except queue.Empty:
                break
        for request in list(self._waiting):
            caught_up = all(self.positions.get(tp, 0) >= end for tp, end in request.targets.items())
            if not caught_up and self.monotonic() < request.deadline:
                continue
            self._waiting.remove(request)
            try:
                request.reply = self._cut(request, caught_up)
            except Exception as exc:  # the backend failed: the caller hears why
                log.exception("reconcile failed")
                request.error = f"{type(exc).__name__}: {exc}"
            request.done.set()

    def _cut(self, request: ReconcileRequest, caught_up: bool) -> dict[str, Any]:
        written = self.write_pending()
        started = time.perf_counter()
        rows = {
            table: {"raw": self.store.count(table), "final": self.store.count(table, final=True)}
            for table in TABLES
        }
        behind = {
            f"{topic}[{partition}]": end - self.positions.get((topic, partition), 0)
            for (topic, partition), end in request.targets.items()
            if self.positions.get((topic, partition), 0) < end
        }
        positions: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(self.positions.items()):
            positions.setdefault(topic, {})[str(partition)] = offset
        return {
            "caught_up": caught_up,
            "pending_written": written,
            "behind": behind,
            "positions": positions,
            "rows": rows,
            "count_s": round(time.perf_counter() - started, 3),
            "stats": dataclasses.asdict(self.stats),
            "window": self.lag.take(request.label) if request.label else None,
        }

    def _refuse_waiting(self, reason: str) -> None:
        for request in self._waiting:
            request.error = reason
            request.done.set()
        self._waiting.clear()

    def _commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        partitions = [TopicPartition(t, p, o + 1) for (t, p), o in offsets.items()]
        try:
            self.consumer.commit(offsets=partitions, asynchronous=False)
            self.stats.commits += 1
        except KafkaException as exc:
            # Rows are in; a redelivery only produces duplicates that the tables collapse.
            self.stats.commit_failures += 1
            log.warning("offset commit failed (records may be re-delivered): %s", exc)

    def _on_revoke(self, _consumer: Any, _partitions: list[TopicPartition]) -> None:
        if not self.write_pending():
            # Not committed, so the next owner re-reads them; drop our copy.
            self._pending.clear()


def main(
    bootstrap: str,
    clickhouse: str | Path | None = None,
    *,
    group_id: str = DEFAULT_GROUP,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    database: str = "market",
    batch_size: int = 5000,
    batch_ms: int = 200,
    topics: Sequence[str] = (),
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """`ingest clickhouse-writer`: run until SIGTERM/SIGINT (or `stop_event`); exit code 0.

    `clickhouse` is a folder for the embedded chdb engine (None: its default folder) or an
    http(s)/clickhouse:// server URL. The schema is created if missing. `topics` replaces the
    three `topic_prefix` topics. With `metrics_port` (0: any free port) the writer serves
    /metrics, /healthz and the control routes (`control_routes`) on `metrics_host`.
    """
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        SignalRelay({signal.SIGTERM: stop.set, signal.SIGINT: stop.set}).install()
    with open_store(clickhouse, database=database) as store:
        store.create_schema()
        writer = ClickHouseWriter.connect(
            bootstrap,
            store,
            group_id=group_id,
            topic_prefix=topic_prefix,
            topics=topics,
            batch_size=batch_size,
            batch_ms=batch_ms,
        )
        server = None
        if metrics_port is not None:
            server = MetricsServer(
                WriterMetrics(writer),
                metrics_host,
                metrics_port,
                post_routes=control_routes(writer),
            )
            server.start()
            log.info("clickhouse writer metrics on %s", server.url)
        log.info("clickhouse writer: %s -> %s (group %s)", writer.topics, clickhouse, group_id)
        try:
            writer.run(stop)
        finally:
            if server is not None:
                server.stop()
        log.info("clickhouse writer stopped: %s", writer.stats)
    return 0
