"""Per-symbol state: Level 1 quote, the three Level 2 keyings, CLEAR DEPTH, memory estimate."""

from __future__ import annotations

import sys

from ingest.feed.messages import Level1Update
from ingest.feed.parse import LineParser
from ingest.feed.state import (
    LEVEL_ROW_BYTES,
    MMID_ROW_BYTES,
    ORDER_ROW_BYTES,
    BookRow,
    DepthBook,
    Level1Quote,
    SymbolStates,
)


def test_level1_quote_reads_the_latest_update() -> None:
    quote = Level1Quote("ATVI")
    assert quote.bid is None and quote.trade_ns == 0 and quote.tick_id is None
    m = LineParser().parse(
        "Q,ATVI,48.5100,135,11:13:25.175857,18,1394955,48.5000,6400,48.5100,900,"
        "48.1200,48.6450,48.0000,48.0600,ba,01,",
        1_488_989_606_000_000_000,
    )
    assert isinstance(m, Level1Update)
    quote.update = m
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (48.5, 6400, 48.51, 900)
    assert (quote.trade_price, quote.trade_size, quote.trade_mc) == (48.51, 135, 18)
    assert quote.total_volume == 1394955 and quote.trade_ns > 0
    snap = quote.snapshot()
    assert snap["symbol"] == "ATVI" and snap["bid"] == 48.5 and "summary" not in snap


def test_three_keyings() -> None:
    book = DepthBook("QQQ")
    book.put_row(0, "AMEX", "A", 408.84, 100, 1)
    book.put_row(0, "AMEX", "B", 408.80, 200, 1)
    book.put_row(0, "AMEX", "A", 408.85, 300, 2)  # same (MMID, side): replaced
    assert len(book.mmid_rows) == 2 and book.mmid_rows[("AMEX", "A")].size == 300
    book.put_row(649948133402, "", "B", 408.79, 5, 3, priority=12440218202)
    assert book.orders[649948133402].priority == 12440218202
    book.put_level("B", 408.80, 700, 3, 4)
    book.put_level("B", 408.80, 500, 2, 5)
    assert book.levels[("B", 408.80)].order_count == 2
    removed = book.remove_row(0, "AMEX", "B")
    assert isinstance(removed, BookRow) and removed.price == 408.80
    assert book.remove_row(0, "AMEX", "B") is None
    assert book.remove_row(649948133402, "", "B") is not None
    assert book.remove_level("B", 408.80) is not None and len(book) == 1


def test_clear_depth_wipes_one_side() -> None:
    book = DepthBook("SPY")
    for i, mmid in enumerate(("NSDQ", "ARCX", "EDGX")):
        book.put_row(0, mmid, "A", 451.0 + i, 100, 1)
        book.put_row(0, mmid, "B", 450.0 - i, 100, 1)
    book.put_level("A", 451.0, 300, 3, 1)
    assert book.clear("B") == "mmid"
    assert all(side == "A" for _, side in book.mmid_rows) and len(book.mmid_rows) == 3
    assert len(book.levels) == 1
    mbo = DepthBook("@ES")
    mbo.put_row(1, "", "A", 4411.5, 2, 1)
    mbo.put_row(2, "", "B", 4411.25, 2, 1)
    assert mbo.clear("A") == "order" and list(mbo.orders) == [2]
    levels = DepthBook("@NQ")
    levels.put_level("A", 1.0, 1, 1, 1)
    assert levels.clear("A") == "price" and not levels.levels


def test_memory_grows_with_rows() -> None:
    book = DepthBook("AAPL")
    empty = book.memory_bytes()
    sizes = [empty]
    for i in range(200):
        book.put_row(0, f"M{i:03d}", "B", 200.0 + i / 100, 100, i)
        book.put_row(i + 1, "", "A", 201.0 + i / 100, 100, i)
        book.put_level("A", 201.0 + i / 100, 100, 1, i)
        sizes.append(book.memory_bytes())
    assert sizes == sorted(sizes) and sizes[-1] > empty
    assert sizes[-1] - empty >= 200 * (MMID_ROW_BYTES + ORDER_ROW_BYTES + LEVEL_ROW_BYTES)
    # The per-row figures are measured with sys.getsizeof, not invented.
    assert sys.getsizeof(BookRow("B", 1.0, 1, 1, None)) < MMID_ROW_BYTES


def test_symbol_states_registry_and_report() -> None:
    states = SymbolStates()
    assert states.quote("AAPL") is states.quote("AAPL")
    book = states.book("MSFT")
    before = states.memory_bytes("MSFT")
    for i in range(50):
        book.put_row(0, f"M{i:02d}", "B", 400.0 - i, 100, 1)
    assert states.memory_bytes("MSFT") > before
    report = states.memory_report()
    assert set(report) == {"AAPL", "MSFT"} and report["MSFT"] > report["AAPL"] > 0
    assert states.total_memory_bytes() > sum(report.values())
    snaps = states.snapshots()
    assert snaps["AAPL"]["book"] is None
    bids = snaps["MSFT"]["book"]["B"]["mmid"]
    assert [row["price"] for row in bids] == sorted((400.0 - i for i in range(50)), reverse=True)
    assert book.next_seq() == 1 and book.next_seq() == 2
