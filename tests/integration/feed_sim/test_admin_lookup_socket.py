"""Admin (9300) and lookup (9100) ports over real sockets: S,STATS, registration and login
settings, CLIENTSTATS; history tick/interval/daily rows, symbol and table lookups, errors
followed by !ENDMSG! (iqfeed-protocol.md §4, gotchas 5-7, 21, 23, 25)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.feed_sim_server import RunningServer

from .conftest import LineClient, fields_of

pytestmark = pytest.mark.integration

Connect = Callable[..., LineClient]
TICK_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
BAR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---- admin ------------------------------------------------------------------------------------


def test_admin_sends_nothing_but_stats_once_per_second(
    feed: RunningServer, connect: Connect
) -> None:
    admin = connect(feed.port("admin"))
    lines = admin.collect(3.5)
    assert 2 <= len(lines) <= 5
    for line in lines:
        stats = fields_of(line)
        assert stats[:2] == ["S", "STATS"]
        assert len(stats) - 2 == 19
        assert stats[2 + 12] == '"490914"'  # login id quoted (gotcha 21)
        assert stats[2 + 10] == "Connected"
        assert stats[2 + 2] == "500"


def test_admin_replies(feed: RunningServer, connect: Connect) -> None:
    admin = connect(feed.port("admin"))

    def reply(command: str) -> bytes:
        admin.send(command)
        while True:
            raw = admin.raw_line()
            assert raw is not None
            if not raw.startswith(b"S,STATS,"):
                return raw

    assert reply("S,REGISTER CLIENT APP,TESTAPP,1.0") == b"S,REGISTER CLIENT APP COMPLETED\r\n"
    assert reply("S,REMOVE CLIENT APP,TESTAPP,1.0") == b"S,REMOVE CLIENT APP COMPLETED\r\n"
    assert reply("S,SET LOGINID,123456") == b"S,CURRENT LOGINID,123456\r\n"
    assert reply("S,SET PASSWORD,secret") == b"S,CURRENT PASSWORD,secret\r\n"
    assert reply("S,SET SAVE LOGIN INFO,On") == b"S,LOGIN INFO SAVED\r\n"
    assert reply("S,SET SAVE LOGIN INFO,Off") == b"S,LOGIN INFO NOT SAVED\r\n"
    assert reply("S,SET AUTOCONNECT,On") == b"S,AUTOCONNECT ON\r\n"
    assert reply("S,SET AUTOCONNECT,Off") == b"S,AUTOCONNECT OFF\r\n"
    assert reply("S,SET PROTOCOL,6.2") == b"S,CURRENT PROTOCOL,6.2\r\n"
    assert reply("S,BOGUS") == b"E,!SYNTAX_ERROR!,\r\n"
    stats, _ = admin.until(lambda s: s.startswith("S,STATS,"))
    assert fields_of(stats)[2 + 12] == '"123456"'  # the new login id shows up


def test_clientstats_one_row_per_client_per_second(feed: RunningServer, connect: Connect) -> None:
    admin = connect(feed.port("admin"))
    level1 = connect(feed.port("level1"))
    level1.send("S,SET CLIENT NAME,quotes")
    level1.send("wAAPL")
    level1.until(lambda s: s.startswith("P,"))
    lookup = connect(feed.port("lookup"))
    lookup.send("S,SET PROTOCOL,6.2")
    assert lookup.expect() == "S,CURRENT PROTOCOL,6.2"
    admin.send("S,CLIENTSTATS ON")
    admin.until(lambda s: s.startswith("S,CLIENTSTATS,"), timeout=3)
    lines = admin.collect(3.2)
    groups: list[list[list[str]]] = []
    for line in lines:
        if line.startswith("S,STATS,"):
            groups.append([])
        elif groups:
            groups[-1].append(fields_of(line))
    complete = groups[:-1]  # the last group may be cut off by the end of the read
    assert complete
    for group in complete:
        assert len(group) == 3  # admin, level 1, lookup
        assert all(row[:2] == ["S", "CLIENTSTATS"] for row in group)
        by_type = {row[2]: row for row in group}
        assert set(by_type) == {"0", "1", "3"}
        assert by_type["1"][4] == "quotes"
        assert by_type["1"][6] == "1"  # one watched symbol
        assert re.fullmatch(r"\d{8} \d{6}", by_type["1"][5])
    admin.send("S,CLIENTSTATS OFF")
    admin.until(lambda s: s.startswith("S,STATS,"))
    admin.until(lambda s: s.startswith("S,STATS,"))
    assert not [s for s in admin.collect(1.5) if s.startswith("S,CLIENTSTATS")]


# ---- lookup -----------------------------------------------------------------------------------


def _lookup(feed: RunningServer, connect: Connect, protocol: str = "6.2") -> LineClient:
    client = connect(feed.port("lookup"))
    client.send(f"S,SET PROTOCOL,{protocol}")
    assert client.raw_line() == f"S,CURRENT PROTOCOL,{protocol}\r\n".encode()
    return client


def _reply(client: LineClient, command: str, request_id: str = "") -> list[str]:
    """The rows of one lookup reply (up to and excluding its !ENDMSG! line)."""
    client.send(command)
    end = f"{request_id},!ENDMSG!," if request_id else "!ENDMSG!,"
    _, rows = client.until(lambda s: s == end, skip_timestamps=False)
    return rows


def test_lookup_port_sends_nothing_unsolicited(feed: RunningServer, connect: Connect) -> None:
    client = connect(feed.port("lookup"))
    assert client.collect(1.5) == []
    client.send("S,SET PROTOCOL,6.2")
    assert client.raw_line() == b"S,CURRENT PROTOCOL,6.2\r\n"


def test_tick_history(feed: RunningServer, connect: Connect) -> None:
    client = _lookup(feed, connect)
    rows = _reply(client, "HTX,AAPL,25,1")
    assert len(rows) == 25
    times = []
    for row in rows:
        f = fields_of(row)
        assert f[0] == "LH"
        assert TICK_TIME.match(f[1])
        assert len(f) == 13  # tag + time + 11 data fields (6.1+ layout)
        assert float(f[2]) > 0 and int(f[3]) > 0
        assert f[8] in ("C", "E", "O")
        assert re.fullmatch(r"(?:[0-9A-F]{2})+", f[10])
        times.append(f[1])
    assert times == sorted(times)  # oldest first
    newest_first = _reply(client, "HTX,AAPL,25,0,REQ7", "REQ7")
    assert [fields_of(r)[:2] for r in newest_first] == [["REQ7", "LH"]] * 25
    assert [fields_of(r)[2] for r in newest_first] == times[::-1]


def test_tick_history_days_and_range(feed: RunningServer, connect: Connect) -> None:
    client = _lookup(feed, connect)
    rows = _reply(client, "HTD,AAPL,1,10,,,1,D1", "D1")
    assert len(rows) == 10
    assert all(fields_of(r)[:2] == ["D1", "LH"] for r in rows)
    ranged = _reply(client, "HTT,AAPL,20240304 093001,20240304 093002,,,,1,T1", "T1")
    assert ranged
    for row in ranged:
        stamp = fields_of(row)[2]
        assert "2024-03-04 09:30:01" <= stamp <= "2024-03-04 09:30:02.000000"


def test_protocol_61_rows_have_no_tag(feed: RunningServer, connect: Connect) -> None:
    client = _lookup(feed, connect, "6.1")
    rows = _reply(client, "HTX,MSFT,5,1,R61", "R61")
    assert len(rows) == 5
    for row in rows:
        f = fields_of(row)
        assert f[0] == "R61" and TICK_TIME.match(f[1]), row
        assert len(f) == 13
    untagged = _reply(client, "SBF,s,MSFT,,,S61", "S61")
    assert fields_of(untagged[0])[:2] == ["S61", "MSFT"]
    old = _lookup(feed, connect, "6.0")
    rows_60 = _reply(old, "HTX,MSFT,5,1")
    assert all(len(fields_of(r)) == 10 for r in rows_60)  # no aggressor / day code before 6.1


def test_interval_bars(feed: RunningServer, connect: Connect) -> None:
    client = _lookup(feed, connect)
    for command in ("HIX,AAPL,1,5,1,B1,,s", "HID,AAPL,1,1,5,,,1,B1,,s,0"):
        rows = _reply(client, command, "B1")
        assert len(rows) == 5
        for row in rows:
            f = fields_of(row)
            assert f[:2] == ["B1", "LH"]
            assert BAR_TIME.match(f[2])
            high, low, open_, close = (float(x) for x in f[3:7])
            assert high >= max(open_, close) >= min(open_, close) >= low
            assert int(f[7]) >= int(f[8]) > 0  # total volume >= period volume
            assert f[9] == "0"
    ticks = _reply(client, "HIT,AAPL,10,20240304 093000,20240304 093010,,,,1,B2,,t", "B2")
    assert ticks
    assert all(fields_of(r)[9] == "10" for r in ticks[:-1])  # trades per tick bar


def test_daily_bars(feed: RunningServer, connect: Connect) -> None:
    client = _lookup(feed, connect)
    rows = _reply(client, "HDX,IBM,10")
    assert len(rows) == 1  # the tape holds one session
    f = fields_of(rows[0])
    assert f[0] == "LH" and f[1] == "2024-03-04"
    high, low, open_, close = (float(x) for x in f[2:6])
    assert high >= max(open_, close) >= min(open_, close) >= low
    assert len(f) == 8


def test_symbol_and_table_lookups(feed: RunningServer, connect: Connect) -> None:
    client = _lookup(feed, connect)
    rows = _reply(client, "SBF,s,AAPL,,,S1", "S1")
    assert rows == ["S1,LS,AAPL,5,1,APPLE INC,"]
    described = _reply(client, "SBF,d,MICROSOFT,,,S2", "S2")
    assert [fields_of(r)[2] for r in described] == ["MSFT"]
    markets = _reply(client, "SLM")
    assert len(markets) > 100
    nasdaq = next(fields_of(r) for r in markets if fields_of(r)[1] == "5")
    assert nasdaq[0] == "LS" and nasdaq[2] == "NASDAQ"
    conditions = _reply(client, "STC,C1", "C1")
    by_id = {fields_of(r)[2]: fields_of(r) for r in conditions}  # decimal: 0x87 is 135
    assert by_id["135"][3] == "ODDLOT" and by_id["1"][3] == "REGULAR"
    assert by_id["10"][3] == "BUNCHEDSOLD"
    assert all(fields_of(r)[1] == "LS" for r in conditions)


def test_lookup_errors_are_followed_by_endmsg(feed: RunningServer, connect: Connect) -> None:
    client = _lookup(feed, connect)
    assert _reply(client, "HTX,BOGUS,10,1,X1", "X1")[0].startswith("X1,E,")
    assert _reply(client, "HTT,AAPL,20200101 000000,20200102 000000,,,,1,X2", "X2") == [
        "X2,E,!NO_DATA!,,"
    ]
    assert _reply(client, "HTT,AAPL,20200101 000000,20200102 000000") == ["E,!NO_DATA!,,"]
    assert _reply(client, "HIX,AAPL,60,10,1,X3,,S", "X3") == ["X3,E,!SYNTAX_ERROR!,"]
    assert _reply(client, "SBF,s,NOSUCHTHING,,,X4", "X4") == ["X4,E,!NO_DATA!,,"]
    client.send("XYZ,1,2")
    assert client.raw_line() == b"E,!SYNTAX_ERROR!,\r\n"
    assert client.raw_line() == b"!ENDMSG!,\r\n"
    client.send("S,TEST")
    assert client.raw_line() == b"E,!SYNTAX_ERROR!,\r\n"
    assert client.raw_line() == b"!ENDMSG!,\r\n"
    assert len(_reply(client, "HTX,AAPL,3,1")) == 3  # still usable
