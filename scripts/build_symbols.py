"""Build config/production_symbols.json from the shared S&P 500 liquidity file.

Owns the selection of the 495 production symbols, their liquidity tiers, partition numbers,
message-rate weights and round lots. Deterministic: the same csv gives a byte-identical file.

    .venv/bin/python scripts/build_symbols.py [CSV] [--output PATH]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from harness.symbols import (  # noqa: E402
    SymbolUniverse,
    round_lot_for_price,
    validate_universe,
)

CSV_NAME: Final = "sp500_constituents_liquidity_2026-07.csv"
DEFAULT_CSV: Final = REPO_ROOT.parent / "shared" / "data" / CSV_NAME
DEFAULT_OUTPUT: Final = REPO_ROOT / "config" / "production_symbols.json"
UNIVERSE_SIZE: Final = 495
AS_OF: Final = "2026-07"
# market-facts.md section 4.2: trades/day ~ ADV / average trade size (about 100-160 shares).
AVERAGE_TRADE_SIZE_SHARES: Final = 130
WEIGHT_DECIMALS: Final = 6
# (tier, lowest median 63-day dollar volume in USD/day, label), most liquid first.
TIER_CUTOFFS: Final[tuple[tuple[int, int, str], ...]] = (
    (1, 1_000_000_000, ">= $1B/day"),
    (2, 250_000_000, "$250M to < $1B/day"),
    (3, 0, "< $250M/day"),
)
ATTRIBUTION: Final = (
    "Constituents (symbol, name, GICS sector and sub-industry): github "
    "datasets/s-and-p-500-companies data/constituents.csv (2026-08-08), PDDL. "
    "Last price, market cap and 63-day volumes: github Ate329/top-us-stock-tickers "
    "tickers/sp500.csv (2026-07-23) and its daily history, MIT License."
)
PARTITION_RULE: Final = (
    "partition = index of the symbol in the list sorted by ticker (Python str order, i.e. "
    "ASCII: BRK.B sorts before BRO), 0..count-1; the symbols array is in this order"
)
WEIGHT_RULE: Final = (
    f"weight proportional to estimated trades/day = adv_shares / {AVERAGE_TRADE_SIZE_SHARES} "
    "shares (market-facts.md 4.2), normalised so the mean weight over the universe is 1.0, "
    f"rounded to {WEIGHT_DECIMALS} decimals; a per-symbol rate of R msg/s x weight keeps the "
    "fleet at R x count msg/s"
)
TIER_BASIS: Final = "adv_dollars: median daily dollar volume over the last 63 sessions"
ROUND_LOT_RULE: Final = (
    "MDI round-lot tiers from 2025-11-03 by price (market-facts.md 4.6): <= $250 -> 100, "
    "<= $1,000 -> 40, <= $10,000 -> 10, above -> 1; uses last_price_usd"
)


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """The csv rows as dictionaries."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def has_liquidity_data(row: dict[str, str]) -> bool:
    """Whether the row has the price and volume figures the universe needs."""
    fields = ("last_price_usd", "adv_median_63d_shares", "adv_dollar_median_63d")
    return all(row[field].strip() for field in fields)


def tier_for(adv_dollars: int) -> int:
    """The liquidity tier of a median daily dollar volume."""
    for tier, lowest, _label in TIER_CUTOFFS:
        if adv_dollars >= lowest:
            return tier
    raise ValueError(f"no tier for {adv_dollars}")


