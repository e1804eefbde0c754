"""confluent-kafka clients configured for the harness: librdkafka logs go to Python logging.

Without a logger librdkafka prints every refused connection to stderr, which buries the
harness's own output while a broker is starting or after one was killed on purpose.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

KAFKA_LOGGER = logging.getLogger("harness.kafka")


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
