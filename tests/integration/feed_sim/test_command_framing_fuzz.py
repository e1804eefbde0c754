"""Client commands with and without terminators, cut into packets at random, still answered
exactly as the same commands sent one by one with CRLF (iqfeed-protocol.md §1.2, gotcha 10;
feed_sim.protocol.lines). Seeded (`random.Random`), over real sockets.

A command left without a terminator is followed at once by the next one only when the grammar
makes the boundary certain (feed_sim.protocol.merged_commands); otherwise it ends its burst
and the client waits for the answers, so the idle rule has to complete it."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.feed_sim_server import RunningServer

from .conftest import LineClient

pytestmark = pytest.mark.integration

Connect = Callable[..., LineClient]
TERMINATORS = (b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r", b"")
SEEDS = (18, 1802, 180203)
COMMANDS_PER_SEED = 40


@dataclass(frozen=True)
class Command:
    text: str
    closed: bool
    """Complete once the next command's start follows, even without a terminator."""
    known_start: bool = True
    """Begins with a command start the server recognises in merged input."""
    reply_lines: int = 0
    """Lines of its reply on Level 1 (lookup replies end at `!ENDMSG!` or CURRENT PROTOCOL)."""


LOOKUP = (
    Command("S,SET PROTOCOL,6.1", closed=True),
    Command("S,SET PROTOCOL,6.2", closed=True),
    Command("SLM", closed=True),
    Command("STC", closed=True),
    Command("SSC", closed=True),
    Command("SST,T1", closed=False),
    Command("STC,TC", closed=False),
    Command("SBF,s,AAPL,,,S1", closed=False),
    Command("SBF,d,MICRO,,,S2", closed=False),
    Command("HTX,AAPL,5,1,H1", closed=False),
    Command("HTX,MSFT,3,0", closed=False),
    Command("HTT,AAPL,20240304 093000,20240304 093001,4,,,1,T1", closed=False),
    Command("HIX,MSFT,1,3,0,I1,,s", closed=False),
    Command("HDX,IBM,3", closed=False),
    Command("HWX,IBM,2,1,W1", closed=False),
    Command("HTX,BOGUS,5,1,E1", closed=False),
    Command("XYZ,1", closed=False, known_start=False),
)
LEVEL1 = (
    Command("wZZA", closed=True, reply_lines=1),
    Command("tZZB", closed=True, reply_lines=1),
    Command("S,REQUEST CURRENT UPDATE FIELDNAMES", closed=True, reply_lines=1),
    Command("S,REQUEST FUNDAMENTAL FIELDNAMES", closed=True, reply_lines=1),
    Command("S,REQUEST WATCHES", closed=True, reply_lines=1),
    Command("S,SET PROTOCOL,6.1", closed=True, reply_lines=2),
    Command("S,SET PROTOCOL,6.2", closed=True, reply_lines=2),
    Command("S,SELECT UPDATE FIELDS,Bid,Ask,TickID", closed=False, reply_lines=1),
    Command("S,SELECT UPDATE FIELDS,Last,Total Volume", closed=False, reply_lines=1),
    Command("S,SET LOG LEVELS,Admin,Debug", closed=False, reply_lines=1),
    Command("S,BOGUS", closed=False, reply_lines=1),
)


def _line(client: LineClient) -> bytes:
    raw = client.raw_line(10.0)
    assert raw is not None, "no reply line in time"
    return raw


def _lookup_reply(client: LineClient, command: Command) -> bytes:
    """One command's whole reply on a lookup connection, sent alone with CRLF."""
    client.send(command.text)
    lines = [_line(client)]
    while not (lines[-1].startswith(b"S,CURRENT PROTOCOL,") or b"!ENDMSG!," in lines[-1]):
        lines.append(_line(client))
    return b"".join(lines)


def _level1_reply(client: LineClient, command: Command) -> bytes:
    client.send(command.text)
    return b"".join(_line(client) for _ in range(command.reply_lines))


def _quiet_level1(client: LineClient) -> None:
    """Greeting read, timestamps off: from here on only answers arrive."""
    client.send("S,TIMESTAMPSOFF")
    client.sync()


def _read_exactly(client: LineClient, size: int) -> bytes:
    """`size` bytes from the socket, or fewer if they do not come within 10 s."""
    deadline = time.monotonic() + 10.0
    data = b""
    while len(data) < size and (remaining := deadline - time.monotonic()) > 0:
        client.sock.settimeout(remaining)
        try:
            chunk = client.sock.recv(size - len(data))
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _bursts(rng: random.Random, commands: list[Command]) -> list[list[bytes]]:
    """The commands framed at random and grouped into what the client sends before waiting
    for the answers: a command without terminator ends its burst unless it is closed and the
    next one starts in a way the server recognises."""
    bursts: list[list[bytes]] = [[]]
    for i, command in enumerate(commands):
        end = rng.choice(TERMINATORS)
        bursts[-1].append(command.text.encode() + end)
        following = commands[i + 1] if i + 1 < len(commands) else None
        certain = command.closed and following is not None and following.known_start
        if following is not None and ((end == b"" and not certain) or rng.random() < 0.3):
            bursts.append([])
    return bursts


def _send_in_packets(rng: random.Random, client: LineClient, data: bytes) -> list[int]:
    """Send `data` cut at up to three random places, each piece its own write; the cuts."""
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 3))))
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        client.sock.sendall(data[start:end])
    return cuts


def _fuzz(
    seed: int,
    pool: tuple[Command, ...],
    fuzzed: LineClient,
    reply: Callable[[Command], bytes],
) -> None:
    rng = random.Random(seed)
    commands = [rng.choice(pool) for _ in range(COMMANDS_PER_SEED)]
    expected = [reply(command) for command in commands]  # one by one, with CRLF
    fuzzed.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = 0
    for burst in _bursts(rng, commands):
        cuts = _send_in_packets(rng, fuzzed, b"".join(burst))
        want = b"".join(expected[done : done + len(burst)])
        got = _read_exactly(fuzzed, len(want))
        assert got == want, f"seed {seed}: burst {burst} cut at {cuts}"
        done += len(burst)
    assert done == len(commands)


@pytest.mark.parametrize("seed", SEEDS)
def test_lookup_commands_framed_at_random(feed: RunningServer, connect: Connect, seed: int) -> None:
    reference = connect(feed.port("lookup"))
    fuzzed = connect(feed.port("lookup"))
    _fuzz(seed, LOOKUP, fuzzed, lambda command: _lookup_reply(reference, command))


@pytest.mark.parametrize("seed", SEEDS)
def test_level1_commands_framed_at_random(feed: RunningServer, connect: Connect, seed: int) -> None:
    reference = connect(feed.port("level1"))
    fuzzed = connect(feed.port("level1"))
    _quiet_level1(reference)
    _quiet_level1(fuzzed)
    _fuzz(seed, LEVEL1, fuzzed, lambda command: _level1_reply(reference, command))
