"""Lookup rows (byte-exact), errors with the end message, and history request parsing."""

from __future__ import annotations

import pytest

from feed_sim.protocol.codes import listed_markets, security_types, trade_conditions
from feed_sim.protocol.lookup import (
    NO_DATA,
    SYNTAX_ERROR,
    TOO_MANY_REQUESTS,
    HistoryKind,
    HistoryRequest,
    LookupFailure,
    SymbolSearchRequest,
    TableRequest,
    parse_history_request,
    parse_symbol_request,
    render_daily_row,
    render_end,
    render_error,
    render_interval_row,
    render_listed_market_row,
    render_security_type_row,
    render_symbol_by_code_row,
    render_symbol_row,
    render_tick_row,
    render_trade_condition_row,
    reply_prefix,
)
from feed_sim.protocol.system import Protocol
from feed_sim.protocol.timefmt import et_wall_ns as et_ns

P61, P62, P60 = Protocol.V6_1, Protocol.V6_2, Protocol.V6_0


def split(line: str) -> list[str]:
    """A request line split on commas, as the server hands it to the parsers."""
    return line.split(",")


def test_real_61_tick_row() -> None:
    ts = et_ns(2021, 3, 3, 19, 58, 32, 254017)
    row = render_tick_row("", P61, ts, 1.54, 238, 4813134, 1.51, 1.54, 597, "E", 11, "17", 0, 3)
    assert (
        row == b"2021-03-03 19:58:32.254017,1.5400,238,4813134,1.5100,1.5400,597,E,11,17,0,3,\r\n"
    )


def test_csharp_62_tick_row_plus_trailing_comma() -> None:
    ts = et_ns(2018, 4, 17, 17, 51, 22, 123456)
    prefix = reply_prefix(P62, "", "LH")
    row = render_tick_row(
        prefix, P62, ts, 96.07, 1061909, 0, 0, 0, 4145784264, "O", 19, "143A", 2, 17
    )
    # the C# fixture lacks the trailing comma; real rows carry it
    assert row == (
        b"LH,2018-04-17 17:51:22.123456,96.0700,1061909,0,0.0000,0.0000,4145784264,O,19,143A,2,17,"
        b"\r\n"
    )


def test_60_tick_row_has_no_aggressor_or_day_code() -> None:
    ts = et_ns(2021, 3, 3, 19, 58, 32, 254017)
    row = render_tick_row("", P60, ts, 1.54, 238, 4813134, 1.51, 1.54, 597, "E", 11, "17", 0, 3)
    assert row.endswith(b",597,E,11,17,\r\n")


def test_interval_and_daily_rows_seen() -> None:
    prefix = reply_prefix(P62, "I", "LH")
    row = render_interval_row(
        prefix, et_ns(2023, 6, 28), 4411.5, 4411.25, 4411.25, 4411.5, 42885, 55, 0, precision=2
    )
    assert row == b"I,LH,2023-06-28 00:00:00,4411.50,4411.25,4411.25,4411.50,42885,55,0,\r\n"
    row = render_daily_row(
        reply_prefix(P62, "O", "LH"),
        et_ns(2022, 8, 2),
        4167.25,
        4160.0,
        4167.25,
        4160.0,
        3,
        1103,
        precision=2,
    )
    assert row == b"O,LH,2022-08-02,4167.25,4160.00,4167.25,4160.00,3,1103,\r\n"
    row = render_daily_row(
        reply_prefix(P62, "", "LH"), et_ns(2023, 5, 25), 288.84, 272.85, 287.91, 280.99, 878367, 0
    )
    assert row == b"LH,2023-05-25,288.8400,272.8500,287.9100,280.9900,878367,0,\r\n"
    assert reply_prefix(P61, "X", "LH") == "X,"


def test_end_and_errors() -> None:
    assert render_end() == b"!ENDMSG!,\r\n"
    assert render_end("T") == b"T,!ENDMSG!,\r\n"
    assert render_error(NO_DATA) == b"E,!NO_DATA!,,\r\n!ENDMSG!,\r\n"
    assert render_error(NO_DATA, "BF") == b"BF,E,!NO_DATA!,,\r\nBF,!ENDMSG!,\r\n"
    assert render_error(SYNTAX_ERROR) == b"E,!SYNTAX_ERROR!,\r\n!ENDMSG!,\r\n"
    assert render_error(TOO_MANY_REQUESTS) == (
        b"E,Too many simultaneous history requests,\r\n!ENDMSG!,\r\n"
    )


def test_table_rows() -> None:
    prefix = reply_prefix(P62, "", "LS")
    assert render_listed_market_row(prefix, listed_markets()[26]) == (
        b"LS,26,EDGX,Direct Edge X,26,EDGX,\r\n"
    )
    assert render_trade_condition_row(prefix, trade_conditions()["01"]) == (
        b"LS,1,REGULAR,Normal Trade,\r\n"
    )
    assert render_security_type_row(prefix, security_types()[1]) == b"LS,1,EQUITY,Equity,\r\n"
    assert (
        render_symbol_row(prefix, "TSLA", 21, 1, "TESLA  INC.") == b"LS,TSLA,21,1,TESLA  INC.,\r\n"
    )
    assert render_symbol_row("BF,LS,", "BRSI", 3, 1, "BALLISTIC RECOVERY SYSTEMS, IN") == (
        b"BF,LS,BRSI,3,1,BALLISTIC RECOVERY SYSTEMS, IN,\r\n"
    )


