"""Tests of the tick-history converter (feed_sim.tape.convert), on the real 2021 reply and on
small hand-made replies for the other layouts, DST and malformed rows."""

from __future__ import annotations

import zipfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feed_sim.tape.convert import (
    ConvertError,
    convert_history,
    eastern_to_utc_ns,
    parse_history,
    parse_history_lines,
)
from feed_sim.tape.format import load_tape
from feed_sim.tape.model import Kind, TapeEvent, TapeHeader
from tests.shared_data import shared_dir

REAL = shared_dir() / "data" / "iqfeed_history_ticks_2021-03.zip"
NY = ZoneInfo("America/New_York")

# iqfeed-protocol.md section 6.1 caveats and 6.2 frequencies (measured on this file).
DOC_MARKET_CENTERS = {
    19: 11_239, 5: 4_953, 24: 4_282, 26: 2_334, 11: 2_068, 10: 1_553, 187: 1_351, 18: 1_300,
    28: 942, 153: 866, 80: 480, 7: 467, 25: 323, 12: 282, 164: 98, 6: 89,
}  # fmt: skip
DOC_CONDITIONS = {
    "01": 13_383, "87": 9_180, "3D": 6_256, "3D87": 1_502, "8717": 824, "17": 726,
    "173D": 294, "873D17": 285, "3E87": 52, "4706": 40,
}  # fmt: skip


@pytest.fixture(scope="module")
def real_tape(tmp_path_factory: pytest.TempPathFactory) -> tuple[TapeHeader, list[TapeEvent]]:
    if not REAL.is_file():
        pytest.skip(f"reference data not found: {REAL}")
    out = tmp_path_factory.mktemp("conv") / "smcp.tape.zst"
    header = convert_history(REAL, out, "SMCP")
    loaded = load_tape(out)
    assert loaded[0] == header
    return loaded


def test_real_file_counts(real_tape: tuple[TapeHeader, list[TapeEvent]]) -> None:
    header, events = real_tape
    assert header.event_count == len(events) == 32_627
    assert header.meta["rows"] == 32_627
    assert header.meta["skipped"] == 0
    assert header.meta["skip_reasons"] == []
    assert header.meta["end_marker"] is True
    assert header.meta["source_order"] == "newest_first"
    assert header.meta["layouts"] == {"6.1": 32_627}
    assert header.meta["source_file"] == "iqfeed_history_ticks_2021-03.zip:ticks_newest.csv"
    assert header.source == "converted:iqfeed_history_ticks_2021-03.zip"
    assert header.symbols == ("SMCP",)
    assert header.amplified is False
    assert all(e.kind is Kind.TRADE and e.symbol == "SMCP" for e in events)


def test_real_file_time_span(real_tape: tuple[TapeHeader, list[TapeEvent]]) -> None:
    header, events = real_tape
    local = [datetime.fromtimestamp(e.ts_ns / 1e9, NY) for e in events]
    assert {t.date().isoformat() for t in local} == {"2021-03-01", "2021-03-02", "2021-03-03"}
    assert all(4 <= t.hour < 20 for t in local)
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert header.start_ns == events[0].ts_ns == eastern_to_utc_ns("2021-03-01 04:00:00.028010")
    assert header.end_ns == events[-1].ts_ns == eastern_to_utc_ns("2021-03-03 19:58:32.254017")


def test_real_file_market_centers_and_conditions(
    real_tape: tuple[TapeHeader, list[TapeEvent]],
) -> None:
    _, events = real_tape
    assert Counter(e.fields["market_center"] for e in events) == DOC_MARKET_CENTERS
    conditions = Counter(e.fields["conditions"] for e in events)
    assert {c: conditions[c] for c in DOC_CONDITIONS} == DOC_CONDITIONS


def test_real_file_last_rows(real_tape: tuple[TapeHeader, list[TapeEvent]]) -> None:
    """The file's first (newest) line, and equal-time rows kept in oldest-first order."""
    _, events = real_tape
    assert events[-1].fields == {
        "price": 1.54,
        "size": 238,
        "market_center": 11,
        "conditions": "17",
        "basis": "E",
        "aggressor": 0,
        "bid": 1.51,
        "ask": 1.54,
        "total_volume": 4_813_134,
        "source_tick_id": 597,
    }
    assert [e.fields["source_tick_id"] for e in events[-5:]] == [593, 594, 595, 596, 597]


def _write(tmp_path: Path, text: str, name: str = "reply.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", "\r\n").encode("latin-1"))
    return path


def test_dst_aware_times() -> None:
    # 2021-03-14 02:00 EST -> EDT: before it UTC-5, after it UTC-4.
    winter = int(datetime(2021, 3, 12, 14, 30, tzinfo=ZoneInfo("UTC")).timestamp()) * 10**9
    summer = int(datetime(2021, 3, 15, 13, 30, tzinfo=ZoneInfo("UTC")).timestamp()) * 10**9
    assert eastern_to_utc_ns("2021-03-12 09:30:00") == winter
    assert eastern_to_utc_ns("2021-03-15 09:30:00.000001") == summer + 1_000
    assert eastern_to_utc_ns("2021-03-15 09:30:00.5") == summer + 500_000_000


