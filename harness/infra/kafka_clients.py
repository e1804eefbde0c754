"""confluent-kafka clients configured for the harness: librdkafka logs go to Python logging.

Without a logger librdkafka prints every refused connection to stderr, which buries the
harness's own output while a broker is starting or after one was killed on purpose.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

KAFKA_LOGGER = logging.getLogger("harness.kafka")


@contextlib.contextmanager
def client_logs_to(path: Path) -> Iterator[None]:
    """While inside, the harness's own Kafka clients log to `path`, not the terminal.

    A fresh broker makes them retry and say so ("Coordinator load in progress" while the
    readiness probe waits): expected, and noise among the run's progress lines. Their
    failures still surface as exceptions (InfraError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    propagate = KAFKA_LOGGER.propagate
    KAFKA_LOGGER.addHandler(handler)
    KAFKA_LOGGER.propagate = False
    try:
        yield
    finally:
        KAFKA_LOGGER.removeHandler(handler)
        KAFKA_LOGGER.propagate = propagate
        handler.close()


def _with_logger(config: dict[str, Any]) -> dict[str, Any]:
    return {"logger": KAFKA_LOGGER, **config}


def admin_client(bootstrap: str, config: dict[str, Any] | None = None) -> AdminClient:
    """An AdminClient for `bootstrap` whose client logs go to the `harness.kafka` logger."""
    return AdminClient(_with_logger({"bootstrap.servers": bootstrap, **(config or {})}))


def producer(bootstrap: str, config: dict[str, Any] | None = None) -> Producer:
    """A Producer for `bootstrap` with extra librdkafka settings from `config`."""
    return Producer(_with_logger({"bootstrap.servers": bootstrap, **(config or {})}))


def consumer(bootstrap: str, group_id: str, config: dict[str, Any] | None = None) -> Consumer:
    """A Consumer in `group_id` for `bootstrap` with extra librdkafka settings."""
    return Consumer(
        _with_logger({"bootstrap.servers": bootstrap, "group.id": group_id, **(config or {})})
    )
