"""Level 1 field catalogues and per-connection dynamic fieldsets.

Owns the 70 selectable update field names (iqfeed-protocol.md §2.3, exact spelling and order),
the default fieldset, the fundamental field names for protocol 6.1/6.2 and for 6.0 and earlier
(§2.6), each update field's wire format kind, and `Fieldset`: a validated list of names with a
precomputed render plan (an `itemgetter` over the per-symbol value list of `level1`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from operator import itemgetter


class FieldKind(StrEnum):
    """How a field's value is written on the wire."""

    TEXT = "text"
    HEX = "hex"  # Exchange ID: hexadecimal exchange group (gotcha 2)
    PRICE = "price"  # the symbol's decimal precision, e.g. "48.5100"
    DECIMAL = "decimal"  # a computed float (change, percent, yield...); two decimals, INFERRED
    INT = "int"
    MARKET_CENTER = "market_center"  # decimal listed-market id
    TIME_US = "time_us"  # HH:MM:SS.ffffff, US/Eastern
    DATE_MDY = "date_mdy"  # MM/DD/YYYY
    TICK = "tick"  # 173 up / 175 down / 183 unchanged


_K = FieldKind

UPDATE_FIELDS: tuple[tuple[str, FieldKind], ...] = (
    ("Symbol", _K.TEXT),
    ("Exchange ID", _K.HEX),
    ("Last", _K.PRICE),
    ("Change", _K.PRICE),
    ("Percent Change", _K.DECIMAL),
    ("Total Volume", _K.INT),
    ("High", _K.PRICE),
    ("Low", _K.PRICE),
    ("Bid", _K.PRICE),
    ("Ask", _K.PRICE),
    ("Bid Size", _K.INT),
    ("Ask Size", _K.INT),
    ("Tick", _K.TICK),
    ("Range", _K.PRICE),
    ("Open Interest", _K.INT),
    ("Open", _K.PRICE),
    ("Close", _K.PRICE),
    ("Spread", _K.PRICE),
    ("Settle", _K.PRICE),
    ("Delay", _K.INT),
    ("Restricted Code", _K.TEXT),
    ("Net Asset Value", _K.DECIMAL),
    ("Average Maturity", _K.DECIMAL),
    ("7 Day Yield", _K.DECIMAL),
    ("Extended Trading Change", _K.PRICE),
    ("Extended Trading Difference", _K.PRICE),
    ("Price-Earnings Ratio", _K.DECIMAL),
    ("Percent Off Average Volume", _K.DECIMAL),
    ("Bid Change", _K.PRICE),
    ("Ask Change", _K.PRICE),
    ("Change From Open", _K.PRICE),
    ("Market Open", _K.INT),
    ("Volatility", _K.DECIMAL),
    ("Market Capitalization", _K.DECIMAL),
    ("Fraction Display Code", _K.INT),
    ("Decimal Precision", _K.INT),
    ("Days to Expiration", _K.INT),
    ("Previous Day Volume", _K.INT),
    ("Open Range 1", _K.PRICE),
    ("Close Range 1", _K.PRICE),
    ("Open Range 2", _K.PRICE),
    ("Close Range 2", _K.PRICE),
    ("Number of Trades Today", _K.INT),
    ("VWAP", _K.PRICE),
    ("TickID", _K.INT),
    ("Financial Status Indicator", _K.TEXT),
    ("Settlement Date", _K.DATE_MDY),
    ("Bid Market Center", _K.MARKET_CENTER),
    ("Ask Market Center", _K.MARKET_CENTER),
    ("Available Regions", _K.TEXT),
    ("Last Size", _K.INT),
    ("Last Time", _K.TIME_US),
    ("Last Market Center", _K.MARKET_CENTER),
    ("Most Recent Trade", _K.PRICE),
    ("Most Recent Trade Size", _K.INT),
    ("Most Recent Trade Time", _K.TIME_US),
    ("Most Recent Trade Conditions", _K.TEXT),
    ("Most Recent Trade Market Center", _K.MARKET_CENTER),
    ("Extended Trade", _K.PRICE),
    ("Extended Trade Size", _K.INT),
    ("Extended Trade Time", _K.TIME_US),
    ("Extended Trade Market Center", _K.MARKET_CENTER),
    ("Message Contents", _K.TEXT),
    ("Ask Time", _K.TIME_US),
    ("Bid Time", _K.TIME_US),
    ("Last Date", _K.DATE_MDY),
    ("Extended Trade Date", _K.DATE_MDY),
    ("Most Recent Trade Date", _K.DATE_MDY),
    ("Most Recent Trade Aggressor", _K.INT),
    ("Most Recent Trade Day Code", _K.INT),
)

