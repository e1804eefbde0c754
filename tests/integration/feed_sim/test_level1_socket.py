"""Level 1 port (5009) over real sockets: handshake, protocol versions, timestamps, watches,
F/P/Q layouts, dynamic fieldsets, system replies and lenient command framing
(iqfeed-protocol.md §1-2, gotchas 1, 8, 10, 19, 26, 28)."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from feed_sim.protocol.fields import (
    DEFAULT_FIELDSET_NAMES,
    UPDATE_FIELD_NAMES,
    fundamental_field_names,
)
from feed_sim.protocol.timefmt import parse_et_time_of_day
from feed_sim.server.engine import RateSettings
from tests.feed_sim_server import RunningServer, serve

from .conftest import NAMES, T_LINE, Layout, LineClient, fields_of

pytestmark = pytest.mark.integration

Connect = Callable[..., LineClient]
DEFAULT = Layout(DEFAULT_FIELDSET_NAMES)
TIMED = (
    "Symbol",
    "TickID",
    "Message Contents",
    "Most Recent Trade",
    "Most Recent Trade Size",
    "Most Recent Trade Time",
    "Most Recent Trade Market Center",
    "Most Recent Trade Conditions",
    "Bid",
    "Bid Time",
    "Ask",
    "Ask Time",
)
TRADE_CODES = set("CEO")


def _level1(feed: RunningServer, connect: Connect, protocol: str = "6.2") -> LineClient:
    client = connect(feed.port("level1"))
    client.handshake(protocol)
    return client


def _select(client: LineClient, names: tuple[str, ...]) -> Layout:
    client.send("S,SELECT UPDATE FIELDS," + ",".join(names[1:]))
    reply = client.expect()
    assert reply == "S,CURRENT UPDATE FIELDNAMES," + ",".join(names)
    return Layout(names)


def _q_lines(lines: list[str], symbol: str | None = None) -> list[str]:
    return [
        line
        for line in lines
        if line.startswith("Q,") and (symbol is None or line.split(",")[1] == symbol)
    ]


# ---- handshake and protocol -------------------------------------------------------------------


def test_handshake_order_and_exact_lines(small_tape: Path, connect: Connect) -> None:
    with serve([small_tape], symbol_limit=321) as feed:
        client = connect(feed.port("level1"))
        assert client.raw_line() == b"S,KEY,99999\r\n"
        assert client.raw_line() == b"S,SERVER CONNECTED\r\n"
        ip = client.expect()
        assert ip.startswith("S,IP,")
        assert len(ip.split(",")[2].split(" ")) == 2  # "a.b.c.d port"
        cust = client.expect().split(",")
        assert cust[:3] == ["S", "CUST", "real_time"]
        assert cust[2 + 8] == "321"  # max symbols at field index 8 after the prefix
        assert cust[-1] == ""  # trailing comma
        client.send("S,SET PROTOCOL,6.2")
        assert client.raw_line() == b"S,CURRENT PROTOCOL,6.2\r\n"
        assert client.expect() == "S,CURRENT UPDATE FIELDNAMES," + ",".join(DEFAULT_FIELDSET_NAMES)


def test_unsupported_protocol_is_refused(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("S,SET PROTOCOL,7.0")
    assert client.expect() == "E,7.0 is not a valid protocol.,"
    client.send("S,REQUEST CURRENT UPDATE FIELDNAMES")  # the connection keeps working
    assert client.expect().startswith("S,CURRENT UPDATE FIELDNAMES,Symbol,")


@pytest.mark.parametrize("protocol", ["5.0", "5.1", "5.2", "6.0", "6.1", "6.2"])
def test_older_protocols_are_accepted(feed: RunningServer, connect: Connect, protocol: str) -> None:
    client = connect(feed.port("level1"))
    client.handshake(protocol)


# ---- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["level1", "level2"])
def test_timestamps_once_per_second_and_off(
    feed: RunningServer, connect: Connect, port: str
) -> None:
    client = connect(feed.port(port))
    stamps = [s for s in client.collect(3.5) if s.startswith("T,")]
    assert 2 <= len(stamps) <= 5
    assert all(T_LINE.match(s) for s in stamps)
    seconds = [int(s[-2:]) + 60 * int(s[-5:-3]) for s in stamps]
    assert all((b - a) % 3600 == 1 for a, b in itertools.pairwise(seconds))

    client.send("S,TIMESTAMPSOFF")
    client.sync()
    assert not [s for s in client.collect(2.5) if s.startswith("T,")]
    client.send("T")
    stamp = client.expect(skip_timestamps=False)
    assert T_LINE.match(stamp)
    assert not [s for s in client.collect(1.5) if s.startswith("T,")]
    client.send("S,TIMESTAMPSON")
    assert client.expect(timeout=3, skip_timestamps=False).startswith("T,")


# ---- watches and the F / P / Q lines ----------------------------------------------------------


def test_watch_sends_fundamental_summary_then_updates(
    feed: RunningServer, connect: Connect
) -> None:
    client = _level1(feed, connect)
    client.send("wAAPL")
    fundamental = fields_of(client.expect())
    assert fundamental[0] == "F"
    assert len(fundamental) - 1 == 57
    assert fundamental[1] == "AAPL"
    assert fundamental[18] == NAMES["AAPL"].upper()  # Company Name is field 18 in 6.1/6.2
    summary = client.expect()
    assert summary.startswith("P,AAPL,")
    DEFAULT.parse(summary)
    updates = _q_lines(client.collect(1.5), "AAPL")
    assert len(updates) >= 10
    for line in updates:
        q = DEFAULT.parse(line)
        assert q["Symbol"] == "AAPL"
        assert float(q["Bid"]) < float(q["Ask"])
        assert sum(code in TRADE_CODES for code in q["Message Contents"]) <= 1


def test_protocol_60_fundamental_layout(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect, "6.0")
    client.send("wMSFT")
    fundamental = fields_of(client.expect())
    names_60 = fundamental_field_names("6.0")
    assert len(fundamental) - 1 == len(names_60) == 57
    assert names_60 != fundamental_field_names("6.2")
    company = names_60.index("Company Name") + 1
    assert company != 18
    assert fundamental[company] == NAMES["MSFT"].upper()
    assert fundamental[18] != NAMES["MSFT"].upper()


def test_trades_only_watch_gets_only_trades(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("tMSFT")
    assert client.expect().startswith("F,MSFT,")
    assert client.expect().startswith("P,MSFT,")
    updates = _q_lines(client.collect(2.0))
    assert len(updates) >= 5
    for line in updates:
        contents = DEFAULT.parse(line)["Message Contents"]
        assert contents[:1] in TRADE_CODES, line


def test_unknown_symbol(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("wBOGUS")
    assert client.raw_line() == b"n,BOGUS\r\n"


def test_refresh_and_unwatch(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("fAAPL")  # not watched: ignored
    client.send("wIBM")
    assert client.expect().startswith("F,IBM,")
    assert client.expect().startswith("P,IBM,")
    client.send("fIBM")
    _, before = client.until(lambda s: s.startswith("F,"))
    assert not [s for s in before if not s.startswith("Q,IBM,")]
    assert client.expect().startswith("P,IBM,")
    client.send("rIBM")
    client.sync()
    assert not _q_lines(client.collect(1.0))


def test_select_update_fields_relayouts_immediately(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("wAAPL")
    client.until(lambda s: s.startswith("Q,"))
    names = ("Symbol", "Bid", "Ask", "TickID", "Message Contents")
    client.send("S,SELECT UPDATE FIELDS,Bid,Ask,TickID,Message Contents")
    _, before = client.until(lambda s: s.startswith("S,CURRENT UPDATE FIELDNAMES,"))
    assert all(len(fields_of(s)) - 1 == len(DEFAULT_FIELDSET_NAMES) for s in _q_lines(before))
    updates = _q_lines(client.collect(1.0))
    assert updates
    for line in updates:
        Layout(names).parse(line)
    # Symbol is always first, even when listed elsewhere or omitted.
    client.send("S,SELECT UPDATE FIELDS,Ask,Symbol,Bid")
    _, _ = client.until(lambda s: s == "S,CURRENT UPDATE FIELDNAMES,Symbol,Ask,Bid")
    client.send("S,SELECT UPDATE FIELDS,Bid,No Such Field")
    error, _ = client.until(lambda s: s.startswith("E,"))
    assert error.endswith(",")


@pytest.mark.parametrize(("protocol", "count"), [("6.2", 70), ("6.1", 70), ("6.0", 68)])
def test_all_update_fieldnames(
    feed: RunningServer, connect: Connect, protocol: str, count: int
) -> None:
    client = _level1(feed, connect, protocol)
    client.send("S,REQUEST ALL UPDATE FIELDNAMES")
    reply = client.expect()
    assert reply.startswith("S,UPDATE FIELDNAMES,")
    names = reply.split(",")[2:]
    assert len(names) == count
    assert names == list(UPDATE_FIELD_NAMES[:count])


def test_fundamental_fieldnames(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("S,REQUEST FUNDAMENTAL FIELDNAMES")
    reply = client.expect()
    assert reply.split(",")[:2] == ["S", "FUNDAMENTAL FIELDNAMES"]
    assert tuple(reply.split(",")[2:]) == fundamental_field_names("6.2")


def test_request_watches_and_unwatch_all(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("S,SELECT UPDATE FIELDS,TickID")
    client.expect()
    client.send("wAAPL")
    client.send("tMSFT")
    client.send("S,REQUEST WATCHES")
    reply, _ = client.until(lambda s: s.startswith("S,WATCHES,"))
    assert sorted(fields_of(reply)[2:]) == ["AAPL", "MSFT"]
    assert _q_lines(client.collect(1.0))
    client.send("S,UNWATCH ALL")
    client.sync()
    assert not _q_lines(client.collect(1.5))
    client.send("S,REQUEST WATCHES")
    reply, _ = client.until(lambda s: s.startswith("S,WATCHES"))
    assert fields_of(reply)[2:] == []


def test_regional_quote(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("S,REGON,AAPL")
    regional, _ = client.until(lambda s: s.startswith("R,"))
    r = fields_of(regional)
    assert r[1] == "AAPL"
    assert len(r) - 1 == 11
    assert float(r[3]) < float(r[6])  # regional bid < ask
    client.send("S,REGON,BOGUS")
    client.until(lambda s: s == "n,BOGUS")


def test_request_stats_on_level1(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("S,REQUEST STATS")
    stats, _ = client.until(lambda s: s.startswith("S,STATS,"))
    assert fields_of(stats)[2 + 12] == '"490914"'


def test_symbol_limit_reached(small_tape: Path, connect: Connect) -> None:
    with serve([small_tape], symbol_limit=2) as feed:
        client = _level1(feed, connect)
        client.send("wAAPL")
        client.send("wMSFT")
        client.send("wIBM")
        line, _ = client.until(lambda s: s.startswith("S,SYMBOL LIMIT REACHED"))
        assert line.split(",")[2] == "IBM"
        assert line == "S,SYMBOL LIMIT REACHED,IBM"
        other = _level1(feed, connect)  # the limit is per IQConnect, not per connection
        other.send("wIBM")
        line, _ = other.until(lambda s: s.startswith("S,SYMBOL LIMIT REACHED"))
        assert line.split(",")[2] == "IBM"
        other.send("wAAPL")  # already watched by someone: no new symbol
        assert other.expect().startswith("F,AAPL,")


def test_fieldsets_are_per_connection(feed: RunningServer, connect: Connect) -> None:
    a = _level1(feed, connect)
    b = _level1(feed, connect)
    layout_a = _select(a, ("Symbol", "TickID", "Bid", "Ask"))
    layout_b = _select(b, ("Symbol", "Total Volume", "Bid", "Bid Size", "TickID"))
    a.send("wAAPL")
    b.send("wAAPL")
    seen_a = {q["TickID"]: q for q in (layout_a.parse(s) for s in _q_lines(a.collect(2.0), "AAPL"))}
    seen_b = {q["TickID"]: q for q in (layout_b.parse(s) for s in _q_lines(b.collect(0.5), "AAPL"))}
    common = sorted(set(seen_a) & set(seen_b), key=int)
    assert len(common) >= 5
    for tick in common:
        assert seen_a[tick]["Bid"] == seen_b[tick]["Bid"]


def test_streamed_times_are_intended_times_today(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    layout = _select(client, TIMED)
    client.send("wAAPL")
    client.send("wMSFT")
    client.until(lambda s: s.startswith("P,MSFT"))
    collected = _q_lines(client.collect(2.5))
    now_ns = time.time_ns()
    last: dict[str, int] = {}
    last_tick: dict[str, int] = {}
    assert len(collected) >= 20
    for line in collected:
        q = layout.parse(line)
        contents = q["Message Contents"]
        if contents[:1] in TRADE_CODES:
            stamp = q["Most Recent Trade Time"]
        elif "b" in contents:
            stamp = q["Bid Time"]
        else:
            assert "a" in contents, line
            stamp = q["Ask Time"]
        intended = parse_et_time_of_day(now_ns, stamp)
        assert abs(intended - now_ns) < 10 * 1_000_000_000, line
        symbol = q["Symbol"]
        assert intended >= last.get(symbol, 0), line
        last[symbol] = intended
        tick = int(q["TickID"])
        assert tick > last_tick.get(symbol, 0), line
        last_tick[symbol] = tick
    assert set(last) == {"AAPL", "MSFT"}


# ---- framing ----------------------------------------------------------------------------------


def test_every_line_ends_with_crlf(feed: RunningServer, connect: Connect) -> None:
    client = connect(feed.port("level1"))
    client.send("wAAPL")
    lines = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        raw = client.raw_line(0.5)
        if raw is not None:
            lines.append(raw)
    assert len(lines) > 10
    assert all(raw.endswith(b"\r\n") and b"\r" not in raw[:-2] for raw in lines)


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"])
def test_command_terminators(feed: RunningServer, connect: Connect, end: bytes) -> None:
    client = connect(feed.port("level1"))
    client.send("wAAPL", end=end)
    client.send("S,REQUEST WATCHES", end=end)
    reply, before = client.until(lambda s: s.startswith("S,WATCHES"))
    assert fields_of(reply)[2:] == ["AAPL"]
    assert any(s.startswith("F,AAPL,") for s in before)
    assert not any(s.startswith("E,") for s in before)


def test_command_split_across_writes(feed: RunningServer, connect: Connect) -> None:
    client = connect(feed.port("level1"))
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.send("wMS", end=b"")  # one command in pieces, written back to back
    client.send("FT\r", end=b"")
    client.send("\nS,REQUEST WATCHES", end=b"")  # completed by the next command's terminator
    client.send("", end=b"\n")
    reply, _ = client.until(lambda s: s.startswith("S,WATCHES"))
    assert fields_of(reply)[2:] == ["MSFT"]


def test_an_idle_connection_completes_an_unterminated_command(
    feed: RunningServer, connect: Connect
) -> None:
    client = connect(feed.port("level1"))
    client.send("wMS", end=b"")  # nothing follows: complete once the connection idles
    client.until(lambda s: s == "n,MS")
    client.send("wMSFT", end=b"")
    client.until(lambda s: s.startswith("P,MSFT,"))
    client.send("S,REQUEST WATCHES", end=b"")
    reply, _ = client.until(lambda s: s.startswith("S,WATCHES"))
    assert fields_of(reply)[2:] == ["MSFT"]


def test_merged_commands_split_where_the_next_one_starts(
    feed: RunningServer, connect: Connect
) -> None:
    client = connect(feed.port("level1"))
    client.send("S,SET PROTOCOL,6.2wMSFTtIBMS,REQUEST WATCHES")
    assert client.until(lambda s: s.startswith("S,CURRENT PROTOCOL,"))[0].endswith(",6.2")
    reply, before = client.until(lambda s: s.startswith("S,WATCHES"))
    assert fields_of(reply)[2:] == ["MSFT", "IBM"]
    assert not [s for s in before if s.startswith(("E,", "n,"))]


def test_unterminated_last_command_at_half_close(feed: RunningServer, connect: Connect) -> None:
    client = connect(feed.port("level1"))
    client.send("wIBM\r\nS,REQUEST WATCHES", end=b"")
    client.sock.shutdown(socket.SHUT_WR)
    reply, _ = client.until(lambda s: s.startswith("S,WATCHES"))
    assert fields_of(reply)[2:] == ["IBM"]


def test_unknown_and_misc_system_commands(feed: RunningServer, connect: Connect) -> None:
    client = _level1(feed, connect)
    client.send("S,NO SUCH THING")
    assert client.raw_line() == b"E,!SYNTAX_ERROR!,\r\n"
    client.send("S,KEY,99999")  # a legacy client's echo is harmless
    client.send("S,SET CLIENT NAME,tests")
    client.send("S,SET LOG LEVELS,Admin,Debug")
    assert client.expect() == "S,CURRENT LOG LEVELS,Admin,Debug"
    client.send("S,CONNECT")
    assert client.expect() == "S,SERVER CONNECTED"
    client.send("S,NEWSON")
    client.send("S,REQUEST CURRENT UPDATE FIELDNAMES")
    assert client.expect().startswith("S,CURRENT UPDATE FIELDNAMES,Symbol,")


def test_no_updates_before_start(small_tape: Path, connect: Connect) -> None:
    with serve([small_tape], rate=RateSettings(mode="fixed", rate_hz=50.0), start=False) as feed:
        client = _level1(feed, connect)
        client.send("wAAPL")
        client.until(lambda s: s.startswith("P,AAPL"))
        assert not _q_lines(client.collect(1.0))
        feed.call(feed.engine.start)
        client.until(lambda s: s.startswith("Q,AAPL"))
