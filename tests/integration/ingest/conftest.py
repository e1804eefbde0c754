"""Fixtures of the ingest integration tests: a real redis-server, the feed topics on the real
Kafka broker of `tests/conftest.py`, and a reader that collects records back from Kafka.

Everything started here is stopped by PID in a `finally`, even when a test fails.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import redis
from confluent_kafka import Consumer

from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.infra.ports import LOOPBACK, free_ports
from harness.infra.topics import ensure_topics, feed_topic_specs
from ingest.kafka_out import topic_names


@dataclass(frozen=True)
class RedisServer:
    """A redis-server this test session started."""

    host: str
    port: int
    data_dir: Path
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _stop_pid(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """redis-server on a free loopback port, AOF with fsync every second, data in tmp_path."""
    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    port = free_ports(1)[0]
    cmd = [
        "redis-server",
        "--bind", LOOPBACK,
        "--port", str(port),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--dir", str(data_dir),
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except FileNotFoundError:
        pytest.fail("redis-server is not installed; run scripts/install-system-deps.sh")
    try:
        client = redis.Redis(host=LOOPBACK, port=port, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (data_dir / "redis.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"redis-server did not start on port {port}:\n{log}")
                time.sleep(0.05)
        client.close()
        yield RedisServer(LOOPBACK, port, data_dir, proc.pid)
    finally:
        _stop_pid(proc)
        assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == "zombie"


@pytest.fixture(scope="module")
def feed_topics(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    """The three feed topics (495 partitions each) on the module's broker; the bootstrap."""
    _, state = kafka_single
    names = tuple(topic_names().values())
    ensure_topics(state.bootstrap, feed_topic_specs(state.broker_count, names=names))
    return state.bootstrap


@dataclass(frozen=True)
class Received:
    topic: str
    partition: int
    key: bytes
    value: bytes


def read_back(
    bootstrap: str,
    wanted: Callable[[bytes], bool],
    expected: int,
    timeout_s: float = 60.0,
) -> list[Received]:
    """Read the feed topics from the start (fresh group) until `expected` wanted records."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-back-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(list(topic_names().values()))
    got: list[Received] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                value = msg.value()
                if msg.error() is None and value is not None and wanted(value):
                    got.append(
                        Received(
                            str(msg.topic()), int(msg.partition() or 0), msg.key() or b"", value
                        )
                    )
    finally:
        consumer.close()
    return got
