"""A small client of feed_sim's control API (used by the harness and the tests)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from contracts.sent import StageCounters


class ControlClientError(RuntimeError):
    """The control API refused a request or could not be reached."""


class FeedSimControl:
    """Calls feed_sim's HTTP/JSON control API at `base_url` (e.g. http://127.0.0.1:8765)."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ControlClientError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ControlClientError(
                f"feed_sim control API at {self.base_url} unreachable: {exc}"
            ) from exc

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/status")
        return result

    def counters(self, stage: str | None = None) -> StageCounters:
        path = "/counters" + (f"?stage={stage}" if stage else "")
        return StageCounters.from_json(self.call("GET", path))

    def set_symbols(self, symbols: list[str]) -> Any:
        return self.call("POST", "/symbols", {"symbols": symbols})

    def set_rate(self, mode: str, **options: Any) -> Any:
        return self.call("POST", "/rate", {"mode": mode, **options})

    def load_tapes(self, paths: list[str]) -> Any:
        return self.call("POST", "/tapes", {"paths": paths})

    def stage(self, label: str) -> Any:
        return self.call("POST", "/stage", {"label": label})

    def start(self) -> Any:
        return self.call("POST", "/start")

    def stop(self) -> Any:
        return self.call("POST", "/stop")

    def pause(self) -> Any:
        return self.call("POST", "/pause")

    def resume(self) -> Any:
        return self.call("POST", "/resume")

    def fault(self, kind: str, **options: Any) -> Any:
        return self.call("POST", f"/faults/{kind}", options)
