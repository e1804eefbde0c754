"""The reference core's producer design: linger policy, compression, producer instances.

Owns the choice bench/bench_kafka_produce.py measures and the core runs with
(`REFERENCE_DESIGN`), plus the partition layout rule shared with the harness
(`fold_partition`). Pure data and arithmetic; imports nothing else of `ingest`.

librdkafka sends one partition per ProduceRequest (librdkafka issue #1700) and the broker's
CPU follows the request count, so the design's lever is how many records wait for each other
in a partition's queue: `linger.ms`. "auto" sets it from the expected rate per partition
(`NOMINAL_SYMBOL_RATE` x symbols / partitions written): long enough for about
`AUTO_RECORDS_PER_BATCH` records, between `AUTO_LINGER_MIN_MS` and `AUTO_LINGER_MAX_MS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

NOMINAL_SYMBOL_RATE = 100.0
"""Messages per second per symbol the readiness review sizes for (50k msg/s / 495 symbols)."""
AUTO_RECORDS_PER_BATCH = 2.0
AUTO_LINGER_MIN_MS = 2
AUTO_LINGER_MAX_MS = 25
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]


def fold_partition(partition: int, partitions: int) -> int:
    """A symbol's reviewed partition on a topic of `partitions` (fewer than symbols: folded,
    `partition % partitions`, so the symbols spread evenly and stay in a stable place)."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return partition % partitions


def auto_linger_ms(symbols: int, partitions: int) -> int:
    """linger.ms for about AUTO_RECORDS_PER_BATCH records per batch at the nominal rate."""
    used = max(1, min(symbols, partitions))
    per_partition = NOMINAL_SYMBOL_RATE * max(1, symbols) / used
    linger = round(1000.0 * AUTO_RECORDS_PER_BATCH / per_partition)
    return max(AUTO_LINGER_MIN_MS, min(AUTO_LINGER_MAX_MS, linger))


@dataclass(frozen=True)
class ProducerDesign:
    """The knobs the benchmark compares; acks=all and idempotence are never among them."""

    linger_ms: int | Literal["auto"] = "auto"
    compression: Compression = "lz4"
    producers: int = 1

    def linger_for(self, symbols: int, partitions: int) -> int:
        if self.linger_ms == "auto":
            return auto_linger_ms(symbols, partitions)
        return int(self.linger_ms)

    def overrides(self, symbols: int, partitions: int) -> dict[str, Any]:
        """librdkafka settings of this design for `symbols` written to `partitions`."""
        return {
            "linger.ms": self.linger_for(symbols, partitions),
            "compression.type": self.compression,
        }


REFERENCE_DESIGN = ProducerDesign()
"""What the reference core runs with unless told otherwise (see the benchmark's table in
README "Kafka producer and broker settings")."""
