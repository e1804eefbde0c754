"""US/Eastern wire times -> UTC ns: formats, DST, the midnight wrap and the caches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.feed.timeparse import (
    DatedTimeCache,
    NearTimeCache,
    compact_day,
    eastern_day,
    et_datetime_ns,
    l2_datetime_ns,
    mdy_day,
    time_near_ns,
    time_of_day_us,
    time_text_near_ns,
    timestamp_message_ns,
    wall_to_utc_ns,
    ymd_day,
)

ET = ZoneInfo("America/New_York")


def et_ns(*args: int, fold: int = 0) -> int:
    """Reference conversion with zoneinfo (independent of the module under test)."""
    wall = datetime(*args, tzinfo=ET, fold=fold)  # type: ignore[misc]
    return int(wall.timestamp()) * 1_000_000_000 + wall.microsecond * 1_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11:13:25.175857", (11 * 3600 + 13 * 60 + 25) * 1_000_000 + 175_857),
        ("00:00:00.000000", 0),
        ("23:59:59.999999", 86_400_000_000 - 1),
        ("09:30:00", 9.5 * 3_600_000_000),
        ("09:30:00.5", 9.5 * 3_600_000_000 + 500_000),
        ("09:30:00.123456789", 9.5 * 3_600_000_000 + 123_456),
    ],
)
def test_time_of_day(text: str, expected: float) -> None:
    assert time_of_day_us(text) == int(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "24:00:00.000000",
        "12:60:00.000000",
        "12:00:61.000000",
        "1:00:00.000000",
        "12-00-00.000000",
        "12:00:00.",
        "12:00:00.12a456",
        "12:00:00,123456",
        "ab:cd:ef",
        "12:00:00.\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth digits
        "12:00:00.0000000000",
    ],
)
def test_invalid_time_of_day_is_none(text: str) -> None:
    assert time_of_day_us(text) is None


def test_dates() -> None:
    assert mdy_day("03/30/2021") == ymd_day("2021-03-30") == compact_day("20210330")
    assert ymd_day("1970-01-01") == 0
    for bad in (
        "",
        "2021-02-30",
        "13/01/2021",
        "2021/03/30",
        "03-30-2021",
        "0000-01-01",
        "2021-3-30",
        "20210230",
    ):
        assert mdy_day(bad) is None
        assert ymd_day(bad) is None
        assert compact_day(bad) is None


def test_est_and_edt_offsets() -> None:
    winter = et_datetime_ns("01/15/2025", "09:30:00.000001")
    summer = l2_datetime_ns("2025-07-15", "09:30:00.000001")
    assert winter == et_ns(2025, 1, 15, 9, 30, 0, 1)
    assert summer == et_ns(2025, 7, 15, 9, 30, 0, 1)
    assert datetime.fromtimestamp(winter / 1e9, UTC).hour == 14
    assert datetime.fromtimestamp(summer / 1e9, UTC).hour == 13


def test_dst_switch_days() -> None:
    # 2025-03-09: 02:00 EST -> 03:00 EDT; 2025-11-02: 02:00 EDT -> 01:00 EST.
    assert et_datetime_ns("03/09/2025", "01:59:59.000000") == et_ns(2025, 3, 9, 1, 59, 59)
    assert et_datetime_ns("03/09/2025", "03:00:00.000000") == et_ns(2025, 3, 9, 3)
    first = et_ns(2025, 11, 2, 1, 30)
    second = et_ns(2025, 11, 2, 1, 30, fold=1)
    assert second - first == 3_600_000_000_000
    assert et_datetime_ns("11/02/2025", "01:30:00.000000") == first  # no hint: fold 0
    assert et_datetime_ns("11/02/2025", "01:30:00.000000", second + 5) == second
    assert et_datetime_ns("11/02/2025", "01:30:00.000000", first + 5) == first


def test_time_near_receive_date_and_midnight_wrap() -> None:
    recv = et_ns(2025, 11, 24, 10, 0)
    assert time_text_near_ns("09:59:59.900000", recv) == et_ns(2025, 11, 24, 9, 59, 59, 900000)
    just_after_midnight = et_ns(2025, 11, 25, 0, 0, 0, 200)
    late = time_text_near_ns("23:59:59.999000", just_after_midnight)
    assert late == et_ns(2025, 11, 24, 23, 59, 59, 999000)
    just_before_midnight = et_ns(2025, 11, 24, 23, 59, 59, 999900)
    early = time_text_near_ns("00:00:00.000100", just_before_midnight)
    assert early == et_ns(2025, 11, 25, 0, 0, 0, 100)
    assert time_text_near_ns("bad", recv) is None


def test_timestamp_message() -> None:
    assert timestamp_message_ns("20230530 05:58:26") == et_ns(2023, 5, 30, 5, 58, 26)
    for bad in ("20230530 25:58:26", "2023053 05:58:26", "20230530T05:58:26", ""):
        assert timestamp_message_ns(bad) is None


def test_eastern_day_and_wall_roundtrip() -> None:
    ns = et_ns(2024, 3, 10, 12, 0)
    day = eastern_day(ns)
    assert wall_to_utc_ns(day, 12 * 3_600_000_000) == ns


instants = st.integers(
    min_value=int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1e9),
    max_value=int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1e9),
)


@settings(max_examples=300, deadline=None)
@given(instants, st.integers(min_value=-11 * 3600 * 10**6, max_value=11 * 3600 * 10**6))
def test_caches_agree_with_exact_path(recv: int, delta_us: int) -> None:
    """A time within 11 h of the receive time resolves to itself, cached or not."""
    event = recv + delta_us * 1_000
    event -= event % 1_000
    wall = datetime.fromtimestamp(event // 10**9, UTC).astimezone(ET)
    wall += timedelta(microseconds=(event // 1_000) % 1_000_000)
    time_text = wall.strftime("%H:%M:%S.%f")
    date_text = wall.strftime("%m/%d/%Y")
    ambiguous = wall.replace(fold=1 - wall.fold).utcoffset() != wall.utcoffset()
    near, dated = NearTimeCache(), DatedTimeCache()
    if ambiguous:  # the repeated hour: resolved by nearness, covered above
        return
    for _ in range(2):  # miss, then hit
        assert near.ns(time_text, recv) == event
        assert time_near_ns(time_of_day_us(time_text) or 0, recv) == event
        assert dated.resolve(date_text, time_text, recv) == event
        assert et_datetime_ns(date_text, time_text, recv) == event
