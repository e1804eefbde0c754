"""Locust integration of the stage plan: a `LoadTestShape` that follows a `StagePlan`.

Convention: one Locust "user" stands for one subscribed symbol, so the shape's user count is
the current stage's symbol count (50, 100, 200, 495), and it steps back to the last good
stage's count during a rollback and verify hold; `tick()` returns None when the plan is done,
which stops Locust. The spawn rate is `SPAWN_RATE` users (symbols) a second: the review's
subscription batches of 50 symbols with a pause between batches. Locust's own statistics
never decide a verdict (ARCHITECTURE.md, Locust's role).

`status_shape(read_status)` follows the plan: the runner drives it in its own process and
writes its status (live.json) each second; the Locust process (`harness.locust_process`,
headless or with the web UI) reads it, so the runner never imports locust.
`status_users(status)` is the pure mapping.

Locust is imported lazily (importing it monkey-patches the process with gevent), so importing
this module, or harness.plan, is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

SPAWN_RATE: Final = 50.0


def status_users(
    status: Mapping[str, Any] | None, spawn_rate: float = SPAWN_RATE
) -> tuple[int, float] | None:
    """(symbols of the current stage, spawn rate) from the runner's live status; None when
    the run is done; no users while there is no status yet."""
    if status is None:
        return 0, spawn_rate
    if status.get("done"):
        return None
    return int(status.get("symbols", 0)), spawn_rate


def status_shape(
    read_status: Callable[[], Mapping[str, Any] | None], spawn_rate: float = SPAWN_RATE
) -> Any:
    """A `locust.LoadTestShape` instance following the runner's status (imports locust here)."""
    from locust import LoadTestShape

    class RunStatusShape(LoadTestShape):
        """The runner's stage plan, as its live status shows it (symbols as users)."""

        def tick(self) -> tuple[int, float] | None:
            return status_users(read_status(), spawn_rate)

    return RunStatusShape()  # type: ignore[no-untyped-call]


def symbol_user() -> Any:
    """The Locust user class of a run: one subscribed symbol, nothing to do (the load itself
    comes from feed_sim, not from Locust). Imports locust here, not above."""
    from locust import User, constant, task

    class Symbol(User):
        """One subscribed symbol; feed_sim sends its messages."""

        wait_time = constant(3600)

        @task
        def subscribed(self) -> None:
            """Nothing to do: feed_sim sends this symbol's messages."""

    return Symbol
