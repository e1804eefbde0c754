"""Bad input on every port (hypothesis): random bytes, random text, truncated valid commands,
over-long lines and binary, each from a throwaway connection, while a well-behaved Level 1
client keeps receiving Q lines. Afterwards the server still answers on every port, no handler
raised (FeedSimServer.handler_errors) and the pacing task is alive."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feed_sim.server.engine import RateSettings
from tests.feed_sim_server import RunningServer, serve

from .conftest import LOOPBACK, LineClient

pytestmark = pytest.mark.integration

PORTS = ("level1", "level2", "admin", "lookup")
VALID = (
    b"wAAPL\r\n",
    b"tMSFT\r\n",
    b"rAAPL\r\n",
    b"fIBM\r\n",
    b"S,SET PROTOCOL,6.2\r\n",
    b"S,SELECT UPDATE FIELDS,Bid,Ask,TickID,Most Recent Trade Time\r\n",
    b"S,REQUEST ALL UPDATE FIELDNAMES\r\n",
    b"S,REGON,AAPL\r\n",
    b"S,UNWATCH ALL\r\n",
    b"WOR,AAPL\r\n",
    b"WPL,MSFT,3\r\n",
    b"RPL,MSFT\r\n",
    b"mGSCO\r\n",
    b"S,REGISTER CLIENT APP,X,1.0\r\n",
    b"S,SET AUTOCONNECT,On\r\n",
    b"S,CLIENTSTATS ON\r\n",
    b"HTX,AAPL,100,1,R1,10\r\n",
    b"HIT,AAPL,60,20240304 093000,20240304 160000,25000,093000,160000,1,TEST,15000,s,0\r\n",
    b"HDX,IBM,10\r\n",
    b"SBF,s,AAPL,t,1,RID\r\n",
    b"SLM,R\r\n",
    b"STC\r\n",
)

truncated = st.sampled_from(VALID).flatmap(lambda c: st.integers(0, len(c)).map(lambda n: c[:n]))
mangled = st.tuples(st.sampled_from(VALID), st.binary(min_size=1, max_size=8), st.integers(0, 80))
payloads = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")),
    truncated,
    mangled.map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]),
    st.integers(4_000, 70_000).map(lambda n: b"S,SELECT UPDATE FIELDS," + b"Bid," * (n // 4)),
    st.integers(4_097, 40_000).map(lambda n: b"w" + b"A" * n + b"\r\nwAAPL\r\n"),
    st.lists(st.sampled_from([b"\r", b"\n", b"\x00", b",", b"S,", b"H", b"\xff"]), max_size=64).map(
        b"".join
    ),
)


class Watcher:
    """A well-behaved Level 1 client counting the Q lines it receives, on its own thread."""

    def __init__(self, port: int) -> None:
        self.client = LineClient(port, timeout=2.0)
        self.client.send("wAAPL")
        self.q_lines = 0
        self.bad_lines: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.client.closed_by_peer:
            raw = self.client.raw_line(0.5)
            if raw is None:
                continue
            if raw.startswith(b"Q,AAPL,"):
                self.q_lines += 1
            if not raw.endswith(b"\r\n"):
                self.bad_lines.append(raw)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()


@pytest.fixture(scope="module")
def fuzz_feed(small_tape: Path) -> Iterator[RunningServer]:
    rate = RateSettings(mode="fixed", rate_hz=50.0, l2_rate_hz=20.0)
    with serve([small_tape], rate=rate) as s:
        yield s


@pytest.fixture(scope="module")
def watcher(fuzz_feed: RunningServer) -> Iterator[Watcher]:
    w = Watcher(fuzz_feed.port("level1"))
    try:
        yield w
    finally:
        w.stop()


def _throw(port: int, payload: bytes, half_close: bool, read_back: bool) -> None:
    with (
        socket.create_connection((LOOPBACK, port), timeout=2.0) as sock,
        contextlib.suppress(OSError),
    ):
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        if read_back:
            sock.settimeout(0.05)
            with contextlib.suppress(TimeoutError):
                sock.recv(65536)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    port=st.sampled_from(PORTS),
    payload=payloads,
    half_close=st.booleans(),
    read_back=st.booleans(),
)
def test_bad_input_never_breaks_the_server(
    fuzz_feed: RunningServer,
    watcher: Watcher,
    port: str,
    payload: bytes,
    half_close: bool,
    read_back: bool,
) -> None:
    _throw(fuzz_feed.port(port), payload, half_close, read_back)
    assert fuzz_feed.server.handler_errors == 0


def test_server_still_serves_after_fuzzing(fuzz_feed: RunningServer, watcher: Watcher) -> None:
    """Runs after the fuzz test (file order): every port answers, nothing raised."""
    before = watcher.q_lines
    with LineClient(fuzz_feed.port("level1")) as l1:
        l1.send("wMSFT")
        l1.until(lambda s: s.startswith("Q,MSFT,"))
    with LineClient(fuzz_feed.port("level2")) as l2:
        l2.send("WOR,AAPL")
        l2.until(lambda s: s.startswith("6,AAPL,"))
    with LineClient(fuzz_feed.port("admin")) as admin:
        admin.send("S,REGISTER CLIENT APP,X,1")
        admin.until(lambda s: s == "S,REGISTER CLIENT APP COMPLETED")
    with LineClient(fuzz_feed.port("lookup")) as lookup:
        lookup.send("HTX,AAPL,5,1")
        _, rows = lookup.until(lambda s: s == "!ENDMSG!,")
        assert len(rows) == 5
    assert fuzz_feed.wait_for(lambda: watcher.q_lines > before + 5, timeout=10)
    assert not watcher.client.closed_by_peer
    assert watcher.bad_lines == []
    assert fuzz_feed.server.handler_errors == 0
    assert fuzz_feed.pacer_alive()
