"""FeedSimProcess (a real `feed-sim serve --paused` subprocess) relays what feed_sim logs while
it starts: `start(on_progress=...)` receives its progress lines in order, generating the first
time, "loaded cached session <path>" the second (the session cache in a temp folder,
$FEED_SIM_CACHE_DIR); a failing callback does not leave feed_sim running.

Every process is stopped by its PID in a `finally`, even when a test fails.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from feed_sim.cli import previous_trading_day
from feed_sim.generate.cache import CACHE_DIR_ENV, SUFFIX
from harness.feed_process import FeedSimProcess, LogLines
from harness.scenario import Scenario

pytestmark = pytest.mark.integration

SYMBOLS = 3


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def generated_scenario() -> Scenario:
    """A generated session of 3 symbols x 1 minute (the largest stage's symbols)."""
    return Scenario.model_validate(
        {
            "name": "feed-process-progress",
            "feed": {
                "source": "generated",
                "generated": {"minutes": 1, "seed": 11},
                "rate": {"model": "fixed", "rate_per_symbol_hz": 10},
            },
            "stages": [{"symbols": SYMBOLS, "warmup_s": 0, "hold_s": 1}],
        }
    )


def start_and_stop(run_dir: Path) -> list[str]:
    """Start feed_sim, collect what `on_progress` receives, stop it by PID; the lines."""
    lines: list[str] = []
    process = FeedSimProcess(generated_scenario(), run_dir, startup_timeout_s=120)
    try:
        process.start(on_progress=lines.append)
        assert process.control.status()["symbols_loaded"] == SYMBOLS
    finally:
        pid = process.pid
        process.stop(timeout_s=10)
    assert pid is not None and gone(pid)
    return lines


def test_progress_hook_receives_feed_sims_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    day = previous_trading_day()

    cold = start_and_stop(tmp_path / "cold")
    (path,) = cache.glob(f"*{SUFFIX}")
    what = f"generating {SYMBOLS} symbols x 1 min of {day}, seed 11"
    assert cold[0] == f"{what}: 0/{SYMBOLS} symbols", cold
    assert f"{what}: {SYMBOLS}/{SYMBOLS} symbols" in cold
    assert any(line.endswith(f"cached as {path}") for line in cold), cold
    assert any(line.startswith(f"feed-sim serving {SYMBOLS} symbols") for line in cold), cold

    warm = start_and_stop(tmp_path / "warm")
    if previous_trading_day() != day:
        pytest.skip("the session day changed during the test (midnight)")
    assert any(line.startswith(f"loaded cached session {path}") for line in warm), warm
    assert not any("generating" in line for line in warm), warm


def test_failing_progress_hook_stops_feed_sim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    process = FeedSimProcess(generated_scenario(), tmp_path, startup_timeout_s=120)

    def broken(line: str) -> None:
        raise RuntimeError(f"display failed on {line!r}")

    try:
        with pytest.raises(RuntimeError, match="display failed"):
            process.start(on_progress=broken)
        assert process.pid is not None and gone(process.pid)
    finally:
        process.stop(timeout_s=10)


def test_log_lines_returns_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "feed_sim.log"
    log.write_bytes(b"before start\n")
    lines = LogLines(log, log.stat().st_size)
    assert lines.read() == []
    with log.open("ab") as out:
        out.write(b"one\n\n  two  \nthr")
    assert lines.read() == ["one", "two"]
    with log.open("ab") as out:
        out.write(b"ee\n")
    assert lines.read() == ["three"]
    assert lines.read() == []
    assert LogLines(tmp_path / "absent.log").read() == []
