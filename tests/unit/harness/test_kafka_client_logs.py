"""The runner's own Kafka clients log to the run's logs/kafka-clients.log, not the terminal."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from harness.infra.kafka_clients import KAFKA_LOGGER, client_logs_to, producer


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_librdkafka_complaints_go_to_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A producer pointed at a closed loopback port complains (connection refused); inside
    `client_logs_to` that lands in the file and not on the root logger (the terminal)."""
    path = tmp_path / "logs" / "kafka-clients.log"
    with client_logs_to(path):
        client = producer(f"127.0.0.1:{_closed_port()}", {"reconnect.backoff.ms": 100})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (path.exists() and path.read_text()):
            client.poll(0.2)  # librdkafka hands its log lines over in poll()
        KAFKA_LOGGER.warning("GETPID: Coordinator load in progress: retrying")
    text = path.read_text()
    assert "Connect to" in text or "refused" in text.lower(), text
    assert "Coordinator load in progress" in text
    assert "Coordinator load in progress" not in caplog.text
    assert KAFKA_LOGGER.propagate and not KAFKA_LOGGER.handlers  # as before
