"""Paced replay from pre-rendered rings (fixed-rate option `render: ring`).

Live rendering (apply the tape event to the symbol's Level 1 state, render the fieldset)
costs most of a paced message's ~15 us, which keeps one process under 50,000 msg/s with
lateness to spare on a small VM. With `render: ring` the pacer keeps its schedule (every
message still has its own intended time, contract 2) but takes each message's line from the
symbol's flat-out ring (feed_sim/server/flatout.py: `Ring`, `SymbolRings`) and writes the
message's intended time into its time fields with one `bytes.replace`: a few us a message.

The content differs from live rendering exactly as flat out's does (flatout.py's docstring):
the ring repeats every RING_SIZE messages of a symbol (cumulative fields restart on a wrap),
every non-empty time field carries the message's intended time, the live state is not
advanced while rings serve (its TickID moves past the rings' when they stop, `finish()`).
TickIDs stay consecutive per symbol. The run metadata says which rendering was used.

A symbol switches to its rings once every fieldset watching it has one; until then it is
rendered live. Rings are built in dense batches within a rendering budget (`begin_batch`; a
few seconds for 495 symbols at 50k msg/s) and in idle windows long enough for one more
build by the measured cost of the last ones (`build_pending`). An idle window too short for
that estimate lowers it a little (`missed_window`), so one slow build (a busy host) does not
keep a sparse schedule live for good: the next attempt comes a few dozen windows later and
measures the cost again. Symbols with a trades-only (`t`) watcher are always live.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from feed_sim.protocol.fields import Fieldset
from feed_sim.protocol.timefmt import hhmmss_micro, local_ns
from feed_sim.server.flatout import BUILD_BUDGET_NS
from feed_sim.server.market import SymbolMarket
from feed_sim.server.rings import RING_SIZE, TIME_SENTINEL_BYTES, SymbolRings

_NS_PER_DAY = 86_400 * 1_000_000_000
DENSE_BATCH = 8
"""Rings are built inline only in batches of at least this many slots: where messages are
dense enough for rendering cost to matter (at 50k msg/s a 200 us batch holds ~10). A build
is ~1,000 renders (several ms), a stall a sparse schedule would feel in full."""
FIRST_BUILD_ESTIMATE_NS = 5_000_000
"""Assumed cost of one symbol's rings until one has been measured (`build_estimate_ns`)."""
MIN_BUILD_ESTIMATE_NS = 1_000_000
"""`missed_window` lowers the estimate no further than this."""


