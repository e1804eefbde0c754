"""Shared fixtures: real local Kafka clusters, started per module and stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.infra.errors import InfraError
from harness.infra.kafka_local import ClusterState, LocalKafka, fetch_kafka_jars, kafka_jars


@pytest.fixture(scope="session")
def kafka_jars_dir() -> Path:
    """The broker jars; fetched with Maven if the cache is empty (`make test` fetches first)."""
    try:
        return kafka_jars()
    except InfraError:
        return fetch_kafka_jars()


def stop_and_check(kafka: LocalKafka, state: ClusterState) -> None:
    """Stop the cluster and fail if any of its PIDs survived."""
    kafka.down()
    survivors = [
        n.pid
        for n in state.nodes
        if psutil.pid_exists(n.pid) and psutil.Process(n.pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert survivors == [], f"broker processes left behind: {survivors}"


@pytest.fixture(scope="module")
def kafka_single(
    tmp_path_factory: pytest.TempPathFactory, kafka_jars_dir: Path
) -> Iterator[tuple[LocalKafka, ClusterState]]:
    """A real 1-broker KRaft cluster for the module; always stopped, even when a test fails."""
    state_dir = tmp_path_factory.mktemp("kafka1")
    kafka = LocalKafka(state_dir=state_dir, jars_dir=kafka_jars_dir, heap_mb=384)
    try:
        state = kafka.up(brokers=1, timeout_s=180)
        yield kafka, state
    finally:
        kafka.down()


@pytest.fixture(scope="module")
def kafka_triple(
    tmp_path_factory: pytest.TempPathFactory, kafka_jars_dir: Path
) -> Iterator[tuple[LocalKafka, ClusterState]]:
    """A real 3-broker KRaft cluster for the module; always stopped, even when a test fails."""
    state_dir = tmp_path_factory.mktemp("kafka3")
    kafka = LocalKafka(state_dir=state_dir, jars_dir=kafka_jars_dir, heap_mb=384)
    try:
        state = kafka.up(brokers=3, timeout_s=240)
        yield kafka, state
    finally:
        kafka.down()
