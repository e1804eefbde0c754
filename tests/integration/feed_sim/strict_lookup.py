"""A lookup-port (9100) client that parses replies as strictly as third-party IQFeed clients do
(pyiqfeed `TableConn`/`LookupConn`/`HistoryConn`, the C# client's `*Message.Parse`, trade-frame's
`SymbolLookup` grammars, IQFeed4j's CSV mappers; iqfeed-protocol.md §4.2):

* every line ends with CRLF; every row starts with the request id when one was sent, then (from
  protocol 6.2) the data tag `LS`/`LH`, then the data, then a trailing comma;
* every ID, size, volume and count column is an unsigned decimal integer, names are non-empty,
  prices are decimals, times and dates have their exact formats;
* a reply ends with `[RequestID,]!ENDMSG!,` and nothing of it comes after that line; an error is
  the reply's only line before it: `[RequestID,]E,<text>,` (`E,!NO_DATA!,,`).

A grammar takes the data fields of one row (after id and tag, trailing empty field dropped) and
returns them typed, or raises `AssertionError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .conftest import LineClient

Row = list[object]
Grammar = Callable[[list[str]], Row]

_UINT = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]*)?")
_HEX_PAIRS = re.compile(r"(?:[0-9A-F]{2}){0,4}")
_TICK_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}")
_BAR_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SYMBOL = re.compile(r"[A-Z0-9@#.+\-=/^_$ ]+")


def uint(text: str) -> int:
    """An unsigned decimal integer (pyiqfeed checks `isdigit()` and reads a uint64)."""
    assert _UINT.fullmatch(text), f"not an unsigned integer: {text!r}"
    return int(text)


def decimal(text: str) -> float:
    assert _DECIMAL.fullmatch(text), f"not a decimal: {text!r}"
    return float(text)


def name(text: str) -> str:
    """A non-empty name without commas (trade-frame: `+(char_ - ',')`)."""
    assert text and "," not in text, f"empty name: {text!r}"
    return text


def matching(pattern: re.Pattern[str], text: str) -> str:
    assert pattern.fullmatch(text), f"{text!r} does not match {pattern.pattern}"
    return text


def _count(fields: list[str], n: int) -> None:
    assert len(fields) == n, f"{len(fields)} fields, expected {n}: {fields}"


def listed_market(fields: list[str]) -> Row:
    """`SLM`: ID, short name, long name, group ID, group short name."""
    _count(fields, 5)
    return [uint(fields[0]), name(fields[1]), name(fields[2]), uint(fields[3]), name(fields[4])]


def id_short_long(fields: list[str]) -> Row:
    """`SST` and `STC`: ID, short name, long name."""
    _count(fields, 3)
    return [uint(fields[0]), name(fields[1]), name(fields[2])]


def code_description(fields: list[str]) -> Row:
    """`SSC` and `SNC`: code, description. The one column that may hold commas (an industry
    title such as `CASH GRAINS, NOT ELSEWHERE CLASSIFIED`): pyiqfeed's TableConn joins every
    field after the code back together, so the description is the rest of the line."""
    assert len(fields) >= 2, fields
    title = ",".join(fields[1:])
    assert title.strip() and title == title.strip(), f"bad title: {title!r}"
    return [uint(fields[0]), title]


def symbol_row(fields: list[str]) -> Row:
    """`SBF`: symbol, listed market ID, security type ID, description (may hold commas)."""
    assert len(fields) >= 4, fields
    symbol = matching(_SYMBOL, fields[0])
    return [symbol, uint(fields[1]), uint(fields[2]), name(",".join(fields[3:]))]


def coded_symbol_row(fields: list[str]) -> Row:
    """`SBS`/`SBN`: the SIC/NAICS code, then the `SBF` columns."""
    assert len(fields) >= 5, fields
    return [uint(fields[0]), *symbol_row(fields[1:])]


def tick_row(protocol: str) -> Grammar:
    """HTX/HTD/HTT: time, last, size, total volume, bid, ask, TickID, basis, market center,
    conditions (hex pairs), and from 6.1 aggressor and day code."""
    since_61 = protocol >= "6.1"

    def parse(fields: list[str]) -> Row:
        _count(fields, 12 if since_61 else 10)
        row: Row = [
            matching(_TICK_TIME, fields[0]),
            decimal(fields[1]),
            uint(fields[2]),
            uint(fields[3]),
            decimal(fields[4]),
            decimal(fields[5]),
            uint(fields[6]),
            matching(re.compile(r"[CEOS]"), fields[7]),
            uint(fields[8]),
            matching(_HEX_PAIRS, fields[9]),
        ]
        if since_61:
            aggressor, day = uint(fields[10]), uint(fields[11])
            assert aggressor <= 3 and 1 <= day <= 31, fields
            row += [aggressor, day]
        return row

    return parse


def _bar_prices(fields: list[str]) -> list[float]:
    high, low, open_, close = (decimal(f) for f in fields)
    assert high >= max(open_, close) and low <= min(open_, close), fields
    return [high, low, open_, close]


def interval_row(fields: list[str]) -> Row:
    """HIX/HID/HIT: time, high, low, open, close, total volume, period volume, trades."""
    _count(fields, 8)
    volumes = [uint(f) for f in fields[5:8]]
    return [matching(_BAR_TIME, fields[0]), *_bar_prices(fields[1:5]), *volumes]


def daily_row(fields: list[str]) -> Row:
    """HDX/HDT/HWX/HMX: date, high, low, open, close, period volume, open interest."""
    _count(fields, 7)
    return [matching(_DAY, fields[0]), *_bar_prices(fields[1:5]), uint(fields[5]), uint(fields[6])]


@dataclass
class Reply:
    """One parsed lookup reply: typed rows, or the error text."""

    rows: list[Row] = field(default_factory=list)
    error: str | None = None


class StrictLookupClient:
    """Sends lookup requests and parses each reply strictly (module docstring)."""

    def __init__(self, client: LineClient, protocol: str) -> None:
        self.client = client
        self.protocol = protocol
        client.send(f"S,SET PROTOCOL,{protocol}")
        assert self._line() == f"S,CURRENT PROTOCOL,{protocol}"

    def _line(self) -> str:
        raw = self.client.raw_line()
        assert raw is not None, "the reply stopped before !ENDMSG!"
        assert raw.endswith(b"\r\n"), f"line not CRLF-terminated: {raw!r}"
        return raw[:-2].decode("latin-1")

    def request(self, command: str, grammar: Grammar, request_id: str = "") -> Reply:
        """Send `command` (its request id, if any, already in place) and parse the reply."""
        self.client.send(command)
        tag = "LH" if command.startswith("H") else "LS"
        head = [request_id] if request_id else []
        end = ",".join([*head, "!ENDMSG!", ""])
        reply = Reply()
        while (line := self._line()) != end:
            assert reply.error is None, f"a line after the error: {line!r}"
            fields = line.split(",")
            assert fields[: len(head)] == head, f"request id {request_id!r} not first: {line!r}"
            fields = fields[len(head) :]
            if fields[0] == "E":
                assert not reply.rows, f"an error after rows: {line!r}"
                reply.error = self._error(fields, line)
                continue
            if self.protocol >= "6.2":
                assert fields[0] == tag, f"no {tag} tag after the request id: {line!r}"
                fields = fields[1:]
            assert fields[-1] == "", f"no trailing comma: {line!r}"
            reply.rows.append(grammar(fields[:-1]))
        return reply

    @staticmethod
    def _error(fields: list[str], line: str) -> str:
        """`E,<text>,`, or `E,!NO_DATA!,,` (its SEEN form)."""
        expected_tail = ["", ""] if fields[1:2] == ["!NO_DATA!"] else [""]
        assert fields[2:] == expected_tail, f"malformed error line: {line!r}"
        assert fields[1], f"error without text: {line!r}"
        return fields[1]

    def nothing_left(self) -> None:
        """Nothing of a reply came after its end: the next line is the next request's."""
        self.client.send(f"S,SET PROTOCOL,{self.protocol}")
        assert self._line() == f"S,CURRENT PROTOCOL,{self.protocol}"
