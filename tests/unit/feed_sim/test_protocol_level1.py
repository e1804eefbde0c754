"""Level 1 state and renderers, byte-exact against the lines quoted in iqfeed-protocol.md."""

from __future__ import annotations

from datetime import date, time

import pytest

from feed_sim.protocol.fields import DEFAULT_FIELDSET, Fieldset
from feed_sim.protocol.fundamentals import FundamentalInfo, render_fundamental
from feed_sim.protocol.level1 import Level1State
from feed_sim.protocol.level1_render import (
    render_correction,
    render_error,
    render_news,
    render_not_found,
    render_regional,
    render_summary,
    render_update,
)
from feed_sim.protocol.timefmt import et_wall_ns as et_ns


def atvi_state() -> Level1State:
    state = Level1State("ATVI", close=48.06)
    t0 = et_ns(2017, 3, 8, 9, 30)
    state.apply_trade(t0, 48.12, 1_392_820, 7, "01", "C")
    state.apply_trade(t0 + 10**9, 48.645, 1000, 7, "01", "C")
    state.apply_trade(t0 + 2 * 10**9, 48.00, 1000, 7, "01", "C")
    state.apply_trade(et_ns(2017, 3, 8, 11, 13, 25, 175857), 48.51, 135, 18, "01", "C")
    return state


def test_dtn_java_atvi_q_line() -> None:
    state = atvi_state()
    contents = state.apply_quote(et_ns(2017, 3, 8, 11, 13, 25, 200000), 48.50, 6400, 48.51, 900)
    assert contents == "ba"
    assert render_update(state, DEFAULT_FIELDSET) == (
        b"Q,ATVI,48.5100,135,11:13:25.175857,18,1394955,48.5000,6400,48.5100,900,"
        b"48.1200,48.6450,48.0000,48.0600,ba,01,\r\n"
    )


def test_csharp_aapl_q_fixture_extended_trade_does_not_move_high() -> None:
    state = Level1State("AAPL", close=308.95)
    day = (2020, 2, 14)
    state.apply_trade(et_ns(*day, 9, 30), 312.60, 1_000_000, 5, "01", "C")
    state.apply_trade(et_ns(*day, 10, 0), 318.40, 1_000_000, 5, "01", "C")
    state.apply_trade(et_ns(*day, 11, 0), 312.19, 35_629_413, 5, "01", "C")
    state.apply_trade(et_ns(*day, 16, 53, 23, 256494), 322.75, 40, 11, "873D17", "E")
    state.apply_quote(et_ns(*day, 16, 53, 24), 322.68, 100, 322.87, 100)
    assert render_update(state, DEFAULT_FIELDSET) == (
        b"Q,AAPL,322.7500,40,16:53:23.256494,11,37629453,322.6800,100,322.8700,100,"
        b"312.6000,318.4000,312.1900,308.9500,ba,873D17,\r\n"
    )


def test_csharp_p_fixture_with_empty_open_high_low() -> None:
    state = Level1State("AAPL", close=180.0)
    ts = et_ns(2021, 3, 30, 19, 59, 14, 503633)
    state.apply_trade(ts, 188.35, 52500, 19, "8801", "C", bid=188.25, ask=188.36)
    state.apply_quote(ts, 188.25, 100, 188.36, 100)
    state.reset_session(close=187.97)
    state.message_contents = "Cbacv"
    assert render_summary(state, DEFAULT_FIELDSET) == (
        b"P,AAPL,188.3500,52500,19:59:14.503633,19,0,188.2500,100,188.3600,100,,,,187.9700,"
        b"Cbacv,8801,\r\n"
    )


def test_message_contents_codes_in_documented_order() -> None:
    state = Level1State("X", close=10.0)
    ts = et_ns(2024, 7, 1, 9, 30)
    assert state.apply_trade(ts, 10.0, 100, 5, "01", "C", bid=9.99, ask=10.01) == "Cbaohlv"
    assert state.apply_trade(ts, 10.5, 100, 5, "01", "C") == "Chv"
    assert state.apply_trade(ts, 9.5, 100, 5, "01", "C") == "Clv"
    assert state.apply_trade(ts, 20.0, 10, 19, "17", "E") == "Ev"
    assert state.apply_trade(ts, 20.0, 10, 19, "3E", "O") == "Ov"
    assert state.apply_trade(ts, 20.0, 0, 19, "3E", "O") == "O"
    assert state.apply_quote(ts, 9.99, 100, 10.01, 300) == "ba"  # sizes were unknown
    assert state.apply_quote(ts, 9.99, 100, 10.02, 300) == "a"
    assert state.apply_quote(ts, 9.98, 100, 10.02, 300) == "b"
    assert state.apply_quote(ts, 9.98, 100, 10.02, 300) == ""
    assert state.set_close(9.75) == "c"
    assert state.values[Fieldset(["Close"]).indexes[1]] == "9.7500"


def test_derived_fields_tick_and_tick_id() -> None:
    state = Level1State("X", close=10.0, prev_day_volume=5000, average_volume=1000)
    ts = et_ns(2024, 7, 1, 9, 30)
    fs = Fieldset(
        [
            "Symbol",
            "Last",
            "Change",
            "Percent Change",
            "Tick",
            "Range",
            "VWAP",
            "TickID",
            "Number of Trades Today",
            "Previous Day Volume",
            "Percent Off Average Volume",
            "Most Recent Trade Day Code",
            "Most Recent Trade Date",
            "Exchange ID",
        ]
    )
    state.apply_trade(ts, 10.5, 100, 5, "01", "C", tick_id=41)
    state.apply_trade(ts, 10.0, 300, 5, "01", "C")
    assert render_update(state, fs) == (
        b"Q,X,10.0000,0.0000,0.00,175,0.5000,10.1250,42,2,5000,40.00,1,07/01/2024,5,\r\n"
    )
    state.apply_trade(ts, 10.0, 100, 5, "01", "C")
    assert b",183," in render_update(state, fs)


