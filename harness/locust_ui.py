"""`harness run --ui`: Locust's web UI showing the live run (a separate process).

Importing locust monkey-patches the process with gevent, so Locust never runs inside the
runner: the runner writes its live status (`harness.live_status`, a small JSON file replaced
about once a second) and this process, started by the runner with `python -m
harness.locust_ui`, turns it into what Locust shows:

- users = the current stage's symbols (one Locust user stands for one subscribed symbol, as in
  `harness.locust_shape`): the shape follows the runner's stage plan, including the step back
  to the last good stage on a rollback, and returns None when the run is done;
- one "request" per second, request type `lag`: the last completed second's total lag P99
  from the collector's HDR histograms, CO-corrected, as the response time in ms, and the
  received message rate (type `rate`, msg/s as the response time). Locust rounds
  and averages these for display; they never decide a verdict (ARCHITECTURE.md, Locust's role).

The web UI listens on loopback (`--host`, `--port`). The process ends when the status file
says the run is done (after `--linger-s`, so the last figures stay readable), or when the
runner stops it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

POLL_S = 1.0


def read_status(path: Path) -> dict[str, Any] | None:
    """The runner's latest status, or None while there is none (or it is being replaced)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def shape_users(status: dict[str, Any] | None) -> tuple[int, float] | None:
    """(users = symbols of the current stage, spawn rate) for the shape; None when done."""
    if status is None:
        return 0, 50.0
    if status.get("done"):
        return None
    return int(status.get("symbols", 0)), 50.0


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Locust web UI for a running `harness run`")
    parser.add_argument("--status", type=Path, required=True, help="the runner's live.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--linger-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # locust parses the command line itself; ours is not for it

    import gevent  # type: ignore[import-untyped]
    from locust import LoadTestShape, User, constant, task
    from locust.env import Environment

    class Symbol(User):
        """One subscribed symbol; the load itself comes from feed_sim, not from Locust."""

        wait_time = constant(3600)

        @task
        def subscribed(self) -> None:
            """Nothing to do: feed_sim sends this symbol's messages."""

    class RunShape(LoadTestShape):
        """Follows the runner's stage plan through its status file."""

        def tick(self) -> tuple[int, float] | None:
            return shape_users(read_status(args.status))

    shape = RunShape()  # type: ignore[no-untyped-call]
    env = Environment(user_classes=[Symbol], shape_class=shape, host="feed_sim")
    runner = env.create_local_runner()
    web = env.create_web_ui(args.host, args.port)
    print(f"locust web UI on http://{args.host}:{args.port}", flush=True)
    runner.start_shape()

    def feed_stats() -> None:
        last_second = None
        while True:
            status = read_status(args.status)
            if status is not None and status.get("second") != last_second:
                last_second = status.get("second")
                for request_type, name, value in (
                    ("lag", "total lag P99 (ms)", _ms(status.get("p99_us"))),
                    ("rate", "received msg/s", status.get("rate_msg_s")),
                ):
                    if value is not None:
                        env.events.request.fire(  # type: ignore[no-untyped-call]
                            request_type=request_type,
                            name=name,
                            response_time=value,
                            response_length=0,
                            exception=None,
                            context={},
                        )
            if status is not None and status.get("done"):
                gevent.sleep(args.linger_s)
                runner.quit()
                web.stop()  # type: ignore[no-untyped-call]
                return
            gevent.sleep(POLL_S)

    gevent.spawn(feed_stats).join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
