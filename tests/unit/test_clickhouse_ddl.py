"""Tests of the generated ClickHouse DDL text (ingest.storage.schema), no engine involved."""

from __future__ import annotations

import re

import pytest

from ingest.storage.schema import (
    DEFAULT_DATABASE,
    DEFAULT_TTL_DAYS,
    DEPTH,
    TABLES,
    TICKS,
    TableSpec,
    create_cluster_table_sql,
    create_database_sql,
    create_table_sql,
    schema_statements,
    validate_identifier,
)

TICK_COLUMNS = (
    "symbol LowCardinality(String)",
    "time DateTime64(9, 'UTC')",
    "event_type Enum8('trade' = 1, 'quote' = 2)",
    "sequence UInt64",
    "price Float64",
    "size UInt32",
    "total_volume UInt64",
    "bid Float64",
    "bid_size UInt32",
    "ask Float64",
    "ask_size UInt32",
    "market_center UInt16",
    "conditions String",
)
DEPTH_COLUMNS = (
    "symbol LowCardinality(String)",
    "time DateTime64(9, 'UTC')",
    "sequence UInt64",
    "action Enum8('summary' = 1, 'add' = 2, 'update' = 3, 'delete' = 4, 'clear' = 5)",
    "side Enum8('B' = 1, 'A' = 2)",
    "mmid LowCardinality(String)",
    "order_id UInt64",
    "price Float64",
    "size UInt32",
    "order_count UInt32",
    "level_kind Enum8('order' = 1, 'mmid' = 2, 'price' = 3)",
)
STAMP_COLUMNS = (
    "exchange_ns Int64",
    "recv_ns Int64",
    "produced_ns Int64",
    "written_ns Int64",
    "network_lag_us Int64",
    "processing_lag_us Int64",
    "total_lag_us Int64",
)
BAD_IDENTIFIERS = ("", "1market", "market-db", "market.db", "m; DROP TABLE x", "mark et", "é")


def column_lines(ddl: str) -> list[str]:
    """The column definition lines between the parentheses of a CREATE TABLE."""
    body = ddl.split("(\n", 1)[1].split("\n)\n", 1)[0]
    return [line.strip().rstrip(",") for line in body.splitlines()]


def test_defaults_match_the_harness_values() -> None:
    assert DEFAULT_DATABASE == "market"
    assert DEFAULT_TTL_DAYS == 90


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(TICKS, TICK_COLUMNS + STAMP_COLUMNS), (DEPTH, DEPTH_COLUMNS + STAMP_COLUMNS)],
)
def test_columns_have_the_contract_names_and_types(
    spec: TableSpec, expected: tuple[str, ...]
) -> None:
    lines = column_lines(create_table_sql(spec))
    assert len(lines) == len(expected)
    for line, prefix in zip(lines, expected, strict=True):
        assert line.startswith(prefix + " "), line


@pytest.mark.parametrize("spec", TABLES.values(), ids=TABLES.keys())
def test_every_column_has_a_zstd_codec(spec: TableSpec) -> None:
    for line in column_lines(create_table_sql(spec)):
        assert re.search(r"CODEC\((Delta, )?ZSTD\(3\)\)$", line), line


def test_monotonic_columns_are_delta_encoded() -> None:
    lines = {line.split()[0]: line for line in column_lines(create_table_sql(TICKS))}
    for name in ("time", "sequence", "exchange_ns", "recv_ns", "produced_ns", "written_ns"):
        assert lines[name].endswith("CODEC(Delta, ZSTD(3))"), lines[name]
    assert lines["price"].endswith(" CODEC(ZSTD(3))")


def test_time_and_lags_are_derived_from_the_nanosecond_stamps() -> None:
    lines = {line.split()[0]: line for line in column_lines(create_table_sql(DEPTH))}
    assert "DEFAULT fromUnixTimestamp64Nano(exchange_ns, 'UTC')" in lines["time"]
    assert "DEFAULT intDiv(recv_ns - exchange_ns, 1000)" in lines["network_lag_us"]
    assert "DEFAULT intDiv(produced_ns - recv_ns, 1000)" in lines["processing_lag_us"]
    assert "DEFAULT intDiv(written_ns - exchange_ns, 1000)" in lines["total_lag_us"]
    assert "COMMENT 'written - exchange, microseconds'" in lines["total_lag_us"]


