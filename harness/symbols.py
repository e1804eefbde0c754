"""The production symbol universe: loading, checking and stratified subsets.

Owns the schema of config/production_symbols.json (written by scripts/build_symbols.py), the
offline "every symbol is tradeable" check, the round-lot rule and the nested, liquidity-tier
stratified subsets that the ramp stages (50, 100, 200, 495 symbols) subscribe to.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from harness.paths import symbols_file

# A US listed ticker: 1-5 capitals, optionally a one-letter share class (BRK.B, BF.B).
TICKER_PATTERN: Final = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")
TIERS: Final[tuple[int, ...]] = (1, 2, 3)
# Mean weight must be 1.0; weights are rounded to 6 decimals, so allow a little slack.
MEAN_WEIGHT_TOLERANCE: Final = 1e-5
# MDI round-lot tiers in force from 2025-11-03: (highest price in USD, round lot in shares).
ROUND_LOT_TIERS: Final[tuple[tuple[float, int], ...]] = ((250.0, 100), (1000.0, 40), (10000.0, 10))
ROUND_LOT_ABOVE_TOP_TIER: Final = 1


class SymbolFileError(ValueError):
    """The symbol file is missing, not JSON, or does not match the schema."""


def round_lot_for_price(price: float) -> int:
    """Round lot in shares for a price, per the MDI tiers (market-facts.md section 4.6)."""
    for highest_price, lot in ROUND_LOT_TIERS:
        if price <= highest_price:
            return lot
    return ROUND_LOT_ABOVE_TOP_TIER


class SymbolInfo(BaseModel):
    """One symbol of the universe, as stored in the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    name: str
    sector: str
    sub_industry: str
    tier: int
    partition: int
    weight: float
    price: float
    adv_shares: int
    adv_dollars: int
    round_lot: int


class TierRule(BaseModel):
    """One liquidity tier: its lower dollar-volume bound and how many symbols it holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: int
    min_adv_dollars: int
    label: str
    count: int


class TierScheme(BaseModel):
    """How symbols are tiered: the basis measure and one rule per tier, most liquid first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    basis: str
    rules: list[TierRule]


class ExcludedSymbol(BaseModel):
    """A source row left out of the universe, with the reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    reason: str


class UniverseMetadata(BaseModel):
    """Provenance and rules of the universe file."""

    model_config = ConfigDict(frozen=True, extra="allow")

    source: dict[str, str]
    attribution: str
    generated_by: str
    as_of: str
    count: int
    tiers: TierScheme
    partition_rule: str
    weight_rule: str
    excluded: list[ExcludedSymbol] = Field(default_factory=list)


class SymbolUniverse(BaseModel):
    """The symbol universe: metadata plus the symbols in file order (sorted by symbol)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metadata: UniverseMetadata
    symbols: list[SymbolInfo]

    _index: dict[str, SymbolInfo] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: object) -> None:
        """Index the symbols by ticker (the first occurrence wins if there are duplicates)."""
        index: dict[str, SymbolInfo] = {}
        for info in self.symbols:
            index.setdefault(info.symbol, info)
        self._index = index

    def __len__(self) -> int:
        return len(self.symbols)

    def tickers(self) -> list[str]:
        """The tickers in file order."""
        return [info.symbol for info in self.symbols]

    def by_symbol(self, symbol: str) -> SymbolInfo:
        """The entry for a ticker; KeyError if it is not in the universe."""
        try:
            return self._index[symbol]
        except KeyError:
            raise KeyError(f"symbol {symbol!r} is not in the universe") from None

    def partition_of(self, symbol: str) -> int:
        """The symbol's stable partition number (its Kafka partition)."""
        return self.by_symbol(symbol).partition

    def tier_counts(self) -> dict[int, int]:
        """How many symbols each liquidity tier holds, keyed by tier, tiers ascending."""
        counts = Counter(info.tier for info in self.symbols)
        return {tier: counts[tier] for tier in sorted(counts)}

    def stratified_subset(self, n: int) -> list[SymbolInfo]:
        """The first n symbols of the stratified selection order (see selection_order)."""
        if not 0 <= n <= len(self.symbols):
            raise ValueError(f"subset size {n} is outside 0..{len(self.symbols)}")
        return self.selection_order()[:n]

    def selection_order(self) -> list[SymbolInfo]:
        """All symbols in the order stages add them; every prefix is tier-stratified.

        Within a tier symbols are ordered by sha256 of the ticker (stable, unrelated to name or
        liquidity rank). Tiers are interleaved by largest deficit: the k-th pick goes to the tier
        whose count lags its proportional share k * tier_size / N the most (ties: lower tier).
        So subsets are nested, deterministic, and each prefix keeps every tier within one symbol
        of its proportional share (tests check every prefix of the shipped file).
        """
        by_tier: dict[int, list[SymbolInfo]] = {}
        for info in self.symbols:
            by_tier.setdefault(info.tier, []).append(info)
        tiers = sorted(by_tier)
        queues = [
            sorted(by_tier[tier], key=lambda info: _stable_key(info.symbol)) for tier in tiers
        ]
        cursors = [iter(queue) for queue in queues]
        order = interleave_proportionally([len(queue) for queue in queues])
        return [next(cursors[slot]) for slot in order]


