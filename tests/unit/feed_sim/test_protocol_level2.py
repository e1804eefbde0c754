"""Level 2 renderers (byte-exact against quoted lines) and the depth book."""

from __future__ import annotations

import pytest

from feed_sim.protocol.level2 import (
    DepthBook,
    PriceLevel,
    render_clear_depth,
    render_market_maker,
    render_market_maker_name,
    render_no_depth,
    render_not_found,
    render_order,
    render_order_change,
    render_order_delete,
    render_price_level,
    render_price_level_delete,
)
from feed_sim.protocol.timefmt import et_wall_ns as et_ns


def test_nasdaq_mmid_rows_seen_in_trade_frame() -> None:
    ts = et_ns(2022, 4, 1, 17, 52, 38, 59128)
    assert render_order("6", "QQQ", None, "AMEX", "A", 408.84, 100, None, 4, ts) == (
        b"6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-04-01,\r\n"
    )
    ts = et_ns(2022, 4, 1, 11, 33, 27, 30724)
    assert render_order("4", "SPY", None, "NSDQ", "B", 451.44, 300, None, 4, ts) == (
        b"4,SPY,,NSDQ,B,451.4400,300,,4,11:33:27.030724,2022-04-01,\r\n"
    )
    ts = et_ns(2022, 4, 1, 12)
    assert render_order_delete("TSLA", None, "CHXE", "B", None, ts) == (
        b"5,TSLA,,CHXE,B,,2022-04-01,\r\n"
    )


def test_cme_mbo_delete_and_fixtures() -> None:
    ts = et_ns(2021, 10, 24, 20, 32, 47, 333543)
    assert render_order_delete("@ESZ21", 648907593934, "", "A", ts) == (
        b"5,@ESZ21,648907593934,,A,20:32:47.333543,2021-10-24,\r\n"
    )
    ts = et_ns(2019, 4, 23, 20, 31, 4, 876740)
    assert render_order("3", "@ESM19", 12345678, "MD01", "A", 2938.25, 65, 10, 2, ts) == (
        b"3,@ESM19,12345678,MD01,A,2938.25,65,10,2,20:31:04.876740,2019-04-23,\r\n"
    )
    assert render_price_level("7", "@ESM19", "B", 2938.25, 65, 11, 2, ts) == (
        b"7,@ESM19,B,2938.25,65,11,2,20:31:04.876740,2019-04-23,\r\n"
    )
    assert render_price_level_delete("@ESM19", "A", 2938.25, 2, ts) == (
        b"9,@ESM19,A,2938.25,20:31:04.876740,2019-04-23,\r\n"
    )


def test_old_market_maker_format() -> None:
    bid_ns = et_ns(2019, 10, 18, 12, 49, 52, 696621)
    ask_ns = et_ns(2019, 10, 18, 12, 49, 52, 541104)
    line = render_market_maker(
        "Z", "@ES#", "MD01", 2982.25, 2982.5, 99, 238, bid_ns, ask_ns, precision=2, trim_zeros=True
    )
    assert line == (
        b"Z,@ES#,MD01,2982.25,2982.5,99,238,12:49:52.696621,2019-10-18,52,12:49:52.541104,"
        b"T,T,F,\r\n"
    )
    ts = et_ns(2019, 4, 23, 20, 31, 4, 876740)
    line = render_market_maker(
        "2", "@ESM19", "MD01", 2938.0, 2938.25, 65, 23, ts, ts, precision=2, trim_zeros=True
    )
    assert line == (
        b"2,@ESM19,MD01,2938.,2938.25,65,23,20:31:04.876740,2019-04-23,52,20:31:04.876740,"
        b"T,T,F,\r\n"
    )
    line = render_market_maker("2", "AAPL", "GSCO", 150.0, 150.1, 1, 2, ts, ts, ask_valid=False)
    assert line.startswith(b"2,AAPL,GSCO,150.0000,150.1000,1,2,") and line.endswith(b",T,F,F,\r\n")
    assert render_market_maker_name("MD02", "Market depth 2") == b"M,MD02,Market depth 2\r\n"


def test_small_level2_messages() -> None:
    assert render_no_depth("IBM") == b"q,IBM\r\n"
    assert render_not_found("ZZZZ") == b"n,ZZZZ\r\n"
    assert render_clear_depth("@ESZ22", "B") == b"S,CLEAR DEPTH,@ESZ22,B,\r\n"


