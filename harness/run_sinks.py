"""The pipeline's sinks beside the SUT during a run: the run's redis-server (scenario
`infra.redis`) and the ClickHouse writer (scenario `storage`), started into the run's context
(so `RunContext.close()` stops them by PID), and what each hold reports of them.

A sink that dies is an event said once (`redis_died`, `storage_failed`); the run goes on.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from harness.infra.errors import InfraError
from harness.infra.redis_local import LocalRedis
from harness.processes import ProcessError
from harness.results.summary import SummaryWriter
from harness.run_context import RunContext
from harness.scenario import Scenario
from harness.storage_writer import StorageHold, StorageWriter
from harness.sut_metrics import Scrape, snapshot_figures


class RunSinks:
    """Redis and the ClickHouse writer of one run."""

    def __init__(
        self,
        scenario: Scenario,
        ctx: RunContext,
        summary: SummaryWriter,
        console: Console,
    ) -> None:
        self.scenario = scenario
        self.ctx = ctx
        self.summary = summary
        self.console = console
        self.redis_dead = False

    def start_redis(self, state_dir: Any) -> str:
        """The run's redis-server (loopback, AOF everysec), stopped with the rest; its URL."""
        redis = LocalRedis(state_dir=state_dir)
        self.ctx.redis = redis
        with self.console.status("starting redis-server..."):
            state = redis.up()
        self.summary.add_event("redis_ready", url=state.url, pid=state.pid)
        self.summary.set_run_field(
            "redis", {"url": state.url, "appendonly": "yes", "appendfsync": "everysec"}
        )
        return state.url

    def start_storage(self, run_dir: Any, topics: list[str]) -> None:
        """`ingest clickhouse-writer` on the SUT's topics (scenario `storage`), before the SUT
        starts, so the storage hop covers every record."""
        storage = StorageWriter(self.scenario.storage, run_dir)
        self.ctx.storage = storage
        with self.console.status(f"starting the ClickHouse writer ({storage.target})..."):
            storage.start(self.ctx.bootstrap, topics)
        self.summary.add_event("storage_ready", pid=storage.pid, clickhouse=storage.target)
        config = self.scenario.storage
        self.summary.set_run_field(
            "storage",
            {
                "clickhouse": storage.target,
                "database": config.database,
                "batch_size": config.batch_size,
                "batch_ms": config.batch_ms,
                "topics": topics,
            },
        )

    def storage_hold(self, label: str) -> StorageHold | None:
        """The writer's figures of the hold after its reconcile (None without `storage`, or
        when the writer failed: said as event `storage_failed`)."""
        storage = self.ctx.storage
        if storage is None:
            return None
        try:
            with self.console.status(f"{label}: reconciling ClickHouse with Kafka..."):
                return storage.reconcile(label)
        except InfraError as exc:  # ProcessError: the writer did not answer
            alive = storage.alive()
            self.summary.add_event("storage_failed", label=label, error=str(exc), alive=alive)
            self.console.print(f"[red]{label}: the ClickHouse writer failed:[/] {exc}")
            return None

    def storage_window(self, label: str, now_ns: int, *, start: bool) -> None:
        """Open (close) the writer's window of records appended during the hold."""
        storage = self.ctx.storage
        if storage is None or not storage.alive():
            return
        try:
            if start:
                storage.open_window(label, now_ns)
            else:
                storage.close_window(label, now_ns)
        except ProcessError as exc:
            self.summary.add_event("storage_failed", label=label, error=str(exc))

    def redis_figures(self, label: str, scrapes: list[Scrape]) -> dict[str, Any] | None:
        """The hold's Redis figures: used memory now, the core's snapshot figures over the
        hold; a redis-server that died is said once (event `redis_died`)."""
        if self.ctx.redis is None:
            return None
        used = self.ctx.redis.used_memory()
        if used is None and not self.redis_dead:
            self.redis_dead = True
            self.summary.add_event("redis_died", label=label)
            self.console.print(f"[red]{label}: redis-server does not answer[/]")
        return {"used_memory_bytes": used, "alive": used is not None, **snapshot_figures(scrapes)}
