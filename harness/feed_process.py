"""`FeedSimProcess`: feed_sim as a subprocess of the run (`feed-sim serve --paused`).

feed_sim runs in its own process (it paces with asyncio; the harness process may host Locust's
gevent). It starts paused, on free loopback ports by default (the control port picked with
`free_ports`, retried with another if it was taken before feed_sim bound it; the four IQConnect
ports bound as port 0 and read back from the control API's `/status`), serving the scenario's
tapes or the generated default session (`--symbols/--minutes/--seed`), at the scenario's rate.
`start()` returns once the control API answers (a generated session takes seconds to generate
or to read from feed_sim's session cache, then to load; `start(on_progress=...)` gets each line
feed_sim logs meanwhile, e.g. for a status line); the stage runner then drives it through
`control` (symbols, rate, stage, start).
`stop()` sends SIGTERM (clean shutdown), KILL after the timeout. Output goes to
`<run_dir>/logs/feed_sim.log`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from feed_sim.control_client import ControlClientError, FeedSimControl
from harness.defaults import SYMBOL_COUNT
from harness.infra.errors import InfraError
from harness.infra.ports import free_ports
from harness.processes import log_tail, start_process, stop_process
from harness.scenario import FeedPorts, Scenario, TapeTimingRate
from harness.sut.base import FeedEndpoints

BIND_ATTEMPTS = 3
"""Tries with a fresh free control port when feed_sim could not bind the one picked (another
process took it between `free_ports` and feed_sim's bind; Kafka clients open ephemeral ports
all the time)."""
BIND_ERROR = "Address already in use"


class LogLines:
    """The complete lines appended to a log file after an offset; each `read()` returns the
    ones not returned before (stripped, empty ones left out)."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset

    def read(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []  # a line still being written
        self.offset += end + 1
        lines = data[:end].decode(errors="replace").splitlines()
        return [line.strip() for line in lines if line.strip()]


class FeedSimProcess:
    """A `feed-sim serve --paused` subprocess and its control client."""

    def __init__(
        self,
        scenario: Scenario,
        run_dir: Path,
        *,
        fixed_ports: bool = False,
        startup_timeout_s: float = 300.0,
        python: str = sys.executable,
    ) -> None:
        """feed_sim for `scenario`: its source, rate model and (if `fixed_ports`) its ports.

        The generated default session covers the largest stage (feed_sim selects its symbols
        with the same tier-stratified rule as the stages). tier_weighted starts as fixed; the
        runner posts the weights through the control API.
        """
        feed = scenario.feed
        rate = feed.rate
        self.run_dir = run_dir
        self.tapes = [scenario.resolve(t) for t in feed.tapes] if feed.source != "generated" else []
        self.generated_symbols = min(SYMBOL_COUNT, max(s.symbols for s in scenario.stages))
        self.minutes = feed.generated.minutes
        self.seed = feed.generated.seed
        self.mode = "tape" if isinstance(rate, TapeTimingRate) else "fixed"
        self.rate_hz = 100.0 if isinstance(rate, TapeTimingRate) else rate.rate_per_symbol_hz
        self.speed = rate.speed if isinstance(rate, TapeTimingRate) else 1.0
        self.render = "live" if isinstance(rate, TapeTimingRate) else rate.render
        self.l2_rate_hz = feed.level2_rate_per_symbol_hz
        self.host = feed.host
        self.ports: FeedPorts | None = feed.ports if fixed_ports else None
        """Fixed ports (the scenario's); None = free ports."""
        self.startup_timeout_s = startup_timeout_s
        self.python = python
        self.log = run_dir / "logs" / "feed_sim.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.argv: list[str] = []
        self._endpoints: FeedEndpoints | None = None
        self._control: FeedSimControl | None = None

    def command(self, control_port: int) -> list[str]:
        ports = self.ports
        argv = [
            self.python, "-m", "feed_sim.cli", "serve", "--paused",
            "--host", self.host,
            "--level1-port", str(ports.level1 if ports else 0),
            "--level2-port", str(ports.level2 if ports else 0),
            "--admin-port", str(ports.admin if ports else 0),
            "--lookup-port", str(ports.lookup if ports else 0),
            "--control-port", str(control_port),
            "--mode", self.mode,
            "--rate", repr(self.rate_hz),
            "--l2-rate", repr(self.l2_rate_hz),
            "--speed", repr(self.speed),
            "--render", self.render,
        ]  # fmt: skip
        if self.tapes:
            for tape in self.tapes:
                argv += ["--tape", str(tape)]
        else:
            argv += [
                "--symbols", str(self.generated_symbols),
                "--minutes", repr(self.minutes),
                "--seed", str(self.seed),
            ]  # fmt: skip
        return argv

    def start(self, on_progress: Callable[[str], None] | None = None) -> FeedEndpoints:
        """Start feed_sim (paused); returns its endpoints once the control API answers.

        `on_progress` receives, in order, each line feed_sim writes to its log while it starts
        (what it generates or loads and how far, a cache warning), the last ones right after
        the API answered; e.g. a rich status shows the newest with
        `status.update(rich.markup.escape(line))` (raw log text may hold brackets). feed_sim
        is stopped if it raises.
        """
        if self.alive():
            raise InfraError(f"feed_sim is already running (PID {self.pid})")
        attempts = 1 if self.ports else BIND_ATTEMPTS
        for attempt in range(1, attempts + 1):
            control_port = self.ports.control if self.ports else free_ports(1, self.host)[0]
            self.argv = self.command(control_port)
            self.exit_code = None
            log_start = self.log.stat().st_size if self.log.exists() else 0
            self.process = start_process(self.argv, self.log)
            control = FeedSimControl(f"http://{self.host}:{control_port}", timeout_s=10)
            try:
                status = self._wait_status(control, LogLines(self.log, log_start), on_progress)
                break
            except InfraError:
                self.stop(timeout_s=5)
                lost_port = BIND_ERROR in self._log_since(log_start)
                if not lost_port or attempt == attempts:
                    raise
            except BaseException:
                self.stop(timeout_s=5)
                raise
        try:
            bound = status["ports"]
            self._endpoints = FeedEndpoints(
                host=self.host,
                level1_port=int(bound["level1"]),
                level2_port=int(bound["level2"]),
                admin_port=int(bound["admin"]),
                lookup_port=int(bound["lookup"]),
                control_port=control_port,
            )
        except (InfraError, KeyError, TypeError, ValueError) as exc:
            self.stop(timeout_s=5)
            if isinstance(exc, InfraError):
                raise
            raise InfraError(f"feed_sim /status has no usable ports: {exc}") from exc
        self._control = control
        return self._endpoints

    def _log_since(self, offset: int) -> str:
        try:
            with self.log.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait_status(
        self,
        control: FeedSimControl,
        log: LogLines,
        on_progress: Callable[[str], None] | None,
    ) -> dict[str, Any]:
        def relay() -> None:
            if on_progress is not None:
                for line in log.read():
                    on_progress(line)

        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            relay()
            if not self.alive():
                code = None if self.process is None else self.process.poll()
                raise InfraError(
                    f"feed_sim exited with code {code} before its control API "
                    f"answered{log_tail(self.log)}"
                )
            try:
                status = control.status()
            except ControlClientError:
                pass
            else:
                relay()
                return status
            if time.monotonic() > deadline:
                raise InfraError(
                    f"feed_sim's control API at {control.base_url} did not answer within "
                    f"{self.startup_timeout_s:g} s{log_tail(self.log)}"
                )
            time.sleep(0.2)

    @property
    def endpoints(self) -> FeedEndpoints:
        if self._endpoints is None:
            raise InfraError("feed_sim is not started")
        return self._endpoints

    @property
    def control(self) -> FeedSimControl:
        if self._control is None:
            raise InfraError("feed_sim is not started")
        return self._control

    @property
    def pid(self) -> int | None:
        return None if self.process is None else int(self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, KILL after `timeout_s`; the exit code (None if never started)."""
        if self.process is None:
            return self.exit_code
        self.exit_code = stop_process(self.process, timeout_s)
        return self.exit_code

    def describe(self) -> dict[str, Any]:
        endpoints = self._endpoints
        return {
            "command": self.argv,
            "pid": self.pid,
            "mode": self.mode,
            "render": self.render,
            "source": "tapes" if self.tapes else "generated",
            "endpoints": None
            if endpoints is None
            else {
                "host": endpoints.host,
                "level1": endpoints.level1_port,
                "level2": endpoints.level2_port,
                "admin": endpoints.admin_port,
                "lookup": endpoints.lookup_port,
                "control": endpoints.control_port,
            },
            "log": str(self.log),
            "exit_code": self.exit_code,
        }

    def __enter__(self) -> FeedSimProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
