"""Synthetic tape generation (`feed-sim generate`): realistic trades, NBBO quotes and Level II
rows for real symbols, calibrated on the team's market facts."""

from __future__ import annotations

from feed_sim.generate.tape_gen import (
    SymbolDay,
    generate_days,
    generate_events,
    generate_tape,
    iter_events,
)
from feed_sim.generate.universe import SymbolSpec, load_symbols, select_symbols

__all__ = [
    "SymbolDay",
    "SymbolSpec",
    "generate_days",
    "generate_events",
    "generate_tape",
    "iter_events",
    "load_symbols",
    "select_symbols",
]
