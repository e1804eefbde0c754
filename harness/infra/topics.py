"""Provisioning of the feed topics per the readiness targets.

One partition per symbol (495), retention 7 days, replication min(3, brokers) and
min.insync.replicas 2 when the replication factor is 3, and `message.timestamp.type=
LogAppendTime`: a record's timestamp is then the broker's append time (whole milliseconds),
where the SUT's lag ends (contract 3), so the harness's own consumer stays out of it. Existing
topics are checked, not silently accepted: a topic with the wrong partition count is an error.
`timestamp_types()` reads what a cluster's topics stamp (a user's own topics may be CreateTime).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

from contracts.topics import FEED_TOPICS
from harness.defaults import (
    MAX_REPLICATION,
    MIN_INSYNC_REPLICAS_AT_RF3,
    SYMBOL_COUNT,
    TOPIC_RETENTION_MS,
)
from harness.infra.errors import InfraError
from harness.infra.kafka_clients import admin_client, producer

log = logging.getLogger(__name__)
TIMESTAMP_TYPE = "message.timestamp.type"
LOG_APPEND_TIME = "LogAppendTime"
CREATE_TIME = "CreateTime"


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partition count, replication factor and topic configs."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str]


@dataclass(frozen=True)
class TopicResult:
    name: str
    created: bool
    partitions: int
    replication: int


def feed_topic_specs(
    broker_count: int, partitions: int = SYMBOL_COUNT, names: tuple[str, ...] = FEED_TOPICS
) -> list[TopicSpec]:
    """The feed topics for a cluster of `broker_count` brokers."""
    if broker_count < 1:
        raise ValueError("broker_count must be at least 1")
    replication = min(MAX_REPLICATION, broker_count)
    min_isr = MIN_INSYNC_REPLICAS_AT_RF3 if replication >= MAX_REPLICATION else 1
    config = {
        "retention.ms": str(TOPIC_RETENTION_MS),
        "min.insync.replicas": str(min_isr),
        "cleanup.policy": "delete",
        TIMESTAMP_TYPE: LOG_APPEND_TIME,
    }
    return [TopicSpec(name, partitions, replication, dict(config)) for name in names]


def ensure_topics(
    bootstrap: str,
    specs: list[TopicSpec],
    timeout_s: float = 120.0,
    *,
    exact_partitions: bool = True,
) -> list[TopicResult]:
    """Create missing topics (returning once every partition of theirs is served) and verify
    existing ones; raise InfraError on a mismatch (`exact_partitions=False`: an existing
    topic may have any partition count, e.g. a user's own topic read whole)."""
    admin = admin_client(bootstrap)
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise InfraError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    brokers = len(admin.list_topics(timeout=timeout_s).brokers)
    to_create = [s for s in specs if s.name not in existing]
    for spec in to_create:
        if spec.replication > brokers:
            raise InfraError(
                f"topic {spec.name} needs replication {spec.replication} but {bootstrap} has "
                f"{brokers} broker(s)"
            )
    if to_create:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication,
                    config=s.config,
                )
                for s in to_create
            ],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                raise InfraError(f"creating topic {name} on {bootstrap} failed: {exc}") from exc
    metadata = _wait_visible(admin, specs, timeout_s)
    if to_create:
        wanted = {
            TopicPartition(s.name, p): OffsetSpec.latest()  # type: ignore[no-untyped-call]
            for s in to_create
            for p in metadata[s.name].partitions
        }
        try:
            offsets_when_served(admin, wanted, time.monotonic() + timeout_s)
        except KafkaException as exc:
            raise InfraError(f"new topics on {bootstrap} not served: {exc}") from exc
    results = []
    for spec in specs:
        topic = metadata[spec.name]
        partitions = len(topic.partitions)
        replication = len(next(iter(topic.partitions.values())).replicas) if partitions else 0
        if partitions != spec.partitions and (exact_partitions or spec in to_create):
            raise InfraError(
                f"topic {spec.name} on {bootstrap} has {partitions} partitions, expected "
                f"{spec.partitions} (one per symbol); delete it or use another name"
            )
        results.append(TopicResult(spec.name, spec in to_create, partitions, replication))
    return results


