"""One IQFeed socket of the connection pool: handshake, paced subscriptions, reconnect.

A `FeedConnection` is driven by the core's selector loop (no threads of its own). It connects,
sends `S,SET PROTOCOL,6.2`, the client name and (Level 1) `S,SELECT UPDATE FIELDS`, then its
watches in batches (default 50 symbols, 1 s apart: the readiness review's rate limit). After a
dropped socket it reconnects with exponential backoff and resubscribes everything; after
`S,SERVER DISCONNECTED` it resubscribes once `S,SERVER CONNECTED` arrives.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

RECV_BYTES = 256 * 1024
MAX_PARTIAL_LINE = 64 * 1024


@dataclass(frozen=True)
class SubscriptionPolicy:
    """How watches are sent: `batch_size` symbols, then `pause_s` seconds (readiness review)."""

    batch_size: int = 50
    pause_s: float = 1.0


@dataclass(frozen=True)
class BackoffPolicy:
    """Reconnect delays: initial, doubling up to max."""

    initial_s: float = 0.25
    max_s: float = 10.0


class FeedConnection:
    """A Level 1 (`w`) or Level 2 (`WOR`) connection carrying a subset of the symbols."""

    def __init__(
        self,
        name: str,
        kind: str,
        host: str,
        port: int,
        *,
        handshake: list[str],
        subscriptions: SubscriptionPolicy,
        backoff: BackoffPolicy,
        clock: Callable[[], float],
    ) -> None:
        if kind not in ("level1", "level2"):
            raise ValueError(f"kind must be level1 or level2, not {kind!r}")
        self.name = name
        self.kind = kind
        self.host = host
        self.port = port
        self.handshake = handshake
        self.subscriptions = subscriptions
        self.backoff = backoff
        self.clock = clock
        self.sock: socket.socket | None = None
        self.symbols: set[str] = set()
        """Symbols this connection should be watching."""
        self.watched: set[str] = set()
        """Symbols whose watch command was sent on the current socket."""
        self._pending_watch: deque[str] = deque()
        self._next_batch_at = 0.0
        self._outbox: list[bytes] = []
        self._partial = b""
        self._retry_at = 0.0
        self._delay = backoff.initial_s
        self.connects = 0
        self.reconnects = 0
        self.discarded_partial_bytes = 0
        self.discarded_partial_lines = 0
        """Unterminated lines thrown away: over MAX_PARTIAL_LINE, or cut by a dropped socket."""
        self.server_connected = True

    # -- wanted symbols ---------------------------------------------------------------------

    def set_symbols(self, symbols: set[str]) -> None:
        """Change the wanted symbols: removals are unwatched now, additions queued in batches."""
        removed = self.symbols - symbols
        added = symbols - self.symbols
        self.symbols = set(symbols)
        for symbol in sorted(removed):
            if symbol in self.watched:
                self._send(self._unwatch_command(symbol))
                self.watched.discard(symbol)
        self._pending_watch = deque(s for s in self._pending_watch if s in self.symbols)
        self._pending_watch.extend(sorted(added))

    def _watch_command(self, symbol: str) -> str:
        return f"w{symbol}" if self.kind == "level1" else f"WOR,{symbol}"

    def _unwatch_command(self, symbol: str) -> str:
        return f"r{symbol}" if self.kind == "level1" else f"ROR,{symbol}"

    def resubscribe(self) -> None:
        """Queue every wanted symbol again (after a reconnect or S,SERVER CONNECTED)."""
        self.watched.clear()
        self._pending_watch = deque(sorted(self.symbols))
        self._next_batch_at = 0.0

    # -- socket lifecycle -------------------------------------------------------------------

    def due_to_connect(self) -> bool:
        return self.sock is None and self.clock() >= self._retry_at

    def connect(self) -> bool:
        """Open the socket and queue the handshake; on failure schedule the next try."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
        except OSError as exc:
            self._schedule_retry(f"connect failed: {exc}")
            return False
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock = sock
        self._partial = b""
        self._outbox = [f"{line}\r\n".encode() for line in self.handshake]
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        self._delay = self.backoff.initial_s
        self.server_connected = True
        self.resubscribe()
        log.info("%s connected to %s:%d", self.name, self.host, self.port)
        return True

    def _schedule_retry(self, why: str) -> None:
        self._retry_at = self.clock() + self._delay
        log.warning("%s: %s; retrying in %.2fs", self.name, why, self._delay)
        self._delay = min(self._delay * 2, self.backoff.max_s)

    def _discard_partial(self) -> None:
        if self._partial:
            self.discarded_partial_bytes += len(self._partial)
            self.discarded_partial_lines += 1
            self._partial = b""

    def drop(self, why: str) -> None:
        """Close the socket (the core unregisters it) and schedule a reconnect."""
        self._discard_partial()  # a line truncated by the disconnect
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.watched.clear()
        self._schedule_retry(why)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- I/O ----------------------------------------------------------------------------------

    def read_lines(self, clock_ns: Callable[[], int]) -> tuple[int, list[bytes]] | None:
        """Read what is available and split it into lines, with the receive stamp taken right
        after the read, before any parsing (one stamp per read chunk). None: peer closed."""
        assert self.sock is not None
        try:
            data = self.sock.recv(RECV_BYTES)
            recv_ns = clock_ns()
        except BlockingIOError:
            return clock_ns(), []
        except OSError as exc:
            self.drop(f"read failed: {exc}")
            return None
        if not data:
            self.drop("connection closed by the feed")
            return None
        if self._partial:
            data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_PARTIAL_LINE:
            self._discard_partial()
        return recv_ns, lines

    def on_server_state(self, connected: bool) -> None:
        """S,SERVER DISCONNECTED / CONNECTED: resubscribe fully when the link is back."""
        if connected and not self.server_connected:
            self.resubscribe()
        self.server_connected = connected

    def pump(self) -> None:
        """Queue the next subscription batch when due, then write what is queued."""
        if self.sock is None:
            return
        now = self.clock()
        if self._pending_watch and now >= self._next_batch_at and self.server_connected:
            for _ in range(min(self.subscriptions.batch_size, len(self._pending_watch))):
                symbol = self._pending_watch.popleft()
                self._outbox.append(f"{self._watch_command(symbol)}\r\n".encode())
                self.watched.add(symbol)
            self._next_batch_at = now + self.subscriptions.pause_s
        if self._outbox:
            data = b"".join(self._outbox)
            self._outbox.clear()
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self.drop(f"write failed: {exc}")
                return
            if sent < len(data):
                self._outbox.append(data[sent:])

    def _send(self, line: str) -> None:
        self._outbox.append(f"{line}\r\n".encode())

    @property
    def subscribing(self) -> bool:
        """True while watches are still queued."""
        return bool(self._pending_watch)
