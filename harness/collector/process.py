"""The collector as its own process: Kafka -> per-stage HDR histograms and sequence tracking.

    python -m harness.collector.process --bootstrap B --topics t1,t2,t3 \
        [--mapping JSON] [--group G] [--offset-reset latest|earliest] \
        [--partitions all|none] [--shard I/N]

Locust monkey-patches its process with gevent, so the collector's hot loop never runs there
(ARCHITECTURE.md, "Locust's role"): this process owns the Kafka readers (librdkafka's C API,
one per topic: `harness.collector.kafka_read.TopicReaders`) and the measurement core
(`BatchDecoder`, `Recorder`, `SequenceTracker`); the orchestrator drives it through
`harness.collector.client.CollectorProcess`.

Consumption. The readers assign themselves every partition of the SUT's topics at explicit
start offsets (the end, or the beginning with `--offset-reset earliest`) looked up with one
ListOffsets request before the process reports ready, so everything produced after the
`ready` line is read -- no group rebalance, no lazy "latest" resolution racing the producer.
With `--partitions none` it starts with no partition and reads only those the runner adds
with `assign` (the stage's symbols' partitions, at their end offsets).
`--shard I/N` (a collector shard of `harness.distributed_collector.worker`) keeps, of all
partitions, those numbered p with p mod N == I.
The SUT's lag ends at the broker's append time (contract 3), not when this process reads a
record, so the readers favour throughput (`harness.collector.kafka_read`; `--consumer-config`
overrides their settings): how late the collector sees a record is its own `delivery` hop,
and only the live P99 and the early abort wait for it. The main thread reads the topics in
turn, up to 10,000 records a read, decoded into columns in C while a stage is open, and stamps
`observed_ns = time.time_ns()` once per read, right after it returns. Every
record's value and key bytes are counted (Kafka Mbps out of the SUT); records are decoded and
measured only while a stage is open -- before the first stage and after `stage null` they are
consumed but not measured (warmup).

Control protocol: one JSON object per line on stdin, one JSON reply per line on stdout. A
reader thread parses stdin onto a queue; the main thread serves it between batches, so a
command waits at most one consume timeout plus one batch.

    (at start)                                -> {"ready": true, "pid": ..., "partitions": N}
    {"cmd": "stage", "label": "stage-1"|null} -> {"ok": true, "stage": "stage-1", "closed": prev}
    {"cmd": "snapshot"[, "label": L]}         -> a snapshot (below)
    {"cmd": "counters"}                       -> {"stage", "consumed_messages", "consumed_bytes",
                                                  "kafka_errors", "live_p99_us", "t_ns",
                                                  "cpu_ns" (the process's CPU time)}
    {"cmd": "above", "limits_us": [50000, 100000]}
                                              -> {"stage", "messages", "above": [n1, n2]}: samples
                                                 of the open stage's `total` histogram surely above
                                                 each limit (contracts.hdr.count_above); a cheap
                                                 reply for the early-abort check
    {"cmd": "assign", "partitions": [0, 7]}   -> {"ok": true, "added": N, "partitions": total}
                                                 (those partition numbers of every topic)
    {"cmd": "drain", "after_ns": T, "timeout_s": S}
                                              -> {"drained": bool, "behind": N, "waited_s": s}
                                                 once every assigned partition has been read
                                                 up to the end offset it had at time T (taken
                                                 then), or after S seconds (N partitions short);
                                                 the loop keeps reading meanwhile
    {"cmd": "stop"}                           -> a final snapshot, then exit 0
    anything wrong                            -> {"error": "..."}

A snapshot is of stage L if given, else of the open stage, else of the most recently closed
one (so `stage null` then `snapshot` gives the stage just measured, with its last intervals):
`measure` (StageMeasure.to_json() with its `intervals` left empty), `completeness`
(Completeness.to_json()), `intervals` / `intervals_uncorrected` -- [[second, label, encoded],
...] of the `total` / `total_uncorrected` 1 s interval histograms sealed since the previous
snapshot of that stage (each second is sent once; a closed stage has all its seconds sealed),
plus `stage_messages` (records measured), the consumed counters, Kafka errors and the live
last-second P99 of `total`. Closed stages are kept (a few MB each) so a late snapshot finds them.

SIGTERM (or stdin closing) ends the loop; the consumer is closed and the process exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any, ClassVar

import orjson
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from contracts.hdr import count_above
from contracts.records import REFERENCE_CORE, FieldMapping
from harness.collector._fastdecode import KafkaReaderError
from harness.collector.completeness import Completeness, SequenceTracker
from harness.collector.kafka_read import CONSUMER_SETTINGS, ReadBatch, ReadMode, TopicReaders
from harness.collector.mapping import BatchDecoder, quiet_gc
from harness.collector.measure import INTERVAL_MEASURES, Recorder, StageMeasure
from harness.collector.replies import CollectorCounters, CollectorSnapshot, Interval
from harness.collector.shards import in_shard, parse_shard
from harness.infra.kafka_clients import admin_client
from harness.infra.topics import offsets_when_served

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INFRA = 4
log = logging.getLogger("harness.collector")


@dataclass
class StageState:
    """One stage's recorder and sequence tracker, and which interval seconds were sent."""

    label: str
    recorder: Recorder
    tracker: SequenceTracker = field(default_factory=SequenceTracker)
    closed: StageMeasure | None = None
    sent: dict[str, set[int]] = field(default_factory=lambda: {m: set() for m in INTERVAL_MEASURES})

    @property
    def measure(self) -> StageMeasure:
        return self.closed if self.closed is not None else self.recorder.measure

    def close(self) -> None:
        if self.closed is None:
            self.closed = self.recorder.take()


