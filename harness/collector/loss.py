"""Loss (contract 5): what arrived (`Completeness`) against what feed_sim says it sent
(`contracts.sent.StageCounters`), per (symbol, family) key of a stage, with an allowance for
records still in flight when the stage is judged (`in_flight_window_s`). `compare()` gives the
`LossReport` the thresholds judge (`loss_ratio_beyond_tolerance`) and the report shows."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.sent import StageCounters
from harness.collector.completeness import Completeness, Key, KeyState

SENT_TABLES: Mapping[str, str] = {"level1": "l1", "level2": "l2"}
"""StageCounters table -> family."""
SEQ_ALIGNED: tuple[str, ...] = ("l1",)
"""Families whose record seq is the seq feed_sim counted (the TickID), so loss can be counted
inside feed_sim's [first_seq, last_seq] of the stage."""


@dataclass
class SymbolLoss:
    """Sent vs received for one (symbol, family) key of a stage."""

    symbol: str
    family: str
    sent: int
    received: int
    tolerance: int

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.received)


@dataclass
class LossReport:
    """Sent vs received over a stage (see `compare`)."""

    rows: list[SymbolLoss]
    unexpected: list[Key]
    """Keys that arrived but feed_sim did not send in this stage."""
    in_flight_s: float = 1.0
    """The in-flight window the tolerances were computed with (see `compare`)."""

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.rows)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rows)

    @property
    def lost_beyond_tolerance(self) -> int:
        return sum(max(0, r.lost - r.tolerance) for r in self.rows)

    @property
    def loss_ratio(self) -> float:
        """(sent - received_unique) / sent, received capped at sent per key."""
        return self.lost / self.sent if self.sent else 0.0

    @property
    def loss_ratio_beyond_tolerance(self) -> float:
        """Loss not explained by messages in flight at the stage boundary (the threshold input)."""
        return self.lost_beyond_tolerance / self.sent if self.sent else 0.0

    def to_json(self, worst: int = 20) -> dict[str, Any]:
        ranked = sorted(self.rows, key=lambda r: (-r.lost, r.symbol))[:worst]
        return {
            "sent": self.sent,
            "received": sum(min(r.received, r.sent) for r in self.rows),
            "lost": self.lost,
            "lost_beyond_tolerance": self.lost_beyond_tolerance,
            "loss_ratio": self.loss_ratio,
            "loss_ratio_beyond_tolerance": self.loss_ratio_beyond_tolerance,
            "in_flight_s": self.in_flight_s,
            "missing_keys": sorted(f"{r.symbol}|{r.family}" for r in self.rows if r.received == 0),
            "unexpected_keys": sorted(f"{s}|{f}" for s, f in self.unexpected),
            "worst": [
                {
                    "symbol": r.symbol,
                    "family": r.family,
                    "sent": r.sent,
                    "received": r.received,
                    "lost": r.lost,
                    "tolerance": r.tolerance,
                }
                for r in ranked
                if r.lost
            ],
        }


def compare(
    received: Completeness,
    sent: StageCounters,
    *,
    in_flight_s: float = 1.0,
    tables: Mapping[str, str] = SENT_TABLES,
    seq_aligned: Iterable[str] = SEQ_ALIGNED,
) -> LossReport:
    """Per key sent vs received_unique; loss = (sent - received_unique) / sent.

    For seq-aligned families the received count is the distinct seqs inside the
    [first_seq, last_seq] feed_sim sent in the stage, so records of the previous stage that
    arrived late do not count; pass the merge of this stage's and the next stage's
    Completeness to count this stage's own late records. Other families compare plain counts.

    Tolerance: feed_sim closes its stage counters at the boundary by its own clock, the
    collector by observation time, so messages sent just before the boundary may still be in
    flight (socket buffers, SUT queues, Kafka) when the stage's completeness is taken. Per key
    the tolerance is the key's sent rate times `in_flight_s` (rounded up), i.e. what can be
    in flight if the pipeline's lag is below `in_flight_s` (the runner passes
    `in_flight_window_s` of the stage's measured lag); loss within it is reported but
    only `lost_beyond_tolerance` counts against a loss threshold. For count families the
    previous stage's spill also arrives here and offsets its own in-flight tail.
    """
    aligned = set(seq_aligned)
    duration_s = max(0.0, (sent.ended_ns - sent.started_ns) / 1e9)
    rows: list[SymbolLoss] = []
    expected: set[Key] = set()
    for table_name, family in tables.items():
        table = getattr(sent, table_name)
        for symbol, count in table.items():
            if count.sent == 0:
                continue
            key = (symbol, family)
            expected.add(key)
            state = received.keys.get(key, KeyState())
            if family in aligned:
                got = state.received_within(count.first_seq, count.last_seq)
            else:
                got = state.unique
            rate = count.sent / duration_s if duration_s > 0 else 0.0
            tolerance = math.ceil(rate * in_flight_s)
            rows.append(SymbolLoss(symbol, family, count.sent, got, tolerance))
    unexpected = sorted(k for k, s in received.keys.items() if k not in expected and s.received)
    return LossReport(sorted(rows, key=lambda r: (r.symbol, r.family)), unexpected, in_flight_s)


MIN_IN_FLIGHT_S = 1.0


def in_flight_window_s(total_lag_max_us: int | None, floor_s: float = MIN_IN_FLIGHT_S) -> float:
    """The in-flight window of a stage for `compare`: the largest total lag the stage
    measured (a message sent that long before the boundary may still be on its way), at
    least `floor_s`. A lost message never shows in the lag, so a SUT that drops messages
    does not widen its own allowance; one that is seconds behind gets seconds of it (its
    lag thresholds judge that)."""
    if not total_lag_max_us:
        return floor_s
    return max(floor_s, total_lag_max_us / 1e6)
