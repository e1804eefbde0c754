"""The trading-session calendar and the intraday activity shape.

Owns when a generated day happens (US/Eastern sessions mapped to UTC with DST via zoneinfo:
regular 09:30-16:00, extended 04:00-20:00) and how activity is spread over it (the U-shape
measured on real samples, `data/intraday_profile_5min_real_samples.csv`).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

ET = ZoneInfo("America/New_York")
PROFILE_FILE = Path(__file__).resolve().parent / "data" / "intraday_profile_5min_real_samples.csv"
PROFILE_COLUMNS = (
    "taq_volume_share",
    "taq_tradecount_share",
    "lobster_AMZN_L1_msg_share",
    "lobster_GOOG_L1_msg_share",
)
EXTENDED_SHARE = 0.07
"""Share of a day's events outside 09:30-16:00 (market-facts 4.1: ~5-10% of volume)."""
NS = 1_000_000_000

Session = Literal["regular", "extended"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """One day's generated window, in UTC nanoseconds, on a one-second grid."""

    day: dt.date
    start_ns: int
    end_ns: int
    open_ns: int
    """09:30 ET."""
    close_ns: int
    """16:00 ET."""

    @property
    def n_seconds(self) -> int:
        """Seconds in the window."""
        return (self.end_ns - self.start_ns) // NS

    def seconds_from_open(self) -> FloatArray:
        """Start of every grid second, in seconds relative to 09:30 ET (negative pre-market)."""
        offset = (self.start_ns - self.open_ns) / NS
        return np.arange(self.n_seconds, dtype=np.float64) + offset

    def regular_mask(self) -> npt.NDArray[np.bool_]:
        """True for grid seconds inside 09:30-16:00 ET."""
        t = self.seconds_from_open()
        return (t >= 0) & (t < (self.close_ns - self.open_ns) / NS)


def _et_ns(day: dt.date, hour: int, minute: int) -> int:
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ET)
    return int(local.timestamp()) * NS


def session_window(day: dt.date, session: Session = "regular") -> SessionWindow:
    """The window of `session` on `day`: regular 09:30-16:00 ET, extended 04:00-20:00 ET."""
    open_ns, close_ns = _et_ns(day, 9, 30), _et_ns(day, 16, 0)
    if session == "regular":
        return SessionWindow(day, open_ns, close_ns, open_ns, close_ns)
    if session == "extended":
        return SessionWindow(day, _et_ns(day, 4, 0), _et_ns(day, 20, 0), open_ns, close_ns)
    raise ValueError(f"unknown session {session!r} (expected 'regular' or 'extended')")


@cache
def _bucket_shares() -> tuple[float, ...]:
    """Mean share per 5-minute bucket over the measured columns, lightly smoothed."""
    with PROFILE_FILE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    table = np.array([[float(r[c]) for c in PROFILE_COLUMNS] for r in rows])
    shares = (table / table.sum(axis=0)).mean(axis=1)
    padded = np.concatenate([shares[:1], shares, shares[-1:]])
    smooth = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    return tuple(float(x) for x in smooth / smooth.sum())


def activity_profile(window: SessionWindow) -> FloatArray:
    """Expected share of the day's activity in each grid second (sums to 1 over the window).

    Regular hours follow the measured U-shape (5-minute buckets, linearly interpolated between
    bucket centres); pre-market ramps up towards the open and post-market decays after the close,
    together carrying EXTENDED_SHARE when the window is extended.
    """
    shares = np.array(_bucket_shares())
    t = window.seconds_from_open()
    centres = (np.arange(len(shares)) + 0.5) * 300.0
    regular = window.regular_mask()
    out = np.zeros(window.n_seconds)
    out[regular] = np.interp(t[regular], centres, shares)
    out[regular] /= out[regular].sum()
    if regular.all():
        return out
    pre, post = t < 0, ~regular & (t >= 0)
    close_s = (window.close_ns - window.open_ns) / NS
    out[pre] = 0.02 + np.exp(t[pre] / 2700.0)
    out[post] = 0.02 + 1.5 * np.exp(-(t[post] - close_s) / 1800.0)
    ext = ~regular
    out[ext] *= EXTENDED_SHARE / out[ext].sum()
    out[regular] *= 1.0 - EXTENDED_SHARE
    return out


def previous_trading_day(today: dt.date | None = None) -> dt.date:
    """The last NYSE trading day before `today` (the default session of generated tapes): no
    weekend, no exchange holiday (a tape dated on one is what `harness validate-data` flags)."""
    import holidays

    day = (today or dt.date.today()) - dt.timedelta(days=1)
    closed = holidays.financial_holidays("NYSE", years=(day.year - 1, day.year))
    while day.weekday() >= 5 or day in closed:
        day -= dt.timedelta(days=1)
    return day
