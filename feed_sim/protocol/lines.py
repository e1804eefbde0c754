"""How client bytes become commands (iqfeed-protocol.md §1.2, gotchas 10, 11).

IQConnect accepts `\\r\\n`, `\\n`, `\\r` or nothing at the end of a command. For one
connection, a command is complete:

* at any of `\\r\\n`, `\\n`, `\\r` (so `\\r\\r\\n` and `\\n\\r` too); empty lines are ignored;
* where the next command starts right after it, if the grammar makes that boundary certain
  (`feed_sim.protocol.merged_commands`): `S,UNWATCH ALLwAAPL` is `S,UNWATCH ALL` then `wAAPL`,
  the first taken as soon as the second's start arrives;
* when the connection idles: no byte for `IDLE_COMPLETE_S` after a command left without a
  terminator (pyiqfeed's `S,UNWATCH ALL`); the session's timer calls `LineSplitter.flush`
  (`feed_sim.server.command_input`), as it does at end of input.

`LineSplitter` decodes latin-1 and discards an over-long line without buffering it.
"""

from __future__ import annotations

import re

from feed_sim.protocol.merged_commands import merged_commands

MAX_LINE_BYTES = 4_096
"""Longest accepted client line (a SELECT UPDATE FIELDS of all 70 names is about 1.2 KB)."""

IDLE_COMPLETE_S = 0.1
"""How long a connection is silent before an unterminated command counts as complete. Longer
than the 40 ms a Linux peer may delay its ACK, so a command that a Nagle-buffered client writes
in two pieces still arrives whole; short enough that a missing terminator costs a client only
this delay."""

_TERMINATOR = re.compile(rb"[\r\n]")


class LineSplitter:
    """Incremental client-command splitter of one port, with bounded memory."""

    __slots__ = ("_buffer", "_discarding", "_merged", "discarded", "max_line")

    def __init__(self, port: str = "", max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self.discarded = 0
        """Number of over-long lines dropped so far."""
        self._merged = merged_commands(port)
        self._buffer = b""
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished command (never more than `max_line`)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[str]:
        """Add received bytes; return the complete, non-empty commands they finish."""
        parts = _TERMINATOR.split(self._buffer + data if self._buffer else data)
        tail = parts.pop()
        commands: list[bytes] = []
        for part in parts:
            if self._discarding:
                self._discarding = False  # the terminator ends the discarded line
            elif len(part) > self.max_line:
                self.discarded += 1
            elif part:
                commands += self._merged.split(part)
        if self._discarding:
            self._buffer = b""
        elif len(tail) > self.max_line:
            self.discarded += 1
            self._discarding = True
            self._buffer = b""
        else:
            *finished, self._buffer = self._merged.split(tail)  # the next one has begun
            commands += finished
        return [c.decode("latin-1") for c in commands if c]

    def flush(self) -> list[str]:
        """The pending unterminated command(s), taken as complete: when the connection idles
        or at end of input."""
        tail, self._buffer = self._buffer, b""
        self._discarding = False
        return [c.decode("latin-1") for c in self._merged.split(tail) if c]