class Collector:
    """The measuring state of the process (no I/O): batches in, snapshots out."""

    def __init__(
        self,
        mapping: FieldMapping = REFERENCE_CORE,
        clock: Callable[[], int] = time.time_ns,
        cpu_clock: Callable[[], int] = time.process_time_ns,
    ) -> None:
        self.decoder = BatchDecoder(mapping)
        self.clock = clock
        self.cpu_clock = cpu_clock
        """CPU time of this process, librdkafka's threads included (the harness's own cost)."""
        self.stages: dict[str, StageState] = {}
        self.active: StageState | None = None
        self.last: StageState | None = None
        self.consumed_messages = 0
        self.consumed_bytes = 0
        self.kafka_errors = 0
        self.last_error = ""

    @property
    def read_mode(self) -> ReadMode:
        """What the next read should do with the values: nothing while no stage is measured,
        else decode them in C (flat mappings) or hand them over raw (the general path)."""
        if self.active is None:
            return ReadMode.COUNT
        return ReadMode.VALUES if self.decoder.native_keys is None else ReadMode.COLUMNS

    def on_batch(self, batch: ReadBatch, observed_ns: int) -> None:
        """One read (`TopicReaders.read`), observed at `observed_ns`."""
        self.consumed_messages += batch.records
        self.consumed_bytes += batch.nbytes
        if batch.errors:
            self.kafka_errors += batch.errors
            self.last_error = batch.last_error or self.last_error
        stage = self.active
        if stage is None or not batch.records:
            return
        if batch.columns is not None:
            decoded = self.decoder.from_columns(batch.columns, observed_ns, batch.append_ns)
        elif batch.values is not None:
            decoded = self.decoder.decode(batch.values, observed_ns, batch.append_ns)
        else:
            return  # read only to count (no stage was open when it was asked for)
        stage.recorder.record(
            decoded.exchange_ns,
            decoded.recv_ns,
            decoded.produced_ns,
            decoded.observed_ns,
            decoded.append_ns,
        )
        stage.tracker.update(decoded.symbols, decoded.types, decoded.seq, decoded.malformed)

    def set_stage(self, label: str | None) -> str | None:
        """Close the open stage (returns its label) and open `label` (None = warmup)."""
        closed = None
        if self.active is not None:
            self.active.close()
            closed = self.active.label
            self.active = None
        if label is not None:
            tracker = SequenceTracker(self.decoder.mapping.families)
            state = StageState(label, Recorder(label, self.clock), tracker)
            self.stages[label] = self.active = self.last = state
        return closed

    def live_p99_us(self) -> int | None:
        return None if self.active is None else self.active.recorder.live_p99_us()

    def counters(self) -> CollectorCounters:
        return CollectorCounters(
            stage=None if self.active is None else self.active.label,
            consumed_messages=self.consumed_messages,
            consumed_bytes=self.consumed_bytes,
            kafka_errors=self.kafka_errors,
            live_p99_us=self.live_p99_us(),
            t_ns=self.clock(),
            cpu_ns=self.cpu_clock(),
            last_error=self.last_error,
        )

    def above(self, limits_us: Sequence[int]) -> dict[str, Any]:
        """Samples of the open stage's CO-corrected total lag surely above each limit."""
        state = self.active
        if state is None:
            return {"stage": None, "messages": 0, "above": [0] * len(limits_us)}
        measure = state.measure
        total = measure.histograms["total"]
        return {
            "stage": state.label,
            "messages": measure.messages,
            "above": [count_above(total, int(limit)) for limit in limits_us],
        }

    def snapshot(self, label: str | None = None, final: bool = False) -> CollectorSnapshot:
        """The snapshot of stage `label` / the open stage / the last closed stage."""
        if label is not None:
            state = self.stages.get(label)
            if state is None:
                raise KeyError(f"no stage {label!r}; stages: {sorted(self.stages)}")
        else:
            state = self.active or self.last
        counters = self.counters()
        if state is None:
            return CollectorSnapshot(
                None, False, StageMeasure(), Completeness(), 0, counters, final=final
            )
        measure = state.measure
        return CollectorSnapshot(
            label=state.label,
            active=state is self.active,
            measure=measure,
            completeness=state.tracker.snapshot(),
            stage_messages=measure.messages,
            counters=counters,
            intervals=self._new_intervals(state, measure, "total"),
            intervals_uncorrected=self._new_intervals(state, measure, "total_uncorrected"),
            final=final,
        )

    @staticmethod
    def _new_intervals(state: StageState, measure: StageMeasure, name: str) -> list[Interval]:
        sent = state.sent[name]
        fresh = sorted(s for s in measure.intervals[name] if s not in sent)
        sent.update(fresh)
        return [(s, state.label, measure.intervals[name][s]) for s in fresh]