def test_trade_condition_table_ids_are_decimal() -> None:
    """Messages carry hex pairs (`873D17`); the `STC` table lists the same codes in decimal."""
    rows = {
        code: render_trade_condition_row(reply_prefix(P61, "TC", "LS"), trade_conditions()[code])
        for code in ("0A", "3D", "87", "9B")
    }
    assert rows["0A"] == b"TC,10,BUNCHEDSOLD,Bunched Sold Trade,\r\n"
    assert rows["3D"].startswith(b"TC,61,INTRMRK_SWEEP,")
    assert rows["87"].startswith(b"TC,135,ODDLOT,")
    assert rows["9B"].startswith(b"TC,155,INDICATIVE_AUCT,")


def test_symbol_by_code_rows_carry_the_code_first() -> None:
    assert render_symbol_by_code_row(
        reply_prefix(P62, "X", "LS"), 7372, "MSFT", 5, 1, "MICROSOFT CORP"
    ) == (b"X,LS,7372,MSFT,5,1,MICROSOFT CORP,\r\n")
    assert render_symbol_by_code_row("", 511210, "MSFT", 5, 1, "MICROSOFT, CORP") == (
        b"511210,MSFT,5,1,MICROSOFT, CORP,\r\n"
    )


def test_a_date_alone_as_the_end_covers_its_day() -> None:
    daily = parse_history_request(split("HDT,IBM,20240304,20240304"))
    assert isinstance(daily, HistoryRequest)
    assert daily.begin_ns == et_ns(2024, 3, 4)
    assert daily.end_ns == et_ns(2024, 3, 5) - 1
    ticks = parse_history_request(split("HTT,IBM,20240304 093000,20240304"))
    assert isinstance(ticks, HistoryRequest) and ticks.end_ns == et_ns(2024, 3, 5) - 1
    timed = parse_history_request(split("HTT,IBM,20240304 093000,20240304 160000"))
    assert isinstance(timed, HistoryRequest) and timed.end_ns == et_ns(2024, 3, 4, 16)


def test_parse_full_hit_example() -> None:
    fields = split(
        "HIT,APPL,5,20000101 093000,20010101 160000,25000,093000,160000,1,TEST,15000,s,0"
    )
    req = parse_history_request(fields)
    assert isinstance(req, HistoryRequest)
    assert req.kind is HistoryKind.INTERVAL
    assert (req.symbol, req.interval, req.max_datapoints, req.request_id) == (
        "APPL",
        5,
        25000,
        "TEST",
    )
    assert req.begin_ns == et_ns(2000, 1, 1, 9, 30) and req.end_ns == et_ns(2001, 1, 1, 16)
    assert (req.begin_filter_s, req.end_filter_s) == (9 * 3600 + 1800, 16 * 3600)
    assert req.oldest_first and req.datapoints_per_send == 15000 and req.interval_type == "s"
    assert not req.label_at_beginning


def test_parse_trailing_params_omitted() -> None:
    req = parse_history_request(["HDX", "MSTR", "1"])
    assert isinstance(req, HistoryRequest)
    assert req.kind is HistoryKind.DAILY and req.max_datapoints == 1 and not req.oldest_first
    req = parse_history_request(split("HTX,APPL,500,1,TEST,500"))
    assert isinstance(req, HistoryRequest) and req.oldest_first and req.request_id == "TEST"
    req = parse_history_request(split("HDT,SPY,20230101,20230201,,0,R1"))
    assert isinstance(req, HistoryRequest) and req.begin_ns == et_ns(2023, 1, 1)
    assert req.max_datapoints is None and req.request_id == "R1"
    req = parse_history_request(split("HIX,SPY,60,10,0,,,,"))
    assert isinstance(req, HistoryRequest) and req.interval_type == "s"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("HIX,SPY,60,10,0,RID,,S,0", LookupFailure(SYNTAX_ERROR, "RID")),  # uppercase type
        ("HIX,SPY,60,10,0,RID,,x", LookupFailure(SYNTAX_ERROR, "RID")),
        ("HIX,SPY,,10,0,RID", LookupFailure(SYNTAX_ERROR, "RID")),  # interval required
        ("HTX,SPY,10,2,RID", LookupFailure(SYNTAX_ERROR, "RID")),  # direction 0/1
        ("HTX,,10", LookupFailure(SYNTAX_ERROR)),
        ("HTX,SPY,abc", LookupFailure(SYNTAX_ERROR)),
        ("HTT,SPY,2021 0101,20210102 000000", LookupFailure(SYNTAX_ERROR)),
        ("HTT,SPY,20211301 000000,", LookupFailure(SYNTAX_ERROR)),
        ("HTT,SPY,20210101 250000,", LookupFailure(SYNTAX_ERROR)),
        ("HTX,SPY,10,0,RID,5,extra", LookupFailure("Invalid number of parameters.", "RID")),
    ],
)
def test_parse_errors(line: str, expected: LookupFailure) -> None:
    assert parse_history_request(line.split(",")) == expected


def test_parse_symbol_requests() -> None:
    assert parse_symbol_request(["SLM"]) == TableRequest("SLM")
    assert parse_symbol_request(["STC", "TC"]) == TableRequest("STC", "TC")
    req = parse_symbol_request(split("SBF,s,AAPL,t,1,"))
    assert req == SymbolSearchRequest("SBF", "AAPL", "s", "t", ("1",), "")
    assert parse_symbol_request(["SBF", "q", "AAPL"]) == LookupFailure(SYNTAX_ERROR)
    assert parse_symbol_request(["SBS", "7372", "X"]) == SymbolSearchRequest(
        "SBS", "7372", request_id="X"
    )
