"""The ClickHouse writer: Kafka (three feed topics) -> batches -> `ticks` / `depth` tables.

Owns the consumer loop that runs beside the core (its own process, its own consumer group),
the mapping of a `FeedRecord` to a table row, and the delivery guarantee:

- records are batched (`batch_size` records or `batch_ms` after the first one, whichever comes
  first) and inserted through `ingest.storage`; `written_ns` is stamped at insert;
- offsets are committed only after the batch's inserts succeeded (at-least-once). A crash
  between insert and commit re-delivers the batch; the tables' `ReplacingMergeTree` key
  (symbol, time, sequence) collapses those duplicates on merge (`OPTIMIZE ... FINAL`/`FINAL`);
- a failed insert is retried (after `retry_backoff_s`) and nothing is committed meanwhile;
- on a rebalance the pending batch is written and committed before partitions are revoked.

Rows keep the record's stamps (contract 3); `time` and the lag columns are derived by
ClickHouse. A record without an exchange time (`exchange_ns == 0`, e.g. a Nasdaq Level 2
delete) is keyed and dated by its `recv_ns` instead, so it does not land in 1970 (and expire at
once under the 90-day TTL); its network lag reads 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ingest.kafka_out import DEFAULT_TOPIC_PREFIX, topic_names
from ingest.records import FeedRecord
from ingest.signals import SignalRelay
from ingest.storage import open_store

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


class RowStore(Protocol):
    """Where batches go: `ingest.storage.ClickHouseStore` (or anything with its inserts)."""

    def insert_ticks(self, rows: Iterable[Mapping[str, Any]]) -> int: ...

    def insert_depth(self, rows: Iterable[Mapping[str, Any]]) -> int: ...


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
    """The writer's consumer: manual commits, from the earliest offset for a new group."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 50,
        "logger": KAFKA_LOGGER,
    }


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
        self._pending: list[Message] = []
        self._deadline = 0.0
        self.consumer.subscribe(self.topics, on_revoke=self._on_revoke)

    @classmethod
    def connect(
        cls,
        bootstrap: str,
        store: RowStore,
        *,
        group_id: str = DEFAULT_GROUP,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        **kwargs: Any,
    ) -> ClickHouseWriter:
        """A writer with its own consumer in `group_id` on the three feed topics."""
        consumer = Consumer(consumer_config(bootstrap, group_id))
        return cls(consumer, store, list(topic_names(topic_prefix).values()), **kwargs)

    def run(self, stop_event: threading.Event) -> None:
        """Consume and write until `stop_event` is set; then write what is pending and close."""
        try:
            while not stop_event.is_set():
                if not self.step() and self._pending:
                    stop_event.wait(self.retry_backoff_s)
            self.write_pending()
        finally:
            self.consumer.close()

    def step(self) -> bool:
        """Fetch what is available (up to the batch deadline); write a due batch.

        Returns False when a due batch could not be written (the caller backs off).
        """
        now = self.monotonic()
        wait = max(0.0, self._deadline - now) if self._pending else 0.1
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
            self._deadline = self.monotonic() + self.batch_s
        self._pending.append(msg)
        self.stats.consumed += 1

    def write_pending(self) -> bool:
        """Insert the pending batch, then commit its offsets; False if the insert failed."""
        if not self._pending:
            return True
        written_ns = self.clock_ns()
        rows: dict[str, list[dict[str, Any]]] = {"ticks": [], "depth": []}
        offsets: dict[tuple[str, int], int] = {}
        for msg in self._pending:
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
        try:
            self.stats.ticks_written += self.store.insert_ticks(rows["ticks"])
            self.stats.depth_written += self.store.insert_depth(rows["depth"])
        except Exception:  # any backend failure: keep the batch, commit nothing, retry
            self.stats.insert_failures += 1
            log.exception("insert of %d records failed; will retry", len(self._pending))
            return False
        self.stats.batches += 1
        self._pending.clear()
        self._commit(offsets)
        return True

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
    stop_event: threading.Event | None = None,
) -> int:
    """`ingest clickhouse-writer`: run until SIGTERM/SIGINT (or `stop_event`); exit code 0.

    `clickhouse` is a folder for the embedded chdb engine (None: its default folder) or an
    http(s)/clickhouse:// server URL. The schema is created if missing.
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
            batch_size=batch_size,
            batch_ms=batch_ms,
        )
        log.info("clickhouse writer: %s -> %s (group %s)", writer.topics, clickhouse, group_id)
        writer.run(stop)
        log.info("clickhouse writer stopped: %s", writer.stats)
    return 0
