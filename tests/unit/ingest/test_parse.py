"""LineParser: real IQFeed line shapes (iqfeed-protocol.md) and feed_sim's renderers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from feed_sim.protocol.fields import Fieldset
from feed_sim.protocol.level1 import Level1State
from feed_sim.protocol.level1_render import render_summary, render_update
from feed_sim.protocol.level2 import render_order, render_order_delete, render_price_level
from feed_sim.protocol.system import render_clear_depth, render_current_update_fieldnames
from feed_sim.protocol.timefmt import et_wall_ns
from ingest.feed.fieldset import DEFAULT_FIELDS, INGEST_FIELDS, select_update_fields_command
from ingest.feed.messages import (
    ClearDepth,
    CurrentProtocol,
    CustomerInfo,
    DepthRow,
    ErrorMessage,
    FieldsetChanged,
    Fundamental,
    Ignored,
    Level1Update,
    Malformed,
    NoDepth,
    SymbolLimitReached,
    SymbolNotFound,
    SystemMessage,
    Timestamp,
)
from ingest.feed.parse import LineParser

ET = ZoneInfo("America/New_York")
RECV = et_wall_ns(2017, 3, 8, 11, 13, 26)


def wire(raw: bytes) -> str:
    """A rendered line as the connection hands it over: decoded, CRLF removed."""
    return raw.decode("latin-1").removesuffix("\r\n")


def ingest_parser() -> LineParser:
    parser = LineParser()
    parser.parse("S,CURRENT UPDATE FIELDNAMES," + ",".join(INGEST_FIELDS), RECV)
    return parser


def test_fieldset_command_uses_exact_dtn_names() -> None:
    command = select_update_fields_command()
    assert command.startswith("S,SELECT UPDATE FIELDS,Symbol,Most Recent Trade,")
    assert command.split(",")[2:] == list(INGEST_FIELDS)
    assert Fieldset(INGEST_FIELDS).names == INGEST_FIELDS  # feed_sim accepts every name
    assert Fieldset(DEFAULT_FIELDS).names == DEFAULT_FIELDS


def test_default_fieldset_real_q_line() -> None:
    line = (
        "Q,ATVI,48.5100,135,11:13:25.175857,18,1394955,48.5000,6400,48.5100,900,"
        "48.1200,48.6450,48.0000,48.0600,ba,01,"
    )
    m = LineParser().parse(line, RECV)
    assert isinstance(m, Level1Update)
    assert (m.symbol, m.trade_price, m.trade_size, m.trade_mc) == ("ATVI", 48.51, 135, 18)
    assert (m.total_volume, m.bid, m.bid_size, m.ask, m.ask_size) == (
        1394955,
        48.50,
        6400,
        48.51,
        900,
    )
    assert (m.contents, m.conditions, m.summary) == ("ba", "01", False)
    assert m.trade_ns == et_wall_ns(2017, 3, 8, 11, 13, 25, 175857)  # on the receive date
    assert m.tick_id is None and m.bid_ns is None and m.bid_mc is None


def test_summary_with_empty_fields() -> None:
    line = (
        "P,AAPL,188.3500,52500,19:59:14.503633,19,0,188.2500,100,188.3600,100,,,,187.9700,"
        "Cbacv,8801,"
    )
    m = LineParser().parse(line, RECV)
    assert isinstance(m, Level1Update) and m.summary
    assert m.total_volume == 0 and m.contents == "Cbacv"


def test_fieldset_belongs_to_the_connection() -> None:
    a, b = LineParser(), LineParser()
    changed = a.parse("S,CURRENT UPDATE FIELDNAMES,Symbol,Bid,Ask,TickID,Message Contents")
    assert changed == FieldsetChanged(("Symbol", "Bid", "Ask", "TickID", "Message Contents"))
    m = a.parse("Q,MSFT,410.1000,410.1200,77,ba,", RECV)
    assert isinstance(m, Level1Update)
    assert (m.bid, m.ask, m.tick_id, m.contents, m.trade_price) == (410.10, 410.12, 77, "ba", None)
    assert b.fields == DEFAULT_FIELDS
    assert isinstance(b.parse("Q,MSFT,410.1000,410.1200,77,ba,", RECV), Malformed)
    a.reset()
    assert a.fields == DEFAULT_FIELDS


def test_unknown_field_names_keep_their_position() -> None:
    parser = LineParser()
    parser.parse("S,CURRENT UPDATE FIELDNAMES,Symbol,Open,Bid,7 Day Yield,Ask", RECV)
    m = parser.parse("Q,X,1.0,2.0,,3.0,", RECV)
    assert isinstance(m, Level1Update) and (m.bid, m.ask) == (2.0, 3.0)


@pytest.mark.parametrize(
    "line",
    [
        "S,CURRENT UPDATE FIELDNAMES,Bid,Ask",
        "S,CURRENT UPDATE FIELDNAMES,",
        "S,CURRENT UPDATE FIELDNAMES,Symbol,,Bid",
    ],
)
def test_bad_fieldset_keeps_the_old_layout(line: str) -> None:
    parser = LineParser()
    assert parser.parse(line) == Malformed("bad_fieldset", parser.parse(line).detail)  # type: ignore[union-attr]
    assert parser.fields == DEFAULT_FIELDS


def test_feed_sim_render_roundtrip_across_dst() -> None:
    """parse(render(state)) recovers the values; trade time = apply_trade's ts to the us."""
    parser = ingest_parser()
    fieldset = Fieldset(INGEST_FIELDS)
    for day in ((2025, 3, 7), (2025, 3, 10), (2025, 11, 3), (2025, 7, 1)):  # EST and EDT
        state = Level1State("AAPL", close=225.0)
        quote_ns = et_wall_ns(*day, 9, 31, 2, 123456)
        state.apply_quote(quote_ns, 225.10, 300, 225.14, 500, 11, 19)
        m = parser.parse(wire(render_update(state, fieldset)), quote_ns + 700_000)
        assert isinstance(m, Level1Update)
        assert (m.bid, m.bid_size, m.ask, m.ask_size, m.bid_mc, m.ask_mc) == (
            225.10,
            300,
            225.14,
            500,
            11,
            19,
        )
        assert m.bid_ns == m.ask_ns == quote_ns and m.contents == "ba"
        trade_ns = et_wall_ns(*day, 15, 59, 59, 999999) + 999  # sub-us part is not on the wire
        state.apply_trade(trade_ns, 225.12, 37, 19, "873D17", "C", bid=225.11)
        m = parser.parse(wire(render_update(state, fieldset)), trade_ns + 5_000_000)
        assert isinstance(m, Level1Update)
        assert m.trade_ns == trade_ns - 999
        assert (m.trade_price, m.trade_size, m.trade_mc, m.conditions) == (225.12, 37, 19, "873D17")
        assert m.total_volume == 37 and m.bid == 225.11 and m.bid_ns == trade_ns - 999
        assert m.ask_ns == quote_ns and m.contents.startswith("Cb")
        assert m.tick_id == 2
        p = parser.parse(wire(render_summary(state, fieldset)), trade_ns)
        assert isinstance(p, Level1Update) and p.summary and p.tick_id == 2


