"""The ingestion loop: IQFeed connection pool -> [recv stamp] -> parse -> process -> Kafka.

One thread runs a selector over every connection of the pool. For each readable socket it reads
a chunk, stamps `recv_ns` right after the read (before parsing), splits lines, hands each line
to that connection's line handler (parse + process) and the resulting records to the sink (the
Kafka producer). Symbols are spread over the pool by their partition number (a stable mapping,
never Python's per-process `hash()`), and the mapping is logged.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ingest.feed.connection import BackoffPolicy, FeedConnection, SubscriptionPolicy
from ingest.records import FeedRecord

log = logging.getLogger(__name__)

PROTOCOL = "6.2"


class LineHandler(Protocol):
    """Parse + process for one connection."""

    def handle(self, line: str, recv_ns: int) -> list[FeedRecord]: ...

    def reset_connection(self) -> None:
        """A new socket: default fieldset again, fresh sequence tracking."""
        ...


class RecordSink(Protocol):
    """Where records go (the Kafka producer)."""

    def send(self, record: FeedRecord) -> None: ...

    def poll(self) -> None: ...

    def flush(self, timeout_s: float) -> int: ...


@dataclass
class PoolSettings:
    host: str
    level1_port: int
    level2_port: int
    connections: int = 5
    level2: bool = True
    client_name: str = "ingest"
    select_fields_command: str = ""
    subscriptions: SubscriptionPolicy = field(default_factory=SubscriptionPolicy)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)


class IngestCore:
    """Owns the pool and the loop; `set_symbols` may be called from any thread (reload)."""

    def __init__(
        self,
        settings: PoolSettings,
        partition_of: Callable[[str], int],
        handler_factory: Callable[[FeedConnection], LineHandler],
        sink: RecordSink,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        on_lines: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.partition_of = partition_of
        self.sink = sink
        self.clock_ns = clock_ns
        self.on_lines = on_lines
        kinds = ["level1", "level2"] if settings.level2 else ["level1"]
        self.connections: list[FeedConnection] = []
        for kind in kinds:
            port = settings.level1_port if kind == "level1" else settings.level2_port
            handshake = [
                f"S,SET PROTOCOL,{PROTOCOL}",
                f"S,SET CLIENT NAME,{settings.client_name}-{kind}",
            ]
            if kind == "level1" and settings.select_fields_command:
                handshake.append(settings.select_fields_command)
            for index in range(settings.connections):
                self.connections.append(
                    FeedConnection(
                        f"{kind}-{index}",
                        kind,
                        settings.host,
                        port,
                        handshake=handshake,
                        subscriptions=settings.subscriptions,
                        backoff=settings.backoff,
                        clock=monotonic,
                    )
                )
        self.handlers = {conn.name: handler_factory(conn) for conn in self.connections}
        self.symbols: list[str] = []
        self.lines_read = 0
        self._selector = selectors.DefaultSelector()
        self._registered: dict[str, int] = {}
        """Connection name -> registered file descriptor (kept by number, so it can be
        unregistered after the socket was closed)."""
        self._pending_symbols: list[str] | None = None
        self._lock = threading.Lock()

    # -- symbols --------------------------------------------------------------------------------

    def connection_index(self, symbol: str) -> int:
        """The pool slot of `symbol`: its partition number modulo the pool size (stable)."""
        return self.partition_of(symbol) % self.settings.connections

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Ask the loop to move to this symbol set (thread-safe; applied on the next turn)."""
        with self._lock:
            self._pending_symbols = list(dict.fromkeys(symbols))

    def _apply_symbols(self, symbols: list[str]) -> None:
        by_slot: dict[int, set[str]] = {}
        for symbol in symbols:
            by_slot.setdefault(self.connection_index(symbol), set()).add(symbol)
        for conn in self.connections:
            slot = int(conn.name.rsplit("-", 1)[1])
            conn.set_symbols(by_slot.get(slot, set()))
        self.symbols = symbols
        mapping = {slot: len(syms) for slot, syms in sorted(by_slot.items())}
        log.info("symbol set: %d symbols; per connection slot %s", len(symbols), mapping)
        for slot, syms in sorted(by_slot.items()):
            log.debug("slot %d: %s", slot, " ".join(sorted(syms)))

    def mapping(self) -> dict[str, int]:
        """symbol -> connection slot, for the log and the admin endpoint."""
        return {s: self.connection_index(s) for s in self.symbols}

    # -- loop -----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set; then close the sockets (the caller drains the sink)."""
        try:
            while not stop.is_set():
                self.turn(timeout_s=0.02)
        finally:
            for conn in self.connections:
                self._unregister(conn)
                conn.close()

    def turn(self, timeout_s: float) -> None:
        """One pass: apply a pending symbol set, (re)connect, read, write, poll the sink."""
        with self._lock:
            pending, self._pending_symbols = self._pending_symbols, None
        if pending is not None:
            self._apply_symbols(pending)
        for conn in self.connections:
            if conn.due_to_connect() and conn.connect():
                self.handlers[conn.name].reset_connection()
                assert conn.sock is not None
                fd = conn.sock.fileno()
                self._selector.register(fd, selectors.EVENT_READ, conn)
                self._registered[conn.name] = fd
        if self._registered:
            for key, _ in self._selector.select(timeout_s):
                conn = key.data
                assert isinstance(conn, FeedConnection)
                self._read(conn)
        else:
            time.sleep(timeout_s)
        for conn in self.connections:
            was_open = conn.sock is not None
            conn.pump()
            if was_open and conn.sock is None:
                self._unregister(conn)
        self.sink.poll()

    def _read(self, conn: FeedConnection) -> None:
        result = conn.read_lines(self.clock_ns)
        if result is None:
            self._unregister(conn)
            return
        recv_ns, lines = result
        handler = self.handlers[conn.name]
        sink = self.sink
        for raw in lines:
            if raw.startswith(b"S,SERVER "):
                conn.on_server_state(raw.startswith(b"S,SERVER CONNECTED"))
            line = raw.decode("latin-1")
            if line.endswith("\r"):
                line = line[:-1]
            for record in handler.handle(line, recv_ns):
                sink.send(record)
        self.lines_read += len(lines)
        if self.on_lines is not None:
            self.on_lines(len(lines))

    def _unregister(self, conn: FeedConnection) -> None:
        fd = self._registered.pop(conn.name, None)
        if fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)

    # -- reporting ------------------------------------------------------------------------------

    def connection_report(self) -> list[dict[str, object]]:
        return [
            {
                "name": c.name,
                "connected": c.sock is not None,
                "symbols": len(c.symbols),
                "watched": len(c.watched),
                "subscribing": c.subscribing,
                "reconnects": c.reconnects,
                "server_connected": c.server_connected,
            }
            for c in self.connections
        ]

    @property
    def reconnects(self) -> int:
        return sum(c.reconnects for c in self.connections)
