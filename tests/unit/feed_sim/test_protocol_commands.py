"""Client line splitting and command parsing, including fuzzing (never raises, bounded)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feed_sim.protocol import commands
from feed_sim.protocol.commands import (
    ClientStats,
    Connect,
    Disconnect,
    Key,
    MarketMakerName,
    News,
    Refresh,
    Regional,
    RegisterClientApp,
    RemoveClientApp,
    RequestAllUpdateFieldnames,
    RequestCurrentUpdateFieldnames,
    RequestFundamentalFieldnames,
    RequestStats,
    RequestTimestamp,
    RequestWatches,
    SelectUpdateFields,
    SetAutoconnect,
    SetClientName,
    SetLoginId,
    SetLogLevels,
    SetPassword,
    SetProtocol,
    SetSaveLoginInfo,
    SetTimestamps,
    Unknown,
    Unwatch,
    UnwatchAll,
    UnwatchDepth,
    Watch,
    WatchDepth,
    parse_admin,
    parse_level1,
    parse_level2,
    parse_lookup,
)
from feed_sim.protocol.fields import Fieldset, UnknownFieldError
from feed_sim.protocol.lines import LineSplitter
from feed_sim.protocol.lookup import HistoryRequest, LookupFailure, TableRequest
from feed_sim.protocol.system import Protocol

ENDINGS = [b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"]


@pytest.mark.parametrize("ending", ENDINGS)
def test_every_line_ending(ending: bytes) -> None:
    splitter = LineSplitter()
    data = b"S,SET PROTOCOL,6.2" + ending + b"wAAPL" + ending + b"S,TIMESTAMPSOFF" + ending
    assert splitter.feed(data) == ["S,SET PROTOCOL,6.2", "wAAPL", "S,TIMESTAMPSOFF"]
    assert splitter.buffered == 0


def test_byte_by_byte_and_unterminated_tail() -> None:
    splitter = LineSplitter()
    lines: list[str] = []
    for byte in b"wAAPL\r\n\r\nwMSFT\n\rS,UNWATCH ALL":
        lines += splitter.feed(bytes([byte]))
    assert lines == ["wAAPL", "wMSFT"]
    assert splitter.flush() == ["S,UNWATCH ALL"]
    assert splitter.flush() == []


def test_latin1_decoding() -> None:
    assert LineSplitter().feed(b"S,SET CLIENT NAME,caf\xe9\r\n") == ["S,SET CLIENT NAME,café"]


def test_overlong_lines_are_discarded_and_counted() -> None:
    splitter = LineSplitter(max_line=16)
    assert splitter.feed(b"x" * 10) == []
    assert splitter.feed(b"x" * 10) == []  # now 20 > 16: dropped, nothing buffered
    assert splitter.buffered == 0 and splitter.discarded == 1
    assert splitter.feed(b"yyy\r\nwAAPL\r\n") == ["wAAPL"]  # rest of the long line dropped too
    assert splitter.feed(b"z" * 17 + b"\nwIBM\n") == ["wIBM"]
    assert splitter.discarded == 2


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=200), max_size=30), st.integers(min_value=1, max_value=64))
def test_splitter_fuzz_bounded(chunks: list[bytes], max_line: int) -> None:
    splitter = LineSplitter(max_line=max_line)
    for chunk in chunks:
        for line in splitter.feed(chunk):
            assert line and "\r" not in line and "\n" not in line
            assert len(line) <= max_line
        assert splitter.buffered <= max_line


@given(st.lists(st.sampled_from(["wAAPL", "S,TIMESTAMPSOFF", "rMSFT"]), max_size=10), st.data())
def test_splitter_any_chunking_same_lines(lines: list[str], data: st.DataObject) -> None:
    payload = b"".join(line.encode() + data.draw(st.sampled_from(ENDINGS)) for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=5)))
    splitter = LineSplitter()
    out: list[str] = []
    for start, end in zip([0, *cuts], [*cuts, len(payload)], strict=True):
        out += splitter.feed(payload[start:end])
    assert out == lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("wAAPL", Watch("AAPL")),
        ("waapl ", Watch("AAPL")),
        ("tMSFT", Watch("MSFT", trades_only=True)),
        ("rAAPL", Unwatch("AAPL")),
        ("fAAPL", Refresh("AAPL")),
        ("T", RequestTimestamp()),
        ("S,TIMESTAMPSON", SetTimestamps(True)),
        ("S,TIMESTAMPSOFF", SetTimestamps(False)),
        ("S,REQUEST ALL UPDATE FIELDNAMES", RequestAllUpdateFieldnames()),
        ("S,REQUEST CURRENT UPDATE FIELDNAMES", RequestCurrentUpdateFieldnames()),
        ("S,REQUEST FUNDAMENTAL FIELDNAMES", RequestFundamentalFieldnames()),
        ("S,REQUEST WATCHES", RequestWatches()),
        ("S,UNWATCH ALL", UnwatchAll()),
        ("S,REGON,AAPL", Regional("AAPL", True)),
        ("S,REGOFF,AAPL", Regional("AAPL", False)),
        ("S,NEWSON", News(True)),
        ("S,NEWSOFF", News(False)),
        ("S,REQUEST STATS", RequestStats()),
        ("S,SET PROTOCOL,6.2", SetProtocol("6.2", Protocol.V6_2)),
        ("S,SET PROTOCOL,7.0", SetProtocol("7.0", None)),
        ("S,SET CLIENT NAME,ingest-1", SetClientName("ingest-1")),
        ("S,CONNECT", Connect()),
        ("S,DISCONNECT", Disconnect()),
        ("S,SET LOG LEVELS,Admin,Debug", SetLogLevels(("Admin", "Debug"))),
        ("S,KEY,99999", Key("99999")),
        ("S,SELECT UPDATE FIELDS,Bid,Ask", SelectUpdateFields(("Bid", "Ask"))),
        ("S,TEST", Unknown("S,TEST")),
        ("xAAPL", Unknown("xAAPL")),
        ("w", Unknown("w")),
        ("WOR,AAPL", Unknown("WOR,AAPL")),
    ],
)
def test_level1_commands(line: str, expected: object) -> None:
    assert parse_level1(line) == expected


def test_level1_replies_from_commands() -> None:
    set_protocol = parse_level1("S,SET PROTOCOL,6.2")
    assert isinstance(set_protocol, SetProtocol)
    assert set_protocol.reply() == b"S,CURRENT PROTOCOL,6.2\r\n"
    bad = parse_level1("S,SET PROTOCOL,9.9")
    assert isinstance(bad, SetProtocol) and bad.reply() == b"E,9.9 is not a valid protocol.,\r\n"
    unknown = parse_level1("S,TEST")
    assert isinstance(unknown, Unknown) and unknown.reply == b"E,!SYNTAX_ERROR!,\r\n"
    select = parse_level1("S,SELECT UPDATE FIELDS,Bid,Bogus")
    assert isinstance(select, SelectUpdateFields)
    assert isinstance(select.build(Protocol.V6_2), UnknownFieldError)
    good = parse_level1("S,SELECT UPDATE FIELDS,Bid,Ask,")
    assert isinstance(good, SelectUpdateFields)
    assert good.build(Protocol.V6_2) == Fieldset(["Symbol", "Bid", "Ask"])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("WOR,AAPL", WatchDepth("AAPL", "order")),
        ("ROR,AAPL", UnwatchDepth("AAPL", "order")),
        ("WPL,@ESZ22", WatchDepth("@ESZ22", "price")),
        ("WPL,@ESZ22,10", WatchDepth("@ESZ22", "price", 10)),
        ("RPL,@ESZ22", UnwatchDepth("@ESZ22", "price")),
        ("wAAPL", WatchDepth("AAPL", "market_maker")),
        ("rAAPL", UnwatchDepth("AAPL", "any")),
        ("mMD02", MarketMakerName("MD02")),
        ("c", Connect()),
        ("x", Disconnect()),
        ("S,TIMESTAMPSOFF", SetTimestamps(False)),
        ("S,SET PROTOCOL,6.2", SetProtocol("6.2", Protocol.V6_2)),
        ("S,REQUEST WATCHES", RequestWatches()),
        ("S,UNWATCH ALL", UnwatchAll()),
        ("WPL,@ESZ22,ten", Unknown("WPL,@ESZ22,ten")),
        ("WOR,", Unknown("WOR,")),
        ("S,NEWSON", Unknown("S,NEWSON")),
    ],
)
def test_level2_commands(line: str, expected: object) -> None:
    assert parse_level2(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("S,REGISTER CLIENT APP,MYAPP,1.0", RegisterClientApp("MYAPP", "1.0")),
        ("S,REGISTER CLIENT APP,MYAPP", RegisterClientApp("MYAPP")),
        ("S,REMOVE CLIENT APP,MYAPP,1.0", RemoveClientApp("MYAPP", "1.0")),
        ("S,SET LOGINID,490914", SetLoginId("490914")),
        ("S,SET PASSWORD,secret", SetPassword("secret")),
        ("S,SET SAVE LOGIN INFO,On", SetSaveLoginInfo(True)),
        ("S,SET SAVE LOGIN INFO,Off", SetSaveLoginInfo(False)),
        ("S,SET AUTOCONNECT,On", SetAutoconnect(True)),
        ("S,SET AUTOCONNECT,OFF", SetAutoconnect(False)),
        ("S,SET AUTOCONNECT,maybe", Unknown("S,SET AUTOCONNECT,maybe")),
        ("S,CLIENTSTATS ON", ClientStats(True)),
        ("S,CLIENTSTATS OFF", ClientStats(False)),
        ("S,CLIENTSTATS,ON", Unknown("S,CLIENTSTATS,ON")),
        ("S,CONNECT", Connect()),
        ("S,DISCONNECT", Disconnect()),
        ("S,SET PROTOCOL,6.2", SetProtocol("6.2", Protocol.V6_2)),
        ("wAAPL", Unknown("wAAPL")),
    ],
)
def test_admin_commands(line: str, expected: object) -> None:
    assert parse_admin(line) == expected


def test_lookup_commands() -> None:
    assert isinstance(parse_lookup("HTX,AAPL,100,1,R1,50"), HistoryRequest)
    assert parse_lookup("SLM,X") == TableRequest("SLM", "X")
    assert parse_lookup("S,SET PROTOCOL,6.2") == SetProtocol("6.2", Protocol.V6_2)
    failure = parse_lookup("S,TEST")
    assert isinstance(failure, LookupFailure)
    assert failure.render() == b"E,!SYNTAX_ERROR!,\r\n!ENDMSG!,\r\n"
    assert parse_lookup("XYZ,1") == LookupFailure("!SYNTAX_ERROR!")


VALID = [
    "wAAPL",
    "S,SELECT UPDATE FIELDS,Symbol,Bid,Ask",
    "S,SET PROTOCOL,6.2",
    "WPL,@ESZ22,10",
    "S,REGISTER CLIENT APP,MYAPP,1.0",
    "S,SET AUTOCONNECT,On",
    "HIT,APPL,5,20000101 093000,20010101 160000,25000,093000,160000,1,TEST,15000,s,0",
    "HTT,SPY,20210101 093000,20210102 160000,100,093000,160000,0,R,10",
    "SBF,s,AAPL,t,1,",
]
PARSERS = [parse_level1, parse_level2, parse_admin, parse_lookup]
# the unguarded internals too, so the defensive `except` in the public parsers hides no bug
UNGUARDED: list[Callable[[str], object]] = [commands._parse_level1, commands._parse_level2]
UNGUARDED += [commands._parse_admin, commands._parse_lookup]


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_parsers_never_raise_on_text(line: str) -> None:
    for parse in PARSERS:
        parse(line)
    if line.strip():
        for unguarded in UNGUARDED:
            unguarded(line)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_parsers_never_raise_on_decoded_bytes(raw: bytes) -> None:
    for line in LineSplitter().feed(raw + b"\n"):
        for parse in PARSERS:
            parse(line)


@given(st.sampled_from(VALID), st.data())
def test_parsers_never_raise_on_truncated_or_mutated_valid_lines(
    line: str, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(line)))
    insert = data.draw(st.text(max_size=3))
    mutated = line[:cut] + insert + line[cut + data.draw(st.integers(0, 3)) :]
    for candidate in (line[:cut], mutated):
        for parse in PARSERS:
            parse(candidate)
        if candidate.strip():
            for unguarded in UNGUARDED:
                unguarded(candidate)
