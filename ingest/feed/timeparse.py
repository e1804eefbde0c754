"""US/Eastern wire times -> UTC ns (ARCHITECTURE.md contract 1; iqfeed-protocol.md gotchas 3-4).

Owns the parsing of every IQFeed time/date text the core reads: `HH:MM:SS[.ffffff]` times of
day, `MM/DD/YYYY` (Level 1) and `YYYY-MM-DD` (Level 2) dates, `YYYYMMDD HH:MM:SS` (`T`
messages), and their conversion to ns since the epoch (UTC) with zoneinfo America/New_York,
DST included. Invalid text gives None, never an exception.

Caches keep the hot path to a few dict lookups: the seconds of an `HH:MM:SS` text, the day
number of a date text, the UTC offset per local hour, and the UTC ns of a whole
(date, `HH:MM:SS`) second. Only valid texts are cached, and each cache is bounded.

Ambiguous wall-clock times (the repeated hour when DST ends) resolve to the candidate nearest
the receive time when one is given, else to the first occurrence (fold 0). Times of day that
carry no date (Bid/Ask Time) are placed on the receive time's Eastern date, moved one day back
or forward when that puts them more than 12 hours from the receive time (midnight wrap).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")

NS_PER_US = 1_000
NS_PER_S = 1_000_000_000
NS_PER_HOUR = 3_600 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S
US_PER_S = 1_000_000
US_PER_HOUR = 3_600 * US_PER_S
HALF_DAY_NS = NS_PER_DAY // 2

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MIN_ORDINAL = date(1900, 1, 1).toordinal()
_MAX_ORDINAL = date(2200, 12, 31).toordinal()
_CACHE_LIMIT = 200_000

DayParser = Callable[[str], int | None]

_seconds_by_text: dict[str, int] = {}
_mdy_day_by_text: dict[str, int] = {}
_ymd_day_by_text: dict[str, int] = {}
_offsets_by_local_hour: dict[int, tuple[int, int]] = {}
_offset_by_utc_hour: dict[int, int] = {}
_second_ns_by_text: dict[str, int] = {}


def _bounded_put(cache: dict[str, int], key: str, value: int) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _hms_seconds(text: str) -> int | None:
    """Seconds since midnight of an exact `HH:MM:SS` text (memoised), None if invalid."""
    seconds = _seconds_by_text.get(text)
    if seconds is not None:
        return seconds
    if len(text) != 8 or text[2] != ":" or text[5] != ":":
        return None
    h, m, s = text[0:2], text[3:5], text[6:8]
    if not (h.isdigit() and m.isdigit() and s.isdigit() and text.isascii()):
        return None
    hour, minute, second = int(h), int(m), int(s)
    if hour > 23 or minute > 59 or second > 59:
        return None
    seconds = hour * 3_600 + minute * 60 + second
    _seconds_by_text[text] = seconds  # at most 86,400 valid keys
    return seconds


def _fraction_us(frac: str) -> int | None:
    """Microseconds of the digits after the dot (1-9 digits; beyond 6 truncated)."""
    if not frac or len(frac) > 9 or not (frac.isdigit() and frac.isascii()):
        return None
    return int((frac + "00000")[:6])


def time_of_day_us(text: str) -> int | None:
    """`HH:MM:SS.ffffff` (or `HH:MM:SS`, or 1-9 fraction digits) -> us since midnight."""
    seconds = _hms_seconds(text[:8])
    if seconds is None:
        return None
    if len(text) == 15 and text[8] == ".":
        frac = text[9:]
        if not (frac.isdigit() and frac.isascii()):
            return None
        return seconds * US_PER_S + int(frac)
    if len(text) == 8:
        return seconds * US_PER_S
    if text[8] != ".":
        return None
    micros = _fraction_us(text[9:])
    return None if micros is None else seconds * US_PER_S + micros


def _day_number(year: int, month: int, day: int) -> int | None:
    try:
        ordinal = date(year, month, day).toordinal()
    except ValueError:
        return None
    if not _MIN_ORDINAL <= ordinal <= _MAX_ORDINAL:
        return None
    return ordinal - _EPOCH_ORDINAL


def _digits(*parts: str) -> bool:
    return all(p.isdigit() and p.isascii() for p in parts)


def mdy_day(text: str) -> int | None:
    """`MM/DD/YYYY` (Level 1 dates) -> Eastern day number (days since 1970-01-01)."""
    day = _mdy_day_by_text.get(text)
    if day is not None:
        return day
    if len(text) != 10 or text[2] != "/" or text[5] != "/":
        return None
    m, d, y = text[0:2], text[3:5], text[6:10]
    if not _digits(m, d, y):
        return None
    day = _day_number(int(y), int(m), int(d))
    if day is not None:
        _bounded_put(_mdy_day_by_text, text, day)
    return day


def ymd_day(text: str) -> int | None:
    """`YYYY-MM-DD` (Level 2 and history dates) -> Eastern day number."""
    day = _ymd_day_by_text.get(text)
    if day is not None:
        return day
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    y, m, d = text[0:4], text[5:7], text[8:10]
    if not _digits(m, d, y):
        return None
    day = _day_number(int(y), int(m), int(d))
    if day is not None:
        _bounded_put(_ymd_day_by_text, text, day)
    return day


def compact_day(text: str) -> int | None:
    """`YYYYMMDD` (the `T` message) -> Eastern day number."""
    if len(text) != 8 or not _digits(text):
        return None
    return _day_number(int(text[0:4]), int(text[4:6]), int(text[6:8]))


def _local_hour_offsets(day: int, hour: int) -> tuple[int, int]:
    """UTC offsets (ns, negative in the US) of Eastern wall hour `hour` of `day`, for fold 0
    and fold 1; they differ only in the repeated hour when DST ends."""
    key = day * 24 + hour
    offsets = _offsets_by_local_hour.get(key)
    if offsets is None:
        d = date.fromordinal(_EPOCH_ORDINAL + day)
        wall = datetime(d.year, d.month, d.day, hour, tzinfo=EASTERN)
        first = wall.utcoffset()
        second = wall.replace(fold=1).utcoffset()
        offsets = (
            int(first.total_seconds()) * NS_PER_S if first is not None else 0,
            int(second.total_seconds()) * NS_PER_S if second is not None else 0,
        )
        if len(_offsets_by_local_hour) >= _CACHE_LIMIT:
            _offsets_by_local_hour.clear()
        _offsets_by_local_hour[key] = offsets
    return offsets


def wall_to_utc_ns(day: int, tod_us: int, hint_ns: int | None = None) -> int:
    """UTC ns of Eastern wall time `tod_us` on Eastern day `day` (DST-aware).

    In the repeated hour when DST ends, the candidate nearest `hint_ns` wins (fold 0 without
    a hint). A time in the skipped hour when DST starts maps as fold 0 (PEP 495)."""
    first, second = _local_hour_offsets(day, tod_us // US_PER_HOUR)
    local = day * NS_PER_DAY + tod_us * NS_PER_US
    if first == second or hint_ns is None:
        return local - first
    a, b = local - first, local - second
    return a if abs(a - hint_ns) <= abs(b - hint_ns) else b


def utc_offset_ns(utc_ns: int) -> int:
    """UTC offset of US/Eastern (ns, negative) at the instant `utc_ns` (cached per UTC hour)."""
    hour = utc_ns // NS_PER_HOUR
    offset = _offset_by_utc_hour.get(hour)
    if offset is None:
        delta = datetime.fromtimestamp(hour * 3_600, tz=UTC).astimezone(EASTERN).utcoffset()
        offset = int(delta.total_seconds()) * NS_PER_S if delta is not None else 0
        if len(_offset_by_utc_hour) >= _CACHE_LIMIT:
            _offset_by_utc_hour.clear()
        _offset_by_utc_hour[hour] = offset
    return offset


def eastern_day(utc_ns: int) -> int:
    """Eastern day number of an instant."""
    return (utc_ns + utc_offset_ns(utc_ns)) // NS_PER_DAY


def time_near_ns(tod_us: int, recv_ns: int) -> int:
    """UTC ns of a time of day without a date, on the receive time's Eastern date, with the
    midnight wrap: more than 12 h after the receive time means yesterday, more than 12 h
    before it means tomorrow."""
    local_recv = recv_ns + utc_offset_ns(recv_ns)
    day = local_recv // NS_PER_DAY
    diff = day * NS_PER_DAY + tod_us * NS_PER_US - local_recv
    if diff > HALF_DAY_NS:
        day -= 1
    elif diff < -HALF_DAY_NS:
        day += 1
    return wall_to_utc_ns(day, tod_us, recv_ns)


def time_text_near_ns(text: str, recv_ns: int) -> int | None:
    """`HH:MM:SS.ffffff` without a date -> UTC ns near the receive time (see time_near_ns)."""
    tod = time_of_day_us(text)
    return None if tod is None else time_near_ns(tod, recv_ns)


def et_datetime_ns(date_text: str, time_text: str, hint_ns: int | None = None) -> int | None:
    """`MM/DD/YYYY` + `HH:MM:SS.ffffff` (Level 1, e.g. Most Recent Trade Date/Time) -> UTC ns.

    Cached per (date, second): a repeat costs one string concat, one lookup and an int()."""
    return _dated(date_text, time_text, hint_ns, mdy_day)


def l2_datetime_ns(date_text: str, time_text: str, hint_ns: int | None = None) -> int | None:
    """`YYYY-MM-DD` + `HH:MM:SS.ffffff` (Level 2 row time) -> UTC ns."""
    return _dated(date_text, time_text, hint_ns, ymd_day)


def _dated(date_text: str, time_text: str, hint_ns: int | None, day_of: DayParser) -> int | None:
    if len(time_text) == 15 and time_text[8] == ".":
        base = _second_ns_by_text.get(f"{date_text} {time_text[:8]}")
        if base is not None:
            frac = time_text[9:]
            if frac.isdigit() and frac.isascii():
                return base + int(frac) * NS_PER_US
            return None
    day = day_of(date_text)
    tod = time_of_day_us(time_text)
    if day is None or tod is None:
        return None
    first, second = _local_hour_offsets(day, tod // US_PER_HOUR)
    if first == second and len(time_text) == 15:
        whole_second = day * NS_PER_DAY + (tod // US_PER_S) * NS_PER_S - first
        _bounded_put(_second_ns_by_text, f"{date_text} {time_text[:8]}", whole_second)
    return wall_to_utc_ns(day, tod, hint_ns)


def timestamp_message_ns(text: str) -> int | None:
    """`YYYYMMDD HH:MM:SS` (the body of a `T` message) -> UTC ns."""
    if len(text) != 17 or text[8] != " ":
        return None
    day = compact_day(text[:8])
    seconds = _hms_seconds(text[9:])
    if day is None or seconds is None:
        return None
    return wall_to_utc_ns(day, seconds * US_PER_S)


TEXT_CACHE_LIMIT = 50_000


def _put_text(cache: dict[str, int], key: str, value: int) -> None:
    if len(cache) >= TEXT_CACHE_LIMIT:
        cache.clear()
    cache[key] = value


class NearTimeCache:
    """Hot-path cache of `time_text_near_ns` for one connection.

    `by_second`: `HH:MM:SS` -> the UTC ns of that whole second on some day. A text's value is
    that + its microseconds, the instance of that wall time on that day; it is the right
    answer whenever it lies within 12 h of the receive time (the nearest instance), else the
    exact path decides and re-caches the second. Times in an ambiguous hour are never cached
    (the answer depends on the receive time). The C hot path (ingest/feed/_fastparse.c) reads
    the same table with the same rule and leaves the exact path to `ns`."""

    __slots__ = ("by_second",)

    def __init__(self) -> None:
        self.by_second: dict[str, int] = {}

    def ns(self, text: str, recv_ns: int) -> int | None:
        """UTC ns of `text` near `recv_ns` (see time_near_ns), None if invalid."""
        if len(text) == 15 and text[8] == ".":
            base = self.by_second.get(text[:8])
            if base is not None:
                frac = text[9:]
                if not (frac.isdigit() and frac.isascii()):
                    return None
                ns = base + int(frac) * NS_PER_US
                if -HALF_DAY_NS <= ns - recv_ns <= HALF_DAY_NS:
                    return ns
        return self._exact(text, recv_ns)

    def _exact(self, text: str, recv_ns: int) -> int | None:
        tod = time_of_day_us(text)
        if tod is None:
            return None
        ns = time_near_ns(tod, recv_ns)
        first, second = _local_hour_offsets(eastern_day(ns), tod // US_PER_HOUR)
        if first == second:
            _put_text(self.by_second, text[:8], ns - (tod % US_PER_S) * NS_PER_US)
        return ns


class DatedTimeCache:
    """Hot-path cache of `et_datetime_ns` for one connection: `MM/DD/YYYY HH:MM:SS` (date, a
    space, the whole second: unambiguous keys) -> UTC ns in `by_second`; `resolve` adds the
    microseconds, or takes the exact path and caches the second. Ambiguous times are not
    cached. The C hot path reads the same table and leaves the exact path to `resolve`."""

    __slots__ = ("by_second",)

    def __init__(self) -> None:
        self.by_second: dict[str, int] = {}

    def resolve(self, date_text: str, time_text: str, hint_ns: int | None) -> int | None:
        """Validates and converts (caching); None if invalid."""
        if len(time_text) == 15 and time_text[8] == ".":
            base = self.by_second.get(f"{date_text} {time_text[:8]}")
            if base is not None:
                frac = time_text[9:]
                if not (frac.isdigit() and frac.isascii()):
                    return None
                return base + int(frac) * NS_PER_US
        day = mdy_day(date_text)
        tod = time_of_day_us(time_text)
        if day is None or tod is None:
            return None
        first, second = _local_hour_offsets(day, tod // US_PER_HOUR)
        ns = wall_to_utc_ns(day, tod, hint_ns)
        if first == second:
            second_ns = ns - (tod % US_PER_S) * NS_PER_US
            _put_text(self.by_second, f"{date_text} {time_text[:8]}", second_ns)
        return ns
