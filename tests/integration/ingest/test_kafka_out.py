"""KafkaOutput against a real broker, with the reference core's producer design
(`ingest.kafka_settings.REFERENCE_DESIGN`): partition per symbol from the config (or folded
onto fewer partitions), key = symbol, per-partition order, acks=all + idempotence in force,
delivery counts, back-pressure without loss, flush drains, librdkafka's statistics digested
into the figures /metrics exports."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable

import orjson
import pytest

from harness.infra.topics import ensure_topics, feed_topic_specs
from ingest.kafka_out import KafkaOutput, producer_config, topic_names
from ingest.kafka_settings import REFERENCE_DESIGN
from ingest.producer_stats import ProducerFigures
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
        overrides=REFERENCE_DESIGN.overrides(len(symbols), table.partitions),
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


def test_fewer_partitions_than_symbols_fold_in_order(feed_topics: str) -> None:
    """The layout option: 495 symbols on topics of 48 partitions, the reference design."""
    prefix = f"fold{uuid.uuid4().hex[:8]}"
    names = tuple(topic_names(prefix).values())
    ensure_topics(feed_topics, feed_topic_specs(1, 48, names=names))
    full = SymbolPartitions.load()
    folded = SymbolPartitions.load(partitions=48)
    run = uuid.uuid4().hex
    records = _records(run, full.symbols(), per_symbol=3)
    out = KafkaOutput(
        feed_topics,
        folded.partition_of,
        topic_prefix=prefix,
        overrides=REFERENCE_DESIGN.overrides(len(full), 48),
    )
    for record in records:
        out.send(record)
        out.poll()
    assert out.flush(60) == 0 and out.stats.delivered == len(records)
    got = read_back(feed_topics, _tagged(run), len(records), topics=list(names))
    assert len(got) == len(records)
    assert {m.partition for m in got} == set(range(48))
    by_partition: dict[tuple[str, int], list[int]] = {}
    for msg in got:
        record = FeedRecord.from_value(msg.value)
        assert msg.partition == full.partition_of(record.symbol) % 48
        by_partition.setdefault((msg.topic, msg.partition), []).append(record.seq)
    assert all(seqs == sorted(seqs) for seqs in by_partition.values())  # sent in seq order


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
        feed_topics,
        table.partition_of,
        queue_max_messages=bound,
        queue_max_kbytes=64,
        overrides=REFERENCE_DESIGN.overrides(50, table.partitions),
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


def test_statistics_count_requests_and_records(feed_topics: str) -> None:
    """Two producers, statistics every 200 ms: ProduceRequests and records sent count up, the
    queue-time and round-trip windows fill while records flow, and once everything is
    delivered and a later document has arrived, records sent = records delivered."""
    table = SymbolPartitions.load()
    symbols = table.symbols()[:40]
    assert {table.partition_of(s) % 2 for s in symbols} == {0, 1}
    out = KafkaOutput(feed_topics, table.partition_of, statistics_interval_ms=200, producers=2)
    seen: list[ProducerFigures] = []

    def observe() -> None:
        figures = out.producer_figures()
        if figures is not None and (not seen or figures != seen[-1]):
            seen.append(figures)

    run = uuid.uuid4().hex
    deadline = time.monotonic() + 120
    batch = 0
    # Send batches until a document has sampled both windows (records flowed in its interval).
    while not any(f.queue_time and f.rtt for f in seen):
        assert time.monotonic() < deadline, f"no document with both windows: {seen[-3:]}"
        for record in _records(f"{run}-{batch}", symbols, per_symbol=3):
            out.send(record)
        batch += 1
        out.poll(0.05)
        observe()
    assert out.flush(60) == 0
    delivered = out.stats.delivered
    assert delivered == out.stats.produced == batch * len(symbols) * 3
    # txmsgs counts a record when it is written to a request, so a document emitted after
    # the last transmission holds all of them.
    while not (seen and seen[-1].records_sent == delivered and seen[-1].queue_records == 0):
        assert time.monotonic() < deadline, f"statistics never caught up: {seen[-3:]}"
        out.poll(0.05)
        observe()
    last = seen[-1]
    assert last.records_sent == delivered and out.stats.failed == {}
    assert 0 < last.produce_requests <= delivered  # at least one record per ProduceRequest
    for before, after in itertools.pairwise(seen):  # the cumulative figures never go back
        assert after.produce_requests >= before.produce_requests
        assert after.records_sent >= before.records_sent
    # Both producers own some of the partitions, so the figures are a sum over both.
    digests = [d for d in out.statistics if d is not None]
    assert len(digests) == 2 and all(d.figures.records_sent > 0 for d in digests)