class ControlChannel:
    """Commands from stdin (a reader thread puts them on a queue); replies to stdout."""

    EOF: ClassVar[dict[str, Any]] = {"cmd": "_eof"}

    def __init__(self, stdin_fd: int, stdout: IO[bytes]) -> None:
        self.stdin_fd = stdin_fd
        self.stdout = stdout
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, name="collector-stdin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        """Raw reads of the fd: a daemon thread blocked in a BUFFERED stdin read would abort
        the interpreter at exit (it cannot take the buffer's lock)."""
        pending = b""
        while chunk := os.read(self.stdin_fd, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    self.commands.put(self._parse(line))
        if pending.strip():
            self.commands.put(self._parse(pending))
        self.commands.put(self.EOF)

    @staticmethod
    def _parse(line: bytes) -> dict[str, Any]:
        try:
            command = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return {"cmd": "_bad", "error": f"bad command line: {exc}"}
        if not isinstance(command, dict):
            return {"cmd": "_bad", "error": "a command is a JSON object"}
        return command

    def reply(self, payload: dict[str, Any]) -> None:
        self.stdout.write(orjson.dumps(payload) + b"\n")
        self.stdout.flush()


def handle(collector: Collector, command: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The reply to one command and whether the process should exit after it."""
    name = command.get("cmd")
    try:
        if name == "stage":
            label = command.get("label")
            if label is not None and (not isinstance(label, str) or not label):
                raise ValueError(f"a stage label is a non-empty string or null, not {label!r}")
            closed = collector.set_stage(label)
            return {"ok": True, "stage": label, "closed": closed}, False
        if name == "snapshot":
            return collector.snapshot(command.get("label")).to_json(), False
        if name == "counters":
            return collector.counters().to_json(), False
        if name == "above":
            limits = command.get("limits_us")
            if not isinstance(limits, list) or not all(isinstance(v, int) for v in limits):
                raise ValueError(f"limits_us is a list of integers, not {limits!r}")
            return collector.above(limits), False
        if name == "stop":
            return collector.snapshot(final=True).to_json(), True
        if name == "_bad":
            return {"error": str(command.get("error"))}, False
        return {"error": f"unknown command {name!r}"}, False
    except (KeyError, ValueError, TypeError) as exc:
        return {"error": str(exc.args[0] if exc.args else exc)}, False


def start_offsets(
    bootstrap: str,
    topics: Sequence[str],
    earliest: bool,
    timeout_s: float,
    only: Collection[int] | None = None,
) -> list[TopicPartition]:
    """Every partition of `topics` (or those numbered in `only`) at its current end (or
    beginning), by ListOffsets."""
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=timeout_s).topics
        missing = [t for t in topics if t not in metadata or not metadata[t].partitions]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise KafkaException(f"topics not found on {bootstrap}: {', '.join(missing)}")
        time.sleep(0.25)
    spec = OffsetSpec.earliest() if earliest else OffsetSpec.latest()  # type: ignore[no-untyped-call]
    wanted = {
        TopicPartition(t, p): spec
        for t in topics
        for p in sorted(metadata[t].partitions)
        if only is None or p in only
    }
    offsets = offsets_when_served(admin, wanted, deadline)
    return [TopicPartition(tp.topic, tp.partition, offsets[tp]) for tp in wanted]


class Assigner:
    """Which partitions the consumers read. All of the SUT's topics' partitions by default;
    with `--partitions none` only those the runner names (`assign`), added at their end
    offsets: a consumer of partitions the stage does not use makes the broker answer every
    fetch for them too."""

    def __init__(
        self,
        consumers: TopicReaders,
        bootstrap: str,
        topics: Sequence[str],
        timeout_s: float,
    ):
        self.consumers = consumers
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.timeout_s = timeout_s
        self.assigned: set[int] = set()

    def assign(self, partitions: Sequence[int]) -> dict[str, Any]:
        fresh = {int(p) for p in partitions} - self.assigned
        if fresh:
            offsets = start_offsets(self.bootstrap, self.topics, False, self.timeout_s, fresh)
            self.consumers.assign(offsets)
            self.assigned |= fresh
        return {"ok": True, "added": len(fresh), "partitions": len(self.assigned)}


class Drain:
    """A `drain` command being served: the end offsets of every assigned partition, taken once
    the clock passes `after_ns`, then answered when the readers have read up to them (every
    record appended by then has been seen) or when `timeout_s` has passed."""

    def __init__(self, command: dict[str, Any], readers: TopicReaders, bootstrap: str) -> None:
        self.after_ns = int(command.get("after_ns") or 0)
        self.timeout_s = float(command.get("timeout_s") or 5.0)
        self.readers = readers
        self.bootstrap = bootstrap
        self.started = time.monotonic()
        self.targets: dict[tuple[str, int], int] | None = None

    def poll(self) -> dict[str, Any] | None:
        """The reply when the drain is done, else None (keep reading)."""
        expired = time.monotonic() - self.started >= self.timeout_s
        if self.targets is None:
            if time.time_ns() < self.after_ns and not expired:
                return None
            self.targets = self._end_offsets()
        positions = self.readers.positions()
        behind = sum(1 for tp, end in self.targets.items() if positions.get(tp, -1) < end)
        if behind and not expired:
            return None
        waited = time.monotonic() - self.started
        return {"drained": behind == 0, "behind": behind, "waited_s": waited}

    def _end_offsets(self) -> dict[tuple[str, int], int]:
        assigned = list(self.readers.assigned_at)
        if not assigned:
            return {}
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        wanted = {TopicPartition(t, p): latest for t, p in assigned}
        deadline = self.started + self.timeout_s
        offsets = offsets_when_served(admin_client(self.bootstrap), wanted, deadline)
        return {(tp.topic, tp.partition): end for tp, end in offsets.items()}


def serve(
    readers: TopicReaders,
    collector: Collector,
    channel: ControlChannel,
    stop: threading.Event,
    assigner: Assigner | None = None,
    slow_s: float = 0.0,
) -> int:
    """The main loop: serve commands between batches until `stop` or a stop command.
    `slow_s`: sleep that long after each batch (a test knob: a collector that reads late).
    A `drain` is answered from the loop when done; the orchestrator sends nothing meanwhile."""
    drain: Drain | None = None
    while not stop.is_set():
        while drain is None:
            try:
                command = channel.commands.get_nowait()
            except queue.Empty:
                break
            if command is ControlChannel.EOF:
                return EXIT_OK
            if command.get("cmd") == "drain" and assigner is not None:
                drain = Drain(command, readers, assigner.bootstrap)
                continue
            if command.get("cmd") == "assign" and assigner is not None:
                try:
                    reply, done = assigner.assign(list(command.get("partitions") or [])), False
                except (KafkaException, KafkaReaderError, TypeError, ValueError) as exc:
                    reply, done = {"error": f"assign failed: {exc}"}, False
            else:
                reply, done = handle(collector, command)
            try:
                channel.reply(reply)
            except (BrokenPipeError, ValueError):  # the orchestrator is gone
                return EXIT_OK
            if done:
                return EXIT_OK
        decoder = collector.decoder
        batch = readers.read(collector.read_mode, decoder.native_keys, decoder.strings)
        observed_ns = time.time_ns()
        collector.on_batch(batch, observed_ns)
        if drain is not None:
            try:
                answer = drain.poll()
            except KafkaException as exc:
                answer = {"error": f"drain failed: {exc}"}
            if answer is not None:
                drain = None
                try:
                    channel.reply(answer)
                except (BrokenPipeError, ValueError):
                    return EXIT_OK
        if slow_s:
            time.sleep(slow_s)
    return EXIT_OK


def add_collector_options(parser: argparse.ArgumentParser) -> None:
    """The options of a collector: this process's, and the distributed collector's master's
    (harness.distributed_collector.master), which passes them on to its shards."""
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topics", required=True, help="comma-separated topics of the SUT")
    parser.add_argument("--mapping", default=None, help="FieldMapping as a JSON object")
    parser.add_argument("--group", default=None, help="consumer group id (default: unique)")
    parser.add_argument("--offset-reset", choices=("latest", "earliest"), default="latest")
    parser.add_argument("--timeout", type=float, default=60.0, help="startup timeout (s)")
    parser.add_argument(
        "--partitions",
        choices=("all", "none"),
        default="all",
        help="read every partition from the start, or none until `assign` names them",
    )
    parser.add_argument(
        "--consumer-config",
        default=None,
        help="librdkafka settings (a JSON object) over the collector's own, e.g. to compare "
        "fetch settings in bench/bench_collector.py",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.collector.process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_collector_options(parser)
    parser.add_argument(
        "--shard",
        type=parse_shard,
        default=None,
        metavar="I/N",
        help="with --partitions all: read only partitions p with p mod N == I (a collector "
        "shard of harness.distributed_collector.worker)",
    )
    parser.add_argument(
        "--test-slow-ms",
        type=float,
        default=0.0,
        help="a test knob: sleep this long after every batch (a collector that reads late; "
        "it must move the delivery hop only)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="collector %(levelname)s %(name)s: %(message)s",
    )
    channel = ControlChannel(sys.stdin.fileno(), sys.stdout.buffer)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    try:
        mapping = (
            FieldMapping.from_dict(json.loads(args.mapping)) if args.mapping else REFERENCE_CORE
        )
    except (ValueError, TypeError) as exc:
        channel.reply({"error": f"bad --mapping: {exc}"})
        return EXIT_ERROR
    try:
        overrides = json.loads(args.consumer_config) if args.consumer_config else {}
        if not isinstance(overrides, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        channel.reply({"error": f"bad --consumer-config: {exc}"})
        return EXIT_ERROR
    topics = [t for t in args.topics.split(",") if t]
    group = args.group or f"harness-collector-{os.getpid()}-{time.time_ns()}"
    try:
        partitions = start_offsets(
            args.bootstrap,
            topics,
            args.offset_reset == "earliest",
            args.timeout,
            set() if args.partitions == "none" else None,
        )
        if args.shard is not None:
            partitions = [tp for tp in partitions if in_shard(tp.partition, *args.shard)]
        kafka = TopicReaders(
            args.bootstrap,
            group,
            topics,
            {**CONSUMER_SETTINGS, "auto.offset.reset": args.offset_reset, **overrides},
        )
        kafka.assign(partitions)
        assigner = Assigner(kafka, args.bootstrap, topics, args.timeout)
        assigner.assigned = {tp.partition for tp in partitions}
    except (KafkaException, KafkaReaderError) as exc:
        channel.reply({"error": f"Kafka unavailable: {exc}"})
        return EXIT_INFRA
    except ValueError as exc:  # a setting librdkafka refuses (--consumer-config)
        channel.reply({"error": f"bad consumer settings: {exc}"})
        return EXIT_ERROR
    quiet_gc()
    collector = Collector(mapping)
    channel.reply(
        {"ready": True, "pid": os.getpid(), "partitions": len(partitions), "group": group}
    )
    channel.start()
    try:
        return serve(kafka, collector, channel, stop, assigner, args.test_slow_ms / 1000)
    finally:
        kafka.close()


if __name__ == "__main__":
    sys.exit(main())