def select(
    rows: list[dict[str, str]], size: int
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The kept rows (top `size` by dollar volume) and the excluded ones with reasons."""
    usable = [row for row in rows if has_liquidity_data(row)]
    excluded = [
        {
            "symbol": row["symbol"],
            "reason": (
                "no last price or volume in the source file "
                f"(added to the index {row['date_added']}, after the price snapshot)"
            ),
        }
        for row in rows
        if not has_liquidity_data(row)
    ]
    ranked = sorted(usable, key=lambda row: (-int(row["adv_dollar_median_63d"]), row["symbol"]))
    for rank, row in enumerate(ranked[size:], start=size + 1):
        dollars = int(row["adv_dollar_median_63d"])
        excluded.append(
            {
                "symbol": row["symbol"],
                "reason": (
                    f"rank {rank} of {len(ranked)} by median 63-day dollar volume "
                    f"(${dollars / 1e6:.1f}M/day); outside the top {size}"
                ),
            }
        )
    return ranked[:size], excluded


def build_symbols(kept: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One record per kept row, sorted by ticker, with partition, tier, weight and round lot."""
    rows = sorted(kept, key=lambda row: row["symbol"])
    trades_per_day = [int(row["adv_median_63d_shares"]) / AVERAGE_TRADE_SIZE_SHARES for row in rows]
    mean_trades = sum(trades_per_day) / len(trades_per_day)
    records: list[dict[str, Any]] = []
    for partition, (row, trades) in enumerate(zip(rows, trades_per_day, strict=True)):
        price = float(row["last_price_usd"])
        adv_dollars = int(row["adv_dollar_median_63d"])
        records.append(
            {
                "symbol": row["symbol"],
                "name": row["name"],
                "sector": row["gics_sector"],
                "sub_industry": row["gics_sub_industry"],
                "tier": tier_for(adv_dollars),
                "partition": partition,
                "weight": round(trades / mean_trades, WEIGHT_DECIMALS),
                "price": price,
                "adv_shares": int(row["adv_median_63d_shares"]),
                "adv_dollars": adv_dollars,
                "round_lot": round_lot_for_price(price),
            }
        )
    return records


def build_metadata(
    csv_path: Path,
    kept: list[dict[str, str]],
    records: list[dict[str, Any]],
    excluded: list[dict[str, str]],
) -> dict[str, Any]:
    """Provenance, rules and counts for the file's metadata block."""
    tier_counts = Counter(record["tier"] for record in records)
    short_history = {
        row["symbol"]: int(row["adv_days"])
        for row in sorted(kept, key=lambda row: row["symbol"])
        if int(row["adv_days"]) < 63
    }
    return {
        "source": {
            "file": f"shared/data/{csv_path.name}",
            "sha256": hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        },
        "attribution": ATTRIBUTION,
        "generated_by": "scripts/build_symbols.py",
        "as_of": AS_OF,
        "count": len(records),
        "tiers": {
            "basis": TIER_BASIS,
            "rules": [
                {
                    "tier": tier,
                    "min_adv_dollars": lowest,
                    "label": label,
                    "count": tier_counts[tier],
                }
                for tier, lowest, label in TIER_CUTOFFS
            ],
        },
        "partition_rule": PARTITION_RULE,
        "weight_rule": WEIGHT_RULE,
        "round_lot_rule": ROUND_LOT_RULE,
        "short_adv_history": {
            "note": "listed or renamed recently: the 63-day medians cover fewer sessions",
            "sessions": short_history,
        },
        "excluded": excluded,
    }


def render(document: dict[str, Any]) -> str:
    """JSON text: metadata indented, one symbol per line (easy to review and diff)."""
    metadata = json.dumps(document["metadata"], indent=2, ensure_ascii=False).replace("\n", "\n  ")
    symbols = ",\n".join(
        "    " + json.dumps(record, ensure_ascii=False) for record in document["symbols"]
    )
    return '{\n  "metadata": ' + metadata + ',\n  "symbols": [\n' + symbols + "\n  ]\n}\n"


def build_document(csv_path: Path, size: int = UNIVERSE_SIZE) -> dict[str, Any]:
    """The whole file as a dictionary, checked with harness.symbols.validate_universe."""
    rows = read_rows(csv_path)
    kept, excluded = select(rows, size)
    if len(kept) != size:
        raise SystemExit(f"{csv_path}: only {len(kept)} usable rows, need {size}")
    records = build_symbols(kept)
    document = {"metadata": build_metadata(csv_path, kept, records, excluded), "symbols": records}
    problems = validate_universe(SymbolUniverse.model_validate(document))
    if problems:
        raise SystemExit("generated universe is invalid: " + "; ".join(problems))
    return document


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV, help="source csv")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON to write")
    args = parser.parse_args(argv)
    document = build_document(args.csv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(document), encoding="utf-8", newline="\n")
    counts = {rule["tier"]: rule["count"] for rule in document["metadata"]["tiers"]["rules"]}
    print(f"wrote {args.output}: {document['metadata']['count']} symbols, tiers {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
