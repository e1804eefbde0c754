"""Fixtures of the feed_sim socket tests: a real `FeedSimServer` on free loopback ports, run by
its own asyncio loop in a background thread, small tapes built here (or the converted real tick
history), and a blocking line-reading socket client with timeouts.

Every server and socket a test starts is stopped by the fixture that made it, even on failure.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from feed_sim.protocol.timefmt import et_wall_ns
from feed_sim.server.engine import RateSettings
from feed_sim.tape.convert import convert_history
from feed_sim.tape.format import write_tape
from feed_sim.tape.model import Kind, TapeEvent
from tests.feed_sim_server import RunningServer, serve
from tests.shared_data import shared_dir

LOOPBACK = "127.0.0.1"
T_LINE = re.compile(r"^T,\d{8} \d{2}:\d{2}:\d{2}$")
DEPTH_SYMBOLS = ("AAPL", "MSFT")
"""Symbols of the small tape with Level 2 rows (Nasdaq MMID rows); IBM has none."""
NAMES = {"AAPL": "Apple Inc", "MSFT": "Microsoft Corp", "IBM": "Intl Business Machines"}
MMIDS = ("NSDQ", "GSCO", "MSCO", "ARCX", "EDGX", "CDRG")
REAL_HISTORY = "iqfeed_history_ticks_2021-03.zip"

R = TypeVar("R")


# ---- tapes ------------------------------------------------------------------------------------


def small_tape_events() -> list[TapeEvent]:
    """Deterministic trades, quotes and depth rows for AAPL, MSFT (with depth) and IBM (none).

    Every quote changes the bid size, so each `Q` it causes updates Bid Time; depth rows are
    Nasdaq MMID rows (order id 0), mostly updates with some deletes."""
    start = et_wall_ns(2024, 3, 4, 9, 30)
    events: list[TapeEvent] = []
    bases = {"AAPL": 170.0, "MSFT": 400.0, "IBM": 190.0}
    for position, (symbol, base) in enumerate(bases.items()):
        for i in range(600):
            ts = start + i * 10_000_000 + position * 1_000
            drift = 0.01 * ((i * 7) % 13 - 6)
            bid = round(base + drift, 2)
            ask = round(bid + 0.01 + 0.01 * (i % 3), 2)
            if i % 3 == 0:
                fields: dict[str, Any] = {
                    "price": ask if i % 2 else bid,
                    "size": 100 + (i % 7) * 37,
                    "market_center": (5, 11, 19, 26)[i % 4],
                    "conditions": ("01", "87", "3D87", "873D17")[i % 4],
                    "basis": "C",
                    "aggressor": 0,
                    "bid": bid,
                    "ask": ask,
                }
                events.append(TapeEvent(ts, symbol, Kind.TRADE, fields))
            else:
                fields = {
                    "bid": bid,
                    "bid_size": 100 + i,
                    "ask": ask,
                    "ask_size": 200 + (i % 5) * 100,
                    "bid_mc": 5,
                    "ask_mc": 11,
                }
                events.append(TapeEvent(ts, symbol, Kind.QUOTE, fields))
            if symbol in DEPTH_SYMBOLS:
                mmid = MMIDS[i % len(MMIDS)]
                side = "B" if i % 2 == 0 else "A"
                delete = i % 11 == 5
                events.append(
                    TapeEvent(
                        ts + 500,
                        symbol,
                        Kind.DEPTH,
                        {
                            "side": side,
                            "action": "delete" if delete else "update",
                            "mmid": mmid,
                            "order_id": 0,
                            "price": bid - 0.01 * (i % 4) if side == "B" else ask + 0.01 * (i % 4),
                            "size": 100 * (1 + i % 9),
                        },
                    )
                )
    events.sort(key=lambda e: e.ts_ns)
    return events


@pytest.fixture(scope="session")
def small_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small tape: 3 symbols, trades + quotes, Nasdaq depth rows for AAPL and MSFT."""
    path = tmp_path_factory.mktemp("tapes") / "small.tape.zst"
    write_tape(path, small_tape_events(), source="generated", meta={"names": NAMES})
    return path


@pytest.fixture(scope="session")
def real_history_zip() -> Path:
    """The real IQFeed tick-history reply of the team's shared data (skipped when absent)."""
    path = shared_dir() / "data" / REAL_HISTORY
    if not path.is_file():
        pytest.skip(f"shared data not available: {path} (../shared is absent)")
    return path


@pytest.fixture(scope="session")
def real_tape(tmp_path_factory: pytest.TempPathFactory, real_history_zip: Path) -> Path:
    """The real tick history converted to a tape (symbol SMCP)."""
    path = tmp_path_factory.mktemp("tapes") / "smcp.tape.zst"
    convert_history(real_history_zip, path, "SMCP")
    return path


# ---- the server (tests/feed_sim_server.py) ------------------------------------------------------


@pytest.fixture
def feed(small_tape: Path) -> Iterator[RunningServer]:
    """The small tape at 20 msg/s per symbol (Level 1) and 10 msg/s (Level 2), running."""
    with serve([small_tape], rate=RateSettings(mode="fixed", rate_hz=20.0, l2_rate_hz=10.0)) as s:
        yield s


