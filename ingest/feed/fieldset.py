"""The Level 1 fieldset the reference core selects (`S,SELECT UPDATE FIELDS`).

Owns `INGEST_FIELDS`, the update fields the core needs for trade, quote and lag records (exact
DTN spellings, iqfeed-protocol.md §2.3), and the command that selects them. The fieldset
belongs to the connection (gotcha 1): the command is sent on every Level 1 socket, and the
parser follows the server's `S,CURRENT UPDATE FIELDNAMES` reply, not this list.
"""

from __future__ import annotations

INGEST_FIELDS: tuple[str, ...] = (
    "Symbol",
    "Most Recent Trade",
    "Most Recent Trade Size",
    "Most Recent Trade Time",
    "Most Recent Trade Date",
    "Most Recent Trade Market Center",
    "Most Recent Trade Conditions",
    "Total Volume",
    "Bid",
    "Bid Size",
    "Bid Time",
    "Bid Market Center",
    "Ask",
    "Ask Size",
    "Ask Time",
    "Ask Market Center",
    "Message Contents",
    "TickID",
)
"""Symbol first (DTN always puts it first), then trade, NBBO, contents and the TickID."""

DEFAULT_FIELDS: tuple[str, ...] = (
    "Symbol",
    "Most Recent Trade",
    "Most Recent Trade Size",
    "Most Recent Trade Time",
    "Most Recent Trade Market Center",
    "Total Volume",
    "Bid",
    "Bid Size",
    "Ask",
    "Ask Size",
    "Open",
    "High",
    "Low",
    "Close",
    "Message Contents",
    "Most Recent Trade Conditions",
)
"""IQConnect's default layout: what `P`/`Q` carry before any SELECT UPDATE FIELDS (§2.3)."""


def select_update_fields_command(fields: tuple[str, ...] = INGEST_FIELDS) -> str:
    """`S,SELECT UPDATE FIELDS,Symbol,<name>,...` without the line terminator.

    Symbol is sent first, as pyiqfeed does (it then checks the server's reply for equality).
    """
    return "S,SELECT UPDATE FIELDS," + ",".join(fields)
