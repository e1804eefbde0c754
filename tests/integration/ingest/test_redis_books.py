"""`ingest run --redis-url` (the core's config `redis.enabled`) against a real redis-server
(AOF, fsync every second), feed_sim with Level 2 and a real broker:

- the books land in Redis and, once the feed pauses, equal the core's own books
  (`GET /admin/books`) entry for entry; the core reports its book memory and snapshot figures
  on /metrics;
- redis-server killed mid-stream: the failed cycles are counted on /metrics, the Kafka path
  goes on (records keep being delivered) and the core still drains cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import pytest
import redis

from harness.infra.kafka_local import ClusterState, LocalKafka
from ingest.redis_snapshots import read_snapshot
from tests.integration.ingest.conftest import (
    E2E_DEPTH_SYMBOLS,
    E2E_SYMBOLS,
    RedisServer,
    create_topics,
    ingest_config,
    run_ingest,
    serve_feed_sim,
    unique_prefix,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_books_reach_redis_and_a_redis_outage_does_not_stop_kafka(
    kafka_single: tuple[LocalKafka, ClusterState],
    e2e_tape: Path,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    _, cluster = kafka_single
    prefix = unique_prefix("redis")
    create_topics(cluster.bootstrap, cluster.broker_count, prefix, ("trade", "quote", "depth"))
    client = redis.Redis.from_url(redis_server.url)
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    with serve_feed_sim([e2e_tape], rate_hz=20.0, l2_rate_hz=10.0) as feed:
        config = ingest_config(
            level1_port=feed.port("level1"),
            level2_port=feed.port("level2"),
            bootstrap=cluster.bootstrap,
            prefix=prefix,
            symbols=E2E_SYMBOLS,
        )
        config["redis"] = {"enabled": True, "url": redis_server.url, "interval_s": 0.3}
        with run_ingest(tmp_path, config) as ingest:

            def books_and_cycles() -> bool:
                depth = ingest.state()["process"]["records"]["depth"]
                return depth >= 40 and ingest.metrics()["ingest_redis_snapshot_cycles_total"] >= 3

            wait_until(books_and_cycles, 120, "depth records and snapshot cycles")
            feed.control.pause()
            time.sleep(1.5)  # the last message is in; later cycles see the same books
            core_books = orjson.loads(ingest._get("/admin/books"))
            for symbol in E2E_DEPTH_SYMBOLS:
                stored = read_snapshot(client, symbol)
                assert stored is not None, symbol
                assert stored["book"] == core_books[symbol]["book"], symbol
                assert stored["book"]["B"]["mmid"] or stored["book"]["A"]["mmid"], symbol
                assert stored["level1"] == core_books[symbol]["level1"], symbol
            assert set(client.hgetall("book:index")) >= {s.encode() for s in E2E_SYMBOLS}
            scraped = ingest.metrics()
            assert scraped["ingest_book_memory_bytes"] > 0
            assert scraped["ingest_state_memory_bytes"] >= scraped["ingest_book_memory_bytes"]
            assert 0 < scraped["ingest_redis_snapshot_write_seconds_max"] < 1.0
            assert scraped["ingest_redis_snapshot_errors_total"] == 0

            # redis-server dies mid-stream; the feed goes on.
            feed.control.resume()
            os.kill(redis_server.pid, signal.SIGKILL)
            delivered = ingest.metrics()["ingest_kafka_delivered_total"]
            wait_until(
                lambda: ingest.metrics()["ingest_redis_snapshot_errors_total"] >= 2,
                60,
                "failed snapshot cycles counted",
            )
            wait_until(
                lambda: ingest.metrics()["ingest_kafka_delivered_total"] > delivered + 50,
                60,
                "records still delivered to Kafka without Redis",
            )
            code, stopped = ingest.terminate()
            assert code == 0 and stopped["undelivered"] == 0 and stopped["failed"] == 0
    client.close()
