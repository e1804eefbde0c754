"""Record a live IQConnect session (or any peer speaking its protocol) verbatim into a tape.

Every line received on every connected port becomes one Kind.RAW event ``{port, line}`` stamped
with the wall-clock time of the socket read that completed it (one stamp per read chunk).
One thread, plain sockets and a selector; no asyncio.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feed_sim.tape.format import TapeWriter
from feed_sim.tape.model import Kind, TapeEvent, TapeHeader

CLIENT_NAME = "feed-sim-recorder"
PORT_NAMES = ("level1", "level2", "admin", "lookup")
HANDSHAKE_TIMEOUT_S = 5.0
"""How long to wait for ``S,CURRENT PROTOCOL`` before sending the watches anyway."""
CONNECT_TIMEOUT_S = 5.0
_POLL_S = 0.05
_READ_SIZE = 1 << 16


@dataclass
class _Conn:
    """One connected port and its receive state."""

    name: str
    sock: socket.socket
    watches: list[str]
    handshake_deadline: float
    buf: bytes = b""
    lines: int = 0
    watching: bool = False
    protocol_reply: str | None = None
    closed_by_peer: bool = False


@dataclass
class _Recorder:
    """The receive loop's state: writer, symbols, clock and counters."""

    writer: TapeWriter
    symbols: frozenset[str]
    clock: Callable[[], int]
    last_ts: int = 0
    clock_clamps: int = 0
    conns: dict[int, _Conn] = field(default_factory=dict)

    def stamp(self) -> int:
        """The receive time of a read; clamped so the tape stays ordered if the clock steps back."""
        ts = self.clock()
        if ts < self.last_ts:
            self.clock_clamps += 1
            ts = self.last_ts
        self.last_ts = ts
        return ts

    def emit(self, conn: _Conn, ts_ns: int, raw: bytes, partial: bool = False) -> None:
        """Write one received line as a RAW event."""
        line = raw.decode("latin-1")
        parts = line.split(",", 2)
        symbol = parts[1] if len(parts) > 1 and parts[1] in self.symbols else ""
        fields: dict[str, Any] = {"port": conn.name, "line": line}
        if partial:
            fields["partial"] = True
        self.writer.write(TapeEvent(ts_ns, symbol, Kind.RAW, fields))
        conn.lines += 1
        if conn.protocol_reply is None and (
            line.startswith("S,CURRENT PROTOCOL,") or "is not a valid protocol" in line
        ):
            conn.protocol_reply = line
            send_watches(conn)

    def read(self, conn: _Conn) -> bool:
        """Read one chunk from a port; False when the peer closed it."""
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        ts = self.stamp()
        if not data:
            conn.closed_by_peer = True
            self.flush_partial(conn, ts)
            return False
        chunks = (conn.buf + data).split(b"\n")
        conn.buf = chunks.pop()
        for raw in chunks:
            self.emit(conn, ts, raw.removesuffix(b"\r"))
        return True

    def flush_partial(self, conn: _Conn, ts_ns: int) -> None:
        """Write an unterminated trailing fragment (connection or session ended mid-line)."""
        if conn.buf:
            self.emit(conn, ts_ns, conn.buf.removesuffix(b"\r"), partial=True)
            conn.buf = b""


def watch_commands(port: str, symbols: Iterable[str], protocol: str) -> list[str]:
    """The watch commands for a port: ``w<SYM>`` on level1; ``WOR,<SYM>`` on level2 (6.2+)."""
    if port == "level1":
        return [f"w{s}" for s in symbols]
    if port == "level2":
        new_depth = tuple(int(x) for x in protocol.split(".")) >= (6, 2)
        return [f"WOR,{s}" if new_depth else f"w{s}" for s in symbols]
    return []


def send_watches(conn: _Conn) -> None:
    """Send the port's watch commands once (a peer that already hung up is noticed by read)."""
    if not conn.watching:
        conn.watching = True
        if conn.watches:
            with contextlib.suppress(OSError):
                conn.sock.sendall("".join(f"{c}\r\n" for c in conn.watches).encode("ascii"))


