"""The generator's view of the symbol universe: a tiny loader of config/production_symbols.json.

feed_sim reads only the fields it needs (ticker, tier, price, volume, round lot, weight) so it
does not depend on the harness package; `harness.symbols` owns the file's schema and checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SYMBOLS_FILE = Path(__file__).resolve().parents[2] / "config" / "production_symbols.json"


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What the generator needs to know about one symbol."""

    symbol: str
    tier: int
    price: float
    adv_shares: int
    round_lot: int = 100
    weight: float = 1.0

    @property
    def adv_dollars(self) -> float:
        """Median daily dollar volume."""
        return self.price * self.adv_shares


def _spec(raw: dict[str, Any]) -> SymbolSpec:
    return SymbolSpec(
        symbol=str(raw["symbol"]),
        tier=int(raw["tier"]),
        price=float(raw["price"]),
        adv_shares=int(raw["adv_shares"]),
        round_lot=int(raw.get("round_lot", 100)),
        weight=float(raw.get("weight", 1.0)),
    )


def load_symbols(path: Path | None = None) -> list[SymbolSpec]:
    """All symbols of the universe file, in file order (default: config/production_symbols.json)."""
    file = path if path is not None else DEFAULT_SYMBOLS_FILE
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
        return [_spec(item) for item in raw["symbols"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{file}: cannot load the symbol universe: {exc}") from exc


def select_symbols(specs: Sequence[SymbolSpec], n: int) -> list[SymbolSpec]:
    """n symbols with every tier represented in proportion (deterministic, nested in n).

    Within a tier symbols are ordered by sha256 of the ticker; tiers are interleaved by largest
    deficit, the same rule as the harness's stratified subsets.
    """
    if not 0 <= n <= len(specs):
        raise ValueError(f"cannot select {n} of {len(specs)} symbols")
    tiers = sorted({s.tier for s in specs})
    queues = [
        sorted(
            (s for s in specs if s.tier == tier),
            key=lambda s: hashlib.sha256(s.symbol.encode()).hexdigest(),
        )
        for tier in tiers
    ]
    total = len(specs)
    taken = [0] * len(queues)
    out: list[SymbolSpec] = []
    for k in range(1, n + 1):
        best = max(
            (g for g in range(len(queues)) if taken[g] < len(queues[g])),
            key=lambda g: (k * len(queues[g]) - taken[g] * total, -g),
        )
        out.append(queues[best][taken[best]])
        taken[best] += 1
    return out