UPDATE_FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in UPDATE_FIELDS)
"""All 70 selectable names, in the order of `S,UPDATE FIELDNAMES` (6.1/6.2)."""

UPDATE_FIELD_KINDS: dict[str, FieldKind] = dict(UPDATE_FIELDS)

FIELD_INDEX: dict[str, int] = {name: i for i, name in enumerate(UPDATE_FIELD_NAMES)}
"""Name -> slot in a `Level1State.values` list (0-based position in UPDATE_FIELD_NAMES)."""

PROTOCOL_61_UPDATE_FIELDS = ("Most Recent Trade Aggressor", "Most Recent Trade Day Code")
"""The two names added in protocol 6.1; `update_field_names("6.0")` omits them."""

DEFAULT_FIELDSET_NAMES: tuple[str, ...] = (
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

FUNDAMENTAL_FIELD_NAMES_61: tuple[str, ...] = (
    "Symbol",
    "Exchange ID",
    "PE",
    "Average Volume",
    "52 Week High",
    "52 Week Low",
    "Calendar Year High",
    "Calendar Year Low",
    "Dividend Yield",
    "Dividend Amount",
    "Dividend Rate",
    "Pay Date",
    "Ex-dividend Date",
    "Current Year EPS",
    "Next Year EPS",
    "Five-year Growth Percentage",
    "Fiscal Year End",
    "Company Name",
    "Root Option Symbol",
    "Percent Held By Institutions",
    "Beta",
    "Leaps",
    "Current Assets",
    "Current Liabilities",
    "Balance Sheet Date",
    "Long-term Debt",
    "Common Shares Outstanding",
    "Split Factor 1",
    "Split Factor 2",
    "Format Code",
    "Precision",
    "SIC",
    "Historical Volatility",
    "Security Type",
    "Listed Market",
    "52 Week High Date",
    "52 Week Low Date",
    "Calendar Year High Date",
    "Calendar Year Low Date",
    "Year End Close",
    "Maturity Date",
    "Coupon Rate",
    "Expiration Date",
    "Strike Price",
    "NAICS",
    "Exchange Root",
    "Option Premium Multiplier",
    "Option Multiple Deliverable",
    "Session Open Time",
    "Session Close Time",
    "Base Currency",
    "Contract Size",
    "Contract Months",
    "Minimum Tick Size",
    "First Delivery Date",
    "FIGI",
    "Security SubType",
)
"""The 57 fundamental fields of protocol 6.1/6.2 (pyiqfeed's list, checked against the server)."""

RESERVED = "(Reserved)"

FUNDAMENTAL_FIELD_NAMES_60: tuple[str, ...] = (
    *FUNDAMENTAL_FIELD_NAMES_61[:13],
    RESERVED,
    RESERVED,
    RESERVED,
    "Short Interest",
    RESERVED,
    *FUNDAMENTAL_FIELD_NAMES_61[13:17],
    RESERVED,
    *FUNDAMENTAL_FIELD_NAMES_61[17:27],
    RESERVED,
    "Split Factor 1",
    "Split Factor 2",
    RESERVED,
    "Market Center",
    *FUNDAMENTAL_FIELD_NAMES_61[29:48],
)
"""The 57 fundamental fields of protocol 6.0 and earlier: pyiqfeed's pre-6.1 list (5.2.4.0+,
with Option Premium Multiplier / Option Multiple Deliverable). It matches the column positions
of the C# 6.0 fixture. Using it unchanged for 5.0/5.1 is INFERRED (4.x lacked the last three
columns)."""


class UnknownFieldError(ValueError):
    """A SELECT UPDATE FIELDS name that is not one of the 70 update fields."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    @property
    def error_text(self) -> str:
        """Text of the `E,<text>,` reply. INFERRED wording: no capture of this error exists."""
        return f"Invalid field name: {self.name}"


_Getter = Callable[[Sequence[str]], tuple[str, ...]]


class Fieldset:
    """A connection's `P`/`Q` layout: validated names plus a precomputed render plan.

    Names are validated against the protocol's list (6.0 and older lack the two 6.1 fields)
    and matched case-insensitively and reported with DTN's spelling (INFERRED). Symbol is
    always the first field: it is prepended when missing and moved to the front otherwise
    (DTN's DynamicFieldsets page via pyiqfeed). Duplicates are kept as sent (INFERRED).

    Fieldsets are interned: equal names give the same object (while one is in use), so
    equality and hashing are by identity, at C speed. The paced replay looks a fieldset up in
    dicts several times per message; a Python-level `__hash__` cost ~4% of its CPU.
    """

    __slots__ = ("__weakref__", "_getter", "_single", "indexes", "names")
    names: tuple[str, ...]
    indexes: tuple[int, ...]
    _single: bool
    _getter: _Getter

    def __new__(cls, names: Iterable[str], protocol: str = "6.2") -> Fieldset:
        allowed = _CANONICAL if protocol in ("6.1", "6.2") else _CANONICAL_60
        canonical: list[str] = []
        for raw in names:
            name = allowed.get(raw.strip().lower())
            if name is None:
                raise UnknownFieldError(raw.strip())
            if name != "Symbol":
                canonical.append(name)
        key = ("Symbol", *canonical)
        found = _INTERNED.get(key)
        if found is None:
            found = super().__new__(cls)
            found.names = key
            found.indexes = tuple(FIELD_INDEX[n] for n in key)
            found._single = len(found.indexes) == 1
            found._getter = itemgetter(*found.indexes)
            _INTERNED[key] = found
        return found

    def __init__(self, names: Iterable[str], protocol: str = "6.2") -> None:
        """Everything is set up in `__new__` (an interned fieldset is built once)."""

    def __reduce__(self) -> tuple[type[Fieldset], tuple[tuple[str, ...]]]:
        return Fieldset, (self.names,)

    def render(self, prefix: str, values: Sequence[str]) -> bytes:
        """`<prefix>,<v1>,<v2>,...,\\r\\n` with the values picked in this fieldset's order."""
        if self._single:
            return f"{prefix},{values[0]},\r\n".encode("latin-1", "replace")
        return (prefix + "," + ",".join(self._getter(values)) + ",\r\n").encode(
            "latin-1", "replace"
        )

    def __repr__(self) -> str:
        return f"Fieldset({list(self.names)!r})"


_INTERNED: weakref.WeakValueDictionary[tuple[str, ...], Fieldset] = weakref.WeakValueDictionary()
_CANONICAL = {name.lower(): name for name in UPDATE_FIELD_NAMES}
_CANONICAL_60 = {k: v for k, v in _CANONICAL.items() if v not in PROTOCOL_61_UPDATE_FIELDS}

DEFAULT_FIELDSET = Fieldset(DEFAULT_FIELDSET_NAMES)


def update_field_names(protocol: str) -> tuple[str, ...]:
    """Names listed by `S,UPDATE FIELDNAMES` for a protocol ('6.0' and older lack two)."""
    if protocol in ("6.1", "6.2"):
        return UPDATE_FIELD_NAMES
    return tuple(n for n in UPDATE_FIELD_NAMES if n not in PROTOCOL_61_UPDATE_FIELDS)


def fundamental_field_names(protocol: str) -> tuple[str, ...]:
    """Names of the `F` columns (and of `S,FUNDAMENTAL FIELDNAMES`) for a protocol."""
    return FUNDAMENTAL_FIELD_NAMES_61 if protocol in ("6.1", "6.2") else FUNDAMENTAL_FIELD_NAMES_60
