"""SUT adapters and feed_sim as real processes.

- FeedSimProcess: starts paused on free ports, its control API answers, stop leaves no process.
- Reference core against a real FeedSimProcess (small tape, fixed mode) and a real 1-broker
  Kafka: 1 symbol -> its records arrive; set_symbols to 2 -> the second symbol's records arrive
  from the same PID (live reload); stop -> exit code 0, PID gone.
- Command adapter with a tiny fake core written here (it logs its argv, SIGHUPs, HTTP reloads
  and SIGTERM to a file): restart, signal, http and none reloads.
- Container adapter without a Docker engine: a clear SutError.
- External adapter: reachability check, http reload, warning for none.

Everything started is stopped by PID in a `finally`, even when a test fails.
"""

from __future__ import annotations

import json
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from feed_sim.protocol.timefmt import et_wall_ns
from feed_sim.tape.format import write_tape
from feed_sim.tape.model import Kind, TapeEvent
from harness.feed_process import FeedSimProcess
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.infra.ports import LOOPBACK, free_ports
from harness.infra.topics import ensure_topics, feed_topic_specs
from harness.scenario import (
    DEFAULT_SYMBOLS_FILE,
    CommandSut,
    ContainerSut,
    ExternalSut,
    ReferenceSut,
    Scenario,
)
from harness.sut import FeedEndpoints, KafkaEndpoints, SutError
from harness.sut.command import CommandCore
from harness.sut.container import ContainerCore, docker_client
from harness.sut.external import ExternalCore
from harness.sut.reference import ReferenceCore

pytestmark = pytest.mark.integration

TAPE_SYMBOLS = ("AAPL", "MSFT", "IBM")  # all in config/production_symbols.json
WAIT_S = 90.0
"""Upper bound of every wait below (a bound on a hang, not a timing assertion)."""


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- feed_sim ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trades and quotes of three production symbols (feed_sim cycles them in fixed mode)."""
    start = et_wall_ns(2024, 3, 4, 9, 30)
    events = []
    for i in range(200):
        for k, (symbol, base) in enumerate(zip(TAPE_SYMBOLS, (170.0, 400.0, 190.0), strict=True)):
            ts = start + i * 10_000_000 + k * 1_000
            bid = round(base + 0.01 * (i % 7), 2)
            if i % 2:
                fields: dict[str, Any] = {
                    "price": bid,
                    "size": 100 + i,
                    "market_center": 5,
                    "conditions": "01",
                    "basis": "C",
                    "aggressor": 0,
                }
                events.append(TapeEvent(ts, symbol, Kind.TRADE, fields))
            else:
                fields = {"bid": bid, "bid_size": 100 + i, "ask": bid + 0.01, "ask_size": 300}
                events.append(TapeEvent(ts, symbol, Kind.QUOTE, fields))
    path = tmp_path_factory.mktemp("tape") / "three.tape.zst"
    write_tape(path, events, source="generated", symbols=TAPE_SYMBOLS)
    return path


def tape_scenario(tape: Path) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "sut-adapters",
            "feed": {
                "source": "tape",
                "tapes": [str(tape)],
                "rate": {"model": "fixed", "rate_per_symbol_hz": 50},
            },
            "stages": [{"symbols": 1, "warmup_s": 0, "hold_s": 1}, {"symbols": 2, "hold_s": 1}],
        }
    )


@pytest.fixture
def feed(tape: Path, tmp_path: Path) -> Iterator[FeedSimProcess]:
    process = FeedSimProcess(tape_scenario(tape), tmp_path, startup_timeout_s=120)
    try:
        process.start()
        yield process
    finally:
        process.stop(timeout_s=10)


def test_feed_sim_process_starts_answers_and_stops(tape: Path, tmp_path: Path) -> None:
    process = FeedSimProcess(tape_scenario(tape), tmp_path, startup_timeout_s=120)
    pid = None
    try:
        endpoints = process.start()
        pid = process.pid
        assert pid is not None and process.alive()
        status = process.control.status()
        assert status["running"] is False  # --paused: nothing sent until the runner starts it
        assert status["symbols_loaded"] == len(TAPE_SYMBOLS)
        assert status["mode"] == "fixed" and status["rate_hz"] == 50
        assert status["ports"]["level1"] == endpoints.level1_port
        ports = [endpoints.level1_port, endpoints.level2_port]
        ports += [endpoints.admin_port, endpoints.lookup_port, endpoints.control_port]
        assert all(port > 0 for port in ports) and len(set(ports)) == 5
        assert process.endpoints == endpoints
        assert process.describe()["pid"] == pid
    finally:
        code = process.stop(timeout_s=10)
    assert code == 0
    assert gone(pid)
    assert "feed-sim stopped" in (tmp_path / "logs" / "feed_sim.log").read_text()


def test_feed_sim_process_retries_a_control_port_taken_before_it_bound(
    tape: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The picked control port is taken by someone else: feed_sim cannot bind it (exit 4);
    start() picks another and comes up."""
    import harness.feed_process as feed_process

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        picks = iter([[busy]])
        monkeypatch.setattr(
            feed_process, "free_ports", lambda n, host=LOOPBACK: next(picks, None) or free_ports(n)
        )
        process = FeedSimProcess(tape_scenario(tape), tmp_path, startup_timeout_s=120)
        try:
            endpoints = process.start()
            assert endpoints.control_port != busy
            assert process.control.status()["symbols_loaded"] == len(TAPE_SYMBOLS)
        finally:
            process.stop(timeout_s=10)
    log = (tmp_path / "logs" / "feed_sim.log").read_text()
    assert "cannot bind" in log and "Address already in use" in log


