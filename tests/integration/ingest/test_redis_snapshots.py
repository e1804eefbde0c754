"""Book snapshots to a real redis-server (AOF, fsync every second): written per cycle in one
pipeline, readable back, and a Redis outage is counted, never raised into the caller."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
import redis

from harness.infra.ports import free_ports
from ingest.redis_snapshots import RedisSnapshotter, read_snapshot
from tests.integration.ingest.conftest import RedisServer

pytestmark = pytest.mark.integration


def _books(version: int) -> dict[str, dict[str, Any]]:
    return {
        "AAPL": {"bids": [[189.5, 300]], "asks": [[189.52, 200]], "version": version},
        "MSFT": {"bids": [[410.1, 100]], "asks": [], "version": version},
    }


def test_snapshots_written_and_aof_everysec(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.info("persistence")["aof_enabled"] == 1

        version = itertools.count(1)
        clock = itertools.count(1_000)
        snap = RedisSnapshotter.from_url(
            redis_server.url, lambda: _books(next(version)), interval_s=0.05,
            clock_ns=lambda: next(clock),
        )  # fmt: skip
        assert snap.write_once() == 2
        # The cycle's pipeline: one HSET per book plus the index HSET.
        assert client.info("commandstats")["cmdstat_hset"]["calls"] == 3
        assert read_snapshot(client, "AAPL") == _books(1)["AAPL"]
        assert client.hget("book:AAPL", "updated_ns") == b"1000"
        assert client.hgetall("book:index") == {b"AAPL": b"1000", b"MSFT": b"1000"}

        snap.start()
        deadline = time.monotonic() + 10
        while snap.stats.cycles < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        snap.stop()
        assert snap.stats.cycles >= 4 and snap.stats.errors == 0
        assert read_snapshot(client, "MSFT")["version"] >= 4
        time.sleep(1.2)  # everysec: the AOF reaches the disk within a second
        aof = list((redis_server.data_dir / "appendonlydir").glob("*.aof"))
        assert aof and sum(p.stat().st_size for p in aof) > 0
        assert any(b"book:AAPL" in p.read_bytes() for p in aof)
    finally:
        client.close()


def test_outage_is_counted_not_raised() -> None:
    dead = f"redis://127.0.0.1:{free_ports(1)[0]}/0"  # nothing listens there
    snap = RedisSnapshotter.from_url(dead, lambda: _books(1), interval_s=0.05)
    snap.start()
    try:
        deadline = time.monotonic() + 10
        while snap.stats.errors < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        snap.stop()
    assert snap.stats.errors >= 2 and snap.stats.cycles == 0
