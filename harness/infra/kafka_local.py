"""A real Apache Kafka cluster (KRaft) on loopback, started from the Maven-fetched broker jars.

`LocalKafka.up()` formats storage, starts 1 or 3 combined broker+controller JVMs on free
loopback ports, waits until a metadata request sees every broker, and writes the cluster
state (bootstrap address, PIDs, ports) to `<state_dir>/kafka.json`, where the other commands
find it. `down()` stops exactly the PIDs that `up()` recorded and is idempotent.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from harness import paths
from harness.defaults import KAFKA_VERSION, MAX_REPLICATION, MIN_INSYNC_REPLICAS_AT_RF3
from harness.infra.broker_profiles import BrokerProfile, broker_profile
from harness.infra.errors import InfraError
from harness.infra.java import find_java
from harness.infra.kafka_clients import admin_client
from harness.infra.ports import LOOPBACK, free_ports

STATE_FILE = "kafka.json"
BROKER_MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"
FETCH_HINT = "run `harness infra fetch` (or `make kafka-jars`) to download them with Maven"
FAILED_STARTS_DIR = "kafka-failed-starts"

log = logging.getLogger(__name__)


class NodeExitedError(InfraError):
    """A broker JVM exited while the cluster was starting."""


@dataclass(frozen=True)
class BrokerNode:
    """One combined broker+controller process of the local cluster."""

    node_id: int
    port: int
    controller_port: int
    config_file: str
    log_dir: str
    stdout_file: str
    pid: int = 0

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


@dataclass
class ClusterState:
    """What `up` started: enough to find, check and stop the cluster later."""

    version: str
    cluster_id: str
    state_dir: str
    nodes: list[BrokerNode] = field(default_factory=list)
    started_at_ns: int = 0

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def broker_count(self) -> int:
        return len(self.nodes)

    def to_json(self) -> str:
        data = asdict(self)
        data["bootstrap"] = self.bootstrap
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        data = json.loads(text)
        data.pop("bootstrap", None)
        nodes = [BrokerNode(**node) for node in data.pop("nodes")]
        return cls(nodes=nodes, **data)


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    pid: int
    alive: bool
    address: str


@dataclass(frozen=True)
class ClusterStatus:
    """Liveness of the recorded processes and what a metadata request saw."""

    running: bool
    bootstrap: str
    nodes: list[NodeStatus]
    brokers_in_metadata: int
    error: str = ""


def kafka_jars(jars_dir: Path | None = None) -> Path:
    """The folder of broker jars, checked to hold the broker; raises with the fix otherwise."""
    folder = jars_dir or paths.kafka_jars_dir()
    if not folder.is_dir() or not any(folder.glob("kafka_2.13-*.jar")):
        raise InfraError(f"the Kafka broker jars are missing in {folder}; {FETCH_HINT}")
    return folder


def fetch_kafka_jars(jars_dir: Path | None = None, pom: Path | None = None) -> Path:
    """Download the broker jars with Maven (compose/kafka/pom.xml) into the cache folder."""
    folder = jars_dir or paths.kafka_jars_dir()
    pom_file = pom or paths.kafka_pom()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError(
            "Maven (mvn) was not found; install it with `make deps` (apt-get install maven)"
        )
    if not pom_file.exists():
        raise InfraError(f"the Maven file {pom_file} is missing")
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom_file),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={folder}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise InfraError(f"Maven could not fetch the Kafka broker ({' '.join(cmd)}):\n{tail}")
    return kafka_jars(folder)


def broker_properties(
    node: BrokerNode, voters: str, broker_count: int, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """server.properties of one combined KRaft node; replication follows the broker count."""
    replication = min(MAX_REPLICATION, broker_count)
    min_isr = MIN_INSYNC_REPLICAS_AT_RF3 if replication >= MAX_REPLICATION else 1
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{LOOPBACK}:{node.port},CONTROLLER://{LOOPBACK}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": node.log_dir,
        "num.partitions": "1",
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
        # Small preallocated index files: hundreds of partitions on a laptop-sized disk.
        "log.index.size.max.bytes": str(1024 * 1024),
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    props.update(extra or {})
    return props


def _log4j_config(log_file: Path) -> str:
    return "\n".join(
        [
            "status = error",
            "appender.file.type = File",
            "appender.file.name = file",
            f"appender.file.fileName = {log_file}",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = file",
            "logger.kafka.name = kafka",
            "logger.kafka.level = INFO",
            "logger.state.name = state.change.logger",
            "logger.state.level = WARN",
            "",
        ]
    )


class LocalKafka:
    """Starts, checks and stops a local KRaft cluster; state lives in `state_dir`."""

    def __init__(
        self,
        state_dir: Path | None = None,
        jars_dir: Path | None = None,
        heap_mb: int = 512,
        clock: Callable[[], float] = time.monotonic,
        profile: BrokerProfile | str | None = None,
    ) -> None:
        self.state_dir = (state_dir or paths.state_dir()).resolve()
        self.jars_dir = jars_dir
        self.heap_mb = heap_mb
        self.profile = profile if isinstance(profile, BrokerProfile) else broker_profile(profile)
        """The broker tuning (harness.infra.broker_profiles); `extra_config` overrides it."""
        self._clock = clock
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    def load_state(self) -> ClusterState | None:
        """The recorded cluster, or None when nothing was started here."""
        if not self.state_file.exists():
            return None
        return ClusterState.from_json(self.state_file.read_text())

    def _save_state(self, state: ClusterState) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(self.state_file)

    # -- up ---------------------------------------------------------------------------------

    def up(
        self,
        brokers: int = 1,
        timeout_s: float = 120.0,
        extra_config: dict[str, str] | None = None,
        start_attempts: int = 2,
    ) -> ClusterState:
        """Start a fresh cluster of `brokers` nodes and wait until all serve metadata.

        `extra_config` adds or overrides server.properties keys on every node.
        A broker JVM that exits during start-up fails the attempt: its logs are kept under
        `<state_dir>/kafka-failed-starts/`, a warning names its exit status, and a fresh
        cluster is started, up to `start_attempts` times in all.
        """
        if brokers not in (1, 3):
            raise ValueError(f"brokers must be 1 or 3, got {brokers}")
        if start_attempts < 1:
            raise ValueError(f"start_attempts must be at least 1, got {start_attempts}")
        existing = self.load_state()
        if existing is not None:
            if self.status(existing).running:
                raise InfraError(
                    f"a local Kafka is already running at {existing.bootstrap} "
                    f"(state {self.state_file}); run `harness infra down` first"
                )
            self.down()
        java = find_java()
        jars = kafka_jars(self.jars_dir)
        for attempt in range(1, start_attempts + 1):
            state = self._plan(brokers, extra_config)
            self._save_state(state)
            try:
                for node in state.nodes:
                    self._format(java, jars, node, state.cluster_id)
                state.nodes = [self._start_node(java, jars, node) for node in state.nodes]
                state.started_at_ns = time.time_ns()
                self._save_state(state)
                self.wait_ready(state, timeout_s)
                return state
            except NodeExitedError as exc:
                kept = self._keep_logs(state, attempt)
                self.down()
                if attempt == start_attempts:
                    raise NodeExitedError(f"{exc}\n(logs kept in {kept})") from exc
                log.warning(
                    "Kafka start attempt %d of %d failed, starting a fresh cluster: %s "
                    "(logs kept in %s)",
                    attempt,
                    start_attempts,
                    str(exc).splitlines()[0],
                    kept,
                )
            except BaseException:
                self.down()
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _keep_logs(self, state: ClusterState, attempt: int) -> Path:
        """Copy each node's logs of a failed start out of the cluster folder `down` removes."""
        target = self.state_dir / FAILED_STARTS_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}-{attempt}"
        for node in state.nodes:
            node_dir = Path(node.config_file).parent
            dest = target / node_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            for log_file in (*node_dir.glob("*.log"), *node_dir.glob("hs_err*")):
                shutil.copy2(log_file, dest / log_file.name)
        return target

    def _plan(self, brokers: int, extra_config: dict[str, str] | None = None) -> ClusterState:
        cluster_dir = self.state_dir / "kafka"
        if cluster_dir.exists():
            shutil.rmtree(cluster_dir)
        ports = free_ports(2 * brokers)
        nodes = []
        for index in range(brokers):
            node_id = index + 1
            node_dir = cluster_dir / f"node-{node_id}"
            (node_dir / "data").mkdir(parents=True)
            nodes.append(
                BrokerNode(
                    node_id=node_id,
                    port=ports[2 * index],
                    controller_port=ports[2 * index + 1],
                    config_file=str(node_dir / "server.properties"),
                    log_dir=str(node_dir / "data"),
                    stdout_file=str(node_dir / "stdout.log"),
                )
            )
        voters = ",".join(f"{n.node_id}@{LOOPBACK}:{n.controller_port}" for n in nodes)
        for node in nodes:
            props = broker_properties(
                node, voters, brokers, {**self.profile.properties, **(extra_config or {})}
            )
            text = "".join(f"{key}={value}\n" for key, value in props.items())
            Path(node.config_file).write_text(text)
            log4j = Path(node.config_file).with_name("log4j2.properties")
            log4j.write_text(_log4j_config(Path(node.config_file).with_name("server.log")))
        cluster_id = _kafka_cluster_id()
        return ClusterState(KAFKA_VERSION, cluster_id, str(self.state_dir), nodes)

    def _java_cmd(self, java: Path, jars: Path, node: BrokerNode, main: str) -> list[str]:
        log4j = Path(node.config_file).with_name("log4j2.properties")
        return [
            str(java),
            f"-Xms{min(256, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            *self.profile.jvm_options,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={Path(node.config_file).parent}",
            "-cp",
            f"{jars}/*",
            main,
        ]

    def _format(self, java: Path, jars: Path, node: BrokerNode, cluster_id: str) -> None:
        cmd = self._java_cmd(java, jars, node, STORAGE_TOOL_CLASS)
        cmd[cmd.index("-Xmx" + str(self.heap_mb) + "m")] = "-Xmx256m"
        cmd += ["format", "-t", cluster_id, "-c", node.config_file, "--ignore-formatted"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise InfraError(
                f"formatting Kafka storage for node {node.node_id} failed:\n"
                f"{(proc.stdout + proc.stderr).strip()[-2000:]}"
            )

    def _start_node(self, java: Path, jars: Path, node: BrokerNode) -> BrokerNode:
        cmd = [*self._java_cmd(java, jars, node, BROKER_MAIN_CLASS), node.config_file]
        with open(node.stdout_file, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=Path(node.config_file).parent,
            )
        self._children[proc.pid] = proc
        return BrokerNode(**{**asdict(node), "pid": proc.pid})

    def _alive(self, node: BrokerNode) -> bool:
        """Is the node's JVM running? Our own children are polled, so their status is kept."""
        proc = self._children.get(node.pid)
        if proc is not None:
            return proc.poll() is None
        return _is_our_process(node)

    def _exit_status(self, node: BrokerNode) -> str:
        """How a node's JVM ended, when this object started it ("" otherwise)."""
        proc = self._children.get(node.pid)
        if proc is None:
            return ""
        code = proc.poll()
        if code is None:
            return ""
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def wait_ready(self, state: ClusterState, timeout_s: float, expect: int | None = None) -> None:
        """Block until a metadata request lists `expect` brokers (default: all nodes)."""
        wanted = state.broker_count if expect is None else expect
        deadline = self._clock() + timeout_s
        last_error = "no answer yet"
        while self._clock() < deadline:
            for node in state.nodes:
                if node.pid and not self._alive(node):
                    status = self._exit_status(node)
                    raise NodeExitedError(
                        f"Kafka node {node.node_id} (pid {node.pid}) exited during start-up"
                        f"{f' ({status})' if status else ''}; last log lines:\n"
                        f"{_tail(Path(node.config_file).with_name('server.log'))}"
                        f"\n{_tail(Path(node.stdout_file))}"
                    )
            seen, last_error = metadata_broker_count(state.bootstrap, timeout_s=2.0)
            if seen >= wanted:
                return
            time.sleep(0.5)
        raise InfraError(
            f"Kafka at {state.bootstrap} did not report {wanted} broker(s) within {timeout_s:.0f}s "
            f"({last_error})"
        )

    # -- status -----------------------------------------------------------------------------

    def status(self, state: ClusterState | None = None) -> ClusterStatus:
        """Which recorded processes are alive and how many brokers metadata shows."""
        state = state or self.load_state()
        if state is None:
            return ClusterStatus(False, "", [], 0, "no local Kafka was started (no state file)")
        nodes = [NodeStatus(n.node_id, n.pid, _is_our_process(n), n.address) for n in state.nodes]
        if not any(n.alive for n in nodes):
            return ClusterStatus(False, state.bootstrap, nodes, 0, "no broker process is alive")
        seen, error = metadata_broker_count(state.bootstrap, timeout_s=5.0)
        return ClusterStatus(seen > 0, state.bootstrap, nodes, seen, error)

    # -- node control (fault tests) ---------------------------------------------------------

    def kill_node(self, node_id: int, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to one node (SIGKILL by default) and wait for it to exit."""
        state = self._require_state()
        node = _node(state, node_id)
        if _is_our_process(node):
            os.kill(node.pid, sig)
            _wait_gone([node.pid], timeout_s=60.0)

    def restart_node(self, node_id: int, timeout_s: float = 120.0) -> None:
        """Start a stopped node again on its old ports and data, and wait for it to rejoin."""
        state = self._require_state()
        node = _node(state, node_id)
        if _is_our_process(node):
            raise InfraError(f"Kafka node {node_id} is still running (pid {node.pid})")
        restarted = self._start_node(find_java(), kafka_jars(self.jars_dir), node)
        state.nodes = [restarted if n.node_id == node_id else n for n in state.nodes]
        self._save_state(state)
        self.wait_ready(state, timeout_s)

    def _require_state(self) -> ClusterState:
        state = self.load_state()
        if state is None:
            raise InfraError(
                f"no local Kafka is recorded in {self.state_file}; run `harness infra up`"
            )
        return state

    # -- down -------------------------------------------------------------------------------

    def down(self, timeout_s: float = 10.0, keep_data: bool = False) -> list[int]:
        """Stop the recorded broker PIDs (TERM, then KILL after `timeout_s`); idempotent.

        A whole KRaft cluster stopping at once loses its controller quorum, so brokers can
        wait for a controlled shutdown that never completes; after `timeout_s` they are killed.
        """
        state = self.load_state()
        if state is None:
            return []
        live = [n for n in state.nodes if _is_our_process(n)]
        for node in live:
            _signal_quietly(node.pid, signal.SIGTERM)
        survivors = _wait_gone([n.pid for n in live], timeout_s)
        for pid in survivors:
            _signal_quietly(pid, signal.SIGKILL)
        _wait_gone(survivors, timeout_s=10.0)
        if not keep_data:
            shutil.rmtree(self.state_dir / "kafka", ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
        return [n.pid for n in live]


def metadata_broker_count(bootstrap: str, timeout_s: float) -> tuple[int, str]:
    """Brokers listed by a metadata request to `bootstrap`, and the error text if none."""
    admin = admin_client(bootstrap, {"socket.connection.setup.timeout.ms": 2000})
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except Exception as exc:  # KafkaException: no broker answered in time
        return 0, str(exc)
    return len(metadata.brokers), ""


def _kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).

    Ids starting with '-' are drawn again: the storage tool would read one as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _node(state: ClusterState, node_id: int) -> BrokerNode:
    for node in state.nodes:
        if node.node_id == node_id:
            return node
    raise InfraError(f"no Kafka node {node_id}; nodes are {[n.node_id for n in state.nodes]}")


def _is_our_process(node: BrokerNode) -> bool:
    """True if `node.pid` is alive and is the broker started with `node.config_file`."""
    if node.pid <= 0:
        return False
    try:
        proc = psutil.Process(node.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            proc.wait(timeout=0)
            return False
        return node.config_file in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.TimeoutExpired):
        return False


def _signal_quietly(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait for `pids` to exit (reaping our own children); return those still alive."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    return [p.pid for p in alive]


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return f"({path} not written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
