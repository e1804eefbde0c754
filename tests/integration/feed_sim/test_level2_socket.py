"""Level 2 port (9200) over real sockets: 6.2 market-by-order (Nasdaq MMID rows) and
market-by-price watches, the <=6.1 market-maker format, q/n, and S,CLEAR DEPTH after a server
disconnect (iqfeed-protocol.md §3, gotchas 13-15)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from feed_sim.control_client import FeedSimControl
from feed_sim.protocol.timefmt import parse_et_time_of_day
from tests.feed_sim_server import RunningServer

from .conftest import LineClient, fields_of

pytestmark = pytest.mark.integration

Connect = Callable[..., LineClient]
MMID_BOOK = dict[tuple[str, str], tuple[float, int]]
LEVEL_BOOK = dict[tuple[str, float], tuple[int, int]]


def _level2(feed: RunningServer, connect: Connect, protocol: str = "6.2") -> LineClient:
    client = connect(feed.port("level2"))
    assert client.raw_line() == b"S,SERVER CONNECTED\r\n"
    client.send(f"S,SET PROTOCOL,{protocol}")
    assert client.expect() == f"S,CURRENT PROTOCOL,{protocol}"
    return client


def _assert_today(stamp: str, now_ns: int) -> None:
    assert abs(parse_et_time_of_day(now_ns, stamp) - now_ns) < 10 * 1_000_000_000, stamp


def _apply_order_rows(book: MMID_BOOK, lines: list[str], symbol: str) -> int:
    """Apply 6/4/5 Nasdaq rows to an (MMID, side) book; returns how many applied."""
    applied = 0
    for line in lines:
        f = fields_of(line)
        if f[0] not in ("4", "5", "6") or f[1] != symbol:
            continue
        applied += 1
        assert f[2] == "", f"Nasdaq rows have no order id: {line}"
        mmid, side = f[3], f[4]
        assert side in ("A", "B")
        if f[0] == "5":
            assert len(f) == 7
            book.pop((mmid, side), None)
        else:
            assert len(f) == 11
            assert f[7] == "", f"Nasdaq rows have no priority: {line}"
            assert f[8] == "4"
            book[(mmid, side)] = (float(f[5]), int(f[6]))
    return applied


def _apply_level_rows(book: LEVEL_BOOK, lines: list[str], symbol: str) -> int:
    applied = 0
    for line in lines:
        f = fields_of(line)
        if f[0] not in ("7", "8", "9") or f[1] != symbol:
            continue
        applied += 1
        side, price = f[2], round(float(f[3]), 4)
        assert side in ("A", "B")
        if f[0] == "9":
            assert len(f) == 6
            book.pop((side, price), None)
        else:
            assert len(f) == 9
            book[(side, price)] = (int(f[4]), int(f[5]))
    return applied


def _aggregate(book: MMID_BOOK) -> LEVEL_BOOK:
    levels: LEVEL_BOOK = {}
    for (_, side), (price, size) in book.items():
        key = (side, round(price, 4))
        total, count = levels.get(key, (0, 0))
        levels[key] = (total + size, count + 1)
    return levels


def test_wor_summary_then_updates(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect)
    client.send("WOR,AAPL")
    lines = client.collect(3.0, skip_timestamps=True)
    kinds = [line.split(",")[0] for line in lines]
    summaries = kinds.count("6")
    assert summaries >= 3
    assert kinds[:summaries] == ["6"] * summaries  # the summary comes first
    assert set(kinds[summaries:]) <= {"4", "5"}
    assert "4" in kinds[summaries:]
    assert "3" not in kinds  # Nasdaq Level II has no adds
    book: MMID_BOOK = {}
    assert _apply_order_rows(book, lines, "AAPL") == len(lines)
    now_ns = time.time_ns()
    for line in lines[summaries:]:
        f = fields_of(line)
        if f[0] == "4":
            _assert_today(f[9], now_ns)
        else:
            assert f[5] == "", f"MMID deletes carry an empty time: {line}"


def test_wor_deletes_have_empty_time(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect)
    client.send("WOR,MSFT")
    line, _ = client.until(lambda s: s.startswith("5,"), timeout=10)
    f = fields_of(line)
    assert f[1] == "MSFT" and f[2] == "" and f[3] and f[4] in ("A", "B") and f[5] == ""
    assert len(f[6]) == 10 and f[6][4] == "-"  # YYYY-MM-DD


def test_wpl_levels_match_the_order_book(feed: RunningServer, connect: Connect) -> None:
    by_order = _level2(feed, connect)
    by_price = _level2(feed, connect)
    feed.call(feed.engine.pause)
    by_order.send("WOR,AAPL")
    by_price.send("WPL,AAPL")
    first_orders = by_order.sync()
    first_levels = by_price.sync()
    assert first_levels and all(s.startswith("7,AAPL,") for s in first_levels)
    feed.call(feed.engine.resume)
    orders = first_orders + by_order.collect(3.0, skip_timestamps=True)
    feed.call(feed.engine.pause)
    orders += by_order.sync()
    levels = first_levels + by_price.sync()
    kinds = {s.split(",")[0] for s in levels[len(first_levels) :]}
    assert "8" in kinds and kinds <= {"8", "9"}
    now_ns = time.time_ns()
    for line in levels[len(first_levels) :]:
        f = fields_of(line)
        _assert_today(f[7] if f[0] == "8" else f[4], now_ns)
    order_book: MMID_BOOK = {}
    level_book: LEVEL_BOOK = {}
    _apply_order_rows(order_book, orders, "AAPL")
    _apply_level_rows(level_book, levels, "AAPL")
    assert level_book == _aggregate(order_book)


def test_wpl_max_levels_and_unwatch(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect)
    client.send("WPL,MSFT,2")
    summary = [s for s in client.sync() if s.startswith("7,")]
    assert 1 <= sum(1 for s in summary if s.split(",")[2] == "B") <= 2
    assert 1 <= sum(1 for s in summary if s.split(",")[2] == "A") <= 2
    client.send("RPL,MSFT")
    client.sync()
    assert not [s for s in client.collect(1.5, skip_timestamps=True) if s[:2] in ("8,", "9,")]
    client.send("WOR,MSFT")
    client.until(lambda s: s.startswith("6,MSFT,"))
    client.send("ROR,MSFT")
    client.sync()
    assert not [s for s in client.collect(1.5, skip_timestamps=True) if s[0] in "3456"]


def test_unknown_symbol_and_symbol_without_depth(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect)
    client.send("WOR,BOGUS")
    assert client.raw_line() == b"n,BOGUS\r\n"
    client.send("WOR,IBM")
    assert client.raw_line() == b"q,IBM\r\n"
    client.send("WPL,IBM")
    assert client.expect() == "q,IBM"


def test_old_protocol_market_maker_watch(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect, "6.1")
    client.send("WOR,AAPL")
    assert client.raw_line() == b"E,!SYNTAX_ERROR!,\r\n"
    client.send("wAAPL")
    lines = client.collect(3.0, skip_timestamps=True)
    kinds = [s.split(",")[0] for s in lines]
    summaries = kinds.count("Z")
    assert summaries >= 3
    assert kinds[:summaries] == ["Z"] * summaries
    assert set(kinds[summaries:]) == {"2"}
    for line in lines:
        f = fields_of(line)
        assert len(f) == 14, line
        assert f[1] == "AAPL" and len(f[2]) == 4
        assert f[9] == "52"
        assert f[11] in ("T", "F") and f[12] in ("T", "F") and f[13] in ("T", "F")
        if f[0] == "Z":
            assert f[11] == "T" or f[12] == "T"  # a summary row has a valid side
        # both sides invalid in a `2` row: the MMID left the book
        assert f[8] != "1969-12-31" and f[8][4] == "-", line  # never the epoch
    now_ns = time.time_ns()
    for line in lines[summaries:]:
        f = fields_of(line)
        _assert_today(f[7], now_ns)
        _assert_today(f[10], now_ns)


def test_new_style_watch_needs_62_and_old_style_needs_61(
    feed: RunningServer, connect: Connect
) -> None:
    client = _level2(feed, connect, "6.2")
    client.send("wAAPL")
    assert client.expect() == "E,!SYNTAX_ERROR!,"


def test_market_maker_name(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect, "6.1")
    client.send("mGSCO")
    line = client.expect()
    assert line.startswith("M,GSCO,")
    assert len(line) > len("M,GSCO,")


def test_clear_depth_after_server_disconnect(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect)
    client.send("WOR,AAPL")
    client.until(lambda s: s.startswith("6,AAPL,"))
    by_price = _level2(feed, connect)
    by_price.send("WPL,MSFT")
    by_price.until(lambda s: s.startswith("7,MSFT,"))
    FeedSimControl(feed.control_url).fault("disconnect", ms=400)
    client.until(lambda s: s == "S,SERVER DISCONNECTED")
    _, during = client.until(lambda s: s == "S,SERVER CONNECTED")
    assert not [s for s in during if s[0] in "3456"]
    assert client.raw_line() == b"S,CLEAR DEPTH,AAPL,B,\r\n"
    assert client.raw_line() == b"S,CLEAR DEPTH,AAPL,A,\r\n"
    assert client.expect().startswith("6,AAPL,")
    by_price.until(lambda s: s == "S,SERVER CONNECTED")
    assert by_price.expect() == "S,CLEAR DEPTH,MSFT,B,"
    assert by_price.expect() == "S,CLEAR DEPTH,MSFT,A,"
    assert by_price.expect().startswith("7,MSFT,")  # the summary in the watch's own form


def test_level2_system_commands(feed: RunningServer, connect: Connect) -> None:
    client = _level2(feed, connect)
    client.send("WOR,AAPL")
    client.send("S,REQUEST WATCHES")
    reply, _ = client.until(lambda s: s.startswith("S,WATCHES"))
    assert fields_of(reply)[2:] == ["AAPL"]
    client.send("S,UNWATCH ALL")
    client.sync()
    assert not [s for s in client.collect(1.5, skip_timestamps=True) if s[0] in "3456"]
    client.send("S,BOGUS COMMAND")
    assert client.expect() == "E,!SYNTAX_ERROR!,"
    client.send("S,SET PROTOCOL,9.9")
    assert client.expect() == "E,9.9 is not a valid protocol.,"
