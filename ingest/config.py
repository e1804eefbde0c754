"""Configuration of the reference core (`ingest run --config FILE`), validated with pydantic.

A YAML or JSON file with the keys below; command-line options override single keys. Errors
name the file, the key path and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.endpoints import FEED_PORTS
from ingest.kafka_out import DEFAULT_QUEUE_MAX_MESSAGES
from ingest.kafka_settings import REFERENCE_DESIGN, Compression, ProducerDesign


class FeedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    level1_port: int = Field(default=FEED_PORTS["level1"], ge=1, le=65535)
    level2_port: int = Field(default=FEED_PORTS["level2"], ge=1, le=65535)
    connections: int = Field(default=5, ge=1, le=64, description="connections per port")
    level2: bool = True
    client_name: str = "ingest"
    batch_size: int = Field(default=50, ge=1, description="symbols per subscription batch")
    batch_pause_s: float = Field(
        default=1.0, ge=0, description="pause between subscription batches"
    )
    reconnect_initial_s: float = Field(default=0.25, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "iqfeed"
    partitions: int = Field(default=495, ge=1)
    linger_ms: int | Literal["auto"] = Field(
        default=REFERENCE_DESIGN.linger_ms,
        description="librdkafka linger.ms; auto: from the expected rate per partition "
        "(ingest.kafka_settings.auto_linger_ms, the symbols at start over `partitions`)",
    )
    compression: Compression = REFERENCE_DESIGN.compression
    producer: dict[str, Any] = Field(
        default_factory=dict, description="librdkafka overrides (win over linger_ms/compression)"
    )
    queue_max_messages: int = Field(default=DEFAULT_QUEUE_MAX_MESSAGES, ge=1000)
    producers: int = Field(
        default=REFERENCE_DESIGN.producers,
        ge=1,
        le=64,
        description="idempotent producers, partition p on producer p % n (see ingest.kafka_out)",
    )

    def design(self) -> ProducerDesign:
        """The producer design these settings choose (bench/bench_kafka_produce.py's knobs)."""
        return ProducerDesign(self.linger_ms, self.compression, self.producers)

    statistics_interval_ms: int = Field(
        default=1000,
        ge=0,
        description="librdkafka statistics.interval.ms: the kafka_producer_* figures on "
        "/metrics are refreshed this often (0 = off, no kafka_producer_* metrics)",
    )


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)


class RedisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    url: str = "redis://127.0.0.1:6379/0"
    interval_s: float = Field(default=5.0, gt=0)


class IngestConfig(BaseModel):
    """Everything `ingest run` needs."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[str] = Field(default_factory=list, description="symbols to ingest")
    symbols_file: Path | None = Field(
        None, description="production_symbols.json (partitions; symbols when `symbols` empty)"
    )
    feed: FeedSettings = Field(default_factory=lambda: FeedSettings())
    kafka: KafkaSettings = Field(default_factory=lambda: KafkaSettings())
    metrics: MetricsSettings = Field(default_factory=lambda: MetricsSettings())
    redis: RedisSettings = Field(default_factory=lambda: RedisSettings())


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file, key and problem."""


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> IngestConfig:
    """Read `path` (YAML or JSON; None: defaults) and apply dotted-key `overrides`."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text()
            loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded or {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        target = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    try:
        return IngestConfig.model_validate(data)
    except ValidationError as exc:
        where = str(path) if path else "<options>"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc
