"""Symbol -> Kafka partition and symbol -> connection slot for the reference core.

Owns reading `config/production_symbols.json` (the `symbols` array: `symbol`, `partition`) and
the two stable mappings built on it (ARCHITECTURE.md contract 4 and the readiness review's
connection pool):

- `SymbolPartitions.partition_of(symbol)`: the file's partition; on a topic with fewer
  partitions than the file's (a layout of fewer partitions than symbols) the file's partition
  folded onto the topic, `partition % partitions` (`ingest.kafka_settings.fold_partition`),
  so the symbols spread evenly; for a symbol the file does not list,
  `zlib.crc32(symbol) % partitions`. Never Python's `hash()`, which is salted per
  process (PYTHONHASHSEED), so two processes (or one restart) would disagree.
- `stable_connection_index(symbol, partition, n)`: the pool slot, `partition % n`, so the
  spread over connections follows the reviewed partition numbers.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from ingest.kafka_settings import fold_partition

DEFAULT_SYMBOLS_FILE = Path(__file__).resolve().parent.parent / "config" / "production_symbols.json"


class SymbolFileError(ValueError):
    """An unreadable or malformed symbols file; the message starts with the path."""


def stable_partition(symbol: str, partitions: int) -> int:
    """The fallback partition of `symbol`: crc32 of its UTF-8 bytes modulo `partitions`."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return zlib.crc32(symbol.encode("utf-8")) % partitions


def stable_connection_index(symbol: str, partition: int | None, n: int) -> int:
    """Connection slot of `symbol` in a pool of `n`: `partition % n`, crc32 when unknown."""
    if n < 1:
        raise ValueError(f"pool size must be at least 1, got {n}")
    if partition is None:
        return stable_partition(symbol, n)
    return partition % n


class SymbolPartitions:
    """The symbol -> partition table of one symbols file, with the stable fallback."""

    def __init__(self, table: Mapping[str, int], partitions: int | None = None) -> None:
        count = partitions if partitions is not None else max(len(table), 1)
        if count < 1:
            raise ValueError(f"partitions must be at least 1, got {count}")
        negative = sorted(s for s, p in table.items() if p < 0)
        if negative:
            raise ValueError(f"symbols {negative[:10]} have negative partitions")
        self.partitions = count
        """The topic's partition count; a file partition beyond it is folded (`% count`)."""
        self._table = {symbol: fold_partition(p, count) for symbol, p in table.items()}

    @classmethod
    def load(cls, path: Path | None = None, partitions: int | None = None) -> SymbolPartitions:
        """Read `path` (None: config/production_symbols.json); `partitions` defaults to its size."""
        return cls(read_symbols_file(path or DEFAULT_SYMBOLS_FILE), partitions)

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._table

    def symbols(self) -> list[str]:
        """The listed symbols in file order (the file is sorted by ticker)."""
        return list(self._table)

    def known(self, symbol: str) -> bool:
        """True when the file lists `symbol`."""
        return symbol in self._table

    def partition_of(self, symbol: str) -> int:
        """The file's partition of `symbol`, else its stable crc32 fallback."""
        partition = self._table.get(symbol)
        return partition if partition is not None else stable_partition(symbol, self.partitions)

    def connection_index(self, symbol: str, n: int) -> int:
        """The connection slot of `symbol` in a pool of `n` connections."""
        return stable_connection_index(symbol, self.partition_of(symbol), n)

    def mapping(self, symbols: Iterable[str]) -> dict[str, int]:
        """symbol -> partition for `symbols` (for logs and the admin state)."""
        return {symbol: self.partition_of(symbol) for symbol in symbols}


def read_symbols_file(path: Path) -> dict[str, int]:
    """symbol -> partition from a production_symbols.json-shaped file, in file order."""
    try:
        data = json.loads(Path(path).read_text())
        rows = data["symbols"]
        table: dict[str, int] = {}
        for row in rows:
            symbol, partition = row["symbol"], row["partition"]
            if not isinstance(symbol, str) or isinstance(partition, bool):
                raise TypeError(f"bad row {row!r}")
            if symbol in table:
                raise ValueError(f"symbol {symbol} listed twice")
            table[symbol] = int(partition)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SymbolFileError(f"{path}: cannot read symbol partitions: {exc}") from exc
    return table
