"""Checks of the compose stack (compose/docker-compose.yml and compose/Dockerfile).

No Docker engine is needed: the compose file is parsed with PyYAML and its services, ports and
settings are compared with harness.defaults, so the stack and the harness cannot drift apart.
When the `docker compose` plugin is installed, the file is also validated offline with
`docker compose config -q`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.endpoints import FEED_PORTS
from harness.defaults import (
    CLICKHOUSE_DATABASE,
    CLICKHOUSE_HTTP_PORT,
    COMPOSE_KAFKA_PORTS,
    MAX_REPLICATION,
    MIN_INSYNC_REPLICAS_AT_RF3,
    REDIS_APPENDFSYNC,
    REDIS_PORT,
    TOPIC_RETENTION_MS,
)

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"

KAFKA_SERVICES = ("kafka-1", "kafka-2", "kafka-3")
INFRA_SERVICES = (*KAFKA_SERVICES, "clickhouse", "redis")
PROJECT_SERVICES = ("feed-sim", "ingest")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The (host ip, host port, container port) of each short-syntax port mapping."""
    mappings = []
    for entry in service.get("ports", []):
        assert isinstance(entry, str), f"use the short 'ip:host:container' syntax: {entry!r}"
        parts = entry.split("/", 1)[0].split(":")
        assert len(parts) == 3, f"port mapping without a host ip: {entry!r}"
        host_ip, host_port, container_port = parts
        mappings.append((host_ip, int(host_port), int(container_port)))
    return mappings


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` -> {NAME: (host, port)}."""
    parsed = {}
    for item in value.split(","):
        name, address = item.split("://", 1)
        host, port = address.rsplit(":", 1)
        parsed[name] = (host, int(port))
    return parsed


def command_words(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(word) for word in command]


def test_compose_file_uses_the_compose_spec_without_a_version_key(
    compose: dict[str, Any],
) -> None:
    assert "version" not in compose


def test_all_services_of_the_stack_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(INFRA_SERVICES + PROJECT_SERVICES) <= set(services)


def test_kafka_brokers_run_kraft_combined_mode_in_one_cluster(
    services: dict[str, dict[str, Any]],
) -> None:
    envs = [env_of(services[name]) for name in KAFKA_SERVICES]
    for env in envs:
        assert env["KAFKA_PROCESS_ROLES"].split(",") == ["broker", "controller"]
    cluster_ids = {env["CLUSTER_ID"] for env in envs}
    assert len(cluster_ids) == 1
    (cluster_id,) = cluster_ids
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert sorted(int(env["KAFKA_NODE_ID"]) for env in envs) == [1, 2, 3]


def test_quorum_voters_name_every_broker_by_its_node_id(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {f"{env_of(services[name])['KAFKA_NODE_ID']}@{name}" for name in KAFKA_SERVICES}
    for name in KAFKA_SERVICES:
        env = env_of(services[name])
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert {voter.rsplit(":", 1)[0] for voter in voters} == expected
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
        controller_port = listeners(env["KAFKA_LISTENERS"])[controller][1]
        assert {int(voter.rsplit(":", 1)[1]) for voter in voters} == {controller_port}


def test_kafka_host_ports_match_the_harness_defaults_in_order(
    services: dict[str, dict[str, Any]],
) -> None:
    host_ports = []
    for name in KAFKA_SERVICES:
        (mapping,) = published(services[name])
        host_ports.append(mapping[1])
    assert tuple(host_ports) == COMPOSE_KAFKA_PORTS


def test_each_broker_advertises_its_external_listener_on_its_host_port(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in KAFKA_SERVICES:
        env = env_of(services[name])
        ((_, host_port, container_port),) = published(services[name])
        bound = listeners(env["KAFKA_LISTENERS"])
        advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        assert bound["EXTERNAL"][1] == container_port
        assert advertised["EXTERNAL"] == ("localhost", host_port)
        internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
        assert advertised[internal] == (name, bound[internal][1])
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
        protocols = dict(
            item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
        )
        assert set(bound) == set(protocols)


def test_kafka_replication_retention_and_topic_creation_match_the_defaults(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in KAFKA_SERVICES:
        env = env_of(services[name])
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == MAX_REPLICATION
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == MAX_REPLICATION
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == MAX_REPLICATION
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == MIN_INSYNC_REPLICAS_AT_RF3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == MIN_INSYNC_REPLICAS_AT_RF3
        assert int(env["KAFKA_LOG_RETENTION_MS"]) == TOPIC_RETENTION_MS
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_brokers_keep_their_logs_on_named_volumes_with_healthchecks(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    volume_names = set()
    for name in KAFKA_SERVICES:
        service = services[name]
        log_dir = env_of(service)["KAFKA_LOG_DIRS"]
        (volume,) = service["volumes"]
        source, target = volume.split(":")[:2]
        assert target == log_dir
        assert source in compose["volumes"]
        volume_names.add(source)
        assert "kafka-broker-api-versions.sh" in str(service["healthcheck"]["test"])
    assert len(volume_names) == len(KAFKA_SERVICES)


def test_clickhouse_publishes_its_http_port_and_creates_the_harness_database(
    services: dict[str, dict[str, Any]],
) -> None:
    clickhouse = services["clickhouse"]
    assert (CLICKHOUSE_HTTP_PORT, CLICKHOUSE_HTTP_PORT) in {
        (host, container) for _, host, container in published(clickhouse)
    }
    assert env_of(clickhouse)["CLICKHOUSE_DB"] == CLICKHOUSE_DATABASE
    assert clickhouse["ulimits"]["nofile"] == {"soft": 262144, "hard": 262144}
    assert "healthcheck" in clickhouse
    assert clickhouse["volumes"]


def test_redis_runs_with_aof_and_the_harness_fsync_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    redis = services["redis"]
    words = command_words(redis)
    assert words[0] == "redis-server"
    assert words[words.index("--appendonly") + 1] == "yes"
    assert words[words.index("--appendfsync") + 1] == REDIS_APPENDFSYNC
    assert (REDIS_PORT, REDIS_PORT) in {
        (host, container) for _, host, container in published(redis)
    }
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert redis["volumes"]


def test_feed_sim_publishes_every_iqfeed_port_on_loopback_and_binds_all_interfaces(
    services: dict[str, dict[str, Any]],
) -> None:
    feed_sim = services["feed-sim"]
    mappings = {(ip, host, container) for ip, host, container in published(feed_sim)}
    for port in FEED_PORTS.values():
        assert ("127.0.0.1", port, port) in mappings
    words = command_words(feed_sim)
    assert words[:2] == ["feed-sim", "serve"]
    assert words[words.index("--host") + 1] == "0.0.0.0"


def test_ingest_waits_for_healthy_kafka_and_clickhouse_and_uses_the_internal_listeners(
    services: dict[str, dict[str, Any]],
) -> None:
    ingest = services["ingest"]
    depends_on = ingest["depends_on"]
    for name in (*KAFKA_SERVICES, "clickhouse"):
        assert depends_on[name]["condition"] == "service_healthy"
    assert "feed-sim" in depends_on
    words = command_words(ingest)
    assert words[:2] == ["ingest", "run"]
    bootstrap = words[words.index("--bootstrap") + 1].split(",")
    expected = []
    for name in KAFKA_SERVICES:
        env = env_of(services[name])
        internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
        host, port = listeners(env["KAFKA_ADVERTISED_LISTENERS"])[internal]
        expected.append(f"{host}:{port}")
    assert bootstrap == expected
    clickhouse_url = words[words.index("--clickhouse-url") + 1]
    assert clickhouse_url == f"http://clickhouse:{CLICKHOUSE_HTTP_PORT}"
    redis_url = words[words.index("--redis-url") + 1]
    assert redis_url.startswith(f"redis://redis:{REDIS_PORT}/")


def test_project_services_start_only_in_the_pipeline_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in INFRA_SERVICES:
        assert "profiles" not in services[name]
    for name in PROJECT_SERVICES:
        assert services[name]["profiles"] == ["pipeline"]
        assert services[name]["build"]["dockerfile"] == "compose/Dockerfile"
        assert (COMPOSE_DIR / services[name]["build"]["context"] / "pyproject.toml").is_file()


def test_every_image_has_an_explicit_tag_other_than_latest(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name} has neither image nor build"
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} floats on latest"


def test_every_published_port_binds_loopback_only(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), f"{name} publishes {entry!r} widely"


def test_published_host_ports_do_not_collide(services: dict[str, dict[str, Any]]) -> None:
    host_ports = [host for service in services.values() for _, host, _ in published(service)]
    assert len(host_ports) == len(set(host_ports))


def test_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    instructions = []
    for line in DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install ." in runs
    copied = " ".join(rest for keyword, rest in instructions if keyword == "COPY")
    for needed in (
        "pyproject.toml",
        "contracts/",
        "harness/",
        "feed_sim/",
        "ingest/",
        "config/",
        "scenarios/",
    ):
        assert needed in copied
    assert ("WORKDIR", "/app") in instructions
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert not any(keyword == "ENTRYPOINT" for keyword, _ in instructions)


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return probe.returncode == 0


def test_docker_compose_validates_the_file_offline() -> None:
    if not _docker_compose_available():
        pytest.skip("the docker compose plugin is not installed (`docker compose version` fails)")
    result = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(COMPOSE_FILE),
            "--profile",
            "pipeline",
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
