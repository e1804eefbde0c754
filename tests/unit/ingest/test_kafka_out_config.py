"""KafkaOutput settings that need no broker: producer count, queue share, pinned durability."""

from __future__ import annotations

import pytest

from ingest.config import KafkaSettings
from ingest.kafka_out import KafkaOutput, producer_config

UNREACHABLE = "127.0.0.1:1"


def test_producers_split_the_queue_bound() -> None:
    out = KafkaOutput(UNREACHABLE, lambda _s: 0, queue_max_messages=100_000, producers=4)
    assert out.config["queue.buffering.max.messages"] == 25_000
    assert out.config["queue.buffering.max.kbytes"] == 64 * 1024 // 4
    assert len(out.describe()["producers"]) == 4


def test_producer_count_is_validated() -> None:
    with pytest.raises(ValueError, match="producers must be >= 1"):
        KafkaOutput(UNREACHABLE, lambda _s: 0, producers=0)
    assert KafkaSettings().producers == 1
    with pytest.raises(ValueError):
        KafkaSettings(producers=0)


def test_durability_cannot_be_weakened() -> None:
    with pytest.raises(ValueError, match="acks"):
        producer_config(UNREACHABLE, overrides={"acks": 1})
    assert producer_config(UNREACHABLE, overrides={"acks": "all"})["acks"] == "all"
