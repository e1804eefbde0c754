"""`harness validate-data` as a user runs it (a real process), on real files:

- a tape built exactly like the readiness review's description of the rejected ClickHouse data
  (market makers MM1..MM5, trades at 1-4 AM UTC, 65% daily moves, every trade on one venue,
  identical spreads across symbols): synthetic, exit 1, each of the five reported separately;
- the real IQFeed tick history of ../shared/data, a `feed-sim generate` tape and an amplified
  replay of the real history: plausible, exit 0, nothing above info;
- bad input (a missing file, an empty ClickHouse table, a folder of another schema): exit 3 with
  one clear line.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from feed_sim.tape.format import write_tape
from feed_sim.tape.model import Kind, TapeEvent
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration

HISTORY = shared_dir() / "data" / "iqfeed_history_ticks_2021-03.zip"
BIN = Path(sys.executable).parent
NS = 1_000_000_000
REVIEW_FINDINGS = (
    "market_maker_ids",
    "session_hours",
    "daily_moves",
    "venue_concentration",
    "spreads_across_symbols",
)


def validate(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    """Exit code, the --json result (None when not JSON) and stderr of the real command."""
    done = subprocess.run(
        [str(BIN / "harness"), "validate-data", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    return done.returncode, result, done.stderr


def _review_fixture(path: Path) -> Path:
    """Five S&P names, one trading day: what the review found in the rejected table."""
    events: list[TapeEvent] = []
    day = dt.datetime(2025, 1, 15, 1, 0, tzinfo=dt.UTC)  # Wed 01:00 UTC = Tue 20:00 ET (EST)
    symbols = {"AAPL": 190.0, "MSFT": 420.0, "JPM": 210.0, "KO": 62.0, "XOM": 110.0}
    for s, (symbol, price) in enumerate(symbols.items()):
        for i in range(600):
            ts = int(day.timestamp() * NS) + (i * 24 + s) * NS  # 01:00-04:59 UTC
            last = round(price * (1 + 0.65 * i / 599), 2)  # up 65% in the day
            events.append(
                TapeEvent(
                    ts,
                    symbol,
                    Kind.QUOTE,
                    {"bid": last - 0.02, "ask": last + 0.03, "bid_size": 100, "ask_size": 100},
                )
            )
            events.append(
                TapeEvent(
                    ts + 1000,
                    symbol,
                    Kind.TRADE,
                    {
                        "price": last,
                        "size": 100 + i % 9 * 37,
                        "market_center": 5,
                        "conditions": "01",
                        "basis": "C",
                        "aggressor": 1 + i % 2,
                        "bid": last - 0.02,
                        "ask": last + 0.03,
                    },
                )
            )
            mmid = f"MM{1 + i % 5}"
            events.append(
                TapeEvent(
                    ts + 2000,
                    symbol,
                    Kind.DEPTH,
                    {
                        "side": "B",
                        "action": "update",
                        "mmid": mmid,
                        "order_id": 0,
                        "price": last - 0.02,
                        "size": 100,
                    },
                )
            )
    events.sort(key=lambda e: e.ts_ns)
    write_tape(path, events, source="generated:review-fixture")
    return path


def test_the_review_s_synthetic_data_is_flagged_finding_by_finding(tmp_path: Path) -> None:
    code, result, err = validate(str(_review_fixture(tmp_path / "review.tape")))
    assert code == 1 and result is not None, err
    assert result["verdict"] == "synthetic"
    by_check = {f["check"]: f for f in result["findings"]}
    for check in REVIEW_FINDINGS:
        assert by_check[check]["severity"] == "synthetic", by_check[check]
        assert by_check[check]["source"].startswith("market-facts.md"), by_check[check]
    assert "MM1" in by_check["market_maker_ids"]["summary"]
    assert "UTC hours 01, 02, 03, 04" in by_check["session_hours"]["summary"]
    assert by_check["venue_concentration"]["evidence"]["venues"] == 1
    assert "$0.05" in by_check["spreads_across_symbols"]["summary"]


def _plausible(code: int, result: dict[str, Any] | None, err: str) -> None:
    assert result is not None, err
    raised = [f for f in result["findings"] if f["severity"] != "info"]
    assert code == 0 and result["verdict"] == "plausible" and not raised, raised


def test_the_real_tick_history_is_plausible() -> None:
    code, result, err = validate(str(HISTORY), "--symbol", "REAL")
    _plausible(code, result, err)
    assert result is not None and result["trades"] == 32_627


def test_generated_and_amplified_tapes_are_plausible(tmp_path: Path) -> None:
    generated = tmp_path / "generated.tape"
    subprocess.run(
        [str(BIN / "feed-sim"), "generate", "--out", str(generated), "--symbols", "12",
         "--day", "2025-06-17", "--session", "extended", "--rate-scale", "0.2"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    _plausible(*validate(str(generated), "--universe", "config/production_symbols.json"))
    real, amplified = tmp_path / "real.tape", tmp_path / "amplified.tape"
    subprocess.run(
        [str(BIN / "feed-sim"), "convert", str(HISTORY), "--symbol", "AAPL", "--out", str(real)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    subprocess.run(
        [str(BIN / "feed-sim"), "amplify", str(real), "--symbols", "20", "--out", str(amplified)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    _plausible(*validate(str(amplified)))


def test_bad_input_exits_3_with_one_line(tmp_path: Path) -> None:
    from ingest.storage import open_store

    code, result, err = validate(str(tmp_path / "nope.tape"))
    assert code == 3 and result is None and "no such file" in err
    assert len(err.strip().splitlines()) == 1, err
    empty = tmp_path / "empty-clickhouse"
    with open_store(empty) as store:
        store.create_schema()
    code, _, err = validate(f"chdb:{empty}")
    assert code == 3 and "market.ticks is empty" in err, err
    other = tmp_path / "other-clickhouse"
    with open_store(other) as store:
        store.backend.command("CREATE DATABASE IF NOT EXISTS market")
        store.backend.command("CREATE TABLE market.ticks (x UInt8) ENGINE = MergeTree ORDER BY x")
    code, _, err = validate(f"chdb:{other}")
    assert code == 3 and "not the ClickHouse writer's schema" in err, err
    code, _, err = validate(str(tmp_path))
    assert code == 3 and "a folder" in err, err
