"""The reference core's producer design: auto linger, the folded layout, config wiring."""

from __future__ import annotations

import pytest

from ingest.config import KafkaSettings
from ingest.kafka_settings import (
    AUTO_LINGER_MAX_MS,
    AUTO_LINGER_MIN_MS,
    REFERENCE_DESIGN,
    ProducerDesign,
    auto_linger_ms,
    fold_partition,
)


@pytest.mark.parametrize(
    ("symbols", "partitions", "linger"),
    [
        (50, 495, 20),  # one partition per symbol, 100 msg/s each: 2 records in 20 ms
        (495, 495, 20),
        (50, 12, 5),  # ~417 msg/s per partition
        (495, 48, AUTO_LINGER_MIN_MS),  # ~1,031 msg/s per partition: the floor
        (1, 1, 20),
    ],
)
def test_auto_linger_follows_the_rate_per_partition(
    symbols: int, partitions: int, linger: int
) -> None:
    assert auto_linger_ms(symbols, partitions) == linger
    assert AUTO_LINGER_MIN_MS <= linger <= AUTO_LINGER_MAX_MS


def test_fold_partition() -> None:
    assert [fold_partition(p, 12) for p in (0, 11, 12, 494)] == [0, 11, 0, 494 % 12]
    with pytest.raises(ValueError, match="at least 1"):
        fold_partition(3, 0)


def test_design_overrides_and_the_config_that_chooses_them() -> None:
    assert REFERENCE_DESIGN.overrides(50, 495) == {"linger.ms": 20, "compression.type": "lz4"}
    fixed = ProducerDesign(linger_ms=7, compression="none", producers=2)
    assert fixed.overrides(50, 495) == {"linger.ms": 7, "compression.type": "none"}
    assert KafkaSettings().design() == REFERENCE_DESIGN
    settings = KafkaSettings.model_validate({"linger_ms": 7, "compression": "none", "producers": 2})
    assert settings.design() == fixed
    with pytest.raises(ValueError, match="linger_ms"):
        KafkaSettings.model_validate({"linger_ms": "soon"})
