"""Bad input over a real socket: a tiny fake IQFeed server (the core is what is under test)
sends malformed, truncated, over-long and binary lines mixed with good `Q` lines to `ingest run`
(a real subprocess) producing to a real Kafka broker. The good lines become records (exact
TickIDs and content), the bad ones are counted by reason on /metrics and skipped, a line cut by a
dropped connection is counted too, and the core never dies (it reconnects and goes on)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.infra.ports import LOOPBACK
from ingest.feed.fieldset import INGEST_FIELDS
from tests.integration.ingest.conftest import (
    create_topics,
    ingest_config,
    read_partitions,
    run_ingest,
    symbol_partitions,
    unique_prefix,
    wait_until,
)

pytestmark = pytest.mark.integration

SYMBOL = "AAPL"
KINDS = ("trade", "quote")
FIELDNAMES = b"S,CURRENT UPDATE FIELDNAMES," + ",".join(INGEST_FIELDS).encode() + b"\r\n"


def good_line(tick: int) -> bytes:
    """A `Q` in the INGEST_FIELDS layout: a trade every third TickID, else a quote."""
    contents = "Cba" if tick % 3 == 0 else "ba"
    price = 225 + tick / 100
    return (
        f"Q,{SYMBOL},{price:.4f},{tick},09:59:57.{tick:06d},11/24/2025,19,873D17,{1000 + tick},"
        f"225.1000,{300 + tick},09:59:59.{tick:06d},11,225.1400,500,09:59:58.000200,19,"
        f"{contents},{tick},\r\n"
    ).encode()


BAD_LINES: list[tuple[str, bytes]] = [
    ("bad_number", good_line(900).replace(b"Q,AAPL,234.0000", b"Q,AAPL,abc")),
    ("bad_number", good_line(901).replace(b",1901,", b",-5,")),  # negative volume
    ("bad_time", good_line(902).replace(b"09:59:57.000902", b"25:99:99.000000")),
    ("bad_symbol", good_line(903).replace(b"Q,AAPL,", b"Q,,")),
    ("bad_field_count", good_line(904)[:30] + b"\r\n"),  # truncated
    ("bad_field_count", good_line(905)[:-8] + b"\r\n"),  # truncated
    ("too_long", b"Q,AAPL," + b"9" * 20_000 + b"\r\n"),
    ("binary", b"\x00\x01\x02\xff\xfe\x80garbage\r\n"),
    ("binary", b"Q,AAPL,\x80\x81\x07,\r\n"),
    ("binary", b"\x1b[31m\x07\r\n"),
    ("empty", b"\r\n"),
]


def _bad(reason: str) -> int:
    return sum(1 for r, _ in BAD_LINES if r == reason)


class FakeFeed:
    """Level 1 only: answers the handshake with the core's fieldset, then plays `scripts[n]`
    on the n-th connection; a script ends either open (None) or by closing after a partial
    line (bytes without a terminator)."""

    def __init__(self, scripts: list[tuple[list[bytes], bytes | None]]) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self.listener.getsockname()[1])
        self.scripts = scripts
        self.received: list[bytes] = []
        self.connections: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="fake-feed", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            for lines, tail in self.scripts:
                conn, _ = self.listener.accept()
                self.connections.append(conn)
                conn.settimeout(30)
                data = b""
                while f"w{SYMBOL}".encode() not in data:  # handshake + select + watch
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                self.received.append(data)
                conn.sendall(b"S,CURRENT PROTOCOL,6.2\r\n" + FIELDNAMES + b"".join(lines))
                if tail is not None:
                    conn.sendall(tail)
                    conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
        self.listener.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()
        self.thread.join(10)


@contextlib.contextmanager
def fake_feed(scripts: list[tuple[list[bytes], bytes | None]]) -> Iterator[FakeFeed]:
    feed = FakeFeed(scripts)
    try:
        yield feed
    finally:
        feed.close()


def mixed(ticks: range) -> list[bytes]:
    """Good lines for `ticks` with every bad line slotted in between."""
    out: list[bytes] = []
    bad = [line for _, line in BAD_LINES]
    for i, tick in enumerate(ticks):
        out.append(good_line(tick))
        if i < len(bad):
            out.append(bad[i])
    out += bad[len(ticks) :]
    return out


def test_bad_lines_are_counted_and_skipped_good_lines_become_records(
    kafka_single: tuple[LocalKafka, ClusterState], tmp_path: Path
) -> None:
    _, cluster = kafka_single
    prefix = unique_prefix("bad")
    create_topics(cluster.bootstrap, cluster.broker_count, prefix, KINDS)
    truncated_tail = good_line(41)[:40]  # then the feed closes the socket mid-line
    scripts: list[tuple[list[bytes], bytes | None]] = [
        (mixed(range(1, 21)), truncated_tail),
        (mixed(range(21, 41)), None),  # after the core's reconnect
    ]
    with fake_feed(scripts) as feed:
        config = ingest_config(
            level1_port=feed.port,
            level2_port=feed.port,
            bootstrap=cluster.bootstrap,
            prefix=prefix,
            symbols=[SYMBOL],
            level2=False,
            connections=1,
        )
        with run_ingest(tmp_path, config) as ingest:
            wait_until(
                lambda: (
                    ingest.state()["process"]["records"]["quote"]
                    + ingest.state()["process"]["records"]["trade"]
                    >= 40
                ),
                120,
                "the good lines of both connections",
            )
            wait_until(
                lambda: ingest.metrics()["ingest_malformed_total"] >= 2 * len(BAD_LINES),
                30,
                "the bad lines of both connections",
            )
            metrics = ingest.metrics()
            state = ingest.state()
            assert ingest.proc.poll() is None, "the core died"
            code, stopped = ingest.terminate()
            assert code == 0, ingest.stderr_tail()
        assert len(feed.received) == 2  # it reconnected after the drop, and resubscribed
        assert all(f"w{SYMBOL}".encode() in data for data in feed.received)

    # the bad lines: counted by reason on /metrics, twice (once per connection), no more
    reasons = {reason for reason, _ in BAD_LINES}
    for reason in reasons:
        assert metrics[f"ingest_malformed_{reason}_total"] == 2 * _bad(reason), reason
    assert metrics["ingest_malformed_total"] == 2 * len(BAD_LINES)
    assert state["process"]["malformed"] == {r: 2 * _bad(r) for r in reasons}
    assert metrics["ingest_truncated_lines_discarded_total"] == 1  # the line cut by the close
    assert metrics["ingest_connection_reconnects_total"] == 1
    assert state["process"]["tickid_missing"] == 0 and state["process"]["duplicates"]["count"] == 0

    # the good lines: exactly one record each, in order, with their content
    consumed = read_partitions(
        cluster.bootstrap, symbol_partitions(prefix, [SYMBOL], KINDS), expected=stopped["delivered"]
    )
    assert len(consumed) == stopped["produced"] == stopped["delivered"] == 40
    by_seq = {c.record.seq: c.record for c in consumed}
    assert sorted(by_seq) == list(range(1, 41))
    for tick, record in by_seq.items():
        assert record.symbol == SYMBOL
        if tick % 3 == 0:
            assert record.type == "trade"
            assert record.payload["price"] == round(225 + tick / 100, 4)
            assert record.payload["size"] == tick and record.payload["total_volume"] == 1000 + tick
        else:
            assert record.type == "quote"
            assert record.payload["bid_size"] == 300 + tick and record.payload["ask"] == 225.14
