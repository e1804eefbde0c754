"""`Collector.on_messages`: what it reads of a batch of confluent-kafka Messages."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message

from harness.collector.process import Collector
from ingest.records import FeedRecord


def value(seq: int) -> bytes:
    return FeedRecord("AAPL", "quote", seq, 1_000 + seq, 2_000 + seq, 3_000 + seq, {}).to_value()


def test_a_clean_batch_counts_key_and_value_bytes() -> None:
    messages = [Message(topic="t", key=b"AAPL", value=value(i)) for i in range(1, 4)]
    messages.append(Message(topic="t", key=None, value=value(4)))
    collector = Collector()
    collector.set_stage("s")
    collector.on_messages(messages, 10_000)
    assert collector.consumed_messages == 4 and collector.kafka_errors == 0
    assert collector.consumed_bytes == 3 * 4 + sum(len(value(i)) for i in range(1, 5))
    assert collector.stages["s"].recorder.measure.messages == 4


def test_error_events_and_null_values_are_read_one_by_one() -> None:
    error = KafkaError(KafkaError._TRANSPORT)
    messages = [
        Message(topic="t", key=b"AAPL", value=value(1)),
        Message(topic="t", error=error),
        Message(topic="t", key=b"AAPL", value=None),  # a tombstone: counted bytes, no record
        Message(topic="t", key=b"AAPL", value=value(2)),
    ]
    collector = Collector()
    collector.set_stage("s")
    collector.on_messages(messages, 10_000)
    assert collector.kafka_errors == 1 and "Local: Broker transport failure" in (
        collector.last_error
    )
    assert collector.consumed_messages == 2
    assert collector.consumed_bytes == 3 * 4 + len(value(1)) + len(value(2))
    completeness = collector.stages["s"].tracker.snapshot()
    assert completeness.totals()["unique"] == 2
