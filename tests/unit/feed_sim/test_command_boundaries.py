"""Where client commands end without a terminator: merged commands split only where the
grammar is certain (feed_sim.protocol.merged_commands), the splitter taking a command as soon as
the next one starts, and `CommandInput`'s idle rule (feed_sim.protocol.lines)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feed_sim.protocol.commands import (
    NO_ARGUMENT_SYSTEM_COMMANDS,
    SetProtocol,
    Unknown,
    UnwatchAll,
    Watch,
    parse_level1,
)
from feed_sim.protocol.lines import LineSplitter
from feed_sim.protocol.merged_commands import merged_commands
from feed_sim.protocol.system import Protocol
from feed_sim.server.command_input import CommandInput

PORTS = ("level1", "level2", "admin", "lookup")


@pytest.mark.parametrize(
    ("port", "merged", "commands"),
    [
        ("level1", b"S,UNWATCH ALLwAAPL", [b"S,UNWATCH ALL", b"wAAPL"]),
        ("level1", b"S,SET PROTOCOL,6.2w@ES#", [b"S,SET PROTOCOL,6.2", b"w@ES#"]),
        ("level1", b"wAAPLtMSFTrIBMfSPY", [b"wAAPL", b"tMSFT", b"rIBM", b"fSPY"]),
        ("level1", b"wAAPLS,REQUEST WATCHES", [b"wAAPL", b"S,REQUEST WATCHES"]),
        ("level1", b"s,timestampsoffS,NEWSON", [b"s,timestampsoff", b"S,NEWSON"]),
        ("level1", b"TwAAPL", [b"T", b"wAAPL"]),
        ("level2", b"S,SET PROTOCOL,6.2WOR,AAPL", [b"S,SET PROTOCOL,6.2", b"WOR,AAPL"]),
        ("level2", b"wAAPLmGSCO", [b"wAAPL", b"mGSCO"]),
        ("level2", b"S,UNWATCH ALLWPL,MSFT,3", [b"S,UNWATCH ALL", b"WPL,MSFT,3"]),
        ("lookup", b"SLMSST,R", [b"SLM", b"SST,R"]),
        ("lookup", b"S,SET PROTOCOL,6.1HTX,AAPL,5", [b"S,SET PROTOCOL,6.1", b"HTX,AAPL,5"]),
        ("admin", b"S,CLIENTSTATS ONS,REQUEST STATS", [b"S,CLIENTSTATS ON", b"S,REQUEST STATS"]),
    ],
)
def test_certain_boundaries_are_split(port: str, merged: bytes, commands: list[bytes]) -> None:
    assert merged_commands(port).split(merged) == commands


@pytest.mark.parametrize(
    ("port", "line"),
    [
        ("level1", b"waapltmsft"),  # lower-case symbols: where would they end?
        ("level1", b"S,SET CLIENT NAME,wAAPL"),
        ("level1", b"S,SELECT UPDATE FIELDS,Symbol,Bid"),
        ("level1", b"wS,X"),
        ("level1", b"S,SET PROTOCOL,6."),
        ("level2", b"WOR,AAPLWOR,MSFT"),  # is AAPLWOR a symbol?
        ("level2", b"WPL,AAPLS,5"),
        ("lookup", b"HTX,AAPL,10HTX,AAPL"),  # request ids and symbols are free text
        ("lookup", b"STC,TCSLM"),
        ("admin", b"S,SET LOGINID,wAAPL"),
    ],
)
def test_uncertain_boundaries_are_left_alone(port: str, line: bytes) -> None:
    assert merged_commands(port).split(line) == [line]


@pytest.mark.parametrize("port", PORTS)
def test_no_argument_commands_end_before_any_start(port: str) -> None:
    starts = {b"S,REQUEST WATCHES"}
    starts |= {b"wAAPL"} if port in ("level1", "level2") else set()
    starts |= {b"HTX,AAPL,5", b"SLM"} if port == "lookup" else set()
    for name in NO_ARGUMENT_SYSTEM_COMMANDS[port]:
        for start in starts:
            command = b"S," + name.encode()
            assert merged_commands(port).split(command + start) == [command, start]


@given(st.sampled_from(PORTS), st.binary(max_size=200))
def test_splitting_never_loses_or_adds_a_byte(port: str, data: bytes) -> None:
    assert b"".join(merged_commands(port).split(data)) == data


def test_a_command_is_taken_when_the_next_one_starts() -> None:
    splitter = LineSplitter("level1")
    assert splitter.feed(b"S,UNWATCH ALL") == []
    assert splitter.feed(b"w") == []  # `w` alone may still be part of something else
    assert splitter.feed(b"AA") == ["S,UNWATCH ALL"]
    assert splitter.feed(b"PL\n") == ["wAAPL"]
    assert splitter.buffered == 0
    assert [parse_level1(c) for c in ("S,UNWATCH ALL", "wAAPL")] == [UnwatchAll(), Watch("AAPL")]


def test_flush_takes_the_pending_commands() -> None:
    splitter = LineSplitter("level1")
    assert splitter.feed(b"wAAPL\r\nS,SET PROTOCOL,6.2") == ["wAAPL"]
    assert splitter.flush() == ["S,SET PROTOCOL,6.2"]
    assert splitter.feed(b"wIBMwMSFT") == ["wIBM"]
    assert splitter.flush() == ["wMSFT"]
    assert splitter.flush() == []


def _run_input(chunks: list[bytes], *, end: bool = False) -> list[str]:
    """Feed chunks to a CommandInput on a real loop; the commands delivered once the idle
    rule (or end of input) has taken the last one."""

    async def run() -> list[str]:
        delivered: list[str] = []
        done = asyncio.Event()

        def deliver(commands: list[str]) -> None:
            delivered.extend(commands)
            if not source.splitter.buffered:
                done.set()

        source = CommandInput("level1", deliver, idle_s=0.01)
        for chunk in chunks:
            source.feed(chunk)
        if end:
            source.end()
        await asyncio.wait_for(done.wait(), 10)
        source.close()
        return delivered

    return asyncio.run(run())


def test_an_idle_connection_completes_the_pending_command() -> None:
    assert _run_input([b"wAAPL\r\nS,SET PRO", b"TOCOL,6.2"]) == ["wAAPL", "S,SET PROTOCOL,6.2"]
    assert _run_input([b"S,UNWATCH ALL"], end=True) == ["S,UNWATCH ALL"]
    assert [parse_level1(c) for c in _run_input([b"S,SET PROTOCOL,6.2wIBM"])] == [
        SetProtocol("6.2", Protocol.V6_2),
        Watch("IBM"),
    ]


def test_unknown_stays_unknown() -> None:
    assert _run_input([b"wS,X"]) == ["wS,X"]
    assert parse_level1("wS,X") == Unknown("wS,X")
