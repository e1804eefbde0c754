"""`KafkaReader` (harness/collector/_kafkaread.c) against a real broker: counts, bytes, append
times, columns or values, tombstones, error events, and the three read modes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from harness.collector._fastdecode import KafkaReader, KafkaReaderError
from harness.collector.kafka_read import (
    CONSUMER_SETTINGS,
    ReadBatch,
    ReadMode,
    TopicReaders,
    librdkafka_settings,
)
from harness.collector.mapping import BatchDecoder
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.infra.topics import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    TIMESTAMP_TYPE,
    TopicSpec,
    ensure_topics,
)
from ingest.records import FeedRecord

pytestmark = pytest.mark.integration

APPENDED, CREATED = "reader.appended", "reader.created"
WAIT_S = 60.0


@pytest.fixture(scope="module")
def bootstrap(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    _, state = kafka_single
    ensure_topics(
        state.bootstrap,
        [
            TopicSpec(APPENDED, 2, 1, {TIMESTAMP_TYPE: LOG_APPEND_TIME}),
            TopicSpec(CREATED, 1, 1, {TIMESTAMP_TYPE: CREATE_TIME}),
        ],
    )
    return state.bootstrap


def value(seq: int, symbol: str = "AAPL") -> bytes:
    return FeedRecord(symbol, "trade", seq, 1_000 + seq, 2_000 + seq, 3_000 + seq, {}).to_value()


def produce(bootstrap: str, topic: str, rows: list[tuple[bytes | None, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for payload, partition in rows:
        producer.produce(topic, payload, key=b"AAPL", partition=partition)
    assert producer.flush(30) == 0


def read_all(read: Callable[[], ReadBatch], wanted: int) -> list[ReadBatch]:
    """Reads until `wanted` messages (records and tombstones) were counted."""
    batches: list[ReadBatch] = []
    deadline = time.monotonic() + WAIT_S
    while sum(b.records for b in batches) < wanted:
        assert time.monotonic() < deadline, f"read {sum(b.records for b in batches)} of {wanted}"
        batch = read()
        if batch.records or batch.errors:
            batches.append(batch)
    return batches


def reader(bootstrap: str, **extra: Any) -> KafkaReader:
    settings = {**CONSUMER_SETTINGS, "fetch.wait.max.ms": 50, "fetch.min.bytes": 1, **extra}
    return KafkaReader(librdkafka_settings(bootstrap, f"reader-{time.time_ns()}", settings))


def test_columns_append_times_and_bytes_of_a_logappendtime_topic(bootstrap: str) -> None:
    rows: list[tuple[bytes | None, int]] = [(value(i), i % 2) for i in range(1, 41)]
    produce(bootstrap, APPENDED, [*rows, (None, 0)])  # and a tombstone: bytes, no record
    decoder = BatchDecoder()
    kafka = reader(bootstrap)
    try:
        kafka.assign([(APPENDED, 0, OFFSET_BEGINNING), (APPENDED, 1, OFFSET_BEGINNING)])
        got: list[Any] = []
        nbytes = records = 0
        deadline = time.monotonic() + WAIT_S
        while records < 40 or nbytes < sum(len(v or b"") + 4 for v, _ in rows) + 4:
            assert time.monotonic() < deadline
            n, b, errors, _, append, payload = kafka.read(
                int(ReadMode.COLUMNS), 1000, 0.1, decoder.native_keys, decoder.strings
            )
            assert errors == 0
            records, nbytes = records + n, nbytes + b
            if n:
                got.append((np.frombuffer(append, dtype=np.int64), payload))
    finally:
        kafka.close()
    assert records == 40
    assert nbytes == sum(len(v or b"") for v, _ in rows) + 41 * 4  # values + every key
    stamps = np.concatenate([a for a, _ in got])
    now = time.time_ns()
    assert stamps.size == 40 and (stamps > now - 120 * 10**9).all() and (stamps <= now).all()
    assert (stamps % 1_000_000 == 0).all()  # whole milliseconds
    seqs = [np.frombuffer(ints, np.int64)[: len(symbols)] for _, (symbols, _, ints) in got]
    assert sorted(np.concatenate(seqs).tolist()) == list(range(1, 41))
    assert all(isinstance(p, tuple) for _, p in got)


def test_values_mode_create_time_and_a_refused_value(bootstrap: str) -> None:
    produce(bootstrap, CREATED, [(value(1), 0), (b'{"symbol": "AAPL", "seq": "one"}', 0)])
    decoder = BatchDecoder()
    readers = TopicReaders(bootstrap, f"readers-{time.time_ns()}", [CREATED], CONSUMER_SETTINGS)
    try:
        readers.assign([TopicPartition(CREATED, 0, OFFSET_BEGINNING)])
        batches = read_all(
            lambda: readers.read(ReadMode.COLUMNS, decoder.native_keys, decoder.strings), 2
        )
    finally:
        readers.close()
    append = np.concatenate([b.append_ns for b in batches])
    assert append.tolist() == [0, 0]  # CreateTime: no broker append time
    # One value does not decode in C: the whole batch comes back as values, in order.
    values = [v for b in batches for v in (b.values or [])]
    assert values[-1] == b'{"symbol": "AAPL", "seq": "one"}'
    decoded = decoder.decode(values, 1, append)
    assert decoded.malformed == 1 and decoded.seq.tolist() == [1]


def test_an_error_event_is_counted_with_its_text(bootstrap: str) -> None:
    kafka = reader(bootstrap, **{"auto.offset.reset": "error"})
    try:
        kafka.assign([(APPENDED, 0, 10**9)])  # an offset out of range, not to be reset
        deadline = time.monotonic() + WAIT_S
        errors, last = 0, None
        while not errors:
            assert time.monotonic() < deadline, "no error event for an offset out of range"
            _, _, errors, last, _, payload = kafka.read(int(ReadMode.COUNT), 100, 0.2)
            assert payload is None
    finally:
        kafka.close()
    assert last is not None and "offset" in last.lower(), last
    with pytest.raises(KafkaReaderError, match="closed"):
        kafka.read(int(ReadMode.COUNT), 1, 0.0)
    with pytest.raises(ValueError, match=r"no\.such\.setting"):
        KafkaReader({"no.such.setting": "1"})