def interleave_proportionally(sizes: list[int]) -> list[int]:
    """An order of group indices (group i appears sizes[i] times) that keeps every prefix
    proportional: at step k the group with the largest deficit k*size/total - taken goes next.

    Integer arithmetic only (deficits scaled by the total), ties go to the lower index.
    """
    total = sum(sizes)
    taken = [0] * len(sizes)
    order: list[int] = []
    for k in range(1, total + 1):
        best = max(
            (group for group in range(len(sizes)) if taken[group] < sizes[group]),
            key=lambda group: (k * sizes[group] - taken[group] * total, -group),
        )
        taken[best] += 1
        order.append(best)
    return order


def _stable_key(symbol: str) -> str:
    return hashlib.sha256(symbol.encode("utf-8")).hexdigest()


def validate_universe(universe: SymbolUniverse) -> list[str]:
    """Problems with the universe (an empty list means valid): the offline tradeable check."""
    problems: list[str] = []
    symbols = universe.symbols
    count = len(symbols)
    for info in symbols:
        if not TICKER_PATTERN.match(info.symbol):
            problems.append(f"{info.symbol!r}: not a well-formed US ticker")
        if info.tier not in TIERS:
            problems.append(f"{info.symbol}: tier {info.tier} is not one of {list(TIERS)}")
        if not info.weight > 0:
            problems.append(f"{info.symbol}: weight {info.weight} is not positive")
        if not info.price > 0:
            problems.append(f"{info.symbol}: price {info.price} is not positive")
        elif info.round_lot != round_lot_for_price(info.price):
            problems.append(
                f"{info.symbol}: round lot {info.round_lot} does not match price {info.price} "
                f"(expected {round_lot_for_price(info.price)})"
            )
    duplicates = sorted(sym for sym, n in Counter(i.symbol for i in symbols).items() if n > 1)
    if duplicates:
        problems.append(f"duplicate symbols: {duplicates}")
    problems.extend(_partition_problems([info.partition for info in symbols], count))
    if count and abs(sum(info.weight for info in symbols) / count - 1.0) > MEAN_WEIGHT_TOLERANCE:
        mean = sum(info.weight for info in symbols) / count
        problems.append(f"mean weight is {mean:.6f}, expected 1.0")
    if universe.metadata.count != count:
        problems.append(f"metadata count {universe.metadata.count} != {count} symbols")
    documented = {rule.tier: rule.count for rule in universe.metadata.tiers.rules}
    actual = universe.tier_counts()
    if documented != actual:
        problems.append(f"tier counts {actual} differ from metadata {documented}")
    return problems


def _partition_problems(partitions: list[int], count: int) -> list[str]:
    problems: list[str] = []
    repeated = sorted(p for p, n in Counter(partitions).items() if n > 1)
    if repeated:
        problems.append(f"partitions used more than once: {repeated}")
    missing = sorted(set(range(count)) - set(partitions))
    if missing:
        problems.append(f"partitions missing from 0..{count - 1}: {missing}")
    outside = sorted(p for p in set(partitions) if not 0 <= p < count)
    if outside:
        problems.append(f"partitions outside 0..{count - 1}: {outside}")
    return problems


def load_universe(path: Path | None = None, *, check: bool = True) -> SymbolUniverse:
    """Load the universe (default: config/production_symbols.json).

    Raises SymbolFileError, whose message starts with the file path, if the file cannot be read,
    is not JSON, does not match the schema, or (with check=True) fails validate_universe.
    """
    file = path if path is not None else symbols_file()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SymbolFileError(f"{file}: cannot read the symbol file: {exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SymbolFileError(f"{file}: not valid JSON: {exc}") from exc
    try:
        universe = SymbolUniverse.model_validate(raw)
    except ValidationError as exc:
        raise SymbolFileError(f"{file}: does not match the symbol file schema: {exc}") from exc
    if check:
        problems = validate_universe(universe)
        if problems:
            raise SymbolFileError(f"{file}: invalid symbol universe: " + "; ".join(problems))
    return universe