def test_mmid_book_keyed_by_mmid_and_side() -> None:
    book = DepthBook("QQQ")
    ts = et_ns(2022, 4, 1, 10)
    first = book.apply("B", "update", 100.0, 100, ts, mmid="NSDQ")
    assert first.is_new and first.levels == (PriceLevel("B", 100.0, 100, 1),)
    book.apply("B", "update", 100.0, 200, ts, mmid="ARCX")
    moved = book.apply("B", "update", 100.01, 300, ts, mmid="NSDQ")
    assert not moved.is_new
    assert moved.levels == (PriceLevel("B", 100.0, 200, 1), PriceLevel("B", 100.01, 300, 1))
    book.apply("A", "update", 100.05, 400, ts, mmid="NSDQ")
    assert len(book) == 3
    assert [(r.mmid, r.side, r.price) for r in book.snapshot_rows()] == [
        ("NSDQ", "B", 100.01),
        ("ARCX", "B", 100.0),
        ("NSDQ", "A", 100.05),
    ]
    bid, ask = book.market_maker_quote("NSDQ")
    assert bid is not None and ask is not None and (bid.size, ask.size) == (300, 400)
    gone = book.apply("B", "delete", 0.0, 0, ts, mmid="ARCX")
    assert gone.deleted and gone.levels == (PriceLevel("B", 100.0, 0, 0),)
    assert book.price_levels("B") == [PriceLevel("B", 100.01, 300, 1)]
    assert book.render_snapshot().startswith(b"6,QQQ,,NSDQ,B,100.0100,300,,4,10:00:00.000000,")


def test_mbo_book_keyed_by_order_id_with_levels() -> None:
    book = DepthBook("@ESM19", precision=2)
    ts = et_ns(2019, 4, 23, 20)
    book.apply("A", "update", 2938.25, 10, ts, order_id=1, priority=5)
    book.apply("A", "update", 2938.25, 20, ts, order_id=2, priority=3)
    book.apply("A", "update", 2938.50, 5, ts, order_id=3, priority=1)
    change = book.apply("A", "update", 2938.25, 15, ts, order_id=1, priority=5)
    assert change.levels == (PriceLevel("A", 2938.25, 35, 2),)
    assert book.price_levels("A", max_levels=1) == [PriceLevel("A", 2938.25, 35, 2)]
    assert [r.order_id for r in book.snapshot_rows()] == [2, 1, 3]
    assert not book.apply("A", "delete", 0, 0, ts, order_id=99).deleted
    book.clear("A")
    assert len(book) == 0 and book.price_levels("A") == []


def test_mbo_orders_get_the_books_priority() -> None:
    book = DepthBook("@ESM24", precision=2)
    ts = et_ns(2024, 3, 4, 10)
    first = book.apply("B", "update", 5000.25, 3, ts, order_id=11)
    second = book.apply("B", "update", 5000.25, 2, ts, order_id=12)
    assert first.row is not None and second.row is not None
    assert (first.row.priority, second.row.priority) == (1, 2)
    smaller = book.apply("B", "update", 5000.25, 1, ts, order_id=11)
    assert smaller.row is not None and smaller.row.priority == 1  # a shrink keeps its place
    grown = book.apply("B", "update", 5000.25, 4, ts, order_id=11)
    assert grown.row is not None and grown.row.priority == 3  # back of the queue
    moved = book.apply("B", "update", 5000.5, 2, ts, order_id=12)
    assert moved.row is not None and moved.row.priority == 4
    nasdaq = book.apply("B", "update", 5000.0, 100, ts, mmid="NSDQ")
    assert nasdaq.row is not None and nasdaq.row.priority is None
    assert book.render_snapshot().startswith(b"6,@ESM24,12,,B,5000.50,2,4,2,10:00:00.000000,")


def test_mbo_adds_are_3_updates_4() -> None:
    """§3.3: `3` adds an order, `4` replaces its price/size, `5` removes it (CME MBO rows: order
    id, no MMID, a priority)."""
    book = DepthBook("@ESM19", precision=2)
    ts = et_ns(2019, 4, 23, 20, 31, 4, 876740)
    added = book.apply("A", "update", 2938.25, 65, ts, order_id=12345678, priority=10)
    assert render_order_change("@ESM19", added, 2, ts) == (
        b"3,@ESM19,12345678,,A,2938.25,65,10,2,20:31:04.876740,2019-04-23,\r\n"
    )
    updated = book.apply("A", "update", 2938.25, 60, ts, order_id=12345678)
    assert render_order_change("@ESM19", updated, 2, ts) == (
        b"4,@ESM19,12345678,,A,2938.25,60,10,2,20:31:04.876740,2019-04-23,\r\n"
    )
    deleted = book.apply("A", "delete", 0.0, 0, ts, order_id=12345678)
    assert deleted.deleted and render_order_change("@ESM19", deleted, 2, ts) is None
    unknown = book.apply("A", "delete", 0.0, 0, ts, order_id=999)
    assert render_order_change("@ESM19", unknown, 2, ts) is None
    nasdaq = book.apply("B", "update", 100.0, 100, ts, mmid="NSDQ")
    assert nasdaq.is_new and render_order_change("QQQ", nasdaq, 4, ts) is None  # no adds


def test_order_delete_needs_a_date() -> None:
    with pytest.raises(ValueError):
        render_order_delete("TSLA", None, "CHXE", "B", None)
