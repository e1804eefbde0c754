"""A user's core started from the scenario's command template (`sut.kind: command`).

The template is split with shlex first and each word is expanded afterwards, so a value with
spaces (a path) stays one argument; there is no shell. Placeholders are exactly
`harness.scenario.COMMAND_PLACEHOLDERS`; anything else is a `SutError` naming it.
`{symbols_file}` is `<run_dir>/sut/symbols.json`, a JSON list of the current stage's tickers,
rewritten (atomically) before every reload.

Reload (`sut.reload.method`): `restart` stops the process and starts the command again,
`http` POSTs `{"symbols": [...]}` to `reload.url`, `signal` sends `reload.signal` (SIGHUP) to
the process, `none` only rewrites the file. Output goes to `<run_dir>/logs/sut.log`.
"""

from __future__ import annotations

import os
import shlex
import signal
import string
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.processes import log_tail, post_json, start_process, stop_process, wait_for_http
from harness.scenario import COMMAND_PLACEHOLDERS, CommandSut, ReloadConfig
from harness.sut.base import (
    FeedEndpoints,
    KafkaEndpoints,
    SutError,
    SystemUnderTest,
    write_symbols_file,
)

STARTUP_GRACE_S = 0.5
"""Without an admin URL to poll, a command still running after this long counts as started."""


def command_values(
    *,
    feed: FeedEndpoints,
    kafka: KafkaEndpoints,
    symbols_file: Path,
    universe_file: Path,
    symbol_count: int,
    admin_url: str | None,
    topics: Sequence[str],
    run_dir: Path,
    redis_url: str | None = None,
) -> dict[str, str]:
    """The value of every placeholder of COMMAND_PLACEHOLDERS."""
    values = {
        "feed_host": feed.host,
        "level1_port": str(feed.level1_port),
        "level2_port": str(feed.level2_port),
        "admin_port": str(feed.admin_port),
        "lookup_port": str(feed.lookup_port),
        "bootstrap": kafka.bootstrap,
        "symbols_file": str(symbols_file),
        "universe_file": str(universe_file),
        "symbol_count": str(symbol_count),
        "admin_url": admin_url or "",
        "topics": ",".join(topics),
        "run_dir": str(run_dir),
        "redis_url": redis_url or "",
    }
    assert set(values) == COMMAND_PLACEHOLDERS, "command_values out of step with the scenario"
    return values


