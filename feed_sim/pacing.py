"""Open-model pacing: when each message is intended to be sent (ARCHITECTURE.md contract 2).

A schedule says, for any moment, which (intended send time, symbol) slots are due. It never
waits for the consumer: if the sender falls behind, slots keep their intended times and the
delay shows up as lateness (actual - intended), which feed_sim reports, and in the lag the
system under test measures from the intended time carried in the message.

Schedules:
- `FixedRateSchedule`: every symbol at its own rate (msg/s), phases spread evenly;
- `TapeTimingSchedule`: the tape's own inter-arrival times divided by a speed factor;
- `RoundRobinSchedule`: the fixed-rate schedule's slots, in the same order, without its heap,
  when every symbol has the same rate (below);
- flat out is not a schedule: the sender sends as fast as it can and the intended time of a
  message is the moment its batch was composed.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

NS_PER_S = 1_000_000_000


class Schedule(Protocol):
    """Slots due by a given time, in intended-time order."""

    def due(self, now_ns: int, limit: int) -> list[tuple[int, int]]:
        """Pop up to `limit` due slots as (intended_ns, symbol_index)."""
        ...

    def next_due_ns(self) -> int | None:
        """Intended time of the next slot, or None when the schedule is exhausted."""
        ...


@dataclass(frozen=True)
class RatePlan:
    """Per-symbol message rates (msg/s) of a fixed-rate stage."""

    symbols: tuple[str, ...]
    rates_hz: tuple[float, ...]

    @classmethod
    def uniform(cls, symbols: Sequence[str], rate_hz: float) -> RatePlan:
        return cls(tuple(symbols), tuple(float(rate_hz) for _ in symbols))

    @classmethod
    def weighted(
        cls, symbols: Sequence[str], weights: Sequence[float], mean_rate_hz: float
    ) -> RatePlan:
        """Rates proportional to `weights`, scaled so the mean rate is `mean_rate_hz`."""
        if len(weights) != len(symbols) or not symbols:
            raise ValueError("weights and symbols must be non-empty and the same length")
        mean_weight = sum(weights) / len(weights)
        if mean_weight <= 0:
            raise ValueError("weights must be positive")
        return cls(tuple(symbols), tuple(mean_rate_hz * w / mean_weight for w in weights))

    @property
    def total_rate_hz(self) -> float:
        return float(sum(self.rates_hz))


class FixedRateSchedule:
    """Each symbol i sends at `rates_hz[i]`; symbol i's first slot is at start + i/n periods."""

    def __init__(self, plan: RatePlan, start_ns: int) -> None:
        if any(rate < 0 for rate in plan.rates_hz):
            raise ValueError("rates must be >= 0")
        self.plan = plan
        self._periods = [NS_PER_S / r if r > 0 else 0.0 for r in plan.rates_hz]
        self._heap: list[tuple[int, int, int]] = []  # (intended_ns, symbol_index, slot_number)
        count = len(plan.symbols)
        self._phase = [0.0] * count
        for index, period in enumerate(self._periods):
            if period > 0:
                self._phase[index] = start_ns + period * index / count
                heapq.heappush(self._heap, (int(self._phase[index]), index, 0))

    def due(self, now_ns: int, limit: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ns and len(out) < limit:
            intended, index, slot = heap[0]
            out.append((intended, index))
            nxt = slot + 1
            # Computed from the phase, not accumulated, so rounding never drifts the rate.
            heapq.heapreplace(
                heap, (int(self._phase[index] + nxt * self._periods[index]), index, nxt)
            )
        return out

    def next_due_ns(self) -> int | None:
        return self._heap[0][0] if self._heap else None


class TapeTimingSchedule:
    """Slots at the tape's own times: start + (t - t0) / speed, looping when `loop` is set."""

    def __init__(
        self,
        tape_times_ns: Sequence[int],
        symbol_indices: Sequence[int],
        start_ns: int,
        speed: float = 1.0,
        loop: bool = True,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if len(tape_times_ns) != len(symbol_indices):
            raise ValueError("one symbol index per tape time")
        self._times = tape_times_ns
        self._symbols = symbol_indices
        self._start = start_ns
        self._speed = speed
        self._loop = loop
        self._t0 = tape_times_ns[0] if tape_times_ns else 0
        span = (tape_times_ns[-1] - self._t0) if tape_times_ns else 0
        # One mean inter-arrival gap between the end of a pass and the start of the next.
        gap = span / max(1, len(tape_times_ns) - 1)
        self._pass_ns = span + gap
        self._position = 0
        self._pass = 0
        self.current_event_index = 0
        """Index into the tape of the slot most recently returned by `due`."""

    def _intended(self, position: int, loop_pass: int) -> int:
        offset = self._times[position] - self._t0 + loop_pass * self._pass_ns
        return self._start + int(offset / self._speed)

    def due(self, now_ns: int, limit: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        while len(out) < limit and self._times:
            if self._position >= len(self._times):
                if not self._loop:
                    break
                self._position, self._pass = 0, self._pass + 1
            intended = self._intended(self._position, self._pass)
            if intended > now_ns:
                break
            out.append((intended, self._symbols[self._position]))
            self.current_event_index = self._position
            self._position += 1
        return out

    def due_events(self, now_ns: int, limit: int) -> list[tuple[int, int, int]]:
        """Like `due`, with the tape event index: (intended_ns, symbol_index, event_index)."""
        out: list[tuple[int, int, int]] = []
        while len(out) < limit:
            slot = self.due(now_ns, 1)
            if not slot:
                break
            out.append((slot[0][0], slot[0][1], self.current_event_index))
        return out

    def next_due_ns(self) -> int | None:
        if not self._times:
            return None
        if self._position >= len(self._times):
            return self._intended(0, self._pass + 1) if self._loop else None
        return self._intended(self._position, self._pass)


# --- the round robin of equal rates ----------------------------------------------------------

# The fixed-rate schedule of the paced hot path when every symbol has the same rate.
#
# `pacing.FixedRateSchedule` keeps a heap of the next slot of every symbol (~1.3 us a slot on
# the 2-core reference VM). When all rates are equal its slots come out in round-robin order:
# symbol i's k-th slot is at `int(phase_i + k * period)` with `phase_i = start + period * i / n`,
# and `phase_{n-1} < phase_0 + period`, so (k, i) in lexicographic order is (intended time,
# symbol index) order, which is the heap's order. `RoundRobinSchedule` walks that order with
# the same float expressions, so it yields exactly the same (intended_ns, index) slots.
#
# Float times near 1.7e18 ns are spaced 256 ns apart, so two slots only 1 ns apart in exact
# arithmetic could tie, and the heap breaks ties by symbol index. `round_robin_applies` keeps
# the round robin to plans whose consecutive slots are at least `MIN_GAP_NS` apart (any total
# rate up to ~1M msg/s), where no rounding can reorder or tie them.

MIN_GAP_NS = 1_024.0


def round_robin_applies(plan: RatePlan) -> bool:
    """All rates equal and positive, consecutive slots >= MIN_GAP_NS apart."""
    rates = set(plan.rates_hz)
    if len(rates) != 1:
        return False
    rate = rates.pop()
    return rate > 0 and NS_PER_S / rate / len(plan.symbols) >= MIN_GAP_NS


class RoundRobinSchedule:
    """`FixedRateSchedule` of a plan whose rates are all equal (see `round_robin_applies`)."""

    def __init__(self, plan: RatePlan, start_ns: int) -> None:
        if not round_robin_applies(plan):
            raise ValueError("round robin needs equal positive rates, slots >= 1 us apart")
        self.plan = plan
        count = len(plan.symbols)
        period = NS_PER_S / plan.rates_hz[0]
        self._period = period
        self._phase = [start_ns + period * index / count for index in range(count)]
        self._round = 0
        self._round_offset = 0.0
        self._index = 0
        self._next = int(self._phase[0])

    def due(self, now_ns: int, limit: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        if self._next > now_ns or limit <= 0:
            return out
        append = out.append
        phase = self._phase
        count = len(phase)
        index = self._index
        offset = self._round_offset
        intended = self._next
        taken = 0
        while intended <= now_ns and taken < limit:
            append((intended, index))
            taken += 1
            index += 1
            if index == count:
                index = 0
                self._round += 1
                offset = self._round * self._period
            intended = int(phase[index] + offset)
        self._index = index
        self._round_offset = offset
        self._next = intended
        return out

    def next_due_ns(self) -> int | None:
        return self._next
