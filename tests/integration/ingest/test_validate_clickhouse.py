"""`harness validate-data chdb:PATH` on the tables a real run of the ClickHouse writer filled:
the real IQFeed tick history (its times moved by whole weeks to last month, inside the tables'
90-day TTL, same weekdays and time zone offset) goes through a real broker and the writer into
the embedded engine; the command reads every trade back and finds it plausible."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from feed_sim.tape.convert import parse_history
from ingest.clickhouse_writer import ClickHouseWriter
from ingest.kafka_out import KafkaOutput
from ingest.records import FeedRecord
from ingest.storage import open_store
from ingest.symbols import SymbolPartitions
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration

HISTORY = shared_dir() / "data" / "iqfeed_history_ticks_2021-03.zip"
SHIFT_DAYS = (dt.date(2026, 11, 9) - dt.date(2021, 3, 1)).days
"""Monday to Monday, both in US standard time, no holiday in the target week."""


def _records() -> list[FeedRecord]:
    assert SHIFT_DAYS % 7 == 0
    shift_ns = SHIFT_DAYS * 86_400 * 1_000_000_000
    records = []
    for seq, event in enumerate(parse_history(HISTORY, "AAPL").events, start=1):
        f = event.fields
        payload = {
            "last": f["price"],
            "last_size": f["size"],
            "bid": f["bid"],
            "ask": f["ask"],
            "total_volume": f["total_volume"],
            "market_center": f["market_center"],
            "conditions": f["conditions"],
        }
        exchange = event.ts_ns + shift_ns
        records.append(FeedRecord("AAPL", "trade", seq, exchange, exchange + 1_000_000, 0, payload))
    return records


def test_the_writer_s_tables_of_real_trades_validate_as_plausible(
    feed_topics: str, tmp_path: Path
) -> None:
    records = _records()
    out = KafkaOutput(feed_topics, SymbolPartitions.load().partition_of)
    for record in records:
        out.send(record)
    assert out.flush(60) == 0 and out.stats.delivered == len(records)
    folder = tmp_path / "clickhouse"
    with open_store(folder) as store:
        store.create_schema()
        writer = ClickHouseWriter.connect(feed_topics, store, group_id="validate-data")
        stop = threading.Event()
        thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while writer.stats.ticks_written < len(records) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        thread.join(timeout=30)
        assert writer.stats.ticks_written >= len(records), writer.stats
    done = subprocess.run(
        [str(Path(sys.executable).parent / "harness"), "validate-data", f"chdb:{folder}", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(done.stdout)
    raised = [f for f in result["findings"] if f["severity"] != "info"]
    assert done.returncode == 0 and result["verdict"] == "plausible", raised
    assert result["trades"] == len(records)  # every row read back, after FINAL
    assert result["source"].startswith("ClickHouse chdb:")
