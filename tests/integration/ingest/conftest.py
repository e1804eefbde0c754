"""Fixtures of the ingest integration tests: a real redis-server, the feed topics on the real
Kafka broker of `tests/conftest.py`, and a reader that collects records back from Kafka; for
the end-to-end tests a small tape, feed_sim on a background thread, per-test topics, an exact
read-back up to the high watermarks and `ingest run` as a real subprocess.

Everything started here is stopped by PID in a `finally`, even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from feed_sim.protocol.timefmt import et_wall_ns
from feed_sim.server.engine import RateSettings
from feed_sim.tape.format import write_tape
from feed_sim.tape.model import Kind, TapeEvent
from harness.infra.errors import InfraError
from harness.infra.kafka_clients import admin_client
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.infra.ports import LOOPBACK
from harness.infra.redis_local import LocalRedis
from harness.infra.topics import ensure_topics, feed_topic_specs
from ingest.kafka_out import topic_names
from ingest.records import FeedRecord
from ingest.symbols import SymbolPartitions
from tests.feed_sim_server import RunningServer, serve

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class RedisServer:
    """A redis-server this test session started."""

    host: str
    port: int
    data_dir: Path
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _stop_pid(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """redis-server on a free loopback port, AOF with fsync every second, data in tmp_path
    (harness.infra.redis_local, as `harness infra up --redis` starts it)."""
    local = LocalRedis(state_dir=tmp_path)
    try:
        state = local.up()
    except InfraError as exc:
        pytest.fail(str(exc))
    try:
        yield RedisServer(state.host, state.port, Path(state.data_dir), state.pid)
    finally:
        local.down()
        assert not psutil.pid_exists(state.pid) or psutil.Process(state.pid).status() == "zombie"


@pytest.fixture(scope="module")
def feed_topics(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    """The three feed topics (495 partitions each) on the module's broker; the bootstrap."""
    _, state = kafka_single
    names = tuple(topic_names().values())
    ensure_topics(state.bootstrap, feed_topic_specs(state.broker_count, names=names))
    return state.bootstrap


@dataclass(frozen=True)
class Received:
    topic: str
    partition: int
    key: bytes
    value: bytes


def read_back(
    bootstrap: str,
    wanted: Callable[[bytes], bool],
    expected: int,
    timeout_s: float = 60.0,
    topics: list[str] | None = None,
) -> list[Received]:
    """Read `topics` (default: the feed topics) from the start (fresh group) until
    `expected` wanted records."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-back-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics or list(topic_names().values()))
    got: list[Received] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                value = msg.value()
                if msg.error() is None and value is not None and wanted(value):
                    got.append(
                        Received(
                            str(msg.topic()), int(msg.partition() or 0), msg.key() or b"", value
                        )
                    )
    finally:
        consumer.close()
    return got


# ---- end-to-end helpers: feed_sim, per-test topics, Kafka read-back, ingest subprocess ------
# (used by test_end_to_end.py, test_faults.py, test_bad_input.py)

E2E_SYMBOLS = ("AAPL", "MSFT", "IBM")
"""Symbols of the end-to-end tape; all listed in config/production_symbols.json."""
E2E_DEPTH_SYMBOLS = ("AAPL", "MSFT")
"""Symbols of the end-to-end tape with Nasdaq MMID depth rows; IBM has none."""
E2E_MMIDS = ("NSDQ", "GSCO", "MSCO", "ARCX", "EDGX", "CDRG")


def e2e_tape_events(unchanged_quotes: bool = False) -> list[TapeEvent]:
    """Deterministic trades, quotes and Nasdaq MMID depth rows for AAPL, MSFT and IBM.

    Every quote changes the bid size, so every `Q` carries a `b` (a quote record); every
    trade a `C` (a trade record): each Level 1 message feed_sim sends becomes one record.

    `unchanged_quotes` adds quote rows that change nothing on the top of book: a copy of
    every fifth quote right after it, and after each trade a quote repeating the NBBO the
    trade carried with the sizes and market centers already shown. feed_sim must not send
    them (IQConnect sends Level 1 updates on change), so the rule above still holds."""
    start = et_wall_ns(2024, 3, 4, 9, 30)
    bases = {"AAPL": 170.0, "MSFT": 400.0, "IBM": 190.0}
    events: list[TapeEvent] = []
    for position, (symbol, base) in enumerate(bases.items()):
        for i in range(400):
            ts = start + i * 10_000_000 + position * 1_000
            bid = round(base + 0.01 * ((i * 7) % 13 - 6), 2)
            ask = round(bid + 0.01 + 0.01 * (i % 3), 2)
            if i % 3 == 0:
                fields: dict[str, Any] = {
                    "price": ask if i % 2 else bid,
                    "size": 100 + (i % 7) * 37,
                    "market_center": (5, 11, 19, 26)[i % 4],
                    "conditions": ("01", "87", "3D87", "873D17")[i % 4],
                    "basis": "C",
                    "aggressor": 0,
                    "bid": bid,
                    "ask": ask,
                }
                events.append(TapeEvent(ts, symbol, Kind.TRADE, fields))
                if unchanged_quotes and i > 0:  # the trade's NBBO, the last quote's sizes
                    shown = {
                        "bid": bid,
                        "bid_size": 100 + i - 1,
                        "ask": ask,
                        "ask_size": 200 + ((i - 1) % 5) * 100,
                        "bid_mc": 5,
                        "ask_mc": 11,
                    }
                    events.append(TapeEvent(ts + 300, symbol, Kind.QUOTE, shown))
            else:
                fields = {
                    "bid": bid,
                    "bid_size": 100 + i,
                    "ask": ask,
                    "ask_size": 200 + (i % 5) * 100,
                    "bid_mc": 5,
                    "ask_mc": 11,
                }
                events.append(TapeEvent(ts, symbol, Kind.QUOTE, fields))
                if unchanged_quotes and i % 5 == 1:
                    events.append(TapeEvent(ts + 200, symbol, Kind.QUOTE, dict(fields)))
            if symbol in E2E_DEPTH_SYMBOLS:
                side = "B" if i % 2 == 0 else "A"
                delete = i % 11 == 5
                price = bid - 0.01 * (i % 4) if side == "B" else ask + 0.01 * (i % 4)
                events.append(
                    TapeEvent(
                        ts + 500,
                        symbol,
                        Kind.DEPTH,
                        {
                            "side": side,
                            "action": "delete" if delete else "update",
                            "mmid": E2E_MMIDS[i % len(E2E_MMIDS)],
                            "order_id": 0,
                            "price": round(price, 2),
                            "size": 100 * (1 + i % 9),
                        },
                    )
                )
    events.sort(key=lambda e: e.ts_ns)
    return events


@pytest.fixture(scope="session")
def e2e_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tapes") / "e2e.tape.zst"
    write_tape(path, e2e_tape_events(), source="generated")
    return path


@pytest.fixture(scope="session")
def e2e_tape_unchanged_quotes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The end-to-end tape with quote rows that change nothing (`e2e_tape_events`)."""
    path = tmp_path_factory.mktemp("tapes") / "e2e-unchanged.tape.zst"
    write_tape(path, e2e_tape_events(unchanged_quotes=True), source="generated")
    return path


