"""Opening ClickHouse (embedded chdb or a server) and the store the ingest writer uses.

Owns the two backends behind one small interface, ``ClickHouseBackend``:

* ``ChdbBackend``: the ClickHouse engine in-process (chdb), data in a folder. This is the
  default. chdb hosts ONE embedded engine per process, bound to ONE data folder: any number of
  connections to that folder may coexist, but opening a different folder raises until every
  connection to the first one is closed (the engine shuts down with its last connection).
  ``close()`` releases this backend's connection, so close a store before opening another
  folder in the same process (tests: one store per test, closed in teardown).
* ``ClickHouseConnectBackend``: a ClickHouse server over HTTP through clickhouse-connect.

``ClickHouseStore`` sits on top: it runs the DDL of ``schema`` (the same text on both
backends), inserts tick and depth rows, and answers the questions tests and reports ask
(row counts, SHOW CREATE, engine/keys/TTL/codecs, OPTIMIZE FINAL for de-duplication).

Query results are plain Python values as each backend decodes them (ints, floats, strings;
a DateTime64 is a string from chdb but a ``datetime`` from clickhouse-connect). To stay
backend-neutral, and nanosecond-exact, select times as integers:
``toUnixTimestamp64Nano(time)``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, TypedDict
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
import msgspec
from chdb.state.sqlitelike import Connection as ChdbConnection
from chdb.state.sqlitelike import connect as chdb_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from ingest.storage.schema import (
    DEFAULT_DATABASE,
    DEFAULT_TTL_DAYS,
    DEPTH,
    TICKS,
    TableSpec,
    quote_string,
    schema_statements,
    validate_identifier,
    validate_ttl_days,
)

DEFAULT_DATA_DIR: Final = Path(".cache/clickhouse")
SERVER_URL_SCHEMES: Final = ("http://", "https://", "clickhouse://")
DEFAULT_CONNECT_TIMEOUT_S: Final = 3.0
DEFAULT_SEND_RECEIVE_TIMEOUT_S: Final = 30.0
_JSON_ENCODER: Final = msgspec.json.Encoder()


class ClickHouseUnavailableError(ConnectionError):
    """ClickHouse could not be opened or reached (the message names the folder or URL)."""


class ClickHouseBackend(Protocol):
    """What the store needs from a ClickHouse connection."""

    def command(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL, OPTIMIZE, SET)."""

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a SELECT-like statement and return its rows."""

    def insert_rows(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """Insert ``rows`` (values in ``column_names`` order) into ``db.table``; return count."""

    def close(self) -> None:
        """Release the connection (idempotent)."""


class ChdbBackend:
    """The embedded ClickHouse engine (chdb) with its data in ``data_dir``.

    One data folder per process at a time (see the module docstring); inserts are sent as
    ``JSONEachRow`` through chdb's streaming insert, so values never become SQL text.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._connection: ChdbConnection | None = chdb_connect(str(self.data_dir))
        except RuntimeError as exc:
            raise ClickHouseUnavailableError(
                f"cannot open embedded ClickHouse (chdb) at {self.data_dir}: {exc}"
                " (chdb allows one data folder per process; close the other store first)"
            ) from exc
        # JSON numbers, not strings, for 64-bit integers so rows decode to exact ints.
        self.command("SET output_format_json_quote_64bit_integers = 0")

    def command(self, sql: str) -> None:
        """Run a statement that returns no rows."""
        self._open().query(sql, "CSV")

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query; rows decoded from ``JSONCompactEachRow``."""
        text = self._open().query(sql, "JSONCompactEachRow").bytes().decode("utf-8")
        return [tuple(json.loads(line)) for line in text.split("\n") if line]

    def insert_rows(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """Stream ``rows`` as JSONCompactEachRow into ``table``; return the rows written.

        One JSON array per row in ``column_names`` order (msgspec: exact 64-bit integers).
        """
        if not rows:
            return 0
        encode = _JSON_ENCODER.encode
        body = b"\n".join([encode(row) for row in rows]).decode("utf-8") + "\n"
        statement = f"INSERT INTO {table} ({', '.join(column_names)})"
        with self._open().send_insert(statement, "JSONCompactEachRow") as inserter:
            inserter.append(body)
            written: int = inserter.finish().rows_written
        return written

    def close(self) -> None:
        """Close this connection; the engine stops when its last connection closes."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> ChdbConnection:
        if self._connection is None:
            raise RuntimeError(f"chdb backend for {self.data_dir} is closed")
        return self._connection


