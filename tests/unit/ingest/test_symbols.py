"""Stable symbol -> partition and symbol -> connection mappings of the reference core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ingest.symbols import (
    DEFAULT_SYMBOLS_FILE,
    SymbolFileError,
    SymbolPartitions,
    stable_connection_index,
    stable_partition,
)

REPO = Path(__file__).resolve().parents[3]


def test_partitions_are_exactly_the_files() -> None:
    rows = json.loads(DEFAULT_SYMBOLS_FILE.read_text())["symbols"]
    table = SymbolPartitions.load()
    assert len(table) == len(rows) == 495
    assert table.partitions == 495
    assert all(table.partition_of(r["symbol"]) == r["partition"] for r in rows)
    assert table.symbols() == [r["symbol"] for r in rows]


def test_unknown_symbol_falls_back_to_crc32() -> None:
    table = SymbolPartitions.load()
    assert "ZZZZ" not in table
    assert table.partition_of("ZZZZ") == zlib.crc32(b"ZZZZ") % 495
    assert stable_partition("ZZZZ", 7) == zlib.crc32(b"ZZZZ") % 7


def test_connection_index_follows_partition() -> None:
    table = SymbolPartitions.load()
    for symbol in ("A", "AAPL", "MSFT", "NVDA", "ZZZZ"):
        partition = table.partition_of(symbol)
        assert table.connection_index(symbol, 5) == partition % 5
        assert stable_connection_index(symbol, partition, 5) == partition % 5
    assert stable_connection_index("ZZZZ", None, 5) == zlib.crc32(b"ZZZZ") % 5
    spread = {table.connection_index(s, 5) for s in table.symbols()}
    assert spread == {0, 1, 2, 3, 4}


def test_fewer_partitions_than_symbols_fold_the_file_partitions() -> None:
    table = SymbolPartitions({"A": 0, "B": 5, "C": 7, "D": 2}, partitions=3)
    assert [table.partition_of(s) for s in "ABCD"] == [0, 2, 1, 2]
    full = SymbolPartitions.load()
    folded = SymbolPartitions.load(partitions=48)
    spread = [folded.partition_of(s) for s in full.symbols()]
    assert spread == [full.partition_of(s) % 48 for s in full.symbols()]
    assert {spread.count(p) for p in range(48)} <= {10, 11}  # 495 symbols, evenly


def test_bad_inputs_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"symbols": [{"symbol": "A"}]}')
    with pytest.raises(SymbolFileError, match=str(bad)):
        SymbolPartitions.load(bad)
    with pytest.raises(ValueError, match="negative"):
        SymbolPartitions({"A": 0, "B": -1}, partitions=3)
    with pytest.raises(ValueError):
        stable_connection_index("A", None, 0)


_PROBE = (
    "import json; from ingest.symbols import SymbolPartitions, stable_partition;"
    "t = SymbolPartitions.load();"
    "print(json.dumps([hash('AAPL'), t.partition_of('AAPL'), t.partition_of('ZZZZ'),"
    " stable_partition('NOTLISTED', 495), t.connection_index('ZZZZ', 5)]))"
)


def _probe(seed: str) -> list[int]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: list[int] = json.loads(out.stdout)
    return result


def test_mapping_is_stable_across_processes_while_hash_is_not() -> None:
    first, second = _probe("1"), _probe("2")
    assert first[0] != second[0], "hash('AAPL') should differ between hash seeds"
    assert first[1:] == second[1:]
    assert first[1] == SymbolPartitions.load().partition_of("AAPL")
