"""Market by order (CME-style MBO rows: order id, no MMID) over a real Level 2 socket: the `6`
summary, then `3` for an order new to the book, `4` for a change to one it holds, `5` for its
removal, byte for byte as iqfeed-protocol.md §3.3 lays them out, each order with a priority."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from feed_sim.protocol.timefmt import et_wall_ns
from feed_sim.server.engine import RateSettings
from feed_sim.tape.format import write_tape
from feed_sim.tape.model import Kind, TapeEvent
from tests.feed_sim_server import RunningServer, serve

from .conftest import LineClient

pytestmark = pytest.mark.integration

SYMBOL = "@ESM24"
TIME_DATE = rb"(\d{2}:\d{2}:\d{2}\.\d{6}),(\d{4}-\d{2}-\d{2}),\r\n"
BOOK_EVENTS: list[tuple[str, int, str, float, int]] = [
    ("update", 101, "B", 5000.00, 5),
    ("update", 201, "A", 5000.25, 4),
    ("update", 102, "B", 5000.00, 3),  # a new order: add
    ("update", 202, "A", 5000.50, 7),
    ("update", 102, "B", 5000.00, 2),  # smaller: keeps its priority
    ("update", 101, "B", 4999.75, 5),  # another price: the back of the queue
    ("delete", 202, "A", 0.0, 0),
    ("update", 103, "B", 4999.75, 1),
    ("update", 201, "A", 5000.25, 6),  # larger: the back of the queue
    ("delete", 102, "B", 0.0, 0),
    ("delete", 103, "B", 0.0, 0),
    ("update", 203, "A", 5000.50, 2),
]
"""(action, order id, side, price, size) of the tape's depth rows, in order; replayed in a
cycle, so order 102 is added again after its delete and 101 is updated by its own first row."""


def _tape_events() -> list[TapeEvent]:
    start = et_wall_ns(2024, 3, 4, 9, 30)
    events = [
        TapeEvent(start + i, SYMBOL, Kind.QUOTE, {"bid": 5000.0, "bid_size": 5 + i,
                                                   "ask": 5000.25, "ask_size": 4})
        for i in range(3)
    ]  # fmt: skip
    for i, (action, order_id, side, price, size) in enumerate(BOOK_EVENTS):
        fields = {"side": side, "action": action, "mmid": "", "order_id": order_id,
                  "price": price, "size": size}  # fmt: skip
        events.append(TapeEvent(start + 1_000_000 * (i + 1), SYMBOL, Kind.DEPTH, fields))
    return events


@pytest.fixture(scope="module")
def mbo_feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    path = tmp_path_factory.mktemp("tapes") / "mbo.tape.zst"
    write_tape(path, _tape_events(), source="generated", meta={"names": {SYMBOL: "E-MINI"}})
    with serve([path], rate=RateSettings(mode="fixed", rate_hz=1.0, l2_rate_hz=40.0)) as feed:
        yield feed


@dataclass
class Order:
    side: str
    price: float
    size: int
    priority: int


def _order_line(msg_type: str, order_id: int, side: str, price: float, size: int) -> bytes:
    """The exact pattern of a `3`/`4`/`6` MBO row; groups: priority, time, date."""
    head = f"{msg_type},{SYMBOL},{order_id},,{side},{price:.4f},{size},".encode()
    return re.escape(head) + rb"(\d+),4," + TIME_DATE


def _read_depth(client: LineClient) -> bytes:
    """The next Level 2 line (timestamps skipped), with its CRLF."""
    while True:
        raw = client.raw_line(10.0)
        assert raw is not None, "no depth line in time"
        if not raw.startswith(b"T,"):
            return raw


def _summary(client: LineClient) -> tuple[dict[int, Order], bytes]:
    """The `6` rows (the book at watch time) and the first line after them."""
    book: dict[int, Order] = {}
    line = _read_depth(client)
    while line.startswith(b"6,"):
        order_id = int(line.split(b",")[2])
        row = next(e for e in BOOK_EVENTS if e[1] == order_id and e[0] == "update")
        found = re.fullmatch(_order_line("6", order_id, *row[2:]), line)
        assert found, line
        book[order_id] = Order(row[2], row[3], row[4], int(found[1]))
        line = _read_depth(client)
    return book, line


def test_adds_updates_and_deletes_byte_for_byte(
    mbo_feed: RunningServer, connect: Callable[..., LineClient]
) -> None:
    client = connect(mbo_feed.port("level2"))
    assert client.raw_line() == b"S,SERVER CONNECTED\r\n"
    client.send("S,SET PROTOCOL,6.2")
    assert client.raw_line() == b"S,CURRENT PROTOCOL,6.2\r\n"
    client.send(f"WOR,{SYMBOL}")
    book, line = _summary(client)
    assert {o.side for o in book.values()} == {"A", "B"}
    top = max(o.priority for o in book.values())
    seen = {"3": 0, "4": 0, "5": 0}
    for step in range(3 * len(BOOK_EVENTS)):  # three cycles of the tape
        if step:
            line = _read_depth(client)
        action, order_id, side, price, size = BOOK_EVENTS[step % len(BOOK_EVENTS)]
        if action == "delete":
            pattern = re.escape(f"5,{SYMBOL},{order_id},,{side},".encode()) + TIME_DATE
            assert re.fullmatch(pattern, line), (step, line)
            del book[order_id]
            seen["5"] += 1
            continue
        old = book.get(order_id)
        msg_type = "3" if old is None else "4"
        found = re.fullmatch(_order_line(msg_type, order_id, side, price, size), line)
        assert found, (step, msg_type, line)
        priority = int(found[1])
        if old is not None and old.price == price and size <= old.size:
            assert priority == old.priority, (step, line)  # a shrink keeps its place
        else:
            assert priority > top, (step, line)  # new, moved or grown: the back of the queue
            top = priority
        book[order_id] = Order(side, price, size, priority)
        seen[msg_type] += 1
    assert all(seen.values()), seen
