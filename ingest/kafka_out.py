"""The reference core's Kafka producer: one record per event, key = symbol, own partition.

Owns the producer settings and the hand-over of `FeedRecord`s to librdkafka (contract 4):

- topic per record type (`<prefix>.trades|quotes|depth`, from `TOPIC_BY_TYPE`), key = symbol,
  partition = the symbol's partition (an injected `partition_of`, normally
  `ingest.symbols.SymbolPartitions.partition_of`);
- `produced_ns` stamped from the injected clock just before each `produce` call;
- durability: `acks=all` with `enable.idempotence=true` (no duplicates or reordering from
  producer retries); these two cannot be overridden;
- latency: lz4, Nagle off, `linger.ms` 2 unless the caller's `overrides` say otherwise; the
  reference core passes its producer design (`ingest.kafka_settings`: linger.ms "auto", 20 ms
  with one partition per symbol), which bench/bench_kafka_produce.py chose side by side.
  librdkafka sends one partition per ProduceRequest (librdkafka issue #1700), so with ~100
  msg/s per partition a short linger means about one request per record, and the broker's CPU
  follows the request count;
- one producer by default; `producers` > 1 spreads the partitions (partition p on producer
  p % n). Each partition has exactly one producer, so per-partition order and idempotence
  hold. In bench/bench_kafka_produce.py four producers (linger 2 ms) were no better than one
  at 5k msg/s and worse from 10k msg/s up: more requests, the broker near a whole core, and
  at 50k msg/s they fell behind the schedule; so the default stays 1;
- a bounded local queue (`queue.buffering.max.messages` / `.kbytes`). When it is full
  (`BufferError`) `send` polls (serving delivery reports, which frees space) and retries:
  the caller blocks, memory stays bounded, nothing is dropped;
- delivery reports counted (delivered; failed by error name); `flush(timeout)` drains;
- librdkafka statistics (`statistics_interval_ms` > 0; off by default here, on in `ingest run`
  via `KafkaSettings.statistics_interval_ms`): each producer's document is digested by
  `ingest.producer_stats` as it arrives (the callback runs inside librdkafka's poll: `poll`,
  `flush` or a back-pressure wait in `send`, on the caller's thread) and only the digest is
  kept; `producer_figures()` merges the producers' for any thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from contracts.topics import TOPIC_BY_TYPE
from ingest.producer_stats import ProducerFigures, StatisticsDigest, merged, parse_statistics
from ingest.records import FeedRecord

log = logging.getLogger(__name__)
KAFKA_LOGGER = logging.getLogger("ingest.kafka")

DEFAULT_TOPIC_PREFIX = "iqfeed"
DEFAULT_QUEUE_MAX_MESSAGES = 100_000
DEFAULT_QUEUE_MAX_KBYTES = 64 * 1024
DEFAULT_PRODUCERS = 1
BACKPRESSURE_POLL_S = 0.01
PINNED = {"acks": "all", "enable.idempotence": True}


def producer_config(
    bootstrap: str,
    *,
    queue_max_messages: int = DEFAULT_QUEUE_MAX_MESSAGES,
    queue_max_kbytes: int = DEFAULT_QUEUE_MAX_KBYTES,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """librdkafka settings of the core's producer; `overrides` may not weaken acks/idempotence."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": "ingest",
        **PINNED,
        "compression.type": "lz4",
        "linger.ms": 2,
        "batch.num.messages": 10_000,
        "batch.size": 256 * 1024,
        "socket.nagle.disable": True,
        "queue.buffering.max.messages": queue_max_messages,
        "queue.buffering.max.kbytes": queue_max_kbytes,
        "delivery.timeout.ms": 120_000,
    }
    for key, value in (overrides or {}).items():
        if key in PINNED and str(value).lower() not in {str(PINNED[key]).lower(), "-1"}:
            raise ValueError(f"producer setting {key}={value!r} is not allowed: keep {PINNED}")
        config[key] = value
    return config


def topic_names(prefix: str = DEFAULT_TOPIC_PREFIX) -> dict[str, str]:
    """record type -> topic, e.g. {"trade": "iqfeed.trades", ...} for prefix "iqfeed"."""
    return {kind: f"{prefix}.{name.split('.', 1)[1]}" for kind, name in TOPIC_BY_TYPE.items()}


@dataclass
class DeliveryStats:
    """What the producer did: produced, delivered, failed by error, back-pressure waits."""

    produced: int = 0
    delivered: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    backpressure_waits: int = 0

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


