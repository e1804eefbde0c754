"""Signal actions run on a helper thread, never inside the handler.

A Python signal handler runs on the main thread between two bytecodes, possibly while that
thread holds a lock: inside `threading.Event.wait` it holds the event's own lock, so an
`Event.set()` in the handler can deadlock the process (seen as a core that ignores SIGTERM).
The handlers here only put the signal number on a `queue.SimpleQueue`, whose `put` is
documented as safe in signal handlers; a daemon thread takes it and runs the action.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType

log = logging.getLogger(__name__)


class SignalRelay:
    """signal number -> action, each action run on the relay's own daemon thread, in order."""

    def __init__(self, actions: Mapping[int, Callable[[], object]]) -> None:
        self.actions = dict(actions)
        self._received: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._relay, name="signal-relay", daemon=True)

    def install(self) -> None:
        """Start the relay thread and install the handlers (call from the main thread)."""
        self._thread.start()
        for signum in self.actions:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._received.put(signum)

    def _relay(self) -> None:
        while True:
            signum = self._received.get()
            try:
                self.actions[signum]()
            except Exception:  # a failed reload must not end the relay: SIGTERM still has to work
                log.exception("the action for %s failed", signal.Signals(signum).name)
