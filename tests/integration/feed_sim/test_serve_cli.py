"""`feed-sim` as a real subprocess: `serve` binds (IQFeed ports 0 = free ports, found through the
control API's /status), serves a client, and stops cleanly with exit code 0 on SIGTERM; every
subcommand explains itself; `convert` turns the real tick history into a tape."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feed_sim.control_client import ControlClientError, FeedSimControl
from feed_sim.tape.format import read_header
from harness.infra.ports import free_ports

from .conftest import LineClient

pytestmark = pytest.mark.integration

FEED_SIM = Path(sys.executable).parent / "feed-sim"
SUBCOMMANDS = ("serve", "generate", "convert", "record", "amplify")


def _feed_sim() -> list[str]:
    if FEED_SIM.exists():
        return [str(FEED_SIM)]
    return [sys.executable, "-m", "feed_sim.cli"]


@pytest.fixture
def served(small_tape: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`feed-sim serve` on free ports; killed (by its PID) if the test did not stop it."""
    (control_port,) = free_ports(1)
    log = (tmp_path / "serve.log").open("wb")
    command = [
        *_feed_sim(),
        "serve",
        "--tape",
        str(small_tape),
        "--level1-port",
        "0",
        "--level2-port",
        "0",
        "--admin-port",
        "0",
        "--lookup-port",
        "0",
        "--control-port",
        str(control_port),
        "--mode",
        "fixed",
        "--rate",
        "20",
        "--status-every",
        "0",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, control_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def test_serve_runs_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    process, control_port = served
    control = FeedSimControl(f"http://127.0.0.1:{control_port}", timeout_s=5)
    deadline = time.monotonic() + 60
    status = None
    while status is None and time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            status = control.status()
        except ControlClientError:
            time.sleep(0.2)
    assert status is not None, "feed-sim serve did not come up"
    ports = status["ports"]
    assert all(ports[name] > 0 for name in ("level1", "level2", "admin", "lookup"))
    assert status["symbols_loaded"] == 3 and status["running"] is True

    with LineClient(ports["level1"]) as client:
        client.handshake()
        client.send("wAAPL")
        client.until(lambda s: s.startswith("Q,AAPL,"))
    with LineClient(ports["lookup"]) as lookup:
        lookup.send("HTX,AAPL,3,1")
        _, rows = lookup.until(lambda s: s == "!ENDMSG!,")
        assert len(rows) == 3

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    output = " ".join((tmp_path / "serve.log").read_text().split())
    assert "feed-sim serving 3 symbols" in output
    assert "feed-sim stopped" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("subcommand", [None, *SUBCOMMANDS])
def test_help(subcommand: str | None) -> None:
    args = [*_feed_sim(), *([subcommand] if subcommand else []), "--help"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    if subcommand is None:
        assert all(name in result.stdout for name in SUBCOMMANDS)


def test_convert_real_history(real_history_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "smcp.tape.zst"
    result = subprocess.run(
        [*_feed_sim(), "convert", str(real_history_zip), "--symbol", "smcp", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "32,627 trades" in " ".join(result.stderr.split())  # rich wraps long lines
    header = read_header(out)
    assert header.event_count == 32_627
    assert header.symbols == ("SMCP",)
    assert header.source.startswith("converted:")
