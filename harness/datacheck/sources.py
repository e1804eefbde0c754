"""Where market data is read from, for `harness validate-data SOURCE`.

- a feed_sim tape (a zstd stream with a JSON header: generated, converted, recorded or
  amplified), told by its first bytes whatever its name;
- an IQFeed tick-history reply (`HTX`/`HTD`/`HTT` rows as csv, or a zip holding one), e.g.
  ../shared/data/iqfeed_history_ticks_2021-03.zip; its rows name no symbol, so `symbol` does;
- the ClickHouse writer's tables (`ticks`, `depth`), in an embedded chdb folder
  (`chdb:PATH`) or on a server (`http://host:8123[/database]`).

Every problem with the source (missing, empty, unreadable, wrong schema) is a
`DataSourceError` whose message names the source, for one clear line and exit 3.
"""

from __future__ import annotations

from pathlib import Path

from harness.datacheck.dataset import DataSourceError, MarketData, from_events

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _kind(source: str) -> str:
    if source.startswith(("chdb:", "http://", "https://")):
        return "clickhouse"
    try:
        with open(source, "rb") as stream:
            return "tape" if stream.read(4) == ZSTD_MAGIC else "history"
    except OSError:
        return "history"  # load_source names the problem


def load_source(source: str, *, kind: str | None = None, symbol: str | None = None) -> MarketData:
    """Read `source` as market data (`kind`: tape, history or clickhouse; guessed when None)."""
    kind = kind or _kind(source)
    if kind == "clickhouse":
        from harness.datacheck.clickhouse_source import load_clickhouse

        return load_clickhouse(source)
    path = Path(source)
    if not path.exists():
        raise DataSourceError(f"{source}: no such file")
    if path.is_dir():
        raise DataSourceError(f"{source}: a folder, not a tape or tick-history file")
    if kind == "tape":
        return _load_tape(path)
    if kind == "history":
        return _load_history(path, symbol or path.name.split(".")[0])
    raise DataSourceError(f"{source}: unknown kind {kind!r} (tape, history or clickhouse)")


def _load_tape(path: Path) -> MarketData:
    from feed_sim.tape.format import TapeFormatError, read_events, read_header

    try:
        header = read_header(path)
        data = from_events(read_events(path), f"tape {path} ({header.source})")
    except (TapeFormatError, OSError) as exc:
        raise DataSourceError(f"{path}: not a readable tape: {exc}") from None
    if not len(data.trades) and not len(data.quotes):
        raise DataSourceError(f"{path}: the tape holds no trades or quotes")
    notes = ("amplified from fewer source symbols",) if header.amplified else ()
    return MarketData(data.source, data.trades, data.quotes, data.market_makers, notes)


def _load_history(path: Path, symbol: str) -> MarketData:
    from feed_sim.tape.convert import ConvertError, parse_history

    try:
        parsed = parse_history(path, symbol)
    except (ConvertError, OSError, UnicodeDecodeError) as exc:
        raise DataSourceError(f"{path}: not an IQFeed tick-history reply: {exc}") from None
    data = from_events(parsed.events, f"tick history {path} ({symbol})")
    notes = (f"{parsed.skipped} malformed rows skipped",) if parsed.skipped else ()
    return MarketData(data.source, data.trades, data.quotes, data.market_makers, notes)
