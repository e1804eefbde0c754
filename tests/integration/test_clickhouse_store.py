"""Tests of the ClickHouse store on the real embedded engine (chdb) in a temporary folder.

chdb hosts one data folder per process, so every test closes its store (fixture teardown)
before the next test opens another folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.storage import (
    DEPTH,
    TICKS,
    ClickHouseStore,
    ClickHouseUnavailableError,
    create_cluster_table_sql,
    open_store,
)
from ingest.storage.schema import quote_string

pytestmark = pytest.mark.integration

TRICKY_TEXT = 'O\'Neil, "quoted" \\ back\nslash é ☃ ); DROP TABLE x; --'
NOW_NS = time.time_ns()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    """A store with the schema created, in its own folder; closed after the test."""
    opened = open_store(tmp_path / "clickhouse")
    try:
        opened.create_schema()
        yield opened
    finally:
        opened.close()


def tick(sequence: int, written_ns: int | None = None, **fields: Any) -> dict[str, Any]:
    """A trade row stamped a few milliseconds ago (well inside the 90-day TTL)."""
    exchange_ns = NOW_NS - 5_000_000 + sequence
    row: dict[str, Any] = {
        "symbol": "AAPL",
        "event_type": "trade",
        "sequence": sequence,
        "price": 187.12345678901,
        "size": 100,
        "total_volume": 12_345_678_901,
        "bid": 187.12,
        "bid_size": 300,
        "ask": 187.13,
        "ask_size": 200,
        "market_center": 11,
        "conditions": "3D,87",
        "exchange_ns": exchange_ns,
        "recv_ns": exchange_ns + 1_500_250,
        "produced_ns": exchange_ns + 1_520_999,
        "written_ns": written_ns if written_ns is not None else exchange_ns + 9_000_000,
    }
    row.update(fields)
    return row


def depth_row(sequence: int, **fields: Any) -> dict[str, Any]:
    """A Nasdaq market-maker depth update."""
    exchange_ns = NOW_NS - 3_000_000 + sequence
    row: dict[str, Any] = {
        "symbol": "MSFT",
        "sequence": sequence,
        "action": "update",
        "side": "A",
        "mmid": TRICKY_TEXT,
        "order_id": 0,
        "price": 415.5,
        "size": 700,
        "order_count": 3,
        "level_kind": "mmid",
        "exchange_ns": exchange_ns,
        "recv_ns": exchange_ns + 800,
        "produced_ns": exchange_ns + 42_000,
        "written_ns": exchange_ns + 2_000_000,
    }
    row.update(fields)
    return row


def select_row(
    store: ClickHouseStore, table: str, columns: list[str], where: str
) -> dict[str, Any]:
    """One row of ``table`` as a dict, with ``time`` as integer nanoseconds."""
    exprs = ["toUnixTimestamp64Nano(time)" if c == "time" else c for c in columns]
    rows = store.backend.query_rows(
        f"SELECT {', '.join(exprs)} FROM {store.database}.{table} WHERE {where}"
    )
    assert len(rows) == 1, rows
    return dict(zip(columns, rows[0], strict=True))


def test_both_tables_exist(store: ClickHouseStore) -> None:
    rows = store.backend.query_rows(
        "SELECT name FROM system.tables WHERE database = 'market' ORDER BY name"
    )
    assert rows == [("depth",), ("ticks",)]


@pytest.mark.parametrize("table", ["ticks", "depth"])
def test_engine_partition_and_sorting_keys(store: ClickHouseStore, table: str) -> None:
    info = store.table_info(table)
    assert info["engine"] == "ReplacingMergeTree"
    assert info["partition_key"] == "toDate(time)"
    assert info["sorting_key"].startswith("symbol, time")
    assert info["sorting_key"] == "symbol, time, sequence"
    assert info["primary_key"] == "symbol, time, sequence"
    assert info["ttl"] == "toDateTime(time) + toIntervalDay(90)"


@pytest.mark.parametrize("table", ["ticks", "depth"])
def test_every_column_is_zstd_compressed(store: ClickHouseStore, table: str) -> None:
    spec = TICKS if table == "ticks" else DEPTH
    codecs = store.table_info(table)["codecs"]
    assert list(codecs) == list(spec.column_names)
    assert all("ZSTD(3)" in codec for codec in codecs.values()), codecs
    assert codecs["time"] == "CODEC(Delta(8), ZSTD(3))"
    assert codecs["symbol"] == "CODEC(ZSTD(3))"


@pytest.mark.parametrize("table", ["ticks", "depth"])
def test_show_create_has_codecs_and_ttl(store: ClickHouseStore, table: str) -> None:
    text = store.show_create(table)
    assert "`symbol` LowCardinality(String) CODEC(ZSTD(3))" in text
    assert "`sequence` UInt64 CODEC(Delta(8), ZSTD(3))" in text
    assert "`written_ns` Int64 CODEC(Delta(8), ZSTD(3))" in text
    assert "ENGINE = ReplacingMergeTree(written_ns)" in text
    assert "TTL toDateTime(time) + toIntervalDay(90)" in text


def test_ttl_days_is_configurable(tmp_path: Path) -> None:
    with open_store(tmp_path / "ch", database="md_short", ttl_days=7) as short:
        short.create_schema()
        assert short.table_info("ticks")["ttl"] == "toDateTime(time) + toIntervalDay(7)"


def test_ticks_round_trip_exactly(store: ClickHouseStore) -> None:
    row = tick(9, conditions=TRICKY_TEXT, size=2**32 - 1, market_center=65_535)
    row["sequence"] = 2**64 - 1
    assert store.insert_ticks([row]) == 1
    columns = [*row, "time", "network_lag_us", "processing_lag_us", "total_lag_us"]
    stored = select_row(store, "ticks", columns, "symbol = 'AAPL'")
    assert {name: stored[name] for name in row} == row
    assert stored["time"] == row["exchange_ns"]
    assert stored["network_lag_us"] == 1_500
    assert stored["processing_lag_us"] == 20
    assert stored["total_lag_us"] == 9_000


def test_depth_round_trip_exactly(store: ClickHouseStore) -> None:
    row = depth_row(7)
    order = depth_row(8, symbol="MSFT", mmid="", order_id=2**63 + 5, level_kind="order")
    assert store.insert_depth([row, order]) == 2
    columns = [*row, "time", "total_lag_us"]
    stored = select_row(store, "depth", columns, f"mmid = {quote_string(TRICKY_TEXT)}")
    assert {name: stored[name] for name in row} == row
    assert stored["mmid"] == TRICKY_TEXT
    assert stored["time"] == row["exchange_ns"]
    assert stored["total_lag_us"] == 2_000
    assert select_row(store, "depth", ["order_id"], "sequence = 8") == {"order_id": 2**63 + 5}


def test_quote_rows_may_omit_trade_fields(store: ClickHouseStore) -> None:
    quote = tick(3, event_type="quote")
    for name in ("price", "size", "total_volume", "conditions", "market_center"):
        del quote[name]
    store.insert_ticks([quote])
    stored = select_row(store, "ticks", ["event_type", "price", "conditions"], "sequence = 3")
    assert stored == {"event_type": "quote", "price": 0.0, "conditions": ""}


def test_redelivered_record_collapses_to_one_row(store: ClickHouseStore) -> None:
    first = tick(42)
    again = tick(42, written_ns=first["written_ns"] + 1_000_000)
    other = tick(43)
    store.insert_ticks([first, other])
    store.insert_ticks([again])
    assert store.count("ticks", final=True) == 2
    store.optimize_final("ticks")
    assert store.count("ticks") == 2
    kept = select_row(store, "ticks", ["written_ns"], "sequence = 42")
    assert kept["written_ns"] == again["written_ns"]


def test_depth_duplicates_collapse_after_optimize_final(store: ClickHouseStore) -> None:
    store.insert_depth([depth_row(1), depth_row(2)])
    store.insert_depth([depth_row(1)])
    store.optimize_final("depth")
    assert store.count("depth") == 2


def test_data_persists_across_close_and_reopen(tmp_path: Path) -> None:
    folder = tmp_path / "persist"
    with open_store(folder) as first:
        first.create_schema()
        first.insert_ticks([tick(1), tick(2)])
        first.insert_depth([depth_row(1)])
    with open_store(str(folder)) as reopened:
        reopened.create_schema()  # idempotent on existing tables
        assert reopened.count("ticks") == 2
        assert reopened.count("depth") == 1


def test_second_folder_needs_the_first_closed(tmp_path: Path) -> None:
    first = open_store(tmp_path / "one")
    try:
        with pytest.raises(ClickHouseUnavailableError, match="one data folder per process"):
            open_store(tmp_path / "two")
    finally:
        first.close()
    with open_store(tmp_path / "two") as second:
        second.create_schema()
        assert second.count("ticks") == 0


def test_bad_rows_are_rejected_before_anything_is_written(store: ClickHouseStore) -> None:
    missing = tick(1)
    del missing["recv_ns"]
    with pytest.raises(ValueError, match=r"lacks required columns \['recv_ns'\]"):
        store.insert_ticks([tick(2), missing])
    with pytest.raises(ValueError, match="computed by ClickHouse"):
        store.insert_ticks([tick(3, total_lag_us=1)])
    with pytest.raises(ValueError, match=r"unknown depth columns: \['bogus'\]"):
        store.insert_depth([depth_row(1, bogus=1)])
    assert store.count("ticks") == 0
    assert store.insert_ticks([]) == 0


def test_table_names_are_validated(store: ClickHouseStore) -> None:
    with pytest.raises(ValueError, match="invalid ClickHouse table name"):
        store.count("ticks; DROP TABLE market.ticks")


def test_cluster_ddl_parses_on_the_real_engine(store: ClickHouseStore) -> None:
    for spec in (TICKS, DEPTH):
        for statement in create_cluster_table_sql(spec, "prod"):
            formatted = store.backend.query_rows(f"SELECT formatQuery({quote_string(statement)})")
            assert "ON CLUSTER prod" in formatted[0][0]


def test_unreachable_server_url_fails_fast_and_names_the_url() -> None:
    url = "http://127.0.0.1:1"
    started = time.monotonic()
    with pytest.raises(ClickHouseUnavailableError, match=r"http://127\.0\.0\.1:1"):
        open_store(url, connect_timeout=1.0)
    assert time.monotonic() - started < 10


def test_server_url_password_is_not_echoed() -> None:
    with pytest.raises(ClickHouseUnavailableError) as raised:
        open_store("clickhouse://writer:s3cret@127.0.0.1:1/market", connect_timeout=1.0)
    assert "s3cret" not in str(raised.value)
    assert "clickhouse://writer:***@127.0.0.1:1/market" in str(raised.value)


def test_unknown_url_scheme_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported ClickHouse URL"):
        open_store("tcp://127.0.0.1:9000")
