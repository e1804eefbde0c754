"""What a run started, in the order it started them; `RunContext.close()` stops it all, in
reverse, each by PID, whatever fails on the way."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from collections.abc import Callable
from typing import Any

from harness.collector.client import CollectorProcess
from harness.collector.launch import CollectorDeployment
from harness.feed_process import FeedSimProcess
from harness.infra.kafka_local import LocalKafka
from harness.infra.redis_local import LocalRedis
from harness.processes import stop_process
from harness.sampler import ResourceSampler
from harness.storage_writer import StorageWriter

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunContext:
    """What the run started; `close()` stops it all, in reverse order."""

    kafka: LocalKafka | None = None
    bootstrap: str = ""
    redis: LocalRedis | None = None
    storage: StorageWriter | None = None
    feed: FeedSimProcess | None = None
    sut: Any = None
    collector: CollectorProcess | None = None
    collector_deployment: CollectorDeployment | None = None
    sampler: ResourceSampler | None = None
    locust: subprocess.Popen[bytes] | None = None

    def close(self) -> None:
        steps: list[Callable[[], object]] = []
        if self.locust is not None:
            locust = self.locust
            steps.append(lambda: stop_process(locust, timeout_s=10))
        if self.sampler is not None:
            steps.append(self.sampler.stop)
        if self.collector_deployment is not None:
            steps.append(
                lambda: (
                    self.collector_deployment.stop(timeout_s=30)
                    if self.collector_deployment
                    else None
                )
            )
        elif self.collector is not None:
            steps.append(lambda: self.collector.stop(timeout_s=30) if self.collector else None)
        if self.sut is not None:
            steps.append(lambda: self.sut.stop(timeout_s=60))
        if self.storage is not None:  # after the SUT: it writes what the SUT sent last
            steps.append(self.storage.stop)
        if self.feed is not None:
            steps.append(self.feed.stop)
        if self.redis is not None:
            steps.append(self.redis.down)
        if self.kafka is not None:
            steps.append(self.kafka.down)
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping a run component failed")