def test_feed_sim_fieldnames_reply_switches_layout() -> None:
    parser = LineParser()
    reply = wire(render_current_update_fieldnames(INGEST_FIELDS))
    assert parser.parse(reply) == FieldsetChanged(INGEST_FIELDS)
    assert parser.fields == INGEST_FIELDS


def test_level2_real_lines() -> None:
    parser = LineParser()
    summary = parser.parse("6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-04-01,", RECV)
    assert summary == DepthRow(
        "summary",
        "mmid",
        "QQQ",
        "A",
        "AMEX",
        0,
        408.84,
        100,
        1,
        None,
        et_wall_ns(2022, 4, 1, 17, 52, 38, 59128),
    )
    update = parser.parse("4,SPY,,NSDQ,B,451.4400,300,,4,11:33:27.030724,2022-04-01,", RECV)
    assert isinstance(update, DepthRow) and update.action == "update" and update.size == 300
    delete = parser.parse("5,TSLA,,CHXE,B,,2022-04-01,", RECV)
    assert delete == DepthRow("delete", "mmid", "TSLA", "B", "CHXE", 0, None, 0, 0, None, 0)
    mbo = parser.parse("5,@ESZ21,648907593934,,A,20:32:47.333543,2021-10-24,", RECV)
    assert isinstance(mbo, DepthRow)
    assert (mbo.level_kind, mbo.order_id, mbo.mmid) == ("order", 648907593934, "")
    assert mbo.time_ns == et_wall_ns(2021, 10, 24, 20, 32, 47, 333543)
    add = parser.parse("3,@ESZ21,649948133402,,B,4411.50,2,12440218202,2,20:32:47.1,2021-10-24,")
    assert isinstance(add, DepthRow)
    assert (add.action, add.level_kind, add.priority, add.price) == (
        "add",
        "order",
        12440218202,
        4411.5,
    )


