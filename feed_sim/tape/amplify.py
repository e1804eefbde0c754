"""Amplification: drive many target symbols from fewer source tapes.

Target i replays source ``i % n``: its events are shifted by a deterministic per-target time
offset, rotated within the span of the source's events of the same session segment (the
pre-market, the regular session or the after-hours of one ET day), so nothing leaves its
session: a regular-session print never lands after the close without its Form-T condition,
nor an after-hours print past 20:00. Prices are rescaled to the target price on the $0.01
grid; sizes, conditions and market centers are kept. The targets' streams are merged into one
time-ordered stream.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from feed_sim.tape.format import TapeWriter
from feed_sim.tape.model import Kind, TapeEvent, TapeHeader

TICK = 0.01
EASTERN = ZoneInfo("America/New_York")
OPEN_MINUTE, CLOSE_MINUTE = 9 * 60 + 30, 16 * 60
_PRICE_KEYS = {Kind.TRADE: ("price",), Kind.QUOTE: (), Kind.DEPTH: ("price",)}


@dataclass(frozen=True)
class AmplifyPlan:
    """How one target is derived: its source, time offset and price factor."""

    target: str
    source: str
    offset_ns: int
    factor: float


def first_price(events: Sequence[TapeEvent]) -> float:
    """The reference price of a source: its first trade price, else its first quote mid."""
    for e in events:
        if e.kind is Kind.TRADE and e.fields.get("price", 0) > 0:
            return float(e.fields["price"])
    for e in events:
        bid, ask = e.fields.get("bid", 0), e.fields.get("ask", 0)
        if e.kind is Kind.QUOTE and bid > 0 and ask > 0:
            return (float(bid) + float(ask)) / 2
    raise ValueError("source has no positive trade price or two-sided quote")


def plan(
    events_by_source: Mapping[str, Sequence[TapeEvent]],
    targets: Sequence[tuple[str, float]],
    seed: int,
    max_offset_s: float,
) -> list[AmplifyPlan]:
    """Assign sources, offsets and price factors to targets (deterministic for a seed)."""
    sources = list(events_by_source)
    if not sources:
        raise ValueError("no source tapes")
    if max_offset_s < 0:
        raise ValueError(f"max_offset_s must be >= 0, got {max_offset_s}")
    names = [t for t, _ in targets]
    if len(set(names)) != len(names):
        raise ValueError("target symbols must be unique")
    max_offset_ns = round(max_offset_s * 1e9)
    refs: dict[str, float] = {}
    for name in sources:
        events = events_by_source[name]
        if not events:
            raise ValueError(f"source {name!r} has no events")
        if any(e.kind is Kind.RAW for e in events):
            raise ValueError(f"source {name!r} holds RAW events, which cannot be amplified")
        refs[name] = first_price(events)
    plans = []
    for i, (target, price) in enumerate(targets):
        if not price > 0:
            raise ValueError(f"target {target!r} price must be positive, got {price}")
        source = sources[i % len(sources)]
        offset = random.Random(f"{seed}:{i}:{target}").randint(0, max_offset_ns)
        plans.append(AmplifyPlan(target, source, offset, price / refs[source]))
    return plans


def rescale(price: float, factor: float) -> float:
    """A price times factor, on the $0.01 grid, never below one tick."""
    return max(TICK, round(price * factor * 100) / 100)


def _rescale_fields(kind: Kind, fields: Mapping[str, Any], factor: float) -> dict[str, Any]:
    out = dict(fields)
    for key in _PRICE_KEYS.get(kind, ()):
        if key in out:
            out[key] = rescale(out[key], factor)
    bid, ask = fields.get("bid") or 0, fields.get("ask") or 0
    if bid > 0:
        out["bid"] = rescale(bid, factor)
    if ask > 0:
        out["ask"] = rescale(ask, factor)
        if 0 < bid < ask and out["ask"] <= out["bid"]:
            out["ask"] = round(out["bid"] * 100 + 1) / 100
    return out


def session_segment(ts_ns: int) -> tuple[int, int]:
    """(ET day ordinal, 0 pre-market / 1 regular / 2 after-hours) of a time."""
    local = dt.datetime.fromtimestamp(ts_ns / 1e9, EASTERN)
    minute = local.hour * 60 + local.minute
    return local.toordinal(), 0 if minute < OPEN_MINUTE else 1 if minute < CLOSE_MINUTE else 2


def segment_bounds(times: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) index ranges of the runs of times in one session segment."""
    keys = [session_segment(t) for t in times]
    starts = [0, *(i for i in range(1, len(keys)) if keys[i] != keys[i - 1])]
    return list(zip(starts, [*starts[1:], len(keys)], strict=True))


def _target_stream(
    p: AmplifyPlan,
    events: Sequence[TapeEvent],
    times: Sequence[int],
    segments: Sequence[tuple[int, int]],
) -> Iterator[TapeEvent]:
    """One target's events, time-shifted (rotated within each session segment's span) and
    rescaled, in order."""
    for start, end in segments:
        first = times[start]
        period = times[end - 1] - first + 1
        offset = p.offset_ns % period
        # Events shifted past the segment's end wrap to its start: the head of the new run.
        split = bisect.bisect_left(times, first + period - offset, start, end)
        for i in (*range(split, end), *range(start, split)):
            e = events[i]
            ts = first + (e.ts_ns - first + offset) % period
            yield TapeEvent(ts, p.target, e.kind, _rescale_fields(e.kind, e.fields, p.factor))


def iter_amplified(
    events_by_source: Mapping[str, Sequence[TapeEvent]],
    plans: Sequence[AmplifyPlan],
) -> Iterator[TapeEvent]:
    """Merge the targets' streams lazily (ties keep target order)."""
    times: dict[str, list[int]] = {}
    for name, events in events_by_source.items():
        times[name] = [e.ts_ns for e in events]
        if any(b < a for a, b in itertools.pairwise(times[name])):
            raise ValueError(f"source {name!r} events are not in time order")
    segments = {name: segment_bounds(t) for name, t in times.items()}
    streams = [
        _target_stream(p, events_by_source[p.source], times[p.source], segments[p.source])
        for p in plans
    ]
    return heapq.merge(*streams, key=lambda e: e.ts_ns)


def amplify(
    events_by_source: Mapping[str, Sequence[TapeEvent]],
    targets: Sequence[tuple[str, float]],
    seed: int,
    max_offset_s: float,
) -> list[TapeEvent]:
    """Drive the targets (symbol, price) from the source tapes; a merged, time-sorted list.

    Sources are used in the mapping's order; each should hold one instrument's events.
    """
    plans = plan(events_by_source, targets, seed, max_offset_s)
    return list(iter_amplified(events_by_source, plans))


def write_amplified_tape(
    out: Path | str,
    events_by_source: Mapping[str, Sequence[TapeEvent]],
    targets: Sequence[tuple[str, float]],
    seed: int,
    max_offset_s: float,
    meta: Mapping[str, Any] | None = None,
) -> TapeHeader:
    """Amplify and stream the result into a tape marked amplified=True."""
    plans = plan(events_by_source, targets, seed, max_offset_s)
    header_meta: dict[str, Any] = {
        "amplified_from": {p.target: p.source for p in plans},
        "seed": seed,
        "max_offset_s": max_offset_s,
        "offsets_ns": {p.target: p.offset_ns for p in plans},
        "price_factors": {p.target: p.factor for p in plans},
        **(meta or {}),
    }
    source = "amplified:" + "+".join(events_by_source)
    with TapeWriter(out, source, meta=header_meta, amplified=True) as writer:
        writer.write_all(iter_amplified(events_by_source, plans))
    return writer.close()
