"""The simulator's core: markets, watchers, the pacing loop and counters.

One `FeedEngine` per process, driven by the asyncio loop. The pacing loop asks the active
schedule which slots are due, has `feed_sim.server.emit` apply the next tape event of each
slot's symbol at the slot's intended time, render it once per distinct fieldset and queue it
on every watching session, and flushes the sessions once per batch. Lateness (flush time -
intended time) goes into the stage's HDR histogram (`feed_sim.server.lateness`); the sent
count and TickID range per symbol into its counters. Flat out is `feed_sim.server.flatout`,
the faults are `feed_sim.server.faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contracts.sent import StageCounters
from feed_sim.pacing import (
    FixedRateSchedule,
    RatePlan,
    RoundRobinSchedule,
    Schedule,
    TapeTimingSchedule,
    round_robin_applies,
)
from feed_sim.server.emit import emit_depth, emit_level1_slots
from feed_sim.server.flatout import FlatOut
from feed_sim.server.lateness import LatenessBuffer
from feed_sim.server.market import SymbolMarket, Watcher
from feed_sim.server.paced_rings import PacedRings
from feed_sim.server.rings import patch_times
from feed_sim.server.symbol_events import DepthEvents, Level1Events
from feed_sim.tape.model import TapeEvent

log = logging.getLogger(__name__)

BATCH_QUANTUM_NS = 200_000
"""The pacer wakes at most this long after a slot's intended time, batching the slots in
between: it bounds the added lateness and keeps wake-ups to ~5,000/s."""
MAX_BATCH = 20_000
LOOP_TURN_NS = 1_000_000
"""While pacing, the event loop (client commands, the control API, draining buffered writes)
gets a turn at least this often, not after every batch: a turn is an epoll_wait and some
bookkeeping, ~5% of a core at 5,000 batches a second."""


def _fixed_rate_schedule(plan: RatePlan, now_ns: int) -> Schedule:
    """The plan's fixed-rate schedule: the round robin when it applies (same slots, cheaper)."""
    if round_robin_applies(plan):
        return RoundRobinSchedule(plan, now_ns)
    return FixedRateSchedule(plan, now_ns)


@dataclass
class RateSettings:
    """How the pacing engine schedules messages (set through the control API)."""

    mode: str = "fixed"  # fixed | tape | flat
    rate_hz: float = 100.0
    l2_rate_hz: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    l2_weights: dict[str, float] = field(default_factory=dict)
    """Level 2 rate per symbol relative to the others (mean kept at `l2_rate_hz`); empty: the
    Level 1 `weights`."""
    speed: float = 1.0
    render: str = "live"  # live | ring (fixed and tape modes: feed_sim/server/paced_rings.py)


