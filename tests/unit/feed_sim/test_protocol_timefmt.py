"""Eastern wall-clock formatting: formats, DST, and the inverse parsers."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from feed_sim.protocol import timefmt


def utc_ns(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0, us: int = 0) -> int:
    moment = datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + us * 1_000


def test_july_is_edt_and_january_is_est() -> None:
    assert timefmt.hhmmss_micro(utc_ns(2024, 7, 1, 16, 0, 0, 123456)) == "12:00:00.123456"
    assert timefmt.hhmmss_micro(utc_ns(2024, 1, 15, 16, 0, 0, 7)) == "11:00:00.000007"


def test_spring_forward_2024() -> None:
    # 2024-03-10 02:00 EST -> 03:00 EDT, i.e. 07:00 UTC
    assert timefmt.hhmmss(utc_ns(2024, 3, 10, 6, 59, 59)) == "01:59:59"
    assert timefmt.hhmmss(utc_ns(2024, 3, 10, 7, 0, 0)) == "03:00:00"


def test_fall_back_2024() -> None:
    # 2024-11-03 02:00 EDT -> 01:00 EST, i.e. 06:00 UTC; 01:xx happens twice
    assert timefmt.hhmmss(utc_ns(2024, 11, 3, 5, 30)) == "01:30:00"
    assert timefmt.hhmmss(utc_ns(2024, 11, 3, 6, 30)) == "01:30:00"
    assert timefmt.hhmmss(utc_ns(2024, 11, 3, 7, 0)) == "02:00:00"


def test_date_changes_at_eastern_midnight_not_utc() -> None:
    ns = utc_ns(2021, 3, 4, 3, 0)  # 22:00 ET on the 3rd
    assert timefmt.mmddyyyy(ns) == "03/03/2021"
    assert timefmt.yyyy_mm_dd(ns) == "2021-03-03"
    assert timefmt.day_of_month(ns) == 3


def test_all_formats() -> None:
    ns = timefmt.et_wall_ns(2019, 10, 18, 12, 49, 55, 696621)
    assert timefmt.hhmmss_micro(ns) == "12:49:55.696621"
    assert timefmt.hhmmss(ns) == "12:49:55"
    assert timefmt.mmddyyyy(ns) == "10/18/2019"
    assert timefmt.yyyy_mm_dd(ns) == "2019-10-18"
    assert timefmt.t_message(ns) == "20191018 12:49:55"
    assert timefmt.clientstats_time(ns) == "20191018 124955"
    assert timefmt.history_datetime_micro(ns) == "2019-10-18 12:49:55.696621"
    assert timefmt.history_datetime(ns) == "2019-10-18 12:49:55"
    assert timefmt.stats_time(timefmt.et_wall_ns(2010, 5, 13, 20, 41)) == "May 13 8:41PM"
    assert timefmt.stats_time(timefmt.et_wall_ns(2010, 5, 3, 0, 5)) == "May 03 12:05AM"
    assert timefmt.stats_time(timefmt.et_wall_ns(2010, 5, 3, 12, 0)) == "May 03 12:00PM"


def test_parsers_invert_formatters() -> None:
    ns = timefmt.et_wall_ns(2021, 3, 3, 19, 58, 32, 254017)
    assert timefmt.parse_history_datetime("2021-03-03 19:58:32.254017") == ns
    assert timefmt.parse_et_time_of_day(ns - 10**12, "19:58:32.254017") == ns
    assert timefmt.parse_history_datetime("2021-03-03") == timefmt.et_wall_ns(2021, 3, 3)
    assert timefmt.parse_compact_datetime("20210303 195832") == timefmt.et_wall_ns(
        2021, 3, 3, 19, 58, 32
    )


@given(st.integers(min_value=utc_ns(2000, 1, 1, 0), max_value=utc_ns(2037, 12, 31, 0)))
def test_round_trip_matches_zoneinfo(ns: int) -> None:
    ns -= ns % 1_000  # wire resolution is microseconds
    reference = datetime.fromtimestamp(ns // 10**9, tz=UTC).astimezone(timefmt.EASTERN)
    text = timefmt.history_datetime_micro(ns)
    assert text == reference.strftime("%Y-%m-%d %H:%M:%S") + f".{(ns // 1_000) % 10**6:06d}"
    assert timefmt.level1_trade_texts(ns) == (
        timefmt.hhmmss_micro(ns),
        timefmt.mmddyyyy(ns),
        str(timefmt.day_of_month(ns)),
    )
    if not reference.fold:  # ambiguous fall-back hour parses to its first occurrence
        assert timefmt.parse_history_datetime(text) == ns


def test_et_wall_ns_matches_zoneinfo() -> None:
    cases = [(2024, 7, 1, 9, 30), (2024, 1, 15, 16, 0), (2024, 11, 3, 1, 30), (2024, 3, 10, 3, 0)]
    for y, mo, d, h, mi in cases:
        moment = datetime(y, mo, d, h, mi, tzinfo=timefmt.EASTERN)
        assert timefmt.et_wall_ns(y, mo, d, h, mi) == int(moment.timestamp()) * 10**9
    assert timefmt.et_wall_ns(2020, 1, 2, 3, 4, 5, 6) % 10**9 == 6_000
