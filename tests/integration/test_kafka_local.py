"""Real Apache Kafka (KRaft) started by the project: 1 and 3 brokers, 495 partitions, acks=all.

Every cluster here is a set of real JVM processes on loopback; each test stops what it started
by PID and checks that nothing is left behind.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka.admin import ConfigResource

from harness.defaults import SYMBOL_COUNT, TOPIC_RETENTION_MS
from harness.infra.kafka_clients import admin_client, consumer, producer
from harness.infra.kafka_local import ClusterState, LocalKafka, NodeExitedError
from harness.infra.topics import TopicSpec, ensure_topics, feed_topic_specs
from tests.conftest import stop_and_check

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _harness(state_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[str, int, str]],
    config: dict[str, Any] | None = None,
) -> list[KafkaError | None]:
    """Produce (key, partition, value) records and return each delivery's error (None = ok)."""
    errors: list[KafkaError | None] = []
    prod = producer(bootstrap, {"acks": "all", "enable.idempotence": True, **(config or {})})

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        errors.append(err)

    for key, partition, value in records:
        prod.produce(topic, key=key, value=value, partition=partition, on_delivery=on_delivery)
        prod.poll(0)
    remaining = prod.flush(120)
    assert remaining == 0, f"{remaining} records still in flight after 120 s"
    return errors


def _consume_partitions(
    bootstrap: str, topic: str, partitions: list[int], expected: int, timeout_s: float = 60
) -> list[tuple[str, int, str]]:
    """Read `expected` records from the start of `partitions`."""
    cons = consumer(
        bootstrap,
        f"test-{time.time_ns()}",
        {"auto.offset.reset": "earliest", "enable.auto.commit": False},
    )
    cons.assign([TopicPartition(topic, p, 0) for p in partitions])
    got: list[tuple[str, int, str]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expected and time.monotonic() < deadline:
            msg = cons.poll(0.5)
            if msg is None or msg.error():
                continue
            key, value = msg.key(), msg.value()
            assert key is not None and value is not None
            got.append((key.decode(), int(msg.partition() or 0), value.decode()))
    finally:
        cons.close()
    return got


def test_cli_single_broker_lifecycle_495_partitions(tmp_path: Path) -> None:
    """`harness infra up/status/topics/down` run a real broker; records round-trip per partition."""
    state_dir = tmp_path / "state"
    up = _harness(state_dir, "infra", "up", "--brokers", "1", "--heap-mb", "384")
    try:
        assert up.returncode == 0, up.stderr
        bootstrap = up.stdout.strip().splitlines()[-1]
        assert bootstrap.startswith("127.0.0.1:")
        state = ClusterState.from_json((state_dir / "kafka.json").read_text())
        assert state.bootstrap == bootstrap and state.broker_count == 1

        status = _harness(state_dir, "infra", "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] is True and report["brokers_in_metadata"] == 1

        topics = _harness(state_dir, "infra", "topics")
        assert topics.returncode == 0, topics.stderr
        assert "created iqfeed.trades: 495 partitions, replication 1" in topics.stdout
        again = _harness(state_dir, "infra", "topics")
        assert "exists  iqfeed.trades: 495 partitions" in again.stdout

        metadata = admin_client(bootstrap).list_topics(timeout=10)
        for name in ("iqfeed.trades", "iqfeed.quotes", "iqfeed.depth"):
            assert len(metadata.topics[name].partitions) == SYMBOL_COUNT

        records = [(f"SYM{p}", p, f"value-{p}") for p in (0, 1, 247, 493, 494)]
        assert _produce(bootstrap, "iqfeed.trades", records) == [None] * len(records)
        got = _consume_partitions(bootstrap, "iqfeed.trades", [r[1] for r in records], len(records))
        assert sorted(got) == sorted(records)
    finally:
        down = _harness(state_dir, "infra", "down")
    assert down.returncode == 0, down.stderr
    assert not (state_dir / "kafka.json").exists()
    assert all(
        not psutil.pid_exists(n.pid) or psutil.Process(n.pid).status() == "zombie"
        for n in state.nodes
    ), "broker left running after `harness infra down`"
    second = _harness(state_dir, "infra", "down")
    assert second.returncode == 0 and "no local Kafka was running" in second.stderr
    after = _harness(state_dir, "infra", "status")
    assert after.returncode == 4


def _kill_first_started_broker(kafka: LocalKafka, killed: list[int]) -> None:
    """SIGKILL the first broker `up` starts, once, as soon as it has logged its config."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not killed:
        state = kafka.load_state()
        node = state.nodes[0] if state and state.nodes[0].pid else None
        server_log = Path(node.config_file).with_name("server.log") if node else None
        if (
            node
            and server_log
            and server_log.exists()
            and "KafkaConfig values" in server_log.read_text()
        ):
            os.kill(node.pid, signal.SIGKILL)
            killed.append(node.pid)
        time.sleep(0.01)


def test_a_broker_dying_during_start_up_is_named_logged_and_retried_once(
    tmp_path: Path, kafka_jars_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A JVM killed while starting: one fresh retry with its logs kept; no retry left -> error."""
    kafka = LocalKafka(state_dir=tmp_path, jars_dir=kafka_jars_dir, heap_mb=256)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_started_broker, args=(kafka, killed))
    killer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="harness.infra.kafka_local"):
            state = kafka.up(brokers=1, timeout_s=120, start_attempts=2)
        killer.join()
        assert len(killed) == 1 and state.nodes[0].pid != killed[0]
        assert kafka.status().running
        assert "attempt 1 of 2 failed" in caplog.text and "killed by SIGKILL" in caplog.text
        kept = list((tmp_path / "kafka-failed-starts").glob("*-1/node-1/server.log"))
        assert len(kept) == 1 and "KafkaConfig values" in kept[0].read_text()
        stop_and_check(kafka, state)
    finally:
        killer.join()
        kafka.down()

    killed.clear()
    killer = threading.Thread(target=_kill_first_started_broker, args=(kafka, killed))
    killer.start()
    try:
        with pytest.raises(NodeExitedError, match=r"\(killed by SIGKILL\)") as error:
            kafka.up(brokers=1, timeout_s=120, start_attempts=1)
    finally:
        killer.join()
        kafka.down()
    assert "kafka-failed-starts" in str(error.value)
    assert kafka.load_state() is None and not psutil.pid_exists(killed[0])


