"""What feed_sim sent, per stage: message counts and sequences per symbol, lateness (contract 5).

`StageCounters` is pure data that merges (`a + b`) and serialises to JSON with the lateness
histogram encoded, so the harness can compare sent against received per symbol and merge
lateness from several feed_sim processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from contracts.hdr import decode, encode, new_histogram, percentiles, record_many


@dataclass
class SymbolCount:
    """Messages sent for one symbol in a stage, and the sequence (TickID) range they carried."""

    sent: int = 0
    first_seq: int = 0
    last_seq: int = 0

    def note(self, seq: int) -> None:
        if self.sent == 0:
            self.first_seq = seq
        self.sent += 1
        self.last_seq = seq

    def __add__(self, other: SymbolCount) -> SymbolCount:
        if self.sent == 0:
            return SymbolCount(other.sent, other.first_seq, other.last_seq)
        if other.sent == 0:
            return SymbolCount(self.sent, self.first_seq, self.last_seq)
        return SymbolCount(
            self.sent + other.sent,
            min(self.first_seq, other.first_seq),
            max(self.last_seq, other.last_seq),
        )


@dataclass
class StageCounters:
    """Counters of one stage (label), for Level 1 and Level 2 messages."""

    label: str
    level1: dict[str, SymbolCount] = field(default_factory=dict)
    level2: dict[str, SymbolCount] = field(default_factory=dict)
    lines_written: int = 0
    bytes_written: int = 0
    unwatched_slots: int = 0
    """Scheduled slots skipped because no client watched the symbol (not sent, no TickID)."""
    malformed_lines: int = 0
    lateness_us: HdrHistogram = field(default_factory=new_histogram)
    started_ns: int = 0
    ended_ns: int = 0

    def record_lateness(self, lateness_ns: np.ndarray[Any, Any]) -> None:
        record_many(self.lateness_us, lateness_ns // 1000)

    @property
    def messages(self) -> int:
        return sum(c.sent for c in self.level1.values()) + sum(c.sent for c in self.level2.values())

    def __add__(self, other: StageCounters) -> StageCounters:
        total = StageCounters(self.label)
        for mine, theirs, out in (
            (self.level1, other.level1, total.level1),
            (self.level2, other.level2, total.level2),
        ):
            for symbol in mine.keys() | theirs.keys():
                out[symbol] = mine.get(symbol, SymbolCount()) + theirs.get(symbol, SymbolCount())
        total.lines_written = self.lines_written + other.lines_written
        total.bytes_written = self.bytes_written + other.bytes_written
        total.unwatched_slots = self.unwatched_slots + other.unwatched_slots
        total.malformed_lines = self.malformed_lines + other.malformed_lines
        total.lateness_us.add(self.lateness_us)
        total.lateness_us.add(other.lateness_us)
        starts = [t for t in (self.started_ns, other.started_ns) if t]
        total.started_ns = min(starts) if starts else 0
        total.ended_ns = max(self.ended_ns, other.ended_ns)
        return total

    def to_json(self) -> dict[str, Any]:
        def counts(table: dict[str, SymbolCount]) -> dict[str, list[int]]:
            return {s: [c.sent, c.first_seq, c.last_seq] for s, c in sorted(table.items())}

        return {
            "label": self.label,
            "level1": counts(self.level1),
            "level2": counts(self.level2),
            "lines_written": self.lines_written,
            "bytes_written": self.bytes_written,
            "unwatched_slots": self.unwatched_slots,
            "malformed_lines": self.malformed_lines,
            "messages": self.messages,
            "lateness_us": encode(self.lateness_us),
            "lateness_percentiles_us": percentiles(self.lateness_us),
            "started_ns": self.started_ns,
            "ended_ns": self.ended_ns,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageCounters:
        def counts(table: dict[str, list[int]]) -> dict[str, SymbolCount]:
            return {s: SymbolCount(*values) for s, values in table.items()}

        return cls(
            label=data["label"],
            level1=counts(data["level1"]),
            level2=counts(data["level2"]),
            lines_written=data["lines_written"],
            bytes_written=data["bytes_written"],
            unwatched_slots=data["unwatched_slots"],
            malformed_lines=data["malformed_lines"],
            lateness_us=decode(data["lateness_us"]),
            started_ns=data["started_ns"],
            ended_ns=data["ended_ns"],
        )
