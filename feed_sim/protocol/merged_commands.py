"""Where one client command ends and the next begins when no terminator separates them.

A client that leaves a command unterminated and sends the next one at once gives the server
one run of bytes: `S,UNWATCH ALLwAAPL`, `S,SET PROTOCOL,6.2w@ES#`. `MergedCommands` splits such
a run only where the grammar makes the boundary certain: a command is complete where a known
command start of the port follows directly after

1. a command without arguments: the port's `S,<NAME>` commands (`S,UNWATCH ALL`,
   `S,TIMESTAMPSOFF`, ...; the name in any case), a bare `T`, Level 2's `c`/`x`, and the
   lookup tables `SLM`/`SST`/`STC`/`SSC`/`SNC` without a request id;
2. `S,SET PROTOCOL,<digits>.<digits>`;
3. a one-symbol command with an upper-case symbol: `w`/`t`/`r`/`f` on Level 1, `w`/`r`/`m` on
   Level 2. Symbols have no lower-case letters and no commas, so the symbol ends where a
   lower-case command letter followed by an upper-case symbol, or `S,`, begins
   (`wAAPLtMSFT`, `wAAPLS,REQUEST WATCHES`).

Known starts: `S,` on every port; Level 1 `w`/`t`/`r`/`f` and Level 2 `w`/`r`/`m`, each
followed by an upper-case letter, a digit or `@`; Level 2 `WOR,`/`WPL,`/`ROR,`/`RPL,`; the
lookup port's `H??,` history verbs, `SBF,`/`SBS,`/`SBN,` and the five tables.

Nothing else is split, because free text or upper-case arguments make a boundary a guess:
`WOR,AAPLWOR,MSFT` (is `AAPLWOR` a symbol?), history and symbol searches (request ids are free
text), `S,SET CLIENT NAME,...`, `S,SELECT UPDATE FIELDS,...`. Such a command is complete at its
terminator or when the connection idles (`feed_sim.protocol.lines`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from feed_sim.protocol.commands import NO_ARGUMENT_SYSTEM_COMMANDS
from feed_sim.protocol.lookup import HISTORY_COMMANDS, SEARCH_COMMANDS, TABLE_COMMANDS

_SYSTEM_START = rb"[Ss],"
_SET_PROTOCOL = rb"(?i:S,SET PROTOCOL,)\d+\.\d+"
_SYMBOL_START = rb"[A-Z0-9@]"
_SYMBOL_TAIL = rb"[^a-z,\r\n]*?"
"""The rest of an upper-case symbol, as short as the next start allows."""


def _any_of(words: Iterable[str]) -> bytes:
    """Regex alternatives of literal words, longest first."""
    ordered = sorted(words, key=lambda w: (-len(w), w))
    return b"|".join(re.escape(w.encode("latin-1")) for w in ordered)


def _no_argument_system(port: str) -> list[bytes]:
    names = NO_ARGUMENT_SYSTEM_COMMANDS.get(port, frozenset())
    return [rb"(?i:S,(?:" + _any_of(names) + rb"))"] if names else []


def _patterns(port: str) -> tuple[list[bytes], list[bytes]]:
    """(complete-command forms, command starts) of one port."""
    closed = [*_no_argument_system(port), _SET_PROTOCOL]
    starts = [_SYSTEM_START]
    if port == "level1":
        closed += [rb"T", rb"[wtrf]" + _SYMBOL_START + _SYMBOL_TAIL]
        starts += [rb"[wtrf]" + _SYMBOL_START]
    elif port == "level2":
        closed += [rb"[Tcx]", rb"[wrm]" + _SYMBOL_START + _SYMBOL_TAIL]
        starts += [rb"(?:WOR|WPL|ROR|RPL),", rb"[wrm]" + _SYMBOL_START]
    elif port == "lookup":
        tables = _any_of(TABLE_COMMANDS)
        closed += [rb"(?:" + tables + rb")"]
        starts += [rb"(?:" + _any_of(HISTORY_COMMANDS | SEARCH_COMMANDS) + rb"),", tables]
    return closed, starts


class MergedCommands:
    """Splits one port's merged commands at the boundaries the grammar makes certain."""

    __slots__ = ("_boundary",)

    def __init__(self, port: str) -> None:
        closed, starts = _patterns(port)
        self._boundary = re.compile(
            rb"(?:" + rb"|".join(closed) + rb")(?=" + rb"|".join(starts) + rb")"
        )

    def split(self, data: bytes) -> list[bytes]:
        """`data` cut after each complete command that a known start follows; the last
        piece is whatever remains (complete or not is the caller's call)."""
        pieces = []
        while (found := self._boundary.match(data)) is not None:
            pieces.append(data[: found.end()])
            data = data[found.end() :]
        pieces.append(data)
        return pieces


@cache
def merged_commands(port: str) -> MergedCommands:
    """The (shared, stateless) splitter of one port: level1, level2, admin or lookup."""
    return MergedCommands(port)
