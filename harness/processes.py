"""Processes the harness starts and talks to, by PID: the SUT's, feed_sim, the collector,
Locust, the ClickHouse writer.

`start_process` runs a command in its own session with its output in a log file;
`stop_process` sends SIGTERM and, after a timeout, kills the whole process group;
`wait_for_http` polls an endpoint until it answers (or the process exits); `post_json` calls a
JSON endpoint; `log_tail` quotes a log in an error message. Failures raise `ProcessError` (an
`InfraError`: exit code 4 of `harness run`) or the subclass a caller names with `error=` (the
SUT adapters name `SutError`, so a SUT that does not come up is reported as the SUT).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.infra.errors import InfraError


class ProcessError(InfraError):
    """A process of the run could not be started or reached; the message says which and why."""


def post_json(
    url: str, payload: Any, timeout_s: float, *, error: type[InfraError] = ProcessError
) -> Any:
    """POST `payload` as JSON; the decoded reply (None if not JSON). Raises `error`."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise error(f"POST {url}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise error(f"POST {url}: unreachable: {exc}") from exc
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def http_answers(url: str, timeout_s: float = 2.0, *, ok_only: bool = False) -> bool:
    """True if `url` answers a GET (any HTTP status; only 2xx when `ok_only`)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
            return True
    except urllib.error.HTTPError as exc:
        exc.close()
        return not ok_only
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for_http(
    url: str,
    timeout_s: float,
    *,
    ok_only: bool = False,
    still_running: Callable[[], bool] = lambda: True,
    what: str = "the SUT",
    log: Path | None = None,
    error: type[InfraError] = ProcessError,
) -> None:
    """Poll `url` until it answers; `error` if `what` exits first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if http_answers(url, timeout_s=2.0, ok_only=ok_only):
            return
        if not still_running():
            raise error(f"{what} exited before {url} answered{log_tail(log)}")
        if time.monotonic() > deadline:
            raise error(f"{what}: {url} did not answer within {timeout_s:g} s{log_tail(log)}")
        time.sleep(0.1)


def log_tail(log: Path | None, chars: int = 2000) -> str:
    """The end of a log file, formatted to append to an error message ("" if none)."""
    if log is None or not log.is_file():
        return ""
    text = log.read_text(errors="replace")[-chars:].strip()
    return f"\n--- last lines of {log} ---\n{text}" if text else f" (log {log} is empty)"


def start_process(
    argv: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    error: type[InfraError] = ProcessError,
) -> subprocess.Popen[bytes]:
    """Start `argv` (no shell) in its own session, stdout and stderr appended to `log`;
    `error` if it cannot be started."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            return subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise error(f"cannot start {argv[0]!r}: {exc}") from exc


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL its process group; the exit code.

    The process was started in its own session (`start_process`), so the kill also takes
    down any children it left behind.
    """
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return process.wait(timeout=30)