class PacedRings:
    """The rings of the paced path, per symbol (see the module docstring)."""

    def __init__(self, ring_size: int = RING_SIZE, build_budget_ns: int = BUILD_BUDGET_NS) -> None:
        self.ring_size = ring_size
        self.build_budget_ns = build_budget_ns
        self.symbols: dict[str, SymbolRings] = {}
        self._day = -1
        self._build_left_ns = 0
        self._last_batch_ns = 0
        self._second = -1
        self._second_text = b""
        self.build_estimate_ns = FIRST_BUILD_ESTIMATE_NS
        """Cost of one symbol's rings: the last build, or half the previous estimate if
        larger (a slow build raises it at once, fast ones lower it gradually)."""

    def _build(self, market: SymbolMarket, watchers: Mapping[Any, bool], now_ns: int) -> bool:
        """Build the symbol's rings; False if its replay has nothing to send (it stays live,
        where it sends nothing either)."""
        started = time.perf_counter_ns()
        fresh = SymbolRings(market)
        built = True
        for fieldset in {session.fieldset for session in watchers}:
            if fresh.build(fieldset, now_ns, self.ring_size) is None:
                built = False
                break
        spent = time.perf_counter_ns() - started
        self._build_left_ns -= spent
        if built:
            self.symbols[market.symbol] = fresh
            self.build_estimate_ns = max(spent, self.build_estimate_ns // 2)
        return built

    def begin_batch(self, now_ns: int, slots: int = DENSE_BATCH) -> None:
        """Start a batch: a fresh build budget; rings rebuilt when the US/Eastern day changes
        (their date fields come from the day they were built).

        The budget is rendering time, not wall time: at least `build_budget_ns`, and half the
        time since the previous batch when that was longer (a pacer that is behind renders
        big live batches, and the sooner its symbols have rings, the sooner it catches up)."""
        day = local_ns(now_ns) // _NS_PER_DAY
        if day != self._day:
            self.finish()
            self._day = day
        since = now_ns - self._last_batch_ns if self._last_batch_ns else 0
        self._last_batch_ns = now_ns
        self._build_left_ns = max(self.build_budget_ns, since // 2)
        if slots < DENSE_BATCH:  # sparse: live rendering is cheap, a build would be a stall
            self._build_left_ns = 0

    def ready(
        self, market: SymbolMarket, watchers: Mapping[Any, bool], now_ns: int
    ) -> SymbolRings | None:
        """`watchers`: session -> trades-only, as `SymbolMarket.level1_watchers`.

        The symbol's rings when every watching fieldset has one (building what the budget
        allows), else None: render this message live."""
        found = self.symbols.get(market.symbol)
        if found is not None and found.market is market:
            rings = found.rings
            for session, trades_only in watchers.items():
                if trades_only or session.fieldset not in rings:
                    return self._extend(found, watchers, now_ns)
            return found
        for trades_only in watchers.values():
            if trades_only:
                return None
        if self._build_left_ns <= 0 or not self._build(market, watchers, now_ns):
            return None
        return self.symbols[market.symbol]

    def build_pending(
        self, markets: Mapping[str, SymbolMarket], active: list[str], until_ns: int, now_ns: int
    ) -> int:
        """Use idle time: build the rings of watched active symbols that have none yet, while
        one more build (by `build_estimate_ns`) ends before `until_ns` (perf_counter ns).
        Returns how many symbols got rings."""
        built = 0
        for symbol in active:
            if time.perf_counter_ns() + self.build_estimate_ns >= until_ns:
                break
            market = markets[symbol]
            watchers = market.level1_watchers
            if not watchers or symbol in self.symbols or any(watchers.values()):
                continue
            built += self._build(market, watchers, now_ns)
        return built

    def missed_window(self) -> None:
        """An idle window shorter than `build_estimate_ns`: lower the estimate by a tenth."""
        self.build_estimate_ns = max(MIN_BUILD_ESTIMATE_NS, self.build_estimate_ns * 9 // 10)

    def _extend(
        self, found: SymbolRings, watchers: Mapping[Any, bool], now_ns: int
    ) -> SymbolRings | None:
        """A new fieldset (or a trades-only watcher) joined a symbol served from rings."""
        if any(watchers.values()):
            self._retire(found)  # trades-only filtering needs live rendering from now on
            return None
        for fieldset in {session.fieldset for session in watchers} - set(found.rings):
            # The same snapshot as its other rings: the lines line up (and, as those had
            # messages to send, this is never None).
            if found.build(fieldset, now_ns, self.ring_size) is None:
                self._retire(found)
                return None
        return found

    def _retire(self, rings: SymbolRings) -> None:
        state = rings.market.state
        state.next_tick_id = max(state.next_tick_id, rings.next_tick)
        self.symbols.pop(rings.market.symbol, None)

    def time_bytes(self, intended_ns: int) -> bytes:
        """`HH:MM:SS.ffffff` (US/Eastern) of `intended_ns`, the second's text cached."""
        second = intended_ns // 1_000_000_000
        if second != self._second:
            self._second = second
            self._second_text = hhmmss_micro(second * 1_000_000_000)[:9].encode("ascii")
        micros = (intended_ns // 1_000) % 1_000_000
        return self._second_text + b"%06d" % micros

    @staticmethod
    def line(rings: SymbolRings, fieldset: Fieldset, tick: int, time_text: bytes) -> bytes:
        """The ring line of TickID `tick` with its time fields set to `time_text`."""
        return rings.rings[fieldset].line(tick).replace(TIME_SENTINEL_BYTES, time_text)

    def finish(self) -> None:
        """Rings stop serving: each live state's next TickID moves past the rings' last."""
        for rings in list(self.symbols.values()):
            self._retire(rings)


__all__ = ["PacedRings"]
