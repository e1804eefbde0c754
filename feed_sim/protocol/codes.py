"""Code tables: listed markets (SLM), trade conditions (STC), security types (SST), MPIDs.

Owns loading the data files shipped in `feed_sim/data/` (data-driven, iqfeed-protocol.md
gotcha 22) behind cached loaders, plus the two listed-market ids that real 2021 data shows but
the published table lacks (§6.1 caveats).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True, slots=True)
class ListedMarket:
    """One `SLM` row. group_id/group_short are not in the source table: INFERRED = itself."""

    market_id: int
    short_name: str
    long_name: str
    inferred: bool = False

    @property
    def group_id(self) -> int:
        return self.market_id

    @property
    def group_short(self) -> str:
        return self.short_name


@dataclass(frozen=True, slots=True)
class TradeCondition:
    """One trade condition: its two-hex-digit code as messages carry it ('3D' in `873D17`),
    short name and text. The `STC` table lists the same code as a decimal ID (`condition_id`)."""

    code: str
    short_name: str
    description: str

    @property
    def condition_id(self) -> int:
        """The `STC` table's ID: the hex code as an unsigned decimal integer (0x0A -> 10)."""
        return int(self.code, 16)


@dataclass(frozen=True, slots=True)
class SecurityType:
    """One `SST` row."""

    type_id: int
    short_name: str
    long_name: str


@dataclass(frozen=True, slots=True)
class MarketParticipant:
    """A Nasdaq MPID from the Nasdaq Trader directory (type M market maker, E exchange...)."""

    mpid: str
    mp_type: str
    name: str


@dataclass(frozen=True, slots=True)
class MpidActivity:
    """An MPID's attributed Nasdaq order activity (ITCH 'F' messages, March 2025)."""

    mpid: str
    order_count: int
    symbol_count: int
    share_pct: float
    name: str
    mp_type: str


INFERRED_LISTED_MARKETS = (
    ListedMarket(164, "PEARL_EQ", "MIAX Pearl Equities (INFERRED)", inferred=True),
    ListedMarket(187, "MEMX", "Members Exchange (INFERRED)", inferred=True),
)
"""Ids seen in real March-2021 trades but missing from the 2020 table. The venue names are
INFERRED (venues launched in 2020; 187 carries MEMX-like volume)."""

SECURITY_TYPES = tuple(
    SecurityType(i, short, long)
    for i, short, long in (
        (1, "EQUITY", "Equity"),
        (2, "IEOPTION", "Index/Equity Option"),
        (3, "MUTUAL", "Mutual Fund"),
        (4, "MONEY", "Money Market Fund"),
        (5, "BONDS", "Bond"),
        (6, "INDEX", "Index"),
        (7, "MKTSTATS", "Market Statistic"),
        (8, "FUTURE", "Future"),
        (9, "FOPTION", "Future Option"),
        (10, "SPREAD", "Future Spread"),
        (11, "SPOT", "Spot"),
        (12, "FORWARD", "Forward"),
        (13, "CALC", "DTN Calculated Statistic"),
        (14, "STRIP", "Strip"),
        (15, "SSFUTURE", "Single Stock Future"),
        (16, "FOREX", "Foreign Exchange"),
    )
)
"""`SST` table. INFERRED: recalled from IQFeed's security-type ids, not from a shipped file;
only id 1 (EQUITY) is confirmed by the fixtures."""


def _data_text(name: str) -> str:
    return (files("feed_sim") / "data" / name).read_text(encoding="latin-1")


@cache
def listed_markets() -> dict[int, ListedMarket]:
    """Listed-market id -> row, from iqfeed_listed_markets.tsv plus the INFERRED ids."""
    table: dict[int, ListedMarket] = {}
    for row in csv.DictReader(io.StringIO(_data_text("iqfeed_listed_markets.tsv")), delimiter="\t"):
        market_id = int(row["MarketID"])
        table[market_id] = ListedMarket(market_id, row["ShortName"], row["LongName"])
    for extra in INFERRED_LISTED_MARKETS:
        table.setdefault(extra.market_id, extra)
    return dict(sorted(table.items()))


@cache
def trade_conditions() -> dict[str, TradeCondition]:
    """Hex code ('3D') -> row, from iqfeed_trade_conditions.tsv."""
    reader = csv.DictReader(io.StringIO(_data_text("iqfeed_trade_conditions.tsv")), delimiter="\t")
    return {
        row["HexCode"].upper(): TradeCondition(
            row["HexCode"].upper(), row["ShortName"], row["Description"]
        )
        for row in reader
    }


@cache
def sic_codes() -> dict[str, str]:
    """4-digit SIC industry -> title (the `SSC` table), from sic_codes.tsv."""
    return _code_table("sic_codes.tsv", "SIC")


@cache
def naics_codes() -> dict[str, str]:
    """6-digit NAICS 2022 industry -> title (the `SNC` table), from naics_codes.tsv."""
    return _code_table("naics_codes.tsv", "NAICS")


def _code_table(name: str, column: str) -> dict[str, str]:
    reader = csv.DictReader(io.StringIO(_data_text(name)), delimiter="\t")
    return {row[column]: row["Description"] for row in reader}


def split_conditions(conditions: str) -> list[str]:
    """'873D17' -> ['87', '3D', '17'] (concatenated two-hex-digit codes, gotcha 17)."""
    return [conditions[i : i + 2] for i in range(0, len(conditions) - 1, 2)]


@cache
def security_types() -> dict[int, SecurityType]:
    """Security type id -> row."""
    return {t.type_id: t for t in SECURITY_TYPES}


@cache
def market_participants() -> dict[str, MarketParticipant]:
    """MPID -> participant, from the Nasdaq Trader directory (trailer line skipped)."""
    table: dict[str, MarketParticipant] = {}
    lines = _data_text("nasdaqtrader_mpidlist_2025-12-02.txt").splitlines()
    for line in lines[1:]:
        parts = line.split("|")
        if len(parts) < 3 or not parts[0] or line.startswith("File Creation Time"):
            continue
        table.setdefault(parts[0], MarketParticipant(parts[0], parts[1], parts[2]))
    return table


@cache
def mpid_activity() -> tuple[MpidActivity, ...]:
    """MPIDs ranked by attributed Nasdaq orders (most active first)."""
    reader = csv.DictReader(io.StringIO(_data_text("nasdaq_itch_F_orders_by_mpid_2025-03.csv")))
    return tuple(
        MpidActivity(
            row["mpid"],
            int(row["f_order_count"]),
            int(row["n_symbols"]),
            float(row["share_pct"]),
            row["name_from_mpidlist"],
            row["mp_type"],
        )
        for row in reader
    )


EXCHANGE_MPIDS = (
    "NSDQ",
    "ARCX",
    "EDGX",
    "EDGA",
    "BATS",
    "BATY",
    "IEXG",
    "MEMX",
    "NYSE",
    "AMEX",
    "CHXE",
    "CINN",
    "BOSX",
    "EPRL",
    "LTSE",
)
"""Exchange MPIDs that quote in Nasdaq Level II (iqfeed-protocol.md §6.3)."""
