"""`harness run --ui`: the Locust web UI process follows the runner's live.json.

A real `python -m harness.locust_ui` process on a free loopback port: Locust's own
/stats/requests endpoint shows the stage's symbols as users and the per-second lag P99 and
received rate the status file carries; a rollback to fewer symbols lowers the users; "done"
ends the process. It is stopped by PID in a `finally` whatever happens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.infra.ports import LOOPBACK, free_ports
from harness.results.summary import write_atomic
from harness.sut.base import stop_process

pytestmark = pytest.mark.integration

WAIT_S = 60.0


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/stats/requests", timeout=5) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


def write_status(path: Path, **status: Any) -> None:
    write_atomic(path, json.dumps(status))


def test_locust_ui_follows_the_live_status(tmp_path: Path) -> None:
    live = tmp_path / "live.json"
    (port,) = free_ports(1)
    write_status(live, label="stage-1", symbols=5, second=1, p99_us=12_000, rate_msg_s=500.0)
    argv = [sys.executable, "-m", "harness.locust_ui", "--status", str(live),
            "--port", str(port), "--linger-s", "0"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for("5 users", lambda: stats(port).get("user_count") == 5)
        # A new second of figures (Locust cleared its stats when the users started).
        write_status(live, label="stage-1", symbols=5, second=2, p99_us=12_000, rate_msg_s=500.0)
        rows = wait_for(
            "the lag row",
            lambda: [r for r in stats(port)["stats"] if r["name"] == "total lag P99 (ms)"],
        )
        assert rows[0]["method"] == "lag" and rows[0]["max_response_time"] == pytest.approx(12.0)
        assert any(r["name"] == "received msg/s" for r in stats(port)["stats"])
        # A step back to fewer symbols: Locust's users follow.
        write_status(live, label="verify-1", symbols=2, second=3, p99_us=3_000, rate_msg_s=200.0)
        wait_for("2 users", lambda: stats(port).get("user_count") == 2)
        write_status(live, label="done", symbols=0, done=True)
        assert proc.wait(timeout=WAIT_S) == 0
    finally:
        if proc.poll() is None:
            stop_process(proc, timeout_s=10)
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    assert f"http://{LOOPBACK}:{port}" in output