@contextlib.contextmanager
def serve_feed_sim(
    tapes: list[Path],
    rate_hz: float,
    l2_rate_hz: float = 0.0,
    start: bool = True,
    render: str = "live",
) -> Iterator[RunningServer]:
    """feed_sim in fixed mode (`rate_hz` Level 1 and `l2_rate_hz` Level 2 msg/s per symbol,
    Level 1 rendered `render`: live or from rings); always closed on exit."""
    rate = RateSettings(mode="fixed", rate_hz=rate_hz, l2_rate_hz=l2_rate_hz, render=render)
    with serve(tapes, rate=rate, start=start) as server:
        yield server


WARM_UP_PARTITION = 0
"""Partition of symbol `A`, which the end-to-end tests never ingest nor read back."""


def create_topics(bootstrap: str, broker_count: int, prefix: str, kinds: Iterable[str]) -> None:
    """`<prefix>.trades|quotes|depth` (for `kinds`) with 495 partitions, per the feed specs;
    then one idempotent produce to an unused partition, so the broker's producer-id
    coordinator is loaded before the core starts (on a fresh 3-broker cluster of a busy
    2-core machine that alone can take a minute)."""
    names = topic_names(prefix)
    wanted = tuple(names[k] for k in kinds)
    admin = admin_client(bootstrap)
    wait_until(  # a broker restarted by an earlier test may still be rejoining
        lambda: len(admin.list_topics(timeout=10).brokers) >= broker_count,
        120,
        f"{broker_count} brokers in the metadata",
    )
    ensure_topics(bootstrap, feed_topic_specs(broker_count, names=wanted))
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    errors: list[object] = []
    producer.produce(
        wanted[0],
        b"warm-up",
        partition=WARM_UP_PARTITION,
        on_delivery=lambda e, _: errors.append(e),
    )
    assert producer.flush(180) == 0 and errors == [None], f"warm-up produce failed: {errors}"


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes
    record: FeedRecord


