"""A client that watches symbols but never reads is cut off once its unsent output passes the
bound (ServeConfig.max_client_buffer), counted, and does not stall the other clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from feed_sim.control_client import FeedSimControl
from feed_sim.server.engine import RateSettings
from tests.feed_sim_server import serve

from .conftest import LineClient

pytestmark = pytest.mark.integration

Connect = Callable[..., LineClient]


def test_reader_that_stops_is_cut_off(small_tape: Path, connect: Connect) -> None:
    rate = RateSettings(mode="fixed", rate_hz=4_000.0)
    with serve([small_tape], rate=rate, max_client_buffer=64 * 1024) as feed:
        good = connect(feed.port("level1"))
        good.send("S,SELECT UPDATE FIELDS,TickID")
        good.send("wAAPL")
        good.until(lambda s: s.startswith("Q,AAPL,"))

        slow = connect(feed.port("level1"), rcvbuf=4096)
        slow.send("S,SELECT UPDATE FIELDS," + ",".join(["Bid", "Ask", "Total Volume"] * 8))
        for symbol in ("AAPL", "MSFT", "IBM"):
            slow.send(f"w{symbol}")
        # The slow client never reads; the good one keeps reading meanwhile.
        received = 0
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline and feed.call(lambda: feed.engine.slow_client_cutoffs) < 1
        ):
            received += len([s for s in good.collect(0.2) if s.startswith("Q,AAPL,")])
        assert feed.engine.slow_client_cutoffs == 1
        assert received > 0
        assert good.closed_by_peer is False

        # Its socket is closed: draining what the kernel still holds ends in EOF / reset.
        assert slow.drain_until_closed(timeout=60)

        # The good client keeps receiving after the cut-off, and the count shows in /status.
        before = [s for s in good.collect(1.0) if s.startswith("Q,AAPL,")]
        assert len(before) > 100
        assert FeedSimControl(feed.control_url).status()["slow_client_cutoffs"] == 1
        assert feed.server.handler_errors == 0
        assert feed.pacer_alive()