@pytest.mark.parametrize("spec", TABLES.values(), ids=TABLES.keys())
def test_single_node_engine_keys_and_ttl(spec: TableSpec) -> None:
    ddl = create_table_sql(spec)
    assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS market.{spec.name}\n(")
    tail = ddl.split("\n)\n", 1)[1].splitlines()
    assert tail == [
        "ENGINE = ReplacingMergeTree(written_ns)",
        "PARTITION BY toDate(time)",
        "ORDER BY (symbol, time, sequence)",
        "TTL toDateTime(time) + INTERVAL 90 DAY",
        "SETTINGS ttl_only_drop_parts = 1",
    ]
    assert "ON CLUSTER" not in ddl


def test_database_and_ttl_are_parameters() -> None:
    ddl = create_table_sql(TICKS, database="md_test", ttl_days=7)
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS md_test.ticks\n")
    assert "TTL toDateTime(time) + INTERVAL 7 DAY\n" in ddl


def test_database_ddl() -> None:
    assert create_database_sql() == "CREATE DATABASE IF NOT EXISTS market"
    assert create_database_sql("md", "prod") == "CREATE DATABASE IF NOT EXISTS md ON CLUSTER prod"


def test_cluster_local_table_is_replicated_on_every_shard() -> None:
    local, _ = create_cluster_table_sql(TICKS, "prod")
    assert local.startswith("CREATE TABLE IF NOT EXISTS market.ticks_local ON CLUSTER prod\n(")
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/market/ticks_local', '{replica}', written_ns)\n"
    ) in local
    assert column_lines(local) == column_lines(create_table_sql(TICKS))
    assert local.split("\n)\n", 1)[1].splitlines()[1:] == [
        "PARTITION BY toDate(time)",
        "ORDER BY (symbol, time, sequence)",
        "TTL toDateTime(time) + INTERVAL 90 DAY",
        "SETTINGS ttl_only_drop_parts = 1",
    ]


def test_cluster_distributed_table_shards_by_symbol_hash() -> None:
    _, distributed = create_cluster_table_sql(DEPTH, "prod", database="md")
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS md.depth ON CLUSTER prod\n"
        "AS md.depth_local\n"
        "ENGINE = Distributed(prod, md, depth_local, cityHash64(symbol))"
    )


def test_ticks_distributed_table_names_ticks_local() -> None:
    _, distributed = create_cluster_table_sql(TICKS, "c1")
    assert "ENGINE = Distributed(c1, market, ticks_local, cityHash64(symbol))" in distributed


def test_schema_statements_single_node_and_cluster_order() -> None:
    single = schema_statements()
    assert single == [
        create_database_sql(),
        create_table_sql(TICKS),
        create_table_sql(DEPTH),
    ]
    cluster = schema_statements(database="md", ttl_days=30, cluster="prod")
    assert cluster[0] == "CREATE DATABASE IF NOT EXISTS md ON CLUSTER prod"
    created = [statement.split("\n", 1)[0] for statement in cluster[1:]]
    assert created == [
        "CREATE TABLE IF NOT EXISTS md.ticks_local ON CLUSTER prod",
        "CREATE TABLE IF NOT EXISTS md.ticks ON CLUSTER prod",
        "CREATE TABLE IF NOT EXISTS md.depth_local ON CLUSTER prod",
        "CREATE TABLE IF NOT EXISTS md.depth ON CLUSTER prod",
    ]
    assert all("INTERVAL 30 DAY" in cluster[i] for i in (1, 3))


@pytest.mark.parametrize("name", ["market", "_m", "Market_2026", "a1"])
def test_valid_identifiers_pass(name: str) -> None:
    assert validate_identifier(name) == name


@pytest.mark.parametrize("name", BAD_IDENTIFIERS)
def test_bad_database_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid ClickHouse database name"):
        create_table_sql(TICKS, database=name)
    with pytest.raises(ValueError, match="invalid ClickHouse database name"):
        create_database_sql(name)


@pytest.mark.parametrize("name", BAD_IDENTIFIERS)
def test_bad_cluster_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid ClickHouse cluster name"):
        create_cluster_table_sql(TICKS, name)
    with pytest.raises(ValueError, match="invalid ClickHouse cluster name"):
        schema_statements(cluster=name)


def test_bad_table_name_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"invalid ClickHouse table name 'ticks; DROP'"):
        validate_identifier("ticks; DROP", "table name")


@pytest.mark.parametrize("days", [0, -1, True, 1.5])
def test_bad_ttl_days_are_rejected(days: object) -> None:
    with pytest.raises(ValueError, match="ttl_days must be a positive integer"):
        create_table_sql(TICKS, ttl_days=days)  # type: ignore[arg-type]