def test_up_refuses_a_second_cluster_on_the_same_state(
    kafka_single: tuple[LocalKafka, ClusterState],
) -> None:
    kafka, state = kafka_single
    from harness.infra.errors import InfraError

    with pytest.raises(InfraError, match="already running"):
        kafka.up(brokers=1)
    assert kafka.status().running
    assert kafka.load_state() == state


def test_topic_with_wrong_partition_count_is_reported(
    kafka_single: tuple[LocalKafka, ClusterState],
) -> None:
    _, state = kafka_single
    from harness.infra.errors import InfraError

    ensure_topics(state.bootstrap, [TopicSpec("mismatch", 3, 1, {})])
    with pytest.raises(InfraError, match="has 3 partitions, expected 495"):
        ensure_topics(state.bootstrap, [TopicSpec("mismatch", 495, 1, {})])


def test_three_brokers_keep_producing_with_acks_all_after_one_is_killed(
    kafka_triple: tuple[LocalKafka, ClusterState],
) -> None:
    """RF 3 + min.insync.replicas 2: SIGKILL one broker, acks=all produce still succeeds."""
    kafka, state = kafka_triple
    bootstrap = state.bootstrap
    specs = feed_topic_specs(broker_count=3, names=("iqfeed.trades",))
    results = ensure_topics(bootstrap, specs)
    assert results[0].partitions == SYMBOL_COUNT and results[0].replication == 3

    admin = admin_client(bootstrap)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "iqfeed.trades")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["min.insync.replicas"].value == "2"
    assert configs["retention.ms"].value == str(TOPIC_RETENTION_MS)
    partitions = admin.list_topics(timeout=10).topics["iqfeed.trades"].partitions
    assert all(len(p.replicas) == 3 for p in partitions.values())

    before = [(f"S{p}", p, f"before-{i}") for i, p in enumerate(range(0, SYMBOL_COUNT, 5))]
    assert _produce(bootstrap, "iqfeed.trades", before) == [None] * len(before)

    victim = state.nodes[1]
    kafka.kill_node(victim.node_id)
    assert not psutil.pid_exists(victim.pid) or psutil.Process(victim.pid).status() == "zombie"
    alive = kafka.status()
    assert [n.alive for n in alive.nodes] == [True, False, True]

    after = [(f"S{p}", p, f"after-{i}") for i, p in enumerate(range(0, SYMBOL_COUNT, 5))]
    errors = _produce(bootstrap, "iqfeed.trades", after, {"message.timeout.ms": 90_000})
    assert errors == [None] * len(after), [e for e in errors if e is not None][:3]

    survivors = ",".join(n.address for n in state.nodes if n.node_id != victim.node_id)
    got = _consume_partitions(
        survivors,
        "iqfeed.trades",
        sorted({p for _, p, _ in before}),
        len(before) + len(after),
        timeout_s=120,
    )
    assert sorted(got) == sorted(before + after)

    stop_and_check(kafka, state)
    assert kafka.load_state() is None