def _wait_visible(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> dict[str, Any]:
    """Topic metadata once every spec'd topic is listed with a leader on each partition."""
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        ready = all(
            s.name in topics
            and len(topics[s.name].partitions) >= 1
            and all(p.leader >= 0 for p in topics[s.name].partitions.values())
            and (len(topics[s.name].partitions) == s.partitions or time.monotonic() > deadline)
            for s in specs
        )
        if ready:
            return dict(topics)
        if time.monotonic() > deadline:
            missing = [s.name for s in specs if s.name not in topics]
            raise InfraError(f"topics not ready within {timeout_s:.0f}s (missing: {missing})")
        time.sleep(0.25)


def offsets_when_served(
    admin: AdminClient, wanted: Mapping[TopicPartition, Any], deadline: float
) -> dict[TopicPartition, int]:
    """ListOffsets of `wanted` (partition -> OffsetSpec), retried until every partition
    answers or `deadline` (time.monotonic) passes (KafkaException then).

    A freshly created topic is listed with a leader on every partition a moment before that
    leader serves them: until then requests get "not leader". `ensure_topics` waits here so
    that no client starts producing inside that moment. (Idempotent producers retry through
    it; but twice a test read back 2 records fewer than a core started right after creating
    its topics saw delivered, and the cause is not known.)"""
    offsets: dict[TopicPartition, int] = {}
    while True:
        todo = {tp: spec for tp, spec in wanted.items() if tp not in offsets}
        failed: list[str] = []
        try:
            futures = admin.list_offsets(
                todo, request_timeout=max(1.0, deadline - time.monotonic())
            )
            for tp, future in futures.items():
                try:
                    offsets[tp] = future.result().offset
                except KafkaException as exc:
                    failed.append(f"{tp.topic}[{tp.partition}]: {exc}")
        except KafkaException as exc:
            failed.append(str(exc))
        if not failed:
            return offsets
        if time.monotonic() > deadline:
            raise KafkaException(f"ListOffsets failed for {len(failed)} partition(s): {failed[0]}")
        log.info("retrying ListOffsets for %d partition(s): %s", len(failed), failed[0])
        time.sleep(0.25)


def timestamp_types(bootstrap: str, topics: list[str], timeout_s: float = 30.0) -> dict[str, str]:
    """topic -> its `message.timestamp.type` (LogAppendTime or CreateTime), by DescribeConfigs;
    InfraError when the cluster does not answer."""
    admin = admin_client(bootstrap)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in topics]
    found: dict[str, str] = {}
    try:
        futures = admin.describe_configs(resources, request_timeout=timeout_s)
        for resource, future in futures.items():
            entry = future.result(timeout=timeout_s).get(TIMESTAMP_TYPE)
            found[resource.name] = CREATE_TIME if entry is None else str(entry.value)
    except KafkaException as exc:
        raise InfraError(f"cannot read the topic configs on {bootstrap}: {exc}") from exc
    return found


def lag_basis(types: Mapping[str, str]) -> dict[str, Any]:
    """Where the SUT's lag ends, given each topic's timestamp type (contract 3), with the note
    the run prints and keeps in summary.json."""
    created = sorted(t for t, kind in types.items() if kind != LOG_APPEND_TIME)
    if not created:
        ends_at = "broker_append_time"
        note = (
            "lag ends at the broker's append time (LogAppendTime topics; whole milliseconds, "
            "so figures may read up to 1 ms low); the harness's consumer is measured apart "
            "(delivery)"
        )
    else:
        ends_at = "harness_consumer" if len(created) == len(types) else "mixed"
        note = (
            f"topics {', '.join(created)} stamp CreateTime: their records' total lag is "
            "measured at the harness's consumer (its fetch and batching are inside the SUT's "
            "figures)"
        )
    return {
        "ends_at": ends_at,
        "topics": dict(types),
        "broker_timestamps": "whole milliseconds",
        "note": note,
    }


def set_log_append_time(bootstrap: str, topics: list[str], timeout_s: float = 30.0) -> None:
    """Make `topics` stamp the broker's append time (IncrementalAlterConfigs); for topics the
    harness owns (local and compose modes), never a user's."""
    admin = admin_client(bootstrap)
    resources = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(
                    TIMESTAMP_TYPE,
                    LOG_APPEND_TIME,
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        for name in topics
    ]
    try:
        for future in admin.incremental_alter_configs(
            resources, request_timeout=timeout_s
        ).values():
            future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise InfraError(f"cannot set {TIMESTAMP_TYPE} on {bootstrap}: {exc}") from exc


PROBE_TOPIC = "harness.probe"


def topic_partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Partitions of each of `topics` that exists (the run's partition layout)."""
    metadata = admin_client(bootstrap).list_topics(timeout=30).topics
    return {t: len(metadata[t].partitions) for t in topics if t in metadata}


def wait_until_producible(bootstrap: str, brokers: int, timeout_s: float = 120.0) -> float:
    """Produce one record with an idempotent acks=all producer to PROBE_TOPIC (created if
    missing) until it is delivered; returns the seconds it took.

    A fresh broker answers metadata requests long before it can serve idempotent producers
    ("coordinator load in progress" while __transaction_state loads): a SUT starting then
    holds its first records for up to seconds, which would land in the first stage's lag.
    """
    started = time.monotonic()
    ensure_topics(bootstrap, [TopicSpec(PROBE_TOPIC, 1, min(MAX_REPLICATION, brokers), {})])
    probe = producer(
        bootstrap, {"enable.idempotence": True, "acks": "all", "message.timeout.ms": 10_000}
    )
    errors: list[str] = []
    outcome: list[str | None] = []

    def delivered(err: Any, _msg: Any) -> None:
        outcome.append(None if err is None else str(err))

    while time.monotonic() - started < timeout_s:
        outcome.clear()
        probe.produce(PROBE_TOPIC, b"probe", on_delivery=delivered)
        probe.flush(15)
        if outcome and outcome[0] is None:
            return time.monotonic() - started
        errors.append(str(outcome[0]) if outcome else "no delivery report")
        time.sleep(0.5)
    raise InfraError(
        f"Kafka at {bootstrap} did not accept an idempotent acks=all record within "
        f"{timeout_s:.0f} s: {errors[-1] if errors else 'no attempt'}"
    )
