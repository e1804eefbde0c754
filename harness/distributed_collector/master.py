"""The distributed collector: Locust's master runner in front of N collector shards.

    python -m harness.distributed_collector.master --bootstrap B --topics t1,t2,t3 --workers N \
        [--bind-host 127.0.0.1] [--bind-port 5557] [collector options]

ARCHITECTURE.md ("Locust's role"): Locust's master/worker runners spread collector shards over
machines and the workers' encoded HDR histograms are merged on the master. This process is
that master. Towards the runner it is a collector process: it takes the same options and
speaks the same line protocol on stdin/stdout (`harness.collector.process`), so the runner
drives it with the same `CollectorProcess` client. Towards the workers it is a Locust
`MasterRunner` bound to `--bind-host:--bind-port`, waiting for `--workers` Locust workers
(`harness worker --master HOST:PORT`, `harness.distributed_collector.worker`) to connect.

Shards. Worker number i (in order of connection) hosts collector shard i of N: a collector
process reading the partitions p with p mod N == i (`--shard i/N`), or, with `--partitions
none`, the partitions of each `assign` that fall in its shard. Every other command goes to
every shard; the N replies are added into one (`harness.collector.replies.sum_replies`):
histograms and completeness states added, counters summed.

Messages (Locust custom messages, msgpack over Locust's ZeroMQ channel):
    master -> worker  collector_start {id, shard, shards, bootstrap, topics, mapping, group,
                                       offset_reset, timeout, all_partitions}
    master -> worker  collector_cmd   {id, command}
    worker -> master  collector_reply {id, reply}

A shard that does not answer within `--reply-timeout` seconds, a worker that disconnects, or
an error reply of a shard gives an error reply naming the shard. The ready line waits for all
workers and shards (`--timeout`); if they do not come, the ready line is an error and the
process exits 4 (infrastructure unavailable). `stop` stops every shard (final merged
snapshot), tells the workers to quit and exits 0; SIGTERM or stdin closing does the same
without a reply.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from harness.collector.process import add_collector_options
from harness.collector.replies import sum_replies
from harness.collector.shards import split_partitions
from harness.distributed_collector.environment import locust_environment
from harness.exit_codes import ExitCode

Reply = dict[str, Any]
"""One JSON reply of the collector protocol, as it travels between master and workers."""

DEFAULT_PORT = 5557
log = logging.getLogger("harness.distributed_collector.master")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.distributed_collector.master",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_collector_options(parser)  # passed on to the shards (a given group gets -shard-<i>)
    parser.add_argument("--workers", type=int, required=True, help="collector shards (>= 1)")
    parser.add_argument("--bind-host", default="127.0.0.1", help="address workers connect to")
    parser.add_argument("--bind-port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--reply-timeout", type=float, default=60.0, help="seconds to wait for every shard"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


class ShardRouter:
    """Sends commands to the shards' workers and gathers one reply per shard (in gevent)."""

    def __init__(self, runner: Any, reply_timeout_s: float) -> None:
        import gevent.queue  # type: ignore[import-untyped]

        self.runner = runner
        self.reply_timeout_s = reply_timeout_s
        self.workers: list[str] = []
        """Locust client id of each shard's worker, by shard index."""
        self._replies: Any = gevent.queue.Queue()
        self._next_id = 0
        runner.register_message("collector_reply", self._on_reply)

    def _on_reply(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        self._replies.put((msg.node_id, msg.data))

    def wait_for_workers(self, count: int, timeout_s: float) -> None:
        """Take the first `count` connected workers as shards 0..count-1 (TimeoutError)."""
        import gevent

        deadline = time.monotonic() + timeout_s
        while len(self.runner.clients.ready) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {len(self.runner.clients.ready)} of {count} Locust workers connected "
                    f"within {timeout_s:g} s"
                )
            gevent.sleep(0.1)
        self.workers = sorted(
            (node.id for node in self.runner.clients.ready), key=self.runner.get_worker_index
        )[:count]

    def exchange(self, msg_type: str, payloads: Sequence[dict[str, Any]]) -> list[Reply]:
        """Send payloads[i] to shard i; the replies in shard order (errors for missing ones)."""
        import gevent.queue

        self._next_id += 1
        request_id = self._next_id
        for client_id, payload in zip(self.workers, payloads, strict=True):
            self.runner.send_message(msg_type, {**payload, "id": request_id}, client_id=client_id)
        got: dict[str, Reply] = {}
        deadline = time.monotonic() + self.reply_timeout_s
        while len(got) < len(self.workers):
            gone = [w for w in self.workers if w not in got and not self._connected(w)]
            if gone:
                shard = self.workers.index(gone[0])
                got[gone[0]] = {"error": f"worker {gone[0]} of shard {shard} is gone"}
                continue
            try:
                node_id, data = self._replies.get(timeout=min(1.0, deadline - time.monotonic()))
            except gevent.queue.Empty:
                if time.monotonic() >= deadline:
                    break
                continue
            if data.get("id") == request_id and node_id in self.workers:
                got[node_id] = data["reply"]
        return [
            got.get(w, {"error": f"no reply within {self.reply_timeout_s:g} s from worker {w}"})
            for w in self.workers
        ]

    def _connected(self, client_id: str) -> bool:
        """Still connected: not quit, and its heartbeats not missing (Locust's liveness)."""
        from locust.runners import STATE_MISSING

        node = self.runner.clients.get(client_id)
        return node is not None and node.state != STATE_MISSING

    def command(self, command: dict[str, Any]) -> Reply:
        """One collector command to every shard (an `assign` split by shard), merged."""
        name = str(command.get("cmd"))
        if name == "assign":
            try:
                parts = split_partitions(list(command.get("partitions") or []), len(self.workers))
            except (TypeError, ValueError) as exc:
                return {"error": f"assign failed: {exc}"}
            payloads = [{"command": {**command, "partitions": p}} for p in parts]
        else:
            payloads = [{"command": command}] * len(self.workers)
        return sum_replies(name, self.exchange("collector_cmd", payloads))


