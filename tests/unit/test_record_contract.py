"""Contract 4, once: the collector's field mapping, the scenario's `record_mapping` keys and
the reference core's records agree, because the first two are one definition."""

from __future__ import annotations

import msgspec
import pytest

from contracts.records import KEYS, REFERENCE_CORE, REFERENCE_FAMILIES, FieldMapping
from contracts.topics import TOPIC_BY_TYPE
from harness.scenario import RecordMapping
from ingest.records import FeedRecord


def test_the_scenario_takes_its_mapping_keys_from_the_contract() -> None:
    placement = {"topics", "partitions", "topic_partitions"}
    assert set(RecordMapping.model_fields) == set(KEYS) | placement
    assert RecordMapping().field_mapping() == REFERENCE_CORE
    custom = RecordMapping.model_validate(
        {"seq": "meta.seq", "recv_ns": None, "time_unit_ns": 1000, "topics": ["ticks"]}
    )
    assert custom.field_mapping() == FieldMapping(seq="meta.seq", recv_ns=None, time_unit_ns=1000)


def test_the_reference_core_writes_every_key_its_mapping_names() -> None:
    record = FeedRecord("AAPL", "trade", 7, 1, 2, 3, {})
    value = msgspec.json.decode(record.to_value())
    named = {
        getattr(REFERENCE_CORE, key) for key in KEYS if key not in ("time_unit_ns", "families")
    }
    assert named <= set(value)
    assert set(REFERENCE_FAMILIES) == set(TOPIC_BY_TYPE)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"sequence": "seq"}, "unknown field-mapping keys: sequence"),
        ({"time_unit_ns": 0}, "time_unit_ns must be >= 1"),
        ({"families": {"trade": "l3"}}, "l1 or l2, not 'l3'"),
    ],
)
def test_a_wrong_mapping_says_what_is_wrong(data: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        FieldMapping.from_dict(data)
