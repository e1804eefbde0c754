"""Locust integration of the stage plan: a `LoadTestShape` that follows a `StagePlan`.

Convention: one Locust "user" stands for one subscribed symbol, so the shape's user count is
the current stage's symbol count (50, 100, 200, 495), and it steps back to the last good
stage's count during a rollback and verify hold; `tick()` returns None when the plan is done,
which stops Locust. The spawn rate is `SPAWN_RATE` users (symbols) a second: the review's
subscription batches of 50 symbols with a pause between batches. Locust's own statistics
never decide a verdict (ARCHITECTURE.md, Locust's role).

`shape_tick(plan)` is the pure mapping. `make_shape(plan, drive)` builds the Locust object; it
imports locust lazily (importing locust monkey-patches the process with gevent), so importing
this module, or harness.plan, is harmless. With `drive`, every Locust tick also advances the
plan (`plan.tick()`) and hands the actions to `drive`; without it the shape only reads the plan
that the runner advances.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from harness.plan import Action, Phase, StagePlan

SPAWN_RATE: Final = 50.0


def shape_tick(plan: StagePlan, spawn_rate: float = SPAWN_RATE) -> tuple[int, float] | None:
    """(symbol count of the current stage, spawn rate), or None when the plan is done."""
    status = plan.status()
    if status.phase is Phase.DONE:
        return None
    return status.symbol_count, spawn_rate


def make_shape(
    plan: StagePlan,
    drive: Callable[[list[Action]], None] | None = None,
    spawn_rate: float = SPAWN_RATE,
) -> Any:
    """A `locust.LoadTestShape` instance following `plan` (imports locust here, not above)."""
    from locust import LoadTestShape

    class StagePlanShape(LoadTestShape):
        """The stage plan as a Locust load shape (symbols as users)."""

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.plan = plan

        def tick(self) -> tuple[int, float] | None:
            if drive is not None and self.plan.phase is not Phase.DONE:
                actions = self.plan.tick()
                if actions:
                    drive(actions)
            return shape_tick(self.plan, spawn_rate)

    return StagePlanShape()
