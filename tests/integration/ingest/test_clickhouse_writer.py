"""The ClickHouse writer against a real broker and the real embedded ClickHouse (chdb):
rows land with their lag stamps, offsets are committed only after inserts, and re-delivered
records collapse to one row per (symbol, sequence) after OPTIMIZE FINAL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from hdrh.histogram import HdrHistogram

from ingest.clickhouse_writer import ClickHouseWriter
from ingest.kafka_out import KafkaOutput, topic_names
from ingest.records import FeedRecord
from ingest.storage import ClickHouseStore, open_store
from ingest.symbols import SymbolPartitions

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT", "NVDA", "BRK.B", "ZTS")
BASE_NS = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago: inside the 90-day TTL
DEPTH_OPS = ("6", "4", "5")


def _records() -> list[FeedRecord]:
    records = []
    for i in range(240):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        exchange = BASE_NS + i * 1_000_000
        recv = exchange + 1_500_000 + i  # 1.5 ms network lag
        kind = ("trade", "quote", "depth")[i % 3]
        if kind == "depth":
            op = DEPTH_OPS[(i // 3) % 3]
            payload: dict[str, Any] = {
                "op": op,
                "side": "B",
                "mmid": "NSDQ",
                "price": 10.5,
                "size": 100,
            }
            exchange = 0 if op == "5" else exchange  # Nasdaq L2 deletes carry no time
        else:
            payload = {
                "last": 101.25,
                "last_size": 100,
                "bid": 101.2,
                "ask": 101.3,
                "bid_size": 3,
                "ask_size": 4,
                "total_volume": 1000 + i,
                "market_center": 11,
                "conditions": "3D",
            }
        records.append(FeedRecord(symbol, kind, i + 1, exchange, recv, 0, payload))
    return records


class FlakyStore:
    """The real store whose first insert fails (a ClickHouse hiccup)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.failures_left = 1

    def insert_ticks(self, rows: Iterable[Mapping[str, Any]]) -> int:
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("injected insert failure")
        return self.store.insert_ticks(rows)

    def insert_depth(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.store.insert_depth(rows)

    def count(self, table: str, *, final: bool = False) -> int:
        return self.store.count(table, final=final)


@pytest.fixture(scope="module")
def produced(feed_topics: str) -> list[FeedRecord]:
    records = _records()
    out = KafkaOutput(feed_topics, SymbolPartitions.load().partition_of)
    for record in records:
        out.send(record)
    assert out.flush(60) == 0 and out.stats.delivered == len(records)
    garbage = Producer({"bootstrap.servers": feed_topics})
    garbage.produce(topic_names()["trade"], value=b"not json", key=b"AAPL", partition=0)
    assert garbage.flush(30) == 0
    return records


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with open_store(tmp_path / "clickhouse") as opened:
        opened.create_schema()
        yield opened


def _run_until(writer: ClickHouseWriter, done: Callable[[], bool], timeout_s: float = 90) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert done(), f"writer did not finish: {writer.stats}"


def _committed_vs_end(bootstrap: str, group: str, partitions: set[int]) -> list[tuple[int, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(t, p) for t in topic_names().values() for p in sorted(partitions)]
        committed = consumer.committed(tps, timeout=30)
        ends = [consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in tps]
        return [(c.offset, end) for c, end in zip(committed, ends, strict=True) if end > 0]
    finally:
        consumer.close()


def test_rows_land_with_lags_then_redelivery_collapses(
    feed_topics: str, produced: list[FeedRecord], store: ClickHouseStore
) -> None:
    n = len(produced)
    flaky = FlakyStore(store)
    first = ClickHouseWriter.connect(
        feed_topics,
        flaky,
        group_id="writer-a",
        batch_size=64,
        batch_ms=100,
        retry_backoff_s=0.2,
    )
    _run_until(first, lambda: first.stats.ticks_written + first.stats.depth_written == n)
    assert first.stats.insert_failures == 1 and first.stats.malformed == 1
    assert first.stats.consumed == n + 1 and first.stats.commits >= 1

    ticks, depth = store.count("ticks"), store.count("depth")
    assert (ticks, depth) == (n * 2 // 3, n // 3)
    partitions = {SymbolPartitions.load().partition_of(s) for s in SYMBOLS} | {0}
    assert all(c == end for c, end in _committed_vs_end(feed_topics, "writer-a", partitions))

    rows = store.backend.query_rows(
        "SELECT symbol, sequence, exchange_ns, recv_ns, produced_ns, written_ns,"
        " network_lag_us, processing_lag_us, total_lag_us, toUnixTimestamp64Nano(time)"
        " FROM market.ticks UNION ALL "
        "SELECT symbol, sequence, exchange_ns, recv_ns, produced_ns, written_ns,"
        " network_lag_us, processing_lag_us, total_lag_us, toUnixTimestamp64Nano(time)"
        " FROM market.depth"
    )
    by_key = {(r.symbol, r.seq): r for r in produced}
    assert len(rows) == n
    for symbol, seq, exch, recv, prod, written, net, proc, total, time_ns in rows:
        record = by_key[(symbol, seq)]
        assert (recv, prod) == (record.recv_ns, record.produced_ns)
        assert exch == (record.exchange_ns or record.recv_ns) == time_ns
        assert prod >= recv and written >= prod
        assert net == (recv - exch) // 1000
        assert proc == (prod - recv) // 1000 and total == (written - exch) // 1000
    trade = store.backend.query_rows(
        "SELECT event_type, price, size, bid, ask, conditions FROM market.ticks WHERE sequence = 1"
    )
    assert trade == [("trade", 101.25, 100, 101.2, 101.3, "3D")]
    actions = store.backend.query_rows(
        "SELECT action, level_kind, count() FROM market.depth GROUP BY action, level_kind"
        " ORDER BY action"
    )
    assert {(a, k) for a, k, _ in actions} == {
        ("summary", "mmid"),
        ("update", "mmid"),
        ("delete", "mmid"),
    }

    # A second group re-delivers everything: the same rows are written again.
    second = ClickHouseWriter.connect(
        feed_topics, store, group_id="writer-b", batch_size=500, batch_ms=100
    )
    _run_until(second, lambda: second.stats.ticks_written + second.stats.depth_written == n)
    assert store.count("ticks") + store.count("depth") >= n  # duplicates may not be merged yet
    assert store.count("ticks", final=True) + store.count("depth", final=True) == n
    store.optimize_final("ticks")
    store.optimize_final("depth")
    assert (store.count("ticks"), store.count("depth")) == (ticks, depth)
    for table in ("ticks", "depth"):
        dupes = store.backend.query_rows(
            f"SELECT symbol, sequence, count() AS c FROM market.{table}"
            " GROUP BY symbol, sequence HAVING c > 1"
        )
        assert dupes == []


def test_reconcile_waits_for_the_offsets_and_counts_after_final(
    feed_topics: str, produced: list[FeedRecord], store: ClickHouseStore
) -> None:
    """A cut from another thread: answered once the writer consumed up to Kafka's end
    offsets, with every record's storage hop in the window and the rows after FINAL."""
    n = len(produced)
    consumer = Consumer({"bootstrap.servers": feed_topics, "group.id": "ends"})
    try:
        targets = {}
        for topic in topic_names().values():
            for partition in consumer.list_topics(topic, timeout=30).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=30
                )
                if high > low:
                    targets[(topic, partition)] = high
    finally:
        consumer.close()
    assert sum(targets.values()) == n + 1  # the records and the garbage line

    writer = ClickHouseWriter.connect(feed_topics, store, group_id="writer-c", batch_ms=50)
    writer.lag.open("everything", 0)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        reply = writer.reconcile(targets, timeout_s=60, label="everything")
        late = writer.reconcile({(topic_names()["trade"], 0): 10**9}, timeout_s=0.5)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert reply["caught_up"] is True and reply["behind"] == {}
    assert sum(sum(p.values()) for p in reply["positions"].values()) == n + 1
    assert reply["rows"]["ticks"] == {"raw": n * 2 // 3, "final": n * 2 // 3}
    assert reply["rows"]["depth"] == {"raw": n // 3, "final": n // 3}
    assert reply["stats"]["malformed"] == 1
    window = reply["window"]
    assert window["records"] == n and window["batches"] >= 1  # malformed lines are no rows
    storage = HdrHistogram.decode(window["storage"])
    assert storage.get_total_count() == n
    # Appended before the writer started, visible after its insert: positive, under a minute.
    assert 0 < storage.get_min_value() <= storage.get_max_value() < 60_000_000
    assert HdrHistogram.decode(window["insert"]).get_total_count() == window["batches"]
    # An offset never reached: answered at the deadline, saying how far behind.
    assert late["caught_up"] is False
    assert late["behind"] == {
        f"{topic_names()['trade']}[0]": 10**9
        - reply["positions"][topic_names()["trade"]].get("0", 0)
    }
    assert late["window"] is None
