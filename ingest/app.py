"""Composition root of `ingest run`: config -> pool, processors, Kafka output, metrics, ops.

Threads: the ingestion loop (IngestCore.run), the metrics/admin HTTP server, and, with
`redis.enabled` (`--redis-url`), the Redis snapshotter (ingest.redis_snapshots: every book
to Redis each `redis.interval_s`). Signals: SIGHUP reloads the symbol set from the config's
symbols source without a restart; SIGTERM/SIGINT stop reading, flush the producer (nothing in
flight lost) and exit. `POST /admin/symbols` sets the symbol set live (how the harness ramps
50 -> 495).

`/metrics` carries the core's own families (`IngestMetrics`), the pool's and processors'
counters, and the Kafka producer's librdkafka statistics (`kafka_producer_*`, refreshed every
`kafka.statistics_interval_ms`, 1 s by default; digested on the ingest loop thread inside
`poll`).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from ingest.config import IngestConfig
from ingest.core import IngestCore, PoolSettings
from ingest.feed.connection import BackoffPolicy, FeedConnection, SubscriptionPolicy
from ingest.feed.fieldset import select_update_fields_command
from ingest.feed.state import SymbolStates
from ingest.kafka_out import KafkaOutput
from ingest.metrics import (
    IngestMetrics,
    MetricFamily,
    MetricsServer,
    plain_families,
    producer_families,
)
from ingest.process import Processor, ProcessStats
from ingest.records import FeedRecord
from ingest.redis_snapshots import RedisSnapshotter
from ingest.signals import SignalRelay
from ingest.symbols import SymbolPartitions

log = logging.getLogger(__name__)


class MeteredSink:
    """Kafka output that also feeds the live lag histograms and counters."""

    def __init__(self, output: KafkaOutput, metrics: IngestMetrics) -> None:
        self.output = output
        self.metrics = metrics

    def send(self, record: FeedRecord) -> None:
        self.output.send(record)
        self.metrics.observe(record)

    def poll(self) -> None:
        self.output.poll()
        self.metrics.flush_due()

    def flush(self, timeout_s: float) -> int:
        """The drain: the buffered lags, then every record still queued."""
        self.metrics.flush_batch()
        return self.output.flush(timeout_s)


class IngestApp:
    """A running reference core."""

    def __init__(self, config: IngestConfig, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.partitions = SymbolPartitions.load(config.symbols_file, config.kafka.partitions)
        self.states = SymbolStates()
        self.stats: list[ProcessStats] = []
        design = config.kafka.design()
        self.output = KafkaOutput(
            config.kafka.bootstrap,
            self.partitions.partition_of,
            topic_prefix=config.kafka.topic_prefix,
            overrides={
                **design.overrides(len(self.initial_symbols()), config.kafka.partitions),
                **config.kafka.producer,
            },
            queue_max_messages=config.kafka.queue_max_messages,
            producers=config.kafka.producers,
            statistics_interval_ms=config.kafka.statistics_interval_ms,
            clock_ns=clock_ns,
            on_delivery=self._on_delivery,
        )
        self.metrics = IngestMetrics(queue_length=self.output.queue_length)
        feed = config.feed
        settings = PoolSettings(
            host=feed.host,
            level1_port=feed.level1_port,
            level2_port=feed.level2_port,
            connections=feed.connections,
            level2=feed.level2,
            client_name=feed.client_name,
            select_fields_command=select_update_fields_command(),
            subscriptions=SubscriptionPolicy(feed.batch_size, feed.batch_pause_s),
            backoff=BackoffPolicy(feed.reconnect_initial_s, feed.reconnect_max_s),
        )
        self.core = IngestCore(
            settings,
            self.partitions.partition_of,
            self._processor,
            MeteredSink(self.output, self.metrics),
            clock_ns=clock_ns,
        )
        self.server = MetricsServer(
            self.metrics,
            config.metrics.host,
            config.metrics.port,
            on_symbols=self.set_symbols,
            state=self.state,
            extra_metrics=self._extra_metrics,
            books=self.states.snapshots,
        )
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.snapshotter = (
            RedisSnapshotter.from_url(
                config.redis.url, self.states.snapshots, interval_s=config.redis.interval_s
            )
            if config.redis.enabled
            else None
        )
        self.clock_ns = clock_ns

    def _on_delivery(self, error: str | None) -> None:
        self.metrics.count_delivery(error)

    def _processor(self, conn: FeedConnection) -> Processor:
        processor = Processor(self.states)
        self.stats.append(processor.stats)
        return processor

    def initial_symbols(self) -> list[str]:
        return list(self.config.symbols) or self.partitions.symbols()

    def set_symbols(self, symbols: list[str]) -> dict[str, Any]:
        self.core.set_symbols(symbols)
        return {"symbols": len(symbols)}

    def reload(self) -> None:
        """SIGHUP: re-read the symbols file and apply it live."""
        self.partitions = SymbolPartitions.load(
            self.config.symbols_file, self.config.kafka.partitions
        )
        self.core.set_symbols(self.initial_symbols())

    def process_stats(self) -> ProcessStats:
        total = ProcessStats()
        for stats in self.stats:
            total = total + stats
        return total

    def state(self) -> dict[str, Any]:
        return {
            "symbols": len(self.core.symbols),
            "connections": self.core.connection_report(),
            "mapping": self.core.mapping(),
            "process": self.process_stats().to_json(),
            "kafka": self.output.stats_json(),
            "memory_per_symbol_bytes": self.states.memory_report(),
        }

    def _extra_metrics(self) -> list[MetricFamily]:
        stats = self.process_stats()
        plain = {
            "ingest_connection_reconnects_total": float(self.core.reconnects),
            "ingest_lines_total": float(self.core.lines_read),
            "ingest_truncated_lines_discarded_total": float(
                sum(c.discarded_partial_lines for c in self.core.connections)
            ),
            **{f"ingest_{k}": float(v) for k, v in stats.counters().items()},
            "ingest_book_memory_bytes": float(self.states.book_memory_bytes()),
            "ingest_state_memory_bytes": float(self.states.total_memory_bytes()),
        }
        if self.snapshotter is not None:
            plain.update(self.snapshotter.stats.metrics(self.clock_ns()))
        return plain_families(plain) + producer_families(self.output.producer_figures())

    def start(self) -> None:
        self.server.start()
        self.core.set_symbols(self.initial_symbols())
        self._thread = threading.Thread(
            target=self.core.run, args=(self.stop_event,), name="ingest-loop", daemon=True
        )
        self._thread.start()
        if self.snapshotter is not None:
            self.snapshotter.start()

    def stop(self, drain_timeout_s: float = 30.0) -> int:
        """Stop reading, flush the producer; returns records still undelivered (0 = none)."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        remaining = self.core.sink.flush(drain_timeout_s)  # the loop has stopped
        if self.snapshotter is not None:
            self.snapshotter.stop()
        self.server.stop()
        log.info("ingest stopped: %d record(s) undelivered", remaining)
        return remaining


def run_forever(app: IngestApp) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads symbols. Exit code 0 after a clean drain.

    Prints one JSON line on start (`{"event": "started", "metrics_port": P}`) and one on exit
    (`{"event": "stopped", "produced": N, "delivered": M, "failed": F, "undelivered": K}`).
    """
    done = threading.Event()
    SignalRelay(
        {signal.SIGTERM: done.set, signal.SIGINT: done.set, signal.SIGHUP: app.reload}
    ).install()
    app.start()
    print(json.dumps({"event": "started", "metrics_port": app.server.port}), flush=True)
    while not done.wait(1.0):
        pass
    remaining = app.stop()
    stats = app.output.stats
    print(
        json.dumps(
            {
                "event": "stopped",
                "produced": stats.produced,
                "delivered": stats.delivered,
                "failed": stats.failed_total,
                "undelivered": remaining,
            }
        ),
        flush=True,
    )
    return 0 if remaining == 0 else 1
