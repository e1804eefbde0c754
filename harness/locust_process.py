"""The Locust process of a run: headless with CSV stats, or serving the web UI (`--ui`).

Importing locust monkey-patches the process with gevent, so Locust never runs inside the
runner: the runner writes its live status (live.json, replaced about once a second) and this
process, started by the runner with `python -m harness.locust_process`, turns it into a Locust
run:

- users = the current stage's symbols (one Locust user stands for one subscribed symbol): the
  `LoadTestShape` (`harness.locust_shape.status_shape`) follows the runner's stage plan,
  including the step back to the last good stage on a rollback, and returns None when the run
  is done;
- one "request" per second, request type `lag`: the last completed second's total lag P99
  from the collector's HDR histograms, CO-corrected, as the response time in ms, and the
  received message rate (type `rate`, msg/s as the response time). Locust rounds and averages
  these; they never decide a verdict (ARCHITECTURE.md, Locust's role).

Headless by default: with `--csv PREFIX` Locust's own CSV writer keeps `PREFIX_stats.csv` and
`PREFIX_stats_history.csv` (a row a second: user count, i.e. symbols, and the two rows above).
With `--web-port` it also serves Locust's web UI on loopback (`--host`). The process ends when
the status says the run is done (after `--linger-s`, so the web UI stays readable), or on
SIGTERM/SIGINT from the runner; the CSV files are written out either way.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from harness.locust_shape import status_shape, symbol_user

POLL_S = 1.0


def read_status(path: Path) -> dict[str, Any] | None:
    """The runner's latest status, or None while there is none (or it is being replaced)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Locust process following a running `harness run` (headless or web UI)"
    )
    parser.add_argument("--status", type=Path, required=True, help="the runner's live.json")
    parser.add_argument("--csv", default=None, help="write Locust's CSV stats to PREFIX_*.csv")
    parser.add_argument("--web-port", type=int, default=None, help="serve the web UI here")
    parser.add_argument("--host", default="127.0.0.1", help="web UI address (loopback)")
    parser.add_argument(
        "--linger-s", type=float, default=30.0, help="web UI: stay up this long after the run"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # locust parses the command line itself; ours is not for it
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s"
    )  # Locust's runner logs each shape step ("Shape test updating to N users ...")

    import gevent  # type: ignore[import-untyped]
    import gevent.event  # type: ignore[import-untyped]
    from locust.env import Environment
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter, stats_history

    shape = status_shape(lambda: read_status(args.status))
    env = Environment(user_classes=[symbol_user()], shape_class=shape, host="feed_sim")
    runner = env.create_local_runner()
    web = None
    if args.web_port is not None:
        web = env.create_web_ui(args.host, args.web_port)
        print(f"locust web UI on http://{args.host}:{args.web_port}", flush=True)
    writer = None
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, args.csv, full_history=True)
        csv_loop = gevent.spawn(writer.stats_writer)
        gevent.spawn(stats_history, runner)
    finished = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, finished.set)
    gevent.signal_handler(signal.SIGINT, finished.set)
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
                if web is not None:
                    gevent.sleep(args.linger_s)
                finished.set()
                return
            gevent.sleep(POLL_S)

    gevent.spawn(feed_stats)
    finished.wait()
    runner.quit()
    if writer is not None:
        csv_loop.kill()  # its last pass (at most a second old) is the final row
        writer.requests_flush()
        writer.stats_history_flush()
        writer.close_files()
    if web is not None:
        web.stop()  # type: ignore[no-untyped-call]
    print("locust process finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
