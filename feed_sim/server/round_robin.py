"""The fixed-rate schedule of the paced hot path when every symbol has the same rate.

`pacing.FixedRateSchedule` keeps a heap of the next slot of every symbol (~1.3 us a slot on
the 2-core reference VM). When all rates are equal its slots come out in round-robin order:
symbol i's k-th slot is at `int(phase_i + k * period)` with `phase_i = start + period * i / n`,
and `phase_{n-1} < phase_0 + period`, so (k, i) in lexicographic order is (intended time,
symbol index) order, which is the heap's order. `RoundRobinSchedule` walks that order with
the same float expressions, so it yields exactly the same (intended_ns, index) slots.

Float times near 1.7e18 ns are spaced 256 ns apart, so two slots only 1 ns apart in exact
arithmetic could tie, and the heap breaks ties by symbol index. `round_robin_applies` keeps
the round robin to plans whose consecutive slots are at least `MIN_GAP_NS` apart (any total
rate up to ~1M msg/s), where no rounding can reorder or tie them.
"""

from __future__ import annotations

from feed_sim.pacing import NS_PER_S, RatePlan

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
