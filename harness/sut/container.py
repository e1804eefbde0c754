"""A user's core in a container, run with the docker SDK (`sut.kind: container`).

The image runs detached with the expanded command template (same placeholders and shlex rule
as `harness.sut.command`), the scenario's env, network mode `host` by default (so feed_sim and
Kafka on loopback are reachable) and labels that name the run. The run directory is mounted
read-write and the universe file read-only at their host paths, so `{symbols_file}`,
`{run_dir}` and `{universe_file}` mean the same inside the container.

Reload: `restart` (stop, remove, run again), `http` (POST `{"symbols": [...]}`), `signal`
(`container.kill(signal)`) or `none`; the symbols file is rewritten first in every case.
Without a reachable Docker engine `start` raises `SutError("Docker engine unavailable: ...")`.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from harness.processes import post_json, wait_for_http
from harness.sampler import ContainerUsage, UsageSource
from harness.scenario import ContainerSut
from harness.sut.base import (
    FeedEndpoints,
    KafkaEndpoints,
    SutError,
    SystemUnderTest,
    write_symbols_file,
)
from harness.sut.command import command_values, expand_command

LABEL = "iqfeed-harness.role"


def docker_client(timeout_s: float = 10.0) -> Any:
    """A docker SDK client whose engine answered a ping; SutError otherwise."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=int(max(1, timeout_s)))
        client.ping()
    except (DockerException, OSError) as exc:
        raise SutError(
            f"Docker engine unavailable: {exc} (a container SUT needs a running Docker engine; "
            "check DOCKER_HOST or /var/run/docker.sock)"
        ) from exc
    return client


class ContainerCore(SystemUnderTest):
    """A user's core as a Docker container on this host."""

    kind = "container"

    def __init__(self, config: ContainerSut, run_dir: Path, universe_file: Path) -> None:
        super().__init__(config.record_mapping)
        self.config = config
        self.configured_metrics_url = config.metrics_url
        self.run_dir = run_dir
        self.universe_file: Path = universe_file
        self.symbols_file = run_dir / "sut" / "symbols.json"
        self.client: Any = None
        self.container: Any = None
        self.argv: list[str] | None = None
        self.exit_code: int | None = None
        self.last_container_id: str | None = None
        self.restarts = 0
        self.reloads = 0
        self._endpoints: tuple[FeedEndpoints, KafkaEndpoints] | None = None

    def start(self, symbols: list[str], feed: FeedEndpoints, kafka: KafkaEndpoints) -> None:
        if self.alive():
            raise SutError(f"the container {self.container_id()} is already running")
        values = command_values(
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
        argv = expand_command(self.config.command, values) if self.config.command else None
        if self.client is None:
            self.client = docker_client()
        if self.config.network_mode != "host" and feed.host.startswith("127."):
            self.warn(
                f"network_mode {self.config.network_mode!r}: the container may not reach "
                f"feed_sim on {feed.host} (loopback of the host)"
            )
        write_symbols_file(self.symbols_file, symbols)
        self._endpoints = (feed, kafka)
        self.argv = argv
        self.exit_code = None
        self.container = self._run(argv)
        self.last_container_id = self.container_id()
        try:
            self._wait_started()
        except SutError:
            self.stop(timeout_s=5)
            raise
        self.symbols = list(symbols)

    def _run(self, argv: list[str] | None) -> Any:
        from docker.errors import DockerException

        volumes = {
            str(self.run_dir): {"bind": str(self.run_dir), "mode": "rw"},
            str(self.universe_file): {"bind": str(self.universe_file), "mode": "ro"},
        }
        try:
            return self.client.containers.run(
                self.config.image,
                command=argv,
                environment=dict(self.config.env),
                network_mode=self.config.network_mode,
                labels={LABEL: "sut", "iqfeed-harness.run_dir": str(self.run_dir)},
                volumes=volumes,
                user=f"{os.getuid()}:{os.getgid()}",
                detach=True,
            )
        except DockerException as exc:
            raise SutError(f"cannot run image {self.config.image!r}: {exc}") from exc

    def _wait_started(self) -> None:
        what = f"container {self.container_id()} ({self.config.image})"
        if self.config.admin_url:
            wait_for_http(
                self.config.admin_url,
                self.config.startup_timeout_s,
                still_running=self.alive,
                what=what,
                error=SutError,
            )
            return
        deadline = time.monotonic() + min(5.0, self.config.startup_timeout_s)
        while time.monotonic() < deadline:
            if self._status() not in ("created", "running"):
                raise SutError(f"{what} stopped right after starting:\n{self._logs()}")
            time.sleep(0.2)

    def _status(self) -> str:
        from docker.errors import DockerException

        if self.container is None:
            return "absent"
        try:
            self.container.reload()
        except DockerException:
            return "absent"
        return str(self.container.status)

    def _logs(self, tail: int = 40) -> str:
        from docker.errors import DockerException

        try:
            return bytes(self.container.logs(tail=tail)).decode(errors="replace")
        except DockerException as exc:
            return f"(no logs: {exc})"

    def set_symbols(self, symbols: list[str]) -> None:
        from docker.errors import DockerException

        reload = self.config.reload
        if self._endpoints is None:
            raise SutError("cannot set symbols: the container was never started")
        if reload.method == "restart":
            self.stop(reload.timeout_s)
            self.start(symbols, *self._endpoints)
            self.restarts += 1
            return
        if not self.alive():
            raise SutError(f"cannot reload: the container is not running ({self._status()})")
        write_symbols_file(self.symbols_file, symbols)
        if reload.method == "http":
            assert reload.url is not None  # the scenario checks: http needs a url
            post_json(reload.url, {"symbols": symbols}, reload.timeout_s, error=SutError)
        elif reload.method == "signal":
            try:
                self.container.kill(signal=reload.signal)
            except DockerException as exc:
                raise SutError(f"cannot send {reload.signal} to the container: {exc}") from exc
        self.reloads += 1
        self.symbols = list(symbols)

    def alive(self) -> bool:
        return self._status() == "running"

    def container_id(self) -> str | None:
        return None if self.container is None else str(self.container.id)

    def usage_source(self) -> UsageSource:
        """The current container's cgroup stats (it has no PIDs on this host)."""
        return ContainerUsage(self.container_id)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        from docker.errors import DockerException

        container, self.container = self.container, None
        if container is None:
            return self.exit_code
        with contextlib.suppress(DockerException):
            container.stop(timeout=int(max(1, timeout_s)))
        with contextlib.suppress(DockerException, KeyError, TypeError):
            self.exit_code = int(container.wait(timeout=max(1, timeout_s))["StatusCode"])
        with contextlib.suppress(DockerException):
            container.remove(force=True)
        return self.exit_code

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "image": self.config.image,
            "command": self.argv,
            "network_mode": self.config.network_mode,
            "container": self.last_container_id,
            "reload": self.config.reload.model_dump(mode="json"),
            "restarts": self.restarts,
            "reloads": self.reloads,
            "exit_code": self.exit_code,
        }
