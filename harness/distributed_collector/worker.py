"""A Locust worker hosting one collector shard of a distributed run.

    harness worker --master 127.0.0.1:5557
    python -m harness.distributed_collector.worker --master-host 127.0.0.1 --master-port 5557

It connects to the distributed collector's master (`harness.distributed_collector.master`,
started by `harness run` when the scenario sets `collector.workers`) as a Locust
`WorkerRunner`. When the master sends `collector_start` it starts a collector process for its shard
(`harness.collector.process --shard i/N`, driven by `CollectorProcess`) and then relays each
`collector_cmd` to it, sending the process's reply back as `collector_reply`; the HDR
histograms travel encoded and are merged on the master. Commands are served one at a time, in
the order they came.

The worker ends when the master tells it to quit, when the master is gone (Locust's heartbeat
timeout), or on SIGTERM/SIGINT; its collector process is stopped first, by PID if it does not
answer. It runs on any machine that reaches the master and the Kafka brokers.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from harness.collector.client import CollectorError, CollectorProcess
from harness.distributed_collector.environment import locust_environment
from harness.distributed_collector.master import DEFAULT_PORT

log = logging.getLogger("harness.distributed_collector.worker")


class ShardHost:
    """The worker's collector shard: started, driven and stopped on the master's word."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.collector: CollectorProcess | None = None

    def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.collector is not None and self.collector.alive():
            return {"error": "this worker already hosts a collector shard"}
        shard = f"{int(spec['shard'])}/{int(spec['shards'])}"
        self.collector = CollectorProcess(
            spec["bootstrap"],
            spec["topics"],
            spec["mapping"],
            group=spec["group"],
            offset_reset=spec["offset_reset"],
            ready_timeout_s=float(spec["timeout"]),
            python=self.python,
            all_partitions=bool(spec["all_partitions"]),
            extra_args=["--shard", shard] if spec["all_partitions"] else [],
        )
        try:
            self.collector.start()
        except CollectorError as exc:
            return {"error": str(exc)}
        return {"ready": True, "pid": self.collector.pid, "partitions": self.collector.partitions}

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        if self.collector is None or not self.collector.alive():
            if command.get("cmd") == "stop":
                return {"ok": True, "stopped": "no collector was running"}
            return {"error": "no collector shard is running on this worker"}
        try:
            reply = self.collector.request(command)
        except CollectorError as exc:
            return {"error": str(exc)}
        if command.get("cmd") == "stop":
            self.collector.kill()  # it has exited after its final reply: reap it
        return reply

    def stop(self) -> None:
        if self.collector is not None:
            self.collector.stop(timeout_s=10)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.distributed_collector.worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--master-host", default="127.0.0.1", help="the master's address")
    parser.add_argument("--master-port", type=int, default=DEFAULT_PORT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env = locust_environment("locust-worker")
    import gevent  # type: ignore[import-untyped]
    import gevent.event  # type: ignore[import-untyped]
    import gevent.queue  # type: ignore[import-untyped]

    runner = env.create_worker_runner(args.master_host, args.master_port)
    host = ShardHost()
    inbox: Any = gevent.queue.Queue()
    runner.register_message("collector_start", lambda msg, **_: inbox.put(("start", msg.data)))
    runner.register_message("collector_cmd", lambda msg, **_: inbox.put(("cmd", msg.data)))

    def serve() -> None:
        while True:
            kind, data = inbox.get()
            reply = host.start(data) if kind == "start" else host.command(data["command"])
            runner.send_message("collector_reply", {"id": data["id"], "reply": reply})

    finished = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, finished.set)
    server = gevent.spawn(serve)

    def watch_runner() -> None:  # the master said quit, or its heartbeat timed out
        runner.greenlet.join()
        finished.set()

    watcher = gevent.spawn(watch_runner)
    print(f"locust worker of master {args.master_host}:{args.master_port}", flush=True)
    try:
        finished.wait()
    finally:
        server.kill()
        host.stop()
        if not watcher.dead:  # we end first: tell the master
            watcher.kill()
            runner.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
