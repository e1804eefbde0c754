"""Local Kafka configuration without starting a broker: properties, topics, state, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import paths
from harness.defaults import KAFKA_VERSION, SYMBOL_COUNT, TOPIC_RETENTION_MS
from harness.infra.broker_profiles import DEFAULT_PROFILE, PROFILES, broker_profile
from harness.infra.errors import InfraError
from harness.infra.java import find_java
from harness.infra.kafka_local import (
    BrokerNode,
    ClusterState,
    LocalKafka,
    broker_properties,
    kafka_jars,
)
from harness.infra.ports import free_ports
from harness.infra.topics import feed_topic_specs


def _node(node_id: int = 1) -> BrokerNode:
    return BrokerNode(
        node_id,
        9000 + node_id,
        9100 + node_id,
        "/x/server.properties",
        "/x/data",
        "/x/stdout.log",
        pid=4242,
    )


@pytest.mark.parametrize(("brokers", "replication", "min_isr"), [(1, "1", "1"), (3, "3", "2")])
def test_broker_properties_follow_broker_count(
    brokers: int, replication: str, min_isr: str
) -> None:
    props = broker_properties(_node(), "1@127.0.0.1:9101", brokers)
    assert props["process.roles"] == "broker,controller"
    assert props["default.replication.factor"] == replication
    assert props["offsets.topic.replication.factor"] == replication
    assert props["min.insync.replicas"] == min_isr
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9001,CONTROLLER://127.0.0.1:9101"
    assert props["auto.create.topics.enable"] == "false"


def test_every_listener_is_on_loopback() -> None:
    props = broker_properties(_node(2), "2@127.0.0.1:9102", 3)
    for key in ("listeners", "advertised.listeners"):
        hosts = re.findall(r"//([^:]+):", props[key])
        assert hosts and set(hosts) == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("brokers", "replication", "min_isr"), [(1, 1, "1"), (2, 2, "1"), (3, 3, "2"), (5, 3, "2")]
)
def test_feed_topics_match_readiness_targets(brokers: int, replication: int, min_isr: str) -> None:
    specs = feed_topic_specs(brokers)
    assert [s.name for s in specs] == ["iqfeed.trades", "iqfeed.quotes", "iqfeed.depth"]
    for spec in specs:
        assert spec.partitions == SYMBOL_COUNT == 495
        assert spec.replication == replication
        assert spec.config["retention.ms"] == str(TOPIC_RETENTION_MS) == str(7 * 86_400_000)
        assert spec.config["min.insync.replicas"] == min_isr


def test_feed_topics_reject_zero_brokers() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        feed_topic_specs(0)


def test_cluster_state_round_trips_through_json() -> None:
    state = ClusterState(KAFKA_VERSION, "abc", "/state", [_node(1), _node(2)], 123)
    again = ClusterState.from_json(state.to_json())
    assert again == state
    assert again.bootstrap == "127.0.0.1:9001,127.0.0.1:9002"


def test_missing_jars_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="harness infra fetch"):
        kafka_jars(tmp_path / "nowhere")


def test_missing_java_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InfraError, match="make deps"):
        find_java()


def test_status_and_down_without_a_cluster(tmp_path: Path) -> None:
    kafka = LocalKafka(state_dir=tmp_path)
    report = kafka.status()
    assert not report.running and "no state file" in report.error
    assert kafka.down() == [] and kafka.down() == []


def test_down_ignores_pids_that_are_not_our_brokers(tmp_path: Path) -> None:
    """A recorded PID reused by another process (here: this test) is never signalled."""
    import os

    node = BrokerNode(1, 1, 2, str(tmp_path / "server.properties"), "d", "o", pid=os.getpid())
    state = ClusterState(KAFKA_VERSION, "abc", str(tmp_path), [node])
    (tmp_path / "kafka.json").write_text(state.to_json())
    assert LocalKafka(state_dir=tmp_path).down() == []
    assert not (tmp_path / "kafka.json").exists()


def test_free_ports_are_distinct() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6 and all(1024 <= p <= 65535 for p in ports)


def test_pom_fetches_the_default_kafka_version() -> None:
    pom = paths.kafka_pom().read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
    assert "<artifactId>kafka_2.13</artifactId>" in pom


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_broker_profile_sets_the_nodes_properties_and_jvm(tmp_path: Path, name: str) -> None:
    profile = PROFILES[name]
    kafka = LocalKafka(state_dir=tmp_path, profile=name)
    state = kafka._plan(1, {"log.segment.bytes": "1048576"})
    text = Path(state.nodes[0].config_file).read_text()
    for key, value in profile.properties.items():
        assert f"{key}={value}\n" in text
    assert "log.segment.bytes=1048576\n" in text  # extra_config wins over the profile
    cmd = kafka._java_cmd(Path("java"), tmp_path, state.nodes[0], "kafka.Kafka")
    assert cmd[3 : 3 + len(profile.jvm_options)] == list(profile.jvm_options)


def test_the_default_and_unknown_broker_profiles(tmp_path: Path) -> None:
    assert LocalKafka(state_dir=tmp_path).profile is broker_profile(DEFAULT_PROFILE)
    with pytest.raises(ValueError, match="known: harness-2024, kafka-defaults, small-host"):
        broker_profile("fast")
