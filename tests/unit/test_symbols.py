"""Tests of the production symbol universe (config/production_symbols.json, harness.symbols)."""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import repo_root, symbols_file
from harness.symbols import (
    SymbolFileError,
    SymbolInfo,
    SymbolUniverse,
    interleave_proportionally,
    load_universe,
    round_lot_for_price,
    validate_universe,
)
from tests.shared_data import shared_dir

EXPECTED_TIER_COUNTS = {1: 85, 2: 264, 3: 146}
STAGE_SIZES = (50, 100, 200, 495)
SOURCE_CSV = "sp500_constituents_liquidity_2026-07.csv"


@pytest.fixture(scope="module")
def universe() -> SymbolUniverse:
    return load_universe()


def with_symbols(universe: SymbolUniverse, symbols: list[SymbolInfo]) -> SymbolUniverse:
    """A copy of the universe holding other symbols (metadata kept)."""
    return SymbolUniverse(metadata=universe.metadata, symbols=symbols)


# --- the shipped file --------------------------------------------------------------------------


def test_shipped_file_has_495_valid_symbols(universe: SymbolUniverse) -> None:
    assert len(universe.symbols) == 495
    assert universe.metadata.count == 495
    assert validate_universe(universe) == []


def test_well_known_names_present(universe: SymbolUniverse) -> None:
    for ticker in ("AAPL", "MSFT", "NVDA", "BRK.B"):
        assert universe.by_symbol(ticker).symbol == ticker
    assert universe.by_symbol("AAPL").sector == "Information Technology"


def test_unknown_symbol_raises_key_error(universe: SymbolUniverse) -> None:
    with pytest.raises(KeyError, match="ZZZZ"):
        universe.by_symbol("ZZZZ")


def test_file_order_is_sorted_and_partitions_follow_it(universe: SymbolUniverse) -> None:
    tickers = universe.tickers()
    assert tickers == sorted(tickers)
    assert [info.partition for info in universe.symbols] == list(range(495))
    assert universe.partition_of("A") == 0
    assert universe.partition_of(tickers[-1]) == 494


def test_tier_counts_match_documentation(universe: SymbolUniverse) -> None:
    assert universe.tier_counts() == EXPECTED_TIER_COUNTS
    documented = {rule.tier: rule.count for rule in universe.metadata.tiers.rules}
    assert documented == EXPECTED_TIER_COUNTS
    cutoffs = {rule.tier: rule.min_adv_dollars for rule in universe.metadata.tiers.rules}
    assert cutoffs == {1: 1_000_000_000, 2: 250_000_000, 3: 0}
    for info in universe.symbols:
        upper = {1: None, 2: cutoffs[1], 3: cutoffs[2]}[info.tier]
        assert info.adv_dollars >= cutoffs[info.tier]
        assert upper is None or info.adv_dollars < upper


def test_weights_average_one_and_follow_activity(universe: SymbolUniverse) -> None:
    weights = [info.weight for info in universe.symbols]
    assert statistics.fmean(weights) == pytest.approx(1.0, abs=1e-5)
    assert universe.by_symbol("NVDA").weight > statistics.median(weights)
    assert all(weight > 0 for weight in weights)


def test_round_lots_follow_mdi_tiers(universe: SymbolUniverse) -> None:
    assert [round_lot_for_price(p) for p in (250.0, 250.01, 1000.0, 1000.01, 10000.01)] == [
        100,
        40,
        40,
        10,
        1,
    ]
    assert {info.round_lot for info in universe.symbols} <= {100, 40, 10}


def test_attribution_and_exclusions_recorded(universe: SymbolUniverse) -> None:
    metadata = universe.metadata
    assert "PDDL" in metadata.attribution and "MIT" in metadata.attribution
    assert "datasets/s-and-p-500-companies" in metadata.attribution
    assert "Ate329/top-us-stock-tickers" in metadata.attribution
    excluded = {item.symbol for item in metadata.excluded}
    assert "FERG" in excluded
    assert len(excluded) == 503 - 495
    assert not excluded & set(universe.tickers())


# --- stratified subsets ------------------------------------------------------------------------


def test_subset_sizes_exact_and_full_subset_is_universe(universe: SymbolUniverse) -> None:
    for size in (0, 1, *STAGE_SIZES):
        subset = universe.stratified_subset(size)
        assert len(subset) == size
        assert len({info.symbol for info in subset}) == size
    assert {i.symbol for i in universe.stratified_subset(495)} == set(universe.tickers())


def test_subsets_are_nested(universe: SymbolUniverse) -> None:
    subsets = [{i.symbol for i in universe.stratified_subset(n)} for n in STAGE_SIZES]
    for smaller, larger in itertools.pairwise(subsets):
        assert smaller < larger


def test_every_prefix_is_within_one_symbol_of_tier_share(universe: SymbolUniverse) -> None:
    """Exhaustive over the shipped file: for every n, each tier's count is within one symbol
    of its proportional share n * tier_size / 495 (strictly less than one away)."""
    total = len(universe.symbols)
    order = universe.selection_order()
    counts = dict.fromkeys(EXPECTED_TIER_COUNTS, 0)
    for n, info in enumerate(order, start=1):
        counts[info.tier] += 1
        for tier, size in EXPECTED_TIER_COUNTS.items():
            assert abs(counts[tier] - n * size / total) < 1, (n, tier, counts)


