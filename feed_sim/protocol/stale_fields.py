"""The derived Level 1 fields a connection's fieldset shows: `Level1State` recomputes a group
of derived fields (Change, VWAP, Spread...) only when a fieldset that shows it is rendered."""

from __future__ import annotations

from feed_sim.protocol.fields import FIELD_INDEX, Fieldset

_I = FIELD_INDEX

# Derived-field groups of `Level1State`: a bit per group, set by apply_* (the group is stale)
# and cleared by `sync` (its wire texts recomputed from the numeric state).
STALE_LAST = 1  # Range, Change From Open, Change, Percent Change (last-qualified trades)
STALE_EXTENDED = 2  # Extended Trading Change / Difference (C and E trades)
STALE_VOLUME = 4  # Total Volume, VWAP, Percent Off Average Volume (trades with size)
STALE_TRADES = 8  # Number of Trades Today
STALE_SPREAD = 16  # Spread
STALE_BID_CHANGE = 32
STALE_ASK_CHANGE = 64
STALE_ALL = 127
_STALE_SLOTS = {
    STALE_LAST: (_I["Range"], _I["Change From Open"], _I["Change"], _I["Percent Change"]),
    STALE_EXTENDED: (_I["Extended Trading Change"], _I["Extended Trading Difference"]),
    STALE_VOLUME: (_I["Total Volume"], _I["VWAP"], _I["Percent Off Average Volume"]),
    STALE_TRADES: (_I["Number of Trades Today"],),
    STALE_SPREAD: (_I["Spread"],),
    STALE_BID_CHANGE: (_I["Bid Change"],),
    STALE_ASK_CHANGE: (_I["Ask Change"],),
}
_masks: dict[int, tuple[Fieldset, int]] = {}


def stale_mask(fieldset: Fieldset) -> int:
    """The derived-field groups `fieldset` shows (cached per Fieldset object)."""
    found = _masks.get(id(fieldset))
    if found is not None and found[0] is fieldset:
        return found[1]
    indexes = set(fieldset.indexes)
    mask = 0
    for bit, slots in _STALE_SLOTS.items():
        if indexes.intersection(slots):
            mask |= bit
    if len(_masks) > 4096:
        _masks.clear()
    _masks[id(fieldset)] = (fieldset, mask)  # holds the Fieldset: its id is not reused
    return mask
