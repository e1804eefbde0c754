"""Market data from the ClickHouse writer's tables (`ingest clickhouse-writer`): `ticks` (trades
and quotes) and `depth` (Level 2), after ReplacingMergeTree's de-duplication (FINAL).

`chdb:PATH` opens the embedded engine's data folder PATH; `http(s)://host:8123[/database]` a
server (the writer's default database unless the URL's path names one).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from harness.datacheck.dataset import DataSourceError, MarketData, Quotes, Trades

TICK_COLUMNS = ("exchange_ns", "symbol", "event_type", "price", "size", "bid", "ask",
                "market_center", "conditions")  # fmt: skip
DEPTH_COLUMNS = ("mmid",)


def _open(source: str) -> tuple[Any, str]:
    from ingest.storage.schema import DEFAULT_DATABASE
    from ingest.storage.store import ClickHouseUnavailableError, open_store

    database = DEFAULT_DATABASE
    if source.startswith("chdb:"):
        folder = Path(source.removeprefix("chdb:"))
        if not folder.is_dir():
            raise DataSourceError(f"{source}: no chdb data folder at {folder}")
        target: str | Path = folder
    else:
        parts = urlsplit(source)
        if parts.path.strip("/"):
            database = parts.path.strip("/")
        target = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    try:
        return open_store(target, database=database), database
    except (ClickHouseUnavailableError, ValueError, RuntimeError) as exc:
        raise DataSourceError(f"{source}: {exc}") from None


def _require(store: Any, source: str, database: str, table: str, columns: tuple[str, ...]) -> None:
    rows = store.backend.query_rows(
        f"SELECT name FROM system.columns WHERE database = '{database}' AND table = '{table}'"
    )
    have = {str(r[0]) for r in rows}
    if not have:
        raise DataSourceError(f"{source}: no table {database}.{table} (not the writer's schema)")
    missing = [c for c in columns if c not in have]
    if missing:
        raise DataSourceError(
            f"{source}: {database}.{table} lacks the column(s) {', '.join(missing)} "
            "(not the ClickHouse writer's schema)"
        )


def load_clickhouse(source: str) -> MarketData:
    """Every trade, quote and market-maker row of the writer's tables."""
    store, database = _open(source)
    try:
        _require(store, source, database, "ticks", TICK_COLUMNS)
        selected = ", ".join(
            "toString(event_type)" if c == "event_type" else c for c in TICK_COLUMNS
        )
        rows = store.backend.query_rows(
            f"SELECT {selected} FROM {database}.ticks FINAL ORDER BY symbol, exchange_ns"
        )
        makers: Counter[str] = Counter()
        try:
            _require(store, source, database, "depth", DEPTH_COLUMNS)
            for mmid, n in store.backend.query_rows(
                f"SELECT mmid, count() FROM {database}.depth FINAL WHERE mmid != '' GROUP BY mmid"
            ):
                makers[str(mmid)] = int(n)
        except DataSourceError:
            pass  # Level 1 only: the market-maker check says there is nothing to check
    finally:
        store.close()
    if not rows:
        raise DataSourceError(f"{source}: {database}.ticks is empty")
    records = [dict(zip(TICK_COLUMNS, row, strict=True)) for row in rows]
    trades = [{**r, "ts_ns": r["exchange_ns"]} for r in records if str(r["event_type"]) == "trade"]
    quotes = [{**r, "ts_ns": r["exchange_ns"]} for r in records if str(r["event_type"]) == "quote"]
    return MarketData(
        f"ClickHouse {source} ({database}.ticks, {database}.depth)",
        Trades.from_rows(trades),
        Quotes.from_rows(quotes),
        makers,
    )