# ---- the client -------------------------------------------------------------------------------


class LineClient:
    """A blocking IQFeed socket client: sends commands, reads CRLF lines with timeouts."""

    def __init__(self, port: int, timeout: float = 5.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((LOOPBACK, port))
        self.timeout = timeout
        self._buffer = b""
        self.closed_by_peer = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, command: str | bytes, end: bytes = b"\r\n") -> None:
        data = command.encode("latin-1") if isinstance(command, str) else command
        self.sock.sendall(data + end)

    def raw_line(self, timeout: float | None = None) -> bytes | None:
        """The next line with its terminator, or None on timeout / when the peer closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed_by_peer:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except (ConnectionResetError, ConnectionAbortedError):
                self.closed_by_peer = True
                return None
            if not chunk:
                self.closed_by_peer = True
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def drain_until_closed(self, timeout: float) -> bool:
        """Read and discard everything until the peer closes (EOF or reset) or `timeout`
        passes; True if it closed. Bulk reads: the kernel may hold megabytes for a client
        that stopped reading, too much to take line by line on a busy machine."""
        deadline = time.monotonic() + timeout
        self._buffer = b""
        while not self.closed_by_peer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                return False
            except (ConnectionResetError, ConnectionAbortedError):
                self.closed_by_peer = True
                break
            if not chunk:
                self.closed_by_peer = True
        return True

    def line(self, timeout: float | None = None, skip_timestamps: bool = True) -> str | None:
        """The next line without CRLF (asserted present); `T` lines skipped by default."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            raw = self.raw_line(max(0.0, deadline - time.monotonic()))
            if raw is None:
                return None
            assert raw.endswith(b"\r\n"), f"line not CRLF-terminated: {raw!r}"
            text = raw[:-2].decode("latin-1")
            if skip_timestamps and T_LINE.match(text):
                continue
            return text

    def expect(self, timeout: float | None = None, skip_timestamps: bool = True) -> str:
        text = self.line(timeout, skip_timestamps)
        assert text is not None, "no line arrived in time"
        return text

    def until(
        self,
        predicate: Callable[[str], bool],
        timeout: float | None = None,
        skip_timestamps: bool = True,
    ) -> tuple[str, list[str]]:
        """Read until a line matches; returns (that line, the lines before it)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        before: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            text = self.line(max(0.0, remaining), skip_timestamps) if remaining > 0 else None
            if text is None:
                tail = before[-5:]
                raise AssertionError(f"no matching line in time; last lines: {tail}")
            if predicate(text):
                return text, before
            before.append(text)

    def collect(self, seconds: float, skip_timestamps: bool = False) -> list[str]:
        """Every line that arrives within `seconds` (stops early when the peer closes)."""
        deadline = time.monotonic() + seconds
        out: list[str] = []
        while (remaining := deadline - time.monotonic()) > 0:
            text = self.line(remaining, skip_timestamps)
            if text is None:
                if self.closed_by_peer:
                    break
                continue
            out.append(text)
        return out

    def sync(self, timeout: float | None = None) -> list[str]:
        """Round trip on a streaming port (`S,REQUEST WATCHES`): every line before the reply."""
        self.send("S,REQUEST WATCHES")
        _, before = self.until(lambda s: s.startswith("S,WATCHES"), timeout)
        return before

    def handshake(self, protocol: str = "6.2") -> None:
        """Level 1: the four greeting lines, then SET PROTOCOL and its two replies."""
        for prefix in ("S,KEY,", "S,SERVER CONNECTED", "S,IP,", "S,CUST,"):
            assert self.expect().startswith(prefix)
        self.send(f"S,SET PROTOCOL,{protocol}")
        assert self.expect() == f"S,CURRENT PROTOCOL,{protocol}"
        assert self.expect().startswith("S,CURRENT UPDATE FIELDNAMES,")


@pytest.fixture
def connect() -> Iterator[Callable[..., LineClient]]:
    """Factory of `LineClient`s; every client is closed after the test."""
    clients: list[LineClient] = []

    def make(port: int, timeout: float = 5.0, rcvbuf: int | None = None) -> LineClient:
        client = LineClient(port, timeout, rcvbuf)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()


# ---- parsing helpers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Field positions of `Q`/`P` lines in one fieldset."""

    names: tuple[str, ...]

    def parse(self, line: str) -> dict[str, str]:
        parts = line.split(",")
        assert parts[-1] == "", f"no trailing comma: {line!r}"
        values = parts[1:-1]
        assert len(values) == len(self.names), f"{len(values)} fields != {self.names}: {line!r}"
        return dict(zip(self.names, values, strict=True))


def fields_of(line: str) -> list[str]:
    """A data line's fields (the trailing comma's empty last field asserted and dropped)."""
    parts = line.split(",")
    assert parts[-1] == "", f"no trailing comma: {line!r}"
    return parts[:-1]


def close_enough(a: float, b: float, tolerance: float = 1e-6) -> bool:
    return math.isclose(a, b, abs_tol=tolerance)
