"""The hot path of paced replay: apply a batch's due slots to their markets, render each
message once per distinct fieldset of its watchers and queue it on each (`FeedEngine` flushes
the sessions and records lateness once per batch).

Level 1 lines come from the paced rings when the scenario renders `ring` and the symbol's
ring is ready (feed_sim.server.paced_rings), otherwise from the live state. Only updates are
sent and counted: a tape event that changes nothing is passed over. Depth events are sent to
Level 2 watchers as order adds (`3`), updates (`4`) and deletes (`5`) (feed_sim.protocol.level2).
"""

from __future__ import annotations

from contracts.sent import StageCounters, SymbolCount
from feed_sim.protocol.fields import Fieldset
from feed_sim.protocol.level2 import (
    ORDER_UPDATE,
    render_order,
    render_order_change,
    render_order_delete,
)
from feed_sim.protocol.stale_fields import stale_mask
from feed_sim.server.market import SymbolMarket, Watcher
from feed_sim.server.paced_rings import PacedRings


def emit_level1_slots(
    slots: list[tuple[int, int]],
    markets: list[SymbolMarket],
    counters: StageCounters,
    rings: PacedRings | None,
    now_ns: int,
    dirty: set[Watcher],
    intended: list[int],
    skip_unchanged: bool = True,
) -> int:
    """Apply and send the Level 1 message of each (intended_ns, position) slot: the next
    tape event of `markets[position]` at that time, rendered once per distinct fieldset
    of its watchers and queued on each. Appends the intended time of each message sent
    to `intended`; returns how many were sent. The hot loop of paced replay.

    Only updates are sent and counted: an event that changes nothing is passed over for
    the next one (`SymbolMarket.next_level1`), or with `skip_unchanged` False (tape
    timing) its slot sends nothing."""
    counts_of = counters.level1
    dirty_add = dirty.add
    sent_before = len(intended)
    intended_append = intended.append
    unwatched = 0
    mask_fieldset: Fieldset | None = None
    mask = 0
    if rings is not None:
        rings.begin_batch(now_ns, len(slots))
    for t, position in slots:
        market = markets[position]
        watchers = market.level1_watchers
        if not watchers:
            unwatched += 1
            continue
        ready = None if rings is None else rings.ready(market, watchers, t)
        if ready is not None:  # render: ring
            tick_id = ready.next_tick
            ready.next_tick = tick_id + 1
            time_text = rings.time_bytes(t)  # type: ignore[union-attr]
            if len(watchers) == 1:  # the common case: one connection, one fieldset
                for session in watchers:
                    session.queue(PacedRings.line(ready, session.fieldset, tick_id, time_text))
                    dirty_add(session)
            else:
                ring_lines: dict[Fieldset, bytes] = {}
                for session in watchers:
                    fieldset = session.fieldset
                    line = ring_lines.get(fieldset)
                    if line is None:
                        line = ring_lines[fieldset] = PacedRings.line(
                            ready, fieldset, tick_id, time_text
                        )
                    session.queue(line)
                    dirty_add(session)
            intended_append(t)
            counts = counts_of.get(market.symbol)
            if counts is None:
                counts_of[market.symbol] = SymbolCount(1, tick_id, tick_id)
            else:
                counts.note(tick_id)
            continue
        applied = market.next_level1(t, skip_unchanged)
        if applied is None:
            continue
        is_trade, tick_id = applied
        state = market.state
        first: Fieldset | None = None
        line = b""
        lines: dict[Fieldset, bytes] | None = None
        for session, trades_only in watchers.items():
            if trades_only and not is_trade:
                continue
            fieldset = session.fieldset
            if fieldset is not first:
                if fieldset is not mask_fieldset:
                    mask_fieldset = fieldset
                    mask = stale_mask(fieldset)
                if state._stale & mask:
                    state.sync(mask)
                if first is None:
                    first = fieldset
                    line = fieldset.render("Q", state.values)
                else:  # several fieldsets watch this symbol: render each one once
                    if lines is None:
                        lines = {first: line}
                    found = lines.get(fieldset)
                    if found is None:
                        found = lines[fieldset] = fieldset.render("Q", state.values)
                    session.queue(found)
                    dirty_add(session)
                    continue
            session.queue(line)
            dirty_add(session)
        if first is None:
            continue
        intended_append(t)
        counts = counts_of.get(market.symbol)
        if counts is None:
            counts_of[market.symbol] = SymbolCount(1, tick_id, tick_id)
        else:
            if not counts.sent:
                counts.first_seq = tick_id
            counts.sent += 1
            counts.last_seq = tick_id
    if unwatched:
        counters.unwatched_slots += unwatched
    return len(intended) - sent_before


def emit_depth(
    market: SymbolMarket, counters: StageCounters, intended_ns: int, dirty: set[Watcher]
) -> bool:
    """Apply and send the next depth event of `market` at `intended_ns` to its Level 2
    watchers; True if one was sent."""
    symbol = market.symbol
    if not market.level2_watchers:
        counters.unwatched_slots += 1
        return False
    applied = market.next_depth(intended_ns)
    if applied is None:
        return False
    row, change = applied
    if row.action == "delete":
        # Nasdaq MMID deletes carry an empty time (gotcha 13); MBO deletes carry one.
        line = render_order_delete(
            symbol,
            row.order_id or None,
            row.mmid,
            row.side,
            intended_ns if row.order_id else None,
            intended_ns,
        )
    else:
        # Market by order: `3` for an order new to the book, `4` for a change, with the
        # order's book priority; a Nasdaq MMID row has no adds (`4`, empty id and priority).
        line = render_order_change(
            symbol, change, market.book.precision, intended_ns
        ) or render_order(
            ORDER_UPDATE,
            symbol,
            row.order_id or None,
            row.mmid,
            row.side,
            row.price,
            row.size,
            None,
            market.book.precision,
            intended_ns,
        )
    for session in market.level2_watchers:
        session.queue_depth(line, row, market, intended_ns, change)
        dirty.add(session)
    counts = counters.level2.get(symbol)
    if counts is None:
        counts = counters.level2[symbol] = SymbolCount()
    counts.note(market.depth_seq)
    return True


__all__ = ["emit_depth", "emit_level1_slots"]