def test_price_levels_have_their_own_columns() -> None:
    parser = LineParser()
    level = parser.parse("7,@ESM22,B,4101.25,37,12,2,09:30:00.000100,2022-04-01,", RECV)
    assert level == DepthRow(
        "summary",
        "price",
        "@ESM22",
        "B",
        "",
        0,
        4101.25,
        37,
        12,
        None,
        et_wall_ns(2022, 4, 1, 9, 30, 0, 100),
    )
    update = parser.parse("8,@ESM22,A,4101.5,9,3,2,09:30:00.000200,2022-04-01,", RECV)
    assert isinstance(update, DepthRow) and (update.action, update.order_count) == ("update", 3)
    gone = parser.parse("9,@ESM22,A,4101.5,09:30:00.000300,2022-04-01,", RECV)
    assert isinstance(gone, DepthRow) and (gone.action, gone.size, gone.price) == (
        "delete",
        0,
        4101.5,
    )


def test_feed_sim_level2_renderers() -> None:
    parser = LineParser()
    ts = et_wall_ns(2025, 11, 3, 10, 0, 0, 5)  # first Monday after the switch to EST
    row = parser.parse(wire(render_order("4", "AAPL", None, "NSDQ", "B", 225.1, 300, None, 4, ts)))
    assert isinstance(row, DepthRow) and row.time_ns == ts and row.mmid == "NSDQ"
    gone = parser.parse(wire(render_order_delete("AAPL", None, "NSDQ", "B", None, ts)))
    assert isinstance(gone, DepthRow) and gone.time_ns == 0
    level = parser.parse(wire(render_price_level("8", "AAPL", "A", 225.2, 900, 3, 4, ts)))
    assert isinstance(level, DepthRow) and (level.price, level.size, level.time_ns) == (
        225.2,
        900,
        ts,
    )
    assert parser.parse(wire(render_clear_depth("AAPL", "A"))) == ClearDepth("AAPL", "A")


def test_side_codes_are_a_and_b_only() -> None:
    parser = LineParser()
    bad = parser.parse("4,SPY,,NSDQ,S,451.4400,300,,4,11:33:27.030724,2022-04-01,", RECV)
    assert isinstance(bad, Malformed) and bad.reason == "bad_side"
    assert parser.parse("S,CLEAR DEPTH,SPY,X,") == Malformed("bad_side", "X")


def test_system_messages() -> None:
    parser = LineParser()
    assert parser.parse("S,SYMBOL LIMIT REACHED,AAPL") == SymbolLimitReached("AAPL")
    assert parser.parse("S,CLEAR DEPTH,@ESZ22,B,") == ClearDepth("@ESZ22", "B")
    assert parser.parse("S,CURRENT PROTOCOL,6.2") == CurrentProtocol("6.2")
    cust = parser.parse(
        "S,CUST,real_time,66.112.156.224,60002,73QEupj,4.7.2.0,0,INDEX DTNNEWS AMEX NASDAQ NYSE"
        ",,500,QT_API,,"
    )
    assert cust == CustomerInfo("real_time", 500, "4.7.2.0")
    for kind in ("SERVER CONNECTED", "SERVER DISCONNECTED", "SERVER RECONNECT FAILED"):
        assert parser.parse(f"S,{kind}") == SystemMessage(kind)
    assert parser.parse("S,KEY,99999") == SystemMessage("KEY", ("99999",))
    stats = parser.parse(
        'S,STATS,66.112.148.225,60004,500,3,1,0,0,0,,,Connected,6.2.0.25,"490914",0,0.0,'
    )
    assert isinstance(stats, SystemMessage) and stats.kind == "STATS"
    watches = parser.parse("S,WATCHES,AAPL,MSFT,")
    assert watches == SystemMessage("WATCHES", ("AAPL", "MSFT"))
    assert parser.parse("S,SOMETHING NEW,1") == SystemMessage("OTHER", ("SOMETHING NEW",))