def expand_text(text: str, values: Mapping[str, str], what: str = "sut.command") -> str:
    """`text` with its {placeholders} replaced; SutError names an unknown one."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise SutError(f"{what}: malformed template {text!r}: {exc}") from exc
    out: list[str] = []
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            known = ", ".join("{" + n + "}" for n in sorted(values))
            raise SutError(f"{what}: unknown placeholder {{{name}}}; known: {known}")
        if spec or conversion:
            raise SutError(f"{what}: placeholder {{{name}}} takes no format spec or conversion")
        out.append(values[name])
    return "".join(out)


def expand_command(
    template: str, values: Mapping[str, str], what: str = "sut.command"
) -> list[str]:
    """The argv of `template`: shlex-split, then each word expanded (no shell)."""
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise SutError(f"{what}: cannot split {template!r}: {exc}") from exc
    if not words:
        raise SutError(f"{what}: the command is empty")
    return [expand_text(word, values, what) for word in words]


def send_reload_signal(process: subprocess.Popen[bytes], reload: ReloadConfig) -> None:
    """Send `reload.signal` to a running process; SutError if it is gone."""
    if process.poll() is not None:
        raise SutError(
            f"cannot send {reload.signal}: the SUT (PID {process.pid}) exited "
            f"with code {process.returncode}"
        )
    try:
        process.send_signal(signal.Signals[reload.signal])
    except ProcessLookupError as exc:
        raise SutError(f"cannot send {reload.signal}: PID {process.pid} is gone") from exc


class CommandCore(SystemUnderTest):
    """A user's core run as a local process from a command template."""

    kind = "command"

    def __init__(
        self,
        config: CommandSut,
        run_dir: Path,
        universe_file: Path,
        *,
        cwd: Path | None = None,
    ) -> None:
        super().__init__(config.record_mapping)
        self.config = config
        self.configured_metrics_url = config.metrics_url
        self.run_dir = run_dir
        self.universe_file: Path = universe_file
        self.cwd = cwd if cwd is not None else config.cwd
        self.symbols_file = run_dir / "sut" / "symbols.json"
        self.log = run_dir / "logs" / "sut.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.argv: list[str] = []
        self.exit_code: int | None = None
        self.restarts = 0
        self.reloads = 0
        self._endpoints: tuple[FeedEndpoints, KafkaEndpoints] | None = None

    def values(
        self, symbols: list[str], feed: FeedEndpoints, kafka: KafkaEndpoints
    ) -> dict[str, str]:
        return command_values(
            feed=feed,
            kafka=kafka,
            symbols_file=self.symbols_file,
            universe_file=self.universe_file,
            symbol_count=len(symbols),
            admin_url=self.config.admin_url,
            topics=self.topics(),
            run_dir=self.run_dir,
            redis_url=self.redis_url,
        )

    def start(self, symbols: list[str], feed: FeedEndpoints, kafka: KafkaEndpoints) -> None:
        if self.alive():
            raise SutError(f"the SUT is already running (PID {self.pids()})")
        argv = expand_command(self.config.command, self.values(symbols, feed, kafka))
        write_symbols_file(self.symbols_file, symbols)
        self._endpoints = (feed, kafka)
        self.argv = argv
        self.exit_code = None
        env = {**os.environ, **self.config.env}
        process = start_process(argv, self.log, cwd=self.cwd, env=env, error=SutError)
        self.process = process
        try:
            self._wait_started(process)
        except SutError:
            self.stop(timeout_s=5)
            raise
        self.symbols = list(symbols)

    def _wait_started(self, process: subprocess.Popen[bytes]) -> None:
        what = f"the SUT command {self.argv[0]!r} (PID {process.pid})"
        if self.config.admin_url:
            wait_for_http(
                self.config.admin_url,
                self.config.startup_timeout_s,
                still_running=lambda: process.poll() is None,
                what=what,
                log=self.log,
                error=SutError,
            )
            return
        deadline = time.monotonic() + min(STARTUP_GRACE_S, self.config.startup_timeout_s)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SutError(
                    f"{what} exited with code {process.returncode} right after starting"
                    f"{log_tail(self.log)}"
                )
            time.sleep(0.05)

    def set_symbols(self, symbols: list[str]) -> None:
        reload = self.config.reload
        if self._endpoints is None:
            raise SutError("cannot set symbols: the SUT was never started")
        if reload.method == "restart":
            self.stop(reload.timeout_s)
            self.start(symbols, *self._endpoints)
            self.restarts += 1
            return
        if not self.alive():
            raise SutError(f"cannot reload: the SUT is not running (exit code {self.exit_code})")
        write_symbols_file(self.symbols_file, symbols)
        if reload.method == "http":
            assert reload.url is not None  # the scenario checks: http needs a url
            post_json(reload.url, {"symbols": symbols}, reload.timeout_s, error=SutError)
        elif reload.method == "signal":
            assert self.process is not None
            send_reload_signal(self.process, reload)
        self.reloads += 1
        self.symbols = list(symbols)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None and self.alive() else []

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.process is None:
            return self.exit_code
        self.exit_code = stop_process(self.process, timeout_s)
        return self.exit_code

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "command": self.argv,
            "template": self.config.command,
            "reload": self.config.reload.model_dump(mode="json"),
            "pid": self.process.pid if self.process is not None else None,
            "restarts": self.restarts,
            "reloads": self.reloads,
            "symbols_file": str(self.symbols_file),
            "log": str(self.log),
            "exit_code": self.exit_code,
        }
