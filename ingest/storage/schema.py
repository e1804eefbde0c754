"""ClickHouse DDL for the market-data tables, generated as text.

Owns the column layout of the ``ticks`` (Level 1) and ``depth`` (Level 2) tables and the pure
functions that turn it into ``CREATE`` statements: the single-node form (used by the embedded
chdb engine and by a lone server) and the cluster form (a replicated ``<table>_local`` on every
shard plus a ``Distributed`` table sharded by ``cityHash64(symbol)``). Nothing here talks to a
database; the same text runs on every backend.

Engine and keys, and why:

* ``ReplacingMergeTree(written_ns)``: the ClickHouse writer is at-least-once, so a Kafka record
  can be written twice. Rows with the same sorting key collapse during merges (or at once with
  ``OPTIMIZE ... FINAL`` / ``SELECT ... FINAL``), keeping the latest ``written_ns``.
* ``ORDER BY (symbol, time, sequence)``: starts with ``(symbol, time)`` so per-symbol time-range
  scans read few granules, and ends with the feed ``sequence`` so a re-delivered record (same
  symbol, time and sequence) has the same key and is de-duplicated, while two distinct events
  in the same nanosecond are not.
* ``PARTITION BY toDate(time)`` with ``TTL toDateTime(time) + INTERVAL <days> DAY`` and
  ``ttl_only_drop_parts = 1``: expiry drops whole daily partitions instead of rewriting parts.
* Every column carries a ZSTD codec; monotonic columns (time, sequence, nanosecond stamps,
  cumulative volume) get ``Delta`` first.

Derived columns (``DEFAULT`` expressions, stored like any column): ``time`` is
``exchange_ns`` as ``DateTime64(9, 'UTC')`` (contract 1: timestamps enter as integer ns), and
the lags follow contract 3, in microseconds, truncated toward zero:
``network_lag_us = recv - exchange``, ``processing_lag_us = produced - recv`` and
``total_lag_us = written - exchange`` (exchange = the intended send time feed_sim stamps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DEFAULT_DATABASE: Final = "market"
DEFAULT_TTL_DAYS: Final = 90
# Codec choices: ZSTD level 3 everywhere, Delta first for columns that grow along the sort key.
ZSTD: Final = "CODEC(ZSTD(3))"
DELTA_ZSTD: Final = "CODEC(Delta, ZSTD(3))"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Column:
    """One column: ClickHouse type, codec, optional DEFAULT expression and comment.

    ``required`` columns must be given by every inserted row; the others fall back to the
    type's zero value. Columns with a ``default`` are derived and never inserted by the store.
    """

    name: str
    type: str
    codec: str = ZSTD
    default: str | None = None
    comment: str | None = None
    required: bool = False

    @property
    def derived(self) -> bool:
        """True when ClickHouse computes the value from other columns."""
        return self.default is not None

    def ddl(self) -> str:
        """The column definition as it appears inside ``CREATE TABLE (...)``."""
        parts = [self.name, self.type]
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.comment is not None:
            parts.append(f"COMMENT {quote_string(self.comment)}")
        parts.append(self.codec)
        return " ".join(parts)


@dataclass(frozen=True)
class TableSpec:
    """A MergeTree table: its columns and the keys every variant of its DDL shares."""

    name: str
    columns: tuple[Column, ...]
    version_column: str = "written_ns"
    partition_by: str = "toDate(time)"
    order_by: tuple[str, ...] = ("symbol", "time", "sequence")
    ttl_column: str = "time"

    @property
    def column_names(self) -> tuple[str, ...]:
        """All column names in table order."""
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name`` (KeyError if the table has none)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name} has no column {name!r}")


def _symbol() -> Column:
    return Column("symbol", "LowCardinality(String)", required=True)


def _time() -> Column:
    return Column(
        "time",
        "DateTime64(9, 'UTC')",
        DELTA_ZSTD,
        default="fromUnixTimestamp64Nano(exchange_ns, 'UTC')",
        comment="exchange (intended send) time, from exchange_ns",
    )


def _stamps_and_lags() -> tuple[Column, ...]:
    """The nanosecond stamps of contract 3 and the lags derived from them."""
    return (
        Column("exchange_ns", "Int64", DELTA_ZSTD, required=True),
        Column("recv_ns", "Int64", DELTA_ZSTD, required=True),
        Column("produced_ns", "Int64", DELTA_ZSTD, required=True),
        Column("written_ns", "Int64", DELTA_ZSTD, required=True),
        Column(
            "network_lag_us",
            "Int64",
            default="intDiv(recv_ns - exchange_ns, 1000)",
            comment="recv - exchange, microseconds",
        ),
        Column(
            "processing_lag_us",
            "Int64",
            default="intDiv(produced_ns - recv_ns, 1000)",
            comment="produced - recv, microseconds",
        ),
        Column(
            "total_lag_us",
            "Int64",
            default="intDiv(written_ns - exchange_ns, 1000)",
            comment="written - exchange, microseconds",
        ),
    )


TICKS: Final = TableSpec(
    name="ticks",
    columns=(
        _symbol(),
        _time(),
        Column("event_type", "Enum8('trade' = 1, 'quote' = 2)", required=True),
        Column("sequence", "UInt64", DELTA_ZSTD, required=True),
        Column("price", "Float64"),
        Column("size", "UInt32"),
        Column("total_volume", "UInt64", DELTA_ZSTD),
        Column("bid", "Float64"),
        Column("bid_size", "UInt32"),
        Column("ask", "Float64"),
        Column("ask_size", "UInt32"),
        Column("market_center", "UInt16"),
        Column("conditions", "String"),
        *_stamps_and_lags(),
    ),
)

DEPTH: Final = TableSpec(
    name="depth",
    columns=(
        _symbol(),
        _time(),
        Column("sequence", "UInt64", DELTA_ZSTD, required=True),
        Column(
            "action",
            "Enum8('summary' = 1, 'add' = 2, 'update' = 3, 'delete' = 4, 'clear' = 5)",
            required=True,
        ),
        Column("side", "Enum8('B' = 1, 'A' = 2)", required=True),
        Column("mmid", "LowCardinality(String)"),
        Column("order_id", "UInt64", comment="0 for Nasdaq market-maker (MMID) rows"),
        Column("price", "Float64"),
        Column("size", "UInt32"),
        Column("order_count", "UInt32"),
        Column("level_kind", "Enum8('order' = 1, 'mmid' = 2, 'price' = 3)", required=True),
        *_stamps_and_lags(),
    ),
)

TABLES: Final[dict[str, TableSpec]] = {TICKS.name: TICKS, DEPTH.name: DEPTH}


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain identifier ``[A-Za-z_][A-Za-z0-9_]*``, else ValueError."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(
            f"invalid ClickHouse {what} {name!r}: expected letters, digits and underscores,"
            " not starting with a digit"
        )
    return name


def validate_ttl_days(ttl_days: int) -> int:
    """Return ``ttl_days`` if it is a positive integer, else ValueError."""
    if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or ttl_days <= 0:
        raise ValueError(f"ttl_days must be a positive integer, got {ttl_days!r}")
    return ttl_days


def quote_string(value: str) -> str:
    """A ClickHouse single-quoted string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_database_sql(database: str = DEFAULT_DATABASE, cluster: str | None = None) -> str:
    """``CREATE DATABASE IF NOT EXISTS``, ``ON CLUSTER`` when a cluster is named."""
    validate_identifier(database, "database name")
    return f"CREATE DATABASE IF NOT EXISTS {database}{_on_cluster(cluster)}"


