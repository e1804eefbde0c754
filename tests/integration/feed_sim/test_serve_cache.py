"""`feed-sim serve` (a real subprocess) with its generated-session cache in a temp folder
($FEED_SIM_CACHE_DIR): the first start generates, logs its progress and caches the session; the
second logs "loaded cached session <path>" and serves the same history rows (lookup port,
the session's own ticks) as the first; a damaged cached file is reported and regenerated.

Every process is stopped by its PID in a `finally`, even when a test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from feed_sim.cli import previous_trading_day
from feed_sim.control_client import ControlClientError, FeedSimControl
from feed_sim.generate.cache import CACHE_DIR_ENV, SUFFIX
from feed_sim.generate.universe import load_symbols, select_symbols
from harness.infra.ports import free_ports

from .conftest import LineClient

pytestmark = pytest.mark.integration

SYMBOLS = 3
WAIT_S = 120.0
"""Bound on a hang, not a timing assertion."""


@contextmanager
def serving(cache: Path, log: Path) -> Iterator[dict[str, int]]:
    """`feed-sim serve` of a generated 3-symbol, 1-minute session; yields its bound ports."""
    (control_port,) = free_ports(1)
    command = [
        sys.executable, "-m", "feed_sim.cli", "serve", "--paused",
        "--symbols", str(SYMBOLS), "--minutes", "1", "--seed", "7",
        "--level1-port", "0", "--level2-port", "0", "--admin-port", "0", "--lookup-port", "0",
        "--control-port", str(control_port), "--status-every", "0",
    ]  # fmt: skip
    env = {**os.environ, CACHE_DIR_ENV: str(cache)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        control = FeedSimControl(f"http://127.0.0.1:{control_port}", timeout_s=5)
        deadline = time.monotonic() + WAIT_S
        while True:
            assert process.poll() is None, log.read_text()
            try:
                yield control.status()["ports"]
                break
            except ControlClientError:
                assert time.monotonic() < deadline, f"no control API: {log.read_text()}"
                time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def history(ports: dict[str, int], symbols: list[str]) -> dict[str, list[str]]:
    """The last 500 ticks of each symbol, as the lookup port sends them."""
    out: dict[str, list[str]] = {}
    with LineClient(ports["lookup"], timeout=30) as lookup:
        for symbol in symbols:
            lookup.send(f"HTX,{symbol},500,1")
            _, rows = lookup.until(lambda s: s == "!ENDMSG!,")
            out[symbol] = rows
    return out


def log_text(log: Path) -> str:
    return log.read_text(errors="replace")


def test_serve_caches_the_generated_session(tmp_path: Path) -> None:
    day = previous_trading_day()
    cache = tmp_path / "cache"
    cold_log, warm_log, again_log = (tmp_path / f"{n}.log" for n in ("cold", "warm", "again"))

    symbols = [s.symbol for s in select_symbols(load_symbols(), SYMBOLS)]
    with serving(cache, cold_log) as ports:
        (path,) = cache.glob(f"*{SUFFIX}")
        cold = history(ports, symbols)
    text = log_text(cold_log)
    assert f"generating {SYMBOLS} symbols x 1 min of {day}, seed 7: 0/{SYMBOLS} symbols" in text
    assert f"cached as {path}" in text
    assert all(len(rows) > 10 for rows in cold.values()), cold

    with serving(cache, warm_log) as ports:
        warm = history(ports, symbols)
    if previous_trading_day() != day:
        pytest.skip("the session day changed during the test (midnight)")
    text = log_text(warm_log)
    assert f"loaded cached session {path}" in text
    assert "generating" not in text
    assert warm == cold

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with serving(cache, again_log) as ports:
        again = history(ports, symbols)
    text = log_text(again_log)
    assert f"warning: {path}" in text and "generating the session again" in text
    assert f"cached as {path}" in text
    assert again == cold
    assert sorted(p.name for p in cache.iterdir()) == [path.name]