def test_layouts_62_with_request_id_and_60(tmp_path: Path) -> None:
    text = (
        "REQ1,LH,2021-03-03 10:00:00.000002,1.5400,100,500,1.5300,1.5500,7,C,5,01,0,3,\n"
        "LH,2021-03-03 10:00:00.000001,1.5300,300,400,1.5200,1.5400,6,O,19,3D87,1,3,\n"
        "2021-03-03 09:59:59.000000,1.5200,100,100,1.5100,1.5300,5,C,11,01,\n"
        "REQ1,!ENDMSG!,\n"
    )
    header = convert_history(_write(tmp_path, text), tmp_path / "o.tape.zst", "AAA", "6.2")
    _, events = load_tape(tmp_path / "o.tape.zst")
    assert header.meta["layouts"] == {"6.2": 2, "6.0": 1}
    assert header.meta["protocol_hint"] == "6.2"
    assert [e.fields["source_tick_id"] for e in events] == [5, 6, 7]
    assert events[0].fields["aggressor"] == 0
    assert events[1].fields["aggressor"] == 1
    assert events[1].fields["conditions"] == "3D87"
    assert events[2].fields["market_center"] == 5


def test_malformed_rows_are_counted_and_skipped(tmp_path: Path) -> None:
    text = (
        "2021-03-03 10:00:03.000000,1.5400,100,500,1.5300,1.5500,7,C,5,01,0,3,\n"
        "2021-03-03 10:00:02.000000,abc,100,500,1.5300,1.5500,7,C,5,01,0,3,\n"
        "2021-03-03 10:00:02.000000,1.5400,100,500\n"
        "garbage line\n"
        "2021-13-03 10:00:01.000000,1.5400,100,500,1.5300,1.5500,7,C,5,01,0,3,\n"
        "2021-03-03 10:00:01.000000,1.5400,-5,500,1.5300,1.5500,7,C,5,01,0,3,\n"
        "2021-03-03 10:00:01.000000,1.5400,5,500,1.5300,1.5500,7,C,5,XYZ,0,3,\n"
        "\n"
        "2021-03-03 10:00:00.000000,1.5300,100,400,1.5200,1.5400,6,O,19,3D,0,3,\n"
        "!ENDMSG!,\n"
        "2021-03-03 09:00:00.000000,1.5300,100,400,1.5200,1.5400,6,O,19,3D,0,3,\n"
    )
    header = convert_history(_write(tmp_path, text), tmp_path / "o.tape.zst", "AAA")
    assert header.event_count == 2
    assert header.meta["rows"] == 9
    assert header.meta["skipped"] == 7
    reasons = header.meta["skip_reasons"]
    assert [r.split(":")[0] for r in reasons] == [f"line {n}" for n in (2, 3, 4, 5, 6, 7, 11)]
    assert "Last is not a number" in reasons[0]
    assert "fields after the time" in reasons[1]
    assert "no timestamp" in reasons[2]
    assert "bad timestamp" in reasons[3]
    assert "LastSize is negative" in reasons[4]
    assert "not hex pairs" in reasons[5]
    assert "after !ENDMSG!" in reasons[6]


def test_server_error_reply(tmp_path: Path) -> None:
    path = _write(tmp_path, "E,!NO_DATA!,,\n!ENDMSG!,\n")
    with pytest.raises(ConvertError, match="no valid tick rows"):
        convert_history(path, tmp_path / "o.tape.zst", "AAA")
    assert not (tmp_path / "o.tape.zst").exists()
    result = parse_history_lines(iter(["E,!NO_DATA!,,\r\n", "!ENDMSG!,\r\n"]), "AAA")
    assert result.server_errors == ["line 1: E,!NO_DATA!,,"]
    assert (result.rows, result.skipped, result.end_marker) == (0, 0, True)


def test_oldest_first_file_keeps_order(tmp_path: Path) -> None:
    text = (
        "2021-03-03 10:00:00.000000,1.5,1,1,1.4,1.6,1,C,5,01,0,3,\n"
        "2021-03-03 10:00:00.000000,1.5,2,3,1.4,1.6,2,C,5,01,0,3,\n"
        "2021-03-03 10:00:01.000000,1.5,3,6,1.4,1.6,3,C,5,01,0,3,\n"
    )
    result = parse_history(_write(tmp_path, text), "AAA")
    assert result.source_order == "oldest_first"
    assert [e.fields["size"] for e in result.events] == [1, 2, 3]


def test_zip_with_several_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", "x")
        zf.writestr("b.csv", "y")
    with pytest.raises(ConvertError, match="expected one file"):
        convert_history(path, tmp_path / "o.tape.zst", "AAA")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="protocol_hint"):
        convert_history(REAL, tmp_path / "o.tape.zst", "AAA", protocol_hint="5.0")
    with pytest.raises(ValueError, match="invalid symbol"):
        convert_history(REAL, tmp_path / "o.tape.zst", "")
