"""What the run shows while it runs: the progress line on the console once a second and
live.json beside the results (stage, phase, time left, received rate, live P99), which the
Locust process (`--ui`) and anything else that wants to watch reads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.collector.replies import CollectorCounters
from harness.plan import Phase, PlanStatus
from harness.results.summary import write_atomic

log = logging.getLogger(__name__)


class LiveStatus:
    """The progress line and live.json of one run."""

    def __init__(self, path: Path, console: Console) -> None:
        self.path = path
        self.console = console
        self._last_consumed: tuple[int, int] | None = None
        """(t_ns, consumed messages) of the previous line: the received rate."""

    def progress(self, status: PlanStatus, counters: CollectorCounters | None, now_ns: int) -> None:
        """One progress line and live.json from the plan's status and the collector's counters."""
        live = rate = None
        if counters is not None:
            live = counters.live_p99_us
            now = (counters.t_ns, counters.consumed_messages)
            last = self._last_consumed
            if last is not None and now[0] > last[0]:
                rate = (now[1] - last[1]) * 1e9 / (now[0] - last[0])
            self._last_consumed = now
        p99 = f"{live / 1000:.1f} ms" if live is not None else "-"
        received = f"{rate:,.0f} msg/s" if rate is not None else "-"
        self.console.print(
            f"[dim]{status.label} {status.phase} {status.symbol_count} symbols, "
            f"{status.time_left_s:.0f} s left, received {received}, live P99 {p99}[/]",
            highlight=False,
        )
        self.write(
            label=status.label,
            phase=str(status.phase),
            symbols=status.symbol_count,
            time_left_s=status.time_left_s,
            second=now_ns // 1_000_000_000,
            p99_us=live,
            rate_msg_s=rate,
            done=status.phase is Phase.DONE,
        )

    def write(self, **status: Any) -> None:
        """live.json, replaced atomically (a warning if it cannot be written)."""
        try:
            write_atomic(self.path, json.dumps(status) + "\n")
        except OSError:
            log.warning("could not write %s", self.path, exc_info=True)