def test_fieldset_relayout_and_symbol_first() -> None:
    state = atvi_state()
    fs = Fieldset(["Bid", "Last", "Symbol", "Total Volume"])
    assert fs.names == ("Symbol", "Bid", "Last", "Total Volume")
    assert render_update(state, fs) == b"Q,ATVI,,48.5100,1394955,\r\n"
    assert render_update(state, Fieldset(["Symbol"])) == b"Q,ATVI,\r\n"


def test_small_messages() -> None:
    assert render_not_found("ZZZZ") == b"n,ZZZZ\r\n"
    assert render_error("Invalid symbol") == b"E,Invalid symbol,\r\n"


def test_regional_fixture() -> None:
    line = render_regional(
        "AAPL",
        1.23,
        100,
        et_ns(2020, 1, 2, 13, 0, 0),
        1.24,
        200,
        et_ns(2020, 1, 2, 13, 0, 1),
        2,
        precision=1,
        fraction_display_code=0,
        exchange="X",
        price_decimals=2,
    )
    assert line == b"R,AAPL,X,1.23,100,13:00:00,1.24,200,13:00:01,0,1,2,\r\n"


def test_correction_fixture() -> None:
    ts = et_ns(2021, 3, 30, 19, 59, 14, 503633)
    assert render_correction("AAPL", "I", ts, 183.36, 13, 101123, "8801", 17) == (
        b"C,AAPL,I,03/30/2021,19:59:14.503633,183.3600,13,101123,8801,17\r\n"
    )


def test_news_fixture() -> None:
    ts = et_ns(2000, 1, 2, 15, 20, 1)
    assert render_news("1234", "1122", ["AAPL", "NFLX"], ts, "Very cool news") == (
        b"N,1234,1122,AAPL:NFLX,20000102 152001,Very cool news,\r\n"
    )


MSFT = FundamentalInfo(
    symbol="MSFT",
    exchange_id=5,
    pe=65.6,
    average_volume=28624000,
    high_52w=97.95,
    low_52w=67.14,
    calendar_year_high=97.95,
    calendar_year_low=83.83,
    current_year_eps=1.49,
    five_year_growth_pct=0.06,
    fiscal_year_end=6,
    company_name="MICROSOFT",
    root_option_symbols="MSFT",
    percent_held_by_institutions=76.8,
    beta=1.27,
    current_assets=159851.0,
    current_liabilities=64527.0,
    balance_sheet_date=date(2018, 3, 31),
    long_term_debt=76073.0,
    common_shares_outstanding=7683198,
    split_factor_1="0.50 02/18/2003",
    split_factor_2="0.50 03/29/1999",
    format_code="14",
    precision=4,
    sic=7372,
    historical_volatility=24.82,
    security_type=1,
    listed_market=21,
    high_52w_date=date(2018, 5, 10),
    low_52w_date=date(2017, 5, 18),
    calendar_year_high_date=date(2018, 5, 10),
    calendar_year_low_date=date(2018, 2, 9),
    year_end_close=85.54,
    naics=511210,
    session_open_time=time(9, 0),
    session_close_time=time(17, 0),
    base_currency="USD",
    contract_size=125000,
    contract_months="HMUZ",
    minimum_tick_size=0.1,
    first_delivery_date=date(2016, 1, 1),
    figi="TEST",
    security_subtype=1,
)


def test_fundamental_fixture_protocol_61() -> None:
    expected = (
        b"F,MSFT,5,65.6,28624000,97.9500,67.1400,97.9500,83.8300,,,,,,1.49,,0.06,06,MICROSOFT,"
        b"MSFT,76.800,1.27,,159851.0,64527.0,03/31/2018,76073.0,7683198,0.50 02/18/2003,"
        b"0.50 03/29/1999,14,4,7372,24.82,1,21,05/10/2018,05/18/2017,05/10/2018,02/09/2018,"
        b"85.5400,,,,,511210,,,,09:00:00,17:00:00,USD,125000,HMUZ,0.1,01/01/2016,TEST,1,\r\n"
    )
    assert render_fundamental(MSFT, "6.1") == expected
    assert render_fundamental(MSFT, "6.2") == expected


@pytest.mark.parametrize("protocol", ["6.0", "5.2"])
def test_fundamental_fixture_protocol_60_reserved_columns(protocol: str) -> None:
    assert render_fundamental(MSFT, protocol) == (
        b"F,MSFT,5,65.6,28624000,97.9500,67.1400,97.9500,83.8300,,,,,,,,,,,1.49,,0.06,06,,"
        b"MICROSOFT,MSFT,76.800,1.27,,159851.0,64527.0,03/31/2018,76073.0,7683198,,"
        b"0.50 02/18/2003,0.50 03/29/1999,,,14,4,7372,24.82,1,21,05/10/2018,05/18/2017,"
        b"05/10/2018,02/09/2018,85.5400,,,,,511210,,,,\r\n"
    )
