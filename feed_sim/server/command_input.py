"""Client bytes in, complete commands out, for one connection: the port's `LineSplitter`
(terminators, merged commands) plus the idle rule's timer, which takes a command left without
a terminator as complete once no byte has followed it for `IDLE_COMPLETE_S`
(feed_sim.protocol.lines)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from feed_sim.protocol.lines import IDLE_COMPLETE_S, LineSplitter


class CommandInput:
    """Feeds received bytes to a `LineSplitter` and hands every complete command, in order,
    to `deliver`: as the bytes arrive, when the connection idles, or at end of input."""

    __slots__ = ("_deliver", "_idle_timer", "idle_s", "splitter")

    def __init__(
        self,
        port: str,
        deliver: Callable[[list[str]], None],
        idle_s: float = IDLE_COMPLETE_S,
    ) -> None:
        self.splitter = LineSplitter(port)
        self.idle_s = idle_s
        self._deliver = deliver
        self._idle_timer: asyncio.TimerHandle | None = None

    def feed(self, data: bytes) -> None:
        """Bytes received: deliver what they complete; (re)start the idle timer while part
        of a command is pending."""
        commands = self.splitter.feed(data)
        self._cancel_timer()
        if self.splitter.buffered:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self.idle_s, self._on_idle)
        if commands:
            self._deliver(commands)

    def end(self) -> None:
        """End of input: the pending command is complete."""
        self._on_idle()

    def close(self) -> None:
        """The connection is gone: drop the timer."""
        self._cancel_timer()

    def _on_idle(self) -> None:
        self._cancel_timer()
        commands = self.splitter.flush()
        if commands:
            self._deliver(commands)

    def _cancel_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
