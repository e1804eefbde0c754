"""The reference core (`ingest`) as a SUT: a `python -m ingest.cli run` subprocess.

`start` writes the core's config (connections, Level 2) into the run directory and starts
`python -m ingest.cli run --config ... --feed-host ... --level1-port ... --level2-port ...
--bootstrap ... --symbols-file UNIVERSE --symbol X ... --metrics-port P` on a free loopback
metrics port, logging to `<run_dir>/logs/sut.log`, and returns once `/healthz` answers.
Symbol sets change live through the core's admin API (`POST /admin/symbols`, same PID);
`stop` sends SIGTERM (the core drains its producer; exit 0 = nothing lost), KILL after the
timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.infra.ports import LOOPBACK, free_ports
from harness.paths import repo_root
from harness.processes import post_json, start_process, stop_process, wait_for_http
from harness.scenario import ReferenceSut
from harness.sut.base import FeedEndpoints, KafkaEndpoints, SutError, SystemUnderTest


class ReferenceCore(SystemUnderTest):
    """Our ingestion core, started and stopped by the harness."""

    kind = "reference"

    def __init__(
        self,
        config: ReferenceSut,
        run_dir: Path,
        universe_file: Path,
        *,
        startup_timeout_s: float = 60.0,
        reload_timeout_s: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        super().__init__(config.record_mapping)
        self.config = config
        self.run_dir = run_dir
        self.universe_file: Path = universe_file
        self.startup_timeout_s = startup_timeout_s
        self.reload_timeout_s = reload_timeout_s
        self.python = python
        self.config_file = run_dir / "sut" / "ingest-config.json"
        self.log = run_dir / "logs" / "sut.log"
        self.metrics_port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.argv: list[str] = []

    def partitions_for(self, symbols: Sequence[str]) -> list[int]:
        """The reference core writes a symbol to its universe partition (contract 4)."""
        return self.universe_partitions(symbols)

    @property
    def admin_url(self) -> str:
        if self.metrics_port is None:
            raise SutError("the reference core is not started")
        return f"http://{LOOPBACK}:{self.metrics_port}"

    def command(self, symbols: list[str], feed: FeedEndpoints, kafka: KafkaEndpoints) -> list[str]:
        """The `ingest run` command line for these symbols and endpoints."""
        argv = [
            self.python, "-m", "ingest.cli", "run",
            "--config", str(self.config_file),
            "--feed-host", feed.host,
            "--level1-port", str(feed.level1_port),
            "--level2-port", str(feed.level2_port),
            "--bootstrap", kafka.bootstrap,
            "--symbols-file", str(self.universe_file),
            "--metrics-host", LOOPBACK,
            "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        for symbol in symbols:
            argv += ["--symbol", symbol]
        return argv

    def _write_config(self) -> None:
        settings: dict[str, Any] = {
            "feed": {"connections": self.config.connections, "level2": self.config.level2},
        }
        kafka: dict[str, Any] = {"partitions": self.topic_partitions()}
        if self.config.kafka_producers is not None:
            kafka["producers"] = self.config.kafka_producers
        if self.config.kafka_linger_ms is not None:
            kafka["linger_ms"] = self.config.kafka_linger_ms
        if self.config.kafka_producer:
            kafka["producer"] = dict(self.config.kafka_producer)
        settings["kafka"] = kafka
        if self.redis_url:
            settings["redis"] = {
                "enabled": True,
                "url": self.redis_url,
                "interval_s": self.config.redis_interval_s,
            }
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(settings, indent=2) + "\n")

    def start(self, symbols: list[str], feed: FeedEndpoints, kafka: KafkaEndpoints) -> None:
        if self.process is not None and self.process.poll() is None:
            raise SutError(f"the reference core is already running (PID {self.process.pid})")
        if not symbols:
            raise SutError("the reference core needs at least one symbol")
        self._write_config()
        (self.metrics_port,) = free_ports(1)
        self.argv = self.command(symbols, feed, kafka)
        self.exit_code = None
        self.process = start_process(self.argv, self.log, cwd=repo_root(), error=SutError)
        process = self.process
        try:
            wait_for_http(
                f"{self.admin_url}/healthz",
                self.startup_timeout_s,
                ok_only=True,
                still_running=lambda: process.poll() is None,
                what=f"the reference core (PID {process.pid})",
                log=self.log,
                error=SutError,
            )
        except SutError:
            self.stop(timeout_s=5)
            raise
        self.symbols = list(symbols)

    def set_symbols(self, symbols: list[str]) -> None:
        if not self.alive():
            raise SutError("cannot set symbols: the reference core is not running")
        reply = post_json(
            f"{self.admin_url}/admin/symbols",
            {"symbols": symbols},
            self.reload_timeout_s,
            error=SutError,
        )
        wanted = len(dict.fromkeys(s.upper() for s in symbols))
        if not isinstance(reply, dict) or reply.get("symbols") != wanted:
            raise SutError(f"the reference core answered {reply!r} to {wanted} symbol(s)")
        self.symbols = list(symbols)

    def metrics_url(self) -> str | None:
        """The core's /metrics (lag quantiles, counters, librdkafka's producer statistics)."""
        return None if self.metrics_port is None else f"{self.admin_url}/metrics"

    def state(self) -> dict[str, Any]:
        """The core's `GET /admin/state` (symbols, connections, Kafka and process stats)."""
        from urllib.request import urlopen

        with urlopen(f"{self.admin_url}/admin/state", timeout=10) as response:
            state: dict[str, Any] = json.loads(response.read())
        return state

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        return [self.process.pid] if self.alive() and self.process is not None else []

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.process is None:
            return self.exit_code
        self.exit_code = stop_process(self.process, timeout_s)
        return self.exit_code

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "command": self.argv,
            "pid": self.process.pid if self.process is not None else None,
            "admin_url": self.admin_url if self.metrics_port is not None else None,
            "config": self.config.model_dump(mode="json"),
            "config_file": str(self.config_file),
            "log": str(self.log),
            "exit_code": self.exit_code,
        }
