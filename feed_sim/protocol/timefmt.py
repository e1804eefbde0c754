"""US/Eastern wall-clock formatting of project timestamps (ns since the epoch, UTC) for the wire.

Owns every time/date text format IQConnect puts on the wire (iqfeed-protocol.md gotchas 3-4)
and the inverse parsers. Conversion uses `zoneinfo` America/New_York, DST included. The UTC
offset is cached per UTC hour (US DST switches happen on whole UTC hours), and date strings
per local day, so formatting costs a dict lookup and some integer arithmetic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")

_NS_PER_S = 1_000_000_000
_NS_PER_HOUR = 3_600 * _NS_PER_S
_NS_PER_DAY = 86_400 * _NS_PER_S
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CACHE_LIMIT = 100_000

_offset_by_hour: dict[int, int] = {}
_date_by_day: dict[int, tuple[str, str, str, int, str]] = {}
_hms_by_second: dict[int, str] = {}


def _offset_ns(ns: int) -> int:
    """UTC offset of US/Eastern (in ns, negative) at the instant `ns`."""
    hour = ns // _NS_PER_HOUR
    offset = _offset_by_hour.get(hour)
    if offset is None:
        instant = datetime.fromtimestamp(hour * 3_600, tz=UTC).astimezone(EASTERN)
        delta = instant.utcoffset()
        offset = int(delta.total_seconds()) * _NS_PER_S if delta is not None else 0
        if len(_offset_by_hour) > _CACHE_LIMIT:
            _offset_by_hour.clear()
        _offset_by_hour[hour] = offset
    return offset


def local_ns(ns: int) -> int:
    """Eastern wall-clock time as ns since 1970-01-01 00:00 (naive, local)."""
    return ns + _offset_ns(ns)


def _day_strings(local_day: int) -> tuple[str, str, str, int, str]:
    """(MM/DD/YYYY, YYYY-MM-DD, YYYYMMDD, day of month, 'Mon') for a local day number."""
    cached = _date_by_day.get(local_day)
    if cached is None:
        d = date.fromordinal(_EPOCH_ORDINAL + local_day)
        cached = (
            f"{d.month:02d}/{d.day:02d}/{d.year:04d}",
            f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
            f"{d.year:04d}{d.month:02d}{d.day:02d}",
            d.day,
            _MONTHS[d.month - 1],
        )
        if len(_date_by_day) > _CACHE_LIMIT:
            _date_by_day.clear()
        _date_by_day[local_day] = cached
    return cached


def _hms(second_of_day: int) -> str:
    """'HH:MM:SS' for a second of the day (memoised; at most 86,400 entries)."""
    text = _hms_by_second.get(second_of_day)
    if text is None:
        h, rem = divmod(second_of_day, 3_600)
        m, s = divmod(rem, 60)
        text = f"{h:02d}:{m:02d}:{s:02d}"
        _hms_by_second[second_of_day] = text
    return text


def hhmmss_micro(ns: int) -> str:
    """'HH:MM:SS.ffffff' (Level 1 / Level 2 times)."""
    loc = ns + _offset_ns(ns)
    micros = loc // 1_000
    return f"{_hms((micros // 1_000_000) % 86_400)}.{micros % 1_000_000:06d}"


def level1_trade_texts(ns: int) -> tuple[str, str, str]:
    """('HH:MM:SS.ffffff', 'MM/DD/YYYY', day-of-month text) with one offset lookup (hot path)."""
    loc = ns + _offset_ns(ns)
    micros = loc // 1_000
    day = _date_by_day.get(loc // _NS_PER_DAY) or _day_strings(loc // _NS_PER_DAY)
    return (
        f"{_hms((micros // 1_000_000) % 86_400)}.{micros % 1_000_000:06d}",
        day[0],
        str(day[3]),
    )


def hhmmss(ns: int) -> str:
    """'HH:MM:SS' (regional quote times, fundamental session times)."""
    loc = ns + _offset_ns(ns)
    return _hms((loc // _NS_PER_S) % 86_400)


def mmddyyyy(ns: int) -> str:
    """'MM/DD/YYYY' (Level 1 dates)."""
    return _day_strings(local_ns(ns) // _NS_PER_DAY)[0]


def yyyy_mm_dd(ns: int) -> str:
    """'YYYY-MM-DD' (Level 2 and history dates)."""
    return _day_strings(local_ns(ns) // _NS_PER_DAY)[1]


def day_of_month(ns: int) -> int:
    """Eastern day of month (the 6.1+ 'Day Code')."""
    return _day_strings(local_ns(ns) // _NS_PER_DAY)[3]


def history_datetime_micro(ns: int) -> str:
    """'YYYY-MM-DD HH:MM:SS.ffffff' (history tick rows)."""
    loc = local_ns(ns)
    micros = loc // 1_000
    day = _day_strings(loc // _NS_PER_DAY)[1]
    return f"{day} {_hms((micros // 1_000_000) % 86_400)}.{micros % 1_000_000:06d}"


def history_datetime(ns: int) -> str:
    """'YYYY-MM-DD HH:MM:SS' (history interval rows)."""
    loc = local_ns(ns)
    return f"{_day_strings(loc // _NS_PER_DAY)[1]} {_hms((loc // _NS_PER_S) % 86_400)}"


def t_message(ns: int) -> str:
    """'YYYYMMDD HH:MM:SS' (the `T` timestamp message)."""
    loc = local_ns(ns)
    return f"{_day_strings(loc // _NS_PER_DAY)[2]} {_hms((loc // _NS_PER_S) % 86_400)}"


def clientstats_time(ns: int) -> str:
    """'YYYYMMDD HHMMSS' (admin CLIENTSTATS start time, news time)."""
    loc = local_ns(ns)
    hms = _hms((loc // _NS_PER_S) % 86_400).replace(":", "")
    return f"{_day_strings(loc // _NS_PER_DAY)[2]} {hms}"


def stats_time(ns: int) -> str:
    """'MMM dd h:mmtt', e.g. 'May 13 8:41PM' (admin STATS). Day zero-padded (INFERRED from
    the .NET-style pattern name; the real sample has a two-digit day)."""
    loc = local_ns(ns)
    day = _day_strings(loc // _NS_PER_DAY)
    minute_of_day = (loc // (60 * _NS_PER_S)) % 1_440
    h24, minute = divmod(minute_of_day, 60)
    h12 = h24 % 12 or 12
    return f"{day[4]} {day[3]:02d} {h12}:{minute:02d}{'AM' if h24 < 12 else 'PM'}"


def _eastern_to_ns(wall: datetime) -> int:
    """ns since the epoch for a naive Eastern wall-clock datetime (fold=0 on ambiguity)."""
    aware = wall.replace(tzinfo=EASTERN)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1_000


def et_wall_ns(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> int:
    """ns since the epoch of an Eastern wall-clock time (fold 0 when ambiguous)."""
    return _eastern_to_ns(datetime(year, month, day, hour, minute, second, microsecond))


def _parse_time_of_day(text: str) -> timedelta:
    """'HH:MM:SS[.ffffff]' -> offset from midnight."""
    main, _, frac = text.partition(".")
    h, m, s = main.split(":")
    micros = int((frac + "000000")[:6]) if frac else 0
    return timedelta(hours=int(h), minutes=int(m), seconds=int(s), microseconds=micros)


def parse_et_time_of_day(date_ns_hint: int, text: str) -> int:
    """ns of Eastern time-of-day `text` ('HH:MM:SS[.ffffff]') on the Eastern date of the hint."""
    local_day = local_ns(date_ns_hint) // _NS_PER_DAY
    midnight = datetime.combine(date.fromordinal(_EPOCH_ORDINAL + local_day), datetime.min.time())
    return _eastern_to_ns(midnight + _parse_time_of_day(text))


def parse_history_datetime(text: str) -> int:
    """ns of 'YYYY-MM-DD[ HH:MM:SS[.ffffff]]' (Eastern wall clock)."""
    day_text, _, time_text = text.strip().partition(" ")
    y, mo, d = day_text.split("-")
    midnight = datetime(int(y), int(mo), int(d))
    offset = _parse_time_of_day(time_text) if time_text else timedelta()
    return _eastern_to_ns(midnight + offset)


def parse_compact_datetime(text: str) -> int:
    """ns of 'CCYYMMDD[ HHmmSS]' (history request parameters, Eastern wall clock)."""
    day_text, _, time_text = text.strip().partition(" ")
    wall = datetime(int(day_text[0:4]), int(day_text[4:6]), int(day_text[6:8]))
    if time_text:
        wall += timedelta(
            hours=int(time_text[0:2]), minutes=int(time_text[2:4]), seconds=int(time_text[4:6])
        )
    return _eastern_to_ns(wall)


class _SecondTexts:
    """Cache of `wire_time_texts`: the texts of one second since the epoch."""

    second = -1
    prefix = ""  # 'HH:MM:SS.'
    date = ""
    day_code = ""


def wire_time_texts(ts_ns: int) -> tuple[str, str, str]:
    """`level1_trade_texts(ts_ns)` with the second's texts cached: only the microseconds are
    formatted per call (the US/Eastern offset is a whole number of seconds)."""
    cache = _SecondTexts
    if ts_ns // 1_000_000_000 != cache.second:
        time_text, cache.date, cache.day_code = level1_trade_texts(ts_ns)
        cache.prefix = time_text[:9]
        cache.second = ts_ns // 1_000_000_000
    return f"{cache.prefix}{(ts_ns // 1_000) % 1_000_000:06d}", cache.date, cache.day_code


def wire_time(ts_ns: int) -> str:
    """`hhmmss_micro(ts_ns)`, cached per second like `wire_time_texts`."""
    cache = _SecondTexts
    if ts_ns // 1_000_000_000 != cache.second:
        wire_time_texts(ts_ns)
    return f"{cache.prefix}{(ts_ns // 1_000) % 1_000_000:06d}"
