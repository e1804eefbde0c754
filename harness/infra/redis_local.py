"""A real redis-server (Debian's) on loopback, as the readiness review sizes it: AOF on,
fsync every second (`appendonly yes`, `appendfsync everysec`), no RDB snapshots.

`LocalRedis.up()` starts it on a free 127.0.0.1 port with its data in `<state_dir>/redis/`,
waits until it answers PING and records its state (port, PID, data folder) in
`<state_dir>/redis.json`; `down()` stops exactly that PID (SIGTERM, then SIGKILL) and is
idempotent. `harness infra up --redis`, `harness run` (`infra.redis: true`) and the tests use
it; `used_memory()` is what a run reports per hold.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import redis

from harness import paths
from harness.infra.errors import InfraError
from harness.infra.ports import LOOPBACK, free_ports

STATE_FILE = "redis.json"
INSTALL_HINT = "install it with scripts/install-system-deps.sh (Debian package redis-server)"


@dataclass(frozen=True)
class RedisState:
    host: str
    port: int
    pid: int
    data_dir: str

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def server_command(port: int, data_dir: Path) -> list[str]:
    """redis-server on loopback with AOF fsync every second and no RDB snapshots."""
    return [
        "redis-server",
        "--bind", LOOPBACK,
        "--port", str(port),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--dir", str(data_dir),
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip


class LocalRedis:
    """One redis-server this project started, found again through its state file."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir if state_dir is not None else paths.state_dir()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    def state(self) -> RedisState | None:
        if not self.state_file.is_file():
            return None
        return RedisState(**json.loads(self.state_file.read_text()))

    def up(self, timeout_s: float = 20.0) -> RedisState:
        """Start redis-server and wait until it answers; InfraError naming the cause."""
        running = self.state()
        if running is not None and _alive(running.pid):
            raise InfraError(
                f"a local redis-server is already running (pid {running.pid}, state "
                f"{self.state_file}); run `harness infra down` first"
            )
        if shutil.which("redis-server") is None:
            raise InfraError(f"redis-server is not installed; {INSTALL_HINT}")
        data_dir = self.state_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_ports(1)[0]
        # Its own session and no inherited stdio (it logs to --logfile): a caller capturing
        # `harness infra up`'s output is not held open by the server it leaves running.
        self._process = subprocess.Popen(
            server_command(port, data_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        state = RedisState(LOOPBACK, port, self._process.pid, str(data_dir))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(state)))
        try:
            self._wait_ready(state, timeout_s)
        except InfraError:
            self.down()
            raise
        return state

    def _wait_ready(self, state: RedisState, timeout_s: float) -> None:
        client = redis.Redis(host=state.host, port=state.port, socket_timeout=2)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    exited = self._process is not None and self._process.poll() is not None
                    if exited or time.monotonic() > deadline:
                        log = Path(state.data_dir) / "redis.log"
                        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                        raise InfraError(
                            f"redis-server did not start on port {state.port}: {tail}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def down(self) -> int | None:
        """Stop the recorded redis-server by PID; its PID, or None if none was running."""
        state = self.state()
        if state is None:
            return None
        stopped = None
        if _alive(state.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(state.pid)
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except psutil.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            stopped = state.pid
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=1)
        self.state_file.unlink(missing_ok=True)
        return stopped

    def used_memory(self) -> int | None:
        """redis-server's `used_memory` (bytes), or None when it does not answer."""
        state = self.state()
        if state is None:
            return None
        client = redis.Redis(host=state.host, port=state.port, socket_timeout=1)
        try:
            return int(client.info("memory")["used_memory"])
        except redis.RedisError:
            return None
        finally:
            client.close()


def _alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "redis-server" in process.name()
    except psutil.NoSuchProcess:
        return False