def test_stage_subsets_hold_every_tier(universe: SymbolUniverse) -> None:
    for size in STAGE_SIZES:
        tiers = {info.tier for info in universe.stratified_subset(size)}
        assert tiers == {1, 2, 3}


def test_subsets_are_deterministic(universe: SymbolUniverse) -> None:
    first = [i.symbol for i in universe.stratified_subset(100)]
    assert [i.symbol for i in universe.stratified_subset(100)] == first
    assert [i.symbol for i in load_universe().stratified_subset(100)] == first


def test_subset_size_out_of_range(universe: SymbolUniverse) -> None:
    with pytest.raises(ValueError, match="outside"):
        universe.stratified_subset(496)
    with pytest.raises(ValueError, match="outside"):
        universe.stratified_subset(-1)


@pytest.mark.parametrize("sizes", [[1], [5, 5], [85, 264, 146], [1, 1, 98], [7, 13, 2, 40]])
def test_interleave_keeps_every_prefix_proportional(sizes: list[int]) -> None:
    order = interleave_proportionally(sizes)
    total = sum(sizes)
    assert sorted(order) == sorted(g for g, size in enumerate(sizes) for _ in range(size))
    taken = [0] * len(sizes)
    for k, group in enumerate(order, start=1):
        taken[group] += 1
        assert all(abs(taken[g] * total - k * sizes[g]) < total for g in range(len(sizes)))


# --- validation --------------------------------------------------------------------------------


def test_validation_catches_duplicates(universe: SymbolUniverse) -> None:
    symbols = list(universe.symbols)
    symbols[1] = symbols[0].model_copy(update={"partition": symbols[1].partition})
    problems = validate_universe(with_symbols(universe, symbols))
    assert any("duplicate" in problem and "'A'" in problem for problem in problems)


@pytest.mark.parametrize("bad_ticker", ["aapl", "TOOLONG", "AB-C", "BRK.BB", "", "A1"])
def test_validation_catches_bad_tickers(universe: SymbolUniverse, bad_ticker: str) -> None:
    symbols = list(universe.symbols)
    symbols[0] = symbols[0].model_copy(update={"symbol": bad_ticker})
    problems = validate_universe(with_symbols(universe, symbols))
    assert any("well-formed" in problem for problem in problems)


def test_validation_catches_partition_gap(universe: SymbolUniverse) -> None:
    symbols = list(universe.symbols)
    symbols[10] = symbols[10].model_copy(update={"partition": 495})
    problems = validate_universe(with_symbols(universe, symbols))
    assert any("missing" in problem and "10" in problem for problem in problems)
    assert any("outside" in problem and "495" in problem for problem in problems)


def test_validation_catches_bad_tier_and_weight(universe: SymbolUniverse) -> None:
    symbols = list(universe.symbols)
    symbols[0] = symbols[0].model_copy(update={"tier": 4, "weight": 0.0})
    problems = validate_universe(with_symbols(universe, symbols))
    assert any("tier 4" in problem for problem in problems)
    assert any("not positive" in problem for problem in problems)
    assert any("mean weight" in problem for problem in problems)


# --- loading errors ----------------------------------------------------------------------------


def test_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "symbols.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(SymbolFileError) as caught:
        load_universe(path)
    assert str(caught.value).startswith(str(path))
    assert "JSON" in str(caught.value)


def test_schema_mismatch_names_the_file_and_field(tmp_path: Path) -> None:
    document = json.loads(symbols_file().read_text(encoding="utf-8"))
    del document["symbols"][3]["tier"]
    path = tmp_path / "symbols.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SymbolFileError) as caught:
        load_universe(path)
    assert str(caught.value).startswith(str(path))
    assert "tier" in str(caught.value)


def test_invalid_universe_is_refused_on_load(tmp_path: Path) -> None:
    document = json.loads(symbols_file().read_text(encoding="utf-8"))
    document["symbols"][0]["symbol"] = "aapl"
    path = tmp_path / "symbols.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SymbolFileError, match="well-formed") as caught:
        load_universe(path)
    assert str(caught.value).startswith(str(path))
    assert load_universe(path, check=False).symbols[0].symbol == "aapl"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(SymbolFileError) as caught:
        load_universe(path)
    assert str(caught.value).startswith(str(path))


# --- the builder -------------------------------------------------------------------------------


def test_builder_reproduces_shipped_file_byte_for_byte(tmp_path: Path) -> None:
    source = shared_dir() / "data" / SOURCE_CSV
    if not source.is_file():
        pytest.skip(f"shared reference data not present at {source}")
    output = tmp_path / "production_symbols.json"
    script = repo_root() / "scripts" / "build_symbols.py"
    subprocess.run(
        [sys.executable, str(script), str(source), "--output", str(output)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert output.read_bytes() == symbols_file().read_bytes()
