"""Each legitimacy check with a passing case (the real IQFeed tick history of ../shared/data,
or replays amplified from it) and a failing one (the same data with one fingerprint of
synthetic data put in)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

import numpy as np
import pytest

from feed_sim.tape.amplify import amplify
from feed_sim.tape.convert import parse_history
from harness.datacheck import checks, microstructure
from harness.datacheck.checks import Context, Eastern, Severity
from harness.datacheck.dataset import MarketData, Quotes, Trades, from_events
from harness.datacheck.validate import default_context, validate
from tests.shared_data import shared_dir

HISTORY = shared_dir() / "data" / "iqfeed_history_ticks_2021-03.zip"
NS = 1_000_000_000
DAY_NS = 86_400 * NS


@pytest.fixture(scope="module")
def ctx() -> Context:
    return default_context()


@pytest.fixture(scope="module")
def real() -> MarketData:
    """32,627 real trades of one Nasdaq small cap, 2021-03-01..03, with the NBBO."""
    return from_events(parse_history(HISTORY, "REAL").events, "real history")


@pytest.fixture(scope="module")
def three() -> MarketData:
    """The real history replayed as three symbols at $20, $150 and $900."""
    events = parse_history(HISTORY, "SRC").events
    targets = [("AAA", 20.0), ("BBB", 150.0), ("CCC", 900.0)]
    return from_events(amplify({"SRC": events}, targets, seed=1, max_offset_s=600), "three")


def _with(data: MarketData, **trade_columns: np.ndarray) -> MarketData:
    return dataclasses.replace(data, trades=dataclasses.replace(data.trades, **trade_columns))


def _severity(check: checks.Check, data: MarketData, ctx: Context) -> Severity:
    return check(data, ctx).severity


def test_the_real_history_and_its_amplified_replay_raise_nothing(
    real: MarketData, three: MarketData, ctx: Context
) -> None:
    for data in (real, three):
        result = validate(data, ctx)
        assert result.plausible, [f.to_json() for f in result.findings if f.severity]


def test_market_makers_outside_the_nasdaq_directory(real: MarketData, ctx: Context) -> None:
    known = dataclasses.replace(real, market_makers=Counter({"NSDQ": 900, "GSCO": 300}))
    assert _severity(checks.market_makers, known, ctx) is Severity.INFO
    fake = dataclasses.replace(real, market_makers=Counter({f"MM{i}": 200 for i in range(1, 6)}))
    finding = checks.market_makers(fake, ctx)
    assert finding.severity is Severity.SYNTHETIC and "MM1" in finding.summary


def test_trades_while_every_session_is_closed(real: MarketData, ctx: Context) -> None:
    # 01:00-04:59 UTC on the same dates: 20:00-23:59 ET (EST), after the after-hours close.
    et = Eastern.of(real.trades.ts_ns)
    ts = real.trades.ts_ns - et.second * NS + (20 * 3600 + (et.second % (4 * 3600))) * NS
    finding = checks.session_hours(_with(real, ts_ns=ts), ctx)
    assert finding.severity is Severity.SYNTHETIC and "UTC hours 01, 02, 03, 04" in finding.summary


def test_extended_hours_prints_without_form_t(real: MarketData, ctx: Context) -> None:
    stripped = np.char.replace(real.trades.conditions, "17", "")
    unmarked = _with(real, conditions=stripped, basis=np.full(len(real.trades), "C"))
    assert _severity(checks.session_hours, unmarked, ctx) is Severity.SUSPICIOUS


def test_weekend_and_holiday_trades(real: MarketData, ctx: Context) -> None:
    assert _severity(checks.calendar, real, ctx) is Severity.INFO
    saturday = _with(real, ts_ns=real.trades.ts_ns + 5 * DAY_NS)  # Mon 2021-03-01 -> Sat
    assert _severity(checks.calendar, saturday, ctx) is Severity.SYNTHETIC
    # 18 weeks later: Monday 2021-07-05, Independence Day observed.
    holiday = _with(real, ts_ns=real.trades.ts_ns + 126 * DAY_NS)
    finding = checks.calendar(holiday, ctx)
    assert finding.severity is Severity.SYNTHETIC
    assert "2021-07-05" in finding.evidence["closed_days"]


def test_implausible_daily_moves(three: MarketData, ctx: Context) -> None:
    sp500 = dataclasses.replace(ctx, sp500=frozenset({"AAA", "BBB", "CCC"}))
    assert _severity(checks.daily_moves, three, sp500) is Severity.INFO
    et = Eastern.of(three.trades.ts_ns)
    ramp = 1.0 + 0.65 * (et.second - et.second.min()) / np.ptp(et.second)  # +65% in a day
    finding = checks.daily_moves(_with(three, price=three.trades.price * ramp), sp500)
    assert finding.severity is Severity.SYNTHETIC


def test_moves_beyond_the_luld_bands(three: MarketData, ctx: Context) -> None:
    sp500 = dataclasses.replace(ctx, sp500=frozenset({"AAA", "BBB", "CCC"}))
    assert _severity(microstructure.intraday_moves, three, sp500) is Severity.INFO
    et = Eastern.of(three.trades.ts_ns)
    swing = np.where((et.second // 300) % 2 == 0, 1.0, 1.12)  # +12% every other 5 minutes
    finding = microstructure.intraday_moves(_with(three, price=three.trades.price * swing), sp500)
    assert finding.severity is Severity.SUSPICIOUS, finding
    # The same swing is inside the 20% band of a stock between $0.75 and $3 (the real one).
    assert microstructure.luld_band(np.asarray([1.5]), np.asarray([False]),
                                    np.asarray([False]))[0] == 0.20  # fmt: skip


def test_one_venue_for_everything(real: MarketData, ctx: Context) -> None:
    one = _with(real, market_center=np.full(len(real.trades), 11))
    assert _severity(checks.venue_concentration, one, ctx) is Severity.SYNTHETIC
    mostly = real.trades.market_center.copy()
    mostly[: int(0.85 * mostly.size)] = 11
    assert _severity(checks.venue_concentration, _with(real, market_center=mostly), ctx) is (
        Severity.SUSPICIOUS
    )


def test_identical_spreads_across_symbols(three: MarketData, ctx: Context) -> None:
    assert _severity(checks.spreads_across_symbols, three, ctx) is Severity.INFO
    mid = np.round(three.trades.price, 2)
    same = _with(three, bid=mid - 0.02, ask=mid + 0.03)  # $0.05 everywhere
    finding = checks.spreads_across_symbols(same, ctx)
    assert finding.severity is Severity.SYNTHETIC and "$0.05" in finding.summary


def test_a_spread_constant_over_time(real: MarketData, ctx: Context) -> None:
    assert _severity(checks.spreads_over_time, real, ctx) is Severity.INFO
    mid = np.round(real.trades.price, 2)
    constant = _with(real, bid=mid - 0.01, ask=mid + 0.02)
    assert _severity(checks.spreads_over_time, constant, ctx) is Severity.SUSPICIOUS
    tick = _with(real, bid=mid, ask=mid + 0.01)  # one tick all day: tick-constrained, real
    assert _severity(checks.spreads_over_time, tick, ctx) is Severity.INFO


def test_quotes_off_the_penny_grid(real: MarketData, ctx: Context) -> None:
    assert _severity(checks.price_grid, real, ctx) is Severity.INFO
    off = _with(real, bid=real.trades.bid + 1.0037, ask=real.trades.ask + 1.0037)
    assert _severity(checks.price_grid, off, ctx) is Severity.SUSPICIOUS
    quotes = Quotes(real.trades.ts_ns[:10], real.trades.symbol[:10], np.full(10, 0.5003),
                    np.full(10, 0.5107))  # fmt: skip
    sub_dollar = dataclasses.replace(real, quotes=quotes)  # sub-penny allowed below $1
    assert _severity(checks.price_grid, sub_dollar, ctx) is Severity.INFO


def test_symbols_outside_the_universe(real: MarketData, ctx: Context) -> None:
    assert _severity(checks.universe, real, ctx) is Severity.INFO  # no universe given
    inside = dataclasses.replace(ctx, universe=frozenset({"REAL"}))
    assert _severity(checks.universe, real, inside) is Severity.INFO
    outside = dataclasses.replace(ctx, universe=frozenset({"AAPL"}))
    assert _severity(checks.universe, real, outside) is Severity.SUSPICIOUS


def test_sizes_without_round_lots_or_without_odd_lots(real: MarketData, ctx: Context) -> None:
    assert _severity(microstructure.lot_sizes, real, ctx) is Severity.INFO
    rng = np.random.default_rng(1)
    uniform = _with(real, size=rng.integers(1, 1000, len(real.trades)) * 1 + 1)
    assert _severity(microstructure.lot_sizes, uniform, ctx) is Severity.SUSPICIOUS
    rounded = _with(real, size=np.full(len(real.trades), 300))
    assert _severity(microstructure.lot_sizes, rounded, ctx) is Severity.SUSPICIOUS


def test_poisson_arrivals(real: MarketData, ctx: Context) -> None:
    assert _severity(microstructure.burstiness, real, ctx) is Severity.INFO
    et = Eastern.of(real.trades.ts_ns)
    day_start = real.trades.ts_ns - et.second * NS
    n = len(real.trades)
    rng = np.random.default_rng(2)
    regular = (9 * 3600 + 1800 + rng.integers(0, 23_400, n)) * NS  # uniform: Poisson counts
    poisson = _with(real, ts_ns=np.sort(day_start + regular))
    finding = microstructure.burstiness(poisson, ctx)
    assert finding.severity is Severity.SUSPICIOUS, finding
    assert finding.evidence["median_variance_to_mean"] < 2


def test_no_intraday_u_shape(real: MarketData, ctx: Context) -> None:
    assert _severity(microstructure.intraday_shape, real, ctx) is Severity.INFO
    et = Eastern.of(real.trades.ts_ns)
    day_start = real.trades.ts_ns - et.second * NS
    flat = (9 * 3600 + 1800 + np.linspace(0, 23_399, len(real.trades))).astype(np.int64) * NS
    assert _severity(microstructure.intraday_shape, _with(real, ts_ns=day_start + flat), ctx) is (
        Severity.SUSPICIOUS
    )


def test_independent_trade_signs(real: MarketData, ctx: Context) -> None:
    finding = microstructure.sign_autocorrelation(real, ctx)
    assert finding.severity is Severity.INFO and finding.evidence["median_lag1_acf"] > 0.2
    rng = np.random.default_rng(3)
    coin = _with(real, aggressor=rng.integers(1, 3, len(real.trades)))
    assert _severity(microstructure.sign_autocorrelation, coin, ctx) is Severity.SUSPICIOUS


def test_too_little_data_is_said_not_judged(ctx: Context) -> None:
    ts = np.asarray([dt.datetime(2021, 3, 1, 15, tzinfo=dt.UTC).timestamp() * NS], dtype=np.int64)
    one = Trades.from_rows([{"ts_ns": int(ts[0]), "symbol": "A", "price": 10.0, "size": 100}])
    data = MarketData("one trade", one, Quotes.from_rows([]))
    result = validate(data, ctx)
    assert result.plausible
    assert any("too few" in f.summary for f in result.findings)