def read_partitions(
    bootstrap: str,
    wanted: Iterable[tuple[str, int]],
    timeout_s: float = 60.0,
    expected: int | None = None,
) -> list[Consumed]:
    """Every message of the (topic, partition)s from the beginning up to their high
    watermarks (exact: no record counted twice, none missed), in offset order.

    With `expected` (the records the core saw delivered), the watermarks are read again until
    they hold that many records or `timeout_s` passes; a wait is reported on stderr, since an
    acknowledged record should be below the high watermark at once (one CI run read 2 fewer
    records than delivered and never again in local reruns: this tells a late watermark from a
    lost record).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-read-{time.time_ns()}",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        partitions = set(wanted)
        started = time.monotonic()
        ends = high_watermarks(consumer, partitions, timeout_s)
        while expected is not None and sum(ends.values()) < expected:
            if time.monotonic() - started > timeout_s:
                break
            time.sleep(0.5)
            ends = high_watermarks(consumer, partitions, timeout_s)
        if expected is not None:
            waited = time.monotonic() - started
            held = sum(ends.values())
            if waited > 1.0 or held != expected:
                print(
                    f"read_partitions: the high watermarks hold {held} of {expected} expected "
                    f"record(s) after {waited:.1f} s: {sorted(ends.items())}; other non-empty "
                    f"partitions of these topics: {elsewhere(consumer, partitions, timeout_s)}",
                    file=sys.stderr,
                )
        if not ends:
            return []
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        got: list[Consumed] = []
        done: set[tuple[str, int]] = set()
        deadline = time.monotonic() + timeout_s
        while len(done) < len(ends):
            assert time.monotonic() < deadline, f"read-back incomplete: {len(got)} records"
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is not None:
                    continue
                where = (str(msg.topic()), int(msg.partition() or 0))
                offset = int(msg.offset() or 0)
                if where in done or offset >= ends[where]:
                    continue
                value = msg.value()
                assert value is not None
                got.append(
                    Consumed(
                        where[0], where[1], offset, msg.key() or b"", FeedRecord.from_value(value)
                    )
                )
                if offset + 1 >= ends[where]:
                    done.add(where)
        return sorted(got, key=lambda c: (c.topic, c.partition, c.offset))
    finally:
        consumer.close()


def high_watermarks(
    consumer: Consumer, wanted: set[tuple[str, int]], timeout_s: float
) -> dict[tuple[str, int], int]:
    """High watermark of each non-empty (topic, partition) (its records: the topics are new)."""
    ends: dict[tuple[str, int], int] = {}
    for topic, partition in wanted:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_s
        )
        if high > low:
            ends[(topic, partition)] = high
    return ends


def elsewhere(
    consumer: Consumer, wanted: set[tuple[str, int]], timeout_s: float
) -> dict[tuple[str, int], int]:
    """Non-empty partitions of the `wanted` topics that are not `wanted` (a diagnosis)."""
    topics = {topic for topic, _ in wanted}
    metadata = consumer.list_topics(timeout=timeout_s).topics
    others = {
        (topic, partition)
        for topic in topics
        for partition in metadata[topic].partitions
        if (topic, partition) not in wanted
    }
    return high_watermarks(consumer, others, timeout_s)


def sequence_gaps(consumed: list[Consumed]) -> dict[tuple[str, str], list[int]]:
    """(symbol, "level1" | "depth") -> the sequence numbers missing between its first and
    last record read back (Level 1 trades and quotes share the TickIDs): names the records
    lost when a count does not add up."""
    seqs: dict[tuple[str, str], set[int]] = {}
    for c in consumed:
        family = "depth" if c.record.type == "depth" else "level1"
        seqs.setdefault((c.record.symbol, family), set()).add(c.record.seq)
    return {
        key: sorted(set(range(min(got), max(got) + 1)) - got)
        for key, got in sorted(seqs.items())
        if len(got) != max(got) - min(got) + 1
    }


def symbol_partitions(
    prefix: str, symbols: Iterable[str], kinds: Iterable[str]
) -> list[tuple[str, int]]:
    """(topic, partition) of each symbol's records of `kinds`."""
    table = SymbolPartitions.load()
    names = topic_names(prefix)
    return [(names[k], table.partition_of(s)) for s in symbols for k in kinds]


def unique_prefix(name: str) -> str:
    return f"e2e{name}{uuid.uuid4().hex[:8]}"


