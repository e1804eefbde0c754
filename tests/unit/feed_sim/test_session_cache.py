"""The cache of generated sessions (feed_sim/generate/cache.py) and `serve`'s use of it.

- The key changes with every input of the generator (symbols: how many, which, their specs;
  minutes, seed, day, session, depth, offset, rate scale, auctions) and with the generator's
  code; 30 and 30.0 minutes are the same session.
- A cached session reads back exactly what generating gives: the same arrays (values and
  dtypes), the same tape events, the same rows served by the engine.
- A damaged cached file (flipped byte, cut anywhere, no trailer, another session's file) is
  refused with CacheError; `serve`'s loader then warns and regenerates it.
- Writing is atomic: a consumer that stops early or a failing write leaves no file; a cache
  that cannot be written still serves the generated days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from feed_sim import cli
from feed_sim.generate import cache as session_cache
from feed_sim.generate.cache import (
    CACHE_DIR_ENV,
    CacheError,
    GenerationInputs,
    SessionWriter,
    cache_path,
    prune,
    read_session,
    source_hash,
    write_through,
)
from feed_sim.generate.tape_gen import SymbolDay, iter_events
from feed_sim.generate.universe import load_symbols, select_symbols
from feed_sim.server.app import FeedSimServer, ServeConfig

DAY = dt.date(2025, 6, 17)
SEED = 20261125


@pytest.fixture(scope="module")
def inputs() -> GenerationInputs:
    """A small session: 4 symbols (every tier, with Level 2 rows), 3 minutes from the open."""
    return GenerationInputs(tuple(select_symbols(load_symbols(), 4)), DAY, SEED, duration_s=180)


@pytest.fixture(scope="module")
def fresh(inputs: GenerationInputs) -> list[SymbolDay]:
    return list(inputs.generate())


@pytest.fixture
def cached_file(inputs: GenerationInputs, tmp_path: Path) -> Path:
    path = cache_path(inputs, tmp_path)
    for _ in write_through(path, inputs, inputs.generate(), pytest.fail):
        pass
    assert path.is_file()
    return path


def assert_same_days(a: list[SymbolDay], b: list[SymbolDay]) -> None:
    assert [d.symbol for d in a] == [d.symbol for d in b]
    for x, y in zip(a, b, strict=True):
        for part in ("trades", "quotes", "depth"):
            cx, cy = getattr(x, part), getattr(y, part)
            assert type(cx) is type(cy)
            for field in dataclasses.fields(cx):
                u, v = getattr(cx, field.name), getattr(cy, field.name)
                if isinstance(u, np.ndarray):
                    assert u.dtype == v.dtype, f"{x.symbol} {part}.{field.name}"
                    assert np.array_equal(u, v, equal_nan=u.dtype.kind == "f")
                else:
                    assert u == v


# ---- the key ---------------------------------------------------------------------------------


def test_key_changes_with_every_input(inputs: GenerationInputs) -> None:
    universe = load_symbols()
    specs = list(inputs.symbols)
    other = next(s for s in universe if s not in specs)
    repriced = dataclasses.replace(specs[0], price=specs[0].price + 0.01)
    variants = {
        "more symbols": dataclasses.replace(inputs, symbols=tuple(select_symbols(universe, 5))),
        "other symbols": dataclasses.replace(inputs, symbols=(*specs[:-1], other)),
        "symbol order": dataclasses.replace(inputs, symbols=tuple(reversed(specs))),
        "a symbol's spec": dataclasses.replace(inputs, symbols=(repriced, *specs[1:])),
        "minutes": dataclasses.replace(inputs, duration_s=240.0),
        "whole session": dataclasses.replace(inputs, duration_s=None),
        "seed": dataclasses.replace(inputs, seed=SEED + 1),
        "day": dataclasses.replace(inputs, day=DAY + dt.timedelta(days=1)),
        "session": dataclasses.replace(inputs, session="extended"),
        "depth": dataclasses.replace(inputs, include_depth=False),
        "start offset": dataclasses.replace(inputs, start_offset_s=60.0),
        "rate scale": dataclasses.replace(inputs, rate_scale=0.5),
        "auctions": dataclasses.replace(inputs, auctions=False),
    }
    keys = {name: variant.key() for name, variant in variants.items()}
    assert inputs.key() not in keys.values()
    assert len(set(keys.values())) == len(keys), keys
    names = {variant.file_name() for variant in variants.values()}
    assert len(names) == len(variants) and inputs.file_name() not in names


def test_key_changes_with_the_generator_version(
    inputs: GenerationInputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = inputs.key()
    monkeypatch.setattr(session_cache, "generator_version", lambda: "another generator")
    assert inputs.key() != before


def test_key_ignores_number_spelling(inputs: GenerationInputs) -> None:
    assert dataclasses.replace(inputs, duration_s=180).key() == inputs.key()
    assert dataclasses.replace(inputs, rate_scale=1).key() == inputs.key()


def test_source_hash_follows_code_and_data(tmp_path: Path) -> None:
    package = tmp_path / "generate"
    shutil.copytree(Path(session_cache.__file__).parent, package)
    original = source_hash(package)
    assert source_hash(package) == original
    (package / "prices.py").write_text((package / "prices.py").read_text() + "\n# edit\n")
    edited = source_hash(package)
    assert edited != original
    data = next((package / "data").glob("*.csv"))
    data.write_bytes(data.read_bytes() + b"\n")
    assert source_hash(package) not in (original, edited)
    assert source_hash(package, "numpy 1") != source_hash(package, "numpy 2")


def test_cache_dir_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, inputs: GenerationInputs
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    assert cache_path(inputs).parent == tmp_path.resolve()
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert cache_path(inputs).parent == session_cache.PROJECT_ROOT / ".cache" / "tapes"
    assert (session_cache.PROJECT_ROOT / "pyproject.toml").is_file()


# ---- a cached session is the generated one ---------------------------------------------------


def test_cached_session_equals_a_fresh_generation(
    inputs: GenerationInputs, fresh: list[SymbolDay], cached_file: Path
) -> None:
    assert any(d.depth is not None and len(d.depth.ts) for d in fresh)
    cached = read_session(cached_file, inputs)
    assert_same_days(cached, fresh)
    assert list(iter_events(cached)) == list(iter_events(fresh))


def test_cached_session_serves_the_same_rows(
    inputs: GenerationInputs, fresh: list[SymbolDay], cached_file: Path
) -> None:
    engines = []
    for days in (fresh, read_session(cached_file, inputs)):
        server = FeedSimServer(ServeConfig())
        server.engine.load_generated(days)
        engines.append(server.engine)
    a, b = engines
    assert list(a.markets) == list(b.markets) == [s.symbol for s in inputs.symbols]
    for symbol, ma in a.markets.items():
        mb = b.markets[symbol]
        assert len(ma.level1_events) == len(mb.level1_events) > 0
        for i in range(len(ma.level1_events)):
            assert ma.level1_events.row(i) == mb.level1_events.row(i)
            assert ma.level1_events.wire_row(i, 4) == mb.level1_events.wire_row(i, 4)
        assert len(ma.depth_events) == len(mb.depth_events)
        for i in range(len(ma.depth_events)):
            assert ma.depth_events.row(i) == mb.depth_events.row(i)


def test_reading_reports_each_symbol(inputs: GenerationInputs, cached_file: Path) -> None:
    seen: list[int] = []
    read_session(cached_file, inputs, seen.append)
    assert seen == list(range(1, len(inputs.symbols) + 1))


# ---- damaged files are refused ---------------------------------------------------------------


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", [0.0, 0.01, 0.3, 0.6, 0.99])
def test_flipped_byte_is_refused(inputs: GenerationInputs, cached_file: Path, where: float) -> None:
    size = cached_file.stat().st_size - session_cache.TRAILER.size
    _flip(cached_file, int(size * where))
    with pytest.raises(CacheError, match=str(cached_file)):
        read_session(cached_file, inputs)


@pytest.mark.parametrize("keep", [0, 1, 7, 100, 0.5, -9, -8, -1])
def test_cut_file_is_refused(inputs: GenerationInputs, cached_file: Path, keep: float) -> None:
    """Cut to `keep` bytes (a fraction of the file; negative: all but that many)."""
    data = cached_file.read_bytes()
    cached_file.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(CacheError):
        read_session(cached_file, inputs)


def test_file_without_trailer_is_refused(inputs: GenerationInputs, cached_file: Path) -> None:
    data = cached_file.read_bytes()
    cached_file.write_bytes(data[: -session_cache.TRAILER.size] + b"0123456789abcdef")
    with pytest.raises(CacheError, match="trailer"):
        read_session(cached_file, inputs)


@pytest.mark.parametrize("cut", [1, 4, 5, 100])
def test_cut_frame_with_its_trailer_is_refused(
    inputs: GenerationInputs, cached_file: Path, cut: int
) -> None:
    """Even the last bytes of the frame (its checksum) cut, with the trailer put back."""
    data = cached_file.read_bytes()
    trailer = data[-session_cache.TRAILER.size :]
    cached_file.write_bytes(data[: -session_cache.TRAILER.size - cut] + trailer)
    with pytest.raises(CacheError):
        read_session(cached_file, inputs)


def test_other_sessions_file_is_refused(
    inputs: GenerationInputs, cached_file: Path, tmp_path: Path
) -> None:
    other = dataclasses.replace(inputs, seed=SEED + 1)
    with pytest.raises(CacheError, match="other inputs"):
        read_session(cached_file, other)


def test_missing_file_is_a_cache_error(inputs: GenerationInputs, tmp_path: Path) -> None:
    with pytest.raises(CacheError):
        read_session(tmp_path / "absent.days.zst", inputs)


# ---- writing ----------------------------------------------------------------------------------


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_consumer_stopping_early_leaves_nothing(inputs: GenerationInputs, tmp_path: Path) -> None:
    path = cache_path(inputs, tmp_path / "cache")
    days = write_through(path, inputs, inputs.generate(), pytest.fail)
    next(days)
    days.close()
    assert _leftovers(tmp_path / "cache") == []


def test_failing_generator_leaves_nothing(inputs: GenerationInputs, tmp_path: Path) -> None:
    def broken() -> Iterator[SymbolDay]:
        yield from list(inputs.generate())[:2]
        raise RuntimeError("generator failed")

    path = cache_path(inputs, tmp_path)
    with pytest.raises(RuntimeError, match="generator failed"):
        for _ in write_through(path, inputs, broken(), pytest.fail):
            pass
    assert _leftovers(tmp_path) == []


def test_writer_refuses_an_incomplete_session(
    inputs: GenerationInputs, fresh: list[SymbolDay], tmp_path: Path
) -> None:
    path = cache_path(inputs, tmp_path)
    writer = SessionWriter(path, inputs)
    writer.write(fresh[0])
    with pytest.raises(ValueError, match="1 of 4 symbols"):
        writer.commit()
    assert _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="symbol 0 is"), SessionWriter(path, inputs) as writer:
        writer.write(fresh[1])
    assert _leftovers(tmp_path) == []


def test_unwritable_cache_still_serves_the_days(
    inputs: GenerationInputs, fresh: list[SymbolDay], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    errors: list[str] = []
    days = list(
        write_through(cache_path(inputs, blocker), inputs, inputs.generate(), errors.append)
    )
    assert_same_days(days, fresh)
    assert len(errors) == 1 and "cannot cache" in errors[0]


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    now = time.time()
    sessions = []
    for age in range(8):
        path = tmp_path / f"s{age}{session_cache.SUFFIX}"
        path.write_bytes(b"x")
        os.utime(path, (now - age * 60, now - age * 60))
        sessions.append(path)
    stale = tmp_path / ".s.days.zst.1.ab.tmp"
    fresh_tmp = tmp_path / ".s.days.zst.2.cd.tmp"
    other = tmp_path / "notes.txt"
    for path in (stale, fresh_tmp, other):
        path.write_bytes(b"x")
    old = now - session_cache.STALE_TEMP_S - 60
    os.utime(stale, (old, old))
    removed = prune(tmp_path, keep=sessions[7], max_files=3)
    assert sorted(removed) == sorted([*sessions[2:7], stale])
    assert sorted(_leftovers(tmp_path)) == sorted(
        p.name for p in (*sessions[:2], sessions[7], fresh_tmp, other)
    )


# ---- serve's loader ---------------------------------------------------------------------------


def _load(n_symbols: int, out: io.StringIO) -> tuple[list[str], FeedSimServer]:
    server = FeedSimServer(ServeConfig())
    console = Console(file=out, width=80, soft_wrap=True)
    with cli.StartupProgress(console) as progress:
        loaded = cli._load_default_market(server, n_symbols, 2.0, SEED, progress)
    return loaded, server


def _rows(server: FeedSimServer) -> dict[str, list[Any]]:
    return {
        symbol: [m.level1_events.row(i) for i in range(len(m.level1_events))]
        + [m.depth_events.row(i) for i in range(len(m.depth_events))]
        for symbol, m in server.engine.markets.items()
    }


def test_serve_generates_then_loads_from_the_cache_and_regenerates_a_damaged_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(cli, "previous_trading_day", lambda: DAY)

    cold = io.StringIO()
    loaded, generated = _load(3, cold)
    (path,) = tmp_path.glob(f"*{session_cache.SUFFIX}")
    assert f"generating 3 symbols x 2 min of {DAY}, seed {SEED}: 0/3 symbols" in cold.getvalue()
    assert "3/3 symbols\n" in cold.getvalue()
    assert f"cached as {path}" in cold.getvalue()

    warm = io.StringIO()
    loaded_again, from_cache = _load(3, warm)
    assert f"loaded cached session {path}" in warm.getvalue()
    assert "generating" not in warm.getvalue()
    assert loaded_again == loaded
    assert _rows(from_cache) == _rows(generated)

    _flip(path, path.stat().st_size // 2)
    damaged = io.StringIO()
    _, regenerated = _load(3, damaged)
    assert f"warning: {path}" in damaged.getvalue()
    assert "generating the session again" in damaged.getvalue()
    assert f"cached as {path}" in damaged.getvalue()
    assert _rows(regenerated) == _rows(generated)
    assert _leftovers(tmp_path) == [path.name]
    inputs = GenerationInputs(tuple(select_symbols(load_symbols(), 3)), DAY, SEED, duration_s=120.0)
    assert_same_days(read_session(path, inputs), list(inputs.generate()))


def test_serve_help_documents_the_cache() -> None:
    result = CliRunner().invoke(cli.main, ["serve", "--help"], terminal_width=100)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert ".cache/tapes" in text and CACHE_DIR_ENV in text and "rm -rf .cache/tapes" in text


def test_the_default_session_is_the_last_nyse_trading_day() -> None:
    """Weekends and exchange holidays are skipped: Thanksgiving 2026 is Thursday 11-26."""
    assert cli.previous_trading_day(dt.date(2026, 11, 27)) == dt.date(2026, 11, 25)
    assert cli.previous_trading_day(dt.date(2026, 11, 30)) == dt.date(2026, 11, 27)
    assert cli.previous_trading_day(dt.date(2026, 1, 2)) == dt.date(2025, 12, 31)
    assert cli.previous_trading_day(dt.date(2026, 12, 7)) == dt.date(2026, 12, 4)
