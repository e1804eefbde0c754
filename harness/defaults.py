"""Harness-wide defaults: ports, topic layout and production targets.

One place for the numbers that the CLI, the compose stack and the scenarios must agree on;
tests pin the compose file and the topic provisioning against these values. The feed ports
and topic names are the shared contracts (`contracts.endpoints`, `contracts.topics`).
"""

from __future__ import annotations

from typing import Final

# Apache Kafka broker fetched from Maven Central for local runs (compose/kafka/pom.xml).
KAFKA_VERSION: Final = "4.4.0"
# Client ports of the compose stack's three brokers (local runs pick free ports instead).
COMPOSE_KAFKA_PORTS: Final[tuple[int, ...]] = (19092, 29092, 39092)

# Feed topics: one partition per symbol, retention 7 days, replication min(3, brokers).
SYMBOL_COUNT: Final = 495
TOPIC_RETENTION_MS: Final = 7 * 24 * 3600 * 1000
MAX_REPLICATION: Final = 3
MIN_INSYNC_REPLICAS_AT_RF3: Final = 2

# ClickHouse (server mode of the compose stack; the embedded chdb engine needs no port).
CLICKHOUSE_HTTP_PORT: Final = 8123
CLICKHOUSE_DATABASE: Final = "market"
CLICKHOUSE_TTL_DAYS: Final = 90

# Redis for order-book snapshots: AOF, fsync every second.
REDIS_PORT: Final = 6379
REDIS_APPENDFSYNC: Final = "everysec"

# Production targets from the readiness review (defaults of scenarios/ramp_495.yaml).
TARGET_MSG_RATE: Final = 50_000
TARGET_P95_MS: Final = 50.0
TARGET_P99_MS: Final = 100.0
TARGET_MEMORY_GB: Final = 4.0
TARGET_NETWORK_MBPS: Final = 50.0
STAGES: Final[tuple[int, ...]] = (50, 100, 200, 495)
