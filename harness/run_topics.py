"""The SUT's topics for a run, and where its lag ends (contract 3).

`provision_topics` creates them where the harness may (local and compose modes, or
`infra.create_topics`) with LogAppendTime, so the SUT's lag ends at the broker's append; in
external mode without `create_topics` it requires them to exist. Then it reads what each topic
stamps, records it in summary.json (`run.lag_basis`, `run.topic_partitions`) and says where
the lag ends.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from harness.infra.errors import InfraError
from harness.infra.kafka_clients import admin_client
from harness.infra.topics import (
    LOG_APPEND_TIME,
    ensure_topics,
    feed_topic_specs,
    lag_basis,
    set_log_append_time,
    timestamp_types,
    topic_partition_counts,
)
from harness.results.summary import SummaryWriter
from harness.scenario import ReferenceSut, Scenario


def provision_topics(
    scenario: Scenario,
    universe_size: int,
    bootstrap: str,
    brokers: int,
    summary: SummaryWriter,
    console: Console,
) -> dict[str, Any]:
    """Create or check the SUT's topics; the lag basis (harness.infra.topics.lag_basis)."""
    infra, mapping = scenario.infra, scenario.sut.record_mapping
    topics = list(mapping.topics)
    managed = infra.mode != "external"
    if managed or infra.create_topics:
        partitions = mapping.topic_partitions or universe_size
        exact = isinstance(scenario.sut, ReferenceSut) or mapping.partitions == "universe"
        with console.status(f"creating topics {', '.join(topics)}..."):
            ensure_topics(
                bootstrap,
                feed_topic_specs(brokers, partitions, names=tuple(topics)),
                exact_partitions=exact,
            )
    else:
        require_topics(bootstrap, topics)
    types = timestamp_types(bootstrap, topics)
    stale = [t for t, kind in types.items() if kind != LOG_APPEND_TIME]
    if managed and stale:  # the harness's own topics, made before this contract
        set_log_append_time(bootstrap, stale)
        summary.add_event("topics_set_to_log_append_time", topics=stale)
        types = timestamp_types(bootstrap, topics)
    basis = lag_basis(types)
    summary.set_run_field("lag_basis", basis)
    summary.set_run_field("topic_partitions", topic_partition_counts(bootstrap, topics))
    console.print(basis["note"])
    return basis


def require_topics(bootstrap: str, topics: list[str]) -> None:
    """InfraError naming the SUT's topics that do not exist (infra.create_topics false)."""
    try:
        existing = admin_client(bootstrap).list_topics(timeout=30).topics
    except Exception as exc:  # KafkaException: the cluster did not answer
        raise InfraError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    missing = [t for t in topics if t not in existing]
    if missing:
        raise InfraError(
            f"topics not found on {bootstrap}: {', '.join(missing)} (the SUT's "
            "record_mapping.topics); create them, or set infra.create_topics: true"
        )
