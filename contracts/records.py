"""Where a core's Kafka record values hold what the harness reads (contract 4).

The collector reads any core's records through a `FieldMapping`: which JSON keys (dotted paths
into nested objects, e.g. `"meta.seq"`) hold the symbol, the feed sequence, the exchange
(intended) time and, when the core stamps them, its receive time, produce time and the event
type; `time_unit_ns` scales cores that stamp times in us or ms; `families` says which record
types feed_sim counted as Level 1 (seq = the TickID) and which as Level 2. `REFERENCE_CORE` is
the layout of the reference core's `ingest.records.FeedRecord`.

A scenario's `sut.record_mapping` is these keys (plus where the records are: its topics and
partitions); the scenario schema takes them from `FieldMapping`, so they are listed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

Family = Literal["l1", "l2"]
FAMILIES: Final[tuple[Family, ...]] = ("l1", "l2")
REFERENCE_FAMILIES: Final[Mapping[str, Family]] = {"trade": "l1", "quote": "l1", "depth": "l2"}
"""Record type -> sequence family (types not listed are their own family)."""
UNTYPED_FAMILY: Final[Family] = "l1"
"""The family of records without a type (a core that stamps none writes Level 1 records)."""


def _reference_families() -> dict[str, Family]:
    return dict(REFERENCE_FAMILIES)


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Which JSON keys (dotted paths) of a record value hold what; None = the core has none."""

    symbol: str = "symbol"
    seq: str = "seq"
    exchange_ns: str = "exchange_ns"
    recv_ns: str | None = "recv_ns"
    produced_ns: str | None = "produced_ns"
    type: str | None = "type"
    time_unit_ns: int = 1
    """Nanoseconds per unit of the three time fields (1000 for a core stamping microseconds)."""
    families: dict[str, Family] = field(default_factory=_reference_families)
    """Value of the `type` field -> what feed_sim counted it as: "l1" (Level 1, seq = the
    TickID) or "l2" (Level 2). Records without a type count as Level 1."""

    def __post_init__(self) -> None:
        if self.time_unit_ns < 1:
            raise ValueError("time_unit_ns must be >= 1")
        wrong = sorted(f for f in self.families.values() if f not in FAMILIES)
        if wrong:
            raise ValueError(f"families map record types to l1 or l2, not {wrong[0]!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldMapping:
        """A mapping from a JSON object or a scenario's keys; unknown keys raise ValueError."""
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown field-mapping keys: {', '.join(unknown)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in KEYS}


KEYS: Final[tuple[str, ...]] = tuple(f.name for f in fields(FieldMapping))
REFERENCE_CORE: Final = FieldMapping()
"""The layout of `ingest.records.FeedRecord.to_value()`."""

__all__ = [
    "FAMILIES",
    "KEYS",
    "REFERENCE_CORE",
    "REFERENCE_FAMILIES",
    "UNTYPED_FAMILY",
    "Family",
    "FieldMapping",
]