def test_other_message_types() -> None:
    parser = LineParser()
    assert parser.parse("T,20230530 05:58:26") == Timestamp(et_wall_ns(2023, 5, 30, 5, 58, 26))
    assert parser.parse("n,ZZZZ") == SymbolNotFound("ZZZZ")
    assert parser.parse("q,ZZZZ") == NoDepth("ZZZZ")
    assert parser.parse("E,!SYNTAX_ERROR!,") == ErrorMessage("!SYNTAX_ERROR!")
    assert parser.parse("E,6.2 is not a valid protocol.,") == ErrorMessage(
        "6.2 is not a valid protocol."
    )
    fundamental = parser.parse("F,MSFT,5,65.6,28624000,97.9500,67.1400,97.9500,83.8300,,,,,,1.49,")
    assert fundamental == Fundamental("MSFT")
    assert parser.parse("R,AAPL,X,1.23,100,13:00:00,1.24,200,13:00:01,0,1,2,") == Ignored("R")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty"),
        ("X" * 20_000, "too_long"),
        (
            "Q,AT\x00VI,48.5100,135,11:13:25.175857,18,1394955,48.5,6400,48.51,900,,,,,ba,01,",
            "binary",
        ),
        ("S,SERVER\x07CONNECTED", "binary"),
        ("Q,ATVÎ,48.51", "binary"),
        ("Z9,foo", "unknown_type"),
        ("Q,ATVI,48.5100,135", "bad_field_count"),
        ("6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128", "bad_field_count"),
        (
            "Q,ATVI,4x.5100,135,11:13:25.175857,18,1394955,48.5,6400,48.51,900,,,,,ba,01,",
            "bad_number",
        ),
        ("Q,ATVI,nan,135,11:13:25.175857,18,1394955,48.5,6400,48.51,900,,,,,ba,01,", "bad_number"),
        ("Q,ATVI,48.51,-5,11:13:25.175857,18,1394955,48.5,6400,48.51,900,,,,,ba,01,", "bad_number"),
        ("Q,ATVI,48.51,5,11:73:25.175857,18,1394955,48.5,6400,48.51,900,,,,,ba,01,", "bad_time"),
        ("Q,,48.51,5,11:13:25.175857,18,1394955,48.5,6400,48.51,900,,,,,ba,01,", "bad_symbol"),
        ("6,QQQ,,,A,408.8400,100,,4,17:52:38.059128,2022-04-01,", "bad_key"),
        ("6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-13-01,", "bad_time"),
        ("5,TSLA,,CHXE,B,,2022-04-41,", "bad_time"),
        ("T,2023-05-30 05:58:26", "bad_time"),
        ("n,", "bad_symbol"),
    ],
)
def test_malformed_reasons(line: str, reason: str) -> None:
    message = LineParser().parse(line, RECV)
    assert isinstance(message, Malformed), message
    assert message.reason == reason


def test_trailing_carriage_return_is_tolerated() -> None:
    parser = LineParser()
    assert parser.parse("S,SERVER CONNECTED\r") == SystemMessage("SERVER CONNECTED")
    line = "Q,ATVI,48.5100,135,11:13:25.175857,18,1394955,48.5,6400,48.51,900,,,,,ba,01,\r"
    assert isinstance(parser.parse(line, RECV), Level1Update)


def test_injected_clock_places_dateless_times() -> None:
    clock = et_wall_ns(2024, 1, 2, 0, 0, 1)
    parser = LineParser(clock_ns=lambda: clock)
    m = parser.parse("Q,X,1.0,1,23:59:59.500000,5,1,,,,,,,,,C,01,")
    assert isinstance(m, Level1Update)
    expected = datetime(2024, 1, 1, 23, 59, 59, 500000, tzinfo=ET)
    assert m.trade_ns == int(expected.timestamp()) * 10**9 + 500_000_000
