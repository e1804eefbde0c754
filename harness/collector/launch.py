"""Starting a run's collector as the scenario's `collector:` section says.

`workers: 0` (the default): one collector process (`harness.collector.process`). `workers: N`:
the distributed collector, a Locust master (`harness.distributed_collector.master`) that
merges N collector shards, each hosted by a Locust worker
(`harness.distributed_collector.worker`). With `local_workers` the N workers are started
here, in their own sessions, logging to `logs/locust-worker-<i>.log`, and stopped by PID with
the run; otherwise the master waits for `harness worker --master
HOST:PORT` processes started on other machines. Either way the runner drives the result
through the same `CollectorProcess` client.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.records import FieldMapping
from harness.collector.client import CollectorProcess
from harness.infra.ports import free_ports
from harness.processes import start_process, stop_process
from harness.scenario import CollectorConfig


@dataclass
class CollectorDeployment:
    """The collector the runner drives, and the local worker processes behind it (if any)."""

    collector: CollectorProcess
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    master: str | None = None
    """host:port of the distributed collector's master (None: one collector process)."""

    def describe(self) -> dict[str, Any]:
        return {
            "collector_pid": self.collector.pid,
            "master": self.master,
            "local_worker_pids": [w.pid for w in self.workers],
            "partitions": self.collector.partitions,
        }

    def pids(self) -> list[int]:
        """The collector's local processes: the collector (or the master) and local workers."""
        pid = self.collector.pid
        return ([pid] if pid is not None else []) + [w.pid for w in self.workers]

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the collector (final snapshot), then any local worker still running."""
        try:
            self.collector.stop(timeout_s=timeout_s)
        finally:
            for worker in self.workers:
                stop_process(worker, timeout_s=10)


def worker_command(host: str, port: int) -> list[str]:
    """The command line of a Locust worker of the master at host:port."""
    return [sys.executable, "-m", "harness.distributed_collector.worker", "--master-host", host,
            "--master-port", str(port)]  # fmt: skip


def start_collector(
    config: CollectorConfig,
    bootstrap: str,
    topics: Sequence[str],
    mapping: FieldMapping | Mapping[str, Any] | None,
    *,
    all_partitions: bool,
    logs_dir: Path,
) -> CollectorDeployment:
    """Start the collector (and local workers) and wait until it is ready; CollectorError if
    it does not become ready (the workers started here are stopped then)."""
    if config.workers == 0:
        single = CollectorProcess(bootstrap, topics, mapping, all_partitions=all_partitions)
        return CollectorDeployment(single.start())
    host = config.master_host
    port = config.master_port or free_ports(1, host)[0]
    workers = [
        start_process(worker_command(host, port), logs_dir / f"locust-worker-{i}.log")
        for i in range(config.workers if config.local_workers else 0)
    ]
    master_args = ["--workers", str(config.workers), "--bind-host", host, "--bind-port", str(port)]
    deployment = CollectorDeployment(
        CollectorProcess(
            bootstrap,
            topics,
            mapping,
            all_partitions=all_partitions,
            ready_timeout_s=config.worker_timeout_s,
            module="harness.distributed_collector.master",
            extra_args=master_args,
        ),
        workers,
        f"{host}:{port}",
    )
    try:
        deployment.collector.start()
    except BaseException:
        deployment.stop(timeout_s=10)
        raise
    return deployment