class IngestProcess:
    """`python -m ingest.cli run --config FILE` as a real subprocess, stopped by its PID.
    Its stdout JSON events (`started`, `stopped`) are collected by a reader thread."""

    def __init__(self, config_file: Path, log_file: Path) -> None:
        self.log_file = log_file
        self._log = log_file.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "run", "--config", str(config_file), "-v"],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, name="ingest-stdout", daemon=True)
        self._reader.start()
        self.metrics_port = int(self.wait_event("started", timeout_s=60)["metrics_port"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(raw)
                if isinstance(event, dict):
                    self.events.append(event)

    def wait_event(self, name: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("event") == name:
                    return event
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"ingest printed no {name!r} event; stderr:\n{self.stderr_tail()}")

    def stderr_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return self.log_file.read_text(errors="replace")[-chars:]

    def _get(self, path: str) -> bytes:
        url = f"http://{LOOPBACK}:{self.metrics_port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body: bytes = response.read()
            return body

    def state(self) -> dict[str, Any]:
        """GET /admin/state."""
        data: dict[str, Any] = json.loads(self._get("/admin/state"))
        return data

    def metrics(self) -> dict[str, float]:
        """GET /metrics: unlabelled samples by name, labelled ones as `name{labels}`."""
        out: dict[str, float] = {}
        for line in self._get("/metrics").decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def terminate(self, timeout_s: float = 90.0) -> tuple[int, dict[str, Any]]:
        """SIGTERM; wait for the exit; (exit code, the `stopped` event)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(10)
        return code, self.wait_event("stopped", timeout_s=1)

    def kill(self) -> None:
        """Stop by PID whatever happened (finally blocks)."""
        if self.proc.poll() is None:
            _stop_pid(self.proc)
        self._reader.join(10)
        self._log.close()


@contextlib.contextmanager
def run_ingest(tmp_path: Path, config: dict[str, Any]) -> Iterator[IngestProcess]:
    """Write `config` (ingest/config.py keys) and run `ingest run` on it; always stopped."""
    config_file = tmp_path / f"ingest-{uuid.uuid4().hex[:6]}.json"
    config_file.write_text(json.dumps(config))
    proc = IngestProcess(config_file, config_file.with_suffix(".log"))
    try:
        yield proc
    finally:
        proc.kill()


def ingest_config(
    *,
    level1_port: int,
    level2_port: int,
    bootstrap: str,
    prefix: str,
    symbols: Iterable[str],
    level2: bool = True,
    connections: int = 2,
    reconnect_initial_s: float = 0.25,
) -> dict[str, Any]:
    """A config for `ingest run` against a loopback feed and broker (metrics on a free port)."""
    return {
        "symbols": list(symbols),
        "feed": {
            "host": LOOPBACK,
            "level1_port": level1_port,
            "level2_port": level2_port,
            "connections": connections,
            "level2": level2,
            "batch_pause_s": 0.05,
            "reconnect_initial_s": reconnect_initial_s,
            "reconnect_max_s": max(reconnect_initial_s, 2.0),
        },
        "kafka": {"bootstrap": bootstrap, "topic_prefix": prefix},
        "metrics": {"host": LOOPBACK, "port": 0},
    }


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


WITNESS_FIELDS = (
    "Symbol",
    "Most Recent Trade",
    "Most Recent Trade Size",
    "Most Recent Trade Time",
    "Most Recent Trade Market Center",
    "Most Recent Trade Conditions",
    "Bid",
    "Bid Size",
    "Bid Time",
    "Bid Market Center",
    "Ask",
    "Ask Size",
    "Ask Time",
    "Ask Market Center",
    "Message Contents",
    "TickID",
)


class Witness:
    """A direct feed_sim client on a background thread: what the feed really sent."""

    def __init__(self, port: int, commands: list[str]) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.lines: list[str] = []
        self.sock.sendall("".join(f"{c}\r\n" for c in commands).encode())
        self._thread = threading.Thread(target=self._read, name="witness", daemon=True)
        self._thread.start()

    @classmethod
    def level1(cls, port: int, symbols: Iterable[str]) -> Witness:
        select = "S,SELECT UPDATE FIELDS," + ",".join(WITNESS_FIELDS)
        return cls(port, ["S,SET PROTOCOL,6.2", select, *(f"w{s}" for s in symbols)])

    @classmethod
    def level2(cls, port: int, symbols: Iterable[str]) -> Witness:
        return cls(port, ["S,SET PROTOCOL,6.2", *(f"WOR,{s}" for s in symbols)])

    def _read(self) -> None:
        buffer = b""
        self.sock.settimeout(None)
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\r\n")
                self.lines += [line.decode("latin-1") for line in lines]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(10)

    def level1_by_tick(self) -> dict[str, dict[int, dict[str, str]]]:
        """symbol -> TickID -> field name -> text, for every `Q` received."""
        out: dict[str, dict[int, dict[str, str]]] = {}
        names: tuple[str, ...] = ()
        for line in list(self.lines):
            if line.startswith("S,CURRENT UPDATE FIELDNAMES,"):
                names = tuple(line.split(",")[2:])
            elif line.startswith("Q,") and names == WITNESS_FIELDS:
                fields = dict(zip(names, line.split(",")[1:-1], strict=True))
                out.setdefault(fields["Symbol"], {})[int(fields["TickID"])] = fields
        return out