# --- reference core ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bootstrap(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    _, state = kafka_single
    ensure_topics(state.bootstrap, feed_topic_specs(1))
    return state.bootstrap


class SymbolReader:
    """Reads every partition of the SUT's topics from the start (assigned: no consumer group
    coordination); remembers which symbols it has seen."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"sut-adapters-{time.time_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        metadata = self.consumer.list_topics(timeout=30).topics
        self.consumer.assign(
            [
                TopicPartition(topic, partition, OFFSET_BEGINNING)
                for topic in topics
                for partition in metadata[topic].partitions
            ]
        )
        self.seen: dict[str, int] = {}

    def poll(self) -> dict[str, int]:
        for msg in self.consumer.consume(num_messages=1000, timeout=0.5):
            value = msg.value()
            if msg.error() is None and value is not None:
                symbol = json.loads(value)["symbol"]
                self.seen[symbol] = self.seen.get(symbol, 0) + 1
        return self.seen

    def close(self) -> None:
        self.consumer.close()


def test_reference_core_live_reload(feed: FeedSimProcess, bootstrap: str, tmp_path: Path) -> None:
    universe = Scenario.model_validate({"name": "x"}).resolve(DEFAULT_SYMBOLS_FILE)
    sut = ReferenceCore(ReferenceSut(connections=2, level2=False), tmp_path, universe)
    reader = SymbolReader(bootstrap, sut.topics())
    pid = None
    try:
        feed.control.start()
        sut.start(["AAPL"], feed.endpoints, KafkaEndpoints(bootstrap))
        (pid,) = sut.pids()
        assert sut.alive()
        wait_until("AAPL records in Kafka", lambda: "AAPL" in reader.poll())
        assert set(reader.seen) == {"AAPL"}  # subscribed to AAPL only

        sut.set_symbols(["AAPL", "MSFT"])
        wait_until("MSFT records in Kafka", lambda: "MSFT" in reader.poll())
        assert sut.pids() == [pid]  # live reload: same process
        assert sut.state()["symbols"] == 2
        assert "IBM" not in reader.seen
        described = sut.describe()
        assert described["kind"] == "reference" and described["symbols"] == 2
        assert "--symbol" in described["command"]
    finally:
        reader.close()
        code = sut.stop(timeout_s=30)
    assert code == 0
    assert pid is not None and gone(pid)
    assert not sut.alive()


# --- command adapter -----------------------------------------------------------------------

FAKE_CORE = r'''
"""A fake SUT: logs argv + symbols, SIGHUP, HTTP reloads and SIGTERM to EVENTS (JSON lines)."""
import json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

events, symbols_file, admin_port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def record(event, **extra):
    with open(events, "a") as fh:
        fh.write(json.dumps({"event": event, "pid": os.getpid(), **extra}) + "\n")

def symbols():
    with open(symbols_file) as fh:
        return json.load(fh)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self._reply()
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record("http", path=self.path, body=json.loads(body))
        self._reply()
    def _reply(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass

stop = []  # a plain flag: Event.set() in a handler can deadlock with the main thread's wait
signal.signal(signal.SIGHUP, lambda *_: record("sighup", symbols=symbols()))
signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
if admin_port:
    server = ThreadingHTTPServer(("127.0.0.1", admin_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
record("started", argv=sys.argv[4:], symbols=symbols())
while not stop:
    time.sleep(0.05)
record("sigterm")
'''

FEED = FeedEndpoints(LOOPBACK, 15009, 19200, 19300, 19100, 18765)
KAFKA = KafkaEndpoints("127.0.0.1:19092")


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fake_command(tmp_path: Path, admin_port: int = 0) -> str:
    script = tmp_path / "fake_core.py"
    script.write_text(FAKE_CORE)
    head = shlex.join([sys.executable, str(script), str(tmp_path / "events.jsonl")])
    return (
        f"{head} {{symbols_file}} {admin_port} "
        "--feed {feed_host}:{level1_port} --bootstrap {bootstrap} --n {symbol_count}"
    )


def started(events: Path, count: int = 1) -> list[dict[str, Any]]:
    return [e for e in read_events(events) if e["event"] == "started"][:count]


@pytest.fixture
def command_sut(tmp_path: Path) -> Iterator[Callable[..., CommandCore]]:
    """Builds CommandCores; stops every one of them (by PID) afterwards."""
    made: list[CommandCore] = []

    def make(**config: Any) -> CommandCore:
        sut = CommandCore(CommandSut.model_validate(config), tmp_path, Path("/universe.json"))
        made.append(sut)
        return sut

    try:
        yield make
    finally:
        for sut in made:
            pids = sut.pids()
            sut.stop(timeout_s=5)
            assert all(gone(pid) for pid in pids)


def test_command_restart_reload(command_sut: Callable[..., CommandCore], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    sut = command_sut(command=fake_command(tmp_path), reload={"method": "restart"})
    sut.start(["AAPL"], FEED, KAFKA)
    (first,) = wait_until("the fake core", lambda: started(events))
    assert first["symbols"] == ["AAPL"]
    feed_arg = f"{FEED.host}:{FEED.level1_port}"
    assert first["argv"] == ["--feed", feed_arg, "--bootstrap", KAFKA.bootstrap, "--n", "1"]
    (pid,) = sut.pids()

    sut.set_symbols(["AAPL", "MSFT"])
    second = wait_until("the restarted core", lambda: started(events, 2)[1:])[0]
    assert second["symbols"] == ["AAPL", "MSFT"]
    assert sut.pids() == [second["pid"]] and second["pid"] != pid
    assert gone(pid)
    assert sut.restarts == 1
    assert [e["event"] for e in read_events(events)] == ["started", "sigterm", "started"]
    assert sut.stop(timeout_s=10) == 0


def test_command_signal_reload(command_sut: Callable[..., CommandCore], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    sut = command_sut(command=fake_command(tmp_path), reload={"method": "signal"})
    sut.start(["AAPL"], FEED, KAFKA)
    wait_until("the fake core", lambda: started(events))  # its SIGHUP handler is installed
    (pid,) = sut.pids()

    sut.set_symbols(["AAPL", "MSFT", "IBM"])
    hups = wait_until("SIGHUP", lambda: [e for e in read_events(events) if e["event"] == "sighup"])
    assert hups[0]["symbols"] == ["AAPL", "MSFT", "IBM"]  # the file was rewritten first
    assert hups[0]["pid"] == pid and sut.pids() == [pid]
    assert sut.reloads == 1 and sut.restarts == 0
    assert sut.stop(timeout_s=10) == 0
    assert gone(pid)


def test_command_http_reload(command_sut: Callable[..., CommandCore], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    (port,) = free_ports(1)
    sut = command_sut(
        command=fake_command(tmp_path, admin_port=port),
        admin_url=f"http://127.0.0.1:{port}/",
        reload={"method": "http", "url": f"http://127.0.0.1:{port}/reload"},
    )
    sut.start(["AAPL"], FEED, KAFKA)  # returns once admin_url answers
    (pid,) = sut.pids()

    sut.set_symbols(["AAPL", "MSFT"])
    posts = [e for e in read_events(events) if e["event"] == "http"]
    assert posts == [
        {"event": "http", "pid": pid, "path": "/reload", "body": {"symbols": ["AAPL", "MSFT"]}}
    ]
    assert sut.pids() == [pid]
    assert json.loads(sut.symbols_file.read_text()) == ["AAPL", "MSFT"]
    assert sut.stop(timeout_s=10) == 0


def test_command_none_reload_only_rewrites_the_file(
    command_sut: Callable[..., CommandCore], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    sut = command_sut(command=fake_command(tmp_path), reload={"method": "none"})
    sut.start(["AAPL"], FEED, KAFKA)
    wait_until("the fake core", lambda: started(events))
    (pid,) = sut.pids()
    sut.set_symbols(["AAPL", "MSFT"])
    assert json.loads(sut.symbols_file.read_text()) == ["AAPL", "MSFT"]
    assert sut.pids() == [pid]
    assert sut.stop(timeout_s=10) == 0
    assert [e["event"] for e in read_events(events)] == ["started", "sigterm"]


def test_command_that_exits_at_once_is_an_error(
    command_sut: Callable[..., CommandCore], tmp_path: Path
) -> None:
    code = "import sys; print('no feed configured'); sys.exit(3)"
    sut = command_sut(command=shlex.join([sys.executable, "-c", code]))
    with pytest.raises(SutError, match=r"exited with code 3[\s\S]*no feed configured"):
        sut.start(["AAPL"], FEED, KAFKA)
    assert not sut.alive()


def test_command_unknown_program_is_an_error(command_sut: Callable[..., CommandCore]) -> None:
    sut = command_sut(command="/nonexistent/core {symbols_file}")
    with pytest.raises(SutError, match="cannot start '/nonexistent/core'"):
        sut.start(["AAPL"], FEED, KAFKA)


def test_command_stop_kills_a_core_that_ignores_sigterm(
    command_sut: Callable[..., CommandCore], tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    code = (
        "import signal, time, pathlib, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(600)"
    )
    sut = command_sut(command=shlex.join([sys.executable, "-c", code, str(ready)]))
    sut.start(["AAPL"], FEED, KAFKA)
    wait_until("the stubborn core", ready.exists)
    (pid,) = sut.pids()
    assert sut.stop(timeout_s=0.5) == -9
    assert gone(pid)


# --- container and external adapters --------------------------------------------------------


def test_container_without_engine_is_a_clear_error(tmp_path: Path) -> None:
    try:
        docker_client(timeout_s=5).close()
    except SutError:
        pass
    else:
        pytest.skip("a Docker engine is reachable here")
    config = ContainerSut(image="example/core:1", command="core --symbols {symbols_file}")
    sut = ContainerCore(config, tmp_path, Path("/universe.json"))
    try:
        with pytest.raises(SutError, match=r"^Docker engine unavailable: ") as info:
            sut.start(["AAPL"], FEED, KAFKA)
        assert info.value.__cause__ is not None
        assert not sut.alive()
        assert sut.container_id() is None
    finally:
        assert sut.stop() is None


class _Admin(BaseHTTPRequestHandler):
    posts: ClassVar[list[Any]] = []

    def do_GET(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.posts.append(json.loads(body))
        self._reply()

    def _reply(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def admin_server() -> Iterator[str]:
    """An in-process HTTP server standing in for an external core's admin API."""
    _Admin.posts.clear()
    server = ThreadingHTTPServer((LOOPBACK, 0), _Admin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_external_http_reload(admin_server: str) -> None:
    config = ExternalSut(
        admin_url=admin_server + "/",
        reload={"method": "http", "url": admin_server + "/symbols"},  # type: ignore[arg-type]
    )
    sut = ExternalCore(config)
    sut.start(["AAPL"], FEED, KAFKA)
    sut.set_symbols(["AAPL", "MSFT"])
    assert _Admin.posts == [{"symbols": ["AAPL"]}, {"symbols": ["AAPL", "MSFT"]}]
    assert sut.alive() and sut.warnings == []
    assert sut.stop() is None  # not ours to stop
    assert sut.pids() == []


def test_external_none_reload_warns(admin_server: str) -> None:
    sut = ExternalCore(ExternalSut(metrics_url=admin_server + "/metrics", pid=psutil.Process().pid))
    sut.start(["AAPL"], FEED, KAFKA)
    sut.set_symbols(["AAPL", "MSFT"])
    assert sut.symbols == ["AAPL", "MSFT"]
    assert len(sut.warnings) == 1 and "cannot set its symbols" in sut.warnings[0]
    assert sut.describe()["warnings"] == sut.warnings
    assert sut.pids() == [psutil.Process().pid]


def test_external_unreachable_is_an_error() -> None:
    (port,) = free_ports(1)
    sut = ExternalCore(ExternalSut(admin_url=f"http://127.0.0.1:{port}/"), check_timeout_s=2)
    with pytest.raises(SutError, match=f"does not answer at http://127.0.0.1:{port}/"):
        sut.start(["AAPL"], FEED, KAFKA)
