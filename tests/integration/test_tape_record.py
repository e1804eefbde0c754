"""Integration test of the session recorder (feed_sim.tape.record) against a fake IQConnect peer
on loopback: the recorder is real; only the peer is a small scripted socketserver."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feed_sim.tape.format import load_tape
from feed_sim.tape.model import Kind
from feed_sim.tape.record import record_session

pytestmark = pytest.mark.integration

Q_LINES = [
    "Q,AAPL,123.4500,100,17,123.4400,123.4600,300,200,",
    "Q,AAPL,123.4600,5,87,123.4500,123.4600,100,200,",
    "Q,AAPL,123.4700,1000,3D87,123.4600,123.4800,400,100,",
]
L2_LINES = ["6,AAPL,,NSDQ,B,123.4400,300,,1,10:00:00.000001,2021-03-03,", "T,20210303 10:00:01"]
CHUNKS = {
    # The Q lines, CRLF-terminated, cut at awkward places (mid-field, between \r and \n).
    "level1": [
        b"Q,AA",
        b"PL,123.4500,100,17,123.4400,123.4",
        b"600,300,200,\r",
        b"\nQ,AAPL,123.4600,5,87,123.4500,123.4600,100,200,\r\nQ,AAPL,123.47",
        b"00,1000,3D87,123.4600,123.4800,400,100,",
        b"\r\n",
    ],
    "level2": [
        b"6,AAPL,,NSDQ,B,123.4400,300,,1,10:00:00.0",
        b"00001,2021-03-03,\r\nT,2021",
        b"0303 10:00:01\r\n",
    ],
}


class _FakeIQConnect(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port_name: str, close_after: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port_name = port_name
        self.close_after = close_after
        self.commands: list[str] = []
        self.sent_all = threading.Event()
        self.shutdown_flag = threading.Event()


class _Handler(socketserver.StreamRequestHandler):
    server: _FakeIQConnect

    def handle(self) -> None:
        srv = self.server
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not srv.shutdown_flag.is_set():
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode("ascii").rstrip("\r\n")
            srv.commands.append(command)
            if command == "S,SET PROTOCOL,6.2":
                self.wfile.write(b"S,CURRENT PROTOCOL,6.2\r\n")
            elif command in ("wAAPL", "WOR,AAPL"):
                for chunk in CHUNKS[srv.port_name]:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(0.02)  # separate TCP segments; not asserted on
                srv.sent_all.set()
                if srv.close_after:
                    return


def _start(port_name: str, close_after: bool) -> tuple[_FakeIQConnect, threading.Thread]:
    server = _FakeIQConnect(port_name, close_after)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return server, thread


def _stop(server: _FakeIQConnect, thread: threading.Thread) -> None:
    server.shutdown_flag.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def level1_peer() -> Iterator[_FakeIQConnect]:
    server, thread = _start("level1", close_after=True)
    try:
        yield server
    finally:
        _stop(server, thread)


def test_records_every_line_verbatim(tmp_path: Path, level1_peer: _FakeIQConnect) -> None:
    out = tmp_path / "rec.tape.zst"
    port = level1_peer.server_address[1]
    header = record_session(
        "127.0.0.1", {"level1": port}, ["AAPL"], out, duration_s=30, level2=False
    )
    assert level1_peer.commands == [
        "S,SET PROTOCOL,6.2",
        "S,SET CLIENT NAME,feed-sim-recorder",
        "wAAPL",
    ]
    loaded, events = load_tape(out)
    assert loaded == header
    assert all(e.kind is Kind.RAW and e.fields["port"] == "level1" for e in events)
    assert [e.fields["line"] for e in events] == ["S,CURRENT PROTOCOL,6.2", *Q_LINES]
    assert [e.symbol for e in events] == ["", "AAPL", "AAPL", "AAPL"]
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert not any("partial" in e.fields for e in events)
    assert header.source == "recorded:127.0.0.1"
    assert header.symbols == ("AAPL",)
    assert header.meta["ended"] == "all_closed"
    assert header.meta["closed_by_peer"] == ["level1"]
    assert header.meta["protocol_replies"] == {"level1": "S,CURRENT PROTOCOL,6.2"}
    assert header.meta["lines"] == {"level1": 4}


def test_level2_and_stop_event(tmp_path: Path) -> None:
    l1, l1_thread = _start("level1", close_after=False)
    l2, l2_thread = _start("level2", close_after=False)
    stop = threading.Event()
    try:
        ports = {"level1": l1.server_address[1], "level2": l2.server_address[1]}

        def stop_when_sent() -> None:
            if l1.sent_all.wait(20) and l2.sent_all.wait(20):
                time.sleep(0.2)  # let the last segment reach the recorder's socket buffer
            stop.set()

        stopper = threading.Thread(target=stop_when_sent)
        stopper.start()
        out = tmp_path / "rec.tape.zst"
        header = record_session(
            "127.0.0.1", ports, ["AAPL"], out, duration_s=60, level2=True, stop=stop
        )
        stopper.join(timeout=30)
    finally:
        _stop(l1, l1_thread)
        _stop(l2, l2_thread)
    assert l2.commands == ["S,SET PROTOCOL,6.2", "S,SET CLIENT NAME,feed-sim-recorder", "WOR,AAPL"]
    _, events = load_tape(out)
    by_port = {
        p: [e.fields["line"] for e in events if e.fields["port"] == p] for p in ("level1", "level2")
    }
    assert by_port["level1"] == ["S,CURRENT PROTOCOL,6.2", *Q_LINES]
    assert by_port["level2"] == ["S,CURRENT PROTOCOL,6.2", *L2_LINES]
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert header.meta["ended"] == "stop"
    assert header.meta["level2"] is True


def test_level2_port_skipped_when_not_requested(
    tmp_path: Path, level1_peer: _FakeIQConnect
) -> None:
    ports = {"level1": level1_peer.server_address[1], "level2": 1}  # port 1: never connected
    header = record_session("127.0.0.1", ports, ["AAPL"], tmp_path / "r.tape.zst", 30, False)
    assert header.meta["ports"] == {"level1": ports["level1"]}
    assert header.event_count == 4


def test_unreachable_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"level1 port 127.0.0.1:{free_port}"):
        record_session("127.0.0.1", {"level1": free_port}, ["AAPL"], tmp_path / "r", 1, False)
    assert list(tmp_path.iterdir()) == []
