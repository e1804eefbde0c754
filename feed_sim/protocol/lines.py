"""How client bytes become lines (iqfeed-protocol.md §1.2, gotchas 10, 11): `LineSplitter`
accepts any of `\\r\\n`, `\\n`, `\\r`, `\\r\\r\\n`, `\\n\\r`, ignores empty lines, decodes
latin-1 and discards over-long lines without buffering them."""

from __future__ import annotations

import re

MAX_LINE_BYTES = 4_096
"""Longest accepted client line (a SELECT UPDATE FIELDS of all 70 names is about 1.2 KB)."""

_TERMINATOR = re.compile(rb"[\r\n]")


class LineSplitter:
    """Incremental client-line splitter with bounded memory."""

    __slots__ = ("_buffer", "_discarding", "discarded", "max_line")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self.discarded = 0
        """Number of over-long lines dropped so far."""
        self._buffer = b""
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held for an unterminated line (never more than `max_line`)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[str]:
        """Add received bytes; return the complete, non-empty lines they finish."""
        parts = _TERMINATOR.split(self._buffer + data if self._buffer else data)
        tail = parts.pop()
        lines: list[str] = []
        for part in parts:
            if self._discarding:
                self._discarding = False  # the terminator ends the discarded line
            elif len(part) > self.max_line:
                self.discarded += 1
            elif part:
                lines.append(part.decode("latin-1"))
        if self._discarding:
            self._buffer = b""
        elif len(tail) > self.max_line:
            self.discarded += 1
            self._discarding = True
            self._buffer = b""
        else:
            self._buffer = tail
        return lines

    def flush(self) -> list[str]:
        """At end of input: the unterminated last line, if any (pyiqfeed's `S,UNWATCH ALL`)."""
        tail, self._buffer = self._buffer, b""
        self._discarding = False
        return [tail.decode("latin-1")] if tail else []