def _connect(host: str, ports: Mapping[str, int], names: list[str]) -> dict[str, socket.socket]:
    socks: dict[str, socket.socket] = {}
    for name in names:
        try:
            socks[name] = socket.create_connection((host, ports[name]), CONNECT_TIMEOUT_S)
        except OSError as exc:
            for s in socks.values():
                s.close()
            msg = f"cannot connect to {name} port {host}:{ports[name]}: {exc}"
            raise ConnectionError(msg) from exc
    return socks


def record_session(
    host: str,
    ports: Mapping[str, int],
    symbols: Iterable[str],
    out: Path | str,
    duration_s: float,
    level2: bool,
    protocol: str = "6.2",
    clock: Callable[[], int] = time.time_ns,
    stop: threading.Event | None = None,
) -> TapeHeader:
    """Record every line from the given ports for ``duration_s`` (or until ``stop`` is set).

    ``ports`` maps port names (level1, level2, admin, lookup) to TCP ports; level2 is connected
    only when ``level2`` is True. A port the peer closes ends cleanly; the session ends early
    when all ports are closed. Returns the header of the tape written to ``out``.
    """
    symbols = list(dict.fromkeys(symbols))
    unknown = set(ports) - set(PORT_NAMES)
    if unknown:
        raise ValueError(f"unknown port names {sorted(unknown)}; expected {PORT_NAMES}")
    if level2 and "level2" not in ports:
        raise ValueError("level2=True needs a 'level2' entry in ports")
    names = [n for n in PORT_NAMES if n in ports and (n != "level2" or level2)]
    if not names:
        raise ValueError("no ports to record")
    meta: dict[str, Any] = {
        "host": host,
        "ports": {n: ports[n] for n in names},
        "protocol": protocol,
        "client_name": CLIENT_NAME,
        "level2": level2,
        "watched": symbols,
        "duration_s": duration_s,
    }
    socks = _connect(host, ports, names)
    sel = selectors.DefaultSelector()
    with TapeWriter(out, f"recorded:{host}", meta=meta, symbols=symbols) as writer:
        rec = _Recorder(writer, frozenset(symbols), clock)
        try:
            hs_deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
            for name, sock in socks.items():
                conn = _Conn(name, sock, watch_commands(name, symbols, protocol), hs_deadline)
                rec.conns[sock.fileno()] = conn
                sel.register(sock, selectors.EVENT_READ, conn)
                hello = f"S,SET PROTOCOL,{protocol}\r\nS,SET CLIENT NAME,{CLIENT_NAME}\r\n"
                sock.sendall(hello.encode("ascii"))
            ended = _loop(rec, sel, time.monotonic() + duration_s, stop)
            ts = rec.stamp()
            for conn in rec.conns.values():
                rec.flush_partial(conn, ts)
        finally:
            sel.close()
            for sock in socks.values():
                sock.close()
        conns = list(rec.conns.values())
        writer.meta.update(
            ended=ended,
            lines={c.name: c.lines for c in conns},
            protocol_replies={c.name: c.protocol_reply for c in conns},
            closed_by_peer=[c.name for c in conns if c.closed_by_peer],
            clock_clamps=rec.clock_clamps,
        )
    return writer.close()


def _loop(
    rec: _Recorder,
    sel: selectors.BaseSelector,
    deadline: float,
    stop: threading.Event | None,
) -> str:
    """Read until the deadline, the stop event, or all ports closed; says which."""
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline or (stop is not None and stop.is_set()):
            for key, _mask in sel.select(0):  # one last pass over data already received
                rec.read(key.data)
            return "duration" if now >= deadline else "stop"
        for key, _mask in sel.select(min(_POLL_S, deadline - now)):
            if not rec.read(key.data):
                sel.unregister(key.fileobj)
        for conn in rec.conns.values():
            if not conn.watching and not conn.closed_by_peer and now >= conn.handshake_deadline:
                send_watches(conn)
    return "all_closed"
