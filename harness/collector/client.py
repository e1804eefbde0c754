"""`CollectorProcess`: starts and drives `harness.collector.process` from the orchestrator.

The orchestrator may be Locust's gevent-patched process, so this module does nothing
CPU-bound and never blocks without a timeout: commands are written to the process's stdin,
replies (one JSON line each) are read by a reader thread onto a queue and taken with a
timeout (under gevent's monkey-patching the thread is a greenlet and the pipes are
cooperative). stderr is drained by a second thread into a short tail kept for error messages.
One request is in flight at a time (a lock), so the sampler thread may ask for counters while
the stage loop takes snapshots.

Replies are read into their types (`harness.collector.replies`). The process sends each
sealed 1 s interval histogram once (`intervals`, new since the previous snapshot of that
stage, for the .hlog); this client keeps them per stage (packed, as they came) so a
snapshot's `measure` holds every interval of the stage received so far.

Anything that goes wrong (no ready line, a reply timeout, the process died) kills the process
by its PID and raises `CollectorError`; `stop()` never raises for a process that is already
gone.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any

from contracts.hdr import PackedHistogram
from contracts.records import FieldMapping
from harness.collector.measure import INTERVAL_MEASURES
from harness.collector.replies import CollectorCounters, CollectorSnapshot, Drained

_CLOSED = object()


class CollectorError(RuntimeError):
    """The collector process failed, refused a command or did not answer in time."""


def collector_cost(start: CollectorCounters, end: CollectorCounters) -> dict[str, Any]:
    """The collector's CPU between two counter readings: seconds, messages consumed, us per
    message, and cores (CPU seconds per second between the readings, summed over shards, so
    it can exceed 1). A figure is None when the collector reports no CPU time, consumed
    nothing or no time passed."""
    messages = end.consumed_messages - start.consumed_messages
    known = start.cpu_ns > 0 and end.cpu_ns > 0
    cpu_s = (end.cpu_ns - start.cpu_ns) / 1e9 if known else None
    wall_s = (end.t_ns - start.t_ns) / 1e9
    return {
        "collector_cpu_seconds": cpu_s,
        "collector_messages": messages,
        "collector_cpu_us_per_message": (
            cpu_s * 1e6 / messages if cpu_s is not None and messages > 0 else None
        ),
        "collector_cpu_cores": cpu_s / wall_s if cpu_s is not None and wall_s > 0 else None,
    }


def describe_cost(cost: Mapping[str, Any], delivery_p99_us: int | None = None) -> str | None:
    """One line on the harness's own cost over a hold, or None when it is not known;
    `delivery_p99_us`: how long after the broker's append the collector saw records (P99),
    which is how far the live P99 and the early abort lag behind."""
    cores = cost.get("collector_cpu_cores")
    per_message = cost.get("collector_cpu_us_per_message")
    if cores is None or per_message is None:
        return None
    behind = (
        f"; it saw records {delivery_p99_us / 1000:,.0f} ms (P99) after the broker appended "
        "them, so the live P99 and the early abort lag by that much"
        if delivery_p99_us is not None
        else ""
    )
    return (
        f"harness cost: the collector used {cores:.0%} of a core, {per_message:.1f} us CPU a "
        f"message ({cost.get('collector_messages', 0):,} messages, librdkafka included)"
        f"{behind}"
    )


def _mapping_json(mapping: FieldMapping | Mapping[str, Any] | None) -> str | None:
    if mapping is None:
        return None
    if isinstance(mapping, FieldMapping):
        return json.dumps(mapping.to_dict())
    return json.dumps(dict(mapping))


class CollectorProcess:
    """The collector in its own process, driven over a line-based JSON protocol."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        mapping: FieldMapping | Mapping[str, Any] | None = None,
        *,
        group: str | None = None,
        offset_reset: str = "latest",
        reply_timeout_s: float = 30.0,
        ready_timeout_s: float = 120.0,
        python: str = sys.executable,
        all_partitions: bool = True,
        module: str = "harness.collector.process",
        extra_args: Sequence[str] = (),
    ) -> None:
        """`all_partitions=False`: read no partition until `assign()` names them. `module` and
        `extra_args`: another process speaking the same protocol (the distributed collector's
        master, `harness.distributed_collector.master`)."""
        self.all_partitions = all_partitions
        self.module = module
        self.extra_args = list(extra_args)
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.mapping = mapping
        self.group = group
        self.offset_reset = offset_reset
        self.reply_timeout_s = reply_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self.partitions = 0
        self._replies: queue.Queue[Any] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=50)
        self._lock = threading.Lock()
        self._intervals: dict[str, dict[str, dict[int, PackedHistogram]]] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def command(self) -> list[str]:
        cmd = [self.python, "-m", self.module, "--bootstrap", self.bootstrap,
               "--topics", ",".join(self.topics), "--offset-reset", self.offset_reset,
               "--timeout", str(self.ready_timeout_s)]  # fmt: skip
        mapping = _mapping_json(self.mapping)
        if mapping is not None:
            cmd += ["--mapping", mapping]
        if self.group:
            cmd += ["--group", self.group]
        if not self.all_partitions:
            cmd += ["--partitions", "none"]
        return cmd + self.extra_args

    def start(self) -> CollectorProcess:
        """Start the process and wait for its ready line (CollectorError if it fails)."""
        if self.proc is not None:
            raise CollectorError("the collector process was already started")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for target, stream in ((self._read_replies, self.proc.stdout),
                               (self._read_stderr, self.proc.stderr)):  # fmt: skip
            threading.Thread(target=target, args=(stream,), daemon=True).start()
        ready = self._next_reply(self.ready_timeout_s + 30, "the ready line")
        if not ready.get("ready"):
            self.kill()
            raise CollectorError(f"collector did not start: {ready.get('error')}{self._tail()}")
        self.partitions = int(ready.get("partitions", 0))
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> CollectorSnapshot | None:
        """Final snapshot and exit; kills by PID if the process does not answer or exit."""
        if self.proc is None:
            return None
        final = None
        try:
            if self.proc.poll() is None:
                with self._lock:
                    self._send({"cmd": "stop"})
                    final = self._snapshot(self._next_reply(timeout_s, "stop"))
                self.proc.wait(timeout=timeout_s)
        except (CollectorError, subprocess.TimeoutExpired, OSError, ValueError):
            final = None
        finally:
            self.kill()
        return final

    def kill(self) -> None:
        """Kill the process by its PID (if still running) and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def __enter__(self) -> CollectorProcess:
        return self.start() if self.proc is None else self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- commands -------------------------------------------------------------------------------

    def stage(self, label: str | None) -> str | None:
        """Start measuring into `label` (None: consume without measuring); returns the label of
        the stage this closed, if any."""
        reply = self.request({"cmd": "stage", "label": label})
        if label is not None:
            self._intervals.pop(label, None)  # a reused label starts anew in the process too
        closed: str | None = reply.get("closed")
        return closed

    def snapshot(self, label: str | None = None) -> CollectorSnapshot:
        """Stage `label`, else the open stage, else the most recently closed one."""
        cmd: dict[str, Any] = {"cmd": "snapshot"}
        if label is not None:
            cmd["label"] = label
        return self._snapshot(self.request(cmd))

    def above(self, limits_us: Sequence[int]) -> tuple[str | None, list[int]]:
        """(open stage, samples of its CO-corrected total lag surely above each limit): the
        early-abort check's figures, without moving a whole snapshot between processes."""
        reply = self.request({"cmd": "above", "limits_us": [int(v) for v in limits_us]})
        return reply["stage"], [int(n) for n in reply["above"]]

    def assign(self, partitions: Sequence[int]) -> int:
        """Also read these partition numbers (of every topic) from their end; returns how many
        partition numbers are read now."""
        reply = self.request({"cmd": "assign", "partitions": sorted(set(partitions))})
        self.partitions = int(reply["partitions"]) * len(self.topics)
        return int(reply["partitions"])

    def counters(self) -> CollectorCounters:
        return CollectorCounters.from_json(self.request({"cmd": "counters"}))

    def drain(self, after_ns: int, timeout_s: float) -> Drained:
        """Wait until the collector has read every record appended before `after_ns` (the end
        offsets of its partitions then), at most `timeout_s`."""
        reply = self.request({"cmd": "drain", "after_ns": int(after_ns), "timeout_s": timeout_s})
        return Drained.from_json(reply)

    def consumed_bytes(self) -> int:
        """Key + value bytes consumed since start (the sampler's Kafka-out source)."""
        return self.counters().consumed_bytes

    def live_p99_us(self) -> int | None:
        """P99 (us) of the total lag over the last completed second of the open stage."""
        return self.counters().live_p99_us

    def request(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send one command and return its reply (CollectorError on an error reply)."""
        with self._lock:
            self._send(command)
            reply = self._next_reply(self.reply_timeout_s, str(command.get("cmd")))
        if "error" in reply:
            raise CollectorError(f"collector refused {command}: {reply['error']}")
        return reply

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, command: dict[str, Any]) -> None:
        if self.proc is None or self.proc.stdin is None:
            raise CollectorError("the collector process is not started")
        try:
            self.proc.stdin.write(json.dumps(command).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            self.kill()
            raise CollectorError(f"collector process is gone: {exc}{self._tail()}") from exc

    def _next_reply(self, timeout_s: float, what: str) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self.kill()
            raise CollectorError(
                f"no reply to {what} within {timeout_s:g} s{self._tail()}"
            ) from None
        if line is _CLOSED:
            self.kill()
            code = None if self.proc is None else self.proc.returncode
            raise CollectorError(f"collector process exited (code {code}){self._tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _read_replies(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                if line.strip():
                    self._replies.put(line)
        self._replies.put(_CLOSED)

    def _read_stderr(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                self._stderr.append(line.decode(errors="replace").rstrip())

    def _tail(self) -> str:
        lines = list(self._stderr)[-15:]
        return ("\n" + "\n".join(lines)) if lines else ""

    def _snapshot(self, reply: dict[str, Any]) -> CollectorSnapshot:
        if "error" in reply:
            raise CollectorError(f"collector snapshot failed: {reply['error']}")
        snapshot = CollectorSnapshot.from_json(reply)
        label = snapshot.label
        if label is not None:
            kept = self._intervals.setdefault(label, {m: {} for m in INTERVAL_MEASURES})
            for name in INTERVAL_MEASURES:
                kept[name].update({s: packed for s, _tag, packed in snapshot.new_intervals(name)})
                snapshot.measure.intervals[name] = dict(sorted(kept[name].items()))
        return snapshot