def _start_payloads(args: argparse.Namespace) -> list[dict[str, Any]]:
    common = {
        "shards": args.workers,
        "bootstrap": args.bootstrap,
        "topics": [t for t in args.topics.split(",") if t],
        "mapping": None if args.mapping is None else json.loads(args.mapping),
        "offset_reset": args.offset_reset,
        "timeout": args.timeout,
        "all_partitions": args.partitions == "all",
    }
    return [
        {**common, "shard": i, "group": None if args.group is None else f"{args.group}-shard-{i}"}
        for i in range(args.workers)
    ]


def _write(payload: Reply) -> None:
    sys.stdout.buffer.write(json.dumps(payload).encode() + b"\n")
    sys.stdout.buffer.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env = locust_environment("locust-master")
    import gevent
    import gevent.event  # type: ignore[import-untyped]
    from gevent.fileobject import FileObjectPosix  # type: ignore[import-untyped]

    runner = env.create_master_runner(args.bind_host, args.bind_port)
    router = ShardRouter(runner, args.reply_timeout)
    finished = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, finished.set)
    try:
        router.wait_for_workers(args.workers, args.timeout)
        started = router.exchange("collector_start", _start_payloads(args))
        failed = [(i, r) for i, r in enumerate(started) if not r.get("ready")]
        if failed:
            shard, reply = failed[0]
            raise TimeoutError(f"collector shard {shard} did not start: {reply.get('error')}")
    except TimeoutError as exc:
        _write({"ready": False, "error": f"distributed collector: {exc}"})
        _stop_workers(router, runner)
        return int(ExitCode.INFRA_UNAVAILABLE)
    _write(
        {
            "ready": True,
            "pid": os.getpid(),
            "partitions": sum(int(r["partitions"]) for r in started),
            "workers": len(router.workers),
            "shards": [{"worker": w, **r} for w, r in zip(router.workers, started, strict=True)],
        }
    )
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)

    def serve() -> None:
        for line in stdin:
            if not line.strip():
                continue
            try:
                command = json.loads(line)
                if not isinstance(command, dict):
                    raise ValueError("a command is a JSON object")
            except ValueError as exc:
                _write({"error": f"bad command line: {exc}"})
                continue
            _write(router.command(command))
            if command.get("cmd") == "stop":
                break
        finished.set()

    gevent.spawn(serve)
    finished.wait()
    _stop_workers(router, runner)
    return 0


def _stop_workers(router: ShardRouter, runner: Any) -> None:
    """Stop every shard's collector (if it still runs) and tell the workers to quit."""
    if router.workers:
        router.reply_timeout_s = min(router.reply_timeout_s, 30.0)
        router.exchange("collector_cmd", [{"command": {"cmd": "stop"}}] * len(router.workers))
    runner.quit()


if __name__ == "__main__":
    sys.exit(main())
