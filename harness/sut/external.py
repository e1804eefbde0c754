"""An already running core (`sut.kind: external`): the harness only feeds and observes it.

`start` checks that its admin and metrics URLs (when given) answer and that its PID (when
given) exists, and fails with a `SutError` otherwise; it never starts anything. Symbol sets
change through `reload.method: http` (POST `{"symbols": [...]}` to `reload.url`); with
`none` the core must already subscribe to every symbol, so `set_symbols` only records a
warning in the run metadata. `stop` leaves the core running (it is not ours).
"""

from __future__ import annotations

from typing import Any

import psutil

from harness.processes import http_answers, post_json
from harness.scenario import ExternalSut
from harness.sut.base import FeedEndpoints, KafkaEndpoints, SutError, SystemUnderTest


class ExternalCore(SystemUnderTest):
    """A core the harness did not start and will not stop."""

    kind = "external"

    def __init__(self, config: ExternalSut, *, check_timeout_s: float = 5.0) -> None:
        super().__init__(config.record_mapping)
        self.config = config
        self.configured_metrics_url = config.metrics_url
        self.check_timeout_s = check_timeout_s
        self.started = False
        self.reloads = 0

    def _urls(self) -> list[str]:
        return [url for url in (self.config.admin_url, self.config.metrics_url) if url]

    def start(self, symbols: list[str], feed: FeedEndpoints, kafka: KafkaEndpoints) -> None:
        for url in self._urls():
            if not http_answers(url, timeout_s=self.check_timeout_s):
                raise SutError(f"the external SUT does not answer at {url}")
        pid = self.config.pid
        if pid is not None and not psutil.pid_exists(pid):
            raise SutError(f"the external SUT's PID {pid} does not exist on this host")
        self.started = True
        self.set_symbols(symbols)

    def set_symbols(self, symbols: list[str]) -> None:
        reload = self.config.reload
        if reload.method == "http":
            assert reload.url is not None  # the scenario checks: http needs a url
            post_json(reload.url, {"symbols": symbols}, reload.timeout_s, error=SutError)
            self.reloads += 1
        else:
            self.warn(
                f"external SUT with reload method {reload.method!r}: the harness cannot set its "
                "symbols; it must already subscribe to every stage's symbols"
            )
        self.symbols = list(symbols)

    def alive(self) -> bool:
        pid = self.config.pid
        if pid is not None:
            return psutil.pid_exists(pid)
        urls = self._urls()
        return all(http_answers(url, timeout_s=self.check_timeout_s) for url in urls)

    def pids(self) -> list[int]:
        pid = self.config.pid
        return [pid] if pid is not None and psutil.pid_exists(pid) else []

    def stop(self, timeout_s: float = 30.0) -> int | None:
        self.started = False
        return None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "admin_url": self.config.admin_url,
            "metrics_url": self.config.metrics_url,
            "pid": self.config.pid,
            "reload": self.config.reload.model_dump(mode="json"),
            "reloads": self.reloads,
        }
