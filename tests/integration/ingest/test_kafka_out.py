"""KafkaOutput against a real broker: partition per symbol from the config, key = symbol,
acks=all + idempotence in force, delivery counts, back-pressure without loss, flush drains."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable

import orjson
import pytest

from ingest.kafka_out import KafkaOutput, producer_config, topic_names
from ingest.records import FeedRecord
from ingest.symbols import SymbolPartitions, stable_partition
from tests.integration.ingest.conftest import read_back

pytestmark = pytest.mark.integration

KINDS = ("trade", "quote", "depth")


def _tagged(run: str) -> Callable[[bytes], bool]:
    marker = f'"run":"{run}"'.encode()
    return lambda value: marker in value


def _records(run: str, symbols: list[str], per_symbol: int) -> list[FeedRecord]:
    """`per_symbol` records per symbol, cycling through the three types."""
    records = []
    for i, (n, symbol) in enumerate(itertools.product(range(per_symbol), symbols)):
        exchange = 1_700_000_000_000_000_000 + i * 1000
        kind = KINDS[n % len(KINDS)]
        records.append(FeedRecord(symbol, kind, i, exchange, exchange + 500, 0, {"run": run}))
    return records


def test_partition_key_topic_and_delivery_counts(feed_topics: str) -> None:
    table = SymbolPartitions.load()
    listed = table.symbols()
    symbols = [*listed[:5], *listed[240:245], *listed[-5:], "ZZZZ"]  # ZZZZ: crc32 fallback
    run = uuid.uuid4().hex
    records = _records(run, symbols, per_symbol=6)
    ticks = itertools.count(1_800_000_000_000_000_000)
    deliveries: list[str | None] = []
    out = KafkaOutput(
        feed_topics, table.partition_of, clock_ns=lambda: next(ticks),
        on_delivery=deliveries.append, producers=3,
    )  # fmt: skip
    for record in records:
        out.send(record)
        out.poll()
    assert out.flush(60) == 0
    assert out.stats.produced == out.stats.delivered == len(records) == len(deliveries)
    assert out.stats.failed == {} and set(deliveries) == {None}
    assert all(r.produced_ns >= 1_800_000_000_000_000_000 for r in records)

    got = read_back(feed_topics, _tagged(run), len(records))
    assert len(got) == len(records)
    topics = topic_names()
    for msg in got:
        record = FeedRecord.from_value(msg.value)
        assert msg.key == record.symbol.encode()
        assert msg.partition == table.partition_of(record.symbol)
        assert msg.topic == topics[record.type]
        assert record.produced_ns >= 1_800_000_000_000_000_000
    # Per topic and symbol, records arrive in the order sent (one of the 3 producers owns a
    # partition).
    arrival: dict[tuple[str, bytes], list[int]] = {}
    for msg in got:
        arrival.setdefault((msg.topic, msg.key), []).append(FeedRecord.from_value(msg.value).seq)
    assert all(seqs == sorted(seqs) for seqs in arrival.values())
    zzzz = {m.partition for m in got if m.key == b"ZZZZ"}
    assert zzzz == {stable_partition("ZZZZ", 495)}
    sent = sorted((r.symbol, r.seq, r.produced_ns) for r in records)
    back = sorted(
        (r.symbol, r.seq, r.produced_ns) for r in map(FeedRecord.from_value, (m.value for m in got))
    )
    assert back == sent


def test_acks_all_and_idempotence_in_force(feed_topics: str) -> None:
    out = KafkaOutput(
        feed_topics,
        SymbolPartitions.load().partition_of,
        statistics_interval_ms=100,
        producers=4,
    )
    out.send(FeedRecord("AAPL", "trade", 1, 1, 2, 0, {"run": "idem"}))
    assert out.flush(30) == 0
    deadline = time.monotonic() + 20

    def states() -> set[str | None]:
        return {p["idempotence_state"] for p in out.describe()["producers"]}

    while states() != {"Assigned"} and time.monotonic() < deadline:
        out.poll(0.1)
    described = out.describe()
    assert described["config"]["acks"] == "all"
    assert described["config"]["enable.idempotence"] is True
    assert described["config"]["compression.type"] == "lz4"
    # The broker granted an idempotent producer id (librdkafka only asks for one with acks=all).
    # Every one of the output's producers (partition p on producer p % 4) has its own id.
    assert len(described["producers"]) == 4
    assert all(p["idempotence_state"] == "Assigned" for p in described["producers"])
    ids = [p["producer_id"] for p in described["producers"]]
    assert all(isinstance(i, int) and i >= 0 for i in ids) and len(set(ids)) == 4
    with pytest.raises(ValueError, match="acks"):
        producer_config(feed_topics, overrides={"acks": "1"})
    with pytest.raises(ValueError, match="idempotence"):
        producer_config(feed_topics, overrides={"enable.idempotence": False})


def test_backpressure_blocks_and_loses_nothing(feed_topics: str) -> None:
    table = SymbolPartitions.load()
    run = uuid.uuid4().hex
    records = _records(run, table.symbols()[:50], per_symbol=60)  # 3,000 records
    bound = 20
    out = KafkaOutput(
        feed_topics, table.partition_of, queue_max_messages=bound, queue_max_kbytes=64
    )
    high = 0
    for record in records:  # a burst: no poll between sends, so the queue fills at once
        out.send(record)
        high = max(high, out.queue_length())
    # len(producer) also counts delivery reports not yet served: the bound plus a few.
    assert high < 2 * bound
    assert out.stats.backpressure_waits > 0
    assert out.flush(60) == 0 and out.queue_length() == 0
    assert out.stats.delivered == len(records) and out.stats.failed == {}
    got = read_back(feed_topics, _tagged(run), len(records))
    keys = sorted((orjson.loads(m.value)["symbol"], orjson.loads(m.value)["seq"]) for m in got)
    assert keys == sorted((r.symbol, r.seq) for r in records)


def test_flush_drains_without_poll(feed_topics: str) -> None:
    out = KafkaOutput(feed_topics, SymbolPartitions.load().partition_of)
    for i in range(500):
        out.send(FeedRecord("MSFT", "quote", i, 1, 2, 0, {"run": "flush"}))
    assert out.queue_length() > 0
    assert out.flush(60) == 0
    assert out.queue_length() == 0
    assert out.stats_json()["delivered"] == 500
