"""Optional book snapshots to Redis (off by default; `redis.enabled` in the core's config).

Owns the periodic cycle: every `interval_s` it asks a callable for `{symbol: snapshot dict}`
and writes all of them in ONE pipeline (one round trip per cycle):

    HSET <prefix><SYMBOL>  json <orjson of the snapshot>  updated_ns <clock ns>
    HSET <prefix>index     <SYMBOL> <updated_ns>

A snapshot is `SymbolStates.snapshots()`'s entry: `{"level1": ..., "book": {"seq": N, "B":
{"mmid": [...], "orders": [...], "levels": [...]}, "A": {...}}}`, rows best price first;
`updated_ns` is when the cycle took it. `ingest run --redis-url URL` turns it on (every
`redis.interval_s`, 5 s by default); its figures are on /metrics as
`ingest_redis_snapshot_*` (cycles, symbols, errors, the last and max write lag, the age of
the last written cycle).

Durability is Redis's own (the readiness review: AOF with fsync every second); the project
starts redis-server with `--appendonly yes --appendfsync everysec`. A Redis outage is logged
and counted; the next cycle tries again, the ingest loop never waits for Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import redis

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "book:"
Snapshots = Callable[[], Mapping[str, Mapping[str, Any]]]


@dataclass
class SnapshotStats:
    cycles: int = 0
    symbols_written: int = 0
    errors: int = 0
    last_cycle_ns: int = 0
    """Clock time of the last cycle written (0: none yet)."""
    last_write_s: float = 0.0
    """The last cycle's write lag: from taking the snapshots to Redis acknowledging them."""
    max_write_s: float = 0.0

    def metrics(self, now_ns: int) -> dict[str, float]:
        """The `ingest_redis_snapshot_*` figures of /metrics."""
        age = (now_ns - self.last_cycle_ns) / 1e9 if self.last_cycle_ns else -1.0
        return {
            "ingest_redis_snapshot_cycles_total": float(self.cycles),
            "ingest_redis_snapshot_symbols_total": float(self.symbols_written),
            "ingest_redis_snapshot_errors_total": float(self.errors),
            "ingest_redis_snapshot_write_seconds": self.last_write_s,
            "ingest_redis_snapshot_write_seconds_max": self.max_write_s,
            "ingest_redis_snapshot_age_seconds": age,
        }


class RedisSnapshotter:
    """Writes every symbol's snapshot to Redis each cycle, from its own thread."""

    def __init__(
        self,
        client: redis.Redis,
        snapshots: Snapshots,
        *,
        interval_s: float = 5.0,
        prefix: str = DEFAULT_PREFIX,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.client = client
        self.snapshots = snapshots
        self.interval_s = interval_s
        self.prefix = prefix
        self.clock_ns = clock_ns
        self.stats = SnapshotStats()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    def from_url(cls, url: str, snapshots: Snapshots, **kwargs: Any) -> RedisSnapshotter:
        """A snapshotter on `redis://host:port/db` with short socket timeouts."""
        client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        return cls(client, snapshots, **kwargs)

    def key(self, symbol: str) -> str:
        return f"{self.prefix}{symbol}"

    @property
    def index_key(self) -> str:
        return f"{self.prefix}index"

    def write_once(self) -> int:
        """One cycle: all snapshots in one pipeline; returns the symbols written."""
        started = time.perf_counter()
        books = dict(self.snapshots())
        now = self.clock_ns()
        pipe = self.client.pipeline(transaction=False)
        for symbol, snapshot in books.items():
            pipe.hset(self.key(symbol), mapping={"json": orjson.dumps(snapshot), "updated_ns": now})
        if books:
            pipe.hset(self.index_key, mapping=dict.fromkeys(books, now))
        pipe.execute()
        self.stats.last_write_s = time.perf_counter() - started
        self.stats.max_write_s = max(self.stats.max_write_s, self.stats.last_write_s)
        self.stats.cycles += 1
        self.stats.symbols_written += len(books)
        self.stats.last_cycle_ns = now
        return len(books)

    def run(self, stop_event: threading.Event) -> None:
        """Write a cycle every `interval_s` until `stop_event` is set."""
        while not stop_event.is_set():
            try:
                self.write_once()
            except redis.RedisError as exc:
                self.stats.errors += 1
                log.warning("redis snapshot cycle failed: %s", exc)
            stop_event.wait(self.interval_s)

    def start(self) -> None:
        """Run in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="redis-snapshots", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the client (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        self.client.close()


def read_snapshot(client: redis.Redis, symbol: str, prefix: str = DEFAULT_PREFIX) -> Any:
    """The last snapshot written for `symbol` (decoded), or None."""
    raw = client.hget(f"{prefix}{symbol}", "json")
    return None if raw is None else orjson.loads(raw)
