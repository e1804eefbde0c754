"""ClickHouse storage of the ingest core: DDL for the tick and depth tables and the store.

``open_store(None | folder)`` opens the embedded chdb engine, ``open_store(url)`` a server;
both run the same DDL from ``ingest.storage.schema``.
"""

from __future__ import annotations

from ingest.storage.schema import (
    DEFAULT_DATABASE,
    DEFAULT_TTL_DAYS,
    DEPTH,
    TABLES,
    TICKS,
    Column,
    TableSpec,
    create_cluster_table_sql,
    create_database_sql,
    create_table_sql,
    local_table_name,
    schema_statements,
    validate_identifier,
)
from ingest.storage.store import (
    DEFAULT_DATA_DIR,
    ChdbBackend,
    ClickHouseBackend,
    ClickHouseConnectBackend,
    ClickHouseStore,
    ClickHouseUnavailableError,
    TableInfo,
    open_store,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_DATA_DIR",
    "DEFAULT_TTL_DAYS",
    "DEPTH",
    "TABLES",
    "TICKS",
    "ChdbBackend",
    "ClickHouseBackend",
    "ClickHouseConnectBackend",
    "ClickHouseStore",
    "ClickHouseUnavailableError",
    "Column",
    "TableInfo",
    "TableSpec",
    "create_cluster_table_sql",
    "create_database_sql",
    "create_table_sql",
    "local_table_name",
    "open_store",
    "schema_statements",
    "validate_identifier",
]
