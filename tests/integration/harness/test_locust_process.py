"""The Locust process of a run (`python -m harness.locust_process`) follows live.json.

Real processes on free loopback ports: with the web UI, Locust's own /stats/requests endpoint
shows the stage's symbols as users and the per-second lag P99 and received rate the status
file carries, a rollback to fewer symbols lowers the users, "done" ends the process; headless,
Locust's CSV writer keeps a per-second history whose user counts follow the stages, and SIGTERM
ends it with the files written. Each process is stopped by PID in a `finally`.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from harness.infra.ports import LOOPBACK, free_ports
from harness.processes import stop_process
from harness.results.summary import write_atomic

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


def start(live: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "harness.locust_process", "--status", str(live), *extra]
    out: IO[bytes] = log.open("wb")
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def test_web_ui_follows_the_live_status(tmp_path: Path) -> None:
    live, log = tmp_path / "live.json", tmp_path / "locust.log"
    (port,) = free_ports(1)
    write_status(live, label="stage-1", symbols=5, second=1, p99_us=12_000, rate_msg_s=500.0)
    proc = start(live, log, "--web-port", str(port), "--linger-s", "0")
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
    assert f"http://{LOOPBACK}:{port}" in log.read_text()


def test_headless_keeps_csv_history_and_ends_on_sigterm(tmp_path: Path) -> None:
    live, log = tmp_path / "live.json", tmp_path / "locust.log"
    prefix = tmp_path / "locust" / "run"
    write_status(live, label="stage-1", symbols=5, second=1, p99_us=12_000, rate_msg_s=500.0)
    proc = start(live, log, "--csv", str(prefix))
    try:
        wait_for("5 users", lambda: "updating to 5 users" in log.read_text())
        write_status(live, label="stage-1", symbols=5, second=2, p99_us=12_000, rate_msg_s=500.0)
        time.sleep(2.5)  # the CSV writer adds a history row each second
        write_status(live, label="verify-1", symbols=2, second=3, p99_us=3_000, rate_msg_s=200.0)
        wait_for("2 users", lambda: "updating to 2 users" in log.read_text())
        time.sleep(2.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_S) == 0
    finally:
        if proc.poll() is None:
            stop_process(proc, timeout_s=10)
    assert "locust process finished" in log.read_text()
    with Path(f"{prefix}_stats_history.csv").open() as f:
        history = list(csv.DictReader(f))
    users = [int(row["User Count"]) for row in history if row["Name"] == "Aggregated"]
    assert 5 in users and 2 in users and users.index(5) < users.index(2) and users[-1] == 2
    with Path(f"{prefix}_stats.csv").open() as f:
        names = {row["Name"] for row in csv.DictReader(f)}
    assert {"total lag P99 (ms)", "received msg/s"} <= names