class ClickHouseConnectBackend:
    """A ClickHouse server over HTTP(S) through clickhouse-connect.

    ``clickhouse://host[:port]`` means the HTTP interface too (default port 8123;
    add ``?secure=true`` for TLS), since clickhouse-connect speaks HTTP only. The client
    pings the server on creation, so an unreachable URL fails here, within
    ``connect_timeout`` seconds.
    """

    def __init__(
        self,
        url: str,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        send_receive_timeout: float = DEFAULT_SEND_RECEIVE_TIMEOUT_S,
    ) -> None:
        self.url = redact_url(url)
        try:
            self._client = clickhouse_connect.get_client(
                dsn=url,
                connect_timeout=connect_timeout,
                send_receive_timeout=send_receive_timeout,
            )
        except (ClickHouseError, OSError) as exc:
            raise ClickHouseUnavailableError(
                f"cannot reach ClickHouse server at {self.url}: {exc}"
            ) from exc

    def command(self, sql: str) -> None:
        """Run a statement that returns no rows."""
        self._client.command(sql)

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query; rows as clickhouse-connect decodes them."""
        return [tuple(row) for row in self._client.query(sql).result_rows]

    def insert_rows(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """Insert ``rows`` in the native format; ``table`` may be ``db.table``."""
        if not rows:
            return 0
        database, _, name = table.rpartition(".")
        self._client.insert(
            name,
            [list(row) for row in rows],
            column_names=list(column_names),
            database=database or None,
        )
        return len(rows)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class TableInfo(TypedDict):
    """What ClickHouse reports about one table (system.tables, system.columns, SHOW CREATE)."""

    engine: str
    partition_key: str
    sorting_key: str
    primary_key: str
    ttl: str | None
    codecs: dict[str, str]


class ClickHouseStore:
    """The market-data tables on one backend: schema, inserts and inspection.

    Rows are mappings keyed by column name (see ``schema.TICKS`` / ``schema.DEPTH``). Required
    columns must be present; other payload columns default to zero / empty; derived columns
    (``time`` and the ``*_lag_us`` columns) are computed by ClickHouse and must not be given.
    """

    def __init__(
        self,
        backend: ClickHouseBackend,
        database: str = DEFAULT_DATABASE,
        ttl_days: int = DEFAULT_TTL_DAYS,
    ) -> None:
        self.backend = backend
        self.database = validate_identifier(database, "database name")
        self.ttl_days = validate_ttl_days(ttl_days)

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def create_schema(self) -> None:
        """Create the database and the ticks and depth tables (idempotent)."""
        for statement in schema_statements(self.database, self.ttl_days):
            self.backend.command(statement)

    def insert_ticks(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert Level 1 rows into ``ticks``; return the number written."""
        return self._insert(TICKS, rows)

    def insert_depth(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert Level 2 rows into ``depth``; return the number written."""
        return self._insert(DEPTH, rows)

    def count(self, table: str, *, final: bool = False) -> int:
        """Rows in ``table``; with ``final`` after de-duplication (``SELECT ... FINAL``)."""
        modifier = " FINAL" if final else ""
        rows = self.backend.query_rows(f"SELECT count() FROM {self._qualified(table)}{modifier}")
        return int(rows[0][0])

    def show_create(self, table: str) -> str:
        """The ``SHOW CREATE TABLE`` text of ``table``."""
        rows = self.backend.query_rows(f"SHOW CREATE TABLE {self._qualified(table)}")
        return str(rows[0][0])

    def table_info(self, table: str) -> TableInfo:
        """Engine, partition/sorting/primary keys, TTL clause and per-column codecs."""
        self._qualified(table)
        database, name = quote_string(self.database), quote_string(table)
        tables = self.backend.query_rows(
            "SELECT engine, partition_key, sorting_key, primary_key FROM system.tables"
            f" WHERE database = {database} AND name = {name}"
        )
        if not tables:
            raise LookupError(f"no table {self.database}.{table}")
        engine, partition_key, sorting_key, primary_key = (str(value) for value in tables[0])
        codecs = self.backend.query_rows(
            "SELECT name, compression_codec FROM system.columns"
            f" WHERE database = {database} AND table = {name} ORDER BY position"
        )
        ttl = re.search(r"^TTL (.+)$", self.show_create(table), re.MULTILINE)
        return TableInfo(
            engine=engine,
            partition_key=partition_key,
            sorting_key=sorting_key,
            primary_key=primary_key,
            ttl=ttl.group(1) if ttl else None,
            codecs={str(name): str(codec) for name, codec in codecs},
        )

    def optimize_final(self, table: str) -> None:
        """Merge ``table`` fully so duplicates (same symbol, time, sequence) collapse now."""
        self.backend.command(f"OPTIMIZE TABLE {self._qualified(table)} FINAL")

    def close(self) -> None:
        """Close the backend (for chdb this releases the data folder)."""
        self.backend.close()

    def _qualified(self, table: str) -> str:
        return f"{self.database}.{validate_identifier(table, 'table name')}"

    def _insert(self, spec: TableSpec, rows: Iterable[Mapping[str, Any]]) -> int:
        layout = _insert_layout(spec)
        values = [layout.values(row) for row in rows]
        return self.backend.insert_rows(self._qualified(spec.name), layout.names, values)


@dataclass(frozen=True)
class _InsertLayout:
    """What checking and ordering a row of one table needs, worked out once per table."""

    table: str
    names: tuple[str, ...]
    """The inserted (not derived) columns, in table order."""
    zeros: tuple[Any, ...]
    known: frozenset[str]
    derived: frozenset[str]
    required: frozenset[str]

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The row's values in insert order, after checking its keys against the table."""
        keys = row.keys()
        if not keys <= self.known:
            unknown = sorted(set(keys) - self.known)
            raise ValueError(f"unknown {self.table} columns: {unknown}")
        if not keys.isdisjoint(self.derived):
            derived = sorted(self.derived & set(keys))
            raise ValueError(
                f"{self.table} columns {derived} are computed by ClickHouse; omit them"
            )
        if not self.required <= keys:
            missing = sorted(self.required - set(keys))
            raise ValueError(f"{self.table} row lacks required columns {missing}")
        get = row.get
        return tuple([get(name, zero) for name, zero in zip(self.names, self.zeros, strict=True)])


@functools.cache
def _insert_layout(spec: TableSpec) -> _InsertLayout:
    inserted = [column for column in spec.columns if not column.derived]
    return _InsertLayout(
        table=spec.name,
        names=tuple(column.name for column in inserted),
        zeros=tuple(_zero(column.type) for column in inserted),
        known=frozenset(spec.column_names),
        derived=frozenset(c.name for c in spec.columns if c.derived),
        required=frozenset(c.name for c in spec.columns if c.required),
    )


def _zero(column_type: str) -> Any:
    return "" if "String" in column_type else 0


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def open_store(
    target: str | Path | None = None,
    *,
    database: str = DEFAULT_DATABASE,
    ttl_days: int = DEFAULT_TTL_DAYS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> ClickHouseStore:
    """Open ClickHouse: a server for an http(s):// or clickhouse:// URL, else chdb in a folder.

    ``None`` means the embedded engine in ``DEFAULT_DATA_DIR``. The schema is not created
    here; call ``create_schema()``.
    """
    validate_identifier(database, "database name")
    validate_ttl_days(ttl_days)
    backend: ClickHouseBackend
    if isinstance(target, str) and target.startswith(SERVER_URL_SCHEMES):
        backend = ClickHouseConnectBackend(target, connect_timeout=connect_timeout)
    elif isinstance(target, str) and "://" in target:
        raise ValueError(
            f"unsupported ClickHouse URL {redact_url(target)!r}:"
            f" expected one of {', '.join(SERVER_URL_SCHEMES)} or a folder path"
        )
    else:
        backend = ChdbBackend(Path(target) if target is not None else DEFAULT_DATA_DIR)
    return ClickHouseStore(backend, database, ttl_days)
