"""Lookup port (9100): history and table request parsing, reply rows, errors, end marker.

Owns the `[RequestID,][LH|LS,]...` row layouts (iqfeed-protocol.md §4.2, gotchas 5-7): tick,
interval and daily rows (High, Low, Open, Close order), `SLM`/`STC`/`SST`/symbol rows, the
`E,...` error lines each followed by `!ENDMSG!,`, and parsing of the H* / S* commands'
parameter lists into typed requests (never raising: bad input becomes a `LookupFailure`).

Every ID column of a table row is an unsigned decimal integer, as clients written against
IQConnect parse it (pyiqfeed `read_uint64`, the C# client `int.Parse`, trade-frame `qi::uint_`).
Trade conditions are the one code with two spellings: messages carry them as concatenated
two-hex-digit pairs (`873D17` in `Most Recent Trade Conditions` and history `TradeConditions`),
while the `STC` table that names them lists each as a decimal ID (0x0A -> `10,BUNCHEDSOLD,...`;
IQFeed4j's DTN-derived schema: "The trade condition ID in decimal"). `SBS`/`SBN` rows start with
the SIC/NAICS code that matched, then the `SBF` columns (pyiqfeed, the C# client, IQFeed4j).

Real rows end with a trailing comma (the real 6.1 tick file does); the C# `LH` fixture lacks
it, so we follow the real data and emit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from feed_sim.protocol.codes import ListedMarket, SecurityType, TradeCondition
from feed_sim.protocol.system import Protocol
from feed_sim.protocol.timefmt import (
    history_datetime,
    history_datetime_micro,
    parse_compact_datetime,
    yyyy_mm_dd,
)

TAG_HISTORY = "LH"
TAG_SYMBOLS = "LS"

NO_DATA = "!NO_DATA!,"
"""Body of `E,!NO_DATA!,,` (SEEN with two commas)."""
SYNTAX_ERROR = "!SYNTAX_ERROR!"
INVALID_SYMBOL = "Invalid symbol."
"""INFERRED wording: trade-frame matches the prefix `E,Invalid symbol`; the final period follows
'Unauthorized user ID.' and 'Invalid number of parameters.'."""
INVALID_PARAMETER_COUNT = "Invalid number of parameters."
TOO_MANY_REQUESTS = "Too many simultaneous history requests"
UNAUTHORIZED = "Unauthorized user ID."


def reply_prefix(protocol: Protocol, request_id: str, tag: str) -> str:
    """'[RequestID,][tag,]': the tag only from protocol 6.2 on (gotcha 6)."""
    prefix = f"{request_id}," if request_id else ""
    if protocol.at_least(Protocol.V6_2):
        prefix += f"{tag},"
    return prefix


def _encode(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def render_end(request_id: str = "") -> bytes:
    """`[RequestID,]!ENDMSG!,` (no data-type tag)."""
    return _encode(f"{request_id + ',' if request_id else ''}!ENDMSG!,\r\n")


def render_error(text: str, request_id: str = "") -> bytes:
    """`[RequestID,]E,<text>,` followed by the end message (errors always come with it)."""
    rid = f"{request_id}," if request_id else ""
    return _encode(f"{rid}E,{text},\r\n") + render_end(request_id)


def render_tick_row(
    prefix: str,
    protocol: Protocol,
    ts_ns: int,
    last: float,
    last_size: int,
    total_volume: int,
    bid: float,
    ask: float,
    tick_id: int,
    basis: str,
    market_center: int,
    conditions: str,
    aggressor: int,
    day_code: int,
    precision: int = 4,
) -> bytes:
    """`YYYY-MM-DD HH:MM:SS.ffffff,Last,LastSize,TotalVolume,Bid,Ask,TickID,Basis,MC,Conditions,
    [Aggressor,DayCode,]` (the last two from 6.1 on)."""
    p = f"%.{precision}f"
    tail = f"{aggressor},{day_code}," if protocol.at_least(Protocol.V6_1) else ""
    return _encode(
        f"{prefix}{history_datetime_micro(ts_ns)},{p % last},{last_size},{total_volume},"
        f"{p % bid},{p % ask},{tick_id},{basis},{market_center},{conditions},{tail}\r\n"
    )


def render_interval_row(
    prefix: str,
    ts_ns: int,
    high: float,
    low: float,
    open_: float,
    close: float,
    total_volume: int,
    period_volume: int,
    number_of_trades: int = 0,
    precision: int = 4,
) -> bytes:
    """`YYYY-MM-DD HH:MM:SS,High,Low,Open,Close,TotalVolume,PeriodVolume,NumberOfTrades,`."""
    p = f"%.{precision}f"
    return _encode(
        f"{prefix}{history_datetime(ts_ns)},{p % high},{p % low},{p % open_},{p % close},"
        f"{total_volume},{period_volume},{number_of_trades},\r\n"
    )


def render_daily_row(
    prefix: str,
    day_ns: int,
    high: float,
    low: float,
    open_: float,
    close: float,
    period_volume: int,
    open_interest: int = 0,
    precision: int = 4,
) -> bytes:
    """`YYYY-MM-DD,High,Low,Open,Close,PeriodVolume,OpenInterest,` (daily/weekly/monthly)."""
    p = f"%.{precision}f"
    return _encode(
        f"{prefix}{yyyy_mm_dd(day_ns)},{p % high},{p % low},{p % open_},{p % close},"
        f"{period_volume},{open_interest},\r\n"
    )


def render_listed_market_row(prefix: str, market: ListedMarket) -> bytes:
    """`SLM` row: `ID,Short,Long,GroupID,GroupShort,`."""
    m = market
    return _encode(
        f"{prefix}{m.market_id},{m.short_name},{m.long_name},{m.group_id},{m.group_short},\r\n"
    )


def render_trade_condition_row(prefix: str, condition: TradeCondition) -> bytes:
    """`STC` row: `ID,Short,Long,`, the ID in decimal (hex `0A` is `10`; module docstring)."""
    c = condition
    return _encode(f"{prefix}{c.condition_id},{c.short_name},{c.description},\r\n")


def render_code_row(prefix: str, code: str, description: str) -> bytes:
    """`SSC` / `SNC` row: `Code,Description,` (the SIC or NAICS code, its title unquoted; a
    title may hold commas, which clients join back: pyiqfeed's TableConn). INFERRED: which
    lists IQConnect serves is not documented; feed_sim serves the SIC 1987 industries and the
    NAICS 2022 national industries (feed_sim/data/README.md)."""
    return _encode(f"{prefix}{code},{description},\r\n")


def render_security_type_row(prefix: str, security_type: SecurityType) -> bytes:
    """`SST` row: `ID,Short,Long,`."""
    t = security_type
    return _encode(f"{prefix}{t.type_id},{t.short_name},{t.long_name},\r\n")


def render_symbol_row(
    prefix: str, symbol: str, listed_market: int, security_type: int, description: str
) -> bytes:
    """Symbol search row: `Symbol,ListedMarketID,SecurityTypeID,Description,` (unquoted)."""
    return _encode(f"{prefix}{symbol},{listed_market},{security_type},{description},\r\n")


def render_symbol_by_code_row(
    prefix: str, code: int, symbol: str, listed_market: int, security_type: int, description: str
) -> bytes:
    """`SBS`/`SBN` row: `Code,Symbol,ListedMarketID,SecurityTypeID,Description,`, the code
    being the symbol's SIC (`SBS`) or NAICS (`SBN`) code that matched the search."""
    return render_symbol_row(f"{prefix}{code},", symbol, listed_market, security_type, description)


class HistoryKind(StrEnum):
    """Which row layout a history request answers with."""

    TICK = "tick"
    INTERVAL = "interval"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


_PARAMS: dict[str, tuple[str, ...]] = {
    "HTX": ("symbol", "max", "direction", "rid", "per_send"),
    "HTD": ("symbol", "days", "max", "bfilter", "efilter", "direction", "rid", "per_send"),
    "HTT": ("symbol", "begin", "end", "max", "bfilter", "efilter", "direction", "rid", "per_send"),
    "HIX": ("symbol", "interval", "max", "direction", "rid", "per_send", "itype", "label"),
    "HID": (
        "symbol",
        "interval",
        "days",
        "max",
        "bfilter",
        "efilter",
        "direction",
        "rid",
        "per_send",
        "itype",
        "label",
    ),
    "HIT": (
        "symbol",
        "interval",
        "begin",
        "end",
        "max",
        "bfilter",
        "efilter",
        "direction",
        "rid",
        "per_send",
        "itype",
        "label",
    ),
    "HDX": ("symbol", "max", "direction", "rid", "per_send"),
    "HDT": ("symbol", "begin_date", "end_date", "max", "direction", "rid", "per_send"),
    "HWX": ("symbol", "max", "direction", "rid", "per_send"),
    "HMX": ("symbol", "max", "direction", "rid", "per_send"),
}

HISTORY_COMMANDS = frozenset(_PARAMS)

_KINDS = {
    "HT": HistoryKind.TICK,
    "HI": HistoryKind.INTERVAL,
    "HD": HistoryKind.DAILY,
    "HW": HistoryKind.WEEKLY,
    "HM": HistoryKind.MONTHLY,
}


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """A parsed H* request. Times are ns (Eastern wall clock converted); filters are seconds
    of the day; None means 'not given'."""

    command: str
    symbol: str
    request_id: str = ""
    max_datapoints: int | None = None
    oldest_first: bool = False
    datapoints_per_send: int | None = None
    days: int | None = None
    begin_ns: int | None = None
    end_ns: int | None = None
    begin_filter_s: int | None = None
    end_filter_s: int | None = None
    interval: int | None = None
    interval_type: str = "s"
    label_at_beginning: bool = False

    @property
    def kind(self) -> HistoryKind:
        return _KINDS[self.command[:2]]


@dataclass(frozen=True, slots=True)
class LookupFailure:
    """A request that cannot be served: reply `render_error(text, request_id)`."""

    text: str
    request_id: str = ""

    def render(self) -> bytes:
        return render_error(self.text, self.request_id)


class _BadParameter(Exception):
    pass


_LAST_NS_IN_SECOND = 999_999_999
"""Added to HH:MM:59 to reach the last nanosecond of a day (an inclusive date-only end)."""


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _int(text: str, *, minimum: int = 0) -> int | None:
    if text == "":
        return None
    if not _is_digits(text) or len(text) > 18 or int(text) < minimum:
        raise _BadParameter(text)
    return int(text)


def _flag(text: str) -> bool:
    if text in ("", "0"):
        return False
    if text == "1":
        return True
    raise _BadParameter(text)


def _filter_time(text: str) -> int | None:
    if text == "":
        return None
    if len(text) != 6 or not _is_digits(text):
        raise _BadParameter(text)
    h, m, s = int(text[0:2]), int(text[2:4]), int(text[4:6])
    if h > 23 or m > 59 or s > 59:
        raise _BadParameter(text)
    return h * 3_600 + m * 60 + s


def _datetime(text: str, *, with_time: bool, end: bool = False) -> int | None:
    """ns of a `CCYYMMDD[ HHmmSS]` parameter; a date alone as an `end` covers its whole day
    (`HDT,IBM,20240304,20240304` is that day's bar)."""
    if text == "":
        return None
    day, _, clock = text.partition(" ")
    if len(day) != 8 or not _is_digits(day) or (clock and not with_time):
        raise _BadParameter(text)
    if clock and _filter_time(clock) is None:
        raise _BadParameter(text)
    try:
        if end and not clock:
            return parse_compact_datetime(f"{day} 235959") + _LAST_NS_IN_SECOND
        return parse_compact_datetime(text)
    except (ValueError, OverflowError) as exc:
        raise _BadParameter(text) from exc


def parse_history_request(fields: list[str]) -> HistoryRequest | LookupFailure:
    """Parse `HTX,...` etc. already split on commas (fields[0] is the command)."""
    command = fields[0]
    names = _PARAMS.get(command)
    if names is None:
        return LookupFailure(SYNTAX_ERROR)
    args = dict(zip(names, (f.strip() for f in fields[1:]), strict=False))
    rid = args.get("rid", "")
    if len(fields) - 1 > len(names):
        return LookupFailure(INVALID_PARAMETER_COUNT, rid)
    if not args.get("symbol"):
        return LookupFailure(SYNTAX_ERROR, rid)
    try:
        interval = _int(args.get("interval", ""), minimum=1)
        if "interval" in names and interval is None:
            raise _BadParameter("interval")
        itype = args.get("itype", "") or "s"
        if itype not in ("s", "v", "t"):
            raise _BadParameter(itype)  # must be lowercase (gotcha 25)
        return HistoryRequest(
            command=command,
            symbol=args["symbol"].upper(),
            request_id=rid,
            max_datapoints=_int(args.get("max", "")),
            oldest_first=_flag(args.get("direction", "")),
            datapoints_per_send=_int(args.get("per_send", ""), minimum=1),
            days=_int(args.get("days", "")),
            begin_ns=_datetime(args.get("begin", ""), with_time=True)
            if "begin" in args
            else _datetime(args.get("begin_date", ""), with_time=False),
            end_ns=_datetime(args.get("end", ""), with_time=True, end=True)
            if "end" in args
            else _datetime(args.get("end_date", ""), with_time=False, end=True),
            begin_filter_s=_filter_time(args.get("bfilter", "")),
            end_filter_s=_filter_time(args.get("efilter", "")),
            interval=interval,
            interval_type=itype,
            label_at_beginning=_flag(args.get("label", "")),
        )
    except _BadParameter:
        return LookupFailure(SYNTAX_ERROR, rid)


TABLE_COMMANDS = frozenset({"SLM", "STC", "SST", "SSC", "SNC"})
SEARCH_COMMANDS = frozenset({"SBF", "SBS", "SBN"})


@dataclass(frozen=True, slots=True)
class TableRequest:
    """`SLM`/`STC`/`SST`/`SSC`/`SNC` with an optional request id."""

    command: str
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class SymbolSearchRequest:
    """`SBF,[s|d],<search>,[e|t],<filter values>,[RequestID]`; `SBS`/`SBN,<digits>,[RequestID]`
    find the symbols whose SIC/NAICS code starts with the digits (IQFeed4j: "at least the first
    2 digits of an existing code")."""

    command: str
    search: str
    field: str = "s"
    filter_type: str = ""
    filter_values: tuple[str, ...] = ()
    request_id: str = ""


def parse_symbol_request(
    fields: list[str],
) -> TableRequest | SymbolSearchRequest | LookupFailure:
    """Parse an S* lookup command already split on commas."""
    command = fields[0]
    args = [f.strip() for f in fields[1:]]
    if command in TABLE_COMMANDS:
        if len(args) > 1:
            return LookupFailure(INVALID_PARAMETER_COUNT, args[0])
        return TableRequest(command, args[0] if args else "")
    if command == "SBF":
        if len(args) > 5:
            return LookupFailure(INVALID_PARAMETER_COUNT, args[4])
        padded = [*args, "", "", "", "", ""]
        field, search, ftype, fvalues, rid = padded[:5]
        if field not in ("s", "d") or not search or ftype not in ("", "e", "t"):
            return LookupFailure(SYNTAX_ERROR, rid)
        return SymbolSearchRequest("SBF", search, field, ftype, tuple(fvalues.split()), rid)
    if command in SEARCH_COMMANDS:
        if len(args) > 2:
            return LookupFailure(INVALID_PARAMETER_COUNT, args[1])
        search, rid = [*args, "", ""][:2]
        if not search:
            return LookupFailure(SYNTAX_ERROR, rid)
        return SymbolSearchRequest(command, search, request_id=rid)
    return LookupFailure(SYNTAX_ERROR)