class FeedEngine:
    """Markets, sessions and the pacing loop of one feed_sim process."""

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.time_ns,
        symbol_limit: int = 500,
        max_client_buffer: int = 16 * 1024 * 1024,
    ) -> None:
        self.clock_ns = clock_ns
        self.symbol_limit = symbol_limit
        self.max_client_buffer = max_client_buffer
        self.markets: dict[str, SymbolMarket] = {}
        self.active: list[str] = []
        self.rate = RateSettings()
        self.sessions: set[Watcher] = set()
        self.stages: dict[str, StageCounters] = {}
        self.counters = self._new_stage("stage-0")
        self.running = False
        self.paused = False
        self.amplified = False
        self.tape_sources: list[str] = []
        self.slow_client_cutoffs = 0
        self.dropped_during_disconnect = 0
        self.started_ns = clock_ns()
        self._schedule: Schedule | None = None
        self._depth_schedule: Schedule | None = None
        self._tape_is_depth: np.ndarray[Any, Any] | None = None
        self._tape_local: np.ndarray[Any, Any] | None = None
        """Tape mode: each slot's event index within its symbol's Level 1 or depth events."""
        self._slot_markets: list[SymbolMarket] = []
        """The market of each schedule position (`active`, as of the last reschedule)."""
        self._stall_until_ns = 0
        self._disconnected_until_ns = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flat: FlatOut | None = None
        self._rings: PacedRings | None = None
        self._loop_turned_ns = 0
        self._lateness = LatenessBuffer()

    # -- markets --------------------------------------------------------------------------

    def load_events(
        self, events_by_symbol: dict[str, list[TapeEvent]], names: dict[str, str] | None = None
    ) -> None:
        """Replace the events of these symbols (others keep theirs)."""
        now = self.clock_ns()
        for symbol, events in events_by_symbol.items():
            self._install(
                SymbolMarket.from_events(
                    symbol, self._index_of(symbol), events, (names or {}).get(symbol, ""), now
                )
            )
        self._after_load()

    def load_generated(self, days: Iterable[Any], names: dict[str, str] | None = None) -> None:
        """Load generator output (feed_sim.generate SymbolDay columns) without building
        per-event objects: the way a whole fleet's session fits in memory."""
        from feed_sim.generate import venues

        now = self.clock_ns()
        for day in days:
            level1 = Level1Events.from_columns(
                day.trades, day.quotes, venues.CONDITIONS, venues.BASIS
            )
            depth = DepthEvents.from_columns(day.depth)
            self._install(
                SymbolMarket.from_parts(
                    day.symbol,
                    self._index_of(day.symbol),
                    level1,
                    depth,
                    (names or {}).get(day.symbol, ""),
                    now,
                )
            )
        self._after_load()

    def _index_of(self, symbol: str) -> int:
        return self.markets[symbol].index if symbol in self.markets else len(self.markets)

    def _install(self, market: SymbolMarket) -> None:
        old = self.markets.get(market.symbol)
        if old is not None:
            market.level1_watchers, market.level2_watchers = (
                old.level1_watchers,
                old.level2_watchers,
            )
        self.markets[market.symbol] = market

    def _after_load(self) -> None:
        if not self.active:
            self.active = list(self.markets)
        self._reschedule()

    def memory_bytes(self) -> int:
        """Bytes held by the loaded event columns."""
        return sum(
            m.level1_events.nbytes() + m.depth_events.nbytes() for m in self.markets.values()
        )

    def set_active(self, symbols: Iterable[str]) -> list[str]:
        """Symbols the pacer sends for; unknown ones are returned (and ignored)."""
        wanted = list(dict.fromkeys(symbols))
        unknown = [s for s in wanted if s not in self.markets]
        self.active = [s for s in wanted if s in self.markets]
        self._reschedule()
        return unknown

    def set_rate(self, settings: RateSettings) -> None:
        if settings.mode not in ("fixed", "tape", "flat"):
            raise ValueError(f"mode must be fixed, tape or flat, not {settings.mode!r}")
        if settings.rate_hz < 0 or settings.l2_rate_hz < 0 or settings.speed <= 0:
            raise ValueError("rates must be >= 0 and speed > 0")
        if settings.render not in ("live", "ring"):
            raise ValueError(f"render must be live or ring, not {settings.render!r}")
        self.rate = settings
        self._reschedule()

    def _reschedule(self, factor: float = 1.0) -> None:
        now = self.clock_ns()
        symbols = self.active
        rate = self.rate
        self._schedule = self._depth_schedule = None
        self._tape_is_depth = None
        self._tape_local = None
        self._slot_markets = [self.markets[s] for s in symbols]
        if rate.mode != "flat" and self._flat is not None:
            self._flat.finish()
            self._flat = None
        if self._rings is not None and (rate.render != "ring" or rate.mode != "fixed"):
            self._rings.finish()
            self._rings = None
        if rate.render == "ring" and rate.mode == "fixed" and self._rings is None:
            self._rings = PacedRings()
        if not symbols or rate.mode == "flat":
            self._wake.set()
            return
        if rate.mode == "fixed":
            weights = [rate.weights.get(s, 1.0) for s in symbols]
            plan = RatePlan.weighted(symbols, weights, rate.rate_hz * factor)
            self._schedule = _fixed_rate_schedule(plan, now)
            if rate.l2_rate_hz > 0:
                l2 = [rate.l2_weights.get(s, 1.0) for s in symbols] if rate.l2_weights else weights
                depth_plan = RatePlan.weighted(symbols, l2, rate.l2_rate_hz * factor)
                self._depth_schedule = _fixed_rate_schedule(depth_plan, now)
        else:
            times, owners, is_depth, local = [], [], [], []
            for position, symbol in enumerate(symbols):
                market = self.markets[symbol]
                times.append(market.level1_events.ts_ns)
                times.append(market.depth_events.ts_ns)
                owners.append(np.full(len(market.level1_events), position, np.int32))
                owners.append(np.full(len(market.depth_events), position, np.int32))
                is_depth.append(np.zeros(len(market.level1_events), np.bool_))
                is_depth.append(np.ones(len(market.depth_events), np.bool_))
                local.append(np.arange(len(market.level1_events), dtype=np.int64))
                local.append(np.arange(len(market.depth_events), dtype=np.int64))
            all_times = np.concatenate(times)
            order = np.argsort(all_times, kind="stable")
            self._tape_is_depth = np.concatenate(is_depth)[order]
            self._tape_local = np.concatenate(local)[order]
            self._schedule = TapeTimingSchedule(
                all_times[order].tolist(),
                np.concatenate(owners)[order].tolist(),
                now,
                speed=rate.speed * factor,
                loop=True,
            )
        self._wake.set()

    # -- stages and counters --------------------------------------------------------------

    def _new_stage(self, label: str) -> StageCounters:
        counters = StageCounters(label, started_ns=self.clock_ns())
        self.stages[label] = counters
        return counters

    def begin_stage(self, label: str) -> StageCounters:
        self.record_lateness()
        self.counters.ended_ns = self.clock_ns()
        self.counters = self._new_stage(label)
        return self.counters

    # -- watches ----------------------------------------------------------------------------

    def watched_level1_symbols(self) -> int:
        return sum(1 for m in self.markets.values() if m.level1_watchers)

    def register(self, session: Watcher) -> None:
        self.sessions.add(session)

    def unregister(self, session: Watcher) -> None:
        self.sessions.discard(session)
        for market in self.markets.values():
            market.level1_watchers.pop(session, None)
            market.level2_watchers.discard(session)

    # -- pacing loop ------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) the pacing loop on the running asyncio loop."""
        self.running = True
        self.paused = False
        if self._task is None or self._task.done():
            self._reschedule()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pacer")

    async def stop(self) -> None:
        self.running = False
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """Resume with a fresh schedule from now (a pause is not counted as lateness)."""
        self.paused = False
        self._reschedule()

    async def _run(self) -> None:
        try:
            while self.running:
                now = self.clock_ns()
                if self.paused or not self.active:
                    await self._sleep(0.05)
                    continue
                if now < self._stall_until_ns:
                    await self._sleep((self._stall_until_ns - now) / 1e9)
                    continue
                if self.rate.mode == "flat":
                    if self._send_flat_out(now):
                        await asyncio.sleep(0)
                    else:
                        await self._sleep(0.001)
                    continue
                self._send_due(now)
                if not 0 <= now - self._loop_turned_ns < LOOP_TURN_NS:  # (a clock step back too)
                    self._loop_turned_ns = now
                    await asyncio.sleep(0)
                await self._wait_next()
        except Exception:
            log.exception("pacing loop failed")
            raise

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))

    async def _wait_next(self) -> None:
        due = [s.next_due_ns() for s in (self._schedule, self._depth_schedule) if s is not None]
        pending = [d for d in due if d is not None]
        if not pending:
            await self._sleep(0.05)
            return
        wake_at = min(pending) + BATCH_QUANTUM_NS // 2
        wait_ns = wake_at - self.clock_ns()
        rings = self._rings
        if rings is not None and wait_ns > rings.build_estimate_ns + 3_000_000:
            # Idle: build rings ahead (a ring is ~1,000 renders), not inline when due.
            until = time.perf_counter_ns() + wait_ns - 3_000_000
            rings.build_pending(self.markets, self.active, until, self.clock_ns())
            wait_ns = wake_at - self.clock_ns()
        elif rings is not None and wait_ns > 3_000_000:
            rings.missed_window()  # a sparse schedule: try a build again later
        if wait_ns > 3_000_000:
            # The event loop's timers have 1 ms granularity (epoll) plus wake-up latency:
            # come back 2 ms early and sleep the rest precisely.
            await self._sleep((wait_ns - 2_000_000) / 1e9)
        elif wait_ns > 0:
            time.sleep(wait_ns / 1e9)  # sub-ms precision (<= 3 ms); the loop was just serviced

    def _send_due(self, now: int) -> None:
        intended: list[int] = []
        disconnected = now < self._disconnected_until_ns
        dirty: set[Watcher] = set()
        if self._schedule is not None:
            if isinstance(self._schedule, TapeTimingSchedule):
                for t, position, event_index in self._schedule.due_events(now, MAX_BATCH):
                    if disconnected:
                        self.dropped_during_disconnect += 1
                        continue
                    symbol = self.active[position]
                    assert self._tape_is_depth is not None and self._tape_local is not None
                    # The slot's own event, even after unwatched slots (which apply nothing):
                    # its content and its intended time come from the same tape event.
                    market = self.markets[symbol]
                    if self._tape_is_depth[event_index]:
                        market.depth_cursor = int(self._tape_local[event_index])
                        if emit_depth(market, self.counters, t, dirty):
                            intended.append(t)
                    else:
                        market.level1_cursor = int(self._tape_local[event_index])
                        # An event that changes nothing (the tape's first quote replayed onto
                        # the state the previous pass left) is not sent; the next slot is
                        # the next event's own, at its own time.
                        self._emit_level1_slots([(t, 0)], [market], dirty, intended, False)
            else:
                slots = self._schedule.due(now, MAX_BATCH)
                if disconnected:
                    self.dropped_during_disconnect += len(slots)
                else:
                    self._emit_level1_slots(slots, self._slot_markets, dirty, intended)
        if self._depth_schedule is not None:
            for t, position in self._depth_schedule.due(now, MAX_BATCH):
                if disconnected:
                    self.dropped_during_disconnect += 1
                elif emit_depth(self._slot_markets[position], self.counters, t, dirty):
                    intended.append(t)
        self._flush(dirty, intended)

    def _send_flat_out(self, now: int) -> bool:
        """Flat out (feed_sim/server/flatout.py): one batch of pre-rendered lines from every
        watched active symbol, intended = now. False when there was nothing to do (no
        watchers, a client over the high-water mark, a server-disconnect fault)."""
        if now < self._disconnected_until_ns:
            return False
        markets = self.markets
        watched = [s for s in self.active if markets[s].level1_watchers]
        if not watched:
            return False
        flat = self._flat
        if flat is None:
            flat = self._flat = FlatOut(self.clock_ns)
        watching = {session for s in watched for session in markets[s].level1_watchers}
        blocked, stuck = flat.blocked(watching, now)
        for session in stuck:
            log.warning(
                "%s client %s stopped reading during flat out, cut off",
                session.port_name,
                session.client_id,
            )
            self.slow_client_cutoffs += 1
            session.abort()
        if blocked or stuck:
            return False
        dirty: set[Watcher] = set()
        counters = self.counters
        pieces, messages = flat.compose(
            markets, watched, counters, now, lambda s: self._emit_level1(s, now, dirty, [])
        )
        for session, parts in pieces.items():
            session.queue(patch_times(parts, now))
            dirty.add(session)
        for session in dirty:
            counters.bytes_written += session.flush()
        if messages:
            counters.lines_written += messages
            counters.record_lateness(np.full(messages, self.clock_ns() - now, np.int64))
        return True

    def _emit_level1(
        self, symbol: str, intended_ns: int, dirty: set[Watcher], intended: list[int]
    ) -> bool:
        """One Level 1 message of `symbol` (flat out's live rendering); True if sent."""
        market = self.markets[symbol]
        return self._emit_level1_slots([(intended_ns, 0)], [market], dirty, intended) > 0

    def _emit_level1_slots(
        self,
        slots: list[tuple[int, int]],
        markets: list[SymbolMarket],
        dirty: set[Watcher],
        intended: list[int],
        skip_unchanged: bool = True,
    ) -> int:
        """`emit_level1_slots` with this engine's stage counters and rings."""
        return emit_level1_slots(
            slots,
            markets,
            self.counters,
            self._rings,
            self.clock_ns(),
            dirty,
            intended,
            skip_unchanged,
        )

    def _flush(self, dirty: set[Watcher], intended: list[int]) -> None:
        for session in dirty:
            written = session.flush()
            self.counters.bytes_written += written
        if intended:
            self.counters.lines_written += len(intended)
            if self._lateness.add_batch(intended, self.clock_ns()):
                self.record_lateness()

    def record_lateness(self) -> None:
        """Record the buffered lateness values into the current stage's histogram."""
        self._lateness.record_into(self.counters, self.clock_ns())

    # -- faults (feed_sim.server.faults) ------------------------------------------------------

    def stall(self, ms: float) -> None:
        """Send nothing for `ms`; the slots keep their intended times (shows as lateness)."""
        self._stall_until_ns = self.clock_ns() + int(ms * 1e6)
        self._wake.set()

    def silence(self, ms: float) -> None:
        """The server is disconnected for `ms`: the slots due meanwhile are never sent."""
        self._disconnected_until_ns = self.clock_ns() + int(ms * 1e6)

    def scale_rate(self, factor: float) -> None:
        """The set rate times `factor` from now (1.0: the set rate again)."""
        self._reschedule(factor)

    # -- reporting --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        self.record_lateness()
        counts: dict[str, int] = {}
        for session in self.sessions:
            counts[session.port_name] = counts.get(session.port_name, 0) + 1
        lateness = self.counters.to_json()["lateness_percentiles_us"]
        return {
            "running": self.running,
            "paused": self.paused,
            "mode": self.rate.mode,
            "rate_hz": self.rate.rate_hz,
            "l2_rate_hz": self.rate.l2_rate_hz,
            "speed": self.rate.speed,
            "render": self.rate.render,
            "ring_symbols": len(self._rings.symbols) if self._rings is not None else 0,
            "symbols_loaded": len(self.markets),
            "symbols_active": len(self.active),
            "symbols_watched_level1": self.watched_level1_symbols(),
            "clients": counts,
            "stage": self.counters.label,
            "stage_messages": self.counters.messages,
            "lateness_us": lateness,
            "slow_client_cutoffs": self.slow_client_cutoffs,
            "dropped_during_disconnect": self.dropped_during_disconnect,
            "amplified": self.amplified,
            "tapes": self.tape_sources,
            "uptime_s": (self.clock_ns() - self.started_ns) / 1e9,
        }


__all__ = ["FeedEngine", "RateSettings"]
