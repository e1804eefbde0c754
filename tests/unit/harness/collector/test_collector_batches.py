"""`Collector.on_messages`: what it reads of a batch of confluent-kafka Messages."""

from __future__ import annotations

from typing import Any

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    KafkaError,
    Message,
)

from harness.collector.client import CollectorCounters, collector_cost, describe_cost
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


def test_broker_append_times_end_the_measure_and_follow_kept_records() -> None:
    appended = (TIMESTAMP_LOG_APPEND_TIME, 5)  # ms
    messages = [
        Message(topic="t", key=b"AAPL", value=value(1), timestamp=appended),
        Message(topic="t", error=KafkaError(KafkaError._TRANSPORT)),
        Message(topic="t", key=b"AAPL", value=value(2), timestamp=(TIMESTAMP_CREATE_TIME, 5)),
    ]
    collector = Collector()
    collector.set_stage("s")
    collector.on_messages(messages, 9_000_000)
    measure = collector.stages["s"].recorder.measure
    assert measure.basis == {"append": 1, "observed": 1}
    assert collector.watermark_ns == 5_000_000  # the latest append time seen
    delivery = measure.histograms["delivery"]
    assert delivery.get_total_count() == 1  # 9 ms observed - 5 ms appended:
    assert delivery.get_max_value() == delivery.get_highest_equivalent_value(4_000)


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


def test_counters_report_the_process_cpu_and_collector_cost_divides_it() -> None:
    ticks = iter([2_000_000_000, 2_500_000_000])
    now = [10_000_000_000]
    collector = Collector(clock=lambda: now[0], cpu_clock=lambda: next(ticks))
    collector.set_stage("s")
    before = collector.counters()
    collector.on_messages([Message(topic="t", key=b"A", value=value(i)) for i in range(1, 6)], 1)
    now[0] += 2_000_000_000
    after = collector.counters()
    assert (before["cpu_ns"], after["cpu_ns"]) == (2_000_000_000, 2_500_000_000)
    cost = collector_cost(counters(before), counters(after))
    assert cost == {
        "collector_cpu_seconds": 0.5,
        "collector_messages": 5,
        "collector_cpu_us_per_message": 100_000.0,
        "collector_cpu_cores": 0.25,
    }
    assert describe_cost(cost) == (
        "harness cost: the collector used 25% of a core, 100000.0 us CPU a message "
        "(5 messages, librdkafka included)"
    )
    unknown = collector_cost(counters({**before, "cpu_ns": 0}), counters(after))
    assert unknown["collector_cpu_seconds"] is None
    assert unknown["collector_cpu_us_per_message"] is None
    assert unknown["collector_cpu_cores"] is None
    assert describe_cost(unknown) is None
    no_time = collector_cost(counters(before), counters({**after, "t_ns": before["t_ns"]}))
    assert no_time["collector_cpu_cores"] is None and no_time["collector_cpu_seconds"] == 0.5


def counters(reply: dict[str, Any]) -> CollectorCounters:
    return CollectorCounters(
        reply["stage"],
        reply["consumed_messages"],
        reply["consumed_bytes"],
        reply["kafka_errors"],
        reply["live_p99_us"],
        reply["t_ns"],
        reply["cpu_ns"],
    )
