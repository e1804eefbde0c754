"""Faults the control API injects into a running simulator (`POST /fault`): a burst of the
rate, dropped clients, malformed lines, a server disconnect (and the engine's own stall).
`FaultInjector` acts on one `FeedEngine` through its sessions and markets."""

from __future__ import annotations

import asyncio

from feed_sim.protocol.system import (
    render_clear_depth,
    render_server_connected,
    render_server_disconnected,
)
from feed_sim.server.engine import FeedEngine

MALFORMED_LINES = (
    b"Q,\xff\xfe\x00garbage\r\n",
    b"Q,AAPL,not-a-price,,,\r\n",
    b"Q,MSFT,123.4500,10\r\n",
    b"\x00\x01\x02\x03\r\n",
    b"Z" * 5000 + b"\r\n",
    b"P\r\n",
)
"""Lines no IQFeed client should accept: binary, a bad price, too few fields, control bytes,
an over-long line, a type without fields."""


class FaultInjector:
    """The faults of one engine."""

    def __init__(self, engine: FeedEngine) -> None:
        self.engine = engine

    def stall(self, ms: float) -> None:
        """Send nothing for `ms`; the slots keep their intended times (shows as lateness)."""
        self.engine.stall(ms)

    async def burst(self, factor: float, seconds: float) -> None:
        """Multiply the rate by `factor` for `seconds`, then return to the set rate."""
        self.engine.scale_rate(factor)
        await asyncio.sleep(seconds)
        self.engine.scale_rate(1.0)

    def drop_clients(self, port: str) -> int:
        """Abort the connections on `port` ("all": every port); how many."""
        dropped = 0
        for session in list(self.engine.sessions):
            if port in ("all", session.port_name):
                session.abort()
                dropped += 1
        return dropped

    def send_malformed(self, count: int, port: str) -> int:
        """`count` lines of MALFORMED_LINES to every client on `port`; lines sent."""
        engine, sent = self.engine, 0
        for session in list(engine.sessions):
            if port not in ("all", session.port_name):
                continue
            for i in range(count):
                session.queue(MALFORMED_LINES[i % len(MALFORMED_LINES)])
            sent += session.flush() and count
        engine.counters.malformed_lines += sent
        return sent

    async def server_disconnect(self, ms: float) -> None:
        """`S,SERVER DISCONNECTED`, silence for `ms` (those slots are never sent), then
        `S,SERVER CONNECTED`; Level 2 clients get `S,CLEAR DEPTH` for each watched book and
        its summary rows again (INFERRED: IQConnect re-establishes watches itself)."""
        engine = self.engine
        engine.silence(ms)
        for session in list(engine.sessions):
            if session.port_name in ("level1", "level2"):
                session.queue(render_server_disconnected())
                session.flush()
        await asyncio.sleep(ms / 1000)
        for session in list(engine.sessions):
            if session.port_name in ("level1", "level2"):
                session.queue(render_server_connected())
                session.flush()
        for market in engine.markets.values():
            for l2 in market.level2_watchers:
                l2.queue(render_clear_depth(market.symbol, "B"))
                l2.queue(render_clear_depth(market.symbol, "A"))
                l2.resend_snapshot(market)  # in the watch's own form (WOR/WPL/w)
                l2.flush()