def create_table_sql(
    table: TableSpec,
    database: str = DEFAULT_DATABASE,
    ttl_days: int = DEFAULT_TTL_DAYS,
) -> str:
    """Single-node ``CREATE TABLE`` (ReplacingMergeTree) for the embedded engine or one server."""
    validate_identifier(database, "database name")
    engine = f"ReplacingMergeTree({table.version_column})"
    return _create_mergetree_sql(table, f"{database}.{table.name}", engine, ttl_days, None)


def local_table_name(table: TableSpec) -> str:
    """Name of the per-shard table behind a Distributed table."""
    return f"{table.name}_local"


def create_cluster_table_sql(
    table: TableSpec,
    cluster: str,
    database: str = DEFAULT_DATABASE,
    ttl_days: int = DEFAULT_TTL_DAYS,
) -> tuple[str, str]:
    """Cluster DDL: the replicated ``<table>_local`` and the ``Distributed`` table over it.

    The local table uses ``ReplicatedReplacingMergeTree`` with the conventional
    ``/clickhouse/tables/{shard}/<db>/<table>_local`` keeper path and ``{replica}`` macro;
    the Distributed table shards inserts by ``cityHash64(symbol)`` so one symbol lives on one
    shard and de-duplication by (symbol, time, sequence) stays shard-local.
    """
    validate_identifier(database, "database name")
    validate_identifier(cluster, "cluster name")
    local = local_table_name(table)
    keeper_path = f"/clickhouse/tables/{{shard}}/{database}/{local}"
    engine = (
        f"ReplicatedReplacingMergeTree({quote_string(keeper_path)}, '{{replica}}', "
        f"{table.version_column})"
    )
    local_sql = _create_mergetree_sql(table, f"{database}.{local}", engine, ttl_days, cluster)
    distributed_sql = (
        f"CREATE TABLE IF NOT EXISTS {database}.{table.name}{_on_cluster(cluster)}\n"
        f"AS {database}.{local}\n"
        f"ENGINE = Distributed({cluster}, {database}, {local}, cityHash64(symbol))"
    )
    return local_sql, distributed_sql


def schema_statements(
    database: str = DEFAULT_DATABASE,
    ttl_days: int = DEFAULT_TTL_DAYS,
    cluster: str | None = None,
) -> list[str]:
    """Every statement that creates the database and both tables, in execution order."""
    statements = [create_database_sql(database, cluster)]
    for table in TABLES.values():
        if cluster is None:
            statements.append(create_table_sql(table, database, ttl_days))
        else:
            statements.extend(create_cluster_table_sql(table, cluster, database, ttl_days))
    return statements


def _on_cluster(cluster: str | None) -> str:
    if cluster is None:
        return ""
    return f" ON CLUSTER {validate_identifier(cluster, 'cluster name')}"


def _create_mergetree_sql(
    table: TableSpec, qualified_name: str, engine: str, ttl_days: int, cluster: str | None
) -> str:
    validate_ttl_days(ttl_days)
    columns = ",\n".join(f"    {column.ddl()}" for column in table.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified_name}{_on_cluster(cluster)}\n"
        f"(\n{columns}\n)\n"
        f"ENGINE = {engine}\n"
        f"PARTITION BY {table.partition_by}\n"
        f"ORDER BY ({', '.join(table.order_by)})\n"
        f"TTL toDateTime({table.ttl_column}) + INTERVAL {ttl_days} DAY\n"
        "SETTINGS ttl_only_drop_parts = 1"
    )