class KafkaOutput:
    """Sends `FeedRecord`s to Kafka; `send`, `poll` and `flush` belong to one thread."""

    def __init__(
        self,
        bootstrap: str,
        partition_of: Callable[[str], int],
        *,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        overrides: Mapping[str, Any] | None = None,
        queue_max_messages: int = DEFAULT_QUEUE_MAX_MESSAGES,
        queue_max_kbytes: int = DEFAULT_QUEUE_MAX_KBYTES,
        clock_ns: Callable[[], int] = time.time_ns,
        on_delivery: Callable[[str | None], None] | None = None,
        statistics_interval_ms: int = 0,
        producers: int = DEFAULT_PRODUCERS,
    ) -> None:
        if producers < 1:
            raise ValueError(f"producers must be >= 1, got {producers}")
        self.partition_of = partition_of
        self.topics = topic_names(topic_prefix)
        self.clock_ns = clock_ns
        self.on_delivery = on_delivery
        self.stats = DeliveryStats()
        self.statistics: list[StatisticsDigest | None] = [None] * producers
        """Each producer's latest statistics digest (None until its first document)."""
        self.config = producer_config(
            bootstrap,
            # The bound is for the whole output: each producer holds its share of it.
            queue_max_messages=max(1, queue_max_messages // producers),
            queue_max_kbytes=max(1, queue_max_kbytes // producers),
            overrides=overrides,
        )
        self._producers = [
            Producer(self._client_config(index, statistics_interval_ms))
            for index in range(producers)
        ]

    def _client_config(self, index: int, statistics_interval_ms: int) -> dict[str, Any]:
        client_config: dict[str, Any] = {
            **self.config,
            "client.id": f"{self.config['client.id']}-{index}",
            "logger": KAFKA_LOGGER,
        }
        if statistics_interval_ms > 0:
            client_config["statistics.interval.ms"] = statistics_interval_ms
            client_config["stats_cb"] = lambda text: self._on_statistics(index, text)
        return client_config

    def send(self, record: FeedRecord) -> None:
        """Stamp `produced_ns` and hand the record over; blocks while the local queue is full."""
        try:
            topic = self.topics[record.type]
        except KeyError:
            raise ValueError(f"unknown record type {record.type!r}") from None
        partition = self.partition_of(record.symbol)
        producer = self._producers[partition % len(self._producers)]
        while True:
            record.produced_ns = self.clock_ns()
            try:
                producer.produce(
                    topic,
                    value=record.to_value(),
                    key=record.symbol.encode(),
                    partition=partition,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                self.stats.backpressure_waits += 1
                producer.poll(BACKPRESSURE_POLL_S)
        self.stats.produced += 1

    def poll(self, timeout_s: float = 0.0) -> int:
        """Serve delivery reports of every producer; returns how many callbacks ran.

        A timeout is spent on the first producer; the others are served without waiting.
        """
        served = 0
        for producer in self._producers:
            served += int(producer.poll(timeout_s))
            timeout_s = 0.0
        return served

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for every record to be delivered; returns those still queued."""
        deadline = time.monotonic() + timeout_s
        remaining = 0
        for producer in self._producers:
            remaining += int(producer.flush(max(0.0, deadline - time.monotonic())))
        return remaining

    def queue_length(self) -> int:
        """Records produced but not yet delivered (or failed), over all producers."""
        return sum(len(producer) for producer in self._producers)

    def stats_json(self) -> dict[str, Any]:
        """Counts for the admin state endpoint."""
        return {
            "produced": self.stats.produced,
            "delivered": self.stats.delivered,
            "failed": dict(self.stats.failed),
            "in_flight": self.queue_length(),
            "backpressure_waits": self.stats.backpressure_waits,
        }

    def producer_figures(self) -> ProducerFigures | None:
        """The producers' latest statistics figures merged; None before any statistics.

        Safe from any thread: each digest is immutable and replaced whole."""
        return merged(digest.figures if digest else None for digest in list(self.statistics))

    def describe(self) -> dict[str, Any]:
        """Settings in force plus what the broker granted each producer, if known.

        `idempotence_state` / `producer_id` are the first producer's; `producers` lists all.
        """
        granted = [
            {
                "idempotence_state": digest.idempotence_state if digest else None,
                "producer_id": digest.producer_id if digest else None,
            }
            for digest in self.statistics
        ]
        return {"config": dict(self.config), **granted[0], "producers": granted}

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
            name = None
        else:
            name = str(err.name())
            self.stats.failed[name] = self.stats.failed.get(name, 0) + 1
            log.warning("kafka delivery failed: %s", err)
        if self.on_delivery is not None:
            self.on_delivery(name)

    def _on_statistics(self, index: int, text: str) -> None:
        try:
            self.statistics[index] = parse_statistics(text)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A document we cannot read costs the figures of one interval, never the producer.
            log.warning("producer %d: unreadable librdkafka statistics: %r", index, exc)
